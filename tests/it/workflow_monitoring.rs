//! The `daily-monitoring` workflow end to end (runs driven by an in-test worker
//! against the in-process simulator) and the alerts API.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use axum::http::{Method, StatusCode};
use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    domain::metrics::DailyMetrics,
    sim::Behaviour,
    store::{
        self,
        alerts::{NewAlert, Severity},
        runs::{NewRun, RunRow, TaskRow},
    },
    workflows::engine::{Worker, WorkerSettings},
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::support::{TestApp, test_config};

const WORKFLOW: &str = "daily-monitoring";

/// Creates a run as the runs API would and drives it with a worker until it ends.
async fn run(app: &TestApp, params: Value, dry_run: bool) -> (RunRow, Vec<TaskRow>) {
    let workflow = app.state.workflows.get(WORKFLOW).expect("registered").clone();
    let params = workflow.check_params(&params).expect("valid params");
    let mut conn = app.pool.acquire().await.unwrap();
    let new = NewRun {
        workflow: WORKFLOW,
        workflow_version: 1,
        trigger: switchboard::store::runs::RunTrigger::Api,
        params: &params,
        dry_run,
        callback_url: None,
        schedule_id: None,
        created_by: None,
        client_ids: None,
        max_attempts: 3,
    };
    let created = store::runs::create(&mut conn, &new).await.unwrap();
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let finished = loop {
        let current = store::runs::find(&mut conn, created.id).await.unwrap().expect("run");
        if !matches!(current.status.as_str(), "queued" | "running") {
            break current;
        }
        assert!(tokio::time::Instant::now() < deadline, "run still {} after 20 s", current.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    handle.await.unwrap();
    let tasks = store::runs::tasks(&mut conn, created.id, None, 1000).await.unwrap();
    (finished, tasks)
}

async fn active_client(app: &TestApp, name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "status": "active"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.create_client(body).await
}

fn id_of(client: &Value) -> Uuid {
    client["id"].as_str().unwrap().parse().unwrap()
}

fn task_of<'a>(tasks: &'a [TaskRow], client: &Value) -> &'a TaskRow {
    tasks.iter().find(|t| t.client_id == id_of(client)).expect("a task for the client")
}

fn summary(task: &TaskRow) -> &Value {
    assert_eq!(task.status.as_str(), "succeeded", "{:?}", task.error);
    task.result.as_ref().expect("a summary")
}

