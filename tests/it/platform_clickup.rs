//! ClickUp connector against wiremock (the real API's shapes) and against the simulator.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use serde_json::{Value, json};
use switchboard::{
    platforms::{
        ErrorKind,
        clickup::{self, ClickUp, ListLocation, Settings, TaskTemplate},
        http::HttpSettings,
    },
    sim::{self, Behaviour},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, header, method, path, query_param},
};

const TOKEN: &str = "pk_12345678_TESTTOKEN";

fn settings(base: &str) -> Settings {
    Settings { token: Some(TOKEN.into()), base_url: base.into(), ..Settings::default() }
}

/// Fast limiter and backoff so retries take milliseconds.
fn fast() -> HttpSettings {
    HttpSettings {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..HttpSettings::new(1000.0, 100)
    }
}

fn client(server: &MockServer) -> ClickUp {
    ClickUp::with_http(&settings(&server.uri()), fast())
}

fn task(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "status": {"status": "to do", "type": "open"}, "due_date": null,
           "date_created": "1567780450202", "tags": [], "list": {"id": "901"}, "url": format!("https://app.clickup.com/t/{id}")})
}

fn list(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "orderindex": 0, "folder": {"id": "1", "name": "hidden", "hidden": true}, "space": {"id": "789"}, "archived": false})
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn template(names: &[&str]) -> Vec<TaskTemplate> {
    names
        .iter()
        .map(|n| TaskTemplate {
            name: n.to_string(),
            description: format!("{n} details"),
            due_in_days: Some(2),
            priority: Some(2),
            tags: vec!["onboarding".into()],
        })
        .collect()
}

