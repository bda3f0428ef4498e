//! The workflow engine against a real Postgres: concurrency and the global cap,
//! retries with backoff, permanent failures, run statuses, the reaper, leases, the
//! side-effect ledger, dry runs, cancel, retry, several workers on one run. (The
//! scheduler's tests are in `runs_api.rs`, with the schedules API.)
//!
//! Test workflows (`Probe`) count what they do, so the tests see what really ran.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    api::AppState,
    domain::validation::FieldError,
    store::{self, audit::Actor, runs::RunTrigger},
    workflows::{
        Registry, StepError, TaskContext, Workflow, WorkflowInfo,
        engine::{Worker, WorkerSettings},
        runs,
    },
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use crate::support::TestApp;

/// What a `Probe` did, shared with the test.
#[derive(Default)]
pub struct Stats {
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Real executions of the ledger-wrapped effect.
    pub effects: AtomicUsize,
    /// Steps that ran to their end (not stopped by a cancel).
    pub completed: AtomicUsize,
    /// Executions per client.
    executions: Mutex<HashMap<Uuid, usize>>,
    /// When each attempt started, per client.
    starts: Mutex<HashMap<Uuid, Vec<Instant>>>,
    /// Client names that fail permanently (the test may change it).
    pub doomed: Mutex<HashSet<String>>,
    /// Client names whose step panics.
    pub panicking: Mutex<HashSet<String>>,
}

impl Stats {
    pub fn executions(&self, client: Uuid) -> usize {
        self.executions.lock().unwrap().get(&client).copied().unwrap_or(0)
    }

    pub fn all_executions(&self) -> HashMap<Uuid, usize> {
        self.executions.lock().unwrap().clone()
    }

    fn starts(&self, client: Uuid) -> Vec<Instant> {
        self.starts.lock().unwrap().get(&client).cloned().unwrap_or_default()
    }
}

/// Decrements the in-flight count however the step ends (also when dropped by a cancel).
struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

/// A configurable test workflow.
pub struct Probe {
    pub key: &'static str,
    pub max_attempts: u32,
    pub sleep: Duration,
    /// Attempts 1..=transient fail with a retryable error.
    pub transient: i32,
    /// Perform one effect (`send`) through the ledger first.
    pub effect: bool,
    pub stats: Arc<Stats>,
}

impl Probe {
    pub fn new(key: &'static str) -> Self {
        Self { key, max_attempts: 3, sleep: Duration::ZERO, transient: 0, effect: false, stats: Arc::default() }
    }
}

/// Parameters of a `Probe` (only to check validation naming the field).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeParams {
    #[serde(default)]
    level: u32,
}

impl Workflow for Probe {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: self.key,
            title: "Probe",
            description: "Test workflow",
            version: 7,
            default_cron: "0 6 * * *",
            default_timezone: "UTC",
            max_attempts: self.max_attempts,
        }
    }

    fn params_schema(&self) -> Value {
        json!({"type": "object"})
    }

    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>> {
        let (p, normalised) = switchboard::workflows::parse_params::<ProbeParams>(params)?;
        if p.level > 10 {
            return Err(vec![FieldError::new("params.level", "at most 10")]);
        }
        Ok(normalised)
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let s = &*self.stats;
            let now = s.in_flight.fetch_add(1, SeqCst) + 1;
            let _guard = InFlight(s);
            s.max_in_flight.fetch_max(now, SeqCst);
            *s.executions.lock().unwrap().entry(ctx.client.id).or_default() += 1;
            s.starts.lock().unwrap().entry(ctx.client.id).or_default().push(Instant::now());
            let sent: Option<Value> = if self.effect {
                ctx.effect("send", || async {
                    s.effects.fetch_add(1, SeqCst);
                    Ok(json!({"sent_to": ctx.client.name}))
                })
                .await?
            } else {
                None
            };
            tokio::time::sleep(self.sleep).await;
            if s.panicking.lock().unwrap().contains(&ctx.client.name) {
                panic!("probe panics for {}", ctx.client.name);
            }
            if s.doomed.lock().unwrap().contains(&ctx.client.name) {
                return Err(StepError::permanent(format!("{} is doomed", ctx.client.name)));
            }
            if ctx.attempt <= self.transient {
                return Err(StepError::transient(format!("flaky attempt {}", ctx.attempt)));
            }
            s.completed.fetch_add(1, SeqCst);
            Ok(json!({"client": ctx.client.name, "attempt": ctx.attempt, "sent": sent}))
        })
    }
}

