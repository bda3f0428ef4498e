//! Meta Marketing API connector against wiremock (as the platform) and the simulator.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::{Value, json};
use switchboard::{
    platforms::{
        ErrorKind,
        meta::{self, InsightsLevel, Meta, Settings},
    },
    sim::{self, Behaviour, SimState},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param, query_param_is_missing},
};

const PROOF: &str = "e2ccb2c8515532f9e3afd5eebab2e34890322b05e55e903a8ae8a555beeeefad";

fn settings(base: &str) -> Settings {
    Settings {
        access_token: Some("EAAB_test_token".into()),
        app_secret: Some("app_secret_123".into()),
        base_url: base.to_string(),
        account_rate_per_second: Some(1000.0),
        rate_per_second: Some(1000.0),
        burst: Some(100),
        retry_base_ms: Some(5),
        ..Settings::default()
    }
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn graph_error(code: i64, subcode: Option<i64>, message: &str) -> Value {
    json!({"error": {"message": message, "type": "OAuthException", "code": code, "error_subcode": subcode, "fbtrace_id": "AbC"}})
}

fn insights_row(date: &str, spend: &str) -> Value {
    json!({"spend": spend, "impressions": "10000", "clicks": "250", "inline_link_clicks": "230", "account_currency": "EUR",
        "actions": [{"action_type": "link_click", "value": "230"}, {"action_type": "purchase", "value": "20"},
                    {"action_type": "omni_purchase", "value": "20"}, {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "18"}],
        "action_values": [{"action_type": "omni_purchase", "value": "1500.00"}, {"action_type": "purchase", "value": "1500.00"}],
        "purchase_roas": [{"action_type": "omni_purchase", "value": "14.925373"}],
        "date_start": date, "date_stop": date})
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn platform_meta_daily_insights_sends_credentials_and_normalises() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/act_123/insights"))
        .and(query_param("level", "account"))
        .and(query_param("time_increment", "1"))
        .and(query_param("time_range", r#"{"since":"2026-06-01","until":"2026-06-03"}"#))
        .and(query_param(
            "fields",
            "spend,impressions,clicks,inline_link_clicks,actions,action_values,purchase_roas,account_currency",
        ))
        .and(query_param("access_token", "EAAB_test_token"))
        .and(query_param("appsecret_proof", PROOF))
        .respond_with(ok(json!({"data": [insights_row("2026-06-01", "100.50"), insights_row("2026-06-03", "7")],
            "paging": {"cursors": {"before": "MAZDZD", "after": "MQZDZD"}}})))
        .expect(1)
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let days = meta.daily_insights("123", day(6, 1), day(6, 3)).await.unwrap();
    assert_eq!(days.len(), 3, "one entry per day, the day without a row is zero");
    assert_eq!((days[0].spend, days[0].impressions, days[0].clicks, days[0].link_clicks), (100.5, 10000, 250, 230));
    assert_eq!(days[0].conversions, 20.0, "one purchase family, not 20 + 20 + 18");
    assert_eq!(days[0].conversion_value, 1500.0);
    assert_eq!(days[0].currency, "EUR");
    assert_eq!((days[1].date, days[1].spend, days[1].currency.as_str()), (day(6, 2), 0.0, "EUR"));
    assert_eq!(days[2].spend, 7.0);
}

#[tokio::test]
async fn platform_meta_follows_paging_next_for_insights_and_campaigns() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(path("/v25.0/act_9/insights"))
        .and(query_param_is_missing("after"))
        .and(query_param("level", "campaign"))
        .respond_with(ok(json!({
            "data": [json!({"campaign_id": "c1", "campaign_name": "Summer", "date_start": "2026-06-01", "spend": "1.00", "account_currency": "USD"})],
            "paging": {"cursors": {"after": "QQ"}, "next": format!("{uri}/v25.0/act_9/insights?level=campaign&limit=1&after=QQ&access_token=EAAB_test_token")}
        })))
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_9/insights"))
        .and(query_param("after", "QQ"))
        .and(query_param("appsecret_proof", PROOF))
        .respond_with(ok(json!({"data": [json!({"campaign_id": "c2", "campaign_name": "Winter", "date_start": "2026-06-01", "spend": "2.5"})],
            "paging": {"cursors": {"before": "QQ"}}})))
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_9/campaigns"))
        .and(query_param_is_missing("after"))
        .respond_with(ok(json!({"data": [{"id": "c1", "name": "Summer", "status": "ACTIVE", "daily_budget": "5000"}],
            "paging": {"next": format!("{uri}/v25.0/act_9/campaigns?after=B")}})))
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_9/campaigns"))
        .and(query_param("after", "B"))
        .respond_with(ok(
            json!({"data": [{"id": "c2", "name": "Winter", "objective": "OUTCOME_TRAFFIC"}], "paging": {}}),
        ))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&uri));
    let rows = meta.insights_report("act_9", day(6, 1), day(6, 1), InsightsLevel::Campaign).await.unwrap();
    let names: Vec<_> = rows.iter().map(|r| r.campaign_name.as_deref().unwrap()).collect();
    assert_eq!(names, ["Summer", "Winter"]);
    assert_eq!(rows[1].spend, 2.5);
    let campaigns = meta.campaigns("act_9").await.unwrap();
    assert_eq!(campaigns.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c1", "c2"]);
    assert_eq!(campaigns[0].daily_budget, Some(5000));
    // The second page went out with exactly one token (ours) and the proof.
    let second = &server.received_requests().await.unwrap()[1];
    let tokens = second.url.query_pairs().filter(|(k, _)| k == "access_token").count();
    assert_eq!(tokens, 1, "{}", second.url);
    assert_eq!(requests(&server).await, 4);
}

#[tokio::test]
async fn platform_meta_throttle_waits_as_long_as_the_usage_headers_say() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/insights"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(graph_error(
                    80000,
                    Some(2446079),
                    "(#80000) There have been too many calls from this ad-account.",
                ))
                .insert_header("x-ad-account-usage", r#"{"acc_id_util_pct":100,"reset_time_duration":1}"#),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_1/insights")).respond_with(ok(json!({"data": []}))).mount(&server).await;
    let meta = Meta::new(&settings(&server.uri()));
    let started = Instant::now();
    meta.insights_report("act_1", day(6, 1), day(6, 2), InsightsLevel::Account).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "retried after {:?}", started.elapsed());
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn platform_meta_throttle_without_a_wait_backs_off_and_gives_up() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/campaigns"))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(
            17,
            Some(2446079),
            "User request limit reached",
        )))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let started = Instant::now();
    let err = meta.campaigns("act_1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.code.as_deref(), Some("17/2446079"));
    assert_eq!(requests(&server).await, 5, "max attempts");
    assert!(started.elapsed() < Duration::from_secs(2), "small backoff: {:?}", started.elapsed());
}

