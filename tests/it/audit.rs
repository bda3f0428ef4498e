//! The audit log: one row per change with actor, request id and before/after;
//! no secrets; filters; scope; nothing for failed changes; append-only.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, TestResponse};

/// A writer token with a known name; returns (token, token id).
async fn writer(app: &TestApp, name: &str) -> (String, String) {
    let token = app.token_named(name, &["admin"]).await;
    let res = app.request(Method::GET, "/v1/tokens/current").token(&token).send().await;
    (token, res.json()["id"].as_str().unwrap().to_string())
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    request_id: &str,
    body: Option<Value>,
) -> TestResponse {
    let req = app.request(method, path).token(token).header("x-request-id", request_id);
    match body {
        Some(b) => req.json(&b).send().await,
        None => req.send().await,
    }
}

/// Audit entries matching a query string, newest first (as admin).
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app.get(&format!("/v1/audit-log?limit=500&{query}")).send().await;
    assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.text());
    res.json()["data"].as_array().unwrap().clone()
}

fn actions(list: &[Value]) -> Vec<&str> {
    list.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

fn check_actor(entry: &Value, token_id: &str, name: &str, request_id: &str) {
    assert_eq!(entry["actor"]["token_id"], token_id, "{entry}");
    assert_eq!(entry["actor"]["name"], name, "{entry}");
    assert_eq!(entry["request_id"], request_id, "{entry}");
}

#[sqlx::test]
async fn client_changes_are_recorded(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (token, token_id) = writer(&app, "audit-writer").await;
    let res = send(
        &app,
        Method::POST,
        "/v1/clients",
        &token,
        "req-create",
        Some(json!({"name": "Audited Co", "notes": "old"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let id = res.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/clients/{id}");
    assert_eq!(
        send(&app, Method::PATCH, &path, &token, "req-update", Some(json!({"notes": "new"}))).await.status,
        StatusCode::OK
    );
    assert_eq!(send(&app, Method::DELETE, &path, &token, "req-archive", None).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, Method::DELETE, &format!("{path}?hard=true"), &token, "req-delete", None).await.status,
        StatusCode::NO_CONTENT
    );

    let list = entries(&app, &format!("resource_type=client&resource_id={id}")).await;
    assert_eq!(actions(&list), ["client.delete", "client.archive", "client.update", "client.create"]);
    assert_eq!(app.count(&format!("SELECT count(*) FROM audit.log WHERE resource_id = '{id}'")).await, 4);
    let (delete, archive, update, create) = (&list[0], &list[1], &list[2], &list[3]);
    for (entry, request_id) in
        [(create, "req-create"), (update, "req-update"), (archive, "req-archive"), (delete, "req-delete")]
    {
        check_actor(entry, &token_id, "audit-writer", request_id);
        assert_eq!(entry["resource_type"], "client");
        assert_eq!(entry["resource_id"], id.as_str());
    }
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"]["name"], "Audited Co");
    assert_eq!(create["after"]["id"], id.as_str());
    assert_eq!((&update["before"]["notes"], &update["after"]["notes"]), (&json!("old"), &json!("new")));
    assert_eq!(update["before"]["name"], update["after"]["name"]);
    assert_eq!((&archive["before"]["status"], &archive["after"]["status"]), (&json!("onboarding"), &json!("archived")));
    assert_eq!(delete["before"]["status"], "archived");
    assert_eq!(delete["after"], Value::Null);
}

#[sqlx::test]
async fn knowledge_changes_are_recorded(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (token, token_id) = writer(&app, "kb-writer").await;
    let client = app.create_client(json!({"name": "Knowledge Owner"})).await;
    let base = format!("/v1/clients/{}/knowledge", client["id"].as_str().unwrap());
    let body = json!({"kind": "fact", "title": "Delivery", "body": "Free delivery in SP"});
    let res = send(&app, Method::POST, &base, &token, "kb-1", Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_string();
    let res =
        send(&app, Method::PATCH, &format!("{base}/{id}"), &token, "kb-2", Some(json!({"title": "Delivery area"})))
            .await;
    assert_eq!(res.status, StatusCode::OK);
    let res = send(&app, Method::DELETE, &format!("{base}/{id}"), &token, "kb-3", None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);

    let list = entries(&app, &format!("resource_type=knowledge_entry&resource_id={id}")).await;
    assert_eq!(actions(&list), ["knowledge.delete", "knowledge.update", "knowledge.create"]);
    for (entry, request_id) in list.iter().zip(["kb-3", "kb-2", "kb-1"]) {
        check_actor(entry, &token_id, "kb-writer", request_id);
    }
    assert_eq!(list[2]["before"], Value::Null);
    assert_eq!(list[2]["after"]["body"], "Free delivery in SP");
    assert_eq!(
        (&list[1]["before"]["title"], &list[1]["after"]["title"]),
        (&json!("Delivery"), &json!("Delivery area"))
    );
    assert_eq!(list[0]["before"]["title"], "Delivery area");
    assert_eq!(list[0]["after"], Value::Null);
}

#[sqlx::test]
async fn token_issue_and_revoke_are_recorded_without_secrets(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (admin, admin_id) = writer(&app, "token-admin").await;
    let mut secrets = vec![app.admin.clone(), admin.clone()];
    let res = send(
        &app,
        Method::POST,
        "/v1/tokens",
        &admin,
        "tok-1",
        Some(json!({"name": "make-prod", "scopes": ["clients:read"]})),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let id = res.json()["id"].as_str().unwrap().to_string();
    secrets.push(res.json()["token"].as_str().unwrap().to_string());
    let res = send(&app, Method::DELETE, &format!("/v1/tokens/{id}"), &admin, "tok-2", None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);

    let list = entries(&app, &format!("resource_type=token&resource_id={id}")).await;
    assert_eq!(actions(&list), ["token.revoke", "token.issue"]);
    let (revoke, issue) = (&list[0], &list[1]);
    check_actor(issue, &admin_id, "token-admin", "tok-1");
    check_actor(revoke, &admin_id, "token-admin", "tok-2");
    assert_eq!(issue["before"], Value::Null);
    assert_eq!(issue["after"]["name"], "make-prod");
    assert_eq!(issue["after"]["scopes"], json!(["clients:read"]));
    assert_eq!(revoke["before"]["revoked_at"], Value::Null);
    assert!(revoke["after"]["revoked_at"].is_string(), "{revoke}");

    // Tokens made from the command line are recorded as `cli`.
    let cli = entries(&app, "actor=cli").await;
    assert!(cli.iter().all(|e| e["actor"]["token_id"].is_null() && e["action"] == "token.issue"));
    assert_eq!(cli.len(), 2);

    // No token appears anywhere in the log, through the API or in the table.
    let text = app.get("/v1/audit-log?limit=500").send().await.text();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(!text.contains("eyJ"), "{text}");
    let in_table = app
        .count(
            "SELECT count(*) FROM audit.log WHERE coalesce(before::text, '') || coalesce(after::text, '') LIKE '%eyJ%'",
        )
        .await;
    assert_eq!(in_table, 0);
}

#[sqlx::test]
async fn filters_narrow_the_log(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (alice, alice_id) = writer(&app, "alice").await;
    let (bob, bob_id) = writer(&app, "bob").await;
    let mut marks: Vec<DateTime<Utc>> = Vec::new();
    let mut ids = Vec::new();
    for (i, token) in [&alice, &bob, &alice].into_iter().enumerate() {
        marks.push(Utc::now());
        tokio::time::sleep(Duration::from_millis(30)).await;
        let res = send(
            &app,
            Method::POST,
            "/v1/clients",
            token,
            &format!("f-{i}"),
            Some(json!({"name": format!("Filtered {i}")})),
        )
        .await;
        ids.push(res.json()["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let client_ids =
        |list: &[Value]| list.iter().map(|e| e["resource_id"].as_str().unwrap().to_string()).collect::<Vec<_>>();

    let by_alice_id = entries(&app, &format!("actor={alice_id}")).await;
    assert_eq!(client_ids(&by_alice_id), [ids[2].clone(), ids[0].clone()]);
    let by_alice_name = entries(&app, "actor=alice").await;
    assert_eq!(client_ids(&by_alice_name), client_ids(&by_alice_id));
    assert_eq!(client_ids(&entries(&app, &format!("actor={bob_id}")).await), [ids[1].clone()]);
    assert!(entries(&app, "actor=nobody").await.is_empty());

    let clients = entries(&app, "resource_type=client").await;
    assert_eq!(client_ids(&clients), [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let tokens = entries(&app, "resource_type=token").await;
    assert_eq!(tokens.len(), 3); // the harness's admin, alice, bob
    assert!(tokens.iter().all(|e| e["action"] == "token.issue"));
    assert_eq!(client_ids(&entries(&app, &format!("resource_id={}", ids[1])).await), [ids[1].clone()]);

    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let from = entries(&app, &format!("resource_type=client&from={}", at(marks[1]))).await;
    assert_eq!(client_ids(&from), [ids[2].clone(), ids[1].clone()]);
    let to = entries(&app, &format!("resource_type=client&to={}", at(marks[1]))).await;
    assert_eq!(client_ids(&to), [ids[0].clone()]);
    let window = entries(&app, &format!("from={}&to={}", at(marks[1]), at(marks[2]))).await;
    assert_eq!(client_ids(&window), [ids[1].clone()]);
    assert_eq!(window[0]["actor"]["name"], "bob");

    let res = app.get("/v1/audit-log?from=yesterday").send().await;
    res.problem(400, "invalid_query");
}

#[sqlx::test]
async fn reading_the_log_needs_audit_read(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Secret History"})).await;
    let nosy = app.token(&["clients:read", "clients:write", "tokens:admin"]).await;
    let res = app.request(Method::GET, "/v1/audit-log").token(&nosy).send().await;
    let body = res.problem(403, "missing_scope");
    assert!(body["detail"].as_str().unwrap().contains("`audit:read`"));
    let reader = app.token(&["audit:read"]).await;
    let res = app.request(Method::GET, "/v1/audit-log").token(&reader).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.json()["data"].as_array().unwrap().iter().any(|e| e["action"] == "client.create"));
}

#[sqlx::test]
async fn failed_changes_write_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Stable Co"})).await;
    let path = format!("/v1/clients/{}", client["id"].as_str().unwrap());
    let before = app.count("SELECT count(*) FROM audit.log").await;
    app.post("/v1/clients", json!({"name": ""})).send().await.problem(422, "validation_failed");
    app.patch(&path, json!({"currency": "dollars"})).send().await.problem(422, "validation_failed");
    app.post(&format!("{path}/knowledge"), json!({"kind": "note", "title": "", "body": "b"}))
        .send()
        .await
        .problem(422, "validation_failed");
    app.post("/v1/clients", json!({"name": "Stable Co"})).send().await.problem(409, "slug_taken");
    app.post("/v1/tokens", json!({"name": "t", "scopes": ["admin"], "expires_in": "soon"}))
        .send()
        .await
        .problem(422, "validation_failed");
    app.delete("/v1/clients/no-such-client").send().await.problem(404, "not_found");
    assert_eq!(app.count("SELECT count(*) FROM audit.log").await, before);
    // A change that does succeed still writes its row.
    assert_eq!(app.patch(&path, json!({"notes": "ok"})).send().await.status, StatusCode::OK);
    assert_eq!(app.count("SELECT count(*) FROM audit.log").await, before + 1);
}

#[sqlx::test]
async fn the_log_is_append_only(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Permanent Record"})).await;
    let rows = app.count("SELECT count(*) FROM audit.log").await;
    assert!(rows >= 2);
    let update = sqlx::query("UPDATE audit.log SET action = 'tampered'").execute(&app.pool).await;
    let err = update.expect_err("UPDATE on audit.log succeeded");
    assert!(err.to_string().contains("append-only"), "{err}");
    let delete = sqlx::query("DELETE FROM audit.log WHERE action = 'client.create'").execute(&app.pool).await;
    let err = delete.expect_err("DELETE on audit.log succeeded");
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(app.count("SELECT count(*) FROM audit.log").await, rows);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'tampered'").await, 0);
}

#[sqlx::test]
async fn a_hostile_request_id_is_replaced_not_recorded(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let long = "a".repeat(200);
    let hostile = ["<script>alert(1)</script>", "id with spaces", "x\tinjected=1", long.as_str()];
    for (i, request_id) in hostile.iter().enumerate() {
        let res = send(
            &app,
            Method::POST,
            "/v1/clients",
            &app.admin,
            request_id,
            Some(json!({"name": format!("Hostile {i}")})),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED);
        let echoed = res.headers.get("x-request-id").unwrap().to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "a fresh id replaces {request_id:?}: {echoed}");
        let id = res.json()["id"].as_str().unwrap().to_string();
        let recorded = entries(&app, &format!("resource_type=client&resource_id={id}")).await;
        assert_eq!(recorded[0]["request_id"], echoed.as_str());
    }
    // An ordinary id from a caller (Make's execution id, a trace id) is kept as it is.
    let res =
        send(&app, Method::POST, "/v1/clients", &app.admin, "make-exec:4f2a.9/b+c=", Some(json!({"name": "Traced"})))
            .await;
    assert_eq!(res.headers.get("x-request-id").unwrap(), "make-exec:4f2a.9/b+c=");
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE request_id LIKE '%<%' OR request_id LIKE '% %' OR length(request_id) > 128").await, 0);
}
