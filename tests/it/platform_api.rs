//! The platform API end to end: `/v1/platforms`, the platform actions, metrics sync,
//! read-back and pacing, against the in-process simulator.

use axum::http::{Method, StatusCode};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::sim::Behaviour;

use crate::support::{TestApp, TestResponse, test_config};

const PLATFORMS: [&str; 6] = ["meta", "google_ads", "google_drive", "clickup", "whatsapp", "llm"];

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A 7-day range ending 3 days ago (the simulators have data for it).
fn week() -> (NaiveDate, NaiveDate) {
    let to = today() - Duration::days(3);
    (to - Duration::days(6), to)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance + 1e-9
}

async fn client_with(app: &TestApp, name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.create_client(body).await
}

/// A client with Meta, Google Ads and WhatsApp accounts and budgets.
async fn ads_client(app: &TestApp, name: &str) -> Value {
    let accounts = json!({"meta": "1234567890", "google_ads": "123-456-7890", "whatsapp": "+5511999990000"});
    client_with(app, name, json!({"accounts": accounts, "budgets": {"meta": 5000, "google_ads": 3000}})).await
}

fn ok(res: &TestResponse) -> Value {
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn invalid(res: &TestResponse, field: &str) {
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec![field.to_string()], "{}", res.text());
}

fn bad_query(res: &TestResponse, field: &str) {
    res.problem(400, "invalid_query");
    assert_eq!(res.error_fields(), vec![field.to_string()], "{}", res.text());
}

async fn sync(app: &TestApp, slug: &str, body: Value) -> TestResponse {
    app.post(&format!("/v1/clients/{slug}/metrics/sync"), body).send().await
}

/// Stored (platform, date, spend) of a client, by date then platform.
async fn stored(app: &TestApp, client_id: &str) -> Vec<(String, String, f64)> {
    sqlx::query_as("SELECT platform, date::text, spend FROM costs.daily_metrics WHERE client_id = $1::uuid ORDER BY date, platform")
        .bind(client_id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// Stored sums of spend, conversions and conversion value of a client's platform (all when `None`).
async fn sums(app: &TestApp, client_id: &str, platform: Option<&str>) -> (f64, f64, f64) {
    sqlx::query_as(
        "SELECT COALESCE(sum(spend), 0), COALESCE(sum(conversions), 0), COALESCE(sum(conversion_value), 0)
         FROM costs.daily_metrics WHERE client_id = $1::uuid AND ($2::text IS NULL OR platform = $2)",
    )
    .bind(client_id)
    .bind(platform)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    app.count(&format!("SELECT count(*) FROM audit.log WHERE action = '{action}'")).await
}

fn entry<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|e| e[key] == value).unwrap_or_else(|| panic!("no {key}={value} in {list}"))
}

/// The default weekly-report template with its three body parameters.
fn report_template() -> Value {
    json!({"name": "switchboard_weekly_report", "language": "en_US",
           "params": ["Chat Co", "2026-06-01 – 2026-06-07", "Spend up 12% at a steady CPA"]})
}

/// One valid call of every platform action (and the metrics sync), for `slug`.
fn every_action(slug: &str) -> Vec<(String, Value)> {
    let (from, to) = week();
    let report = json!({"client": slug, "from": from, "to": to});
    vec![
        ("/v1/platforms/meta/insights".into(), report.clone()),
        ("/v1/platforms/google-ads/report".into(), report),
        ("/v1/platforms/google-drive/client-folders".into(), json!({"client": slug})),
        ("/v1/platforms/clickup/onboarding-project".into(), json!({"client": slug})),
        ("/v1/platforms/whatsapp/messages".into(), json!({"client": slug, "template": report_template()})),
        ("/v1/platforms/llm/completions".into(), json!({"prompt": "Summarise: spend 120, 4 conversions."})),
        (format!("/v1/clients/{slug}/metrics/sync"), json!({"from": from, "to": to})),
    ]
}

// ------------------------------------------------------------------ /v1/platforms