#[tokio::test]
async fn platform_meta_retries_a_transient_5xx_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/campaigns"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"message": "(#2) Service temporarily unavailable",
            "type": "OAuthException", "code": 2, "is_transient": true, "fbtrace_id": "x"}})),
        )
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_1/campaigns"))
        .respond_with(ok(json!({"data": [{"id": "1", "name": "A"}]})))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    assert_eq!(meta.campaigns("act_1").await.unwrap().len(), 1);
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn platform_meta_invalid_parameter_fails_at_once() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/insights"))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(
            100,
            Some(1487534),
            "(#100) Please reduce the amount of data you're asking for",
        )))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let err = meta.daily_insights("act_1", day(6, 1), day(6, 30)).await.unwrap_err();
    assert_eq!((err.kind, err.retryable, err.code.as_deref()), (ErrorKind::Invalid, false, Some("100/1487534")));
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn platform_meta_expired_token_is_an_auth_failure_without_leaking_it() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/insights"))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(
            190,
            Some(463),
            "Error validating access token EAAB_test_token",
        )))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let err = meta.daily_insights("act_1", day(6, 1), day(6, 1)).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("190/463")));
    assert!(!err.to_string().contains("EAAB_test_token"), "{err}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn platform_meta_malformed_json_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/insights"))
        .respond_with(ok(json!({"data": [{"date_start": "2026-06-01", "spend": "a lot"}]})))
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_1/campaigns"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&server)
        .await;
    let meta = Meta::new(&settings(&server.uri()));
    let err = meta.daily_insights("act_1", day(6, 1), day(6, 1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert!(err.message.contains("not a number"), "{}", err.message);
    assert_eq!(meta.campaigns("act_1").await.unwrap_err().kind, ErrorKind::MalformedResponse);
}

#[tokio::test]
async fn platform_meta_high_usage_pauses_that_account_only() {
    let server = MockServer::start().await;
    Mock::given(path("/v25.0/act_1/campaigns"))
        .respond_with(ok(json!({"data": []})).insert_header(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_management","call_count":12,"total_cputime":3,"total_time":3,"estimated_time_to_regain_access":0}]}"#,
        ).insert_header("x-ad-account-usage", r#"{"acc_id_util_pct":99,"reset_time_duration":1}"#))
        .mount(&server)
        .await;
    Mock::given(path("/v25.0/act_2/campaigns")).respond_with(ok(json!({"data": []}))).mount(&server).await;
    let meta = Meta::new(&settings(&server.uri()));
    meta.campaigns("act_1").await.unwrap();
    assert!(meta.http().status().paused_accounts.contains_key("act_1"));
    let other = Instant::now();
    meta.campaigns("act_2").await.unwrap();
    assert!(other.elapsed() < Duration::from_millis(500), "act_2 waited {:?}", other.elapsed());
    let same = Instant::now();
    meta.campaigns("act_1").await.unwrap();
    assert!(same.elapsed() >= Duration::from_millis(800), "act_1 waited only {:?}", same.elapsed());
}

#[tokio::test]
async fn platform_meta_without_a_token_sends_nothing() {
    let server = MockServer::start().await;
    let meta = Meta::new(&Settings { access_token: None, ..settings(&server.uri()) });
    let err = meta.campaigns("act_1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(err.message.contains("META_ACCESS_TOKEN"));
    assert_eq!(requests(&server).await, 0);
}

// ---- simulator ----

async fn sim_meta(state: SimState) -> (sim::Running, Meta) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap();
    let settings = Settings {
        account_rate_per_second: Some(1000.0),
        retry_base_ms: Some(1),
        async_poll_ms: Some(5),
        ..Settings::default()
    }
    .sandboxed(&format!("{}{}", running.base_url, meta::INFO.sim_prefix));
    (running, Meta::new(&settings))
}

#[tokio::test]
async fn platform_meta_sim_serves_every_method_consistently() {
    let (running, meta) = sim_meta(switchboard::platforms::simulator(Behaviour::default())).await;
    let account = "act_1234567890";
    let (from, to) = (day(1, 1), day(6, 30));
    let daily = meta.daily_insights(account, from, to).await.unwrap();
    assert_eq!(daily.len(), 181);
    assert_eq!(daily, meta.daily_insights(account, from, to).await.unwrap(), "deterministic");
    let info = meta.account(account).await.unwrap();
    assert!(["USD", "EUR", "BRL"].contains(&info.currency.as_str()));
    assert!(daily.iter().all(|d| d.currency == info.currency));
    assert!(daily.iter().any(|d| d.spend == 0.0), "some dark days");
    assert!(daily.iter().any(|d| d.conversions > 0.0 && d.conversion_value > 0.0));
    // Campaign level: more rows than one page of 100, and they add up to the account.
    let rows = meta.insights_report(account, from, to, InsightsLevel::Campaign).await.unwrap();
    assert!(rows.len() > 100, "{} rows", rows.len());
    for d in &daily {
        let spend: f64 = rows.iter().filter(|r| r.date == d.date).map(|r| r.spend).sum();
        let conv: f64 = rows.iter().filter(|r| r.date == d.date).map(|r| r.conversions).sum();
        assert!((spend - d.spend).abs() < 0.001 && conv == d.conversions, "{}: {spend} vs {}", d.date, d.spend);
    }
    let campaigns = meta.campaigns(account).await.unwrap();
    assert!((2..=3).contains(&campaigns.len()));
    assert!(rows.iter().all(|r| {
        campaigns.iter().any(|c| Some(&c.id) == r.campaign_id.as_ref() && Some(&c.name) == r.campaign_name.as_ref())
    }));
    // Over 45 days: every report went as an async job (the only objects created); every call counted.
    assert!(daily.iter().all(|d| d.link_clicks <= d.clicks) && daily.iter().any(|d| d.link_clicks > 0));
    let stats = running.state.stats().platforms["meta"].clone();
    assert_eq!(stats.created["report_runs"], 3, "{:?}", stats.created);
    assert!(stats.errors.is_empty(), "no sync request timed out: {:?}", stats.errors);
    assert_eq!(running.state.vendor::<switchboard::sim::meta::State>().calls(account), stats.calls);
}

#[tokio::test]
async fn platform_meta_sim_pages_with_absolute_links_and_usage_headers() {
    let (running, _) = sim_meta(switchboard::platforms::simulator(Behaviour::default())).await;
    let client = crate::support::http_client();
    let mut url = format!(
        "{}/meta/v24.0/act_42/insights?level=campaign&time_increment=1&limit=7&access_token=t&fields=campaign_id,spend&time_range={}",
        running.base_url, r#"{"since":"2026-03-01","until":"2026-03-10"}"#
    );
    let mut seen = Vec::new();
    for page in 0.. {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let usage = response.headers()["x-ad-account-usage"].to_str().unwrap().to_string();
        assert!(serde_json::from_str::<Value>(&usage).unwrap()["acc_id_util_pct"].is_number());
        let body: Value = response.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= 7);
        for row in data {
            assert!(row.get("campaign_name").is_none(), "only the requested fields");
            seen.push((
                row["date_start"].as_str().unwrap().to_string(),
                row["campaign_id"].as_str().unwrap().to_string(),
            ));
        }
        match body["paging"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&format!("{}/meta/v24.0/act_42/insights?", running.base_url)), "{next}");
                url = next.to_string();
            }
            None => break,
        }
        assert!(page < 20);
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert!(seen.len() > 7, "more than one page");
}

