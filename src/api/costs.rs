//! `GET /v1/costs`: LLM token usage and platform call counts per client per day.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::ApiQuery,
    metrics::MAX_DAYS,
};
use crate::{api::AppState, domain::scope::Scope, store};

pub const TAG: &str = "costs";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_costs))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CostsQuery {
    /// First day, UTC (YYYY-MM-DD). Required.
    #[param(value_type = NaiveDate, example = "2026-06-01")]
    from: Option<NaiveDate>,
    /// Last day, inclusive (YYYY-MM-DD). Required; at most 366 days after `from`.
    #[param(value_type = NaiveDate, example = "2026-06-30")]
    to: Option<NaiveDate>,
    /// Only this client (id or slug).
    client: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, ToSchema)]
pub struct LlmCost {
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Completions requested.
    pub calls: i64,
}

impl LlmCost {
    fn add(&mut self, other: &LlmCost) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.calls += other.calls;
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CostDay {
    pub client_id: Uuid,
    #[schema(example = "acme-coffee")]
    pub client_slug: String,
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub date: NaiveDate,
    pub llm: LlmCost,
    /// Calls (each attempt, retries included) per platform key.
    #[schema(example = json!({"meta": 3, "google_ads": 2}))]
    pub platform_calls: BTreeMap<String, i64>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CostTotals {
    pub llm: LlmCost,
    #[schema(example = json!({"meta": 90, "google_ads": 60}))]
    pub platform_calls: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CostsView {
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub from: NaiveDate,
    #[schema(value_type = NaiveDate, example = "2026-06-30")]
    pub to: NaiveDate,
    /// One row per client and day with any usage, by date then client slug.
    pub data: Vec<CostDay>,
    pub totals: CostTotals,
}

fn bad_query(field: &str, why: &str) -> ApiError {
    ApiError::bad_request("invalid_query", format!("{field}: {why}")).with_field(field, why)
}

/// Usage costs
///
/// LLM tokens (input, output, completions) and platform calls per platform, per
/// client and UTC day, with totals. Platform calls are counted for work done for
/// a client (workflow tasks, metrics syncs, platform actions naming a client) and
/// written every few seconds, so the latest calls can take a moment to appear.
#[utoipa::path(
    get, path = "/v1/costs", operation_id = "getCosts", tag = TAG,
    params(CostsQuery),
    responses(
        (status = 200, description = "Usage per client and day, and totals", body = CostsView, example = json!({
            "from": "2026-06-01", "to": "2026-06-30",
            "data": [{"client_id": "0190a5c4-8f7e-7c1a-9a53-8f4f1f7d2c11", "client_slug": "acme-coffee", "date": "2026-06-01",
                      "llm": {"input_tokens": 1800, "output_tokens": 420, "calls": 1}, "platform_calls": {"google_ads": 2, "meta": 3}}],
            "totals": {"llm": {"input_tokens": 1800, "output_tokens": 420, "calls": 1}, "platform_calls": {"google_ads": 2, "meta": 3}}
        })),
        (status = 400, description = "Missing or bad from/to, range over 366 days", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn get_costs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CostsQuery>,
) -> ApiResult<axum::Json<CostsView>> {
    caller.require(Scope::ClientsRead)?;
    let from = q.from.ok_or_else(|| bad_query("from", "is required (YYYY-MM-DD)"))?;
    let to = q.to.ok_or_else(|| bad_query("to", "is required (YYYY-MM-DD)"))?;
    if from > to {
        return Err(bad_query("to", "must not be before `from`"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(bad_query("to", &format!("the range may cover at most {MAX_DAYS} days")));
    }
    let mut conn = state.pool.acquire().await?;
    let client = match q.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?.id),
        None => None,
    };
    let llm = store::costs::llm_by_day(&mut conn, from, to, client).await?;
    let calls = store::costs::calls_by_day(&mut conn, from, to, client).await?;

    // Keyed by (date, slug) so the rows come out in date then slug order.
    let mut days: BTreeMap<(NaiveDate, String), CostDay> = BTreeMap::new();
    let mut totals = CostTotals::default();
    for u in &llm {
        let used = LlmCost { input_tokens: u.input_tokens, output_tokens: u.output_tokens, calls: u.calls };
        day(&mut days, u.client_id, &u.client_slug, u.day).llm.add(&used);
        totals.llm.add(&used);
    }
    for c in &calls {
        *day(&mut days, c.client_id, &c.client_slug, c.day).platform_calls.entry(c.platform.clone()).or_default() +=
            c.calls;
        *totals.platform_calls.entry(c.platform.clone()).or_default() += c.calls;
    }
    Ok(axum::Json(CostsView { from, to, data: days.into_values().collect(), totals }))
}

fn day<'a>(
    days: &'a mut BTreeMap<(NaiveDate, String), CostDay>,
    client_id: Uuid,
    slug: &str,
    date: NaiveDate,
) -> &'a mut CostDay {
    days.entry((date, slug.to_string())).or_insert_with(|| CostDay {
        client_id,
        client_slug: slug.to_string(),
        date,
        llm: LlmCost::default(),
        platform_calls: BTreeMap::new(),
    })
}
