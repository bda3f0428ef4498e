//! The platform simulator (docs/PLATFORMS.md): all six platforms on their real paths and
//! shapes, each under its registry `sim_prefix` (`/meta/v25.0/act_1/insights`,
//! `/clickup/api/v2/list/1/task`, ...), for the sandbox mode, the demo, tests and
//! benchmarks. Each platform module serves its routes and its real throttling and
//! error bodies; this module adds what they share: per-platform latency, rate
//! limit (answering with that platform's throttling error when exceeded) and
//! fault rate, call statistics (`GET /_sim/stats`), runtime configuration
//! (`POST /_sim/config`) and `POST /_sim/reset`.

pub mod clickup;
pub mod google_ads;
pub mod google_drive;
pub mod llm;
pub mod meta;
pub mod whatsapp;

use std::{
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

use crate::platforms::REGISTRY;

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
}

#[derive(Default)]
struct Inner {
    behaviour: RwLock<BTreeMap<&'static str, Behaviour>>,
    limiters: Mutex<BTreeMap<&'static str, Arc<DefaultDirectRateLimiter>>>,
    counters: BTreeMap<&'static str, Counters>,
    meta: meta::State,
    google_ads: google_ads::State,
    google_drive: google_drive::State,
    clickup: clickup::State,
    whatsapp: whatsapp::State,
    llm: llm::State,
}

/// Shared simulator state; cheap to clone.
#[derive(Clone)]
pub struct SimState(Arc<Inner>);

impl Default for SimState {
    fn default() -> Self {
        Self::new(Behaviour::default())
    }
}

impl SimState {
    /// Every platform starts with `behaviour`.
    pub fn new(behaviour: Behaviour) -> Self {
        let inner =
            Inner { counters: REGISTRY.iter().map(|p| (p.key, Counters::default())).collect(), ..Inner::default() };
        let state = Self(Arc::new(inner));
        for p in REGISTRY {
            state.configure(p.key, behaviour.clone());
        }
        state
    }

    pub fn meta(&self) -> &meta::State {
        &self.0.meta
    }
    pub fn google_ads(&self) -> &google_ads::State {
        &self.0.google_ads
    }
    pub fn google_drive(&self) -> &google_drive::State {
        &self.0.google_drive
    }
    pub fn clickup(&self) -> &clickup::State {
        &self.0.clickup
    }
    pub fn whatsapp(&self) -> &whatsapp::State {
        &self.0.whatsapp
    }
    pub fn llm(&self) -> &llm::State {
        &self.0.llm
    }

    pub fn configure(&self, platform: &'static str, behaviour: Behaviour) {
        let limiter = behaviour.rate_per_second.map(|rate| {
            let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let burst = NonZeroU32::new((rate.ceil() as u32).max(1)).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(
                Quota::with_period(period).unwrap_or(Quota::per_second(NonZeroU32::MIN)).allow_burst(burst),
            ))
        });
        let mut limiters = self.0.limiters.lock().expect("sim limiters");
        match limiter {
            Some(l) => limiters.insert(platform, l),
            None => limiters.remove(platform),
        };
        self.0.behaviour.write().expect("sim behaviour").insert(platform, behaviour);
    }

    pub fn stats(&self) -> SimStats {
        let platforms = REGISTRY
            .iter()
            .map(|p| {
                let c = &self.0.counters[p.key];
                let stats = PlatformStats {
                    calls: c.calls.load(Ordering::Relaxed),
                    throttled: c.throttled.load(Ordering::Relaxed),
                    faults: c.faults.load(Ordering::Relaxed),
                    created: self.created(p.key),
                };
                (p.key.to_string(), stats)
            })
            .collect();
        SimStats { platforms }
    }

    fn created(&self, platform: &str) -> BTreeMap<String, u64> {
        match platform {
            "meta" => self.0.meta.created(),
            "google_ads" => self.0.google_ads.created(),
            "google_drive" => self.0.google_drive.created(),
            "clickup" => self.0.clickup.created(),
            "whatsapp" => self.0.whatsapp.created(),
            "llm" => self.0.llm.created(),
            _ => BTreeMap::new(),
        }
    }

    /// Forgets every created object and counter (behaviour stays).
    pub fn reset(&self) {
        for c in self.0.counters.values() {
            c.calls.store(0, Ordering::Relaxed);
            c.throttled.store(0, Ordering::Relaxed);
            c.faults.store(0, Ordering::Relaxed);
        }
        self.0.meta.reset();
        self.0.google_ads.reset();
        self.0.google_drive.reset();
        self.0.clickup.reset();
        self.0.whatsapp.reset();
        self.0.llm.reset();
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimStats {
    pub platforms: BTreeMap<String, PlatformStats>,
}

/// The simulator's HTTP router.
pub fn router(state: SimState) -> Router {
    let platform = |key: &'static str, routes: Router<SimState>| {
        routes.layer(from_fn_with_state((state.clone(), key), conditions))
    };
    let prefix = |key: &str| crate::platforms::info(key).expect("registered platform").sim_prefix;
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
        .route("/_sim/config", post(configure))
        .nest(prefix("meta"), platform("meta", meta::router()))
        .nest(prefix("google_ads"), platform("google_ads", google_ads::router()))
        .nest(prefix("google_drive"), platform("google_drive", google_drive::router()))
        .nest(prefix("clickup"), platform("clickup", clickup::router()))
        .nest(prefix("whatsapp"), platform("whatsapp", whatsapp::router()))
        .nest(prefix("llm"), platform("llm", llm::router()))
        .with_state(state)
}

/// Latency, rate limit and faults of one platform, in front of its routes.
async fn conditions(State((state, key)): State<(SimState, &'static str)>, req: Request, next: Next) -> Response {
    let counters = &state.0.counters[key];
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
        return throttled(key);
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
        return fault_response(key);
    }
    next.run(req).await
}

fn throttled(key: &str) -> Response {
    match key {
        "meta" => meta::throttled(),
        "google_ads" => google_ads::throttled(),
        "google_drive" => google_drive::throttled(),
        "clickup" => clickup::throttled(),
        "whatsapp" => whatsapp::throttled(),
        _ => llm::throttled(),
    }
}

fn fault_response(key: &str) -> Response {
    match key {
        "meta" => meta::fault(),
        "google_ads" => google_ads::fault(),
        "google_drive" => google_drive::fault(),
        "clickup" => clickup::fault(),
        "whatsapp" => whatsapp::fault(),
        _ => llm::fault(),
    }
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
        Some(key) => match crate::platforms::info(key) {
            Some(p) => vec![p.key],
            None => return (axum::http::StatusCode::NOT_FOUND, format!("unknown platform {key}")).into_response(),
        },
        None => REGISTRY.iter().map(|p| p.key).collect(),
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

    #[test]
    fn unit_is_deterministic_and_spread() {
        assert_eq!(unit(&["act_1", "2026-06-01"]), unit(&["act_1", "2026-06-01"]));
        assert_ne!(unit(&["act_1", "2026-06-01"]), unit(&["act_1", "2026-06-02"]));
        let mean: f64 = (0..1000).map(|i| unit(&["x", &i.to_string()])).sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
