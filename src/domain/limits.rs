//! Shared limits: the rule of one limit (GCRA, with the lease sizes that let a process take
//! several tokens per database round trip without ever exceeding the rate), what a store of
//! limits grants, and the store's contract. `store::limits` keeps them in Postgres so every
//! process on one database shares them; `crate::limits` hands the tokens out in a process.
//! docs/decisions/0022-shared-limits.md explains the design.

use std::time::Duration;

use futures::future::BoxFuture;

/// One limit: a sustained rate and a burst, and how much of it a process may take at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub per_second: f64,
    pub burst: u32,
    /// How many seconds of the rate one lease may hold (0: one token per lease).
    pub lease_slice: f64,
}

/// Seconds of rate in one lease of a vendor limit: 0.1 s (10 tokens at 100/s).
pub const VENDOR_LEASE_SLICE: f64 = 0.1;
/// Longest a leased token stays usable after its turn: tokens a process did not use by then are
/// dropped (never returned late), so they cannot pile up with the next process's.
pub const MAX_LEASE_LIFE: Duration = Duration::from_millis(250);

/// Credit a vendor limit keeps back for network jitter between our send and the vendor's count.
pub const ARRIVAL_MARGIN: Duration = Duration::from_millis(5);

impl Rule {
    /// A limit with leases of one token: every token is one round trip, and the state is exact
    /// (the API's per-token limit, whose headers tell the caller what is left).
    pub fn exact(per_second: f64, burst: u32) -> Self {
        Self { per_second: sane_rate(per_second), burst: burst.max(1), lease_slice: 0.0 }
    }

    /// A limit a process takes in leases of up to [`VENDOR_LEASE_SLICE`] of its rate.
    pub fn leased(per_second: f64, burst: u32) -> Self {
        Self { lease_slice: VENDOR_LEASE_SLICE, ..Self::exact(per_second, burst) }
    }

    /// Seconds between two tokens.
    pub fn spacing(&self) -> f64 {
        1.0 / self.per_second
    }

    /// The most tokens one lease holds: `lease_slice` of the rate, at most half the burst, at least 1.
    pub fn lease_max(&self) -> u32 {
        let by_rate = (self.per_second * self.lease_slice).floor() as u32;
        by_rate.clamp(1, (self.burst / 2).max(1))
    }

    /// How long after its turn a leased token may still be used: what the burst leaves beyond
    /// one full lease, at most [`MAX_LEASE_LIFE`] (zero for one-token leases: used at once).
    pub fn lease_life(&self) -> Duration {
        if self.lease_max() <= 1 && self.lease_slice == 0.0 {
            return Duration::ZERO;
        }
        let spare = (self.burst - self.lease_max()) as f64 * self.spacing();
        Duration::from_secs_f64(spare).min(MAX_LEASE_LIFE)
    }

    /// The GCRA tolerance kept in the database, in seconds: the burst less the lease life. A
    /// token is used between its turn and its turn + lease life, so in any window of W seconds
    /// at most what the store granted in W + lease life goes out: `(W + life + tolerance) /
    /// spacing + 1` = `W * rate + burst`, the limit itself.
    /// A leased (vendor) rule also keeps [`ARRIVAL_MARGIN`] back: the vendor counts arrivals,
    /// which network jitter can bring closer together than we sent them.
    pub fn tolerance(&self) -> f64 {
        let full = (self.burst - 1) as f64 * self.spacing();
        let floor = (self.lease_max() - 1) as f64 * self.spacing();
        let margin = if self.lease_slice > 0.0 { ARRIVAL_MARGIN.as_secs_f64() } else { 0.0 };
        (full - self.lease_life().as_secs_f64() - margin).max(floor)
    }
}

fn sane_rate(per_second: f64) -> f64 {
    if per_second.is_finite() && per_second > 0.0 { per_second.max(0.001) } else { 0.001 }
}

/// What a store answered to a request for tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// Tokens taken (0: refused, see `wait`).
    pub granted: u32,
    /// Until the granted tokens may be used; when refused, until one would be granted.
    pub wait: Duration,
    /// How far the bucket is behind now, after this grant: 0 means the whole burst is there.
    pub ahead: Duration,
}

impl Grant {
    /// Tokens left to take at once after this grant (the `RateLimit-Remaining` of an exact rule).
    pub fn remaining(&self, rule: &Rule) -> u32 {
        let spare = rule.tolerance() - self.ahead.as_secs_f64();
        if spare < -1e-9 { 0 } else { ((spare + 1e-9) / rule.spacing()).floor() as u32 + 1 }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("limit store: {0}")]
pub struct LimitStoreError(pub String);

/// Where limits live. Every method answers by the store's own clock, as durations from now.
pub trait LimitStore: Send + Sync + 'static {
    /// Takes `want` tokens of `key` when they are due within `max_wait` (None: however long).
    fn take<'a>(
        &'a self,
        key: &'a str,
        rule: Rule,
        want: u32,
        max_wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<Grant, LimitStoreError>>;

    /// Nobody calls `key` for `for_how_long` (an earlier, longer pause stays).
    fn pause<'a>(&'a self, key: &'a str, for_how_long: Duration) -> BoxFuture<'a, Result<(), LimitStoreError>>;

    /// How long `key` is still paused (None: it is not).
    fn paused<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>, LimitStoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_a_slice_of_the_rate_within_half_the_burst() {
        assert_eq!(Rule::leased(100.0, 100).lease_max(), 10);
        assert_eq!(Rule::leased(100.0, 10).lease_max(), 5);
        assert_eq!(Rule::leased(10.0, 10).lease_max(), 1);
        assert_eq!(Rule::leased(1.0, 1).lease_max(), 1);
        assert_eq!(Rule::exact(1000.0, 1000).lease_max(), 1);
    }

    /// In any window W, tokens used ≤ granted in W + life ≤ (W + life + tolerance) / spacing + 1,
    /// which must not pass W * rate + burst, for every rule.
    #[test]
    fn a_lease_used_late_never_passes_the_burst() {
        for rule in [
            Rule::leased(100.0, 100),
            Rule::leased(100.0, 10),
            Rule::leased(10.0, 10),
            Rule::leased(25.0, 25),
            Rule::leased(1.0, 1),
            Rule::exact(10.0, 100),
            Rule::exact(1.0, 3),
        ] {
            let life = rule.lease_life().as_secs_f64();
            let bound = (life + rule.tolerance()) / rule.spacing() + 1.0;
            assert!(bound <= rule.burst as f64 + 1e-9, "{rule:?}: {bound} > burst");
            // A full lease conforms at once.
            assert!(rule.tolerance() + 1e-9 >= (rule.lease_max() - 1) as f64 * rule.spacing(), "{rule:?}");
        }
    }

    #[test]
    fn an_exact_rule_keeps_the_whole_burst_and_counts_what_is_left() {
        let rule = Rule::exact(1.0, 3);
        assert_eq!(rule.lease_life(), Duration::ZERO);
        assert!((rule.tolerance() - 2.0).abs() < 1e-9);
        let after = |ahead: f64| Grant { granted: 1, wait: Duration::ZERO, ahead: Duration::from_secs_f64(ahead) };
        assert_eq!(after(1.0).remaining(&rule), 2);
        assert_eq!(after(2.0).remaining(&rule), 1);
        assert_eq!(after(3.0).remaining(&rule), 0);
    }
}
