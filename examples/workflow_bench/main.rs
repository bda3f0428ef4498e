//! Workflow benchmarks (docs/PERFORMANCE.md); run them with `scripts/bench-workflows`.
//!
//! 1. Queue throughput: TASKS no-op tasks through the real engine (claim with
//!    SKIP LOCKED + lease, complete, settle), drained by WORKERS worker processes
//!    (copies of this binary started with `BENCH_ROLE=worker`), WORKER_CONCURRENCY
//!    at a time each (WORKERS="1 2" by default: one measurement per number); with the database's own counts of statements, commits and WAL
//!    flushes per task (`queue.rs`). `QUEUE_ONLY=1` stops after this part.
//! 2. `daily-monitoring` over CLIENTS clients × (Meta + Google Ads) against the
//!    simulator (LATENCY_MS, RATE per second per platform; Switchboard's limiters at
//!    RATE): wall time vs the rate-limit bound, throttled answers, peak RSS.
//! 3. The same platform work done the old system's way — one client after another —
//!    for comparison (capped at OLD_CLIENTS clients and extrapolated).

use std::{sync::Arc, time::Instant};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use switchboard::{
    config::Config,
    domain::validation::FieldError,
    platforms::{Mode, Platforms},
    server, sim,
    store::{self, runs::NewRun},
    workflows::{
        Registry, Runtime, StepError, TaskContext, Workflow, WorkflowInfo,
        daily_monitoring::DailyMonitoring,
        engine::{Worker, WorkerSettings},
    },
};
use tokio::sync::watch;

mod queue;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Does nothing: measures the engine alone.
pub struct Noop;

impl Workflow for Noop {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: "noop",
            title: "No-op",
            description: "",
            version: 1,
            default_cron: "0 0 1 1 *",
            default_timezone: "UTC",
            max_attempts: 1,
        }
    }
    fn params_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>> {
        Ok(params.clone())
    }
    fn run<'a>(&'a self, _ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async { Ok(Value::Null) })
    }
}

