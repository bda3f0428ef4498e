//! Queue throughput: TASKS no-op tasks drained by WORKERS worker *processes* on one
//! PostgreSQL (durable: `synchronous_commit` stays on), and where the time goes —
//! statements, commits and WAL flushes per task from the database's own statistics
//! (`pg_stat_statements`, `pg_stat_database`, `pg_stat_wal`), CPU of the workers and
//! of the database.

use std::{
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;
use sqlx::PgPool;
use switchboard::{
    config::Config,
    platforms::{Mode, Platforms},
    store::{self, runs::NewRun},
    workflows::{
        Registry, Runtime,
        engine::{Worker, WorkerSettings},
    },
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
};
use uuid::Uuid;

/// A worker process: runs the engine with the no-op workflow until its stdin closes
/// (the parent holds the other end, so a dead parent never leaves a worker behind).
pub async fn worker_process(url: &str, concurrency: usize) -> anyhow::Result<()> {
    let pool = store::connect(url, 20, None).await?;
    let config = Config::load()?;
    // The no-op workflow never calls a platform: the address is never used.
    let platforms =
        Arc::new(Platforms::new(Mode::Sandbox, config.platforms.sandboxed("http://127.0.0.1:9"), Arc::default()));
    let mut runtime = Runtime::new(pool, platforms);
    runtime.workflows = Arc::new(Registry::new(vec![Arc::new(super::Noop)]));
    let settings = WorkerSettings { concurrency, poll: Duration::from_millis(100), ..WorkerSettings::default() };
    let (stop_tx, stop) = watch::channel(false);
    let worker = tokio::spawn(Arc::new(Worker::new(runtime, settings)).run(stop));
    println!("ready");
    tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    })
    .await?;
    let _ = stop_tx.send(true);
    worker.await?;
    Ok(())
}

/// Database-wide counters of the benchmark's database.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    commits: i64,
    wal_syncs: i64,
    wal_bytes: f64,
    db_cpu: f64,
}

