//! The schema as the migrations declare it, read from their SQL (tests only): the
//! CHECK lists of the name columns, so each Rust enum of names is tested against
//! its column, and the unique and foreign-key constraints with Postgres's default
//! names where a migration does not name one, so `store::constraints` stays complete.
//!
//! It understands the statements our migrations use (CREATE TABLE, ALTER TABLE ADD/
//! DROP/RENAME CONSTRAINT and ADD COLUMN, CREATE UNIQUE INDEX, DROP TABLE/INDEX);
//! `tests/it/constraints.rs` checks the result against the catalog of a migrated database.

use std::collections::BTreeMap;

use super::constraints::Rule;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    PrimaryKey,
    Unique,
    ForeignKey,
    /// `column IN ('a', 'b')` when the check is that, else `None`.
    Check(Option<(String, Vec<String>)>),
}

#[derive(Debug, Default)]
pub struct Schema {
    /// Constraints and unique indexes by table (`schema.table`), then by name.
    pub tables: BTreeMap<String, BTreeMap<String, Kind>>,
}

impl Schema {
    /// The schema after every embedded migration, in order.
    pub fn from_migrations() -> Self {
        let mut schema = Schema::default();
        for m in super::MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()) {
            schema.apply(m.sql.as_str());
        }
        schema
    }

    pub fn apply(&mut self, sql: &str) {
        for statement in statements(sql) {
            self.statement(&tokens(&statement));
        }
    }

    /// The names a `column IN (...)` CHECK allows on `table`.
    pub fn check_list(&self, table: &str, column: &str) -> Vec<String> {
        let found = self.tables.get(table).into_iter().flat_map(|t| t.values()).find_map(|kind| match kind {
            Kind::Check(Some((col, names))) if col == column => Some(names.clone()),
            _ => None,
        });
        found.unwrap_or_else(|| panic!("no `{column} IN (...)` CHECK on {table}"))
    }

    /// Every unique (primary keys and unique indexes included) and foreign-key constraint.
    pub fn keys(&self) -> Vec<(String, Rule)> {
        let mut keys = vec![];
        for constraints in self.tables.values() {
            for (name, kind) in constraints {
                match kind {
                    Kind::PrimaryKey | Kind::Unique => keys.push((name.clone(), Rule::Unique)),
                    Kind::ForeignKey => keys.push((name.clone(), Rule::ForeignKey)),
                    Kind::Check(_) => {}
                }
            }
        }
        keys
    }

    fn statement(&mut self, t: &[Tok]) {
        let words: Vec<&str> = t.iter().take(6).map(Tok::word).collect();
        match words.as_slice() {
            ["create", "table", ..] => {
                let rest = skip_words(&t[2..], &["if", "not", "exists"]);
                if let [Tok::Word(table), Tok::Group(body), ..] = rest {
                    for item in split_commas(body) {
                        self.table_item(table, &tokens(&item));
                    }
                }
            }
            ["alter", "table", ..] => {
                let rest = skip_words(&t[2..], &["if", "exists", "only"]);
                if let [Tok::Word(table), actions @ ..] = rest {
                    for action in split_tokens(actions) {
                        self.alter(table, action);
                    }
                }
            }
            ["create", "unique", "index", ..] => {
                let rest = skip_words(&t[3..], &["concurrently", "if", "not", "exists"]);
                if let [Tok::Word(name), on, Tok::Word(table), ..] = rest
                    && on.word() == "on"
                {
                    self.add(table, name.clone(), Kind::Unique);
                }
            }
            ["drop", "table", ..] => {
                for tok in skip_words(&t[2..], &["if", "exists"]) {
                    if let Tok::Word(table) = tok {
                        self.tables.remove(table.as_str());
                    }
                }
            }
            ["drop", "index", ..] => {
                for tok in skip_words(&t[2..], &["concurrently", "if", "exists"]) {
                    if let Tok::Word(name) = tok {
                        let bare = name.rsplit('.').next().unwrap_or(name);
                        self.tables.values_mut().for_each(|c| {
                            c.remove(bare);
                        });
                    }
                }
            }
            _ => {}
        }
    }

    fn alter(&mut self, table: &str, action: &[Tok]) {
        let words: Vec<&str> = action.iter().take(4).map(Tok::word).collect();
        match words.as_slice() {
            ["add", "constraint", ..] => {
                if let [_, _, Tok::Word(name), rest @ ..] = action {
                    self.table_constraint(table, Some(name), rest);
                }
            }
            ["add", "unique" | "primary" | "foreign" | "check", ..] => self.table_constraint(table, None, &action[1..]),
            ["add", ..] => {
                let column = skip_words(&action[1..], &["column", "if", "not", "exists"]);
                self.column(table, column);
            }
            ["drop", "constraint", ..] => {
                if let Some(Tok::Word(name)) = skip_words(&action[2..], &["if", "exists"]).first()
                    && let Some(c) = self.tables.get_mut(table)
                {
                    c.remove(name.as_str());
                }
            }
            ["rename", "constraint", ..] => {
                if let [_, _, Tok::Word(from), to_kw, Tok::Word(to), ..] = action
                    && to_kw.word() == "to"
                    && let Some(c) = self.tables.get_mut(table)
                    && let Some(kind) = c.remove(from.as_str())
                {
                    c.insert(to.clone(), kind);
                }
            }
            _ => {}
        }
    }

    fn table_item(&mut self, table: &str, item: &[Tok]) {
        match item.first().map(Tok::word) {
            Some("constraint") => {
                if let [_, Tok::Word(name), rest @ ..] = item {
                    self.table_constraint(table, Some(name), rest);
                }
            }
            Some("unique" | "primary" | "foreign" | "check" | "exclude") => self.table_constraint(table, None, item),
            Some(_) => self.column(table, item),
            None => {}
        }
    }

    /// `UNIQUE (a, b)`, `PRIMARY KEY (a)`, `FOREIGN KEY (a) REFERENCES ...`, `CHECK (...)`.
    fn table_constraint(&mut self, table: &str, name: Option<&String>, t: &[Tok]) {
        let bare = bare(table);
        let named = |default: String| name.cloned().unwrap_or(default);
        match t {
            [k, Tok::Group(cols), ..] if k.word() == "unique" => {
                self.add(table, named(format!("{bare}_{}_key", columns(cols))), Kind::Unique)
            }
            [p, k, ..] if p.word() == "primary" && k.word() == "key" => {
                self.add(table, named(format!("{bare}_pkey")), Kind::PrimaryKey)
            }
            [f, k, Tok::Group(cols), ..] if f.word() == "foreign" && k.word() == "key" => {
                self.add(table, named(format!("{bare}_{}_fkey", columns(cols))), Kind::ForeignKey)
            }
            [c, Tok::Group(expr), ..] if c.word() == "check" => {
                let first = tokens(expr).into_iter().find_map(|t| match t {
                    Tok::Word(w) => Some(w),
                    _ => None,
                });
                let default = format!("{bare}_{}_check", first.unwrap_or_default());
                self.add(table, named(default), Kind::Check(in_list(expr)))
            }
            _ => {}
        }
    }

    /// A column definition and its inline constraints, each possibly named.
    fn column(&mut self, table: &str, t: &[Tok]) {
        let Some(Tok::Word(column)) = t.first() else { return };
        let bare = bare(table);
        let mut name: Option<String> = None;
        let mut i = 1;
        while i < t.len() {
            let next = t.get(i + 1);
            let found = match t[i].word() {
                "constraint" => {
                    name = next.map(|n| n.word().to_string());
                    i += 2;
                    continue;
                }
                "primary" if next.is_some_and(|n| n.word() == "key") => {
                    Some((format!("{bare}_pkey"), Kind::PrimaryKey))
                }
                "unique" => Some((format!("{bare}_{column}_key"), Kind::Unique)),
                "references" => Some((format!("{bare}_{column}_fkey"), Kind::ForeignKey)),
                "check" => match next {
                    Some(Tok::Group(expr)) => Some((format!("{bare}_{column}_check"), Kind::Check(in_list(expr)))),
                    _ => None,
                },
                _ => None,
            };
            if let Some((default, kind)) = found {
                self.add(table, name.take().unwrap_or(default), kind);
            }
            i += 1;
        }
    }

    fn add(&mut self, table: &str, name: String, kind: Kind) {
        self.tables.entry(table.to_string()).or_default().insert(name, kind);
    }
}

