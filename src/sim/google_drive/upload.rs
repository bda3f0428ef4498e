//! `POST /upload/drive/v3/files?uploadType=multipart`: Drive's multipart upload
//! (https://developers.google.com/workspace/drive/api/guides/manage-uploads#multipart): a
//! `multipart/related` body of exactly two parts, the JSON metadata then the media. The
//! file is then created as a metadata-only create would be (same parent, Shared Drive,
//! id and storage rules), after the rules only uploads have: the parent must be a folder
//! (Drive: 400 `invalid`, "The specified parent is not a folder.", as clients report it,
//! github.com/odeke-em/drive/issues/227), a name is required (stricter than Drive, which
//! names the file "Untitled"), and at most 5 MB (Drive's limit for this upload type).

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::{RawQuery, State as Shared},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::Response,
};
use serde_json::Value;

use super::{FOLDER_MIME, State, create_from, drive_error, invalid, unauthorized};

const MAX_MULTIPART_BYTES: usize = 5 * 1024 * 1024;

pub(super) async fn upload(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    if params.get("uploadType").map(String::as_str) != Some("multipart") {
        // Only the multipart upload is simulated; `media` and `resumable` are not.
        return invalid("uploadType");
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(boundary) = boundary(content_type) else {
        return drive_error(
            StatusCode::BAD_REQUEST,
            "global",
            "badContent",
            "Media type must be multipart/related with a boundary.",
            None,
        );
    };
    let Some((metadata, media)) = parts(&body, &boundary) else {
        return drive_error(StatusCode::BAD_REQUEST, "global", "badContent", "Malformed multipart body.", None);
    };
    let Ok(metadata) = serde_json::from_slice::<Value>(metadata) else {
        return drive_error(StatusCode::BAD_REQUEST, "global", "parseError", "Parse Error", None);
    };
    if media.len() > MAX_MULTIPART_BYTES {
        return drive_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "global",
            "uploadTooLarge",
            "The multipart upload is larger than 5 MB; use a resumable upload.",
            None,
        );
    }
    if metadata["name"].as_str().is_none_or(|n| n.trim().is_empty()) {
        return drive_error(StatusCode::BAD_REQUEST, "global", "required", "Required: name", Some(("name", "other")));
    }
    if metadata["mimeType"].as_str() == Some(FOLDER_MIME) {
        return invalid("mimeType");
    }
    // A parent that exists but is not a folder; a missing one is create_from's 404.
    if let Some(parent) = metadata["parents"][0].as_str() {
        let is_file = state.files().iter().any(|f| f.id == parent && f.mime_type != FOLDER_MIME);
        if is_file {
            return drive_error(
                StatusCode::BAD_REQUEST,
                "global",
                "invalid",
                "The specified parent is not a folder.",
                Some(("parents", "other")),
            );
        }
    }
    create_from(&state, &headers, &params, &metadata, media.len())
}

/// The `boundary` of a `multipart/related` content type.
fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';').map(str::trim);
    if !pieces.next()?.eq_ignore_ascii_case("multipart/related") {
        return None;
    }
    pieces
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
}

/// The bodies of the two parts (metadata, media); `None` unless there are exactly two.
fn parts<'a>(body: &'a [u8], boundary: &str) -> Option<(&'a [u8], &'a [u8])> {
    let delimiter = format!("--{boundary}");
    let mut bodies = Vec::new();
    let mut rest = body;
    let start = find(rest, delimiter.as_bytes())?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let next = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let part = rest[..next].strip_prefix(b"\r\n")?;
        // Headers end at the first empty line.
        let headers_end = find(part, b"\r\n\r\n")?;
        bodies.push(&part[headers_end + 4..]);
        rest = &rest[next + 2 + delimiter.len()..];
    }
    match bodies.as_slice() {
        [metadata, media] => Some((metadata, media)),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_parts_are_read() {
        assert_eq!(boundary("multipart/related; boundary=\"abc\"").as_deref(), Some("abc"));
        assert_eq!(boundary("multipart/form-data; boundary=abc"), None);
        let body = b"--b\r\nContent-Type: application/json\r\n\r\n{\"name\":\"x\"}\r\n--b\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n\r\n--b--\r\n";
        let (metadata, media) = parts(body, "b").unwrap();
        assert_eq!((metadata, media), (&b"{\"name\":\"x\"}"[..], &b"%PDF\r\n"[..]));
        let one_part = b"--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--";
        assert_eq!(parts(one_part, "b"), None);
    }
}
