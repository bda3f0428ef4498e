//! Simulated Google Ads API (REST) and Google's OAuth token endpoint:
//! `POST /token` (refresh-token and JWT bearer grants),
//! `POST /{version}/customers/{id}/googleAds:searchStream` (one array of batches) and
//! `POST /{version}/customers/{id}/googleAds:search` (pages of [`SEARCH_PAGE_SIZE`]
//! rows chained by `nextPageToken`), answering GAQL `FROM customer` and `FROM campaign`
//! with a `segments.date BETWEEN` filter. Metrics are deterministic per
//! (customer, campaign, date). Customer `0000000000` answers USER_PERMISSION_DENIED.
//! A sunset API version answers 400 `requestError: UNSUPPORTED_VERSION`, as Google does.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State as Shared},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine;
use chrono::{Duration, NaiveDate, Utc};
use serde_json::{Value, json};

mod oauth;

pub use self::oauth::{TOKEN_PREFIX, TokenKind};
pub(super) use self::oauth::{bearer_problem, token_endpoint};
use super::{Vendor, new_id, unit};

/// Real pages hold 10,000 rows; a small page makes pagination visible in the sandbox.
pub const SEARCH_PAGE_SIZE: usize = 25;
const CURRENCIES: [&str; 4] = ["USD", "EUR", "GBP", "BRL"];
/// Name, status and share of the daily budget; paused campaigns do not deliver.
const CAMPAIGNS: [(&str, &str, f64); 4] = [
    ("Brand Search", "ENABLED", 0.45),
    ("Generic Search", "ENABLED", 0.35),
    ("Performance Max - Prospecting", "ENABLED", 0.20),
    ("Display - Remarketing", "PAUSED", 0.0),
];
const MAX_DAYS: i64 = 3660;
/// The version named in answers that have no request to take it from.
pub const LATEST_VERSION: &str = "v26";

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("invalid date"),
    }
}

/// The simulator's own table of Google Ads API versions: `(name, first day it fails)`,
/// oldest first. Published sunsets from Google's sunset reminders
/// (https://developers.google.com/ads/blog, e.g. posts/2026/09/google-ads-api-v22-sunset-reminder:
/// "Starting on this date, all v22 API requests will begin to fail"); the rest are release +
/// 12 months (https://developers.google.com/google-ads/api/docs/sunset-dates: "major versions
/// have a lifespan of around 12 months"), the stricter reading, as the connector's table.
pub const VERSIONS: [(&str, NaiveDate); 8] = [
    ("v19", date(2026, 2, 11)),
    ("v20", date(2026, 6, 10)),
    ("v21", date(2026, 8, 5)),
    ("v22", date(2026, 10, 7)),
    ("v23", date(2027, 1, 28)),
    ("v24", date(2027, 4, 22)),
    ("v25", date(2027, 7, 22)),
    ("v26", date(2027, 10, 14)),
];

/// Whether Google still serves `version` on `today`: `Some(true)` served, `Some(false)` sunset,
/// `None` no such version (newer than the table, or not a version at all).
pub fn served(version: &str, today: NaiveDate) -> Option<bool> {
    let major = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
    let n = major(version)?;
    match VERSIONS.iter().find(|(name, _)| *name == version) {
        Some((_, sunset)) => Some(today < *sunset),
        None if n < major(VERSIONS[0].0).unwrap_or(0) => Some(false),
        None => None,
    }
}

/// The API version in a request path (`/google-ads/v26/customers/…` → `v26`).
fn version_in(path: &str) -> Option<&str> {
    path.split('/').find(|s| s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Default)]
pub struct State {
    tokens: AtomicU64,
    /// The last `login-customer-id` each customer was reached through (for tests and demos).
    logins: std::sync::Mutex<BTreeMap<String, String>>,
}

