//! The engine's batched queue (issue #9): claims of many tasks at once never hand a
//! task to two workers, one statement renews every lease a worker holds (a task longer
//! than its lease keeps it while its worker lives), and a stopping worker gives back the
//! tasks it claimed but did not start.

use std::{sync::atomic::Ordering::SeqCst, time::Duration};

use serde_json::Value;
use sqlx::PgPool;
use switchboard::store;
use uuid::Uuid;

use crate::{
    engine::{Probe, clients, count, finished, settings, start_run, start_worker, state_with, task},
    support::TestApp,
};

/// `n` active clients, written directly (hundreds through the API would be slow).
async fn many_clients(pool: &PgPool, prefix: &str, n: i32) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO knowledge.clients (id, slug, name, status)
         SELECT gen_random_uuid(), $1 || '-' || i, $1 || ' ' || i, 'active' FROM generate_series(1, $2) i
         RETURNING id",
    )
    .bind(prefix.to_lowercase())
    .bind(n)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn two_workers_claiming_in_batches_run_every_task_exactly_once(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { sleep: Duration::from_millis(5), max_attempts: 1, ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![std::sync::Arc::new(probe)]);
    let ids = many_clients(&pool, "Batch", 600).await;
    let a = start_worker(&state, settings(8, Duration::from_secs(30)));
    let b = start_worker(&state, settings(8, Duration::from_secs(30)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(60)).await, "succeeded");
    let executions = stats.all_executions();
    assert_eq!(executions.len(), 600);
    assert!(executions.values().all(|n| *n == 1), "a task ran twice");
    // A task claimed twice would have attempt 2 (each claim counts one).
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND attempt = 1", run).await, 600);
    assert!(stats.max_in_flight.load(SeqCst) > 8, "both workers took part");
    a.stop().await;
    b.stop().await;
}

/// Runs started before the worker is up are claimed in one batch; several of its tasks are
/// the same client's (four runs on one client), and each gets the client (a batch loads each
/// client once).
#[sqlx::test]
async fn tasks_of_one_client_in_one_batch_all_get_their_client(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Probe { max_attempts: 1, ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![std::sync::Arc::new(probe)]);
    let ids = clients(&app, "Shared", 1).await;
    let mut runs = vec![];
    for _ in 0..4 {
        runs.push(start_run(&state, "probe", &ids, false).await);
    }
    let worker = start_worker(&state, settings(8, Duration::from_secs(30)));
    for run in runs {
        let status = finished(&pool, run, Duration::from_secs(10)).await;
        let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error FROM engine.tasks WHERE run_id = $1")
            .bind(run)
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(status, "succeeded", "{errors:?}");
    }
    assert_eq!(stats.all_executions()[&ids[0]], 4, "the client's four tasks all ran");
    worker.stop().await;
}

#[sqlx::test]
async fn a_task_outliving_its_lease_keeps_it_while_its_worker_lives(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    // 2.5 s of work under a 1 s lease: renewed every third of a second.
    let probe = Probe { sleep: Duration::from_millis(2500), ..Probe::new("probe") };
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![std::sync::Arc::new(probe)]);
    let ids = clients(&app, "Long", 3).await;
    let a = start_worker(&state, settings(2, Duration::from_secs(1)));
    let b = start_worker(&state, settings(2, Duration::from_secs(1)));
    let run = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(20)).await, "succeeded");
    for id in &ids {
        assert_eq!(stats.executions(*id), 1, "reaped while its worker was alive and run again");
        assert_eq!(task(&pool, run, *id).await.1, 1);
    }
    a.stop().await;
    b.stop().await;
}

/// A claim reads its tasks' clients in its own transaction: each client once, however
/// many of the batch's tasks are its, and the claim is committed when it returns (another
/// worker cannot take the same tasks).
#[sqlx::test]
async fn a_claim_brings_each_client_of_its_tasks_once(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![std::sync::Arc::new(Probe::new("probe"))]);
    let ids = clients(&app, "Claimed", 3).await;
    start_run(&state, "probe", &ids, false).await;
    start_run(&state, "probe", &ids[..1], false).await;
    let batch = store::runs::claim_with_clients(&pool, "w1", 30.0, 10).await.unwrap();
    assert_eq!(batch.tasks.len(), 4, "three tasks of the first run, one of the second");
    let mut brought: Vec<Uuid> = batch.clients.iter().map(|c| c.id).collect();
    brought.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(brought, expected, "each client once, the shared one too");
    assert!(batch.tasks.iter().all(|t| brought.contains(&t.client_id)));
    assert!(store::runs::claim_with_clients(&pool, "w2", 30.0, 10).await.unwrap().tasks.is_empty());
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM engine.tasks WHERE locked_by = 'w1' AND status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(held, 4, "the claim is committed");
}

