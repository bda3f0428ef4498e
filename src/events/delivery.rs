//! The delivery worker: claims due deliveries (`FOR UPDATE SKIP LOCKED` + lease,
//! so any number of replicas share the work and a crash only delays it; the lease
//! is renewed after the pacing wait and outlives the attempt, which is cut at the
//! timeout, so no two workers send one message), POSTs the
//! event signed the Standard Webhooks way, logs every attempt, and schedules the
//! next one on the Standard Webhooks retry schedule. 410 Gone disables the
//! endpoint at once; an endpoint that has failed without a break for a day
//! (`failing_since`) is disabled too, and nothing more is sent to it.
//!
//! Deliveries to one endpoint are paced (25/s with a burst of 25 by default) to stay
//! under Make's 300 requests per 10 s per hook: at most 25 + 25 × 10 = 275 in any 10 s.
//! The pace is shared by every delivery worker on the database (`webhook:<endpoint>`
//! in `engine.rate_limits`, taken in leases; decision 0022), however many replicas run.
//!
//! The same workers send run callbacks (`callback_url`, `store::callbacks`): the
//! run's view, through the same guarded client, on the same retry schedule, signed
//! with `CALLBACK_SECRET` when it is set.
//!
//! Workers wake on `LISTEN switchboard_events` (sent by `emit`, a queued callback
//! and a manual retry), with polling as the fallback.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use secrecy::ExposeSecret;
use sqlx::postgres::PgListener;
use tokio::{sync::watch, task::JoinSet, time::Instant};
use uuid::Uuid;

use super::{
    secret, signing,
    ssrf::{self, GuardedResolver, Policy},
};
use crate::{
    domain::{
        events::{Attempt, Event, Next},
        limits::Rule,
        webhook_headers::CustomHeader,
    },
    limits::KeyedLeased,
    store::{
        callbacks::{self, ClaimedCallback},
        deliveries::{self, Claimed},
        events::EVENTS_CHANNEL,
        limits::PgLimits,
    },
};

/// Longest response excerpt kept in the attempt log, in characters.
pub const EXCERPT_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The wait before each attempt; its length is the number of attempts, after the
    /// last of which the delivery fails. The first attempt is made as soon as the event
    /// commits (its entry is 0). Default: the Standard Webhooks schedule (immediately,
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about a day).
    pub schedule: Vec<Duration>,
    /// Deliveries one worker sends at once.
    pub concurrency: usize,
    /// A worker holds what it claims for [`Self::lease`] = `timeout` + this: from the
    /// claim, and again from the end of the pacing wait, just before the attempt, which
    /// is cut at `timeout`. So a lease always outlives its attempt and no other worker
    /// sends the same message meanwhile. Also (with the timeout) how long a delivery
    /// whose worker died waits before another takes it.
    pub lease_slack: Duration,
    /// Polling interval when no notification arrives.
    pub poll: Duration,
    /// Per request.
    pub timeout: Duration,
    /// Pacing per endpoint, shared by every worker on the database.
    pub rate_per_second: u32,
    pub burst: u32,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    pub policy: Policy,
    /// `whsec_...` key signing run callbacks; unsigned when `None`.
    pub callback_secret: Option<secrecy::SecretString>,
}

impl DeliverySettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            timeout: Duration::from_secs(config.webhook_timeout_secs),
            rate_per_second: config.webhook_rate_per_second,
            burst: config.webhook_rate_per_second,
            policy: Policy::from_config(config),
            callback_secret: config.callback_secret.clone(),
            ..Self::default()
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let (s, m, h) = (1, 60, 3600);
        Self {
            schedule: [0, 5 * s, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            concurrency: 16,
            // 60 s leases with the default 10 s timeout.
            lease_slack: Duration::from_secs(50),
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            rate_per_second: 25,
            burst: 25,
            disable_after: Duration::from_secs(24 * h),
            policy: Policy::default(),
            callback_secret: None,
        }
    }
}

impl DeliverySettings {
    /// How long a claim (or a renewal before the attempt) holds a delivery.
    pub fn lease(&self) -> Duration {
        self.timeout + self.lease_slack
    }

