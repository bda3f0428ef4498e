//! The `client-onboarding` and `weekly-report` workflows end to end (runs driven by
//! an in-test worker against the in-process simulator), stored prompt templates
//! with versions, and the reports API.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::http::{Method, StatusCode};
use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    platforms::clickup::default_onboarding_template,
    store::{
        self,
        runs::{NewRun, RunRow, TaskRow},
    },
    workflows::engine::{Worker, WorkerSettings},
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::support::{TestApp, TestResponse, test_config};

/// Creates a run over `clients` as the runs API would, and drives it to its end.
pub(crate) async fn run(
    app: &TestApp,
    workflow: &str,
    clients: &[&Value],
    params: Value,
    dry_run: bool,
) -> (RunRow, Vec<TaskRow>) {
    let params = app.state.workflows.get(workflow).expect("registered").check_params(&params).expect("valid params");
    let ids: Vec<Uuid> = clients.iter().map(|c| id_of(c)).collect();
    let new = NewRun {
        workflow,
        workflow_version: 1,
        trigger: switchboard::store::runs::RunTrigger::Api,
        params: &params,
        dry_run,
        callback_url: None,
        schedule_id: None,
        created_by: None,
        client_ids: Some(&ids),
        max_attempts: 3,
    };
    let created = store::runs::create(&mut app.pool.acquire().await.unwrap(), &new).await.unwrap();
    finish(app, created.id).await
}

/// Runs a worker until the run is no longer queued or running.
pub(crate) async fn finish(app: &TestApp, run_id: Uuid) -> (RunRow, Vec<TaskRow>) {
    let settings = WorkerSettings {
        concurrency: 8,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(10),
        ..WorkerSettings::default()
    };
    let worker = Arc::new(Worker::new(app.state.runtime.clone(), settings));
    let (stop, stopped) = watch::channel(false);
    let handle = tokio::spawn(worker.run(stopped));
    let mut conn = app.pool.acquire().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let finished = loop {
        let current = store::runs::find(&mut conn, run_id).await.unwrap().expect("run");
        if !matches!(current.status.as_str(), "queued" | "running") {
            break current;
        }
        assert!(tokio::time::Instant::now() < deadline, "run still {} after 20 s", current.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    handle.await.unwrap();
    let tasks = store::runs::tasks(&mut conn, run_id, None, 1000).await.unwrap();
    (finished, tasks)
}

fn id_of(client: &Value) -> Uuid {
    client["id"].as_str().unwrap().parse().unwrap()
}

fn summary<'a>(tasks: &'a [TaskRow], client: &Value) -> &'a Value {
    let task = tasks.iter().find(|t| t.client_id == id_of(client)).expect("a task for the client");
    assert_eq!(task.status.as_str(), "succeeded", "{:?}", task.error);
    task.result.as_ref().expect("a summary")
}

/// Objects the simulator holds, per platform and kind.
fn created(app: &TestApp) -> BTreeMap<String, BTreeMap<String, u64>> {
    app.sim.state.stats().platforms.into_iter().map(|(p, s)| (p, s.created)).collect()
}

fn count_of(app: &TestApp, platform: &str, kind: &str) -> u64 {
    created(app).get(platform).and_then(|c| c.get(kind)).copied().unwrap_or(0)
}

fn ok(res: &TestResponse) -> Value {
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn invalid(res: &TestResponse, fields: &[&str]) -> Value {
    let body = res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), fields, "{body}");
    body
}

// ---------------------------------------------------------------------------------------
// client-onboarding

/// ClickUp's real limit (100 calls a minute) would make the test wait; lift it.
async fn onboarding_app(pool: PgPool) -> TestApp {
    let mut config = test_config();
    (config.platforms.clickup.rate_per_second, config.platforms.clickup.burst) = (Some(1000.0), Some(100));
    TestApp::with_config(pool, config).await
}

