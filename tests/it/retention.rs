//! Retention (issue #9, bounded data): old rows go and recent ones stay, per family;
//! an open run and an event a pending delivery needs are never pruned; audit is kept
//! unless set; a batch smaller than the backlog still clears it within a pass.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use switchboard::{
    config::Config,
    retention::{self, RetentionSettings},
    store,
};
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Every family on, 30 days, audit as configured.
fn settings(audit_days: Option<u32>, batch: u32) -> RetentionSettings {
    RetentionSettings {
        events: Some(30 * DAY),
        runs: Some(30 * DAY),
        inbound: Some(30 * DAY),
        messages: Some(30 * DAY),
        audit: audit_days.map(|d| DAY * d),
        batch,
        every: Duration::from_secs(3600),
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await.unwrap()
}

async fn exists(pool: &PgPool, sql: &str, id: Uuid) -> bool {
    sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(pool).await.unwrap()
}

async fn endpoint(pool: &PgPool) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO engine.webhook_endpoints (id, url, secret) VALUES ($1, 'https://hooks.example.com/x', 's')",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// An event `age_days` old with one delivery in `status` (and one attempt), or none.
async fn event(pool: &PgPool, age_days: i32, delivery: Option<(&str, Uuid)>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO engine.events (id, type, data, created_at)
         VALUES ($1, 'client.updated', '{}', now() - make_interval(days => $2))",
    )
    .bind(id)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
    if let Some((status, endpoint_id)) = delivery {
        let delivery_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO engine.deliveries (id, event_id, endpoint_id, status, created_at)
             VALUES ($1, $2, $3, $4, now() - make_interval(days => $5))",
        )
        .bind(delivery_id)
        .bind(id)
        .bind(endpoint_id)
        .bind(status)
        .bind(age_days)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO engine.delivery_attempts (delivery_id, status, latency_ms) VALUES ($1, 500, 12)")
            .bind(delivery_id)
            .execute(pool)
            .await
            .unwrap();
    }
    id
}

/// A run finished `age_days` ago (or open when `finished` is false), with a task, an
/// effect and a callback in `callback` status.
async fn run(pool: &PgPool, status: &str, finished_days_ago: Option<i32>, callback: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO engine.runs (id, workflow, workflow_version, status, trigger, created_at, finished_at)
         VALUES ($1, 'daily-monitoring', 1, $2, 'api', now() - interval '200 days',
                 now() - make_interval(days => $3))",
    )
    .bind(id)
    .bind(status)
    .bind(finished_days_ago)
    .execute(pool)
    .await
    .unwrap();
    let task_status = if finished_days_ago.is_some() { "succeeded" } else { "running" };
    let client = Uuid::now_v7();
    sqlx::query("INSERT INTO engine.tasks (id, run_id, client_id, status) VALUES ($1, $2, $3, $4)")
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(client)
        .bind(task_status)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO engine.effects (run_id, client_id, step, result) VALUES ($1, $2, 'alert', '{}')")
        .bind(id)
        .bind(client)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO engine.run_callbacks (id, run_id, url, status) VALUES ($1, $2, 'https://m.example.com', $3)",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .bind(callback)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn inbound(pool: &PgPool, message_id: &str, age_days: i32) {
    sqlx::query(
        "INSERT INTO engine.inbound_messages (message_id, sender, body, received_at)
         VALUES ($1, '+5511999990000', 'hi', now() - make_interval(days => $2))",
    )
    .bind(message_id)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
}

async fn message(pool: &PgPool, wamid: &str, age_days: i32) {
    sqlx::query(
        "INSERT INTO engine.whatsapp_messages (id, wamid, recipient, kind, created_at)
         VALUES ($1, $2, '5511999990000', 'text', now() - make_interval(days => $3))",
    )
    .bind(Uuid::now_v7())
    .bind(wamid)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
}

async fn idempotency_key(pool: &PgPool, key: &str, expires_in_hours: i32) {
    sqlx::query(
        "INSERT INTO engine.idempotency_keys (token_id, key, request_hash, state, locked_until, expires_at)
         VALUES ($1, $2, 'h', 'completed', now(), now() + make_interval(hours => $3))",
    )
    .bind(Uuid::now_v7())
    .bind(key)
    .bind(expires_in_hours)
    .execute(pool)
    .await
    .unwrap();
}

