//! The worker: claims ready tasks in batches (`FOR UPDATE SKIP LOCKED` + lease, one
//! statement per batch), runs them concurrently up to a global cap, renews the leases
//! of every task it holds in one statement, records successes in batches and settles
//! runs. Claims overlap the running tasks: up to two claims are on their way while they
//! run, and a few claimed tasks wait in a small buffer so that a freed slot refills
//! without a round trip (`pacing`). A reaper returns tasks of dead workers to the queue. Workers
//! wake on `LISTEN switchboard_tasks` (one notification per run or requeue, never per
//! task), with polling as the fallback, so any number of replicas can share one
//! database. docs/decisions/0011-workflow-queue.md says why it is built this way.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::FutureExt;

use rand::Rng;
use serde_json::Value;
use sqlx::postgres::PgListener;
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
    time::Instant,
};
use tracing::Instrument;
use uuid::Uuid;

mod pacing;

use pacing::{Asked, ClaimPacer};

use super::{Runtime, StepError, TaskContext, context::RunInfo};
use crate::{
    config::Config,
    domain::client::Client,
    store::{self, runs::Claimed},
};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Tasks this process runs at once.
    pub concurrency: usize,
    pub lease: Duration,
    /// A worker whose heartbeat row is this old is dead and its tasks are taken over;
    /// each worker beats five times per period.
    pub takeover: Duration,
    /// Polling interval when no notification arrives.
    pub poll: Duration,
    /// First retry delay of a failed task (doubles per attempt).
    pub retry_base: Duration,
}

impl WorkerSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            concurrency: config.worker_concurrency,
            lease: Duration::from_secs(config.task_lease_secs),
            takeover: Duration::from_secs(config.worker_takeover_secs),
            retry_base: Duration::from_secs(config.task_retry_base_secs),
            ..Self::default()
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease: Duration::from_secs(30),
            takeover: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(5),
        }
    }
}

pub struct Worker {
    runtime: Runtime,
    settings: WorkerSettings,
    id: String,
    /// A run's workflow, params and dry-run flag never change: read them once per run,
    /// not once per task.
    runs: moka::sync::Cache<Uuid, Arc<store::runs::RunRow>>,
    leases: Leases,
}

/// A claimed task with what it needs to run: its client (loaded with its batch) and the
/// signal that stops it when its run is canceled or its lease is lost.
struct Job {
    task: Claimed,
    client: Option<Client>,
    stop: oneshot::Receiver<StepError>,
}

/// The tasks this worker holds under a lease — waiting in the buffer or running — each
/// with the sender that stops it. `keep_leases` renews them all in one statement.
#[derive(Default)]
struct Leases(Mutex<HashMap<Uuid, oneshot::Sender<StepError>>>);

impl Leases {
    fn hold(&self, task: Uuid) -> oneshot::Receiver<StepError> {
        let (tx, rx) = oneshot::channel();
        self.0.lock().expect("leases").insert(task, tx);
        rx
    }

    /// The task ended here (or was given back): its lease is no longer renewed.
    fn end(&self, task: Uuid) {
        self.0.lock().expect("leases").remove(&task);
    }

    fn ids(&self) -> Vec<Uuid> {
        self.0.lock().expect("leases").keys().copied().collect()
    }

    /// Stops a task still held (a task that already ended is left alone).
    fn stop(&self, task: Uuid, why: StepError) {
        if let Some(tx) = self.0.lock().expect("leases").remove(&task) {
            let _ = tx.send(why);
        }
    }
}

