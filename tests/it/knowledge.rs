//! Knowledge entries under `/v1/clients/{client}/knowledge`, and full-text
//! search at `/v1/knowledge/search`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

const BODY_LIMIT: usize = 100 * 1024;

/// Creates a client with this name (slug derived) and returns its id.
async fn client(app: &TestApp, name: &str) -> String {
    app.create_client(json!({"name": name})).await["id"].as_str().unwrap().to_string()
}

/// Adds an entry to a client (by id or slug) and returns its JSON.
async fn entry(app: &TestApp, client: &str, body: Value) -> Value {
    let res = app.post(&format!("/v1/clients/{client}/knowledge"), body).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

fn note(title: &str, body: &str) -> Value {
    json!({"kind": "note", "title": title, "body": body})
}

/// The titles of a page of entries or hits.
fn titles(page: &Value) -> Vec<String> {
    page["data"].as_array().expect("data array").iter().map(|e| e["title"].as_str().unwrap().to_string()).collect()
}

async fn get_titles(app: &TestApp, path: &str) -> Vec<String> {
    let res = app.get(path).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    titles(&res.json())
}

#[sqlx::test]
async fn create_and_get_an_entry(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client_id = client(&app, "Acme Coffee").await;
    let res = app
        .post(
            "/v1/clients/acme-coffee/knowledge",
            json!({"kind": "brand_voice", "title": "  Tone of voice ", "body": "Warm, direct, no jargon.", "tags": [" tone ", "copy"]}),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(res.header("location"), Some(format!("/v1/clients/{client_id}/knowledge/{id}").as_str()));
    assert_eq!(created["client_id"], client_id.as_str());
    assert_eq!(created["kind"], "brand_voice");
    assert_eq!(created["title"], "Tone of voice");
    assert_eq!(created["body"], "Warm, direct, no jargon.");
    assert_eq!(created["tags"], json!(["tone", "copy"]));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    // Readable by client id or slug.
    for path in [format!("/v1/clients/{client_id}/knowledge/{id}"), format!("/v1/clients/acme-coffee/knowledge/{id}")] {
        let res = app.get(&path).send().await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json(), created);
    }
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'knowledge.create'").await, 1);
}

#[sqlx::test]
async fn create_for_an_unknown_client_is_404_and_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for client in ["nobody", &uuid::Uuid::now_v7().to_string()] {
        app.post(&format!("/v1/clients/{client}/knowledge"), note("t", "b")).send().await.problem(404, "not_found");
    }
    assert_eq!(app.count("SELECT count(*) FROM knowledge.entries").await, 0);
}

#[sqlx::test]
async fn entries_are_scoped_to_their_client(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Mine").await;
    client(&app, "Theirs").await;
    let theirs = entry(&app, "theirs", note("Secret", "theirs only")).await;
    let id = theirs["id"].as_str().unwrap();
    let path = format!("/v1/clients/mine/knowledge/{id}");
    app.get(&path).send().await.problem(404, "not_found");
    app.patch(&path, json!({"title": "Stolen"})).send().await.problem(404, "not_found");
    app.delete(&path).send().await.problem(404, "not_found");
    // Untouched.
    assert_eq!(app.get(&format!("/v1/clients/theirs/knowledge/{id}")).send().await.json(), theirs);
    assert_eq!(get_titles(&app, "/v1/clients/mine/knowledge").await, Vec::<String>::new());
}

