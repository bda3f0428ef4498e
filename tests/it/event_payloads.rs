//! Event payloads as Make learns them (issue #11): every event carries the Standard
//! Webhooks `timestamp`, the same in a delivery's body and in the feed; and
//! `POST /v1/webhook-endpoints/{id}/test` sends a realistic sample of any type, shaped
//! like a real event of that type and flagged `"test": true`.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{api::events::SETTLE, domain::events::EventType, events::catalogue};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::webhooks::{RunningDeliverer, endpoint, fast, local_app, signed, wait_for};

async fn accepting_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Accepted"))
        .mount(&server)
        .await;
    server
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[sqlx::test]
async fn a_delivered_body_and_a_feed_item_carry_the_events_timestamp(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = accepting_server().await;
    let (_, secret) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["client.*"])).await;
    let deliverer = RunningDeliverer::start(&pool, fast(2, Duration::from_millis(50)));
    app.create_client(json!({"name": "Acme"})).await;
    wait_for(&app, "SELECT count(*) FROM engine.deliveries WHERE status = 'succeeded'", 1, Duration::from_secs(10))
        .await;
    deliverer.stop().await;

    let received = server.received_requests().await.unwrap();
    let (_, delivered) = signed(&received[0], &secret);
    assert_eq!(keys(&delivered), ["created_at", "data", "id", "timestamp", "type"]);
    let stored: String = sqlx::query_scalar(
        r#"SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM engine.events"#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(delivered["timestamp"], stored.as_str(), "the event's time");
    assert_eq!(delivered["created_at"], delivered["timestamp"]);
    (catalogue::payload(EventType::ClientCreated).check)(&delivered["data"]).expect("a Client");

    tokio::time::sleep(SETTLE + Duration::from_millis(100)).await;
    let feed = app.get("/v1/events").send().await.json();
    assert_eq!(feed["data"][0], delivered, "the feed shows what was delivered, timestamp included");
}

#[sqlx::test]
async fn test_sends_a_realistic_flagged_sample_of_every_type(pool: PgPool) {
    let app = local_app(pool.clone()).await;
    let server = accepting_server().await;
    let (id, secret) = endpoint(&app, &format!("{}/hook", server.uri()), json!(["report.ready", "run.*"])).await;
    let path = format!("/v1/webhook-endpoints/{id}/test");
    for (i, t) in EventType::ALL.into_iter().enumerate() {
        let res = app.post(&path, json!({"event_type": t.as_str()})).send().await;
        assert_eq!(res.status, StatusCode::OK, "{t}: {}", res.text());
        assert_eq!(
            (res.json()["event_type"].clone(), res.json()["succeeded"].clone()),
            (json!(t.as_str()), json!(true))
        );
        let received = server.received_requests().await.unwrap();
        let (webhook_id, body) = signed(&received[i], &secret);
        assert_eq!(body["id"], webhook_id.as_str());
        assert_eq!(body["id"], res.json()["event_id"]);
        assert_eq!((body["type"].as_str(), body["test"].as_bool()), (Some(t.as_str()), Some(true)), "{body}");
        assert_eq!(keys(&body), ["created_at", "data", "id", "test", "timestamp", "type"]);
        (catalogue::payload(t).check)(&body["data"]).unwrap_or_else(|e| panic!("{t}: {e}: {}", body["data"]));
    }
    // No body: the first type the endpoint subscribes to (in the order of the type list).
    let res = app.request(axum::http::Method::POST, &path).token(&app.admin).send().await;
    assert_eq!(res.json()["event_type"], "run.started", "{}", res.text());
    assert_eq!(app.count("SELECT count(*) FROM engine.events").await, 0, "samples are not stored");
    assert_eq!(app.count("SELECT count(*) FROM engine.deliveries").await, 0);

    let sent = server.received_requests().await.unwrap().len();
    for bad in
        [json!({"event_type": "webhook.test"}), json!({"event_type": "client.deleted"}), json!({"event_type": 3})]
    {
        let res = app.post(&path, bad.clone()).send().await;
        res.problem(422, "validation_failed");
        assert_eq!(res.error_fields(), ["event_type"], "{bad}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), sent, "nothing sent for a refused type");
}
