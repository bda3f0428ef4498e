//! The events Switchboard emits (docs/MAKE.md): the one registry of event types,
//! who may read each, subscription patterns, the event as the feed and webhooks
//! show it, and what a delivery attempt saw. No SQL, no HTTP.
//!
//! A new event type is one [`EventType`] variant: the compiler then points at its
//! name and its read scope, and the feed, the subscription check and the spec's
//! list follow from [`EventType::ALL`].

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::scope::Scope;

/// The type of an event: what happened.
// Its string (`as_str`) is what the wire, the feed filter and `engine.events.type` carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "client.created")]
    ClientCreated,
    #[serde(rename = "client.updated")]
    ClientUpdated,
    #[serde(rename = "run.started")]
    RunStarted,
    #[serde(rename = "run.succeeded")]
    RunSucceeded,
    #[serde(rename = "run.failed")]
    RunFailed,
    #[serde(rename = "run.partially_failed")]
    RunPartiallyFailed,
    #[serde(rename = "alert.created")]
    AlertCreated,
    #[serde(rename = "report.ready")]
    ReportReady,
    #[serde(rename = "message.failed")]
    MessageFailed,
}

impl EventType {
    /// Every type, in the order the feed and the docs list them.
    pub const ALL: [EventType; 9] = [
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::RunStarted,
        Self::RunSucceeded,
        Self::RunFailed,
        Self::RunPartiallyFailed,
        Self::AlertCreated,
        Self::ReportReady,
        Self::MessageFailed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientCreated => "client.created",
            Self::ClientUpdated => "client.updated",
            Self::RunStarted => "run.started",
            Self::RunSucceeded => "run.succeeded",
            Self::RunFailed => "run.failed",
            Self::RunPartiallyFailed => "run.partially_failed",
            Self::AlertCreated => "alert.created",
            Self::ReportReady => "report.ready",
            Self::MessageFailed => "message.failed",
        }
    }

    /// The scope that reads what this type carries: `client.*` events hold whole
    /// client records (contacts, notes, accounts), so reading them in the feed or
    /// subscribing an endpoint to them needs `clients:read`, like `GET /v1/clients`;
    /// runs, alerts and reports are workflow output (`workflows:read`). `message.failed`
    /// carries the recipient's number (client contact data), so it needs `clients:read`
    /// like `GET /v1/messages`.
    pub const fn read_scope(self) -> Scope {
        match self {
            Self::ClientCreated | Self::ClientUpdated | Self::MessageFailed => Scope::ClientsRead,
            Self::RunStarted
            | Self::RunSucceeded
            | Self::RunFailed
            | Self::RunPartiallyFailed
            | Self::AlertCreated
            | Self::ReportReady => Scope::WorkflowsRead,
        }
    }

    /// The `run.*` event announcing a run that ended with this status (`None`:
    /// canceled runs, and statuses that do not end a run, announce nothing).
    pub fn run_finished(status: &str) -> Option<Self> {
        match status {
            "succeeded" => Some(Self::RunSucceeded),
            "failed" => Some(Self::RunFailed),
            "partially_failed" => Some(Self::RunPartiallyFailed),
            _ => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown event type `{s}`"))
    }
}

/// Whether a subscription pattern (`*`, `run.*`, `run.failed`) takes this event type.
/// The same rule as the fan-out SQL in `store::events::emit`.
pub fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    pattern == "*"
        || pattern == event_type
        || pattern.strip_suffix('*').is_some_and(|prefix| prefix.ends_with('.') && event_type.starts_with(prefix))
}

/// Checks a pattern: `*`, a known type, or `<prefix>.*` matching at least one known type.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if EventType::ALL.iter().any(|t| pattern_matches(pattern, t.as_str())) {
        Ok(())
    } else {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        Err(format!(
            "`{pattern}` is not an event type or a wildcard of them (known: *, {}, or e.g. run.*)",
            known.join(", ")
        ))
    }
}

/// The known types a list of patterns selects, in [`EventType::ALL`] order.
pub fn expand(patterns: &[String]) -> Vec<EventType> {
    EventType::ALL.into_iter().filter(|t| patterns.iter().any(|p| pattern_matches(p, t.as_str()))).collect()
}

/// An event, as the feed lists it and webhooks receive it: the Standard Webhooks
/// payload (`type`, `timestamp`, `data`) with the event's `id` (also the `webhook-id`
/// header) and `created_at` (the same instant as `timestamp`, kept for older readers).
/// Its schema, one per type, is `events::catalogue::EventSchema`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// UUIDv7: events sort by id in the order they were written. Also the `webhook-id` header.
    pub id: Uuid,
    /// One of `client.created`, `client.updated`, `run.started`, `run.succeeded`, `run.failed`,
    /// `run.partially_failed`, `alert.created`, `report.ready`, `message.failed`.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// The resource as the API shows it (the payload type of its event type).
    pub data: Value,
}

/// The wire form of [`Event`]; `test` only on a test send.
#[derive(Serialize)]
struct Wire<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(with = "crate::domain::timestamp")]
    timestamp: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp")]
    created_at: DateTime<Utc>,
    data: &'a Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

impl Event {
    fn wire(&self, test: bool) -> Wire<'_> {
        Wire {
            id: self.id,
            kind: &self.kind,
            timestamp: self.created_at,
            created_at: self.created_at,
            data: &self.data,
            test,
        }
    }

    /// The exact bytes POSTed to endpoints (and signed).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.wire(false)).unwrap_or_default()
    }

    /// The bytes of a test send (`POST /v1/webhook-endpoints/{id}/test`): the same
    /// event with `"test": true` at the top level.
    pub fn test_body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.wire(true)).unwrap_or_default()
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire(false).serialize(s)
    }
}

