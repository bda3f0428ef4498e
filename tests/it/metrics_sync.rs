//! `POST /v1/clients/{client}/metrics/sync`: concurrent syncs of one client, and the
//! asynchronous form for long windows (`Prefer: respond-async`).

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

async fn fresh_ads_client(app: &TestApp) -> String {
    let accounts = json!({"meta": "1234567890", "google_ads": "123-456-7890"});
    let client = app.create_client(json!({"name": "Fresh Co", "accounts": accounts})).await;
    client["slug"].as_str().unwrap().to_string()
}

fn body() -> Value {
    json!({"from": "2026-06-01", "platforms": ["meta", "google_ads"], "to": "2026-06-07"})
}

/// Inserts seven uncommitted days of `platform` for the client in `tx`: the row locks a
/// concurrent sync holds between storing its first platform and committing.
async fn hold_days(tx: &mut sqlx::PgConnection, client_id: &str, platform: &str) {
    sqlx::query(
        "INSERT INTO costs.daily_metrics (client_id, platform, account_id, date, spend, impressions, clicks,
                                          conversions, conversion_value, currency)
         SELECT $1::uuid, $2, 'held', d::date, 0, 0, 0, 0, 0, 'USD'
         FROM generate_series('2026-06-01'::date, '2026-06-07'::date, '1 day') AS d
         ON CONFLICT (client_id, platform, date) DO UPDATE SET account_id = 'held'",
    )
    .bind(client_id)
    .bind(platform)
    .execute(tx)
    .await
    .unwrap();
}

