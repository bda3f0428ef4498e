//! Google Ads and Google Drive connectors (and their shared OAuth) against wiremock
//! (as Google) and against the simulator.

use std::time::{Duration, Instant};

use base64::Engine;
use chrono::NaiveDate;
use serde_json::{Value, json};
use switchboard::{
    platforms::{
        ErrorKind,
        google_ads::{self, GoogleAds},
        google_auth::{JWT_BEARER_GRANT, TOKEN_URL},
        google_drive::{self, FOLDER_MIME, GoogleDrive},
    },
    sim::{self, Behaviour, google_drive::SANDBOX_SERVICE_ACCOUNT_JSON},
};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{body_partial_json, header, method, path, query_param},
};

const CUSTOMER: &str = "1234567890";
const STREAM: &str = "/v26/customers/1234567890/googleAds:searchStream";
const SEARCH: &str = "/v26/customers/1234567890/googleAds:search";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, d).unwrap()
}

fn form(req: &Request) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == p).collect()
}

async fn mount_token(server: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})),
        )
        .mount(server)
        .await;
}

// ---------------------------------------------------------------- Google Ads

fn ads_settings(base: &str) -> google_ads::Settings {
    google_ads::Settings {
        developer_token: Some("devtoken-123".into()),
        client_id: Some("client.apps.googleusercontent.com".into()),
        client_secret: Some("client-secret-xyz".into()),
        refresh_token: Some("1//refresh-abc".into()),
        login_customer_id: Some("999-888-7777".into()),
        base_url: base.to_string(),
        token_url: format!("{base}/token"),
        rate_per_second: Some(1000.0),
        burst: Some(100),
        account_rate_per_second: Some(1000.0),
        retry_base_ms: Some(5),
        max_wait_secs: Some(10.0),
        ..google_ads::Settings::default()
    }
}

fn ads_failure(code: u16, status: &str, family: &str, reason: &str, details: Option<Value>) -> Value {
    let mut error = json!({"errorCode": {family: reason}, "message": format!("{family} {reason}")});
    if let Some(d) = details {
        error["details"] = d;
    }
    json!({"error": {"code": code, "message": "m", "status": status, "details": [{
        "@type": "type.googleapis.com/google.ads.googleads.v23.errors.GoogleAdsFailure",
        "errors": [error], "requestId": "req-1"}]}})
}

