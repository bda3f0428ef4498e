//! Shared state of the HTTP layer and background tasks.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::{api::rate_limit::TokenRateLimit, auth::Tokens, config::Config};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub tokens: Arc<Tokens>,
    pub rate_limit: Arc<TokenRateLimit>,
    pub metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, jwt_secret: &[u8]) -> anyhow::Result<Self> {
        let tokens = Tokens::new(jwt_secret, &config.jwt_audience, &config.jwt_issuer)?;
        Ok(Self {
            pool,
            rate_limit: Arc::new(TokenRateLimit::new(config.rate_limit_per_minute, config.rate_limit_burst)),
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            metrics: crate::telemetry::metrics_handle(),
        })
    }
}
