//! Meta's Insights rules (issue #8), each against wiremock answering Meta's documented
//! bodies and against the simulator: sync timeouts (100/1504018, 2/1504038) go to an async
//! report job and are never sent again unchanged, the async job flow, permanent Insights
//! errors, a long throttle pause that defers the call and holds the account, link clicks.
//!
//! Sources: Insights error codes
//! <https://developers.facebook.com/documentation/ads-commerce/marketing-api/insights/error-codes>
//! (codes, subcodes, "Request Timed Out … try a smaller date range, fetch less data, or use
//! async jobs"); the Graph error envelope and `X-Business-Use-Case-Usage`
//! <https://developers.facebook.com/docs/graph-api/overview/rate-limiting>; the async job
//! shapes (`report_run_id`, `async_status`, `async_percent_completion`) as Meta's SDK has
//! them (facebook-python-business-sdk `adobjects/adreportrun.py`).

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};
use switchboard::{
    platforms::{
        ErrorKind,
        meta::{self, InsightsLevel, Meta, Settings},
    },
    sim::{self, Behaviour},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path, query_param},
};

const ADVICE: &str = "Your request timed out. Try a smaller date range, fetch less data, or use async jobs.";

fn settings(base: &str) -> Settings {
    Settings {
        access_token: Some("EAAB_test_token".into()),
        base_url: base.to_string(),
        account_rate_per_second: Some(1000.0),
        rate_per_second: Some(1000.0),
        burst: Some(100),
        retry_base_ms: Some(5),
        async_poll_ms: Some(5),
        ..Settings::default()
    }
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

/// The Graph envelope of an Insights "Request Timed Out" (the error-codes page's row).
fn timed_out(code: i64, subcode: i64, transient: bool) -> Value {
    json!({"error": {"message": "Request Timed Out", "type": "OAuthException", "code": code, "error_subcode": subcode,
        "is_transient": transient, "error_user_title": "Request Timed Out", "error_user_msg": ADVICE, "fbtrace_id": "AxYz"}})
}

fn row(date: &str) -> Value {
    json!({"spend": "10.00", "impressions": "1000", "clicks": "40", "inline_link_clicks": "31",
        "account_currency": "USD", "date_start": date, "date_stop": date})
}

/// Meta's async job answers: `report_run_id`, then the run polled to completion, then its rows.
async fn mount_job(server: &MockServer, id: &str) {
    Mock::given(method("POST"))
        .and(path("/v25.0/act_7/insights"))
        .and(body_string_contains("time_increment=1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"report_run_id": id})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": id, "account_id": "7", "async_status": "Job Running", "async_percent_completion": 42}),
        ))
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": id, "account_id": "7", "async_status": "Job Completed", "async_percent_completion": 100}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{id}/insights")))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [row("2026-06-01"), row("2026-06-02")]})))
        .mount(server)
        .await;
}

async fn count(server: &MockServer, verb: &str, p: &str) -> usize {
    let requests = server.received_requests().await.unwrap();
    requests.iter().filter(|r| r.method.as_str() == verb && r.url.path() == p).count()
}

#[tokio::test]
async fn meta_sync_timeout_1504018_is_asked_again_as_an_async_job() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/act_7/insights"))
        .respond_with(ResponseTemplate::new(400).set_body_json(timed_out(100, 1504018, false)))
        .mount(&server)
        .await;
    mount_job(&server, "6023891234567").await;
    let days = Meta::new(&settings(&server.uri())).daily_insights("act_7", day(6, 1), day(6, 2)).await.unwrap();
    assert_eq!(days.iter().map(|d| (d.clicks, d.link_clicks)).collect::<Vec<_>>(), [(40, 31), (40, 31)]);
    assert_eq!(count(&server, "GET", "/v25.0/act_7/insights").await, 1, "the sync request is never repeated");
    assert_eq!(count(&server, "POST", "/v25.0/act_7/insights").await, 1);
    assert_eq!(count(&server, "GET", "/v25.0/6023891234567").await, 2, "polled until Job Completed");
}

