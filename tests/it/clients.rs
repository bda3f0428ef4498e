//! `/v1/clients`: create, read (by id and slug), list with filters, merge-patch
//! update, archive and hard delete.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

/// `2026-06-01T08:00:00.000Z`: RFC 3339 UTC with exactly three fraction digits and `Z`.
fn assert_timestamp(value: &Value) {
    let s = value.as_str().unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let ok = b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z';
    assert!(ok, "not a millisecond RFC 3339 UTC timestamp: {s}");
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
}

/// The names of a list response's clients, in order.
async fn list_names(app: &TestApp, path: &str) -> Vec<String> {
    let res = app.get(path).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["data"].as_array().expect("data array").iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

#[sqlx::test]
async fn create_returns_201_with_location_defaults_and_derived_slug(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.post("/v1/clients", json!({"name": "Açaí & Co."})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let body = res.json();
    let id = body["id"].as_str().expect("id");
    uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert_eq!(res.header("location"), Some(format!("/v1/clients/{id}").as_str()));
    assert_eq!(body["name"], "Açaí & Co.");
    assert_eq!(body["slug"], "acai-co");
    assert_eq!(body["status"], "onboarding");
    assert_eq!(body["timezone"], "UTC");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["industry"], Value::Null);
    assert_eq!(body["accounts"], json!({}));
    assert_eq!(body["budgets"], json!({}));
    assert_eq!(body["contacts"], json!([]));
    assert_timestamp(&body["created_at"]);
    assert_timestamp(&body["updated_at"]);
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients WHERE slug = 'acai-co'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'client.create'").await, 1);
}

#[sqlx::test]
async fn create_keeps_given_fields(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let body = app
        .create_client(json!({
            "name": "Acme Coffee",
            "slug": "acme",
            "industry": "Food",
            "status": "active",
            "timezone": "America/Sao_Paulo",
            "currency": "brl",
            "budgets": {"meta": 5000.0},
            "targets": {"cpa": 25.0},
            "contacts": [{"name": "Ana", "email": "ana@example.com", "phone": "+55 11 99999-0000"}],
            "notes": "Prefers WhatsApp."
        }))
        .await;
    assert_eq!(body["slug"], "acme");
    assert_eq!(body["status"], "active");
    assert_eq!(body["timezone"], "America/Sao_Paulo");
    assert_eq!(body["currency"], "BRL");
    assert_eq!(body["budgets"], json!({"meta": 5000.0}));
    assert_eq!(body["targets"], json!({"cpa": 25.0}));
    assert_eq!(body["contacts"][0]["phone"], "+5511999990000");
    assert_eq!(body["notes"], "Prefers WhatsApp.");
}

#[sqlx::test]
async fn account_ids_are_normalised(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let plain = app
        .create_client(json!({"name": "Plain Ids", "accounts": {
            "meta": "1234567890", "google_ads": "123-456-7890", "whatsapp": "+55 (11) 99999-0000"
        }}))
        .await;
    assert_eq!(plain["accounts"]["meta"], "act_1234567890");
    assert_eq!(plain["accounts"]["google_ads"], "1234567890");
    assert_eq!(plain["accounts"]["whatsapp"], "+5511999990000");

    let prefixed = app
        .create_client(json!({"name": "Prefixed Ids", "accounts": {
            "meta": "act_987654", "google_ads": "1234567890", "whatsapp": "+5511999990001"
        }}))
        .await;
    assert_eq!(prefixed["accounts"]["meta"], "act_987654");
    assert_eq!(prefixed["accounts"]["google_ads"], "1234567890");
    assert_eq!(prefixed["accounts"]["whatsapp"], "+5511999990001");

    // Stored normalised, not just echoed so.
    let fetched = app.get("/v1/clients/plain-ids").send().await.json();
    assert_eq!(fetched["accounts"], plain["accounts"]);
    let stored: String = sqlx::query_scalar("SELECT accounts->>'meta' FROM knowledge.clients WHERE slug = 'plain-ids'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, "act_1234567890");
}

#[sqlx::test]
async fn get_by_id_and_by_slug(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = app.create_client(json!({"name": "Lookup Co", "industry": "Retail"})).await;
    let id = created["id"].as_str().unwrap();
    let by_id = app.get(&format!("/v1/clients/{id}")).send().await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.text());
    assert_eq!(by_id.json(), created);
    let by_slug = app.get("/v1/clients/lookup-co").send().await;
    assert_eq!(by_slug.status, StatusCode::OK);
    assert_eq!(by_slug.json(), created);
    app.get("/v1/clients/no-such-client").send().await.problem(404, "not_found");
    app.get(&format!("/v1/clients/{}", uuid::Uuid::now_v7())).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn list_is_in_creation_order_and_hides_archived(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for name in ["First", "Second", "Third"] {
        app.create_client(json!({"name": name})).await;
    }
    app.create_client(json!({"name": "Gone", "status": "archived"})).await;
    let res = app.get("/v1/clients").send().await;
    let body = res.json();
    assert_eq!(body["next_cursor"], Value::Null);
    assert_eq!(list_names(&app, "/v1/clients").await, ["First", "Second", "Third"]);
    assert_eq!(list_names(&app, "/v1/clients?status=archived").await, ["Gone"]);
    app.delete("/v1/clients/second").send().await;
    assert_eq!(list_names(&app, "/v1/clients").await, ["First", "Third"]);
    assert_eq!(list_names(&app, "/v1/clients?status=archived").await, ["Second", "Gone"]);
}

#[sqlx::test]
async fn list_filters_by_status_and_industry(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Cafe One", "industry": "Food & Beverage", "status": "active"})).await;
    app.create_client(json!({"name": "Cafe Two", "industry": "food & beverage"})).await;
    app.create_client(json!({"name": "Shoe Shop", "industry": "Retail", "status": "active"})).await;
    app.create_client(json!({"name": "Paused Co", "status": "paused"})).await;
    assert_eq!(list_names(&app, "/v1/clients?status=active").await, ["Cafe One", "Shoe Shop"]);
    assert_eq!(list_names(&app, "/v1/clients?status=paused").await, ["Paused Co"]);
    assert_eq!(list_names(&app, "/v1/clients?status=onboarding").await, ["Cafe Two"]);
    assert_eq!(list_names(&app, "/v1/clients?industry=FOOD%20%26%20BEVERAGE").await, ["Cafe One", "Cafe Two"]);
    assert_eq!(list_names(&app, "/v1/clients?industry=retail").await, ["Shoe Shop"]);
    assert_eq!(list_names(&app, "/v1/clients?industry=food%20%26%20beverage&status=active").await, ["Cafe One"]);
    assert!(list_names(&app, "/v1/clients?industry=Food").await.is_empty());
}

#[sqlx::test]
async fn list_search_matches_name_or_slug_literally(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "100% Natural"})).await; // slug 100-natural
    app.create_client(json!({"name": "100 Percent Natural"})).await;
    app.create_client(json!({"name": "A_B Corp"})).await; // slug a-b-corp
    app.create_client(json!({"name": "AxB Corp"})).await;
    app.create_client(json!({"name": "Hidden Name", "slug": "zebra-labs"})).await;
    // Case-insensitive substring of the name...
    assert_eq!(list_names(&app, "/v1/clients?q=natural").await, ["100% Natural", "100 Percent Natural"]);
    // ...or of the slug.
    assert_eq!(list_names(&app, "/v1/clients?q=ZEBRA").await, ["Hidden Name"]);
    // `%` and `_` are literal characters, not LIKE wildcards.
    assert_eq!(list_names(&app, "/v1/clients?q=100%25").await, ["100% Natural"]);
    assert_eq!(list_names(&app, "/v1/clients?q=a_b").await, ["A_B Corp"]);
    assert!(list_names(&app, "/v1/clients?q=%25%25%25x").await.is_empty());
    assert!(list_names(&app, "/v1/clients?q=_").await == ["A_B Corp"]);
}