fn quota(reason: &str, retry_delay: Option<&str>) -> ResponseTemplate {
    let details =
        retry_delay.map(|d| json!({"quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "r", "retryDelay": d}}));
    ResponseTemplate::new(429).set_body_json(ads_failure(429, "RESOURCE_EXHAUSTED", "quotaError", reason, details))
}

fn stream_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!([{"results": [{"customer": {"currencyCode": "EUR"}, "metrics": {"costMicros": "1500000"}, "segments": {"date": "2026-06-01"}}]}]))
}

#[tokio::test]
async fn google_ads_daily_metrics_reads_the_stream_with_the_right_headers() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.ads-token").await;
    let body = json!([
        {"results": [
            {"customer": {"resourceName": "customers/1234567890", "currencyCode": "EUR"},
             "metrics": {"clicks": "1540", "conversions": 18.0, "conversionsValue": 540.0, "costMicros": "25000000", "impressions": "82000"},
             "segments": {"date": "2026-06-02"}},
            {"customer": {"currencyCode": "EUR"}, "metrics": {"costMicros": "1230000", "impressions": "10"}, "segments": {"date": "2026-06-01"}}
         ], "fieldMask": "customer.currencyCode,segments.date,metrics.costMicros", "requestId": "r1"},
        {"results": [{"customer": {"currencyCode": "EUR"}, "segments": {"date": "2026-06-03"}}], "queryResourceConsumption": "1200"}
    ]);
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(header("authorization", "Bearer ya29.ads-token"))
        .and(header("developer-token", "devtoken-123"))
        .and(header("login-customer-id", "9998887777"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let ads = GoogleAds::new(&ads_settings(&server.uri()));
    let days = ads.daily_metrics("123-456-7890", day(1), day(3)).await.unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!((days[0].date, days[0].spend, days[0].impressions, days[0].clicks), (day(1), 1.23, 10, 0));
    assert_eq!(
        (days[1].spend, days[1].impressions, days[1].clicks, days[1].conversions, days[1].conversion_value),
        (25.0, 82000, 1540, 18.0, 540.0)
    );
    assert_eq!((days[2].spend, days[2].impressions), (0.0, 0));
    assert!(days.iter().all(|d| d.currency == "EUR"));

    let sent: Value = serde_json::from_slice(&requests_to(&server, STREAM).await[0].body).unwrap();
    let query = sent["query"].as_str().unwrap();
    assert!(
        query.contains("FROM customer") && query.contains("segments.date BETWEEN '2026-06-01' AND '2026-06-03'"),
        "{query}"
    );
    assert!(query.contains("metrics.cost_micros") && query.contains("customer.currency_code"), "{query}");
    let token = form(&requests_to(&server, "/token").await[0]);
    assert_eq!(token["grant_type"], "refresh_token");
    assert_eq!(
        (token["client_id"].as_str(), token["refresh_token"].as_str()),
        ("client.apps.googleusercontent.com", "1//refresh-abc")
    );

    // The token is cached: a second call does not refresh it.
    ads.daily_metrics(CUSTOMER, day(1), day(3)).await.unwrap();
    assert_eq!(requests_to(&server, "/token").await.len(), 1);
}

#[tokio::test]
async fn google_ads_concurrent_calls_share_one_token_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(100))
                .set_body_json(json!({"access_token": "ya29.t", "expires_in": 3599})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(STREAM)).respond_with(stream_ok()).mount(&server).await;
    let ads = std::sync::Arc::new(GoogleAds::new(&ads_settings(&server.uri())));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let ads = ads.clone();
            tokio::spawn(async move { ads.daily_metrics(CUSTOMER, day(1), day(1)).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap()[0].spend, 1.5);
    }
    assert_eq!(requests_to(&server, "/token").await.len(), 1);
}

#[tokio::test]
async fn google_ads_campaign_report_follows_next_page_token() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    let row = |id: &str, date: &str| {
        json!({"customer": {"currencyCode": "USD"}, "campaign": {"resourceName": format!("customers/1234567890/campaigns/{id}"), "id": id, "name": format!("Campaign {id}"), "status": "ENABLED"},
               "metrics": {"costMicros": "2500000", "clicks": "3"}, "segments": {"date": date}})
    };
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(body_partial_json(json!({"pageToken": "page-2"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results": [row("222", "2026-06-02")], "fieldMask": "campaign.id"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"results": [row("111", "2026-06-01"), row("222", "2026-06-01")], "nextPageToken": "page-2"}),
        ))
        .mount(&server)
        .await;
    let rows = GoogleAds::new(&ads_settings(&server.uri())).campaign_report(CUSTOMER, day(1), day(2)).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[2].campaign_id.as_str(), rows[2].campaign_name.as_str(), rows[2].date),
        ("222", "Campaign 222", day(2))
    );
    assert_eq!(
        (rows[0].spend, rows[0].clicks, rows[0].impressions, rows[0].currency.as_str(), rows[0].status.as_str()),
        (2.5, 3, 0, "USD", "ENABLED")
    );
    let sent = requests_to(&server, SEARCH).await;
    assert_eq!(sent.len(), 2);
    let first: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert!(first.get("pageToken").is_none());
    assert!(first["query"].as_str().unwrap().contains("FROM campaign"));
}

#[tokio::test]
async fn google_ads_quota_error_waits_for_its_retry_delay() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(quota("RESOURCE_EXHAUSTED", Some("0.3s")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(STREAM)).respond_with(stream_ok()).mount(&server).await;
    let started = Instant::now();
    let days = GoogleAds::new(&ads_settings(&server.uri())).daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap();
    assert_eq!(days.len(), 1);
    assert!(started.elapsed() >= Duration::from_millis(300), "did not wait: {:?}", started.elapsed());
    assert_eq!(requests_to(&server, STREAM).await.len(), 2);
}

