//! What each event type carries: its payload type (`data`), its schemas in the spec
//! (`Event`, one `…Event` per type, and the `webhooks` section built from them) and a
//! realistic sample (`POST /v1/webhook-endpoints/{id}/test`), all from one exhaustive
//! `match` on [`EventType`], so a new type does not compile until it has them.
//!
//! The payloads are the very types the emitters serialise: `client.*` a [`Client`],
//! `run.*` a [`RunEvent`], `alert.created` an [`Alert`], `report.ready` a
//! [`ReportReady`], `message.failed` a [`Message`].

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, schema::Schema},
};
use uuid::Uuid;

use crate::{
    domain::{
        client::{Accounts, Client, ClientStatus, Contact, Targets},
        events::{Event, EventType},
        report::ReportReady,
    },
    store::{
        alerts::{Alert, AlertStatus, Severity},
        event_payloads::RunEvent,
        messages::{Message, MessageKind, MessageStatus},
        runs::{RunStatus, RunTrigger, TaskCounts},
    },
};

type Schemas = Vec<(String, RefOr<Schema>)>;

/// The payload type of one event type, as the spec and the checks need it.
pub struct Payload {
    /// Its schema's name in `components.schemas` (e.g. `Client`).
    pub schema_name: Cow<'static, str>,
    /// Its schema and those it refers to.
    schemas: fn(&mut Schemas),
    /// Reads `data` back as this type: `Err` when it is not one.
    pub check: fn(&Value) -> Result<(), serde_json::Error>,
    /// A realistic `data` of this type.
    sample: Value,
}

impl Payload {
    fn of<T: ToSchema + Serialize + DeserializeOwned>(sample: T) -> Self {
        Self {
            schema_name: T::name(),
            schemas: |out| {
                out.push((T::name().into_owned(), T::schema()));
                T::schemas(out);
            },
            check: |data| serde_json::from_value::<T>(data.clone()).map(|_| ()),
            sample: serde_json::to_value(sample).expect("a payload serialises"),
        }
    }
}

/// What `data` an event of this type carries.
pub fn payload(t: EventType) -> Payload {
    match t {
        EventType::ClientCreated | EventType::ClientUpdated => Payload::of(sample_client(t)),
        EventType::RunStarted => Payload::of(sample_run(RunStatus::Running)),
        EventType::RunSucceeded => Payload::of(sample_run(RunStatus::Succeeded)),
        EventType::RunFailed => Payload::of(sample_run(RunStatus::Failed)),
        EventType::RunPartiallyFailed => Payload::of(sample_run(RunStatus::PartiallyFailed)),
        EventType::AlertCreated => Payload::of(sample_alert()),
        EventType::ReportReady => Payload::of(sample_report()),
        EventType::MessageFailed => Payload::of(sample_message()),
    }
}

/// A sample event of this type, happening now, with a fresh id: the shape a real one has.
pub fn sample(t: EventType) -> Event {
    Event { id: Uuid::now_v7(), kind: t.as_str().to_string(), created_at: Utc::now(), data: payload(t).sample }
}

/// The name of the schema of a whole event of this type: `client.created` → `ClientCreatedEvent`.
pub fn event_schema_name(t: EventType) -> String {
    let words = t.as_str().split(['.', '_']);
    let mut name: String = words
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    name.push_str("Event");
    name
}

fn reference(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// The schema of one type's events: the envelope with `type` fixed and `data` typed.
fn event_schema(t: EventType) -> RefOr<Schema> {
    let payload = payload(t);
    let example = serde_json::to_value(sample_at(t, fixed_time())).expect("an event serialises");
    let schema = json!({
        "type": "object",
        "description": format!(
            "A `{t}` event (Standard Webhooks payload: `type`, `timestamp`, `data`). `data` is {}.",
            data_description(t)
        ),
        "required": ["id", "type", "timestamp", "created_at", "data"],
        "properties": {
            "id": {"type": "string", "format": "uuid",
                "description": "UUIDv7: events sort by id in the order they were written. Also the `webhook-id` header."},
            "type": {"type": "string", "enum": [t.as_str()]},
            "timestamp": {"type": "string", "format": "date-time",
                "description": "When it happened (RFC 3339, UTC, milliseconds)."},
            "created_at": {"type": "string", "format": "date-time", "description": "The same instant as `timestamp`."},
            "data": {"$ref": reference(&payload.schema_name)},
            "test": {"type": "boolean",
                "description": "Present, and `true`, only on a sample sent by `POST /v1/webhook-endpoints/{id}/test`."},
        },
        "example": example,
    });
    serde_json::from_value(schema).expect("a valid schema")
}

fn data_description(t: EventType) -> &'static str {
    match t {
        EventType::ClientCreated => "the client as created",
        EventType::ClientUpdated => "the client after the change",
        EventType::RunStarted => "the run as it starts (`tasks` is `null`)",
        EventType::RunSucceeded | EventType::RunFailed | EventType::RunPartiallyFailed => {
            "the run as it ended, with its task counts"
        }
        EventType::AlertCreated => "the new alert",
        EventType::ReportReady => "the report's identity and period (read it with `GET /v1/reports/{id}`)",
        EventType::MessageFailed => {
            "the message as `GET /v1/messages` lists it, with the vendor's error code and title"
        }
    }
}

