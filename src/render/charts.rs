//! The report's charts as SVG (800 × 360 user units): daily spend per platform
//! against the budget pace, conversions and cost per result against the target
//! CPA, and ROAS against the target ROAS. Each is one function of the data; the
//! PNG endpoint, the HTML page and the PDF all draw these same SVGs.

use chrono::NaiveDate;

use super::{
    ReportData, format,
    svg::{Anchor, Svg},
    table::{Totals, platform_name},
};
use crate::domain::pacing::days_in_month;

/// The charts a report has, by the name the API serves them under.
pub const CHART_NAMES: [&str; 3] = ["daily-spend", "conversions-cpa", "roas"];

/// The colour of every target line (and nothing else): tests look for it in the PNGs.
pub const TARGET_COLOR: &str = "#d62728";
pub const TARGET_RGB: [u8; 3] = [0xd6, 0x27, 0x28];
const PACE_COLOR: &str = "#555555";
const CPA_COLOR: &str = "#ff7f0e";
const ROAS_COLOR: &str = "#1f77b4";
const CONVERSIONS_COLOR: &str = "#9ecae1";
const GRID: &str = "#e5e5e5";
const INK: &str = "#222222";
const MUTED: &str = "#666666";

pub const WIDTH: f32 = 800.0;
pub const HEIGHT: f32 = 360.0;
const LEFT: f32 = 80.0;
const RIGHT: f32 = 720.0;
const TOP: f32 = 60.0;
const BOTTOM: f32 = 310.0;

pub struct Chart {
    pub name: &'static str,
    pub title: String,
    pub svg: String,
}

pub fn all(data: &ReportData) -> Vec<Chart> {
    vec![daily_spend(data), conversions_cpa(data), roas(data)]
}

pub fn by_name(data: &ReportData, name: &str) -> Option<Chart> {
    match name {
        "daily-spend" => Some(daily_spend(data)),
        "conversions-cpa" => Some(conversions_cpa(data)),
        "roas" => Some(roas(data)),
        _ => None,
    }
}

fn platform_color(key: &str, index: usize) -> &'static str {
    match key {
        "meta" => "#1877f2",
        "google_ads" => "#34a853",
        "tiktok" => "#111111",
        _ => ["#8e44ad", "#16a085", "#7f8c8d"][index % 3],
    }
}

/// The smallest "round" number (1, 2, 2.5, 5 × 10ⁿ) at least `v`; 1 for nothing.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|s| s * magnitude).find(|m| *m >= v).unwrap_or(10.0 * magnitude)
}

/// A chart's frame: title, legend, axes with grid lines; maps values to points.
struct Frame {
    svg: Svg,
    days: Vec<NaiveDate>,
    left_max: f64,
    right_max: Option<f64>,
    legend_x: f32,
}

impl Frame {
    fn new(title: &str, data: &ReportData) -> Self {
        let mut svg = Svg::new();
        svg.rect(0.0, 0.0, WIDTH, HEIGHT, "#ffffff");
        svg.text(LEFT, 26.0, 16.0, Anchor::Start, true, INK, title);
        Frame { svg, days: data.week(), left_max: 1.0, right_max: None, legend_x: LEFT }
    }

    fn slot(&self) -> f32 {
        (RIGHT - LEFT) / self.days.len().max(1) as f32
    }

    fn x_center(&self, i: usize) -> f32 {
        LEFT + self.slot() * (i as f32 + 0.5)
    }

    /// y of `v` on the left axis, snapped to whole units so 2-unit lines cover whole pixels.
    fn y(&self, v: f64) -> f32 {
        (BOTTOM - (BOTTOM - TOP) * (v / self.left_max) as f32).round()
    }

    fn y_right(&self, v: f64) -> f32 {
        let max = self.right_max.unwrap_or(self.left_max);
        (BOTTOM - (BOTTOM - TOP) * (v / max) as f32).round()
    }

    fn legend(&mut self, color: &str, label: &str, line: bool) {
        let y = 44.0;
        if line {
            self.svg.line((self.legend_x, y - 4.0), (self.legend_x + 16.0, y - 4.0), color, 3.0, None);
        } else {
            self.svg.rect(self.legend_x, y - 10.0, 12.0, 12.0, color);
        }
        self.svg.text(self.legend_x + 20.0, y, 11.0, Anchor::Start, false, MUTED, label);
        self.legend_x += 28.0 + super::text::width(label, 11.0, false);
    }