#[tokio::test]
async fn google_ads_quota_error_of_hours_fails_fast_with_retry_after() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(quota("RESOURCE_EXHAUSTED", Some("8962s")))
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = GoogleAds::new(&ads_settings(&server.uri())).daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "slept: {:?}", started.elapsed());
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.retry_after, Some(Duration::from_secs(8962)));
    assert_eq!(err.code.as_deref(), Some("quotaError.RESOURCE_EXHAUSTED"));
    assert_eq!(requests_to(&server, STREAM).await.len(), 1);
}

#[tokio::test]
async fn google_ads_short_term_quota_without_delay_backs_off_and_retries() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(quota("RESOURCE_TEMPORARILY_EXHAUSTED", None))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(STREAM)).respond_with(stream_ok()).mount(&server).await;
    GoogleAds::new(&ads_settings(&server.uri())).daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap();
    assert_eq!(requests_to(&server, STREAM).await.len(), 3);
}

#[tokio::test]
async fn google_ads_internal_errors_are_retried() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    let internal = ads_failure(500, "INTERNAL", "internalError", "INTERNAL_ERROR", None);
    // Once as an envelope, once wrapped in the stream's array.
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(ResponseTemplate::new(500).set_body_json(&internal))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!([internal])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(STREAM)).respond_with(stream_ok()).mount(&server).await;
    let days = GoogleAds::new(&ads_settings(&server.uri())).daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap();
    assert_eq!(days[0].spend, 1.5);
    assert_eq!(requests_to(&server, STREAM).await.len(), 3);
}

#[tokio::test]
async fn google_ads_permission_denied_fails_at_once() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    let denied = ads_failure(403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED", None);
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(ResponseTemplate::new(403).set_body_json(denied))
        .mount(&server)
        .await;
    let err = GoogleAds::new(&ads_settings(&server.uri())).daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(!err.retryable);
    assert_eq!(err.code.as_deref(), Some("authorizationError.USER_PERMISSION_DENIED"));
    assert!(err.message.contains("req-1"), "{}", err.message);
    assert_eq!(requests_to(&server, STREAM).await.len(), 1);
}

#[tokio::test]
async fn google_ads_invalid_grant_is_an_auth_error_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        ))
        .mount(&server)
        .await;
    let err = GoogleAds::new(&ads_settings(&server.uri())).daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_eq!(err.code.as_deref(), Some("invalid_grant"));
    assert!(err.message.contains("expired or revoked"), "{}", err.message);
    assert!(!err.message.contains("client-secret-xyz") && !err.message.contains("1//refresh-abc"));
    assert_eq!(requests_to(&server, "/token").await.len(), 1);
    assert!(requests_to(&server, STREAM).await.is_empty());
}

#[tokio::test]
async fn google_ads_a_revoked_cached_token_is_refreshed_once() {
    let server = MockServer::start().await;
    let token = |t: &str| ResponseTemplate::new(200).set_body_json(json!({"access_token": t, "expires_in": 3599}));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token("ya29.one"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/token")).respond_with(token("ya29.two")).mount(&server).await;
    let unauthenticated = json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}});
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(header("authorization", "Bearer ya29.one"))
        .respond_with(stream_ok())
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(header("authorization", "Bearer ya29.one"))
        .respond_with(ResponseTemplate::new(401).set_body_json(unauthenticated))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(header("authorization", "Bearer ya29.two"))
        .respond_with(stream_ok())
        .mount(&server)
        .await;
    let ads = GoogleAds::new(&ads_settings(&server.uri()));
    ads.daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap();
    ads.daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap();
    assert_eq!(requests_to(&server, "/token").await.len(), 2);
    assert_eq!(requests_to(&server, STREAM).await.len(), 3);
}

