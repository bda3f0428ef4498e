//! The shared HTTP layer every connector calls through (docs/PLATFORMS.md).
//!
//! Per call: wait for the platform's limiter (and the account's, where the
//! platform limits per account) and for any pause the platform's usage headers
//! asked for; send with a timeout; let the platform's [`Dialect`] decide what the
//! answer means; retry throttling, 5xx, timeouts and connection errors with
//! exponential backoff and full jitter, honouring the platform's own wait
//! (`Retry-After`, `retryDelay`, usage headers), capped in attempts and total
//! time. Non-retryable errors fail at once. Every call gets a tracing span and
//! Prometheus counters; secrets are masked in every message.
//!
//! A pause the platform asks for that is longer than [`HttpSettings::max_pause`]
//! (default 5 s) is never slept through: it is recorded for the account (so later
//! calls do not spend the exhausted quota again) and the call fails at once as
//! [`PlatformError::deferred`], retryable after the remaining pause. Workers put the
//! task back in the queue for that long; API requests answer 503 with `Retry-After`.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::Instrument;

use super::{
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
};

/// Limits and retry policy of one platform (defaults from the platform's published limits,
/// overridable per platform in the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpSettings {
    /// Sustained requests per second to the whole platform.
    pub rate_per_second: f64,
    pub burst: u32,
    /// Sustained requests per second to one account, for platforms that limit per account.
    pub account_rate_per_second: Option<f64>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry is started past this much time since the first attempt.
    pub max_total: Duration,
    /// Longest pause the platform asks for (`Retry-After`, `retryDelay`, usage headers)
    /// that a call sleeps through; a longer one fails the call at once (deferred).
    pub max_pause: Duration,
}

/// Default of [`HttpSettings::max_pause`]: holding a worker slot or an API request
/// longer than a few seconds costs more than asking again later.
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(5);

impl HttpSettings {
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        Self {
            rate_per_second,
            burst,
            account_rate_per_second: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_total: Duration::from_secs(120),
            max_pause: DEFAULT_MAX_PAUSE,
        }
    }

    /// Sets [`HttpSettings::max_pause`] from a setting in seconds; unset, negative or not finite keeps it.
    pub fn max_pause_secs(mut self, secs: Option<f64>) -> Self {
        if let Some(secs) = secs.filter(|s| s.is_finite() && *s >= 0.0) {
            self.max_pause = Duration::from_secs_f64(secs);
        }
        self
    }

    pub fn per_account(mut self, rate_per_second: f64) -> Self {
        self.account_rate_per_second = Some(rate_per_second);
        self
    }
}

/// A connector's limiter and retry settings from its environment (`<PREFIX>RATE_PER_SECOND`,
/// `..._BURST`, ...), applied over its defaults. Unset, zero or negative values keep the default.
pub struct Overrides {
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
    pub account_rate_per_second: Option<f64>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub max_wait_secs: Option<f64>,
}

impl Overrides {
    pub fn apply(&self, mut s: HttpSettings) -> HttpSettings {
        s.rate_per_second = self.rate_per_second.filter(|r| *r > 0.0).unwrap_or(s.rate_per_second);
        s.burst = self.burst.filter(|b| *b > 0).unwrap_or(s.burst);
        if let Some(rate) = self.account_rate_per_second.filter(|r| *r > 0.0) {
            s.account_rate_per_second = Some(rate);
        }
        s.max_attempts = self.max_attempts.filter(|a| *a > 0).unwrap_or(s.max_attempts);
        if let Some(ms) = self.retry_base_ms {
            s.base_backoff = Duration::from_millis(ms);
            s.max_backoff = s.max_backoff.max(s.base_backoff);
        }
        if let Some(secs) = self.max_wait_secs.filter(|s| s.is_finite() && *s >= 0.0) {
            s.max_total = Duration::from_secs_f64(secs);
        }
        s
    }
}

/// What a platform's answer means.
pub enum Verdict {
    Success,
    /// Worth another attempt, after at least `after` when the platform said so.
    Retry(PlatformError),
    Fail(PlatformError),
}

/// How one platform speaks: its error bodies and usage headers.
pub trait Dialect: Send + Sync + 'static {
    /// Reads a response. The default treats 2xx as success and maps other statuses
    /// with [`PlatformError::from_status`]; platforms override it to read their error bodies.
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        default_classify(platform, status, headers, body)
    }

    /// Looks at the headers of every answer; returns how long to stop calling for
    /// this account (e.g. Meta's usage headers near 100 %).
    fn pause_for(&self, _headers: &HeaderMap) -> Option<Duration> {
        None
    }
}

/// 2xx is success; 429/5xx retry (honouring `Retry-After`); everything else fails.
pub fn default_classify(platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Success;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
    let error = PlatformError::from_status(platform, status.as_u16(), format!("HTTP {status}: {text}"))
        .retry_after(retry_after(headers));
    if error.retryable { Verdict::Retry(error) } else { Verdict::Fail(error) }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on these APIs and ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A platform's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub platform: &'static str,
}

