//! Simulated Meta Marketing API (Graph): `GET /{version}/act_{id}` (the ad account),
//! `/{version}/act_{id}/insights` (account or campaign level, `time_increment`
//! days or `all_days`, cursor pages with absolute `paging.next`) and
//! `/{version}/act_{id}/campaigns`. Any version and any `act_<digits>` account works.
//!
//! Data are deterministic per (account, date): 2–3 campaigns per account, one currency
//! per account (USD, EUR or BRL), some days without delivery (Meta then omits the row),
//! some spikes. Account-level rows are the sums of the campaign rows. Every answer carries
//! Meta's usage headers. The token (`access_token` parameter or Bearer header) must be
//! present and not start with `bad` (`expired…` gives the expired-session variant).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{OriginalUri, Path, Query, State as Shared},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use super::{Vendor, new_id, unit};

/// Calls per ad account, for the usage headers.
#[derive(Default)]
pub struct State {
    calls: Mutex<HashMap<String, u64>>,
}

impl State {
    /// Read-only API: nothing is created.
    pub fn created(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    pub fn reset(&self) {
        self.calls.lock().expect("meta sim calls").clear();
    }

    /// Calls answered for `account` (`act_<digits>`) since the last reset.
    pub fn calls(&self, account: &str) -> u64 {
        self.calls.lock().expect("meta sim calls").get(account).copied().unwrap_or(0)
    }

    fn count(&self, account: &str) -> u64 {
        let mut calls = self.calls.lock().expect("meta sim calls");
        let n = calls.entry(account.to_string()).or_default();
        *n += 1;
        *n
    }
}

impl Vendor for State {
    fn routes(self: Arc<Self>) -> Router {
        router().with_state(self)
    }
    fn throttled(&self) -> Response {
        throttled()
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
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/{version}/{node}", get(account))
        .route("/{version}/{node}/insights", get(insights))
        .route("/{version}/{node}/campaigns", get(campaigns))
}

/// Meta's BUC throttle (§1.6): HTTP 400, code 80000/2446079, a minute to regain access.
pub fn throttled() -> Response {
    let usage = json!({"0": [{"type": "ads_insights", "call_count": 100, "total_cputime": 38, "total_time": 41,
        "estimated_time_to_regain_access": 1, "ads_api_access_tier": "standard_access"}]});
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
    match node.strip_prefix("act_") {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(digits.to_string()),
        _ => Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded \
                                       due to missing permissions, or does not support this operation."),
                   "type": "GraphMethodException", "code": 100, "error_subcode": 33}),
        ))),
    }
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

// ---------------------------------------------------------------------------------------
// Deterministic accounts, campaigns and metrics

struct Account {
    node: String,
    digits: String,
    currency: &'static str,
    timezone: &'static str,
    /// USD per unit of the currency, for realistic amounts.
    fx: f64,
    /// Typical daily spend of the whole account, in its currency.
    daily: f64,
}

fn account_of(digits: &str) -> Account {
    let node = format!("act_{digits}");
    let (currency, timezone, fx) = match (unit(&[&node, "currency"]) * 3.0) as u32 {
        0 => ("USD", "America/New_York", 1.0),
        1 => ("EUR", "Europe/Berlin", 0.92),
        _ => ("BRL", "America/Sao_Paulo", 5.4),
    };
    let daily = ((50.0 + 350.0 * unit(&[&node, "size"])) * fx).round();
    Account { digits: digits.to_string(), node, currency, timezone, fx, daily }
}

struct Campaign {
    id: String,
    name: &'static str,
    objective: &'static str,
    /// Share of the account's daily spend.
    share: f64,
}

const CAMPAIGNS: [(&str, &str, f64); 3] = [
    ("Prospecting – Broad", "OUTCOME_SALES", 0.5),
    ("Retargeting – 30 days", "OUTCOME_SALES", 0.3),
    ("Traffic – Blog", "OUTCOME_TRAFFIC", 0.2),
];

