//! Authentication (both headers, every rejection), the scope matrix, token
//! management (issue once, list, revoke on every replica, last use) and the rate limit.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{auth::Claims, domain::scope::Scope};
use uuid::Uuid;

use crate::support::{JWT_SECRET, TestApp, TestResponse, test_config};

const ALL_SCOPES: [&str; 10] = [
    "clients:read",
    "clients:write",
    "platforms:act",
    "workflows:read",
    "workflows:run",
    "schedules:write",
    "webhooks:write",
    "tokens:admin",
    "audit:read",
    "admin",
];

fn claims(jti: Uuid, aud: &str, exp: Option<i64>) -> Claims {
    Claims {
        jti,
        sub: format!("token:{jti}"),
        name: "forged".into(),
        scopes: vec![Scope::Admin],
        aud: aud.into(),
        iss: "switchboard".into(),
        iat: Utc::now().timestamp(),
        exp,
    }
}

fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap())
        .unwrap()
}

/// The id of a token, as the service reports it.
async fn token_id(app: &TestApp, token: &str) -> String {
    let res = app.request(Method::GET, "/v1/tokens/current").token(token).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["id"].as_str().unwrap().to_string()
}

async fn current(app: &TestApp, token: &str) -> TestResponse {
    app.request(Method::GET, "/v1/tokens/current").token(token).send().await
}

