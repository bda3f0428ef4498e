//! Cursor pagination (docs/API.md): `?limit=` (default 50, max 500) and `?cursor=`;
//! answers `{"data": [...], "next_cursor": "...|null", "has_more": bool}`. Cursors are opaque
//! (base64url of a versioned key), stable under inserts, and a bad one is a 400.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Whether another page follows (`next_cursor` is set): a condition a Make repeater or
    /// filter can test without comparing with null.
    pub has_more: bool,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, next_cursor: Option<String>) -> Self {
        let has_more = next_cursor.is_some();
        Self { data, next_cursor, has_more }
    }
}

/// Validates `limit` (1–500, default 50).
pub fn limit(raw: Option<u32>) -> Result<u32, ApiError> {
    match raw.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {MAX_LIMIT}"))
            .with_field("limit", format!("must be between 1 and {MAX_LIMIT}"))),
    }
}

pub fn encode(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}1:{key}"))
}

/// Decodes a cursor made by [`encode`] with the same `kind`.
pub fn decode(kind: &str, cursor: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request("invalid_cursor", "The cursor is not one this list returned.")
            .with_field("cursor", "is invalid")
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(&format!("{kind}1:")).map(str::to_string).ok_or_else(bad)
}

/// The cursor a request gave, where an empty one (`?cursor=`, what a Make mapping of an
/// empty `next_cursor` sends) means none: the first page.
pub fn given(cursor: Option<&str>) -> Option<&str> {
    cursor.filter(|c| !c.trim().is_empty())
}

pub fn decode_uuid(kind: &str, cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    given(cursor)
        .map(|c| {
            let key = decode(kind, c)?;
            Uuid::parse_str(&key).map_err(|_| decode(kind, "").unwrap_err())
        })
        .transpose()
}

/// Decodes an offset cursor (a ranked list's position, 0 without a cursor): only a
/// non-negative number that fits in `u32` is one a list returned.
pub fn decode_offset(kind: &str, cursor: Option<&str>) -> Result<i64, ApiError> {
    let Some(cursor) = given(cursor) else { return Ok(0) };
    let key = decode(kind, cursor)?;
    key.parse::<u32>().map(i64::from).map_err(|_| decode(kind, "").unwrap_err())
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says another page exists.
pub fn page<T, K: ToString>(mut rows: Vec<T>, limit: u32, kind: &str, key: impl Fn(&T) -> K) -> Page<T> {
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| encode(kind, &key(last).to_string()))
    } else {
        None
    };
    Page::new(rows, next_cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_kind_checked() {
        let id = Uuid::now_v7();
        let c = encode("clients", &id.to_string());
        assert_eq!(decode_uuid("clients", Some(&c)).unwrap(), Some(id));
        assert_eq!(decode("tokens", &c).unwrap_err().code, "invalid_cursor");
        assert_eq!(decode("clients", "!!!").unwrap_err().code, "invalid_cursor");
    }

    #[test]
    fn offset_cursors_are_small_non_negative_numbers() {
        assert_eq!(decode_offset("s", None).unwrap(), 0);
        assert_eq!(decode_offset("s", Some(&encode("s", "100"))).unwrap(), 100);
        for bad in ["-50", "99999999999999999999", "4294967296", "1e3", ""] {
            let err = decode_offset("s", Some(&encode("s", bad))).unwrap_err();
            assert_eq!((err.code, err.errors[0].field.as_str()), ("invalid_cursor", "cursor"), "{bad}");
        }
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(500)).unwrap(), 500);
        assert_eq!(limit(Some(0)).unwrap_err().errors[0].field, "limit");
        assert!(limit(Some(501)).is_err());
    }

    #[test]
    fn next_cursor_only_when_more_rows_exist() {
        let p = page(vec![1, 2, 3], 2, "n", |n| *n);
        assert_eq!(p.data, vec![1, 2]);
        assert_eq!(decode("n", p.next_cursor.as_deref().unwrap()).unwrap(), "2");
        assert!(page(vec![1, 2], 2, "n", |n| *n).next_cursor.is_none());
    }
}
