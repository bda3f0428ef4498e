//! What the engine runs on: the worker, the scheduler, every workflow step and the
//! WhatsApp commands get a [`Runtime`] — the database, the platforms, the workflow
//! registry and the client cache — and nothing of the HTTP layer. The HTTP layer's
//! `AppState` holds one, so a handler and a workflow step reach the same parts.

use std::sync::Arc;

use sqlx::PgPool;

use super::Registry;
use crate::{cache::ClientCache, platforms::Platforms};

#[derive(Clone)]
pub struct Runtime {
    pub pool: PgPool,
    pub platforms: Arc<Platforms>,
    /// The workflows this build runs.
    pub workflows: Arc<Registry>,
    /// Clients by id or slug, kept true by the change announcements of every replica.
    pub clients: Arc<ClientCache>,
}

impl Runtime {
    pub fn new(pool: PgPool, platforms: Arc<Platforms>) -> Self {
        Self {
            pool,
            platforms,
            workflows: Arc::new(Registry::builtin()),
            clients: Arc::new(ClientCache::new(10_000, std::time::Duration::from_secs(60))),
        }
    }
}
