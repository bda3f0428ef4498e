//! What the API answers when a statement breaks a unique or foreign-key constraint:
//! one row per constraint the migrations declare, by the name Postgres reports
//! (the default `<table>_pkey`, `<table>_<columns>_key`, `<table>_<columns>_fkey` where a
//! migration does not name it). A test keeps the table and the migrations in step, so
//! a new constraint cannot ship without a decision here.
//!
//! Every answer is a 409: the request was well formed but collides with what is stored
//! (a taken slug, a client deleted while the request ran). A reference taken from a
//! request body would answer 422 naming that field; none exists yet.

/// Which rule a statement broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// SQLSTATE 23505: a unique constraint, primary key or unique index.
    Unique,
    /// SQLSTATE 23503: a foreign key (all of ours cascade or set null on delete, so only
    /// an insert or update that points at a missing row can break one).
    ForeignKey,
}

/// The caller's view of a broken constraint: a stable code, a sentence, and the field at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub code: &'static str,
    pub detail: &'static str,
    /// The field named in the problem's `errors`, and what is wrong with it.
    pub field: Option<(&'static str, &'static str)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constraint {
    pub name: &'static str,
    pub rule: Rule,
    pub answer: Answer,
}

/// A row that can only collide through a race or a bug (ids are generated, upserts
/// handle their own conflicts): the answer the API always gave for these.
const EXISTS: Answer = Answer { code: "conflict", detail: "The resource already exists.", field: None };

const SLUG_TAKEN: Answer = Answer {
    code: "slug_taken",
    detail: "Another client already has this slug.",
    field: Some(("slug", "is already taken; choose another")),
};

/// The client a request names (by path) was hard-deleted between its lookup and its write.
const CLIENT_DELETED: Answer = Answer {
    code: "client_deleted",
    detail: "The client was deleted while this request ran.",
    field: Some(("client", "was deleted while this request ran")),
};

/// A run, schedule, event, webhook endpoint or delivery deleted under a background
/// writer (no request names these references).
const REFERENCE_GONE: Answer = Answer {
    code: "conflict",
    detail: "Something this change refers to was deleted meanwhile; try again.",
    field: None,
};

const fn unique(name: &'static str, answer: Answer) -> Constraint {
    Constraint { name, rule: Rule::Unique, answer }
}

const fn foreign_key(name: &'static str, answer: Answer) -> Constraint {
    Constraint { name, rule: Rule::ForeignKey, answer }
}

/// Every unique and foreign-key constraint of the schema, by schema and table.
pub const CONSTRAINTS: &[Constraint] = &[
    // knowledge
    unique("clients_pkey", EXISTS),
    unique("clients_slug_key", SLUG_TAKEN),
    unique("entries_pkey", EXISTS),
    foreign_key("entries_client_id_fkey", CLIENT_DELETED),
    // Two PUTs racing for the same next version; POST answers `template_exists` itself.
    unique("prompt_templates_pkey", EXISTS),
    // auth, audit
    unique("api_tokens_pkey", EXISTS),
    unique("log_pkey", EXISTS),
    // costs
    unique("daily_metrics_pkey", EXISTS),
    foreign_key("daily_metrics_client_id_fkey", CLIENT_DELETED),
    unique("llm_usage_pkey", EXISTS),
    foreign_key("llm_usage_client_id_fkey", CLIENT_DELETED),
    unique("platform_calls_pkey", EXISTS),
    foreign_key("platform_calls_client_id_fkey", CLIENT_DELETED),
    // engine: idempotency, runs and their tasks, effects, schedules
    unique("idempotency_keys_pkey", EXISTS),
    unique("runs_pkey", EXISTS),
    unique("tasks_pkey", EXISTS),
    unique("tasks_run_client_key", EXISTS),
    foreign_key("tasks_run_id_fkey", REFERENCE_GONE),
    unique("effects_pkey", EXISTS),
    foreign_key("effects_run_id_fkey", REFERENCE_GONE),
    unique("schedules_pkey", EXISTS),
    unique("schedule_firings_pkey", EXISTS),
    foreign_key("schedule_firings_schedule_id_fkey", REFERENCE_GONE),
    unique("run_callbacks_pkey", EXISTS),
    // Written with ON CONFLICT DO NOTHING: never answered.
    unique("drive_folder_ids_pkey", EXISTS),
    foreign_key("run_callbacks_run_id_fkey", REFERENCE_GONE),
    // engine: alerts, reports, inbound messages
    unique("alerts_pkey", EXISTS),
    unique("alerts_dedupe_key", EXISTS),
    foreign_key("alerts_client_id_fkey", CLIENT_DELETED),
    unique("reports_pkey", EXISTS),
    foreign_key("reports_client_id_fkey", CLIENT_DELETED),
    unique("inbound_messages_pkey", EXISTS),
    // engine: outbound WhatsApp messages (the wamid comes from Meta, once per message)
    unique("whatsapp_messages_pkey", EXISTS),
    unique("whatsapp_messages_wamid_key", EXISTS),
    foreign_key("whatsapp_messages_client_id_fkey", CLIENT_DELETED),
    // engine: the event outbox, webhook endpoints and deliveries
    unique("events_pkey", EXISTS),
    unique("webhook_endpoints_pkey", EXISTS),
    unique("deliveries_pkey", EXISTS),
    unique("deliveries_event_endpoint_key", EXISTS),
    foreign_key("deliveries_event_id_fkey", REFERENCE_GONE),
    foreign_key("deliveries_endpoint_id_fkey", REFERENCE_GONE),
    unique("delivery_attempts_pkey", EXISTS),
    foreign_key("delivery_attempts_delivery_id_fkey", REFERENCE_GONE),
    // engine: shared limits and pauses (written with ON CONFLICT: never answered)
    unique("rate_limits_pkey", EXISTS),
    unique("limit_pauses_pkey", EXISTS),
    // engine: worker heartbeats (written with ON CONFLICT: never answered)
    unique("workers_pkey", EXISTS),
];