fn campaigns_of(account: &Account) -> Vec<Campaign> {
    let n = if unit(&[&account.node, "campaigns"]) < 0.5 { 2 } else { 3 };
    let total: f64 = CAMPAIGNS[..n].iter().map(|c| c.2).sum();
    CAMPAIGNS[..n]
        .iter()
        .enumerate()
        .map(|(i, (name, objective, share))| Campaign {
            id: format!("120{:015}", (unit(&[&account.node, "campaign", &i.to_string()]) * 1e15) as u64),
            name,
            objective,
            share: share / total,
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Stats {
    /// Cents, so sums stay exact.
    spend_cents: i64,
    impressions: i64,
    clicks: i64,
    purchases: i64,
    value_cents: i64,
}

impl Stats {
    fn add(&mut self, o: Stats) {
        self.spend_cents += o.spend_cents;
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.purchases += o.purchases;
        self.value_cents += o.value_cents;
    }
}

/// One campaign's delivery on one day; `None` when it did not deliver.
fn day_stats(a: &Account, c: &Campaign, date: NaiveDate) -> Option<Stats> {
    let d = date.to_string();
    let u = |what: &str| unit(&[&a.node, &d, &c.id, what]);
    // Whole account dark some days (budget out, paused), single campaigns others; no data for the future.
    if date > Utc::now().date_naive() || unit(&[&a.node, &d, "spend"]) < 0.07 || u("off") < 0.08 {
        return None;
    }
    let mut spend = a.daily * c.share * (0.55 + 0.9 * u("spend"));
    if unit(&[&a.node, &d, "spike"]) > 0.96 {
        spend *= 2.5 + 1.5 * u("spike");
    }
    let cpm = (6.0 + 10.0 * unit(&[&a.node, "cpm"])) * a.fx * (0.85 + 0.3 * u("cpm"));
    let impressions = (spend / cpm * 1000.0).round() as i64;
    let clicks = (impressions as f64 * (0.008 + 0.017 * u("ctr"))).round() as i64;
    let cvr = if c.objective == "OUTCOME_SALES" { 0.01 + 0.03 * u("cvr") } else { 0.002 };
    let purchases = (clicks as f64 * cvr).round() as i64;
    let order = (30.0 + 90.0 * unit(&[&a.node, "aov"])) * a.fx * (0.8 + 0.4 * u("aov"));
    Some(Stats {
        spend_cents: (spend * 100.0).round() as i64,
        impressions,
        clicks,
        purchases,
        value_cents: (purchases as f64 * order * 100.0).round() as i64,
    })
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// An insights row as Graph writes it: every number a string; purchases reported under
/// several overlapping action types, as Meta does (the pixel-only count is smaller).
fn row(a: &Account, campaign: Option<&Campaign>, s: Stats, since: NaiveDate, until: NaiveDate) -> Map<String, Value> {
    let ratio = |n: f64, d: f64| if d > 0.0 { format!("{:.6}", n / d) } else { "0".into() };
    let spend = s.spend_cents as f64 / 100.0;
    let mut r = json!({
        "account_id": a.digits, "account_name": format!("Sim Account {}", a.digits), "account_currency": a.currency,
        "spend": money(s.spend_cents), "impressions": s.impressions.to_string(), "clicks": s.clicks.to_string(),
        "ctr": ratio(s.clicks as f64 * 100.0, s.impressions as f64), "cpc": ratio(spend, s.clicks as f64),
        "cpm": ratio(spend * 1000.0, s.impressions as f64),
        "date_start": since.to_string(), "date_stop": until.to_string(),
    });
    if let Some(c) = campaign {
        r["campaign_id"] = json!(c.id);
        r["campaign_name"] = json!(c.name);
    }
    let mut actions = vec![json!({"action_type": "link_click", "value": (s.clicks * 9 / 10).to_string()})];
    if s.purchases > 0 {
        let pixel = s.purchases * 9 / 10;
        for (kind, n) in
            [("purchase", s.purchases), ("omni_purchase", s.purchases), ("offsite_conversion.fb_pixel_purchase", pixel)]
        {
            actions.push(json!({"action_type": kind, "value": n.to_string()}));
        }
        let pixel_value = s.value_cents * 9 / 10;
        r["action_values"] = json!([
            {"action_type": "purchase", "value": money(s.value_cents)},
            {"action_type": "omni_purchase", "value": money(s.value_cents)},
            {"action_type": "offsite_conversion.fb_pixel_purchase", "value": money(pixel_value)},
        ]);
        r["purchase_roas"] =
            json!([{"action_type": "omni_purchase", "value": ratio(s.value_cents as f64, s.spend_cents as f64)}]);
    }
    if s.clicks > 0 {
        r["actions"] = json!(actions);
    }
    match r {
        Value::Object(map) => map,
        _ => Map::new(),
    }
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
    let digits = match admit(&node, &params, &headers) {
        Ok(d) => d,
        Err(e) => return *e,
    };
    let a = account_of(&digits);
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
    let a = account_of(&digits);
    let rows: Vec<Value> = campaigns_of(&a)
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

async fn insights(
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
    let a = account_of(&digits);
    let level = param(&params, "level").unwrap_or("account");
    if !matches!(level, "account" | "campaign") {
        return invalid(&format!(
            "level must be one of the following values: account, campaign (the simulator does not serve `{level}`)"
        ));
    }
    let (since, until) = match param(&params, "time_range") {
        Some(raw) => {
            let parsed = serde_json::from_str::<Value>(raw).ok().and_then(|v| {
                let day = |k: &str| v.get(k)?.as_str()?.parse::<NaiveDate>().ok();
                Some((day("since")?, day("until")?))
            });
            match parsed {
                Some((s, u)) if s <= u => (s, u),
                _ => {
                    return invalid(
                        "Param time_range must be a JSON object {\"since\":\"YYYY-MM-DD\",\"until\":\"YYYY-MM-DD\"} with since <= until",
                    );
                }
            }
        }
        // Graph's default: the last 30 days.
        None => {
            let today = Utc::now().date_naive();
            (today - Duration::days(30), today - Duration::days(1))
        }
    };
    let Some(buckets) = buckets(since, until, param(&params, "time_increment").unwrap_or("all_days")) else {
        return invalid("time_increment must be an integer between 1 and 90, monthly or all_days");
    };
    let campaigns = campaigns_of(&a);
    let mut rows = Vec::new();
    for (from, to) in buckets {
        let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let per_campaign: Vec<Option<Stats>> = campaigns
            .iter()
            .map(|c| {
                days.iter().filter_map(|d| day_stats(&a, c, *d)).fold(None, |acc: Option<Stats>, s| {
                    let mut acc = acc.unwrap_or_default();
                    acc.add(s);
                    Some(acc)
                })
            })
            .collect();
        let mut emit = |campaign: Option<&Campaign>, s: Stats| {
            let full = row(&a, campaign, s, from, to);
            rows.push(select(
                full,
                param(&params, "fields"),
                &["account_id", "impressions", "spend"],
                &["date_start", "date_stop"],
            ));
        };
        if level == "campaign" {
            for (c, s) in campaigns.iter().zip(&per_campaign) {
                if let Some(s) = s {
                    emit(Some(c), *s);
                }
            }
        } else if per_campaign.iter().any(Option::is_some) {
            let mut total = Stats::default();
            per_campaign.iter().flatten().for_each(|s| total.add(*s));
            emit(None, total);
        }
    }
    let page = paginate(rows, &params, &uri, &headers);
    with_usage(&state, &a.node, true, page)
}

/// The reporting periods `time_increment` splits `[since, until]` into.
fn buckets(since: NaiveDate, until: NaiveDate, increment: &str) -> Option<Vec<(NaiveDate, NaiveDate)>> {
    let mut out = Vec::new();
    let mut start = since;
    while start <= until {
        let end = match increment {
            "all_days" => until,
            "monthly" => {
                let next = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                };
                next?.pred_opt()?.min(until)
            }
            n => {
                let n: i64 = n.parse().ok().filter(|n| (1..=90).contains(n))?;
                (start + Duration::days(n - 1)).min(until)
            }
        };
        out.push((start, end));
        start = end.succ_opt()?;
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_are_deterministic_and_levels_add_up() {
        let a = account_of("1234567890");
        assert_eq!(account_of("1234567890").currency, a.currency);
        let cs = campaigns_of(&a);
        assert!((2..=3).contains(&cs.len()));
        let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let first = cs.iter().map(|c| day_stats(&a, c, day).map(|s| s.spend_cents)).collect::<Vec<_>>();
        let again = cs.iter().map(|c| day_stats(&a, c, day).map(|s| s.spend_cents)).collect::<Vec<_>>();
        assert_eq!(first, again);
        // Over a year some days are dark and the rest vary.
        let days: Vec<i64> = NaiveDate::from_ymd_opt(2025, 6, 1)
            .unwrap()
            .iter_days()
            .take(365)
            .map(|d| cs.iter().filter_map(|c| day_stats(&a, c, d)).map(|s| s.spend_cents).sum())
            .collect();
        assert!(days.iter().filter(|s| **s == 0).count() >= 5);
        assert!(days.iter().max() > days.iter().filter(|s| **s > 0).min());
    }

    #[test]
    fn increments_split_the_range() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert_eq!(buckets(d(6, 1), d(6, 3), "1").unwrap().len(), 3);
        assert_eq!(buckets(d(6, 1), d(6, 3), "all_days").unwrap(), vec![(d(6, 1), d(6, 3))]);
        assert_eq!(buckets(d(5, 20), d(6, 3), "monthly").unwrap(), vec![(d(5, 20), d(5, 31)), (d(6, 1), d(6, 3))]);
        assert!(buckets(d(6, 1), d(6, 3), "91").is_none());
    }

    #[test]
    fn money_keeps_cents() {
        assert_eq!(money(10050), "100.50");
        assert_eq!(money(7), "0.07");
    }
}