#[sqlx::test]
async fn renewing_leases_reports_lost_ones_and_canceled_runs(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![std::sync::Arc::new(Probe::new("probe"))]);
    let ids = clients(&app, "Renew", 2).await;
    let run = start_run(&state, "probe", &ids, false).await;
    let held: Vec<Uuid> = store::runs::claim(&pool, "w1", 30.0, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(held.len(), 2);
    let stranger = Uuid::new_v4();
    let mut renewed = store::runs::heartbeat(&pool, &[held[0], held[1], stranger], "w1", 30.0).await.unwrap();
    renewed.sort();
    let mut expected = vec![(held[0], false), (held[1], false)];
    expected.sort();
    assert_eq!(renewed, expected, "both held, the stranger not");
    assert!(store::runs::heartbeat(&pool, &held, "w2", 30.0).await.unwrap().is_empty(), "not w2's leases");
    let mut conn = pool.acquire().await.unwrap();
    assert!(store::runs::cancel(&mut conn, run).await.unwrap());
    drop(conn);
    let renewed = store::runs::heartbeat(&pool, &held, "w1", 30.0).await.unwrap();
    assert!(renewed.len() == 2 && renewed.iter().all(|(_, canceled)| *canceled), "{renewed:?}");
}

#[sqlx::test]
async fn tasks_claimed_but_not_started_are_given_back_with_their_attempt(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![std::sync::Arc::new(Probe::new("probe"))]);
    let ids = clients(&app, "Back", 3).await;
    let run = start_run(&state, "probe", &ids, false).await;
    let claimed: Vec<Uuid> = store::runs::claim(&pool, "w1", 30.0, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(claimed.len(), 3);

    assert!(store::runs::release(&pool, "w2", &claimed).await.unwrap().is_empty(), "only the holder gives back");
    assert_eq!(store::runs::release(&pool, "w1", &claimed[..2]).await.unwrap(), [run, run]);
    let rows: Vec<(Uuid, String, i32, Option<String>)> =
        sqlx::query_as("SELECT id, status, attempt, locked_by FROM engine.tasks WHERE run_id = $1")
            .bind(run)
            .fetch_all(&pool)
            .await
            .unwrap();
    for (id, status, attempt, locked_by) in rows {
        if id == claimed[2] {
            assert_eq!((status.as_str(), attempt, locked_by.as_deref()), ("running", 1, Some("w1")));
        } else {
            assert_eq!((status.as_str(), attempt, locked_by), ("queued", 0, None), "given back, attempt returned");
        }
    }
    // Given back and claimed again: still the first attempt.
    let again = store::runs::claim(&pool, "w2", 30.0, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.attempt == 1));

    // A task of a canceled run given back ends canceled, never queued again.
    let mut conn = pool.acquire().await.unwrap();
    assert!(store::runs::cancel(&mut conn, run).await.unwrap());
    drop(conn);
    assert_eq!(store::runs::release(&pool, "w1", &claimed[2..]).await.unwrap(), [run]);
    let (status, finished_at): (String, Option<Value>) =
        sqlx::query_as("SELECT status, to_jsonb(finished_at) FROM engine.tasks WHERE id = $1")
            .bind(claimed[2])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "canceled");
    assert!(finished_at.is_some());
}

