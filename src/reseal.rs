//! Seals what is stored in plaintext (rows written before secrets were sealed; run at
//! every start-up) and, for a key rotation, re-seals what is sealed under an old key
//! (`switchboard secrets rotate`). Both are safe to run on several replicas at once:
//! each row is replaced only if it did not change since it was read.

use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    crypto::KeyRing,
    events::secret,
    store::{
        idempotency::{self, StoredBody},
        webhook_endpoints as es,
    },
};

const BATCH: i64 = 500;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    pub webhook_secrets: u64,
    /// Endpoints whose custom headers were re-sealed (rotation only: they are never plaintext).
    pub webhook_headers: u64,
    pub idempotent_responses: u64,
    /// Values that did not open (sealed under a key no longer in the ring); left as they are.
    pub failed: u64,
}

/// Seals plaintext values; with `rotate`, also moves values sealed under an old key to
/// the current one.
pub async fn run(pool: &PgPool, keys: &KeyRing, rotate: bool) -> Result<Resealed, sqlx::Error> {
    let prefix = format!("v1:{}:", keys.current_id());
    let current = rotate.then_some(prefix.as_str());
    let mut done = Resealed::default();

    let mut after = Uuid::nil();
    loop {
        let rows = es::secrets_to_seal(pool, after, current, BATCH).await?;
        let Some((last, _)) = rows.last() else { break };
        after = *last;
        for (id, stored) in rows {
            let plain = match secret::open(keys, id, &stored) {
                Ok(plain) => plain,
                Err(e) => {
                    tracing::error!(endpoint = %id, error = %e, "webhook signing secret does not open; left as it is");
                    done.failed += 1;
                    continue;
                }
            };
            let sealed = secret::seal(keys, id, secrecy::ExposeSecret::expose_secret(&plain));
            if es::reseal_secret(pool, id, &stored, &sealed).await? {
                done.webhook_secrets += 1;
            }
        }
    }

    if let Some(current) = current {
        let mut after = Uuid::nil();
        loop {
            let rows = es::headers_to_reseal(pool, after, current, BATCH).await?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            for (id, stored) in rows {
                match keys.reseal(&stored, &secret::headers_aad(id)) {
                    Ok(Some(sealed)) => {
                        if es::reseal_headers(pool, id, &stored, &sealed).await? {
                            done.webhook_headers += 1;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(endpoint = %id, error = %e, "webhook custom headers do not open; left as they are");
                        done.failed += 1;
                    }
                }
            }
        }
    }

    let mut after = (Uuid::nil(), String::new());
    loop {
        let rows = idempotency::to_seal(pool, (after.0, &after.1), current, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = (last.token_id, last.key.clone());
        for row in rows {
            let aad = idempotency::aad(row.token_id, &row.key);
            let body = match &row.body {
                StoredBody::Plain(body) => body.clone(),
                StoredBody::Sealed(sealed) => match keys.open(sealed, &aad) {
                    Ok(body) => body,
                    Err(e) => {
                        tracing::error!(token = %row.token_id, error = %e, "stored idempotent response does not open; left as it is");
                        done.failed += 1;
                        continue;
                    }
                },
            };
            if idempotency::reseal(pool, &row, &keys.seal(&body, &aad)).await? {
                done.idempotent_responses += 1;
            }
        }
    }
    Ok(done)
}