#[sqlx::test]
async fn invalid_or_unknown_entry_ids_are_404(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Acme").await;
    for id in ["not-a-uuid".to_string(), "123".to_string(), uuid::Uuid::now_v7().to_string()] {
        let path = format!("/v1/clients/acme/knowledge/{id}");
        app.get(&path).send().await.problem(404, "not_found");
        app.patch(&path, json!({"title": "x"})).send().await.problem(404, "not_found");
        app.delete(&path).send().await.problem(404, "not_found");
    }
    app.get("/v1/clients/nobody/knowledge").send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn list_filters_by_kind_and_tag(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client_id = client(&app, "Acme").await;
    client(&app, "Other").await;
    entry(&app, "acme", json!({"kind": "faq", "title": "Opening hours", "body": "9-17", "tags": ["store", "hours"]}))
        .await;
    entry(&app, "acme", json!({"kind": "offer", "title": "Free delivery", "body": "Over R$100", "tags": ["promo"]}))
        .await;
    entry(&app, "acme", json!({"kind": "faq", "title": "Returns", "body": "30 days", "tags": ["promo", "store"]}))
        .await;
    entry(&app, "other", json!({"kind": "faq", "title": "Not Acme", "body": "x", "tags": ["store"]})).await;

    assert_eq!(get_titles(&app, "/v1/clients/acme/knowledge").await, ["Opening hours", "Free delivery", "Returns"]);
    assert_eq!(
        get_titles(&app, &format!("/v1/clients/{client_id}/knowledge")).await,
        ["Opening hours", "Free delivery", "Returns"]
    );
    assert_eq!(get_titles(&app, "/v1/clients/acme/knowledge?kind=faq").await, ["Opening hours", "Returns"]);
    assert_eq!(get_titles(&app, "/v1/clients/acme/knowledge?tag=promo").await, ["Free delivery", "Returns"]);
    assert_eq!(get_titles(&app, "/v1/clients/acme/knowledge?kind=faq&tag=promo").await, ["Returns"]);
    assert!(get_titles(&app, "/v1/clients/acme/knowledge?kind=competitor").await.is_empty());
    assert!(get_titles(&app, "/v1/clients/acme/knowledge?tag=unknown").await.is_empty());
    let res = app.get("/v1/clients/acme/knowledge?kind=gossip").send().await;
    res.problem(400, "invalid_query");
    assert_eq!(res.error_fields(), ["kind"]);
}

#[sqlx::test]
async fn list_paginates(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Acme").await;
    for i in 0..5 {
        entry(&app, "acme", note(&format!("Entry {i}"), "text")).await;
    }
    let first = app.get("/v1/clients/acme/knowledge?limit=2").send().await.json();
    assert_eq!(titles(&first), ["Entry 0", "Entry 1"]);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let second = app.get(&format!("/v1/clients/acme/knowledge?limit=2&cursor={cursor}")).send().await.json();
    assert_eq!(titles(&second), ["Entry 2", "Entry 3"]);
    let cursor = second["next_cursor"].as_str().expect("a next page").to_string();
    let last = app.get(&format!("/v1/clients/acme/knowledge?limit=2&cursor={cursor}")).send().await.json();
    assert_eq!(titles(&last), ["Entry 4"]);
    assert_eq!(last["next_cursor"], Value::Null);
}

#[sqlx::test]
async fn patch_merges_and_validates(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Acme").await;
    let created =
        entry(&app, "acme", json!({"kind": "note", "title": "Tone", "body": "Warm.", "tags": ["tone"]})).await;
    let path = format!("/v1/clients/acme/knowledge/{}", created["id"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let res = app
        .request(Method::PATCH, &path)
        .token(&app.admin)
        .raw_body("application/merge-patch+json", r#"{"tags": ["tone", "copy", "2026"], "kind": "brand_voice"}"#)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let updated = res.json();
    assert_eq!(updated["tags"], json!(["tone", "copy", "2026"]));
    assert_eq!(updated["kind"], "brand_voice");
    assert_eq!(updated["title"], "Tone");
    assert_eq!(updated["body"], "Warm.");
    assert_eq!(updated["created_at"], created["created_at"]);
    assert!(updated["updated_at"].as_str().unwrap() > created["updated_at"].as_str().unwrap());
    assert_eq!(app.get(&path).send().await.json(), updated);

    // null on a required field, or a read-only field, is refused whole.
    for (patch, field) in [
        (json!({"title": null}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"kind": "gossip"}), "kind"),
        (json!({"client_id": uuid::Uuid::now_v7().to_string()}), "client_id"),
    ] {
        let res = app.patch(&path, patch.clone()).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), [field], "{patch}");
    }
    assert_eq!(app.get(&path).send().await.json(), updated);
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'knowledge.update'").await, 1);
}

/// `null` in the merge patch removes a field the create body may leave out (`tags`, back to
/// none), as the spec's `KnowledgePatch` says; absent fields stay.
#[sqlx::test]
async fn patch_null_clears_an_optional_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Acme").await;
    let created =
        entry(&app, "acme", json!({"kind": "note", "title": "Tone", "body": "Warm.", "tags": ["tone"]})).await;
    let path = format!("/v1/clients/acme/knowledge/{}", created["id"].as_str().unwrap());
    let res = app.patch(&path, json!({"tags": null})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let updated = res.json();
    assert_eq!(updated["tags"], json!([]));
    assert_eq!(
        (&updated["kind"], &updated["title"], &updated["body"]),
        (&json!("note"), &json!("Tone"), &json!("Warm."))
    );
}

#[sqlx::test]
async fn delete_removes_the_entry(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client_id = client(&app, "Acme").await;
    let keep = entry(&app, "acme", note("Keep", "x")).await;
    let gone = entry(&app, "acme", note("Gone", "x")).await;
    let path = format!("/v1/clients/{client_id}/knowledge/{}", gone["id"].as_str().unwrap());
    let res = app.delete(&path).send().await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert!(res.body.is_empty());
    app.get(&path).send().await.problem(404, "not_found");
    app.delete(&path).send().await.problem(404, "not_found");
    assert_eq!(get_titles(&app, "/v1/clients/acme/knowledge").await, ["Keep"]);
    assert_eq!(
        app.get(&format!("/v1/clients/acme/knowledge/{}", keep["id"].as_str().unwrap())).send().await.status,
        StatusCode::OK
    );
    assert_eq!(app.count("SELECT count(*) FROM audit.log WHERE action = 'knowledge.delete'").await, 1);
}

#[sqlx::test]
async fn body_is_limited_to_100_kb(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Acme").await;
    let full = entry(&app, "acme", note("Full", &"x".repeat(BODY_LIMIT))).await;
    assert_eq!(full["body"].as_str().unwrap().len(), BODY_LIMIT);
    // Multi-byte characters count in bytes: 51,200 two-byte characters are exactly 100 KB.
    entry(&app, "acme", note("Accents", &"é".repeat(BODY_LIMIT / 2))).await;

    let before = app.count("SELECT count(*) FROM knowledge.entries").await;
    for body in ["x".repeat(BODY_LIMIT + 1), format!("{}x", "é".repeat(BODY_LIMIT / 2))] {
        let res = app.post("/v1/clients/acme/knowledge", note("Too big", &body)).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), ["body"]);
    }
    // A patch cannot grow an entry past the limit either.
    let path = format!("/v1/clients/acme/knowledge/{}", full["id"].as_str().unwrap());
    let res = app.patch(&path, json!({"body": "y".repeat(BODY_LIMIT + 1)})).send().await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["body"]);
    assert_eq!(app.count("SELECT count(*) FROM knowledge.entries").await, before);
    assert_eq!(app.get(&path).send().await.json()["body"].as_str().unwrap().len(), BODY_LIMIT);
}