/// Waits until a statement on `costs.daily_metrics` is blocked on a lock.
async fn until_a_sync_waits(app: &TestApp) {
    for _ in 0..200 {
        let waiting = app
            .count(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND wait_event_type = 'Lock' AND query ILIKE '%costs.daily_metrics%'",
            )
            .await;
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the sync never waited on the held rows");
}

/// The cause of the fuzzer's 500: two syncs naming the platforms in opposite orders
/// stored them in those orders, each locking its first platform's days and then waiting
/// for the other's: a deadlock, which Postgres breaks by failing one of them (40P01).
/// Played here deterministically: the test's transaction stands in for a sync that
/// stored `meta` first and is about to store `google_ads`; the request names
/// `google_ads` first. Every writer now stores in one order (meta, then google_ads),
/// so the request waits for `meta` without holding `google_ads`, and both finish.
#[sqlx::test]
async fn syncs_naming_platforms_in_opposite_orders_do_not_deadlock(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let slug = fresh_ads_client(&app).await;
    let client = app.get(&format!("/v1/clients/{slug}")).send().await.json();
    let client_id = client["id"].as_str().unwrap().to_string();

    let mut other = pool.begin().await.unwrap();
    hold_days(&mut other, &client_id, "meta").await;
    let path = format!("/v1/clients/{slug}/metrics/sync");
    let reversed = json!({"from": "2026-06-01", "platforms": ["google_ads", "meta"], "to": "2026-06-07"});
    let request = tokio::spawn(app.post(&path, reversed).send());
    until_a_sync_waits(&app).await;
    hold_days(&mut other, &client_id, "google_ads").await;
    other.commit().await.unwrap();

    let res = request.await.unwrap();
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let platforms: Vec<Value> =
        res.json()["platforms"].as_array().unwrap().iter().map(|p| p["platform"].clone()).collect();
    assert_eq!(platforms, vec![json!("google_ads"), json!("meta")], "the answer keeps the request's order");
    let held = app.count("SELECT count(*) FROM costs.daily_metrics WHERE account_id = 'held'").await;
    assert_eq!(held, 0, "the request's sync committed after the other and replaced its days");
}

/// The run a 202 answer points at: its id from `Location`, which is the run's own URL.
fn run_of(res: &crate::support::TestResponse) -> uuid::Uuid {
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let body = res.json();
    assert_eq!(body["workflow"], "metrics-sync", "{body}");
    let location = res.header("location").expect("Location").to_string();
    assert_eq!(location, format!("/v1/runs/{}", body["id"].as_str().unwrap()));
    body["id"].as_str().unwrap().parse().unwrap()
}

/// `Prefer: respond-async` (RFC 7240): 202 at once with the run, nothing synced yet;
/// a worker then syncs, and the run's task output is the same outcome a 200 carries.
#[sqlx::test]
async fn prefer_respond_async_answers_202_with_a_run_that_syncs(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let slug = fresh_ads_client(&app).await;
    let path = format!("/v1/clients/{slug}/metrics/sync");
    let res = app.post(&path, body()).header("prefer", "respond-async, wait=5").send().await;
    let run_id = run_of(&res);
    assert_eq!(res.header("preference-applied"), Some("respond-async"));
    assert_eq!(app.count("SELECT count(*) FROM costs.daily_metrics").await, 0, "nothing synced inline");
    let run = app.get(res.header("location").unwrap()).send().await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text());

    let (run, tasks) = crate::workflow_onboarding_reports::finish(&app, run_id).await;
    assert_eq!(run.status.as_str(), "succeeded");
    let output = tasks[0].result.clone().expect("task output");
    assert_eq!(output["status"], "ok", "{output}");
    assert_eq!(output["from"], "2026-06-01");
    let platforms: Vec<&str> =
        output["platforms"].as_array().unwrap().iter().map(|p| p["platform"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["meta", "google_ads"]);
    assert_eq!(app.count("SELECT count(*) FROM costs.daily_metrics").await, 14);
    let audited = app
        .count("SELECT count(*) FROM audit.log WHERE action = 'metrics.sync' AND actor_name = 'workflow:metrics-sync'");
    assert_eq!(audited.await, 1);
}

/// Refused input is refused before any run starts, asynchronous or not.
#[sqlx::test]
async fn respond_async_still_checks_the_input_first(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let slug = fresh_ads_client(&app).await;
    let path = format!("/v1/clients/{slug}/metrics/sync");
    let bad = json!({"from": "2026-06-07", "to": "2026-06-01"});
    app.post(&path, bad).header("prefer", "respond-async").send().await.problem(422, "validation_failed");
    let unknown = json!({"from": "2026-06-01", "to": "2026-06-07", "platforms": ["tiktok"]});
    app.post(&path, unknown).header("prefer", "respond-async").send().await.problem(422, "validation_failed");
    assert_eq!(app.count("SELECT count(*) FROM engine.runs").await, 0);
}

/// Without the preference a sync runs inline, but never past its budget (the request
/// timeout less 5 s): platforms slower than that hand the sync to a run, answered 202
/// in time instead of a 408 after the work was lost.
#[sqlx::test]
async fn a_slow_inline_sync_is_handed_to_a_run_in_time(pool: PgPool) {
    let config = switchboard::config::Config { request_timeout_secs: 6, ..crate::support::test_config() };
    let app = TestApp::with_config(pool, config).await;
    let slug = fresh_ads_client(&app).await;
    let slow = switchboard::sim::Behaviour { latency_ms: 2_500, ..Default::default() };
    app.sim.state.configure("meta", slow);
    let path = format!("/v1/clients/{slug}/metrics/sync");
    let started = std::time::Instant::now();
    let res = app.post(&path, body()).send().await;
    let run_id = run_of(&res);
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "answered after {:?}", started.elapsed());
    assert_eq!(res.header("preference-applied"), None, "not asked for");
    assert_eq!(app.count("SELECT count(*) FROM costs.daily_metrics").await, 0, "the inline pull stored nothing");

    let (run, tasks) = crate::workflow_onboarding_reports::finish(&app, run_id).await;
    assert_eq!(run.status.as_str(), "succeeded", "{:?}", tasks[0].error);
    assert_eq!(tasks[0].result.as_ref().unwrap()["status"], "ok");
    assert_eq!(app.count("SELECT count(*) FROM costs.daily_metrics").await, 14);
}