/// The app's state with only these workflows registered.
pub fn state_with(app: &TestApp, workflows: Vec<Arc<dyn Workflow>>) -> AppState {
    let mut state = app.state.clone();
    state.runtime.workflows = Arc::new(Registry::new(workflows));
    state
}

pub struct RunningWorker {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl RunningWorker {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }
}

pub fn settings(concurrency: usize, lease: Duration) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        lease,
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(10),
        ..WorkerSettings::default()
    }
}

pub fn start_worker(state: &AppState, settings: WorkerSettings) -> RunningWorker {
    let (stop, rx) = watch::channel(false);
    let worker = Arc::new(Worker::new(state.runtime.clone(), settings));
    RunningWorker { stop, handle: tokio::spawn(worker.run(rx)) }
}

/// Creates `n` clients named `{prefix} {i}`; returns their ids.
pub async fn clients(app: &TestApp, prefix: &str, n: usize) -> Vec<Uuid> {
    let mut ids = vec![];
    for i in 0..n {
        let c = app.create_client(json!({"name": format!("{prefix} {i:02}")})).await;
        ids.push(c["id"].as_str().unwrap().parse().unwrap());
    }
    ids
}

/// Starts a run of `workflow` over `clients` the way every caller does (`workflows::runs::start`).
pub async fn start_run(state: &AppState, workflow: &str, clients: &[Uuid], dry_run: bool) -> Uuid {
    let w = state.workflows.get(workflow).expect("registered").clone();
    let params = w.check_params(&Value::Null).unwrap();
    let mut conn = state.pool.acquire().await.unwrap();
    let start = runs::Start {
        workflow: w.as_ref(),
        params: &params,
        trigger: RunTrigger::Api,
        dry_run,
        callback_url: None,
        schedule_id: None,
        client_ids: Some(clients),
    };
    runs::start(&mut conn, &Actor::cli(), &start).await.unwrap().id
}

