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
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use rand::Rng;
use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::Instrument;

use super::{
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
};
use crate::{
    domain::limits::{LimitStore, LimitStoreError, Rule},
    limits::{KeyedLeased, Leased, MemoryLimits, Pauses},
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
    /// Whether a call could start now without waiting for the platform limiter (as this
    /// process last saw the limit every process shares).
    pub budget_available: bool,
    /// Accounts the platform told us (any process on this database, as last read) to leave alone, with seconds left.
    pub paused_accounts: HashMap<String, u64>,
    pub last_error: Option<String>,
}

pub struct PlatformHttp {
    platform: &'static str,
    client: reqwest::Client,
    settings: HttpSettings,
    /// The platform's limit, and each account's, shared by every process on the database once
    /// [`Self::share_limits`] is called (until then, this process's own).
    limiter: Leased,
    account_limiter: Option<KeyedLeased>,
    dialect: Arc<dyn Dialect>,
    /// Pauses the platform asked for, per account (keys `<platform>:<account>`).
    pauses: Pauses,
    secrets: Vec<String>,
    last_error: Mutex<Option<String>>,
    /// Where each attempt is counted for its client (see [`CallCounter`]).
    calls: Arc<CallCounter>,
}

/// The limiters of `platform` in `store`: the platform's (key `<platform>`), each account's
/// (`<platform>:<account>`, its burst at most one second of its rate) and the pauses.
fn limiters(
    platform: &'static str,
    settings: &HttpSettings,
    store: &Arc<dyn LimitStore>,
) -> (Leased, Option<KeyedLeased>, Pauses) {
    let limiter = Leased::new(platform, Rule::leased(settings.rate_per_second, settings.burst), store.clone());
    let account_limiter = settings.account_rate_per_second.map(|rate| {
        let rule = Rule::leased(rate, settings.burst.min((rate.ceil() as u32).max(1)));
        KeyedLeased::new(platform, rule, store.clone())
    });
    (limiter, account_limiter, Pauses::new(store.clone()))
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
        let (limiter, account_limiter, pauses) = limiters(platform, &settings, &MemoryLimits::shared());
        Self {
            platform,
            client,
            limiter,
            account_limiter,
            settings,
            dialect,
            pauses,
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

    /// Draws this platform's limits and pauses from `store`, shared with every process using it.
    pub fn share_limits(&mut self, store: &Arc<dyn LimitStore>) {
        (self.limiter, self.account_limiter, self.pauses) = limiters(self.platform, &self.settings, store);
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
        let prefix = format!("{}:", self.platform);
        HttpStatus {
            rate_per_second: self.settings.rate_per_second,
            burst: self.settings.burst,
            account_rate_per_second: self.settings.account_rate_per_second,
            budget_available: self.limiter.looks_free(),
            paused_accounts: self
                .pauses
                .known()
                .into_iter()
                .filter_map(|(key, left)| Some((key.strip_prefix(&prefix)?.to_string(), left.as_secs())))
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
                            self.pause(account, asked).await;
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
                            self.pause(account, delay).await;
                        }
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    // Out of attempts or time: a throttle's own wait still holds for the
                    // account, so later calls do not spend the exhausted quota again.
                    if e.kind == ErrorKind::Throttled
                        && let (Some(account), Some(asked)) = (call.account, e.retry_after)
                    {
                        self.pause(account, asked).await;
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
            self.pause(account, pause).await;
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
            let left = self.pauses.left(&self.pause_key(account)).await.map_err(|e| self.unshared(e))?;
            if let Some(left) = left {
                if left > self.settings.max_pause {
                    let message = format!(
                        "{account} is paused for {}s more, as the platform asked; not calling it until then",
                        left.as_secs_f64().ceil()
                    );
                    return Err(PlatformError::new(self.platform, ErrorKind::Throttled, message).deferred(left));
                }
                tokio::time::sleep(left).await;
            }
            if let Some(limiter) = &self.account_limiter {
                limiter.until_key_ready(account).await.map_err(|e| self.unshared(e))?;
            }
        }
        self.limiter.until_ready().await.map_err(|e| self.unshared(e))?;
        Ok(start.elapsed())
    }

    fn pause_key(&self, account: &str) -> String {
        format!("{}:{account}", self.platform)
    }

    /// Pauses the account for every process; this one holds it even if the store cannot be written.
    async fn pause(&self, account: &str, for_how_long: Duration) {
        if let Err(e) = self.pauses.pause(&self.pause_key(account), for_how_long).await {
            tracing::warn!(platform = self.platform, error = %e, "the pause could not be shared with other processes");
        }
    }

    /// The shared limits cannot be read: the call is not made (it could pass the limit) and is
    /// deferred a moment, like a throttle.
    fn unshared(&self, e: LimitStoreError) -> PlatformError {
        let wait = Duration::from_secs(1);
        let message = format!("{e}; not calling the platform until the shared limits can be read");
        PlatformError {
            kind: ErrorKind::Transport,
            ..PlatformError::new(self.platform, ErrorKind::Transport, message).deferred(wait)
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