/// A claim walks the ready index and stops at its limit, also when the statistics say
/// hardly any task is queued — a big run just created on a table of finished tasks, as
/// here (autoanalyze waits for a tenth of the table to change), or a fresh table: the
/// planner would otherwise read every queued task and sort them, for each claim. Seen in
/// the statistics: the claims read about the tasks they take, not the whole queue.
#[sqlx::test]
async fn a_claim_reads_about_its_limit_not_the_whole_queue_whatever_the_statistics(pool: PgPool) {
    // One connection, so that its statistics are flushed and read back in order.
    let options = pool.connect_options().as_ref().clone();
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    let ids = many_clients(&pool, "Walk", 2000).await;
    let (done, run) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, status) in [(done, "succeeded"), (run, "queued")] {
        sqlx::query("INSERT INTO engine.runs (id, workflow, workflow_version, trigger) VALUES ($1, 'probe', 1, 'api')")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO engine.tasks (id, run_id, client_id, status) SELECT gen_random_uuid(), $1, c, $3 FROM unnest($2::uuid[]) c",
        )
        .bind(id)
        .bind(&ids)
        .bind(status)
        .execute(&pool)
        .await
        .unwrap();
        if status == "succeeded" {
            sqlx::query("ANALYZE engine.tasks").execute(&pool).await.unwrap();
        }
    }
    let read = || async {
        sqlx::query("SELECT pg_stat_force_next_flush()").execute(&pool).await.unwrap();
        sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&pool).await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT coalesce(sum(idx_tup_read), 0)::bigint FROM pg_stat_user_indexes
                     WHERE schemaname = 'engine' AND relname = 'tasks')
                  + (SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables
                     WHERE schemaname = 'engine' AND relname = 'tasks')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = read().await;
    for _ in 0..3 {
        assert_eq!(store::runs::claim(&pool, "walker", 30.0, 10).await.unwrap().len(), 10);
    }
    let entries = read().await - before;
    assert!(entries < 300, "three claims of 10 read {entries} task entries (2,000 queued)");
}

/// A worker whose heartbeat row went stale has its tasks taken back at once (their leases
/// still run for 30 s); a worker beating on time, or one that never wrote a row (an older
/// build: its leases still cover it), keeps them.
#[sqlx::test]
async fn a_stale_heartbeat_hands_its_workers_tasks_back_and_a_fresh_one_keeps_them(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![std::sync::Arc::new(Probe::new("probe"))]);
    let ids = clients(&app, "Beat", 3).await;
    let run = start_run(&state, "probe", &ids, false).await;
    for worker in ["dead", "alive", "rowless"] {
        assert_eq!(store::runs::claim(&pool, worker, 30.0, 1).await.unwrap().len(), 1);
    }
    store::workers::beat(&pool, "dead").await.unwrap();
    store::workers::beat(&pool, "alive").await.unwrap();
    sqlx::query("UPDATE engine.workers SET seen_at = now() - interval '10 seconds' WHERE id = 'dead'")
        .execute(&pool)
        .await
        .unwrap();
    let runs = store::workers::take_over_dead(&pool, 5.0).await.unwrap();
    assert_eq!(runs, vec![run], "one task went back");
    let held = |worker: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM engine.tasks WHERE status = 'running' AND locked_by = $1",
            )
            .bind(worker)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!((held("dead").await, held("alive").await, held("rowless").await), (0, 1, 1));
    assert_eq!(count(&pool, "SELECT count(*) FROM engine.tasks WHERE run_id = $1 AND status = 'queued'", run).await, 1);
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT id FROM engine.workers ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(rows, vec!["alive".to_string()], "the dead worker's row is gone");
    assert!(store::workers::take_over_dead(&pool, 5.0).await.unwrap().is_empty(), "nothing twice");
    // The task comes back to whoever claims next, its attempt counted.
    let again = store::runs::claim(&pool, "alive", 30.0, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

/// A run's task ids ascend in the order its tasks were written (its heap order), so a
/// claim's batch is a run of neighbouring rows; two runs' ids never meet.
#[sqlx::test]
async fn task_ids_follow_their_run_and_the_order_they_were_written_in(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let state = state_with(&app, vec![std::sync::Arc::new(Probe::new("probe"))]);
    let ids = many_clients(&pool, "Order", 300).await;
    let first = start_run(&state, "probe", &ids, false).await;
    let second = start_run(&state, "probe", &ids, false).await;
    for run in [first, second] {
        let by_id: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM engine.tasks WHERE run_id = $1 ORDER BY id")
            .bind(run)
            .fetch_all(&pool)
            .await
            .unwrap();
        let by_place: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM engine.tasks WHERE run_id = $1 ORDER BY ctid")
            .bind(run)
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(by_id.len(), 300);
        assert_eq!(by_id, by_place, "ids ascend in the order the rows were written");
        assert!(by_id.iter().all(|t| t.as_bytes()[..12] == run.as_bytes()[..12]), "ids carry their run's prefix");
        assert!(by_id.iter().all(|t| t.get_version_num() == 7), "still time-ordered v7 ids");
    }
}
