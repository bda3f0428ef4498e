//! Events: written in the same transaction as the change (rolled back with it),
//! by every producer (clients, runs driven by a worker, alerts, reports), and
//! served by the feed in order, after an id, filtered by type wildcards.

use std::{sync::Arc, time::Duration};

use axum::http::{Method, StatusCode};
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    api::events::SETTLE,
    domain::events::EventType,
    store::{
        self,
        alerts::{NewAlert, Severity},
        events,
    },
    workflows::Workflow,
};
use uuid::Uuid;

use crate::{
    engine::{Probe, clients, finished, settings, start_run, start_worker, state_with},
    support::TestApp,
    webhooks::endpoint,
};

/// (type, data) of every stored event, oldest first.
async fn stored(pool: &PgPool) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT type, data FROM engine.events ORDER BY id").fetch_all(pool).await.unwrap()
}

async fn types(pool: &PgPool) -> Vec<String> {
    stored(pool).await.into_iter().map(|(t, _)| t).collect()
}

/// The feed's page for `query`, after the settle delay.
async fn feed(app: &TestApp, query: &str) -> Value {
    let res = app.get(&format!("/v1/events{query}")).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[sqlx::test]
async fn the_feed_lists_events_oldest_first_after_an_id_filtered_by_type(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let a = app.create_client(json!({"name": "Acme"})).await;
    app.create_client(json!({"name": "Bravo"})).await;
    let res =
        app.patch(&format!("/v1/clients/{}", a["id"].as_str().unwrap()), json!({"industry": "coffee"})).send().await;
    assert_eq!(res.status, StatusCode::OK);
    let updated = res.json();
    let res =
        app.post("/v1/workflows/daily-monitoring/runs", json!({"client_ids": ["acme"], "dry_run": true})).send().await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let run_id = res.json()["id"].as_str().unwrap().to_string();

    tokio::time::sleep(SETTLE + Duration::from_millis(100)).await;

    let all = feed(&app, "").await;
    let kinds: Vec<&str> = all["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["client.created", "client.created", "client.updated", "run.started"]);
    let all_ids = ids(&all);
    let mut sorted = all_ids.clone();
    sorted.sort();
    assert_eq!(all_ids, sorted, "oldest (smallest UUIDv7) first");
    assert_eq!(all["last_id"], all_ids[3].as_str());
    assert_eq!(all["has_more"], false);
    let e = &all["data"][2];
    let mut keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["created_at", "data", "id", "timestamp", "type"]);
    assert_eq!(e["timestamp"], e["created_at"]);
    for item in all["data"].as_array().unwrap() {
        let t: EventType = item["type"].as_str().unwrap().parse().unwrap();
        (switchboard::events::catalogue::payload(t).check)(&item["data"]).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    let at = e["created_at"].as_str().unwrap();
    assert!(at.len() == 24 && at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");
    assert_eq!(e["data"], updated, "client.updated carries the client after the change");
    assert_eq!(all["data"][3]["data"]["id"], run_id.as_str());
    assert_eq!(all["data"][3]["data"]["dry_run"], true);

    // Paging with `after` = last_id.
    let first = feed(&app, "?limit=3").await;
    assert_eq!((ids(&first), first["has_more"].clone()), (all_ids[..3].to_vec(), json!(true)));
    let rest = feed(&app, &format!("?limit=3&after={}", first["last_id"].as_str().unwrap())).await;
    assert_eq!((ids(&rest), rest["has_more"].clone()), (all_ids[3..].to_vec(), json!(false)));
    let none = feed(&app, &format!("?after={}", all_ids[3])).await;
    assert!(none["data"].as_array().unwrap().is_empty());
    assert_eq!(none["last_id"], all_ids[3].as_str(), "nothing new: last_id stays the `after` sent");

    // Types, with wildcards.
    assert_eq!(ids(&feed(&app, "?types=client.*").await), all_ids[..3].to_vec());
    assert_eq!(ids(&feed(&app, "?types=run.*").await), all_ids[3..].to_vec());
    assert_eq!(ids(&feed(&app, "?types=client.updated,%20run.started").await), all_ids[2..].to_vec());
    assert_eq!(ids(&feed(&app, "?types=*").await), all_ids);
    assert!(feed(&app, "?types=alert.created").await["data"].as_array().unwrap().is_empty());

    for bad in ["?types=run.nope", "?types=ru*", "?after=42", "?limit=0", "?cursor=x"] {
        let res = app.get(&format!("/v1/events{bad}")).send().await;
        assert_eq!(res.status.as_u16(), 400, "{bad}: {}", res.text());
    }
    let res = app.get("/v1/events?types=run.nope").send().await;
    assert_eq!(res.error_fields(), vec!["types"]);

    // A new event is held back until it settles (a slower transaction could still commit a smaller id).
    let mut tx = pool.begin().await.unwrap();
    let fresh = events::emit(&mut tx, EventType::ReportReady, &json!({})).await.unwrap().to_string();
    tx.commit().await.unwrap();
    assert!(!ids(&feed(&app, "").await).contains(&fresh));
    tokio::time::sleep(SETTLE + Duration::from_millis(100)).await;
    assert_eq!(ids(&feed(&app, &format!("?after={}", all_ids[3])).await), vec![fresh]);

    // Scope: workflows:read or clients:read (see the test below for which types each reads).
    let reader = app.token(&["workflows:read"]).await;
    assert_eq!(app.request(Method::GET, "/v1/events").token(&reader).send().await.status, StatusCode::OK);
    let other = app.token(&["audit:read"]).await;
    app.request(Method::GET, "/v1/events").token(&other).send().await.problem(403, "missing_scope");
}

/// Make's polling triggers read newest first and stop at the newest item they already have:
/// `order=desc` lists newest first, `after` stops there, `before` = `last_id` pages older.
#[sqlx::test]
async fn the_feed_lists_newest_first_for_polling_triggers(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    for name in ["Acme", "Bravo", "Charlie", "Delta", "Echo"] {
        app.create_client(json!({"name": name})).await;
    }
    tokio::time::sleep(SETTLE + Duration::from_millis(100)).await;
    let oldest_first = ids(&feed(&app, "").await);
    assert_eq!(oldest_first.len(), 5);
    let newest_first: Vec<String> = oldest_first.iter().rev().cloned().collect();

    let first = feed(&app, "?order=desc&limit=2").await;
    assert_eq!(ids(&first), newest_first[..2]);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["last_id"], newest_first[1].as_str());
    let second = feed(&app, &format!("?order=desc&limit=2&before={}", newest_first[1])).await;
    assert_eq!(ids(&second), newest_first[2..4], "before pages older");
    let last = feed(&app, &format!("?order=desc&limit=2&before={}", newest_first[3])).await;
    assert_eq!(ids(&last), newest_first[4..]);
    assert_eq!(last["has_more"], false);

    // A poll that already has the third newest gets only what is newer, newest first.
    let poll = feed(&app, &format!("?order=desc&after={}", newest_first[2])).await;
    assert_eq!(ids(&poll), newest_first[..2]);
    let nothing = feed(&app, &format!("?order=desc&after={}", newest_first[0])).await;
    assert!(ids(&nothing).is_empty());
    assert_eq!(nothing["last_id"], Value::Null, "an empty newest-first page has no id to page from");

    // Oldest first, `before` bounds the page from above too.
    let bounded = feed(&app, &format!("?before={}", oldest_first[2])).await;
    assert_eq!(ids(&bounded), oldest_first[..2]);

    for bad in ["?order=newest", "?before=yesterday"] {
        let res = app.get(&format!("/v1/events{bad}")).send().await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.text());
        let field = if bad.contains("order") { "order" } else { "before" };
        assert!(res.text().contains(field), "{bad}: the problem names `{field}`: {}", res.text());
    }
}

#[sqlx::test]
async fn an_event_commits_or_rolls_back_with_its_change(pool: PgPool) {
    let app = crate::webhooks::local_app(pool.clone()).await;
    endpoint(&app, "http://127.0.0.1:9/hook", json!(["*"])).await;

    // Refused changes write no event (and no delivery).
    app.post("/v1/clients", json!({"name": ""})).send().await.problem(422, "validation_failed");
    app.create_client(json!({"name": "Acme", "slug": "acme"})).await;
    app.post("/v1/clients", json!({"name": "Acme again", "slug": "acme"})).send().await.problem(409, "slug_taken");
    app.patch("/v1/clients/acme", json!({"accounts": {"meta": "not-an-account"}}))
        .send()
        .await
        .problem(422, "validation_failed");
    assert_eq!(types(&pool).await, vec!["client.created"]);
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 1);

    // A transaction rolled back after the emit leaves neither the event nor its delivery.
    let mut tx = pool.begin().await.unwrap();
    events::emit(&mut tx, EventType::ReportReady, &json!({"id": "r1"})).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(types(&pool).await, vec!["client.created"]);
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 1);

    // Archiving is an update.
    let res = app.delete("/v1/clients/acme").send().await;
    assert_eq!(res.status, StatusCode::OK);
    let (kind, data) = stored(&pool).await.pop().unwrap();
    assert_eq!((kind.as_str(), &data["status"]), ("client.updated", &json!("archived")));
    assert_eq!(data, res.json());
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 2);
}

