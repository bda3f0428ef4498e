//! WhatsApp commands through the signed inbound webhook, platform-call counting
//! per client, and `GET /v1/costs`.

use axum::http::{Method, StatusCode};
use chrono::{Duration, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use switchboard::sim::whatsapp::SentRecord;

use crate::support::{TestApp, TestResponse, test_config};

const PATH: &str = "/v1/inbound/whatsapp";
/// The sandbox WhatsApp app secret and verify token.
use crate::support::{WHATSAPP_APP_SECRET as APP_SECRET, WHATSAPP_VERIFY_TOKEN as VERIFY_TOKEN};
/// On the allow-list (as Meta sends it: digits only).
const BOSS: &str = "5511999990000";
const STRANGER: &str = "14155550100";

async fn app(pool: PgPool) -> TestApp {
    let config =
        switchboard::config::Config { whatsapp_command_senders: format!("+{BOSS}, +442071838750"), ..test_config() };
    TestApp::with_config(pool, config).await
}

fn sign_with(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery of one text message, as the Cloud API sends it (with a status update alongside).
fn delivery(from: &str, id: &str, text: &str) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "100000000000001"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": text}}],
            "statuses": [{"id": "wamid.other", "status": "delivered", "timestamp": "1749416383", "recipient_id": from}]
        }}]}]
    });
    serde_json::to_vec(&body).unwrap()
}

async fn post_signed(app: &TestApp, body: Vec<u8>, signature: Option<String>) -> TestResponse {
    let mut req = app.request(Method::POST, PATH);
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", &s);
    }
    req.raw_body("application/json", body).send().await
}

