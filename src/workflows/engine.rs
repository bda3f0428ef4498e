//! The worker: claims ready tasks (`FOR UPDATE SKIP LOCKED` + lease), runs them
//! concurrently up to a global cap, heartbeats their leases, records the outcome,
//! and settles runs. A reaper returns tasks of dead workers to the queue. Workers
//! wake on `LISTEN switchboard_tasks`, with polling as the fallback, so any number
//! of replicas can share one database.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::FutureExt;

use rand::Rng;
use serde_json::Value;
use sqlx::postgres::PgListener;
use tokio::{sync::watch, task::JoinSet};
use tracing::Instrument;
use uuid::Uuid;

use super::{Runtime, StepError, TaskContext, context::RunInfo};
use crate::{
    config::Config,
    store::{self, runs::Claimed},
};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Tasks this process runs at once.
    pub concurrency: usize,
    pub lease: Duration,
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
}

impl Worker {
    pub fn new(runtime: Runtime, settings: WorkerSettings) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let id = format!("{host}-{}-{}", std::process::id(), &Uuid::new_v4().simple().to_string()[..8]);
        let runs = moka::sync::Cache::builder().max_capacity(1000).time_to_live(Duration::from_secs(60)).build();
        Self { runtime, settings, id, runs }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `stop` turns true; then stops claiming and lets running tasks
    /// finish (their leases expire and another worker takes them if we are killed).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let (wake_tx, mut wake) = watch::channel(());
        let listener = tokio::spawn(listen(self.runtime.pool.clone(), wake_tx));
        let (record_tx, record_rx) = tokio::sync::mpsc::channel::<Success>(4096);
        let recorder = tokio::spawn(record_successes(self.runtime.clone(), self.id.clone(), record_rx));
        let reaper = tokio::spawn(reap(self.runtime.clone(), self.settings.lease));
        let mut running: JoinSet<()> = JoinSet::new();
        tracing::info!(worker = %self.id, concurrency = self.settings.concurrency, "worker started");
        while !*stop.borrow() {
            while let Some(joined) = running.try_join_next() {
                log_abnormal_end(joined);
            }
            let free = self.settings.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                match store::runs::claim(&self.runtime.pool, &self.id, self.settings.lease.as_secs_f64(), free as i64)
                    .await
                {
                    Ok(tasks) => {
                        claimed = tasks.len();
                        for task in tasks {
                            let me = self.clone();
                            let record = record_tx.clone();
                            running.spawn(async move { me.execute(task, record).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming tasks failed"),
                }
            }
            if claimed == free && free > 0 {
                continue; // there may be more ready right away
            }
            let jitter = Duration::from_millis(rand::rng().random_range(0..200));
            tokio::select! {
                _ = wake.changed() => {}
                Some(joined) = running.join_next(), if !running.is_empty() => log_abnormal_end(joined),
                _ = tokio::time::sleep(self.settings.poll + jitter) => {}
                _ = stop.changed() => {}
            }
        }
        listener.abort();
        reaper.abort();
        tracing::info!(worker = %self.id, in_flight = running.len(), "worker stopping; finishing running tasks");
        while let Some(joined) = running.join_next().await {
            log_abnormal_end(joined);
        }
        drop(record_tx);
        let _ = recorder.await;
    }

    async fn execute(&self, task: Claimed, record: tokio::sync::mpsc::Sender<Success>) {
        let span = tracing::info_span!("task", task = %task.id, run = %task.run_id, client = %task.client_id, attempt = task.attempt);
        let outcome = AssertUnwindSafe(self.perform(&task).instrument(span)).catch_unwind().await;
        let error = match outcome.unwrap_or_else(|panic| Err(panicked(&task, panic))) {
            Ok(summary) => {
                // Successes are recorded in batches by `record_successes` (one commit for
                // many tasks), which also settles their runs.
                let (done, recorded) = tokio::sync::oneshot::channel();
                if record.send(Success { task: task.id, result: summary, done }).await.is_ok()
                    && recorded.await != Ok(true)
                {
                    tracing::warn!(task = %task.id, "lease lost before the outcome was recorded; another worker owns it");
                }
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
    async fn perform(&self, task: &Claimed) -> Result<Value, StepError> {
        let mut conn = self.runtime.pool.acquire().await?;
        let run = match self.runs.get(&task.run_id) {
            Some(run) => run,
            None => {
                let run = Arc::new(
                    store::runs::find(&mut conn, task.run_id)
                        .await?
                        .ok_or_else(|| StepError::permanent("run not found"))?,
                );
                self.runs.insert(task.run_id, run.clone());
                run
            }
        };
        let client = store::clients::find(&mut conn, &store::clients::ClientKey::Id(task.client_id), false)
            .await?
            .ok_or_else(|| StepError::permanent("the client no longer exists"))?;
        drop(conn);
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
        let lease = self.settings.lease;
        let heartbeat = async {
            loop {
                tokio::time::sleep(lease / 3).await;
                match store::runs::heartbeat(&self.runtime.pool, task.id, &self.id, lease.as_secs_f64()).await {
                    Ok(Some(false)) => {}
                    Ok(Some(true)) => return StepError::permanent("the run was canceled"),
                    Ok(None) => return StepError::permanent("lease lost"),
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
        };
        tokio::select! {
            result = crate::costs::for_client(ctx.client.id, workflow.run(&ctx)) => result,
            stopped = heartbeat => Err(stopped),
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
    /// Told whether the lease was still ours.
    done: tokio::sync::oneshot::Sender<bool>,
}

/// Records successes in batches: whatever has queued up while the previous
/// statement ran goes into the next one. Then settles each run touched.
async fn record_successes(runtime: Runtime, worker: String, mut rx: tokio::sync::mpsc::Receiver<Success>) {
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
        for s in batch.drain(..) {
            let _ = s.done.send(recorded.iter().any(|(task, _)| *task == s.task));
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

/// Returns tasks of dead workers to the queue, every few seconds.
async fn reap(runtime: Runtime, lease: Duration) {
    let every = (lease / 3).clamp(Duration::from_secs(1), Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        match store::runs::reap_expired(&runtime.pool).await {
            Ok(runs) if !runs.is_empty() => {
                tracing::warn!(tasks = runs.len(), "requeued tasks whose worker stopped");
                for run in runs {
                    settle_and_announce(&runtime, run).await;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
        }
    }
}
