//! `Idempotency-Key` for every POST (docs/API.md). Make retries failed modules; this
//! is what keeps a retry from creating a second client, run or message.
//!
//! Keys are scoped per token and kept at least 24 h. The first request claims
//! the key (`in_progress`, with a lock that lets a crashed request's key be taken
//! over); its response is stored and replayed to the same key + same request with
//! `Idempotent-Replayed: true`. The same key with a different request is 422; a
//! duplicate while the first is still running is 409. Only an operation that started
//! is stored: a refused input (400, 413, 415, 422) and answers worth retrying (5xx,
//! 409, 429) are not, so the fixed request or the retry runs again (see [`kept`]).
//!
//! Stored bodies may hold secrets (a new API token, a webhook signing secret), so
//! every body is sealed with the key ring, bound to its token and key (decision 0014).

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};

use super::{
    auth::Caller,
    error::{ApiError, ProblemMarker},
    extract::too_large,
};
use crate::{
    api::AppState,
    crypto::KeyRing,
    store::idempotency::{self, Claim, StoredBody, StoredResponse},
};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// Response headers worth replaying (`Cache-Control: no-store` keeps a replayed secret out of caches).
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::CACHE_CONTROL];

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(raw_key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = raw_key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters.")
                .with_field("Idempotency-Key", "must be 1-255 visible ASCII characters")
        })?
        .to_string();
    let Some(token_id) = req.extensions().get::<Caller>().map(|c| c.principal.token_id) else {
        return Ok(next.run(req).await);
    };

    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, state.config.body_limit_bytes).await.map_err(|_| too_large())?;
    let hash = request_hash(&parts.method, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"), &bytes);
    let lock_secs = state.config.request_timeout_secs as f64 + 30.0;
    let ttl_hours = state.config.idempotency_ttl_hours as i32;

    match idempotency::claim(&state.pool, token_id, &key, &hash, lock_secs, ttl_hours).await? {
        Claim::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request; use a new key.",
        )
        .with_field("Idempotency-Key", "was already used with a different request")),
        Claim::InFlight => Err(ApiError::conflict(
            "idempotency_in_flight",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(1u32))),
        Claim::Completed(stored) => replay(&state.keys, token_id, &key, stored),
        Claim::Acquired => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            let status = response.status();
            if !kept(status) {
                idempotency::release(&state.pool, token_id, &key).await?;
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body =
                axum::body::to_bytes(body, usize::MAX).await.map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
            let sealed = state.keys.seal(&body, &idempotency::aad(token_id, &key));
            idempotency::complete(
                &state.pool,
                token_id,
                &key,
                status.as_u16() as i16,
                &kept_headers(&parts.headers),
                &sealed,
            )
            .await?;
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}

/// Whether an answer is kept under its key. Only an operation that started is kept
/// (as Stripe does): a refused input (400, 413, 415, 422: nothing was written) is not, so
/// the caller can fix the request and send it again with the same key — what Make does
/// when an incomplete execution is re-run after a mapping fix. Nor are answers a retry may
/// change: 409 (a conflict of the moment), 429 and every 5xx.
fn kept(status: StatusCode) -> bool {
    !(matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::CONFLICT
            | StatusCode::TOO_MANY_REQUESTS
    ) || status.is_server_error())
}

fn request_hash(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b" ");
    h.update(path_and_query);
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn kept_headers(headers: &HeaderMap) -> serde_json::Value {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| Some((name.as_str().to_string(), headers.get(name)?.to_str().ok()?.to_string().into())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn replay(keys: &KeyRing, token_id: uuid::Uuid, key: &str, stored: StoredResponse) -> Result<Response, ApiError> {
    let body = match stored.body {
        StoredBody::Sealed(sealed) => keys.open(&sealed, &idempotency::aad(token_id, key)).map_err(|e| {
            ApiError::internal(anyhow::anyhow!("replaying the stored response of an Idempotency-Key: {e}"))
        })?,
        StoredBody::Plain(body) => body,
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
    if let Some(headers) = stored.headers.as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) =
                (HeaderName::try_from(name.as_str()), value.as_str().map(HeaderValue::try_from))
            {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    if response.status().is_client_error() || response.status().is_server_error() {
        // A stored problem body: let the problem middleware complete it instead of replacing it.
        response.extensions_mut().insert(ProblemMarker);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_method_path_and_body() {
        let a = request_hash(&Method::POST, "/v1/clients", b"{}");
        assert_eq!(a, request_hash(&Method::POST, "/v1/clients", b"{}"));
        assert_ne!(a, request_hash(&Method::POST, "/v1/clients", b"{ }"));
        assert_ne!(a, request_hash(&Method::POST, "/v1/tokens", b"{}"));
    }
}