#[tokio::test]
async fn platform_meta_sim_answers_real_errors() {
    let (running, meta) = sim_meta(switchboard::platforms::simulator(Behaviour::default())).await;
    let base = format!("{}{}", running.base_url, meta::INFO.sim_prefix);
    let bad = Meta::new(&Settings { access_token: Some("bad-token".into()), ..Settings::default().sandboxed(&base) });
    let err = bad.campaigns("act_1").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("190")));

    // Faults: the real code 2, retried up to the limit.
    running.state.configure("meta", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let err = meta.campaigns("act_1").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Unavailable, Some("2")));
    assert_eq!(running.state.stats().platforms["meta"].faults, 5);

    // Throttling: the BUC error with a minute to regain access (checked raw: the client would defer the call).
    running.state.configure("meta", Behaviour { rate_per_second: Some(0.001), ..Behaviour::default() });
    let client = crate::support::http_client();
    let url = format!("{base}/v25.0/act_1/campaigns?access_token=t");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let throttled = client.get(&url).send().await.unwrap();
    assert_eq!(throttled.status(), 400);
    let usage: Value =
        serde_json::from_str(throttled.headers()["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    assert_eq!(usage["0"][0]["estimated_time_to_regain_access"], 1);
    let body: Value = throttled.json().await.unwrap();
    assert_eq!((body["error"]["code"].as_i64(), body["error"]["error_subcode"].as_i64()), (Some(80000), Some(2446079)));
}