#[tokio::test]
async fn platform_clickup_finds_an_existing_list_without_creating() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/space/789/list"))
        .and(header("authorization", TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"lists": [list("900", "Acme Corp (old)"), list("901", "Acme Corp")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    let (found, created) =
        client(&server).find_or_create_list("Acme Corp", ListLocation::Space("789".into())).await.unwrap();
    assert_eq!((found.id.as_str(), created), ("901", false));
}

#[tokio::test]
async fn platform_clickup_creates_a_missing_list_in_the_folder() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/folder/456/list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"lists": [list("900", "Other client")]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/folder/456/list"))
        .and(header("authorization", TOKEN))
        .and(body_partial_json(json!({"name": "Acme Corp"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(list("902", "Acme Corp")))
        .expect(1)
        .mount(&server)
        .await;
    let (list, created) =
        client(&server).find_or_create_list("Acme Corp", ListLocation::Folder("456".into())).await.unwrap();
    assert_eq!((list.id.as_str(), list.name.as_str(), created), ("902", "Acme Corp", true));
}

#[tokio::test]
async fn platform_clickup_list_tasks_follows_pages_until_last_page() {
    let server = MockServer::start().await;
    for (page, last, ids) in [("0", false, ["a", "b"]), ("1", false, ["c", "d"]), ("2", true, ["e", "f"])] {
        let tasks: Vec<Value> = ids.iter().map(|id| task(id, id)).collect();
        Mock::given(method("GET"))
            .and(path("/api/v2/list/901/task"))
            .and(query_param("page", page))
            .and(query_param("include_closed", "true"))
            .and(header("authorization", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tasks": tasks, "last_page": last})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let tasks = client(&server).list_tasks("901").await.unwrap();
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
}

#[tokio::test]
async fn platform_clickup_ensure_tasks_creates_only_missing_ones_with_due_dates() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/list/901/task"))
        .and(query_param("archived", "false"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"tasks": [task("t1", "Kick-off call")], "last_page": true})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/list/901/task"))
        .and(query_param("archived", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tasks": [], "last_page": true})))
        .expect(1)
        .mount(&server)
        .await;
    // 2026-06-01 + 2 days = 2026-06-03T00:00:00Z.
    Mock::given(method("POST"))
        .and(path("/api/v2/list/901/task"))
        .and(body_partial_json(json!({"name": "Collect brand assets", "due_date": 1_780_444_800_000i64, "priority": 2, "tags": ["onboarding"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(task("t2", "Collect brand assets")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/list/901/task"))
        .and(body_partial_json(json!({"name": "Launch"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(task("t3", "Launch")))
        .expect(1)
        .mount(&server)
        .await;
    let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let ensured = client(&server)
        .ensure_tasks("901", &template(&["Kick-off call", "Collect brand assets", "Launch", "Launch"]), start)
        .await
        .unwrap();
    assert_eq!(ensured.task_ids, ["t1", "t2", "t3"]);
    assert_eq!(ensured.created, 2);
}

/// Get Tasks hides archived tasks unless `archived=true` (developer.clickup.com/reference/gettasks):
/// a template task someone archived is found there and reused, not created a second time.
#[tokio::test]
async fn platform_clickup_ensure_tasks_reuses_an_archived_task() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/list/901/task"))
        .and(query_param("archived", "false"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"tasks": [task("t1", "Kick-off call")], "last_page": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut archived = task("t0", "Collect brand assets");
    archived["archived"] = json!(true);
    Mock::given(method("GET"))
        .and(path("/api/v2/list/901/task"))
        .and(query_param("archived", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tasks": [archived], "last_page": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/list/901/task"))
        .and(body_partial_json(json!({"name": "Launch"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(task("t3", "Launch")))
        .expect(1)
        .mount(&server)
        .await;
    let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let ensured = client(&server)
        .ensure_tasks("901", &template(&["Kick-off call", "Collect brand assets", "Launch"]), start)
        .await
        .unwrap();
    assert_eq!(ensured.task_ids, ["t1", "t0", "t3"]);
    assert_eq!((ensured.created, ensured.archived), (1, 1));
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "no POST for the archived task");
}

/// developer.clickup.com/docs/rate-limits: over the plan limit, HTTP 429 whose headers carry
/// `X-RateLimit-Limit/Remaining/Reset` (Reset a Unix timestamp); the body is ClickUp's envelope.
#[tokio::test]
async fn platform_clickup_waits_for_ratelimit_reset_on_429() {
    let server = MockServer::start().await;
    let reset = now_secs() + 2;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-limit", "100")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"err": "Rate limit reached", "ECODE": "APP_002"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tasks": [], "last_page": true})))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server).list_tasks("901").await.unwrap();
    let waited = started.elapsed();
    // Reset is whole seconds 2 s ahead: at least 1 s away when the 429 arrived.
    assert!(waited >= Duration::from_millis(950), "retried after {waited:?}, before X-RateLimit-Reset");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn platform_clickup_429_with_retry_after_or_no_wait_header_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.3")
                .set_body_json(json!({"err": "Rate limit reached", "ECODE": "APP_002"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // Then one bare 429 (no header at all): plain backoff.
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(429)).up_to_n_times(1).mount(&server).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tasks": [], "last_page": true})))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server).list_tasks("901").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "Retry-After ignored: {:?}", started.elapsed());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn platform_clickup_retries_5xx_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list("903", "Beta")))
        .mount(&server)
        .await;
    let list = client(&server).create_list("Beta", &ListLocation::Space("789".into())).await.unwrap();
    assert_eq!(list.id, "903");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn platform_clickup_validation_error_fails_at_once_with_ecode() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"err": "Status does not exist", "ECODE": "CRTSK_001"})),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .create_task("901", &clickup::NewTask { name: "x".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.code.as_deref(), Some("CRTSK_001"));
    assert!(err.message.contains("Status does not exist"), "{}", err.message);
    assert!(!err.retryable);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn platform_clickup_invalid_token_is_an_auth_error_and_masked() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"err": format!("Oauth token not found {TOKEN}"), "ECODE": "OAUTH_019"})),
        )
        .mount(&server)
        .await;
    let err = client(&server).list_tasks("901").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_eq!(err.code.as_deref(), Some("OAUTH_019"));
    assert!(!err.message.contains(TOKEN), "token leaked: {}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn platform_clickup_malformed_json_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"tasks": {"id": "not a list"}, "last_page": true})),
        )
        .mount(&server)
        .await;
    let err = client(&server).list_tasks("901").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert!(err.message.contains("unexpected response"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn platform_clickup_spent_minute_pauses_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-limit", "100")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", (now_secs() + 30).to_string().as_str())
                .set_body_json(json!({"lists": []})),
        )
        .mount(&server)
        .await;
    let clickup = client(&server);
    clickup.lists(&ListLocation::Space("789".into())).await.unwrap();
    let paused = clickup.http().status().paused_accounts;
    let left = paused.get(clickup::TOKEN_ACCOUNT).copied().unwrap_or_default();
    assert!((25..=30).contains(&left), "expected the token paused until the reset, got {paused:?}");
}

#[tokio::test]
async fn platform_clickup_without_token_is_not_configured() {
    let server = MockServer::start().await;
    let clickup = ClickUp::with_http(&Settings { token: None, base_url: server.uri(), ..Settings::default() }, fast());
    let err = clickup.list_tasks("901").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(err.message.contains("CLICKUP_TOKEN"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

async fn sandbox() -> (sim::Running, ClickUp) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let settings = Settings::default().sandboxed(&format!("{}{}", running.base_url, clickup::INFO.sim_prefix));
    let clickup = ClickUp::with_http(&settings, fast());
    (running, clickup)
}

#[tokio::test]
async fn platform_clickup_sim_onboarding_is_idempotent() {
    let (running, clickup) = sandbox().await;
    let location = clickup.settings().default_location().unwrap();
    let (list, created) = clickup.find_or_create_list("Acme Corp — Onboarding", location.clone()).await.unwrap();
    assert!(created);
    let (again, created_again) = clickup.find_or_create_list("Acme Corp — Onboarding", location).await.unwrap();
    assert_eq!((again.id.as_str(), created_again), (list.id.as_str(), false));
    let folder = ListLocation::Folder("456".into());
    let (in_folder, _) = clickup.find_or_create_list("Acme Corp — Onboarding", folder.clone()).await.unwrap();
    assert_ne!(in_folder.id, list.id);
    assert!(!clickup.find_or_create_list("Acme Corp — Onboarding", folder).await.unwrap().1);

    let template = clickup::default_onboarding_template();
    let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let first = clickup.ensure_tasks(&list.id, &template, start).await.unwrap();
    assert_eq!(first.created, template.len());
    let second = clickup.ensure_tasks(&list.id, &template, start).await.unwrap();
    assert_eq!(second.created, 0);
    assert_eq!(second.task_ids, first.task_ids);

    let tasks = clickup.list_tasks(&list.id).await.unwrap();
    assert_eq!(tasks.len(), template.len());
    let kickoff = tasks.iter().find(|t| t.name == "Kick-off call").unwrap();
    assert_eq!(kickoff.due_date, Some(1_780_358_400_000)); // 2026-06-02
    assert!(kickoff.tags.iter().any(|t| t.name == "onboarding"));

    let created = &running.state.stats().platforms["clickup"].created;
    assert_eq!(created["lists"], 2);
    assert_eq!(created["tasks"], template.len() as u64);
}

#[tokio::test]
async fn platform_clickup_sim_rejects_a_bad_token() {
    let (running, _) = sandbox().await;
    let settings = Settings {
        token: Some("not-a-token".into()),
        ..Settings::default().sandboxed(&format!("{}/clickup", running.base_url))
    };
    let err = ClickUp::with_http(&settings, fast()).list_tasks("1").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("OAUTH_025")));
}

#[tokio::test]
async fn platform_clickup_sim_throttling_and_faults_are_retried() {
    let (running, clickup) = sandbox().await;
    running.state.configure("clickup", Behaviour { rate_per_second: Some(2.0), ..Behaviour::default() });
    for i in 0..4 {
        clickup.create_task("55", &clickup::NewTask { name: format!("task {i}"), ..Default::default() }).await.unwrap();
    }
    let stats = running.state.stats().platforms["clickup"].clone();
    assert!(stats.throttled >= 1, "{stats:?}");
    assert_eq!(stats.created["tasks"], 4);

    // Every answer a 500: retried, then a clear retryable error.
    running.state.configure("clickup", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let settings = clickup.settings().clone();
    let err =
        ClickUp::with_http(&settings, HttpSettings { max_attempts: 2, ..fast() }).list_tasks("55").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref(), err.retryable), (ErrorKind::Unavailable, Some("APP_001"), true));
    assert_eq!(running.state.stats().platforms["clickup"].faults, 2);
    running.state.configure("clickup", Behaviour::default());
    assert_eq!(clickup.list_tasks("55").await.unwrap().len(), 4);
}

/// developer.clickup.com/docs/rate-limits: 100 requests a minute per token (Free Forever,
/// Unlimited, Business), then 429 with the `X-RateLimit-*` headers; only errors carry them.
#[tokio::test]
async fn platform_clickup_sim_enforces_the_plan_limit_per_token() {
    let (running, _) = sandbox().await;
    let http = crate::support::http_client();
    let url = format!("{}/clickup/api/v2/list/1/task", running.base_url);
    for i in 0..100 {
        let res = http.get(&url).header("authorization", "pk_plan_test").send().await.unwrap();
        assert_eq!(res.status(), 200, "call {i}");
        assert!(res.headers().get("x-ratelimit-remaining").is_none(), "headers are documented on errors only");
    }
    let res = http.get(&url).header("authorization", "pk_plan_test").send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["x-ratelimit-limit"], "100");
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    let reset: u64 = res.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > now_secs() && reset <= now_secs() + 60, "reset {reset} is Unix seconds within the minute");
    assert_eq!(res.json::<Value>().await.unwrap()["ECODE"], "APP_002");
    let other = http.get(&url).header("authorization", "pk_other_token").send().await.unwrap();
    assert_eq!(other.status(), 200, "each token has its own minute");
    assert_eq!(running.state.stats().platforms["clickup"].errors.get("APP_002"), Some(&1));

    // Business Plus: the workspace's plan is the simulator's setting.
    let config = format!("{}/_sim/clickup/config", running.base_url);
    let res = http.post(&config).json(&json!({"plan_limit_per_minute": 1000})).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["plan_limit_per_minute"], 1000);
    assert_eq!(http.get(&url).header("authorization", "pk_plan_test").send().await.unwrap().status(), 200);
    let bad = http.post(&config).json(&json!({"plan_limit_per_minute": 0})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

/// A connector allowed more than the plan gets the 429 and reads when the minute resets.
#[tokio::test]
async fn platform_clickup_sim_plan_limit_reaches_the_connector() {
    let (running, _) = sandbox().await;
    let http = crate::support::http_client();
    let config = format!("{}/_sim/clickup/config", running.base_url);
    http.post(&config).json(&json!({"plan_limit_per_minute": 3})).send().await.unwrap();
    let settings = Settings::default().sandboxed(&format!("{}/clickup", running.base_url));
    let clickup = ClickUp::with_http(&settings, HttpSettings { max_attempts: 1, ..fast() });
    for _ in 0..3 {
        clickup.list_tasks("9").await.unwrap();
    }
    let err = clickup.list_tasks("9").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref(), err.status), (ErrorKind::Throttled, Some("APP_002"), Some(429)));
    let wait = err.retry_after.expect("X-RateLimit-Reset read");
    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60), "{wait:?}");
    // The default limiter spends the plan's minute: burst plus a minute of rate is the plan.
    let plan = Settings { plan_limit_per_minute: Some(3), ..settings }.http_settings();
    assert!(plan.rate_per_second * 60.0 + f64::from(plan.burst) <= 3.0 + 1e-9, "{plan:?}");
}

/// Archived tasks stay in ClickUp and out of the plain listing; onboarding finds them there.
#[tokio::test]
async fn platform_clickup_sim_archived_tasks_are_found_not_recreated() {
    let (running, clickup) = sandbox().await;
    let template = clickup::default_onboarding_template();
    let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let first = clickup.ensure_tasks("321", &template, start).await.unwrap();
    assert_eq!(first.created, template.len());
    let archived_id = &first.task_ids[1];
    let res = crate::support::http_client()
        .put(format!("{}/clickup/api/v2/task/{archived_id}", running.base_url))
        .header("authorization", "pk_sandbox_token")
        .json(&json!({"archived": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let live = clickup.list_tasks("321").await.unwrap();
    assert!(live.iter().all(|t| &t.id != archived_id) && live.len() == template.len() - 1);
    let archived = clickup.archived_tasks("321").await.unwrap();
    assert_eq!((archived.len(), archived[0].archived), (1, true));

    let again = clickup.ensure_tasks("321", &template, start).await.unwrap();
    assert_eq!((again.created, again.archived), (0, 1));
    assert_eq!(again.task_ids, first.task_ids);
    assert_eq!(running.state.stats().platforms["clickup"].created["tasks"], template.len() as u64);
}
