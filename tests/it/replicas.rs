//! Replicas share the vendors' limits (issue #9): the small version of
//! `scripts/bench-replicas`. The simulator runs in a process of its own at a low rate per
//! platform, as the vendor counts per app and account, not per process; two worker
//! processes, one API process and the binary's real roles run `daily-monitoring` over a few
//! dozen clients. No platform may answer with its throttling error, and every client is
//! done once: one task, one insights call per ad account, one digest per task that sent one.
//!
//! With per-process limiters the two workers together send twice the rate and the
//! simulator throttles them; the shared limits (decision 0022) keep them at one rate.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash::{FreshDb, Procs, free_port, get_json, ready, service, start_simulator};

const CLIENTS: usize = 60;
/// Requests per second per platform: the simulator's limit and the service's limiters.
const RATE: &str = "20";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_are_never_throttled_and_do_every_client_once() {
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs::default();
    let http = crate::support::http_client();

    // The simulator: its throttling answer above RATE requests a second per platform.
    let sim_port =
        start_simulator(&mut procs, dir.path(), &http, &["--latency-ms", "50", "--rate-per-second", RATE]).await;
    let stats_url = format!("http://127.0.0.1:{sim_port}/_sim/stats");

    // The service's limiters at the simulator's rate; a worker runs 8 tasks at once, so both
    // workers stay busy for the whole run.
    let limits = [
        ("META_RATE_PER_SECOND", RATE),
        ("GOOGLE_ADS_RATE_PER_SECOND", RATE),
        ("WHATSAPP_RATE_PER_SECOND", RATE),
        ("WHATSAPP_BURST", "10"),
        ("WORKER_CONCURRENCY", "8"),
    ];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let api = procs.spawn("api", service(dir.path(), &db, sim_port, port, "api", &limits));
    ready(&mut procs, api, &base).await;
    let token_file = dir.path().join("data").join(switchboard::server::BOOTSTRAP_TOKEN_FILE);
    let admin = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    // A worker serves no HTTP: it is up once it prints its banner.
    let mut workers = vec![];
    for name in ["worker a", "worker b"] {
        let w = procs.spawn(name, service(dir.path(), &db, sim_port, free_port(), "worker", &limits));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !procs.get(w).lines.try_iter().any(|l| l.contains("running")) {
            assert!(procs.alive(w) && Instant::now() < deadline, "{name} did not start within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        workers.push(w);
    }

    for i in 0..CLIENTS {
        let body = json!({
            "name": format!("Replica Client {i:02}"),
            "status": "active",
            "accounts": {"meta": format!("act_{}", 200_000_000 + i), "google_ads": (2_000_000_000 + i).to_string(),
                         "whatsapp": format!("+55119888{i:05}")},
            "budgets": {"meta": 3000, "google_ads": 2000},
            "targets": {"cpa": 20, "roas": 3},
        });
        let res = http.post(format!("{base}/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    // Nothing so far called a platform; the run's calls are all that is counted.
    http.post(format!("http://127.0.0.1:{sim_port}/_sim/reset")).send().await.unwrap();

    let day = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let res = http
        .post(format!("{base}/v1/workflows/daily-monitoring/runs"))
        .bearer_auth(&admin)
        .json(&json!({"params": {"date": day, "notify": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let run = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    // Which workers hold tasks is seen while they run (a finished task forgets its holder).
    let pool = db.pool().await;
    let mut holders = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        let view = get_json(&http, &format!("{base}/v1/runs/{run}"), &admin).await;
        if !matches!(view["status"].as_str(), Some("queued" | "running")) {
            break view;
        }
        assert!(Instant::now() < deadline, "the run did not finish within 120 s: {view}");
        let running: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT locked_by FROM engine.tasks WHERE run_id = $1::uuid AND status = 'running'",
        )
        .bind(&run)
        .fetch_all(&pool)
        .await
        .unwrap();
        holders.extend(running);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for w in workers {
        assert!(procs.alive(w), "{} died", procs.get(w).name);
    }
    let stats: Value = http.get(&stats_url).send().await.unwrap().json().await.unwrap();
    let platform = |p: &str, field: &str| stats["platforms"][p][field].as_u64().unwrap_or(0);
    let throttled: u64 = ["meta", "google_ads", "whatsapp"].iter().map(|p| platform(p, "throttled")).sum();
    assert_eq!(throttled, 0, "the simulator throttled the workers {throttled} times: {stats}");
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["tasks"]["succeeded"], CLIENTS, "{view}");

    // Every client once: one task, one first attempt, one insights call per ad account.
    let (tasks, clients, retried, sent): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT client_id), count(*) FILTER (WHERE attempt > 1),
                count(*) FILTER (WHERE result #>> '{notified,status}' = 'sent')
         FROM engine.tasks WHERE run_id = $1::uuid",
    )
    .bind(&run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((tasks, clients, retried), (CLIENTS as i64, CLIENTS as i64, 0));
    assert_eq!(platform("meta", "calls"), CLIENTS as u64, "{stats}");
    // Google Ads: one call per customer and one OAuth token per worker process.
    assert_eq!(platform("google_ads", "calls"), CLIENTS as u64 + 2, "{stats}");
    let created = &stats["platforms"]["whatsapp"]["created"];
    let digests = created["templates"].as_u64().unwrap_or(0) + created["messages"].as_u64().unwrap_or(0);
    assert!(sent > 0, "no client got a digest: the run checked nothing worth one");
    assert_eq!(digests, sent as u64, "digests accepted by WhatsApp vs tasks that sent one: {stats}");
    // Both workers took part, or the test shows nothing about replicas.
    assert_eq!(holders.len(), 2, "tasks were held by {holders:?}, not by both worker processes");
    pool.close().await;
    drop(procs);
}