#[tokio::test]
async fn google_ads_malformed_json_is_a_clear_error() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!([{"results": [{"metrics": {"costMicros": "lots"}, "segments": {"date": "2026-06-01"}}]}]),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops"))
        .mount(&server)
        .await;
    let ads = GoogleAds::new(&ads_settings(&server.uri()));
    let err = ads.daily_metrics(CUSTOMER, day(1), day(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert!(err.message.contains("lots"), "{}", err.message);
    let err = ads.campaign_report(CUSTOMER, day(1), day(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert_eq!(requests_to(&server, STREAM).await.len(), 1);
    assert_eq!(requests_to(&server, SEARCH).await.len(), 1);
}

#[tokio::test]
async fn google_ads_refuses_bad_input_and_missing_settings_without_calling() {
    let server = MockServer::start().await;
    let ads = GoogleAds::new(&ads_settings(&server.uri()));
    assert_eq!(ads.daily_metrics("12345", day(1), day(1)).await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(ads.daily_metrics(CUSTOMER, day(2), day(1)).await.unwrap_err().kind, ErrorKind::Invalid);
    let unconfigured =
        GoogleAds::new(&google_ads::Settings { base_url: server.uri(), ..google_ads::Settings::default() });
    let err = unconfigured.campaign_report(CUSTOMER, day(1), day(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(err.message.contains("GOOGLE_ADS_REFRESH_TOKEN"), "{}", err.message);
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------- Google Drive

const FILES: &str = "/drive/v3/files";

fn drive_settings(base: &str) -> google_drive::Settings {
    google_drive::Settings {
        service_account_json: Some(SANDBOX_SERVICE_ACCOUNT_JSON.into()),
        base_url: base.to_string(),
        token_url: Some(format!("{base}/token")),
        rate_per_second: Some(1000.0),
        burst: Some(100),
        retry_base_ms: Some(5),
        max_wait_secs: Some(10.0),
        ..google_drive::Settings::default()
    }
}

fn drive_error(status: u16, reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"errors": [{"domain": "global", "reason": reason, "message": format!("{reason} message")}], "code": status, "message": "msg"}}))
}

fn folder(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "parents": ["p"], "webViewLink": format!("https://drive.google.com/drive/folders/{id}")})
}

const GENERATE_IDS: &str = "/drive/v3/files/generateIds";

/// Answers a create with the folder it was asked for, under the id it was given (as Drive does).
fn echo_create(req: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let name = body["name"].as_str().unwrap();
    ResponseTemplate::new(200).set_body_json(folder(body["id"].as_str().unwrap(), name))
}

/// `files.generateIds`: as many ids as asked, `g1`, `g2`, … (a counter across calls).
async fn mount_generate_ids(server: &MockServer) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1));
    Mock::given(method("GET"))
        .and(path(GENERATE_IDS))
        .respond_with(move |req: &Request| {
            let count: usize = req.url.query_pairs().find(|(k, _)| k == "count").unwrap().1.parse().unwrap();
            let first = next.fetch_add(count, std::sync::atomic::Ordering::SeqCst);
            let ids: Vec<String> = (first..first + count).map(|i| format!("g{i}")).collect();
            // The documented response: {"ids": [...], "space": "drive", "kind": "drive#generatedIds"}
            // (https://developers.google.com/workspace/drive/api/reference/rest/v3/files/generateIds).
            ResponseTemplate::new(200)
                .set_body_json(json!({"kind": "drive#generatedIds", "space": "drive", "ids": ids}))
        })
        .mount(server)
        .await;
}

fn q_of(req: &Request) -> String {
    req.url.query_pairs().find(|(k, _)| k == "q").map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[tokio::test]
async fn google_drive_creates_a_missing_client_tree_with_jwt_bearer_auth() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.sa-token").await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(FILES))
        .and(header("authorization", "Bearer ya29.sa-token"))
        .respond_with(echo_create)
        .mount(&server)
        .await;
    mount_generate_ids(&server).await;
    let settings =
        google_drive::Settings { subject: Some("ops@agency.example".into()), ..drive_settings(&server.uri()) };
    let tree = GoogleDrive::new(&settings).ensure_client_folders(r"O'Brien \ Co").await.unwrap();
    assert_eq!(tree.created, 5);
    assert_eq!(tree.root.id, "g1");
    assert_eq!(requests_to(&server, GENERATE_IDS).await.len(), 1, "one generateIds for the whole tree");
    let names: Vec<&str> = tree.children.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["01 Strategy", "02 Creatives", "03 Reports", "04 Invoices"]);
    assert!(tree.root.web_view_link.as_deref().unwrap().starts_with("https://drive.google.com/"));

    let lists: Vec<Request> =
        requests_to(&server, FILES).await.into_iter().filter(|r| r.method.as_str() == "GET").collect();
    assert_eq!(lists.len(), 1, "a new folder is not listed");
    assert_eq!(
        q_of(&lists[0]),
        format!(r"name = 'O\'Brien \\ Co' and 'root' in parents and mimeType = '{FOLDER_MIME}' and trashed = false")
    );
    let creates: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == FILES)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(creates[0], json!({"id": "g1", "name": r"O'Brien \ Co", "mimeType": FOLDER_MIME, "parents": ["root"]}));
    assert_eq!(creates[1]["parents"], json!(["g1"]));

    let token = form(&requests_to(&server, "/token").await[0]);
    assert_eq!(token["grant_type"], JWT_BEARER_GRANT);
    let claims = token["assertion"].split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["aud"], TOKEN_URL, "audience is Google's token URL, not where we post");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/drive");
    assert_eq!(claims["sub"], "ops@agency.example");
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 3600);
    assert_eq!(requests_to(&server, "/token").await.len(), 1, "one token for seven calls");
}

