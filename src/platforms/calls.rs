//! Who a platform call is for, and how many calls each client caused.
//!
//! Work done for a client runs inside [`for_client`] (a task-local scope). Each
//! [`Platforms`](super::Platforms) owns one [`CallCounter`], handed to every connector's
//! HTTP layer, which calls [`CallCounter::record`] once per attempt: it adds to an
//! in-memory count keyed (client, platform, UTC day). Calls outside any client scope
//! (status checks, unattributed actions) are not counted. Writing the counts to the
//! database is not this layer's job: `crate::costs` takes them with [`CallCounter::take`].

use std::{collections::HashMap, future::Future, sync::Mutex};

use chrono::{NaiveDate, Utc};
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

/// One pending count: client, platform, UTC day, calls.
pub type CallCount = (Uuid, &'static str, NaiveDate, i64);

/// Call counts not yet written, owned by one set of platform clients (not process-wide, so
/// two apps in one process — tests — never see each other's calls).
#[derive(Debug, Default)]
pub struct CallCounter {
    pending: Mutex<HashMap<(Uuid, &'static str, NaiveDate), i64>>,
}

impl CallCounter {
    /// Counts one call attempt to `platform` for the client in scope (if any).
    pub fn record(&self, platform: &'static str) {
        if let Some(client) = current_client() {
            self.add(client, platform, Utc::now().date_naive(), 1);
        }
    }

    pub fn add(&self, client: Uuid, platform: &'static str, day: NaiveDate, calls: i64) {
        *self.pending.lock().expect("call counter").entry((client, platform, day)).or_default() += calls;
    }

    /// Pending calls of one key (for tests and diagnostics).
    pub fn pending(&self, client: Uuid, platform: &str, day: NaiveDate) -> i64 {
        let pending = self.pending.lock().expect("call counter");
        pending.iter().filter(|((c, p, d), _)| *c == client && *p == platform && *d == day).map(|(_, n)| *n).sum()
    }

    /// Takes every pending count (the writer puts them back with [`add`](Self::add) if it fails).
    pub fn take(&self) -> Vec<CallCount> {
        let taken = std::mem::take(&mut *self.pending.lock().expect("call counter"));
        taken.into_iter().map(|((c, p, d), n)| (c, p, d, n)).collect()
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
        let counter = CallCounter::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for_client(a, async {
            counter.record("meta");
            counter.record("meta");
            // Nested work for another client is that client's.
            for_client(b, async { counter.record("meta") }).await;
            counter.record("clickup");
        })
        .await;
        counter.record("meta"); // outside any client: not attributed
        assert_eq!(counter.pending(a, "meta", today()), 2);
        assert_eq!(counter.pending(a, "clickup", today()), 1);
        assert_eq!(counter.pending(b, "meta", today()), 1);
        assert_eq!(current_client(), None);
        assert_eq!(counter.take().iter().map(|(.., n)| n).sum::<i64>(), 4);
        assert!(counter.take().is_empty(), "taken counts are gone");
    }

    #[tokio::test]
    async fn the_scope_follows_the_future_across_awaits() {
        let counter = CallCounter::default();
        let a = Uuid::new_v4();
        for_maybe_client(Some(a), async {
            tokio::task::yield_now().await;
            counter.record("llm");
        })
        .await;
        for_maybe_client(None, async { counter.record("llm") }).await;
        assert_eq!(counter.pending(a, "llm", today()), 1);
    }
}
