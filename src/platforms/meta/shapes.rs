//! What Graph answers for insights, campaigns and ad accounts, and how rows normalise.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// A Graph number: insights metrics come as strings (`"100.50"`); numbers are accepted too.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Num(f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Num(n)),
            Raw::S(s) => {
                s.trim().parse().map(Num).map_err(|_| serde::de::Error::custom(format!("not a number: {s:?}")))
            }
        }
    }
}

fn num(v: Option<Num>) -> f64 {
    v.map(|n| n.0).filter(|n| n.is_finite()).unwrap_or(0.0)
}

#[derive(Debug, Deserialize)]
pub(super) struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Paging {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ActionStat {
    action_type: String,
    value: Option<Num>,
}

/// Purchase action types, most inclusive first. Meta reports the same purchase under several
/// overlapping types (`omni_purchase` = all channels, `purchase`, and the pixel-only
/// `offsite_conversion.fb_pixel_purchase`), so adding them up double counts. We take the
/// first type present in the row, for counts, values and ROAS alike.
const PURCHASE_TYPES: [&str; 3] = ["omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase"];

fn purchases(stats: &Option<Vec<ActionStat>>) -> Option<f64> {
    let stats = stats.as_deref()?;
    PURCHASE_TYPES.iter().find_map(|t| stats.iter().find(|s| s.action_type == *t)).map(|s| num(s.value))
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRow {
    date_start: NaiveDate,
    #[serde(default)]
    account_currency: Option<String>,
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    campaign_name: Option<String>,
    #[serde(default)]
    spend: Option<Num>,
    #[serde(default)]
    impressions: Option<Num>,
    #[serde(default)]
    clicks: Option<Num>,
    #[serde(default)]
    inline_link_clicks: Option<Num>,
    // Absent on rows without conversions.
    #[serde(default)]
    actions: Option<Vec<ActionStat>>,
    #[serde(default)]
    action_values: Option<Vec<ActionStat>>,
    #[serde(default)]
    purchase_roas: Option<Vec<ActionStat>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InsightsLevel {
    Account,
    Campaign,
}

impl InsightsLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Campaign => "campaign",
        }
    }
}

/// One day of insights at the requested level (purchases as in [`PURCHASE_TYPES`]).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InsightsRow {
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub date: NaiveDate,
    /// Set at campaign level.
    pub campaign_id: Option<String>,
    pub campaign_name: Option<String>,
    pub spend: f64,
    pub impressions: i64,
    /// All clicks (likes, expands, profile taps, link clicks...).
    pub clicks: i64,
    /// Clicks on the ad's links (`inline_link_clicks`), what agencies report as clicks.
    pub link_clicks: i64,
    pub conversions: f64,
    pub conversion_value: f64,
    pub purchase_roas: Option<f64>,
    /// Empty when Meta did not say (then [`Meta::daily_insights`] asks the account).
    pub currency: String,
}

impl From<RawRow> for InsightsRow {
    fn from(r: RawRow) -> Self {
        Self {
            date: r.date_start,
            spend: num(r.spend),
            impressions: num(r.impressions).round() as i64,
            clicks: num(r.clicks).round() as i64,
            link_clicks: num(r.inline_link_clicks).round() as i64,
            conversions: purchases(&r.actions).unwrap_or(0.0),
            conversion_value: purchases(&r.action_values).unwrap_or(0.0),
            purchase_roas: purchases(&r.purchase_roas),
            currency: r.account_currency.unwrap_or_default(),
            campaign_id: r.campaign_id,
            campaign_name: r.campaign_name,
        }
    }
}

/// A campaign as `/act_{id}/campaigns` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Campaign {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `ACTIVE`, `PAUSED`, `DELETED`, `ARCHIVED`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub effective_status: Option<String>,
    /// e.g. `OUTCOME_SALES`, `OUTCOME_TRAFFIC`.
    #[serde(default)]
    pub objective: Option<String>,
    /// Budgets are in the account currency's minor units (cents), sent as strings.
    #[serde(default, deserialize_with = "minor_units")]
    pub daily_budget: Option<i64>,
    #[serde(default, deserialize_with = "minor_units")]
    pub lifetime_budget: Option<i64>,
    /// Graph times, e.g. `2026-06-01T10:00:00+0000`, kept as sent.
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub stop_time: Option<String>,
    #[serde(default)]
    pub created_time: Option<String>,
}

fn minor_units<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Num>::deserialize(d)?.map(|n| n.0.round() as i64))
}

pub(super) const CAMPAIGN_FIELDS: &str =
    "id,name,status,effective_status,objective,daily_budget,lifetime_budget,start_time,stop_time,created_time";

/// An ad account (`GET /act_{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdAccount {
    /// `act_<digits>`.
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub timezone_name: Option<String>,
}
