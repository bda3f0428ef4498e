//! Crash safety and replicas with the real binary: a service killed with SIGKILL
//! in the middle of a `client-onboarding` run finishes every task after a restart
//! without repeating an effect (checked in a separate simulator process), and two
//! scheduler processes on one database fire a slot once.
//!
//! Each test uses its own database (`crash_<uuid>`) on the server of
//! DATABASE_URL, dropped at the end; every process started is killed on exit,
//! also when an assertion fails. The process helpers serve `replicas.rs` too.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const LEASE_SECS: u64 = 5;
const CLIENTS: usize = 12;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A database of its own, dropped (with any connection left) when the test ends.
pub(crate) struct FreshDb {
    name: String,
    server_url: String,
    pub(crate) url: String,
}

impl FreshDb {
    pub(crate) async fn create() -> Self {
        let server_url =
            std::env::var("DATABASE_URL").expect("DATABASE_URL points at a server where tests may CREATE DATABASE");
        let name = format!("crash_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
        let (without_query, query) =
            server_url.split_once('?').map_or((server_url.as_str(), None), |(a, q)| (a, Some(q)));
        let (server, _) = without_query.rsplit_once('/').expect("DATABASE_URL has a database name");
        let url = format!("{server}/{name}{}", query.map(|q| format!("?{q}")).unwrap_or_default());
        Self { name, server_url, url }
    }

    pub(crate) async fn pool(&self) -> PgPool {
        sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&self.url).await.unwrap()
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Drop cannot await: a thread with its own runtime does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A started process and what it prints.
pub(crate) struct Proc {
    pub(crate) name: String,
    child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
}

/// Every process a test starts; all are killed when it is dropped.
#[derive(Default)]
pub(crate) struct Procs(Vec<Proc>);

impl Procs {
    pub(crate) fn spawn(&mut self, name: &str, mut cmd: Command) -> usize {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.0.push(Proc { name: name.into(), child, lines });
        self.0.len() - 1
    }

    pub(crate) fn get(&mut self, i: usize) -> &mut Proc {
        &mut self.0[i]
    }

    pub(crate) fn pid(&self, i: usize) -> u32 {
        self.0[i].child.id()
    }

    pub(crate) fn alive(&mut self, i: usize) -> bool {
        self.0[i].child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, no chance to clean up.
    pub(crate) fn kill(&mut self, i: usize) {
        let p = &mut self.0[i];
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if p.child.try_wait().ok().flatten().is_none() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

/// The simulator in a process of its own (so it outlives the service), started as
/// `switchboard sim --port P` plus `args`, and waited for until it answers. Its port.
pub(crate) async fn start_simulator(procs: &mut Procs, dir: &Path, http: &reqwest::Client, args: &[&str]) -> u16 {
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["sim", "--port", &port.to_string()])
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("LOG_LEVEL", "warn");
    let sim = procs.spawn("simulator", cmd);
    let stats_url = format!("http://127.0.0.1:{port}/_sim/stats");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(&stats_url).send().await.is_err() {
        assert!(procs.alive(sim) && Instant::now() < deadline, "the simulator did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    port
}

/// Puts the simulated ClickUp workspace on the Enterprise plan (10,000 calls a minute per
/// token). The default plan (100 a minute) would make an onboarding run wait out a minute,
/// not behave differently.
pub(crate) async fn clickup_enterprise_plan(http: &reqwest::Client, sim_port: u16) {
    let plan = http
        .post(format!("http://127.0.0.1:{sim_port}/_sim/clickup/config"))
        .json(&json!({"plan_limit_per_minute": 10_000}))
        .send()
        .await
        .unwrap();
    assert!(plan.status().is_success(), "{}", plan.text().await.unwrap_or_default());
}

/// The service's environment: a fresh database and every platform at the simulator.
pub(crate) fn service(
    dir: &Path,
    db: &FreshDb,
    sim_port: u16,
    port: u16,
    role: &str,
    extra: &[(&str, &str)],
) -> Command {
    let sim = format!("http://127.0.0.1:{sim_port}");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--role", role])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", db.url.clone()),
        ("JWT_SECRET", "crash-test-secret-that-is-long-enough-for-hs256".into()),
        ("ENCRYPTION_KEY", crate::support::ENCRYPTION_KEY.into()),
        ("DATA_DIR", dir.join("data").display().to_string()),
        ("PORT", port.to_string()),
        ("LOG_LEVEL", "warn".into()),
        ("PLATFORM_MODE", "live".into()),
        ("TASK_LEASE_SECS", LEASE_SECS.to_string()),
        ("META_ACCESS_TOKEN", "sandbox-token".into()),
        ("META_BASE_URL", format!("{sim}/meta")),
        ("GOOGLE_ADS_DEVELOPER_TOKEN", "sandbox-developer-token".into()),
        ("GOOGLE_ADS_CLIENT_ID", "sandbox-client.apps.googleusercontent.com".into()),
        ("GOOGLE_ADS_CLIENT_SECRET", "sandbox-client-secret".into()),
        ("GOOGLE_ADS_REFRESH_TOKEN", "sandbox-refresh-token".into()),
        ("GOOGLE_ADS_BASE_URL", format!("{sim}/google-ads")),
        ("GOOGLE_ADS_TOKEN_URL", format!("{sim}/google-ads/token")),
        ("GOOGLE_DRIVE_SERVICE_ACCOUNT_JSON", switchboard::sim::google_drive::SANDBOX_SERVICE_ACCOUNT_JSON.into()),
        ("GOOGLE_DRIVE_BASE_URL", format!("{sim}/google-drive")),
        ("GOOGLE_DRIVE_TOKEN_URL", format!("{sim}/google-drive/token")),
        // A service account owns no Drive storage: its folders go in the simulator's Shared Drive.
        ("GOOGLE_DRIVE_SHARED_DRIVE_ID", switchboard::sim::google_drive::SANDBOX_SHARED_DRIVE_ID.into()),
        ("CLICKUP_TOKEN", "pk_sandbox_token".into()),
        ("CLICKUP_SPACE_ID", "90120000001".into()),
        ("CLICKUP_BASE_URL", format!("{sim}/clickup")),
        ("WHATSAPP_ACCESS_TOKEN", "sandbox-token".into()),
        ("WHATSAPP_PHONE_NUMBER_ID", "100000000000001".into()),
        ("WHATSAPP_BASE_URL", format!("{sim}/whatsapp")),
        ("LLM_ANTHROPIC_API_KEY", "sandbox-key".into()),
        ("LLM_ANTHROPIC_BASE_URL", format!("{sim}/llm/anthropic")),
        // The plan limits (ClickUp: 100 requests a minute) would make the test slow, not different.
        ("CLICKUP_RATE_PER_SECOND", "200".into()),
        ("CLICKUP_BURST", "200".into()),
        ("GOOGLE_DRIVE_RATE_PER_SECOND", "200".into()),
        ("GOOGLE_DRIVE_BURST", "200".into()),
    ];
    for (k, v) in vars {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// `n` clients named `<name> 00…`, each with a WhatsApp number `<number>00…`, and an
/// onboarding run over them (202). The run's id.
pub(crate) async fn onboard_clients(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    (name, number): (&str, &str),
    n: usize,
) -> String {
    let mut ids = vec![];
    for i in 0..n {
        let body = json!({"name": format!("{name} {i:02}"), "accounts": {"whatsapp": format!("{number}{i:02}")}});
        let res = http.post(format!("{base}/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        ids.push(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let res = http
        .post(format!("{base}/v1/workflows/client-onboarding/runs"))
        .bearer_auth(admin)
        .json(&json!({"client_ids": ids}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

pub(crate) async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let res = http.get(url).bearer_auth(token).send().await.unwrap();
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.json().await.unwrap()
}

/// Waits for `/readyz`; returns what the process printed meanwhile.
pub(crate) async fn ready(procs: &mut Procs, i: usize, base: &str) -> Vec<String> {
    let http = crate::support::http_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(procs.alive(i), "{} exited early", procs.get(i).name);
        if let Ok(res) = http.get(format!("{base}/readyz")).send().await
            && res.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "{} not ready within 60 s", procs.get(i).name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    procs.get(i).lines.try_iter().collect()
}

fn is_jwt(s: &str) -> bool {
    s.split('.').count() == 3 && s.len() > 40 && !s.contains(' ')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_sigkill_with_no_task_lost_and_no_effect_repeated() {
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs::default();
    let http = crate::support::http_client();

    // (a) The simulator in a process of its own, so it outlives the service.
    let sim_port = start_simulator(&mut procs, dir.path(), &http, &["--latency-ms", "300"]).await;
    let stats_url = format!("http://127.0.0.1:{sim_port}/_sim/stats");
    clickup_enterprise_plan(&http, sim_port).await;

    // (b) The service (role all), four tasks at a time so the run takes a few waves.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let svc = procs.spawn("service", service(dir.path(), &db, sim_port, port, "all", &[("WORKER_CONCURRENCY", "4")]));
    let printed = ready(&mut procs, svc, &base).await;
    // Piped stdout: the first admin token is in DATA_DIR, not in what the service printed.
    assert!(!printed.iter().any(|l| is_jwt(l)), "an admin token was printed to piped stdout: {printed:?}");
    let token_file = dir.path().join("data").join(switchboard::server::BOOTSTRAP_TOKEN_FILE);
    let admin = std::fs::read_to_string(&token_file)
        .unwrap_or_else(|e| panic!("{}: {e}", token_file.display()))
        .trim()
        .to_string();

    // (c) Clients with WhatsApp numbers, and an onboarding run over them.
    let run = onboard_clients(&http, &base, &admin, ("Crash Client", "+55119999900"), CLIENTS).await;
    let run_url = format!("{base}/v1/runs/{run}");

    // (d) Some tasks done, not all: kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let view = get_json(&http, &run_url, &admin).await;
        let done = view["tasks"]["succeeded"].as_i64().unwrap();
        assert_eq!(view["tasks"]["failed"], 0, "{view}");
        if done >= 1 {
            assert!(done < CLIENTS as i64, "the run ended before the kill: {view}");
            break view;
        }
        assert!(Instant::now() < deadline, "no task finished within 60 s: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    procs.kill(svc);
    let killed = Instant::now();
    let pool = db.pool().await;
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM engine.tasks WHERE status = 'running'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(running > 0, "the kill should leave tasks mid-flight: {at_kill}");

    // (e) Restart (same settings, another port): every task finishes within lease + 30 s.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let svc = procs
        .spawn("service (restarted)", service(dir.path(), &db, sim_port, port, "all", &[("WORKER_CONCURRENCY", "4")]));
    let printed = ready(&mut procs, svc, &base).await;
    assert!(!printed.iter().any(|l| is_jwt(l)), "a second admin token was printed");
    let run_url = format!("{base}/v1/runs/{run}");
    let limit = Duration::from_secs(LEASE_SECS + 30);
    let view = loop {
        let view = get_json(&http, &run_url, &admin).await;
        if !matches!(view["status"].as_str(), Some("queued" | "running")) {
            break view;
        }
        assert!(killed.elapsed() < limit, "not finished within lease + 30 s of the kill: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["tasks"]["succeeded"], CLIENTS, "{view}");
    eprintln!(
        "crash test: {} of {CLIENTS} done at the kill, all done {:?} after it",
        at_kill["tasks"]["succeeded"],
        killed.elapsed()
    );

    // (f) No effect twice: the simulator saw exactly one of each.
    let stats: Value = http.get(&stats_url).send().await.unwrap().json().await.unwrap();
    let created = |platform: &str, kind: &str| stats["platforms"][platform]["created"][kind].as_u64().unwrap_or(0);
    let template = switchboard::platforms::clickup::default_onboarding_template().len() as u64;
    let n = CLIENTS as u64;
    assert_eq!(created("google_drive", "folders"), 5 * n, "{stats}");
    assert_eq!(created("clickup", "lists"), n, "{stats}");
    assert_eq!(created("clickup", "tasks"), n * template, "{stats}");
    // A WhatsApp message has no find-or-create: one accepted by the vendor in the instant
    // before its ledger row (the kill) is sent again on the retry (docs/WORKFLOWS.md, "No
    // repeated effects"). So at most one extra per task the kill left running, never more.
    // Welcomes are templates; any free-form text would have been refused outside the window.
    let messages = created("whatsapp", "messages") + created("whatsapp", "templates");
    assert_eq!(created("whatsapp", "messages"), 0, "{stats}");
    assert!(
        (n..=n + running as u64).contains(&messages),
        "{messages} messages for {n} clients, {running} killed mid-flight: {stats}"
    );
    let tasks = get_json(&http, &format!("{run_url}/tasks?limit=100"), &admin).await;
    for t in tasks["data"].as_array().unwrap() {
        assert_eq!(t["status"], "succeeded", "{t}");
    }
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM knowledge.clients WHERE status = 'active'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(active, CLIENTS as i64);
    pool.close().await;
    drop(procs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scheduler_processes_fire_a_slot_once() {
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs::default();
    // Sandbox platforms (no PLATFORM_MODE, no credentials): nothing here calls them.
    let spawn = |procs: &mut Procs, name: &str, role: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--role", role])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("JWT_SECRET", "crash-test-secret-that-is-long-enough-for-hs256")
            .env("ENCRYPTION_KEY", crate::support::ENCRYPTION_KEY)
            .env("DATA_DIR", dir.path().join("data"))
            .env("LOG_LEVEL", "warn")
            .env("SCHEDULER_TICK_SECS", "1")
            .env("PORT", free_port().to_string());
        procs.spawn(name, cmd)
    };
    // Started together on an empty database: both migrate and seed at once.
    let a = spawn(&mut procs, "scheduler a", "scheduler");
    let b = spawn(&mut procs, "scheduler b", "scheduler");
    let w = spawn(&mut procs, "worker", "worker");

    // Both are up once the default schedules exist and each printed its banner.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut banners = [false, false];
    let pool = loop {
        for (k, i) in [a, b].into_iter().enumerate() {
            assert!(procs.alive(i), "{} exited", procs.get(i).name);
            banners[k] |= procs.get(i).lines.try_iter().any(|l| l.contains("running"));
        }
        if banners == [true, true]
            && let Ok(pool) = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.url).await
            && sqlx::query_scalar::<_, i64>("SELECT count(*) FROM engine.schedules")
                .fetch_one(&pool)
                .await
                .is_ok_and(|n| n >= 3)
        {
            break pool;
        }
        assert!(Instant::now() < deadline, "the schedulers did not start within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let per_workflow: Vec<(String, i64)> =
        sqlx::query_as("SELECT workflow, count(*) FROM engine.schedules GROUP BY workflow ORDER BY workflow")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(per_workflow.iter().all(|(_, n)| *n == 1), "default schedules seeded twice: {per_workflow:?}");

    // Every minute, due now (this minute's slot).
    let schedule = Uuid::now_v7();
    let slot: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "INSERT INTO engine.schedules (id, workflow, cron, timezone, enabled, next_fire_at)
         VALUES ($1, 'daily-monitoring', '* * * * *', 'UTC', true, date_trunc('minute', now()))
         RETURNING next_fire_at",
    )
    .bind(schedule)
    .fetch_one(&pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let for_slot: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine.schedule_firings WHERE schedule_id = $1 AND fire_at = $2")
            .bind(schedule)
            .bind(slot)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(for_slot, 1, "the slot fired {for_slot} times");
    // A minute boundary may pass meanwhile: its slot is another firing, but never a run without one.
    let (runs, firings, linked): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM engine.runs WHERE schedule_id = $1),
                (SELECT count(*) FROM engine.schedule_firings WHERE schedule_id = $1),
                (SELECT count(*) FROM engine.schedule_firings f JOIN engine.runs r ON r.id = f.run_id AND r.trigger = 'schedule' WHERE f.schedule_id = $1)",
    )
    .bind(schedule)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((runs, linked), (firings, firings), "one run per firing");
    let next: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT next_fire_at FROM engine.schedules WHERE id = $1")
            .bind(schedule)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(next > slot);
    for i in [a, b, w] {
        assert!(procs.alive(i), "{} died", procs.get(i).name);
    }
    pool.close().await;
    drop(procs);
}
