//! Limits shared by every process on one database (issue #9, decision 0022): two sets of
//! platform clients, two API states or two lease holders on one database act as one.

use std::{sync::Arc, time::Duration};

use axum::http::StatusCode;
use chrono::Utc;
use sqlx::PgPool;
use switchboard::{
    domain::limits::{LimitStore, Rule},
    limits::Leased,
    platforms::{
        Mode, Platforms,
        http::{Call, Dialect, HttpSettings, PlatformHttp},
    },
    sim::{self, Behaviour},
    store::limits::PgLimits,
};
use tokio::time::Instant;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::support::{TestApp, test_config};

fn db_limits(pool: &PgPool) -> Arc<dyn LimitStore> {
    Arc::new(PgLimits::new(pool.clone()))
}

/// Sends `n` WhatsApp texts through `platforms`, 6 at a time; returns how many succeeded.
async fn send_texts(platforms: Arc<Platforms>, n: usize, tag: &'static str) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..6 {
        let platforms = platforms.clone();
        tasks.spawn(async move {
            let mut ok = 0;
            for i in (lane..n).step_by(6) {
                let to = format!("+55119888{:05}", i);
                ok += platforms.whatsapp.send_text(&to, &format!("{tag} {i}")).await.is_ok() as usize;
            }
            ok
        });
    }
    tasks.join_all().await.into_iter().sum()
}

/// The vendor (the simulator, at 40 requests/s) counts per app, not per process: two processes
/// each limited to 40/s on their own get throttled; sharing the limit through the database,
/// they never are.
#[sqlx::test]
async fn two_processes_together_never_pass_the_vendors_rate(pool: PgPool) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let rate = 40.0;
    running.state.configure("whatsapp", Behaviour { rate_per_second: Some(rate), ..Behaviour::default() });
    let n = 100;
    for i in 0..n {
        running.state.vendor::<sim::whatsapp::State>().open_window(&format!("+55119888{:05}", i), Utc::now());
    }
    let mut settings = test_config().platforms.sandboxed(&running.base_url);
    settings.whatsapp.rate_per_second = Some(rate);
    settings.whatsapp.burst = Some(rate as u32);
    settings.whatsapp.retry_base_ms = Some(1);
    let process = |limits: Option<Arc<dyn LimitStore>>| {
        Arc::new(match limits {
            Some(limits) => Platforms::sharing(Mode::Sandbox, settings.clone(), Arc::default(), limits),
            None => Platforms::new(Mode::Sandbox, settings.clone(), Arc::default()),
        })
    };

    // Each on its own: together twice the vendor's rate.
    let (a, b) = (process(None), process(None));
    tokio::join!(send_texts(a, n / 2, "alone"), send_texts(b, n / 2, "alone"));
    let throttled_alone = running.state.stats().platforms["whatsapp"].throttled;
    assert!(throttled_alone > 0, "the simulator must throttle two unshared limiters (else this test proves nothing)");

    // Sharing through the database.
    tokio::time::sleep(Duration::from_secs(2)).await; // the vendor's bucket refills
    let before = running.state.stats().platforms["whatsapp"].clone();
    let (a, b) = (process(Some(db_limits(&pool))), process(Some(db_limits(&pool))));
    let started = Instant::now();
    let (sent_a, sent_b) = tokio::join!(send_texts(a, n / 2, "shared"), send_texts(b, n / 2, "shared"));
    let took = started.elapsed();
    let after = running.state.stats().platforms["whatsapp"].clone();
    assert_eq!(after.throttled - before.throttled, 0, "throttled while sharing the limit");
    assert_eq!((sent_a, sent_b), (n / 2, n / 2));
    assert_eq!(after.calls - before.calls, n as u64, "one call per message, no retries");
    // 100 calls at 40/s after a burst of at most 40: at least 1.5 s.
    assert!(took >= Duration::from_secs_f64(1.45), "{n} calls in {took:?}");
}

/// The default reading of a platform's answers.
struct Plain;
impl Dialect for Plain {}

fn fast() -> HttpSettings {
    HttpSettings { max_attempts: 2, base_backoff: Duration::from_millis(1), ..HttpSettings::new(100.0, 10) }
}

