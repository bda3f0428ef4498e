//! Reading Google Ads rows (proto3 JSON: camelCase, int64 as strings, defaults omitted)
//! into daily totals and campaign rows.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};

use super::INFO;
use crate::{domain::metrics::DailyMetrics, platforms::error::PlatformError};

/// One campaign's delivery on one day, in the account's currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub campaign_name: String,
    /// `ENABLED`, `PAUSED`, `REMOVED`.
    pub status: String,
    pub date: NaiveDate,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: f64,
    pub conversion_value: f64,
    pub currency: String,
}

#[derive(Deserialize)]
pub(super) struct StreamBatch {
    #[serde(default)]
    pub(super) results: Vec<Row>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SearchPage {
    #[serde(default)]
    pub(super) results: Vec<Row>,
    #[serde(default)]
    pub(super) next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Row {
    customer: Option<CustomerPart>,
    campaign: Option<CampaignPart>,
    metrics: Option<MetricsPart>,
    segments: Option<SegmentsPart>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct CustomerPart {
    currency_code: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CampaignPart {
    #[serde(deserialize_with = "int")]
    id: i64,
    name: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MetricsPart {
    #[serde(deserialize_with = "int")]
    cost_micros: i64,
    #[serde(deserialize_with = "int")]
    impressions: i64,
    #[serde(deserialize_with = "int")]
    clicks: i64,
    #[serde(deserialize_with = "float")]
    conversions: f64,
    #[serde(deserialize_with = "float")]
    conversions_value: f64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SegmentsPart {
    date: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

/// int64 arrives as a string, sometimes as a number; null/absent is 0.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(0),
        Some(Number::Int(i)) => Ok(i),
        Some(Number::Float(f)) => Ok(f.round() as i64),
        Some(Number::Text(s)) => s.trim().parse().map_err(|_| D::Error::custom(format!("not an integer: {s:?}"))),
    }
}

fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(0.0),
        Some(Number::Int(i)) => Ok(i as f64),
        Some(Number::Float(f)) => Ok(f),
        Some(Number::Text(s)) => s.trim().parse().map_err(|_| D::Error::custom(format!("not a number: {s:?}"))),
    }
}

impl Row {
    fn date(&self, platform: &'static str) -> Result<NaiveDate, PlatformError> {
        self.segments
            .as_ref()
            .and_then(|s| s.date)
            .ok_or_else(|| PlatformError::malformed(platform, "row without segments.date"))
    }

    fn currency(&self) -> Option<&str> {
        self.customer.as_ref().and_then(|c| c.currency_code.as_deref()).filter(|c| !c.is_empty())
    }
}

fn empty_day(date: NaiveDate, currency: &str) -> DailyMetrics {
    DailyMetrics {
        date,
        spend: 0.0,
        impressions: 0,
        clicks: 0,
        link_clicks: 0,
        conversions: 0.0,
        conversion_value: 0.0,
        currency: currency.to_string(),
    }
}

fn campaign_row(row: &Row, currency: &str) -> Result<CampaignRow, PlatformError> {
    let campaign = row.campaign.as_ref().ok_or_else(|| PlatformError::malformed(INFO.key, "row without campaign"))?;
    let m = row.metrics.as_ref();
    Ok(CampaignRow {
        campaign_id: campaign.id.to_string(),
        campaign_name: campaign.name.clone().unwrap_or_default(),
        status: campaign.status.clone().unwrap_or_else(|| "UNSPECIFIED".into()),
        date: row.date(INFO.key)?,
        spend: m.map_or(0, |m| m.cost_micros) as f64 / 1e6,
        impressions: m.map_or(0, |m| m.impressions),
        clicks: m.map_or(0, |m| m.clicks),
        conversions: m.map_or(0.0, |m| m.conversions),
        conversion_value: m.map_or(0.0, |m| m.conversions_value),
        currency: row.currency().unwrap_or(currency).to_string(),
    })
}

/// Account totals per day (days without delivery are absent) from a stream's batches.
pub(super) fn daily_totals(batches: Vec<StreamBatch>) -> Result<Vec<DailyMetrics>, PlatformError> {
    let rows: Vec<Row> = batches.into_iter().flat_map(|b| b.results).collect();
    let currency = rows.iter().find_map(Row::currency).unwrap_or_default().to_string();
    let mut days: BTreeMap<NaiveDate, (i64, DailyMetrics)> = BTreeMap::new();
    for row in &rows {
        let date = row.date(INFO.key)?;
        let (micros, day) = days.entry(date).or_insert_with(|| (0, empty_day(date, &currency)));
        if let Some(m) = &row.metrics {
            *micros += m.cost_micros;
            day.impressions += m.impressions;
            day.clicks += m.clicks;
            // Google's clicks are the ad's own clicks (headline, sitelink...), which is what
            // Meta calls link clicks; there is no separate "all clicks" to subtract.
            day.link_clicks += m.clicks;
            day.conversions += m.conversions;
            day.conversion_value += m.conversions_value;
        }
    }
    if !days.is_empty() && currency.is_empty() {
        return Err(PlatformError::malformed(INFO.key, "rows without customer.currencyCode"));
    }
    Ok(days.into_values().map(|(micros, day)| DailyMetrics { spend: micros as f64 / 1e6, ..day }).collect())
}

/// Campaign rows of every page, each in its own currency (else the first row's).
pub(super) fn campaign_rows(rows: &[Row]) -> Result<Vec<CampaignRow>, PlatformError> {
    let currency = rows.iter().find_map(Row::currency).unwrap_or_default().to_string();
    rows.iter().map(|row| campaign_row(row, &currency)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_int64_strings_and_omitted_defaults() {
        let row: Row = serde_json::from_str(
            r#"{"customer":{"currencyCode":"EUR"},"metrics":{"costMicros":"25000000","impressions":"82000","conversions":18.5},"segments":{"date":"2026-06-01"}}"#,
        )
        .unwrap();
        let m = row.metrics.as_ref().unwrap();
        assert_eq!((m.cost_micros, m.impressions, m.clicks), (25_000_000, 82_000, 0));
        assert_eq!((m.conversions, m.conversions_value), (18.5, 0.0));
        assert!(serde_json::from_str::<Row>(r#"{"metrics":{"clicks":"many"}}"#).is_err());
    }
}
