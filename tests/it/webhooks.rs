//! Webhook endpoints and delivery: the API (secrets, audit, scopes), the SSRF
//! guard, signing against independently computed Standard Webhooks vectors,
//! retries against wiremock, 410, a day of failures, pacing, the outbox surviving
//! a crash, manual redelivery, test events, and signed run callbacks.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    config::Config,
    domain::events::EventType,
    events::{
        delivery::{Deliverer, DeliverySettings},
        signing,
        ssrf::Policy,
    },
    store::{deliveries, events},
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

use crate::support::{TestApp, test_config};

const FIXTURE: &str = include_str!("../fixtures/standard_webhooks_vector.json");

/// An app whose endpoints may be local http URLs (wiremock listens on 127.0.0.1).
pub async fn local_app(pool: PgPool) -> TestApp {
    TestApp::with_config(pool, Config { webhook_allow_http: true, webhook_allow_private: true, ..test_config() }).await
}

/// Fast settings for tests: retries after `retry`, `attempts` attempts in all.
pub fn fast(attempts: usize, retry: Duration) -> DeliverySettings {
    let mut schedule = vec![Duration::ZERO];
    schedule.extend(std::iter::repeat_n(retry, attempts.saturating_sub(1)));
    DeliverySettings {
        schedule,
        poll: Duration::from_millis(50),
        policy: Policy { allow_http: true, allow_private: true },
        ..Default::default()
    }
}

