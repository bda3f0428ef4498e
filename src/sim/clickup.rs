//! Simulated ClickUp API v2: folderless and folder lists, tasks with 0-indexed
//! 100-per-page paging, archived tasks, the `{err, ECODE}` errors and the plan's rate
//! limit. Any space, folder or list id exists (empty until something is created in it).
//!
//! Rate limit (developer.clickup.com/docs/rate-limits): per token, by the workspace's
//! plan — 100 requests a minute on Free Forever, Unlimited and Business (the default
//! here), 1,000 on Business Plus, 10,000 on Enterprise; `POST /_sim/clickup/config
//! {"plan_limit_per_minute": N}` picks another plan. Over the limit: HTTP 429 with
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds).
//! The page promises those headers "on error", so (stricter reading) only the 429
//! carries them: a client cannot count on seeing its budget shrink. Windows are fixed
//! minutes per token, starting at the token's first call.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Vendor;

/// Fixed by the real API.
pub const PAGE_SIZE: usize = 100;
/// Requests per minute per token on Free Forever, Unlimited and Business, the plans
/// an agency starts on (Business Plus 1,000, Enterprise 10,000).
pub const DEFAULT_PLAN_LIMIT_PER_MINUTE: u64 = 100;
/// The space that folders of the simulated workspace belong to.
const FOLDER_SPACE: &str = "90120000001";

struct SimList {
    id: String,
    name: String,
    space_id: String,
    folder_id: Option<String>,
}

#[derive(Default)]
struct Store {
    lists: Vec<SimList>,
    /// Tasks by list id, in creation order.
    tasks: BTreeMap<String, Vec<Value>>,
    tasks_created: u64,
    /// Per token: start of the current one-minute window (Unix s) and calls in it.
    windows: HashMap<String, (u64, u64)>,
}

pub struct State {
    store: Mutex<Store>,
    /// The workspace plan's requests per minute per token; survives a reset.
    plan_limit: AtomicU64,
}

impl Default for State {
    fn default() -> Self {
        Self { store: Mutex::default(), plan_limit: AtomicU64::new(DEFAULT_PLAN_LIMIT_PER_MINUTE) }
    }
}

impl State {
    pub fn created(&self) -> BTreeMap<String, u64> {
        let store = self.lock();
        BTreeMap::from([("lists".to_string(), store.lists.len() as u64), ("tasks".to_string(), store.tasks_created)])
    }

    pub fn reset(&self) {
        *self.lock() = Store::default();
    }