pub async fn run_status(pool: &PgPool, run: Uuid) -> String {
    sqlx::query_scalar::<_, String>("SELECT status FROM engine.runs WHERE id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until the run leaves `queued`/`running`; returns its status.
pub async fn finished(pool: &PgPool, run: Uuid, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let status = run_status(pool, run).await;
        if status != "queued" && status != "running" {
            return status;
        }
        assert!(Instant::now() < deadline, "run {run} still {status} after {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// (status, attempt, error) of a client's task in a run.
pub async fn task(pool: &PgPool, run: Uuid, client: Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempt, error FROM engine.tasks WHERE run_id = $1 AND client_id = $2")
        .bind(run)
        .bind(client)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn count(pool: &PgPool, sql: &str, run: Uuid) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(run).fetch_one(pool).await.unwrap()
}

#[sqlx::test]
async fn tasks_of_a_run_execute_concurrently(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { sleep: Duration::from_millis(300), ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Parallel", 20).await;
    let worker = start_worker(&state, settings(20, Duration::from_secs(30)));
    let started = Instant::now();
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(20)).await, "succeeded");
    let took = started.elapsed();
    // One client at a time would take 20 × 300 ms = 6 s.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(stats.max_in_flight.load(SeqCst) >= 10, "max in flight {}", stats.max_in_flight.load(SeqCst));
    worker.stop().await;
}

#[sqlx::test]
async fn the_global_cap_holds(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { sleep: Duration::from_millis(100), ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Capped", 8).await;
    let worker = start_worker(&state, settings(2, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(20)).await, "succeeded");
    assert_eq!(stats.max_in_flight.load(SeqCst), 2, "never more than the cap, and the cap is used");
    worker.stop().await;
}

#[sqlx::test]
async fn retryable_failures_back_off_then_succeed_or_fail_with_the_error_kept(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let recovers = Probe { transient: 2, ..Probe::new("recovers") };
    let gives_up = Probe { transient: 99, ..Probe::new("gives-up") };
    let (recovers_stats, gives_up_stats) = (recovers.stats.clone(), gives_up.stats.clone());
    let state = state_with(&app, vec![Arc::new(recovers), Arc::new(gives_up)]);
    let ids = clients(&app, "Flaky", 1).await;
    let worker = start_worker(
        &state,
        WorkerSettings { retry_base: Duration::from_millis(200), ..settings(4, Duration::from_secs(30)) },
    );

    let run = start_run(&state, "recovers", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(20)).await, "succeeded");
    let (status, attempt, error) = task(&pool, run, ids[0]).await;
    assert_eq!((status.as_str(), attempt, error), ("succeeded", 3, None));
    assert_eq!(recovers_stats.executions(ids[0]), 3);
    // Exponential backoff: 200 ms before the 2nd attempt, 400 ms before the 3rd.
    let starts = recovers_stats.starts(ids[0]);
    assert!(starts[1] - starts[0] >= Duration::from_millis(200), "{:?}", starts[1] - starts[0]);
    assert!(starts[2] - starts[1] >= Duration::from_millis(400), "{:?}", starts[2] - starts[1]);

    let run = start_run(&state, "gives-up", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(20)).await, "failed");
    let (status, attempt, error) = task(&pool, run, ids[0]).await;
    assert_eq!((status.as_str(), attempt), ("failed", 3));
    assert_eq!(error.as_deref(), Some("flaky attempt 3"));
    assert_eq!(gives_up_stats.executions(ids[0]), 3, "max_attempts bounds the tries");
    worker.stop().await;
}

#[sqlx::test]
async fn a_panicking_step_fails_its_task_at_once_with_the_panic_recorded(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { max_attempts: 3, ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Panics", 2).await;
    stats.panicking.lock().unwrap().insert("Panics 00".into());
    // A lease far longer than the wait: a panic left to the reaper would not end in time.
    let worker = start_worker(&state, settings(4, Duration::from_secs(300)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(10)).await, "partially_failed");
    let (status, attempt, error) = task(&pool, run, ids[0]).await;
    assert_eq!((status.as_str(), attempt), ("failed", 1), "not retried: it would panic again");
    assert_eq!(error.as_deref(), Some("the step panicked: probe panics for Panics 00"));
    assert_eq!(task(&pool, run, ids[1]).await.0, "succeeded", "the other client's task is untouched");
    assert_eq!(stats.executions(ids[0]), 1);
    worker.stop().await;
}

#[sqlx::test]
async fn run_status_follows_its_tasks(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe::new("probe");
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Mixed", 3).await;
    stats.doomed.lock().unwrap().insert("Mixed 00".into());
    let worker = start_worker(&state, settings(4, Duration::from_secs(30)));

    let all_good = start_run(&state, "probe", &ids[1..], false).await;
    assert_eq!(finished(&pool, all_good, Duration::from_secs(10)).await, "succeeded");
    let mixed = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, mixed, Duration::from_secs(10)).await, "partially_failed");
    // A permanent failure is not retried.
    let (status, attempt, error) = task(&pool, mixed, ids[0]).await;
    assert_eq!((status.as_str(), attempt, error.as_deref()), ("failed", 1, Some("Mixed 00 is doomed")));
    let all_bad = start_run(&state, "probe", &ids[..1], false).await;
    assert_eq!(finished(&pool, all_bad, Duration::from_secs(10)).await, "failed");
    assert_eq!(stats.executions(ids[0]), 2, "once per run, never retried");
    let no_clients = start_run(&state, "probe", &[], false).await;
    assert_eq!(run_status(&pool, no_clients).await, "succeeded", "a run with nothing to do is born finished");
    worker.stop().await;
}

#[sqlx::test]
async fn a_dead_workers_task_is_reaped_and_finished_by_a_live_one(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe::new("probe");
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Orphan", 2).await;
    let run = start_run(&state, "probe", &ids, false).await;
    // A worker claims one task with a 1 s lease and dies.
    let ghost = store::runs::claim(&pool, "ghost", 1.0, 1).await.unwrap();
    assert_eq!(ghost.len(), 1);
    let orphan = ghost[0].client_id;
    let worker = start_worker(&state, settings(4, Duration::from_secs(3)));
    assert_eq!(finished(&pool, run, Duration::from_secs(15)).await, "succeeded");
    let (status, attempt, _) = task(&pool, run, orphan).await;
    assert_eq!((status.as_str(), attempt), ("succeeded", 2), "the ghost's attempt counts");
    assert_eq!(stats.all_executions().values().copied().collect::<Vec<_>>(), [1, 1]);
    let locked: i64 =
        count(&pool, "SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND locked_by IS NOT NULL", run).await;
    assert_eq!(locked, 0);
    worker.stop().await;
}

#[sqlx::test]
async fn a_worker_that_lost_its_lease_cannot_record_an_outcome(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![Arc::new(Probe::new("probe"))]);
    let ids = clients(&app, "Lease", 1).await;
    let run = start_run(&state, "probe", &ids, false).await;
    let first = store::runs::claim(&pool, "w1", 1.0, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(store::runs::claim(&pool, "w2", 30.0, 10).await.unwrap().is_empty(), "a held task is not claimed twice");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store::runs::reap_expired(&pool).await.unwrap(), [run]);
    let second = store::runs::claim(&pool, "w2", 30.0, 10).await.unwrap();
    assert_eq!((second.len(), second[0].id, second[0].attempt), (1, first[0].id, 2));

    let id = first[0].id;
    assert!(store::runs::succeed_many(&pool, "w1", &[id], &[json!({})]).await.unwrap().is_empty());
    assert!(!store::runs::fail(&pool, id, "w1", "late", false, 0.0).await.unwrap());
    assert_eq!(store::runs::heartbeat(&pool, &[id], "w1", 30.0).await.unwrap(), []);
    assert_eq!(store::runs::heartbeat(&pool, &[id], "w2", 30.0).await.unwrap(), [(id, false)]);
    assert_eq!(store::runs::succeed_many(&pool, "w2", &[id], &[json!({"by": "w2"})]).await.unwrap(), [(id, run)]);
    let result: Value =
        sqlx::query_scalar("SELECT result FROM engine.tasks WHERE id = $1").bind(id).fetch_one(&pool).await.unwrap();
    assert_eq!(result, json!({"by": "w2"}));
}

