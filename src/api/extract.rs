//! Request extractors whose every rejection is a problem body naming the field:
//! JSON bodies (415 wrong type, 413 too large, 400 malformed, 422 wrong fields)
//! and query strings (400).

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::validation::FieldError;

/// A JSON body, parsed strictly.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: no body at all (whatever the content type) is `T::default()`;
/// a body is held to [`ApiJson`]'s rules.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers().get(header::CONTENT_TYPE));
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json` (or send no body).",
            ));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is larger than the limit (1 MiB by default).",
    )
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON, telling malformed syntax (400) from a body of the wrong shape (422).
/// The syntax is checked in full first, so a truncated body is malformed even when
/// an unknown field comes before the break.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("The body is not valid JSON (line {}, column {}).", e.line(), e.column()),
        )
    })?;
    if let Some(field) = nul_field(&value, "") {
        return Err(ApiError::invalid(vec![FieldError::new(field, "must not contain NUL (\\u0000) characters")]));
    }
    from_value(value)
}

/// The first field whose name or text holds a NUL character, which Postgres text and
/// jsonb cannot store: refused here by name instead of failing in the database.
fn nul_field(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => {
            Some(if path.is_empty() { "body".to_string() } else { path.to_string() })
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_field(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let field = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if k.contains('\0') { Some(field) } else { nul_field(v, &field) }
        }),
        _ => None,
    }
}

/// Deserialises an already-parsed JSON document (e.g. after a merge patch).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    parse_value(value).map_err(ApiError::invalid)
}

/// Like [`from_value`], as the field errors themselves.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Vec<FieldError>> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| vec![field_error(&e.path().to_string(), &e.inner().to_string())])
}

/// Turns a serde message into a field error. serde reports unknown and missing
/// fields at the parent's path, with the name in backticks; move it into the path.
fn field_error(path: &str, message: &str) -> FieldError {
    let message = message.split(" at line ").next().unwrap_or(message);
    // serde_path_to_error already ends the path with an unknown field's name, but not a missing one's.
    let join = |name: &str| match path {
        "." | "" => name.to_string(),
        p if p == name || p.ends_with(&format!(".{name}")) => p.to_string(),
        p => format!("{p}.{name}"),
    };
    let named = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    if let Some(name) = named("unknown field `") {
        return FieldError::new(join(name), "is not a known field");
    }
    if let Some(name) = named("missing field `") {
        return FieldError::new(join(name), "is required");
    }
    let field = if path == "." || path.is_empty() { "body".to_string() } else { path.to_string() };
    FieldError::new(field, message.to_string())
}

/// A query string, parsed strictly.
pub struct ApiQuery<T>(pub T);

/// The query of an operation that takes no parameters: any parameter is unknown (400).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        if let Some((key, _)) =
            form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::bad_request("invalid_query", format!("{key}: must not contain NUL characters"))
                .with_field(key.into_owned(), "must not contain NUL characters"));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let fe = field_error(&e.path().to_string(), &e.inner().to_string());
            let mut err = ApiError::bad_request("invalid_query", format!("{}: {}", fe.field, fe.message));
            err.errors.push(fe);
            err
        })
    }
}

/// A query filter the spec lists as an enum (a workflow key, an ad platform): a value outside
/// `known` is 400 `invalid_query` naming the parameter, not a quietly empty list.
pub fn one_of(name: &str, value: Option<String>, known: &[&str]) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if !known.contains(&v.as_str()) => {
            let one_of = format!("one of {}", known.join(", "));
            Err(ApiError::bad_request("invalid_query", format!("{name}: {one_of}")).with_field(name, one_of))
        }
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    fn err(json: &str) -> ApiError {
        parse_json::<Body>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn malformed_json_is_400() {
        let e = err("{\"name\": ");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn wrong_shapes_are_422_naming_the_field() {
        let cases = [
            (r#"{"name": "a", "nmae": 1}"#, "nmae"),
            (r#"{}"#, "name"),
            (r#"{"name": 5}"#, "name"),
            (r#"{"name": "a", "inner": {"size": "big"}}"#, "inner.size"),
            (r#"{"name": "a", "inner": {"sise": 1}}"#, "inner.sise"),
        ];
        for (json, field) in cases {
            let e = err(json);
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
            assert_eq!(e.errors[0].field, field, "{json}");
        }
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        assert_eq!(err(r#"{"name": "a"} x"#).code, "malformed_json");
    }

    #[test]
    fn nul_characters_are_refused_by_field() {
        let e = err(r#"{"name": "a", "inner": {"size": 1, "x\u0000": 2}}"#);
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].field, "inner.x\u{0}");
        assert_eq!(err(r#"{"name": "a\u0000"}"#).errors[0].field, "name");
    }

    #[test]
    fn truncated_body_is_malformed_even_after_an_unknown_field() {
        assert_eq!(err(r#"{"nmae": "#).code, "malformed_json");
    }
}
