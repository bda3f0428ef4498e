//! A fixed data set: two platforms, two weeks, targets, budgets, one alert and
//! a summary. The rendering tests assert its figures exactly; the benchmark
//! (`scripts/bench-report-render`) and the example in docs/WORKFLOWS.md render it.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::{AlertLine, Day, ReportData};

/// Day weights of the reported week (they add up to 7: the week's totals are 7 × a day).
const SHAPE: [f64; 7] = [0.8, 1.0, 1.2, 0.9, 1.1, 1.3, 0.7];

#[allow(clippy::too_many_arguments)]
fn day(
    platform: &str,
    date: NaiveDate,
    f: f64,
    spend: f64,
    imp: f64,
    clicks: f64,
    link: Option<f64>,
    conv: f64,
    value: f64,
) -> Day {
    Day {
        platform: platform.into(),
        date,
        spend: spend * f,
        impressions: (imp * f) as i64,
        clicks: (clicks * f) as i64,
        link_clicks: link.map(|l| (l * f) as i64),
        conversions: conv * f,
        conversion_value: value * f,
    }
}

pub fn data() -> ReportData {
    let start: NaiveDate = "2026-06-08".parse().unwrap();
    let mut days = vec![];
    for i in 0..7 {
        let (this, before) = (start + Duration::days(i), start - Duration::days(7 - i));
        let f = SHAPE[i as usize];
        days.push(day("meta", before, 1.0, 80.0, 9000.0, 280.0, Some(200.0), 2.0, 200.0));
        days.push(day("google_ads", before, 1.0, 50.0, 2500.0, 120.0, None, 2.0, 140.0));
        days.push(day("meta", this, f, 100.0, 10000.0, 300.0, Some(250.0), 3.0, 270.0));
        days.push(day("google_ads", this, SHAPE[6 - i as usize], 50.0, 2000.0, 100.0, None, 1.0, 150.0));
    }
    ReportData {
        report_id: Uuid::from_u128(0x0190f3a2_7c1e_7000_8000_000000000001),
        client_name: "Acme Coffee".into(),
        currency: "BRL".into(),
        timezone: "America/Sao_Paulo".into(),
        period_start: start,
        period_end: start + Duration::days(6),
        created_at: Utc.with_ymd_and_hms(2026, 6, 15, 8, 0, 3).unwrap(),
        platforms: vec!["meta".into(), "google_ads".into()],
        days,
        target_cpa: Some(40.0),
        target_roas: Some(2.5),
        monthly_budgets: BTreeMap::from([("meta".into(), 3000.0), ("google_ads".into(), 1500.0)]),
        alerts: vec![AlertLine {
            day: start + Duration::days(5),
            severity: "warning".into(),
            subject: "google_ads".into(),
            message: "CPA R$ 65,00 is 62% above the target R$ 40,00".into(),
        }],
        summary: "# A strong week on Meta\n\nSpend rose **25%** on Meta with 50% more conversions; \
                  cost per result fell to R$ 33,33, under the R$ 40,00 target.\n\n\
                  - Google Ads halved its conversions: review the search terms.\n\
                  - Budget pace is on track for the month."
            .into(),
    }
}

/// The same client and week with nothing delivered.
pub fn empty() -> ReportData {
    ReportData { days: vec![], alerts: vec![], summary: String::new(), ..data() }
}
