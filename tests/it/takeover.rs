//! A dead worker's tasks are taken over fast, a slow one's never (issue #9): two worker
//! processes share a `client-onboarding` run whose tasks take longer than the take-over
//! period; one is killed with SIGKILL and the other has its tasks back within the period
//! plus a beat and a reaper tick — far inside the task lease (60 s here), which is what
//! a dead worker's tasks waited for before — while no task of the live worker, busy
//! beyond the period, is taken from it, and no effect is repeated.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{
    FreshDb, Procs, clickup_enterprise_plan, free_port, get_json, onboard_clients, ready, service, start_simulator,
};

const CLIENTS: usize = 12;
const TAKEOVER_SECS: u64 = 2;
/// Stale after TAKEOVER_SECS, noticed by a reaper ticking every fifth of it; the rest is
/// slack for a loaded machine. The lease (60 s) is far beyond it.
const TAKEOVER_BOUND: Duration = Duration::from_secs(TAKEOVER_SECS + 3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_tasks_are_taken_over_within_seconds_and_a_busy_ones_never() {
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs::default();
    let http = crate::support::http_client();

    // The simulator in its own process; 400 ms a call makes an onboarding task take seconds.
    let sim_port = start_simulator(&mut procs, dir.path(), &http, &["--latency-ms", "400"]).await;
    let stats_url = format!("http://127.0.0.1:{sim_port}/_sim/stats");
    clickup_enterprise_plan(&http, sim_port).await;

    let takeover = TAKEOVER_SECS.to_string();
    let extra = [("WORKER_CONCURRENCY", "4"), ("TASK_LEASE_SECS", "60"), ("WORKER_TAKEOVER_SECS", takeover.as_str())];
    // A: API, scheduler and a worker. B: a worker of its own, the one killed.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let a = procs.spawn("service", service(dir.path(), &db, sim_port, port, "all", &extra));
    ready(&mut procs, a, &base).await;
    let b = procs.spawn("worker", service(dir.path(), &db, sim_port, free_port(), "worker", &extra));
    let admin = std::fs::read_to_string(dir.path().join("data").join(switchboard::server::BOOTSTRAP_TOKEN_FILE))
        .unwrap()
        .trim()
        .to_string();
    let pool = db.pool().await;
    // B is up once its heartbeat row is there (it is written before its first claim).
    let b_worker = format!("%-{}-%", procs.pid(b));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM engine.workers WHERE id LIKE $1")
            .bind(&b_worker)
            .fetch_one(&pool)
            .await
            .unwrap();
        if rows == 1 {
            break;
        }
        assert!(procs.alive(b) && Instant::now() < deadline, "the second worker did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let run = onboard_clients(&http, &base, &admin, ("Takeover Client", "+55119999800"), CLIENTS).await;

    // Kill B once it runs tasks and one of them has been running a full take-over period:
    // its beats kept it its own meanwhile.
    let held = |pattern: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM engine.tasks WHERE status = 'running' AND locked_by LIKE $1",
            )
            .bind(pattern)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM engine.tasks WHERE status = 'running' AND locked_by LIKE $1
               AND started_at < now() - make_interval(secs => $2)",
        )
        .bind(&b_worker)
        .bind(TAKEOVER_SECS as f64 + 0.5)
        .fetch_one(&pool)
        .await
        .unwrap();
        if busy > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the second worker ran no task for a take-over period");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    procs.kill(b);
    let killed = Instant::now();
    let running_at_kill = held(b_worker.clone()).await;
    assert!(running_at_kill > 0);

    // Its tasks leave it within the bound (back in the queue or running at A).
    while held(b_worker.clone()).await > 0 {
        assert!(
            killed.elapsed() < TAKEOVER_BOUND,
            "the killed worker's tasks were not taken over within {TAKEOVER_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_over = killed.elapsed();

    let run_url = format!("{base}/v1/runs/{run}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        let view = get_json(&http, &run_url, &admin).await;
        if !matches!(view["status"].as_str(), Some("queued" | "running")) {
            break view;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["status"], "succeeded", "{view}");
    eprintln!("take-over: {running_at_kill} tasks of the killed worker taken over {taken_over:?} after the kill");

    // Only the killed worker's tasks ran twice; A's tasks, many longer than the take-over
    // period, ran once each.
    let twice: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine.tasks WHERE attempt > 1").fetch_one(&pool).await.unwrap();
    assert_eq!(twice, running_at_kill, "tasks other than the killed worker's ran twice");
    let long: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM engine.tasks WHERE attempt = 1 AND finished_at - started_at > make_interval(secs => $1)",
    )
    .bind(TAKEOVER_SECS as f64)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(long > 0, "no task of the live worker outlasted the take-over period: the test shows nothing");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM engine.workers WHERE id LIKE $1")
        .bind(&b_worker)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the dead worker's heartbeat row was removed");

    // No effect twice (WhatsApp: at most one extra per task killed mid-flight, as in crash.rs).
    let stats: Value = http.get(&stats_url).send().await.unwrap().json().await.unwrap();
    let created = |platform: &str, kind: &str| stats["platforms"][platform]["created"][kind].as_u64().unwrap_or(0);
    let template = switchboard::platforms::clickup::default_onboarding_template().len() as u64;
    let n = CLIENTS as u64;
    assert_eq!(created("google_drive", "folders"), 5 * n, "{stats}");
    assert_eq!(created("clickup", "lists"), n, "{stats}");
    assert_eq!(created("clickup", "tasks"), n * template, "{stats}");
    let messages = created("whatsapp", "messages") + created("whatsapp", "templates");
    assert!((n..=n + running_at_kill as u64).contains(&messages), "{messages} messages for {n} clients: {stats}");
    pool.close().await;
    drop(procs);
}
