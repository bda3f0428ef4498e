//! `/v1/workflows`, `/v1/runs` and `/v1/schedules` through HTTP: the real router
//! with a test registry (the `Probe` workflows of `engine.rs`) or the built-in one;
//! and the scheduler (exactly-once firing, misfire policy, default schedules).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    api,
    workflows::{Workflow, scheduler},
};
use uuid::Uuid;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

use crate::{
    engine::{Probe, Stats, clients, count, finished, settings, start_worker, state_with},
    support::{TestApp, TestResponse, test_config},
};

/// The app serving these workflows (API and store share the registry).
async fn app_with(pool: PgPool, workflows: Vec<Arc<dyn Workflow>>) -> TestApp {
    app_with_config(pool, workflows, test_config()).await
}

async fn app_with_config(
    pool: PgPool,
    workflows: Vec<Arc<dyn Workflow>>,
    config: switchboard::config::Config,
) -> TestApp {
    let mut app = TestApp::with_config(pool, config).await;
    app.state = state_with(&app, workflows);
    app.router = api::app(app.state.clone());
    app
}

/// A probe sleeping `sleep_ms`, and its stats.
fn probe(key: &'static str, sleep_ms: u64) -> (Arc<dyn Workflow>, Arc<Stats>) {
    let p = Probe { sleep: Duration::from_millis(sleep_ms), ..Probe::new(key) };
    let stats = p.stats.clone();
    (Arc::new(p), stats)
}