async fn wait_for_run(state: &Runtime, run: uuid::Uuid) -> anyhow::Result<String> {
    loop {
        let mut conn = state.pool.acquire().await?;
        let status = store::runs::find(&mut conn, run).await?.map(|r| r.status.to_string()).unwrap_or_default();
        if !matches!(status.as_str(), "queued" | "running") {
            return Ok(status);
        }
        drop(conn);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn start_run(state: &Runtime, workflow: &str, params: &Value) -> anyhow::Result<uuid::Uuid> {
    let mut tx = state.pool.begin().await?;
    let run = store::runs::create(
        &mut tx,
        &NewRun {
            workflow,
            workflow_version: 1,
            trigger: store::runs::RunTrigger::Api,
            params,
            dry_run: false,
            callback_url: None,
            schedule_id: None,
            created_by: None,
            client_ids: None,
            max_attempts: 3,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(run.id)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    if std::env::var("BENCH_ROLE").as_deref() == Ok("worker") {
        return queue::worker_process(&url, env("WORKER_CONCURRENCY", 100)).await;
    }
    let tasks: i64 = env("TASKS", 20_000);
    let clients: i64 = env("CLIENTS", 1000);
    let old_clients: i64 = env("OLD_CLIENTS", 100);
    let latency_ms: u64 = env("LATENCY_MS", 100);
    let rate: f64 = env("RATE", 200.0);
    let concurrency: usize = env("WORKER_CONCURRENCY", 100);

    let pool = store::connect(&url, 40, None).await?;
    server::migrate(&pool).await?;
    let behaviour = sim::Behaviour { latency_ms, rate_per_second: Some(rate), ..sim::Behaviour::default() };
    let simulator = sim::spawn("127.0.0.1:0".parse()?, switchboard::platforms::simulator(behaviour)).await?;
    let mut config = Config::load()?;
    config.platforms.meta.rate_per_second = Some(rate);
    config.platforms.google_ads.rate_per_second = Some(rate);
    let platforms =
        Arc::new(Platforms::new(Mode::Sandbox, config.platforms.sandboxed(&simulator.base_url), Arc::default()));
    let mut state = Runtime::new(pool.clone(), platforms);
    state.workflows = Arc::new(Registry::new(vec![Arc::new(Noop), Arc::new(DailyMonitoring)]));
    let settings =
        WorkerSettings { concurrency, poll: std::time::Duration::from_millis(100), ..WorkerSettings::default() };

    // 1. Queue throughput, in worker processes of their own.
    // WORKERS: the numbers of worker processes to measure, one after the other.
    let workers = std::env::var("WORKERS").unwrap_or_else(|_| "1 2".into());
    for n in workers.split([' ', ',']).filter_map(|n| n.parse::<usize>().ok()) {
        queue::bench(&pool, tasks, n, concurrency).await?;
    }
    if env("QUEUE_ONLY", 0) == 1 {
        return Ok(());
    }
    let (stop_tx, stop) = watch::channel(false);
    let worker = Arc::new(Worker::new(state.clone(), settings.clone()));
    let handle = tokio::spawn(worker.run(stop));

    // 2. daily-monitoring over many clients, concurrently.
    sqlx::query("TRUNCATE knowledge.clients CASCADE").execute(&pool).await?;
    sqlx::query(
        "INSERT INTO knowledge.clients (id, slug, name, status, accounts, budgets, targets)
         SELECT gen_random_uuid(), 'client-' || n, 'Client ' || n, 'active',
                jsonb_build_object('meta', 'act_' || (1000000 + n), 'google_ads', (1000000000 + n)::text),
                '{\"meta\": 5000, \"google_ads\": 3000}', '{\"cpa\": 25, \"roas\": 3}'
         FROM generate_series(1, $1) n",
    )
    .bind(clients as i32)
    .execute(&pool)
    .await?;
    simulator.state.reset();
    let params = json!({"date": "2026-06-14", "notify": false});
    let run = start_run(&state, "daily-monitoring", &params).await?;
    let started = Instant::now();
    let status = wait_for_run(&state, run).await?;
    let wall = started.elapsed().as_secs_f64();
    let stats = simulator.state.stats();
    let (meta, google) = (&stats.platforms["meta"], &stats.platforms["google_ads"]);
    let bound = (meta.calls as f64 / rate).max(google.calls as f64 / rate);
    println!(
        "daily-monitoring: {clients} clients, run {status}: wall {wall:.2} s; bound {bound:.2} s ({} Meta + {} Google Ads calls at {rate}/s); wall/bound {:.3} (target <= 1.2)",
        meta.calls,
        google.calls,
        wall / bound
    );
    println!(
        "  throttled answers: {} (target 0); peak RSS so far: {:.0} MB (target <= 150)",
        meta.throttled + google.throttled,
        peak_rss_mb()
    );
    let _ = stop_tx.send(true);
    let _ = handle.await;

    // 3. The old design: one client after another, same platform calls.
    let ids: Vec<(String, String)> =
        sqlx::query_as("SELECT accounts->>'meta', accounts->>'google_ads' FROM knowledge.clients LIMIT $1")
            .bind(old_clients)
            .fetch_all(&pool)
            .await?;
    let (from, to) = ("2026-06-01".parse()?, "2026-06-14".parse()?);
    let started = Instant::now();
    for (meta_account, google_account) in &ids {
        let _ = state.platforms.meta.daily_insights(meta_account, from, to).await;
        let _ = state.platforms.google_ads.daily_metrics(google_account, from, to).await;
    }
    let per_client = started.elapsed().as_secs_f64() / ids.len() as f64;
    println!(
        "old one-client-at-a-time loop: {:.3} s per client ({} clients measured) -> {:.0} s for {clients} clients ({:.0}x slower)",
        per_client,
        ids.len(),
        per_client * clients as f64,
        per_client * clients as f64 / wall
    );
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    Ok(())
}