    /// Grid, left (and right) axis labels, day labels.
    fn axes(&mut self, left: impl Fn(f64) -> String, right: Option<&dyn Fn(f64) -> String>) {
        for i in 0..=4 {
            let frac = f64::from(i) / 4.0;
            let y = self.y(self.left_max * frac);
            self.svg.line((LEFT, y), (RIGHT, y), GRID, 1.0, None);
            self.svg.text(LEFT - 8.0, y + 4.0, 11.0, Anchor::End, false, MUTED, &left(self.left_max * frac));
            if let (Some(right), Some(max)) = (right, self.right_max) {
                self.svg.text(RIGHT + 8.0, y + 4.0, 11.0, Anchor::Start, false, MUTED, &right(max * frac));
            }
        }
        self.svg.line((LEFT, BOTTOM), (RIGHT, BOTTOM), INK, 1.0, None);
        for i in 0..self.days.len() {
            let label = self.days[i].format("%a %-d").to_string();
            self.svg.text(self.x_center(i), BOTTOM + 20.0, 11.0, Anchor::Middle, false, MUTED, &label);
        }
    }

    /// A horizontal target line across the plot, labelled at its right end.
    fn target(&mut self, y: f32, label: &str) {
        self.svg.line((LEFT, y), (RIGHT, y), TARGET_COLOR, 2.0, Some("10 4"));
        self.svg.text(RIGHT - 4.0, y - 6.0, 11.0, Anchor::End, true, TARGET_COLOR, label);
    }

    fn no_delivery(mut self, name: &'static str, title: &str) -> Chart {
        self.axes(|_| String::new(), None);
        self.svg.text(
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0,
            18.0,
            Anchor::Middle,
            true,
            MUTED,
            "No delivery this week",
        );
        self.finish(name, title)
    }

    fn finish(self, name: &'static str, title: &str) -> Chart {
        Chart { name, title: title.to_string(), svg: self.svg.finish(WIDTH, HEIGHT) }
    }
}

/// Totals of every platform on each day of the week.
fn daily_totals(data: &ReportData) -> Vec<Totals> {
    data.week()
        .iter()
        .map(|day| {
            let mut t = Totals::default();
            data.days.iter().filter(|d| d.date == *day).for_each(|d| t.add(d));
            t
        })
        .collect()
}

/// Stacked daily spend per platform; the dashed line is the day's share of the monthly budgets.
fn daily_spend(data: &ReportData) -> Chart {
    let title = format!("Daily spend per platform ({})", data.currency);
    let mut f = Frame::new(&title, data);
    if data.no_delivery() {
        return f.no_delivery("daily-spend", &title);
    }
    let spend = |p: &str, day: NaiveDate| -> f64 {
        data.days.iter().filter(|d| d.platform == p && d.date == day).map(|d| d.spend).sum()
    };
    let pace = |day: NaiveDate| -> f64 { data.monthly_budgets.values().sum::<f64>() / f64::from(days_in_month(day)) };
    let has_budget = data.monthly_budgets.values().any(|b| *b > 0.0);
    let days = f.days.clone();
    let max_stack = days.iter().map(|d| data.platforms.iter().map(|p| spend(p, *d)).sum::<f64>()).fold(0.0, f64::max);
    let max_pace = if has_budget { days.iter().map(|d| pace(*d)).fold(0.0, f64::max) } else { 0.0 };
    f.left_max = nice_max(max_stack.max(max_pace) * 1.1);
    let currency = data.currency.clone();
    f.axes(|v| format::money(v, &currency), None);
    let bar = f.slot() * 0.6;
    for (i, day) in days.iter().enumerate() {
        let mut base = 0.0;
        for (j, p) in data.platforms.iter().enumerate() {
            let v = spend(p, *day);
            if v <= 0.0 {
                continue;
            }
            let (y0, y1) = (f.y(base), f.y(base + v));
            f.svg.rect(f.x_center(i) - bar / 2.0, y1, bar, y0 - y1, platform_color(p, j));
            base += v;
        }
    }
    for (j, p) in data.platforms.iter().enumerate() {
        f.legend(platform_color(p, j), &platform_name(p), false);
    }
    if has_budget {
        let slot = f.slot();
        let points: Vec<(f32, f32)> = days
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                let y = f.y(pace(*d));
                [(LEFT + slot * i as f32, y), (LEFT + slot * (i + 1) as f32, y)]
            })
            .collect();
        f.svg.polyline(&points, PACE_COLOR, 2.0, Some("6 4"));
        f.legend(PACE_COLOR, "Budget pace (monthly budget ÷ days)", true);
    }
    f.finish("daily-spend", &title)
}