#[tokio::test]
async fn google_drive_existing_tree_is_read_across_pages_and_only_gaps_filled() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .and(query_param("pageToken", "next-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"files": [folder("c3", "03 Reports"), folder("x", "Old stuff")]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .and(query_param("pageSize", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"files": [folder("c1", "01 Strategy")], "nextPageToken": "next-1"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": [folder("root-1", "Acme")]})))
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(FILES)).respond_with(echo_create).mount(&server).await;
    mount_generate_ids(&server).await;
    let settings =
        google_drive::Settings { shared_drive_id: Some("0ASharedDrive".into()), ..drive_settings(&server.uri()) };
    let tree = GoogleDrive::new(&settings).ensure_client_folders("Acme").await.unwrap();
    assert_eq!(tree.root.id, "root-1");
    assert_eq!(tree.created, 2);
    let ids: Vec<&str> = tree.children.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["c1", "g1", "c3", "g2"]);
    let gets: Vec<Request> =
        requests_to(&server, FILES).await.into_iter().filter(|r| r.method.as_str() == "GET").collect();
    assert_eq!(gets.len(), 3);
    // In a Shared Drive: its root is the parent, and every list names the drive.
    assert!(q_of(&gets[0]).contains("'0ASharedDrive' in parents"), "{}", q_of(&gets[0]));
    for get in &gets {
        let params: std::collections::HashMap<String, String> = get.url.query_pairs().into_owned().collect();
        assert_eq!((params["corpora"].as_str(), params["driveId"].as_str()), ("drive", "0ASharedDrive"));
        assert_eq!(
            (params["supportsAllDrives"].as_str(), params["includeItemsFromAllDrives"].as_str()),
            ("true", "true")
        );
    }
}

