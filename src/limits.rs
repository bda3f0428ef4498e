//! Limits shared by every process on one database, handed out in each process from leases
//! (docs/decisions/0022-shared-limits.md).
//!
//! A [`Leased`] limit takes tokens from a [`LimitStore`] (Postgres in a service, see
//! `store::limits::PgLimits`; [`MemoryLimits`] for a part built alone, e.g. in a unit test).
//! One caller per process at a time asks the store, for as many tokens as callers are
//! waiting (at most [`Rule::lease_max`]); the others queue behind it (first come, first
//! served) and are served from that lease. A leased token is used from its turn to its turn +
//! [`Rule::lease_life`], never later: tokens left over are dropped, not returned, so a lease
//! that outlived its holder (or was not needed) costs at most one lease of throughput and never
//! lets more than the limit through. [`Pauses`] are the waits a vendor asked for, written for
//! every process and read through a short cache.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use tokio::time::Instant;

use crate::domain::limits::{Grant, LimitStore, LimitStoreError, Rule};

/// How long a process trusts what it read of a pause: another process's pause reaches it
/// within this (its own pauses at once).
pub const PAUSE_CACHE_TTL: Duration = Duration::from_millis(200);

/// Limits kept in this process only: the same arithmetic as the database's
/// `engine.take_tokens`, for parts built without a database.
#[derive(Default)]
pub struct MemoryLimits {
    /// Theoretical arrival time of the next token, per key.
    tats: Mutex<HashMap<String, Instant>>,
    pauses: Mutex<HashMap<String, Instant>>,
}

impl MemoryLimits {
    pub fn shared() -> Arc<dyn LimitStore> {
        Arc::new(Self::default())
    }

    fn take_now(&self, key: &str, rule: Rule, want: u32, max_wait: Option<Duration>) -> Grant {
        let now = Instant::now();
        let mut tats = self.tats.lock().expect("limits lock");
        let base = tats.get(key).copied().unwrap_or(now).max(now);
        let spacing = Duration::from_secs_f64(rule.spacing());
        let tolerance = Duration::from_secs_f64(rule.tolerance());
        let next = base + spacing * want.max(1);
        let ready = next.checked_sub(tolerance + spacing).unwrap_or(now).max(now);
        if max_wait.is_some_and(|max| ready - now > max) {
            let one = base.checked_sub(tolerance).unwrap_or(now).max(now);
            return Grant { granted: 0, wait: one - now, ahead: base - now };
        }
        tats.insert(key.to_string(), next);
        Grant { granted: want.max(1), wait: ready - now, ahead: next - now }
    }
}

impl LimitStore for MemoryLimits {
    fn take<'a>(
        &'a self,
        key: &'a str,
        rule: Rule,
        want: u32,
        max_wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<Grant, LimitStoreError>> {
        let grant = self.take_now(key, rule, want, max_wait);
        async move { Ok(grant) }.boxed()
    }

    fn pause<'a>(&'a self, key: &'a str, for_how_long: Duration) -> BoxFuture<'a, Result<(), LimitStoreError>> {
        let until = Instant::now() + for_how_long;
        let mut pauses = self.pauses.lock().expect("pauses lock");
        let entry = pauses.entry(key.to_string()).or_insert(until);
        *entry = (*entry).max(until);
        async { Ok(()) }.boxed()
    }

    fn paused<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>, LimitStoreError>> {
        let now = Instant::now();
        let left = self.pauses.lock().expect("pauses lock").get(key).filter(|u| **u > now).map(|u| *u - now);
        async move { Ok(left) }.boxed()
    }
}

/// Tokens of one lease, usable from `from` until `until`.
struct Lease {
    left: u32,
    from: Instant,
    until: Instant,
}

/// One limit (one key), shared through a [`LimitStore`].
pub struct Leased {
    key: String,
    rule: Rule,
    store: Arc<dyn LimitStore>,
    lease: tokio::sync::Mutex<Lease>,
    /// Callers queued for the lease: the next lease asks for this many tokens (within the rule's maximum).
    waiting: AtomicU32,
    /// Whether the last lease was due at once (for status pages; takes nothing).
    last_was_free: AtomicBool,
}