fn ids_json(ids: &[Uuid]) -> Value {
    json!(ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
}

async fn start(app: &TestApp, key: &str, body: Value) -> TestResponse {
    app.post(&format!("/v1/workflows/{key}/runs"), body).send().await
}

/// Starts a run and returns its id (202 expected).
async fn started(app: &TestApp, key: &str, body: Value) -> Uuid {
    let res = start(app, key, body).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    res.json()["id"].as_str().unwrap().parse().unwrap()
}

fn ok(res: &TestResponse) -> Value {
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn invalid(res: &TestResponse, field: &str) {
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec![field.to_string()], "{}", res.text());
}

async fn audit_actions(app: &TestApp, run: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit.log WHERE resource_type = 'run' AND resource_id = $1 ORDER BY id")
        .bind(run.to_string())
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn workflows_are_listed_with_their_schema_and_default_schedule(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let list = ok(&app.get("/v1/workflows").send().await);
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|w| w["key"].as_str().unwrap()).collect();
    for key in ["client-onboarding", "daily-monitoring", "weekly-report"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    for w in list.as_array().unwrap() {
        assert!(w["params_schema"].is_object(), "{w}");
        assert!(w["default_cron"].as_str().is_some_and(|c| !c.is_empty()), "{w}");
        assert!(
            w["default_timezone"].is_string() && w["default_next_fire_at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{w}"
        );
        assert!(w["max_attempts"].as_u64().is_some_and(|n| n >= 1), "{w}");
    }
    let one = ok(&app.get("/v1/workflows/daily-monitoring").send().await);
    assert_eq!(one["key"], "daily-monitoring");
    assert!(one["params_schema"]["properties"]["anomaly_threshold"].is_object(), "{one}");
    app.get("/v1/workflows/no-such-workflow").send().await.problem(404, "not_found");
    app.post("/v1/workflows/no-such-workflow/runs", json!({})).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn starting_a_run_answers_202_with_the_run_and_its_location(pool: PgPool) {
    let (w, _) = probe("probe", 0);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Started", 3).await;
    let res = start(&app, "probe", json!({"client_ids": ids_json(&ids)})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let run = res.json();
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "queued");
    assert_eq!(run["links"]["self"], format!("/v1/runs/{id}"));
    assert_eq!(res.header("location"), Some(format!("/v1/runs/{id}").as_str()));
    assert_eq!(run["tasks"]["queued"], 3);

    let got = ok(&app.get(&format!("/v1/runs/{id}")).send().await);
    assert_eq!(
        (&got["trigger"], &got["workflow"], &got["workflow_version"]),
        (&json!("api"), &json!("probe"), &json!(7))
    );
    assert_eq!((&got["progress"], &got["dry_run"], &got["params"]), (&json!(0), &json!(false), &json!({"level": 0})));
    assert_eq!(got["duration_ms"], Value::Null, "not started yet");
    app.get(&format!("/v1/runs/{}", Uuid::now_v7())).send().await.problem(404, "not_found");
    app.get("/v1/runs/not-a-uuid").send().await.problem(404, "not_found");
    assert_eq!(audit_actions(&app, id.parse().unwrap()).await, ["run.start"]);
}

#[sqlx::test]
async fn prefer_wait_answers_200_with_the_finished_run(pool: PgPool) {
    let (w, _) = probe("probe", 100);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Waited", 4).await;
    let worker = start_worker(&app.state, settings(8, Duration::from_secs(30)));
    let res = app
        .post("/v1/workflows/probe/runs", json!({"client_ids": ids_json(&ids)}))
        .header("prefer", "wait=5")
        .send()
        .await;
    let run = ok(&res);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["tasks"], json!({"queued": 0, "running": 0, "succeeded": 4, "failed": 0, "canceled": 0}));
    assert_eq!(run["progress"], 100);
    assert!(run["duration_ms"].as_i64().is_some_and(|ms| ms >= 100), "{run}");
    assert!(run["started_at"].is_string() && run["finished_at"].is_string(), "{run}");
    assert_eq!(res.header("preference-applied"), Some("wait=5"));
    worker.stop().await;
}

#[sqlx::test]
async fn prefer_wait_on_a_slow_run_answers_202_after_the_wait(pool: PgPool) {
    let (w, _) = probe("slow", 3_000);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Slow", 1).await;
    let worker = start_worker(&app.state, settings(8, Duration::from_secs(30)));
    let t = Instant::now();
    let res = app
        .post("/v1/workflows/slow/runs", json!({"client_ids": ids_json(&ids)}))
        .header("prefer", "wait=1")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert!(t.elapsed() >= Duration::from_secs(1) && t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(res.json()["status"], "running");
    worker.stop().await;
}

#[sqlx::test]
async fn the_longest_wait_still_answers_before_the_request_timeout(pool: PgPool) {
    let (w, _) = probe("slow", 10_000);
    let config = switchboard::config::Config { request_timeout_secs: 3, ..test_config() };
    let app = app_with_config(pool, vec![w], config).await;
    let ids = clients(&app, "Timeout", 1).await;
    let t = Instant::now();
    // wait=30 is allowed, but the answer must come before the request times out (408).
    let res = app
        .post("/v1/workflows/slow/runs", json!({"client_ids": ids_json(&ids)}))
        .header("prefer", "wait=30")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 1);
}

#[sqlx::test]
async fn an_idempotency_key_replays_the_same_run(pool: PgPool) {
    let (w, _) = probe("probe", 0);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Once", 2).await;
    let body = json!({"client_ids": ids_json(&ids)});
    let send =
        || app.post("/v1/workflows/probe/runs", body.clone()).header("idempotency-key", "make-scenario-42").send();
    let first = send().await;
    let second = send().await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM engine.tasks").await, 2);
}

#[sqlx::test]
async fn bad_params_clients_and_callbacks_are_422_naming_the_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Real Client"})).await;
    let res = start(&app, "daily-monitoring", json!({"params": {"anomaly_threshold": 0}})).await;
    invalid(&res, "params.anomaly_threshold");
    invalid(
        &start(&app, "daily-monitoring", json!({"params": {"anomaly_threshold": "high"}})).await,
        "params.anomaly_threshold",
    );
    invalid(&start(&app, "daily-monitoring", json!({"params": {"colour": "red"}})).await, "params.colour");
    invalid(&start(&app, "daily-monitoring", json!({"client_ids": ["no-such-client"]})).await, "client_ids[0]");
    invalid(&start(&app, "daily-monitoring", json!({"client_ids": [client["slug"], "ghost"]})).await, "client_ids[1]");
    invalid(&start(&app, "daily-monitoring", json!({"client_ids": []})).await, "client_ids");
    invalid(&start(&app, "daily-monitoring", json!({"callback_url": "ftp://example.com/x"})).await, "callback_url");
    // The SSRF guard of webhook endpoints applies: no plain http, no internal addresses.
    invalid(
        &start(&app, "daily-monitoring", json!({"callback_url": "http://hooks.example.com/x"})).await,
        "callback_url",
    );
    invalid(
        &start(&app, "daily-monitoring", json!({"callback_url": "https://169.254.169.254/latest"})).await,
        "callback_url",
    );
    start(&app, "daily-monitoring", json!({"surprise": true})).await.problem(422, "validation_failed");
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 0, "nothing started");

    // A test workflow's own params struct, through `parse_params`.
    let (w, _) = probe("probe", 0);
    let app = app_with(app.pool.clone(), vec![w]).await;
    invalid(&start(&app, "probe", json!({"params": {"level": 11}})).await, "params.level");
    invalid(&start(&app, "probe", json!({"params": {"level": -1}})).await, "params.level");
}

#[sqlx::test]
async fn runs_are_listed_with_filters_and_pages(pool: PgPool) {
    let (a, stats) = probe("alpha", 0);
    let (b, _) = probe("beta", 0);
    let app = app_with(pool, vec![a, b]).await;
    let ids = clients(&app, "Listed", 2).await;
    stats.doomed.lock().unwrap().insert("Listed 00".into());
    let worker = start_worker(&app.state, settings(8, Duration::from_secs(30)));
    let mut alpha = vec![];
    for _ in 0..3 {
        let run = started(&app, "alpha", json!({"client_ids": ids_json(&ids[1..])})).await;
        finished(&app.pool, run, Duration::from_secs(10)).await;
        alpha.push(run);
    }
    let failing = started(&app, "alpha", json!({"client_ids": ids_json(&ids[..1])})).await;
    let beta = started(&app, "beta", json!({"client_ids": ids_json(&ids[..1])})).await;
    finished(&app.pool, failing, Duration::from_secs(10)).await;
    finished(&app.pool, beta, Duration::from_secs(10)).await;
    worker.stop().await;

    let list = |query: &str| {
        let res = app.get(&format!("/v1/runs{query}"));
        async move {
            let body = ok(&res.send().await);
            let ids: Vec<Uuid> =
                body["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
            (ids, body["next_cursor"].as_str().map(String::from))
        }
    };
    assert_eq!(list("").await.0, [beta, failing, alpha[2], alpha[1], alpha[0]], "newest first");
    assert_eq!(list("?workflow=beta").await.0, [beta]);
    let beta_errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error FROM engine.tasks WHERE run_id = $1")
        .bind(beta)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(list("?status=failed").await.0, [failing], "beta's tasks: {beta_errors:?}");
    assert_eq!(list("?status=succeeded&workflow=alpha").await.0, [alpha[2], alpha[1], alpha[0]]);
    assert_eq!(list("?client=listed-00").await.0, [beta, failing]);
    assert_eq!(list(&format!("?client={}", ids[1])).await.0, [alpha[2], alpha[1], alpha[0]]);
    assert_eq!(list("?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z").await.0, Vec::<Uuid>::new());
    let (page1, cursor) = list("?limit=2").await;
    assert_eq!(page1, [beta, failing]);
    let (page2, cursor) = list(&format!("?limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!(page2, [alpha[2], alpha[1]]);
    let (page3, cursor) = list(&format!("?limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!((page3, cursor), (vec![alpha[0]], None));
    app.get("/v1/runs?status=exploded").send().await.problem(400, "invalid_query");
    app.get("/v1/runs?client=nobody").send().await.problem(404, "not_found");
    app.get("/v1/runs?colour=red").send().await.problem(400, "invalid_query");
}

#[sqlx::test]
async fn a_runs_tasks_show_each_clients_outcome(pool: PgPool) {
    let (w, stats) = probe("probe", 0);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Tasked", 3).await;
    stats.doomed.lock().unwrap().insert("Tasked 01".into());
    let worker = start_worker(&app.state, settings(8, Duration::from_secs(30)));
    let run = started(&app, "probe", json!({"client_ids": ids_json(&ids)})).await;
    assert_eq!(finished(&app.pool, run, Duration::from_secs(10)).await, "partially_failed");
    worker.stop().await;
    let view = ok(&app.get(&format!("/v1/runs/{run}")).send().await);
    assert_eq!(
        (&view["status"], &view["tasks"]["succeeded"], &view["tasks"]["failed"], &view["progress"]),
        (&json!("partially_failed"), &json!(2), &json!(1), &json!(100))
    );

    let page = ok(&app.get(&format!("/v1/runs/{run}/tasks?limit=2")).send().await);
    let mut tasks = page["data"].as_array().unwrap().clone();
    let next = ok(&app
        .get(&format!("/v1/runs/{run}/tasks?limit=2&cursor={}", page["next_cursor"].as_str().unwrap()))
        .send()
        .await);
    tasks.extend(next["data"].as_array().unwrap().iter().cloned());
    assert_eq!((tasks.len(), &next["next_cursor"]), (3, &Value::Null));
    for t in &tasks {
        let client: Uuid = t["client_id"].as_str().unwrap().parse().unwrap();
        assert_eq!((&t["attempt"], &t["max_attempts"]), (&json!(1), &json!(3)), "{t}");
        assert!(t["started_at"].is_string() && t["finished_at"].is_string(), "{t}");
        if client == ids[1] {
            assert_eq!(
                (&t["status"], &t["error"], &t["result"]),
                (&json!("failed"), &json!("Tasked 01 is doomed"), &Value::Null)
            );
        } else {
            assert_eq!(
                (&t["status"], &t["error"], &t["result"]["attempt"]),
                (&json!("succeeded"), &Value::Null, &json!(1)),
                "{t}"
            );
        }
    }
    app.get(&format!("/v1/runs/{}/tasks", Uuid::now_v7())).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn cancel_and_retry_through_the_api(pool: PgPool) {
    let (w, stats) = probe("probe", 0);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Handled", 3).await;

    // No worker yet: the run stays queued and cancels at once.
    let queued = started(&app, "probe", json!({"client_ids": ids_json(&ids)})).await;
    let canceled = ok(&app.post(&format!("/v1/runs/{queued}/cancel"), json!({})).send().await);
    assert_eq!((&canceled["status"], &canceled["tasks"]["canceled"]), (&json!("canceled"), &json!(3)));
    app.post(&format!("/v1/runs/{queued}/cancel"), json!({})).send().await.problem(409, "run_finished");
    app.post(&format!("/v1/runs/{queued}/retry"), json!({})).send().await.problem(409, "run_canceled");
    app.post(&format!("/v1/runs/{}/cancel", Uuid::now_v7()), json!({})).send().await.problem(404, "not_found");
    assert_eq!(audit_actions(&app, queued).await, ["run.start", "run.cancel"]);

    stats.doomed.lock().unwrap().insert("Handled 02".into());
    let worker = start_worker(&app.state, settings(8, Duration::from_secs(30)));
    let run = started(&app, "probe", json!({"client_ids": ids_json(&ids)})).await;
    assert_eq!(finished(&app.pool, run, Duration::from_secs(10)).await, "partially_failed");
    stats.doomed.lock().unwrap().clear();
    let res = app.post(&format!("/v1/runs/{run}/retry"), json!({})).send().await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert_eq!(
        res.json()["tasks"]["queued"].as_i64().unwrap()
            + res.json()["tasks"]["running"].as_i64().unwrap()
            + res.json()["tasks"]["succeeded"].as_i64().unwrap(),
        3
    );
    assert_eq!(finished(&app.pool, run, Duration::from_secs(10)).await, "succeeded");
    assert_eq!(ids.iter().map(|id| stats.executions(*id)).collect::<Vec<_>>(), [1, 1, 2]);
    app.post(&format!("/v1/runs/{run}/retry"), json!({})).send().await.problem(409, "nothing_to_retry");
    app.post(&format!("/v1/runs/{run}/cancel"), json!({})).send().await.problem(409, "run_finished");
    assert_eq!(audit_actions(&app, run).await, ["run.start", "run.retry"]);
    worker.stop().await;
}

#[sqlx::test]
async fn a_running_run_cannot_be_retried(pool: PgPool) {
    let (w, _) = probe("slow", 10_000);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Busy", 1).await;
    let run = started(&app, "slow", json!({"client_ids": ids_json(&ids)})).await;
    app.post(&format!("/v1/runs/{run}/retry"), json!({})).send().await.problem(409, "run_active");
}

#[sqlx::test]
async fn run_endpoints_need_their_scopes(pool: PgPool) {
    let (w, _) = probe("probe", 0);
    let app = app_with(pool, vec![w]).await;
    let ids = clients(&app, "Scoped", 1).await;
    let reader = app.token(&["workflows:read"]).await;
    let runner = app.token(&["workflows:run"]).await;
    let other = app.token(&["clients:read"]).await;
    let body = json!({"client_ids": ids_json(&ids)});
    let post = |path: &str, token: &str| app.request(Method::POST, path).token(token).json(&body).send();

    let res = post("/v1/workflows/probe/runs", &runner).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let run = res.json()["id"].as_str().unwrap().to_string();
    post("/v1/workflows/probe/runs", &reader).await.problem(403, "missing_scope");
    post(&format!("/v1/runs/{run}/cancel"), &reader).await.problem(403, "missing_scope");
    post(&format!("/v1/runs/{run}/retry"), &reader).await.problem(403, "missing_scope");
    for path in [
        "/v1/workflows".to_string(),
        "/v1/workflows/probe".into(),
        "/v1/runs".into(),
        format!("/v1/runs/{run}"),
        format!("/v1/runs/{run}/tasks"),
    ] {
        assert_eq!(app.request(Method::GET, &path).token(&reader).send().await.status, StatusCode::OK, "{path}");
        app.request(Method::GET, &path).token(&other).send().await.problem(403, "missing_scope");
        assert_eq!(app.request(Method::GET, &path).send().await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(post(&format!("/v1/runs/{run}/cancel"), &runner).await.status, StatusCode::OK);
}

#[sqlx::test]
async fn the_callback_url_receives_the_finished_run(pool: PgPool) {
    let hook = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/run-finished"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let (w, _) = probe("probe", 50);
    // The hook is wiremock on 127.0.0.1: allow it as a local deployment would.
    let app = app_with_config(
        pool,
        vec![w],
        switchboard::config::Config { webhook_allow_http: true, webhook_allow_private: true, ..test_config() },
    )
    .await;
    let ids = clients(&app, "Called", 2).await;
    let worker = start_worker(&app.state, settings(8, Duration::from_secs(30)));
    let deliverer = crate::webhooks::RunningDeliverer::start(&app.pool, crate::webhooks::fast(1, Duration::ZERO));
    let url = format!("{}/run-finished", hook.uri());
    let run = started(&app, "probe", json!({"client_ids": ids_json(&ids), "callback_url": url})).await;
    assert_eq!(finished(&app.pool, run, Duration::from_secs(10)).await, "succeeded");
    let (body, content_type) = callback(&hook).await;
    deliverer.stop().await;
    assert_eq!(
        (&body["id"], &body["status"], &body["callback_url"]),
        (&json!(run.to_string()), &json!("succeeded"), &json!(url))
    );
    assert_eq!(body["tasks"]["succeeded"], 2);
    assert_eq!(content_type, "application/json");
    worker.stop().await;
}

/// The one callback the hook received (waits for it, then checks no second one comes).
async fn callback(hook: &MockServer) -> (Value, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let received = loop {
        let received = hook.received_requests().await.unwrap();
        if !received.is_empty() {
            break received;
        }
        assert!(Instant::now() < deadline, "no callback");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received_requests().await.unwrap().len(), 1, "announced once");
    let content_type = received[0].headers.get("content-type").unwrap().to_str().unwrap().to_string();
    (serde_json::from_slice(&received[0].body).unwrap(), content_type)
}

#[sqlx::test]
async fn a_canceled_run_is_announced_to_its_callback_url(pool: PgPool) {
    let hook = MockServer::start().await;
    Mock::given(matchers::method("POST")).respond_with(ResponseTemplate::new(200)).mount(&hook).await;
    let (w, _) = probe("probe", 0);
    let app = app_with_config(
        pool,
        vec![w],
        switchboard::config::Config { webhook_allow_http: true, webhook_allow_private: true, ..test_config() },
    )
    .await;
    let ids = clients(&app, "Dropped", 2).await;
    // No worker: the run is still queued when it is canceled.
    let run =
        started(&app, "probe", json!({"client_ids": ids_json(&ids), "callback_url": format!("{}/hook", hook.uri())}))
            .await;
    ok(&app.post(&format!("/v1/runs/{run}/cancel"), json!({})).send().await);
    let deliverer = crate::webhooks::RunningDeliverer::start(&app.pool, crate::webhooks::fast(1, Duration::ZERO));
    let (body, _) = callback(&hook).await;
    deliverer.stop().await;
    assert_eq!(
        (&body["id"], &body["status"], &body["tasks"]["canceled"]),
        (&json!(run.to_string()), &json!("canceled"), &json!(2))
    );
}

// ---- schedules ----

/// `null` in the merge patch puts a field the create body may leave out back to its
/// default (`timezone` UTC, `params` the workflow's defaults), as the spec's
/// `SchedulePatch` says; absent fields stay.
#[sqlx::test]
async fn schedule_patch_null_restores_the_defaults(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = json!({"workflow": "daily-monitoring", "cron": "0 7 * * *", "timezone": "America/Sao_Paulo",
        "enabled": true, "params": {"anomaly_threshold": 0.8}});
    let res = app.post("/v1/schedules", body).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let path = format!("/v1/schedules/{}", res.json()["id"].as_str().unwrap());
    let patched = ok(&app.patch(&path, json!({"timezone": null, "params": null})).send().await);
    assert_eq!(patched["timezone"], "UTC");
    assert_eq!(patched["params"], json!({"anomaly_threshold": 0.5, "notify": true}));
    assert_eq!((&patched["cron"], &patched["enabled"]), (&json!("0 7 * * *"), &json!(true)));
}

#[sqlx::test]
async fn schedules_are_created_read_changed_and_deleted(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post("/v1/schedules", json!({"workflow": "daily-monitoring", "cron": "0 7 * * *", "timezone": "America/Sao_Paulo", "enabled": true}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_string();
    // 07:00 in São Paulo (UTC-3, no DST) is 10:00 UTC.
    let next = created["next_fire_at"].as_str().unwrap();
    assert!(next.ends_with("T10:00:00.000Z"), "{next}");
    let next_at: chrono::DateTime<chrono::Utc> = next.parse().unwrap();
    assert!(next_at > chrono::Utc::now() && next_at <= chrono::Utc::now() + chrono::Duration::days(1), "{next}");
    assert_eq!(
        (&created["params"], &created["enabled"], &created["last_fired_at"]),
        (&json!({"anomaly_threshold": 0.5, "notify": true}), &json!(true), &Value::Null)
    );

    let path = format!("/v1/schedules/{id}");
    assert_eq!(ok(&app.get(&path).send().await), created);
    let list = ok(&app.get("/v1/schedules?workflow=daily-monitoring&enabled=true").send().await);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(ok(&app.get("/v1/schedules?enabled=false").send().await)["data"], json!([]));

    let patched = ok(&app.patch(&path, json!({"cron": "30 6 * * *", "timezone": "Europe/Lisbon"})).send().await);
    let next: chrono::DateTime<chrono::Utc> = patched["next_fire_at"].as_str().unwrap().parse().unwrap();
    let local = next.with_timezone(&chrono_tz::Europe::Lisbon);
    assert_eq!(local.format("%H:%M").to_string(), "06:30", "{next}");
    assert_eq!((&patched["workflow"], &patched["enabled"]), (&json!("daily-monitoring"), &json!(true)));
    let disabled = ok(&app.patch(&path, json!({"enabled": false})).send().await);
    assert_eq!((&disabled["enabled"], &disabled["cron"]), (&json!(false), &json!("30 6 * * *")));

    invalid(&app.patch(&path, json!({"cron": "every day"})).send().await, "cron");
    invalid(&app.patch(&path, json!({"timezone": "Mars/Base"})).send().await, "timezone");
    invalid(&app.patch(&path, json!({"params": {"anomaly_threshold": -1}})).send().await, "params.anomaly_threshold");

    assert_eq!(app.delete(&path).send().await.status, StatusCode::NO_CONTENT);
    app.get(&path).send().await.problem(404, "not_found");
    app.delete(&path).send().await.problem(404, "not_found");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit.log WHERE resource_type = 'schedule' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["schedule.create", "schedule.update", "schedule.update", "schedule.delete"]);
}

#[sqlx::test]
async fn bad_schedules_are_422_naming_the_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let post = |body: Value| app.post("/v1/schedules", body).send();
    invalid(&post(json!({"workflow": "daily-monitoring", "cron": "61 * * * *"})).await, "cron");
    invalid(
        &post(json!({"workflow": "daily-monitoring", "cron": "0 7 * * *", "timezone": "Mars/Base"})).await,
        "timezone",
    );
    invalid(&post(json!({"workflow": "no-such-workflow", "cron": "0 7 * * *"})).await, "workflow");
    invalid(
        &post(json!({"workflow": "daily-monitoring", "cron": "0 7 * * *", "params": {"anomaly_threshold": 99}})).await,
        "params.anomaly_threshold",
    );
    post(json!({"workflow": "daily-monitoring"})).await.problem(422, "validation_failed");
    assert_eq!(app.count("SELECT count(*) FROM engine.schedules").await, 0);

    let reader = app.token(&["workflows:read"]).await;
    let body = json!({"workflow": "daily-monitoring", "cron": "0 7 * * *"});
    app.request(Method::POST, "/v1/schedules").token(&reader).json(&body).send().await.problem(403, "missing_scope");
    assert_eq!(app.request(Method::GET, "/v1/schedules").token(&reader).send().await.status, StatusCode::OK);
    let writer = app.token(&["schedules:write"]).await;
    assert_eq!(
        app.request(Method::POST, "/v1/schedules").token(&writer).json(&body).send().await.status,
        StatusCode::CREATED
    );
    app.get(&format!("/v1/schedules/{}", Uuid::now_v7())).send().await.problem(404, "not_found");
}

// ---- the scheduler ----

async fn due_schedule(pool: &PgPool, cron: &str, overdue: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO engine.schedules (id, workflow, cron, timezone, enabled, next_fire_at)
         VALUES ($1, 'daily-monitoring', $2, 'UTC', true, now() - interval '{overdue}')"
    )))
    .bind(id)
    .bind(cron)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn fired(pool: &PgPool, schedule: Uuid) -> (i64, i64) {
    let runs =
        count(pool, "SELECT count(*) FROM engine.runs WHERE schedule_id = $1 AND trigger = 'schedule'", schedule).await;
    let firings = count(pool, "SELECT count(*) FROM engine.schedule_firings WHERE schedule_id = $1", schedule).await;
    (runs, firings)
}

async fn next_fire_at(pool: &PgPool, schedule: Uuid) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT next_fire_at FROM engine.schedules WHERE id = $1")
        .bind(schedule)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_due_schedule_fires_exactly_once_across_concurrent_schedulers(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let schedule = due_schedule(&pool, "0 7 * * *", "1 minute").await;
    for round in 0..3 {
        if round > 0 {
            sqlx::query(
                "UPDATE engine.schedules SET next_fire_at = now() - make_interval(mins => $2::int) WHERE id = $1",
            )
            .bind(schedule)
            .bind(round)
            .execute(&pool)
            .await
            .unwrap();
        }
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let state = app.state.clone();
                tokio::spawn(async move { scheduler::fire_due(&state).await.unwrap() })
            })
            .collect();
        let created: usize = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap().len()).sum();
        assert_eq!(created, 1, "round {round}");
        assert_eq!(fired(&pool, schedule).await, (round + 1, round + 1));
        assert!(next_fire_at(&pool, schedule).await > chrono::Utc::now());
    }
    let trigger: String = sqlx::query_scalar("SELECT trigger FROM engine.runs WHERE schedule_id = $1 LIMIT 1")
        .bind(schedule)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(trigger, "schedule");
    // Nothing due: nothing fires.
    assert!(scheduler::fire_due(&app.state).await.unwrap().is_empty());
}

#[sqlx::test]
async fn after_downtime_a_schedule_fires_once_not_once_per_missed_slot(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    // Hourly, three days overdue: 72 missed slots.
    let schedule = due_schedule(&pool, "0 * * * *", "3 days").await;
    let runs = scheduler::fire_due(&app.state).await.unwrap();
    assert_eq!(runs.len(), 1);
    // Started the one way every run starts: audited, naming the schedule.
    assert_eq!(audit_actions(&app, runs[0]).await, ["run.start"]);
    let actor: String = sqlx::query_scalar("SELECT actor_name FROM audit.log WHERE resource_id = $1")
        .bind(runs[0].to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(actor, format!("schedule:{schedule}"));
    assert!(scheduler::fire_due(&app.state).await.unwrap().is_empty());
    assert_eq!(fired(&pool, schedule).await, (1, 1));
    let next = next_fire_at(&pool, schedule).await;
    let now = chrono::Utc::now();
    assert!(next > now && next <= now + chrono::Duration::hours(1), "{next}");
    // A disabled schedule never fires.
    let off = due_schedule(&pool, "0 * * * *", "1 minute").await;
    sqlx::query("UPDATE engine.schedules SET enabled = false WHERE id = $1").bind(off).execute(&pool).await.unwrap();
    assert!(scheduler::fire_due(&app.state).await.unwrap().is_empty());
    assert_eq!(fired(&pool, off).await, (0, 0));
}

#[sqlx::test]
async fn default_schedules_are_seeded_once_and_disabled(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    // Replicas starting together seed concurrently.
    let seeds: Vec<_> = (0..4)
        .map(|_| {
            let (pool, registry) = (pool.clone(), app.state.workflows.clone());
            tokio::spawn(async move { scheduler::seed_defaults(&pool, &registry).await.unwrap() })
        })
        .collect();
    futures::future::join_all(seeds).await.into_iter().for_each(|r| r.unwrap());
    scheduler::seed_defaults(&pool, &app.state.workflows).await.unwrap();
    let rows: Vec<(String, String, bool, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT workflow, cron, enabled, next_fire_at FROM engine.schedules ORDER BY workflow")
            .fetch_all(&pool)
            .await
            .unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut expected = app.state.workflows.keys();
    expected.sort();
    assert_eq!(keys, expected, "one schedule per workflow");
    for (workflow, cron, enabled, next) in &rows {
        assert!(!enabled, "{workflow} seeded enabled");
        assert_eq!(cron, app.state.workflows.get(workflow).unwrap().info().default_cron);
        assert!(next.is_some_and(|n| n > chrono::Utc::now()));
    }
    // Seeded schedules are disabled, so nothing fires.
    sqlx::query("UPDATE engine.schedules SET next_fire_at = now() - interval '1 hour'").execute(&pool).await.unwrap();
    assert!(scheduler::fire_due(&app.state).await.unwrap().is_empty());
}