#[sqlx::test]
async fn onboarding_sets_up_each_client_once(pool: PgPool) {
    let app = onboarding_app(pool).await;
    let a = app.create_client(json!({"name": "Onboard A", "accounts": {"whatsapp": "+5511999990001"}})).await;
    let b = app.create_client(json!({"name": "Onboard B", "accounts": {"whatsapp": "+5511999990002"}})).await;
    let c = app.create_client(json!({"name": "Onboard C"})).await;
    let (done, tasks) = run(&app, "client-onboarding", &[&a, &b, &c], json!({}), false).await;
    assert_eq!(done.status.as_str(), "succeeded", "{tasks:?}");

    let checklist = default_onboarding_template().len() as u64;
    assert_eq!(count_of(&app, "google_drive", "folders"), 3 * 5, "a root and 4 sub-folders per client");
    assert_eq!((count_of(&app, "clickup", "lists"), count_of(&app, "clickup", "tasks")), (3, 3 * checklist));
    let messages = app.sim.state.vendor::<switchboard::sim::whatsapp::State>().messages();
    assert_eq!(messages.len(), 2, "no number, no welcome: {messages:?}");
    let welcome = &app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("+5511999990001")[0];
    assert_eq!(
        (welcome.kind.as_str(), welcome.body.as_str(), welcome.params.clone()),
        ("template", "welcome_client", vec!["Onboard A".to_string()])
    );
    assert!(summary(&tasks, &c)["welcome"].as_str().unwrap().contains("no WhatsApp number"));

    for client in [&a, &b, &c] {
        let now = ok(&app.get(&format!("/v1/clients/{}", client["id"].as_str().unwrap())).send().await);
        assert_eq!(now["status"], "active", "{now}");
        assert!(now["accounts"]["drive_folder"].is_string() && now["accounts"]["clickup_list"].is_string(), "{now}");
        assert_eq!(summary(&tasks, client)["drive_folder"], now["accounts"]["drive_folder"]);
    }
    // Each client: the links, then the status; by the workflow, under the run's id.
    let audited = format!(
        "SELECT count(*) FROM audit.log WHERE action = 'client.update' AND actor_name = 'workflow:client-onboarding' AND request_id = '{}'",
        done.id
    );
    assert_eq!(app.count(&audited).await, 6);

    // A second run creates nothing and sends no second welcome.
    let before = created(&app);
    let (again, tasks) = run(&app, "client-onboarding", &[&a, &b, &c], json!({}), false).await;
    assert_eq!(again.status.as_str(), "succeeded", "{tasks:?}");
    assert_eq!(created(&app), before);
    assert!(summary(&tasks, &a)["welcome"].as_str().unwrap().contains(&format!("already sent in run {}", done.id)));
    assert_eq!(summary(&tasks, &a)["tasks_created"], 0);
}

#[sqlx::test]
async fn onboarding_dry_run_changes_nothing(pool: PgPool) {
    let app = onboarding_app(pool).await;
    let a = app.create_client(json!({"name": "Dry A", "accounts": {"whatsapp": "+5511999990003"}})).await;
    let b = app.create_client(json!({"name": "Dry B", "accounts": {"whatsapp": "+5511999990004"}})).await;
    let (done, tasks) =
        run(&app, "client-onboarding", &[&a, &b], json!({"welcome_template": "hello_new_client"}), true).await;
    assert_eq!(done.status.as_str(), "succeeded", "{tasks:?}");
    for platform in ["google_drive", "clickup", "whatsapp"] {
        assert_eq!(app.sim.state.stats().platforms[platform].calls, 0, "{platform} was called in a dry run");
    }
    for client in [&a, &b] {
        let now = ok(&app.get(&format!("/v1/clients/{}", client["id"].as_str().unwrap())).send().await);
        assert_eq!((now["status"].as_str(), now["accounts"].get("drive_folder")), (Some("onboarding"), None), "{now}");
        assert_eq!(summary(&tasks, client)["welcome"], "dry run: not sent");
    }
    let recorded = format!("SELECT count(*) FROM engine.effects WHERE run_id = '{}' AND dry_run", done.id);
    assert_eq!(app.count(&recorded).await, 6, "three skipped effects per client");

    // A skipped welcome is not a sent one: the real run sends it.
    let (real, _) = run(&app, "client-onboarding", &[&a], json!({}), false).await;
    assert_eq!(real.status.as_str(), "succeeded");
    assert_eq!(app.sim.state.vendor::<switchboard::sim::whatsapp::State>().messages().len(), 1);
}

