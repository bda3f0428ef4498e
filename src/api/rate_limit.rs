//! Per-token rate limit (governor, GCRA): `RateLimit-*` headers on every
//! authenticated answer, 429 with `Retry-After` when over.

use std::num::NonZeroU32;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header::RETRY_AFTER};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
};
use uuid::Uuid;

use super::error::ApiError;

type Limiter =
    RateLimiter<Uuid, governor::state::keyed::DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

pub struct TokenRateLimit {
    limiter: Limiter,
    burst: u32,
    /// Seconds for one unit of quota to come back.
    replenish_secs: f64,
}

/// What to tell the caller about its quota after a request was allowed.
#[derive(Debug)]
pub struct Allowance {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl TokenRateLimit {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).expect("non-zero");
        let burst_nz = NonZeroU32::new(burst.max(1)).expect("non-zero");
        let quota = Quota::per_minute(per_minute).allow_burst(burst_nz);
        let limiter: DefaultKeyedRateLimiter<Uuid> = RateLimiter::keyed(quota);
        Self {
            limiter: limiter.with_middleware::<StateInformationMiddleware>(),
            burst: burst_nz.get(),
            replenish_secs: 60.0 / per_minute.get() as f64,
        }
    }

    pub fn check(&self, token: Uuid) -> Result<Allowance, ApiError> {
        match self.limiter.check_key(&token) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.burst.saturating_sub(remaining);
                Ok(Allowance {
                    limit: self.burst,
                    remaining,
                    reset_secs: (used as f64 * self.replenish_secs).ceil() as u64,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("Too many requests for this token; retry in {secs} s."),
                )
                .with_header(RETRY_AFTER, HeaderValue::from(secs))
                .with_header("ratelimit-limit".parse().expect("header"), HeaderValue::from(self.burst))
                .with_header("ratelimit-remaining".parse().expect("header"), HeaderValue::from(0u32))
                .with_header("ratelimit-reset".parse().expect("header"), HeaderValue::from(secs)))
            }
        }
    }

    /// Drops state of tokens that have been quiet long enough to be back at full quota.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
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

    #[test]
    fn burst_then_429_with_retry_after() {
        let limit = TokenRateLimit::new(60, 3);
        let token = Uuid::now_v7();
        let remaining: Vec<u32> = (0..3).map(|_| limit.check(token).unwrap().remaining).collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let err = limit.check(token).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.headers.iter().any(|(n, _)| n == RETRY_AFTER));
        // Another token has its own quota.
        assert!(limit.check(Uuid::now_v7()).is_ok());
    }
}