/// Two clients with entries mentioning "espresso" in different places.
async fn search_fixture(app: &TestApp) {
    client(app, "Acme Coffee").await;
    client(app, "Bean Bar").await;
    entry(app, "acme-coffee", note("Brewing guide", "Our house blend makes a rich espresso with crema every time."))
        .await;
    entry(app, "acme-coffee", note("Espresso pricing", "Single shots cost less on Mondays.")).await;
    entry(app, "acme-coffee", note("Opening hours", "Open every day from nine to five.")).await;
    entry(app, "bean-bar", note("Menu", "We serve espresso, filter coffee and tea.")).await;
}

#[sqlx::test]
async fn search_ranks_title_matches_first_and_highlights(pool: PgPool) {
    let app = TestApp::new(pool).await;
    search_fixture(&app).await;
    let res = app.get("/v1/knowledge/search?q=espresso").send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let page = res.json();
    let hits = page["data"].as_array().unwrap();
    assert_eq!(hits.len(), 3, "{page}");
    // The title match ranks above the body-only matches.
    assert_eq!(hits[0]["title"], "Espresso pricing");
    let ranks: Vec<f64> = hits.iter().map(|h| h["rank"].as_f64().unwrap()).collect();
    assert!(ranks[0] > ranks[1] && ranks[0] > ranks[2], "{ranks:?}");
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "not ranked: {ranks:?}");
    assert_eq!(page["next_cursor"], Value::Null);

    let brewing = hits.iter().find(|h| h["title"] == "Brewing guide").expect("body match found");
    assert_eq!(brewing["client_slug"], "acme-coffee");
    assert_eq!(brewing["kind"], "note");
    let snippet = brewing["snippet"].as_str().unwrap();
    assert!(snippet.contains("<b>espresso</b>"), "{snippet}");
    let menu = hits.iter().find(|h| h["title"] == "Menu").expect("other client's match found");
    assert_eq!(menu["client_slug"], "bean-bar");
    assert!(menu["snippet"].as_str().unwrap().contains("<b>espresso</b>"), "{menu}");
    // Stemming: the plural matches too; unrelated words do not.
    assert_eq!(get_titles(&app, "/v1/knowledge/search?q=espressos").await.len(), 3);
    assert!(get_titles(&app, "/v1/knowledge/search?q=croissant").await.is_empty());
}

