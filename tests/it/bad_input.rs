//! Every class of bad input: the 4xx status, the stable `code`, the field named
//! in `errors[].field`, and nothing written (clients, entries, audit log).

use axum::http::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{TestApp, TestResponse};

/// Row counts of every table a request could write to.
async fn counts(app: &TestApp) -> [i64; 3] {
    [
        app.count("SELECT count(*) FROM knowledge.clients").await,
        app.count("SELECT count(*) FROM knowledge.entries").await,
        app.count("SELECT count(*) FROM audit.log").await,
    ]
}

/// An app with one client (`acme`) holding one entry; returns the app and the entry's path.
async fn seeded(pool: PgPool) -> (TestApp, String) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Acme"})).await;
    let res =
        app.post("/v1/clients/acme/knowledge", json!({"kind": "note", "title": "Seed", "body": "seed"})).send().await;
    assert_eq!(res.status.as_u16(), 201, "{}", res.text());
    let path = format!("/v1/clients/acme/knowledge/{}", res.json()["id"].as_str().unwrap());
    (app, path)
}

/// Asserts the problem and that its only field error is `field`; returns the errors' messages.
fn expect_field(res: &TestResponse, status: u16, code: &str, field: &str) -> String {
    let body = res.problem(status, code);
    assert_eq!(res.error_fields(), [field], "{body}");
    body["errors"][0]["message"].as_str().unwrap_or_default().to_string()
}

async fn post_client(app: &TestApp, body: Value) -> TestResponse {
    app.post("/v1/clients", body).send().await
}

