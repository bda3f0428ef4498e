//! Custom headers a webhook endpoint receives on every delivery (Make's custom
//! webhook API key `x-make-apikey`, a receiver's `Authorization`): the rules a name and
//! a value follow, and how a value is shown back (masked). Values are secrets: sealed
//! at rest (`events::secret`), never shown in full, never in `Debug` output.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validation::FieldError;

/// At most this many headers per endpoint.
pub const MAX_HEADERS: usize = 5;
/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest value, in characters (Make's own webhook keys are at most 512).
pub const MAX_VALUE: usize = 1000;

/// Names Switchboard sets itself or that belong to the connection, not to the message
/// (RFC 9110 §7.6.1 hop-by-hop fields, framing, `Host`), refused case-insensitively; so
/// is every `webhook-*` name (the Standard Webhooks signature headers). `Authorization`
/// is allowed: a receiver may want a bearer token, and it is sealed like any value.
pub const FORBIDDEN: [&str; 15] = [
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
];

/// A header sent on every delivery. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "x-make-apikey", "value": "mk_live_4f9a8b7c6d5e"}))]
pub struct CustomHeader {
    /// An HTTP field name (RFC 9110 token), not one Switchboard sets (`content-type`,
    /// `host`, hop-by-hop fields, `user-agent`, `webhook-*`). Stored lowercase.
    pub name: String,
    /// Up to 1,000 visible ASCII characters (spaces inside allowed); a secret: answers
    /// show only its last four characters.
    pub value: String,
}

impl fmt::Debug for CustomHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomHeader").field("name", &self.name).field("value", &"<redacted>").finish()
    }
}

/// A header as answers show it: the name and a masked value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"name": "x-make-apikey", "value": "••••6d5e"}))]
pub struct MaskedHeader {
    pub name: String,
    /// `••••` and the value's last four characters (only `••••` for values under 12).
    #[schema(example = "••••6d5e")]
    pub value: String,
}

impl From<&CustomHeader> for MaskedHeader {
    fn from(h: &CustomHeader) -> Self {
        Self { name: h.name.clone(), value: mask(&h.value) }
    }
}

/// `••••` plus the last four characters, which only a value of 12 or more shows.
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    let tail: String = if n >= 12 { value.chars().skip(n - 4).collect() } else { String::new() };
    format!("••••{tail}")
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks a list of headers: every problem named by its field (`headers[i].name`,
/// `headers[i].value`), never quoting a value. Names come back lowercase.
pub fn check(headers: &[CustomHeader]) -> Result<Vec<CustomHeader>, Vec<FieldError>> {
    let mut errors = vec![];
    if headers.len() > MAX_HEADERS {
        errors.push(FieldError::new("headers", format!("at most {MAX_HEADERS} headers")));
    }
    let mut seen: Vec<String> = vec![];
    let mut out = vec![];
    for (i, h) in headers.iter().enumerate() {
        let name = h.name.to_ascii_lowercase();
        let field = format!("headers[{i}].name");
        if name.is_empty() || name.chars().count() > MAX_NAME || !name.chars().all(is_tchar) {
            errors.push(FieldError::new(
                field,
                format!(
                    "must be an HTTP header name of 1 to {MAX_NAME} characters (letters, digits and !#$%&'*+-.^_`|~)"
                ),
            ));
        } else if FORBIDDEN.contains(&name.as_str()) || name.starts_with("webhook-") {
            errors.push(FieldError::new(
                field,
                format!("`{name}` is set by Switchboard or by the connection and cannot be replaced"),
            ));
        } else if seen.contains(&name) {
            errors.push(FieldError::new(field, format!("`{name}` is given twice")));
        }
        let value_field = format!("headers[{i}].value");
        let length = h.value.chars().count();
        if length == 0 || length > MAX_VALUE {
            errors.push(FieldError::new(value_field, format!("must be 1 to {MAX_VALUE} characters")));
        } else if !h.value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            errors.push(FieldError::new(
                value_field,
                "must be visible ASCII characters and spaces (no CR, LF, tabs or other control characters)",
            ));
        } else if h.value.starts_with(' ') || h.value.ends_with(' ') {
            errors.push(FieldError::new(value_field, "must not start or end with a space"));
        }
        seen.push(name.clone());
        out.push(CustomHeader { name, value: h.value.clone() });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> CustomHeader {
        CustomHeader { name: name.into(), value: value.into() }
    }

    fn fields(headers: &[CustomHeader]) -> Vec<String> {
        check(headers).unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn makes_api_key_and_authorization_are_allowed_and_names_lowercased() {
        let ok = check(&[h("X-Make-ApiKey", "mk_live_4f9a8b7c6d5e"), h("Authorization", "Bearer abc def")]).unwrap();
        assert_eq!(ok[0].name, "x-make-apikey");
        assert_eq!(ok[1].value, "Bearer abc def");
    }

    #[test]
    fn forbidden_or_malformed_names_are_refused_by_index() {
        for bad in [
            "Host",
            "content-type",
            "Content-Length",
            "transfer-encoding",
            "connection",
            "webhook-signature",
            "Webhook-Id",
            "x header",
            "x:y",
            "",
            "é",
        ] {
            assert_eq!(fields(&[h("x-ok", "v"), h(bad, "value")]), ["headers[1].name"], "{bad:?}");
        }
        assert_eq!(fields(&[h("x-a", "1"), h("X-A", "2")]), ["headers[1].name"], "duplicates");
        assert_eq!(fields(&[h(&"a".repeat(MAX_NAME + 1), "v")]), ["headers[0].name"]);
    }

    #[test]
    fn values_must_be_visible_ascii_without_line_breaks() {
        for bad in ["a\r\nx-injected: 1", "a\nb", "tab\there", "", " padded", "ünïcode", "nul\0"] {
            let errors = check(&[h("x-key", bad)]).unwrap_err();
            assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["headers[0].value"], "{bad:?}");
            assert!(errors.iter().all(|e| bad.is_empty() || !e.message.contains(bad)), "a value is never quoted");
        }
        assert!(check(&[h("x-key", &"v".repeat(MAX_VALUE))]).is_ok());
        assert_eq!(fields(&[h("x-key", &"v".repeat(MAX_VALUE + 1))]), ["headers[0].value"]);
        let six: Vec<CustomHeader> = (0..6).map(|i| h(&format!("x-{i}"), "v")).collect();
        assert_eq!(fields(&six), ["headers"]);
    }

    #[test]
    fn values_are_masked_and_never_in_debug_output() {
        assert_eq!(mask("mk_live_4f9a8b7c6d5e"), "••••6d5e");
        assert_eq!(mask("short-key"), "••••");
        let header = h("x-make-apikey", "mk_live_4f9a8b7c6d5e");
        assert!(!format!("{header:?}").contains("4f9a"));
        assert_eq!(MaskedHeader::from(&header).value, "••••6d5e");
    }
}
