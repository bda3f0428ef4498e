//! Bounds on what one request may cost (issue #10, findings 10 and 13): a crafted
//! search cursor is a 400, a schedule fires at most every 5 minutes, a run names at
//! most 1000 clients; each refusal names its field and writes nothing.

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{TestApp, TestResponse};

fn invalid(res: &TestResponse, field: &str) {
    let body = res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), [field], "{body}");
}

#[sqlx::test]
async fn crafted_search_cursors_are_400(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Search Co"})).await;
    let entry = json!({"kind": "note", "title": "Espresso", "body": "Espresso beans"});
    let res = app.post(&format!("/v1/clients/{}/knowledge", client["id"].as_str().unwrap()), entry).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());

    for offset in ["-50", "9223372036854775807", "99999999999999999999", "4294967296", "1.5"] {
        let cursor = URL_SAFE_NO_PAD.encode(format!("search1:{offset}"));
        let res = app.get(&format!("/v1/knowledge/search?q=espresso&cursor={cursor}")).send().await;
        let body = res.problem(400, "invalid_cursor");
        assert_eq!(res.error_fields(), ["cursor"], "{offset}: {body}");
    }
    // Without a cursor, or with a well-formed one past the end, it still answers.
    let first = app.get("/v1/knowledge/search?q=espresso").send().await;
    assert_eq!(
        (first.status, first.json()["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1)),
        "{}",
        first.text()
    );
    let past = URL_SAFE_NO_PAD.encode("search1:50");
    let res = app.get(&format!("/v1/knowledge/search?q=espresso&cursor={past}")).send().await;
    assert_eq!((res.status, &res.json()["data"]), (StatusCode::OK, &json!([])), "{}", res.text());
}

#[sqlx::test]
async fn schedules_fire_at_most_every_five_minutes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for cron in ["* * * * * *", "*/10 * * * * *", "* * * * *", "*/2 * * * *", "0,3 9 * * *", "0,58 * * * *"] {
        invalid(&app.post("/v1/schedules", json!({"workflow": "daily-monitoring", "cron": cron})).send().await, "cron");
    }
    assert_eq!(app.count("SELECT count(*) FROM engine.schedules").await, 0);

    let res = app.post("/v1/schedules", json!({"workflow": "daily-monitoring", "cron": "*/5 * * * *"})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let path = format!("/v1/schedules/{}", res.json()["id"].as_str().unwrap());
    invalid(&app.patch(&path, json!({"cron": "* * * * *"})).send().await, "cron");
    let cron = "SELECT count(*) FROM engine.schedules WHERE cron = '*/5 * * * *'";
    assert_eq!(app.count(cron).await, 1, "the refused patch changed nothing");

    // A schedule stored before the floor can still be changed in other ways.
    let old = Uuid::now_v7();
    sqlx::query("INSERT INTO engine.schedules (id, workflow, cron, timezone, enabled) VALUES ($1, 'daily-monitoring', '* * * * *', 'UTC', true)")
        .bind(old)
        .execute(&app.pool)
        .await
        .unwrap();
    let res = app.patch(&format!("/v1/schedules/{old}"), json!({"enabled": false})).send().await;
    assert_eq!((res.status, &res.json()["enabled"]), (StatusCode::OK, &json!(false)), "{}", res.text());
}

#[sqlx::test]
async fn a_run_names_at_most_1000_clients(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Run Co", "status": "active"})).await;
    let slug = client["slug"].as_str().unwrap();
    let too_many: Vec<&str> = vec![slug; 1001];
    let res =
        app.post("/v1/workflows/daily-monitoring/runs", json!({"client_ids": too_many, "dry_run": true})).send().await;
    invalid(&res, "client_ids");
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM engine.tasks").await, 0);

    let at_most: Vec<&str> = vec![slug; 1000];
    let res =
        app.post("/v1/workflows/daily-monitoring/runs", json!({"client_ids": at_most, "dry_run": true})).send().await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM engine.tasks").await, 1, "duplicates collapse to one task");
}