impl Leased {
    pub fn new(key: impl Into<String>, rule: Rule, store: Arc<dyn LimitStore>) -> Self {
        let now = Instant::now();
        Self {
            key: key.into(),
            rule,
            store,
            lease: tokio::sync::Mutex::new(Lease { left: 0, from: now, until: now }),
            waiting: AtomicU32::new(0),
            last_was_free: AtomicBool::new(true),
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Waits for one token; fails only when the store cannot be reached (nothing is sent then).
    pub async fn until_ready(&self) -> Result<(), LimitStoreError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let mut lease = self.lease.lock().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        if lease.left > 0 {
            tokio::time::sleep_until(lease.from).await;
            if Instant::now() < lease.until {
                lease.left -= 1;
                return Ok(());
            }
        }
        let want = self.rule.lease_max().min(1 + self.waiting.load(Ordering::Relaxed));
        let sent = Instant::now();
        let grant = self.store.take(&self.key, self.rule, want, None).await?;
        // From when the answer arrived (never before the store's turn), until the turn as seen
        // from when the question left (never after it) plus the lease life.
        let from = Instant::now() + grant.wait;
        let until = sent + grant.wait + self.rule.lease_life();
        self.last_was_free.store(grant.wait.is_zero(), Ordering::Relaxed);
        *lease = Lease { left: grant.granted.saturating_sub(1), from, until };
        tokio::time::sleep_until(from).await;
        Ok(())
    }

    /// Whether a call could likely start now: this process holds leased tokens, or its last
    /// lease came without a wait. Takes nothing.
    pub fn looks_free(&self) -> bool {
        match self.lease.try_lock() {
            Ok(lease) if lease.left > 0 && Instant::now() < lease.until => true,
            _ => self.last_was_free.load(Ordering::Relaxed),
        }
    }
}

/// One limit per key under a prefix (per ad account, per webhook endpoint), all sharing one rule.
pub struct KeyedLeased {
    prefix: String,
    rule: Rule,
    store: Arc<dyn LimitStore>,
    /// Keys used lately; an idle key's lease is long over, so forgetting it loses nothing.
    each: moka::sync::Cache<String, Arc<Leased>>,
}

impl KeyedLeased {
    pub fn new(prefix: impl Into<String>, rule: Rule, store: Arc<dyn LimitStore>) -> Self {
        let each = moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(Duration::from_secs(600)).build();
        Self { prefix: prefix.into(), rule, store, each }
    }

    pub fn get(&self, key: &str) -> Arc<Leased> {
        self.each.get_with_by_ref(key, || {
            Arc::new(Leased::new(format!("{}:{key}", self.prefix), self.rule, self.store.clone()))
        })
    }

    pub async fn until_key_ready(&self, key: &str) -> Result<(), LimitStoreError> {
        self.get(key).until_ready().await
    }
}

/// The pauses a vendor asked for, per key: written for every process, read through a short
/// cache ([`PAUSE_CACHE_TTL`]); this process's own pauses hold at once.
pub struct Pauses {
    store: Arc<dyn LimitStore>,
    /// Pauses this process set, and what it last read of the others', with when it read them.
    own: Mutex<HashMap<String, Instant>>,
    /// What was read of each key (the end of its pause, if any), and when.
    read: Mutex<HashMap<String, (Instant, Option<Instant>)>>,
}

impl Pauses {
    pub fn new(store: Arc<dyn LimitStore>) -> Self {
        Self { store, own: Mutex::default(), read: Mutex::default() }
    }

    /// Nobody calls `key` for `for_how_long`. Holds in this process even if the store fails.
    pub async fn pause(&self, key: &str, for_how_long: Duration) -> Result<(), LimitStoreError> {
        let until = Instant::now() + for_how_long;
        {
            let mut own = self.own.lock().expect("pauses lock");
            let entry = own.entry(key.to_string()).or_insert(until);
            *entry = (*entry).max(until);
        }
        self.store.pause(key, for_how_long).await
    }

    /// How long `key` is still paused, by this process or another (read at most
    /// [`PAUSE_CACHE_TTL`] ago).
    pub async fn left(&self, key: &str) -> Result<Option<Duration>, LimitStoreError> {
        let now = Instant::now();
        let own = self.own.lock().expect("pauses lock").get(key).copied();
        let fresh =
            self.read.lock().expect("pauses lock").get(key).filter(|(at, _)| now - *at < PAUSE_CACHE_TTL).copied();
        let others = match fresh {
            Some((_, until)) => until,
            None => {
                let until = self.store.paused(key).await?.map(|left| Instant::now() + left);
                let mut read = self.read.lock().expect("pauses lock");
                if read.len() > 10_000 {
                    read.retain(|_, (at, until)| now - *at < PAUSE_CACHE_TTL || until.is_some_and(|u| u > now));
                }
                read.insert(key.to_string(), (now, until));
                until
            }
        };
        Ok(own.max(others).filter(|u| *u > now).map(|u| u - now))
    }

