//! `/v1/tokens`: API tokens. The token itself is shown once, when created.

use std::collections::HashMap;

use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    auth::{AuthError, IssueError},
    domain::{
        scope::Scope,
        validation::{FieldError, Violations},
    },
    store::{self, tokens::TokenRow},
};

pub const TAG: &str = "tokens";
const CURSOR: &str = "tokens";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(current_token))
        .routes(routes!(revoke_token))
}

/// A token's record; never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    #[schema(example = "make-production")]
    pub name: String,
    #[schema(value_type = Vec<Scope>, example = json!(["clients:read", "workflows:run"]))]
    pub scopes: Vec<String>,
    /// Id of the token that created this one (`null` when made from the command line).
    pub created_by: Option<Uuid>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>, example = "2026-07-01T08:00:00.000Z")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Updated within a few seconds of use (batched), not on every request.
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for TokenView {
    fn from(r: TokenRow) -> Self {
        TokenView {
            id: r.id,
            name: r.name,
            scopes: r.scopes,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A new token: `token` is shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer token. Store it now; it cannot be shown again.
    #[schema(example = "eyJhbGciOiJIUzI1NiJ9...")]
    pub token: String,
    #[serde(flatten)]
    pub record: TokenView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "make-production", "scopes": ["clients:read", "workflows:run"], "expires_in": "90d"}))]
pub struct CreateTokenRequest {
    /// 1–100 characters, e.g. what uses it.
    pub name: String,
    /// At least one; only scopes the calling token holds can be granted.
    pub scopes: Vec<Scope>,
    /// Lifetime such as `30d`, `12h`, `90m`; omit for a token that does not expire. A token
    /// never outlives the token that creates it: when the calling token expires, `expires_in`
    /// is required and must end no later than the caller's `expires_at` (422 otherwise).
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// Parses a lifetime such as `30d` or `12h` into an expiry time.
pub fn expiry(expires_in: &str) -> Result<DateTime<Utc>, String> {
    let d = humantime::parse_duration(expires_in.trim())
        .map_err(|e| format!("must be a duration like 30d, 12h or 90m ({e})"))?;
    if d.as_secs() < 60 {
        return Err("must be at least one minute".into());
    }
    let d = chrono::Duration::from_std(d).map_err(|_| "is too long".to_string())?;
    Utc::now()
        .checked_add_signed(d)
        .filter(|at| at.timestamp() < 253_402_300_799)
        .ok_or_else(|| "is too long".to_string())
}

/// Create a token
///
/// Returns the token once (answered with `Cache-Control: no-store`, replays too). A token
/// can only grant scopes it holds itself, and the new token is its child: it expires no
/// later than the caller (see `expires_in`) and is revoked when the caller is revoked.
#[utoipa::path(
    post, path = "/v1/tokens", operation_id = "createToken", tag = TAG,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again.")),
    request_body(content = CreateTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `tokens:admin`, or granting a scope the caller lacks", body = Problem, extensions(("x-problem-codes" = json!(["missing_scope", "scope_not_grantable"])))),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields; `expires_in` missing or too long for a calling token that expires", body = Problem),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<Response> {
    caller.require(Scope::TokensAdmin)?;
    let mut v = Violations::default();
    v.text("name", &req.name, 1, 100);
    if req.scopes.is_empty() {
        v.add("scopes", "must name at least one scope");
    }
    let expires_at = match req.expires_in.as_deref() {
        Some(raw) => expiry(raw).map_err(|why| v.add("expires_in", why)).ok(),
        None => None,
    };
    v.finish(()).map_err(ApiError::invalid)?;
    if let Some(missing) = req.scopes.iter().find(|s| !caller.principal.has(**s)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_not_grantable",
            format!("This token cannot grant `{missing}`: it does not hold it."),
        ));
    }
    let mut scopes = req.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let issued = state
        .tokens
        .issue(&state.pool, &caller.actor(), req.name.trim(), &scopes, expires_at)
        .await
        .map_err(issue_error)?;
    let body = CreatedToken { token: issued.token, record: issued.record.into() };
    // The token is a secret: no cache (browser, proxy) may keep this response.
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], axum::Json(body))
        .into_response())
}

