//! Platform calls per client per day, for `GET /v1/costs`.
//!
//! Work done for a client runs inside [`for_client`] (a task-local scope); the
//! shared HTTP layer calls [`count_call`] once per attempt, which adds to an
//! in-memory counter keyed (client, platform, UTC day). Calls outside any client
//! scope (platform status checks, unattributed actions) are not counted. The
//! upkeep task writes the pending counts with [`flush`], in one statement, so
//! counting costs no database round trip per call.

use std::{
    collections::HashMap,
    future::Future,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use chrono::{NaiveDate, Utc};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

tokio::task_local! {
    /// The client the current task works for.
    static CLIENT: Uuid;
}

/// Runs `fut` with its platform calls attributed to `client`.
pub async fn for_client<F: Future>(client: Uuid, fut: F) -> F::Output {
    CLIENT.scope(client, fut).await
}

/// Runs `fut` attributed to `client` when there is one, unattributed otherwise.
pub async fn for_maybe_client<F: Future>(client: Option<Uuid>, fut: F) -> F::Output {
    match client {
        Some(id) => for_client(id, fut).await,
        None => fut.await,
    }
}

/// The client the current task works for, if any.
pub fn current_client() -> Option<Uuid> {
    CLIENT.try_with(|c| *c).ok()
}

/// Counts one call attempt to `platform` for the client in scope (if any).
pub fn count_call(platform: &'static str) {
    if let Some(client) = current_client() {
        COUNTER.add(client, platform, Utc::now().date_naive(), 1);
    }
}

type Key = (Uuid, &'static str, NaiveDate);

/// Pending (not yet written) call counts.
#[derive(Default)]
pub struct CallCounter {
    pending: Mutex<HashMap<Key, i64>>,
}

static COUNTER: LazyLock<CallCounter> = LazyLock::new(CallCounter::default);

/// The process-wide counter [`count_call`] adds to.
pub fn counter() -> &'static CallCounter {
    &COUNTER
}

/// Writes every pending count of the process-wide counter; returns the rows written.
pub async fn flush(pool: &PgPool) -> Result<u64, sqlx::Error> {
    COUNTER.flush(pool).await
}

/// How often pending counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(15);

/// Writes pending counts every `every` until `stop` turns true, then once more.
/// Runs in every role: workers make most platform calls.
pub async fn flush_every(pool: PgPool, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
        };
        if let Err(e) = flush(&pool).await {
            tracing::warn!(error = %e, "recording platform call counts failed; kept for the next try");
        }
        if stopping {
            return;
        }
    }
}

impl CallCounter {
    pub fn add(&self, client: Uuid, platform: &'static str, day: NaiveDate, calls: i64) {
        *self.pending.lock().expect("call counter").entry((client, platform, day)).or_default() += calls;
    }

    /// Pending calls of one key (for tests and diagnostics).
    pub fn pending(&self, client: Uuid, platform: &str, day: NaiveDate) -> i64 {
        let pending = self.pending.lock().expect("call counter");
        pending.iter().filter(|((c, p, d), _)| *c == client && *p == platform && *d == day).map(|(_, n)| *n).sum()
    }

    fn take(&self) -> HashMap<Key, i64> {
        std::mem::take(&mut *self.pending.lock().expect("call counter"))
    }

    /// Writes all pending counts in one statement. On a database error the counts
    /// are put back for the next flush. Counts of clients deleted meanwhile are dropped.
    pub async fn flush(&self, pool: &PgPool) -> Result<u64, sqlx::Error> {
        let taken = self.take();
        if taken.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(Uuid, &'static str, NaiveDate, i64)> =
            taken.iter().map(|((c, p, d), n)| (*c, *p, *d, *n)).collect();
        match crate::store::costs::add_platform_calls(pool, &rows).await {
            Ok(written) => Ok(written),
            Err(e) => {
                for ((client, platform, day), n) in taken {
                    self.add(client, platform, day, n);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        Utc::now().date_naive()
    }

    #[tokio::test]
    async fn calls_in_a_client_scope_are_counted_per_platform() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for_client(a, async {
            count_call("meta");
            count_call("meta");
            // Nested work for another client is that client's.
            for_client(b, async { count_call("meta") }).await;
            count_call("clickup");
        })
        .await;
        count_call("meta"); // outside any client: not attributed
        assert_eq!(counter().pending(a, "meta", today()), 2);
        assert_eq!(counter().pending(a, "clickup", today()), 1);
        assert_eq!(counter().pending(b, "meta", today()), 1);
        assert_eq!(current_client(), None);
    }

    #[tokio::test]
    async fn the_scope_follows_the_future_across_awaits() {
        let a = Uuid::new_v4();
        for_maybe_client(Some(a), async {
            tokio::task::yield_now().await;
            count_call("llm");
        })
        .await;
        for_maybe_client(None, async { count_call("llm") }).await;
        assert_eq!(counter().pending(a, "llm", today()), 1);
    }
}
