//! Simulated Google Drive API v3 and its token endpoint: `POST /token` (JWT bearer
//! grant; claims checked, signature not), `GET /drive/v3/files` (the `q` subset the
//! connector sends — `name`, `mimeType`, `'<id>' in parents`, `trashed` joined by
//! `and`, with `\'` and `\\` escapes — paged by `pageSize`/`pageToken`) and
//! `POST /drive/v3/files` (stores the folder; duplicates allowed, as on Drive; an `id`
//! from `GET /drive/v3/files/generateIds` may be given, and a second create with it
//! answers 409 `fileIdInUse`), `GET /drive/v3/files/{id}`.
//!
//! Drive's ownership rules are enforced: a service account acting as itself (a JWT
//! without `sub`) cannot create in My Drive (403 `storageQuotaExceeded`); Shared Drive
//! items are invisible to a list without `includeItemsFromAllDrives=true` and
//! `supportsAllDrives=true`, and unreachable to a create without `supportsAllDrives`.
//! Parents must exist: `root`, a Shared Drive (the sandbox has [`SANDBOX_SHARED_DRIVE_ID`],
//! more with [`State::add_shared_drive`]) or a folder created here.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State as Shared},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

mod query;
mod upload;

use self::query::parse_query;

use super::{
    Vendor,
    google_ads::{TokenKind, bearer_problem},
    new_id,
};

/// The sandbox's Shared Drive: the service account is a member (Content manager).
pub const SANDBOX_SHARED_DRIVE_ID: &str = "0ASandboxSharedDrive";