fn issue_error(e: IssueError) -> ApiError {
    match e {
        IssueError::IssuerRevoked => AuthError::Revoked.into(),
        IssueError::OutlivesIssuer(limit) => {
            let limit = limit.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            ApiError::invalid(vec![FieldError::new(
                "expires_in",
                format!("must be given and end no later than {limit}, when the calling token expires"),
            )])
        }
        IssueError::Database(e) => e.into(),
        IssueError::Signing(e) => ApiError::internal(e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTokensQuery {
    /// Include revoked tokens (default false).
    #[serde(default)]
    include_revoked: bool,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List tokens
///
/// Every token's record (never the token itself), in creation order; revoked ones only with
/// `include_revoked=true`.
#[utoipa::path(
    get, path = "/v1/tokens", operation_id = "listTokens", tag = TAG,
    params(ListTokensQuery),
    responses(
        (status = 200, description = "A page of token records (never the tokens)", body = Page<TokenView>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `tokens:admin`", body = Problem),
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListTokensQuery>,
) -> ApiResult<axum::Json<Page<TokenView>>> {
    caller.require(Scope::TokensAdmin)?;
    let limit = pagination::limit(q.limit)?;
    let after = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::tokens::list(&mut conn, after, i64::from(limit) + 1, q.include_revoked).await?;
    let page = pagination::page(rows, limit, CURSOR, |t| t.id);
    Ok(axum::Json(Page::new(page.data.into_iter().map(Into::into).collect(), page.next_cursor)))
}

/// Revoke a token
///
/// Takes effect at once on every replica. Also revokes every token this token created,
/// transitively (their tokens too), in the same transaction, with one audit row per token.
/// Revoking a token that holds `admin`, or that created one, needs `admin`.
#[utoipa::path(
    delete, path = "/v1/tokens/{id}", operation_id = "revokeToken", tag = TAG,
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked, with the tokens it created"),
        (status = 403, description = "Missing scope `tokens:admin`, or the token (or one it created) holds `admin` and the caller does not", body = Problem),
        (status = 404, description = "No such token", body = Problem),
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::TokensAdmin)?;
    let missing = || ApiError::not_found(format!("No token `{id}`."));
    let token_id = Uuid::parse_str(&id).map_err(|_| missing())?;
    let mut tx = state.pool.begin().await?;
    store::tokens::lock_lineage(&mut tx).await?;
    let lineage = store::tokens::lineage(&mut tx, token_id).await?;
    if lineage.is_empty() {
        return Err(missing());
    }
    // `tokens:admin` must not be a way to take out the tokens that administer everything.
    if lineage.iter().any(|t| t.scopes.iter().any(|s| s == Scope::Admin.as_str()))
        && !caller.principal.has(Scope::Admin)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            "This token (or a token it created) holds `admin`; revoking it needs the `admin` scope.",
        ));
    }
    let ids: Vec<Uuid> = lineage.iter().map(|t| t.id).collect();
    let mut revoked: HashMap<Uuid, TokenRow> =
        store::tokens::revoke(&mut tx, &ids).await?.into_iter().map(|t| (t.id, t)).collect();
    for before in lineage {
        // The named token is always recorded (as before); its descendants when this revoked them.
        if before.id != token_id && before.revoked_at.is_some() {
            continue;
        }
        let Some(after) = revoked.remove(&before.id) else { continue };
        let (before, after) = (TokenView::from(before), TokenView::from(after));
        store::audit::record(
            &mut tx,
            &caller.actor(),
            "token.revoke",
            "token",
            &after.id.to_string(),
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    tx.commit().await?;
    for id in ids {
        state.tokens.cache.forget(id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The calling token (who am I)
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentToken {
    pub id: Uuid,
    #[schema(example = "make-production")]
    pub name: String,
    #[schema(example = json!(["clients:read", "workflows:run"]))]
    pub scopes: Vec<Scope>,
    #[serde(with = "crate::domain::timestamp::option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who am I
///
/// The calling token's id, name, scopes and expiry. Needs no particular scope.
#[utoipa::path(
    get, path = "/v1/tokens/current", operation_id = "getCurrentToken", tag = TAG,
    responses((status = 200, description = "The calling token", body = CurrentToken))
)]
async fn current_token(caller: Caller, _: ApiQuery<NoQuery>) -> axum::Json<CurrentToken> {
    let p = caller.principal;
    axum::Json(CurrentToken { id: p.token_id, name: p.name, scopes: p.scopes, expires_at: p.expires_at })
}
