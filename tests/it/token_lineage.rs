//! Token lineage (issue #10, finding 4): a token created by another token never
//! outlives it, is revoked with it (transitively, on every replica), and a token
//! holding `admin` can be revoked only by a token holding `admin`.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, TestResponse};

/// `POST /v1/tokens` as `issuer`.
async fn create(app: &TestApp, issuer: &str, body: Value) -> TestResponse {
    app.request(Method::POST, "/v1/tokens").token(issuer).json(&body).send().await
}

/// Creates a token as `issuer`, returning `(id, token)`.
async fn child(app: &TestApp, issuer: &str, name: &str, scopes: &[&str]) -> (String, String) {
    let res = create(app, issuer, json!({"name": name, "scopes": scopes})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let body = res.json();
    (body["id"].as_str().unwrap().to_string(), body["token"].as_str().unwrap().to_string())
}

async fn whoami(app: &TestApp, token: &str) -> TestResponse {
    app.request(Method::GET, "/v1/tokens/current").token(token).send().await
}

async fn id_of(app: &TestApp, token: &str) -> String {
    let res = whoami(app, token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["id"].as_str().unwrap().to_string()
}

async fn revoke(app: &TestApp, as_token: &str, id: &str) -> TestResponse {
    app.request(Method::DELETE, &format!("/v1/tokens/{id}")).token(as_token).send().await
}

const TOKENS: &str = "SELECT count(*) FROM auth.api_tokens";

#[sqlx::test]
async fn a_child_never_outlives_its_parent(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post("/v1/tokens", json!({"name": "short", "scopes": ["tokens:admin", "clients:read"], "expires_in": "1h"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let parent = res.json();
    let parent_token = parent["token"].as_str().unwrap();
    let parent_expiry: DateTime<Utc> = parent["expires_at"].as_str().unwrap().parse().unwrap();

    let before = app.count(TOKENS).await;
    // Later than the parent, or no expiry at all: 422 naming `expires_in`, nothing written.
    for body in [
        json!({"name": "longer", "scopes": ["clients:read"], "expires_in": "2h"}),
        json!({"name": "forever", "scopes": ["clients:read"]}),
    ] {
        let res = create(&app, parent_token, body).await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), vec!["expires_in"], "{}", res.text());
    }
    assert_eq!(app.count(TOKENS).await, before);
    assert_eq!(
        app.count("SELECT count(*) FROM audit.log WHERE action = 'token.issue'").await,
        before,
        "a refused issue was audited"
    );

    let res =
        create(&app, parent_token, json!({"name": "shorter", "scopes": ["clients:read"], "expires_in": "30m"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let expiry: DateTime<Utc> = res.json()["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expiry <= parent_expiry, "{expiry} > {parent_expiry}");
    assert_eq!(res.json()["created_by"], parent["id"]);

    // A token that does not expire may still create one that does not.
    let (_, forever) = child(&app, &app.admin, "unbounded", &["tokens:admin", "clients:read"]).await;
    let res = create(&app, &forever, json!({"name": "also-unbounded", "scopes": ["clients:read"]})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["expires_at"], Value::Null);
}

#[sqlx::test]
async fn revoking_a_token_revokes_what_it_created_transitively(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (parent_id, parent) = child(&app, &app.admin, "parent", &["tokens:admin", "clients:read"]).await;
    let (child_id, child_token) = child(&app, &parent, "child", &["tokens:admin", "clients:read"]).await;
    let (grandchild_id, grandchild) = child(&app, &child_token, "grandchild", &["clients:read"]).await;
    let (sibling_id, sibling) = child(&app, &app.admin, "sibling", &["clients:read"]).await;
    // Every token is now cached as valid by this process.
    for token in [&parent, &child_token, &grandchild, &sibling] {
        assert_eq!(whoami(&app, token).await.status, StatusCode::OK);
    }

    let res = revoke(&app, &app.admin, &parent_id).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    for token in [&parent, &child_token, &grandchild] {
        whoami(&app, token).await.problem(401, "token_revoked");
    }
    assert_eq!(whoami(&app, &sibling).await.status, StatusCode::OK, "a token outside the lineage was revoked");

    // One audit row per revoked token, as for a single revocation.
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT resource_id FROM audit.log WHERE action = 'token.revoke' ORDER BY resource_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut expected = vec![parent_id.clone(), child_id.clone(), grandchild_id.clone()];
    expected.sort();
    assert_eq!(audited, expected);
    let revoked = app.count(&format!(
        "SELECT count(*) FROM auth.api_tokens WHERE revoked_at IS NOT NULL AND id IN ('{parent_id}', '{child_id}', '{grandchild_id}', '{sibling_id}')"
    ))
    .await;
    assert_eq!(revoked, 3);
}

#[sqlx::test]
async fn a_revoked_parent_cannot_create_tokens_even_while_cached(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (parent_id, parent) = child(&app, &app.admin, "parent", &["tokens:admin", "clients:read"]).await;
    assert_eq!(whoami(&app, &parent).await.status, StatusCode::OK); // cached as valid
    // Revoked by another writer whose announcement this process has not seen.
    sqlx::query("UPDATE auth.api_tokens SET revoked_at = now() WHERE id = $1::uuid")
        .bind(&parent_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let before = app.count(TOKENS).await;
    create(&app, &parent, json!({"name": "orphan", "scopes": ["clients:read"]})).await.problem(401, "token_revoked");
    assert_eq!(app.count(TOKENS).await, before);
}

#[sqlx::test]
async fn only_admin_revokes_a_token_holding_admin(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let token_admin = app.token_named("token-admin", &["tokens:admin"]).await;
    let other_admin = app.token_named("other-admin", &["admin"]).await;
    let other_admin_id = id_of(&app, &other_admin).await;
    let bootstrap_id = id_of(&app, &app.admin).await;

    for id in [&other_admin_id, &bootstrap_id] {
        let body = revoke(&app, &token_admin, id).await.problem(403, "missing_scope");
        assert!(body["detail"].as_str().unwrap().contains("`admin`"), "{body}");
    }
    // A token that is not admin but has an admin descendant (as old data may hold): refused too.
    let plain = app.token_named("plain", &["clients:read"]).await;
    let plain_id = id_of(&app, &plain).await;
    sqlx::query("UPDATE auth.api_tokens SET created_by = $1::uuid WHERE id = $2::uuid")
        .bind(&plain_id)
        .bind(&other_admin_id)
        .execute(&app.pool)
        .await
        .unwrap();
    revoke(&app, &token_admin, &plain_id).await.problem(403, "missing_scope");
    assert_eq!(app.count("SELECT count(*) FROM auth.api_tokens WHERE revoked_at IS NOT NULL").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'token.revoke'").await, 0);
    for token in [&app.admin, &other_admin, &plain] {
        assert_eq!(whoami(&app, token).await.status, StatusCode::OK);
    }

    // `tokens:admin` still revokes tokens without `admin`; `admin` revokes the admin lineage.
    let victim = app.token_named("victim", &["clients:read", "tokens:admin"]).await;
    let victim_id = id_of(&app, &victim).await;
    assert_eq!(revoke(&app, &token_admin, &victim_id).await.status, StatusCode::NO_CONTENT);
    assert_eq!(revoke(&app, &app.admin, &plain_id).await.status, StatusCode::NO_CONTENT);
    whoami(&app, &other_admin).await.problem(401, "token_revoked");
}

#[sqlx::test]
async fn revoking_a_parent_reaches_its_descendants_on_another_replica(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let replica = TestApp::new(pool.clone()).await;
    let listener = replica.follow_changes().await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (parent_id, parent) = child(&app, &app.admin, "parent", &["tokens:admin", "clients:read"]).await;
    let (_, child_token) = child(&app, &parent, "child", &["tokens:admin", "clients:read"]).await;
    let (_, grandchild) = child(&app, &child_token, "grandchild", &["clients:read"]).await;
    // The replica caches the descendants as valid.
    for token in [&child_token, &grandchild] {
        assert_eq!(whoami(&replica, token).await.status, StatusCode::OK);
    }

    assert_eq!(revoke(&app, &app.admin, &parent_id).await.status, StatusCode::NO_CONTENT);
    let mut refused = false;
    for _ in 0..40 {
        let child_refused = whoami(&replica, &child_token).await.status == StatusCode::UNAUTHORIZED;
        let grandchild_refused = whoami(&replica, &grandchild).await.status == StatusCode::UNAUTHORIZED;
        if child_refused && grandchild_refused {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listener.abort();
    assert!(refused, "the replica still accepts a revoked parent's descendants after 2 s");
    whoami(&replica, &grandchild).await.problem(401, "token_revoked");
}
