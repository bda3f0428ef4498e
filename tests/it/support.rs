//! The test harness: the real application router over a fresh database, called
//! in-process (the same middleware stack a network client goes through).

#![allow(dead_code)]

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;
use switchboard::{api, api::AppState, config::Config, domain::scope::Scope, store::audit::Actor};

use switchboard::platforms::{Mode, Platforms};
use tower::ServiceExt;

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256-signing";
/// The WhatsApp webhook secrets of test apps (the service generates its own per installation).
pub const WHATSAPP_APP_SECRET: &str = "test-whatsapp-app-secret";
pub const WHATSAPP_VERIFY_TOKEN: &str = "test-whatsapp-verify-token";
/// Base64 of 32 bytes: seals secrets at rest in tests.
pub const ENCRYPTION_KEY: &str = "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0hISE=";

/// The key ring of `test_config()`.
pub fn test_keys() -> Arc<switchboard::crypto::KeyRing> {
    Arc::new(switchboard::crypto::KeyRing::parse(ENCRYPTION_KEY, None).expect("test key"))
}

/// A plain HTTP client for tests that call a server directly. reqwest is built without
/// a TLS provider of its own (src/tls.rs), so install the service's first.
pub fn http_client() -> reqwest::Client {
    switchboard::tls::install_provider();
    reqwest::Client::new()
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub pool: PgPool,
    /// A token with the `admin` scope.
    pub admin: String,
    /// The in-process platform simulator the app's platforms point at.
    pub sim: switchboard::sim::Running,
}

pub fn test_config() -> Config {
    Config {
        database_url: Some("postgres://unused".into()),
        jwt_secret: Some(JWT_SECRET.into()),
        encryption_key: Some(ENCRYPTION_KEY.into()),
        rate_limit_per_minute: 100_000,
        rate_limit_burst: 100_000,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn new(pool: PgPool) -> Self {
        Self::with_config(pool, test_config()).await
    }

    pub async fn with_config(pool: PgPool, config: Config) -> Self {
        let secret = config
            .jwt_secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
            .expect("test config has a secret");
        let keys = Arc::new(switchboard::server::key_ring(&config).expect("test config has an encryption key"));
        let simulator = switchboard::platforms::simulator(switchboard::sim::Behaviour::default());
        let sim = switchboard::sim::spawn("127.0.0.1:0".parse().unwrap(), simulator).await.expect("simulator");
        let mut settings = config.platforms.sandboxed(&sim.base_url);
        settings.whatsapp.app_secret.get_or_insert_with(|| WHATSAPP_APP_SECRET.into());
        settings.whatsapp.verify_token.get_or_insert_with(|| WHATSAPP_VERIFY_TOKEN.into());
        // Its own call counter: apps in one test process never count each other's calls.
        let platforms = Arc::new(Platforms::new(Mode::Sandbox, settings, Arc::default()));
        let runtime = switchboard::workflows::Runtime::new(pool.clone(), platforms).configured(&config);
        let state = AppState::new(runtime, config, secret.as_bytes(), keys).expect("state");
        switchboard::prompts::seed_defaults(&pool).await.expect("seed prompt templates");
        let router = api::app(state.clone());
        let mut app = Self { router, state, pool, admin: String::new(), sim };
        app.admin = app.token(&["admin"]).await;
        app
    }

    /// Issues a token with these scopes (names as in the API, e.g. `clients:read`).
    pub async fn token(&self, scopes: &[&str]) -> String {
        self.token_named("test-token", scopes).await
    }

    pub async fn token_named(&self, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<Scope> = scopes.iter().map(|s| s.parse().expect("known scope")).collect();
        self.state.tokens.issue(&self.pool, &Actor::cli(), name, &scopes, None).await.expect("issue token").token
    }

    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        TestRequest {
            router: self.router.clone(),
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }

    pub fn get(&self, path: &str) -> TestRequest {
        self.request(Method::GET, path).token(&self.admin)
    }

    pub fn post(&self, path: &str, json: Value) -> TestRequest {
        self.request(Method::POST, path).token(&self.admin).json(&json)
    }

    pub fn patch(&self, path: &str, json: Value) -> TestRequest {
        self.request(Method::PATCH, path).token(&self.admin).json(&json)
    }

    pub fn delete(&self, path: &str) -> TestRequest {
        self.request(Method::DELETE, path).token(&self.admin)
    }

    /// Creates a client as admin and returns its JSON.
    pub async fn create_client(&self, body: Value) -> Value {
        let res = self.post("/v1/clients", body).send().await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        res.json()
    }

    /// Starts this app's change listener (as a replica runs it) and waits until it has
    /// run LISTEN, so notifications sent from now on reach it. Abort the handle to stop it.
    pub async fn follow_changes(&self) -> tokio::task::JoinHandle<()> {
        let state = self.state.clone();
        let listener = tokio::spawn(async move { state.follow_changes().await });
        for _ in 0..100 {
            let n = self
                .count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")
                .await;
            if n > 0 {
                return listener;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the change listener never ran LISTEN");
    }

    /// A customer writes to the business from `number` (E.164), opening their 24 h
    /// WhatsApp window on both sides: the simulator's (`POST /_sim/whatsapp/inbound`,
    /// where the simulator offers it) and the service's (a signed inbound webhook, as
    /// Meta delivers it, timestamped now).
    pub async fn customer_writes(&self, number: &str, text: &str) {
        let _ = http_client()
            .post(format!("{}/_sim/whatsapp/inbound", self.sim.base_url))
            .json(&serde_json::json!({"from": number, "text": text}))
            .send()
            .await;
        let digits = number.trim_start_matches('+');
        let id = format!("wamid.in.{digits}.{}", uuid::Uuid::now_v7().simple());
        let body = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "100000000000001"},
                "contacts": [{"profile": {"name": "Customer"}, "wa_id": digits}],
                "messages": [{"from": digits, "id": id, "timestamp": chrono::Utc::now().timestamp().to_string(),
                              "type": "text", "text": {"body": text}}]
            }}]}]
        });
        let body = serde_json::to_vec(&body).expect("json");
        let res = self
            .request(Method::POST, "/v1/inbound/whatsapp")
            .header("x-hub-signature-256", &whatsapp_signature(&body))
            .raw_body("application/json", body)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&self.pool).await.expect("count query")
    }
}

/// `X-Hub-Signature-256` of a body, keyed with the test apps' WhatsApp app secret.
pub fn whatsapp_signature(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WHATSAPP_APP_SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct TestRequest {
    router: Router,
    builder: axum::http::request::Builder,
    body: Body,
}

impl TestRequest {
    pub fn token(mut self, token: &str) -> Self {
        self.builder = self.builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        self
    }

    /// Removes nothing: builds a request with no credentials when used on `app.request`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn json(mut self, value: &Value) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, "application/json");
        self.body = Body::from(serde_json::to_vec(value).expect("json"));
        self
    }

    pub fn raw_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, content_type);
        self.body = Body::from(body.into());
        self
    }

    pub async fn send(self) -> TestResponse {
        let request = self.builder.body(self.body).expect("request");
        let response = self.router.oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        TestResponse { status, headers, body }
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem body with this status and code, returning it.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        body
    }

    /// The `field` names of a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }
}