/// Delivers a signed text message and returns the acknowledgement.
async fn say(app: &TestApp, from: &str, id: &str, text: &str) -> Value {
    // This delivery stands in for the simulator's: the customer wrote in, so their 24 h window
    // is open there too (the replies are free-form texts).
    app.sim.state.vendor::<switchboard::sim::whatsapp::State>().open_window(from, Utc::now());
    let body = delivery(from, id, text);
    let signature = sign_with(APP_SECRET, &body);
    let res = post_signed(app, body, Some(signature)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn sent_to(app: &TestApp, number: &str) -> Vec<SentRecord> {
    app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to(number)
}

/// The latest message sent to `number`.
fn last_reply(app: &TestApp, number: &str) -> String {
    sent_to(app, number).last().map(|m| m.body.clone()).unwrap_or_else(|| panic!("no reply to {number}"))
}

async fn active_client(app: &TestApp, name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "status": "active"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.create_client(body).await
}

// ---------------------------------------------------------------------------------------
// The webhook

#[sqlx::test]
async fn verification_handshake_echoes_the_challenge_only_for_the_right_token(pool: PgPool) {
    let app = app(pool).await;
    let url =
        |mode: &str, token: &str| format!("{PATH}?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444");
    let res = app.request(Method::GET, &url("subscribe", VERIFY_TOKEN)).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.text(), "1158201444");
    assert!(res.header("content-type").unwrap().starts_with("text/plain"));

    app.request(Method::GET, &url("subscribe", "wrong-token")).send().await.problem(403, "verification_failed");
    app.request(Method::GET, &url("unsubscribe", VERIFY_TOKEN)).send().await.problem(403, "verification_failed");
    app.request(Method::GET, PATH).send().await.problem(403, "verification_failed");
}

#[sqlx::test]
async fn a_missing_or_bad_signature_is_401_and_nothing_is_processed(pool: PgPool) {
    let app = app(pool).await;
    let body = delivery(BOSS, "wamid.unsigned", "help");
    let tampered = delivery(BOSS, "wamid.unsigned", "run daily-monitoring");
    let cases = [
        None,
        Some(sign_with("another-secret", &body)),
        Some(sign_with(APP_SECRET, &tampered)),
        Some(sign_with(APP_SECRET, &body).replace("sha256=", "sha1=")),
        Some("sha256=zz".to_string()),
    ];
    for signature in cases {
        post_signed(&app, body.clone(), signature).await.problem(401, "invalid_signature");
    }
    assert_eq!(app.count("SELECT count(*) FROM engine.inbound_messages").await, 0);
    assert!(sent_to(&app, BOSS).is_empty());
    // The same body, signed, goes through.
    let signed = sign_with(APP_SECRET, &body);
    assert_eq!(post_signed(&app, body, Some(signed)).await.status, StatusCode::OK);
}

#[sqlx::test]
async fn help_from_an_allowed_number_is_answered_by_whatsapp(pool: PgPool) {
    let app = app(pool).await;
    let ack = say(&app, BOSS, "wamid.help1", "HELP").await;
    assert_eq!(ack, json!({"messages": 1, "new": 1, "commands": 1, "statuses": 0}));
    let sent = sent_to(&app, BOSS);
    assert_eq!(sent.len(), 1, "one reply");
    assert_eq!(app.sim.state.stats().platforms["whatsapp"].created["messages"], 1);
    let reply = &sent[0].body;
    for expected in ["status <client>", "run <workflow> [client]", "report <client>"] {
        assert!(reply.contains(expected), "{reply}");
    }
    // The workflows come from the registry.
    for key in app.state.workflows.keys() {
        assert!(reply.contains(key), "{key} missing from: {reply}");
    }
    let (sender, command, stored_reply): (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT sender, command, reply FROM engine.inbound_messages WHERE message_id = 'wamid.help1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((sender.as_str(), command.as_deref()), ("+5511999990000", Some("help")));
    assert_eq!(stored_reply.as_deref(), Some(reply.as_str()));
}

#[sqlx::test]
async fn a_redelivered_message_is_processed_once(pool: PgPool) {
    let app = app(pool).await;
    assert_eq!(say(&app, BOSS, "wamid.twice", "help").await["new"], 1);
    assert_eq!(say(&app, BOSS, "wamid.twice", "help").await["new"], 0);
    // Meta also redelivers concurrently.
    let (a, b) = tokio::join!(say(&app, BOSS, "wamid.race", "help"), say(&app, BOSS, "wamid.race", "help"));
    assert_eq!(a["new"].as_u64().unwrap() + b["new"].as_u64().unwrap(), 1);
    assert_eq!(sent_to(&app, BOSS).len(), 2, "one reply per message id");
    assert_eq!(app.count("SELECT count(*) FROM engine.inbound_messages").await, 2);
}

#[sqlx::test]
async fn a_number_not_on_the_list_is_recorded_and_ignored(pool: PgPool) {
    let app = app(pool).await;
    let client = active_client(&app, "Ignored Co", json!({})).await;
    let ack =
        say(&app, STRANGER, "wamid.stranger", &format!("run daily-monitoring {}", client["slug"].as_str().unwrap()))
            .await;
    assert_eq!(ack, json!({"messages": 1, "new": 1, "commands": 0, "statuses": 0}));
    assert!(sent_to(&app, STRANGER).is_empty(), "no reply");
    assert_eq!(app.sim.state.stats().platforms["whatsapp"].created["messages"], 0);
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM engine.inbound_messages WHERE sender = '+14155550100' AND command IS NULL AND reply IS NULL").await,
        1
    );
}

#[sqlx::test]
async fn unknown_commands_and_missing_arguments_get_a_hint(pool: PgPool) {
    let app = app(pool).await;
    say(&app, BOSS, "wamid.q1", "what's up?").await;
    assert!(last_reply(&app, BOSS).contains("Send `help`"), "{}", last_reply(&app, BOSS));
    say(&app, BOSS, "wamid.q2", "status").await;
    assert!(last_reply(&app, BOSS).contains("Usage: status <client>"), "{}", last_reply(&app, BOSS));
    say(&app, BOSS, "wamid.q3", "status nobody-here").await;
    assert!(last_reply(&app, BOSS).contains("No client `nobody-here`"), "{}", last_reply(&app, BOSS));
    assert_eq!(
        app.count("SELECT count(*) FROM engine.inbound_messages WHERE command IN ('unknown', 'usage', 'status')").await,
        3
    );
}

#[sqlx::test]
async fn run_starts_the_workflow_for_one_client_or_all_active_ones(pool: PgPool) {
    let app = app(pool).await;
    let one = active_client(&app, "Run One", json!({})).await;
    active_client(&app, "Run Two", json!({})).await;
    app.create_client(json!({"name": "Still Onboarding"})).await;
    let slug = one["slug"].as_str().unwrap();

    say(&app, BOSS, "wamid.run1", &format!("Run Daily-Monitoring {slug}")).await;
    let reply = last_reply(&app, BOSS);
    assert!(reply.starts_with("Started daily-monitoring for Run One"), "{reply}");
    assert_eq!(
        app.count("SELECT count(*) FROM engine.runs WHERE trigger = 'whatsapp' AND workflow = 'daily-monitoring'")
            .await,
        1
    );
    let tasks: Vec<String> =
        sqlx::query_scalar("SELECT client_id::text FROM engine.tasks").fetch_all(&app.pool).await.unwrap();
    assert_eq!(tasks, vec![one["id"].as_str().unwrap().to_string()]);
    assert_eq!(
        app.count("SELECT count(*) FROM audit.log WHERE actor_name = 'whatsapp:+5511999990000' AND action = 'run.start' AND resource_type = 'run'").await,
        1
    );

    // Without a client: every active client.
    say(&app, BOSS, "wamid.run2", "run daily-monitoring").await;
    assert!(last_reply(&app, BOSS).contains("for 2 active clients"), "{}", last_reply(&app, BOSS));
    assert_eq!(app.count("SELECT count(*) FROM engine.runs WHERE trigger = 'whatsapp'").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM engine.tasks").await, 3);

    // Unknown workflow: the registry's keys, no run.
    say(&app, BOSS, "wamid.run3", "run nightly-magic").await;
    let reply = last_reply(&app, BOSS);
    assert!(reply.contains("Unknown workflow `nightly-magic`") && reply.contains("weekly-report"), "{reply}");
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 2);
}

#[sqlx::test]
async fn status_reports_pacing_and_open_alerts(pool: PgPool) {
    let app = app(pool).await;
    let client =
        active_client(&app, "Paced Co", json!({"budgets": {"meta": 3000}, "accounts": {"meta": "1234567890"}})).await;
    let id = client["id"].as_str().unwrap();
    sqlx::query(
        "INSERT INTO engine.alerts (id, client_id, kind, severity, day, message, status)
         VALUES (gen_random_uuid(), $1::uuid, 'pacing', 'warning', current_date, 'over', 'open'),
                (gen_random_uuid(), $1::uuid, 'cpa', 'warning', current_date, 'high', 'open'),
                (gen_random_uuid(), $1::uuid, 'roas', 'info', current_date, 'old', 'resolved')",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    say(&app, BOSS, "wamid.status", "status paced-co").await;
    let reply = last_reply(&app, BOSS);
    let pacing = app.get("/v1/clients/paced-co/pacing").send().await.json();
    assert!(reply.starts_with(&format!("Paced Co — pacing {}", pacing["month"].as_str().unwrap())), "{reply}");
    assert!(reply.contains("• meta: spent 0.00 of 3000.00"), "{reply}");
    assert!(reply.contains("• total:"), "{reply}");
    assert!(reply.contains("Open alerts: 2"), "{reply}");
}

#[sqlx::test]
async fn report_quotes_the_latest_report(pool: PgPool) {
    let app = app(pool).await;
    let client = active_client(&app, "Reported Co", json!({})).await;
    say(&app, BOSS, "wamid.rep1", "report reported-co").await;
    assert_eq!(last_reply(&app, BOSS), "No report yet for Reported Co.");

    let insert = |body: String, end: &'static str, hours_ago: i32| {
        sqlx::query(
            "INSERT INTO engine.reports (id, client_id, kind, period_start, period_end, body, figures, created_at)
             VALUES (gen_random_uuid(), $1::uuid, 'weekly', $2::date - 6, $2::date, $3, '{}', now() - make_interval(hours => $4))",
        )
        .bind(client["id"].as_str().unwrap().to_string())
        .bind(end)
        .bind(body)
        .bind(hours_ago)
    };
    let long = format!("# Week in review\n{}", "x".repeat(1000));
    insert(long.clone(), "2026-06-14", 1).execute(&app.pool).await.unwrap();
    insert("Old news.".into(), "2026-06-07", 200).execute(&app.pool).await.unwrap();
    say(&app, BOSS, "wamid.rep2", "REPORT reported-co").await;
    let reply = last_reply(&app, BOSS);
    assert!(reply.starts_with("Reported Co — weekly report, 2026-06-08 to 2026-06-14"), "{reply}");
    let excerpt: String = long.chars().take(600).collect();
    assert!(reply.ends_with(&format!("{excerpt}…")), "{reply}");
    assert!(!reply.contains("Old news"));
}

// ---------------------------------------------------------------------------------------
// Costs

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn calls(app: &TestApp, client_id: &str, platform: &str) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT calls FROM costs.platform_calls WHERE client_id = $1::uuid AND platform = $2 AND day = $3",
    )
    .bind(client_id)
    .bind(platform)
    .bind(today())
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

