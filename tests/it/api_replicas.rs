//! Two API replicas behave as one (issue #9 item 7): two `serve --role api` processes of the
//! real binary on one database. A burst split across both ends in 429 at the shared bound;
//! a retry with the same `Idempotency-Key` landing on the other replica replays the first
//! answer; a token revoked through one is refused by the other at once (NOTIFY; the cache's
//! 60 s TTL is only the fallback); a client changed through one is served changed by the other.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::crash::{FreshDb, Procs, free_port, ready, service};

const BURST: u32 = 20;

/// Polls `check` until it is true or `within` passes; returns how long it took.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_processes_share_limits_idempotency_revocation_and_the_client_cache() {
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs::default();
    let http = crate::support::http_client();
    // No platform is called here: the simulator's address is never used.
    let sim_port = free_port();
    let limits = [("RATE_LIMIT_PER_MINUTE", "60"), ("RATE_LIMIT_BURST", "20")];

    // The first replica migrates and writes the first admin token; then the second.
    let (port_a, port_b) = (free_port(), free_port());
    let a = procs.spawn("api A", service(dir.path(), &db, sim_port, port_a, "api", &limits));
    let base_a = format!("http://127.0.0.1:{port_a}");
    ready(&mut procs, a, &base_a).await;
    let b = procs.spawn("api B", service(dir.path(), &db, sim_port, port_b, "api", &limits));
    let base_b = format!("http://127.0.0.1:{port_b}");
    ready(&mut procs, b, &base_b).await;
    let token_file = dir.path().join("data").join(switchboard::server::BOOTSTRAP_TOKEN_FILE);
    let admin = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    let new_token = async |name: &str| -> (String, String) {
        let res = http
            .post(format!("{base_a}/v1/tokens"))
            .bearer_auth(&admin)
            .json(&json!({"name": name, "scopes": ["clients:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        (body["id"].as_str().unwrap().to_string(), body["token"].as_str().unwrap().to_string())
    };

    // (1) One quota per token: a burst alternating between the replicas counts down across
    // both and ends in 429 at the shared bound, on either.
    let (_, limited) = new_token("burst").await;
    let mut remaining = vec![];
    for i in 0..BURST {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        let res = http.get(format!("{base}/v1/clients")).bearer_auth(&limited).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "request {i}");
        remaining.push(res.headers()["ratelimit-remaining"].to_str().unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(remaining, (0..BURST).rev().collect::<Vec<_>>(), "the replicas count one quota");
    for base in [&base_a, &base_b] {
        let res = http.get(format!("{base}/v1/clients")).bearer_auth(&limited).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "past the shared bound on {base}");
        assert!(res.headers().contains_key("retry-after"));
    }

    // (2) Idempotency: the retry lands on the other replica and replays the first answer.
    let body = json!({"name": "Replica Coffee"});
    let first = http
        .post(format!("{base_a}/v1/clients"))
        .bearer_auth(&admin)
        .header("idempotency-key", "replica-retry-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let created: Value = first.json().await.unwrap();
    let retry = http
        .post(format!("{base_b}/v1/clients"))
        .bearer_auth(&admin)
        .header("idempotency-key", "replica-retry-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), created, "the other replica replays the first answer");
    let id = created["id"].as_str().unwrap().to_string();

    // (3) The client cache: B caches the client, A renames it, B serves the new name.
    let get_name = async |base: &str| -> String {
        let res = http.get(format!("{base}/v1/clients/{id}")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["name"].as_str().unwrap().to_string()
    };
    assert_eq!(get_name(&base_b).await, "Replica Coffee");
    let res = http
        .patch(format!("{base_a}/v1/clients/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Replica Tea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let changed = eventually(Duration::from_secs(5), async || get_name(&base_b).await == "Replica Tea").await;
    assert!(changed.is_some(), "replica B still serves the old client 5 s after the change (cache TTL: 60 s)");

    // (4) Revocation: B has the token cached as valid; A revokes it; B refuses it at once.
    let (revoked_id, revoked) = new_token("revoked").await;
    let status_on_b =
        async || http.get(format!("{base_b}/v1/clients")).bearer_auth(&revoked).send().await.unwrap().status();
    assert_eq!(status_on_b().await, StatusCode::OK);
    let res = http.delete(format!("{base_a}/v1/tokens/{revoked_id}")).bearer_auth(&admin).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let refused = eventually(Duration::from_secs(5), async || status_on_b().await == StatusCode::UNAUTHORIZED).await;
    assert!(refused.is_some(), "replica B still accepts a token revoked on A after 5 s (cache TTL: 60 s)");
    eprintln!(
        "api replicas: the other replica saw the client change after {changed:?}, the revocation after {refused:?}"
    );
}