#[sqlx::test]
async fn alert_created_is_emitted_for_new_alerts_only(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let client: Uuid = app.create_client(json!({"name": "Acme"})).await["id"].as_str().unwrap().parse().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 6, 14).unwrap();
    let alert = |subject: &str, severity| NewAlert {
        kind: "spend_anomaly",
        severity,
        subject: subject.into(),
        message: format!("{subject} spend anomaly"),
        data: json!({"ratio": 2.1}),
    };
    let record = |alerts: Vec<NewAlert>| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let recorded = store::alerts::record(&mut tx, client, None, day, &alerts).await.unwrap();
            tx.commit().await.unwrap();
            recorded
        }
    };
    let first = record(vec![alert("meta", Severity::Warning)]).await;
    // The same finding again (deduplicated into the same alert) plus a new one.
    let second = record(vec![alert("meta", Severity::Critical), alert("google_ads", Severity::Warning)]).await;
    assert_eq!(second.iter().find(|a| a.subject == "meta").unwrap().id, first[0].id);

    let alerts: Vec<Value> =
        stored(&pool).await.into_iter().filter(|(t, _)| t == "alert.created").map(|(_, d)| d).collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0], serde_json::to_value(&first[0]).unwrap(), "the alert as the API shows it");
    assert_eq!(alerts[1]["subject"], "google_ads");
}