fn bare(table: &str) -> &str {
    table.rsplit('.').next().unwrap_or(table)
}

/// `a, b` → `a_b` (how Postgres names a multi-column constraint).
fn columns(list: &str) -> String {
    split_commas(list).iter().map(|c| c.trim().to_string()).collect::<Vec<_>>().join("_")
}

/// `status IN ('a', 'b')` → `("status", ["a", "b"])`.
fn in_list(expr: &str) -> Option<(String, Vec<String>)> {
    match tokens(expr).as_slice() {
        [Tok::Word(column), k, Tok::Group(list)] if k.word() == "in" => {
            let names: Option<Vec<String>> = split_commas(list)
                .iter()
                .map(|item| match tokens(item).as_slice() {
                    [Tok::Str(s)] => Some(s.clone()),
                    _ => None,
                })
                .collect();
            Some((column.clone(), names?))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier or keyword, lowercased (`engine.runs`, `not`).
    Word(String),
    /// What a pair of parentheses holds, unparsed.
    Group(String),
    /// A string literal's value.
    Str(String),
    Other(char),
}

impl Tok {
    fn word(&self) -> &str {
        match self {
            Tok::Word(w) => w,
            _ => "",
        }
    }
}

fn skip_words<'a>(t: &'a [Tok], words: &[&str]) -> &'a [Tok] {
    let n = t.iter().take_while(|tok| words.contains(&tok.word())).count();
    &t[n..]
}