impl Reply {
    /// Parses the body; a body of the wrong shape is a `MalformedResponse` error (not retried).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PlatformError> {
        serde_json::from_slice(&self.body).map_err(|e| PlatformError::malformed(self.platform, e))
    }
}

/// One call's identity for limits, logs and metrics.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// A short stable name, e.g. `insights`, `create_task`.
    pub endpoint: &'static str,
    /// The account the call is for, on platforms that limit per account.
    pub account: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn new(endpoint: &'static str) -> Self {
        Self { endpoint, account: None }
    }

    pub fn account(mut self, account: &'a str) -> Self {
        self.account = Some(account);
        self
    }
}

/// What the limiter and the platform look like right now (for `GET /v1/platforms`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HttpStatus {
    pub rate_per_second: f64,
    pub burst: u32,
    pub account_rate_per_second: Option<f64>,
    /// Whether a call could start now without waiting for the platform limiter.
    pub budget_available: bool,
    /// Accounts the platform's usage headers told us to leave alone, with seconds left.
    pub paused_accounts: HashMap<String, u64>,
    pub last_error: Option<String>,
}

pub struct PlatformHttp {
    platform: &'static str,
    client: reqwest::Client,
    settings: HttpSettings,
    limiter: DefaultDirectRateLimiter,
    account_limiter: Option<DefaultKeyedRateLimiter<String>>,
    dialect: Arc<dyn Dialect>,
    paused: Mutex<HashMap<String, Instant>>,
    secrets: Vec<String>,
    last_error: Mutex<Option<String>>,
    /// Where each attempt is counted for its client (see [`CallCounter`]).
    calls: Arc<CallCounter>,
}

