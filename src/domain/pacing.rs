//! Budget pacing: month-to-date spend against the monthly budget.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

/// Projected month-end spend within ±10 % of the budget is on track.
pub const TOLERANCE: f64 = 0.10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PacingStatus {
    OnTrack,
    Under,
    Over,
    /// No budget is set for it.
    NoBudget,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Pacing {
    /// A platform key, or `total`.
    #[schema(example = "meta")]
    pub platform: String,
    #[schema(example = 5000.0)]
    pub budget: Option<f64>,
    #[schema(example = 2350.4)]
    pub spend_to_date: f64,
    /// What an even spread of the budget would have spent by the end of `as_of`.
    #[schema(example = 2500.0)]
    pub expected_to_date: Option<f64>,
    /// Month-to-date spend extrapolated at the same daily rate.
    #[schema(example = 4700.8)]
    pub projected_month_end: f64,
    pub status: PacingStatus,
}

/// Number of days in the month of `day`.
pub fn days_in_month(day: NaiveDate) -> u32 {
    let (y, m) = (day.year(), day.month());
    let first_next = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1) } else { NaiveDate::from_ymd_opt(y, m + 1, 1) };
    first_next.and_then(|d| d.pred_opt()).map(|d| d.day()).unwrap_or(30)
}

/// Pacing of `spend_to_date` (spent from the 1st through `as_of`, inclusive).
pub fn pace(platform: &str, budget: Option<f64>, spend_to_date: f64, as_of: NaiveDate) -> Pacing {
    let days = days_in_month(as_of) as f64;
    let elapsed = as_of.day() as f64;
    let projected = spend_to_date / elapsed * days;
    let (expected, status) = match budget {
        Some(b) if b > 0.0 => {
            let ratio = projected / b;
            let status = if ratio > 1.0 + TOLERANCE {
                PacingStatus::Over
            } else if ratio < 1.0 - TOLERANCE {
                PacingStatus::Under
            } else {
                PacingStatus::OnTrack
            };
            (Some(round2(b * elapsed / days)), status)
        }
        _ => (None, PacingStatus::NoBudget),
    };
    Pacing {
        platform: platform.to_string(),
        budget,
        spend_to_date: round2(spend_to_date),
        expected_to_date: expected,
        projected_month_end: round2(projected),
        status,
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month(day("2026-02-10")), 28);
        assert_eq!(days_in_month(day("2028-02-10")), 29);
        assert_eq!(days_in_month(day("2026-12-31")), 31);
    }

    #[test]
    fn on_track_under_and_over() {
        // 15 of 30 days, budget 3000: even spend would be 1500.
        let p = pace("meta", Some(3000.0), 1500.0, day("2026-06-15"));
        assert_eq!(p.expected_to_date, Some(1500.0));
        assert_eq!(p.projected_month_end, 3000.0);
        assert_eq!(p.status, PacingStatus::OnTrack);
        assert_eq!(pace("meta", Some(3000.0), 1000.0, day("2026-06-15")).status, PacingStatus::Under);
        assert_eq!(pace("meta", Some(3000.0), 2000.0, day("2026-06-15")).status, PacingStatus::Over);
        assert_eq!(pace("tiktok", None, 10.0, day("2026-06-15")).status, PacingStatus::NoBudget);
    }
}
