//! Per-token rate limit, shared by every replica on the database (GCRA in
//! `engine.rate_limits`, one token per request so the numbers are exact; decision 0022):
//! `RateLimit-*` headers on every authenticated answer, 429 with `Retry-After` when over.

use std::{sync::Arc, time::Duration};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header::RETRY_AFTER};
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::limits::{LimitStore, Rule};

pub struct TokenRateLimit {
    rule: Rule,
    store: Arc<dyn LimitStore>,
}

/// What to tell the caller about its quota after a request was allowed.
#[derive(Debug)]
pub struct Allowance {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl TokenRateLimit {
    /// `store`: the database's limits (`store::limits::PgLimits`) so every replica counts one quota.
    pub fn new(per_minute: u32, burst: u32, store: Arc<dyn LimitStore>) -> Self {
        Self { rule: Rule::exact(per_minute.max(1) as f64 / 60.0, burst.max(1)), store }
    }

    pub async fn check(&self, token: Uuid) -> Result<Allowance, ApiError> {
        let key = format!("api:{token}");
        let grant = self.store.take(&key, self.rule, 1, Some(Duration::ZERO)).await.map_err(|e| {
            tracing::error!(error = %e, "the shared rate limit cannot be read");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service cannot check the rate limit now; retry shortly.",
            )
            .with_header(RETRY_AFTER, HeaderValue::from(1u32))
        })?;
        if grant.granted > 0 {
            return Ok(Allowance {
                limit: self.rule.burst,
                remaining: grant.remaining(&self.rule),
                // Until the whole burst is back.
                reset_secs: grant.ahead.as_secs_f64().ceil() as u64,
            });
        }
        let secs = grant.wait.as_secs_f64().ceil().max(1.0) as u64;
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests for this token; retry in {secs} s."),
        )
        .with_header(RETRY_AFTER, HeaderValue::from(secs))
        .with_header("ratelimit-limit".parse().expect("header"), HeaderValue::from(self.rule.burst))
        .with_header("ratelimit-remaining".parse().expect("header"), HeaderValue::from(0u32))
        .with_header("ratelimit-reset".parse().expect("header"), HeaderValue::from(secs)))
    }
}

impl Allowance {
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MemoryLimits;

    #[tokio::test]
    async fn burst_then_429_with_retry_after() {
        let limit = TokenRateLimit::new(60, 3, MemoryLimits::shared());
        let token = Uuid::now_v7();
        let mut remaining = vec![];
        for _ in 0..3 {
            remaining.push(limit.check(token).await.unwrap().remaining);
        }
        assert_eq!(remaining, vec![2, 1, 0]);
        let err = limit.check(token).await.unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        let retry_after = err.headers.iter().find(|(n, _)| *n == RETRY_AFTER).map(|(_, v)| v.clone());
        assert_eq!(retry_after, Some(HeaderValue::from(1u64)), "one request back after a second");
        // Another token has its own quota.
        assert!(limit.check(Uuid::now_v7()).await.is_ok());
    }
}
