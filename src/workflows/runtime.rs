//! What the engine runs on: the worker, the scheduler, every workflow step and the
//! WhatsApp commands get a [`Runtime`] — the database, the platforms, the workflow
//! registry and the client cache — and nothing of the HTTP layer. The HTTP layer's
//! `AppState` holds one, so a handler and a workflow step reach the same parts.

use std::sync::Arc;

use sqlx::PgPool;

use super::Registry;
use crate::{cache::ClientCache, config::Config, domain::report::ReportLinks, platforms::Platforms};

#[derive(Clone)]
pub struct Runtime {
    pub pool: PgPool,
    pub platforms: Arc<Platforms>,
    /// The workflows this build runs.
    pub workflows: Arc<Registry>,
    /// Clients by id or slug, kept true by the change announcements of every replica.
    pub clients: Arc<ClientCache>,
    /// Absolute links to reports under `PUBLIC_BASE_URL` (none when unset).
    pub report_links: Arc<ReportLinks>,
}

impl Runtime {
    pub fn new(pool: PgPool, platforms: Arc<Platforms>) -> Self {
        Self {
            pool,
            platforms,
            workflows: Arc::new(Registry::builtin()),
            clients: Arc::new(ClientCache::new(10_000, std::time::Duration::from_secs(60))),
            report_links: Arc::default(),
        }
    }

    /// The settings from `config` a runtime takes beyond its parts (`PUBLIC_BASE_URL`).
    pub fn configured(mut self, config: &Config) -> Self {
        self.report_links = Arc::new(ReportLinks::new(config.public_base_url.as_deref()));
        self
    }
}