/// The sends below are plain platform calls (what is counted); free-form texts need the
/// recipient's 24 h window open in the simulator, as if they had just written in.
fn window_open_for_calls(app: &TestApp) {
    app.sim.state.vendor::<switchboard::sim::whatsapp::State>().open_window("+5511988880000", Utc::now());
}

#[sqlx::test]
async fn platform_calls_in_a_client_scope_are_counted_and_flushed(pool: PgPool) {
    let app = app(pool).await;
    window_open_for_calls(&app);
    let a = active_client(&app, "Counted A", json!({})).await;
    let b = active_client(&app, "Counted B", json!({})).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap().parse().unwrap(), b["id"].as_str().unwrap().parse().unwrap());
    let whatsapp = &app.state.platforms.whatsapp;
    switchboard::costs::for_client(a_id, async {
        whatsapp.send_text("+5511988880000", "one").await.unwrap();
        whatsapp.send_text("+5511988880000", "two").await.unwrap();
    })
    .await;
    switchboard::costs::for_client(b_id, whatsapp.send_text("+5511988880000", "three")).await.unwrap();
    whatsapp.send_text("+5511988880000", "nobody's").await.unwrap(); // outside any client: not counted

    assert_eq!(calls(&app, a["id"].as_str().unwrap(), "whatsapp").await, None, "counted in memory until flushed");
    switchboard::costs::flush(&app.pool, &app.state.platforms.calls).await.unwrap();
    assert_eq!(calls(&app, a["id"].as_str().unwrap(), "whatsapp").await, Some(2));
    assert_eq!(calls(&app, b["id"].as_str().unwrap(), "whatsapp").await, Some(1));
    assert_eq!(app.count("SELECT coalesce(sum(calls), 0)::bigint FROM costs.platform_calls").await, 3);

    // A flush adds to what is stored; a flush with nothing pending changes nothing.
    switchboard::costs::for_client(a_id, whatsapp.send_text("+5511988880000", "four")).await.unwrap();
    switchboard::costs::flush(&app.pool, &app.state.platforms.calls).await.unwrap();
    switchboard::costs::flush(&app.pool, &app.state.platforms.calls).await.unwrap();
    assert_eq!(calls(&app, a["id"].as_str().unwrap(), "whatsapp").await, Some(3));

    // A metrics sync attributes its calls to the client, per platform.
    let ads =
        active_client(&app, "Counted Ads", json!({"accounts": {"meta": "1234567890", "google_ads": "123-456-7890"}}))
            .await;
    let (from, to) = (today() - Duration::days(9), today() - Duration::days(3));
    let res = app.post("/v1/clients/counted-ads/metrics/sync", json!({"from": from, "to": to})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    switchboard::costs::flush(&app.pool, &app.state.platforms.calls).await.unwrap();
    let ads_id = ads["id"].as_str().unwrap();
    assert!(calls(&app, ads_id, "meta").await.is_some_and(|n| n >= 1));
    assert!(calls(&app, ads_id, "google_ads").await.is_some_and(|n| n >= 1));
}