pub struct RunningDeliverer {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl RunningDeliverer {
    pub fn start(pool: &PgPool, settings: DeliverySettings) -> Self {
        let (stop, rx) = watch::channel(false);
        let handle =
            tokio::spawn(Arc::new(Deliverer::new(pool.clone(), settings, crate::support::test_keys())).run(rx));
        Self { stop, handle }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
    }
}

/// Registers an endpoint through the API; returns (id, secret).
pub async fn endpoint(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let res = app.post("/v1/webhook-endpoints", json!({"url": url, "events": events})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let body = res.json();
    (body["id"].as_str().unwrap().to_string(), body["secret"].as_str().unwrap().to_string())
}

/// Waits until `sql` (one bigint) returns `want`.
pub async fn wait_for(app: &TestApp, sql: &str, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = app.count(sql).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "`{sql}` is {got}, not {want}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Checks a received request's Standard Webhooks headers and signature; returns its
/// JSON body (an event's id must be the `webhook-id`).
fn verified(req: &Request, secret: &str) -> Value {
    let (id, body) = signed(req, secret);
    assert_eq!(body["id"], id.as_str(), "webhook-id is the event id");
    body
}

/// Checks the headers and signature; returns the `webhook-id` and the JSON body.
pub fn signed(req: &Request, secret: &str) -> (String, Value) {
    let header = |n: &str| {
        req.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {n} header")).to_string()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert_eq!(header("webhook-signature"), signing::sign(secret, &id, timestamp, &req.body).unwrap());
    assert_eq!(header("content-type"), "application/json");
    (id, serde_json::from_slice(&req.body).unwrap())
}

/// Answers 200 and notes when each request arrived.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_string("Accepted")
    }
}

#[test]
fn signing_matches_the_standard_webhooks_vectors() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let vectors = fixture["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 2);
    for v in vectors {
        assert!(v["computed_with"].as_str().unwrap().starts_with("python3 -c"));
        let s = |k: &str| v[k].as_str().unwrap();
        let signature =
            signing::sign(s("secret"), s("msg_id"), v["timestamp"].as_i64().unwrap(), s("body").as_bytes()).unwrap();
        assert_eq!(signature, s("expected_signature"), "{}", s("name"));
    }
    let secret = signing::new_secret();
    assert!(secret.starts_with("whsec_") && signing::key(&secret).unwrap().len() == 32);
}

#[sqlx::test]
async fn endpoints_crud_shows_the_secret_only_on_create_and_rotate(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post("/v1/webhook-endpoints", json!({"url": "https://203.0.113.10/hook", "description": "Make: alerts"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(res.header("location"), Some(format!("/v1/webhook-endpoints/{id}").as_str()));
    assert_eq!(created["events"], json!(["*"]));
    assert_eq!(created["enabled"], true);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));

    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).send().await.json();
    assert!(got.get("secret").is_none() && !got.to_string().contains(&secret), "{got}");
    let list = app.get("/v1/webhook-endpoints").send().await.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none());

    let res = app
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            json!({"events": ["run.*", "alert.created", "run.*"], "enabled": false}),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let patched = res.json();
    assert_eq!(patched["events"], json!(["run.*", "alert.created"]));
    assert_eq!(
        (patched["enabled"].clone(), patched["disabled_reason"].clone()),
        (json!(false), json!("disabled through the API"))
    );
    let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"enabled": true})).send().await;
    assert_eq!((res.json()["enabled"].clone(), res.json()["disabled_reason"].clone()), (json!(true), Value::Null));
    let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"events": ["run.nope", "*"]})).send().await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["events[0]"]);
    let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"evnets": ["*"]})).send().await;
    assert_eq!(res.status.as_u16(), 422, "unknown fields are refused");

    let rotated = app.post(&format!("/v1/webhook-endpoints/{id}/rotate-secret"), json!({})).send().await.json();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let stored: String =
        sqlx::query_scalar("SELECT secret FROM engine.webhook_endpoints").fetch_one(&app.pool).await.unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains(new_secret), "sealed at rest: {stored}");
    let opened = switchboard::events::secret::open(&crate::support::test_keys(), id.parse().unwrap(), &stored).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), new_secret);

    assert_eq!(app.delete(&format!("/v1/webhook-endpoints/{id}")).send().await.status, StatusCode::NO_CONTENT);
    app.get(&format!("/v1/webhook-endpoints/{id}")).send().await.problem(404, "not_found");
    app.get("/v1/webhook-endpoints/not-a-uuid").send().await.problem(404, "not_found");

    let actions = app.count("SELECT count(*) FROM audit.log WHERE resource_type = 'webhook_endpoint'").await;
    assert_eq!(actions, 5, "create, 2 updates, rotate, delete (refused changes are not recorded)");
    assert_eq!(
        app.count("SELECT count(*) FROM audit.log WHERE coalesce(after::text, '') || coalesce(before::text, '') LIKE '%whsec_%'").await,
        0,
        "no secret in the audit log"
    );

    let reader = app.token(&["workflows:read", "clients:write"]).await;
    let res = app.request(axum::http::Method::GET, "/v1/webhook-endpoints").token(&reader).send().await;
    assert!(res.problem(403, "missing_scope")["detail"].as_str().unwrap().contains("webhooks:write"));
    // Subscribing to every type (the default) also needs the scopes that read them.
    let writer = app.token(&["webhooks:write", "workflows:read", "clients:read"]).await;
    let res = app
        .request(axum::http::Method::POST, "/v1/webhook-endpoints")
        .token(&writer)
        .json(&json!({"url": "https://203.0.113.11/"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

#[sqlx::test]
async fn ssrf_guard_rejects_internal_urls_and_names_that_resolve_to_them(pool: PgPool) {
    // http allowed, so what is refused below is refused for its address (checked, never called).
    let app = TestApp::with_config(pool, Config { webhook_allow_http: true, ..test_config() }).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://localhost:9/hook",
        "https://localhost/hook",
        "http://[::1]/hook",
        "http://100.64.0.7/hook",
        "http://192.168.0.10/hook",
    ] {
        let res = app.post("/v1/webhook-endpoints", json!({"url": url})).send().await;
        let problem = res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["url"], "{url}");
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains("must not point at"), "{url}: {problem}");
    }
    for url in ["ftp://203.0.113.10/", "not a url", "https://user:pw@203.0.113.10/"] {
        let res = app.post("/v1/webhook-endpoints", json!({"url": url})).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["url"], "{url}");
    }
    // An update is checked the same way.
    let (id, _) = endpoint(&app, "https://203.0.113.10/hook", json!(["*"])).await;
    let res = app.patch(&format!("/v1/webhook-endpoints/{id}"), json!({"url": "http://169.254.169.254/"})).send().await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["url"]);
    assert_eq!(app.count("SELECT count(*) FROM engine.webhook_endpoints").await, 1);

    // By default plain http is refused too.
    let strict = TestApp::new(app.pool.clone()).await;
    let res = strict.post("/v1/webhook-endpoints", json!({"url": "http://203.0.113.10/hook"})).send().await;
    assert!(res.problem(422, "validation_failed")["errors"][0]["message"].as_str().unwrap().contains("https"));
}

