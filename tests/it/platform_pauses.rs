//! A platform's requested wait, end to end (issue #8): a workflow task whose platform call
//! is deferred goes back to the queue with a `not_before` (`run_at`), its slot freed and no
//! attempt spent; a synchronous API call answers 503 with `Retry-After` at once. And link
//! clicks: stored beside clicks, exposed by the metrics API, CTR/CPC computed from them.

use std::{sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    domain::validation::FieldError,
    sim::meta::{Config, State as MetaSim},
    store,
    workflows::{StepError, TaskContext, Workflow, WorkflowInfo},
};
use uuid::Uuid;

use crate::{
    engine::{self, settings, start_run, start_worker, state_with},
    support::TestApp,
};

/// Reads the client's Meta campaigns: one Graph call, through the shared HTTP layer.
struct MetaCampaigns;

impl Workflow for MetaCampaigns {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: "meta_campaigns",
            title: "Meta campaigns",
            description: "Test workflow",
            version: 1,
            default_cron: "0 6 * * *",
            default_timezone: "UTC",
            max_attempts: 3,
        }
    }

    fn params_schema(&self) -> Value {
        json!({"type": "object"})
    }

    fn check_params(&self, _params: &Value) -> Result<Value, Vec<FieldError>> {
        Ok(json!({}))
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let account = ctx.client.accounts.meta.clone().ok_or_else(|| StepError::permanent("no Meta account"))?;
            let campaigns = ctx.runtime.platforms.meta.campaigns(&account).await?;
            Ok(json!({"campaigns": campaigns.len()}))
        })
    }
}

fn long_throttle(app: &TestApp) {
    app.sim.state.vendor::<MetaSim>().set_config(Config { regain_minutes: 30, throttle_next: 1, ..Config::default() });
}

async fn meta_client(app: &TestApp, name: &str, account: &str) -> Value {
    app.create_client(json!({"name": name, "accounts": {"meta": account}})).await
}