impl State {
    /// Nothing is created on Google Ads through this API.
    pub fn created(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    pub fn reset(&self) {
        self.tokens.store(0, Ordering::Relaxed);
        self.logins.lock().expect("ads logins").clear();
    }

    /// The `login-customer-id` of the last call about `customer`, if it had one.
    pub fn login_customer_id(&self, customer: &str) -> Option<String> {
        self.logins.lock().expect("ads logins").get(customer).cloned()
    }

    /// Access tokens issued by `POST /token` (shows whether clients cache them).
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }
}

impl Vendor for State {
    fn routes(self: Arc<Self>) -> Router {
        router().with_state(self)
    }
    fn throttled(&self) -> Response {
        throttled(LATEST_VERSION)
    }
    fn fault(&self) -> Response {
        fault(LATEST_VERSION)
    }
    fn throttled_at(&self, path: &str) -> Response {
        throttled(version_in(path).unwrap_or(LATEST_VERSION))
    }
    fn fault_at(&self, path: &str) -> Response {
        fault(version_in(path).unwrap_or(LATEST_VERSION))
    }
    fn created(&self) -> BTreeMap<String, u64> {
        State::created(self)
    }
    fn reset(&self) {
        State::reset(self)
    }
    /// `family.REASON` of the first `GoogleAdsFailure` error, else the RPC status.
    fn error_code(&self, body: &Value) -> Option<String> {
        if let Some(code) = super::oauth_error_code(body) {
            return Some(code);
        }
        let error = &body["error"];
        let failure = error["details"].as_array().and_then(|d| d.iter().find_map(|d| d["errors"].get(0)));
        let family = failure.and_then(|e| e["errorCode"].as_object()).and_then(|c| c.iter().next());
        match family {
            Some((family, reason)) => Some(format!("{family}.{}", reason.as_str().unwrap_or_default())),
            None => error["status"].as_str().map(String::from),
        }
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/token",
            post(|Shared(s): Shared<Arc<State>>, body: Bytes| async move { token_endpoint(&s.tokens, &body, true) }),
        )
        .route("/{version}/customers/{customer}/{method}", post(query))
}

/// Google's 429 for a short-term quota, with the wait in `quotaErrorDetails.retryDelay`;
/// its `@type` names the requested `version`.
pub fn throttled(version: &str) -> Response {
    let details =
        json!({"quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "Requests per account", "retryDelay": "1s"}});
    ads_error(
        version,
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        ("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED"),
        "Too many requests. Retry in 1 seconds.",
        Some(details),
    )
}

pub fn fault(version: &str) -> Response {
    ads_error(
        version,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "Internal error encountered.",
        ("internalError", "INTERNAL_ERROR"),
        "An internal error has occurred.",
        None,
    )
}

/// The Google error envelope with a `GoogleAdsFailure` detail.
fn ads_error(
    version: &str,
    status: StatusCode,
    rpc: &str,
    message: &str,
    code: (&str, &str),
    detail: &str,
    details: Option<Value>,
) -> Response {
    let mut error = json!({"errorCode": {code.0: code.1}, "message": detail});
    if let Some(details) = details {
        error["details"] = details;
    }
    let request_id = new_id("");
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": rpc,
        "details": [{
            "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
            "errors": [error],
            "requestId": request_id,
        }],
    }});
    (status, [("request-id", request_id)], Json(body)).into_response()
}

fn invalid(version: &str, code: (&str, &str), detail: &str) -> Response {
    ads_error(
        version,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        code,
        detail,
        None,
    )
}