/// A pause a vendor asked one process for (a throttle with a long `Retry-After`) holds for
/// the other: it defers its call for the same account without sending it.
#[sqlx::test]
async fn a_pause_written_by_one_process_is_honoured_by_the_other(pool: PgPool) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(&server)
        .await;
    let process = || {
        let mut http = PlatformHttp::new("vendor", fast(), Arc::new(Plain), vec![]);
        http.share_limits(&db_limits(&pool));
        http
    };
    let (a, b) = (process(), process());
    let url = format!("{}/thing", server.uri());
    let call = Call::new("thing").account("acct_1");
    let first = a.send(call, |c| c.get(&url)).await.unwrap_err();
    assert!(first.deferred, "{first:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    let second = b.send(call, |c| c.get(&url)).await.unwrap_err();
    assert!(second.deferred, "{second:?}");
    let left = second.retry_after.unwrap();
    // The pause ends at the database's clock + 30 s and is read against this process's clock:
    // the two may differ by a few milliseconds, so up to a second over 30 s is the same pause.
    assert!(left > Duration::from_secs(25) && left <= Duration::from_secs(31), "{left:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "the other process called a paused account");
    assert!(b.status().paused_accounts.contains_key("acct_1"));
    // Another account is not paused.
    let other = b.send(Call::new("thing").account("acct_2"), |c| c.get(&url)).await.unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "{other:?}");
}

/// A process that dies holding leases costs the others at most what it held: its tokens are
/// spent, never handed out again, and the next holder waits no longer than their worth of the rate.
#[sqlx::test]
async fn a_dead_holders_leases_cost_at_most_what_they_held(pool: PgPool) {
    let rule = Rule::leased(100.0, 20);
    let lease = rule.lease_max();
    assert_eq!(lease, 10);
    // The holder takes two full leases (its current and its next) and dies.
    let store = db_limits(&pool);
    for _ in 0..2 {
        let grant = store.take("vendor", rule, lease, None).await.unwrap();
        assert_eq!(grant.granted, lease);
    }
    drop(store);
    // Another process's next token comes within one lease of the rate, not later.
    let other = Leased::new("vendor", rule, db_limits(&pool));
    let started = Instant::now();
    other.until_ready().await.unwrap();
    let waited = started.elapsed();
    let one_lease = Duration::from_secs_f64(lease as f64 * rule.spacing());
    assert!(waited >= Duration::from_millis(80), "the dead holder's tokens were handed out again ({waited:?})");
    assert!(waited <= 2 * one_lease + Duration::from_millis(150), "{waited:?}");
    // The row holds no more than what was granted: tat is at most 30 tokens ahead of the start.
    let ahead: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM tat - clock_timestamp())::float8 FROM engine.rate_limits WHERE key = 'vendor'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(ahead <= 3.0 * lease as f64 * rule.spacing(), "{ahead}");
}

/// Two API replicas (two states on one database) count one quota per token: a burst split
/// across both ends in 429 at the shared bound, with the headers counting down across both.
#[sqlx::test]
async fn the_api_token_limit_is_one_quota_across_two_replicas(pool: PgPool) {
    let config = || switchboard::config::Config { rate_limit_per_minute: 60, rate_limit_burst: 4, ..test_config() };
    let a = TestApp::with_config(pool.clone(), config()).await;
    let b = TestApp::with_config(pool.clone(), config()).await;
    let token = a.token(&["clients:read"]).await;
    let mut remaining = vec![];
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let res = app.request(axum::http::Method::GET, "/v1/clients").token(&token).send().await;
        assert_eq!(res.status, StatusCode::OK, "request {i}: {}", res.text());
        remaining.push(res.headers["ratelimit-remaining"].to_str().unwrap().to_string());
    }
    assert_eq!(remaining, ["3", "2", "1", "0"]);
    for app in [&b, &a] {
        let res = app.request(axum::http::Method::GET, "/v1/clients").token(&token).send().await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers["retry-after"], "1");
        assert_eq!(res.headers["ratelimit-limit"], "4");
    }
}
