//! Authentication middleware and the `Caller` extractor. Tokens come in
//! `Authorization: Bearer <token>` or `X-API-Key: <token>` (Make's API-key connection).

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::Response,
};

use super::error::ApiError;
use crate::{api::AppState, auth::Principal, domain::scope::Scope, store::audit::Actor};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: Option<String>,
}

impl Caller {
    /// 403 naming the scope unless the token holds it (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.principal.has(scope) { Ok(()) } else { Err(ApiError::forbidden_scope(scope)) }
    }

    /// The audit log's view of this caller.
    pub fn actor(&self) -> Actor {
        Actor {
            token_id: Some(self.principal.token_id),
            name: self.principal.name.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "Send a token as `Authorization: Bearer <token>` or `X-API-Key: <token>`.",
            )
        })
    }
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Authenticates, applies the per-token rate limit, and hands the `Caller` to the handler.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let token = bearer_token(req.headers()).filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::unauthorized(
            "missing_token",
            "Send a token as `Authorization: Bearer <token>` or `X-API-Key: <token>`.",
        )
    })?;
    let principal = state.tokens.authenticate(&state.pool, token).await?;
    let allowance = state.rate_limit.check(principal.token_id).await?;
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(String::from);
    req.extensions_mut().insert(Caller { principal, request_id });
    let mut response = next.run(req).await;
    allowance.write(response.headers_mut());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }
}
