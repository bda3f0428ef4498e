//! API tokens: JWTs the service signs (HS256, pinned), each naming a row in
//! `auth.api_tokens` by its `jti`, so a token can be revoked at once.
//!
//! Authentication must not cost a database round trip per request (the read path
//! is measured against pgbench), so token status is cached per process and kept
//! true across replicas by `LISTEN`: a revocation `NOTIFY`s every replica, which
//! drops the token from its cache. Entries also expire after a short time, which
//! bounds staleness if a notification is ever missed. `last_used_at` is collected
//! in memory and written in one batched statement every few seconds.

mod cache;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

pub use cache::TokenCache;

use crate::{
    domain::scope::Scope,
    store::{self, audit::Actor},
};

/// The Postgres channel revocations are announced on (the store announces them).
pub use crate::store::tokens::REVOCATION_CHANNEL;

/// Claims inside every token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Token id (the `auth.api_tokens` row).
    pub jti: Uuid,
    pub sub: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// Who made the request: the token's identity and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        scope.granted_by(&self.scopes)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another audience or issuer")]
    WrongAudience,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token is unknown to this service")]
    Unknown,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The issuing token has been revoked (or removed) meanwhile.
    #[error("the issuing token has been revoked")]
    IssuerRevoked,
    /// A token may not outlive the token that creates it: its expiry must be set and no later than this.
    #[error("must end no later than the issuing token's expiry ({0})")]
    OutlivesIssuer(DateTime<Utc>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Signs and verifies tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Earlier secrets' keys, tried when the current one does not match the signature.
    previous: Vec<DecodingKey>,
    validation: Validation,
    audience: String,
    issuer: String,
    pub cache: Arc<TokenCache>,
    last_used: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

/// A token just issued: the only moment the JWT itself is visible.
pub struct Issued {
    pub record: store::tokens::TokenRow,
    pub token: String,
}

impl Tokens {
    pub fn new(secret: &[u8], audience: &str, issuer: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some(),
            "jsonwebtoken has no crypto backend (enable exactly one of its aws_lc_rs / rust_crypto features)"
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["aud", "iss"]);
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).context("JWT_SECRET")?,
            decoding: DecodingKey::from_secret(secret).context("JWT_SECRET")?,
            previous: vec![],
            validation,
            audience: audience.into(),
            issuer: issuer.into(),
            cache: Arc::new(TokenCache::new(Duration::from_secs(60))),
            last_used: Mutex::new(HashMap::new()),
        })
    }

    /// Also accepts tokens signed with these earlier secrets (`JWT_SECRETS_PREVIOUS`), so
    /// the secret can change without invalidating the tokens Make and scripts hold.
    pub fn with_previous(mut self, secrets: &[Vec<u8>]) -> anyhow::Result<Self> {
        self.previous = secrets
            .iter()
            .map(|s| DecodingKey::from_secret(s).context("JWT_SECRETS_PREVIOUS"))
            .collect::<anyhow::Result<_>>()?;
        Ok(self)
    }

    /// Creates the token row (with its audit entry) and signs the JWT. A token issued
    /// by another token (`actor.token_id`) becomes its child: it is revoked with it and
    /// may not outlive it.
    pub async fn issue(
        &self,
        pool: &PgPool,
        actor: &Actor,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Issued, IssueError> {
        let id = Uuid::now_v7();
        // JWT `exp` has whole seconds; keep the record identical to what the token says.
        let expires_at = expires_at.map(|at| at.trunc_subsecs(0));
        let scope_names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        let mut tx = pool.begin().await?;
        if let Some(parent) = actor.token_id {
            store::tokens::lock_lineage(&mut tx).await?;
            let parent = store::tokens::find(&mut tx, parent)
                .await?
                .filter(|p| p.revoked_at.is_none())
                .ok_or(IssueError::IssuerRevoked)?;
            if let Some(limit) = parent.expires_at
                && expires_at.is_none_or(|at| at > limit)
            {
                return Err(IssueError::OutlivesIssuer(limit));
            }
        }
        let record = store::tokens::insert(&mut tx, id, name, &scope_names, actor.token_id, expires_at).await?;
        let view = serde_json::json!({"id": id, "name": name, "scopes": scope_names, "expires_at": expires_at});
        store::audit::record(&mut tx, actor, "token.issue", "token", &id.to_string(), None::<&()>, Some(&view)).await?;
        tx.commit().await?;
        let claims = Claims {
            jti: id,
            sub: format!("token:{id}"),
            name: name.to_string(),
            scopes: scopes.to_vec(),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            iat: Utc::now().timestamp(),
            exp: expires_at.map(|e| e.timestamp()),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Issued { record, token })
    }

    /// Verifies signature, algorithm, audience, issuer and expiry, then checks that the
    /// token is still live (cached, or one indexed lookup on first sight).
    pub async fn authenticate(&self, pool: &PgPool, token: &str) -> Result<Principal, AuthError> {
        let mut decoded = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation);
        for key in &self.previous {
            match &decoded {
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    decoded = jsonwebtoken::decode::<Claims>(token, key, &self.validation);
                }
                _ => break,
            }
        }
        let data = decoded.map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => AuthError::WrongAudience,
                _ => AuthError::Invalid,
            }
        })?;
        let claims = data.claims;
        let status = self.cache.status(pool, claims.jti).await?;
        match status {
            None => return Err(AuthError::Unknown),
            Some(s) if s.revoked => return Err(AuthError::Revoked),
            Some(s) if s.expires_at.is_some_and(|at| at <= Utc::now()) => return Err(AuthError::Expired),
            Some(_) => {}
        }
        self.last_used.lock().expect("last_used lock").insert(claims.jti, Utc::now());
        Ok(Principal {
            token_id: claims.jti,
            name: claims.name,
            scopes: claims.scopes,
            expires_at: claims.exp.and_then(|e| DateTime::from_timestamp(e, 0)),
        })
    }

    /// Writes the collected last-use times in one statement.
    pub async fn flush_last_used(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let pending: Vec<(Uuid, DateTime<Utc>)> =
            std::mem::take(&mut *self.last_used.lock().expect("last_used lock")).into_iter().collect();
        if pending.is_empty() {
            return Ok(());
        }
        let (ids, at): (Vec<Uuid>, Vec<DateTime<Utc>>) = pending.into_iter().unzip();
        store::tokens::touch_many(pool, &ids, &at).await
    }
}