async fn seed_costs(app: &TestApp) -> (Value, Value) {
    let a = active_client(app, "Cost Alpha", json!({})).await;
    let b = active_client(app, "Cost Beta", json!({})).await;
    let llm = "INSERT INTO costs.llm_usage (id, at, client_id, provider, model, input_tokens, output_tokens, purpose)
               VALUES (gen_random_uuid(), $1::timestamptz, $2::uuid, 'anthropic', 'claude', $3, $4, 'test')";
    let rows: [(&str, Option<&str>, i32, i32); 5] = [
        ("2026-06-01T00:05:00Z", a["id"].as_str(), 1000, 200),
        ("2026-06-01T23:55:00Z", a["id"].as_str(), 500, 100),
        ("2026-06-02T00:00:00Z", a["id"].as_str(), 10, 1),
        ("2026-06-01T12:00:00Z", b["id"].as_str(), 300, 30),
        ("2026-06-01T12:00:00Z", None, 7777, 7777), // no client: not shown
    ];
    for (at, client, input, output) in rows {
        sqlx::query(llm).bind(at).bind(client).bind(input).bind(output).execute(&app.pool).await.unwrap();
    }
    let calls =
        "INSERT INTO costs.platform_calls (client_id, platform, day, calls) VALUES ($1::uuid, $2, $3::date, $4)";
    for (client, platform, day, n) in [
        (&a, "meta", "2026-06-01", 3),
        (&a, "google_ads", "2026-06-01", 2),
        (&b, "meta", "2026-06-03", 5),
        (&a, "meta", "2026-07-01", 99),
    ] {
        sqlx::query(calls)
            .bind(client["id"].as_str())
            .bind(platform)
            .bind(day)
            .bind(n)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    (a, b)
}

#[sqlx::test]
async fn costs_show_llm_usage_and_platform_calls_per_client_and_day(pool: PgPool) {
    let app = app(pool).await;
    let (a, b) = seed_costs(&app).await;
    let reader = app.token(&["clients:read"]).await;
    let res = app.request(Method::GET, "/v1/costs?from=2026-06-01&to=2026-06-30").token(&reader).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let expected = json!({
        "from": "2026-06-01", "to": "2026-06-30",
        "data": [
            {"client_id": a["id"], "client_slug": "cost-alpha", "date": "2026-06-01",
             "llm": {"input_tokens": 1500, "output_tokens": 300, "calls": 2}, "platform_calls": {"google_ads": 2, "meta": 3}},
            {"client_id": b["id"], "client_slug": "cost-beta", "date": "2026-06-01",
             "llm": {"input_tokens": 300, "output_tokens": 30, "calls": 1}, "platform_calls": {}},
            {"client_id": a["id"], "client_slug": "cost-alpha", "date": "2026-06-02",
             "llm": {"input_tokens": 10, "output_tokens": 1, "calls": 1}, "platform_calls": {}},
            {"client_id": b["id"], "client_slug": "cost-beta", "date": "2026-06-03",
             "llm": {"input_tokens": 0, "output_tokens": 0, "calls": 0}, "platform_calls": {"meta": 5}},
        ],
        "totals": {"llm": {"input_tokens": 1810, "output_tokens": 331, "calls": 4}, "platform_calls": {"google_ads": 2, "meta": 8}}
    });
    assert_eq!(res.json(), expected);

    // One client, by slug or id; a narrower range.
    let only_b = app.get("/v1/costs?from=2026-06-01&to=2026-06-30&client=cost-beta").send().await.json();
    assert_eq!(only_b["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        only_b["totals"],
        json!({"llm": {"input_tokens": 300, "output_tokens": 30, "calls": 1}, "platform_calls": {"meta": 5}})
    );
    let by_id = app
        .get(&format!("/v1/costs?from=2026-06-01&to=2026-06-30&client={}", b["id"].as_str().unwrap()))
        .send()
        .await
        .json();
    assert_eq!(by_id, only_b);
    let day2 = app.get("/v1/costs?from=2026-06-02&to=2026-06-02").send().await.json();
    assert_eq!(day2["data"].as_array().unwrap().len(), 1);
    assert_eq!(day2["totals"]["llm"]["input_tokens"], 10);
    let july = app.get("/v1/costs?from=2026-07-01&to=2026-07-01").send().await.json();
    assert_eq!(july["totals"]["platform_calls"], json!({"meta": 99}));
}

#[sqlx::test]
async fn costs_refuse_bad_ranges_unknown_clients_and_missing_scope(pool: PgPool) {
    let app = app(pool).await;
    let bad = |res: TestResponse, field: &str| {
        res.problem(400, "invalid_query");
        assert_eq!(res.error_fields(), vec![field.to_string()], "{}", res.text());
    };
    bad(app.get("/v1/costs?to=2026-06-30").send().await, "from");
    bad(app.get("/v1/costs?from=2026-06-01").send().await, "to");
    bad(app.get("/v1/costs?from=2026-06-31&to=2026-07-01").send().await, "from");
    bad(app.get("/v1/costs?from=2026-06-01&to=june").send().await, "to");
    bad(app.get("/v1/costs?from=2026-06-02&to=2026-06-01").send().await, "to");
    bad(app.get("/v1/costs?from=2025-01-01&to=2026-01-02").send().await, "to");
    bad(app.get("/v1/costs?from=2026-06-01&to=2026-06-30&clinet=x").send().await, "clinet");
    assert_eq!(
        app.get("/v1/costs?from=2025-01-01&to=2026-01-01").send().await.status,
        StatusCode::OK,
        "366 days are fine"
    );
    app.get("/v1/costs?from=2026-06-01&to=2026-06-30&client=nobody").send().await.problem(404, "not_found");
    let runner = app.token(&["workflows:run"]).await;
    app.request(Method::GET, "/v1/costs?from=2026-06-01&to=2026-06-30")
        .token(&runner)
        .send()
        .await
        .problem(403, "missing_scope");
}

/// A workflow that sends one WhatsApp message per client.
struct Pinger;

impl switchboard::workflows::Workflow for Pinger {
    fn info(&self) -> switchboard::workflows::WorkflowInfo {
        switchboard::workflows::WorkflowInfo {
            key: "pinger",
            title: "Pinger",
            description: "Sends one message per client",
            version: 1,
            default_cron: "0 7 * * *",
            default_timezone: "UTC",
            max_attempts: 1,
        }
    }

    fn params_schema(&self) -> Value {
        json!({"type": "object"})
    }

    fn check_params(&self, params: &Value) -> Result<Value, Vec<switchboard::domain::validation::FieldError>> {
        Ok(params.clone())
    }

    fn run<'a>(
        &'a self,
        ctx: &'a switchboard::workflows::TaskContext,
    ) -> futures::future::BoxFuture<'a, Result<Value, switchboard::workflows::StepError>> {
        Box::pin(async move {
            ctx.runtime.platforms.whatsapp.send_text("+5511988880000", &ctx.client.slug).await?;
            Ok(json!({}))
        })
    }
}