#[sqlx::test]
async fn an_effect_recorded_in_one_attempt_is_not_repeated_in_the_next(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    // Performs the effect, then fails retryably once.
    let probe = Probe { effect: true, transient: 1, ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Ledger", 3).await;
    let worker = start_worker(&state, settings(4, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(15)).await, "succeeded");
    assert_eq!(stats.effects.load(SeqCst), 3, "one real effect per client over two attempts");
    for id in &ids {
        assert_eq!(stats.executions(*id), 2);
    }
    let (attempt, result): (i32, Value) =
        sqlx::query_as("SELECT attempt, result FROM engine.tasks WHERE run_id = $1 AND client_id = $2")
            .bind(run)
            .bind(ids[0])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempt, 2);
    assert_eq!(result["sent"], json!({"sent_to": "Ledger 00"}), "the second attempt got the recorded result");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM engine.effects WHERE run_id = $1 AND step = 'send' AND NOT dry_run", run)
            .await,
        3
    );
    worker.stop().await;
}

#[sqlx::test]
async fn a_dry_run_records_effects_without_performing_them(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { effect: true, ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Dry", 2).await;
    let worker = start_worker(&state, settings(4, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, true).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(15)).await, "succeeded");
    assert_eq!(stats.effects.load(SeqCst), 0, "nothing sent");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM engine.effects WHERE run_id = $1 AND step = 'send' AND dry_run", run).await,
        2
    );
    let results: Vec<Value> = sqlx::query_scalar("SELECT result FROM engine.tasks WHERE run_id = $1")
        .bind(run)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(results.iter().all(|r| r["sent"].is_null()), "{results:?}");
    worker.stop().await;
}

