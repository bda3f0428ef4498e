//! The subset of Drive's query language (`q`,
//! https://developers.google.com/workspace/drive/api/guides/search-files) the connector
//! sends: `and`-joined name, mimeType, parent, trashed and `appProperties has { … }` terms.

use super::File;

#[derive(Debug, PartialEq)]
pub(super) enum Cond {
    Name {
        negate: bool,
        contains: bool,
        value: String,
    },
    Mime {
        negate: bool,
        value: String,
    },
    Parent(String),
    Trashed(bool),
    /// `appProperties has { key='k' and value='v' }`.
    AppProperty(String, String),
}

impl Cond {
    pub(super) fn matches(&self, f: &File) -> bool {
        match self {
            Cond::Name { negate, contains, value } => {
                (if *contains { f.name.contains(value.as_str()) } else { &f.name == value }) != *negate
            }
            Cond::Mime { negate, value } => (&f.mime_type == value) != *negate,
            Cond::Parent(id) => f.parents.contains(id),
            Cond::Trashed(t) => f.trashed == *t,
            Cond::AppProperty(k, v) => f.app_properties.get(k) == Some(v),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Lit(String),
    Word(String),
    /// A whole `appProperties has { key='k' and value='v' }` (its inner `and` is not a clause break).
    AppProperty(String, String),
}

/// Splits a query into words, operators and string literals (unescaping `\'` and `\\`).
fn tokens(q: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut lit = String::new();
            loop {
                match chars.next()? {
                    '\\' => lit.push(chars.next()?),
                    '\'' => break,
                    c => lit.push(c),
                }
            }
            out.push(Tok::Lit(lit));
        } else {
            let op = |c: char| matches!(c, '=' | '!' | '<' | '>');
            let first_is_op = op(c);
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '\'' || op(c) != first_is_op {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push(Tok::Word(word));
        }
    }
    Some(out)
}

/// The `and`-joined conditions of `q`; `None` for anything outside the supported subset.
pub(super) fn parse_query(q: &str) -> Option<Vec<Cond>> {
    let toks = app_properties(tokens(q)?)?;
    let mut conds = Vec::new();
    for clause in toks.split(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("and"))) {
        let word = |i: usize| match clause.get(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        let cond = match clause {
            [Tok::Word(field), Tok::Word(op), Tok::Lit(value)] => {
                let (negate, contains) = match op.as_str() {
                    "=" => (false, false),
                    "!=" => (true, false),
                    "contains" => (false, true),
                    _ => return None,
                };
                match field.as_str() {
                    "name" => Cond::Name { negate, contains, value: value.clone() },
                    "mimeType" if !contains => Cond::Mime { negate, value: value.clone() },
                    _ => return None,
                }
            }
            [Tok::AppProperty(k, v)] => Cond::AppProperty(k.clone(), v.clone()),
            [Tok::Lit(id), Tok::Word(_), Tok::Word(_)] if word(1) == Some("in") && word(2) == Some("parents") => {
                Cond::Parent(id.clone())
            }
            [Tok::Word(_), Tok::Word(_), Tok::Word(value)] if word(0) == Some("trashed") && word(1) == Some("=") => {
                match value.as_str() {
                    "true" => Cond::Trashed(true),
                    "false" => Cond::Trashed(false),
                    _ => return None,
                }
            }
            _ => return None,
        };
        conds.push(cond);
    }
    Some(conds)
}

/// Folds each `appProperties has { key = '…' and value = '…' }` into one token; `None` when malformed.
fn app_properties(toks: Vec<Tok>) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(toks.len());
    let mut rest = toks.into_iter();
    while let Some(tok) = rest.next() {
        if !matches!(&tok, Tok::Word(w) if w == "appProperties") {
            out.push(tok);
            continue;
        }
        let word = |t: Option<Tok>, want: &str| matches!(t, Some(Tok::Word(w)) if w == want);
        let lit = |t: Option<Tok>| match t {
            Some(Tok::Lit(l)) => Some(l),
            _ => None,
        };
        if !(word(rest.next(), "has") && word(rest.next(), "{") && word(rest.next(), "key") && word(rest.next(), "=")) {
            return None;
        }
        let key = lit(rest.next())?;
        if !(word(rest.next(), "and") && word(rest.next(), "value") && word(rest.next(), "=")) {
            return None;
        }
        let value = lit(rest.next())?;
        if !word(rest.next(), "}") {
            return None;
        }
        out.push(Tok::AppProperty(key, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::google_drive::FOLDER_MIME;

    #[test]
    fn parses_the_connectors_query_and_honours_escapes() {
        let name = r"O'Brien \ Co";
        // Drive's grammar: single-quoted literals, `\'` and `\\` escaped with a backslash.
        let q = r"name = 'O\'Brien \\ Co' and 'root' in parents and mimeType = 'application/vnd.google-apps.folder' and trashed = false";
        let conds = parse_query(q).unwrap();
        assert_eq!(
            conds,
            [
                Cond::Name { negate: false, contains: false, value: name.to_string() },
                Cond::Parent("root".into()),
                Cond::Mime { negate: false, value: FOLDER_MIME.into() },
                Cond::Trashed(false),
            ]
        );
        assert!(parse_query("name = 'unterminated").is_none());
        assert!(parse_query("fullText contains 'x'").is_none());
        assert!(parse_query("name='a' and trashed=false").is_some());
    }

    #[test]
    fn app_properties_terms_are_one_condition() {
        let q =
            "'f1' in parents and appProperties has { key='switchboard_report' and value='r\\'1' } and trashed = false";
        assert_eq!(
            parse_query(q).unwrap(),
            [
                Cond::Parent("f1".into()),
                Cond::AppProperty("switchboard_report".into(), "r'1".into()),
                Cond::Trashed(false),
            ]
        );
        assert!(parse_query("appProperties has { key='k' }").is_none());
        assert!(parse_query("appProperties has 'k'").is_none());
    }
}