#[sqlx::test]
async fn the_guard_runs_again_at_delivery_time(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    app.create_client(json!({"name": "Acme"})).await;
    // This worker does not allow private addresses: the delivery is blocked, nothing is sent.
    let mut settings = fast(1, Duration::ZERO);
    settings.policy.allow_private = false;
    let worker = RunningDeliverer::start(&pool, settings);
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'failed'", 1, Duration::from_secs(10)).await;
    worker.stop().await;
    let error: String = sqlx::query_scalar("SELECT last_error FROM engine.deliveries").fetch_one(&pool).await.unwrap();
    assert!(error.starts_with("blocked: url must not point at an internal"), "{error}");
    assert!(!error.contains("127.0.0.1"), "the refusal does not say where the name points: {error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[sqlx::test]
async fn a_delivery_failing_twice_then_succeeding_logs_every_attempt(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom ".repeat(200)))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Accepted"))
        .with_priority(2)
        .mount(&server)
        .await;
    let (id, secret) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["client.*"])).await;
    let client = app.create_client(json!({"name": "Acme Coffee"})).await;

    let worker = RunningDeliverer::start(&pool, fast(5, Duration::from_millis(100)));
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", 1, Duration::from_secs(10))
        .await;
    worker.stop().await;

    let page = app.get(&format!("/v1/webhook-endpoints/{id}/deliveries")).send().await.json();
    let d = &page["data"][0];
    assert_eq!(
        (d["status"].clone(), d["attempts"].clone(), d["last_status"].clone()),
        (json!("succeeded"), json!(3), json!(200)),
        "{d}"
    );
    assert_eq!(d["event_type"], "client.created");
    let log = d["attempt_log"].as_array().unwrap();
    let statuses: Vec<&Value> = log.iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, vec![&json!(500), &json!(500), &json!(200)]);
    assert_eq!(log[0]["response_excerpt"].as_str().unwrap().chars().count(), 500, "excerpts are cut at 500 characters");
    assert_eq!(log[2]["response_excerpt"], "Accepted");
    assert!(log.iter().all(|a| a["latency_ms"].as_i64().is_some()));

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    let bodies: Vec<Value> = received.iter().map(|r| verified(r, &secret)).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every attempt sends the same event");
    assert_eq!(bodies[0]["type"], "client.created");
    assert_eq!(bodies[0]["data"], client);
    assert_eq!(bodies[0]["id"], d["event_id"]);
    let failing: Option<String> =
        sqlx::query_scalar("SELECT failing_since::text FROM engine.webhook_endpoints").fetch_one(&pool).await.unwrap();
    assert_eq!(failing, None, "a success ends the failure streak");
}

#[sqlx::test]
async fn gone_disables_the_endpoint_at_once(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(410)).mount(&server).await;
    let (id, _) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    app.create_client(json!({"name": "One"})).await;
    app.create_client(json!({"name": "Two"})).await;
    let worker =
        RunningDeliverer::start(&pool, DeliverySettings { concurrency: 1, ..fast(8, Duration::from_millis(10)) });
    wait_for(&app, "SELECT count(*) FROM engine.webhook_endpoints WHERE NOT enabled", 1, Duration::from_secs(10)).await;
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'failed'", 2, Duration::from_secs(10)).await;
    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).send().await.json();
    assert_eq!(got["enabled"], false);
    assert!(got["disabled_reason"].as_str().unwrap().contains("410"), "{got}");
    // Nothing more is sent, nor queued.
    app.create_client(json!({"name": "Three"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "one 410 was enough");
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 2);
}

