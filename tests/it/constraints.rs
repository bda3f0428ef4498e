//! Unique and foreign-key violations answer what `store::constraints` maps them to:
//! a 409 problem naming the field, and nothing written.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use switchboard::store::constraints::{self, Rule};

use crate::support::TestApp;

/// Rows of the tables a rejected write could have touched.
async fn written(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.count("SELECT count(*) FROM knowledge.clients").await,
        app.count("SELECT count(*) FROM knowledge.entries").await,
        app.count("SELECT count(*) FROM audit.log").await,
        app.count("SELECT count(*) FROM engine.events").await,
    )
}

#[sqlx::test]
async fn every_key_constraint_of_the_database_has_an_answer(pool: PgPool) {
    // The catalog of the migrated database: the names Postgres gave, defaults included.
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conname::text, c.contype::text
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE c.contype IN ('p', 'u', 'f') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
           AND c.conrelid <> 'public._sqlx_migrations'::regclass
         UNION ALL
         SELECT i.relname::text, 'u'
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
         WHERE x.indisunique AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(keys.len() > 30, "the schema has its keys: {keys:?}");
    let missing: Vec<&(String, String)> = keys
        .iter()
        .filter(|(name, kind)| {
            let rule = if kind == "f" { Rule::ForeignKey } else { Rule::Unique };
            constraints::lookup(name, rule).is_none()
        })
        .collect();
    assert!(missing.is_empty(), "constraints without an answer in store::constraints: {missing:?}");
}

#[sqlx::test]
async fn a_taken_slug_is_a_409_naming_slug_and_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Acme"})).await;
    app.create_client(json!({"name": "Other"})).await;
    let answer = constraints::lookup("clients_slug_key", Rule::Unique).unwrap().answer;
    let before = written(&app).await;

    for res in [
        app.post("/v1/clients", json!({"name": "Acme Two", "slug": "acme"})).send().await,
        app.patch("/v1/clients/other", json!({"slug": "acme"})).send().await,
    ] {
        let body = res.problem(409, answer.code);
        assert_eq!(res.error_fields(), ["slug"], "{body}");
        assert_eq!(body["detail"], answer.detail, "{body}");
    }
    assert_eq!(written(&app).await, before, "nothing written");
    assert_eq!(app.get("/v1/clients/other").send().await.json()["slug"], "other");
}

#[sqlx::test]
async fn an_entry_for_a_client_deleted_meanwhile_is_a_409_naming_client_and_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let id = app.create_client(json!({"name": "Acme"})).await["id"].as_str().unwrap().to_string();
    let answer = constraints::lookup("entries_client_id_fkey", Rule::ForeignKey).unwrap().answer;
    let (clients, entries, audit, events) = written(&app).await;

    // A hard delete (as `DELETE /v1/clients/{id}?hard=true` does) holds the client's row
    // until it commits: the request still finds the client, and its insert waits on the row.
    let mut deleting = pool.begin().await.unwrap();
    sqlx::query("DELETE FROM knowledge.clients WHERE id = $1::uuid").bind(&id).execute(&mut *deleting).await.unwrap();
    let adding = tokio::spawn(
        app.post(&format!("/v1/clients/{id}/knowledge"), json!({"kind": "note", "title": "Late", "body": "Too late."}))
            .send(),
    );
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    for _ in 0..500 {
        if app.count(waiting).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.count(waiting).await, 1, "the insert waits on the deleted row");
    deleting.commit().await.unwrap();

    let res = adding.await.unwrap();
    let body = res.problem(409, answer.code);
    assert_eq!(res.error_fields(), ["client"], "{body}");
    assert_eq!(body["detail"], answer.detail, "{body}");
    assert_eq!(written(&app).await, (clients - 1, entries, audit, events), "nothing written but the delete");
}
