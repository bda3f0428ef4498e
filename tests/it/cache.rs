//! The client read cache never serves a stale client: a change through this
//! replica is seen at once, a change made anywhere else (another replica, SQL by
//! hand) is seen as soon as its NOTIFY arrives.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use crate::support::TestApp;

async fn listening(app: &TestApp) {
    app.follow_changes().await;
}

#[sqlx::test]
async fn changes_through_this_replica_are_seen_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Cached Co"})).await;
    let path = format!("/v1/clients/{}", client["id"].as_str().unwrap());
    assert_eq!(app.get(&path).send().await.json()["industry"], serde_json::Value::Null);
    assert_eq!(app.get("/v1/clients/cached-co").send().await.json()["name"], "Cached Co");

    app.patch(&path, json!({"industry": "coffee", "slug": "cached-coffee"})).send().await;
    assert_eq!(app.get(&path).send().await.json()["industry"], "coffee");
    app.get("/v1/clients/cached-co").send().await.problem(404, "not_found");
    assert_eq!(app.get("/v1/clients/cached-coffee").send().await.json()["industry"], "coffee");

    app.delete(&format!("{path}?hard=true")).send().await;
    app.get(&path).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn changes_made_elsewhere_reach_the_cache(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    listening(&app).await;
    let client = app.create_client(json!({"name": "Elsewhere Co"})).await;
    let path = format!("/v1/clients/{}", client["id"].as_str().unwrap());
    assert_eq!(app.get(&path).send().await.json()["status"], "onboarding");

    // Another writer: SQL by hand (a second replica behaves the same: the trigger announces it).
    sqlx::query("UPDATE knowledge.clients SET status = 'active' WHERE slug = 'elsewhere-co'")
        .execute(&pool)
        .await
        .unwrap();
    let mut seen = String::new();
    for _ in 0..100 {
        seen = app.get(&path).send().await.json()["status"].as_str().unwrap().to_string();
        if seen == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "active", "the cache kept serving the old client");
}