#[tokio::test]
async fn meta_sync_timeout_1504038_is_not_retried_unchanged() {
    let server = MockServer::start().await;
    // Code 2 is "transient" in general; this subcode still says the same request times out again.
    Mock::given(method("GET"))
        .and(path("/v25.0/act_7/insights"))
        .respond_with(ResponseTemplate::new(500).set_body_json(timed_out(2, 1504038, true)))
        .mount(&server)
        .await;
    mount_job(&server, "6023891234568").await;
    let meta = Meta::new(&settings(&server.uri()));
    let rows = meta.insights_report("act_7", day(6, 1), day(6, 2), InsightsLevel::Campaign).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(count(&server, "GET", "/v25.0/act_7/insights").await, 1, "not retried five times");
}

#[tokio::test]
async fn meta_long_ranges_go_straight_to_an_async_job() {
    let server = MockServer::start().await;
    mount_job(&server, "6023891234569").await;
    let meta = Meta::new(&settings(&server.uri()));
    let rows = meta.insights_report("act_7", day(3, 1), day(6, 30), InsightsLevel::Account).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(count(&server, "GET", "/v25.0/act_7/insights").await, 0, "no sync request over 45 days");
    let post = server.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "POST").unwrap();
    let form: Vec<(String, String)> = form_urlencoded::parse(&post.body).into_owned().collect();
    assert!(form.contains(&("time_range".into(), r#"{"since":"2026-03-01","until":"2026-06-30"}"#.into())));
    assert!(form.iter().any(|(k, v)| k == "fields" && v.contains("inline_link_clicks")), "{form:?}");
    assert!(post.url.query_pairs().any(|(k, _)| k == "access_token"), "credentials in the query, as for GETs");
}

#[tokio::test]
async fn meta_async_job_failed_or_too_slow_is_a_retryable_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/act_7/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"report_run_id": "111"})))
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/111"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "111", "async_status": "Job Failed", "async_percent_completion": 0})),
        )
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let err = meta.daily_insights("act_7", day(1, 1), day(6, 30)).await.unwrap_err();
    assert_eq!((err.kind, err.retryable), (ErrorKind::Unavailable, true));
    assert!(err.message.contains("Job Failed"), "{}", err.message);

    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v25.0/act_7/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"report_run_id": "222"})))
        .mount(&slow)
        .await;
    Mock::given(path("/v25.0/222"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "222", "async_status": "Job Running", "async_percent_completion": 12})),
        )
        .mount(&slow)
        .await;
    let meta = Meta::new(&Settings { async_max_wait_secs: Some(1), async_poll_ms: Some(100), ..settings(&slow.uri()) });
    let started = Instant::now();
    let err = meta.daily_insights("act_7", day(1, 1), day(6, 30)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "polling is capped: {:?}", started.elapsed());
    assert_eq!((err.kind, err.retryable), (ErrorKind::Timeout, true));
    let polls = count(&slow, "GET", "/v25.0/222").await;
    assert!((2..=5).contains(&polls), "backed-off polls: {polls}");
}

#[tokio::test]
async fn meta_invalid_breakdowns_and_metrics_are_permanent() {
    for sub in [1504041, 1504042] {
        let server = MockServer::start().await;
        Mock::given(path("/v25.0/act_7/insights"))
            .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
                "message": "Invalid Breakdowns", "type": "OAuthException", "code": 2, "error_subcode": sub,
                "is_transient": false, "fbtrace_id": "T"}})))
            .mount(&server)
            .await;
        let err = Meta::new(&settings(&server.uri())).daily_insights("act_7", day(6, 1), day(6, 2)).await.unwrap_err();
        assert_eq!((err.kind, err.retryable), (ErrorKind::Invalid, false), "{sub}");
        assert_eq!(server.received_requests().await.unwrap().len(), 1, "{sub} never retried");
    }
}

