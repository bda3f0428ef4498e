//! Tests of the shared HTTP layer (limits, retries, pauses) against wiremock.

use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use super::*;

struct Plain;
impl Dialect for Plain {}

fn fast() -> HttpSettings {
    HttpSettings {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..HttpSettings::new(1000.0, 100)
    }
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).up_to_n_times(2).mount(&server).await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_string("{}")).mount(&server).await;
    let http = PlatformHttp::new("test", fast(), Arc::new(Plain), vec![]);
    let reply = http.send(Call::new("x"), |c| c.get(server.uri())).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn client_errors_fail_at_once_and_secrets_are_masked() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad token sekret-123"))
        .mount(&server)
        .await;
    let http = PlatformHttp::new("test", fast(), Arc::new(Plain), vec!["sekret-123".into()]);
    let err = http.send(Call::new("x"), |c| c.get(server.uri())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(!err.retryable);
    assert!(!err.message.contains("sekret-123"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn honours_retry_after_and_caps_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0.05"))
        .mount(&server)
        .await;
    let http = PlatformHttp::new("test", HttpSettings { max_attempts: 3, ..fast() }, Arc::new(Plain), vec![]);
    let started = Instant::now();
    let err = http.send(Call::new("x"), |c| c.get(server.uri())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(100), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn limiter_spaces_calls() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let http = Arc::new(PlatformHttp::new("test", HttpSettings::new(50.0, 1), Arc::new(Plain), vec![]));
    let started = Instant::now();
    let calls = (0..11).map(|_| {
        let http = http.clone();
        let uri = server.uri();
        tokio::spawn(async move { http.send(Call::new("x"), |c| c.get(&uri)).await.unwrap() })
    });
    for call in calls {
        call.await.unwrap();
    }
    // 11 calls at 50/s with burst 1 need at least 10 intervals of 20 ms.
    assert!(started.elapsed() >= Duration::from_millis(190), "took {:?}", started.elapsed());
}

/// Reads a pause from `x-pause` (seconds), as Meta's usage headers or ClickUp's reset do.
struct Pausing;
impl Dialect for Pausing {
    fn pause_for(&self, headers: &HeaderMap) -> Option<Duration> {
        let secs: f64 = headers.get("x-pause")?.to_str().ok()?.parse().ok()?;
        Some(Duration::from_secs_f64(secs))
    }
}

#[tokio::test]
async fn a_long_asked_wait_fails_at_once_and_holds_the_account() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    let http = PlatformHttp::new("test", fast(), Arc::new(Plain), vec![]);
    let started = Instant::now();
    let err = http.send(Call::new("x").account("a1"), |c| c.get(server.uri())).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "slept {:?}", started.elapsed());
    assert_eq!((err.kind, err.retryable, err.deferred), (ErrorKind::Throttled, true, true));
    assert_eq!(err.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "never retried unchanged");
    // The pause is recorded: the next call for the account is not sent at all.
    let again = http.send(Call::new("x").account("a1"), |c| c.get(server.uri())).await.unwrap_err();
    assert!(again.deferred && again.retry_after.unwrap() > Duration::from_secs(100), "{again:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(http.status().paused_accounts["a1"] > 100);
    // Another account is not held.
    http.send(Call::new("x").account("a2"), |c| c.get(server.uri())).await.unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_usage_pause_within_the_cap_is_slept_through_and_a_longer_one_defers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).insert_header("x-pause", "0.2"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).insert_header("x-pause", "60"))
        .mount(&server)
        .await;
    let http = PlatformHttp::new("test", fast(), Arc::new(Pausing), vec![]);
    http.send(Call::new("x").account("a"), |c| c.get(server.uri())).await.unwrap();
    let started = Instant::now();
    http.send(Call::new("x").account("a"), |c| c.get(server.uri())).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150), "short pause not honoured: {:?}", started.elapsed());
    let err = http.send(Call::new("x").account("a"), |c| c.get(server.uri())).await.unwrap_err();
    assert!(err.deferred && err.retry_after.unwrap() > Duration::from_secs(50), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // A larger cap sleeps through what the default cap defers.
    let patient = HttpSettings::new(1000.0, 100).max_pause_secs(Some(120.0));
    assert_eq!(patient.max_pause, Duration::from_secs(120));
    assert_eq!(HttpSettings::new(1.0, 1).max_pause_secs(Some(-1.0)).max_pause, DEFAULT_MAX_PAUSE);
}

#[tokio::test]
async fn a_throttle_that_runs_out_of_attempts_still_records_its_pause() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
        .mount(&server)
        .await;
    let http = PlatformHttp::new("test", HttpSettings { max_attempts: 1, ..fast() }, Arc::new(Plain), vec![]);
    let err = http.send(Call::new("x").account("a"), |c| c.get(server.uri())).await.unwrap_err();
    assert_eq!((err.kind, err.deferred), (ErrorKind::Throttled, false));
    assert!(http.status().paused_accounts.contains_key("a"), "{:?}", http.status().paused_accounts);
}

#[test]
fn overrides_replace_only_what_is_set_and_sane() {
    let base = HttpSettings::new(10.0, 10).per_account(2.0);
    let none = Overrides {
        rate_per_second: None,
        burst: Some(0),
        account_rate_per_second: Some(-1.0),
        max_attempts: None,
        retry_base_ms: None,
        max_wait_secs: None,
    };
    let kept = none.apply(base.clone());
    assert_eq!((kept.rate_per_second, kept.burst, kept.account_rate_per_second), (10.0, 10, Some(2.0)));
    let set = Overrides {
        rate_per_second: Some(200.0),
        burst: None,
        account_rate_per_second: None,
        max_attempts: Some(2),
        retry_base_ms: Some(60_000),
        max_wait_secs: Some(5.0),
    };
    let s = set.apply(base);
    assert_eq!((s.rate_per_second, s.max_attempts, s.max_total), (200.0, 2, Duration::from_secs(5)));
    assert_eq!(s.base_backoff, Duration::from_secs(60));
    assert!(s.max_backoff >= s.base_backoff, "the cap never undercuts the first backoff");
}

#[test]
fn backoff_respects_the_platforms_wait() {
    let http = PlatformHttp::new("test", fast(), Arc::new(Plain), vec![]);
    for attempt in 1..6 {
        assert!(http.backoff(attempt, None) <= Duration::from_millis(20));
        assert!(http.backoff(attempt, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}