#[sqlx::test]
async fn lists_and_gets_platforms(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let list = ok(&app.get("/v1/platforms").send().await);
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, PLATFORMS);
    for p in list.as_array().unwrap() {
        assert_eq!(p["mode"], "sandbox", "{p}");
        assert_eq!(p["configured"], true, "{p}");
        assert_eq!(p["missing_settings"], json!([]), "{p}");
        assert!(p["limits"]["rate_per_second"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["limits"]["burst"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["ads"], matches!(p["key"].as_str(), Some("meta" | "google_ads")), "{p}");
    }
    let meta = ok(&app.get("/v1/platforms/meta").send().await);
    assert_eq!((meta["key"].as_str(), meta["ads"].as_bool()), (Some("meta"), Some(true)));
    assert_eq!(ok(&app.get("/v1/platforms/google-ads").send().await)["key"], "google_ads");
    assert_eq!(ok(&app.get("/v1/platforms/google_ads").send().await)["key"], "google_ads");
    app.get("/v1/platforms/tiktok").send().await.problem(404, "not_found");
    app.request(Method::GET, "/v1/platforms").send().await.problem(401, "missing_token");
    app.request(Method::GET, "/v1/platforms/meta").send().await.problem(401, "missing_token");
}

#[sqlx::test]
async fn platform_posts_need_the_platforms_act_scope(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let slug = ads_client(&app, "Scope Co").await["slug"].as_str().unwrap().to_string();
    let writer = app.token(&["clients:write", "clients:read"]).await;
    let actor = app.token(&["platforms:act"]).await;
    for (path, body) in every_action(&slug) {
        let res = app.request(Method::POST, &path).token(&writer).json(&body).send().await;
        let problem = res.problem(403, "missing_scope");
        assert!(problem["detail"].as_str().unwrap().contains("platforms:act"), "{path}: {problem}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM audit.log WHERE action LIKE 'platform.%' OR action = 'metrics.sync'").await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM costs.daily_metrics").await, 0);
    for (path, body) in every_action(&slug) {
        let res = app.request(Method::POST, &path).token(&actor).json(&body).send().await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
    }
}

#[sqlx::test]
async fn every_action_is_audited(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = ads_client(&app, "Audit Co").await;
    let slug = client["slug"].as_str().unwrap();
    for (path, body) in every_action(slug) {
        ok(&app.post(&path, body).send().await);
    }
    for action in [
        "platform.meta.insights",
        "platform.google_ads.report",
        "platform.google_drive.client_folders",
        "platform.clickup.onboarding_project",
        "platform.whatsapp.message",
        "platform.llm.completion",
        "metrics.sync",
    ] {
        assert_eq!(audited(&app, action).await, 1, "{action}");
    }
    let id = client["id"].as_str().unwrap();
    let on_client = app
        .count(&format!("SELECT count(*) FROM audit.log WHERE action LIKE 'platform.%' AND resource_id = '{id}'"))
        .await;
    assert_eq!(on_client, 5, "every action about the client names it (the free LLM prompt does not)");
}

// ------------------------------------------------------------------ metrics

#[sqlx::test]
async fn metrics_sync_stores_and_replaces_days(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = ads_client(&app, "Sync Co").await;
    let (id, slug) = (client["id"].as_str().unwrap(), client["slug"].as_str().unwrap());
    let (from, to) = week();
    let first = ok(&sync(&app, slug, json!({"from": from, "to": to})).await);
    assert_eq!((first["status"].as_str(), first["client_id"].as_str()), (Some("ok"), Some(id)));
    let meta = entry(&first["platforms"], "platform", "meta");
    assert_eq!(
        (meta["account"].as_str(), meta["days"].as_u64(), &meta["error"]),
        (Some("act_1234567890"), Some(7), &Value::Null)
    );
    let google = entry(&first["platforms"], "platform", "google_ads");
    assert_eq!(google["account"], "1234567890");
    assert!(google["days"].as_u64().unwrap() > 0, "{google}");
    let rows = stored(&app, id).await;
    let google_days = google["days"].as_u64().unwrap() as usize;
    assert_eq!(rows.len(), 7 + google_days);
    assert_eq!(rows.iter().filter(|r| r.0 == "meta").count(), 7);
    assert!(rows.iter().all(|r| r.1 >= from.to_string() && r.1 <= to.to_string()));
    assert!(rows.iter().any(|r| r.2 > 0.0), "the simulator spends something in a week");

    let tamper = "UPDATE costs.daily_metrics SET spend = 99999, currency = 'XXX' WHERE client_id = $1::uuid";
    sqlx::query(tamper).bind(id).execute(&app.pool).await.unwrap();
    let again = ok(&sync(&app, slug, json!({"from": from, "to": to})).await);
    assert_eq!(entry(&again["platforms"], "platform", "meta")["days"], 7);
    assert_eq!(stored(&app, id).await, rows, "a re-sync replaces rows with the same values");
    assert_eq!(app.count("SELECT count(*) FROM costs.daily_metrics WHERE currency = 'XXX'").await, 0);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM audit.log WHERE action = 'metrics.sync' AND resource_id = '{id}'"))
            .await,
        2
    );
}

#[sqlx::test]
async fn metrics_sync_picks_and_checks_platforms(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = ads_client(&app, "Pick Co").await;
    let (id, slug) = (client["id"].as_str().unwrap(), client["slug"].as_str().unwrap());
    let (from, to) = week();
    let only = ok(&sync(&app, slug, json!({"from": from, "to": to, "platforms": ["meta"]})).await);
    assert_eq!(only["platforms"].as_array().unwrap().len(), 1);
    assert_eq!(only["platforms"][0]["platform"], "meta");
    assert!(stored(&app, id).await.iter().all(|r| r.0 == "meta"));
    assert_eq!(stored(&app, id).await.len(), 7);

    invalid(&sync(&app, slug, json!({"from": from, "to": to, "platforms": ["tiktok_ads"]})).await, "platforms[0]");
    invalid(
        &sync(&app, slug, json!({"from": from, "to": to, "platforms": ["meta", "whatsapp"]})).await,
        "platforms[1]",
    );
    let meta_only = client_with(&app, "Meta Only", json!({"accounts": {"meta": "1234567890"}})).await;
    let res =
        sync(&app, meta_only["slug"].as_str().unwrap(), json!({"from": from, "to": to, "platforms": ["google_ads"]}))
            .await;
    invalid(&res, "platforms[0]");
    assert!(res.json()["errors"][0]["message"].as_str().unwrap().contains("not linked"), "{}", res.text());
    invalid(&sync(&app, slug, json!({"from": to, "to": from})).await, "to");
    sync(&app, "no-such-client", json!({"from": from, "to": to})).await.problem(404, "not_found");
    assert_eq!(stored(&app, id).await.len(), 7, "refused syncs store nothing");
}

#[sqlx::test]
async fn metrics_sync_keeps_what_worked_when_a_platform_fails(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let accounts = json!({"meta": "1234567890", "google_ads": "0000000000"});
    let client = client_with(&app, "Denied Co", json!({"accounts": accounts})).await;
    let (id, slug) = (client["id"].as_str().unwrap(), client["slug"].as_str().unwrap());
    let (from, to) = week();
    let res = ok(&sync(&app, slug, json!({"from": from, "to": to})).await);
    assert_eq!(res["status"], "partial");
    assert_eq!(entry(&res["platforms"], "platform", "meta")["days"], 7);
    let google = entry(&res["platforms"], "platform", "google_ads");
    assert_eq!(google["days"], 0);
    let error = &google["error"];
    assert_eq!(
        (error["name"].as_str(), error["kind"].as_str(), error["status"].as_u64()),
        (Some("google_ads"), Some("auth"), Some(403)),
        "{error}"
    );
    assert_eq!(
        (error["code"].as_str(), error["retryable"].as_bool()),
        (Some("authorizationError.USER_PERMISSION_DENIED"), Some(false))
    );
    assert!(!error["message"].as_str().unwrap().is_empty());
    let rows = stored(&app, id).await;
    assert_eq!((rows.len(), rows.iter().all(|r| r.0 == "meta")), (7, true));
    let audit_after: Value =
        sqlx::query_scalar("SELECT after FROM audit.log WHERE action = 'metrics.sync' AND resource_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit_after["status"], "partial");
}

#[sqlx::test]
async fn metrics_read_back_by_day_and_in_total(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = ads_client(&app, "Read Co").await;
    let (id, slug) = (client["id"].as_str().unwrap(), client["slug"].as_str().unwrap());
    let (from, to) = week();
    ok(&sync(&app, slug, json!({"from": from, "to": to})).await);
    let rows = stored(&app, id).await;

    let days = ok(&app.get(&format!("/v1/clients/{slug}/metrics?from={from}&to={to}")).send().await);
    assert_eq!((days["client_id"].as_str(), days["from"].as_str()), (Some(id), Some(from.to_string().as_str())));
    let data = days["data"].as_array().unwrap();
    assert_eq!(data.len(), rows.len());
    for (view, (platform, date, spend)) in data.iter().zip(&rows) {
        assert_eq!((view["platform"].as_str(), view["date"].as_str()), (Some(platform.as_str()), Some(date.as_str())));
        assert_eq!(view["spend"].as_f64().unwrap(), round2(*spend), "{view}");
    }
    let meta_only = ok(&app.get(&format!("/v1/clients/{slug}/metrics?from={from}&to={to}&platform=meta")).send().await);
    assert_eq!(meta_only["data"].as_array().unwrap().len(), 7);

    let totals =
        ok(&app.get(&format!("/v1/clients/{slug}/metrics?from={from}&to={to}&granularity=total")).send().await);
    let data = &totals["data"];
    let names: Vec<&str> = data.as_array().unwrap().iter().map(|r| r["platform"].as_str().unwrap()).collect();
    assert_eq!(names, ["google_ads", "meta", "total"]);
    for platform in ["google_ads", "meta"] {
        let row = entry(data, "platform", platform);
        let (spend, conversions, value) = sums(&app, id, Some(platform)).await;
        assert_eq!(row["date"], Value::Null);
        assert_eq!(row["spend"].as_f64().unwrap(), round2(spend), "{row}");
        let cpa = (conversions > 0.0).then(|| round2(spend / conversions));
        assert_eq!(row["cpa"].as_f64(), cpa, "{row}");
        assert_eq!(row["roas"].as_f64(), (spend > 0.0).then(|| round2(value / spend)), "{row}");
    }
    let total = entry(data, "platform", "total");
    let parts = entry(data, "platform", "meta")["spend"].as_f64().unwrap()
        + entry(data, "platform", "google_ads")["spend"].as_f64().unwrap();
    assert!(close(total["spend"].as_f64().unwrap(), parts, 0.01), "{total} vs {parts}");
    let (spend, conversions, value) = sums(&app, id, None).await;
    assert_eq!(total["spend"].as_f64().unwrap(), round2(spend));
    assert!(spend > 0.0 && conversions > 0.0, "the simulator converts something in a week");
    assert_eq!(total["cpa"].as_f64(), Some(round2(spend / conversions)));
    assert_eq!(total["roas"].as_f64(), Some(round2(value / spend)));
    let clicks: i64 = data.as_array().unwrap()[..2].iter().map(|r| r["clicks"].as_i64().unwrap()).sum();
    assert_eq!(total["clicks"].as_i64(), Some(clicks));

    bad_query(&app.get(&format!("/v1/clients/{slug}/metrics?to={to}")).send().await, "from");
    bad_query(&app.get(&format!("/v1/clients/{slug}/metrics?from={from}")).send().await, "to");
    app.get(&format!("/v1/clients/{slug}/metrics?from={from}&to={to}&granularity=week"))
        .send()
        .await
        .problem(400, "invalid_query");
}

#[sqlx::test]
async fn pacing_of_the_current_month(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = ads_client(&app, "Pace Co").await;
    let (id, slug) = (client["id"].as_str().unwrap(), client["slug"].as_str().unwrap());
    let today = today();
    let first = today.with_day(1).unwrap();
    assert_eq!(ok(&sync(&app, slug, json!({"from": first, "to": today})).await)["status"], "ok");

    let pacing = ok(&app.get(&format!("/v1/clients/{slug}/pacing")).send().await);
    assert_eq!(pacing["month"], first.format("%Y-%m").to_string());
    assert_eq!(pacing["as_of"], today.to_string());
    let list = &pacing["platforms"];
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["platform"].as_str().unwrap()).collect();
    assert_eq!(names, ["google_ads", "meta", "total"]);
    let days_in_month = switchboard::domain::pacing::days_in_month(today) as f64;
    for (platform, budget) in [("meta", 5000.0), ("google_ads", 3000.0), ("total", 8000.0)] {
        let p = entry(list, "platform", platform);
        let spend = sums(&app, id, (platform != "total").then_some(platform)).await.0;
        assert_eq!(p["budget"].as_f64(), Some(budget), "{p}");
        assert_eq!(p["spend_to_date"].as_f64(), Some(round2(spend)), "{p}");
        assert_eq!(p["expected_to_date"].as_f64(), Some(round2(budget * today.day() as f64 / days_in_month)), "{p}");
        assert!(
            close(p["projected_month_end"].as_f64().unwrap(), spend / today.day() as f64 * days_in_month, 0.01),
            "{p}"
        );
        assert!(["on_track", "under", "over"].contains(&p["status"].as_str().unwrap()), "{p}");
    }
    let explicit = ok(&app.get(&format!("/v1/clients/{slug}/pacing?month={}", first.format("%Y-%m"))).send().await);
    assert_eq!(explicit["platforms"], pacing["platforms"]);

    let next = (first + Duration::days(32)).format("%Y-%m").to_string();
    bad_query(&app.get(&format!("/v1/clients/{slug}/pacing?month={next}")).send().await, "month");
    bad_query(&app.get(&format!("/v1/clients/{slug}/pacing?month=2026/06")).send().await, "month");
    bad_query(&app.get(&format!("/v1/clients/{slug}/pacing?month=june")).send().await, "month");
}

// ------------------------------------------------------------------ actions

#[sqlx::test]
async fn meta_insights_and_google_ads_report(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let slug = ads_client(&app, "Report Co").await["slug"].as_str().unwrap().to_string();
    let (from, to) = week();
    let in_range = |r: &Value| {
        let d = r["date"].as_str().unwrap();
        d >= from.to_string().as_str() && d <= to.to_string().as_str()
    };
    let body = |extra: Value| {
        let mut b = json!({"client": slug, "from": from, "to": to});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let account = ok(&app.post("/v1/platforms/meta/insights", body(json!({}))).send().await);
    assert_eq!(account["account"], "act_1234567890");
    let rows = account["rows"].as_array().unwrap();
    assert!((1..=7).contains(&rows.len()), "{account}");
    assert!(rows.iter().all(|r| r["campaign_id"].is_null() && in_range(r)), "{account}");

    let campaign = ok(&app.post("/v1/platforms/meta/insights", body(json!({"level": "campaign"}))).send().await);
    let rows = campaign["rows"].as_array().unwrap();
    assert!(rows.len() > 7, "2-3 campaigns a day: {campaign}");
    assert!(rows.iter().all(|r| r["campaign_id"].as_str().is_some_and(|c| !c.is_empty()) && in_range(r)), "{campaign}");
    let account_spend: f64 = account["rows"].as_array().unwrap().iter().map(|r| r["spend"].as_f64().unwrap()).sum();
    let campaign_spend: f64 = rows.iter().map(|r| r["spend"].as_f64().unwrap()).sum();
    assert!(close(account_spend, campaign_spend, 0.05), "levels add up: {account_spend} vs {campaign_spend}");

    let report = ok(&app.post("/v1/platforms/google-ads/report", body(json!({}))).send().await);
    assert_eq!(report["account"], "1234567890");
    let rows = report["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{report}");
    assert!(rows.iter().all(|r| r["campaign_id"].as_str().is_some_and(|c| !c.is_empty()) && in_range(r)), "{report}");
    invalid(&app.post("/v1/platforms/google-ads/report", body(json!({"level": "campaign"}))).send().await, "level");

    let bare = client_with(&app, "No Accounts", json!({})).await;
    let other = json!({"client": bare["slug"], "from": from, "to": to});
    invalid(&app.post("/v1/platforms/meta/insights", other.clone()).send().await, "client");
    invalid(&app.post("/v1/platforms/google-ads/report", other).send().await, "client");
    invalid(
        &app.post("/v1/platforms/meta/insights", json!({"client": slug, "from": to, "to": from})).send().await,
        "to",
    );
    app.post("/v1/platforms/meta/insights", json!({"client": "nobody", "from": from, "to": to}))
        .send()
        .await
        .problem(404, "not_found");
}

#[sqlx::test]
async fn drive_client_folders_are_created_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = client_with(&app, "Folder Co", json!({})).await;
    let slug = client["slug"].as_str().unwrap();
    let first = ok(&app.post("/v1/platforms/google-drive/client-folders", json!({"client": slug})).send().await);
    let tree = &first["tree"];
    assert_eq!((tree["root"]["name"].as_str(), tree["created"].as_u64()), (Some("Folder Co"), Some(5)));
    let children: Vec<&str> =
        tree["children"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(children, ["01 Strategy", "02 Creatives", "03 Reports", "04 Invoices"]);
    let root = tree["root"]["id"].as_str().unwrap().to_string();
    let folders = |app: &TestApp| app.sim.state.stats().platforms["google_drive"].created.get("folders").copied();
    assert_eq!(folders(&app), Some(5));

    let second = ok(&app.post("/v1/platforms/google-drive/client-folders", json!({"client": slug})).send().await);
    assert_eq!(
        (second["tree"]["root"]["id"].as_str(), second["tree"]["created"].as_u64()),
        (Some(root.as_str()), Some(0))
    );
    assert_eq!(second["tree"]["children"], tree["children"]);
    assert_eq!(folders(&app), Some(5), "the second run creates nothing");
    let stored = ok(&app.get(&format!("/v1/clients/{slug}")).send().await);
    assert_eq!(stored["accounts"]["drive_folder"], root.as_str());
    let updates = app
        .count(&format!(
            "SELECT count(*) FROM audit.log WHERE action = 'client.update' AND resource_id = '{}'",
            client["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(updates, 1, "the folder id is linked once");
}

#[sqlx::test]
async fn clickup_onboarding_project_is_created_once(pool: PgPool) {
    let mut config = test_config();
    // The default limiter paces calls to ClickUp's 100/min plan (~8 s for these calls).
    (config.platforms.clickup.rate_per_second, config.platforms.clickup.burst) = (Some(1000.0), Some(100));
    let app = TestApp::with_config(pool, config).await;
    let slug = client_with(&app, "List Co", json!({})).await["slug"].as_str().unwrap().to_string();
    let template_len = switchboard::platforms::clickup::default_onboarding_template().len() as u64;
    let first = ok(&app.post("/v1/platforms/clickup/onboarding-project", json!({"client": slug})).send().await);
    assert_eq!((first["list_created"].as_bool(), first["tasks_created"].as_u64()), (Some(true), Some(template_len)));
    assert_eq!(first["task_ids"].as_array().unwrap().len() as u64, template_len);
    let second = ok(&app.post("/v1/platforms/clickup/onboarding-project", json!({"client": slug})).send().await);
    assert_eq!(second["list_id"], first["list_id"]);
    assert_eq!((second["list_created"].as_bool(), second["tasks_created"].as_u64()), (Some(false), Some(0)));
    assert_eq!(second["task_ids"], first["task_ids"]);
    let created = |app: &TestApp| app.sim.state.stats().platforms["clickup"].created.clone();
    assert_eq!((created(&app)["lists"], created(&app)["tasks"]), (1, template_len));
    let stored = ok(&app.get(&format!("/v1/clients/{slug}")).send().await);
    assert_eq!(stored["accounts"]["clickup_list"], first["list_id"]);

    let other = client_with(&app, "Short List Co", json!({})).await;
    let template = json!([{"name": "Kick-off", "due_in_days": 1}, {"name": "Access", "tags": ["meta"]}]);
    let custom = ok(&app
        .post("/v1/platforms/clickup/onboarding-project", json!({"client": other["slug"], "template": template}))
        .send()
        .await);
    assert_eq!((custom["list_created"].as_bool(), custom["tasks_created"].as_u64()), (Some(true), Some(2)));
    assert_ne!(custom["list_id"], first["list_id"]);
    let names: Vec<String> = app
        .sim
        .state
        .vendor::<switchboard::sim::clickup::State>()
        .tasks(custom["list_id"].as_str().unwrap())
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Kick-off", "Access"]);
    assert_eq!((created(&app)["lists"], created(&app)["tasks"]), (2, template_len + 2));

    let both = json!({"client": slug, "space_id": "90120000001", "folder_id": "456"});
    invalid(&app.post("/v1/platforms/clickup/onboarding-project", both).send().await, "folder_id");
    invalid(
        &app.post("/v1/platforms/clickup/onboarding-project", json!({"client": slug, "template": []})).send().await,
        "template",
    );
    assert_eq!(created(&app)["lists"], 2);
}

#[sqlx::test]
async fn whatsapp_messages(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let slug = ads_client(&app, "Chat Co").await["slug"].as_str().unwrap().to_string();
    let send = |body: Value| app.post("/v1/platforms/whatsapp/messages", body).send();
    // Free-form texts only go to customers who wrote in the last 24 h.
    app.customer_writes("+5511999990000", "hi").await;
    app.customer_writes("+16505551234", "hello").await;
    let to_client = ok(&send(json!({"client": slug, "text": "Report ready"})).await);
    assert!(to_client["message_id"].as_str().unwrap().starts_with("wamid."), "{to_client}");
    assert_eq!(to_client["to"], "5511999990000");
    let sent = app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("+5511999990000");
    assert_eq!((sent.len(), sent[0].kind.as_str(), sent[0].body.as_str()), (1, "text", "Report ready"));

    let to_number = ok(&send(json!({"to": "+1 650 555 1234", "text": "Hello"})).await);
    assert!(to_number["message_id"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("16505551234").len(), 1);
    let templated = ok(&send(json!({"to": "+16505551247", "template": report_template()})).await);
    assert!(templated["message_id"].as_str().unwrap().starts_with("wamid."), "templates pass the 24 h window");
    let t = &app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("16505551247")[0];
    assert_eq!(
        (t.kind.as_str(), t.body.as_str(), t.language.as_deref(), t.params.len()),
        ("template", "switchboard_weekly_report", Some("en_US"), 3)
    );

    invalid(&send(json!({"text": "nobody"})).await, "to");
    invalid(&send(json!({"client": slug, "to": "+16505551234", "text": "both"})).await, "to");
    invalid(&send(json!({"to": "16505551234", "text": "no plus"})).await, "to");
    invalid(&send(json!({"to": "+16505551234"})).await, "text");
    invalid(&send(json!({"to": "+16505551234", "text": "x", "template": {"name": "t"}})).await, "text");
    let bare = client_with(&app, "No Phone", json!({})).await;
    invalid(&send(json!({"client": bare["slug"], "text": "hi"})).await, "client");

    // Outside the window the service refuses a text itself (409), sending nothing.
    let calls = app.sim.state.stats().platforms["whatsapp"].calls;
    let refused = send(json!({"to": "+16505551247", "text": "Late reply"})).await;
    let problem = refused.problem(409, "whatsapp_window_closed");
    assert!(problem["detail"].as_str().unwrap().contains("template"), "{problem}");
    assert_eq!(app.sim.state.stats().platforms["whatsapp"].calls, calls, "nothing reached WhatsApp");
    let created = &app.sim.state.stats().platforms["whatsapp"].created;
    assert_eq!((created["messages"], created["templates"]), (2, 1), "two texts and one template");
    assert_eq!(audited(&app, "platform.whatsapp.message").await, 3, "a refused message is not audited as sent");
}

#[sqlx::test]
async fn whatsapp_message_with_idempotency_key_is_sent_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = json!({"to": "+447700900123", "template": report_template()});
    let send =
        || app.post("/v1/platforms/whatsapp/messages", body.clone()).header("Idempotency-Key", "wa-msg-1").send();
    let first = send().await;
    let first_body = ok(&first);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = send().await;
    assert_eq!(ok(&second), first_body);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.sim.state.vendor::<switchboard::sim::whatsapp::State>().sent_to("447700900123").len(), 1);
    assert_eq!(app.sim.state.stats().platforms["whatsapp"].calls, 1);
    assert_eq!(audited(&app, "platform.whatsapp.message").await, 1);
}

#[sqlx::test]
async fn llm_completions_record_usage(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = client_with(&app, "Brief Co", json!({"industry": "coffee", "notes": "Ships beans weekly"})).await;
    let (id, slug) = (client["id"].as_str().unwrap(), client["slug"].as_str().unwrap());
    let free = ok(&app
        .post("/v1/platforms/llm/completions", json!({"prompt": "Summarise: spend 120.50, 4 conversions."}))
        .send()
        .await);
    assert!(!free["text"].as_str().unwrap().trim().is_empty(), "{free}");
    assert!(free["input_tokens"].as_u64().unwrap() > 0 && free["output_tokens"].as_u64().unwrap() > 0, "{free}");
    let usage = |sql: &'static str| sqlx::query_as::<_, (Option<String>, i32, i32)>(sql).fetch_all(&app.pool);
    let rows =
        usage("SELECT client_id::text, input_tokens, output_tokens FROM costs.llm_usage WHERE purpose = 'prompt'")
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![(None, free["input_tokens"].as_i64().unwrap() as i32, free["output_tokens"].as_i64().unwrap() as i32)]
    );

    let body = json!({"template_key": "client_brief", "client": slug, "variables": {"focus": "Meta campaigns"}});
    let brief = ok(&app.post("/v1/platforms/llm/completions", body).send().await);
    assert!(!brief["text"].as_str().unwrap().is_empty());
    let rows = usage("SELECT client_id::text, input_tokens, output_tokens FROM costs.llm_usage WHERE purpose = 'template:client_brief'").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.as_deref(), Some(id));
    assert_eq!(app.count("SELECT count(*) FROM costs.llm_usage").await, 2);

    invalid(&app.post("/v1/platforms/llm/completions", json!({"template_key": "haiku"})).send().await, "template_key");
    invalid(
        &app.post("/v1/platforms/llm/completions", json!({"prompt": "x", "template_key": "client_brief"})).send().await,
        "prompt",
    );
    invalid(&app.post("/v1/platforms/llm/completions", json!({})).send().await, "prompt");
    invalid(
        &app.post("/v1/platforms/llm/completions", json!({"prompt": "x", "max_tokens": 0})).send().await,
        "max_tokens",
    );
    app.post("/v1/platforms/llm/completions", json!({"prompt": "x", "client": "nobody"}))
        .send()
        .await
        .problem(404, "not_found");
    assert_eq!(app.count("SELECT count(*) FROM costs.llm_usage").await, 2, "refused requests record nothing");
}

#[sqlx::test]
async fn platform_outage_is_a_retryable_problem(pool: PgPool) {
    let mut config = test_config();
    // Short backoff between the connector's attempts keeps the test fast.
    config.platforms.whatsapp.retry_base_ms = Some(5);
    let app = TestApp::with_config(pool, config).await;
    app.sim.state.configure("whatsapp", Behaviour { fault_rate: 1.0, ..Default::default() });
    let body = json!({"to": "+16505551234", "template": report_template()});
    let res = app.post("/v1/platforms/whatsapp/messages", body.clone()).send().await;
    let problem = res.problem(503, "platform_error");
    let platform = &problem["platform"];
    assert_eq!(
        (platform["name"].as_str(), platform["kind"].as_str(), platform["retryable"].as_bool()),
        (Some("whatsapp"), Some("unavailable"), Some(true))
    );
    assert_eq!((platform["status"].as_u64(), platform["code"].as_str()), (Some(500), Some("131000")), "{problem}");
    let retry_after: u64 = res.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let stats = app.sim.state.stats().platforms["whatsapp"].clone();
    assert!(stats.faults > 1, "the connector retried: {stats:?}");
    assert_eq!((stats.created["messages"], stats.created["templates"]), (0, 0));
    assert_eq!(audited(&app, "platform.whatsapp.message").await, 0);

    app.sim.state.configure("whatsapp", Behaviour::default());
    ok(&app.post("/v1/platforms/whatsapp/messages", body).send().await);
}
