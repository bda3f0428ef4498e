//! Reading Make's text: the modules of a flow, `{{…}}` expressions, URLs and JSON
//! bodies with expressions in them.

use serde_json::{Value, json};

use super::checker::{BARE_EXPR, TEXT_EXPR};

/// Every module, depth first: the flow, router routes and error handlers.
pub fn modules(flow: &Value) -> Vec<&Value> {
    fn walk<'a>(flow: &'a Value, out: &mut Vec<&'a Value>) {
        for m in flow.as_array().into_iter().flatten() {
            out.push(m);
            for route in m["routes"].as_array().into_iter().flatten() {
                walk(&route["flow"], out);
            }
            walk(&m["onerror"], out);
        }
    }
    let mut out = vec![];
    walk(flow, &mut out);
    out
}

pub fn variable<'a>(m: &'a Value, name: &str) -> Option<&'a Value> {
    m["mapper"]["variables"].as_array()?.iter().find(|v| v["name"] == json!(name)).map(|v| &v["value"])
}

pub fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[derive(Debug)]
pub enum Piece<'a> {
    Text(&'a str),
    /// The inside of a `{{…}}`.
    Expr(&'a str),
}

pub fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        out.push(Piece::Expr(&rest[start + 2..start + 2 + len]));
        rest = &rest[start + 4 + len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Module ids an expression reads (`3.data.id` → 3), ignoring its string literals.
pub fn referenced_ids(expr: &str) -> Vec<u64> {
    let b = expr.as_bytes();
    let (mut ids, mut i, mut in_literal) = (vec![], 0, false);
    while i < b.len() {
        if b[i] == b'"' {
            in_literal = !in_literal;
        } else if !in_literal
            && b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b"_.-[".contains(&b[i - 1])))
        {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
                ids.push(expr[start..i].parse().unwrap());
            }
            continue;
        }
        i += 1;
    }
    ids
}

/// A URL after the base: the path (each expression as `\0`) and the query
/// parameters it sends, with their literal values (`None` when computed). Names
/// also come from string literals in expressions, e.g. `{{if(3.c; "&cursor=" + 3.c; "")}}`.
pub fn split_query(rest: &str) -> (String, Vec<(String, Option<String>)>) {
    let (mut path, mut query, mut in_query) = (String::new(), String::new(), false);
    let mut sent = vec![];
    for piece in pieces(rest) {
        match piece {
            Piece::Expr(e) => {
                if in_query {
                    query.push('\0');
                    for literal in e.split('"').skip(1).step_by(2) {
                        for part in literal.split(['&', '?']).skip(1) {
                            if let Some((name, _)) = part.split_once('=') {
                                sent.push((name.to_string(), None));
                            }
                        }
                    }
                } else {
                    path.push('\0');
                }
            }
            Piece::Text(t) if in_query => query.push_str(t),
            Piece::Text(t) => match t.split_once('?') {
                Some((p, q)) => {
                    path.push_str(p);
                    query.push_str(q);
                    in_query = true;
                }
                None => path.push_str(t),
            },
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !name.is_empty() && !name.contains('\0') {
            sent.push((name.to_string(), (!value.contains('\0')).then(|| value.to_string())));
        }
    }
    (path, sent)
}

/// A body with each `{{…}}` replaced: by text inside a JSON string, by a marker
/// string that any schema type accepts elsewhere.
pub fn substitute(body: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for piece in pieces(body) {
        match piece {
            Piece::Expr(_) if in_string => out.push_str(TEXT_EXPR),
            Piece::Expr(_) => out.push_str(&format!("\"{BARE_EXPR}\"")),
            Piece::Text(text) => {
                for c in text.chars() {
                    if escaped {
                        escaped = false;
                    } else if in_string && c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        in_string = !in_string;
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}