#[tokio::test]
async fn meta_long_regain_estimate_fails_fast_and_holds_the_account() {
    let server = MockServer::start().await;
    // Meta's BUC throttle: code 80000/2446079, the regain estimate (minutes) in the usage header.
    Mock::given(path("/v25.0/act_7/insights"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
                    "type": "OAuthException", "code": 80000, "error_subcode": 2446079, "fbtrace_id": "T"}}))
                .insert_header(
                    "x-business-use-case-usage",
                    r#"{"7":[{"type":"ads_insights","call_count":100,"total_cputime":40,"total_time":45,"estimated_time_to_regain_access":30}]}"#,
                ),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_8/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let started = Instant::now();
    let err = meta.daily_insights("act_7", day(6, 1), day(6, 2)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "slept through the pause: {:?}", started.elapsed());
    assert_eq!((err.kind, err.retryable, err.deferred), (ErrorKind::Throttled, true, true));
    assert_eq!(err.retry_after, Some(Duration::from_secs(1800)));
    assert_eq!(err.code.as_deref(), Some("80000/2446079"));
    // The account is paused: the next call is not sent; another account is not held.
    let again = meta.daily_insights("act_7", day(6, 1), day(6, 2)).await.unwrap_err();
    assert!(again.deferred && again.retry_after.unwrap() > Duration::from_secs(1790), "{again:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(meta.http().status().paused_accounts["act_7"] > 1790);
    meta.insights_report("act_8", day(6, 1), day(6, 2), InsightsLevel::Account).await.unwrap();
}

// ---- simulator ----

async fn sim_meta(settings: Settings) -> (sim::Running, Meta) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let settings = settings.sandboxed(&format!("{}{}", running.base_url, meta::INFO.sim_prefix));
    (running, Meta::new(&settings))
}

fn fast() -> Settings {
    Settings {
        account_rate_per_second: Some(1000.0),
        retry_base_ms: Some(1),
        async_poll_ms: Some(5),
        ..Settings::default()
    }
}

fn insights_url(running: &sim::Running, level: &str, since: NaiveDate, until: NaiveDate) -> String {
    format!(
        "{}/meta/v25.0/act_42/insights?access_token=t&level={level}&time_increment=1&time_range={{\"since\":\"{since}\",\"until\":\"{until}\"}}",
        running.base_url
    )
}

