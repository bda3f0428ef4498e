//! Each blueprint run end to end against the API, with the in-process simulator
//! behind the platforms and a worker running the workflows. The runner
//! (`runner.rs`) executes the modules as Make would. The token each test uses has
//! exactly the scopes that `make-scenarios/README.md` lists for the blueprint.

use std::{collections::BTreeSet, fs, sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    config::Config,
    store::{
        self,
        alerts::{NewAlert, Severity},
    },
    workflows::engine::{Worker, WorkerSettings},
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use super::{root, runner::Runner};
use crate::support::{TestApp, test_config};

fn blueprint(file: &str) -> Value {
    serde_json::from_str(&fs::read_to_string(root().join("make-scenarios").join(file)).unwrap()).unwrap()
}

/// A token with the scopes the README lists for this blueprint, and the settings a
/// user would enter (the in-process app is at the root, so the base URL is empty).
async fn token_for(app: &TestApp, file: &str) -> String {
    let readme = fs::read_to_string(root().join("make-scenarios/README.md")).unwrap();
    let row = readme.lines().find(|l| l.starts_with('|') && l.contains(&format!("`{file}`"))).expect("README row");
    let scopes: Vec<&str> = row.split('`').skip(1).step_by(2).filter(|s| is_scope(s)).collect();
    app.token(&scopes).await
}

fn is_scope(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(a, b)| [a, b].iter().all(|w| !w.is_empty() && w.bytes().all(|c| c.is_ascii_lowercase())))
}

async fn runner<'a>(app: &'a TestApp, file: &str) -> Runner<'a> {
    let token = token_for(app, file).await;
    Runner::new(app, file, &[("switchboard_url", ""), ("switchboard_token", &token)])
}

/// Runs workflow tasks in the background, as the service's worker role does,
/// starting after `delay`.
fn worker(app: &TestApp, delay: Duration) -> (watch::Sender<bool>, JoinHandle<()>) {
    let settings = WorkerSettings {
        concurrency: 8,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(10),
        ..WorkerSettings::default()
    };
    let worker = Arc::new(Worker::new(app.state.runtime.clone(), settings));
    let (stop, stopped) = watch::channel(false);
    (
        stop,
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            worker.run(stopped).await
        }),
    )
}

async fn stop((stop, handle): (watch::Sender<bool>, JoinHandle<()>)) {
    stop.send(true).unwrap();
    handle.await.unwrap();
}