/// (kind, subject, severity) of a client's alerts.
async fn alerts_of(app: &TestApp, client: &Value) -> BTreeSet<(String, String, String)> {
    sqlx::query_as("SELECT kind, subject, severity FROM engine.alerts WHERE client_id = $1")
        .bind(id_of(client))
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn has(alerts: &BTreeSet<(String, String, String)>, kind: &str, subject: &str, severity: &str) -> bool {
    alerts.contains(&(kind.to_string(), subject.to_string(), severity.to_string()))
}

/// Every WhatsApp message the simulator accepted: free-form texts and templates.
fn sent_messages(app: &TestApp) -> u64 {
    let created = &app.sim.state.stats().platforms["whatsapp"].created;
    created["messages"] + created["templates"]
}

fn spend_on(days: &[DailyMetrics], day: NaiveDate) -> f64 {
    days.iter().filter(|d| d.date == day).map(|d| d.spend).sum()
}

/// The latest day (at least two days back, not the 1st) on which every given Meta
/// account and Google Ads customer spent and spent in the week before, so the
/// findings the tests expect have figures to work with, whatever today is.
async fn busy_day(app: &TestApp, meta: &[&str], google: &[&str]) -> NaiveDate {
    let to = Utc::now().date_naive() - chrono::Duration::days(2);
    let from = to - chrono::Duration::days(60);
    let mut series = vec![];
    for account in meta {
        series.push(app.state.platforms.meta.daily_insights(account, from, to).await.expect("meta insights"));
    }
    for customer in google {
        series
            .push(app.state.platforms.google_ads.daily_metrics(customer, from, to).await.expect("google ads metrics"));
    }
    let mut day = to;
    while day > from + chrono::Duration::days(8) {
        let busy = series.iter().all(|s| spend_on(s, day) > 1.0 && spend_on(s, day - chrono::Duration::days(1)) > 0.0);
        if busy && day.day() > 1 {
            return day;
        }
        day -= chrono::Duration::days(1);
    }
    panic!("no day in the last 60 on which every account spent");
}

#[sqlx::test]
async fn monitoring_alerts_every_client_once_and_sends_one_digest_each(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let day = busy_day(&app, &["act_1111111111", "act_2222222222", "act_3333333333"], &["1234567890"]).await;
    // Tiny budgets pace over; a 0.01 CPA target and a daily cap of 1 are always breached.
    let a = active_client(
        &app,
        "Alpha",
        json!({
            "accounts": {"meta": "1111111111", "google_ads": "123-456-7890", "whatsapp": "+5511999990001"},
            "budgets": {"meta": 1, "google_ads": 1},
            "targets": {"cpa": 0.01, "max_daily_spend": 1},
        }),
    )
    .await;
    let b = active_client(
        &app,
        "Bravo",
        json!({"accounts": {"meta": "2222222222", "whatsapp": "+5511999990002"}, "targets": {"roas": 1000}}),
    )
    .await;
    let c = active_client(&app, "Charlie", json!({"accounts": {"meta": "3333333333"}, "budgets": {"meta": 1}})).await;
    let onboarding =
        app.create_client(json!({"name": "Delta", "accounts": {"meta": "4444444444"}, "budgets": {"meta": 1}})).await;

    let params = json!({"date": day.to_string()});
    let (first, tasks) = run(&app, params.clone(), false).await;
    assert_eq!(first.status.as_str(), "succeeded");
    assert_eq!(tasks.len(), 3, "active clients only");

    let alpha = alerts_of(&app, &a).await;
    for subject in ["meta", "google_ads", "total"] {
        assert!(has(&alpha, "pacing", subject, "critical"), "{subject}: {alpha:?}");
        assert!(has(&alpha, "cpa_above_target", subject, "warning"), "{subject}: {alpha:?}");
    }
    assert!(has(&alpha, "max_daily_spend", "total", "critical"), "{alpha:?}");
    let bravo = alerts_of(&app, &b).await;
    assert!(has(&bravo, "roas_below_target", "meta", "warning"), "{bravo:?}");
    assert!(!bravo.iter().any(|(kind, ..)| kind == "pacing"), "no budget, no pacing: {bravo:?}");
    assert!(has(&alerts_of(&app, &c).await, "pacing", "meta", "critical"));
    assert!(alerts_of(&app, &onboarding).await.is_empty());
    let stray: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine.alerts WHERE run_id IS DISTINCT FROM $1 OR day <> $2")
            .bind(first.id)
            .bind(day)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stray, 0, "every alert belongs to the run and the checked day");
    let synced: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT platform) FROM costs.daily_metrics WHERE client_id = $1 AND date = $2",
    )
    .bind(id_of(&a))
    .bind(day)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(synced, 2, "both platforms' metrics are stored");

    // One digest per client with a WhatsApp recipient: the approved digest template
    // (nobody wrote in, so the window is closed), and no 131047 from the strict simulator.
    let messages = app.sim.state.vendor::<switchboard::sim::whatsapp::State>().messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().all(|m| m.kind == "template" && m.body == "switchboard_daily_digest"), "{messages:?}");
    let to_alpha = messages.iter().find(|m| m.to == "5511999990001").expect("Alpha's digest");
    assert_eq!(to_alpha.params.len(), 3, "{to_alpha:?}");
    assert_eq!((to_alpha.params[0].as_str(), to_alpha.params[1].clone()), ("Alpha", alpha.len().to_string()));
    assert!(to_alpha.params[2].contains("[critical]"), "{to_alpha:?}");
    assert!(
        to_alpha.params.iter().all(|p| !p.contains(['\n', '\t']) && !p.contains("     ") && p.chars().count() <= 300),
        "parameters are single-line and short: {to_alpha:?}"
    );
    assert!(messages.iter().any(|m| m.to == "5511999990002"));
    let errors = app.sim.state.stats().platforms["whatsapp"].errors.clone();
    assert_eq!(errors.get("131047"), None, "{errors:?}");
    let s = summary(task_of(&tasks, &a));
    assert_eq!(s["alerts"]["new"].as_u64(), Some(alpha.len() as u64), "{s}");
    assert_eq!(s["alerts"]["existing"], 0);
    assert_eq!(s["notified"]["status"], "sent", "{s}");
    assert_eq!(s["notified"]["message_id"], to_alpha.id.as_str());
    assert_eq!(
        (s["notified"]["kind"].as_str(), s["notified"]["template"].as_str()),
        (Some("template"), Some("switchboard_daily_digest"))
    );
    assert_eq!(s["date"], day.to_string());
    assert!(s["platforms"]["meta"]["days"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(summary(task_of(&tasks, &c))["notified"]["status"], "skipped");

    // The run's task shows the message it sent; a failure Meta reports later shows there too.
    let task_view = |run: Uuid| app.get(&format!("/v1/runs/{run}/tasks")).send();
    let view = task_view(first.id).await.json();
    let alpha_task = view["data"].as_array().unwrap().iter().find(|t| t["client_id"] == a["id"]).unwrap().clone();
    assert_eq!(alpha_task["messages"][0]["wamid"], to_alpha.id.as_str(), "{alpha_task}");
    assert_eq!(alpha_task["messages"][0]["status"], "accepted");
    let failed = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "100000000000001"},
                  "statuses": [{"id": to_alpha.id.clone(), "status": "failed", "timestamp": "1750263773", "recipient_id": "5511999990001",
                                "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                                            "error_data": {"details": "Message Undeliverable."}}]}]}}]}]});
    let body = serde_json::to_vec(&failed).unwrap();
    let res = app
        .request(Method::POST, "/v1/inbound/whatsapp")
        .header("x-hub-signature-256", &crate::support::whatsapp_signature(&body))
        .raw_body("application/json", body)
        .send()
        .await;
    assert_eq!(res.json()["statuses"], 1, "{}", res.text());
    let view = task_view(first.id).await.json();
    let alpha_task = view["data"].as_array().unwrap().iter().find(|t| t["client_id"] == a["id"]).unwrap().clone();
    assert_eq!(
        (alpha_task["messages"][0]["status"].as_str(), alpha_task["messages"][0]["error_code"].as_str()),
        (Some("failed"), Some("131026"))
    );
    assert_eq!(app.count("SELECT count(*) FROM engine.events WHERE type = 'message.failed'").await, 1);

    // Acknowledged before the second run: it stays acknowledged and keeps its first run.
    let acked: Uuid = sqlx::query_scalar("UPDATE engine.alerts SET status = 'acknowledged' WHERE client_id = $1 AND kind = 'pacing' AND subject = 'meta' RETURNING id")
        .bind(id_of(&a))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let rows = app.count("SELECT count(*) FROM engine.alerts").await;
    let (second, tasks) = run(&app, params, false).await;
    assert_eq!(second.status.as_str(), "succeeded");
    assert_eq!(app.count("SELECT count(*) FROM engine.alerts").await, rows, "the same day raises no duplicate");
    assert_eq!(sent_messages(&app), 2, "no new alerts, no digest");
    let s = summary(task_of(&tasks, &a));
    assert_eq!(
        (s["alerts"]["new"].as_u64(), s["alerts"]["existing"].as_u64()),
        (Some(0), Some(alpha.len() as u64)),
        "{s}"
    );
    assert_eq!(s["notified"], json!({"status": "skipped", "reason": "no new alerts"}));
    let (status, run_id): (String, Uuid) = sqlx::query_as("SELECT status, run_id FROM engine.alerts WHERE id = $1")
        .bind(acked)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), run_id), ("acknowledged", first.id));
}