#[sqlx::test]
async fn search_filters_by_client(pool: PgPool) {
    let app = TestApp::new(pool).await;
    search_fixture(&app).await;
    let mut acme = get_titles(&app, "/v1/knowledge/search?q=espresso&client=acme-coffee").await;
    acme.sort();
    assert_eq!(acme, ["Brewing guide", "Espresso pricing"]);
    let bean_id = app.get("/v1/clients/bean-bar").send().await.json()["id"].as_str().unwrap().to_string();
    assert_eq!(get_titles(&app, &format!("/v1/knowledge/search?q=espresso&client={bean_id}")).await, ["Menu"]);
    app.get("/v1/knowledge/search?q=espresso&client=nobody").send().await.problem(404, "not_found");
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/v1/knowledge/search?q=espresso&client={unknown}")).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn search_requires_q(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for path in ["/v1/knowledge/search", "/v1/knowledge/search?q=", "/v1/knowledge/search?q=%20%20"] {
        let res = app.get(path).send().await;
        res.problem(400, "invalid_query");
        assert_eq!(res.error_fields(), ["q"], "{path}");
    }
}

#[sqlx::test]
async fn search_paginates_with_next_cursor(pool: PgPool) {
    let app = TestApp::new(pool).await;
    client(&app, "Acme").await;
    for i in 0..5 {
        entry(&app, "acme", note(&format!("Tip {i}"), &format!("Latte art tip number {i}."))).await;
    }
    entry(&app, "acme", note("Unrelated", "Nothing to see.")).await;
    let mut seen = Vec::new();
    let mut path = "/v1/knowledge/search?q=latte&limit=2".to_string();
    let mut pages = 0;
    loop {
        let res = app.get(&path).send().await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let page = res.json();
        let got = titles(&page);
        assert!(got.len() <= 2);
        seen.extend(got);
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/knowledge/search?q=latte&limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(seen, ["Tip 0", "Tip 1", "Tip 2", "Tip 3", "Tip 4"]);

    // A list cursor is not a search cursor.
    let list = app.get("/v1/clients/acme/knowledge?limit=1").send().await.json();
    let foreign = list["next_cursor"].as_str().unwrap();
    let res = app.get(&format!("/v1/knowledge/search?q=latte&cursor={foreign}")).send().await;
    res.problem(400, "invalid_cursor");
    assert_eq!(res.error_fields(), ["cursor"]);
}