/// `Event` in the spec: one of the per-type event schemas, told apart by `type`.
pub struct EventSchema;

impl PartialSchema for EventSchema {
    fn schema() -> RefOr<Schema> {
        let branches: Vec<Value> =
            EventType::ALL.iter().map(|t| json!({"$ref": reference(&event_schema_name(*t))})).collect();
        let mapping: serde_json::Map<String, Value> =
            EventType::ALL.iter().map(|t| (t.as_str().to_string(), json!(reference(&event_schema_name(*t))))).collect();
        serde_json::from_value(json!({
            "oneOf": branches,
            "discriminator": {"propertyName": "type", "mapping": mapping},
            "description": "An event, as the feed lists it and webhooks receive it: `{id, type, timestamp, created_at, data}`, \
`data` typed by `type`.",
        }))
        .expect("a valid schema")
    }
}

impl ToSchema for EventSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Event")
    }

    fn schemas(out: &mut Schemas) {
        for t in EventType::ALL {
            out.push((event_schema_name(t), event_schema(t)));
            (payload(t).schemas)(out);
        }
    }
}

// ---------------------------------------------------------------- samples

/// Samples in the spec are fixed, so the committed document does not change at each generation.
fn fixed_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-15T07:00:03.120Z").expect("a timestamp").with_timezone(&Utc)
}

fn sample_at(t: EventType, at: DateTime<Utc>) -> Event {
    let id = Uuid::parse_str("0192f0c4-5d7e-7c1a-9f4e-2b8d6a1c3e5f").expect("a uuid");
    Event { id, kind: t.as_str().to_string(), created_at: at, data: payload(t).sample }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0192f0c4_0000_7000_8000_000000000000 | n)
}

fn sample_client(t: EventType) -> Client {
    let at = fixed_time();
    Client {
        id: id(1),
        slug: "acme-coffee".into(),
        name: "Acme Coffee".into(),
        industry: Some("Food & beverage".into()),
        status: ClientStatus::Active,
        timezone: "America/Sao_Paulo".into(),
        currency: "BRL".into(),
        accounts: Accounts {
            meta: Some("act_1234567890".into()),
            google_ads: Some("1234567890".into()),
            whatsapp: Some("+5511999990000".into()),
            ..Accounts::default()
        },
        budgets: [("meta".to_string(), 12000.0), ("google_ads".to_string(), 8000.0)].into_iter().collect(),
        targets: Targets { cpa: Some(45.0), roas: Some(3.5), max_daily_spend: Some(900.0) },
        contacts: vec![Contact {
            name: "Ana Souza".into(),
            email: Some("ana@example.com".into()),
            phone: Some("+5511999990000".into()),
            role: Some("Marketing manager".into()),
        }],
        notes: Some("Prefers WhatsApp for reports.".into()),
        created_at: at - TimeDelta::days(30),
        updated_at: if t == EventType::ClientCreated { at - TimeDelta::days(30) } else { at },
    }
}

fn sample_run(status: RunStatus) -> RunEvent {
    let at = fixed_time();
    let started = at - TimeDelta::seconds(3);
    let finished = !status.is_open();
    let tasks = match status {
        RunStatus::Succeeded => TaskCounts { succeeded: 3, ..TaskCounts::default() },
        RunStatus::Failed => TaskCounts { failed: 3, ..TaskCounts::default() },
        _ => TaskCounts { succeeded: 2, failed: 1, ..TaskCounts::default() },
    };
    RunEvent {
        id: id(2),
        workflow: "daily-monitoring".into(),
        workflow_version: 1,
        status,
        trigger: RunTrigger::Schedule,
        dry_run: false,
        params: json!({"day": "2026-06-14"}),
        schedule_id: Some(id(3)),
        created_at: started,
        started_at: Some(started),
        finished_at: finished.then_some(at),
        tasks: finished.then_some(tasks),
    }
}

