//! A stored report's delivery: where its PDF went (the client's Drive, or why not), the
//! links that open its rendered forms, and the `report.ready` payload built from both.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// What happened to a report's PDF on its way to the client's Drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveDelivery {
    /// Uploaded (or found from an earlier attempt): the file and the link people open.
    Uploaded { file_id: String, url: Option<String> },
    /// Not uploaded, and why (no Drive folder, Drive not configured, a dry run, a failed upload).
    Skipped { reason: String },
}

impl DriveDelivery {
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::Skipped { reason: reason.into() }
    }

    pub fn file_id(&self) -> Option<&str> {
        match self {
            Self::Uploaded { file_id, .. } => Some(file_id),
            Self::Skipped { .. } => None,
        }
    }

    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Uploaded { url, .. } => url.as_deref(),
            Self::Skipped { .. } => None,
        }
    }

    pub fn skip_reason(&self) -> Option<&str> {
        match self {
            Self::Uploaded { .. } => None,
            Self::Skipped { reason } => Some(reason),
        }
    }
}

/// Absolute links to `GET /v1/reports/{id}` under the service's public address
/// (`PUBLIC_BASE_URL`); none without one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportLinks {
    base: Option<String>,
}

impl ReportLinks {
    /// `base` is an http(s) URL without query or fragment (checked by the configuration);
    /// a trailing `/` is dropped so a path prefix (`https://host/switchboard/`) keeps working.
    pub fn new(base: Option<&str>) -> Self {
        let base = base.map(|b| b.trim().trim_end_matches('/').to_string()).filter(|b| !b.is_empty());
        Self { base }
    }

    /// The report as an A4 PDF (`?format=pdf`: the URL alone selects it, no `Accept` needed).
    pub fn pdf(&self, report: Uuid) -> Option<String> {
        self.link(report, "pdf")
    }

    /// The report as a self-contained HTML page.
    pub fn html(&self, report: Uuid) -> Option<String> {
        self.link(report, "html")
    }

    fn link(&self, report: Uuid, format: &str) -> Option<String> {
        self.base.as_ref().map(|base| format!("{base}/v1/reports/{report}?format={format}"))
    }
}

/// `report.ready`: a report is stored and its delivery settled (the PDF uploaded to the
/// client's Drive, or the reason it was not). Built only by `store::reports::mark_ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "0190f3a2-7c1e-7000-8000-000000000001", "client_id": "0190f3a2-7c1e-7000-8000-000000000002",
    "run_id": "0190f3a2-7c1e-7000-8000-000000000003", "kind": "weekly-report",
    "period_start": "2026-06-01", "period_end": "2026-06-07",
    "pdf_url": "https://switchboard.example.com/v1/reports/0190f3a2-7c1e-7000-8000-000000000001?format=pdf",
    "html_url": "https://switchboard.example.com/v1/reports/0190f3a2-7c1e-7000-8000-000000000001?format=html",
    "drive_file_id": "1Zx9bQ3kT0pLmN4oR7sU2vW5yA8cE6gI",
    "drive_url": "https://drive.google.com/file/d/1Zx9bQ3kT0pLmN4oR7sU2vW5yA8cE6gI/view?usp=drivesdk",
    "drive_skipped": null
}))]
pub struct ReportReady {
    pub id: Uuid,
    pub client_id: Uuid,
    pub run_id: Option<Uuid>,
    /// The workflow that wrote it, e.g. `weekly-report`.
    pub kind: String,
    #[schema(value_type = String, format = Date)]
    pub period_start: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub period_end: NaiveDate,
    /// `GET /v1/reports/{id}?format=pdf` as an absolute URL (needs a token with `clients:read`);
    /// left out when `PUBLIC_BASE_URL` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdf_url: Option<String>,
    /// `GET /v1/reports/{id}?format=html`; left out when `PUBLIC_BASE_URL` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_url: Option<String>,
    /// The PDF's Drive file id; `null` when it was not uploaded (see `drive_skipped`).
    pub drive_file_id: Option<String>,
    /// The Drive link people open (`webViewLink`); `null` when not uploaded.
    pub drive_url: Option<String>,
    /// Why the PDF was not uploaded (e.g. the client has no Drive folder); `null` when it was.
    pub drive_skipped: Option<String>,
}

impl ReportReady {
    /// The link a person opens first: the Drive file, else the PDF URL.
    pub fn best_link(&self) -> Option<&str> {
        self.drive_url.as_deref().or(self.pdf_url.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_sit_under_the_base_with_a_format_parameter() {
        let id = Uuid::nil();
        let links = ReportLinks::new(Some("https://sb.example.com/prefix/"));
        assert_eq!(
            links.pdf(id).as_deref(),
            Some("https://sb.example.com/prefix/v1/reports/00000000-0000-0000-0000-000000000000?format=pdf")
        );
        assert_eq!(
            links.html(id).as_deref(),
            Some("https://sb.example.com/prefix/v1/reports/00000000-0000-0000-0000-000000000000?format=html")
        );
        assert_eq!(ReportLinks::new(None).pdf(id), None);
        assert_eq!(ReportLinks::new(Some(" ")).html(id), None);
    }

    #[test]
    fn a_skipped_upload_has_a_reason_and_no_file() {
        let skipped = DriveDelivery::skipped("no folder");
        assert_eq!((skipped.file_id(), skipped.url(), skipped.skip_reason()), (None, None, Some("no folder")));
        let uploaded = DriveDelivery::Uploaded { file_id: "f".into(), url: Some("https://d/f".into()) };
        assert_eq!(
            (uploaded.file_id(), uploaded.url(), uploaded.skip_reason()),
            (Some("f"), Some("https://d/f"), None)
        );
    }
}
