//! Async insights report jobs, as Meta runs them (Insights "asynchronous jobs";
//! shapes as Meta's SDK has them: facebook-python-business-sdk `adobjects/adreportrun.py`):
//!
//! - `POST /{v}/act_{id}/insights` with the same parameters as a sync request (query or
//!   form body) answers `{"report_run_id": "<digits>"}`; no time-out rule applies.
//! - `GET /{v}/{report_run_id}` answers the job: `async_status` goes `Job Not Started` →
//!   `Job Started`/`Job Running` → `Job Completed` over `async_polls` polls, with
//!   `async_percent_completion` rising to 100.
//! - `GET /{v}/{report_run_id}/insights` pages the rows (cursor paging, `limit`) once the
//!   job completed; before, a Graph `100` error.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State as Shared},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use rand::Rng;
use serde_json::{Value, json};

use super::{Params, Report, State, admit, authenticate, graph_error, paginate, param, select, with_usage};

/// One report run.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    id: String,
    /// `act_<digits>`.
    account: String,
    digits: String,
    /// The report's parameters, credentials left out.
    params: Vec<(String, String)>,
    /// Status polls answered so far.
    polls: u32,
    created: i64,
}

/// The job `node` names, if it is a report run of this simulator.
pub(super) fn find(state: &State, node: &str) -> Option<Job> {
    if node.is_empty() || !node.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    state.jobs.lock().expect("meta sim jobs").get(node).cloned()
}

/// `POST act_{id}/insights`: starts a report run.
pub(super) async fn create(
    Shared(state): Shared<Arc<State>>,
    Path((_version, node)): Path<(String, String)>,
    Query(mut params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    params.extend(form_urlencoded::parse(&body).into_owned());
    let digits = match admit(&node, &params, &headers) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let report = match Report::parse(&digits, &params) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let id = rand::rng().random_range(1_000_000_000_000_000u64..10_000_000_000_000_000).to_string();
    let job = Job {
        id: id.clone(),
        account: report.account.node.clone(),
        digits,
        params: params.into_iter().filter(|(k, _)| k != "access_token" && k != "appsecret_proof").collect(),
        polls: 0,
        created: Utc::now().timestamp(),
    };
    state.jobs.lock().expect("meta sim jobs").insert(id.clone(), job.clone());
    with_usage(&state, &job.account, true, Json(json!({"report_run_id": id})).into_response())
}

/// Where a job stands after `polls` polls of `of`: (`async_status`, percent).
fn progress(polls: u32, of: u32) -> (&'static str, u32) {
    let of = of.max(1);
    let pct = (polls.saturating_mul(100) / of).min(100);
    match polls {
        p if p >= of => ("Job Completed", 100),
        1 => ("Job Not Started", 0),
        _ if pct < 50 => ("Job Started", pct),
        _ => ("Job Running", pct),
    }
}

fn completed(state: &State, job: &Job) -> bool {
    job.polls >= state.config().async_polls.max(1)
}

/// `GET /{report_run_id}`: one poll.
pub(super) fn status(state: &State, job: &Job, params: &[(String, String)], headers: &HeaderMap) -> Response {
    if let Err(e) = authenticate(params, headers) {
        return *e;
    }
    let polls = {
        let mut jobs = state.jobs.lock().expect("meta sim jobs");
        match jobs.get_mut(&job.id) {
            Some(j) => {
                j.polls += 1;
                j.polls
            }
            None => return super::unknown_node(&job.id),
        }
    };
    let (status, pct) = progress(polls, state.config().async_polls);
    let range = Report::parse(&job.digits, &job.params).ok();
    let mut full = json!({
        "id": job.id, "account_id": job.digits, "async_status": status, "async_percent_completion": pct,
        "is_running": status != "Job Completed", "time_ref": job.created,
        "date_start": range.as_ref().map(|r| r.since.to_string()), "date_stop": range.as_ref().map(|r| r.until.to_string()),
    });
    if status == "Job Completed" {
        full["time_completed"] = json!(Utc::now().timestamp());
    }
    let Value::Object(full) = full else { return super::invalid("report run") };
    let all: Vec<&str> = full.keys().map(String::as_str).collect::<Vec<_>>();
    let body = select(full.clone(), param(params, "fields"), &all, &["id"]);
    with_usage(state, &job.account, true, Json(body).into_response())
}

/// `GET /{report_run_id}/insights`: the rows, once the job completed.
pub(super) fn results(
    state: &State,
    job: &Job,
    params: &[(String, String)],
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Response {
    if let Err(e) = authenticate(params, headers) {
        return *e;
    }
    if !completed(state, job) {
        // The stricter reading: results exist only once the job says so.
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("(#100) Report {} is not ready: poll it until async_status is Job Completed", job.id),
                   "type": "OAuthException", "code": 100}),
        );
    }
    let report = match Report::parse(&job.digits, &job.params) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let page = paginate(report.rows(), params, uri, headers);
    with_usage(state, &job.account, true, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_progress_to_completion_over_the_configured_polls() {
        assert_eq!(progress(1, 3), ("Job Not Started", 0));
        assert_eq!(progress(2, 3), ("Job Running", 66));
        assert_eq!(progress(3, 3), ("Job Completed", 100));
        assert_eq!(progress(2, 5), ("Job Started", 40));
        assert_eq!(progress(1, 1), ("Job Completed", 100));
    }
}