    /// The tasks of a list as the API would return them (for tests and the demo).
    pub fn tasks(&self, list_id: &str) -> Vec<Value> {
        self.lock().tasks.get(list_id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("clickup sim lock")
    }

    /// The plan's requests per minute per token.
    pub fn plan_limit(&self) -> u64 {
        self.plan_limit.load(Ordering::Relaxed)
    }

    /// Puts the workspace on a plan with `per_minute` requests per minute per token.
    pub fn set_plan_limit(&self, per_minute: u64) {
        self.plan_limit.store(per_minute.max(1), Ordering::Relaxed);
    }

    /// Counts the call against the token's minute; past the plan limit, ClickUp's 429.
    #[allow(clippy::result_large_err)] // the refusal is the handler's answer as is
    fn meter(&self, token: &str) -> Result<(), Response> {
        let now = now_secs();
        let limit = self.plan_limit();
        let mut store = self.lock();
        let window = store.windows.entry(token.to_string()).or_insert((now, 0));
        if now >= window.0 + 60 {
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 <= limit {
            return Ok(());
        }
        Err(rate_limited(limit, window.0 + 60))
    }
}

impl Vendor for State {
    fn routes(self: Arc<Self>) -> Router {
        router().with_state(self)
    }
    fn throttled(&self) -> Response {
        throttled()
    }
    fn fault(&self) -> Response {
        fault()
    }
    fn created(&self) -> BTreeMap<String, u64> {
        State::created(self)
    }
    fn reset(&self) {
        State::reset(self)
    }
    /// ClickUp's `ECODE`.
    fn error_code(&self, body: &Value) -> Option<String> {
        body["ECODE"].as_str().map(String::from)
    }
    /// `POST /_sim/clickup/config {"plan_limit_per_minute": N}`: the workspace's plan.
    fn controls(self: Arc<Self>) -> Option<Router> {
        Some(Router::new().route("/config", post(configure).get(config)).with_state(self))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    plan_limit_per_minute: u64,
}

async fn configure(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Config>(&body) {
        Ok(c) if c.plan_limit_per_minute > 0 => {
            state.set_plan_limit(c.plan_limit_per_minute);
            config(AxumState(state)).await.into_response()
        }
        Ok(_) => (StatusCode::BAD_REQUEST, "plan_limit_per_minute must be at least 1").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("expected {{\"plan_limit_per_minute\": N}}: {e}")).into_response(),
    }
}

async fn config(AxumState(state): AxumState<Arc<State>>) -> Json<Value> {
    Json(json!({ "plan_limit_per_minute": state.plan_limit() }))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/{version}/space/{id}/list", get(get_space_lists).post(create_space_list))
        .route("/api/{version}/folder/{id}/list", get(get_folder_lists).post(create_folder_list))
        .route("/api/{version}/list/{id}/task", get(get_tasks).post(create_task))
        .route("/api/{version}/task/{id}", put(update_task))
}

/// The 429 of a spent minute: the rate-limit headers (Reset in Unix seconds) and, as the
/// body is undocumented, ClickUp's usual envelope with the code clients report seeing.
fn rate_limited(limit: u64, reset_at: u64) -> Response {
    let headers = [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", reset_at.to_string()),
    ];
    (StatusCode::TOO_MANY_REQUESTS, headers, Json(json!({"err": "Rate limit reached", "ECODE": "APP_002"})))
        .into_response()
}

/// The 429 of the simulator's configured rate (`/_sim/config`): nothing left until the next second.
pub fn throttled() -> Response {
    rate_limited(DEFAULT_PLAN_LIMIT_PER_MINUTE, now_secs() + 1)
}

pub fn fault() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"err": "Internal Server Error", "ECODE": "APP_001"})))
        .into_response()
}

fn error(status: StatusCode, err: &str, ecode: &str) -> Response {
    (status, Json(json!({"err": err, "ECODE": ecode}))).into_response()
}

/// Personal tokens (`pk_…`) as sent, or OAuth tokens as `Bearer …`.
#[allow(clippy::result_large_err)] // the refusal is the handler's answer as is
fn authorize(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::trim) else {
        return Err(error(StatusCode::UNAUTHORIZED, "Authorization header required", "OAUTH_017"));
    };
    let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
    let valid = (value.starts_with("pk_") && value.len() > 3) || (value.starts_with("Bearer ") && !token.is_empty());
    if !valid {
        return Err(error(StatusCode::UNAUTHORIZED, "Token invalid", "OAUTH_025"));
    }
    state.meter(token)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn now_ms() -> String {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default().to_string()
}

fn list_json(list: &SimList, task_count: usize) -> Value {
    let folder = match &list.folder_id {
        Some(id) => json!({"id": id, "name": format!("Folder {id}"), "hidden": false, "access": true}),
        // Folderless lists sit in a hidden folder of the space.
        None => json!({"id": format!("{}0", list.space_id), "name": "hidden", "hidden": true, "access": true}),
    };
    json!({
        "id": list.id, "name": list.name, "orderindex": 0, "content": "", "status": null, "priority": null,
        "assignee": null, "task_count": task_count, "due_date": null, "start_date": null,
        "folder": folder, "space": {"id": list.space_id, "name": "Clients", "access": true},
        "archived": false, "override_statuses": false, "permission_level": "create",
    })
}

fn lists_in(state: &State, space: Option<&str>, folder: Option<&str>) -> Value {
    let store = state.lock();
    let lists: Vec<Value> = store
        .lists
        .iter()
        .filter(|l| match folder {
            Some(f) => l.folder_id.as_deref() == Some(f),
            None => l.folder_id.is_none() && Some(l.space_id.as_str()) == space,
        })
        .map(|l| list_json(l, store.tasks.get(&l.id).map_or(0, Vec::len)))
        .collect();
    json!({ "lists": lists })
}

