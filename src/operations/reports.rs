//! A stored report with everything its rendered form shows: the client, the
//! daily metrics of the reported week and the one before, the targets and
//! budgets, the alerts of the week and the summary, as a [`ReportData`] for
//! `render` (the API's HTML/PDF/PNG views and the weekly report's PDF in Drive).

use std::collections::BTreeMap;

use chrono::Duration;
use sqlx::PgConnection;
use uuid::Uuid;

use super::metrics::linked_ad_accounts;
use crate::{
    domain::client::Client,
    render::{AlertLine, Day, ReportData},
    store::{self, alerts::AlertFilter, clients::ClientKey, reports::ReportRow},
};

/// Alerts read for a report: the newest of the client's, then those of the week.
const ALERTS_SCANNED: i64 = 1000;

/// The report and its data; `None` when there is no such report (or its client is gone).
pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Option<(ReportRow, ReportData)>, sqlx::Error> {
    let Some(row) = store::reports::find(conn, id).await? else { return Ok(None) };
    let Some(client) = store::clients::find(conn, &ClientKey::Id(row.client_id), false).await? else {
        return Ok(None);
    };
    let data = data(conn, &row, &client).await?;
    Ok(Some((row, data)))
}

pub async fn data(conn: &mut PgConnection, row: &ReportRow, client: &Client) -> Result<ReportData, sqlx::Error> {
    let previous_start = row.period_start - Duration::days(7);
    let rows = store::metrics::days(conn, client.id, previous_start, row.period_end, None).await?;
    let filter = AlertFilter { client_id: Some(client.id), ..Default::default() };
    let alerts = store::alerts::list(conn, &filter, None, ALERTS_SCANNED).await?;
    // Linked platforms first, then any other with stored days.
    let mut platforms: Vec<String> = linked_ad_accounts(client).iter().map(|a| a.platform.key().to_string()).collect();
    for r in &rows {
        if !platforms.contains(&r.platform) {
            platforms.push(r.platform.clone());
        }
    }
    let mut alerts: Vec<AlertLine> = alerts
        .into_iter()
        .filter(|a| a.day >= row.period_start && a.day <= row.period_end)
        .map(|a| AlertLine { day: a.day, severity: a.severity.as_str().into(), subject: a.subject, message: a.message })
        .collect();
    alerts.sort_by(|a, b| (a.day, &a.subject).cmp(&(b.day, &b.subject)));
    Ok(ReportData {
        report_id: row.id,
        client_name: client.name.clone(),
        currency: client.currency.clone(),
        timezone: client.timezone.clone(),
        period_start: row.period_start,
        period_end: row.period_end,
        created_at: row.created_at,
        platforms,
        days: rows
            .into_iter()
            .map(|r| Day {
                platform: r.platform,
                date: r.date,
                spend: r.spend,
                impressions: r.impressions,
                clicks: r.clicks,
                link_clicks: r.link_clicks,
                conversions: r.conversions,
                conversion_value: r.conversion_value,
            })
            .collect(),
        target_cpa: client.targets.cpa,
        target_roas: client.targets.roas,
        monthly_budgets: client.budgets.iter().map(|(k, v)| (k.clone(), *v)).collect::<BTreeMap<_, _>>(),
        alerts,
        // A dry run's body is the prompt, not a summary: it is not shown to a client.
        summary: if row.model.is_some() { row.body.clone() } else { String::new() },
    })
}