fn quota(per_second: f64, burst: u32) -> Quota {
    let period = Duration::from_secs_f64(1.0 / per_second.max(0.001));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl PlatformHttp {
    /// `secrets` are masked in every error message and log line of this platform.
    pub fn new(
        platform: &'static str,
        settings: HttpSettings,
        dialect: Arc<dyn Dialect>,
        secrets: Vec<String>,
    ) -> Self {
        crate::tls::install_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client");
        let account_limiter = settings
            .account_rate_per_second
            .map(|rate| RateLimiter::keyed(quota(rate, settings.burst.min((rate.ceil() as u32).max(1)))));
        Self {
            platform,
            client,
            limiter: RateLimiter::direct(quota(settings.rate_per_second, settings.burst)),
            account_limiter,
            settings,
            dialect,
            paused: Mutex::new(HashMap::new()),
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
            last_error: Mutex::new(None),
            calls: Arc::default(),
        }
    }

    /// Counts this platform's calls in `calls` (by default, in a counter of its own that
    /// nobody reads: a client built alone, e.g. in a test, counts for no one).
    pub fn count_into(&mut self, calls: &Arc<CallCounter>) {
        self.calls = calls.clone();
    }

    pub fn platform(&self) -> &'static str {
        self.platform
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Masks every configured secret in `text`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
    }

    pub fn status(&self) -> HttpStatus {
        let now = Instant::now();
        HttpStatus {
            rate_per_second: self.settings.rate_per_second,
            burst: self.settings.burst,
            account_rate_per_second: self.settings.account_rate_per_second,
            budget_available: self.limiter.check().is_ok(),
            paused_accounts: self
                .paused
                .lock()
                .expect("paused lock")
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(account, until)| (account.clone(), (*until - now).as_secs()))
                .collect(),
            last_error: self.last_error.lock().expect("last_error lock").clone(),
        }
    }

    /// Sends a request built by `build`, with limits, retries and error mapping.
    /// `build` is called once per attempt.
    pub async fn send(
        &self,
        call: Call<'_>,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, PlatformError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let waited = match self.wait_turn(call.account).await {
                Ok(waited) => waited,
                Err(deferred) => return Err(self.failed(call, deferred, None)),
            };
            let span = tracing::info_span!(
                "platform_call",
                platform = self.platform,
                endpoint = call.endpoint,
                attempt,
                wait_ms = waited.as_millis() as u64,
                status = tracing::field::Empty,
            );
            let outcome = self.attempt(call, &build).instrument(span.clone()).await;
            let labels = [("platform", self.platform), ("endpoint", call.endpoint)];
            metrics::counter!("platform_calls_total", &labels).increment(1);
            self.calls.record(self.platform);
            let error = match outcome {
                Ok(reply) => {
                    span.record("status", reply.status.as_u16());
                    return Ok(reply);
                }
                Err(Attempt::Fail(e)) => e,
                Err(Attempt::Retry(e)) => {
                    if e.kind == ErrorKind::Throttled {
                        metrics::counter!("platform_throttled_total", &labels).increment(1);
                    }
                    // Asked to stay away longer than a call may wait: remember it, fail now.
                    if let Some(asked) = e.retry_after.filter(|asked| *asked > self.settings.max_pause) {
                        if e.kind == ErrorKind::Throttled
                            && let Some(account) = call.account
                        {
                            self.pause(account, asked);
                        }
                        return Err(self.failed(call, e.deferred(asked), Some(&span)));
                    }
                    let delay = self.backoff(attempt, e.retry_after);
                    let out_of_time = started.elapsed() + delay > self.settings.max_total;
                    if attempt < self.settings.max_attempts && !out_of_time {
                        metrics::counter!("platform_retries_total", &labels).increment(1);
                        tracing::warn!(
                            parent: &span, error = %e, delay_ms = delay.as_millis() as u64, "platform call failed; retrying"
                        );
                        if e.kind == ErrorKind::Throttled
                            && let Some(account) = call.account
                        {
                            self.pause(account, delay);
                        }
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    // Out of attempts or time: a throttle's own wait still holds for the
                    // account, so later calls do not spend the exhausted quota again.
                    if e.kind == ErrorKind::Throttled
                        && let (Some(account), Some(asked)) = (call.account, e.retry_after)
                    {
                        self.pause(account, asked);
                    }
                    e
                }
            };
            return Err(self.failed(call, error, Some(&span)));
        }
    }

    /// Masks secrets, counts, logs and remembers a failure.
    fn failed(&self, call: Call<'_>, error: PlatformError, span: Option<&tracing::Span>) -> PlatformError {
        let error = PlatformError { message: self.redact(&error.message), ..error };
        let labels = [("platform", self.platform), ("endpoint", call.endpoint)];
        metrics::counter!("platform_errors_total", &labels).increment(1);
        if error.deferred {
            metrics::counter!("platform_deferred_total", &labels).increment(1);
        }
        match span {
            Some(span) => tracing::warn!(parent: span, error = %error, "platform call failed"),
            None => {
                tracing::warn!(platform = self.platform, endpoint = call.endpoint, error = %error, "platform call not made")
            }
        }
        *self.last_error.lock().expect("last_error lock") = Some(error.to_string());
        error
    }

    async fn attempt(
        &self,
        call: Call<'_>,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, Attempt> {
        let response = build(&self.client).send().await.map_err(|e| {
            let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transport };
            // reqwest's message can contain the URL, and Meta puts the token in the query.
            let message = self.redact(&e.without_url().to_string());
            Attempt::Retry(PlatformError::new(self.platform, kind, message))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        if let (Some(pause), Some(account)) = (self.dialect.pause_for(&headers), call.account) {
            self.pause(account, pause);
        }
        let body = response.bytes().await.map_err(|e| {
            Attempt::Retry(PlatformError::new(
                self.platform,
                ErrorKind::Transport,
                self.redact(&e.without_url().to_string()),
            ))
        })?;
        match self.dialect.classify(self.platform, status, &headers, &body) {
            Verdict::Success => Ok(Reply { status, headers, body, platform: self.platform }),
            Verdict::Retry(e) => Err(Attempt::Retry(e)),
            Verdict::Fail(e) => Err(Attempt::Fail(e)),
        }
    }

    /// Waits for any pause on the account and for both limiters; returns how long it waited.
    /// A pause longer than [`HttpSettings::max_pause`] is not waited for: the call is
    /// deferred (an error saying how long is left) and never sent.
    async fn wait_turn(&self, account: Option<&str>) -> Result<Duration, PlatformError> {
        let start = Instant::now();
        if let Some(account) = account {
            let until = self.paused.lock().expect("paused lock").get(account).copied();
            if let Some(until) = until
                && until > Instant::now()
            {
                let left = until - Instant::now();
                if left > self.settings.max_pause {
                    let message = format!(
                        "{account} is paused for {}s more, as the platform asked; not calling it until then",
                        left.as_secs_f64().ceil()
                    );
                    return Err(PlatformError::new(self.platform, ErrorKind::Throttled, message).deferred(left));
                }
                tokio::time::sleep_until(until.into()).await;
            }
            if let Some(limiter) = &self.account_limiter {
                limiter.until_key_ready(&account.to_string()).await;
            }
        }
        self.limiter.until_ready().await;
        Ok(start.elapsed())
    }

    fn pause(&self, account: &str, for_how_long: Duration) {
        let until = Instant::now() + for_how_long;
        let mut paused = self.paused.lock().expect("paused lock");
        let entry = paused.entry(account.to_string()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// Exponential backoff with full jitter, but never shorter than what the platform asked for.
    fn backoff(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let exp = self.settings.base_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = exp.min(self.settings.max_backoff);
        let jittered = Duration::from_secs_f64(rand::rng().random_range(0.0..=cap.as_secs_f64()));
        match asked {
            Some(asked) => asked.max(jittered),
            None => jittered,
        }
    }
}

enum Attempt {
    Retry(PlatformError),
    Fail(PlatformError),
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