/// A 401 with the given code and a `WWW-Authenticate` challenge.
fn assert_unauthorized(res: &TestResponse, code: &str) {
    res.problem(401, code);
    let challenge = res.header("www-authenticate").unwrap_or_else(|| panic!("no WWW-Authenticate on {code}"));
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

#[sqlx::test]
async fn tokens_are_accepted_as_bearer_and_as_x_api_key(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let token = app.token_named("make-prod", &["clients:read"]).await;
    let bearer = current(&app, &token).await;
    assert_eq!(bearer.status, StatusCode::OK, "{}", bearer.text());
    assert_eq!(bearer.json()["name"], "make-prod");
    let api_key = app.request(Method::GET, "/v1/tokens/current").header("x-api-key", &token).send().await;
    assert_eq!(api_key.status, StatusCode::OK, "{}", api_key.text());
    assert_eq!(api_key.json()["id"], bearer.json()["id"]);
    let res = app.request(Method::GET, "/v1/clients").header("x-api-key", &token).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

#[sqlx::test]
async fn missing_and_garbage_tokens_are_401(pool: PgPool) {
    let app = TestApp::new(pool).await;
    assert_unauthorized(&app.request(Method::GET, "/v1/clients").send().await, "missing_token");
    assert_unauthorized(
        &app.request(Method::GET, "/v1/clients").header("authorization", "Bearer ").send().await,
        "missing_token",
    );
    assert_unauthorized(&app.request(Method::GET, "/v1/clients").token("not-a-jwt").send().await, "invalid_token");
    assert_unauthorized(
        &app.request(Method::GET, "/v1/clients").header("x-api-key", "garbage.garbage.garbage").send().await,
        "invalid_token",
    );
}

#[sqlx::test]
async fn forged_tokens_are_rejected(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let real_id: Uuid = token_id(&app, &app.admin).await.parse().unwrap();

    // Right claims, signed with another secret.
    let other = sign(&claims(real_id, "switchboard", None), "another-secret-that-is-also-long-enough-for-hs256");
    assert_unauthorized(&current(&app, &other).await, "invalid_token");

    // `alg: none` with an empty signature.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(real_id, "switchboard", None)).unwrap());
    assert_unauthorized(&current(&app, &format!("{header}.{body}.")).await, "invalid_token");

    // The real token with its signature swapped for the forged one's.
    let forged_sig = other.rsplit('.').next().unwrap();
    let (signed_part, _) = app.admin.rsplit_once('.').unwrap();
    assert_unauthorized(&current(&app, &format!("{signed_part}.{forged_sig}")).await, "invalid_token");
}

#[sqlx::test]
async fn expired_foreign_audience_and_unknown_tokens_are_401(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let real_id: Uuid = token_id(&app, &app.admin).await.parse().unwrap();

    let expired = sign(&claims(real_id, "switchboard", Some(Utc::now().timestamp() - 3600)), JWT_SECRET);
    assert_unauthorized(&current(&app, &expired).await, "token_expired");

    let foreign = sign(&claims(real_id, "other", None), JWT_SECRET);
    assert_unauthorized(&current(&app, &foreign).await, "invalid_audience");

    let unknown = sign(&claims(Uuid::now_v7(), "switchboard", None), JWT_SECRET);
    assert_unauthorized(&current(&app, &unknown).await, "unknown_token");

    // A validly signed token for the real row still works (the checks above are not blanket refusals).
    let fine = sign(&claims(real_id, "switchboard", Some(Utc::now().timestamp() + 3600)), JWT_SECRET);
    assert_eq!(current(&app, &fine).await.status, StatusCode::OK);
}

#[sqlx::test]
async fn token_expired_in_the_database_is_401(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res =
        app.post("/v1/tokens", json!({"name": "short", "scopes": ["clients:read"], "expires_in": "1h"})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    sqlx::query("UPDATE auth.api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    // A fresh app has no cached status, so it reads the expired row.
    let fresh = TestApp::new(app.pool.clone()).await;
    assert_unauthorized(&current(&fresh, created["token"].as_str().unwrap()).await, "token_expired");
}

#[sqlx::test]
async fn revoked_token_is_refused_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let token = app.token(&["clients:read"]).await;
    let id = token_id(&app, &token).await; // now cached as valid
    let res = app.delete(&format!("/v1/tokens/{id}")).send().await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_unauthorized(&app.request(Method::GET, "/v1/clients").token(&token).send().await, "token_revoked");
    let revoked_at =
        app.count(&format!("SELECT count(*) FROM auth.api_tokens WHERE id = '{id}' AND revoked_at IS NOT NULL")).await;
    assert_eq!(revoked_at, 1);
    app.delete(&format!("/v1/tokens/{}", Uuid::now_v7())).send().await.problem(404, "not_found");
}

#[sqlx::test]
async fn revocation_reaches_another_replica(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let replica = TestApp::new(pool.clone()).await;
    let listener = replica.follow_changes().await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let token = app.token(&["clients:read"]).await;
    let id = token_id(&replica, &token).await; // the replica caches it as valid
    assert_eq!(current(&replica, &token).await.status, StatusCode::OK);

    let res = app.delete(&format!("/v1/tokens/{id}")).send().await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let mut last = None;
    for _ in 0..40 {
        let res = current(&replica, &token).await;
        if res.status == StatusCode::UNAUTHORIZED {
            last = Some(res);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listener.abort();
    let res = last.expect("the replica still accepts the revoked token after 2 s");
    assert_unauthorized(&res, "token_revoked");
}

/// One API operation with the scope it needs and the status it answers with it.
struct Op {
    method: Method,
    path: String,
    body: Option<Value>,
    scope: &'static str,
    ok: u16,
}

/// Fresh fixtures for every operation (each round may delete or archive them).
async fn operations(app: &TestApp, round: &str) -> Vec<Op> {
    let main = app.create_client(json!({"name": format!("Scope Main {round}")})).await;
    let archive = app.create_client(json!({"name": format!("Scope Archive {round}")})).await;
    let hard = app.create_client(json!({"name": format!("Scope Hard {round}")})).await;
    let c = main["id"].as_str().unwrap().to_string();
    let mut entries = Vec::new();
    for title in ["keep", "drop"] {
        let res = app
            .post(&format!("/v1/clients/{c}/knowledge"), json!({"kind": "note", "title": title, "body": "text"}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        entries.push(res.json()["id"].as_str().unwrap().to_string());
    }
    let victim = app.token_named(&format!("victim-{round}"), &["clients:read"]).await;
    let victim = token_id(app, &victim).await;
    let op = |method: Method, path: String, body: Option<Value>, scope, ok| Op { method, path, body, scope, ok };
    vec![
        op(Method::GET, "/v1/clients".into(), None, "clients:read", 200),
        op(Method::GET, format!("/v1/clients/{c}"), None, "clients:read", 200),
        op(Method::GET, format!("/v1/clients/{c}/knowledge"), None, "clients:read", 200),
        op(Method::GET, format!("/v1/clients/{c}/knowledge/{}", entries[0]), None, "clients:read", 200),
        op(Method::GET, "/v1/knowledge/search?q=text".into(), None, "clients:read", 200),
        op(
            Method::POST,
            "/v1/clients".into(),
            Some(json!({"name": format!("Scope New {round}")})),
            "clients:write",
            201,
        ),
        op(Method::PATCH, format!("/v1/clients/{c}"), Some(json!({"notes": "patched"})), "clients:write", 200),
        op(Method::DELETE, format!("/v1/clients/{}", archive["id"].as_str().unwrap()), None, "clients:write", 200),
        op(Method::DELETE, format!("/v1/clients/{}?hard=true", hard["id"].as_str().unwrap()), None, "admin", 204),
        op(
            Method::POST,
            format!("/v1/clients/{c}/knowledge"),
            Some(json!({"kind": "fact", "title": "t", "body": "b"})),
            "clients:write",
            201,
        ),
        op(
            Method::PATCH,
            format!("/v1/clients/{c}/knowledge/{}", entries[0]),
            Some(json!({"title": "kept"})),
            "clients:write",
            200,
        ),
        op(Method::DELETE, format!("/v1/clients/{c}/knowledge/{}", entries[1]), None, "clients:write", 204),
        op(Method::GET, "/v1/tokens".into(), None, "tokens:admin", 200),
        op(
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({"name": "granted", "scopes": ["tokens:admin"]})),
            "tokens:admin",
            201,
        ),
        op(Method::DELETE, format!("/v1/tokens/{victim}"), None, "tokens:admin", 204),
        op(Method::GET, "/v1/audit-log".into(), None, "audit:read", 200),
    ]
}

async fn send(app: &TestApp, op: &Op, token: &str) -> TestResponse {
    let req = app.request(op.method.clone(), &op.path).token(token);
    match &op.body {
        Some(body) => req.json(body).send().await,
        None => req.send().await,
    }
}

#[sqlx::test]
async fn every_operation_needs_its_scope(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // Without the scope (but with every other non-admin scope): 403 naming it, nothing changes.
    const CHANGES: &str = "SELECT count(*) FROM audit.log WHERE action <> 'token.issue'";
    let ops = operations(&app, "denied").await;
    let changes = app.count(CHANGES).await;
    for op in &ops {
        let others: Vec<&str> = ALL_SCOPES.iter().copied().filter(|s| *s != op.scope && *s != "admin").collect();
        let token = app.token(&others).await;
        let res = send(&app, op, &token).await;
        let body = res.problem(403, "missing_scope");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("`{}`", op.scope)), "{} {}: {detail}", op.method, op.path);
    }
    assert_eq!(app.count(CHANGES).await, changes, "a refused request changed something");

    // With exactly the scope, then with `admin`: through.
    for (round, scopes) in [("narrow", None), ("admin", Some("admin"))] {
        for op in operations(&app, round).await {
            let token = app.token(&[scopes.unwrap_or(op.scope)]).await;
            let res = send(&app, &op, &token).await;
            assert_eq!(res.status.as_u16(), op.ok, "{round}: {} {}: {}", op.method, op.path, res.text());
        }
    }
}

#[sqlx::test]
async fn current_token_needs_no_scope(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let token = app.token_named("whoami", &["workflows:read"]).await;
    let res = current(&app, &token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["name"], "whoami");
    assert_eq!(body["scopes"], json!(["workflows:read"]));
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM auth.api_tokens WHERE id = '{id}' AND name = 'whoami'")).await,
        1
    );
    assert_eq!(body["expires_at"], Value::Null);
}

fn looks_like_jwt(text: &str) -> bool {
    text.contains("eyJ")
}

#[sqlx::test]
async fn issued_token_is_shown_once_and_usable_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post("/v1/tokens", json!({"name": "make-production", "scopes": ["clients:read", "clients:write"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    let token = created["token"].as_str().expect("token in the create response");
    assert!(looks_like_jwt(token));
    assert_eq!(created["name"], "make-production");
    assert_eq!(created["scopes"], json!(["clients:read", "clients:write"]));
    assert_eq!(created["revoked_at"], Value::Null);

    let me = current(&app, token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["id"], created["id"]);
    let res =
        app.request(Method::POST, "/v1/clients").token(token).json(&json!({"name": "Made By New Token"})).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());

    let list = app.get("/v1/tokens").send().await;
    assert_eq!(list.status, StatusCode::OK);
    let text = list.text();
    assert!(!text.contains(token) && !looks_like_jwt(&text), "{text}");
    let listed =
        list.json()["data"].as_array().unwrap().iter().find(|t| t["id"] == created["id"]).cloned().expect("listed");
    assert!(listed.get("token").is_none(), "{listed}");
}

#[sqlx::test]
async fn a_token_cannot_grant_scopes_it_lacks(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let issuer = app.token(&["tokens:admin", "clients:read"]).await;
    let before = app.count("SELECT count(*) FROM auth.api_tokens").await;
    for scopes in [json!(["clients:write"]), json!(["clients:read", "admin"]), json!(["audit:read"])] {
        let res = app
            .request(Method::POST, "/v1/tokens")
            .token(&issuer)
            .json(&json!({"name": "escalate", "scopes": scopes}))
            .send()
            .await;
        let body = res.problem(403, "scope_not_grantable");
        assert!(body["detail"].as_str().unwrap().contains('`'), "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM auth.api_tokens").await, before);
    let res = app
        .request(Method::POST, "/v1/tokens")
        .token(&issuer)
        .json(&json!({"name": "ok", "scopes": ["clients:read"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

#[sqlx::test]
async fn expires_in_sets_expiry_and_bad_input_is_422(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post("/v1/tokens", json!({"name": "monthly", "scopes": ["clients:read"], "expires_in": "30d"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let expires_at: DateTime<Utc> = res.json()["expires_at"].as_str().unwrap().parse().unwrap();
    let expected = Utc::now() + chrono::Duration::days(30);
    assert!((expires_at - expected).num_seconds().abs() < 60, "{expires_at} vs {expected}");
    let me = current(&app, res.json()["token"].as_str().unwrap()).await;
    // The JWT's `exp` has whole seconds; the record may carry milliseconds.
    let claimed: DateTime<Utc> = me.json()["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((claimed - expires_at).num_milliseconds().abs() < 1000, "{claimed} vs {expires_at}");

    let before = app.count("SELECT count(*) FROM auth.api_tokens").await;
    let res =
        app.post("/v1/tokens", json!({"name": "vague", "scopes": ["clients:read"], "expires_in": "soon"})).send().await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), vec!["expires_in"]);

    let res = app.post("/v1/tokens", json!({"name": "typo", "scopes": ["clients:delete"]})).send().await;
    res.problem(422, "validation_failed");
    assert!(res.error_fields().iter().any(|f| f.starts_with("scopes")), "{}", res.text());
    assert_eq!(app.count("SELECT count(*) FROM auth.api_tokens").await, before);
}

async fn last_used(app: &TestApp, id: &str) -> Value {
    let res = app.get("/v1/tokens?limit=500").send().await;
    res.json()["data"].as_array().unwrap().iter().find(|t| t["id"] == id).expect("token listed")["last_used_at"].clone()
}

#[sqlx::test]
async fn last_used_at_is_written_in_batches(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let token = app.token_named("worker", &["clients:read"]).await;
    let id = token_id(&app, &token).await;
    for _ in 0..3 {
        assert_eq!(app.request(Method::GET, "/v1/clients").token(&token).send().await.status, StatusCode::OK);
    }
    // Used, but nothing written yet: no database write per request.
    assert_eq!(last_used(&app, &id).await, Value::Null);
    assert_eq!(app.count("SELECT count(*) FROM auth.api_tokens WHERE last_used_at IS NOT NULL").await, 0);

    let started = Utc::now();
    app.state.tokens.flush_last_used(&app.pool).await.unwrap();
    let at: DateTime<Utc> = last_used(&app, &id).await.as_str().expect("last_used_at set after flush").parse().unwrap();
    assert!((at - started).num_seconds().abs() < 30, "{at}");
    // Tokens never used stay null.
    app.token_named("idle", &["clients:read"]).await;
    let idle_id = sqlx::query_scalar::<_, Uuid>("SELECT id FROM auth.api_tokens WHERE name = 'idle'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string();
    app.state.tokens.flush_last_used(&app.pool).await.unwrap();
    assert_eq!(last_used(&app, &idle_id).await, Value::Null);
}

#[sqlx::test]
async fn rate_limit_is_per_token(pool: PgPool) {
    let config = switchboard::config::Config { rate_limit_per_minute: 60, rate_limit_burst: 3, ..test_config() };
    let app = TestApp::with_config(pool, config).await;
    let token = app.token(&["clients:read"]).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let res = app.request(Method::GET, "/v1/clients").token(&token).send().await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.header("ratelimit-limit"), Some("3"));
        remaining.push(res.header("ratelimit-remaining").expect("RateLimit-Remaining").parse::<u32>().unwrap());
    }
    assert_eq!(remaining, vec![2, 1, 0]);

    let res = app.request(Method::GET, "/v1/clients").token(&token).send().await;
    res.problem(429, "rate_limited");
    let retry: u64 = res.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    let other = app.token(&["clients:read"]).await;
    let res = app.request(Method::GET, "/v1/clients").token(&other).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("ratelimit-remaining"), Some("2"));
}

#[sqlx::test]
async fn the_jwt_secret_rotates_without_invalidating_tokens(pool: PgPool) {
    let old = TestApp::new(pool.clone()).await;
    let held = old.token(&["clients:read"]).await;
    let new_secret = "the-new-jwt-secret-that-is-long-enough-for-hs256";
    let config = |previous: Option<&str>| switchboard::config::Config {
        jwt_secret: Some(new_secret.into()),
        jwt_secrets_previous: previous.map(Into::into),
        ..test_config()
    };

    // During the rotation a token signed with the old secret still works, and new tokens
    // are signed with the new one.
    let rotating = TestApp::with_config(
        pool.clone(),
        config(Some(&format!("unrelated-secret-that-is-long-enough-000,{JWT_SECRET}"))),
    )
    .await;
    assert_eq!(current(&rotating, &held).await.status, StatusCode::OK);
    let fresh = rotating.token(&["clients:read"]).await;
    assert_eq!(current(&rotating, &fresh).await.status, StatusCode::OK);
    assert_unauthorized(&current(&old, &fresh).await, "invalid_token");
    // Revocation and expiry still apply to tokens verified with an earlier secret.
    let forged = sign(&claims(Uuid::now_v7(), "switchboard", None), JWT_SECRET);
    assert_unauthorized(&current(&rotating, &forged).await, "unknown_token");

    // Once the old secret is dropped, its tokens stop working.
    let rotated = TestApp::with_config(pool, config(None)).await;
    assert_unauthorized(&current(&rotated, &held).await, "invalid_token");
    assert_eq!(current(&rotated, &fresh).await.status, StatusCode::OK);
}
