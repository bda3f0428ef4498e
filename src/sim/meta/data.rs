//! Deterministic accounts, campaigns and metrics of the simulated Meta accounts.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use crate::sim::unit;

pub(super) struct Account {
    pub(super) node: String,
    pub(super) digits: String,
    pub(super) currency: &'static str,
    pub(super) timezone: &'static str,
    /// USD per unit of the currency, for realistic amounts.
    fx: f64,
    /// Typical daily spend of the whole account, in its currency.
    pub(super) daily: f64,
}

pub(super) fn account_of(digits: &str) -> Account {
    let node = format!("act_{digits}");
    let (currency, timezone, fx) = match (unit(&[&node, "currency"]) * 3.0) as u32 {
        0 => ("USD", "America/New_York", 1.0),
        1 => ("EUR", "Europe/Berlin", 0.92),
        _ => ("BRL", "America/Sao_Paulo", 5.4),
    };
    let daily = ((50.0 + 350.0 * unit(&[&node, "size"])) * fx).round();
    Account { digits: digits.to_string(), node, currency, timezone, fx, daily }
}

pub(super) struct Campaign {
    pub(super) id: String,
    pub(super) name: &'static str,
    pub(super) objective: &'static str,
    /// Share of the account's daily spend.
    pub(super) share: f64,
}

const CAMPAIGNS: [(&str, &str, f64); 3] = [
    ("Prospecting – Broad", "OUTCOME_SALES", 0.5),
    ("Retargeting – 30 days", "OUTCOME_SALES", 0.3),
    ("Traffic – Blog", "OUTCOME_TRAFFIC", 0.2),
];

pub(super) fn campaigns_of(account: &Account) -> Vec<Campaign> {
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
pub(super) struct Stats {
    /// Cents, so sums stay exact.
    spend_cents: i64,
    impressions: i64,
    clicks: i64,
    purchases: i64,
    value_cents: i64,
}

impl Stats {
    pub(super) fn add(&mut self, o: Stats) {
        self.spend_cents += o.spend_cents;
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.purchases += o.purchases;
        self.value_cents += o.value_cents;
    }
}

/// One campaign's delivery on one day; `None` when it did not deliver.
pub(super) fn day_stats(a: &Account, c: &Campaign, date: NaiveDate) -> Option<Stats> {
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
pub(super) fn row(
    a: &Account,
    campaign: Option<&Campaign>,
    s: Stats,
    since: NaiveDate,
    until: NaiveDate,
) -> Map<String, Value> {
    let ratio = |n: f64, d: f64| if d > 0.0 { format!("{:.6}", n / d) } else { "0".into() };
    let spend = s.spend_cents as f64 / 100.0;
    // `clicks` counts every click (likes, expands, profile taps); link clicks are most of them.
    let link_clicks = s.clicks * 9 / 10;
    let mut r = json!({
        "account_id": a.digits, "account_name": format!("Sim Account {}", a.digits), "account_currency": a.currency,
        "spend": money(s.spend_cents), "impressions": s.impressions.to_string(), "clicks": s.clicks.to_string(),
        "inline_link_clicks": link_clicks.to_string(),
        "ctr": ratio(s.clicks as f64 * 100.0, s.impressions as f64), "cpc": ratio(spend, s.clicks as f64),
        "cpm": ratio(spend * 1000.0, s.impressions as f64),
        "date_start": since.to_string(), "date_stop": until.to_string(),
    });
    if let Some(c) = campaign {
        r["campaign_id"] = json!(c.id);
        r["campaign_name"] = json!(c.name);
    }
    let mut actions = vec![json!({"action_type": "link_click", "value": link_clicks.to_string()})];
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

/// The reporting periods `time_increment` splits `[since, until]` into.
pub(super) fn buckets(since: NaiveDate, until: NaiveDate, increment: &str) -> Option<Vec<(NaiveDate, NaiveDate)>> {
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