async fn counters(pool: &PgPool) -> anyhow::Result<Counters> {
    let commits: i64 =
        sqlx::query_scalar("SELECT xact_commit::bigint FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(pool)
            .await?;
    let (wal_syncs, wal_bytes): (i64, f64) =
        sqlx::query_as("SELECT wal_sync::bigint, wal_bytes::float8 FROM pg_stat_wal").fetch_one(pool).await?;
    Ok(Counters { commits, wal_syncs, wal_bytes, db_cpu: postgres_cpu_secs() })
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of the benchmark's PostgreSQL: the postmaster (PG_POSTMASTER_PID, set by
/// scripts/bench-workflows) and its live children (backends, WAL writer, …).
fn postgres_cpu_secs() -> f64 {
    let Some(postmaster) = std::env::var("PG_POSTMASTER_PID").ok().and_then(|p| p.parse::<u32>().ok()) else {
        return 0.0;
    };
    let mut total = cpu_secs(postmaster);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid == Some(&postmaster.to_string()) {
            total += cpu_secs(pid);
        }
    }
    total
}

async fn spawn_worker(concurrency: usize) -> anyhow::Result<Child> {
    let mut child = Command::new(std::env::current_exe()?)
        .env("BENCH_ROLE", "worker")
        .env("WORKER_CONCURRENCY", concurrency.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    match lines.next_line().await? {
        Some(line) if line == "ready" => Ok(child),
        other => anyhow::bail!("worker process did not start: {other:?}"),
    }
}

async fn wait_until_finished(pool: &PgPool, run: Uuid) -> anyhow::Result<String> {
    loop {
        // Marked so that the statement counts leave it out.
        let status: String = sqlx::query_scalar("SELECT status /* bench-waiter */ FROM engine.runs WHERE id = $1")
            .bind(run)
            .fetch_one(pool)
            .await?;
        if !matches!(status.as_str(), "queued" | "running") {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn bench(pool: &PgPool, tasks: i64, workers: usize, concurrency: usize) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE knowledge.clients CASCADE").execute(pool).await?;
    sqlx::query("TRUNCATE engine.runs CASCADE").execute(pool).await?;
    sqlx::query("INSERT INTO knowledge.clients (id, slug, name, status) SELECT gen_random_uuid(), 'noop-' || n, 'Noop ' || n, 'active' FROM generate_series(1, $1) n")
        .bind(tasks as i32)
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE knowledge.clients").execute(pool).await?;
    let statements = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(pool).await.is_ok()
        && sqlx::query("SELECT pg_stat_statements_reset()").execute(pool).await.is_ok();

    let mut children = Vec::new();
    for _ in 0..workers {
        children.push(spawn_worker(concurrency).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // every worker is listening
    if statements {
        sqlx::query("SELECT pg_stat_statements_reset()").execute(pool).await?;
    }
    let worker_cpu_before: f64 = children.iter().filter_map(|c| c.id()).map(cpu_secs).sum();
    let before = counters(pool).await?;

    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let params = json!({});
    let run = store::runs::create(
        &mut tx,
        &NewRun {
            workflow: "noop",
            workflow_version: 1,
            trigger: store::runs::RunTrigger::Api,
            params: &params,
            dry_run: false,
            callback_url: None,
            schedule_id: None,
            created_by: None,
            client_ids: None,
            max_attempts: 1,
        },
    )
    .await?;
    tx.commit().await?;
    // Writing the run's tasks is part of the figure; the drain alone (from the commit
    // that makes them visible) is reported beside it.
    let enqueued = started.elapsed().as_secs_f64();
    let status = wait_until_finished(pool, run.id).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let worker_cpu = children.iter().filter_map(|c| c.id()).map(cpu_secs).sum::<f64>() - worker_cpu_before;
    let db_cpu = postgres_cpu_secs() - before.db_cpu;

    // Stop the workers (their backends flush their statistics as they end), then read.
    for child in &mut children {
        drop(child.stdin.take());
    }
    for child in &mut children {
        let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = counters(pool).await?;
    let per_task = |n: f64| n / tasks as f64;
    let succeeded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND status = 'succeeded'")
            .bind(run.id)
            .fetch_one(pool)
            .await?;
    println!(
        "queue: {tasks} no-op tasks, {workers} worker process(es) x {concurrency}: {elapsed:.2} s = {:.0} tasks/s (run {status}, {succeeded} succeeded); target >= 10000/s",
        tasks as f64 / elapsed
    );
    println!(
        "  of which writing the run and its tasks {:.0} ms; draining them {:.2} s = {:.0} tasks/s",
        enqueued * 1e3,
        elapsed - enqueued,
        tasks as f64 / (elapsed - enqueued)
    );
    println!(
        "  per task: {:.3} commits, {:.3} WAL flushes, {:.0} WAL bytes; CPU per 1,000 tasks: workers {:.0} ms, PostgreSQL {:.0} ms",
        per_task((after.commits - before.commits) as f64),
        per_task((after.wal_syncs - before.wal_syncs) as f64),
        per_task(after.wal_bytes - before.wal_bytes),
        per_task(worker_cpu) * 1e6,
        per_task(db_cpu) * 1e6,
    );
    if statements {
        let rows: Vec<(i64, f64, String)> = sqlx::query_as(
            "SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%bench-waiter%' AND query NOT LIKE '%pg_stat%'
             ORDER BY calls DESC",
        )
        .fetch_all(pool)
        .await?;
        let total: i64 = rows.iter().map(|r| r.0).sum();
        println!("  statements per task: {:.3} ({total} in all); the busiest:", per_task(total as f64));
        for (calls, time, query) in rows.iter().take(8) {
            let short: String = query.chars().take(90).collect();
            println!("    {calls:>7} calls  {:>7.1} ms  {short}", time);
        }
    } else {
        println!("  statements per task: n/a (pg_stat_statements is not loaded)");
    }
    Ok(())
}
