//! The side-effect ledger: what a run's step really did for a client, recorded once so a
//! retried task never repeats it (docs/WORKFLOWS.md).

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct Effect {
    pub result: Value,
    pub dry_run: bool,
}

pub async fn effect(
    conn: &mut PgConnection,
    run_id: Uuid,
    client_id: Uuid,
    step: &str,
) -> Result<Option<Effect>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT result, dry_run FROM engine.effects WHERE run_id = $1 AND client_id = $2 AND step = $3",
        run_id,
        client_id,
        step
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Effect { result: r.result, dry_run: r.dry_run }))
}

pub async fn record_effect(
    conn: &mut PgConnection,
    run_id: Uuid,
    client_id: Uuid,
    step: &str,
    result: &Value,
    dry_run: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO engine.effects (run_id, client_id, step, result, dry_run) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (run_id, client_id, step) DO NOTHING",
        run_id,
        client_id,
        step,
        result,
        dry_run
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The first other run of `workflow` that really (not dry) carried out `step` for the
/// client: an effect meant once per client rather than once per run (a welcome message).
pub async fn earlier_effect_run(
    conn: &mut PgConnection,
    workflow: &str,
    client_id: Uuid,
    step: &str,
    other_than: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT e.run_id FROM engine.effects e JOIN engine.runs r ON r.id = e.run_id
         WHERE e.client_id = $1 AND e.step = $2 AND NOT e.dry_run AND e.run_id <> $3 AND r.workflow = $4
         ORDER BY e.created_at LIMIT 1",
        client_id,
        step,
        other_than,
        workflow
    )
    .fetch_optional(conn)
    .await
}