// ---------------------------------------------------------------------------------------
// weekly-report

async fn ads_client(app: &TestApp, name: &str, n: u32) -> Value {
    let accounts = json!({"meta": format!("12345678{n:02}"), "google_ads": format!("123-456-78{n:02}"), "whatsapp": format!("+55119999900{n:02}")});
    app.create_client(json!({"name": name, "status": "active", "currency": "USD", "accounts": accounts, "targets": {"cpa": 25, "roas": 3}})).await
}

async fn brand_voice(app: &TestApp, client: &Value, body: &str) {
    let entry = json!({"kind": "brand_voice", "title": "Voice", "body": body});
    let res = app.post(&format!("/v1/clients/{}/knowledge", client["id"].as_str().unwrap()), entry).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

fn week_ending() -> NaiveDate {
    Utc::now().date_naive() - chrono::Duration::days(2)
}

#[sqlx::test]
async fn weekly_report_stores_reports_and_delivers_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = ads_client(&app, "Weekly A", 11).await;
    let b = ads_client(&app, "Weekly B", 12).await;
    brand_voice(&app, &a, "Playful, short sentences.").await;
    let (done, tasks) = run(&app, "weekly-report", &[&a, &b], json!({"week_ending": week_ending()}), false).await;
    assert_eq!(done.status.as_str(), "succeeded", "{tasks:?}");

    let reports = ok(&app.get("/v1/reports?kind=weekly-report").send().await)["data"].as_array().unwrap().clone();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert_eq!(report["period_end"], week_ending().to_string());
        assert_eq!(report["period_start"], (week_ending() - chrono::Duration::days(6)).to_string());
        assert_eq!(report["run_id"], done.id.to_string());
        assert!(
            report["model"].is_string()
                && report["input_tokens"].as_i64() > Some(0)
                && report["output_tokens"].as_i64() > Some(0),
            "{report}"
        );
        assert!(!report["body"].as_str().unwrap().contains("Dry run"));
        let platforms: Vec<&str> = report["figures"]["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["platform"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, ["google_ads", "meta"], "{report}");
        assert!(report["figures"]["platforms"][1]["this_week"]["spend"].is_number(), "{report}");
    }
    let usage =
        "SELECT count(*) FROM costs.llm_usage WHERE purpose = 'workflow:weekly-report' AND client_id IS NOT NULL";
    assert_eq!(app.count(usage).await, 2);
    assert_eq!(count_of(&app, "llm", "completions"), 2);
    // Delivered as the approved report template (nobody wrote in: the window is closed),
    // and the strict simulator refused nothing for being outside the window.
    let messages = app.sim.state.vendor::<switchboard::sim::whatsapp::State>().messages();
    assert_eq!(messages.len(), 2);
    assert!(
        messages.iter().all(|m| m.kind == "template"
            && m.body == "switchboard_weekly_report"
            && m.params.len() == 3
            && m.params[0].starts_with("Weekly ")
            && m.params.iter().all(|p| !p.contains(['\n', '\t']) && !p.contains("     "))),
        "{messages:?}"
    );
    let errors = app.sim.state.stats().platforms["whatsapp"].errors.clone();
    assert_eq!(errors.get("131047"), None, "{errors:?}");
    let logged = "SELECT count(*) FROM engine.whatsapp_messages WHERE kind = 'template' AND report_id IS NOT NULL AND task_id IS NOT NULL";
    assert_eq!(app.count(logged).await, 2, "each delivery is in the message log with its report and task");
    let synced = format!("SELECT count(*) FROM costs.daily_metrics WHERE client_id = '{}'", id_of(&a));
    assert!(app.count(&synced).await > 0, "metrics were synced first");
    assert_eq!(summary(&tasks, &a)["delivered"].as_str().map(|s| s.starts_with("sent")), Some(true));

    // The same tasks again (as after a crash right before they were marked done):
    // the ledger answers; no second completion, message or report.
    let before = created(&app);
    sqlx::query(
        "UPDATE engine.tasks SET status = 'queued', attempt = 0, run_at = now(), finished_at = NULL WHERE run_id = $1",
    )
    .bind(done.id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE engine.runs SET status = 'running', finished_at = NULL WHERE id = $1")
        .bind(done.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let (again, tasks) = finish(&app, done.id).await;
    assert_eq!(again.status.as_str(), "succeeded", "{tasks:?}");
    assert_eq!(created(&app), before);
    assert_eq!(app.count("SELECT count(*) FROM engine.reports").await, 2);
    assert_eq!(app.count(usage).await, 2);
}

#[sqlx::test]
async fn weekly_report_dry_run_stores_the_rendered_prompt_and_sends_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = ads_client(&app, "Dry Weekly", 21).await;
    brand_voice(&app, &a, "Warm, never pushy.").await;
    // The current stored version is what renders.
    let edited = json!({"body": "EDITED for {{ client.name }}: {% for p in figures.platforms %}{{ p.platform }} {{ p.this_week.spend }}; {% endfor %}"});
    ok(&app.request(Method::PUT, "/v1/prompt-templates/weekly-report").token(&app.admin).json(&edited).send().await);
    let (done, tasks) = run(&app, "weekly-report", &[&a], json!({"week_ending": week_ending()}), true).await;
    assert_eq!(done.status.as_str(), "succeeded", "{tasks:?}");
    let report = &ok(&app.get("/v1/reports").send().await)["data"][0];
    assert!(report["model"].is_null() && report["input_tokens"].is_null(), "{report}");
    let body = report["body"].as_str().unwrap();
    assert!(
        body.contains("Dry run") && body.contains("EDITED for Dry Weekly: google_ads ") && body.contains("; meta "),
        "{body}"
    );
    assert!(body.contains("Warm, never pushy."), "the brand voice is in the system prompt: {body}");
    assert_eq!((count_of(&app, "llm", "completions"), count_of(&app, "whatsapp", "messages")), (0, 0));
    assert_eq!(app.count("SELECT count(*) FROM costs.llm_usage").await, 0);
    assert_eq!(summary(&tasks, &a)["delivered"], "dry run: not sent");
}

#[sqlx::test]
async fn weekly_report_without_its_template_fails_without_retrying(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = ads_client(&app, "No Template", 31).await;
    let (done, tasks) = run(&app, "weekly-report", &[&a], json!({"template": "missing-template"}), false).await;
    assert_eq!(done.status.as_str(), "failed");
    assert_eq!(tasks[0].attempt, 1, "a missing template is permanent");
    assert!(tasks[0].error.as_deref().unwrap().contains("missing-template"), "{:?}", tasks[0].error);
    assert_eq!(count_of(&app, "llm", "completions"), 0);
}

// ---------------------------------------------------------------------------------------
// prompt templates

fn put(app: &TestApp, path: &str, body: Value) -> crate::support::TestRequest {
    app.request(Method::PUT, path).token(&app.admin).json(&body)
}

#[sqlx::test]
async fn prompt_templates_are_seeded_versioned_and_audited(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let list = ok(&app.get("/v1/prompt-templates").send().await);
    let keys: Vec<&str> = list["data"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["alert-digest", "client-brief", "weekly-report"]);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["version"] == 1 && t["created_by"].is_null() && t.get("versions").is_none())
    );

    let res = app
        .post(
            "/v1/prompt-templates",
            json!({"key": "monthly-recap", "description": "Recap", "body": "v1 {{ client.name }}"}),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("location"), Some("/v1/prompt-templates/monthly-recap"));
    let first = res.json();
    assert_eq!((first["version"].as_i64(), first["versions"].as_array().map(Vec::len)), (Some(1), Some(1)));
    assert!(first["created_by"].is_string() && first["created_at"].as_str().unwrap().ends_with('Z'));
    app.post("/v1/prompt-templates", json!({"key": "monthly-recap", "body": "again"}))
        .send()
        .await
        .problem(409, "template_exists");

    let second =
        ok(&put(&app, "/v1/prompt-templates/monthly-recap", json!({"body": "v2 {{ client.name }} {{ month }}"}))
            .send()
            .await);
    assert_eq!(
        (second["version"].as_i64(), second["description"].as_str()),
        (Some(2), Some("Recap")),
        "description kept"
    );
    let current = ok(&app.get("/v1/prompt-templates/monthly-recap").send().await);
    assert_eq!(current["body"], "v2 {{ client.name }} {{ month }}");
    let versions: Vec<i64> =
        current["versions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        ok(&app.get("/v1/prompt-templates/monthly-recap?version=1").send().await)["body"],
        "v1 {{ client.name }}"
    );
    app.get("/v1/prompt-templates/monthly-recap?version=7").send().await.problem(404, "not_found");
    app.get("/v1/prompt-templates/monthly-recap?version=x").send().await.problem(400, "invalid_query");
    app.get("/v1/prompt-templates/nope").send().await.problem(404, "not_found");
    put(&app, "/v1/prompt-templates/nope", json!({"body": "x"})).send().await.problem(404, "not_found");

    // Invalid input writes nothing: a bad key, template syntax errors (named by part).
    invalid(&app.post("/v1/prompt-templates", json!({"key": "Bad Key", "body": "x"})).send().await, &["key"]);
    let broken = invalid(
        &app.post("/v1/prompt-templates", json!({"key": "broken", "body": "{% if x %}open"})).send().await,
        &["body"],
    );
    assert!(broken["errors"][0]["message"].as_str().unwrap().contains("syntax error"), "{broken}");
    invalid(&put(&app, "/v1/prompt-templates/monthly-recap", json!({"body": "{{ x "})).send().await, &["body"]);
    invalid(
        &put(&app, "/v1/prompt-templates/monthly-recap", json!({"system": "{% endfor %}", "body": "ok"})).send().await,
        &["system"],
    );
    invalid(&put(&app, "/v1/prompt-templates/monthly-recap", json!({"body": " "})).send().await, &["body"]);
    invalid(
        &put(&app, "/v1/prompt-templates/monthly-recap", json!({"body": "x", "colour": 1})).send().await,
        &["colour"],
    );
    assert_eq!(app.count("SELECT count(*) FROM knowledge.prompt_templates WHERE key = 'monthly-recap'").await, 2);

    let audit = |action: &str| {
        format!(
            "SELECT count(*) FROM audit.log WHERE action = '{action}' AND resource_id = 'monthly-recap' AND actor_id IS NOT NULL"
        )
    };
    assert_eq!(
        (app.count(&audit("prompt_template.create")).await, app.count(&audit("prompt_template.update")).await),
        (1, 1)
    );
    let before_after = "SELECT count(*) FROM audit.log WHERE action = 'prompt_template.update' AND before->>'version' = '1' AND after->>'version' = '2'";
    assert_eq!(app.count(before_after).await, 1);

    // Seeding again adds nothing and never overwrites an edited default.
    ok(&put(&app, "/v1/prompt-templates/client-brief", json!({"body": "mine {{ client.name }}"})).send().await);
    assert!(switchboard::prompts::seed_defaults(&app.pool).await.unwrap().is_empty());
    assert_eq!(ok(&app.get("/v1/prompt-templates/client-brief").send().await)["body"], "mine {{ client.name }}");

    // Pages in key order.
    let page = ok(&app.get("/v1/prompt-templates?limit=3").send().await);
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let rest = ok(&app
        .get(&format!("/v1/prompt-templates?limit=3&cursor={}", page["next_cursor"].as_str().unwrap()))
        .send()
        .await);
    assert_eq!(rest["data"][0]["key"], "weekly-report");
    assert!(rest["next_cursor"].is_null());
    app.get("/v1/prompt-templates?cursor=bogus").send().await.problem(400, "invalid_cursor");
}

