//! What Make documents about its expression language (IML), shared by the tests of
//! the custom app (`make_app.rs`) and of the blueprints (`make_blueprints/`).

/// The built-in IML functions in Make's Help Center function reference (the pages
/// "General functions", "Math functions", "Text and binary functions", "Date and
/// time functions" and "Array functions", help.make.com). Custom apps call the same
/// built-ins (Make's custom-app docs point to that reference for them). A function not
/// listed here may work in Make, but nothing we can read says so, so we do not use it.
pub const FUNCTIONS: &[&str] = &[
    // General
    "get",
    "if",
    "ifempty",
    "switch",
    "omit",
    "pick",
    // Math
    "average",
    "ceil",
    "floor",
    "formatNumber",
    "max",
    "min",
    "parseNumber",
    "round",
    "sum",
    "trunc",
    // Text and binary
    "ascii",
    "base64",
    "capitalize",
    "contains",
    "decodeURL",
    "encodeURL",
    "escapeHTML",
    "escapeMarkdown",
    "indexOf",
    "length",
    "lower",
    "md5",
    "replace",
    "replaceEmojiCharacters",
    "sha1",
    "sha256",
    "sha512",
    "split",
    "startcase",
    "stripHTML",
    "substring",
    "toBinary",
    "toString",
    "trim",
    "upper",
    // Date and time
    "addDays",
    "addHours",
    "addMinutes",
    "addMonths",
    "addSeconds",
    "addYears",
    "formatDate",
    "parseDate",
    "setDate",
    "setDay",
    "setHour",
    "setMinute",
    "setMonth",
    "setSecond",
    "setYear",
    // Array
    "add",
    "deduplicate",
    "distinct",
    "first",
    "flatten",
    "join",
    "keys",
    "last",
    "map",
    "merge",
    "remove",
    "reverse",
    "shuffle",
    "slice",
    "sort",
    "toArray",
    "toCollection",
];

/// The names called in an IML expression (`if(a, join(b, ','), c)` → if, join),
/// ignoring text inside quotes.
pub fn called(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let (mut out, mut i, mut quote) = (vec![], 0, None::<u8>);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c.is_ascii_alphabetic()
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b"_.`".contains(&b[i - 1]))) =>
            {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let mut j = i;
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                if b.get(j) == Some(&b'(') {
                    out.push(expr[start..i].to_string());
                }
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// The inside of every `{{…}}` in a text.
pub fn expressions(text: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        out.push(&rest[start + 2..start + 2 + len]);
        rest = &rest[start + 4 + len..];
    }
    out
}

#[test]
fn calls_are_found_outside_quotes() {
    assert_eq!(called("if(parameters.a, join(parameters.b, ','), undefined)"), ["if", "join"]);
    assert_eq!(called("ifempty(body.code, 'error(s)')"), ["ifempty"]);
    assert_eq!(called(r#"formatDate(now; "YYYY"; "UTC") + x.len (2)"#), ["formatDate"]);
    assert!(called("body.data").is_empty());
    assert_eq!(expressions("a {{1.b}} c {{d(e)}}"), ["1.b", "d(e)"]);
}
