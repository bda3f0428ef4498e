//! `costs.daily_metrics` and `costs.llm_usage`.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::metrics::DailyMetrics;

/// Inserts or replaces the days of one client's platform; returns how many rows were written.
pub async fn upsert_days(
    conn: &mut PgConnection,
    client_id: Uuid,
    platform: &str,
    account_id: &str,
    days: &[DailyMetrics],
) -> Result<u64, sqlx::Error> {
    if days.is_empty() {
        return Ok(0);
    }
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.date).collect();
    let spend: Vec<f64> = days.iter().map(|d| d.spend).collect();
    let impressions: Vec<i64> = days.iter().map(|d| d.impressions).collect();
    let clicks: Vec<i64> = days.iter().map(|d| d.clicks).collect();
    let link_clicks: Vec<i64> = days.iter().map(|d| d.link_clicks).collect();
    let conversions: Vec<f64> = days.iter().map(|d| d.conversions).collect();
    let values: Vec<f64> = days.iter().map(|d| d.conversion_value).collect();
    let currencies: Vec<String> = days.iter().map(|d| d.currency.clone()).collect();
    let done = sqlx::query!(
        "INSERT INTO costs.daily_metrics
             (client_id, platform, account_id, date, spend, impressions, clicks, link_clicks, conversions,
              conversion_value, currency)
         SELECT $1, $2, $3, d.*
         FROM unnest($4::date[], $5::float8[], $6::int8[], $7::int8[], $8::int8[], $9::float8[], $10::float8[],
                     $11::text[])
              AS d(date, spend, impressions, clicks, link_clicks, conversions, conversion_value, currency)
         ON CONFLICT (client_id, platform, date) DO UPDATE
             SET account_id = excluded.account_id, spend = excluded.spend, impressions = excluded.impressions,
                 clicks = excluded.clicks, link_clicks = excluded.link_clicks, conversions = excluded.conversions,
                 conversion_value = excluded.conversion_value, currency = excluded.currency, synced_at = now()",
        client_id,
        platform,
        account_id,
        &dates,
        &spend,
        &impressions,
        &clicks,
        &link_clicks,
        &conversions,
        &values,
        &currencies
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub struct MetricsRow {
    pub platform: String,
    pub date: NaiveDate,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    /// `None` for Meta days stored before link clicks were (re-sync to fill them).
    pub link_clicks: Option<i64>,
    pub conversions: f64,
    pub conversion_value: f64,
    pub currency: String,
}

/// Stored days of a client between two dates (inclusive), optionally one platform.
pub async fn days(
    conn: &mut PgConnection,
    client_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    platform: Option<&str>,
) -> Result<Vec<MetricsRow>, sqlx::Error> {
    sqlx::query_as!(
        MetricsRow,
        "SELECT platform, date, spend, impressions, clicks, link_clicks, conversions, conversion_value, currency
         FROM costs.daily_metrics
         WHERE client_id = $1 AND date BETWEEN $2 AND $3 AND ($4::text IS NULL OR platform = $4)
         ORDER BY date, platform",
        client_id,
        from,
        to,
        platform
    )
    .fetch_all(conn)
    .await
}

pub struct LlmUsage<'a> {
    pub client_id: Option<Uuid>,
    pub provider: &'a str,
    pub model: &'a str,
    pub input_tokens: i32,
    pub output_tokens: i32,
    pub purpose: &'a str,
}

pub async fn record_llm_usage(conn: &mut PgConnection, u: &LlmUsage<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO costs.llm_usage (id, client_id, provider, model, input_tokens, output_tokens, purpose)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        u.client_id,
        u.provider,
        u.model,
        u.input_tokens,
        u.output_tokens,
        u.purpose
    )
    .execute(conn)
    .await?;
    Ok(())
}