/// The row for a constraint, if the table has one.
pub fn lookup(name: &str, rule: Rule) -> Option<&'static Constraint> {
    CONSTRAINTS.iter().find(|c| c.name == name && c.rule == rule)
}

/// The rule `e` broke and the constraint's name, if it is a unique or foreign-key violation.
pub fn violated(e: &sqlx::Error) -> Option<(Rule, &str)> {
    let sqlx::Error::Database(db) = e else { return None };
    let rule = match db.code().as_deref() {
        Some("23505") => Rule::Unique,
        Some("23503") => Rule::ForeignKey,
        _ => return None,
    };
    Some((rule, db.constraint().unwrap_or_default()))
}

/// What to answer for `e`, if it broke a unique or foreign-key constraint. A constraint
/// missing from the table (which the tests forbid) gets its rule's generic answer.
pub fn answer(e: &sqlx::Error) -> Option<Answer> {
    let (rule, name) = violated(e)?;
    Some(match lookup(name, rule) {
        Some(c) => c.answer,
        None => match rule {
            Rule::Unique => EXISTS,
            Rule::ForeignKey => REFERENCE_GONE,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::schema::Schema;

    #[test]
    fn every_unique_and_foreign_key_constraint_of_the_migrations_has_an_answer() {
        let declared: BTreeSet<(String, Rule)> = Schema::from_migrations().keys().into_iter().collect();
        let missing: Vec<_> = declared.iter().filter(|(name, rule)| lookup(name, *rule).is_none()).collect();
        assert!(missing.is_empty(), "add these to store::constraints::CONSTRAINTS: {missing:?}");
        let stale: Vec<_> =
            CONSTRAINTS.iter().filter(|c| !declared.contains(&(c.name.to_string(), c.rule))).map(|c| c.name).collect();
        assert!(stale.is_empty(), "no migration declares these any more: {stale:?}");
    }

    #[test]
    fn a_name_has_one_row() {
        // Postgres reports the constraint's name without its schema or table: a name used
        // twice could not tell the two apart.
        let mut seen = BTreeSet::new();
        for c in CONSTRAINTS {
            assert!(seen.insert(c.name), "`{}` is listed twice", c.name);
        }
    }

    #[test]
    fn the_slug_and_deleted_client_answers_name_their_field() {
        assert_eq!(lookup("clients_slug_key", Rule::Unique).unwrap().answer.field.unwrap().0, "slug");
        assert_eq!(lookup("entries_client_id_fkey", Rule::ForeignKey).unwrap().answer.field.unwrap().0, "client");
        assert!(lookup("clients_slug_key", Rule::ForeignKey).is_none(), "the rule is part of the key");
    }
}
