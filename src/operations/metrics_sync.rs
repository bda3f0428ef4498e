//! Syncing a client's ad metrics on request: pull the named accounts, store what came
//! back, write the audit row, and say per platform what happened. The metrics sync
//! endpoint runs it inline; the `metrics-sync` workflow runs it on a worker when the
//! caller asked for an asynchronous answer (or the inline answer would come too late).

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::metrics::{self, AdAccount, AdPlatform, linked_ad_accounts};
use crate::{
    domain::{client::Client, validation::FieldError},
    platforms::{PlatformError, PlatformProblem, Platforms},
    store::{self, audit::Actor},
};

/// Longest range one sync or read may cover.
pub const MAX_DAYS: i64 = 366;

/// The field at fault when a range is backwards or too long (`to` either way).
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), FieldError> {
    if from > to {
        return Err(FieldError::new("to", "must not be before `from`"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(FieldError::new("to", format!("the range may cover at most {MAX_DAYS} days")));
    }
    Ok(())
}

/// The client's accounts to sync: every linked one, or the named platforms in the
/// order named (each once, each linked). Errors name `platforms[i]` or `platforms`.
pub fn pick(client: &Client, names: Option<&[String]>) -> Result<Vec<AdAccount>, FieldError> {
    let linked = linked_ad_accounts(client);
    let wanted = match names {
        None => linked,
        Some(names) => {
            let mut picked = vec![];
            for (i, name) in names.iter().enumerate() {
                let field = format!("platforms[{i}]");
                if names[..i].contains(name) {
                    return Err(FieldError::new(field, "is listed twice"));
                }
                let Some(platform) = AdPlatform::from_key(name) else {
                    return Err(FieldError::new(field, "is not an ad platform with metrics (meta, google_ads)"));
                };
                match linked.iter().find(|a| a.platform == platform) {
                    Some(found) => picked.push(found.clone()),
                    None => {
                        return Err(FieldError::new(
                            field,
                            "is not linked to this client (set its account under `accounts`)",
                        ));
                    }
                }
            }
            picked
        }
    };
    if wanted.is_empty() {
        let why = "the client has no ad account linked (set accounts.meta or accounts.google_ads)";
        return Err(FieldError::new("platforms", why));
    }
    Ok(wanted)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Ok,
    /// Some platforms failed; the others' data is stored.
    Partial,
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformSync {
    #[schema(value_type = super::metrics::AdPlatform, example = "meta")]
    pub platform: String,
    #[schema(example = "act_1234567890")]
    pub account: String,
    /// Days written (inserted or replaced).
    pub days: u64,
    /// All clicks over the days pulled (Meta `clicks`: likes, expands, profile taps included).
    pub clicks: i64,
    /// Link clicks over the days pulled (Meta `inline_link_clicks`; Google Ads: its clicks).
    pub link_clicks: i64,
    pub error: Option<PlatformProblemWithMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformProblemWithMessage {
    pub message: String,
    #[serde(flatten)]
    pub problem: PlatformProblem,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResult {
    pub client_id: Uuid,
    #[schema(value_type = String, format = Date, example = "2026-06-01")]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date, example = "2026-06-07")]
    pub to: NaiveDate,
    pub status: SyncStatus,
    pub platforms: Vec<PlatformSync>,
}

/// Pulls the days of `wanted` (concurrently, no transaction open), then stores them in
/// one transaction with the audit row `metrics.sync`.
pub async fn sync(
    pool: &PgPool,
    platforms: &Platforms,
    actor: &Actor,
    client_id: Uuid,
    wanted: &[AdAccount],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SyncResult, sqlx::Error> {
    let pulled = metrics::pull(platforms, client_id, wanted, from, to).await;
    store(pool, actor, client_id, wanted, pulled, from, to).await
}

/// Stores what [`metrics::pull`] brought back for `wanted` (in that order) and reports it in that order.
pub async fn store(
    pool: &PgPool,
    actor: &Actor,
    client_id: Uuid,
    wanted: &[AdAccount],
    pulled: Vec<Result<Vec<crate::domain::metrics::DailyMetrics>, PlatformError>>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SyncResult, sqlx::Error> {
    let mut outcomes: Vec<PlatformSync> = wanted
        .iter()
        .zip(&pulled)
        .map(|(account, result)| {
            let (platform, account) = (account.platform.key().to_string(), account.account.clone());
            match result {
                Ok(days) => PlatformSync {
                    platform,
                    account,
                    days: 0,
                    clicks: days.iter().map(|d| d.clicks).sum(),
                    link_clicks: days.iter().map(|d| d.link_clicks).sum(),
                    error: None,
                },
                Err(e) => {
                    let error =
                        PlatformProblemWithMessage { message: e.to_string(), problem: PlatformProblem::from(e) };
                    PlatformSync { platform, account, days: 0, clicks: 0, link_clicks: 0, error: Some(error) }
                }
            }
        })
        .collect();
    // Every writer of `costs.daily_metrics` stores platforms in one order (registry
    // order, as `linked_ad_accounts` gives them): two syncs naming them in opposite
    // orders would each lock one platform's days and wait for the other's, a deadlock
    // Postgres breaks by failing one of them.
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| wanted[i].platform);
    let mut tx = pool.begin().await?;
    for i in order {
        if let Ok(days) = &pulled[i] {
            outcomes[i].days = metrics::store_days(&mut tx, client_id, &wanted[i], days).await?;
        }
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let status = match failed {
        0 => SyncStatus::Ok,
        n if n == outcomes.len() => SyncStatus::Failed,
        _ => SyncStatus::Partial,
    };
    let result = SyncResult { client_id, from, to, status, platforms: outcomes };
    let id = client_id.to_string();
    store::audit::record(&mut tx, actor, "metrics.sync", "client", &id, None::<&()>, Some(&result)).await?;
    tx.commit().await?;
    Ok(result)
}
