//! Prompt templates run under limits (issue #10, finding 2): a template that loops
//! too long or renders too much is refused when stored, or answers 422 (a task
//! error in a workflow) when it renders, quickly, and normal templates still render.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    store::{self, runs::NewRun},
    workflows::engine::{Worker, WorkerSettings},
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::support::{TestApp, TestResponse};

const NESTED_RANGES: &str = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
/// Nested loops that only run with a real client (a trial render skips them).
const NESTED_WITH_CLIENT: &str = "{% if client.name %}{% for i in range(100000) %}{% for j in range(100000) %}{{ client.name }}{% endfor %}{% endfor %}{% endif %}";

/// Asserts a 422 naming exactly `field`, answered within a few seconds.
fn refused(res: &TestResponse, started: Instant, field: &str) -> Value {
    let body = res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), [field], "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    body
}

async fn templates_named(app: &TestApp, key: &str) -> i64 {
    app.count(&format!("SELECT count(*) FROM knowledge.prompt_templates WHERE key = '{key}'")).await
}

fn put(app: &TestApp, path: &str, body: Value) -> crate::support::TestRequest {
    app.request(Method::PUT, path).token(&app.admin).json(&body)
}

#[sqlx::test]
async fn a_template_that_runs_out_of_steps_is_not_stored(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let audited = "SELECT count(*) FROM audit.log WHERE action LIKE 'prompt_template.%'";
    let audit_rows = app.count(audited).await;
    let started = Instant::now();
    let res = app.post("/v1/prompt-templates", json!({"key": "spin", "body": NESTED_RANGES})).send().await;
    let body = refused(&res, started, "body");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("steps"), "{body}");
    assert_eq!(templates_named(&app, "spin").await, 0);

    // The system part is checked too, and an update stores no new version.
    let started = Instant::now();
    let res =
        app.post("/v1/prompt-templates", json!({"key": "spin", "system": NESTED_RANGES, "body": "hi"})).send().await;
    refused(&res, started, "system");
    let started = Instant::now();
    refused(
        &put(&app, "/v1/prompt-templates/client-brief", json!({"body": NESTED_RANGES})).send().await,
        started,
        "body",
    );
    assert_eq!(templates_named(&app, "client-brief").await, 1);
    assert_eq!(app.count(audited).await, audit_rows, "nothing audited");
}