#[sqlx::test]
async fn cancel_stops_queued_tasks_at_once_and_running_ones_at_their_heartbeat(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { sleep: Duration::from_secs(20), ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Cancel", 3).await;
    // A 3 s lease heartbeats every second.
    let worker = start_worker(&state, settings(1, Duration::from_secs(3)));
    let run = start_run(&state, "probe", &ids, false).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.in_flight.load(SeqCst) == 0 {
        assert!(Instant::now() < deadline, "nothing started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = pool.acquire().await.unwrap();
    assert!(store::runs::cancel(&mut conn, run).await.unwrap());
    assert!(!store::runs::cancel(&mut conn, run).await.unwrap(), "a canceled run cannot be canceled again");
    drop(conn);
    let canceled_now =
        count(&pool, "SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND status = 'canceled'", run).await;
    assert_eq!(canceled_now, 2, "the queued tasks are canceled at once");

    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(5);
    while count(&pool, "SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND status = 'running'", run).await > 0 {
        assert!(Instant::now() < deadline, "the running task did not stop at its heartbeat");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stopped.elapsed() < Duration::from_secs(3), "{:?}", stopped.elapsed());
    assert_eq!(stats.in_flight.load(SeqCst), 0, "the step was stopped");
    assert_eq!(stats.completed.load(SeqCst), 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND status = 'canceled'", run).await,
        3
    );
    assert_eq!(run_status(&pool, run).await, "canceled");
    // Nothing of the canceled run is picked up again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats.all_executions().values().sum::<usize>(), 1);
    worker.stop().await;
}

#[sqlx::test]
async fn a_task_of_a_canceled_run_is_never_requeued(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    // Fails retryably after 500 ms, before any heartbeat (lease 30 s).
    let probe = Probe { sleep: Duration::from_millis(500), transient: 99, ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Late", 1).await;
    let worker = start_worker(&state, settings(1, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, false).await;
    while stats.in_flight.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut conn = pool.acquire().await.unwrap();
    assert!(store::runs::cancel(&mut conn, run).await.unwrap());
    drop(conn);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(task(&pool, run, ids[0]).await.0, "canceled");
    assert_eq!(stats.executions(ids[0]), 1, "not retried after the cancel");

    // A dead worker's task of a canceled run is not requeued by the reaper either.
    // Stop the worker first so that the ghost, not the worker, claims the new task.
    worker.stop().await;
    let again = start_run(&state, "probe", &ids, false).await;
    let ghost = store::runs::claim(&pool, "ghost", 0.2, 1).await.unwrap();
    assert_eq!(ghost[0].run_id, again);
    let mut conn = pool.acquire().await.unwrap();
    store::runs::cancel(&mut conn, again).await.unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store::runs::reap_expired(&pool).await.unwrap(), [again]);
    assert_eq!(task(&pool, again, ids[0]).await.0, "canceled");
}

#[sqlx::test]
async fn retry_requeues_only_the_failed_tasks_and_the_run_finishes_again(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe::new("probe");
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Retry", 4).await;
    stats.doomed.lock().unwrap().extend(["Retry 00".to_string(), "Retry 01".to_string()]);
    let worker = start_worker(&state, settings(4, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(10)).await, "partially_failed");

    stats.doomed.lock().unwrap().clear();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(store::runs::retry_failed(&mut conn, run).await.unwrap(), 2);
    drop(conn);
    assert_eq!(finished(&pool, run, Duration::from_secs(10)).await, "succeeded");
    let executions: Vec<usize> = ids.iter().map(|id| stats.executions(*id)).collect();
    assert_eq!(executions, [2, 2, 1, 1], "only the failed ones ran again");
    let (status, attempt, error) = task(&pool, run, ids[0]).await;
    assert_eq!(
        (status.as_str(), attempt, error),
        ("succeeded", 1, None),
        "a retry is a new attempt series; the old error is cleared"
    );
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(store::runs::retry_failed(&mut conn, run).await.unwrap(), 0, "nothing failed any more");
    worker.stop().await;
}

#[sqlx::test]
async fn two_workers_never_run_the_same_task_twice(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { sleep: Duration::from_millis(50), ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![Arc::new(probe)]);
    let ids = clients(&app, "Shared", 30).await;
    let a = start_worker(&state, settings(3, Duration::from_secs(30)));
    let b = start_worker(&state, settings(3, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(30)).await, "succeeded");
    let executions = stats.all_executions();
    assert_eq!(executions.len(), 30);
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    assert!(stats.max_in_flight.load(SeqCst) > 3, "both workers took part");
    a.stop().await;
    b.stop().await;
}

#[sqlx::test]
async fn a_notification_wakes_the_worker_before_its_poll(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![Arc::new(Probe::new("probe"))]);
    let ids = clients(&app, "Woken", 1).await;
    let worker =
        start_worker(&state, WorkerSettings { poll: Duration::from_secs(30), ..settings(4, Duration::from_secs(30)) });
    tokio::time::sleep(Duration::from_millis(500)).await; // the listener is up
    let started = Instant::now();
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(10)).await, "succeeded");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    worker.stop().await;
}
