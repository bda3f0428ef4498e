//! Run callbacks (`callback_url`): outbox rows written when a run ends, sent by the
//! delivery workers through the SSRF-guarded client, signed, retried, never
//! redirected, and kept across restarts.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use switchboard::{
    config::Config,
    events::{delivery::DeliverySettings, signing},
    store::runs::{self, NewRun, RunRow},
};
use uuid::Uuid;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    support::{TestApp, test_config},
    webhooks::{RunningDeliverer, fast, local_app, signed, wait_for},
};

/// A dry run over no clients: it ends as it is created, so its callback is queued at once.
async fn finished_run(pool: &PgPool, callback_url: &str) -> RunRow {
    let mut conn = pool.acquire().await.unwrap();
    let params = json!({});
    runs::create(
        &mut conn,
        &NewRun {
            workflow: "daily-monitoring",
            workflow_version: 1,
            trigger: runs::RunTrigger::Api,
            params: &params,
            dry_run: true,
            callback_url: Some(callback_url),
            schedule_id: None,
            created_by: None,
            client_ids: Some(&[]),
            max_attempts: 1,
        },
    )
    .await
    .unwrap()
}

fn with_secret(settings: DeliverySettings, secret: Option<&str>) -> DeliverySettings {
    DeliverySettings { callback_secret: secret.map(|s| s.to_string().into()), ..settings }
}

async fn callback_row(pool: &PgPool, run: Uuid) -> (String, Option<i32>, Option<String>) {
    sqlx::query_as("SELECT status, last_status, last_error FROM engine.run_callbacks WHERE run_id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn callbacks_are_signed_and_retried_under_one_message_id(pool: PgPool) {
    let secret = signing::new_secret();
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).with_priority(2).mount(&server).await;
    let run = finished_run(&pool, &format!("{}/callback", server.uri())).await;
    let worker = RunningDeliverer::start(&pool, with_secret(fast(3, Duration::from_millis(10)), Some(&secret)));
    wait_for(&app, "SELECT count(*) FROM engine.run_callbacks WHERE status = 'succeeded'", 1, Duration::from_secs(10))
        .await;
    worker.stop().await;
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 2);
    let (first_id, first) = signed(&received[0], &secret);
    let (second_id, second) = signed(&received[1], &secret);
    assert_eq!((&first["id"], &first["status"]), (&json!(run.id.to_string()), &json!("succeeded")));
    assert_eq!(first_id, second_id, "one message id across retries");
    assert_eq!(first, second);

    // Without CALLBACK_SECRET: the same headers, no signature.
    server.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    finished_run(&pool, &format!("{}/callback", server.uri())).await;
    let worker = RunningDeliverer::start(&pool, with_secret(fast(1, Duration::ZERO), None));
    wait_for(&app, "SELECT count(*) FROM engine.run_callbacks WHERE status = 'succeeded'", 2, Duration::from_secs(10))
        .await;
    worker.stop().await;
    let received = server.received_requests().await.unwrap();
    assert!(received[0].headers.get("webhook-id").is_some() && received[0].headers.get("webhook-timestamp").is_some());
    assert!(received[0].headers.get("webhook-signature").is_none());
}

#[sqlx::test]
async fn a_callback_redirect_is_not_followed(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let inside = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&inside).await;
    let outside = MockServer::start().await;
    let target = format!("{}/internal-admin", inside.uri());
    Mock::given(method("POST"))
        .and(path("/callback"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", target.as_str()))
        .mount(&outside)
        .await;
    let run = finished_run(&pool, &format!("{}/callback", outside.uri())).await;
    let worker = RunningDeliverer::start(&pool, fast(1, Duration::ZERO));
    wait_for(&app, "SELECT count(*) FROM engine.run_callbacks WHERE status = 'failed'", 1, Duration::from_secs(10))
        .await;
    worker.stop().await;
    assert_eq!(outside.received_requests().await.unwrap().len(), 1);
    assert!(inside.received_requests().await.unwrap().is_empty(), "the redirect was followed");
    assert_eq!(callback_row(&pool, run.id).await.1, Some(307));
}

#[sqlx::test]
async fn the_callback_guard_runs_again_at_delivery_time(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    // Accepted when the run was created; by delivery time the policy (or the name's
    // DNS answer) no longer allows the address: nothing is sent.
    let run = finished_run(&pool, &format!("{}/callback", server.uri())).await;
    let mut settings = fast(1, Duration::ZERO);
    settings.policy.allow_private = false;
    let worker = RunningDeliverer::start(&pool, settings);
    wait_for(&app, "SELECT count(*) FROM engine.run_callbacks WHERE status = 'failed'", 1, Duration::from_secs(10))
        .await;
    worker.stop().await;
    let (_, status, error) = callback_row(&pool, run.id).await;
    assert_eq!(status, None);
    let error = error.unwrap();
    assert!(error.starts_with("blocked: url must not point at an internal"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[sqlx::test]
async fn a_callback_waits_in_the_outbox_until_a_worker_runs(pool: PgPool) {
    let app = TestApp::with_config(
        pool.clone(),
        Config { webhook_allow_http: true, webhook_allow_private: true, ..test_config() },
    )
    .await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    // The run ends while no delivery worker runs (a restart, say): the callback is a row.
    let run = finished_run(&pool, &format!("{}/callback", server.uri())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.received_requests().await.unwrap().is_empty());
    assert_eq!(callback_row(&pool, run.id).await.0, "pending");
    let worker = RunningDeliverer::start(&pool, fast(1, Duration::ZERO));
    wait_for(&app, "SELECT count(*) FROM engine.run_callbacks WHERE status = 'succeeded'", 1, Duration::from_secs(10))
        .await;
    worker.stop().await;
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!((&body["id"], &body["status"]), (&json!(run.id.to_string()), &json!("succeeded")));
}