#[sqlx::test]
async fn workflow_tasks_count_their_calls_for_their_client_and_the_flusher_writes_them(pool: PgPool) {
    use std::sync::Arc;
    use switchboard::{
        store::runs,
        workflows::{
            Registry,
            engine::{Worker, WorkerSettings},
        },
    };

    let app = app(pool).await;
    window_open_for_calls(&app);
    let a = active_client(&app, "Task A", json!({})).await;
    let b = active_client(&app, "Task B", json!({})).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let new = runs::NewRun {
        workflow: "pinger",
        workflow_version: 1,
        trigger: runs::RunTrigger::Api,
        params: &json!({}),
        dry_run: false,
        callback_url: None,
        schedule_id: None,
        created_by: None,
        client_ids: None,
        max_attempts: 1,
    };
    let run = runs::create(&mut conn, &new).await.unwrap();
    drop(conn);

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let registry = Arc::new(Registry::new(vec![Arc::new(Pinger)]));
    let settings = WorkerSettings { poll: std::time::Duration::from_millis(50), ..WorkerSettings::default() };
    let mut runtime = app.state.runtime.clone();
    runtime.workflows = registry;
    let worker = tokio::spawn(Arc::new(Worker::new(runtime, settings)).run(stop.clone()));
    let flusher = tokio::spawn(switchboard::costs::flush_every(
        app.pool.clone(),
        app.state.platforms.calls.clone(),
        std::time::Duration::from_secs(3600),
        stop,
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.count(&format!("SELECT count(*) FROM engine.runs WHERE id = '{}' AND status = 'succeeded'", run.id)).await
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the run did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Stopping flushes what is pending (the interval is an hour).
    stop_tx.send(true).unwrap();
    flusher.await.unwrap();
    worker.await.unwrap();
    assert_eq!(calls(&app, a["id"].as_str().unwrap(), "whatsapp").await, Some(1));
    assert_eq!(calls(&app, b["id"].as_str().unwrap(), "whatsapp").await, Some(1));
}