async fn audit_row(pool: &PgPool, action: &str, age_days: i32) {
    sqlx::query(
        "INSERT INTO audit.log (at, actor_name, action, resource_type, resource_id)
         VALUES (now() - make_interval(days => $2), 'test', $1, 'client', 'x')",
    )
    .bind(action)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn old_events_and_their_deliveries_go_recent_ones_and_pending_ones_stay(pool: PgPool) {
    let ep = endpoint(&pool).await;
    let old = event(&pool, 40, Some(("succeeded", ep))).await;
    let old_failed = event(&pool, 40, Some(("failed", ep))).await;
    let old_bare = event(&pool, 40, None).await;
    let pending = event(&pool, 40, Some(("pending", ep))).await;
    let recent = event(&pool, 5, Some(("succeeded", ep))).await;

    let pruned = retention::prune(&pool, &settings(None, 100), Utc::now()).await.unwrap();
    assert_eq!(pruned.events, 3);
    let event_exists = "SELECT EXISTS (SELECT 1 FROM engine.events WHERE id = $1)";
    for gone in [old, old_failed, old_bare] {
        assert!(!exists(&pool, event_exists, gone).await);
    }
    assert!(exists(&pool, event_exists, pending).await, "a pending delivery still needs its event");
    assert!(exists(&pool, event_exists, recent).await);
    // The deliveries and attempts of the pruned events went with them.
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.deliveries").await, 2);
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.delivery_attempts").await, 2);
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.webhook_endpoints").await, 1, "endpoints stay");
}

#[sqlx::test]
async fn finished_old_runs_go_open_runs_and_pending_callbacks_stay(pool: PgPool) {
    let old = run(&pool, "succeeded", Some(40), "succeeded").await;
    let old_failed = run(&pool, "failed", Some(40), "failed").await;
    let recent = run(&pool, "succeeded", Some(5), "succeeded").await;
    let open = run(&pool, "running", None, "pending").await;
    let callback_pending = run(&pool, "partially_failed", Some(40), "pending").await;

    let pruned = retention::prune(&pool, &settings(None, 100), Utc::now()).await.unwrap();
    assert_eq!(pruned.runs, 2);
    let run_exists = "SELECT EXISTS (SELECT 1 FROM engine.runs WHERE id = $1)";
    assert!(!exists(&pool, run_exists, old).await);
    assert!(!exists(&pool, run_exists, old_failed).await);
    assert!(exists(&pool, run_exists, recent).await);
    assert!(exists(&pool, run_exists, open).await, "a run still open is never pruned");
    assert!(exists(&pool, run_exists, callback_pending).await, "its callback is still to be sent");
    // Tasks, effects and callbacks went with their runs.
    for table in ["engine.tasks", "engine.effects", "engine.run_callbacks"] {
        assert_eq!(count(&pool, &format!("SELECT count(*) FROM {table}")).await, 3, "{table}");
    }
}

#[sqlx::test]
async fn old_whatsapp_rows_and_expired_keys_go_recent_ones_stay(pool: PgPool) {
    inbound(&pool, "wamid.old-in", 40).await;
    inbound(&pool, "wamid.new-in", 5).await;
    message(&pool, "wamid.old-out", 40).await;
    message(&pool, "wamid.new-out", 5).await;
    idempotency_key(&pool, "expired", -1).await;
    idempotency_key(&pool, "live", 5).await;

    let pruned = retention::prune(&pool, &settings(None, 100), Utc::now()).await.unwrap();
    assert_eq!((pruned.inbound, pruned.messages, pruned.idempotency_keys), (1, 1, 1));
    let left = |sql: &'static str| count(&pool, sql);
    assert_eq!(left("SELECT count(*) FROM engine.inbound_messages WHERE message_id = 'wamid.new-in'").await, 1);
    assert_eq!(left("SELECT count(*) FROM engine.inbound_messages").await, 1);
    assert_eq!(left("SELECT count(*) FROM engine.whatsapp_messages WHERE wamid = 'wamid.new-out'").await, 1);
    assert_eq!(left("SELECT count(*) FROM engine.whatsapp_messages").await, 1);
    assert_eq!(left("SELECT count(*) FROM engine.idempotency_keys WHERE key = 'live'").await, 1);
    assert_eq!(left("SELECT count(*) FROM engine.idempotency_keys").await, 1);
}

#[sqlx::test]
async fn a_family_set_to_zero_days_is_kept(pool: PgPool) {
    inbound(&pool, "wamid.ancient", 4000).await;
    let keep = RetentionSettings { inbound: None, ..settings(None, 100) };
    assert_eq!(retention::prune(&pool, &keep, Utc::now()).await.unwrap().inbound, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.inbound_messages").await, 1);
}

#[sqlx::test]
async fn audit_is_kept_by_default_and_pruned_only_when_set(pool: PgPool) {
    audit_row(&pool, "old", 400).await;
    audit_row(&pool, "recent", 5).await;
    // The defaults keep the audit log for ever.
    let defaults = RetentionSettings::from_config(&Config::default());
    assert_eq!(retention::prune(&pool, &defaults, Utc::now()).await.unwrap().audit, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM audit.log").await, 2);
    // Outside the pruner the log stays append-only, old rows included.
    let err = sqlx::query("DELETE FROM audit.log WHERE action = 'old'").execute(&pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("UPDATE audit.log SET action = 'x'").execute(&pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");

    let pruned = retention::prune(&pool, &settings(Some(365), 100), Utc::now()).await.unwrap();
    assert_eq!(pruned.audit, 1);
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit.log").fetch_all(&pool).await.unwrap();
    assert_eq!(actions, ["recent"]);
    // The pruner's cutoff does not outlive its statement.
    let err = sqlx::query("DELETE FROM audit.log").execute(&pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[sqlx::test]
async fn a_small_batch_still_clears_the_backlog(pool: PgPool) {
    for i in 0..7 {
        inbound(&pool, &format!("wamid.old-{i}"), 40).await;
        audit_row(&pool, "old", 400).await;
    }
    inbound(&pool, "wamid.recent", 1).await;
    // One batch takes at most its limit...
    let one = store::retention::prune_inbound(&pool, Utc::now() - chrono::Duration::days(30), 3).await.unwrap();
    assert_eq!(one, 3);
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.inbound_messages").await, 5);
    // ...and a pass runs batches until the backlog is gone.
    let pruned = retention::prune(&pool, &settings(Some(365), 3), Utc::now()).await.unwrap();
    assert_eq!((pruned.inbound, pruned.audit), (4, 7));
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.inbound_messages").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM audit.log").await, 0);
}

#[sqlx::test]
async fn the_loop_prunes_at_start_and_stops_when_told(pool: PgPool) {
    inbound(&pool, "wamid.old", 40).await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(retention::run(pool.clone(), settings(None, 100), stop));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&pool, "SELECT count(*) FROM engine.inbound_messages").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first pass did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the loop stops").unwrap();
}
