//! `/v1/audit-log`: the append-only record of every change, newest first.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::ApiQuery,
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::scope::Scope,
    store::{self, audit::AuditFilter},
};

pub const TAG: &str = "audit";
const CURSOR: &str = "audit";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_log))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// Token id; `null` for changes made from the command line.
    pub token_id: Option<Uuid>,
    #[schema(example = "make-production")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(example = 1042)]
    pub id: i64,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub at: DateTime<Utc>,
    pub actor: AuditActor,
    #[schema(example = "client.update")]
    pub action: String,
    #[schema(example = "client")]
    pub resource_type: String,
    pub resource_id: String,
    pub request_id: Option<String>,
    /// The resource before the change (`null` on create).
    pub before: Option<serde_json::Value>,
    /// The resource after the change (`null` on delete).
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// e.g. `client`, `knowledge_entry`, `token`.
    resource_type: Option<String>,
    resource_id: Option<String>,
    /// Token id or token name.
    actor: Option<String>,
    /// From this time (inclusive, RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Until this time (exclusive, RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Read the audit log
///
/// Every change, newest first: who (token), what (action, resource), when, the
/// request id, and the resource before and after. Secrets never appear.
#[utoipa::path(
    get, path = "/v1/audit-log", operation_id = "listAuditLog", tag = TAG,
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit entries", body = Page<AuditEntry>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `audit:read`", body = Problem),
    )
)]
async fn list_audit_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    caller.require(Scope::AuditRead)?;
    let limit = pagination::limit(q.limit)?;
    let before = match pagination::given(q.cursor.as_deref()) {
        Some(c) => Some(pagination::decode(CURSOR, c)?.parse::<i64>().map_err(|_| bad_cursor())?),
        None => None,
    };
    let filter = AuditFilter {
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        actor: q.actor,
        from: q.from,
        to: q.to,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = store::audit::list(&mut conn, &filter, before, i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, CURSOR, |r| r.id);
    let data = page
        .data
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: AuditActor { token_id: r.actor_id, name: r.actor_name },
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            request_id: r.request_id,
            before: r.before,
            after: r.after,
        })
        .collect();
    Ok(axum::Json(Page::new(data, page.next_cursor)))
}

fn bad_cursor() -> ApiError {
    pagination::decode(CURSOR, "").unwrap_err()
}
