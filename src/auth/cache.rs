//! Per-process cache of token status, invalidated by `LISTEN` (see `crate::cache`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use sqlx::PgPool;
use uuid::Uuid;

use super::REVOCATION_CHANNEL;
use crate::{
    cache::{Generation, Invalidate},
    store,
};

#[derive(Debug, Clone, Copy)]
pub struct CachedStatus {
    pub revoked: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct TokenCache {
    /// `None` remembers that a token id is unknown here.
    entries: Cache<Uuid, Option<CachedStatus>>,
    generation: Generation,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            generation: Generation::default(),
        }
    }

    pub async fn status(&self, pool: &PgPool, id: Uuid) -> Result<Option<CachedStatus>, sqlx::Error> {
        if let Some(status) = self.entries.get(&id) {
            return Ok(status);
        }
        let seen = self.generation.current();
        let status = store::tokens::status(pool, id)
            .await?
            .map(|s| CachedStatus { revoked: s.revoked, expires_at: s.expires_at });
        // A revocation that raced with this read must not be undone by caching it.
        if self.generation.unchanged_since(seen) {
            self.entries.insert(id, status);
        }
        Ok(status)
    }

    pub fn forget(&self, id: Uuid) {
        self.generation.bump();
        self.entries.invalidate(&id);
    }
}

impl Invalidate for TokenCache {
    fn channel(&self) -> &'static str {
        REVOCATION_CHANNEL
    }

    fn changed(&self, payload: &str) {
        match Uuid::parse_str(payload) {
            Ok(id) => self.forget(id),
            Err(_) => self.clear(),
        }
    }

    fn clear(&self) {
        self.generation.bump();
        self.entries.invalidate_all();
    }
}