/// (status, attempt, seconds until run_at, error) of a task.
async fn task_wait(pool: &PgPool, task: Uuid) -> (String, i32, f64, Option<String>) {
    sqlx::query_as(
        "SELECT status, attempt, extract(epoch FROM run_at - now())::float8, error FROM engine.tasks WHERE id = $1",
    )
    .bind(task)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_deferred_platform_call_requeues_the_task_until_the_pause_ends_without_spending_an_attempt(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let a = meta_client(&app, "Paused Co", "111").await;
    let b = meta_client(&app, "Free Co", "222").await;
    let ids: Vec<Uuid> = [&a, &b].iter().map(|c| c["id"].as_str().unwrap().parse().unwrap()).collect();
    long_throttle(&app);
    let state = state_with(&app, vec![Arc::new(MetaCampaigns)]);
    // One slot: the other client's task can only run if the deferred one gave its slot back.
    let worker = start_worker(&state, settings(1, Duration::from_secs(30)));
    let run = start_run(&state, "meta_campaigns", &ids, false).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (waiting, done) = loop {
        let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM engine.tasks WHERE run_id = $1")
            .bind(run)
            .fetch_all(&pool)
            .await
            .unwrap();
        let queued = rows.iter().find(|(_, s)| s == "queued").map(|(id, _)| *id);
        let succeeded = rows.iter().find(|(_, s)| s == "succeeded").map(|(id, _)| *id);
        if let (Some(q), Some(s)) = (queued, succeeded) {
            break (q, s);
        }
        assert!(std::time::Instant::now() < deadline, "tasks: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    worker.stop().await;
    let (status, attempt, not_before, error) = task_wait(&pool, waiting).await;
    assert_eq!((status.as_str(), attempt), ("queued", 0), "back in the queue, the attempt given back");
    assert!((1700.0..=1800.0).contains(&not_before), "not before the pause ends: {not_before}s");
    let error = error.unwrap_or_default();
    assert!(error.contains("waiting 1800s") && error.contains("80000/2446079"), "{error}");
    assert_eq!(task_wait(&pool, done).await.0, "succeeded");
    assert_eq!(engine::run_status(&pool, run).await, "running", "the run waits for the deferred task");
    // Meta was asked once for the paused account: the wait did not spend its quota.
    assert_eq!(app.sim.state.stats().platforms["meta"].errors["80000/2446079"], 1);
}

#[sqlx::test]
async fn daily_monitoring_waits_for_a_paused_meta_account_instead_of_alerting(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let c = app
        .create_client(json!({"name": "Monitor Co", "status": "active", "accounts": {"meta": "555", "google_ads": "123-456-7890"}}))
        .await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    long_throttle(&app);
    let worker = start_worker(&app.state, settings(2, Duration::from_secs(30)));
    let run = start_run(&app.state, "daily-monitoring", &[id], false).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let task: Uuid = loop {
        let row: Option<(Uuid, String, Option<String>)> =
            sqlx::query_as("SELECT id, status, error FROM engine.tasks WHERE run_id = $1")
                .bind(run)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if let Some((task, status, Some(_))) = &row
            && status == "queued"
        {
            break *task;
        }
        assert!(std::time::Instant::now() < deadline, "task: {row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    worker.stop().await;
    let (_, attempt, not_before, error) = task_wait(&pool, task).await;
    assert_eq!(attempt, 0);
    assert!(not_before > 1700.0, "{not_before} {error:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM engine.alerts").await,
        0,
        "no alert for a gap Meta told us to fetch later"
    );
}

#[sqlx::test]
async fn a_wait_is_free_for_a_day_then_spends_an_attempt(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let c = meta_client(&app, "Store Co", "333").await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    let state = state_with(&app, vec![Arc::new(MetaCampaigns)]);
    let run = start_run(&state, "meta_campaigns", &[id], false).await;
    let claimed = store::runs::claim(&pool, "w1", 30.0, 10).await.unwrap();
    let task = claimed.iter().find(|t| t.run_id == run).unwrap().id;
    assert!(store::runs::requeue_after_wait(&pool, task, "w1", "wait", 60.0).await.unwrap());
    let (status, attempt, not_before, _) = task_wait(&pool, task).await;
    assert_eq!((status.as_str(), attempt), ("queued", 0));
    assert!((55.0..=60.0).contains(&not_before), "{not_before}");
    // A task first started more than a day ago pays for its waits like for failures.
    sqlx::query("UPDATE engine.tasks SET run_at = now(), started_at = now() - interval '2 days' WHERE id = $1")
        .bind(task)
        .execute(&pool)
        .await
        .unwrap();
    store::runs::claim(&pool, "w2", 30.0, 10).await.unwrap();
    assert!(!store::runs::requeue_after_wait(&pool, task, "w1", "wait", 60.0).await.unwrap(), "lease held by w2");
    assert!(store::runs::requeue_after_wait(&pool, task, "w2", "wait", 60.0).await.unwrap());
    assert_eq!(task_wait(&pool, task).await.1, 1, "the attempt is spent");
}

#[sqlx::test]
async fn a_paused_meta_account_answers_503_with_retry_after_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = meta_client(&app, "Api Co", "444").await;
    long_throttle(&app);
    let to = Utc::now().date_naive() - chrono::Duration::days(2);
    let body = json!({"client": client["slug"], "from": to - chrono::Duration::days(6), "to": to});
    let started = std::time::Instant::now();
    let res = app.post("/v1/platforms/meta/insights", body.clone()).send().await;
    assert!(started.elapsed() < Duration::from_secs(5), "answered at once: {:?}", started.elapsed());
    let problem = res.problem(503, "platform_error");
    assert_eq!(problem["platform"]["kind"], "throttled", "{problem}");
    assert_eq!(problem["platform"]["code"], "80000/2446079");
    assert_eq!(res.header("retry-after"), Some("1800"));
    // Again: Meta is not asked while the account is paused.
    let again = app.post("/v1/platforms/meta/insights", body).send().await;
    again.problem(503, "platform_error");
    let retry: u64 = again.header("retry-after").unwrap().parse().unwrap();
    assert!((1790..=1800).contains(&retry), "{retry}");
    assert_eq!(app.sim.state.stats().platforms["meta"].calls, 1);
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[sqlx::test]
async fn link_clicks_are_stored_beside_clicks_and_drive_ctr_and_cpc(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let c = app
        .create_client(json!({"name": "Clicks Co", "accounts": {"meta": "1234567890", "google_ads": "123-456-7890"}}))
        .await;
    let slug = c["slug"].as_str().unwrap();
    let to: NaiveDate = Utc::now().date_naive() - chrono::Duration::days(3);
    let from = to - chrono::Duration::days(6);
    let res = app.post(&format!("/v1/clients/{slug}/metrics/sync"), json!({"from": from, "to": to})).send().await;
    assert_eq!(res.status, 200, "{}", res.text());
    let sync = res.json();
    for p in sync["platforms"].as_array().unwrap() {
        let (clicks, link) = (p["clicks"].as_i64().unwrap(), p["link_clicks"].as_i64().unwrap());
        match p["platform"].as_str().unwrap() {
            "meta" => assert!(link > 0 && link < clicks, "Meta link clicks are a part of all clicks: {p}"),
            _ => assert_eq!(link, clicks, "Google Ads clicks are link clicks: {p}"),
        }
    }
    let url = format!("/v1/clients/{slug}/metrics?from={from}&to={to}&granularity=total");
    let totals = app.get(&url).send().await.json();
    for row in totals["data"].as_array().unwrap() {
        let (impressions, link, spend) = (
            row["impressions"].as_i64().unwrap(),
            row["link_clicks"].as_i64().unwrap(),
            row["spend"].as_f64().unwrap(),
        );
        assert_eq!(row["ctr"].as_f64(), Some(round2(link as f64 * 100.0 / impressions as f64)), "{row}");
        let cpc = row["cpc"].as_f64().unwrap();
        assert!((cpc - spend / link as f64).abs() < 0.01, "CPC per link click: {row}");
        if row["platform"] == "meta" {
            assert!(link < row["clicks"].as_i64().unwrap(), "{row}");
        }
    }
    // A Meta day stored before link clicks existed: unknown, and so are its CTR/CPC and the total's.
    let day_url = format!("/v1/clients/{slug}/metrics?from={from}&to={to}&platform=meta");
    sqlx::query("UPDATE costs.daily_metrics SET link_clicks = NULL WHERE platform = 'meta' AND date = $1")
        .bind(from)
        .execute(&app.pool)
        .await
        .unwrap();
    let days = app.get(&day_url).send().await.json();
    let first = &days["data"][0];
    assert_eq!(
        (first["date"].as_str(), first["link_clicks"].is_null(), first["ctr"].is_null()),
        (Some(&*from.to_string()), true, true)
    );
    let totals = app.get(&url).send().await.json();
    let meta = totals["data"].as_array().unwrap().iter().find(|r| r["platform"] == "meta").unwrap().clone();
    assert!(meta["link_clicks"].is_null() && meta["cpc"].is_null(), "{meta}");
}
