//! `GET /v1/events`: the outbox as a feed, oldest first, for Make polling triggers.

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::ApiQuery,
    pagination,
};
use crate::{
    api::AppState,
    domain::{
        events::{self, Event, EventType},
        scope::Scope,
    },
    store,
};

pub const TAG: &str = "events";

/// Events younger than this are not listed yet: an event's id is taken before its
/// transaction commits, so a slower transaction can commit an event with a smaller
/// id a moment later; holding the newest second back keeps `after` from skipping it.
pub const SETTLE: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events newer than this id. Oldest first: the `last_id` of the previous answer (omit to
    /// start from the oldest). Newest first: the newest id you already have (the feed stops there).
    after: Option<String>,
    /// Only events older than this id. Newest first: the `last_id` of the previous answer, for the
    /// next (older) page.
    before: Option<String>,
    /// `asc` (default: oldest first) or `desc` (newest first, for polling triggers such as Make's).
    order: Option<FeedOrder>,
    /// Comma-separated types, with wildcards: e.g. `run.*,alert.created`. Default: every type.
    types: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
}

/// The feed's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedOrder {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventFeed {
    /// Oldest first, or newest first with `order=desc`.
    #[schema(value_type = Vec<crate::events::catalogue::EventSchema>)]
    pub data: Vec<Event>,
    /// The id of the last event here. Oldest first: pass it as `after` next time (it is the `after`
    /// you sent when there is nothing new; `null` only when there are no events at all yet).
    /// Newest first: pass it as `before` for the next, older page (`null` on an empty page).
    pub last_id: Option<Uuid>,
    /// More events are waiting: ask again right away.
    pub has_more: bool,
}

/// List events
///
/// The events also delivered to webhook endpoints (`{id, type, timestamp, created_at, data}`),
/// oldest first, for polling: keep `last_id` and send it as `after` on the next call. With
/// `order=desc` the newest come first (Make's polling triggers): send the newest id you have as
/// `after` to stop there, and page older with `before` = `last_id`.
/// Events become visible about a second after they happen. Each type needs the scope
/// that reads what it carries: `client.*` and `message.failed` events need `clients:read`; `run.*`,
/// `alert.created` and `report.ready` need `workflows:read`. Without `types`, the feed
/// lists the types the token may read; naming a type it may not read is 403.
#[utoipa::path(
    get, path = "/v1/events", operation_id = "listEvents", tag = TAG,
    params(EventsQuery),
    responses(
        (status = 200, description = "Events between `after` and `before`, oldest first (`order=desc`: newest first)", body = EventFeed,
            example = json!({"data": [{"id": "0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f", "type": "alert.created", "timestamp": "2026-06-15T07:00:03.120Z", "created_at": "2026-06-15T07:00:03.120Z",
                "data": {"id": "0192f0c4-0000-7000-8000-000000000004", "client_id": "0192f0c4-0000-7000-8000-000000000001",
                    "run_id": "0192f0c4-0000-7000-8000-000000000002", "day": "2026-06-14", "kind": "spend_anomaly",
                    "severity": "warning", "subject": "meta", "status": "open",
                    "message": "Meta spend on 2026-06-14 was 812.40 BRL, 2.1× the 7-day average (386.10)",
                    "data": {"platform": "meta", "spend": 812.4, "trailing_average": 386.1, "ratio": 2.1, "currency": "BRL"},
                    "created_at": "2026-06-15T07:00:03.120Z", "acknowledged_at": null, "resolved_at": null}}],
                "last_id": "0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f", "has_more": false})),
        (status = 400, description = "Bad query parameter (after, before, order, types, limit)", body = Problem),
        (status = 403, description = "Missing scope: `workflows:read` or `clients:read`, as the requested types need", body = Problem),
    )
)]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<axum::Json<EventFeed>> {
    let limit = pagination::limit(q.limit)?;
    let after = event_id("after", q.after.as_deref())?;
    let before = event_id("before", q.before.as_deref())?;
    let types = readable_types(&caller, q.types.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let newest_first = q.order.unwrap_or_default() == FeedOrder::Desc;
    let upper = before.map_or(horizon(), |before| before.min(horizon()));
    let mut rows = store::events::feed(&mut conn, after, upper, &types, i64::from(limit) + 1, newest_first).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let last_id = match rows.last() {
        Some(last) => Some(last.id),
        None if newest_first => None,
        None => after,
    };
    Ok(axum::Json(EventFeed { data: rows, last_id, has_more }))
}

/// An event id from the query (`after`, `before`): empty means none; anything else must be a UUID.
fn event_id(field: &'static str, raw: Option<&str>) -> ApiResult<Option<Uuid>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Uuid::parse_str(raw).map(Some).map_err(|_| {
            ApiError::bad_request("invalid_query", format!("{field}: must be the id of an event (a UUID)"))
                .with_field(field, "must be the id of an event (a UUID)")
        }),
        None => Ok(None),
    }
}

/// The known types a `types` parameter selects (`None`: every type); 400 naming
/// `types` for anything unknown.
fn parse_types(raw: &str) -> ApiResult<Option<Vec<EventType>>> {
    let patterns: Vec<String> = raw.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
    if let Some(message) = patterns.iter().find_map(|p| events::check_pattern(p).err()) {
        return Err(ApiError::bad_request("invalid_query", format!("types: {message}")).with_field("types", message));
    }
    Ok((!patterns.is_empty()).then(|| events::expand(&patterns)))
}

/// The types to list: those asked for (every type when `types` is absent) that the
/// caller may read. Asking for a type the token may not read is 403 naming its scope;
/// without `types`, unreadable types are left out (403 when nothing is left).
fn readable_types(caller: &Caller, raw: Option<&str>) -> ApiResult<Vec<EventType>> {
    let asked = match raw {
        Some(raw) => parse_types(raw)?,
        None => None,
    };
    if let Some(asked) = &asked
        && let Some(denied) = asked.iter().find(|t| !caller.principal.has(t.read_scope()))
    {
        return Err(ApiError::forbidden_scope(denied.read_scope()));
    }
    let readable: Vec<EventType> = asked
        .unwrap_or_else(|| EventType::ALL.to_vec())
        .into_iter()
        .filter(|t| caller.principal.has(t.read_scope()))
        .collect();
    if readable.is_empty() {
        return Err(ApiError::forbidden_scope(Scope::WorkflowsRead));
    }
    Ok(readable)
}

/// The smallest UUIDv7 of the instant [`SETTLE`] ago: only events before it are listed.
fn horizon() -> Uuid {
    let ms = (chrono::Utc::now() - SETTLE).timestamp_millis().max(0) as u128;
    Uuid::from_u128((ms << 80) | (0x7 << 76) | (0b10 << 62))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_sorts_between_older_and_newer_events() {
        let old = Uuid::now_v7();
        std::thread::sleep(SETTLE + Duration::from_millis(5));
        let h = horizon();
        assert_eq!(h.get_version_num(), 7);
        assert!(old < h);
        assert!(h < Uuid::now_v7());
    }
}
