//! The platform simulator (docs/PLATFORMS.md): each vendor on its real paths and
//! shapes, under a prefix (`/meta/v25.0/act_1/insights`, `/clickup/api/v2/list/1/task`,
//! ...), for the sandbox mode, the demo, tests and benchmarks. Each vendor module is a
//! strict stand-in of the vendor: it states the vendor's facts itself (paths, scopes,
//! error bodies) and imports nothing from the connectors (`platforms` uses the simulator,
//! never the other way). A module's `State` implements [`Vendor`]; this module adds what
//! they share: per-vendor latency, rate limit (answering with that vendor's throttling
//! error when exceeded) and fault rate, call statistics (`GET /_sim/stats`, with every
//! error answer counted by the vendor's own code, read by [`Vendor::error_code`]), runtime
//! configuration (`POST /_sim/config`) and `POST /_sim/reset`. Which vendors are served,
//! and where, comes from the caller ([`SimState::new`]; Switchboard's list is the
//! platform registry, `platforms::simulator`).

pub mod clickup;
pub mod google_ads;
pub mod google_drive;
pub mod llm;
pub mod meta;
pub mod whatsapp;

use std::{
    any::Any,
    collections::BTreeMap,
    num::NonZeroU32,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Request, State},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How one simulated platform behaves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Added to every answer.
    #[serde(default)]
    pub latency_ms: u64,
    /// Requests per second before the platform's throttling error; `None` = unlimited.
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Share of requests (0–1) answered with the platform's 5xx error.
    #[serde(default)]
    pub fault_rate: f64,
    /// Share of requests (0–1) that hang for 60 s (the client's timeout fires first).
    #[serde(default)]
    pub timeout_rate: f64,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    throttled: AtomicU64,
    faults: AtomicU64,
    /// Error answers by the vendor's code (e.g. `"131047"`, `"100/1504018"`, `"OAUTH_025"`).
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn count_error(&self, code: String) {
        *self.errors.lock().expect("sim error counters").entry(code).or_default() += 1;
    }
}

/// The largest error body the simulator reads back to count its code.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One simulated vendor: its module's state, routes and answers. The simulator knows
/// nothing else of a platform; which vendors it serves, and where, is the caller's list
/// (Switchboard's is the platform registry, `platforms::simulator`).
pub trait Vendor: Any + Send + Sync {
    /// Its routes on its real paths, over this state.
    fn routes(self: Arc<Self>) -> Router;
    /// Its answer when the configured rate is exceeded (its real throttling error).
    fn throttled(&self) -> Response;
    /// Its 5xx answer, for the configured fault rate.
    fn fault(&self) -> Response;
    /// [`Self::throttled`] for a request to `path` (a vendor whose errors name the requested
    /// API version, like Google Ads' `@type`, takes it from the path).
    fn throttled_at(&self, _path: &str) -> Response {
        self.throttled()
    }
    /// [`Self::fault`] for a request to `path`.
    fn fault_at(&self, _path: &str) -> Response {
        self.fault()
    }
    /// Objects created, by kind (e.g. `folders`, `lists`, `tasks`, `messages`).
    fn created(&self) -> BTreeMap<String, u64>;
    /// Forgets every created object.
    fn reset(&self);
    /// The vendor's own code in one of its error bodies (what a client would branch on),
    /// for the `errors` count of `GET /_sim/stats`; `None` when the body carries none.
    fn error_code(&self, body: &serde_json::Value) -> Option<String>;
    /// Its own controls (what a test or demo drives that the vendor's API has no call for, e.g.
    /// a customer writing in), served under `/_sim/<key>` without latency, limits or faults.
    fn controls(self: Arc<Self>) -> Option<Router> {
        None
    }
}

/// A vendor to serve: `key` names it in stats and config, `prefix` is the path it is served under.
pub struct Mount {
    key: &'static str,
    prefix: &'static str,
    vendor: Arc<dyn Vendor>,
}

impl Mount {
    /// A fresh `V` (its default state).
    pub fn new<V: Vendor + Default>(key: &'static str, prefix: &'static str) -> Self {
        Self { key, prefix, vendor: Arc::new(V::default()) }
    }
}