fn create_list(state: &State, space_id: &str, folder_id: Option<&str>, body: &[u8]) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON body", "INPUT_000");
    };
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "List name invalid", "INPUT_005");
    };
    let mut store = state.lock();
    let taken = store.lists.iter().any(|l| {
        l.name == name && l.folder_id.as_deref() == folder_id && (folder_id.is_some() || l.space_id == space_id)
    });
    if taken {
        // ClickUp refuses a second list of the same name in one place (code from memory).
        return error(StatusCode::BAD_REQUEST, "List name taken", "SUBCAT_016");
    }
    let list = SimList {
        id: (901_200_000_000u64 + store.lists.len() as u64 + 1).to_string(),
        name: name.to_string(),
        space_id: space_id.to_string(),
        folder_id: folder_id.map(str::to_string),
    };
    let out = list_json(&list, 0);
    store.lists.push(list);
    Json(out).into_response()
}

async fn get_space_lists(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match authorize(&state, &headers) {
        Ok(()) => Json(lists_in(&state, Some(&id), None)).into_response(),
        Err(e) => e,
    }
}

async fn create_space_list(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match authorize(&state, &headers) {
        Ok(()) => create_list(&state, &id, None, &body),
        Err(e) => e,
    }
}

async fn get_folder_lists(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match authorize(&state, &headers) {
        Ok(()) => Json(lists_in(&state, None, Some(&id))).into_response(),
        Err(e) => e,
    }
}

async fn create_folder_list(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match authorize(&state, &headers) {
        Ok(()) => create_list(&state, FOLDER_SPACE, Some(&id), &body),
        Err(e) => e,
    }
}

async fn get_tasks(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e;
    }
    let page = query.iter().find(|(k, _)| k == "page").map_or(Ok(0), |(_, v)| v.parse::<usize>());
    let Ok(page) = page else {
        return error(StatusCode::BAD_REQUEST, "Page must be a number", "INPUT_000");
    };
    // Archived tasks are kept, but listed only when asked for (and then only they are:
    // the stricter reading, so a client must ask both ways to see every task).
    let archived = query.iter().any(|(k, v)| k == "archived" && v == "true");
    let store = state.lock();
    let all: Vec<&Value> = store
        .tasks
        .get(&id)
        .map(|tasks| tasks.iter().filter(|t| t["archived"].as_bool().unwrap_or(false) == archived).collect())
        .unwrap_or_default();
    let tasks: Vec<&Value> = all.iter().skip(page.saturating_mul(PAGE_SIZE)).take(PAGE_SIZE).copied().collect();
    let last_page = (page + 1).saturating_mul(PAGE_SIZE) >= all.len();
    Json(json!({ "tasks": tasks, "last_page": last_page })).into_response()
}

/// `PUT /task/{id}`: what the simulator needs of Update Task — `archived`, `name`, `status`.
async fn update_task(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, task_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON body", "INPUT_000");
    };
    let mut store = state.lock();
    let Some(task) = store.tasks.values_mut().flatten().find(|t| t["id"] == task_id.as_str()) else {
        // Code from memory: ClickUp's "not found" for a task id it does not know.
        return error(StatusCode::NOT_FOUND, "Task not found, deleted", "ITEM_013");
    };
    if let Some(archived) = body.get("archived").and_then(Value::as_bool) {
        task["archived"] = json!(archived);
    }
    if let Some(name) = body.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
        task["name"] = json!(name);
    }
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        task["status"]["status"] = json!(status);
    }
    task["date_updated"] = json!(now_ms());
    Json(task.clone()).into_response()
}

fn priority_json(priority: u64) -> Value {
    let (name, color) = match priority {
        1 => ("urgent", "#f50000"),
        2 => ("high", "#f8ae00"),
        3 => ("normal", "#6fddff"),
        _ => ("low", "#d8d8d8"),
    };
    json!({"id": priority.to_string(), "priority": name, "color": color, "orderindex": priority.to_string()})
}