#[sqlx::test]
async fn report_ready_is_emitted_once_when_the_delivery_is_settled(pool: PgPool) {
    use switchboard::domain::report::{DriveDelivery, ReportLinks};
    let app = TestApp::new(pool.clone()).await;
    let client: Uuid = app.create_client(json!({"name": "Acme"})).await["id"].as_str().unwrap().parse().unwrap();
    let figures = json!({});
    let mut conn = pool.acquire().await.unwrap();
    let report = store::reports::insert(
        &mut conn,
        &store::reports::NewReport {
            client_id: client,
            run_id: None,
            kind: "weekly-report",
            period_start: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            period_end: NaiveDate::from_ymd_opt(2026, 6, 7).unwrap(),
            body: "# Week",
            figures: &figures,
            model: None,
            input_tokens: None,
            output_tokens: None,
        },
    )
    .await
    .unwrap();
    // Stored is not ready: nothing is announced before the delivery is settled.
    assert!(!types(&pool).await.contains(&"report.ready".to_string()));

    // Without PUBLIC_BASE_URL the URL fields are left out; a skip names its reason.
    let skipped = DriveDelivery::skipped("the client has no Drive folder (accounts.drive_folder)");
    let event = store::reports::mark_ready(&mut conn, &report, &ReportLinks::new(None), &skipped).await.unwrap();
    assert!(event.is_some());
    let (kind, data) = stored(&pool).await.pop().unwrap();
    assert_eq!(kind, "report.ready");
    assert_eq!(
        data,
        json!({"id": report.id, "client_id": client, "run_id": null, "kind": "weekly-report",
               "period_start": "2026-06-01", "period_end": "2026-06-07", "drive_file_id": null, "drive_url": null,
               "drive_skipped": "the client has no Drive folder (accounts.drive_folder)"})
    );
    // A second settlement (a retried task) records nothing and announces nothing.
    let uploaded = DriveDelivery::Uploaded { file_id: "f1".into(), url: Some("https://drive.google.com/f1".into()) };
    let links = ReportLinks::new(Some("https://sb.example.com"));
    assert_eq!(store::reports::mark_ready(&mut conn, &report, &links, &uploaded).await.unwrap(), None);
    assert_eq!(types(&pool).await.iter().filter(|t| *t == "report.ready").count(), 1);
    let row = store::reports::find(&mut conn, report.id).await.unwrap().unwrap();
    assert_eq!((row.drive_file_id, row.drive_skipped.is_some(), row.ready_at.is_some()), (None, true, true));
}

