//! Metrics-sync benchmark (docs/PERFORMANCE.md); run it with `scripts/bench-sync`.
//!
//! Syncs 7 days of Meta and Google Ads metrics for CLIENTS clients through the real
//! API router (`POST /v1/clients/{id}/metrics/sync`, CONCURRENCY at a time) against
//! the simulator answering after LATENCY_MS and throttling above RATE per second per
//! platform, with Switchboard's limiters set to the same RATE. Reports wall time
//! against the rate-limit bound (calls ÷ rate), throttled answers, and peak RSS.

use std::{sync::Arc, time::Instant};

use axum::{body::Body, http::Request};
use futures::StreamExt;
use switchboard::{
    api,
    api::AppState,
    config::Config,
    domain::scope::Scope,
    platforms::{Mode, Platforms},
    server, sim,
    store::{self, audit::Actor},
};
use tower::ServiceExt;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let clients: usize = env("CLIENTS", 1000);
    let latency_ms: u64 = env("LATENCY_MS", 100);
    let rate: f64 = env("RATE", 200.0);
    let concurrency: usize = env("CONCURRENCY", 100);

    let pool = store::connect(&url, 32, None).await?;
    server::migrate(&pool).await?;
    sqlx::query("TRUNCATE knowledge.clients CASCADE").execute(&pool).await?;
    sqlx::query(
        "INSERT INTO knowledge.clients (id, slug, name, status, accounts)
         SELECT gen_random_uuid(), 'client-' || n, 'Client ' || n, 'active',
                jsonb_build_object('meta', 'act_' || (1000000 + n), 'google_ads', (1000000000 + n)::text)
         FROM generate_series(1, $1) n",
    )
    .bind(clients as i32)
    .execute(&pool)
    .await?;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM knowledge.clients").fetch_all(&pool).await?;

    let behaviour = sim::Behaviour { latency_ms, rate_per_second: Some(rate), ..sim::Behaviour::default() };
    let simulator = sim::spawn("127.0.0.1:0".parse()?, switchboard::platforms::simulator(behaviour)).await?;

    let mut config = Config::load()?;
    config.platforms.meta.rate_per_second = Some(rate);
    config.platforms.google_ads.rate_per_second = Some(rate);
    // One token drives every sync: lift its API rate limit out of the way.
    config.rate_limit_per_minute = 100_000_000;
    config.rate_limit_burst = 100_000_000;
    let platforms =
        Arc::new(Platforms::new(Mode::Sandbox, config.platforms.sandboxed(&simulator.base_url), Arc::default()));
    let runtime = switchboard::workflows::Runtime::new(pool.clone(), platforms);
    let state = AppState::new(runtime, config, b"benchmark-secret-benchmark-secret-benchmark", bench_keys())?;
    let token = state.tokens.issue(&pool, &Actor::cli(), "bench", &[Scope::Admin], None).await?.token;
    let router = api::app(state);

    let body = r#"{"from": "2026-06-01", "to": "2026-06-07"}"#;
    let started = Instant::now();
    let outcomes: Vec<(u16, String)> = futures::stream::iter(ids)
        .map(|id| {
            let router = router.clone();
            let token = token.clone();
            async move {
                let req = Request::post(format!("/v1/clients/{id}/metrics/sync"))
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .expect("request");
                let res = router.oneshot(req).await.expect("infallible");
                let status = res.status().as_u16();
                let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap_or_default();
                let outcome = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["status"].as_str().map(String::from))
                    .unwrap_or_default();
                (status, outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed().as_secs_f64();

    let stats = simulator.state.stats();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM costs.daily_metrics").fetch_one(&pool).await?;
    let ok = outcomes.iter().filter(|(s, o)| *s == 200 && o == "ok").count();
    println!("Metrics sync benchmark: {clients} clients x (Meta + Google Ads), 7 days each, concurrency {concurrency}");
    println!(
        "simulator: {latency_ms} ms latency, throttles above {rate}/s per platform; Switchboard limiters at {rate}/s"
    );
    let mut bound: f64 = 0.0;
    let mut throttled = 0;
    for key in ["meta", "google_ads"] {
        let p = &stats.platforms[key];
        bound = bound.max(p.calls as f64 / rate);
        throttled += p.throttled;
        println!("  {key:<11} calls {:>6}  throttled {:>4}  faults {}", p.calls, p.throttled, p.faults);
    }
    println!("syncs ok: {ok}/{clients}; rows stored: {rows}");
    if ok < clients {
        let mut other: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for (status, outcome) in outcomes.iter().filter(|(s, o)| !(*s == 200 && o == "ok")) {
            *other.entry(format!("{status} {outcome}")).or_default() += 1;
        }
        println!("  not ok: {other:?}");
    }
    println!("wall: {wall:.2} s; rate-limit bound: {bound:.2} s; wall / bound = {:.3} (target <= 1.15)", wall / bound);
    println!("throttled answers: {throttled} (target 0); peak RSS: {:.0} MB", peak_rss_mb());
    Ok(())
}

/// A throwaway key ring: the benchmark's database is thrown away too.
fn bench_keys() -> Arc<switchboard::crypto::KeyRing> {
    Arc::new(switchboard::crypto::KeyRing::parse(&switchboard::crypto::generate_key(), None).expect("generated key"))
}