#[sqlx::test]
async fn rendering_names_missing_variables(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Render Co", "targets": {"cpa": 20}})).await;
    brand_voice(&app, &client, "Bold and bright.").await;
    let template = json!({"key": "greeting", "system": "Voice: {{ knowledge.brand_voice | join(', ') }}",
        "body": "Hello {{ client.name }}, {{ topic }}{% if extra %} and {{ extra }}{% endif %}{% if client.targets.roas %} roas{% endif %}"});
    assert_eq!(app.post("/v1/prompt-templates", template).send().await.status, StatusCode::CREATED);
    let render = |body: Value| app.post("/v1/prompt-templates/greeting/render", body).send();

    let out = ok(&render(json!({"client": "render-co", "variables": {"topic": "budgets", "extra": null}})).await);
    assert_eq!(
        out,
        json!({"key": "greeting", "version": 1, "system": "Voice: Bold and bright.", "text": "Hello Render Co, budgets"})
    );
    invalid(&render(json!({"client": "render-co", "variables": {"topic": "x"}})).await, &["variables.extra"]);
    invalid(&render(json!({})).await, &["client", "variables.extra", "variables.topic"]);
    invalid(
        &render(json!({"client": "render-co", "variables": {"topic": 1, "extra": 2, "client": 3}})).await,
        &["variables.client"],
    );
    render(json!({"client": "nobody", "variables": {"topic": 1, "extra": 2}})).await.problem(404, "not_found");
    app.post("/v1/prompt-templates/nope/render", json!({})).send().await.problem(404, "not_found");

    // Printing an undefined attribute is refused; testing it is fine (above).
    ok(&put(&app, "/v1/prompt-templates/greeting", json!({"body": "ROAS {{ client.targets.roas }}"})).send().await);
    let failed = invalid(&render(json!({"client": "render-co"})).await, &["variables"]);
    assert!(failed["errors"][0]["message"].as_str().unwrap().contains("undefined"), "{failed}");
    // An older version still renders.
    let old =
        ok(&render(json!({"client": "render-co", "version": 1, "variables": {"topic": "t", "extra": "e"}})).await);
    assert_eq!(old["text"], "Hello Render Co, t and e");
}