/// TEST-ONLY service-account key used by the sandbox (the simulator checks the
/// assertion's claims, not its signature). Generated for this repository with
/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`; it is public,
/// belongs to no Google project and must never be used for a real account.
pub const SANDBOX_SERVICE_ACCOUNT_JSON: &str = concat!(
    r#"{"type":"service_account","project_id":"switchboard-sandbox","private_key_id":"sandbox-test-only-key","private_key":""#,
    "-----BEGIN PRIVATE KEY-----\\n",
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDs1Wrwig9smBkK\\n",
    "Jt+3zqu5+NyXd+hHSXhm/HXm20Sq9Nk/UgyYGTt8yRPlAEBaCZmomsrPMV4hJM75\\n",
    "mXa67Q4ao+NR0OSZO4GzUsNR7U5+vtZYswpIy8K7zBO9GQHTc6hWbycBPTOvYeqK\\n",
    "tb1bXGpqIKYAh5gSbWo6Ap0xPuDyqIkMjKs3Ps7uPktdxOgGorpcsMmpU4RscSGx\\n",
    "iGdTRICEwuixXf69eRDHzBsV7ZIioSlkze2v2dtmwhUNbEqFIDxP7AE6ncnZ5TAI\\n",
    "sWRbgwmlIJd1NvygNF0mGRparzvCFHPO+YWpMnzuyYAcs3FT+zfzQJ59MEuiBnn8\\n",
    "oNkP7cNhAgMBAAECggEAM9QIkRdFhNhMMoKLVugtgIdLjwI4nNEhPjhlfN3jSx5G\\n",
    "JKtKAkcTU52Vcvn5Gzsam2E0nN8K4GnzuX+yEfoqqf3Pk2oJfNce7SVhhR5PnUEa\\n",
    "G1MjHwcoWHyynSFJ2wJmhnPQr167Xtgowa5AACxbRVpbuaXyy6WSJ5vG1q4SAEgh\\n",
    "2THrWLQexEKR3Juacd2i39C3/h4tgRr6L+5/7G1+UnfoNhusJ9IOU78S7LMlFmyM\\n",
    "IOqIqXkgq1k36OV104vYWiaI8svE97dzD9SMxaJ4NH1drzyv9ERkJcndLdeb/5zh\\n",
    "iznkpzlWWNC7kTFJjRKP/yjgIHej47kmYVuGqmDymQKBgQD78/ATmBeyEC8iRsj5\\n",
    "E8D+U9hKFWeDp2lxl1/TvHL0xld6awV5pdUIJ1b9NbUxmTQayNm/TdVBikcU6R44\\n",
    "Xswq9XFRy0fLysMzHnDYwVy/LATbwKJn4R+u9QlYr1gSjJ2x64e4oSpms3XbT1jc\\n",
    "B2zMvh4eMLwIVLsY7cLVyzaHjwKBgQDwo07LMjU5NLafu78C8yp6ACRvLUiBun15\\n",
    "AHp5MNX+skccxd2sek9aKukFP1JxAH1lwshr22ZFmjBUrQJN0jDeu1n3D0q3NICm\\n",
    "EkcstcI6f5PbwK0DikZ5Pw40RPnz7HFq4yIfQ0HI3lirqGPHxYDw6BR761so7nVc\\n",
    "FjkU1Y4ODwKBgAXixfn/NJaBUEiRtMI01u5aERRx+ZAWyhzQN3nfziOvun1uoJsd\\n",
    "56MgICUcKxZ0iMYTaRrR+6hjTZPMeltAw65BO5t4jz3Qh8za6jH2Gm+Q3LAxiNm6\\n",
    "ZZ4VtVkwB3Ove0Obx/jlMvNhP+CWsvG47q69xkBYTRw4toI3k7Sg4a47AoGBAMoY\\n",
    "XRRKFmj03GtKQiE4F3Reqjq0zTAmbzowLKubWB2PnCmOA53XGs2fPBQsGhDNWIMe\\n",
    "EzSCDmJmHDEBG+4/mMt2jRfwv88dSO4wa5YhD/4RJxxntOZEOuuZCVTcmQ9Cg/5A\\n",
    "w2d+FMGd+tovkZ01QhUQ1CM+hlDZ87Zi842LzMIBAoGBAKPGHCi+JHQTgfmnUI6o\\n",
    "mzOU3UbHfT5dFTYpuLXLOP6h5SV7vts7k/ff1R9QHieR8UzMHkoLBdNCIytSoaOT\\n",
    "UGrRINKl8mqNPbzDAH9mxV4GPQw3LqH/XCIBBBMNKdEEXo+MhJK9He664nI466xM\\n",
    "sLFnxnfzvytLwp6+3rI1I9gT\\n",
    "-----END PRIVATE KEY-----\\n",
    r#"","client_email":"sandbox-test-only@switchboard-sandbox.iam.gserviceaccount.com","client_id":"000000000000000000000","token_uri":"https://oauth2.googleapis.com/token"}"#
);

const MAX_PAGE_SIZE: usize = 1000;
/// Drive's MIME type of a folder.
const FOLDER_MIME: &str = "application/vnd.google-apps.folder";

const MAX_GENERATED_IDS: usize = 1000;

#[derive(Debug, Clone)]
pub struct File {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub trashed: bool,
    /// The Shared Drive it is in; `None` in My Drive.
    pub drive_id: Option<String>,
    /// Private key/value pairs of the creating app (`appProperties`).
    pub app_properties: BTreeMap<String, String>,
    /// Bytes uploaded as the file's content (0 for folders).
    pub size: usize,
}

pub struct State {
    files: Mutex<Vec<File>>,
    tokens: AtomicU64,
    /// Ids handed out by `generateIds` and not used yet.
    generated: Mutex<BTreeSet<String>>,
    shared_drives: Mutex<BTreeSet<String>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            files: Mutex::default(),
            tokens: AtomicU64::default(),
            generated: Mutex::default(),
            shared_drives: Mutex::new(BTreeSet::from([SANDBOX_SHARED_DRIVE_ID.to_string()])),
        }
    }
}

impl State {
    pub fn created(&self) -> BTreeMap<String, u64> {
        let files = self.files.lock().expect("drive files");
        let mut created = BTreeMap::new();
        for f in files.iter() {
            let kind = if f.mime_type == FOLDER_MIME { "folders" } else { "files" };
            *created.entry(kind.to_string()).or_insert(0) += 1;
        }
        created
    }

    pub fn reset(&self) {
        self.files.lock().expect("drive files").clear();
        self.generated.lock().expect("drive ids").clear();
        self.tokens.store(0, Ordering::Relaxed);
    }

    /// Makes `id` a Shared Drive the sandbox's accounts are members of.
    pub fn add_shared_drive(&self, id: &str) {
        self.shared_drives.lock().expect("drives").insert(id.to_string());
    }

    /// Where a new item under `parent` lands: `Some(Some(drive))` in a Shared Drive,
    /// `Some(None)` in My Drive, `None` when the parent does not exist.
    fn drive_of(&self, parent: &str) -> Option<Option<String>> {
        if parent == "root" {
            return Some(None);
        }
        if self.shared_drives.lock().expect("drives").contains(parent) {
            return Some(Some(parent.to_string()));
        }
        self.files.lock().expect("drive files").iter().find(|f| f.id == parent).map(|f| f.drive_id.clone())
    }

    /// Everything created so far, in creation order.
    pub fn files(&self) -> Vec<File> {
        self.files.lock().expect("drive files").clone()
    }

    /// Access tokens issued by `POST /token` (shows whether clients cache them).
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
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
    /// The first `errors[].reason` of Drive's error body.
    fn error_code(&self, body: &Value) -> Option<String> {
        super::oauth_error_code(body).or_else(|| body["error"]["errors"][0]["reason"].as_str().map(String::from))
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/token",
            post(|Shared(s): Shared<Arc<State>>, body: Bytes| async move {
                super::google_ads::token_endpoint(&s.tokens, &body, false)
            }),
        )
        .route("/drive/v3/files", get(list).post(create))
        .route("/drive/v3/files/generateIds", get(generate_ids))
        .route("/drive/v3/files/{id}", get(get_file))
        .route("/upload/drive/v3/files", post(upload::upload))
}

/// The classic Google error body Drive answers with.
fn drive_error(
    status: StatusCode,
    domain: &str,
    reason: &str,
    message: &str,
    location: Option<(&str, &str)>,
) -> Response {
    let mut item = json!({"domain": domain, "reason": reason, "message": message});
    if let Some((location, kind)) = location {
        item["location"] = location.into();
        item["locationType"] = kind.into();
    }
    (status, Json(json!({"error": {"errors": [item], "code": status.as_u16(), "message": message}}))).into_response()
}

pub fn throttled() -> Response {
    drive_error(StatusCode::FORBIDDEN, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded", None)
}

pub fn fault() -> Response {
    drive_error(StatusCode::INTERNAL_SERVER_ERROR, "global", "backendError", "Backend Error", None)
}

fn invalid(location: &str) -> Response {
    drive_error(StatusCode::BAD_REQUEST, "global", "invalid", "Invalid Value", Some((location, "parameter")))
}

fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    match bearer_problem(headers)? {
        "missing" => Some(drive_error(
            StatusCode::UNAUTHORIZED,
            "global",
            "required",
            "Login Required.",
            Some(("Authorization", "header")),
        )),
        _ => Some(drive_error(
            StatusCode::UNAUTHORIZED,
            "global",
            "authError",
            "Invalid Credentials",
            Some(("Authorization", "header")),
        )),
    }
}

/// A file as Drive returns it: only the requested `fields`, or the default set.
fn render(file: &File, fields: Option<&str>) -> Value {
    let all = json!({
        "kind": "drive#file",
        "id": file.id,
        "name": file.name,
        "mimeType": file.mime_type,
        "parents": file.parents,
        "webViewLink": if file.mime_type == FOLDER_MIME {
            format!("https://drive.google.com/drive/folders/{}", file.id)
        } else {
            format!("https://drive.google.com/file/d/{}/view?usp=drivesdk", file.id)
        },
    });
    let wanted: Vec<&str> = match fields {
        Some(f) => ["id", "name", "mimeType", "parents", "webViewLink"].into_iter().filter(|k| f.contains(k)).collect(),
        None => vec!["kind", "id", "name", "mimeType"],
    };
    Value::Object(wanted.into_iter().map(|k| (k.to_string(), all[k].clone())).collect())
}

async fn list(Shared(state): Shared<Arc<State>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let flag = |name: &str| params.get(name).is_some_and(|v| v == "true");
    if params.get("corpora").is_some_and(|c| c == "drive")
        && (!params.contains_key("driveId") || !flag("includeItemsFromAllDrives") || !flag("supportsAllDrives"))
    {
        return invalid("corpora");
    }
    let conds = match params.get("q").map(|q| parse_query(q)) {
        None => Vec::new(),
        Some(Some(conds)) => conds,
        Some(None) => return invalid("q"),
    };
    let page_size = match params.get("pageSize").map(|s| s.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => return invalid("pageSize"),
    };
    let offset =
        match params.get("pageToken").map(|t| t.strip_prefix("sim-page-").and_then(|o| o.parse::<usize>().ok())) {
            None => 0,
            Some(Some(offset)) => offset,
            Some(None) => return invalid("pageToken"),
        };
    let fields = params.get("fields").map(String::as_str);
    // Shared Drive items only with both flags (files.list: includeItemsFromAllDrives "whether both
    // My Drive and shared drive items should be included"; it needs supportsAllDrives=true);
    // `corpora=drive` narrows to that drive.
    let all_drives = flag("includeItemsFromAllDrives") && flag("supportsAllDrives");
    let drive = params.get("corpora").filter(|c| *c == "drive").and_then(|_| params.get("driveId"));
    let visible = |f: &File| match (&f.drive_id, drive) {
        (_, Some(d)) => f.drive_id.as_ref() == Some(d),
        (Some(_), None) => all_drives,
        (None, None) => true,
    };
    // Insertion order is creation order, which is what `orderBy=createdTime` asks for.
    let matching: Vec<File> =
        state.files().into_iter().filter(|f| visible(f) && conds.iter().all(|c| c.matches(f))).collect();
    let page: Vec<Value> =
        matching.iter().skip(offset).take(page_size).map(|f| render(f, fields.and_then(files_fields))).collect();
    let mut body = json!({"files": page});
    if fields.is_none() {
        body["kind"] = "drive#fileList".into();
        body["incompleteSearch"] = false.into();
    }
    if offset + page_size < matching.len() {
        body["nextPageToken"] = format!("sim-page-{}", offset + page_size).into();
    }
    Json(body).into_response()
}

/// The per-file part of a list's `fields` (`nextPageToken,files(id,name)` → `id,name`).
fn files_fields(fields: &str) -> Option<&str> {
    let start = fields.find("files(")? + 6;
    fields[start..].find(')').map(|end| &fields[start..start + end])
}

async fn create(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return drive_error(StatusCode::BAD_REQUEST, "global", "parseError", "Parse Error", None);
    };
    create_from(&state, &headers, &params, &request, 0)
}

/// Creates the file `request` describes (shared by metadata-only creates and uploads of `size` bytes).
fn create_from(
    state: &State,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    request: &Value,
    size: usize,
) -> Response {
    let parents: Vec<String> = match &request["parents"] {
        Value::Null => vec!["root".to_string()],
        Value::Array(ids) if ids.len() == 1 && ids[0].is_string() => {
            vec![ids[0].as_str().unwrap_or_default().to_string()]
        }
        _ => {
            return drive_error(
                StatusCode::FORBIDDEN,
                "global",
                "cannotAddParent",
                "Increasing the number of parents is not allowed",
                None,
            );
        }
    };
    // A Shared Drive parent is "not found" to a caller that does not support shared drives.
    let drive_id = match state.drive_of(&parents[0]) {
        Some(Some(_)) if params.get("supportsAllDrives").is_none_or(|v| v != "true") => {
            return not_found(&parents[0]);
        }
        Some(drive_id) => drive_id,
        None => return not_found(&parents[0]),
    };
    // Service accounts own no storage (Google's notice: "new service accounts created after
    // April 15, 2025 … will not be able to own any Drive items"); Drive's answer, as seen by
    // clients (github.com/Jumbo810/Upload_Github_Artifacts_TO_GDrive/issues/22,
    // github.com/bskim45/fastlane-plugin-google_drive/issues/44): 403 storageQuotaExceeded.
    if drive_id.is_none() && TokenKind::of(headers) == Some(TokenKind::ServiceAccount) {
        return drive_error(
            StatusCode::FORBIDDEN,
            "usageLimits",
            "storageQuotaExceeded",
            "Service Accounts do not have storage quota. Leverage shared drives \
             (https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use OAuth delegation \
             (http://support.google.com/a/answer/7281227) instead.",
            None,
        );
    }
    let id = match request["id"].as_str() {
        None => new_id("1sim"),
        Some(id) => {
            let mut files = state.files.lock().expect("drive files");
            // Drive's answer to a create with an id in use: 409 fileIdInUse, "A file already
            // exists with the provided ID." (as clients quote it, e.g. googleapis client
            // errors "fileIdInUse: A file already exists with the provided ID.").
            if files.iter().any(|f| f.id == id) {
                return drive_error(
                    StatusCode::CONFLICT,
                    "global",
                    "fileIdInUse",
                    "A file already exists with the provided ID.",
                    None,
                );
            }
            // Only ids from generateIds are usable (stricter reading: Drive documents the id
            // field as taking ids "generated by files.generateIds").
            if !state.generated.lock().expect("drive ids").remove(id) {
                return drive_error(
                    StatusCode::BAD_REQUEST,
                    "global",
                    "invalid",
                    "The provided file ID is not usable.",
                    Some(("id", "other")),
                );
            }
            let file = new_file(request, id.to_string(), parents, drive_id, size);
            let rendered = render(&file, params.get("fields").map(String::as_str));
            files.push(file);
            return Json(rendered).into_response();
        }
    };
    let file = new_file(request, id, parents, drive_id, size);
    let rendered = render(&file, params.get("fields").map(String::as_str));
    state.files.lock().expect("drive files").push(file);
    Json(rendered).into_response()
}

fn new_file(request: &Value, id: String, parents: Vec<String>, drive_id: Option<String>, size: usize) -> File {
    File {
        id,
        name: request["name"].as_str().unwrap_or("Untitled").to_string(),
        mime_type: request["mimeType"].as_str().unwrap_or("application/octet-stream").to_string(),
        parents,
        trashed: false,
        drive_id,
        app_properties: request["appProperties"]
            .as_object()
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default(),
        size,
    }
}

/// Drive's 404 for an id the caller cannot see.
fn not_found(id: &str) -> Response {
    drive_error(
        StatusCode::NOT_FOUND,
        "global",
        "notFound",
        &format!("File not found: {id}."),
        Some(("fileId", "parameter")),
    )
}

/// `GET /drive/v3/files/generateIds`: `{"kind":"drive#generatedIds","space":"drive","ids":[…]}`
/// (https://developers.google.com/workspace/drive/api/reference/rest/v3/files/generateIds).
async fn generate_ids(Shared(state): Shared<Arc<State>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let count = match params.get("count").map(|c| c.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=MAX_GENERATED_IDS).contains(&n) => n,
        Some(_) => return invalid("count"),
    };
    let space = params.get("space").map_or("drive", String::as_str);
    if space != "drive" && space != "appDataFolder" {
        return invalid("space");
    }
    let ids: Vec<String> = (0..count).map(|_| new_id("1simgen")).collect();
    state.generated.lock().expect("drive ids").extend(ids.iter().cloned());
    Json(json!({"kind": "drive#generatedIds", "space": space, "ids": ids})).into_response()
}

/// `GET /drive/v3/files/{id}`: Shared Drive items only with `supportsAllDrives=true`.
async fn get_file(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let supports = params.get("supportsAllDrives").is_some_and(|v| v == "true");
    match state.files().into_iter().find(|f| f.id == id && (f.drive_id.is_none() || supports)) {
        Some(file) => Json(render(&file, params.get("fields").map(String::as_str))).into_response(),
        None => not_found(&id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_fields_select_file_fields() {
        assert_eq!(
            files_fields("nextPageToken,files(id,name,parents,webViewLink)"),
            Some("id,name,parents,webViewLink")
        );
        let file = File {
            id: "1x".into(),
            name: "A".into(),
            mime_type: FOLDER_MIME.into(),
            parents: vec!["root".into()],
            trashed: false,
            drive_id: None,
            app_properties: BTreeMap::new(),
            size: 0,
        };
        assert_eq!(render(&file, Some("id,name")), json!({"id": "1x", "name": "A"}));
        assert_eq!(render(&file, None)["kind"], "drive#file");
    }
}