#[sqlx::test]
async fn patch_is_a_merge_patch(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = app
        .create_client(json!({
            "name": "Merge Co",
            "industry": "Retail",
            "notes": "keep me",
            "accounts": {"meta": "111", "google_ads": "1112223333"},
            "targets": {"cpa": 20.0, "roas": 3.0}
        }))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let res = app
        .patch(
            "/v1/clients/merge-co",
            json!({"status": "active", "accounts": {"meta": null, "whatsapp": "+5511999990000"}, "targets": {"cpa": 22.5}, "industry": null}),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "active");
    // null removed Meta; the other accounts stay; whatsapp was added.
    assert_eq!(body["accounts"], json!({"google_ads": "1112223333", "whatsapp": "+5511999990000"}));
    // Nested objects merge: cpa replaced, roas kept.
    assert_eq!(body["targets"], json!({"cpa": 22.5, "roas": 3.0}));
    assert_eq!(body["industry"], Value::Null);
    // Absent fields stay.
    assert_eq!(body["name"], "Merge Co");
    assert_eq!(body["notes"], "keep me");
    assert_eq!(body["slug"], "merge-co");
    assert_eq!(body["id"], created["id"]);
    assert_eq!(body["created_at"], created["created_at"]);
    assert_timestamp(&body["updated_at"]);
    assert!(
        body["updated_at"].as_str().unwrap() > created["updated_at"].as_str().unwrap(),
        "updated_at did not move: {body}"
    );
    // The change was stored.
    assert_eq!(app.get("/v1/clients/merge-co").send().await.json(), body);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'client.update'").await, 1);

    // A patch that changes nothing writes nothing: no audit row, no event, same `updated_at`.
    let events = app.count("SELECT count(*) FROM engine.events WHERE type = 'client.updated'").await;
    let res = app.patch("/v1/clients/merge-co", json!({"status": "active", "notes": "keep me"})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), body);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'client.update'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM engine.events WHERE type = 'client.updated'").await, events);
}

