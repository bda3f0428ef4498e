//! Simulated Meta Marketing API (Graph): `GET /{version}/act_{id}` (the ad account),
//! `/{version}/act_{id}/insights` (account or campaign level, `time_increment`
//! days or `all_days`, cursor pages with absolute `paging.next`),
//! `/{version}/act_{id}/campaigns`, and async insights report jobs (`POST
//! act_{id}/insights` → `report_run_id`, `GET /{report_run_id}`, `GET
//! /{report_run_id}/insights`; see [`jobs`]). Any version and any `act_<digits>` account works.
//!
//! Meta's Insights rules are enforced by default (see [`controls`], changed through
//! `POST /_sim/meta/config`): a sync request over a long range answers Meta's "Request
//! Timed Out" (100/1504018, or 2/1504038 at campaign level), and the throttle answer
//! carries a configurable `estimated_time_to_regain_access`.
//!
//! Data are deterministic per (account, date): 2–3 campaigns per account, one currency
//! per account (USD, EUR or BRL), some days without delivery (Meta then omits the row),
//! some spikes. Account-level rows are the sums of the campaign rows. Every answer carries
//! Meta's usage headers. The token (`access_token` parameter or Bearer header) must be
//! present and not start with `bad` (`expired…` gives the expired-session variant).

mod controls;
mod data;
mod jobs;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{OriginalUri, Path, Query, Request, State as Shared},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};

pub use controls::Config;

use super::{Vendor, new_id};

/// Calls per ad account (for the usage headers), the Insights rules in force, and the
/// async report jobs asked for.
#[derive(Default)]
pub struct State {
    calls: Mutex<HashMap<String, u64>>,
    config: Mutex<Config>,
    jobs: Mutex<HashMap<String, jobs::Job>>,
}

impl State {
    /// Objects created: async report jobs (`report_runs`).
    pub fn created(&self) -> BTreeMap<String, u64> {
        let jobs = self.jobs.lock().expect("meta sim jobs").len() as u64;
        BTreeMap::from([("report_runs".to_string(), jobs)])
    }

    /// Forgets calls and jobs; the rules in force (config) stay, as behaviour does.
    pub fn reset(&self) {
        self.calls.lock().expect("meta sim calls").clear();
        self.jobs.lock().expect("meta sim jobs").clear();
    }

    /// Calls answered for `account` (`act_<digits>`) since the last reset.
    pub fn calls(&self, account: &str) -> u64 {
        self.calls.lock().expect("meta sim calls").get(account).copied().unwrap_or(0)
    }

    /// The Insights rules in force.
    pub fn config(&self) -> Config {
        self.config.lock().expect("meta sim config").clone()
    }

    /// Replaces the Insights rules in force (what `POST /_sim/meta/config` does).
    pub fn set_config(&self, config: Config) {
        *self.config.lock().expect("meta sim config") = config;
    }