#[sqlx::test]
async fn runs_driven_by_a_worker_emit_started_and_their_outcome(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let probe = Arc::new(Probe::new("probe"));
    let stats = probe.stats.clone();
    let state = state_with(&app, vec![probe.clone() as Arc<dyn Workflow>]);
    let ids = clients(&app, "Client", 2).await;
    let worker = start_worker(&state, settings(4, Duration::from_secs(5)));

    let ok = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, ok, Duration::from_secs(10)).await, "succeeded");
    stats.doomed.lock().unwrap().insert("Client 01".into());
    let partial = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, partial, Duration::from_secs(10)).await, "partially_failed");
    stats.doomed.lock().unwrap().insert("Client 00".into());
    let failed = start_run(&state, "probe", &ids, false).await;
    assert_eq!(finished(&pool, failed, Duration::from_secs(10)).await, "failed");
    worker.stop().await;

    let runs: Vec<(String, Value)> = stored(&pool).await.into_iter().filter(|(t, _)| t.starts_with("run.")).collect();
    let seen: Vec<(&str, String)> =
        runs.iter().map(|(t, d)| (t.as_str(), d["id"].as_str().unwrap().to_string())).collect();
    assert_eq!(
        seen,
        vec![
            ("run.started", ok.to_string()),
            ("run.succeeded", ok.to_string()),
            ("run.started", partial.to_string()),
            ("run.partially_failed", partial.to_string()),
            ("run.started", failed.to_string()),
            ("run.failed", failed.to_string()),
        ]
    );
    let (_, started) = &runs[0];
    assert_eq!(
        (started["workflow"].clone(), started["trigger"].clone(), started["dry_run"].clone()),
        (json!("probe"), json!("api"), json!(false))
    );
    assert_eq!(started["params"], json!({"level": 0}));
    let (_, done) = &runs[3];
    assert_eq!(
        (done["status"].clone(), done["tasks"]["succeeded"].clone(), done["tasks"]["failed"].clone()),
        (json!("partially_failed"), json!(1), json!(1))
    );
    assert!(done["finished_at"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[sqlx::test]
async fn every_client_change_emits_client_updated(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    let client = app.create_client(json!({"name": "Acme", "accounts": {"whatsapp": "+5511999990001"}})).await;
    // A platform action that links an account to the client.
    let res = app.post("/v1/platforms/google-drive/client-folders", json!({"client": "acme"})).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let (kind, data) = stored(&pool).await.pop().unwrap();
    assert_eq!(kind, "client.updated");
    assert!(data["accounts"]["drive_folder"].is_string(), "{data}");
    // The onboarding workflow, which links more and activates the client.
    let id: Uuid = client["id"].as_str().unwrap().parse().unwrap();
    let worker = start_worker(&app.state, settings(4, Duration::from_secs(10)));
    let run = start_run(&app.state, "client-onboarding", &[id], false).await;
    assert_eq!(finished(&pool, run, Duration::from_secs(20)).await, "succeeded");
    worker.stop().await;
    let updates = app.count("SELECT count(*) FROM engine.events WHERE type = 'client.updated'").await;
    assert!(updates >= 2, "{updates}");
    assert_eq!(
        updates,
        app.count("SELECT count(*) FROM audit.log WHERE action = 'client.update'").await,
        "one event per recorded change"
    );
}

#[sqlx::test]
async fn reading_an_event_type_needs_the_scope_that_reads_its_resource(pool: PgPool) {
    let app = TestApp::new(pool.clone()).await;
    app.create_client(json!({"name": "Private Co", "contacts": [{"name": "Ana", "email": "ana@private.example"}]}))
        .await;
    let res = app
        .post("/v1/workflows/daily-monitoring/runs", json!({"client_ids": ["private-co"], "dry_run": true}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    tokio::time::sleep(SETTLE + Duration::from_millis(100)).await;
    let get = |token: String, query: &'static str| {
        let app = &app;
        async move { app.request(Method::GET, &format!("/v1/events{query}")).token(&token).send().await }
    };

    // workflows:read sees runs, never client records.
    let runs_only = app.token(&["workflows:read"]).await;
    let res = get(runs_only.clone(), "").await;
    assert_eq!(res.status, StatusCode::OK);
    let kinds: Vec<String> =
        res.json()["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["run.started"]);
    assert!(!res.text().contains("ana@private.example"));
    for query in ["?types=client.created", "?types=client.*", "?types=*", "?types=run.*,client.updated"] {
        let res = get(runs_only.clone(), query).await;
        assert_eq!(
            res.problem(403, "missing_scope")["detail"],
            "This token lacks the `clients:read` scope.",
            "{query}"
        );
    }

    // clients:read sees client events, not runs; both scopes see everything.
    let clients_only = app.token(&["clients:read"]).await;
    let kinds = |res: &crate::support::TestResponse| -> Vec<String> {
        res.json()["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(kinds(&get(clients_only.clone(), "").await), vec!["client.created"]);
    get(clients_only, "?types=run.started").await.problem(403, "missing_scope");
    let both = app.token(&["clients:read", "workflows:read"]).await;
    assert_eq!(kinds(&get(both, "").await), vec!["client.created", "run.started"]);

    // A token that reads neither gets nothing.
    get(app.token(&["webhooks:write"]).await, "").await.problem(403, "missing_scope");
}

#[sqlx::test]
async fn subscribing_an_endpoint_needs_the_scope_that_reads_each_type(pool: PgPool) {
    let app = crate::webhooks::local_app(pool.clone()).await;
    let hooks_only = app.token(&["webhooks:write"]).await;
    let create = |token: String, events: Value| {
        let app = &app;
        async move {
            app.request(Method::POST, "/v1/webhook-endpoints")
                .token(&token)
                .json(&json!({"url": "https://hook.eu1.make.com/abc", "events": events}))
                .send()
                .await
        }
    };
    for events in
        [json!(["client.*"]), json!(["*"]), json!(["client.created"]), json!(["run.*"]), json!(["alert.created"])]
    {
        let res = create(hooks_only.clone(), events.clone()).await;
        res.problem(403, "missing_scope");
        assert_eq!(res.error_fields(), vec!["events"], "{events}");
    }
    let runs = app.token(&["webhooks:write", "workflows:read"]).await;
    create(runs.clone(), json!(["client.updated", "run.failed"])).await.problem(403, "missing_scope");
    assert_eq!(app.count("SELECT count(*) FROM engine.webhook_endpoints").await, 0, "nothing written");
    let res = create(runs.clone(), json!(["run.*", "report.ready"])).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    // Widening a subscription later is checked the same way.
    let id = res.json()["id"].as_str().unwrap().to_string();
    let res = app
        .request(Method::PATCH, &format!("/v1/webhook-endpoints/{id}"))
        .token(&runs)
        .json(&json!({"events": ["*"]}))
        .send()
        .await;
    res.problem(403, "missing_scope");
    let all = app.token(&["webhooks:write", "workflows:read", "clients:read"]).await;
    assert_eq!(create(all, json!(["*"])).await.status, StatusCode::CREATED);
}