impl Worker {
    pub fn new(runtime: Runtime, settings: WorkerSettings) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let id = format!("{host}-{}-{}", std::process::id(), &Uuid::new_v4().simple().to_string()[..8]);
        let runs = moka::sync::Cache::builder().max_capacity(1000).time_to_live(Duration::from_secs(60)).build();
        Self { runtime, settings, id, runs, leases: Leases::default() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `stop` turns true; then stops claiming, gives back the claimed tasks it
    /// has not started and lets running tasks finish (their leases expire and another
    /// worker takes them if we are killed).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let (wake_tx, mut wake) = watch::channel(());
        let listener = tokio::spawn(listen(self.runtime.pool.clone(), wake_tx));
        let (record_tx, record_rx) = mpsc::channel::<Success>(4096);
        let recorder = tokio::spawn(record_successes(self.runtime.clone(), self.id.clone(), record_rx));
        // Registered before the first claim, so that every task it holds is covered.
        if let Err(e) = store::workers::beat(&self.runtime.pool, &self.id).await {
            tracing::warn!(error = %e, "writing the worker's heartbeat failed; its tasks rely on their leases");
        }
        let heart = tokio::spawn(beat(self.runtime.clone(), self.id.clone(), self.settings.takeover / 5));
        let reaper = tokio::spawn(reap(self.runtime.clone(), self.settings.lease, self.settings.takeover));
        let keeper = tokio::spawn(self.clone().keep_leases());
        let (claims_tx, mut claims) = mpsc::channel::<(Asked, Result<Vec<Job>, sqlx::Error>)>(4);
        let concurrency = self.settings.concurrency;
        let mut running: JoinSet<()> = JoinSet::new();
        let mut buffer: VecDeque<Job> = VecDeque::new();
        let mut pacer = ClaimPacer::new(concurrency);
        // The last claim came back short: the queue is empty until a notification, or this poll.
        let mut idle_until: Option<Instant> = None;
        let mut stopping = *stop.borrow();
        tracing::info!(worker = %self.id, concurrency, "worker started");
        loop {
            while let Some(joined) = running.try_join_next() {
                log_abnormal_end(joined);
                pacer.task_finished();
            }
            while !stopping && running.len() < concurrency {
                let Some(job) = buffer.pop_front() else { break };
                running.spawn(self.clone().execute(job, record_tx.clone()));
            }
            if stopping && pacer.in_flight() == 0 {
                break;
            }
            if !stopping
                && idle_until.is_none()
                && let Some(sent) = pacer.next(concurrency - running.len(), buffer.len())
            {
                let (me, tx) = (self.clone(), claims_tx.clone());
                tokio::spawn(async move {
                    let _ = tx.send((sent, me.claim(sent.tasks).await)).await;
                });
            }
            let poll = async {
                match idle_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((sent, claimed)) = claims.recv() => {
                    let got = match claimed {
                        Ok(jobs) => {
                            let got = jobs.len();
                            buffer.extend(jobs);
                            got
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "claiming tasks failed");
                            0
                        }
                    };
                    if pacer.answered(sent, got) {
                        let jitter = Duration::from_millis(rand::rng().random_range(0..200));
                        idle_until = Some(Instant::now() + self.settings.poll + jitter);
                    }
                }
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    log_abnormal_end(joined);
                    pacer.task_finished();
                }
                _ = wake.changed() => idle_until = None,
                _ = poll => idle_until = None,
                changed = stop.changed() => stopping = changed.is_err() || *stop.borrow(),
            }
        }
        listener.abort();
        reaper.abort();
        self.give_back(buffer.drain(..).map(|job| job.task.id).collect()).await;
        tracing::info!(worker = %self.id, in_flight = running.len(), "worker stopping; finishing running tasks");
        while let Some(joined) = running.join_next().await {
            log_abnormal_end(joined);
        }
        keeper.abort();
        drop(record_tx);
        let _ = recorder.await;
        heart.abort();
        if let Err(e) = store::workers::forget(&self.runtime.pool, &self.id).await {
            tracing::warn!(error = %e, "removing the worker's heartbeat failed; it goes stale and is removed");
        }
    }

    /// Claims up to `limit` tasks with their clients (one transaction).
    async fn claim(self: Arc<Self>, limit: usize) -> Result<Vec<Job>, sqlx::Error> {
        let batch = store::runs::claim_with_clients(
            &self.runtime.pool,
            &self.id,
            self.settings.lease.as_secs_f64(),
            limit as i64,
        )
        .await?;
        let clients: HashMap<Uuid, Client> = batch.clients.into_iter().map(|c| (c.id, c)).collect();
        Ok(batch
            .tasks
            .into_iter()
            .map(|task| {
                let stop = self.leases.hold(task.id);
                // Cloned, not removed: several tasks of a batch can share a client (two runs on it).
                let client = clients.get(&task.client_id).cloned();
                Job { task, client, stop }
            })
            .collect())
    }

    /// Returns claimed tasks that will not run here to the queue (attempt given back).
    async fn give_back(&self, ids: Vec<Uuid>) {
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.leases.end(*id);
        }
        match store::runs::release(&self.runtime.pool, &self.id, &ids).await {
            Ok(runs) => {
                tracing::info!(worker = %self.id, tasks = ids.len(), "gave back claimed tasks not started");
                let runs: HashSet<Uuid> = runs.into_iter().collect();
                for run in runs {
                    settle_and_announce(&self.runtime, run).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, tasks = ids.len(), "giving back claimed tasks failed; their leases will expire")
            }
        }
    }

    /// Renews the lease of every task held, every third of a lease, in one statement;
    /// stops the tasks whose run was canceled or whose lease was lost.
    async fn keep_leases(self: Arc<Self>) {
        let lease = self.settings.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let ids = self.leases.ids();
            if ids.is_empty() {
                continue;
            }
            match store::runs::heartbeat(&self.runtime.pool, &ids, &self.id, lease.as_secs_f64()).await {
                Ok(held) => {
                    let held: HashMap<Uuid, bool> = held.into_iter().collect();
                    for id in ids {
                        match held.get(&id) {
                            Some(false) => {}
                            Some(true) => self.leases.stop(id, StepError::permanent("the run was canceled")),
                            None => self.leases.stop(id, StepError::permanent("lease lost")),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, tasks = ids.len(), "renewing leases failed"),
            }
        }
    }

    async fn execute(self: Arc<Self>, job: Job, record: mpsc::Sender<Success>) {
        let Job { task, client, stop } = job;
        let span = tracing::info_span!("task", task = %task.id, run = %task.run_id, client = %task.client_id, attempt = task.attempt);
        let outcome = AssertUnwindSafe(self.perform(&task, client, stop).instrument(span)).catch_unwind().await;
        self.leases.end(task.id);
        let error = match outcome.unwrap_or_else(|panic| Err(panicked(&task, panic))) {
            Ok(summary) => {
                // Successes are recorded in batches by `record_successes` (one commit for
                // many tasks), which also settles their runs; the slot is free meanwhile.
                let _ = record.send(Success { task: task.id, result: summary }).await;
                return;
            }
            Err(e) => e,
        };
        if let Some(wait) = error.wait {
            self.requeue_after_wait(&task, &error, wait).await;
            return;
        }
        let delay = self.settings.retry_base.as_secs_f64() * 2f64.powi(task.attempt.saturating_sub(1).min(10));
        tracing::warn!(task = %task.id, error = %error.message, retryable = error.retryable, "task failed");
        match store::runs::fail(&self.runtime.pool, task.id, &self.id, &error.message, error.retryable, delay).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task = %task.id, "lease lost before the outcome was recorded; another worker owns it")
            }
            Err(e) => {
                tracing::error!(task = %task.id, error = %e, "recording the outcome failed; the lease will expire and the task rerun")
            }
        }
        settle_and_announce(&self.runtime, task.run_id).await;
    }

    /// A platform asked us to stay away for `wait`: the task goes back to the queue until
    /// then (slot freed now, the attempt given back; see `store::runs::requeue_after_wait`).
    async fn requeue_after_wait(&self, task: &Claimed, error: &StepError, wait: Duration) {
        tracing::info!(task = %task.id, wait_secs = wait.as_secs(), error = %error.message, "platform asked to wait; task back in the queue");
        let message = format!("waiting {}s as the platform asked: {}", wait.as_secs_f64().ceil(), error.message);
        match store::runs::requeue_after_wait(&self.runtime.pool, task.id, &self.id, &message, wait.as_secs_f64()).await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task = %task.id, "lease lost before the outcome was recorded; another worker owns it")
            }
            Err(e) => {
                tracing::error!(task = %task.id, error = %e, "recording the wait failed; the lease will expire and the task rerun")
            }
        }
        settle_and_announce(&self.runtime, task.run_id).await;
    }

    /// Loads what the task needs and runs the workflow step, heartbeating the lease.
    async fn perform(
        &self,
        task: &Claimed,
        client: Option<Client>,
        stop: oneshot::Receiver<StepError>,
    ) -> Result<Value, StepError> {
        let client = client.ok_or_else(|| StepError::permanent("the client no longer exists"))?;
        let run = match self.runs.get(&task.run_id) {
            Some(run) => run,
            None => {
                let mut conn = self.runtime.pool.acquire().await?;
                let run = Arc::new(
                    store::runs::find(&mut conn, task.run_id)
                        .await?
                        .ok_or_else(|| StepError::permanent("run not found"))?,
                );
                self.runs.insert(task.run_id, run.clone());
                run
            }
        };
        let workflow = self
            .runtime
            .workflows
            .get(&run.workflow)
            .cloned()
            .ok_or_else(|| StepError::permanent(format!("no workflow `{}` in this build", run.workflow)))?;
        let ctx = TaskContext {
            runtime: self.runtime.clone(),
            run: RunInfo {
                id: run.id,
                workflow: run.workflow.clone(),
                params: run.params.clone(),
                dry_run: run.dry_run,
            },
            client,
            task_id: task.id,
            attempt: task.attempt,
        };
        // `keep_leases` renews the lease and says when the task must stop.
        let stopped = async {
            match stop.await {
                Ok(why) => why,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = crate::costs::for_client(ctx.client.id, workflow.run(&ctx)) => result,
            stopped = stopped => Err(stopped),
        }
    }
}