#[sqlx::test]
async fn dry_run_records_alerts_but_sends_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let day = busy_day(&app, &["act_1111111111"], &[]).await;
    let a = active_client(
        &app,
        "Alpha",
        json!({"accounts": {"meta": "1111111111", "whatsapp": "+5511999990001"}, "budgets": {"meta": 1}}),
    )
    .await;
    let (run, tasks) = run(&app, json!({"date": day.to_string()}), true).await;
    assert_eq!(run.status.as_str(), "succeeded");
    assert!(has(&alerts_of(&app, &a).await, "pacing", "meta", "critical"), "alerts are recorded in a dry run");
    assert_eq!(sent_messages(&app), 0, "nothing is sent");
    let s = summary(task_of(&tasks, &a));
    assert_eq!(s["notified"], json!({"status": "skipped", "reason": "dry run"}));
    assert!(s["alerts"]["new"].as_u64().unwrap() > 0);
    let skipped = app
        .count(&format!(
            "SELECT count(*) FROM engine.effects WHERE run_id = '{}' AND step = 'notify_whatsapp' AND dry_run",
            run.id
        ))
        .await;
    assert_eq!(skipped, 1, "the skipped send is in the ledger");
}

#[sqlx::test]
async fn a_failing_platform_is_an_alert_and_the_others_still_report(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let day = busy_day(&app, &["act_1111111111"], &[]).await;
    // Customer 0000000000 answers USER_PERMISSION_DENIED in the simulator.
    let a = active_client(
        &app,
        "Alpha",
        json!({
            "accounts": {"meta": "1111111111", "google_ads": "0000000000"},
            "budgets": {"meta": 1, "google_ads": 1},
        }),
    )
    .await;
    let (run, tasks) = run(&app, json!({"date": day.to_string()}), false).await;
    assert_eq!(run.status.as_str(), "succeeded");
    let alerts = alerts_of(&app, &a).await;
    assert!(has(&alerts, "platform_error", "google_ads", "warning"), "{alerts:?}");
    assert!(has(&alerts, "pacing", "meta", "critical"), "Meta is still checked: {alerts:?}");
    assert!(!alerts.iter().any(|(_, subject, _)| subject == "total"), "no total from a partial sync: {alerts:?}");
    let s = summary(task_of(&tasks, &a));
    assert!(s["platforms"]["google_ads"]["error"].as_str().unwrap().contains("permission"), "{s}");
    assert_eq!(s["platforms"]["google_ads"]["retryable"], false);
    assert!(s["platforms"]["meta"]["days"].as_u64().unwrap() > 0);
    let data: Value = sqlx::query_scalar("SELECT data FROM engine.alerts WHERE kind = 'platform_error'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((data["kind"].as_str(), data["account"].as_str()), (Some("auth"), Some("0000000000")), "{data}");
}

#[sqlx::test]
async fn every_platform_failing_is_retried_then_fails_with_an_alert(pool: PgPool) {
    let mut config = test_config();
    // Short backoff and no per-account pacing between the connector's attempts keep it fast.
    config.platforms.meta.retry_base_ms = Some(5);
    config.platforms.meta.account_rate_per_second = Some(1000.0);
    let app = TestApp::with_config(pool, config).await;
    app.sim.state.configure("meta", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let a = active_client(&app, "Alpha", json!({"accounts": {"meta": "1111111111"}})).await;
    let day = Utc::now().date_naive() - chrono::Duration::days(3);
    let (run, tasks) = run(&app, json!({"date": day.to_string()}), false).await;
    assert_eq!(run.status.as_str(), "failed");
    let task = task_of(&tasks, &a);
    assert_eq!((task.status.as_str(), task.attempt), ("failed", 3), "retried up to max_attempts");
    assert!(task.error.as_deref().unwrap().contains("every ad platform failed"), "{:?}", task.error);
    let alerts = alerts_of(&app, &a).await;
    assert_eq!(
        alerts.into_iter().collect::<Vec<_>>(),
        vec![("platform_error".into(), "meta".into(), "warning".into())],
        "the last attempt records it"
    );
}

#[sqlx::test]
async fn a_digest_outside_the_window_goes_as_the_template(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let day = busy_day(&app, &["act_1111111111"], &[]).await;
    // Nobody at this number wrote in: a free-form text would be refused (131047).
    let a = active_client(
        &app,
        "Alpha",
        json!({"accounts": {"meta": "1111111111", "whatsapp": "+5511999990047"}, "budgets": {"meta": 1}}),
    )
    .await;
    let (run, tasks) = run(&app, json!({"date": day.to_string()}), false).await;
    assert_eq!(run.status.as_str(), "succeeded");
    let s = summary(task_of(&tasks, &a));
    assert_eq!(
        (s["notified"]["status"].as_str(), s["notified"]["kind"].as_str()),
        (Some("sent"), Some("template")),
        "{s}"
    );
    let sent = app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("+5511999990047");
    assert_eq!((sent.len(), sent[0].kind.as_str()), (1, "template"));
    let errors = app.sim.state.stats().platforms["whatsapp"].errors.clone();
    assert_eq!(errors.get("131047"), None, "{errors:?}");
}

#[sqlx::test]
async fn a_digest_inside_the_window_is_the_full_text(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let day = busy_day(&app, &["act_1111111111"], &[]).await;
    let a = active_client(
        &app,
        "Alpha",
        json!({"accounts": {"meta": "1111111111", "whatsapp": "+5511999990001"}, "budgets": {"meta": 1}}),
    )
    .await;
    app.customer_writes("+5511999990001", "any news?").await;
    let (run, tasks) = run(&app, json!({"date": day.to_string()}), false).await;
    assert_eq!(run.status.as_str(), "succeeded");
    let s = summary(task_of(&tasks, &a));
    assert_eq!((s["notified"]["status"].as_str(), s["notified"]["kind"].as_str()), (Some("sent"), Some("text")), "{s}");
    let sent = app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("+5511999990001");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].kind == "text" && sent[0].body.starts_with("Daily check for Alpha"), "{:?}", sent[0]);
    let errors = app.sim.state.stats().platforms["whatsapp"].errors.clone();
    assert_eq!(errors.get("131047"), None, "{errors:?}");
}

