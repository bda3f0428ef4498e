//! The simulated Google OAuth server (`POST /token`), shared by the Google Ads and
//! Drive simulators: the refresh-token grant (Ads users) and the JWT bearer grant
//! (service accounts, with or without `sub`), and the check of the bearer tokens it issued.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use axum::{
    Json,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};

use crate::sim::new_id;

/// Google's OAuth server as Google documents it: the audience a JWT assertion must name,
/// the JWT bearer grant (RFC 7523) and the scope a refresh token of an Ads user carries.
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ADS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";
/// Access tokens the simulated Google issues (and accepts).
pub const TOKEN_PREFIX: &str = "ya29.sim-";

/// `POST /token` of Google's OAuth server (shared with the Drive simulator).
/// Signatures are not verified; the grant, the fields and the JWT claims are.
pub(in crate::sim) fn token_endpoint(issued: &AtomicU64, body: &[u8], allow_refresh: bool) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let refuse = |status: StatusCode, error: &str, description: &str| {
        (status, Json(json!({"error": error, "error_description": description}))).into_response()
    };
    let field = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (scope, kind) = match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") if allow_refresh => {
            if field("client_id").is_none() || field("client_secret").is_none() {
                return refuse(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
            }
            match field("refresh_token") {
                None => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Missing required parameter: refresh_token",
                    );
                }
                Some("bad") => {
                    return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked.");
                }
                Some(_) => (ADS_SCOPE.to_string(), TokenKind::User),
            }
        }
        Some(JWT_BEARER_GRANT) => match field("assertion").map(jwt_claims) {
            None => return refuse(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: assertion"),
            Some(Err(description)) => return refuse(StatusCode::BAD_REQUEST, "invalid_grant", description),
            Some(Ok((scope, true))) => (scope, TokenKind::Delegated),
            Some(Ok((scope, false))) => (scope, TokenKind::ServiceAccount),
        },
        Some(other) => {
            return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("Invalid grant_type: {other}"));
        }
        None => return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type: "),
    };
    issued.fetch_add(1, Ordering::Relaxed);
    let token = new_id(&format!("{TOKEN_PREFIX}{}", kind.tag()));
    Json(json!({"access_token": token, "expires_in": 3599, "scope": scope, "token_type": "Bearer"})).into_response()
}

/// Whose token the simulated Google issued (carried in the token itself, as a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user's (refresh-token grant): has storage of its own.
    User,
    /// A service account acting as a Workspace user (JWT with `sub`).
    Delegated,
    /// A service account as itself (JWT without `sub`): owns no Drive storage.
    ServiceAccount,
}

impl TokenKind {
    fn tag(self) -> &'static str {
        match self {
            TokenKind::User => "user-",
            TokenKind::Delegated => "dwd-",
            TokenKind::ServiceAccount => "sa-",
        }
    }

    /// The kind of the request's bearer token, if it is one the simulator issued.
    pub(in crate::sim) fn of(headers: &HeaderMap) -> Option<TokenKind> {
        let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?.strip_prefix(TOKEN_PREFIX)?;
        [TokenKind::User, TokenKind::Delegated, TokenKind::ServiceAccount]
            .into_iter()
            .find(|k| token.starts_with(k.tag()))
    }
}

/// Checks an assertion's claims like Google does (not its signature); returns its scope
/// and whether it impersonates a user (`sub`).
fn jwt_claims(assertion: &str) -> Result<(String, bool), &'static str> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let decode = |part: &str| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let (Some(header), Some(claims)) = (parts.first().and_then(|p| decode(p)), parts.get(1).and_then(|p| decode(p)))
    else {
        return Err("Invalid JWT Signature.");
    };
    if parts.len() != 3 || parts[2].is_empty() || header["alg"] != "RS256" {
        return Err("Invalid JWT Signature.");
    }
    let now = Utc::now().timestamp();
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    if exp <= iat || exp - iat > 3600 || iat > now + 300 || exp < now {
        return Err(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if claims["aud"] != TOKEN_URL {
        return Err("Invalid JWT: Failed audience check.");
    }
    match (claims["iss"].as_str(), claims["scope"].as_str()) {
        (Some(iss), Some(scope)) if !iss.is_empty() && !scope.is_empty() => {
            Ok((scope.to_string(), claims["sub"].as_str().is_some_and(|s| !s.is_empty())))
        }
        _ => Err("Invalid JWT: No issuer or scope."),
    }
}

/// Whether the request carries a token from [`token_endpoint`]; the reason when not.
pub(in crate::sim) fn bearer_problem(headers: &HeaderMap) -> Option<&'static str> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        None => Some("missing"),
        Some(token) if !token.starts_with(TOKEN_PREFIX) => Some("invalid"),
        Some(_) => None,
    }
}
