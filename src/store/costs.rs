//! `costs.platform_calls` and the per-day reads behind `GET /v1/costs`.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Adds call counts `(client, platform, day, calls)` in one statement. Rows of
/// clients that no longer exist are skipped. Keys must be distinct (a statement
/// cannot update one row twice). Returns the rows written.
pub async fn add_platform_calls(pool: &PgPool, rows: &[(Uuid, &str, NaiveDate, i64)]) -> Result<u64, sqlx::Error> {
    let clients: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let platforms: Vec<String> = rows.iter().map(|r| r.1.to_string()).collect();
    let days: Vec<NaiveDate> = rows.iter().map(|r| r.2).collect();
    let calls: Vec<i32> = rows.iter().map(|r| r.3.clamp(0, i32::MAX as i64) as i32).collect();
    let done = sqlx::query!(
        "INSERT INTO costs.platform_calls (client_id, platform, day, calls)
         SELECT u.client_id, u.platform, u.day, u.calls
         FROM unnest($1::uuid[], $2::text[], $3::date[], $4::int[]) AS u (client_id, platform, day, calls)
         WHERE EXISTS (SELECT 1 FROM knowledge.clients c WHERE c.id = u.client_id)
         ON CONFLICT (client_id, platform, day) DO UPDATE SET calls = costs.platform_calls.calls + excluded.calls",
        &clients,
        &platforms,
        &days,
        &calls
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// LLM usage of one client on one UTC day.
#[derive(Debug, Clone)]
pub struct LlmDay {
    pub client_id: Uuid,
    pub client_slug: String,
    pub day: NaiveDate,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub calls: i64,
}

/// LLM usage per client and UTC day of `at`, `from..=to`. Usage tied to no client is left out.
pub async fn llm_by_day(
    conn: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    client: Option<Uuid>,
) -> Result<Vec<LlmDay>, sqlx::Error> {
    sqlx::query_as!(
        LlmDay,
        r#"SELECT u.client_id AS "client_id!", c.slug AS client_slug, (u.at AT TIME ZONE 'UTC')::date AS "day!",
                  sum(u.input_tokens)::bigint AS "input_tokens!", sum(u.output_tokens)::bigint AS "output_tokens!",
                  count(*) AS "calls!"
           FROM costs.llm_usage u JOIN knowledge.clients c ON c.id = u.client_id
           WHERE u.at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
             AND u.at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
             AND ($3::uuid IS NULL OR u.client_id = $3)
           GROUP BY 1, 2, 3"#,
        from,
        to,
        client
    )
    .fetch_all(conn)
    .await
}

/// Platform calls of one client to one platform on one UTC day.
#[derive(Debug, Clone)]
pub struct CallsDay {
    pub client_id: Uuid,
    pub client_slug: String,
    pub platform: String,
    pub day: NaiveDate,
    pub calls: i64,
}

pub async fn calls_by_day(
    conn: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    client: Option<Uuid>,
) -> Result<Vec<CallsDay>, sqlx::Error> {
    sqlx::query_as!(
        CallsDay,
        r#"SELECT p.client_id, c.slug AS client_slug, p.platform, p.day, p.calls::bigint AS "calls!"
           FROM costs.platform_calls p JOIN knowledge.clients c ON c.id = p.client_id
           WHERE p.day BETWEEN $1 AND $2 AND ($3::uuid IS NULL OR p.client_id = $3)"#,
        from,
        to,
        client
    )
    .fetch_all(conn)
    .await
}
