//! Per-process cache of token status, invalidated by `LISTEN` (see the module above).

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, postgres::PgListener};
use uuid::Uuid;

use super::REVOCATION_CHANNEL;
use crate::store;

#[derive(Debug, Clone, Copy)]
pub struct CachedStatus {
    pub revoked: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct TokenCache {
    ttl: Duration,
    /// `None` remembers that a token id is unknown here.
    entries: RwLock<HashMap<Uuid, (Option<CachedStatus>, Instant)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::new(HashMap::new()) }
    }

    pub async fn status(&self, pool: &PgPool, id: Uuid) -> Result<Option<CachedStatus>, sqlx::Error> {
        if let Some((status, at)) = self.entries.read().expect("token cache lock").get(&id)
            && at.elapsed() < self.ttl
        {
            return Ok(*status);
        }
        let status = store::tokens::status(pool, id)
            .await?
            .map(|s| CachedStatus { revoked: s.revoked, expires_at: s.expires_at });
        let mut entries = self.entries.write().expect("token cache lock");
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(id, (status, Instant::now()));
        Ok(status)
    }

    pub fn forget(&self, id: Uuid) {
        self.entries.write().expect("token cache lock").remove(&id);
    }

    pub fn clear(&self) {
        self.entries.write().expect("token cache lock").clear();
    }

    /// Follows revocations announced by any replica until the process ends. While
    /// the connection is down nothing is trusted: the cache is cleared on every
    /// (re)connection.
    pub async fn follow_revocations(&self, pool: PgPool) {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for token revocations; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(REVOCATION_CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            self.clear();
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match Uuid::parse_str(n.payload()) {
                        Ok(id) => self.forget(id),
                        Err(_) => self.clear(),
                    },
                    Ok(None) => self.clear(), // connection lost; try_recv reconnects next time
                    Err(e) => {
                        tracing::warn!(error = %e, "token revocation listener failed; reconnecting");
                        self.clear();
                        break;
                    }
                }
            }
        }
    }
}