#[sqlx::test]
async fn prompt_template_scopes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let reader = app.token(&["clients:read"]).await;
    let writer = app.token(&["clients:write"]).await;
    let get = |token: &str, path: &str| app.request(Method::GET, path).token(token).send();
    assert_eq!(get(&reader, "/v1/prompt-templates").await.status, StatusCode::OK);
    assert_eq!(get(&reader, "/v1/prompt-templates/client-brief").await.status, StatusCode::OK);
    let render = app
        .request(Method::POST, "/v1/prompt-templates/alert-digest/render")
        .token(&reader)
        .json(&json!({"variables": {"client": null}}))
        .send()
        .await;
    invalid(&render, &["variables.client"]);
    let body = json!({"key": "from-reader", "body": "x"});
    app.request(Method::POST, "/v1/prompt-templates")
        .token(&reader)
        .json(&body)
        .send()
        .await
        .problem(403, "missing_scope");
    app.request(Method::PUT, "/v1/prompt-templates/client-brief")
        .token(&reader)
        .json(&json!({"body": "x"}))
        .send()
        .await
        .problem(403, "missing_scope");
    get(&writer, "/v1/prompt-templates").await.problem(403, "missing_scope");
    let res = app.request(Method::POST, "/v1/prompt-templates").token(&writer).json(&body).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