#[sqlx::test]
async fn an_endpoint_failing_for_a_day_is_disabled(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let (id, _) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    app.create_client(json!({"name": "One"})).await;
    let worker = RunningDeliverer::start(&pool, fast(8, Duration::from_secs(3600)));
    // A first failure starts the streak; the delivery waits for its next attempt.
    wait_for(
        &app,
        "SELECT count(*) FROM engine.webhook_endpoints WHERE failing_since IS NOT NULL",
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM engine.webhook_endpoints WHERE enabled").await, 1);
    // The streak is a day old at the next failure.
    sqlx::query("UPDATE engine.webhook_endpoints SET failing_since = now() - interval '25 hours'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE engine.deliveries SET next_attempt_at = now()").execute(&pool).await.unwrap();
    wait_for(&app, "SELECT count(*) FROM engine.webhook_endpoints WHERE NOT enabled", 1, Duration::from_secs(10)).await;
    worker.stop().await;
    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).send().await.json();
    assert!(got["disabled_reason"].as_str().unwrap().contains("failed since"), "{got}");
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries WHERE status = 'failed'").await, 1);
    app.create_client(json!({"name": "Two"})).await;
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 1, "a disabled endpoint gets nothing more");
}

#[sqlx::test]
async fn deliveries_to_one_endpoint_are_paced(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    let arrivals = Arrivals::default();
    Mock::given(method("POST")).respond_with(arrivals.clone()).mount(&server).await;
    endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    let n = 14;
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        events::emit(&mut tx, EventType::ReportReady, &json!({"i": i})).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (rate, burst) = (10.0, 2.0);
    let settings = DeliverySettings { rate_per_second: 10, burst: 2, concurrency: 32, ..fast(1, Duration::ZERO) };
    let worker = RunningDeliverer::start(&pool, settings);
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", n, Duration::from_secs(15))
        .await;
    worker.stop().await;
    let mut times = arrivals.0.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), n as usize);
    // In any window, at most burst + rate × its length (one request of slack for timer jitter).
    for i in 0..times.len() {
        for j in i..times.len() {
            let window = (times[j] - times[i]).as_secs_f64();
            let count = (j - i + 1) as f64;
            assert!(count <= burst + rate * window + 1.0, "{count} requests within {window:.3}s");
        }
    }
    let span = (times[times.len() - 1] - times[0]).as_secs_f64();
    assert!(span >= (n as f64 - burst) / rate - 0.15, "{n} deliveries took only {span:.3}s");
}

/// Two delivery workers (two replicas) on one database pace one endpoint together: the
/// pace is shared (`engine.rate_limits`), not one pace per worker.
#[sqlx::test]
async fn two_workers_share_one_endpoints_pace(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    let arrivals = Arrivals::default();
    Mock::given(method("POST")).respond_with(arrivals.clone()).mount(&server).await;
    endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    let n = 20;
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        events::emit(&mut tx, EventType::ReportReady, &json!({"i": i})).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (rate, burst) = (10.0, 2.0);
    let settings = DeliverySettings { rate_per_second: 10, burst: 2, concurrency: 32, ..fast(1, Duration::ZERO) };
    let workers = [RunningDeliverer::start(&pool, settings.clone()), RunningDeliverer::start(&pool, settings)];
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", n, Duration::from_secs(15))
        .await;
    for worker in workers {
        worker.stop().await;
    }
    let mut times = arrivals.0.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), n as usize);
    for i in 0..times.len() {
        for j in i..times.len() {
            let window = (times[j] - times[i]).as_secs_f64();
            let count = (j - i + 1) as f64;
            assert!(count <= burst + rate * window + 1.0, "{count} requests within {window:.3}s from two workers");
        }
    }
    // One pace for both: 20 at 10/s, not two paces of 10/s each (about 0.9 s).
    let span = (times[times.len() - 1] - times[0]).as_secs_f64();
    assert!(span >= (n as f64 - burst) / rate - 0.15, "{n} deliveries from two workers took only {span:.3}s");
}