#[tokio::test]
async fn google_drive_rate_limits_retry_with_and_without_retry_after() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .respond_with(drive_error(403, "userRateLimitExceeded"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .respond_with(drive_error(429, "rateLimitExceeded").insert_header("retry-after", "0.3"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": [folder("f1", "Acme")]})))
        .mount(&server)
        .await;
    let started = Instant::now();
    let found = GoogleDrive::new(&drive_settings(&server.uri())).find_folder("Acme", "root").await.unwrap();
    assert_eq!(found.unwrap().id, "f1");
    assert!(started.elapsed() >= Duration::from_millis(300), "Retry-After ignored: {:?}", started.elapsed());
    assert_eq!(requests_to(&server, FILES).await.len(), 3);
}

#[tokio::test]
async fn google_drive_backend_error_then_success() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST"))
        .and(path(FILES))
        .respond_with(drive_error(500, "backendError"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(FILES)).respond_with(echo_create).mount(&server).await;
    mount_generate_ids(&server).await;
    let folder = GoogleDrive::new(&drive_settings(&server.uri())).create_folder("Acme", "root").await.unwrap();
    assert_eq!(folder.id, "g1");
    assert_eq!(requests_to(&server, FILES).await.len(), 2);
    let create = &requests_to(&server, FILES).await[1];
    assert!(create.url.query().unwrap().contains("supportsAllDrives=true"));
}

#[tokio::test]
async fn google_drive_storage_quota_fails_at_once_pointing_at_shared_drives() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST"))
        .and(path(FILES))
        .respond_with(drive_error(403, "storageQuotaExceeded"))
        .mount(&server)
        .await;
    mount_generate_ids(&server).await;
    let err = GoogleDrive::new(&drive_settings(&server.uri())).create_folder("Acme", "root").await.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.code.as_deref(), Some("storageQuotaExceeded"));
    assert!(
        err.message.contains("Shared Drive") && err.message.contains("GOOGLE_DRIVE_SHARED_DRIVE_ID"),
        "{}",
        err.message
    );
    assert_eq!(requests_to(&server, FILES).await.len(), 1);
}

#[tokio::test]
async fn google_drive_auth_failures_are_not_retried() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("GET")).and(path(FILES)).respond_with(drive_error(401, "authError")).mount(&server).await;
    let err = GoogleDrive::new(&drive_settings(&server.uri())).find_folder("Acme", "root").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    // The token was fresh, so a 401 is not worth a refresh.
    assert_eq!(requests_to(&server, FILES).await.len(), 1);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})),
        )
        .mount(&server)
        .await;
    let err = GoogleDrive::new(&drive_settings(&server.uri())).ensure_client_folders("Acme").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("invalid_grant")));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn google_drive_not_found_and_malformed_answers() {
    let server = MockServer::start().await;
    mount_token(&server, "ya29.t").await;
    Mock::given(method("POST")).and(path(FILES)).respond_with(drive_error(404, "notFound")).mount(&server).await;
    mount_generate_ids(&server).await;
    Mock::given(method("GET"))
        .and(path(FILES))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": "nope"})))
        .mount(&server)
        .await;
    let drive = GoogleDrive::new(&drive_settings(&server.uri()));
    let err = drive.create_folder("Acme", "missing-parent").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = drive.list_folders("root").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert_eq!(requests_to(&server, FILES).await.len(), 2);
}

// ---------------------------------------------------------------- simulator

async fn simulator() -> (sim::Running, String) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let base = running.base_url.clone();
    (running, base)
}

fn sim_ads(base: &str) -> GoogleAds {
    let settings = google_ads::Settings {
        retry_base_ms: Some(5),
        account_rate_per_second: Some(100.0),
        ..google_ads::Settings::default()
    };
    GoogleAds::new(&settings.sandboxed(&format!("{base}{}", google_ads::INFO.sim_prefix)))
}

fn sim_drive(base: &str) -> GoogleDrive {
    let settings =
        google_drive::Settings { retry_base_ms: Some(20), max_attempts: Some(12), ..google_drive::Settings::default() };
    GoogleDrive::new(&settings.sandboxed(&format!("{base}{}", google_drive::INFO.sim_prefix)))
}

#[tokio::test]
async fn google_sim_ads_metrics_and_paged_campaign_report_agree() {
    let (sim, base) = simulator().await;
    let ads = sim_ads(&base);
    let (from, to) = (day(1), day(30));
    let days = ads.daily_metrics("123-456-7890", from, to).await.unwrap();
    assert_eq!(days, ads.daily_metrics(CUSTOMER, from, to).await.unwrap(), "deterministic");
    assert!(days.len() >= 20 && days.len() <= 30, "{}", days.len());
    assert!(days.iter().all(|d| d.spend > 0.0 && d.impressions > 0 && d.currency.len() == 3));
    let rows = ads.campaign_report(CUSTOMER, from, to).await.unwrap();
    assert!(rows.len() > sim::google_ads::SEARCH_PAGE_SIZE * 2, "needs several pages: {}", rows.len());
    for d in &days {
        let spend: f64 = rows.iter().filter(|r| r.date == d.date).map(|r| r.spend).sum();
        assert!((spend - d.spend).abs() < 0.01, "{}: campaigns {spend} vs account {}", d.date, d.spend);
    }
    assert!(rows.iter().all(|r| r.status == "ENABLED" && !r.campaign_name.is_empty()));
    let stats = sim.state.stats().platforms["google_ads"].clone();
    // 1 token + 2 streams + ceil(rows / page) searches.
    let pages = rows.len().div_ceil(sim::google_ads::SEARCH_PAGE_SIZE) as u64;
    assert_eq!(stats.calls, 1 + 2 + pages);
    assert_eq!(sim.state.vendor::<switchboard::sim::google_ads::State>().tokens_issued(), 1);
    assert!(stats.created.is_empty());
}

