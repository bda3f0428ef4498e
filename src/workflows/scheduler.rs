//! Schedules: cron expressions (croner) with IANA time zones, fired exactly once
//! per slot however many scheduler replicas run. Each replica takes a due
//! schedule with `FOR UPDATE SKIP LOCKED`, records the slot in
//! `engine.schedule_firings` (primary key (schedule, fire time)) and creates the
//! run in the same transaction, then moves `next_fire_at` past now. Misfire
//! policy: after downtime a schedule fires once (recorded under the first missed
//! slot), not once per missed slot.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use croner::Cron;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use super::{Registry, Runtime, runs};
use crate::store::{self, audit::Actor, runs::RunTrigger};

/// Parses a cron expression (5 fields, or 6 with seconds).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let mut cron = Cron::new(expr.trim());
    cron.with_seconds_optional();
    cron.parse().map_err(|e| format!("not a valid cron expression: {e}"))
}

pub fn parse_timezone(tz: &str) -> Result<chrono_tz::Tz, String> {
    chrono_tz::Tz::from_str(tz).map_err(|_| "must be an IANA time zone (e.g. Europe/Lisbon, UTC)".to_string())
}

/// The first slot strictly after `after`, in the schedule's time zone.
pub fn next_after(expr: &str, tz: &str, after: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let cron = parse_cron(expr)?;
    let tz = parse_timezone(tz)?;
    let local = after.with_timezone(&tz);
    cron.find_next_occurrence(&local, false)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("no next occurrence: {e}"))
}

/// The least time between two firings of a schedule: workflows call paid platforms
/// for every client, so a schedule runs at most every 5 minutes (decision 0013).
pub const MIN_INTERVAL_MINUTES: i64 = 5;
/// How many consecutive firings, within how many days, [`check_interval`] looks at.
const INTERVAL_SAMPLE: usize = 1_000;
const INTERVAL_WINDOW_DAYS: i64 = 400;

/// Refuses an expression that fires twice within [`MIN_INTERVAL_MINUTES`]. Cron fields
/// repeat by the hour, day and year, so the gaps between the next firings (up to
/// [`INTERVAL_SAMPLE`], within [`INTERVAL_WINDOW_DAYS`]) show any close pair.
pub fn check_interval(expr: &str, tz: &str, after: DateTime<Utc>) -> Result<(), String> {
    let cron = parse_cron(expr)?;
    let tz = parse_timezone(tz)?;
    let floor = chrono::TimeDelta::minutes(MIN_INTERVAL_MINUTES);
    let end = after + chrono::TimeDelta::days(INTERVAL_WINDOW_DAYS);
    let mut previous: Option<DateTime<Utc>> = None;
    for at in cron
        .iter_after(after.with_timezone(&tz))
        .take(INTERVAL_SAMPLE)
        .map(|t| t.with_timezone(&Utc))
        .take_while(|t| *t < end)
    {
        if let Some(before) = previous
            && at - before < floor
        {
            return Err(format!(
                "fires more often than once every {MIN_INTERVAL_MINUTES} minutes (e.g. at {} and {})",
                before.format("%Y-%m-%dT%H:%M:%SZ"),
                at.format("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
        previous = Some(at);
    }
    Ok(())
}

/// Creates the disabled default schedule of every workflow that has none.
pub async fn seed_defaults(pool: &PgPool, registry: &Registry) -> Result<(), sqlx::Error> {
    // Replicas starting together would each find no schedule and insert one: one at a time.
    let mut tx = pool.begin().await?;
    store::schedules::lock_seeding(&mut tx).await?;
    for workflow in registry.all() {
        let info = workflow.info();
        let next = next_after(info.default_cron, info.default_timezone, Utc::now()).ok();
        store::schedules::seed_default(&mut tx, info.key, info.default_cron, info.default_timezone, next).await?;
    }
    tx.commit().await
}

/// Fires every due schedule once; returns the runs created.
pub async fn fire_due(rt: &Runtime) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut created = vec![];
    loop {
        let mut tx = rt.pool.begin().await?;
        let due = store::schedules::lock_next_due(&mut tx).await?;
        let Some(due) = due else { break };
        let now = Utc::now();
        let next = next_after(&due.cron, &due.timezone, now).ok();
        let run_id = match rt.workflows.get(&due.workflow) {
            Some(workflow) => {
                let params: Value = workflow.check_params(&due.params).unwrap_or(due.params.clone());
                let start = runs::Start {
                    workflow: workflow.as_ref(),
                    params: &params,
                    trigger: RunTrigger::Schedule,
                    dry_run: false,
                    callback_url: None,
                    schedule_id: Some(due.id),
                    client_ids: None,
                };
                let actor = Actor { token_id: None, name: format!("schedule:{}", due.id), request_id: None };
                Some(runs::start(&mut tx, &actor, &start).await?.id)
            }
            None => {
                tracing::warn!(schedule = %due.id, workflow = %due.workflow, "schedule names an unknown workflow; skipped");
                None
            }
        };
        if let Some(run_id) = run_id {
            // The slot's primary key is what makes a firing happen once.
            if !store::schedules::record_firing(&mut tx, due.id, due.next_fire_at, run_id).await? {
                // This slot already fired (the run just created is discarded); move on.
                tx.rollback().await?;
                let mut conn = rt.pool.acquire().await?;
                store::schedules::skip_slot(&mut conn, due.id, due.next_fire_at, next).await?;
                continue;
            }
            created.push(run_id);
        }
        store::schedules::fired(&mut tx, due.id, due.next_fire_at, next).await?;
        tx.commit().await?;
    }
    Ok(created)
}

/// The scheduler loop: checks for due schedules every `tick` until `stop`.
pub async fn run(rt: Runtime, tick: Duration, mut stop: watch::Receiver<bool>) {
    tracing::info!(tick_secs = tick.as_secs_f64(), "scheduler started");
    while !*stop.borrow() {
        match fire_due(&rt).await {
            Ok(runs) if !runs.is_empty() => tracing::info!(runs = runs.len(), "schedules fired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "firing schedules failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_slot_in_the_schedules_time_zone() {
        let after: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        // 07:00 in São Paulo (UTC-3) is 10:00 UTC, so the next is the following day.
        let next = next_after("0 7 * * *", "America/Sao_Paulo", after).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-06-02T10:00:00+00:00");
        assert_eq!(next_after("0 7 * * *", "UTC", after).unwrap().to_rfc3339(), "2026-06-02T07:00:00+00:00");
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("every day").is_err());
        assert!(parse_timezone("Mars/Base").is_err());
        assert!(parse_cron("*/5 * * * *").is_ok());
    }

    #[test]
    fn schedules_fire_at_most_every_five_minutes() {
        let after: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        for ok in ["*/5 * * * *", "0 7 * * *", "0 8 * * 1", "0 */5 * * * *", "0,5 9 * * *", "30 0 * * *"] {
            assert_eq!(check_interval(ok, "America/Sao_Paulo", after), Ok(()), "{ok}");
        }
        // Every second or minute; a close pair inside an hour, across hours, or once a
        // year (New Year's Eve 23:58 then 00:00).
        for bad in ["* * * * * *", "* * * * *", "*/4 * * * *", "0,3 9 * * *", "0,58 * * * *", "0,58 0,23 1,31 1,12 *"] {
            let err = check_interval(bad, "UTC", after).unwrap_err();
            assert!(err.contains("once every 5 minutes"), "{bad}: {err}");
        }
    }
}