/// What one delivery attempt (webhook or run callback) saw.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && self.error.is_none()
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Succeeded,
    /// Try again after this long.
    Retry(Duration),
    /// Out of attempts.
    Failed,
    /// The endpoint answered 410 Gone: disable it.
    Gone,
}

impl Next {
    /// The delivery's stored status after this outcome, and how long until its next attempt.
    pub fn status(self) -> (DeliveryStatus, Duration) {
        match self {
            Next::Succeeded => (DeliveryStatus::Succeeded, Duration::ZERO),
            Next::Retry(after) => (DeliveryStatus::Pending, after),
            Next::Failed | Next::Gone => (DeliveryStatus::Failed, Duration::ZERO),
        }
    }
}

super::names::text_enum! {
    /// Where a delivery stands in the database (`engine.deliveries.status`,
    /// `engine.run_callbacks.status`): `pending` until it succeeds or runs out of attempts.
    pub enum DeliveryStatus {
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

super::names::text_enum! {
    /// A delivery as the API shows it: `pending` (waiting for its next attempt),
    /// `delivering` (a pending delivery whose attempt is in flight, under a worker's lease),
    /// `succeeded` or `failed` (out of attempts, or the endpoint was disabled).
    pub enum DeliveryState {
        Pending = "pending",
        Delivering = "delivering",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl DeliveryState {
    /// A stored status seen with or without a live lease.
    pub fn of(status: DeliveryStatus, leased: bool) -> Self {
        match status {
            DeliveryStatus::Pending if leased => Self::Delivering,
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::Failed => Self::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_delivery_under_a_lease_shows_as_delivering() {
        assert_eq!(DeliveryState::of(DeliveryStatus::Pending, true), DeliveryState::Delivering);
        assert_eq!(DeliveryState::of(DeliveryStatus::Pending, false), DeliveryState::Pending);
        // A finished delivery keeps its status whatever the lease column says.
        assert_eq!(DeliveryState::of(DeliveryStatus::Failed, true), DeliveryState::Failed);
        assert_eq!(DeliveryState::of(DeliveryStatus::Succeeded, true), DeliveryState::Succeeded);
    }

    #[test]
    fn an_outcome_sets_the_stored_status_and_the_wait() {
        let after = Duration::from_secs(30);
        assert_eq!(Next::Retry(after).status(), (DeliveryStatus::Pending, after));
        assert_eq!(Next::Succeeded.status(), (DeliveryStatus::Succeeded, Duration::ZERO));
        assert_eq!(Next::Gone.status(), (DeliveryStatus::Failed, Duration::ZERO));
    }

    #[test]
    fn every_type_has_one_name_on_the_wire_in_the_db_and_in_the_docs() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "client.created",
                "client.updated",
                "run.started",
                "run.succeeded",
                "run.failed",
                "run.partially_failed",
                "alert.created",
                "report.ready",
                "message.failed"
            ]
        );
        for t in EventType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(serde_json::from_value::<EventType>(t.as_str().into()).unwrap(), t);
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            // The documented list in the spec (`Event.type`) names every type.
            assert!(include_str!("events.rs").contains(&format!("`{t}`")), "{t} is not in Event's doc");
        }
    }

    #[test]
    fn client_and_message_events_need_clients_read_and_the_rest_workflows_read() {
        for t in EventType::ALL {
            let personal = t.as_str().starts_with("client.") || t.as_str().starts_with("message.");
            let want = if personal { Scope::ClientsRead } else { Scope::WorkflowsRead };
            assert_eq!(t.read_scope(), want, "{t}");
        }
    }

    #[test]
    fn finished_runs_map_to_their_event() {
        assert_eq!(EventType::run_finished("partially_failed"), Some(EventType::RunPartiallyFailed));
        assert_eq!(EventType::run_finished("succeeded"), Some(EventType::RunSucceeded));
        assert_eq!(EventType::run_finished("failed"), Some(EventType::RunFailed));
        assert_eq!(EventType::run_finished("canceled"), None);
    }

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
        use EventType::*;
        assert_eq!(
            expand(&["run.*".into(), "report.ready".into()]),
            vec![RunStarted, RunSucceeded, RunFailed, RunPartiallyFailed, ReportReady]
        );
    }

    #[test]
    fn events_serialize_the_standard_webhooks_way_with_millisecond_timestamps() {
        let at = DateTime::parse_from_rfc3339("2026-06-15T07:00:03.12Z").unwrap().with_timezone(&Utc);
        let e =
            Event { id: Uuid::nil(), kind: "report.ready".into(), created_at: at, data: serde_json::json!({"a": 1}) };
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["type"], "report.ready");
        assert_eq!(v["timestamp"], "2026-06-15T07:00:03.120Z");
        assert_eq!(v["created_at"], v["timestamp"]);
        assert_eq!(v.as_object().unwrap().len(), 5, "no `test` flag on a real event: {v}");
        assert_eq!(serde_json::to_value(&e).unwrap(), v, "the feed shows what is delivered");
        let test: Value = serde_json::from_slice(&e.test_body()).unwrap();
        assert_eq!(test["test"], true);
        assert_eq!(test.as_object().unwrap().len(), 6);
    }
}
