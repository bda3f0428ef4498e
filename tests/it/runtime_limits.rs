//! Runtime limits (issue #10): bounded metric labels, the optional `/metrics`
//! token, and the database statement timeout.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use sqlx::PgPool;

use crate::support::{TestApp, test_config};

fn series(text: &str, metric: &str) -> usize {
    text.lines().filter(|l| l.starts_with(&format!("{metric}{{"))).count()
}

#[sqlx::test]
async fn custom_methods_and_unknown_paths_add_no_metric_series(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // One of each shape first, so the fixed `other` / `unmatched` series exist.
    app.request(Method::from_bytes(b"WARMUP").unwrap(), "/v1/clients").token(&app.admin).send().await;
    app.request(Method::from_bytes(b"WARMUP").unwrap(), "/no/such/path").token(&app.admin).send().await;
    let before = app.state.metrics.render();

    for i in 0..50 {
        let method = Method::from_bytes(format!("X-{:08x}-{i}", rand::random::<u32>()).as_bytes()).unwrap();
        let res = app.request(method.clone(), "/v1/clients").token(&app.admin).send().await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
        app.request(method, &format!("/random/{i}/{:x}", rand::random::<u64>()))
            .token(&app.admin)
            .send()
            .await
            .problem(404, "not_found");
    }

    let after = app.state.metrics.render();
    for metric in ["http_requests_total", "http_request_duration_seconds_count"] {
        assert_eq!(series(&after, metric), series(&before, metric), "{metric} gained series:\n{after}");
    }
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(after.contains("route=\"unmatched\""), "{after}");
    assert!(!after.contains("X-"), "a custom method became a label:\n{after}");
}

#[sqlx::test]
async fn metrics_need_the_metrics_token_when_one_is_set(pool: PgPool) {
    let token = "metrics-token-for-prometheus-0123456789";
    let app =
        TestApp::with_config(pool, switchboard::config::Config { metrics_token: Some(token.into()), ..test_config() })
            .await;
    app.request(Method::GET, "/metrics").send().await.problem(401, "invalid_metrics_token");
    let wrong = app.request(Method::GET, "/metrics").token("metrics-token-for-prometheus-012345678X").send().await;
    let body = wrong.problem(401, "invalid_metrics_token");
    assert!(!body.to_string().contains(token));
    // An API token (even admin) is not the metrics token.
    app.request(Method::GET, "/metrics").token(&app.admin).send().await.problem(401, "invalid_metrics_token");

    let res = app.request(Method::GET, "/metrics").token(token).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.text().contains("http_requests_total"));
}

#[sqlx::test]
async fn metrics_are_open_without_the_setting(pool: PgPool) {
    let app = TestApp::new(pool).await;
    assert_eq!(app.request(Method::GET, "/metrics").send().await.status, StatusCode::OK);
}

#[sqlx::test]
async fn a_statement_past_the_timeout_is_a_503_database_timeout(pool: PgPool) {
    let limit = Duration::from_millis(300);
    let limited = switchboard::store::connect_with((*pool.connect_options()).clone(), 5, Some(limit)).await.unwrap();
    let app = TestApp::with_config(limited, test_config()).await;
    app.create_client(serde_json::json!({"name": "Locked Out"})).await;

    // Another session holds the table: the list query waits for the lock until the timeout.
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE knowledge.clients IN ACCESS EXCLUSIVE MODE").execute(&mut *locker).await.unwrap();
    let started = Instant::now();
    let res = app.get("/v1/clients").send().await;
    let waited = started.elapsed();
    res.problem(503, "database_timeout");
    assert_eq!(res.header("retry-after"), Some("2"));
    assert!(waited >= limit && waited < Duration::from_secs(3), "answered after {waited:?}");

    // Once the lock is gone the same request works.
    locker.rollback().await.unwrap();
    let res = app.get("/v1/clients").send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["data"].as_array().map(Vec::len), Some(1), "{}", res.text());
}