/// Splits `t` at its commas (groups hold their own).
fn split_tokens(t: &[Tok]) -> Vec<&[Tok]> {
    t.split(|tok| *tok == Tok::Other(',')).collect()
}

fn tokens(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let (value, end) = string_literal(&chars, i);
            out.push(Tok::Str(value));
            i = end;
        } else if c == '(' {
            let end = closing_paren(&chars, i);
            out.push(Tok::Group(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if c.is_alphanumeric() || c == '_' || c == '"' || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '"' | '.' | '$')) {
                i += 1;
            }
            let word: String = chars[start..i].iter().filter(|c| **c != '"').collect();
            out.push(Tok::Word(word.to_lowercase()));
        } else {
            out.push(Tok::Other(c));
            i += 1;
        }
    }
    out
}

/// The value of the literal opening at `start` and the index after it (`''` is a quote).
fn string_literal(chars: &[char], start: usize) -> (String, usize) {
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                value.push('\'');
                i += 2;
                continue;
            }
            return (value, i + 1);
        }
        value.push(chars[i]);
        i += 1;
    }
    (value, i)
}

fn closing_paren(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\'' => {
                i = string_literal(chars, i).1;
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// Splits at the commas outside parentheses and literals.
fn split_commas(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let (mut parts, mut start, mut i) = (vec![], 0, 0);
    while i < chars.len() {
        match chars[i] {
            '\'' => {
                i = string_literal(&chars, i).1;
                continue;
            }
            '(' => {
                i = closing_paren(&chars, i) + 1;
                continue;
            }
            ',' => {
                parts.push(chars[start..i].iter().collect());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(chars[start..].iter().collect());
    parts
}

/// The statements of a migration, without comments; `$$` bodies stay whole.
fn statements(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let (mut out, mut current, mut i) = (vec![], String::new(), 0);
    let mut in_dollar = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' && chars.get(i + 1) == Some(&'$') {
            in_dollar = !in_dollar;
            current.push_str("$$");
            i += 2;
        } else if in_dollar {
            current.push(c);
            i += 1;
        } else if c == '\'' {
            let end = string_literal(&chars, i).1;
            current.extend(&chars[i..end]);
            i = end;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == ';' {
            out.push(std::mem::take(&mut current));
            i += 1;
        } else {
            current.push(c);
            i += 1;
        }
    }
    out.push(current);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::{
        alert::{AlertStatus, Severity},
        client::ClientStatus,
        events::DeliveryStatus,
        knowledge::KnowledgeKind,
        message::{MessageKind, MessageStatus},
        run::{RunStatus, RunTrigger, TaskStatus},
    };

    /// The enum's names are exactly the column's CHECK list (order aside).
    fn same_names(table: &str, column: &str, names: &[&str]) {
        let sql: BTreeSet<String> = Schema::from_migrations().check_list(table, column).into_iter().collect();
        let rust: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(rust, sql, "the Rust enum of {table}.{column} and its CHECK list differ");
    }

    #[test]
    fn client_status_is_the_check_list_of_clients_status() {
        same_names("knowledge.clients", "status", ClientStatus::NAMES);
    }

    #[test]
    fn knowledge_kind_is_the_check_list_of_entries_kind() {
        same_names("knowledge.entries", "kind", KnowledgeKind::NAMES);
    }

    #[test]
    fn run_status_is_the_check_list_of_runs_status() {
        same_names("engine.runs", "status", RunStatus::NAMES);
    }

    #[test]
    fn run_trigger_is_the_check_list_of_runs_trigger() {
        same_names("engine.runs", "trigger", RunTrigger::NAMES);
    }

    #[test]
    fn task_status_is_the_check_list_of_tasks_status() {
        same_names("engine.tasks", "status", TaskStatus::NAMES);
    }

    #[test]
    fn alert_severity_and_status_are_the_check_lists_of_alerts() {
        same_names("engine.alerts", "severity", Severity::NAMES);
        same_names("engine.alerts", "status", AlertStatus::NAMES);
    }

    #[test]
    fn delivery_status_is_the_check_list_of_deliveries_and_callbacks() {
        same_names("engine.deliveries", "status", DeliveryStatus::NAMES);
        same_names("engine.run_callbacks", "status", DeliveryStatus::NAMES);
    }

    #[test]
    fn message_kind_and_status_are_the_check_lists_of_whatsapp_messages() {
        same_names("engine.whatsapp_messages", "kind", MessageKind::NAMES);
        same_names("engine.whatsapp_messages", "status", MessageStatus::NAMES);
    }

    /// The SQL of these modules compares name columns with literals (a partial index
    /// needs the literal in the query): each such literal must be a known name, so a
    /// typo like `'cancelled'` fails here instead of matching nothing.
    #[test]
    fn name_literals_in_store_sql_are_known_names() {
        let known: BTreeSet<&str> = [
            RunStatus::NAMES,
            TaskStatus::NAMES,
            RunTrigger::NAMES,
            ClientStatus::NAMES,
            KnowledgeKind::NAMES,
            Severity::NAMES,
            AlertStatus::NAMES,
            DeliveryStatus::NAMES,
            MessageStatus::NAMES,
        ]
        .concat()
        .into_iter()
        // Not names: NOTIFY payloads, the text search configuration and an encoding.
        .chain(["reaped", "released", "english", "hex"])
        .collect();
        for (file, source) in [
            ("runs.rs", include_str!("runs.rs")),
            ("workers.rs", include_str!("workers.rs")),
            ("alerts.rs", include_str!("alerts.rs")),
            ("clients.rs", include_str!("clients.rs")),
            ("knowledge.rs", include_str!("knowledge.rs")),
            ("run_view.rs", include_str!("run_view.rs")),
            ("deliveries.rs", include_str!("deliveries.rs")),
            ("callbacks.rs", include_str!("callbacks.rs")),
            ("messages.rs", include_str!("messages.rs")),
        ] {
            for literal in word_literals(source) {
                assert!(known.contains(literal.as_str()), "{file}: `'{literal}'` is no known name");
            }
        }
    }

    /// `'word'` literals (lowercase letters and `_`, two or more): SQL names, not Rust
    /// chars or lifetimes.
    fn word_literals(source: &str) -> Vec<String> {
        let bytes = source.as_bytes();
        let (mut out, mut i) = (vec![], 0);
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                let len = bytes[i + 1..].iter().take_while(|b| b.is_ascii_lowercase() || **b == b'_').count();
                if len > 1 && bytes.get(i + 1 + len) == Some(&b'\'') {
                    out.push(source[i + 1..i + 1 + len].to_string());
                    i += len + 2;
                    continue;
                }
            }
            i += 1;
        }
        out
    }

    #[test]
    fn default_and_explicit_names_as_postgres_gives_them() {
        let mut s = Schema::default();
        s.apply(
            "-- a comment; with a semicolon
             CREATE TABLE x.a (
                 id uuid PRIMARY KEY,
                 code text NOT NULL UNIQUE DEFAULT 'x, y',
                 b_id uuid REFERENCES x.b (id) ON DELETE CASCADE,
                 c_id uuid CONSTRAINT a_c_named REFERENCES x.c (id),
                 state text NOT NULL CHECK (state IN ('on', 'off')),
                 CONSTRAINT a_pair_key UNIQUE (code, state),
                 UNIQUE (b_id, c_id),
                 FOREIGN KEY (b_id, c_id) REFERENCES x.bc (b, c)
             );
             CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'no; really'; END; $$;
             ALTER TABLE x.a ADD COLUMN d_id uuid REFERENCES x.d (id), ADD CONSTRAINT a_later UNIQUE (d_id);
             ALTER TABLE x.a DROP CONSTRAINT a_pair_key;
             ALTER TABLE x.a DROP CONSTRAINT a_state_check, ADD CONSTRAINT a_state_check CHECK (state IN ('on', 'off', 'dim'));
             CREATE UNIQUE INDEX a_lower_code ON x.a (lower(code));
             CREATE TABLE x.gone (id int PRIMARY KEY);
             DROP TABLE x.gone;",
        );
        let keys: BTreeSet<(String, Rule)> = s.keys().into_iter().collect();
        let expected: BTreeSet<(String, Rule)> = [
            ("a_pkey", Rule::Unique),
            ("a_code_key", Rule::Unique),
            ("a_b_id_fkey", Rule::ForeignKey),
            ("a_c_named", Rule::ForeignKey),
            ("a_b_id_c_id_key", Rule::Unique),
            ("a_b_id_c_id_fkey", Rule::ForeignKey),
            ("a_d_id_fkey", Rule::ForeignKey),
            ("a_later", Rule::Unique),
            ("a_lower_code", Rule::Unique),
        ]
        .into_iter()
        .map(|(n, r)| (n.to_string(), r))
        .collect();
        assert_eq!(keys, expected);
        assert_eq!(s.check_list("x.a", "state"), ["on", "off", "dim"]);
    }
}
