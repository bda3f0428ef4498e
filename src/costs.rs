//! Platform calls per client per day, for `GET /v1/costs`: writing the counts.
//!
//! Counting happens in the platform layer (`platforms::calls`): work for a client runs
//! inside [`for_client`], and each [`Platforms`](crate::platforms::Platforms) counts its
//! own calls in its [`CallCounter`]. The upkeep task writes a counter's pending counts
//! with [`flush`], in one statement, so counting costs no database round trip per call.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::sync::watch;

pub use crate::platforms::calls::{CallCounter, current_client, for_client, for_maybe_client};

/// Writes every pending count of `counter` in one statement; returns the rows written.
/// On a database error the counts are put back for the next flush. Counts of clients
/// deleted meanwhile are dropped.
pub async fn flush(pool: &PgPool, counter: &CallCounter) -> Result<u64, sqlx::Error> {
    let taken = counter.take();
    if taken.is_empty() {
        return Ok(0);
    }
    match crate::store::costs::add_platform_calls(pool, &taken).await {
        Ok(written) => Ok(written),
        Err(e) => {
            for (client, platform, day, n) in taken {
                counter.add(client, platform, day, n);
            }
            Err(e)
        }
    }
}

/// How often pending counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(15);

/// Writes `counter`'s pending counts every `every` until `stop` turns true, then once more.
/// Runs in every role: workers make most platform calls.
pub async fn flush_every(pool: PgPool, counter: Arc<CallCounter>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
        };
        if let Err(e) = flush(&pool, &counter).await {
            tracing::warn!(error = %e, "recording platform call counts failed; kept for the next try");
        }
        if stopping {
            return;
        }
    }
}
