//! Rendered reports: the weekly report as a self-contained HTML page, an A4 PDF
//! and PNG charts, drawn from a [`ReportData`] without any I/O. Charts are SVG
//! written here; PNGs are that SVG rasterised by resvg, and the PDF is A4 pages
//! of the same SVG drawn by krilla (docs/decisions/0026-charts.md, 0027-pdf.md).
//! Only the fonts shipped in `assets/fonts/` are used, never the system's, and
//! the same data always gives the same bytes.

pub mod charts;
pub mod format;
mod html;
mod markdown;
mod pdf;
mod raster;
mod svg;
pub mod table;
mod text;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

pub use charts::CHART_NAMES;

/// Everything a rendered report shows. Built by `operations::reports` from the
/// stored report, the client, its daily metrics and its alerts.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub report_id: Uuid,
    pub client_name: String,
    /// ISO 4217 code; money is formatted in this currency's usual style.
    pub currency: String,
    /// The client's IANA time zone: the report's days are calendar days there.
    pub timezone: String,
    /// First and last day of the reported week (the previous week is the 7 days before).
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// When the report was stored (the PDF's creation date: fixed per report).
    pub created_at: DateTime<Utc>,
    /// Platform keys shown, in order (linked ones and any with stored days).
    pub platforms: Vec<String>,
    /// Daily metrics of both weeks, per platform.
    pub days: Vec<Day>,
    pub target_cpa: Option<f64>,
    pub target_roas: Option<f64>,
    /// Monthly budget per platform key (the budget pace line).
    pub monthly_budgets: BTreeMap<String, f64>,
    /// Alerts raised for days of the reported week.
    pub alerts: Vec<AlertLine>,
    /// The LLM summary (Markdown).
    pub summary: String,
}

/// One platform's figures for one day.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub platform: String,
    pub date: NaiveDate,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    /// Link clicks where the platform reports them (else `clicks` stands in).
    pub link_clicks: Option<i64>,
    pub conversions: f64,
    pub conversion_value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertLine {
    pub day: NaiveDate,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub subject: String,
    pub message: String,
}

impl ReportData {
    /// The seven days of the reported week.
    pub fn week(&self) -> Vec<NaiveDate> {
        self.period_start.iter_days().take_while(|d| *d <= self.period_end).collect()
    }

    /// Nothing ran in the reported week: no spend and no impressions on any day.
    pub fn no_delivery(&self) -> bool {
        !self
            .days
            .iter()
            .filter(|d| d.date >= self.period_start && d.date <= self.period_end)
            .any(|d| d.spend > 0.0 || d.impressions > 0)
    }

    pub fn title(&self) -> String {
        format!("{}: weekly report", self.client_name)
    }

    pub fn period_label(&self) -> String {
        format!("{} – {}", self.period_start.format("%-d %b %Y"), self.period_end.format("%-d %b %Y"))
    }
}

/// A rendering that could not be made (a bug, not bad input: the data is ours).
#[derive(Debug, thiserror::Error)]
#[error("rendering failed: {0}")]
pub struct RenderError(pub String);

/// The report as a self-contained HTML page (inline SVG charts, print CSS, no external URL).
pub fn html(data: &ReportData) -> String {
    html::page(data)
}

/// The report as an A4 PDF.
pub fn pdf(data: &ReportData) -> Result<Vec<u8>, RenderError> {
    pdf::document(data)
}

/// One chart as a PNG; `None` for a name not in [`CHART_NAMES`].
pub fn chart_png(data: &ReportData, name: &str) -> Option<Result<Vec<u8>, RenderError>> {
    let chart = charts::by_name(data, name)?;
    Some(raster::png(&chart.svg, raster::CHART_SCALE))
}

/// The file name of a weekly report's rendering: `2026-06-14 weekly report.pdf` (`.html`).
pub fn file_name(period_end: NaiveDate, media_type: &str) -> String {
    let ext = if media_type == "text/html" { "html" } else { "pdf" };
    format!("{period_end} weekly report.{ext}")
}

/// Each PDF page as a PNG (`scale` × 595 × 842 px): the documented example and previews.
pub fn page_pngs(data: &ReportData, scale: f32) -> Result<Vec<Vec<u8>>, RenderError> {
    pdf::pages(data).iter().map(|svg| raster::png(svg, scale)).collect()
}

pub mod sample;
#[cfg(test)]
mod tests;
