//! Async insights report jobs, Meta's answer to ranges a sync request cannot serve
//! (Insights error codes 100/1504018 and 2/1504038: "try a smaller date range, fetch less
//! data, or use async jobs"; developers.facebook.com/documentation/ads-commerce/
//! marketing-api/insights/error-codes).
//!
//! `POST /act_{id}/insights` with the report's parameters answers `{"report_run_id"}`;
//! `GET /{report_run_id}` tells `async_status` (`Job Not Started`, `Job Started`,
//! `Job Running`, `Job Completed`, `Job Failed`, `Job Skipped`) and
//! `async_percent_completion`; once completed, `GET /{report_run_id}/insights` pages the
//! rows like a sync request. Shapes as in Meta's SDK (facebook-python-business-sdk,
//! `adobjects/adreportrun.py`). Polls back off (doubling, at most 15 s apart) and stop
//! after `META_ASYNC_MAX_WAIT_SECS`; a poll counts against the account's quota like any call.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{INFO, Meta, PAGE_SIZE, RawRow};
use crate::platforms::{ErrorKind, PlatformError, http::Call};

const DEFAULT_POLL: Duration = Duration::from_secs(1);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(300);

/// Whether Meta refused a sync insights request as too big (to be asked again as a job).
pub(super) fn sync_timed_out(e: &PlatformError) -> bool {
    matches!(e.code.as_deref(), Some("100/1504018" | "2/1504038"))
}

#[derive(Debug, Deserialize)]
struct Created {
    report_run_id: String,
}

#[derive(Debug, Deserialize)]
struct ReportRun {
    #[serde(default)]
    async_status: String,
    #[serde(default)]
    async_percent_completion: u32,
}

impl Meta {
    /// Runs `query` (the insights parameters, without `limit`) as an async report job on
    /// `node` and returns its rows.
    pub(super) async fn report_job(&self, node: &str, query: &[(&str, String)]) -> Result<Vec<RawRow>, PlatformError> {
        let url = self.url(&format!("{node}/insights"), &[])?;
        let form: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let created: Created = self
            .http
            .send(Call::new("insights_job").account(node), |c| c.post(url.clone()).form(&form))
            .await?
            .json()?;
        let id = created.report_run_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PlatformError::malformed(INFO.key, format!("report_run_id {id:?}")));
        }
        let poll = self.settings.async_poll_ms.map(Duration::from_millis).unwrap_or(DEFAULT_POLL);
        let max_wait = self.settings.async_max_wait_secs.map(Duration::from_secs).unwrap_or(DEFAULT_MAX_WAIT);
        let started = Instant::now();
        let mut delay = poll;
        loop {
            let url = self.url(&id, &[("fields", "id,async_status,async_percent_completion".to_string())])?;
            let run: ReportRun =
                self.http.send(Call::new("insights_job_status").account(node), |c| c.get(url.clone())).await?.json()?;
            match run.async_status.as_str() {
                "Job Completed" => break,
                // Meta's table: -2/2490547 "Report Failed: generating the report failed. Try again later."
                "Job Failed" => {
                    let message = format!("async report {id} failed (Job Failed); Meta advises trying again later");
                    return Err(PlatformError::new(INFO.key, ErrorKind::Unavailable, message));
                }
                // Nothing to report for the range.
                "Job Skipped" => return Ok(vec![]),
                _ => {}
            }
            if started.elapsed() + delay > max_wait {
                let message = format!(
                    "async report {id} not completed after {}s ({}, {}%)",
                    max_wait.as_secs(),
                    run.async_status,
                    run.async_percent_completion
                );
                return Err(PlatformError::new(INFO.key, ErrorKind::Timeout, message));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL_INTERVAL);
        }
        let params = [("limit", PAGE_SIZE.to_string())];
        self.collect("insights_job_results", node, &format!("{id}/insights"), &params).await
    }
}