/// A task's future ended by a panic outside its step (the step's own panics are
/// caught and recorded): never silently.
fn log_abnormal_end(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(error = %e, "a task ended abnormally; its lease will expire and it will run again");
    }
}

/// A step that panicked fails its task for good (running it again would panic
/// again), with the panic's message logged and recorded.
fn panicked(task: &Claimed, panic: Box<dyn std::any::Any + Send>) -> StepError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    tracing::error!(task = %task.id, run = %task.run_id, client = %task.client_id, panic = %message, "workflow step panicked");
    StepError::permanent(format!("the step panicked: {message}"))
}

/// A finished task waiting to be recorded.
struct Success {
    task: Uuid,
    result: Value,
}

/// Records successes in batches: whatever has queued up while the previous
/// statement ran goes into the next one. Then settles each run touched.
async fn record_successes(runtime: Runtime, worker: String, mut rx: mpsc::Receiver<Success>) {
    let mut batch: Vec<Success> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let ids: Vec<Uuid> = batch.iter().map(|s| s.task).collect();
        let results: Vec<Value> = batch.iter().map(|s| s.result.clone()).collect();
        let recorded = match store::runs::succeed_many(&runtime.pool, &worker, &ids, &results).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, tasks = ids.len(), "recording outcomes failed; the leases will expire and the tasks rerun");
                vec![]
            }
        };
        let held: HashSet<Uuid> = recorded.iter().map(|(task, _)| *task).collect();
        for s in batch.drain(..) {
            if !held.contains(&s.task) {
                tracing::warn!(task = %s.task, "lease lost before the outcome was recorded; another worker owns it");
            }
        }
        let mut runs: Vec<Uuid> = recorded.into_iter().map(|(_, run)| run).collect();
        runs.sort();
        runs.dedup();
        for run in runs {
            settle_and_announce(&runtime, run).await;
        }
    }
}