async fn create_task(
    AxumState(state): AxumState<Arc<State>>,
    Path((_, list_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON body", "INPUT_000");
    };
    let Some(name) = body.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "Task name invalid", "INPUT_005");
    };
    let priority = match body.get("priority") {
        None | Some(Value::Null) => Value::Null,
        Some(p) => match p.as_u64().filter(|p| (1..=4).contains(p)) {
            Some(p) => priority_json(p),
            None => return error(StatusCode::BAD_REQUEST, "Priority invalid", "INPUT_006"),
        },
    };
    let due_date = match body.get("due_date") {
        None | Some(Value::Null) => Value::Null,
        Some(d) => match d.as_i64().or_else(|| d.as_str().and_then(|s| s.parse().ok())) {
            Some(ms) => Value::String(ms.to_string()),
            None => return error(StatusCode::BAD_REQUEST, "Due date invalid", "INPUT_007"),
        },
    };
    let description = body
        .get("markdown_content")
        .or_else(|| body.get("markdown_description"))
        .or_else(|| body.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tags: Vec<Value> = body
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(|n| json!({"name": n, "tag_fg": "#800000", "tag_bg": "#2ecd6f"}))
                .collect()
        })
        .unwrap_or_default();
    let id = super::new_id("86");
    let created = now_ms();
    let task = json!({
        "id": id, "custom_id": null, "name": name, "text_content": description, "description": description,
        "markdown_description": description,
        "status": {"status": body.get("status").and_then(Value::as_str).unwrap_or("to do"), "color": "#d3d3d3", "orderindex": 0, "type": "open"},
        "orderindex": "1.00000000000000000000000000000000",
        "date_created": created, "date_updated": created, "date_closed": null, "date_done": null,
        "creator": {"id": 183, "username": "Switchboard", "color": "#827718", "profilePicture": null},
        "assignees": [], "watchers": [], "checklists": [], "tags": tags, "parent": null,
        "priority": priority, "due_date": due_date, "start_date": null, "time_estimate": null,
        "custom_fields": [], "archived": false,
        "list": {"id": list_id}, "folder": {"id": "hidden"}, "space": {"id": FOLDER_SPACE},
        "url": format!("https://app.clickup.com/t/{id}"),
    });
    let mut store = state.lock();
    store.tasks.entry(list_id).or_default().push(task.clone());
    store.tasks_created += 1;
    Json(task).into_response()
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    use super::*;

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        auth: Option<&str>,
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let res = app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn pages_tasks_by_100_and_says_when_the_last_page_is_reached() {
        let state = Arc::new(State::default());
        state.set_plan_limit(10_000); // an Enterprise workspace: 150 creates fit in a minute
        let app = router().with_state(state.clone());
        for i in 0..150 {
            let (status, ..) =
                call(&app, "POST", "/api/v2/list/77/task", Some("pk_1"), json!({"name": format!("t{i}")})).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (_, headers, page0) = call(&app, "GET", "/api/v2/list/77/task?page=0", Some("pk_1"), Value::Null).await;
        assert_eq!(page0["tasks"].as_array().unwrap().len(), 100);
        assert_eq!(page0["last_page"], false);
        assert!(headers.get("x-ratelimit-remaining").is_none(), "the headers are documented on errors only");
        let (_, _, page1) = call(&app, "GET", "/api/v2/list/77/task?page=1", Some("pk_1"), Value::Null).await;
        assert_eq!(page1["tasks"].as_array().unwrap().len(), 50);
        assert_eq!(page1["tasks"][0]["name"], "t100");
        assert_eq!(page1["last_page"], true);
        assert_eq!(state.created()["tasks"], 150);
    }

    #[tokio::test]
    async fn checks_the_token_and_refuses_duplicate_list_names() {
        let state = Arc::new(State::default());
        let app = router().with_state(state.clone());
        let (status, _, body) = call(&app, "GET", "/api/v2/space/1/list", None, Value::Null).await;
        assert_eq!((status, body["ECODE"].as_str()), (StatusCode::UNAUTHORIZED, Some("OAUTH_017")));
        let (status, _, body) = call(&app, "GET", "/api/v2/space/1/list", Some("nope"), Value::Null).await;
        assert_eq!((status, body["ECODE"].as_str()), (StatusCode::UNAUTHORIZED, Some("OAUTH_025")));
        let (status, _, list) = call(&app, "POST", "/api/v2/space/1/list", Some("pk_1"), json!({"name": "Acme"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["space"]["id"], "1");
        let (status, _, body) = call(&app, "POST", "/api/v2/space/1/list", Some("pk_1"), json!({"name": "Acme"})).await;
        assert_eq!((status, body["ECODE"].as_str()), (StatusCode::BAD_REQUEST, Some("SUBCAT_016")));
        // The same name is fine in a folder, and folder lists are not folderless lists of the space.
        let (status, ..) =
            call(&app, "POST", "/api/v2/folder/5/list", Some("Bearer oauth"), json!({"name": "Acme"})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, lists) = call(&app, "GET", "/api/v2/space/1/list", Some("pk_1"), Value::Null).await;
        assert_eq!(lists["lists"].as_array().unwrap().len(), 1);
        assert_eq!(state.created()["lists"], 2);
        let (status, _, body) =
            call(&app, "POST", "/api/v2/list/9/task", Some("pk_1"), json!({"name": "x", "priority": 7})).await;
        assert_eq!((status, body["ECODE"].as_str()), (StatusCode::BAD_REQUEST, Some("INPUT_006")));
    }

    /// developer.clickup.com/docs/rate-limits: 100 requests a minute per token by default;
    /// the 101st answers 429 with the three headers, another token has its own minute.
    #[tokio::test]
    async fn the_plan_limit_is_per_token_and_answers_429_with_the_reset() {
        let state = Arc::new(State::default());
        let app = router().with_state(state.clone());
        for _ in 0..DEFAULT_PLAN_LIMIT_PER_MINUTE {
            let (status, ..) = call(&app, "GET", "/api/v2/list/1/task", Some("pk_a"), Value::Null).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, headers, body) = call(&app, "GET", "/api/v2/list/1/task", Some("pk_a"), Value::Null).await;
        assert_eq!((status, body["ECODE"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("APP_002")));
        assert_eq!(headers["x-ratelimit-limit"], "100");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        let reset: u64 = headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!((now_secs() + 1..=now_secs() + 60).contains(&reset), "Unix seconds within the minute: {reset}");
        let (status, ..) = call(&app, "GET", "/api/v2/list/1/task", Some("pk_b"), Value::Null).await;
        assert_eq!(status, StatusCode::OK, "the limit is per token");
        // Business Plus: the same token has room again at once.
        state.set_plan_limit(1000);
        let (status, ..) = call(&app, "GET", "/api/v2/list/1/task", Some("pk_a"), Value::Null).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn archived_tasks_are_kept_but_listed_only_when_asked_for() {
        let state = Arc::new(State::default());
        let app = router().with_state(state.clone());
        let (_, _, kept) = call(&app, "POST", "/api/v2/list/7/task", Some("pk_1"), json!({"name": "kept"})).await;
        let (_, _, gone) = call(&app, "POST", "/api/v2/list/7/task", Some("pk_1"), json!({"name": "gone"})).await;
        assert_eq!(gone["archived"], false);
        let uri = format!("/api/v2/task/{}", gone["id"].as_str().unwrap());
        let (status, _, archived) = call(&app, "PUT", &uri, Some("pk_1"), json!({"archived": true})).await;
        assert_eq!((status, &archived["archived"]), (StatusCode::OK, &json!(true)));
        let names =
            |page: &Value| page["tasks"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect::<Vec<_>>();
        let (_, _, live) = call(&app, "GET", "/api/v2/list/7/task?archived=false", Some("pk_1"), Value::Null).await;
        assert_eq!(names(&live), [kept["name"].clone()]);
        let (_, _, plain) = call(&app, "GET", "/api/v2/list/7/task", Some("pk_1"), Value::Null).await;
        assert_eq!(names(&plain), [kept["name"].clone()]);
        let (_, _, hidden) = call(&app, "GET", "/api/v2/list/7/task?archived=true", Some("pk_1"), Value::Null).await;
        assert_eq!(names(&hidden), [json!("gone")]);
        let (status, _, body) = call(&app, "PUT", "/api/v2/task/nope", Some("pk_1"), json!({"archived": true})).await;
        assert_eq!((status, body["ECODE"].as_str()), (StatusCode::NOT_FOUND, Some("ITEM_013")));
    }
}