    fn count(&self, account: &str) -> u64 {
        let mut calls = self.calls.lock().expect("meta sim calls");
        let n = calls.entry(account.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Takes one of the throttled answers `throttle_next` asked for, if any is left.
    fn take_throttle(&self) -> bool {
        let mut config = self.config.lock().expect("meta sim config");
        let left = config.throttle_next > 0;
        config.throttle_next = config.throttle_next.saturating_sub(1);
        left
    }
}

impl Vendor for State {
    fn routes(self: Arc<Self>) -> Router {
        router().layer(from_fn_with_state(self.clone(), throttle_gate)).with_state(self)
    }
    fn throttled(&self) -> Response {
        throttled(self.config().regain_minutes)
    }
    fn fault(&self) -> Response {
        fault()
    }
    fn created(&self) -> BTreeMap<String, u64> {
        State::created(self)
    }
    fn reset(&self) {
        State::reset(self)
    }
    fn error_code(&self, body: &Value) -> Option<String> {
        super::graph_error_code(body)
    }
    fn controls(self: Arc<Self>) -> Option<Router> {
        Some(controls::router().with_state(self))
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/{version}/{node}", get(account))
        .route("/{version}/{node}/insights", get(insights).post(jobs::create))
        .route("/{version}/{node}/campaigns", get(campaigns))
}

/// Answers Meta's throttle while `throttle_next` calls are left (an ad account whose
/// Business Use Case quota is spent).
async fn throttle_gate(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    if state.take_throttle() {
        return throttled(state.config().regain_minutes);
    }
    next.run(req).await
}

/// Meta's BUC throttle (§1.6): HTTP 400, code 80000/2446079, with
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`
/// (developers.facebook.com/docs/graph-api/overview/rate-limiting).
pub fn throttled(regain_minutes: u32) -> Response {
    let usage = json!({"0": [{"type": "ads_insights", "call_count": 100, "total_cputime": 38, "total_time": 41,
        "estimated_time_to_regain_access": regain_minutes, "ads_api_access_tier": "standard_access"}]});
    let mut response = graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. \
                           For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
               "type": "OAuthException", "code": 80000, "error_subcode": 2446079}),
    );
    insert_json_header(response.headers_mut(), "x-business-use-case-usage", &usage);
    response
}

pub fn fault() -> Response {
    graph_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"message": "(#2) Service temporarily unavailable", "type": "OAuthException", "is_transient": true, "code": 2}),
    )
}

/// A Graph error envelope with a fresh `fbtrace_id` (WhatsApp's sim uses it too).
pub(crate) fn graph_error(status: StatusCode, mut error: Value) -> Response {
    error["fbtrace_id"] = json!(new_id("A"));
    (status, Json(json!({"error": error}))).into_response()
}

fn invalid(message: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": format!("(#100) {message}"), "type": "OAuthException", "code": 100}),
    )
}

fn insert_json_header(headers: &mut HeaderMap, name: &'static str, value: &Value) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(name, v);
    }
}

type Params = Query<Vec<(String, String)>>;

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Token, `appsecret_proof` and node checks shared by every route; the node's digits on success.
fn admit(node: &str, params: &[(String, String)], headers: &HeaderMap) -> Result<String, Box<Response>> {
    authenticate(params, headers)?;
    match node.strip_prefix("act_") {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(digits.to_string()),
        _ => Err(Box::new(unknown_node(node))),
    }
}

/// Graph's answer for a node that does not exist (or is not ours to see).
fn unknown_node(node: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": format!("Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded \
                                   due to missing permissions, or does not support this operation."),
               "type": "GraphMethodException", "code": 100, "error_subcode": 33}),
    )
}

/// Token and `appsecret_proof` checks shared by every route.
fn authenticate(params: &[(String, String)], headers: &HeaderMap) -> Result<(), Box<Response>> {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = param(params, "access_token").or(bearer).unwrap_or("").trim();
    let oauth = |message: &str, subcode: Option<i64>| {
        let mut e = json!({"message": message, "type": "OAuthException", "code": 190});
        if let Some(sub) = subcode {
            e["error_subcode"] = json!(sub);
        }
        graph_error(StatusCode::BAD_REQUEST, e)
    };
    if token.is_empty() || token.starts_with("bad") {
        return Err(Box::new(oauth("Invalid OAuth access token - Cannot parse access token", None)));
    }
    if token.starts_with("expired") {
        return Err(Box::new(oauth(
            "Error validating access token: Session has expired on Sunday, 01-Jun-25 10:00:00 PDT.",
            Some(463),
        )));
    }
    if let Some(proof) = param(params, "appsecret_proof")
        && (proof.len() != 64 || !proof.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid appsecret_proof provided in the API argument", "type": "GraphMethodException", "code": 100}),
        )));
    }
    Ok(())
}

/// Ads Insights quota of a Limited-access account with 50 active ads: 600 + 400 × 50 per hour.
const HOURLY_QUOTA: u64 = 20_600;

/// Meta's usage headers for `account` after this call (§1.7).
fn with_usage(state: &State, account: &str, insights: bool, mut response: Response) -> Response {
    let calls = state.count(account);
    let pct = (calls * 100).div_ceil(HOURLY_QUOTA).min(100);
    let digits = account.trim_start_matches("act_");
    let headers = response.headers_mut();
    let counters = json!([{"type": if insights { "ads_insights" } else { "ads_management" }, "call_count": pct,
        "total_cputime": pct / 2, "total_time": pct / 2, "estimated_time_to_regain_access": 0, "ads_api_access_tier": "standard_access"}]);
    let buc = Value::Object(Map::from_iter([(digits.to_string(), counters)]));
    insert_json_header(headers, "x-business-use-case-usage", &buc);
    insert_json_header(
        headers,
        "x-ad-account-usage",
        &json!({"acc_id_util_pct": pct, "reset_time_duration": 0, "ads_api_access_tier": "standard_access"}),
    );
    insert_json_header(
        headers,
        "x-app-usage",
        &json!({"call_count": pct, "total_time": pct / 2, "total_cputime": pct / 2}),
    );
    if insights {
        insert_json_header(
            headers,
            "x-fb-ads-insights-throttle",
            &json!({"app_id_util_pct": pct, "acc_id_util_pct": pct, "ads_api_access_tier": "standard_access"}),
        );
    }
    response
}

/// Keeps the requested fields (Graph returns only those), plus `always`.
fn select(mut row: Map<String, Value>, fields: Option<&str>, default: &[&str], always: &[&str]) -> Value {
    let wanted: Vec<&str> = match fields {
        Some(f) => f.split(',').map(str::trim).collect(),
        None => default.to_vec(),
    };
    row.retain(|k, _| wanted.contains(&k.as_str()) || always.contains(&k.as_str()));
    Value::Object(row)
}

// ---------------------------------------------------------------------------------------
// Handlers

async fn account(
    Shared(state): Shared<Arc<State>>,
    Path((_version, node)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    if let Some(job) = jobs::find(&state, &node) {
        return jobs::status(&state, &job, &params, &headers);
    }
    let digits = match admit(&node, &params, &headers) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let a = data::account_of(&digits);
    let full = json!({"id": a.node, "account_id": a.digits, "name": format!("Sim Account {}", a.digits),
        "currency": a.currency, "timezone_name": a.timezone, "account_status": 1});
    let Value::Object(full) = full else { return invalid("account") };
    let body = select(full, param(&params, "fields"), &["id"], &["id"]);
    with_usage(&state, &a.node, false, Json(body).into_response())
}

async fn campaigns(
    Shared(state): Shared<Arc<State>>,
    Path((_version, node)): Path<(String, String)>,
    Query(params): Params,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let digits = match admit(&node, &params, &headers) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let a = data::account_of(&digits);
    let rows: Vec<Value> = data::campaigns_of(&a)
        .iter()
        .map(|c| {
            let full = json!({"id": c.id, "account_id": a.digits, "name": c.name, "status": "ACTIVE", "effective_status": "ACTIVE",
                "objective": c.objective, "daily_budget": ((a.daily * c.share * 100.0).round() as i64).to_string(),
                "start_time": "2025-01-15T10:00:00+0000", "created_time": "2025-01-15T09:58:12+0000",
                "updated_time": "2026-03-02T08:11:40+0000"});
            match full {
                Value::Object(m) => select(m, param(&params, "fields"), &["id"], &["id"]),
                other => other,
            }
        })
        .collect();
    let page = paginate(rows, &params, &uri, &headers);
    with_usage(&state, &a.node, false, page)
}

/// What an insights request asks for (sync or as an async job).
pub(crate) struct Report {
    account: data::Account,
    level: String,
    since: NaiveDate,
    until: NaiveDate,
    buckets: Vec<(NaiveDate, NaiveDate)>,
    fields: Option<String>,
}

impl Report {
    /// Reads the insights parameters as Graph does; a Graph `100` error when they are wrong.
    fn parse(digits: &str, params: &[(String, String)]) -> Result<Self, Box<Response>> {
        let level = param(params, "level").unwrap_or("account");
        if !matches!(level, "account" | "campaign") {
            return Err(Box::new(invalid(&format!(
                "level must be one of the following values: account, campaign (the simulator does not serve `{level}`)"
            ))));
        }
        let (since, until) = match param(params, "time_range") {
            Some(raw) => {
                let parsed = serde_json::from_str::<Value>(raw).ok().and_then(|v| {
                    let day = |k: &str| v.get(k)?.as_str()?.parse::<NaiveDate>().ok();
                    Some((day("since")?, day("until")?))
                });
                match parsed {
                    Some((s, u)) if s <= u => (s, u),
                    _ => {
                        return Err(Box::new(invalid(
                            "Param time_range must be a JSON object {\"since\":\"YYYY-MM-DD\",\"until\":\"YYYY-MM-DD\"} with since <= until",
                        )));
                    }
                }
            }
            // Graph's default: the last 30 days.
            None => {
                let today = Utc::now().date_naive();
                (today - Duration::days(30), today - Duration::days(1))
            }
        };
        let Some(buckets) = data::buckets(since, until, param(params, "time_increment").unwrap_or("all_days")) else {
            return Err(Box::new(invalid("time_increment must be an integer between 1 and 90, monthly or all_days")));
        };
        Ok(Self {
            account: data::account_of(digits),
            level: level.to_string(),
            since,
            until,
            buckets,
            fields: param(params, "fields").map(String::from),
        })
    }

    fn days(&self) -> i64 {
        (self.until - self.since).num_days() + 1
    }

    /// The rows Graph would answer, each with the requested fields.
    fn rows(&self) -> Vec<Value> {
        let a = &self.account;
        let campaigns = data::campaigns_of(a);
        let mut rows = Vec::new();
        for (from, to) in &self.buckets {
            let days: Vec<NaiveDate> = from.iter_days().take_while(|d| d <= to).collect();
            let per_campaign: Vec<Option<data::Stats>> = campaigns
                .iter()
                .map(|c| {
                    days.iter().filter_map(|d| data::day_stats(a, c, *d)).fold(None, |acc: Option<data::Stats>, s| {
                        let mut acc = acc.unwrap_or_default();
                        acc.add(s);
                        Some(acc)
                    })
                })
                .collect();
            let mut emit = |campaign: Option<&data::Campaign>, s: data::Stats| {
                let full = data::row(a, campaign, s, *from, *to);
                rows.push(select(
                    full,
                    self.fields.as_deref(),
                    &["account_id", "impressions", "spend"],
                    &["date_start", "date_stop"],
                ));
            };
            if self.level == "campaign" {
                for (c, s) in campaigns.iter().zip(&per_campaign) {
                    if let Some(s) = s {
                        emit(Some(c), *s);
                    }
                }
            } else if per_campaign.iter().any(Option::is_some) {
                let mut total = data::Stats::default();
                per_campaign.iter().flatten().for_each(|s| total.add(*s));
                emit(None, total);
            }
        }
        rows
    }
}

/// `GET act_{id}/insights`: sync, so a range longer than the configured limits times out
/// as Meta answers it (see [`controls::timed_out`]).
async fn insights(
    Shared(state): Shared<Arc<State>>,
    Path((_version, node)): Path<(String, String)>,
    Query(params): Params,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(job) = jobs::find(&state, &node) {
        return jobs::results(&state, &job, &params, &uri, &headers);
    }
    let digits = match admit(&node, &params, &headers) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let report = match Report::parse(&digits, &params) {
        Ok(r) => r,
        Err(e) => return *e,
    };
    let config = state.config();
    if let Some(timeout) = controls::timed_out(&config, &report.level, report.days()) {
        return with_usage(&state, &report.account.node, true, timeout);
    }
    let page = paginate(report.rows(), &params, &uri, &headers);
    with_usage(&state, &report.account.node, true, page)
}

/// Cursor pages: `limit` (default 25), `after`; `paging.next` is an absolute URL back to
/// this simulator built from the `Host` header and the full (prefixed) path.
fn paginate(rows: Vec<Value>, params: &[(String, String)], uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    let limit = param(params, "limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25).clamp(1, 500);
    let cursor = |i: usize| URL_SAFE_NO_PAD.encode(i.to_string());
    let start = match param(params, "after") {
        None => 0,
        Some(after) => match URL_SAFE_NO_PAD
            .decode(after)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(i) => i + 1,
            None => return invalid("Invalid cursor: after"),
        },
    };
    let total = rows.len();
    let data: Vec<Value> = rows.into_iter().skip(start).take(limit).collect();
    if data.is_empty() {
        return Json(json!({"data": []})).into_response();
    }
    let last = start + data.len() - 1;
    let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(last)}});
    if last + 1 < total {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let mut query = form_urlencoded::Serializer::new(String::new());
        params.iter().filter(|(k, _)| k != "after").for_each(|(k, v)| {
            query.append_pair(k, v);
        });
        query.append_pair("after", &cursor(last));
        paging["next"] = json!(format!("http://{host}{}?{}", uri.path(), query.finish()));
    }
    Json(json!({"data": data, "paging": paging})).into_response()
}
