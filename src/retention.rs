//! Bounded data: the scheduler role prunes old rows per table family on a timer, in
//! small batches (each its own short statement), so no table grows forever and no
//! pass holds long locks. Metrics and costs (`costs.*`) are business data and are
//! kept; see docs/OPERATIONS.md "Retention".

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::{config::Config, store::retention as store};

/// How long each family is kept; `None` keeps it for ever.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Events with their webhook deliveries and delivery attempts.
    pub events: Option<Duration>,
    /// Finished runs with their tasks, effects and run callbacks.
    pub runs: Option<Duration>,
    /// Inbound WhatsApp messages.
    pub inbound: Option<Duration>,
    /// The outbound WhatsApp message log.
    pub messages: Option<Duration>,
    /// The audit log (kept for ever by default).
    pub audit: Option<Duration>,
    /// Rows deleted per statement.
    pub batch: u32,
    /// Time between passes.
    pub every: Duration,
}

const DAY: u64 = 24 * 3600;

fn days(n: u32) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(u64::from(n) * DAY))
}

impl RetentionSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            events: days(config.retention_events_days),
            runs: days(config.retention_runs_days),
            inbound: days(config.retention_inbound_days),
            messages: days(config.retention_messages_days),
            audit: days(config.retention_audit_days),
            batch: config.retention_batch,
            every: Duration::from_secs(config.retention_interval_secs),
        }
    }
}

/// Rows removed in one pass, per family (cascaded child rows are not counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub runs: u64,
    pub inbound: u64,
    pub messages: u64,
    pub idempotency_keys: u64,
    pub audit: u64,
}

/// Batches until one comes back short: everything due at the start of the pass goes.
async fn drain<F, Fut>(batch: u32, mut one: F) -> Result<u64, sqlx::Error>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let limit = i64::from(batch.max(1));
    let mut total = 0;
    loop {
        let n = one(limit).await?;
        total += n;
        if n < limit as u64 {
            return Ok(total);
        }
        // Let other work between batches.
        tokio::task::yield_now().await;
    }
}

fn cutoff(now: DateTime<Utc>, keep: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX)
}

/// One pass over every family, as of `now`.
pub async fn prune(pool: &PgPool, settings: &RetentionSettings, now: DateTime<Utc>) -> Result<Pruned, sqlx::Error> {
    let b = settings.batch;
    let mut pruned = Pruned::default();
    if let Some(keep) = settings.events {
        let before = cutoff(now, keep);
        pruned.events = drain(b, |n| store::prune_events(pool, before, n)).await?;
    }
    if let Some(keep) = settings.runs {
        let before = cutoff(now, keep);
        pruned.runs = drain(b, |n| store::prune_runs(pool, before, n)).await?;
    }
    if let Some(keep) = settings.inbound {
        let before = cutoff(now, keep);
        pruned.inbound = drain(b, |n| store::prune_inbound(pool, before, n)).await?;
    }
    if let Some(keep) = settings.messages {
        let before = cutoff(now, keep);
        pruned.messages = drain(b, |n| store::prune_messages(pool, before, n)).await?;
    }
    pruned.idempotency_keys = drain(b, |n| store::prune_idempotency_keys(pool, n)).await?;
    if let Some(keep) = settings.audit {
        let before = cutoff(now, keep);
        pruned.audit = drain(b, |n| store::prune_audit(pool, before, n)).await?;
    }
    Ok(pruned)
}

fn record(pruned: &Pruned) {
    for (family, n) in [
        ("events", pruned.events),
        ("runs", pruned.runs),
        ("inbound", pruned.inbound),
        ("messages", pruned.messages),
        ("idempotency_keys", pruned.idempotency_keys),
        ("audit", pruned.audit),
    ] {
        metrics::counter!("switchboard_retention_pruned_total", "family" => family).increment(n);
    }
}

/// The scheduler role's retention loop: a pass now and then every `settings.every`.
pub async fn run(pool: PgPool, settings: RetentionSettings, mut stop: watch::Receiver<bool>) {
    tracing::info!(every_secs = settings.every.as_secs(), batch = settings.batch, "retention started");
    while !*stop.borrow() {
        match prune(&pool, &settings, Utc::now()).await {
            Ok(p) => {
                record(&p);
                tracing::info!(
                    events = p.events,
                    runs = p.runs,
                    inbound = p.inbound,
                    messages = p.messages,
                    idempotency_keys = p.idempotency_keys,
                    audit = p.audit,
                    "retention pass"
                );
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.every) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_for_ever() {
        let config = Config { retention_audit_days: 0, retention_events_days: 30, ..Config::default() };
        let s = RetentionSettings::from_config(&config);
        assert_eq!(s.audit, None);
        assert_eq!(s.events, Some(Duration::from_secs(30 * DAY)));
    }

    #[test]
    fn audit_is_kept_by_default() {
        let s = RetentionSettings::from_config(&Config::default());
        assert_eq!(s.audit, None);
        assert!(s.events.is_some() && s.runs.is_some() && s.inbound.is_some() && s.messages.is_some());
    }
}