#[sqlx::test]
async fn malformed_json(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    for raw in [r#"{"name": "#, r#"{"name": "x",}"#, r#"{"name": "x"} trailing"#, "", "nul"] {
        let res =
            app.request(Method::POST, "/v1/clients").token(&app.admin).raw_body("application/json", raw).send().await;
        res.problem(400, "malformed_json");
        let res = app
            .request(Method::PATCH, "/v1/clients/acme")
            .token(&app.admin)
            .raw_body("application/json", raw)
            .send()
            .await;
        res.problem(400, "malformed_json");
        let res = app
            .request(Method::POST, "/v1/clients/acme/knowledge")
            .token(&app.admin)
            .raw_body("application/json", raw)
            .send()
            .await;
        res.problem(400, "malformed_json");
        let res = app
            .request(Method::PATCH, &entry)
            .token(&app.admin)
            .raw_body("application/merge-patch+json", raw)
            .send()
            .await;
        res.problem(400, "malformed_json");
    }
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn wrong_types(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    for (body, field) in [
        (json!({"name": 5}), "name"),
        (json!({"name": "x", "status": "deleted"}), "status"),
        (json!({"name": "x", "accounts": {"meta": 123}}), "accounts.meta"),
        (json!({"name": "x", "budgets": {"meta": "lots"}}), "budgets.meta"),
        (json!({"name": "x", "targets": {"cpa": "cheap"}}), "targets.cpa"),
        (json!({"name": "x", "contacts": [{"name": ["Ana"]}]}), "contacts[0].name"),
        (json!({"name": "x", "accounts": []}), "accounts"),
    ] {
        expect_field(&post_client(&app, body.clone()).await, 422, "validation_failed", field);
    }
    expect_field(&app.patch("/v1/clients/acme", json!({"name": true})).send().await, 422, "validation_failed", "name");
    expect_field(
        &app.patch("/v1/clients/acme", json!(["not", "an", "object"])).send().await,
        422,
        "validation_failed",
        "body",
    );
    let res = app
        .post("/v1/clients/acme/knowledge", json!({"kind": "note", "title": "t", "body": "b", "tags": "one"}))
        .send()
        .await;
    expect_field(&res, 422, "validation_failed", "tags");
    let res = app.post("/v1/clients/acme/knowledge", json!({"kind": "gossip", "title": "t", "body": "b"})).send().await;
    expect_field(&res, 422, "validation_failed", "kind");
    expect_field(&app.patch(&entry, json!({"body": 42})).send().await, 422, "validation_failed", "body");
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn unknown_fields(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    for (body, field) in [
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({"name": "x", "accounts": {"myspace": "tom"}}), "accounts.myspace"),
        (json!({"name": "x", "targets": {"ctr": 0.02}}), "targets.ctr"),
        (json!({"name": "x", "contacts": [{"name": "Ana", "twitter": "@ana"}]}), "contacts[0].twitter"),
    ] {
        let message = expect_field(&post_client(&app, body).await, 422, "validation_failed", field);
        assert!(message.contains("not a known field"), "{message}");
    }
    expect_field(
        &app.patch("/v1/clients/acme", json!({"accounts": {"myspace": "tom"}})).send().await,
        422,
        "validation_failed",
        "accounts.myspace",
    );
    let res = app
        .post("/v1/clients/acme/knowledge", json!({"kind": "note", "title": "t", "body": "b", "pinned": true}))
        .send()
        .await;
    expect_field(&res, 422, "validation_failed", "pinned");
    expect_field(&app.patch(&entry, json!({"pinned": true})).send().await, 422, "validation_failed", "pinned");
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn missing_required_fields(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    for body in
        [json!({}), json!({"slug": "nameless"}), json!({"name": null}), json!({"name": "   "}), json!({"name": ""})]
    {
        expect_field(&post_client(&app, body).await, 422, "validation_failed", "name");
    }
    let res = post_client(&app, json!({"name": "x", "contacts": [{"email": "ana@example.com"}]})).await;
    expect_field(&res, 422, "validation_failed", "contacts[0].name");
    for (body, field) in [
        (json!({"title": "t", "body": "b"}), "kind"),
        (json!({"kind": "note", "body": "b"}), "title"),
        (json!({"kind": "note", "title": "t"}), "body"),
    ] {
        expect_field(&app.post("/v1/clients/acme/knowledge", body).send().await, 422, "validation_failed", field);
    }
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn over_long_name(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    let message =
        expect_field(&post_client(&app, json!({"name": "a".repeat(201)})).await, 422, "validation_failed", "name");
    assert!(message.contains("200"), "{message}");
    // Characters, not bytes: 201 two-byte characters are over, 200 are not.
    expect_field(&post_client(&app, json!({"name": "é".repeat(201)})).await, 422, "validation_failed", "name");
    expect_field(
        &app.patch("/v1/clients/acme", json!({"name": "b".repeat(201)})).send().await,
        422,
        "validation_failed",
        "name",
    );
    assert_eq!(counts(&app).await, before);
    assert_eq!(
        app.create_client(json!({"name": "é".repeat(200)})).await["name"].as_str().unwrap().chars().count(),
        200
    );
}

#[sqlx::test]
async fn invalid_slug(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    for slug in [
        "Bad Slug".to_string(),
        "-acme".into(),
        "acme-".into(),
        "ac--me".into(),
        "acme_coffee".into(),
        "ÁCME".into(),
        "a".repeat(101),
    ] {
        expect_field(&post_client(&app, json!({"name": "Fine", "slug": slug})).await, 422, "validation_failed", "slug");
    }
    expect_field(
        &app.patch("/v1/clients/acme", json!({"slug": "Not OK"})).send().await,
        422,
        "validation_failed",
        "slug",
    );
    // A name with nothing to derive a slug from needs one.
    expect_field(&post_client(&app, json!({"name": "!!!"})).await, 422, "validation_failed", "slug");
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn duplicate_slug(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    app.create_client(json!({"name": "Other"})).await;
    let before = counts(&app).await;
    expect_field(&post_client(&app, json!({"name": "Acme Two", "slug": "acme"})).await, 409, "slug_taken", "slug");
    // A derived slug collides the same way.
    expect_field(&post_client(&app, json!({"name": "ACME"})).await, 409, "slug_taken", "slug");
    expect_field(&app.patch("/v1/clients/other", json!({"slug": "acme"})).send().await, 409, "slug_taken", "slug");
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.get("/v1/clients/other").send().await.json()["slug"], "other");
}

#[sqlx::test]
async fn invalid_uuid_or_unknown_client(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let entry_id = entry.rsplit('/').next().unwrap();
    for client in ["not-a-uuid", "0000", unknown.as_str()] {
        let base = format!("/v1/clients/{client}");
        app.get(&base).send().await.problem(404, "not_found");
        app.patch(&base, json!({"name": "x"})).send().await.problem(404, "not_found");
        app.delete(&base).send().await.problem(404, "not_found");
        app.delete(&format!("{base}?hard=true")).send().await.problem(404, "not_found");
        app.get(&format!("{base}/knowledge")).send().await.problem(404, "not_found");
        app.post(&format!("{base}/knowledge"), json!({"kind": "note", "title": "t", "body": "b"}))
            .send()
            .await
            .problem(404, "not_found");
        app.get(&format!("{base}/knowledge/{entry_id}")).send().await.problem(404, "not_found");
        app.delete(&format!("{base}/knowledge/{entry_id}")).send().await.problem(404, "not_found");
    }
    app.get("/v1/clients/acme/knowledge/not-a-uuid").send().await.problem(404, "not_found");
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn bad_timezone_and_currency(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    for tz in ["Mars/Olympus", "GMT+25", "europe/nowhere"] {
        let message = expect_field(
            &post_client(&app, json!({"name": "Tz", "timezone": tz})).await,
            422,
            "validation_failed",
            "timezone",
        );
        assert!(message.contains("IANA"), "{message}");
    }
    for currency in ["ABC", "DOLLARS", "US", "12$"] {
        let message = expect_field(
            &post_client(&app, json!({"name": "Cur", "currency": currency})).await,
            422,
            "validation_failed",
            "currency",
        );
        assert!(message.contains("ISO 4217"), "{message}");
    }
    expect_field(
        &app.patch("/v1/clients/acme", json!({"timezone": "Nowhere"})).send().await,
        422,
        "validation_failed",
        "timezone",
    );
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn bad_account_ids(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    let cases = [
        ("meta", "act_12ab", &["Meta", "act_"][..]),
        ("meta", "act_", &["Meta", "act_"][..]),
        ("google_ads", "12345", &["Google Ads", "123-456-7890"][..]),
        ("google_ads", "12-3456-7890", &["Google Ads", "1234567890"][..]),
        ("whatsapp", "5511999990000", &["WhatsApp", "E.164"][..]),
        ("whatsapp", "+0123", &["WhatsApp", "E.164"][..]),
    ];
    for (platform, value, words) in cases {
        let res = post_client(&app, json!({"name": "Ids", "accounts": {platform: value}})).await;
        let message = expect_field(&res, 422, "validation_failed", &format!("accounts.{platform}"));
        for word in words {
            assert!(message.contains(word), "{platform}={value}: {message}");
        }
        let res = app.patch("/v1/clients/acme", json!({"accounts": {platform: value}})).send().await;
        expect_field(&res, 422, "validation_failed", &format!("accounts.{platform}"));
    }
    // Every bad id is reported at once.
    let res =
        post_client(&app, json!({"name": "Ids", "accounts": {"meta": "x", "google_ads": "y", "whatsapp": "z"}})).await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["accounts.meta", "accounts.google_ads", "accounts.whatsapp"]);
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn bad_cursor(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    app.create_client(json!({"name": "Second"})).await;
    let before = counts(&app).await;
    for path in [
        "/v1/clients?cursor=garbage!",
        "/v1/clients?cursor=bm90LWEtY3Vyc29y",
        "/v1/clients/acme/knowledge?cursor=xyz",
        "/v1/knowledge/search?q=seed&cursor=xyz",
    ] {
        expect_field(&app.get(path).send().await, 400, "invalid_cursor", "cursor");
    }
    // A cursor from one list is refused by another.
    let page = app.get("/v1/clients?limit=1").send().await.json();
    let cursor = page["next_cursor"].as_str().expect("two clients make two pages");
    expect_field(
        &app.get(&format!("/v1/clients/acme/knowledge?cursor={cursor}")).send().await,
        400,
        "invalid_cursor",
        "cursor",
    );
    expect_field(
        &app.get(&format!("/v1/knowledge/search?q=seed&cursor={cursor}")).send().await,
        400,
        "invalid_cursor",
        "cursor",
    );
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn bad_limit(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    for base in ["/v1/clients?", "/v1/clients/acme/knowledge?", "/v1/knowledge/search?q=seed&"] {
        for limit in ["0", "501"] {
            let message =
                expect_field(&app.get(&format!("{base}limit={limit}")).send().await, 400, "invalid_limit", "limit");
            assert!(message.contains("500"), "{message}");
        }
        expect_field(&app.get(&format!("{base}limit=-1")).send().await, 400, "invalid_query", "limit");
        expect_field(&app.get(&format!("{base}limit=ten")).send().await, 400, "invalid_query", "limit");
    }
    // The bounds themselves are fine.
    for limit in [1, 500] {
        let res = app.get(&format!("/v1/clients?limit={limit}")).send().await;
        assert_eq!(res.status.as_u16(), 200, "{}", res.text());
        assert_eq!(res.json()["data"].as_array().unwrap().len(), 1);
    }
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn wrong_content_type(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    let body = r#"{"name": "Plain"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "text/json", "multipart/form-data"] {
        for (method, path) in [
            (Method::POST, "/v1/clients"),
            (Method::PATCH, "/v1/clients/acme"),
            (Method::POST, "/v1/clients/acme/knowledge"),
            (Method::PATCH, entry.as_str()),
        ] {
            let res = app.request(method.clone(), path).token(&app.admin).raw_body(content_type, body).send().await;
            res.problem(415, "unsupported_media_type");
        }
    }
    // No content type at all.
    let res = app.request(Method::POST, "/v1/clients").token(&app.admin).send().await;
    res.problem(415, "unsupported_media_type");
    assert_eq!(counts(&app).await, before);
    // A charset parameter is fine.
    let res = app
        .request(Method::POST, "/v1/clients")
        .token(&app.admin)
        .raw_body("application/json; charset=utf-8", body)
        .send()
        .await;
    assert_eq!(res.status.as_u16(), 201, "{}", res.text());
}

#[sqlx::test]
async fn body_over_one_mebibyte(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    let big = serde_json::to_vec(&json!({"name": "Big", "notes": "x".repeat(1024 * 1024)})).unwrap();
    assert!(big.len() > 1024 * 1024);
    for (method, path) in [
        (Method::POST, "/v1/clients"),
        (Method::PATCH, "/v1/clients/acme"),
        (Method::POST, "/v1/clients/acme/knowledge"),
        (Method::PATCH, entry.as_str()),
    ] {
        let res = app.request(method, path).token(&app.admin).raw_body("application/json", big.clone()).send().await;
        res.problem(413, "payload_too_large");
    }
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn unknown_query_parameter(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    for (path, field) in [
        ("/v1/clients?colour=red", "colour"),
        ("/v1/clients?status=active&sort=name", "sort"),
        ("/v1/clients/acme/knowledge?kindd=faq", "kindd"),
        ("/v1/knowledge/search?q=seed&clinet=acme", "clinet"),
    ] {
        let message = expect_field(&app.get(path).send().await, 400, "invalid_query", field);
        assert!(message.contains("not a known field"), "{message}");
    }
    // Operations without query parameters refuse them too.
    expect_field(&app.get("/v1/clients/acme?verbose=1").send().await, 400, "invalid_query", "verbose");
    expect_field(&app.get(&format!("{entry}?verbose=1")).send().await, 400, "invalid_query", "verbose");
    expect_field(
        &app.post("/v1/clients?dry_run=true", json!({"name": "New"})).send().await,
        400,
        "invalid_query",
        "dry_run",
    );
    let res =
        app.post("/v1/clients/acme/knowledge?x=1", json!({"kind": "note", "title": "t", "body": "b"})).send().await;
    expect_field(&res, 400, "invalid_query", "x");
    expect_field(&app.patch("/v1/clients/acme?x=1", json!({"name": "New"})).send().await, 400, "invalid_query", "x");
    expect_field(&app.patch(&format!("{entry}?x=1"), json!({"title": "New"})).send().await, 400, "invalid_query", "x");
    // A typo on DELETE must not fall back to archiving.
    expect_field(&app.delete("/v1/clients/acme?hrad=true").send().await, 400, "invalid_query", "hrad");
    expect_field(&app.delete(&format!("{entry}?force=1")).send().await, 400, "invalid_query", "force");
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.get("/v1/clients/acme").send().await.json()["status"], "onboarding");
}

#[sqlx::test]
async fn bad_status_in_query(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    for status in ["deleted", "ACTIVE", "1"] {
        let res = app.get(&format!("/v1/clients?status={status}")).send().await;
        let body = expect_field(&res, 400, "invalid_query", "status");
        assert!(body.contains("onboarding"), "{body}");
    }
    expect_field(&app.get("/v1/clients/acme/knowledge?kind=gossip").send().await, 400, "invalid_query", "kind");
    expect_field(&app.delete("/v1/clients/acme?hard=yes").send().await, 400, "invalid_query", "hard");
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.get("/v1/clients/acme").send().await.json()["status"], "onboarding");
}

#[sqlx::test]
async fn nul_characters_are_refused_by_field(pool: PgPool) {
    let (app, entry) = seeded(pool).await;
    let before = counts(&app).await;
    expect_field(&post_client(&app, json!({"name": "x", "notes": "a\u{0}b"})).await, 422, "validation_failed", "notes");
    let res = post_client(&app, json!({"name": "x", "accounts": {"tiktok": "t\u{0}"}})).await;
    expect_field(&res, 422, "validation_failed", "accounts.tiktok");
    let res = post_client(&app, json!({"name": "x", "contacts": [{"name": "A\u{0}"}]})).await;
    expect_field(&res, 422, "validation_failed", "contacts[0].name");
    expect_field(
        &app.patch("/v1/clients/acme", json!({"name": "\u{0}"})).send().await,
        422,
        "validation_failed",
        "name",
    );
    let res =
        app.post("/v1/clients/acme/knowledge", json!({"kind": "note", "title": "t", "body": "a\u{0}b"})).send().await;
    expect_field(&res, 422, "validation_failed", "body");
    expect_field(
        &app.patch(&entry, json!({"tags": ["ok", "\u{0}"]})).send().await,
        422,
        "validation_failed",
        "tags[1]",
    );
    expect_field(&app.get("/v1/knowledge/search?q=a%00b").send().await, 400, "invalid_query", "q");
    expect_field(&app.get("/v1/clients?industry=%00").send().await, 400, "invalid_query", "industry");
    app.get("/v1/clients/%00").send().await.problem(404, "not_found");
    app.delete("/v1/clients/acme%00").send().await.problem(404, "not_found");
    assert_eq!(counts(&app).await, before);
}

#[sqlx::test]
async fn problems_never_leak_sql_or_stack_traces(pool: PgPool) {
    let (app, _) = seeded(pool).await;
    let before = counts(&app).await;
    let responses = [
        (409, post_client(&app, json!({"name": "Acme"})).await),
        (409, post_client(&app, json!({"name": "Other", "slug": "acme"})).await),
        (422, app.patch("/v1/clients/acme", json!({"slug": "-"})).send().await),
        (422, post_client(&app, json!({"name": "x", "notes": "nul \u{0} byte"})).await),
        (
            422,
            app.post("/v1/clients/acme/knowledge", json!({"kind": "note", "title": "t", "body": "a\u{0}b"}))
                .send()
                .await,
        ),
        (400, app.get("/v1/knowledge/search?q=%00'%22);DROP%20TABLE").send().await),
        (404, app.get("/v1/clients/%00").send().await),
        (400, app.get("/v1/clients?q=%00").send().await),
        (
            400,
            app.request(Method::POST, "/v1/clients")
                .token(&app.admin)
                .raw_body("application/json", "{\"name\": \"\\ud800\"}")
                .send()
                .await,
        ),
        (400, app.get("/v1/clients?limit=99999999999999999999").send().await),
    ];
    for (status, res) in &responses {
        let text = res.text();
        assert_eq!(res.status.as_u16(), *status, "{text}");
        for needle in [
            "SELECT",
            "INSERT",
            "UPDATE ",
            "knowledge.",
            "constraint",
            "duplicate key",
            "sqlx",
            "panicked",
            "backtrace",
            "src/",
            ".rs:",
            "SQLSTATE",
        ] {
            assert!(!text.contains(needle), "`{needle}` leaked: {text}");
        }
        let body = res.json();
        for key in ["type", "title", "status", "detail", "code", "instance", "request_id", "errors"] {
            assert!(body.get(key).is_some(), "problem lacks {key}: {body}");
        }
    }
    // SQL-looking search text is only text.
    let res = app.get("/v1/knowledge/search?q=seed'%3B%20DROP%20TABLE%20knowledge.entries%3B--").send().await;
    assert_eq!(res.status.as_u16(), 200, "{}", res.text());
    assert_eq!(counts(&app).await, before);
}