    /// The keys this process knows to be paused, with what is left.
    pub fn known(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let mut own = self.own.lock().expect("pauses lock");
        own.retain(|_, until| *until > now);
        let mut known: HashMap<String, Instant> = own.clone();
        for (key, (_, until)) in self.read.lock().expect("pauses lock").iter() {
            if let Some(until) = until.filter(|u| *u > now) {
                let entry = known.entry(key.clone()).or_insert(until);
                *entry = (*entry).max(until);
            }
        }
        known.into_iter().map(|(k, u)| (k, u - now)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every token's send time, for `callers` tasks taking `each` tokens.
    async fn send_times(limit: Arc<Leased>, callers: usize, each: usize) -> Vec<Instant> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..callers {
            let limit = limit.clone();
            tasks.spawn(async move {
                let mut times = vec![];
                for _ in 0..each {
                    limit.until_ready().await.unwrap();
                    times.push(Instant::now());
                }
                times
            });
        }
        let mut all: Vec<Instant> = tasks.join_all().await.into_iter().flatten().collect();
        all.sort();
        all
    }

    /// The most tokens sent in any window of `window`.
    fn busiest(times: &[Instant], window: Duration) -> usize {
        (0..times.len()).map(|i| times[i..].iter().take_while(|t| **t - times[i] < window).count()).max().unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_limiters_on_one_store_keep_one_rate() {
        let store = MemoryLimits::shared();
        let rule = Rule::leased(1000.0, 50);
        let a = Arc::new(Leased::new("p", rule, store.clone()));
        let b = Arc::new(Leased::new("p", rule, store));
        let (ta, tb) = tokio::join!(send_times(a, 4, 100), send_times(b, 4, 100));
        let mut all = [ta, tb].concat();
        all.sort();
        assert_eq!(all.len(), 800);
        // 800 tokens at 1000/s after a burst of 50: at least 0.75 s, never more than the limit
        // (rate × window + burst) in any window.
        let span = *all.last().unwrap() - all[0];
        assert!(span >= Duration::from_millis(740), "{span:?}");
        for window in [Duration::from_millis(100), Duration::from_millis(300)] {
            let most = busiest(&all, window);
            assert!(most <= (window.as_secs_f64() * 1000.0) as usize + 50, "{most} in {window:?}");
        }
    }

    #[tokio::test]
    async fn a_lease_left_unused_expires_and_is_never_used_late() {
        let store = MemoryLimits::shared();
        let rule = Rule::leased(100.0, 100);
        let a = Leased::new("p", rule, store.clone());
        // Several waiters: one lease of 10 tokens, of which this caller uses one.
        let waiting = a.waiting.fetch_add(9, Ordering::Relaxed);
        a.until_ready().await.unwrap();
        a.waiting.store(waiting, Ordering::Relaxed);
        assert_eq!(a.lease.lock().await.left, 9);
        tokio::time::sleep(rule.lease_life() + Duration::from_millis(1)).await;
        // Later: the leftover tokens are gone; the next call takes a new lease from the store.
        a.until_ready().await.unwrap();
        assert_eq!(a.lease.lock().await.left, 0);
    }

    #[tokio::test]
    async fn a_pause_reaches_another_reader_within_the_cache_ttl() {
        let store = MemoryLimits::shared();
        let (a, b) = (Pauses::new(store.clone()), Pauses::new(store));
        assert_eq!(b.left("meta:act_1").await.unwrap(), None);
        a.pause("meta:act_1", Duration::from_secs(30)).await.unwrap();
        assert!(a.left("meta:act_1").await.unwrap().is_some(), "its own pause holds at once");
        tokio::time::sleep(PAUSE_CACHE_TTL + Duration::from_millis(1)).await;
        let left = b.left("meta:act_1").await.unwrap().expect("paused");
        assert!(left > Duration::from_secs(29), "{left:?}");
        assert_eq!(b.known().len(), 1);
    }
}