    /// What follows a failed attempt number `attempt` (1-based).
    pub fn after_failure(&self, attempt: i32) -> Next {
        match self.schedule.get(attempt.max(0) as usize) {
            Some(wait) => Next::Retry(*wait),
            None => Next::Failed,
        }
    }
}

/// The HTTP client for deliveries: the timeout, no redirects, no proxy, and (unless
/// private addresses are allowed) the resolver that refuses internal addresses.
pub fn http_client(settings: &DeliverySettings) -> reqwest::Client {
    crate::tls::install_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")));
    if !settings.policy.allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build().expect("reqwest client")
}

/// Sends one signed event to `url` with the endpoint's custom headers and reports what
/// happened (never fails). A `test` send carries `"test": true` (`Event::test_body`).
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    headers: &[CustomHeader],
    event: &Event,
    test: bool,
    policy: Policy,
) -> Attempt {
    let body = if test { event.test_body() } else { event.body() };
    post(client, url, &event.id.to_string(), Some(secret), headers, body, policy).await
}

/// Runs an attempt, cut at `limit` whatever it waits on (the URL check's DNS lookup
/// included), so it ends within its lease.
async fn within(limit: Duration, attempt: impl Future<Output = Attempt>) -> Attempt {
    tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| Attempt {
        status: None,
        latency_ms: limit.as_millis().min(i32::MAX as u128) as i32,
        error: Some("timed out".into()),
        response_excerpt: None,
    })
}

/// POSTs `body` with the endpoint's custom `headers` and the Standard Webhooks headers
/// (`webhook-signature` when there is a `secret`), after checking the URL again: DNS may
/// have changed since it was saved. The custom names never clash with ours
/// (`domain::webhook_headers::check`).
async fn post(
    client: &reqwest::Client,
    url: &str,
    message_id: &str,
    secret: Option<&str>,
    headers: &[CustomHeader],
    body: Vec<u8>,
    policy: Policy,
) -> Attempt {
    let started = Instant::now();
    let failed = |error: String| Attempt {
        status: None,
        latency_ms: elapsed_ms(started),
        error: Some(error),
        response_excerpt: None,
    };
    if let Err(e) = ssrf::check(url, policy).await {
        return failed(format!("blocked: url {e}"));
    }
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client.post(url);
    for h in headers {
        request = request.header(h.name.as_str(), h.value.as_str());
    }
    let mut request = request
        .header("content-type", "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        match signing::sign(secret, message_id, timestamp, &body) {
            Ok(signature) => request = request.header("webhook-signature", signature),
            Err(e) => return failed(format!("cannot sign: {e}")),
        }
    }
    match request.body(body).send().await {
        Ok(mut res) => {
            let status = res.status().as_u16();
            let excerpt = read_excerpt(&mut res).await;
            let error = (!res.status().is_success()).then(|| format!("HTTP {status}"));
            Attempt { status: Some(status), latency_ms: elapsed_ms(started), error, response_excerpt: excerpt }
        }
        Err(e) => {
            let why = if e.is_timeout() { "timed out".to_string() } else { describe(&e) };
            failed(why)
        }
    }
}

fn elapsed_ms(started: Instant) -> i32 {
    started.elapsed().as_millis().min(i32::MAX as u128) as i32
}

/// The error chain without the URL (which may carry a token in its path).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() { "connection failed".to_string() } else { "request failed".to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(EXCERPT_CHARS).collect()
}

/// The first 500 characters of the response body (reading at most a few KB).
async fn read_excerpt(res: &mut reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < 4 * EXCERPT_CHARS {
        match res.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&bytes).chars().take(EXCERPT_CHARS).collect();
    (!text.is_empty()).then_some(text)
}

/// A delivery worker; run any number, on any number of replicas.
pub struct Deliverer {
    pool: sqlx::PgPool,
    settings: DeliverySettings,
    /// Opens the endpoints' sealed signing secrets.
    keys: Arc<crate::crypto::KeyRing>,
    client: reqwest::Client,
    /// Per endpoint, shared by every delivery worker on the database.
    pacing: KeyedLeased,
    id: String,
}