#[sqlx::test]
async fn patch_accepts_merge_patch_content_type(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = app.create_client(json!({"name": "Typed Co"})).await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .request(Method::PATCH, &format!("/v1/clients/{id}"))
        .token(&app.admin)
        .raw_body("application/merge-patch+json", r#"{"name": "Typed Company", "accounts": {"meta": "act_42"}}"#)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["name"], "Typed Company");
    // The slug does not follow a renamed client.
    assert_eq!(body["slug"], "typed-co");
    assert_eq!(body["accounts"]["meta"], "act_42");
}

#[sqlx::test]
async fn patch_normalises_and_validates_the_merged_result(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Whole Co"})).await;
    let res = app.patch("/v1/clients/whole-co", json!({"accounts": {"google_ads": "987-654-3210"}})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["accounts"]["google_ads"], "9876543210");

    // Removing the required name makes the merged client invalid.
    let res = app.patch("/v1/clients/whole-co", json!({"name": null})).send().await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["name"]);
    let res = app.patch("/v1/clients/whole-co", json!({"timezone": "Mars/Olympus", "currency": "ZZZ"})).send().await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["timezone", "currency"]);
    // Nothing changed.
    let stored = app.get("/v1/clients/whole-co").send().await.json();
    assert_eq!(stored["name"], "Whole Co");
    assert_eq!(stored["timezone"], "UTC");
}

#[sqlx::test]
async fn patch_rejects_read_only_fields(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = app.create_client(json!({"name": "Read Only"})).await;
    for (field, value) in [
        ("id", json!(uuid::Uuid::now_v7().to_string())),
        ("created_at", json!("2020-01-01T00:00:00.000Z")),
        ("updated_at", json!("2020-01-01T00:00:00.000Z")),
    ] {
        let res = app.patch("/v1/clients/read-only", json!({field: value, "name": "Changed"})).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), [field], "{}", res.text());
    }
    assert_eq!(app.get("/v1/clients/read-only").send().await.json(), created);
}

#[sqlx::test]
async fn patch_to_a_taken_slug_conflicts(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Alpha"})).await;
    app.create_client(json!({"name": "Beta"})).await;
    let res = app.patch("/v1/clients/beta", json!({"slug": "alpha"})).send().await;
    res.problem(409, "slug_taken");
    assert_eq!(res.error_fields(), ["slug"]);
    app.patch("/v1/clients/nobody", json!({"name": "x"})).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn delete_archives(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = app.create_client(json!({"name": "Archive Me", "status": "active"})).await;
    let id = created["id"].as_str().unwrap();
    let res = app.delete(&format!("/v1/clients/{id}")).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "archived");
    assert_eq!(body["id"], created["id"]);
    assert_eq!(body["name"], "Archive Me");
    // Still there, and still readable directly.
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients WHERE status = 'archived'").await, 1);
    assert_eq!(app.get("/v1/clients/archive-me").send().await.json()["status"], "archived");
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'client.archive'").await, 1);
    app.delete("/v1/clients/nobody").send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn hard_delete_needs_admin_and_removes_knowledge(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = app.create_client(json!({"name": "Doomed"})).await;
    let keeper = app.create_client(json!({"name": "Keeper"})).await;
    for client in ["doomed", "doomed", "keeper"] {
        let res = app
            .post(
                &format!("/v1/clients/{client}/knowledge"),
                json!({"kind": "note", "title": "A note", "body": "text"}),
            )
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    }
    let id = created["id"].as_str().unwrap();

    let writer = app.token(&["clients:read", "clients:write"]).await;
    let res = app.request(Method::DELETE, &format!("/v1/clients/{id}?hard=true")).token(&writer).send().await;
    let problem = res.problem(403, "missing_scope");
    assert!(problem["detail"].as_str().unwrap().contains("admin"), "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM knowledge.entries").await, 3);

    let res = app.delete(&format!("/v1/clients/{id}?hard=true")).send().await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert!(res.body.is_empty());
    assert_eq!(app.count(&format!("SELECT count(*) FROM knowledge.clients WHERE id = '{id}'")).await, 0);
    assert_eq!(app.count(&format!("SELECT count(*) FROM knowledge.entries WHERE client_id = '{id}'")).await, 0);
    let keeper_id = keeper["id"].as_str().unwrap();
    assert_eq!(app.count(&format!("SELECT count(*) FROM knowledge.entries WHERE client_id = '{keeper_id}'")).await, 1);
    app.get(&format!("/v1/clients/{id}")).send().await.problem(404, "not_found");
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'client.delete'").await, 1);
}

#[sqlx::test]
async fn soft_delete_with_a_write_token_is_allowed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Soft"})).await;
    let writer = app.token(&["clients:write"]).await;
    let res = app.request(Method::DELETE, "/v1/clients/soft?hard=false").token(&writer).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["status"], "archived");
    assert_eq!(app.count("SELECT count(*) FROM knowledge.clients").await, 1);
}
