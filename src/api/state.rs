//! What every handler gets: the engine's [`Runtime`] (database, platforms, workflows,
//! client cache) plus what only the HTTP layer needs — settings, token checks, the
//! API rate limiter, the key ring and the Prometheus handle.

use std::{ops::Deref, sync::Arc};

use metrics_exporter_prometheus::PrometheusHandle;

use super::rate_limit::TokenRateLimit;
use crate::{auth::Tokens, cache::Invalidate, config::Config, crypto::KeyRing, workflows::Runtime};

#[derive(Clone)]
pub struct AppState {
    /// The parts the engine shares; handlers reach them as `state.pool`, `state.platforms`, ...
    pub runtime: Runtime,
    pub config: Arc<Config>,
    pub tokens: Arc<Tokens>,
    /// Seals secrets at rest (webhook signing secrets, stored idempotent responses).
    pub keys: Arc<KeyRing>,
    pub rate_limit: Arc<TokenRateLimit>,
    pub metrics: PrometheusHandle,
}

/// `AppState` is the runtime plus the HTTP layer's own parts.
impl Deref for AppState {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

impl AppState {
    pub fn new(runtime: Runtime, config: Config, jwt_secret: &[u8], keys: Arc<KeyRing>) -> anyhow::Result<Self> {
        let tokens = Tokens::new(jwt_secret, &config.jwt_audience, &config.jwt_issuer)?
            .with_previous(&config.jwt_previous_secrets())?;
        Ok(Self {
            // One quota per token however many replicas serve it (decision 0022).
            rate_limit: Arc::new(TokenRateLimit::new(
                config.rate_limit_per_minute,
                config.rate_limit_burst,
                Arc::new(crate::store::limits::PgLimits::new(runtime.pool.clone())),
            )),
            runtime,
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            keys,
            metrics: crate::telemetry::metrics_handle(),
        })
    }

    /// Keeps this replica's caches true: follows the change announcements of every replica.
    pub async fn follow_changes(&self) {
        let subscribers: Vec<Arc<dyn Invalidate>> = vec![self.tokens.cache.clone(), self.clients.clone()];
        crate::cache::follow(self.pool.clone(), subscribers).await
    }
}
