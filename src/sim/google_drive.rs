//! Simulated Google Drive API v3 and its token endpoint: `POST /token` (JWT bearer
//! grant; claims checked, signature not), `GET /drive/v3/files` (the `q` subset the
//! connector sends — `name`, `mimeType`, `'<id>' in parents`, `trashed` joined by
//! `and`, with `\'` and `\\` escapes — paged by `pageSize`/`pageToken`) and
//! `POST /drive/v3/files` (stores the folder; duplicates allowed, as on Drive).
//! Any parent id is accepted as an existing folder shared with the account.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{RawQuery, State as Shared},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use super::{Vendor, google_ads::bearer_problem, new_id};

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

#[derive(Debug, Clone)]
pub struct File {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub trashed: bool,
}

#[derive(Default)]
pub struct State {
    files: Mutex<Vec<File>>,
    tokens: AtomicU64,
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
        self.tokens.store(0, Ordering::Relaxed);
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
        "webViewLink": format!("https://drive.google.com/drive/folders/{}", file.id),
    });
    let wanted: Vec<&str> = match fields {
        Some(f) => ["id", "name", "mimeType", "parents", "webViewLink"].into_iter().filter(|k| f.contains(k)).collect(),
        None => vec!["kind", "id", "name", "mimeType"],
    };
    Value::Object(wanted.into_iter().map(|k| (k.to_string(), all[k].clone())).collect())
}

#[derive(Debug, PartialEq)]
enum Cond {
    Name { negate: bool, contains: bool, value: String },
    Mime { negate: bool, value: String },
    Parent(String),
    Trashed(bool),
}

impl Cond {
    fn matches(&self, f: &File) -> bool {
        match self {
            Cond::Name { negate, contains, value } => {
                (if *contains { f.name.contains(value.as_str()) } else { &f.name == value }) != *negate
            }
            Cond::Mime { negate, value } => (&f.mime_type == value) != *negate,
            Cond::Parent(id) => f.parents.contains(id),
            Cond::Trashed(t) => f.trashed == *t,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Lit(String),
    Word(String),
}

/// Splits a query into words, operators and string literals (unescaping `\'` and `\\`).
fn tokens(q: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut lit = String::new();
            loop {
                match chars.next()? {
                    '\\' => lit.push(chars.next()?),
                    '\'' => break,
                    c => lit.push(c),
                }
            }
            out.push(Tok::Lit(lit));
        } else {
            let op = |c: char| matches!(c, '=' | '!' | '<' | '>');
            let first_is_op = op(c);
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '\'' || op(c) != first_is_op {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push(Tok::Word(word));
        }
    }
    Some(out)
}

/// The `and`-joined conditions of `q`; `None` for anything outside the supported subset.
fn parse_query(q: &str) -> Option<Vec<Cond>> {
    let toks = tokens(q)?;
    let mut conds = Vec::new();
    for clause in toks.split(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("and"))) {
        let word = |i: usize| match clause.get(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        let cond = match clause {
            [Tok::Word(field), Tok::Word(op), Tok::Lit(value)] => {
                let (negate, contains) = match op.as_str() {
                    "=" => (false, false),
                    "!=" => (true, false),
                    "contains" => (false, true),
                    _ => return None,
                };
                match field.as_str() {
                    "name" => Cond::Name { negate, contains, value: value.clone() },
                    "mimeType" if !contains => Cond::Mime { negate, value: value.clone() },
                    _ => return None,
                }
            }
            [Tok::Lit(id), Tok::Word(_), Tok::Word(_)] if word(1) == Some("in") && word(2) == Some("parents") => {
                Cond::Parent(id.clone())
            }
            [Tok::Word(_), Tok::Word(_), Tok::Word(value)] if word(0) == Some("trashed") && word(1) == Some("=") => {
                match value.as_str() {
                    "true" => Cond::Trashed(true),
                    "false" => Cond::Trashed(false),
                    _ => return None,
                }
            }
            _ => return None,
        };
        conds.push(cond);
    }
    Some(conds)
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
    // Insertion order is creation order, which is what `orderBy=createdTime` asks for.
    let matching: Vec<File> = state.files().into_iter().filter(|f| conds.iter().all(|c| c.matches(f))).collect();
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
    let file = File {
        id: new_id("1sim"),
        name: request["name"].as_str().unwrap_or("Untitled").to_string(),
        mime_type: request["mimeType"].as_str().unwrap_or("application/octet-stream").to_string(),
        parents,
        trashed: false,
    };
    let rendered = render(&file, params.get("fields").map(String::as_str));
    state.files.lock().expect("drive files").push(file);
    Json(rendered).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_connectors_query_and_honours_escapes() {
        let name = r"O'Brien \ Co";
        // Drive's grammar: single-quoted literals, `\'` and `\\` escaped with a backslash.
        let q = r"name = 'O\'Brien \\ Co' and 'root' in parents and mimeType = 'application/vnd.google-apps.folder' and trashed = false";
        let conds = parse_query(q).unwrap();
        assert_eq!(
            conds,
            [
                Cond::Name { negate: false, contains: false, value: name.to_string() },
                Cond::Parent("root".into()),
                Cond::Mime { negate: false, value: FOLDER_MIME.into() },
                Cond::Trashed(false),
            ]
        );
        assert!(parse_query("name = 'unterminated").is_none());
        assert!(parse_query("fullText contains 'x'").is_none());
        assert!(parse_query("name='a' and trashed=false").is_some());
    }

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
        };
        assert_eq!(render(&file, Some("id,name")), json!({"id": "1x", "name": "A"}));
        assert_eq!(render(&file, None)["kind"], "drive#file");
    }
}