/// A lease outlives its attempt: with a short lease setting, a slow endpoint and
/// pacing that holds deliveries back for longer than the lease, two workers still
/// POST every event exactly once (the one that waited gives way to the one that took over).
#[sqlx::test]
async fn a_delivery_is_sent_once_even_when_pacing_and_a_slow_endpoint_outlast_the_lease(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(700)))
        .mount(&server)
        .await;
    let (_, secret) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    let n = 4;
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        events::emit(&mut tx, EventType::ReportReady, &json!({"i": i})).await.unwrap();
    }
    tx.commit().await.unwrap();
    // One delivery a second per endpoint and worker: the last of a worker's four waits
    // 3 s for its turn, longer than its lease; each answer takes 0.7 s.
    let settings = DeliverySettings {
        rate_per_second: 1,
        burst: 1,
        timeout: Duration::from_secs(2),
        lease_slack: Duration::from_millis(300),
        ..fast(1, Duration::ZERO)
    };
    let workers = [RunningDeliverer::start(&pool, settings.clone()), RunningDeliverer::start(&pool, settings)];
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", n, Duration::from_secs(15))
        .await;
    // Time for a duplicate still in flight to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for worker in workers {
        worker.stop().await;
    }
    let mut ids: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| verified(r, &secret)["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut once = ids.clone();
    once.dedup();
    assert_eq!(ids, once, "an event was POSTed more than once");
    assert_eq!(ids.len(), n as usize);
}

#[sqlx::test]
async fn the_outbox_survives_a_crash_between_commit_and_delivery(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let (_, secret) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["report.ready", "alert.*"])).await;
    // Committed while no worker runs (the process "dies" right after the commit).
    let mut tx = pool.begin().await.unwrap();
    let first = events::emit(&mut tx, EventType::ReportReady, &json!({"id": "r1"})).await.unwrap();
    let second = events::emit(&mut tx, EventType::AlertCreated, &json!({"id": "a1"})).await.unwrap();
    events::emit(&mut tx, EventType::ClientCreated, &json!({"id": "c1"})).await.unwrap();
    tx.commit().await.unwrap();
    // And one claimed by a worker that died mid-attempt (its lease runs out).
    let held = deliveries::claim(&pool, "dead-worker", Duration::from_millis(300), 1).await.unwrap();
    assert_eq!(held.len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.received_requests().await.unwrap().is_empty());
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 2, "only the subscribed types");

    let worker = RunningDeliverer::start(&pool, fast(3, Duration::from_millis(50)));
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", 2, Duration::from_secs(10))
        .await;
    worker.stop().await;
    let mut ids: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| verified(r, &secret)["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![first.to_string(), second.to_string()]);
}

#[sqlx::test]
async fn manual_retry_sends_again_now(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).with_priority(2).mount(&server).await;
    let (endpoint_id, _) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["*"])).await;
    app.create_client(json!({"name": "One"})).await;
    let worker = RunningDeliverer::start(&pool, fast(1, Duration::ZERO));
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'failed'", 1, Duration::from_secs(10)).await;
    let delivery: Uuid = sqlx::query_scalar("SELECT id FROM engine.deliveries").fetch_one(&pool).await.unwrap();

    let res = app.post(&format!("/v1/deliveries/{delivery}/retry"), json!({})).send().await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert!(matches!(res.json()["status"].as_str(), Some("pending" | "delivering")), "{}", res.text());
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", 1, Duration::from_secs(10))
        .await;
    worker.stop().await;
    let d = &app.get(&format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?status=succeeded")).send().await.json()["data"]
        [0];
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["attempt_log"].as_array().unwrap().len(), 2);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'delivery.retry'").await, 1);

    app.post(&format!("/v1/deliveries/{}/retry", Uuid::now_v7()), json!({})).send().await.problem(404, "not_found");
    app.patch(&format!("/v1/webhook-endpoints/{endpoint_id}"), json!({"enabled": false})).send().await;
    app.post(&format!("/v1/deliveries/{delivery}/retry"), json!({})).send().await.problem(409, "endpoint_disabled");
    app.get(&format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?status=nope"))
        .send()
        .await
        .problem(400, "invalid_query");
}

