//! The week-over-week table: per platform and in total, this week against the
//! one before for spend, impressions, link clicks, conversions, CPA and ROAS,
//! with the change and its direction. The HTML and the PDF show the same cells.

use super::{Day, ReportData, format};

/// Totals of one platform (or all) over one week.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Totals {
    pub spend: f64,
    pub impressions: i64,
    /// Link clicks; `clicks` for days whose platform reports no link clicks.
    pub link_clicks: i64,
    pub conversions: f64,
    pub conversion_value: f64,
}

impl Totals {
    pub fn add(&mut self, d: &Day) {
        self.spend += d.spend;
        self.impressions += d.impressions;
        self.link_clicks += d.link_clicks.unwrap_or(d.clicks);
        self.conversions += d.conversions;
        self.conversion_value += d.conversion_value;
    }

    /// Cost per conversion; `None` without conversions.
    pub fn cpa(&self) -> Option<f64> {
        (self.conversions > 0.0).then(|| self.spend / self.conversions)
    }

    /// Conversion value per unit of spend; `None` without spend.
    pub fn roas(&self) -> Option<f64> {
        (self.spend > 0.0).then(|| self.conversion_value / self.spend)
    }
}

/// One block of the table: a platform (or `Total`) and its two weeks.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// A platform key, or `total`.
    pub key: String,
    pub this_week: Totals,
    pub previous_week: Totals,
}

/// Per platform in `data.platforms` order, then the total (when more than one platform).
pub fn blocks(data: &ReportData) -> Vec<Block> {
    let previous_start = data.period_start - chrono::Duration::days(7);
    let sum = |platform: Option<&str>, from, to| {
        let mut t = Totals::default();
        for d in data.days.iter().filter(|d| platform.is_none_or(|p| d.platform == p) && d.date >= from && d.date <= to)
        {
            t.add(d);
        }
        t
    };
    let previous_end = data.period_start - chrono::Duration::days(1);
    let mut out: Vec<Block> = data
        .platforms
        .iter()
        .map(|p| Block {
            key: p.clone(),
            this_week: sum(Some(p), data.period_start, data.period_end),
            previous_week: sum(Some(p), previous_start, previous_end),
        })
        .collect();
    if out.len() != 1 {
        out.push(Block {
            key: "total".into(),
            this_week: sum(None, data.period_start, data.period_end),
            previous_week: sum(None, previous_start, previous_end),
        });
    }
    out
}

/// The display name of a platform key.
pub fn platform_name(key: &str) -> String {
    match key {
        "meta" => "Meta Ads".into(),
        "google_ads" => "Google Ads".into(),
        "tiktok" => "TikTok Ads".into(),
        "total" => "All platforms".into(),
        other => other.replace('_', " "),
    }
}

/// One row of cells: metric, this week, previous week, change; `good` tells
/// whether the change is good news (CPA going down is), `None` when flat or unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: [String; 4],
    pub good: Option<bool>,
}

pub const HEADER: [&str; 4] = ["Metric", "This week", "Previous week", "Change"];

/// The rows of one block, formatted in the client's currency style.
pub fn rows(block: &Block, currency: &str) -> Vec<Row> {
    let (t, p) = (&block.this_week, &block.previous_week);
    let money = |v: Option<f64>| v.map_or("–".to_string(), |v| format::money(v, currency));
    let count = |v: Option<f64>| v.map_or("–".to_string(), |v| format::count(v, currency));
    let conv = |v: Option<f64>| v.map_or("–".to_string(), |v| format::decimal(v, 1, currency));
    let ratio = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{}×", format::decimal(v, 2, currency)));
    type Fmt<'a> = &'a dyn Fn(Option<f64>) -> String;
    /// Name, this week, previous week, how it is written, whether higher is better.
    type Metric<'a> = (&'a str, Option<f64>, Option<f64>, Fmt<'a>, bool);
    let metrics: [Metric; 6] = [
        ("Spend", Some(t.spend), Some(p.spend), &money, true),
        ("Impressions", Some(t.impressions as f64), Some(p.impressions as f64), &count, true),
        ("Link clicks", Some(t.link_clicks as f64), Some(p.link_clicks as f64), &count, true),
        ("Conversions", Some(t.conversions), Some(p.conversions), &conv, true),
        ("CPA", t.cpa(), p.cpa(), &money, false),
        ("ROAS", t.roas(), p.roas(), &ratio, true),
    ];
    metrics
        .into_iter()
        .map(|(name, now, before, fmt, higher_is_better)| {
            let pct = format::change_pct(now, before);
            // Spend moving is neither good nor bad news by itself.
            let good = pct.filter(|p| *p != 0.0 && name != "Spend").map(|p| (p > 0.0) == higher_is_better);
            Row { cells: [name.to_string(), fmt(now), fmt(before), format::arrow(pct, currency)], good }
        })
        .collect()
}
