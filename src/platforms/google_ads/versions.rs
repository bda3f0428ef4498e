//! Google Ads API versions: when each was released and when it stops answering.
//!
//! Sources (checked 2026-11-30):
//! - release dates: <https://developers.google.com/google-ads/api/docs/release-notes>
//!   (v23 2026-01-28, v24 2026-04-22, v25 2026-07-22, v26 2026-10-14) and the sunset-dates
//!   page's timetable (v19 2025-02-26, v20 2025-06-04); v21: "Announcing v21" (2025-08-06);
//!   v22's release (2025-10-15) we could not confirm, but only its published sunset is used.
//! - published sunsets: the sunset reminders on <https://developers.google.com/ads/blog>
//!   (v19 2026-02-11, v20 2026-06-10, v21 2026-08-05, v22 2026-10-07): "Starting on this
//!   date, all vNN API requests will begin to fail."
//! - unpublished sunsets: <https://developers.google.com/google-ads/api/docs/sunset-dates>
//!   ("major versions have a lifespan of around 12 months") and the 2026 schedule post
//!   (<https://developers.google.com/ads/blog/posts/2025/09/more-frequent-releases-coming-for>:
//!   "each major release will now be available for one year after the release", projected
//!   sunsets v23 Feb 2027 … v26 Nov 2027). We take the stricter reading: release + 12 months,
//!   the earliest day either source allows, marked `estimated`.
//!
//! The simulator keeps its own copy (`sim::google_ads`); a test asserts the two agree.

use chrono::{Months, NaiveDate};

/// The version a new deployment should use (the latest major).
pub const DEFAULT_VERSION: &str = "v26";
/// Start-up warns when the configured version sunsets within this many days.
pub const WARN_DAYS: i64 = 60;

/// One major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// `v26`, as in the URL path.
    pub name: &'static str,
    pub released: NaiveDate,
    /// First day requests fail.
    pub sunset: NaiveDate,
    /// `sunset` is our estimate (release + 12 months), not a date Google published.
    pub estimated: bool,
}

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("invalid date"),
    }
}

/// `(name, released, published sunset)`, oldest first.
const TABLE: [(&str, NaiveDate, Option<NaiveDate>); 8] = [
    ("v19", date(2025, 2, 26), Some(date(2026, 2, 11))),
    ("v20", date(2025, 6, 4), Some(date(2026, 6, 10))),
    ("v21", date(2025, 8, 6), Some(date(2026, 8, 5))),
    ("v22", date(2025, 10, 15), Some(date(2026, 10, 7))),
    ("v23", date(2026, 1, 28), None),
    ("v24", date(2026, 4, 22), None),
    ("v25", date(2026, 7, 22), None),
    ("v26", date(2026, 10, 14), None),
];

/// Every known major version, oldest first.
pub fn all() -> Vec<Version> {
    TABLE
        .iter()
        .map(|&(name, released, sunset)| Version {
            name,
            released,
            sunset: sunset.unwrap_or_else(|| released.checked_add_months(Months::new(12)).expect("date in range")),
            estimated: sunset.is_none(),
        })
        .collect()
}

/// What we know of a configured version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// In the table.
    Listed(Version),
    /// Older than the table: long sunset.
    Older,
    /// Newer than the table (released after this table was written).
    Newer,
    /// Not `v<digits>`.
    Invalid,
}

fn major(name: &str) -> Option<u32> {
    name.strip_prefix('v').and_then(|n| n.parse().ok())
}

pub fn lookup(name: &str) -> Known {
    let Some(n) = major(name) else { return Known::Invalid };
    let versions = all();
    if let Some(v) = versions.iter().find(|v| v.name == name) {
        return Known::Listed(*v);
    }
    match versions.first().and_then(|v| major(v.name)) {
        Some(oldest) if n < oldest => Known::Older,
        _ => Known::Newer,
    }
}

/// Why a version cannot be used on `today` (sunset, or not a version); `None` when usable.
pub fn refusal(name: &str, today: NaiveDate) -> Option<String> {
    let fix = format!("set GOOGLE_ADS_API_VERSION={DEFAULT_VERSION}");
    match lookup(name) {
        Known::Listed(v) if today >= v.sunset => Some(format!(
            "Google Ads API {name} {} on {}: Google fails every request to it (UNSUPPORTED_VERSION); {fix}",
            if v.estimated { "is estimated to sunset" } else { "was sunset" },
            v.sunset
        )),
        Known::Older => Some(format!("Google Ads API {name} was sunset long ago; {fix}")),
        Known::Invalid => Some(format!("GOOGLE_ADS_API_VERSION `{name}` is not a version like {DEFAULT_VERSION}")),
        _ => None,
    }
}

/// A warning when `name` sunsets within [`WARN_DAYS`] of `today` (and has not yet).
pub fn sunset_warning(name: &str, today: NaiveDate) -> Option<String> {
    let Known::Listed(v) = lookup(name) else { return None };
    let days = (v.sunset - today).num_days();
    (days > 0 && days <= WARN_DAYS).then(|| {
        let estimated = if v.estimated { " (estimated: release + 12 months)" } else { "" };
        format!("Google Ads API {name} sunsets on {}{estimated}, in {days} days; move to {DEFAULT_VERSION}", v.sunset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_sunsets_are_kept_and_the_rest_estimated_at_twelve_months() {
        let v = all();
        assert!(v.windows(2).all(|w| w[0].released < w[1].released && w[0].sunset <= w[1].sunset));
        let v22 = v.iter().find(|v| v.name == "v22").unwrap();
        assert_eq!((v22.sunset, v22.estimated), (date(2026, 10, 7), false));
        let v23 = v.iter().find(|v| v.name == "v23").unwrap();
        assert_eq!((v23.sunset, v23.estimated), (date(2027, 1, 28), true));
        assert_eq!(v.last().unwrap().name, DEFAULT_VERSION);
    }

    #[test]
    fn sunset_versions_are_refused_and_near_sunsets_warned() {
        let today = date(2026, 12, 1);
        assert!(refusal("v22", today).unwrap().contains("was sunset on 2026-10-07"));
        assert!(refusal("v14", today).is_some());
        assert!(refusal("latest", today).is_some());
        assert_eq!(refusal("v23", today), None);
        assert_eq!(refusal("v27", today), None, "a version newer than the table is not refused");
        assert!(refusal("v23", date(2027, 1, 28)).unwrap().contains("estimated"));
        assert!(sunset_warning("v23", today).unwrap().contains("in 58 days"));
        assert_eq!(sunset_warning("v26", today), None);
        assert_eq!(sunset_warning("v22", today), None, "already sunset: refused, not warned");
    }
}
