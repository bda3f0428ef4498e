//! Cursor pagination: page sizes, order, stability under concurrent inserts,
//! cursors bound to their list, limits.

use std::collections::HashSet;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::TestApp;

/// Creates `n` clients (names prefixed) and returns their ids in creation order.
async fn create_clients(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let client = app.create_client(json!({"name": format!("{prefix} {i:03}")})).await;
        ids.push(client["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Fetches one page; returns its ids and `next_cursor`.
async fn page(app: &TestApp, path: &str, cursor: Option<&str>) -> (Vec<String>, Option<String>) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = match cursor {
        Some(c) => format!("{path}{sep}cursor={c}"),
        None => path.to_string(),
    };
    let res = app.get(&url).send().await;
    assert_eq!(res.status.as_u16(), 200, "{url}: {}", res.text());
    let body = res.json();
    let ids = body["data"].as_array().unwrap().iter().map(|item| id_of(&item["id"])).collect();
    (ids, body["next_cursor"].as_str().map(String::from))
}

fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What to insert after every page while walking a list.
#[derive(Clone, Copy)]
enum Insert {
    Nothing,
    Clients(usize),
    Token,
}

/// Pages through a list, inserting after every page; returns all ids, the page
/// sizes, and the ids of what was inserted (in order).
async fn walk(app: &TestApp, path: &str, insert: Insert) -> (Vec<String>, Vec<usize>, Vec<String>) {
    let (mut all, mut sizes, mut added, mut cursor) = (Vec::new(), Vec::new(), Vec::new(), None);
    for n in 0.. {
        assert!(n < 100, "pagination does not end");
        let (ids, next) = page(app, path, cursor.as_deref()).await;
        sizes.push(ids.len());
        all.extend(ids);
        match insert {
            Insert::Nothing => {}
            Insert::Clients(k) => added.extend(create_clients(app, &format!("Added {n}"), k).await),
            Insert::Token => {
                app.token_named(&format!("later-{n}"), &["clients:read"]).await;
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    (all, sizes, added)
}

fn assert_unique(ids: &[String]) {
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "an item appeared twice");
}

/// `has_more` says whether `next_cursor` is set, so a Make filter can test a boolean.
#[sqlx::test]
async fn has_more_follows_the_next_cursor(pool: PgPool) {
    let app = TestApp::new(pool).await;
    create_clients(&app, "More", 3).await;
    let first = app.get("/v1/clients?limit=2").send().await.json();
    assert_eq!((first["has_more"].as_bool(), first["next_cursor"].is_string()), (Some(true), true));
    let cursor = first["next_cursor"].as_str().unwrap();
    let last = app.get(&format!("/v1/clients?limit=2&cursor={cursor}")).send().await.json();
    assert_eq!((last["has_more"].as_bool(), last["next_cursor"].is_null()), (Some(false), true));
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
}

#[sqlx::test]
async fn clients_page_in_creation_order(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = create_clients(&app, "Paged Client", 120).await;
    let (ids, sizes, _) = walk(&app, "/v1/clients?limit=50", Insert::Nothing).await;
    assert_eq!(sizes, vec![50, 50, 20]);
    assert_eq!(ids, created, "not every client exactly once in creation order");
}

#[sqlx::test]
async fn default_limit_is_50_and_500_is_allowed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let created = create_clients(&app, "Limit Client", 120).await;
    let (ids, next) = page(&app, "/v1/clients", None).await;
    assert_eq!(ids, created[..50]);
    assert!(next.is_some());
    let (ids, next) = page(&app, "/v1/clients?limit=500", None).await;
    assert_eq!(ids, created);
    assert_eq!(next, None);
    let (ids, next) = page(&app, "/v1/clients?limit=120", None).await;
    assert_eq!((ids.len(), next), (120, None), "an exactly full last page has no next cursor");
    for bad in ["0", "501", "-1", "many"] {
        let res = app.get(&format!("/v1/clients?limit={bad}")).send().await;
        assert_eq!(res.status.as_u16(), 400, "limit={bad}: {}", res.text());
        assert_eq!(res.error_fields(), vec!["limit"], "limit={bad}");
    }
}

#[sqlx::test]
async fn client_pages_are_stable_under_inserts(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let original = create_clients(&app, "Original", 70).await;
    let (ids, _, added) = walk(&app, "/v1/clients?limit=25", Insert::Clients(5)).await;
    assert_unique(&ids);
    let originals: Vec<&String> = ids.iter().filter(|id| original.contains(id)).collect();
    assert_eq!(originals, original.iter().collect::<Vec<_>>(), "an original client was missed or reordered");
    // New clients come only after every original one, in their own creation order.
    let first_new = ids.iter().position(|id| !original.contains(id)).expect("clients added during paging show up");
    assert_eq!(first_new, original.len());
    let news: Vec<&String> = ids[first_new..].iter().collect();
    assert!(news.iter().all(|id| added.contains(id)));
    let in_order: Vec<&String> = added.iter().filter(|id| ids.contains(id)).collect();
    assert_eq!(news, in_order);
}

#[sqlx::test]
async fn audit_log_pages_newest_first_and_stable(pool: PgPool) {
    let app = TestApp::new(pool).await;
    create_clients(&app, "Audited", 60).await;
    let expected: Vec<String> = sqlx::query_scalar::<_, i64>("SELECT id FROM audit.log ORDER BY id DESC")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    assert!(expected.len() >= 60);
    let (ids, sizes, _) = walk(&app, "/v1/audit-log?limit=25", Insert::Clients(3)).await;
    assert_unique(&ids);
    // Newest first: entries written while paging are newer than the cursor, so the
    // walk is exactly the log as it was when it started.
    assert_eq!(ids, expected, "missed, repeated or reordered audit entries");
    assert_eq!(sizes.iter().sum::<usize>(), expected.len());
    assert!(sizes[..sizes.len() - 1].iter().all(|s| *s == 25));
    let newer = app.count("SELECT count(*) FROM audit.log").await as usize - expected.len();
    assert_eq!(newer, 3 * sizes.len());
}

#[sqlx::test]
async fn tokens_page_in_creation_order_and_stable(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for i in 0..54 {
        app.token_named(&format!("paged-{i:02}"), &["clients:read"]).await;
    }
    let expected: Vec<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM auth.api_tokens ORDER BY created_at, id")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
    assert_eq!(expected.len(), 55); // with the admin token
    let (ids, sizes, _) = walk(&app, "/v1/tokens?limit=20", Insert::Token).await;
    assert_unique(&ids);
    assert_eq!(ids[..55], expected[..], "original tokens missed, repeated or out of creation order");
    assert_eq!(sizes[..2], [20, 20]);
    // Tokens issued while paging (one after each page but the last) come only after the originals, in order.
    let res = app.get("/v1/tokens?limit=500").send().await;
    let data = res.json()["data"].as_array().unwrap().clone();
    let names: Vec<String> = ids[55..]
        .iter()
        .map(|id| data.iter().find(|t| id_of(&t["id"]) == *id).unwrap()["name"].as_str().unwrap().to_string())
        .collect();
    let expected_names: Vec<String> = (0..sizes.len() - 1).map(|n| format!("later-{n}")).collect();
    assert_eq!(names, expected_names);
}

#[sqlx::test]
async fn cursors_belong_to_their_list(pool: PgPool) {
    let app = TestApp::new(pool).await;
    create_clients(&app, "Cursor Client", 3).await;
    for i in 0..3 {
        app.token_named(&format!("cursor-{i}"), &["clients:read"]).await;
    }
    let (_, clients_cursor) = page(&app, "/v1/clients?limit=1", None).await;
    let (_, tokens_cursor) = page(&app, "/v1/tokens?limit=1", None).await;
    let (_, audit_cursor) = page(&app, "/v1/audit-log?limit=1", None).await;
    let (clients_cursor, tokens_cursor, audit_cursor) =
        (clients_cursor.unwrap(), tokens_cursor.unwrap(), audit_cursor.unwrap());
    // Each works on its own list.
    for (path, cursor) in
        [("/v1/clients", &clients_cursor), ("/v1/tokens", &tokens_cursor), ("/v1/audit-log", &audit_cursor)]
    {
        let res = app.get(&format!("{path}?cursor={cursor}")).send().await;
        assert_eq!(res.status.as_u16(), 200, "{path}: {}", res.text());
    }
    let crossed = [
        ("/v1/tokens", &clients_cursor),
        ("/v1/audit-log", &clients_cursor),
        ("/v1/clients", &tokens_cursor),
        ("/v1/clients", &audit_cursor),
        ("/v1/tokens", &audit_cursor),
    ];
    for (path, cursor) in crossed {
        let res = app.get(&format!("{path}?cursor={cursor}")).send().await;
        res.problem(400, "invalid_cursor");
        assert_eq!(res.error_fields(), vec!["cursor"], "{path}");
    }
    for garbage in ["not-a-cursor", "%21%21%21", "Y2xpZW50czE6bm90LWEtdXVpZA"] {
        app.get(&format!("/v1/clients?cursor={garbage}")).send().await.problem(400, "invalid_cursor");
    }
}

/// An empty cursor (what a Make mapping of a `null` `next_cursor` sends) is the first page, on
/// every kind of list: by id, by position (search) and by key (audit, prompt templates).
#[sqlx::test]
async fn an_empty_cursor_is_the_first_page(pool: PgPool) {
    let app = TestApp::new(pool).await;
    create_clients(&app, "Empty Cursor", 3).await;
    for path in [
        "/v1/clients?limit=2",
        "/v1/audit-log?limit=2",
        "/v1/prompt-templates?limit=2",
        "/v1/knowledge/search?q=x&limit=2",
    ] {
        let first = app.get(path).send().await;
        assert_eq!(first.status.as_u16(), 200, "{path}: {}", first.text());
        for empty in ["", "%20"] {
            let res = app.get(&format!("{path}&cursor={empty}")).send().await;
            assert_eq!(res.status.as_u16(), 200, "{path} cursor={empty:?}: {}", res.text());
            assert_eq!(res.json(), first.json(), "{path}: an empty cursor is the first page");
        }
    }
}

#[sqlx::test]
async fn knowledge_entries_page_too(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let client = app.create_client(json!({"name": "Knowledge Pages"})).await;
    let c = client["id"].as_str().unwrap();
    let mut created = Vec::new();
    for i in 0..7 {
        let res = app
            .post(&format!("/v1/clients/{c}/knowledge"), json!({"kind": "note", "title": format!("n{i}"), "body": "b"}))
            .send()
            .await;
        created.push(res.json()["id"].as_str().unwrap().to_string());
    }
    let (ids, sizes, _) = walk(&app, &format!("/v1/clients/{c}/knowledge?limit=3"), Insert::Nothing).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(ids, created);
}
