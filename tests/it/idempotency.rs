//! `Idempotency-Key` on POST: replays, mismatches, per-token keys, races, what is
//! and is not stored, expiry and takeover of a dead request's key.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, TestResponse};

const KEYS: &str = "SELECT count(*) FROM engine.idempotency_keys";

async fn create(app: &TestApp, token: &str, key: &str, body: Value) -> TestResponse {
    app.request(Method::POST, "/v1/clients").token(token).header("idempotency-key", key).json(&body).send().await
}

async fn clients(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM knowledge.clients").await
}

#[sqlx::test]
async fn same_key_and_body_replays_the_first_response(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = json!({"name": "Acme Coffee", "industry": "food"});
    let first = create(&app, &app.admin, "key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);

    let again = create(&app, &app.admin, "key-1", body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("location"), first.header("location"));
    assert!(again.header("location").is_some());
    assert_eq!(clients(&app).await, 1);

    // A third time, still the same client.
    let third = create(&app, &app.admin, "key-1", body).await;
    assert_eq!(third.json()["id"], first.json()["id"]);
    assert_eq!(clients(&app).await, 1);
}

#[sqlx::test]
async fn same_key_with_another_body_is_422(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = create(&app, &app.admin, "key-2", json!({"name": "First Body"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let res = create(&app, &app.admin, "key-2", json!({"name": "Second Body"})).await;
    res.problem(422, "idempotency_key_reused");
    assert_eq!(res.error_fields(), vec!["Idempotency-Key"]);
    assert_eq!(clients(&app).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients WHERE name = 'Second Body'").await, 0);
    // The same key on another path is another request too.
    let res = app
        .post("/v1/tokens", json!({"name": "t", "scopes": ["clients:read"]}))
        .header("idempotency-key", "key-2")
        .send()
        .await;
    res.problem(422, "idempotency_key_reused");
}

#[sqlx::test]
async fn keys_are_per_token(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let a = app.token(&["clients:write"]).await;
    let b = app.token(&["clients:write"]).await;
    let res_a = create(&app, &a, "shared-key", json!({"name": "Made By A"})).await;
    assert_eq!(res_a.status, StatusCode::CREATED, "{}", res_a.text());
    let res_b = create(&app, &b, "shared-key", json!({"name": "Made By B"})).await;
    assert_eq!(res_b.status, StatusCode::CREATED, "{}", res_b.text());
    assert_eq!(res_b.header("idempotent-replayed"), None);
    assert_eq!(res_b.json()["name"], "Made By B");
    assert_ne!(res_b.json()["id"], res_a.json()["id"]);
    assert_eq!(clients(&app).await, 2);
    assert_eq!(app.count("SELECT count(*) FROM engine.idempotency_keys WHERE key = 'shared-key'").await, 2);
    // Each token still gets its own replay.
    let again = create(&app, &b, "shared-key", json!({"name": "Made By B"})).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], res_b.json()["id"]);
}

#[sqlx::test]
async fn concurrent_duplicates_create_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for round in 0..5 {
        let key = format!("race-{round}");
        let body = json!({"name": format!("Race Client {round}")});
        let (one, two) =
            tokio::join!(create(&app, &app.admin, &key, body.clone()), create(&app, &app.admin, &key, body.clone()));
        let (winner, other) = if one.header("idempotent-replayed").is_none() && one.status == StatusCode::CREATED {
            (one, two)
        } else {
            (two, one)
        };
        assert_eq!(winner.status, StatusCode::CREATED, "{}", winner.text());
        match other.status {
            StatusCode::CREATED => {
                assert_eq!(other.header("idempotent-replayed"), Some("true"), "two creations");
                assert_eq!(other.json(), winner.json());
            }
            StatusCode::CONFLICT => {
                other.problem(409, "idempotency_in_flight");
                assert!(other.header("retry-after").is_some());
            }
            s => panic!("unexpected {s}: {}", other.text()),
        }
        assert_eq!(clients(&app).await, round + 1);
    }
}

/// A refused input is not kept under its key: Make's recovery (fix the mapping, re-run the
/// incomplete execution with the same key) must work, as with Stripe.
#[sqlx::test]
async fn a_validation_failure_is_not_kept_so_the_fixed_request_can_reuse_the_key(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let bad = json!({"name": "", "currency": "dollars"});
    let send = || {
        app.request(Method::POST, "/v1/clients")
            .token(&app.admin)
            .header("idempotency-key", "bad-1")
            .header("x-request-id", "req-bad")
            .json(&bad)
            .send()
    };
    let first = send().await;
    first.problem(422, "validation_failed");
    assert!(!first.error_fields().is_empty());
    assert_eq!(app.count(KEYS).await, 0, "a 422 was remembered");
    let again = send().await;
    again.problem(422, "validation_failed");
    assert_eq!(again.header("idempotent-replayed"), None, "a refused input is answered afresh");
    assert_eq!(clients(&app).await, 0);
    // Malformed JSON (400) and a wrong content type (415) are not kept either.
    let malformed = app
        .request(Method::POST, "/v1/clients")
        .token(&app.admin)
        .header("idempotency-key", "bad-1")
        .raw_body("application/json", b"{\"name\":".to_vec())
        .send()
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let not_json = app
        .request(Method::POST, "/v1/clients")
        .token(&app.admin)
        .header("idempotency-key", "bad-1")
        .raw_body("text/plain", b"name=Fixed".to_vec())
        .send()
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.count(KEYS).await, 0);
    // The fixed request under the same key runs, and from then on the key is bound to it.
    let fixed = create(&app, &app.admin, "bad-1", json!({"name": "Fixed"})).await;
    assert_eq!(fixed.status, StatusCode::CREATED);
    assert_eq!(clients(&app).await, 1);
    let replay = create(&app, &app.admin, "bad-1", json!({"name": "Fixed"})).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    send().await.problem(422, "idempotency_key_reused");
}

#[sqlx::test]
async fn a_conflict_is_not_stored(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let existing = app.create_client(json!({"name": "Taken Name"})).await;
    let body = json!({"name": "Taken Name"});
    create(&app, &app.admin, "conflict-1", body.clone()).await.problem(409, "slug_taken");
    assert_eq!(app.count(KEYS).await, 0, "a 409 was remembered");

    let res = app.delete(&format!("/v1/clients/{}?hard=true", existing["id"].as_str().unwrap())).send().await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = create(&app, &app.admin, "conflict-1", body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_ne!(res.json()["id"], existing["id"]);
    assert_eq!(clients(&app).await, 1);
}

#[sqlx::test]
async fn get_ignores_the_header(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.get("/v1/clients").header("idempotency-key", "get-1").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["data"], json!([]));
    app.create_client(json!({"name": "After First Get"})).await;
    let res = app.get("/v1/clients").header("idempotency-key", "get-1").send().await;
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_eq!(res.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.count(KEYS).await, 0);
}

#[sqlx::test]
async fn an_expired_key_can_be_reused(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = create(&app, &app.admin, "old-key", json!({"name": "Yesterday"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    sqlx::query("UPDATE engine.idempotency_keys SET expires_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = create(&app, &app.admin, "old-key", json!({"name": "Today"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_eq!(res.json()["name"], "Today");
    assert_eq!(clients(&app).await, 2);
    // The key now belongs to the new request, for another full period.
    let again = create(&app, &app.admin, "old-key", json!({"name": "Today"})).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], res.json()["id"]);
}

#[sqlx::test]
async fn a_dead_requests_key_is_taken_over(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = json!({"name": "Crashed Midway"});
    let first = create(&app, &app.admin, "stuck", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Simulate a request that claimed the key and died: its transaction never committed.
    let res = app.delete(&format!("/v1/clients/{}?hard=true", first.json()["id"].as_str().unwrap())).send().await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    sqlx::query(
        "UPDATE engine.idempotency_keys SET state = 'in_progress', locked_until = now() + interval '1 minute',
         response_status = NULL, response_headers = NULL, response_body = NULL",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // While its lock holds, the key is in flight.
    create(&app, &app.admin, "stuck", body.clone()).await.problem(409, "idempotency_in_flight");

    sqlx::query("UPDATE engine.idempotency_keys SET locked_until = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = create(&app, &app.admin, "stuck", body.clone()).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_eq!(clients(&app).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM engine.idempotency_keys WHERE state = 'completed'").await, 1);
    let again = create(&app, &app.admin, "stuck", body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], res.json()["id"]);
}

#[sqlx::test]
async fn keys_are_kept_at_least_a_day(pool: PgPool) {
    let app = TestApp::new(pool).await;
    create(&app, &app.admin, "kept", json!({"name": "Kept Key"})).await;
    create(&app, &app.admin, "kept-too", json!({"name": "Kept Key Too"})).await;
    create(&app, &app.admin, "not-kept", json!({"name": ""})).await.problem(422, "validation_failed");
    assert_eq!(app.count(KEYS).await, 2, "the refused input is not kept");
    let kept = app
        .count("SELECT count(*) FROM engine.idempotency_keys WHERE expires_at - created_at >= interval '24 hours'")
        .await;
    assert_eq!(kept, 2);
    let stored = app
        .count("SELECT count(*) FROM engine.idempotency_keys WHERE state = 'completed' AND response_status IS NOT NULL")
        .await;
    assert_eq!(stored, 2);
}