#[tokio::test]
async fn google_sim_ads_errors_are_the_real_ones() {
    let (sim, base) = simulator().await;
    let prefix = format!("{base}{}", google_ads::INFO.sim_prefix);
    let settings =
        google_ads::Settings { retry_base_ms: Some(5), ..google_ads::Settings::default() }.sandboxed(&prefix);
    let err = sim_ads(&base).daily_metrics("000-000-0000", day(1), day(2)).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("authorizationError.USER_PERMISSION_DENIED")));
    let bad = GoogleAds::new(&google_ads::Settings { refresh_token: Some("bad".into()), ..settings.clone() });
    let err = bad.daily_metrics(CUSTOMER, day(1), day(2)).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("invalid_grant")));

    // Throttled: the simulator's 429 says "retry in 1s", which the connector honours.
    sim.state.configure("google_ads", Behaviour { rate_per_second: Some(1.0), ..Behaviour::default() });
    let ads = sim_ads(&base);
    let started = Instant::now();
    ads.daily_metrics(CUSTOMER, day(1), day(2)).await.unwrap();
    assert!(sim.state.stats().platforms["google_ads"].throttled >= 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());

    // Faults: every answer a 500 INTERNAL, retried until attempts run out.
    sim.state.configure("google_ads", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let err = ads.daily_metrics(CUSTOMER, day(1), day(2)).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Unavailable, Some("internalError.INTERNAL_ERROR")));
}

#[tokio::test]
async fn google_sim_drive_client_tree_is_created_once() {
    let (sim, base) = simulator().await;
    let drive = sim_drive(&base);
    let name = r"O'Brien \ Partners";
    let first = drive.ensure_client_folders(name).await.unwrap();
    assert_eq!(first.created, 5);
    let second = drive.ensure_client_folders(name).await.unwrap();
    assert_eq!(second.created, 0);
    assert_eq!(first.root, second.root);
    assert_eq!(first.children, second.children);
    assert_eq!(sim.state.stats().platforms["google_drive"].created["folders"], 5);
    // A similar name is a different client; the escaped quote did not match loosely.
    let parent = drive.parent_folder_id();
    assert_eq!(parent, sim::google_drive::SANDBOX_SHARED_DRIVE_ID, "the sandbox's folders go in its Shared Drive");
    assert!(drive.find_folder("O'Brien", parent).await.unwrap().is_none());
    assert_eq!(drive.find_folder(name, parent).await.unwrap().unwrap().id, first.root.id);
    assert_eq!(drive.list_folders(&first.root.id).await.unwrap().len(), 4);
    // The raw create does what Drive does: a second folder of the same name.
    drive.create_folder("Loose", &first.root.id).await.unwrap();
    drive.create_folder("Loose", &first.root.id).await.unwrap();
    assert_eq!(sim.state.stats().platforms["google_drive"].created["folders"], 7);
    assert_eq!(drive.ensure_client_folders(name).await.unwrap().created, 0);
    assert_eq!(sim.state.vendor::<switchboard::sim::google_drive::State>().tokens_issued(), 1);
}

#[tokio::test]
async fn google_sim_drive_survives_throttling_and_faults() {
    let (sim, base) = simulator().await;
    sim.state.configure("google_drive", Behaviour { rate_per_second: Some(3.0), ..Behaviour::default() });
    let drive = sim_drive(&base);
    let tree = drive.ensure_client_folders("Acme").await.unwrap();
    assert_eq!(tree.created, 5);
    let stats = sim.state.stats().platforms["google_drive"].clone();
    assert!(stats.throttled >= 1, "{stats:?}");
    assert_eq!(stats.created["folders"], 5, "a throttled create is not a create");

    let drive = GoogleDrive::new(
        &google_drive::Settings { retry_base_ms: Some(5), max_attempts: Some(2), ..google_drive::Settings::default() }
            .sandboxed(&format!("{base}{}", google_drive::INFO.sim_prefix)),
    );
    sim.state.configure("google_drive", Behaviour::default());
    assert!(drive.find_folder("Acme", drive.parent_folder_id()).await.unwrap().is_some());
    sim.state.configure("google_drive", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let err = drive.find_folder("Acme", drive.parent_folder_id()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Unavailable, Some("backendError")));
}