#[sqlx::test]
async fn a_test_event_is_sent_signed_and_reported(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Accepted"))
        .mount(&server)
        .await;
    let (id, secret) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["report.ready"])).await;
    let res = app.post(&format!("/v1/webhook-endpoints/{id}/test"), json!({})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let result = res.json();
    assert_eq!(
        (result["succeeded"].clone(), result["status"].clone(), result["response_excerpt"].clone()),
        (json!(true), json!(200), json!("Accepted"))
    );
    let received = server.received_requests().await.unwrap();
    let body = verified(&received[0], &secret);
    assert_eq!(
        (body["type"].clone(), body["test"].clone()),
        (json!("report.ready"), json!(true)),
        "a sample of its type"
    );
    assert_eq!(body["id"], result["event_id"]);
    assert!(body["data"]["period_start"].is_string(), "{body}");
    assert_eq!(app.count("SELECT count(*) FROM engine.events").await, 0, "a test event is not stored");

    // A refusal is reported, not raised.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no such hook"))
        .mount(&server)
        .await;
    let result = app.post(&format!("/v1/webhook-endpoints/{id}/test"), json!({})).send().await.json();
    assert_eq!((result["succeeded"].clone(), result["status"].clone()), (json!(false), json!(404)));
}

#[sqlx::test]
async fn the_delivery_log_pages_newest_event_first(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let (id, _) = endpoint(&app, "http://127.0.0.1:9/hook", json!(["report.ready"])).await;
    endpoint(&app, "http://127.0.0.1:9/other", json!(["client.created"])).await;
    let mut tx = pool.begin().await.unwrap();
    let mut emitted = vec![];
    for i in 0..3 {
        emitted.push(events::emit(&mut tx, EventType::ReportReady, &json!({"i": i})).await.unwrap().to_string());
    }
    tx.commit().await.unwrap();
    emitted.reverse();
    let first = app.get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=2")).send().await.json();
    let event_ids = |page: &Value| {
        page["data"].as_array().unwrap().iter().map(|d| d["event_id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(event_ids(&first), emitted[..2].to_vec());
    assert_eq!(first["data"][0]["status"], "pending");
    assert!(first["data"][0]["next_attempt_at"].is_string());
    assert!(first["data"][0]["attempt_log"].as_array().unwrap().is_empty());
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=2&cursor={cursor}")).send().await.json();
    assert_eq!((event_ids(&rest), rest["next_cursor"].clone()), (emitted[2..].to_vec(), Value::Null));
    app.get(&format!("/v1/webhook-endpoints/{id}/deliveries?cursor=bogus")).send().await.problem(400, "invalid_cursor");
    app.get(&format!("/v1/webhook-endpoints/{}/deliveries", Uuid::now_v7())).send().await.problem(404, "not_found");

    let endpoints = app.get("/v1/webhook-endpoints?limit=1").send().await.json();
    assert_eq!(endpoints["data"][0]["id"], id.as_str());
    let next = app
        .get(&format!("/v1/webhook-endpoints?limit=1&cursor={}", endpoints["next_cursor"].as_str().unwrap()))
        .send()
        .await
        .json();
    assert_eq!((next["data"].as_array().unwrap().len(), next["next_cursor"].clone()), (1, Value::Null));
}
