//! Budget pacing of a client for a month: month-to-date spend per platform against
//! the monthly budget. `GET /v1/clients/{client}/pacing` and the WhatsApp `status`
//! command both answer with it.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::{
    domain::{
        client::Client,
        pacing::{self, Pacing},
    },
    store,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct PacingView {
    pub client_id: uuid::Uuid,
    #[schema(example = "2026-06")]
    pub month: String,
    /// Spend counted through this day (today in the client's time zone, or the month's last day).
    #[schema(value_type = NaiveDate, example = "2026-06-15")]
    pub as_of: NaiveDate,
    #[schema(example = "USD")]
    pub currency: String,
    /// One entry per platform with a budget or spend, then `total`.
    pub platforms: Vec<Pacing>,
}

/// Why a month cannot be paced.
#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    #[error("month: must be YYYY-MM, not in the future")]
    BadMonth,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Pacing of `client` for `month` (`YYYY-MM`; default the current month in the
/// client's time zone, which also decides what "the future" is).
pub async fn month(conn: &mut PgConnection, client: &Client, month: Option<&str>) -> Result<PacingView, PacingError> {
    let tz: chrono_tz::Tz = client.timezone.parse().unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&tz).date_naive();
    let first = match month {
        Some(m) => NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").map_err(|_| PacingError::BadMonth)?,
        None => today.with_day(1).expect("day 1"),
    };
    if first > today {
        return Err(PacingError::BadMonth);
    }
    let last = first.with_day(pacing::days_in_month(first)).expect("last day");
    let as_of = last.min(today);
    let rows = store::metrics::days(conn, client.id, first, as_of, None).await?;
    let mut spend: BTreeMap<String, f64> = client.budgets.keys().map(|k| (k.clone(), 0.0)).collect();
    for r in &rows {
        *spend.entry(r.platform.clone()).or_default() += r.spend;
    }
    let mut out: Vec<Pacing> = spend
        .iter()
        .map(|(platform, s)| pacing::pace(platform, client.budgets.get(platform).copied(), *s, as_of))
        .collect();
    let total_budget: f64 = client.budgets.values().sum();
    let total_spend: f64 = spend.values().sum();
    out.push(pacing::pace("total", (total_budget > 0.0).then_some(total_budget), total_spend, as_of));
    Ok(PacingView {
        client_id: client.id,
        month: first.format("%Y-%m").to_string(),
        as_of,
        currency: client.currency.clone(),
        platforms: out,
    })
}
