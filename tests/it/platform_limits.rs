//! The shared limiter keeps a platform under its rate: many concurrent calls never
//! draw the platform's throttling error (measured with the simulator's stats).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::json;
use switchboard::{
    platforms::{
        ErrorKind,
        clickup::{ClickUp, ListLocation, Settings},
        google_ads::{self, GoogleAds},
    },
    sim::Behaviour,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, path_regex},
};

async fn simulator(rate_per_second: f64) -> switchboard::sim::Running {
    let state = switchboard::platforms::simulator(Behaviour::default());
    state.configure("clickup", Behaviour { rate_per_second: Some(rate_per_second), ..Behaviour::default() });
    switchboard::sim::spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap()
}

fn clickup(sim: &switchboard::sim::Running, rate: f64, burst: u32) -> ClickUp {
    let settings = Settings { rate_per_second: Some(rate), burst: Some(burst), ..Settings::default() }
        .sandboxed(&format!("{}/clickup", sim.base_url));
    let mut http = settings.http_settings();
    http.max_attempts = 1; // a throttled call must show up as an error, not be retried away
    ClickUp::with_http(&settings, http)
}

async fn fire(client: &ClickUp, n: usize) -> usize {
    let location = ListLocation::Space("90120000001".into());
    let calls = (0..n).map(|_| client.lists(&location));
    futures::future::join_all(calls).await.into_iter().filter(|r| r.is_err()).count()
}

#[tokio::test]
async fn concurrent_calls_stay_under_the_platform_limit() {
    // The platform allows 20/s (burst 20); we are configured for 15/s, burst 1.
    let sim = simulator(20.0).await;
    let client = clickup(&sim, 15.0, 1);
    let started = Instant::now();
    let failed = fire(&client, 45).await;
    let elapsed = started.elapsed();
    let stats = sim.state.stats().platforms["clickup"].clone();
    assert_eq!(failed, 0);
    assert_eq!(stats.calls, 45);
    assert_eq!(stats.throttled, 0, "the limiter let calls through faster than the platform allows");
    // 45 calls at 15/s with burst 1 take at least 44 intervals of 1/15 s.
    assert!(elapsed >= Duration::from_millis(2800), "{elapsed:?}: faster than the configured rate");
}

#[tokio::test]
async fn without_a_matching_limit_the_platform_throttles() {
    // The control: a limiter far above the platform's rate draws its throttling error.
    let sim = simulator(20.0).await;
    let client = clickup(&sim, 1000.0, 1000);
    let failed = fire(&client, 45).await;
    let stats = sim.state.stats().platforms["clickup"].clone();
    assert!(stats.throttled > 0 && failed > 0, "{stats:?}");
}

/// Google's quota error with a `retryDelay` of hours (QuotaErrorDetails.retry_delay,
/// developers.google.com/google-ads/api/reference/rpc/latest/QuotaErrorDetails): the call
/// fails at once, and the pause is recorded for the customer so the next call does not
/// spend the exhausted quota again.
#[tokio::test]
async fn google_ads_fast_failed_quota_records_the_pause() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "ya29.t", "expires_in": 3599, "token_type": "Bearer"})),
        )
        .mount(&server)
        .await;
    let failure = json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.ads.googleads.v23.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests. Retry in 8962 seconds.",
                "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER", "rateName": "Number of operations for basic access", "retryDelay": "8962s"}}}],
            "requestId": "req-1"}]}});
    Mock::given(method("POST"))
        .and(path_regex(r"/customers/1234567890/googleAds:searchStream$"))
        .respond_with(ResponseTemplate::new(429).set_body_json(failure))
        .mount(&server)
        .await;
    let base = server.uri();
    let settings = google_ads::Settings {
        developer_token: Some("devtoken-123".into()),
        client_id: Some("client.apps.googleusercontent.com".into()),
        client_secret: Some("client-secret-xyz".into()),
        refresh_token: Some("1//refresh-abc".into()),
        base_url: base.clone(),
        token_url: format!("{base}/token"),
        rate_per_second: Some(1000.0),
        account_rate_per_second: Some(1000.0),
        retry_base_ms: Some(5),
        ..google_ads::Settings::default()
    };
    let ads = GoogleAds::new(&settings);
    let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let err = ads.daily_metrics("1234567890", day, day).await.unwrap_err();
    assert_eq!(
        (err.kind, err.deferred, err.retry_after),
        (ErrorKind::Throttled, true, Some(Duration::from_secs(8962)))
    );
    let stream_calls = || async {
        server.received_requests().await.unwrap().iter().filter(|r| r.url.path().ends_with(":searchStream")).count()
    };
    assert_eq!(stream_calls().await, 1);
    assert!(ads.http().status().paused_accounts.values().any(|secs| *secs > 8900), "{:?}", ads.http().status());
    let again = ads.daily_metrics("1234567890", day, day).await.unwrap_err();
    assert!(again.deferred && again.retry_after.unwrap() > Duration::from_secs(8900), "{again:?}");
    assert_eq!(stream_calls().await, 1, "the exhausted quota is not asked again");
}
