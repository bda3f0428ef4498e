//! `callback_url`: when a run ends, its final state (the same JSON as
//! `GET /v1/runs/{id}`) is POSTed there, with a few retries. Signing comes with the
//! event webhooks (the Make integration issue), which will use the same function.

use std::time::Duration;

use uuid::Uuid;

use crate::{api::runs::run_view, app::AppState};

const ATTEMPTS: u32 = 4;

pub async fn deliver(state: &AppState, url: &str, run_id: Uuid) {
    let body = match run_view(state, run_id).await {
        Ok(view) => view,
        Err(e) => {
            tracing::warn!(run = %run_id, error = ?e.source, "cannot build the run callback");
            return;
        }
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("reqwest client");
    for attempt in 1..=ATTEMPTS {
        match client.post(url).header("content-type", "application/json").json(&body).send().await {
            Ok(res) if res.status().is_success() => {
                tracing::info!(run = %run_id, status = res.status().as_u16(), "run callback delivered");
                return;
            }
            Ok(res) => tracing::warn!(run = %run_id, status = res.status().as_u16(), attempt, "run callback refused"),
            Err(e) => tracing::warn!(run = %run_id, error = %e.without_url(), attempt, "run callback failed"),
        }
        tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
    }
    tracing::error!(run = %run_id, "run callback not delivered; giving up");
}
