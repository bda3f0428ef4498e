//! Read caches kept true across replicas by Postgres `LISTEN/NOTIFY`.
//!
//! A change announces itself on a channel (a trigger for clients, the revoking
//! transaction for tokens); the notification is delivered only on commit, to
//! every replica, which drops the entry. While the listening connection is down
//! nothing cached is trusted: every cache is cleared on each (re)connection.
//! Entries also expire after a short time, which bounds staleness if a
//! notification were ever missed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::body::Bytes;
use moka::sync::Cache;
use sqlx::{PgPool, postgres::PgListener};
use uuid::Uuid;

use crate::store::clients::ClientKey;

/// Something that forgets entries when told a resource changed.
pub trait Invalidate: Send + Sync {
    /// The Postgres channel it follows.
    fn channel(&self) -> &'static str;
    /// A change was announced with this payload (a resource id).
    fn changed(&self, payload: &str);
    /// Forget everything (the feed may have missed announcements).
    fn clear(&self);
}

/// Follows every subscriber's channel until the process ends.
pub async fn follow(pool: PgPool, subscribers: Vec<Arc<dyn Invalidate>>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for cache invalidations; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let channels: Vec<&str> = subscribers.iter().map(|s| s.channel()).collect();
        if let Err(e) = listener.listen_all(channels).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        subscribers.iter().for_each(|s| s.clear());
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    subscribers.iter().filter(|s| s.channel() == n.channel()).for_each(|s| s.changed(n.payload()))
                }
                // The connection dropped; try_recv reconnects (and re-LISTENs) on the next call.
                Ok(None) => subscribers.iter().for_each(|s| s.clear()),
                Err(e) => {
                    tracing::warn!(error = %e, "invalidation listener failed; reconnecting");
                    subscribers.iter().for_each(|s| s.clear());
                    break;
                }
            }
        }
    }
}

pub const CLIENT_CHANNEL: &str = "switchboard_client_changed";

/// Counts invalidations, so a read that raced with one does not cache what it read:
/// take [`Generation::current`] before reading the database, and insert only if it
/// has not moved since.
#[derive(Default)]
pub struct Generation(AtomicU64);

impl Generation {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn unchanged_since(&self, seen: u64) -> bool {
        self.current() == seen
    }
}

/// The JSON of recently read clients, by id, and slug → id. Serves `GET /v1/clients/{client}`
/// without a database round trip (docs/PERFORMANCE.md).
pub struct ClientCache {
    by_id: Cache<Uuid, Bytes>,
    slugs: Cache<String, Uuid>,
    pub generation: Generation,
}

impl ClientCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            by_id: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            slugs: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            generation: Generation::default(),
        }
    }

    pub fn get(&self, key: &ClientKey) -> Option<Bytes> {
        let id = match key {
            ClientKey::Id(id) => *id,
            ClientKey::Slug(slug) => self.slugs.get(slug)?,
        };
        self.by_id.get(&id)
    }

    /// Caches what was read, unless an invalidation happened since `seen` (see [`Generation`]).
    pub fn insert(&self, seen: u64, id: Uuid, slug: &str, json: Bytes) {
        if self.generation.unchanged_since(seen) {
            self.by_id.insert(id, json);
            self.slugs.insert(slug.to_string(), id);
        }
    }

    pub fn forget(&self, id: Uuid) {
        self.generation.bump();
        self.by_id.invalidate(&id);
        // A changed slug must not keep pointing here; slugs are cheap to learn again.
        self.slugs.invalidate_all();
    }
}

impl Invalidate for ClientCache {
    fn channel(&self) -> &'static str {
        CLIENT_CHANNEL
    }

    fn changed(&self, payload: &str) {
        match Uuid::parse_str(payload) {
            Ok(id) => self.forget(id),
            Err(_) => self.clear(),
        }
    }

    fn clear(&self) {
        self.generation.bump();
        self.by_id.invalidate_all();
        self.slugs.invalidate_all();
    }
}