#[tokio::test]
async fn meta_sim_sync_long_ranges_time_out_as_meta_answers() {
    let (running, _) = sim_meta(fast()).await;
    let client = crate::support::http_client();
    let today = Utc::now().date_naive();
    let quarter =
        client.get(insights_url(&running, "account", today - chrono::Duration::days(90), today)).send().await.unwrap();
    assert_eq!(quarter.status(), 400);
    let body: Value = quarter.json().await.unwrap();
    let e = &body["error"];
    assert_eq!((e["code"].as_i64(), e["error_subcode"].as_i64()), (Some(100), Some(1504018)));
    assert_eq!(
        (e["error_user_title"].as_str(), e["error_user_msg"].as_str()),
        (Some("Request Timed Out"), Some(ADVICE))
    );
    assert_eq!(e["is_transient"], false);
    assert!(e["fbtrace_id"].is_string());
    let campaigns =
        client.get(insights_url(&running, "campaign", today - chrono::Duration::days(60), today)).send().await.unwrap();
    assert_eq!(campaigns.status(), 500);
    let body: Value = campaigns.json().await.unwrap();
    assert_eq!((body["error"]["code"].as_i64(), body["error"]["error_subcode"].as_i64()), (Some(2), Some(1504038)));
    // Within the limits the same request is served.
    let month =
        client.get(insights_url(&running, "campaign", today - chrono::Duration::days(30), today)).send().await.unwrap();
    assert_eq!(month.status(), 200);
    // The threshold is configurable.
    let config = client
        .post(format!("{}/_sim/meta/config", running.base_url))
        .json(&json!({"sync_max_days": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    assert_eq!(config.json::<Value>().await.unwrap()["sync_max_days"], 5);
    let week =
        client.get(insights_url(&running, "account", today - chrono::Duration::days(6), today)).send().await.unwrap();
    assert_eq!(week.status(), 400);
    let bad = client
        .post(format!("{}/_sim/meta/config", running.base_url))
        .json(&json!({"sync_days": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422, "unknown settings are refused");
    let errors = running.state.stats().platforms["meta"].errors.clone();
    assert_eq!((errors["100/1504018"], errors["2/1504038"]), (2, 1), "{errors:?}");
}

#[tokio::test]
async fn meta_sim_runs_async_report_jobs() {
    let (running, _) = sim_meta(fast()).await;
    let client = crate::support::http_client();
    let base = format!("{}/meta/v25.0", running.base_url);
    let range = r#"{"since":"2026-01-01","until":"2026-06-30"}"#;
    let created: Value = client
        .post(format!("{base}/act_42/insights?access_token=t"))
        .form(&[
            ("level", "campaign"),
            ("time_increment", "1"),
            ("time_range", range),
            ("fields", "campaign_id,spend,inline_link_clicks"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["report_run_id"].as_str().expect("report_run_id").to_string();
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    let early = client.get(format!("{base}/{id}/insights?access_token=t")).send().await.unwrap();
    assert_eq!(early.status(), 400, "no rows before the job completes");
    let mut seen = vec![];
    for _ in 0..3 {
        let run: Value = client.get(format!("{base}/{id}?access_token=t")).send().await.unwrap().json().await.unwrap();
        assert_eq!(run["id"], id.as_str());
        seen.push((
            run["async_status"].as_str().unwrap().to_string(),
            run["async_percent_completion"].as_u64().unwrap(),
        ));
    }
    assert_eq!(seen.first().unwrap(), &("Job Not Started".to_string(), 0));
    assert_eq!(seen.last().unwrap(), &("Job Completed".to_string(), 100));
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "progress only rises: {seen:?}");
    let mut url = format!("{base}/{id}/insights?access_token=t&limit=50");
    let mut rows = 0;
    loop {
        let page: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        for r in page["data"].as_array().unwrap() {
            assert!(
                r["campaign_id"].is_string() && r["inline_link_clicks"].is_string() && r.get("clicks").is_none(),
                "{r}"
            );
            rows += 1;
        }
        match page["paging"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert!(rows > 100, "a half year of campaign rows, paged: {rows}");
    let missing = client.get(format!("{base}/999?access_token=t")).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(running.state.stats().platforms["meta"].created["report_runs"], 1);
}

#[tokio::test]
async fn meta_sim_connector_falls_back_to_an_async_job_when_sync_times_out() {
    // The connector would try sync up to 400 days; the simulator times out past 5.
    let (running, meta) = sim_meta(Settings { async_after_days: Some(400), ..fast() }).await;
    running
        .state
        .vendor::<switchboard::sim::meta::State>()
        .set_config(switchboard::sim::meta::Config { sync_max_days: 5, ..Default::default() });
    let today = Utc::now().date_naive();
    let days = meta
        .daily_insights("act_42", today - chrono::Duration::days(20), today - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(days.len(), 20);
    assert!(days.iter().any(|d| d.link_clicks > 0) && days.iter().all(|d| d.link_clicks <= d.clicks));
    let stats = running.state.stats().platforms["meta"].clone();
    assert_eq!(stats.errors.get("100/1504018"), Some(&1), "one sync attempt, never repeated: {:?}", stats.errors);
    assert_eq!(stats.created["report_runs"], 1);
}

#[tokio::test]
async fn meta_sim_long_regain_estimate_defers_the_call_and_holds_the_account() {
    let (running, meta) = sim_meta(fast()).await;
    let vendor = running.state.vendor::<switchboard::sim::meta::State>();
    vendor.set_config(switchboard::sim::meta::Config { regain_minutes: 30, throttle_next: 1, ..Default::default() });
    let started = Instant::now();
    let err = meta.campaigns("act_42").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(
        (err.kind, err.deferred, err.retry_after),
        (ErrorKind::Throttled, true, Some(Duration::from_secs(1800)))
    );
    // Not asked again: the simulator would answer now (throttle_next is spent), but the account is paused.
    let again = meta.campaigns("act_42").await.unwrap_err();
    assert!(again.deferred, "{again:?}");
    let stats = running.state.stats().platforms["meta"].clone();
    assert_eq!((stats.calls, stats.errors.get("80000/2446079")), (1, Some(&1)));
    meta.campaigns("act_43").await.unwrap();
}