async fn active_client(app: &TestApp, name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "status": "active", "contacts": [{"name": "Ana", "email": format!("ana@{}.example", name.to_lowercase())}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.create_client(body).await
}

#[sqlx::test]
async fn form_blueprint_creates_one_client_and_one_onboarding_run_even_when_make_retries(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let bp = blueprint("client-onboarding-from-form.json");
    let mut make = runner(&app, "client-onboarding-from-form.json").await;
    // Optional answers left blank, numbers as the form tool sends them (text).
    let form = json!({
        "submission_id": "tally-8812", "company_name": "Acme Coffee", "industry": "food & beverage",
        "timezone": "America/Sao_Paulo", "currency": "", "meta_ad_account": "1234567890",
        "google_ads_customer_id": "", "whatsapp": "+55 11 99999-0000", "meta_monthly_budget": "5000",
        "google_ads_monthly_budget": "", "target_cpa": "25", "target_roas": "", "contact_name": "Ana Souza",
        "contact_email": "ana@acme.example", "contact_phone": "", "contact_role": ""
    });
    make.execute(&bp, form.clone()).await;
    let (status, first) = make.response.clone().expect("a webhook response");
    assert_eq!(status, 200);
    let client = app.get(&format!("/v1/clients/{}", first["client_id"].as_str().unwrap())).send().await.json();
    assert_eq!(client["slug"], "acme-coffee");
    assert_eq!((&client["currency"], &client["timezone"]), (&json!("USD"), &json!("America/Sao_Paulo")));
    assert_eq!(client["accounts"]["meta"], "act_1234567890");
    assert_eq!(client["budgets"], json!({"meta": 5000.0, "google_ads": 0.0}));
    assert_eq!(client["targets"]["cpa"], 25.0);
    assert_eq!(client["contacts"][0]["email"], "ana@acme.example");
    let run = app.get(&format!("/v1/runs/{}", first["onboarding_run_id"].as_str().unwrap())).send().await.json();
    assert_eq!(run["workflow"], "client-onboarding");

    // Make retries the whole execution (or the form tool re-sends): same answer, nothing new.
    make.execute(&bp, form).await;
    assert_eq!(make.response.clone().unwrap(), (200, first));
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM engine.runs WHERE workflow = 'client-onboarding'").await, 1);
}

/// Runs the daily-monitoring blueprint with a worker that starts `delay` late, and
/// checks it reads the run's open alerts once, after the run, and routes them.
async fn daily_monitoring(app: &TestApp, delay: Duration) -> Runner<'_> {
    // Targets no real account meets, so the run raises alerts of both severities.
    let targets = json!({"accounts": {"meta": "1234567890", "google_ads": "123-456-7890"},
                         "budgets": {"meta": 1000000, "google_ads": 1}, "targets": {"cpa": 0.01, "roas": 1000, "max_daily_spend": 1}});
    active_client(app, "Acme", targets.clone()).await;
    active_client(app, "Bravo", targets).await;
    let bp = blueprint("daily-monitoring.json");
    let mut make = runner(app, "daily-monitoring.json").await;
    let running = worker(app, delay);
    make.execute(&bp, Value::Null).await;
    stop(running).await;

    let start = &make.calls[0];
    assert_eq!((start.method.as_str(), start.url.as_str()), ("POST", "/v1/workflows/daily-monitoring/runs"));
    let alerts_call =
        make.calls.iter().find(|c| c.url.starts_with("/v1/alerts")).expect("the alerts were read").url.clone();
    let run_id = alerts_call.split("run=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let run = app.get(&format!("/v1/runs/{run_id}")).send().await.json();
    assert!(!["queued", "running"].contains(&run["status"].as_str().unwrap()), "{run}");
    assert_eq!(make.calls_to("GET", "/v1/alerts"), 1, "the alerts are read once, after the run: {:?}", make.calls);

    let alerts = app.get(&format!("/v1/alerts?run={run_id}&status=open&limit=500")).send().await.json();
    let of = |severity: &str| -> Vec<String> {
        alerts["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["severity"] == json!(severity))
            .map(|a| a["message"].as_str().unwrap().to_string())
            .collect()
    };
    let (critical, warnings) = (of("critical"), of("warning"));
    assert!(!critical.is_empty() && !warnings.is_empty(), "the test needs alerts of both severities: {alerts}");
    let emails = make.sent_by("email:ActionSendEmail");
    assert_eq!(emails.len(), critical.len(), "one email per critical alert");
    assert!(emails.iter().all(|e| e["subject"].as_str().unwrap().starts_with("[Critical]")));
    let slack = make.sent_by("slack:CreateMessage");
    assert_eq!(slack.len(), 1, "one Slack digest for all the warnings");
    let text = slack[0]["text"].as_str().unwrap();
    assert!(text.contains(&format!("{} warning(s)", warnings.len())), "{text}");
    assert!(warnings.iter().all(|w| text.contains(w.as_str())), "{text}");

    // A second execution the same day is the same run (Idempotency-Key = the date).
    let running = worker(app, Duration::ZERO);
    make.execute(&bp, Value::Null).await;
    stop(running).await;
    assert_eq!(app.count("SELECT count(*) FROM engine.runs WHERE workflow = 'daily-monitoring'").await, 1);
    make
}

#[sqlx::test]
async fn daily_monitoring_blueprint_gets_a_short_run_in_one_call_and_routes_its_alerts(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let make = daily_monitoring(&app, Duration::ZERO).await;
    assert_eq!(make.sleeps, 0, "Prefer: wait answered with the finished run");
}

#[sqlx::test]
async fn daily_monitoring_blueprint_polls_a_run_that_outlasts_the_wait(pool: PgPool) {
    // The API holds a `Prefer: wait` answer for at most its request timeout less a
    // second: here 1 s, while the worker starts after 1.5 s.
    let app = TestApp::with_config(pool, Config { request_timeout_secs: 2, ..test_config() }).await;
    let make = daily_monitoring(&app, Duration::from_millis(1500)).await;
    assert!(make.sleeps >= 1, "the blueprint slept between polls");
    assert!(make.calls_to("GET", "/v1/runs/") >= 2, "{:?}", make.calls);
}

#[sqlx::test]
async fn weekly_report_blueprint_emails_each_report_of_its_run_to_the_client(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let acme = active_client(&app, "Acme", json!({"accounts": {"meta": "1234567890"}})).await;
    let bravo = active_client(&app, "Bravo", json!({"accounts": {"google_ads": "123-456-7890"}})).await;
    let bp = blueprint("weekly-report.json");
    let mut make = runner(&app, "weekly-report.json").await;
    let running = worker(&app, Duration::ZERO);
    make.execute(&bp, Value::Null).await;
    stop(running).await;

    let emails = make.sent_by("email:ActionSendEmail");
    let to: BTreeSet<String> = emails.iter().map(|e| e["to"][0].to_string()).collect();
    let contacts = [&acme, &bravo].map(|c| c["contacts"][0]["email"].to_string());
    assert_eq!(to, BTreeSet::from(contacts), "{emails:#?}");
    let yesterday = (Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    for email in &emails {
        let subject = email["subject"].as_str().unwrap();
        assert!(subject.ends_with(&format!("to {yesterday}")), "{subject}");
        assert!(email["html"].as_str().unwrap().len() > "<pre></pre>".len());
        // The rendered PDF (fetched with `?format=pdf`, as report.ready's pdf_url) is attached.
        let attachment = &email["attachments"][0];
        assert_eq!(attachment["fileName"], format!("{yesterday} weekly report.pdf"), "{email:#?}");
        assert!(attachment["data"].as_str().is_some_and(|d| d.starts_with("%PDF-")), "{email:#?}");
    }
    let pdfs = make.calls.iter().filter(|c| c.method == "GET" && c.url.ends_with("?format=pdf") && c.status == 200);
    assert_eq!(pdfs.count(), 2, "{:?}", make.calls);
    // deliver=false: the emails are the delivery; Switchboard sent no WhatsApp.
    let created = &app.sim.state.stats().platforms["whatsapp"].created;
    assert_eq!((created["messages"], created["templates"]), (0, 0));
}

#[sqlx::test]
async fn alerts_receiver_blueprint_routes_alert_events_by_severity(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = active_client(&app, "Acme", json!({})).await;
    let client_id: Uuid = client["id"].as_str().unwrap().parse().unwrap();
    let finding = |kind, severity| NewAlert {
        kind,
        severity,
        subject: "meta".into(),
        message: format!("{kind} on meta"),
        data: json!({}),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    let day = Utc::now().date_naive();
    let alerts = store::alerts::record(
        &mut conn,
        client_id,
        None,
        day,
        &[finding("spend_anomaly", Severity::Critical), finding("pacing", Severity::Warning)],
    )
    .await
    .unwrap();
    let (critical, warning) = (
        alerts.iter().find(|a| a.kind == "spend_anomaly").unwrap().id,
        alerts.iter().find(|a| a.kind == "pacing").unwrap().id,
    );
    let event = |n: u32, event_type: &str, data: Value| json!({"id": format!("evt_{n}"), "type": event_type, "created_at": "2026-06-15T07:00:03.120Z", "data": data});
    let bp = blueprint("alerts-webhook-receiver.json");
    let mut make = runner(&app, "alerts-webhook-receiver.json").await;

    make.execute(&bp, event(1, "alert.created", json!({"id": critical, "severity": "critical"}))).await;
    assert_eq!(make.sent_by("email:ActionSendEmail").len(), 1);
    assert!(make.sent_by("email:ActionSendEmail")[0]["html"].as_str().unwrap().contains("spend_anomaly on meta"));
    assert_eq!(
        app.get(&format!("/v1/alerts/{critical}")).send().await.json()["status"],
        "open",
        "critical alerts wait for a person"
    );

    make.execute(&bp, event(2, "alert.created", json!({"id": warning, "severity": "warning"}))).await;
    assert_eq!(make.sent_by("slack:CreateMessage").len(), 1);
    assert_eq!(app.get(&format!("/v1/alerts/{warning}")).send().await.json()["status"], "acknowledged");

    // Other event types stop at the filter; a redelivered event acknowledges nothing twice.
    let before = make.calls.len();
    make.execute(&bp, event(3, "run.succeeded", json!({"id": Uuid::now_v7()}))).await;
    assert_eq!(make.calls.len(), before);
    make.execute(&bp, event(2, "alert.created", json!({"id": warning, "severity": "warning"}))).await;
    assert_eq!(make.calls.last().unwrap().status, 200);
}

#[sqlx::test]
async fn sync_blueprint_pages_through_active_clients_and_writes_a_row_per_platform(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut slugs = BTreeSet::new();
    for name in ["Acme", "Bravo", "Charlie"] {
        slugs.insert(
            active_client(&app, name, json!({"accounts": {"meta": "1234567890"}})).await["slug"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    app.create_client(json!({"name": "Paused Co", "status": "paused", "accounts": {"meta": "1234567890"}})).await;
    // Pages of two, so three active clients take two pages.
    let mut bp = blueprint("sync-metrics-to-sheet.json");
    let url = bp["flow"][3]["mapper"]["url"].as_str().unwrap().replace("limit=100", "limit=2");
    bp["flow"][3]["mapper"]["url"] = json!(url);
    let mut make = runner(&app, "sync-metrics-to-sheet.json").await;
    make.execute(&bp, Value::Null).await;

    assert_eq!(make.calls_to("GET", "/v1/clients?"), 2, "two pages, then the loop stops: {:?}", make.calls);
    assert_eq!(make.calls.iter().filter(|c| c.url.ends_with("/metrics/sync")).count(), 3);
    let rows = make.sent_by("google-sheets:addRow");
    let written: BTreeSet<String> = rows.iter().map(|r| r["values"]["2"].as_str().unwrap().to_string()).collect();
    assert_eq!(written, slugs, "a row for every active client and none for the paused one");
    for slug in &slugs {
        let total = rows
            .iter()
            .find(|r| r["values"]["2"] == json!(slug) && r["values"]["4"] == "total")
            .expect("a total row per client");
        assert!(total["values"]["6"].as_f64().is_some_and(|spend| spend >= 0.0), "{total}");
    }
}

// ---------------------------------------------------------------------------- error paths

/// The trigger bundle each blueprint starts from (none for scheduled ones).
fn trigger(file: &str) -> Value {
    match file {
        "alerts-webhook-receiver.json" => json!({"id": "evt_1", "type": "alert.created",
            "created_at": "2026-06-15T07:00:03.120Z", "data": {"id": Uuid::now_v7(), "severity": "critical"}}),
        "client-onboarding-from-form.json" => json!({
            "submission_id": "tally-1", "company_name": "Acme Coffee", "industry": "food & beverage",
            "timezone": "America/Sao_Paulo", "currency": "", "meta_ad_account": "1234567890",
            "google_ads_customer_id": "", "whatsapp": "+55 11 99999-0000", "meta_monthly_budget": "5000",
            "google_ads_monthly_budget": "", "target_cpa": "25", "target_roas": "", "contact_name": "Ana Souza",
            "contact_email": "ana@acme.example", "contact_phone": "", "contact_role": ""
        }),
        _ => Value::Null,
    }
}

/// A refused request (here 401: the token was revoked or mistyped) reaches the
/// module's error handler in every blueprint, and the flow stops there: Make stores
/// an incomplete execution to retry instead of stopping the scenario.
#[sqlx::test]
async fn every_blueprint_sends_a_refused_request_to_its_error_handler(pool: PgPool) {
    let app = TestApp::new(pool).await;
    active_client(&app, "Acme", json!({"accounts": {"meta": "1234567890"}})).await;
    for file in [
        "alerts-webhook-receiver.json",
        "client-onboarding-from-form.json",
        "daily-monitoring.json",
        "sync-metrics-to-sheet.json",
        "weekly-report.json",
    ] {
        let bp = blueprint(file);
        let mut make = Runner::new(&app, file, &[("switchboard_url", ""), ("switchboard_token", "not-a-token")]);
        make.execute(&bp, trigger(file)).await;
        assert_eq!(make.calls.len(), 1, "{file}: the flow stops at the first refused call: {:?}", make.calls);
        let handled = make.handled.first().unwrap_or_else(|| panic!("{file}: no error reached a handler"));
        assert_eq!((handled.status, handled.directive.as_str()), (Some(401), "builtin:Break"), "{file}");
        assert_eq!(handled.module, first_http(&bp), "{file}");
        assert!(make.sent.is_empty() && make.response.is_none(), "{file}: nothing after the failed module ran");
    }
}

fn first_http(bp: &Value) -> u64 {
    bp["flow"].as_array().unwrap().iter().find(|m| m["module"] == json!("http:MakeRequest")).unwrap()["id"]
        .as_u64()
        .unwrap()
}

/// A form answer the API refuses (422: the contact's email is not an address)
/// reaches the handler of the module that creates the client; nothing is created.
#[sqlx::test]
async fn form_blueprint_sends_a_refused_client_to_its_error_handler(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let bp = blueprint("client-onboarding-from-form.json");
    let mut make = runner(&app, "client-onboarding-from-form.json").await;
    let mut form = trigger("client-onboarding-from-form.json");
    form["contact_email"] = json!("not an email");
    make.execute(&bp, form).await;
    let handled = make.handled.first().expect("the 422 reached a handler");
    assert_eq!((handled.module, handled.status), (3, Some(422)));
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients").await, 0);
}

/// When the mail server or Slack fails, the alerts receiver's Email and Slack
/// modules hand the error to their own handlers (an instant scenario with an
/// unhandled error is switched off); a warning is then not acknowledged, so it is
/// still open for the retry.
#[sqlx::test]
async fn alerts_receiver_blueprint_handles_a_failing_email_or_slack_module(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = active_client(&app, "Acme", json!({})).await;
    let client_id: Uuid = client["id"].as_str().unwrap().parse().unwrap();
    let finding = |kind, severity| NewAlert {
        kind,
        severity,
        subject: "meta".into(),
        message: kind.to_string(),
        data: json!({}),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    let alerts = store::alerts::record(
        &mut conn,
        client_id,
        None,
        Utc::now().date_naive(),
        &[finding("spend_anomaly", Severity::Critical), finding("pacing", Severity::Warning)],
    )
    .await
    .unwrap();
    let id = |kind: &str| alerts.iter().find(|a| a.kind == kind).unwrap().id;
    let bp = blueprint("alerts-webhook-receiver.json");
    let mut make = runner(&app, "alerts-webhook-receiver.json").await;
    make.failing = vec![5, 6];
    let event = |severity: &str, alert: Uuid| {
        json!({"id": "evt_9", "type": "alert.created",
        "created_at": "2026-06-15T07:00:03.120Z", "data": {"id": alert, "severity": severity}})
    };

    make.execute(&bp, event("critical", id("spend_anomaly"))).await;
    make.execute(&bp, event("warning", id("pacing"))).await;
    let handled: Vec<(u64, &str)> = make.handled.iter().map(|h| (h.module, h.directive.as_str())).collect();
    assert_eq!(handled, [(5, "builtin:Break"), (6, "builtin:Break")]);
    assert!(make.sent.is_empty());
    assert_eq!(app.get(&format!("/v1/alerts/{}", id("pacing"))).send().await.json()["status"], "open");
}