#[sqlx::test]
async fn anomaly_threshold_and_notify_parameters_apply(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let day = busy_day(&app, &["act_1111111111"], &[]).await;
    let a =
        active_client(&app, "Alpha", json!({"accounts": {"meta": "1111111111", "whatsapp": "+5511999990001"}})).await;
    // Any change at all against the trailing week is beyond a 0.01 % threshold.
    let (_, tasks) =
        run(&app, json!({"date": day.to_string(), "anomaly_threshold": 0.0001, "notify": false}), false).await;
    let alerts = alerts_of(&app, &a).await;
    assert!(alerts.iter().any(|(kind, subject, _)| kind == "spend_anomaly" && subject == "meta"), "{alerts:?}");
    let message: String = sqlx::query_scalar("SELECT message FROM engine.alerts WHERE kind = 'spend_anomaly'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        message.starts_with(&format!("Meta spend on {day} was ")) && message.contains("× the 7-day average"),
        "{message}"
    );
    assert_eq!(summary(task_of(&tasks, &a))["notified"], json!({"status": "skipped", "reason": "notify is off"}));
    assert_eq!(sent_messages(&app), 0);
}

#[sqlx::test]
async fn the_default_day_is_yesterday_in_the_clients_time_zone(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let east =
        active_client(&app, "East", json!({"timezone": "Pacific/Kiritimati", "accounts": {"meta": "1111111111"}}))
            .await;
    let west =
        active_client(&app, "West", json!({"timezone": "Pacific/Pago_Pago", "accounts": {"meta": "1111111111"}})).await;
    let (_, tasks) = run(&app, json!({}), false).await;
    for (client, tz) in [(&east, chrono_tz::Pacific::Kiritimati), (&west, chrono_tz::Pacific::Pago_Pago)] {
        let yesterday = Utc::now().with_timezone(&tz).date_naive() - chrono::Duration::days(1);
        assert_eq!(summary(task_of(&tasks, client))["date"], yesterday.to_string());
    }
}

