//! Shared state of the HTTP layer and background tasks.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::{
    api::rate_limit::TokenRateLimit,
    auth::Tokens,
    cache::{ClientCache, Invalidate},
    config::Config,
    crypto::KeyRing,
    platforms::Platforms,
    workflows::Registry,
};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub tokens: Arc<Tokens>,
    /// Seals secrets at rest (webhook signing secrets, stored idempotent responses).
    pub keys: Arc<KeyRing>,
    pub rate_limit: Arc<TokenRateLimit>,
    pub metrics: PrometheusHandle,
    pub clients: Arc<ClientCache>,
    pub platforms: Arc<Platforms>,
    /// The workflows this build runs.
    pub workflows: Arc<Registry>,
}

impl AppState {
    pub fn new(
        pool: PgPool,
        config: Config,
        jwt_secret: &[u8],
        keys: Arc<KeyRing>,
        platforms: Arc<Platforms>,
    ) -> anyhow::Result<Self> {
        let tokens = Tokens::new(jwt_secret, &config.jwt_audience, &config.jwt_issuer)?
            .with_previous(&config.jwt_previous_secrets())?;
        Ok(Self {
            pool,
            rate_limit: Arc::new(TokenRateLimit::new(config.rate_limit_per_minute, config.rate_limit_burst)),
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            keys,
            metrics: crate::telemetry::metrics_handle(),
            clients: Arc::new(ClientCache::new(10_000, std::time::Duration::from_secs(60))),
            platforms,
            workflows: Arc::new(Registry::builtin()),
        })
    }

    /// Keeps this replica's caches true: follows the change announcements of every replica.
    pub async fn follow_changes(&self) {
        let subscribers: Vec<Arc<dyn Invalidate>> = vec![self.tokens.cache.clone(), self.clients.clone()];
        crate::cache::follow(self.pool.clone(), subscribers).await
    }
}
