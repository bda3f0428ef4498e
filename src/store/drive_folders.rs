//! `engine.drive_folder_ids`: the Drive file id kept for each folder (parent, name)
//! before it is created, so retried creates reuse it.

use sqlx::PgPool;

/// Keeps `candidate` for folder `name` in `parent` unless an id is kept already; answers
/// the kept id. Two statements on purpose: the second sees a row a concurrent caller
/// committed while the first waited on it.
pub async fn reserve(pool: &PgPool, parent: &str, name: &str, candidate: &str) -> Result<String, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO engine.drive_folder_ids (parent_id, name, file_id) VALUES ($1, $2, $3)
         ON CONFLICT (parent_id, name) DO NOTHING",
        parent,
        name,
        candidate,
    )
    .execute(pool)
    .await?;
    sqlx::query_scalar!("SELECT file_id FROM engine.drive_folder_ids WHERE parent_id = $1 AND name = $2", parent, name,)
        .fetch_one(pool)
        .await
}
