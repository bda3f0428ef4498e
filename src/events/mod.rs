//! Outbound events (docs/MAKE.md): every event is written to `engine.events` in the
//! same transaction as the change it describes, served as a feed
//! (`GET /v1/events`) and delivered to registered webhook endpoints (Make custom
//! webhooks), signed the Standard Webhooks way, with retries.
//!
//! Fan-out happens in [`emit`] too: one `engine.deliveries` row per matching
//! enabled endpoint, in the same transaction. So an event committed is an event
//! that will be delivered, whatever happens to the process afterwards (the delivery
//! workers find the rows; see [`delivery`]), and an event rolled back leaves nothing.

pub mod callbacks;
pub mod delivery;
pub mod secret;
pub mod ssrf;
pub mod store;

/// Standard Webhooks signing lives with the other keys in `crypto`.
pub use crate::crypto::signing;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::scope::Scope;

/// Event types Switchboard emits.
pub const TYPES: [&str; 8] = [
    "client.created",
    "client.updated",
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.partially_failed",
    "alert.created",
    "report.ready",
];

/// The scope that reads what an event type carries: `client.*` events hold whole
/// client records (contacts, notes, accounts), so reading them in the feed or
/// subscribing an endpoint to them needs `clients:read`, like `GET /v1/clients`;
/// runs, alerts and reports are workflow output (`workflows:read`).
pub fn read_scope(event_type: &str) -> Scope {
    if event_type.starts_with("client.") { Scope::ClientsRead } else { Scope::WorkflowsRead }
}

/// The type of the event `POST /v1/webhook-endpoints/{id}/test` sends (never stored).
pub const TEST_TYPE: &str = "webhook.test";

/// Wakes the delivery workers when an event is written (delivered on commit).
pub const EVENTS_CHANNEL: &str = "switchboard_events";

/// An event, as the feed lists it and webhooks receive it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f", "type": "run.succeeded", "created_at": "2026-06-15T07:00:03.120Z",
    "data": {"id": "0192f0c4-0000-7000-8000-2b8d6a1c3e5f", "workflow": "daily-monitoring", "status": "succeeded"}
}))]
pub struct Event {
    /// UUIDv7: events sort by id in the order they were written. Also the `webhook-id` header.
    pub id: Uuid,
    /// One of `client.created`, `client.updated`, `run.started`, `run.succeeded`, `run.failed`,
    /// `run.partially_failed`, `alert.created`, `report.ready`.
    #[serde(rename = "type")]
    #[schema(example = "run.succeeded")]
    pub kind: String,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    /// The resource as the API shows it (`client.*`: the client; `alert.created`: the alert;
    /// `run.*`: id, workflow, status, trigger, dry_run, params, task counts; `report.ready`:
    /// id, client_id, run_id, kind and period).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl Event {
    /// The exact bytes POSTed to endpoints (and signed).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Appends an event to the outbox, with a delivery for every enabled endpoint
/// subscribed to its type; call inside the transaction of the change.
pub async fn emit(conn: &mut PgConnection, event_type: &str, data: &impl Serialize) -> Result<Uuid, sqlx::Error> {
    debug_assert!(TYPES.contains(&event_type), "unknown event type {event_type}");
    let id = Uuid::now_v7();
    let data: Value = serde_json::to_value(data).unwrap_or(Value::Null);
    sqlx::query("INSERT INTO engine.events (id, type, data) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(event_type)
        .bind(&data)
        .execute(&mut *conn)
        .await?;
    let fanned = sqlx::query(
        "INSERT INTO engine.deliveries (id, event_id, endpoint_id)
         SELECT gen_random_uuid(), $1, e.id FROM engine.webhook_endpoints e
         WHERE e.enabled
           AND EXISTS (SELECT 1 FROM unnest(e.events) p
                       WHERE p = '*' OR p = $2 OR (right(p, 2) = '.*' AND starts_with($2, left(p, -1))))",
    )
    .bind(id)
    .bind(event_type)
    .execute(&mut *conn)
    .await?;
    if fanned.rows_affected() > 0 {
        wake_deliverers(conn, id).await?;
    }
    Ok(id)
}

/// Wakes the delivery workers when the transaction commits (they poll otherwise).
pub(crate) async fn wake_deliverers(conn: &mut PgConnection, about: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(about.to_string()).execute(conn).await?;
    Ok(())
}

/// Whether a subscription pattern (`*`, `run.*`, `run.failed`) takes this event type.
/// The same rule as the SQL in [`emit`].
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    pattern == "*"
        || pattern == event_type
        || pattern.strip_suffix('*').is_some_and(|prefix| prefix.ends_with('.') && event_type.starts_with(prefix))
}

/// Checks a pattern: `*`, a known type, or `<prefix>.*` matching at least one known type.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if TYPES.iter().any(|t| pattern_matches(pattern, t)) {
        Ok(())
    } else {
        Err(format!(
            "`{pattern}` is not an event type or a wildcard of them (known: *, {}, or e.g. run.*)",
            TYPES.join(", ")
        ))
    }
}

/// The known types a list of patterns selects, in [`TYPES`] order.
pub fn expand(patterns: &[String]) -> Vec<&'static str> {
    TYPES.into_iter().filter(|t| patterns.iter().any(|p| pattern_matches(p, t))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_by_prefix_only_at_a_dot() {
        assert!(pattern_matches("*", "alert.created"));
        assert!(pattern_matches("run.*", "run.partially_failed"));
        assert!(pattern_matches("run.failed", "run.failed"));
        assert!(!pattern_matches("run.failed", "run.partially_failed"));
        assert!(!pattern_matches("ru*", "run.failed"));
        assert!(!pattern_matches("client.*", "run.started"));
    }

    #[test]
    fn patterns_must_select_known_types() {
        for ok in ["*", "run.*", "client.created", "report.ready"] {
            assert!(check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["", "run", "run.", "runs.*", "client.deleted", "ru*", "*.created"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert_eq!(
            expand(&["run.*".into(), "report.ready".into()]),
            vec!["run.started", "run.succeeded", "run.failed", "run.partially_failed", "report.ready"]
        );
    }

    #[test]
    fn events_serialize_with_type_and_millisecond_timestamps() {
        let at = DateTime::parse_from_rfc3339("2026-06-15T07:00:03.12Z").unwrap().with_timezone(&Utc);
        let e =
            Event { id: Uuid::nil(), kind: "report.ready".into(), created_at: at, data: serde_json::json!({"a": 1}) };
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["type"], "report.ready");
        assert_eq!(v["created_at"], "2026-06-15T07:00:03.120Z");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
}