struct Served {
    prefix: &'static str,
    vendor: Arc<dyn Vendor>,
    counters: Counters,
}

struct Inner {
    behaviour: RwLock<BTreeMap<&'static str, Behaviour>>,
    limiters: Mutex<BTreeMap<&'static str, Arc<DefaultDirectRateLimiter>>>,
    vendors: BTreeMap<&'static str, Served>,
}

/// Shared simulator state; cheap to clone.
#[derive(Clone)]
pub struct SimState(Arc<Inner>);

impl SimState {
    /// Serves `vendors`, each starting with `behaviour`.
    pub fn new(vendors: impl IntoIterator<Item = Mount>, behaviour: Behaviour) -> Self {
        let vendors = vendors
            .into_iter()
            .map(|m| (m.key, Served { prefix: m.prefix, vendor: m.vendor, counters: Counters::default() }))
            .collect();
        let state = Self(Arc::new(Inner { behaviour: RwLock::default(), limiters: Mutex::default(), vendors }));
        for key in state.keys() {
            state.configure(key, behaviour.clone());
        }
        state
    }

    /// The keys of the vendors served, in key order.
    pub fn keys(&self) -> Vec<&'static str> {
        self.0.vendors.keys().copied().collect()
    }

    /// The state of the vendor of type `V` (e.g. `sim::whatsapp::State`, to see what was sent).
    ///
    /// # Panics
    /// When no `V` is served: a test asking for a vendor it did not mount.
    pub fn vendor<V: Vendor>(&self) -> &V {
        self.0
            .vendors
            .values()
            .find_map(|s| (s.vendor.as_ref() as &dyn Any).downcast_ref::<V>())
            .unwrap_or_else(|| panic!("{} is not simulated here", std::any::type_name::<V>()))
    }

    /// Changes one vendor's behaviour; an unknown key changes nothing.
    pub fn configure(&self, platform: &str, behaviour: Behaviour) {
        let Some((&key, _)) = self.0.vendors.get_key_value(platform) else { return };
        let limiter = behaviour.rate_per_second.map(|rate| {
            let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let burst = NonZeroU32::new((rate.ceil() as u32).max(1)).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(
                Quota::with_period(period).unwrap_or(Quota::per_second(NonZeroU32::MIN)).allow_burst(burst),
            ))
        });
        let mut limiters = self.0.limiters.lock().expect("sim limiters");
        match limiter {
            Some(l) => limiters.insert(key, l),
            None => limiters.remove(key),
        };
        self.0.behaviour.write().expect("sim behaviour").insert(key, behaviour);
    }

    pub fn stats(&self) -> SimStats {
        let platforms = self
            .0
            .vendors
            .iter()
            .map(|(key, s)| {
                let c = &s.counters;
                let stats = PlatformStats {
                    calls: c.calls.load(Ordering::Relaxed),
                    throttled: c.throttled.load(Ordering::Relaxed),
                    faults: c.faults.load(Ordering::Relaxed),
                    created: s.vendor.created(),
                    errors: c.errors.lock().expect("sim error counters").clone(),
                };
                (key.to_string(), stats)
            })
            .collect();
        SimStats { platforms }
    }

    /// Forgets every created object and counter (behaviour stays).
    pub fn reset(&self) {
        for s in self.0.vendors.values() {
            s.counters.calls.store(0, Ordering::Relaxed);
            s.counters.throttled.store(0, Ordering::Relaxed);
            s.counters.faults.store(0, Ordering::Relaxed);
            s.counters.errors.lock().expect("sim error counters").clear();
            s.vendor.reset();
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlatformStats {
    pub calls: u64,
    /// Answered with the platform's throttling error.
    pub throttled: u64,
    pub faults: u64,
    /// Objects created, by kind (e.g. `folders`, `lists`, `tasks`, `messages`).
    pub created: BTreeMap<String, u64>,
    /// Error answers (4xx/5xx, throttling and faults included) by the vendor's own code.
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimStats {
    pub platforms: BTreeMap<String, PlatformStats>,
}

/// The simulator's HTTP router: each vendor under its prefix, behind its conditions.
pub fn router(state: SimState) -> Router {
    let mut router = Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
        .route("/_sim/config", post(configure))
        .with_state(state.clone());
    for (&key, served) in &state.0.vendors {
        let routes = served.vendor.clone().routes().layer(from_fn_with_state((state.clone(), key), conditions));
        router = router.nest(served.prefix, routes);
        if let Some(controls) = served.vendor.clone().controls() {
            router = router.nest(&format!("/_sim/{key}"), controls);
        }
    }
    router
}

/// Latency, rate limit and faults of one vendor, in front of its routes; counts every
/// error answer by the vendor's code.
async fn conditions(State((state, key)): State<(SimState, &'static str)>, req: Request, next: Next) -> Response {
    let served = &state.0.vendors[key];
    let response = apply_conditions(&state, key, req, next).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    if let Some(code) = serde_json::from_slice(&bytes).ok().and_then(|v| served.vendor.error_code(&v)) {
        served.counters.count_error(code);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn apply_conditions(state: &SimState, key: &'static str, req: Request, next: Next) -> Response {
    let served = &state.0.vendors[key];
    let counters = &served.counters;
    counters.calls.fetch_add(1, Ordering::Relaxed);
    let behaviour = state.0.behaviour.read().expect("sim behaviour").get(key).cloned().unwrap_or_default();
    if behaviour.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behaviour.latency_ms)).await;
    }
    let limiter = state.0.limiters.lock().expect("sim limiters").get(key).cloned();
    if let Some(limiter) = limiter
        && limiter.check().is_err()
    {
        counters.throttled.fetch_add(1, Ordering::Relaxed);
        return served.vendor.throttled_at(req.uri().path());
    }
    let (fault, hang) = {
        let mut rng = rand::rng();
        (rng.random_bool(behaviour.fault_rate.clamp(0.0, 1.0)), rng.random_bool(behaviour.timeout_rate.clamp(0.0, 1.0)))
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if fault {
        counters.faults.fetch_add(1, Ordering::Relaxed);
        return served.vendor.fault_at(req.uri().path());
    }
    next.run(req).await
}

async fn stats(State(state): State<SimState>) -> Json<SimStats> {
    Json(state.stats())
}

async fn reset(State(state): State<SimState>) -> impl IntoResponse {
    state.reset();
    Json(state.stats())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRequest {
    /// A registry key; all platforms when absent.
    platform: Option<String>,
    #[serde(flatten)]
    behaviour: Behaviour,
}

async fn configure(State(state): State<SimState>, Json(req): Json<ConfigRequest>) -> Response {
    let targets: Vec<&'static str> = match req.platform.as_deref() {
        Some(key) => match state.keys().into_iter().find(|k| *k == key) {
            Some(key) => vec![key],
            None => return (axum::http::StatusCode::NOT_FOUND, format!("unknown platform {key}")).into_response(),
        },
        None => state.keys(),
    };
    for key in targets {
        state.configure(key, req.behaviour.clone());
    }
    Json(state.stats()).into_response()
}

/// A running simulator.
pub struct Running {
    pub base_url: String,
    pub state: SimState,
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves the simulator on `addr` (port 0 for any free port) in the background.
pub async fn spawn(addr: std::net::SocketAddr, state: SimState) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(Running { base_url, state, task })
}

/// The code of a Graph API error body (Meta, WhatsApp): `code`, or `code/error_subcode`.
pub fn graph_error_code(body: &serde_json::Value) -> Option<String> {
    let error = &body["error"];
    let code = error["code"].as_i64()?;
    Some(match error["error_subcode"].as_i64() {
        Some(sub) => format!("{code}/{sub}"),
        None => code.to_string(),
    })
}

/// The code of an OAuth token-endpoint error (`{"error": "invalid_grant"}`), shared by the Google vendors.
pub fn oauth_error_code(body: &serde_json::Value) -> Option<String> {
    body["error"].as_str().map(String::from)
}

/// A deterministic number in `[0, 1)` from the given parts (same parts, same number),
/// for metrics that must not change between runs.
pub fn unit(parts: &[&str]) -> f64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// A fresh id for a created object (`prefix` + 12 hex digits).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor that answers every request with its name, and says who it is when throttled or faulty.
    #[derive(Default)]
    struct Fake<const N: u8>;

    impl<const N: u8> Vendor for Fake<N> {
        fn routes(self: Arc<Self>) -> Router {
            Router::new().route("/ping", get(|| async { format!("pong {N}") }))
        }
        fn throttled(&self) -> Response {
            (axum::http::StatusCode::TOO_MANY_REQUESTS, format!("slow down, says {N}")).into_response()
        }
        fn fault(&self) -> Response {
            (axum::http::StatusCode::BAD_GATEWAY, Json(serde_json::json!({"code": format!("{N} is down")})))
                .into_response()
        }
        fn created(&self) -> BTreeMap<String, u64> {
            BTreeMap::from([(format!("things of {N}"), u64::from(N))])
        }
        fn reset(&self) {}
        fn error_code(&self, body: &serde_json::Value) -> Option<String> {
            body["code"].as_str().map(String::from)
        }
        fn controls(self: Arc<Self>) -> Option<Router> {
            (N == 2).then(|| Router::new().route("/knock", post(|| async { format!("{N} opens") })))
        }
    }

    /// Each vendor's conditions, counters and answers are its own: throttling one answers in its words,
    /// and its error answers are counted by its own code.
    #[tokio::test]
    async fn each_vendor_answers_and_counts_under_its_own_key() {
        crate::tls::install_provider();
        let state = SimState::new(
            [Mount::new::<Fake<1>>("one", "/one"), Mount::new::<Fake<2>>("two", "/two")],
            Behaviour::default(),
        );
        let running = spawn("127.0.0.1:0".parse().unwrap(), state.clone()).await.unwrap();
        let get = |path: &str| {
            let url = format!("{}{path}", running.base_url);
            async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
        };
        assert_eq!(get("/one/ping").await, "pong 1");
        state.configure("two", Behaviour { rate_per_second: Some(0.001), ..Behaviour::default() });
        assert_eq!(get("/two/ping").await, "pong 2");
        assert_eq!(get("/two/ping").await, "slow down, says 2");
        state.configure("one", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
        assert_eq!(get("/one/ping").await, r#"{"code":"1 is down"}"#);
        let stats = state.stats().platforms;
        assert_eq!((stats["one"].calls, stats["one"].throttled, stats["one"].faults), (2, 0, 1));
        assert_eq!((stats["two"].calls, stats["two"].throttled, stats["two"].faults), (2, 1, 0));
        assert_eq!(stats["two"].created["things of 2"], 2);
        // Error answers are counted by the vendor's own code; a body without one is not.
        assert_eq!(stats["one"].errors, BTreeMap::from([("1 is down".to_string(), 1)]));
        assert!(stats["two"].errors.is_empty(), "{:?}", stats["two"].errors);
        assert_eq!(state.keys(), ["one", "two"]);
        let _: &Fake<2> = state.vendor::<Fake<2>>();
        // A vendor's own controls sit under /_sim/<key>, outside its limits (two's rate is spent).
        let knock = reqwest::Client::new().post(format!("{}/_sim/two/knock", running.base_url)).send().await.unwrap();
        assert_eq!(knock.text().await.unwrap(), "2 opens");
        assert_eq!(state.stats().platforms["two"].calls, 2);
        state.reset();
        assert_eq!(state.stats().platforms["one"].calls, 0);
        assert!(state.stats().platforms["one"].errors.is_empty());
        running.task.abort();
    }

    #[test]
    fn unit_is_deterministic_and_spread() {
        assert_eq!(unit(&["act_1", "2026-06-01"]), unit(&["act_1", "2026-06-01"]));
        assert_ne!(unit(&["act_1", "2026-06-01"]), unit(&["act_1", "2026-06-02"]));
        let mean: f64 = (0..1000).map(|i| unit(&["x", &i.to_string()])).sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