fn sample_alert() -> Alert {
    Alert {
        id: id(4),
        client_id: id(1),
        run_id: Some(id(2)),
        kind: "spend_anomaly".into(),
        severity: Severity::Warning,
        subject: "meta".into(),
        day: NaiveDate::from_ymd_opt(2026, 6, 14).expect("a date"),
        message: "Meta spend on 2026-06-14 was 812.40 BRL, 2.1× the 7-day average (386.10)".into(),
        data: json!({"platform": "meta", "spend": 812.4, "trailing_average": 386.1, "ratio": 2.1, "currency": "BRL"}),
        status: AlertStatus::Open,
        created_at: fixed_time(),
        acknowledged_at: None,
        resolved_at: None,
    }
}

fn sample_report() -> ReportReady {
    let report = id(5);
    let base = "https://switchboard.example.com";
    ReportReady {
        id: report,
        client_id: id(1),
        run_id: Some(id(2)),
        kind: "weekly-report".into(),
        period_start: NaiveDate::from_ymd_opt(2026, 6, 8).expect("a date"),
        period_end: NaiveDate::from_ymd_opt(2026, 6, 14).expect("a date"),
        pdf_url: Some(format!("{base}/v1/reports/{report}?format=pdf")),
        html_url: Some(format!("{base}/v1/reports/{report}?format=html")),
        drive_file_id: Some("1Zx9bQ3kT0pLmN4oR7sU2vW5yA8cE6gI".into()),
        drive_url: Some("https://drive.google.com/file/d/1Zx9bQ3kT0pLmN4oR7sU2vW5yA8cE6gI/view?usp=drivesdk".into()),
        drive_skipped: None,
    }
}

fn sample_message() -> Message {
    let at = fixed_time();
    Message {
        id: id(6),
        wamid: "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABEYEjgxQkVF".into(),
        client_id: Some(id(1)),
        recipient: "5511999990000".into(),
        kind: MessageKind::Template,
        template: Some("switchboard_daily_digest".into()),
        status: MessageStatus::Failed,
        error_code: Some("131026".into()),
        error_title: Some("Message undeliverable".into()),
        run_id: Some(id(2)),
        task_id: Some(id(7)),
        report_id: None,
        created_at: at - TimeDelta::seconds(2),
        status_at: Some(at),
        updated_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_reads_back_as_its_types_payload() {
        for t in EventType::ALL {
            let event = sample(t);
            let body: Value = serde_json::from_slice(&event.test_body()).unwrap();
            assert_eq!(body["type"], t.as_str());
            (payload(t).check)(&body["data"]).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
    }

    #[test]
    fn a_payload_of_another_type_is_not_read_as_this_one() {
        let alert = sample(EventType::AlertCreated).data;
        assert!((payload(EventType::ReportReady).check)(&alert).is_err());
        assert!((payload(EventType::RunFailed).check)(&alert).is_err());
        assert!((payload(EventType::ClientCreated).check)(&alert).is_err());
    }

    #[test]
    fn every_type_has_its_own_event_schema_and_an_entry_in_the_mapping() {
        let mut schemas = vec![];
        EventSchema::schemas(&mut schemas);
        let event = serde_json::to_value(EventSchema::schema()).unwrap();
        for t in EventType::ALL {
            let name = event_schema_name(t);
            assert_eq!(event["discriminator"]["mapping"][t.as_str()], reference(&name), "{t}");
            let (_, schema) = schemas.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no {name}"));
            let schema = serde_json::to_value(schema).unwrap();
            assert_eq!(schema["properties"]["type"]["enum"], json!([t.as_str()]));
            assert_eq!(schema["properties"]["data"]["$ref"], reference(&payload(t).schema_name));
            assert!(schemas.iter().any(|(n, _)| *n == payload(t).schema_name), "{t}: no payload schema");
        }
        assert_eq!(event["oneOf"].as_array().unwrap().len(), EventType::ALL.len());
        assert_eq!(event_schema_name(EventType::RunPartiallyFailed), "RunPartiallyFailedEvent");
    }
}