#[sqlx::test]
async fn llm_completions_render_the_stored_current_version(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Brief Me"})).await;
    ok(&put(&app, "/v1/prompt-templates/client-brief", json!({"body": "Brief {{ client.name }} for {{ audience }}"}))
        .send()
        .await);
    for key in ["client-brief", "client_brief"] {
        let res =
            app.post("/v1/platforms/llm/completions", json!({"template_key": key, "client": "brief-me"})).send().await;
        invalid(&res, &["variables.audience"]);
    }
    let body = json!({"template_key": "client-brief", "client": "brief-me", "variables": {"audience": "designers"}});
    assert!(!ok(&app.post("/v1/platforms/llm/completions", body).send().await)["text"].as_str().unwrap().is_empty());
    assert_eq!(app.count("SELECT count(*) FROM costs.llm_usage WHERE purpose = 'template:client-brief'").await, 1);
    let unknown = app.post("/v1/platforms/llm/completions", json!({"template_key": "haiku"})).send().await;
    let problem = invalid(&unknown, &["template_key"]);
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("weekly-report"), "{problem}");
}

// ---------------------------------------------------------------------------------------
// reports API

async fn report(app: &TestApp, client: &Value, kind: &str, start: &str, end: &str) -> Uuid {
    let figures = json!({"platforms": []});
    let new = store::reports::NewReport {
        client_id: id_of(client),
        run_id: None,
        kind,
        period_start: start.parse().unwrap(),
        period_end: end.parse().unwrap(),
        body: "# Report\n\n- fine",
        figures: &figures,
        model: Some("claude-sonnet-4-6"),
        input_tokens: Some(100),
        output_tokens: Some(20),
    };
    store::reports::insert(&mut app.pool.acquire().await.unwrap(), &new).await.unwrap().id
}