async fn query(
    Shared(state): Shared<Arc<State>>,
    Path((version, customer, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match bearer_problem(&headers) {
        Some("missing") => {
            let body = json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
                "message": "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."}});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
        Some(_) => {
            let message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
            return ads_error(
                &version,
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                message,
                ("authenticationError", "OAUTH_TOKEN_INVALID"),
                "Oauth token is invalid.",
                None,
            );
        }
        None => {}
    }
    if headers.get("developer-token").and_then(|v| v.to_str().ok()).is_none_or(|v| v.trim().is_empty()) {
        return invalid(
            &version,
            ("requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING"),
            "The developer-token parameter is required for all requests.",
        );
    }
    match served(&version, Utc::now().date_naive()) {
        Some(true) => {}
        // As Google answers a sunset version (github.com/google-marketing-solutions/adios/issues/47,
        // a v14 request after its sunset): 400 INVALID_ARGUMENT, `requestError: UNSUPPORTED_VERSION`,
        // " Version v14 is deprecated. Requests to this version will be blocked.", @type of that version.
        Some(false) => {
            return invalid(
                &version,
                ("requestError", "UNSUPPORTED_VERSION"),
                &format!(" Version {version} is deprecated. Requests to this version will be blocked."),
            );
        }
        // No such version: there is no such endpoint.
        None => {
            let body = json!({"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}});
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
    }
    let stream = match method.as_str() {
        "googleAds:searchStream" => true,
        "googleAds:search" => false,
        _ => {
            let body = json!({"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}});
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
    };
    if customer.len() != 10 || !customer.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(
            &version,
            ("requestError", "INVALID_CUSTOMER_ID"),
            &format!("Invalid customer ID '{customer}'."),
        );
    }
    let mut logins = state.logins.lock().expect("ads logins");
    match headers.get("login-customer-id").and_then(|v| v.to_str().ok()) {
        Some(login) => logins.insert(customer.clone(), login.to_string()),
        None => logins.remove(&customer),
    };
    drop(logins);
    if customer == "0000000000" {
        let detail = "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header.";
        let message = "The caller does not have permission";
        return ads_error(
            &version,
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            message,
            ("authorizationError", "USER_PERMISSION_DENIED"),
            detail,
            None,
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        let body =
            json!({"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let Some(gaql) = request["query"].as_str().filter(|q| !q.trim().is_empty()) else {
        return invalid(
            &version,
            ("requestError", "REQUIRED_FIELD_MISSING"),
            "Required field was not specified: query.",
        );
    };
    let parsed = match Gaql::parse(gaql) {
        Ok(parsed) => parsed,
        Err((code, detail)) => return invalid(&version, ("queryError", code), &detail),
    };
    let rows = parsed.rows(&customer);
    let request_id = new_id("");
    if stream {
        let mut batch =
            json!({"fieldMask": parsed.field_mask, "requestId": request_id, "queryResourceConsumption": "1200"});
        if !rows.is_empty() {
            batch["results"] = Value::Array(rows);
        }
        return ([("request-id", request_id)], Json(json!([batch]))).into_response();
    }
    let fingerprint = format!("{:x}", (unit(&[gaql, &customer]) * 1e12) as u64);
    let offset = match request["pageToken"].as_str().filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match decode_page_token(token, &fingerprint) {
            Some(offset) => offset,
            None => return invalid(&version, ("requestError", "INVALID_PAGE_TOKEN"), "Page token is invalid."),
        },
    };
    let end = (offset + SEARCH_PAGE_SIZE).min(rows.len());
    let mut page = json!({"fieldMask": parsed.field_mask, "queryResourceConsumption": "1200"});
    if offset < end {
        page["results"] = Value::Array(rows[offset..end].to_vec());
    }
    if end < rows.len() {
        page["nextPageToken"] =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{end}:{fingerprint}")).into();
    }
    ([("request-id", request_id)], Json(page)).into_response()
}

fn decode_page_token(token: &str, fingerprint: &str) -> Option<usize> {
    let text = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (offset, print) = text.split_once(':')?;
    (print == fingerprint).then(|| offset.parse().ok()).flatten()
}

/// The part of GAQL the simulator understands.
struct Gaql {
    campaigns: bool,
    from: NaiveDate,
    to: NaiveDate,
    field_mask: String,
}

impl Gaql {
    fn parse(query: &str) -> Result<Self, (&'static str, String)> {
        let lower = query.to_lowercase();
        let select = lower.find("select ").ok_or(("INVALID_QUERY", "Expected SELECT.".to_string()))?;
        let from_at = lower.find(" from ").ok_or(("INVALID_QUERY", "Expected FROM.".to_string()))?;
        let resource = lower[from_at + 6..].split_whitespace().next().unwrap_or_default();
        let campaigns = match resource {
            "customer" => false,
            "campaign" => true,
            other => {
                return Err((
                    "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE",
                    format!("The simulator serves FROM customer and FROM campaign, not '{other}'."),
                ));
            }
        };
        let field_mask = query[select + 7..from_at]
            .split(',')
            .map(|f| f.trim().split('.').map(camel).collect::<Vec<_>>().join("."))
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        let between = "segments.date between '";
        let at = lower
            .find(between)
            .ok_or(("EXPECTED_FILTERS_ON_DATE_RANGE", "Filtering on segments.date is required.".to_string()))?;
        let rest = &query[at + between.len()..];
        let bad = || {
            (
                "INVALID_VALUE_WITH_BETWEEN_OPERATOR",
                "Expected segments.date BETWEEN 'YYYY-MM-DD' AND 'YYYY-MM-DD'.".to_string(),
            )
        };
        let (from, rest) = rest.split_once('\'').ok_or_else(bad)?;
        let rest = rest.trim_start();
        let rest =
            rest.get(..4).filter(|k| k.eq_ignore_ascii_case("and ")).map(|_| rest[4..].trim_start()).ok_or_else(bad)?;
        let to = rest.strip_prefix('\'').and_then(|r| r.split_once('\'')).map(|(to, _)| to).ok_or_else(bad)?;
        let (from, to) = (from.parse::<NaiveDate>().map_err(|_| bad())?, to.parse::<NaiveDate>().map_err(|_| bad())?);
        if to < from || (to - from).num_days() > MAX_DAYS {
            return Err((
                "INVALID_VALUE_WITH_BETWEEN_OPERATOR",
                format!("Date range {from}..{to} is empty or longer than {MAX_DAYS} days."),
            ));
        }
        Ok(Self { campaigns, from, to, field_mask })
    }

    /// Rows in date order (then campaign); days without delivery are absent, like Google.
    fn rows(&self, customer: &str) -> Vec<Value> {
        let currency =
            CURRENCIES[(unit(&[customer, "currency"]) * CURRENCIES.len() as f64) as usize % CURRENCIES.len()];
        let budget = 40.0 + unit(&[customer, "budget"]) * 460.0;
        let customer_part = json!({"resourceName": format!("customers/{customer}"), "currencyCode": currency});
        let mut rows = Vec::new();
        let mut date = self.from;
        while date <= self.to {
            let day = date.to_string();
            // Some days the whole account is dark (budget hit, billing hold).
            let dark = unit(&[customer, &day, "dark"]) < 0.05;
            let delivered: Vec<(usize, Day)> = CAMPAIGNS
                .iter()
                .enumerate()
                .filter(|_| !dark)
                .filter_map(|(i, c)| campaign_day(customer, c, &day, budget).map(|d| (i, d)))
                .collect();
            if self.campaigns {
                for (i, d) in &delivered {
                    let (name, status, _) = CAMPAIGNS[*i];
                    let id = campaign_id(customer, name);
                    rows.push(json!({
                        "customer": customer_part,
                        "campaign": {"resourceName": format!("customers/{customer}/campaigns/{id}"), "id": id, "name": name, "status": status},
                        "metrics": d.json(),
                        "segments": {"date": day},
                    }));
                }
            } else if !delivered.is_empty() {
                let total = delivered.iter().fold(Day::default(), |a, (_, d)| a.plus(d));
                rows.push(json!({"customer": customer_part, "metrics": total.json(), "segments": {"date": day}}));
            }
            date += Duration::days(1);
        }
        rows
    }
}

fn camel(segment: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in segment.trim().chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn campaign_id(customer: &str, name: &str) -> String {
    (20_000_000_000u64 + (unit(&[customer, name, "id"]) * 1e9) as u64).to_string()
}

#[derive(Default)]
struct Day {
    cost_micros: i64,
    impressions: i64,
    clicks: i64,
    conversions: f64,
    value: f64,
}

impl Day {
    fn plus(self, o: &Day) -> Day {
        Day {
            cost_micros: self.cost_micros + o.cost_micros,
            impressions: self.impressions + o.impressions,
            clicks: self.clicks + o.clicks,
            conversions: self.conversions + o.conversions,
            value: self.value + o.value,
        }
    }

    /// proto3 JSON: int64 as strings, zero values omitted.
    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (key, v) in [("costMicros", self.cost_micros), ("impressions", self.impressions), ("clicks", self.clicks)] {
            if v != 0 {
                m.insert(key.into(), v.to_string().into());
            }
        }
        for (key, v) in [("conversions", self.conversions), ("conversionsValue", self.value)] {
            if v != 0.0 {
                m.insert(key.into(), json!((v * 100.0).round() / 100.0));
            }
        }
        Value::Object(m)
    }
}

/// One campaign's day: most days deliver around the budget share, some not at all, a few spike.
fn campaign_day(customer: &str, (name, status, share): &(&str, &str, f64), day: &str, budget: f64) -> Option<Day> {
    if *status != "ENABLED" {
        return None;
    }
    let u = unit(&[customer, name, day, "spend"]);
    if u < 0.08 {
        return None;
    }
    let spike = if unit(&[customer, name, day, "spike"]) > 0.95 { 2.5 } else { 1.0 };
    let spend = budget * share * (0.6 + 0.8 * u) * spike;
    let cpm = 4.0 + unit(&[customer, name, "cpm"]) * 12.0;
    let impressions = (spend / cpm * 1000.0).round() as i64;
    let ctr = 0.01 + unit(&[customer, name, day, "ctr"]) * 0.05;
    let clicks = (impressions as f64 * ctr).round() as i64;
    let conversions = (clicks as f64 * (0.01 + unit(&[customer, name, day, "cvr"]) * 0.07) * 100.0).round() / 100.0;
    let value = conversions * (25.0 + unit(&[customer, name, "aov"]) * 100.0);
    Some(Day { cost_micros: (spend * 100.0).round() as i64 * 10_000, impressions, clicks, conversions, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaql_parses_the_connectors_queries() {
        let q = Gaql::parse("SELECT customer.currency_code, segments.date, metrics.cost_micros FROM customer WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-07'").unwrap();
        assert!(!q.campaigns);
        assert_eq!((q.from.to_string(), q.to.to_string()), ("2026-06-01".into(), "2026-06-07".into()));
        assert_eq!(q.field_mask, "customer.currencyCode,segments.date,metrics.costMicros");
        assert!(Gaql::parse("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-01' ORDER BY segments.date").unwrap().campaigns);
        assert!(
            Gaql::parse("SELECT ad_group.id FROM ad_group WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-02'")
                .is_err()
        );
        assert!(Gaql::parse("SELECT campaign.id FROM campaign").is_err());
        assert!(
            Gaql::parse("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-06-09' AND '2026-06-01'")
                .is_err()
        );
    }

    #[test]
    fn versions_are_served_until_their_sunset() {
        assert_eq!(served("v22", date(2026, 10, 6)), Some(true));
        assert_eq!(served("v22", date(2026, 10, 7)), Some(false));
        assert_eq!(served("v14", date(2026, 1, 1)), Some(false));
        assert_eq!(served("v99", date(2026, 1, 1)), None);
        assert_eq!(version_in("/google-ads/v26/customers/1/googleAds:search"), Some("v26"));
        assert_eq!(VERSIONS.last().unwrap().0, LATEST_VERSION);
    }

    #[test]
    fn metrics_are_deterministic_with_quiet_days() {
        let q = Gaql::parse(
            "SELECT metrics.clicks FROM customer WHERE segments.date BETWEEN '2026-01-01' AND '2026-12-31'",
        )
        .unwrap();
        let rows = q.rows("1234567890");
        assert_eq!(rows, q.rows("1234567890"));
        assert_ne!(rows, q.rows("1234567891"));
        // About one day in twenty the account does not deliver at all.
        assert!(rows.len() > 320 && rows.len() < 362, "{}", rows.len());
        assert!(rows.iter().all(|r| r["metrics"]["costMicros"].is_string()));
    }
}
