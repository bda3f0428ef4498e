//! The event outbox (`engine.events`): every event is written in the same
//! transaction as the change it describes, with one `engine.deliveries` row per
//! matching enabled endpoint (the fan-out). So an event committed is an event that
//! will be delivered, whatever happens to the process afterwards (the delivery
//! workers find the rows), and an event rolled back leaves nothing. Also the feed
//! (`GET /v1/events`).

use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::events::{Event, EventType};

/// Wakes the delivery workers when an event, a callback or a manual retry is
/// written (delivered on commit; they poll otherwise).
pub const EVENTS_CHANNEL: &str = "switchboard_events";

/// Appends an event to the outbox, with a delivery for every enabled endpoint
/// subscribed to its type; call inside the transaction of the change.
pub async fn emit(conn: &mut PgConnection, event_type: EventType, data: &impl Serialize) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    let data: Value = serde_json::to_value(data).unwrap_or(Value::Null);
    sqlx::query!("INSERT INTO engine.events (id, type, data) VALUES ($1, $2, $3)", id, event_type.as_str(), data)
        .execute(&mut *conn)
        .await?;
    // The pattern rule of `domain::events::pattern_matches`.
    let fanned = sqlx::query!(
        "INSERT INTO engine.deliveries (id, event_id, endpoint_id)
         SELECT gen_random_uuid(), $1, e.id FROM engine.webhook_endpoints e
         WHERE e.enabled
           AND EXISTS (SELECT 1 FROM unnest(e.events) p
                       WHERE p = '*' OR p = $2 OR (right(p, 2) = '.*' AND starts_with($2, left(p, -1))))",
        id,
        event_type.as_str()
    )
    .execute(&mut *conn)
    .await?;
    if fanned.rows_affected() > 0 {
        wake_deliverers(conn, id).await?;
    }
    Ok(id)
}

/// Wakes the delivery workers when the transaction commits.
pub async fn wake_deliverers(conn: &mut PgConnection, about: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, about.to_string()).execute(conn).await?;
    Ok(())
}

/// Events after `after` and before `before` (ids, both exclusive), of these types: oldest first,
/// or newest first when `newest_first` (a polling trigger reads the newest and stops at what it has).
pub async fn feed(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    before: Uuid,
    types: &[EventType],
    limit: i64,
    newest_first: bool,
) -> Result<Vec<Event>, sqlx::Error> {
    let types: Vec<String> = types.iter().map(|t| t.as_str().to_string()).collect();
    // Two statements, not an ORDER BY CASE: each walks the primary key in its own direction.
    if newest_first {
        sqlx::query_as!(
            Event,
            r#"SELECT id, type AS kind, data, created_at FROM engine.events
               WHERE ($1::uuid IS NULL OR id > $1) AND id < $2 AND type = ANY ($3)
               ORDER BY id DESC LIMIT $4"#,
            after,
            before,
            &types,
            limit
        )
        .fetch_all(conn)
        .await
    } else {
        sqlx::query_as!(
            Event,
            r#"SELECT id, type AS kind, data, created_at FROM engine.events
               WHERE ($1::uuid IS NULL OR id > $1) AND id < $2 AND type = ANY ($3)
               ORDER BY id LIMIT $4"#,
            after,
            before,
            &types,
            limit
        )
        .fetch_all(conn)
        .await
    }
}
