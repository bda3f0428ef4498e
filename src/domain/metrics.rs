//! The shared metrics model every ad platform is normalised into.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One day of one ad account's delivery, in the account's currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DailyMetrics {
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub date: NaiveDate,
    #[schema(example = 123.45)]
    pub spend: f64,
    #[schema(example = 10234)]
    pub impressions: i64,
    /// Every click on the ad (Meta's `clicks` counts likes, expands, profile taps...).
    #[schema(example = 321)]
    pub clicks: i64,
    /// Clicks that lead where the ad points: Meta `inline_link_clicks`; Google Ads clicks
    /// (every Google click is one). CTR and CPC are computed from these.
    #[schema(example = 287)]
    pub link_clicks: i64,
    #[schema(example = 12.0)]
    pub conversions: f64,
    #[schema(example = 456.7)]
    pub conversion_value: f64,
    #[schema(example = "USD")]
    pub currency: String,
}