/// Settles the run if this was its last open task (its end event and callback are
/// written in the same transaction, once).
pub async fn settle_and_announce(runtime: &Runtime, run_id: Uuid) {
    match store::runs::settle(&runtime.pool, run_id).await {
        Ok(Some(run)) => tracing::info!(run = %run.id, status = %run.status, "run finished"),
        Ok(None) => {}
        Err(e) => tracing::warn!(run = %run_id, error = %e, "settling the run failed"),
    }
}

/// Wakes the worker loop on every task notification, reconnecting as needed.
async fn listen(pool: sqlx::PgPool, wake: watch::Sender<()>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&pool).await
            && listener.listen(store::runs::TASKS_CHANNEL).await.is_ok()
        {
            while let Ok(Some(_)) = listener.try_recv().await {
                let _ = wake.send(());
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Keeps this worker's heartbeat row fresh: one small statement per beat, whatever it
/// holds. A live worker busy with long tasks keeps beating, so it is never taken over.
async fn beat(runtime: Runtime, worker: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = store::workers::beat(&runtime.pool, &worker).await {
            tracing::warn!(error = %e, "writing the worker's heartbeat failed");
        }
    }
}

/// Returns tasks of dead workers to the queue: those of a worker whose heartbeat went
/// stale (`takeover`), and any whose lease expired (a worker without a heartbeat row).
async fn reap(runtime: Runtime, lease: Duration, takeover: Duration) {
    let every = (lease / 3).min(takeover / 5).clamp(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        let dead = store::workers::take_over_dead(&runtime.pool, takeover.as_secs_f64()).await;
        let expired = store::runs::reap_expired(&runtime.pool).await;
        for (reaped, why) in [(dead, "heartbeat stale"), (expired, "lease expired")] {
            match reaped {
                Ok(runs) if !runs.is_empty() => {
                    tracing::warn!(tasks = runs.len(), why, "requeued tasks whose worker stopped");
                    let mut runs = runs;
                    runs.sort();
                    runs.dedup();
                    for run in runs {
                        settle_and_announce(&runtime, run).await;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, why, "reaping the tasks of stopped workers failed"),
            }
        }
    }
}
