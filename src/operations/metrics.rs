//! Ad metrics from the platforms into the store: which ad platforms a client is
//! linked to, pulling their days (concurrently, attributed to the client for
//! `GET /v1/costs`) and storing them. The metrics sync endpoint, daily monitoring
//! and the weekly report all pull this way.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{client::Client, metrics::DailyMetrics},
    platforms::{self, PlatformError, Platforms},
    store,
};

/// The platforms with a metrics connector. An ad platform the sync or a workflow
/// names is one of these, so an unknown platform can never reach a connector. Ordered
/// as [`AdPlatform::ALL`]: the one order writers store platforms in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdPlatform {
    Meta,
    GoogleAds,
}

impl AdPlatform {
    pub const ALL: [AdPlatform; 2] = [AdPlatform::Meta, AdPlatform::GoogleAds];

    /// Its registry key (`meta`, `google_ads`).
    pub fn key(self) -> &'static str {
        match self {
            AdPlatform::Meta => platforms::meta::INFO.key,
            AdPlatform::GoogleAds => platforms::google_ads::INFO.key,
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key)
    }

    /// Every key, in [`AdPlatform::ALL`] order.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        Self::ALL.into_iter().map(Self::key)
    }

    /// The client's account on this platform, if linked.
    pub fn account(self, client: &Client) -> Option<&str> {
        match self {
            AdPlatform::Meta => client.accounts.meta.as_deref(),
            AdPlatform::GoogleAds => client.accounts.google_ads.as_deref(),
        }
    }
}

crate::domain::names::names_schema!(
    AdPlatform,
    "AdPlatform",
    "An ad platform with a metrics connector (its platform key).",
    AdPlatform::keys()
);

/// One linked ad account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdAccount {
    pub platform: AdPlatform,
    pub account: String,
    /// The manager account to act through (Google Ads `login-customer-id`), if the client has one.
    pub manager: Option<String>,
}

/// The client's linked ad accounts, in registry order.
pub fn linked_ad_accounts(client: &Client) -> Vec<AdAccount> {
    AdPlatform::ALL
        .into_iter()
        .filter_map(|platform| {
            let manager = match platform {
                AdPlatform::GoogleAds => client.accounts.google_ads_manager.clone(),
                AdPlatform::Meta => None,
            };
            platform.account(client).map(|a| AdAccount { platform, account: a.to_string(), manager })
        })
        .collect()
}

/// Pulls one account's days from its platform.
pub async fn fetch(
    platforms: &Platforms,
    account: &AdAccount,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyMetrics>, PlatformError> {
    platforms.ensure_configured(account.platform.key())?;
    match account.platform {
        AdPlatform::Meta => platforms.meta.daily_insights(&account.account, from, to).await,
        AdPlatform::GoogleAds => {
            let manager = account.manager.as_deref();
            platforms.google_ads.daily_metrics_via(manager, &account.account, from, to).await
        }
    }
}

/// Pulls every account concurrently, attributed to `client` (platform call costs);
/// the results come in the order of `accounts`. One failing does not stop the others.
pub async fn pull(
    platforms: &Platforms,
    client: Uuid,
    accounts: &[AdAccount],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Result<Vec<DailyMetrics>, PlatformError>> {
    let fetches = accounts.iter().map(|account| fetch(platforms, account, from, to));
    crate::costs::for_client(client, futures::future::join_all(fetches)).await
}

/// Stores one account's pulled days (replacing days already stored); returns the days written.
pub async fn store_days(
    conn: &mut PgConnection,
    client: Uuid,
    account: &AdAccount,
    days: &[DailyMetrics],
) -> Result<u64, sqlx::Error> {
    store::metrics::upsert_days(conn, client, account.platform.key(), &account.account, days).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enum and the registry agree: every registry platform that reports ad
    /// metrics is an `AdPlatform`, and no other is.
    #[test]
    fn ad_platforms_are_the_registry_platforms_with_metrics() {
        let ads: Vec<&str> = platforms::REGISTRY.iter().filter(|p| p.ads).map(|p| p.key).collect();
        let ours: Vec<&str> = AdPlatform::ALL.iter().map(|p| p.key()).collect();
        assert_eq!(ours, ads);
        for p in platforms::REGISTRY.iter().filter(|p| !p.ads) {
            assert_eq!(AdPlatform::from_key(p.key), None, "{} has no metrics connector", p.key);
        }
        assert_eq!(AdPlatform::from_key("tiktok"), None);
    }
}
