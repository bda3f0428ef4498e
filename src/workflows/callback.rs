//! `callback_url`: when a run ends, its final state (the same JSON as
//! `GET /v1/runs/{id}`) is POSTed there, with a few retries, with the Standard
//! Webhooks headers of the event webhooks: `webhook-id` (one id per callback, the
//! same on every retry, for de-duplication), `webhook-timestamp`, and, when
//! `CALLBACK_SECRET` is set, `webhook-signature` (`v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">` with that key). Without `CALLBACK_SECRET` callbacks go
//! unsigned: the receiver can still check the run with `GET /v1/runs/{id}`.

use std::time::Duration;

use uuid::Uuid;

use crate::{api::runs::run_view, app::AppState, events::signing};

const ATTEMPTS: u32 = 4;

pub async fn deliver(state: &AppState, url: &str, run_id: Uuid) {
    deliver_with_backoff(state, url, run_id, Duration::from_secs(2)).await
}

/// [`deliver`] with the first retry after `backoff` (doubling).
pub async fn deliver_with_backoff(state: &AppState, url: &str, run_id: Uuid, backoff: Duration) {
    let body = match run_view(state, run_id).await.map(|view| serde_json::to_vec(&view)) {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::warn!(run = %run_id, error = %e, "cannot build the run callback");
            return;
        }
        Err(e) => {
            tracing::warn!(run = %run_id, error = ?e.source, "cannot build the run callback");
            return;
        }
    };
    let message_id = Uuid::now_v7().to_string();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("reqwest client");
    for attempt in 1..=ATTEMPTS {
        let timestamp = chrono::Utc::now().timestamp();
        let mut request =
            client.post(url).header("content-type", "application/json").header("webhook-id", &message_id).header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = state.config.callback_secret.as_ref().map(secrecy::ExposeSecret::expose_secret) {
            match signing::sign(secret, &message_id, timestamp, &body) {
                Ok(signature) => request = request.header("webhook-signature", signature),
                Err(e) => tracing::warn!(error = %e, "CALLBACK_SECRET cannot sign; sending the callback unsigned"),
            }
        }
        match request.body(body.clone()).send().await {
            Ok(res) if res.status().is_success() => {
                tracing::info!(run = %run_id, status = res.status().as_u16(), "run callback delivered");
                return;
            }
            Ok(res) => tracing::warn!(run = %run_id, status = res.status().as_u16(), attempt, "run callback refused"),
            Err(e) => tracing::warn!(run = %run_id, error = %e.without_url(), attempt, "run callback failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff * 2u32.pow(attempt - 1)).await;
        }
    }
    tracing::error!(run = %run_id, "run callback not delivered; giving up");
}