#[tokio::test]
async fn bad_parameters_name_the_field() {
    let registry = switchboard::workflows::Registry::builtin();
    let workflow = registry.get(WORKFLOW).unwrap();
    let fields = |params: Value| -> Vec<String> {
        workflow.check_params(&params).unwrap_err().into_iter().map(|e| e.field).collect()
    };
    assert_eq!(fields(json!({"anomaly_threshold": 0})), vec!["params.anomaly_threshold"]);
    assert_eq!(fields(json!({"anomaly_threshold": -1})), vec!["params.anomaly_threshold"]);
    assert_eq!(fields(json!({"anomaly_threshold": 10.5})), vec!["params.anomaly_threshold"]);
    assert_eq!(fields(json!({"threshold": 0.5})), vec!["params.threshold"]);
    assert_eq!(fields(json!({"date": "14/06/2026"})), vec!["params.date"]);
    assert_eq!(fields(json!({"date": "2999-01-01"})), vec!["params.date"]);
    assert_eq!(fields(json!({"notify": "yes"})), vec!["params.notify"]);
    assert_eq!(
        workflow.check_params(&json!({})).unwrap(),
        json!({"anomaly_threshold": 0.5, "notify": true}),
        "defaults filled in"
    );
    assert_eq!(
        workflow.check_params(&json!({"anomaly_threshold": 10, "date": "2026-06-14"})).unwrap()["date"],
        "2026-06-14"
    );
    let schema = workflow.params_schema();
    for field in ["anomaly_threshold", "date", "notify"] {
        assert!(schema["properties"][field].is_object(), "{field}: {schema}");
    }
    let info = workflow.info();
    assert_eq!((info.default_cron, info.default_timezone, info.max_attempts), ("0 7 * * *", "UTC", 3));
}

