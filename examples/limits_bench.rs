//! Shared-limits benchmark (docs/PERFORMANCE.md "Shared limits"); run it with `scripts/bench-limits`.
//!
//! Measures what a shared limit costs per call against Postgres, beside the in-process store:
//! 1. the API's exact rule (one round trip per request), sequential and CONCURRENCY at a time;
//! 2. a vendor rule taken in leases (rate high enough not to bind), CONCURRENCY callers in one
//!    and in two "processes" (two pools): tokens per second and store round trips per token;
//! 3. accuracy: two processes at RATE/s (burst RATE/10) for SECS seconds: the rate achieved and
//!    the most tokens in any one-second window (the limit allows RATE + burst).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use switchboard::{
    domain::limits::{Grant, LimitStore, LimitStoreError, Rule},
    limits::{Leased, MemoryLimits},
    server,
    store::{self, limits::PgLimits},
};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Counts the round trips to the store.
struct Counted(Arc<dyn LimitStore>, AtomicU64);

impl LimitStore for Counted {
    fn take<'a>(
        &'a self,
        key: &'a str,
        rule: Rule,
        want: u32,
        max_wait: Option<Duration>,
    ) -> BoxFuture<'a, Result<Grant, LimitStoreError>> {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.take(key, rule, want, max_wait)
    }
    fn pause<'a>(&'a self, key: &'a str, d: Duration) -> BoxFuture<'a, Result<(), LimitStoreError>> {
        self.0.pause(key, d)
    }
    fn paused<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>, LimitStoreError>> {
        self.0.paused(key)
    }
}

/// `callers` tasks per limiter taking `per_caller` tokens each; returns every token's time.
async fn drive(limiters: &[Arc<Leased>], callers: usize, per_caller: usize) -> Vec<Instant> {
    let mut tasks = tokio::task::JoinSet::new();
    for limiter in limiters {
        for _ in 0..callers {
            let limiter = limiter.clone();
            tasks.spawn(async move {
                let mut times = Vec::with_capacity(per_caller);
                for _ in 0..per_caller {
                    limiter.until_ready().await.expect("store");
                    times.push(Instant::now());
                }
                times
            });
        }
    }
    let mut all: Vec<Instant> = tasks.join_all().await.into_iter().flatten().collect();
    all.sort();
    all
}

fn busiest(times: &[Instant], window: Duration) -> usize {
    let mut most = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while j < times.len() && times[j] - times[i] < window {
            j += 1;
        }
        most = most.max(j - i);
    }
    most
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let n: usize = env("CALLS", 20_000);
    let concurrency: usize = env("CONCURRENCY", 16);
    let rate: f64 = env("RATE", 200.0);
    let secs: f64 = env("SECS", 5.0);
    let pool_a = store::connect(&url, 16, None).await?;
    let pool_b = store::connect(&url, 16, None).await?;
    server::migrate(&pool_a).await?;

    // 1. The API's exact rule: one round trip per request.
    let pg: Arc<dyn LimitStore> = Arc::new(PgLimits::new(pool_a.clone()));
    let api = Rule::exact(1e6, 1_000_000);
    let seq = 2_000;
    let started = Instant::now();
    for i in 0..seq {
        pg.take(&format!("api:{}", i % 100), api, 1, Some(Duration::ZERO)).await?;
    }
    let per_call = started.elapsed() / seq as u32;
    println!("api rule, sequential: {:.0} µs per request ({seq} requests)", per_call.as_secs_f64() * 1e6);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        let pg = pg.clone();
        tasks.spawn(async move {
            for i in 0..n / concurrency {
                pg.take(&format!("api:{}", (c * 7919 + i) % 1000), api, 1, Some(Duration::ZERO)).await.unwrap();
            }
        });
    }
    tasks.join_all().await;
    let took = started.elapsed().as_secs_f64();
    println!("api rule, {concurrency} at a time over 1000 tokens: {:.0} requests/s", n as f64 / took);

    // 2. Leases, rate not binding: round trips per token, tokens per second.
    let vendor = Rule::leased(1e6, 1_000_000);
    for (label, processes, memory) in
        [("in-process store", 1, true), ("Postgres, 1 process", 1, false), ("Postgres, 2 processes", 2, false)]
    {
        let mut limiters = vec![];
        let mut counters = vec![];
        for p in 0..processes {
            let inner: Arc<dyn LimitStore> = if memory {
                MemoryLimits::shared()
            } else {
                Arc::new(PgLimits::new(if p == 0 { pool_a.clone() } else { pool_b.clone() }))
            };
            let counted = Arc::new(Counted(inner, AtomicU64::new(0)));
            counters.push(counted.clone());
            limiters.push(Arc::new(Leased::new(format!("bench-{label}"), vendor, counted)));
        }
        let per_caller = n / concurrency / processes;
        let started = Instant::now();
        let times = drive(&limiters, concurrency, per_caller).await;
        let took = started.elapsed().as_secs_f64();
        let trips: u64 = counters.iter().map(|c| c.1.load(Ordering::Relaxed)).sum();
        println!(
            "leased vendor rule, {label}, {concurrency} callers each: {:.0} tokens/s, {:.2} µs per token, {:.3} round trips per token (lease max {})",
            times.len() as f64 / took,
            took * 1e6 / times.len() as f64,
            trips as f64 / times.len() as f64,
            vendor.lease_max()
        );
    }

    // 3. Accuracy at a binding rate, two processes.
    let burst = ((rate / 10.0) as u32).max(1);
    let rule = Rule::leased(rate, burst);
    let counted: Vec<Arc<Counted>> = [&pool_a, &pool_b]
        .iter()
        .map(|p| Arc::new(Counted(Arc::new(PgLimits::new((*p).clone())), AtomicU64::new(0))))
        .collect();
    let limiters: Vec<Arc<Leased>> = counted
        .iter()
        .map(|c| Arc::new(Leased::new("bench-accuracy", rule, c.clone() as Arc<dyn LimitStore>)))
        .collect();
    let total = (rate * secs) as usize;
    let per_caller = total / concurrency / 2;
    let started = Instant::now();
    let times = drive(&limiters, concurrency, per_caller).await;
    let took = started.elapsed().as_secs_f64();
    let trips: u64 = counted.iter().map(|c| c.1.load(Ordering::Relaxed)).sum();
    println!(
        "accuracy, 2 processes × {concurrency} callers at {rate}/s burst {burst}: {} tokens in {took:.2} s = {:.1}/s (bound {:.2} s); busiest 1 s window {} (limit {}), busiest 100 ms window {} (limit {}); {:.3} round trips per token",
        times.len(),
        times.len() as f64 / took,
        (times.len() as f64 - burst as f64) / rate,
        busiest(&times, Duration::from_secs(1)),
        rate as usize + burst as usize,
        busiest(&times, Duration::from_millis(100)),
        (rate / 10.0) as usize + burst as usize,
        trips as f64 / times.len() as f64,
    );
    Ok(())
}