#[sqlx::test]
async fn a_template_that_runs_out_of_steps_on_real_values_answers_422_quickly(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Loop Co"})).await;
    // Stored: without a client the loops do not run.
    let res = app.post("/v1/prompt-templates", json!({"key": "sneaky", "body": NESTED_WITH_CLIENT})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());

    let started = Instant::now();
    let res = app.post("/v1/prompt-templates/sneaky/render", json!({"client": client["id"]})).send().await;
    refused(&res, started, "body");

    // The LLM action renders under the same limits, and calls no model.
    let started = Instant::now();
    let res = app
        .post("/v1/platforms/llm/completions", json!({"template_key": "sneaky", "client": client["id"]}))
        .send()
        .await;
    refused(&res, started, "body");
    assert_eq!(app.count("SELECT count(*) FROM costs.llm_usage").await, 0);

    // A variable-driven loop too.
    let res = app.post("/v1/prompt-templates", json!({"key": "counted", "body": "{% for i in range(n) %}{% for j in range(n) %}x{% endfor %}{% endfor %}"})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let started = Instant::now();
    refused(
        &app.post("/v1/prompt-templates/counted/render", json!({"variables": {"n": 100000}})).send().await,
        started,
        "body",
    );
}

#[sqlx::test]
async fn output_bombs_are_refused(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let bombs = [
        // More than minijinja repeats at all, and more than a part may render.
        r#"{{ "x" * 10**9 }}"#,
        r#"{% for i in range(1000) %}{{ "x" * 1000 }}{% endfor %}"#,
        r#"{{ range(100000) | join("-----") }}"#,
        "{{ range(10**7) | length }}",
    ];
    for (i, bomb) in bombs.iter().enumerate() {
        let key = format!("bomb-{i}");
        let started = Instant::now();
        let res = app.post("/v1/prompt-templates", json!({"key": key, "body": bomb})).send().await;
        let body = refused(&res, started, "body");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("limit"), "{bomb}: {body}");
        assert_eq!(templates_named(&app, &key).await, 0, "{bomb}");
    }
    // Output driven by a variable is capped when it renders.
    let res = app.post("/v1/prompt-templates", json!({"key": "repeat", "body": r#"{{ "x" * n }}"#})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let started = Instant::now();
    let res = app.post("/v1/prompt-templates/repeat/render", json!({"variables": {"n": 1_000_000}})).send().await;
    let body = refused(&res, started, "body");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("KB"), "{body}");
    let fine = app.post("/v1/prompt-templates/repeat/render", json!({"variables": {"n": 1000}})).send().await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.text());
    assert_eq!(fine.json()["text"].as_str().unwrap().len(), 1000);
}

#[sqlx::test]
async fn normal_templates_still_render(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Plain Co", "industry": "Coffee"})).await;
    let res = app
        .post("/v1/prompt-templates/client-brief/render", json!({"client": "plain-co", "variables": {"focus": "Meta"}}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.json()["text"].as_str().unwrap().contains("Plain Co (Coffee)"), "{}", res.text());

    // A loop of a thousand lines over real values is well within the limits.
    let body = "{% for i in range(1000) %}{{ client.name }} #{{ i }}{% if not loop.last %}\n{% endif %}{% endfor %}";
    let res = app.post("/v1/prompt-templates", json!({"key": "lines", "body": body})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = app.post("/v1/prompt-templates/lines/render", json!({"client": client["id"]})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let text = res.json()["text"].as_str().unwrap().to_string();
    assert_eq!((text.lines().count(), text.lines().last()), (1000, Some("Plain Co #999")));
}

#[sqlx::test]
async fn a_weekly_report_whose_template_runs_out_of_steps_fails_its_task(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Weekly Loop", "status": "active"})).await;
    let res = put(&app, "/v1/prompt-templates/weekly-report", json!({"body": NESTED_WITH_CLIENT})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let params = app.state.workflows.get("weekly-report").unwrap().check_params(&json!({})).unwrap();
    let ids = [Uuid::parse_str(client["id"].as_str().unwrap()).unwrap()];
    let new = NewRun {
        workflow: "weekly-report",
        workflow_version: 1,
        trigger: switchboard::store::runs::RunTrigger::Api,
        params: &params,
        dry_run: true,
        callback_url: None,
        schedule_id: None,
        created_by: None,
        client_ids: Some(&ids),
        max_attempts: 3,
    };
    let mut conn = app.pool.acquire().await.unwrap();
    let run = store::runs::create(&mut conn, &new).await.unwrap();
    let settings = WorkerSettings {
        concurrency: 2,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(10),
        ..WorkerSettings::default()
    };
    let worker = Arc::new(Worker::new(app.state.runtime.clone(), settings));
    let (stop, stopped) = watch::channel(false);
    let handle = tokio::spawn(worker.run(stopped));
    let started = Instant::now();
    let finished = loop {
        let current = store::runs::find(&mut conn, run.id).await.unwrap().unwrap();
        if !matches!(current.status.as_str(), "queued" | "running") {
            break current;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "run still {}", current.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    handle.await.unwrap();
    let tasks = store::runs::tasks(&mut conn, run.id, None, 10).await.unwrap();
    assert_eq!(finished.status.as_str(), "failed", "{tasks:?}");
    assert_eq!(tasks[0].attempt, 1, "a template over its limits is permanent");
    let error = tasks[0].error.as_deref().unwrap();
    assert!(error.contains("weekly-report") && error.contains("body") && error.contains("steps"), "{error}");
    assert_eq!(app.count("SELECT count(*) FROM engine.reports").await, 0);
}