/// Conversions per day (bars, left axis) and cost per result (line, right axis) with the target CPA.
fn conversions_cpa(data: &ReportData) -> Chart {
    let title = "Conversions and cost per result".to_string();
    let mut f = Frame::new(&title, data);
    if data.no_delivery() {
        return f.no_delivery("conversions-cpa", &title);
    }
    let totals = daily_totals(data);
    let max_conv = totals.iter().map(|t| t.conversions).fold(0.0, f64::max);
    let max_cpa = totals.iter().filter_map(Totals::cpa).fold(data.target_cpa.unwrap_or(0.0), f64::max);
    f.left_max = nice_max(max_conv * 1.1);
    f.right_max = Some(nice_max(max_cpa * 1.1));
    let currency = data.currency.clone();
    let right = |v: f64| format::money(v, &currency);
    let cur = data.currency.clone();
    f.axes(|v| format::decimal(v, if v.fract() == 0.0 { 0 } else { 1 }, &cur), Some(&right));
    let bar = f.slot() * 0.5;
    for (i, t) in totals.iter().enumerate() {
        if t.conversions > 0.0 {
            let y = f.y(t.conversions);
            f.svg.rect(f.x_center(i) - bar / 2.0, y, bar, BOTTOM - y, CONVERSIONS_COLOR);
        }
    }
    let points: Vec<(f32, f32)> =
        totals.iter().enumerate().filter_map(|(i, t)| t.cpa().map(|c| (f.x_center(i), f.y_right(c)))).collect();
    f.svg.polyline(&points, CPA_COLOR, 2.5, None);
    for p in &points {
        f.svg.circle(*p, 3.5, CPA_COLOR);
    }
    f.legend(CONVERSIONS_COLOR, "Conversions (left)", false);
    f.legend(CPA_COLOR, "Cost per result (right)", true);
    if let Some(target) = data.target_cpa {
        let y = f.y_right(target);
        f.target(y, &format!("Target CPA {}", format::money(target, &data.currency)));
        f.legend(TARGET_COLOR, "Target", true);
    }
    f.finish("conversions-cpa", &title)
}

/// Return on ad spend per day against the target ROAS.
fn roas(data: &ReportData) -> Chart {
    let title = "Return on ad spend (ROAS)".to_string();
    let mut f = Frame::new(&title, data);
    if data.no_delivery() {
        return f.no_delivery("roas", &title);
    }
    let totals = daily_totals(data);
    let max = totals.iter().filter_map(Totals::roas).fold(data.target_roas.unwrap_or(0.0), f64::max);
    f.left_max = nice_max(max * 1.1);
    let cur = data.currency.clone();
    f.axes(|v| format!("{}×", format::decimal(v, 1, &cur)), None);
    let points: Vec<(f32, f32)> =
        totals.iter().enumerate().filter_map(|(i, t)| t.roas().map(|r| (f.x_center(i), f.y(r)))).collect();
    f.svg.polyline(&points, ROAS_COLOR, 2.5, None);
    for p in &points {
        f.svg.circle(*p, 3.5, ROAS_COLOR);
    }
    f.legend(ROAS_COLOR, "ROAS (conversion value ÷ spend)", true);
    if let Some(target) = data.target_roas {
        let y = f.y(target);
        f.target(y, &format!("Target ROAS {}×", format::decimal(target, 2, &data.currency)));
        f.legend(TARGET_COLOR, "Target", true);
    }
    f.finish("roas", &title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_max_rounds_up() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.3), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(2100.0), 2500.0);
    }
}