// ---------------------------------------------------------------------------------------
// Alerts API

fn finding(kind: &'static str, severity: Severity, subject: &str) -> NewAlert {
    NewAlert {
        kind,
        severity,
        subject: subject.into(),
        message: format!("{kind} on {subject}"),
        data: json!({"figure": 1}),
    }
}

/// Records alerts as a run would; returns their ids, oldest first.
async fn seed(app: &TestApp, client: &Value, run: Option<Uuid>, day: &str, alerts: &[NewAlert]) -> Vec<Uuid> {
    let mut conn = app.pool.acquire().await.unwrap();
    let recorded = store::alerts::record(&mut conn, id_of(client), run, day.parse().unwrap(), alerts).await.unwrap();
    let mut ids: Vec<Uuid> = recorded.iter().map(|a| a.id).collect();
    ids.sort();
    ids
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
}

async fn list(app: &TestApp, query: &str) -> Value {
    let res = app.get(&format!("/v1/alerts{query}")).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

#[sqlx::test]
async fn alerts_api_filters_and_pages(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let x = app.create_client(json!({"name": "Xray"})).await;
    let y = app.create_client(json!({"name": "Yankee"})).await;
    let run = Uuid::now_v7();
    let xs = seed(
        &app,
        &x,
        Some(run),
        "2026-06-14",
        &[
            finding("pacing", Severity::Warning, "meta"),
            finding("cpa_above_target", Severity::Warning, "total"),
            finding("spend_anomaly", Severity::Critical, "meta"),
        ],
    )
    .await;
    let ys = seed(
        &app,
        &y,
        None,
        "2026-06-15",
        &[finding("pacing", Severity::Info, "google_ads"), finding("max_daily_spend", Severity::Critical, "total")],
    )
    .await;
    sqlx::query("UPDATE engine.alerts SET status = 'resolved' WHERE id = $1")
        .bind(ys[0])
        .execute(&app.pool)
        .await
        .unwrap();

    let all = list(&app, "").await;
    let mut newest_first: Vec<String> = xs.iter().chain(&ys).map(Uuid::to_string).collect();
    newest_first.reverse();
    assert_eq!(ids(&all), newest_first);
    let oldest = &all["data"][4];
    assert_eq!(oldest["client_id"], x["id"]);
    assert_eq!(
        (oldest["kind"].as_str(), oldest["severity"].as_str(), oldest["subject"].as_str()),
        (Some("pacing"), Some("warning"), Some("meta"))
    );
    assert_eq!(
        (oldest["day"].as_str(), oldest["status"].as_str(), oldest["run_id"].as_str()),
        (Some("2026-06-14"), Some("open"), Some(run.to_string().as_str()))
    );
    assert_eq!((oldest["message"].as_str(), &oldest["data"]), (Some("pacing on meta"), &json!({"figure": 1})));
    assert!(
        oldest["created_at"].as_str().unwrap().ends_with('Z')
            && oldest["acknowledged_at"].is_null()
            && oldest["resolved_at"].is_null(),
        "{oldest}"
    );

    assert_eq!(ids(&list(&app, "?client=xray").await).len(), 3, "by slug");
    assert_eq!(ids(&list(&app, &format!("?client={}", y["id"].as_str().unwrap())).await).len(), 2, "by id");
    assert_eq!(ids(&list(&app, "?kind=pacing").await).len(), 2);
    assert_eq!(ids(&list(&app, "?severity=critical").await).len(), 2);
    assert_eq!(ids(&list(&app, "?status=resolved").await), vec![ys[0].to_string()]);
    assert_eq!(ids(&list(&app, "?status=open&kind=pacing&client=xray").await), vec![xs[0].to_string()]);
    assert_eq!(ids(&list(&app, &format!("?run={run}")).await).len(), 3);

    // Pages of two walk the whole list once.
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let page =
            list(&app, &format!("?limit=2{}", cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default()))
                .await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    app.get("/v1/alerts?cursor=bogus").send().await.problem(400, "invalid_cursor");
    app.get("/v1/alerts?status=closed").send().await.problem(400, "invalid_query");
    app.get("/v1/alerts?severity=loud").send().await.problem(400, "invalid_query");
    app.get("/v1/alerts?run=not-a-uuid").send().await.problem(400, "invalid_query");
    app.get("/v1/alerts?clinet=xray").send().await.problem(400, "invalid_query");
    app.get("/v1/alerts?limit=0").send().await.problem(400, "invalid_limit");
    app.get("/v1/alerts?client=nobody").send().await.problem(404, "not_found");
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    app.count(&format!("SELECT count(*) FROM audit.log WHERE action = '{action}' AND resource_type = 'alert'")).await
}

#[sqlx::test]
async fn alert_transitions_are_checked_idempotent_and_audited(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let x = app.create_client(json!({"name": "Xray"})).await;
    let ids = seed(
        &app,
        &x,
        None,
        "2026-06-14",
        &[finding("pacing", Severity::Warning, "meta"), finding("spend_anomaly", Severity::Critical, "meta")],
    )
    .await;
    let (one, two) = (ids[0], ids[1]);

    let got = app.get(&format!("/v1/alerts/{one}")).send().await;
    assert_eq!(got.json()["status"], "open");
    app.get(&format!("/v1/alerts/{}", Uuid::now_v7())).send().await.problem(404, "not_found");
    app.get("/v1/alerts/not-a-uuid").send().await.problem(404, "not_found");
    app.post(&format!("/v1/alerts/{}/acknowledge", Uuid::now_v7()), json!({})).send().await.problem(404, "not_found");

    let acked = app.request(Method::POST, &format!("/v1/alerts/{one}/acknowledge")).token(&app.admin).send().await;
    assert_eq!(acked.status, StatusCode::OK, "{}", acked.text());
    let acked = acked.json();
    assert_eq!(acked["status"], "acknowledged");
    assert!(acked["acknowledged_at"].as_str().unwrap().ends_with('Z'));
    let again = app.request(Method::POST, &format!("/v1/alerts/{one}/acknowledge")).token(&app.admin).send().await;
    assert_eq!(
        (again.status, again.json()["acknowledged_at"].clone()),
        (StatusCode::OK, acked["acknowledged_at"].clone()),
        "already acknowledged: unchanged"
    );
    assert_eq!(audited(&app, "alert.acknowledge").await, 1, "a no-op is not audited");

    let resolved =
        app.request(Method::POST, &format!("/v1/alerts/{one}/resolve")).token(&app.admin).send().await.json();
    assert_eq!(resolved["status"], "resolved");
    assert!(
        resolved["resolved_at"].is_string() && resolved["acknowledged_at"] == acked["acknowledged_at"],
        "{resolved}"
    );
    let refused = app.request(Method::POST, &format!("/v1/alerts/{one}/acknowledge")).token(&app.admin).send().await;
    refused.problem(409, "invalid_transition");
    assert_eq!(
        app.request(Method::POST, &format!("/v1/alerts/{one}/resolve")).token(&app.admin).send().await.status,
        StatusCode::OK
    );
    // Straight from open to resolved.
    let direct = app.request(Method::POST, &format!("/v1/alerts/{two}/resolve")).token(&app.admin).send().await.json();
    assert_eq!((direct["status"].as_str(), direct["acknowledged_at"].is_null()), (Some("resolved"), true));
    assert_eq!(audited(&app, "alert.resolve").await, 2);
    let (before, after): (Value, Value) =
        sqlx::query_as("SELECT before, after FROM audit.log WHERE action = 'alert.acknowledge' AND resource_id = $1")
            .bind(one.to_string())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((before["status"].as_str(), after["status"].as_str()), (Some("open"), Some("acknowledged")));
}

#[sqlx::test]
async fn alerts_api_requires_client_scopes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let x = app.create_client(json!({"name": "Xray"})).await;
    let id = seed(&app, &x, None, "2026-06-14", &[finding("pacing", Severity::Warning, "meta")]).await[0];
    let reader = app.token(&["clients:read"]).await;
    let writer = app.token(&["clients:write"]).await;
    let other = app.token(&["workflows:read"]).await;
    let get = |token: &str, path: &str| app.request(Method::GET, path).token(token).send();
    let post = |token: &str, path: &str| app.request(Method::POST, path).token(token).send();

    assert_eq!(get(&reader, "/v1/alerts").await.status, StatusCode::OK);
    assert_eq!(get(&reader, &format!("/v1/alerts/{id}")).await.status, StatusCode::OK);
    get(&other, "/v1/alerts").await.problem(403, "missing_scope");
    get(&other, &format!("/v1/alerts/{id}")).await.problem(403, "missing_scope");
    post(&reader, &format!("/v1/alerts/{id}/acknowledge")).await.problem(403, "missing_scope");
    post(&reader, &format!("/v1/alerts/{id}/resolve")).await.problem(403, "missing_scope");
    assert_eq!(post(&writer, &format!("/v1/alerts/{id}/acknowledge")).await.status, StatusCode::OK);
    assert_eq!(app.request(Method::GET, "/v1/alerts").send().await.status, StatusCode::UNAUTHORIZED);
}