async fn report_ids(app: &TestApp, query: String) -> Vec<Uuid> {
    let page = ok(&app.get(&format!("/v1/reports{query}")).send().await);
    page["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect()
}

#[sqlx::test]
async fn reports_api_lists_filters_and_reads(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = app.create_client(json!({"name": "Reported A"})).await;
    let b = app.create_client(json!({"name": "Reported B"})).await;
    let first = report(&app, &a, "weekly-report", "2026-06-01", "2026-06-07").await;
    let second = report(&app, &a, "weekly-report", "2026-06-08", "2026-06-14").await;
    let monthly = report(&app, &b, "monthly", "2026-05-01", "2026-05-31").await;
    let ids = |query: &str| report_ids(&app, query.to_string());
    assert_eq!(ids("").await, [monthly, second, first], "newest first");
    assert_eq!(ids("?client=reported-a").await, [second, first]);
    assert_eq!(ids("?kind=monthly").await, [monthly]);
    assert_eq!(ids("?from=2026-06-08").await, [second]);
    assert_eq!(ids("?to=2026-05-31").await, [monthly]);
    assert_eq!(ids("?from=2026-06-05&to=2026-06-09").await, [second, first], "periods overlapping the range");

    let page = ok(&app.get("/v1/reports?limit=2").send().await);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(ids(&format!("?limit=2&cursor={}", page["next_cursor"].as_str().unwrap())).await, [first]);
    app.get("/v1/reports?cursor=bogus").send().await.problem(400, "invalid_cursor");
    app.get("/v1/reports?from=2026-06-09&to=2026-06-01").send().await.problem(400, "invalid_query");
    app.get("/v1/reports?from=june").send().await.problem(400, "invalid_query");
    app.get("/v1/reports?client=nobody").send().await.problem(404, "not_found");

    let one = ok(&app.get(&format!("/v1/reports/{first}")).send().await);
    assert_eq!(one["client_id"], a["id"]);
    assert_eq!((one["period_start"].as_str(), one["period_end"].as_str()), (Some("2026-06-01"), Some("2026-06-07")));
    assert_eq!((one["body"].as_str(), one["model"].as_str()), (Some("# Report\n\n- fine"), Some("claude-sonnet-4-6")));
    assert_eq!((one["input_tokens"].as_i64(), one["output_tokens"].as_i64()), (Some(100), Some(20)));
    assert_eq!(one["figures"], json!({"platforms": []}));
    assert!(one["created_at"].as_str().unwrap().ends_with('Z'));
    app.get(&format!("/v1/reports/{}", Uuid::now_v7())).send().await.problem(404, "not_found");
    app.get("/v1/reports/not-an-id").send().await.problem(404, "not_found");

    let reader = app.token(&["clients:read"]).await;
    assert_eq!(app.request(Method::GET, "/v1/reports").token(&reader).send().await.status, StatusCode::OK);
    let outsider = app.token(&["platforms:act"]).await;
    app.request(Method::GET, "/v1/reports").token(&outsider).send().await.problem(403, "missing_scope");
    app.request(Method::GET, &format!("/v1/reports/{first}"))
        .token(&outsider)
        .send()
        .await
        .problem(403, "missing_scope");
}