impl Deliverer {
    pub fn new(pool: sqlx::PgPool, settings: DeliverySettings, keys: Arc<crate::crypto::KeyRing>) -> Self {
        let rule = Rule::leased(settings.rate_per_second.max(1) as f64, settings.burst.max(1));
        let pacing = KeyedLeased::new("webhook", rule, Arc::new(PgLimits::new(pool.clone())));
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let id = format!("{host}-{}-webhooks-{}", std::process::id(), &Uuid::new_v4().simple().to_string()[..8]);
        Self { client: http_client(&settings), pool, settings, keys, pacing, id }
    }

    /// Runs until `stop` turns true, then lets the attempts in flight finish.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let (wake_tx, mut wake) = watch::channel(());
        let listener = tokio::spawn(listen(self.pool.clone(), wake_tx));
        let mut running: JoinSet<()> = JoinSet::new();
        tracing::info!(worker = %self.id, "webhook delivery worker started");
        while !*stop.borrow() {
            while running.try_join_next().is_some() {}
            let free = self.settings.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                match deliveries::claim(&self.pool, &self.id, self.settings.lease(), free as i64).await {
                    Ok(due) => {
                        claimed = due.len();
                        for delivery in due {
                            let me = self.clone();
                            running.spawn(async move { me.deliver(delivery).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            if free > claimed {
                match callbacks::claim(&self.pool, &self.id, self.settings.lease(), (free - claimed) as i64).await {
                    Ok(due) => {
                        claimed += due.len();
                        for callback in due {
                            let me = self.clone();
                            running.spawn(async move { me.call_back(callback).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming run callbacks failed"),
                }
            }
            if claimed == free && free > 0 {
                continue;
            }
            let jitter = Duration::from_millis(rand::rng().random_range(0..100));
            tokio::select! {
                _ = wake.changed() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(self.settings.poll + jitter) => {}
                _ = stop.changed() => {}
            }
        }
        listener.abort();
        while running.join_next().await.is_some() {}
        tracing::info!(worker = %self.id, "webhook delivery worker stopped");
    }

    async fn deliver(&self, delivery: Claimed) {
        if let Err(e) = self.pacing.until_key_ready(&delivery.endpoint_id.to_string()).await {
            // Not sent: its lease expires and a worker takes it again.
            tracing::warn!(delivery = %delivery.id, error = %e, "the shared webhook pacing cannot be read; not sent now");
            return;
        }
        // The pacing wait may have outlasted the claim: hold the delivery for the attempt
        // again, or leave it to the worker that took it over.
        match deliveries::renew(&self.pool, delivery.id, &self.id, self.settings.lease()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(delivery = %delivery.id, "webhook delivery taken over while it waited for its turn; not sent");
                return;
            }
            Err(e) => {
                tracing::warn!(delivery = %delivery.id, error = %e, "renewing the webhook delivery's lease failed; not sent now");
                return;
            }
        }
        let secrets = secret::open(&self.keys, delivery.endpoint_id, &delivery.secret)
            .map_err(|e| format!("cannot open the signing secret: {e}"))
            .and_then(|key| {
                secret::open_headers(&self.keys, delivery.endpoint_id, delivery.headers.as_deref())
                    .map(|headers| (key, headers))
                    .map_err(|e| format!("cannot open the custom headers: {e}"))
            });
        let attempt = match secrets {
            Ok((key, headers)) => {
                let event = delivery.event();
                let send = send(
                    &self.client,
                    &delivery.url,
                    key.expose_secret(),
                    &headers,
                    &event,
                    false,
                    self.settings.policy,
                );
                within(self.settings.timeout, send).await
            }
            // Logged and retried like a failed attempt: the key may be restored (ENCRYPTION_KEYS_OLD).
            Err(error) => Attempt { status: None, latency_ms: 0, error: Some(error), response_excerpt: None },
        };
        let next = if attempt.succeeded() {
            Next::Succeeded
        } else if attempt.status == Some(410) {
            Next::Gone
        } else {
            self.settings.after_failure(delivery.attempts)
        };
        tracing::info!(
            delivery = %delivery.id, endpoint = %delivery.endpoint_id, event = %delivery.event_id, attempt = delivery.attempts,
            status = ?attempt.status, latency_ms = attempt.latency_ms, error = ?attempt.error, next = ?next, "webhook attempt"
        );
        metrics::counter!("switchboard_webhook_attempts_total", "outcome" => if attempt.succeeded() { "success" } else { "failure" }).increment(1);
        match deliveries::finish(&self.pool, &delivery, &self.id, &attempt, next, self.settings.disable_after).await {
            Ok(Some(reason)) => tracing::warn!(endpoint = %delivery.endpoint_id, %reason, "webhook endpoint disabled"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(delivery = %delivery.id, error = %e, "recording the webhook attempt failed; the lease will expire and it is sent again")
            }
        }
    }

    /// POSTs a finished run's view to its `callback_url`.
    async fn call_back(&self, callback: ClaimedCallback) {
        let view = match self.pool.acquire().await {
            Ok(mut conn) => crate::store::run_view::find(&mut conn, callback.run_id).await,
            Err(e) => Err(e),
        };
        let attempt = match view {
            Ok(Some(view)) => {
                let body = serde_json::to_vec(&view).unwrap_or_default();
                let message_id = callback.id.to_string();
                let post = post(
                    &self.client,
                    &callback.url,
                    &message_id,
                    self.settings.callback_secret.as_ref().map(secrecy::ExposeSecret::expose_secret),
                    &[],
                    body,
                    self.settings.policy,
                );
                within(self.settings.timeout, post).await
            }
            Ok(None) => return, // the run was deleted, and its callbacks with it
            Err(e) => {
                tracing::warn!(run = %callback.run_id, error = %e, "cannot build the run callback; the lease will expire and it is tried again");
                return;
            }
        };
        let next = if attempt.succeeded() {
            Next::Succeeded
        } else if attempt.status == Some(410) {
            Next::Failed
        } else {
            self.settings.after_failure(callback.attempts)
        };
        tracing::info!(
            callback = %callback.id, run = %callback.run_id, attempt = callback.attempts,
            status = ?attempt.status, latency_ms = attempt.latency_ms, error = ?attempt.error, next = ?next, "run callback attempt"
        );
        metrics::counter!("switchboard_callback_attempts_total", "outcome" => if attempt.succeeded() { "success" } else { "failure" }).increment(1);
        if let Err(e) = callbacks::finish(&self.pool, &callback, &self.id, &attempt, next).await {
            tracing::error!(callback = %callback.id, error = %e, "recording the callback attempt failed; the lease will expire and it is sent again");
        }
    }
}

/// Wakes the worker loop on every event notification, reconnecting as needed.
async fn listen(pool: sqlx::PgPool, wake: watch::Sender<()>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&pool).await
            && listener.listen(EVENTS_CHANNEL).await.is_ok()
        {
            while let Ok(Some(_)) = listener.try_recv().await {
                let _ = wake.send(());
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_the_standard_webhooks_one() {
        let s = DeliverySettings::default();
        let secs: Vec<u64> = s.schedule.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(s.after_failure(1), Next::Retry(Duration::from_secs(5)));
        assert_eq!(s.after_failure(7), Next::Retry(Duration::from_secs(36000)));
        assert_eq!(s.after_failure(8), Next::Failed);
        // About a day from the first attempt to the last.
        assert!(
            (Duration::from_secs(20 * 3600)..Duration::from_secs(30 * 3600))
                .contains(&s.schedule.iter().sum::<Duration>())
        );
    }

    #[test]
    fn a_lease_outlives_the_longest_attempt() {
        let s = DeliverySettings::default();
        assert_eq!(s.lease(), Duration::from_secs(60));
        let short = DeliverySettings { lease_slack: Duration::ZERO, timeout: Duration::from_secs(30), ..s };
        assert!(short.lease() >= short.timeout);
    }

    #[test]
    fn default_pacing_stays_under_makes_300_per_10_seconds() {
        let s = DeliverySettings::default();
        assert!(s.burst + s.rate_per_second * 10 < 300);
    }
}
