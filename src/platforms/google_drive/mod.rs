//! Google Drive API v3: the client folder tree (a folder per client with the
//! template's sub-folders), found before created so reruns create nothing, and
//! created under ids reserved with `files.generateIds` so a create retried after a
//! timeout (Drive made the folder, we never heard) lands on Drive's 409 `fileIdInUse`
//! instead of making a second folder.
//! Auth is a service account (JWT bearer flow, see `google_auth`), optionally
//! impersonating a Workspace user; service accounts own no storage, so folders
//! belong in a Shared Drive the account is a member of.

mod folders;
mod upload;

use std::{fmt, sync::Arc};

use chrono::NaiveDate;

use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize};

pub use self::{
    folders::{FolderIds, Unrecorded},
    upload::{MULTIPART_MAX_BYTES, REPORT_PROPERTY, REPORTS_FOLDER, StoredFile, Upload, tagged_query},
};
use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    google_auth::{DRIVE_SCOPE, ServiceAccountKey, ServiceAccountSource, non_empty, non_empty_secret},
    http::{Call, Dialect, HttpSettings, Overrides, PlatformHttp, Reply, Verdict},
};
use crate::domain::limits::LimitStore;

pub const INFO: PlatformInfo = PlatformInfo {
    key: "google_drive",
    title: "Google Drive",
    env_prefix: "GOOGLE_DRIVE_",
    sim_prefix: "/google-drive",
    ads: false,
};

pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// Drive publishes 12,000 queries/min per user (200/s; newer quota units are similar);
/// folder work is a handful of calls per client, so 10/s keeps far below it and
/// below Drive's stricter, unpublished write pacing.
const DEFAULT_RATE_PER_SECOND: f64 = 10.0;
const DEFAULT_BURST: u32 = 10;
const LIST_PAGE_SIZE: u32 = 100;
const MAX_PAGES: usize = 100;
const FILE_FIELDS: &str = "id,name,parents,webViewLink";

#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The service-account key JSON itself.
    pub service_account_json: Option<SecretString>,
    /// Or a path to the key file.
    pub service_account_file: Option<String>,
    /// Workspace user to act as (domain-wide delegation).
    pub subject: Option<String>,
    /// Folder the client folders go in; `root` = My Drive root, or the Shared Drive's root when one is set.
    pub parent_folder_id: String,
    pub shared_drive_id: Option<String>,
    /// Comma-separated sub-folders of every client folder.
    pub folder_template: String,
    pub base_url: String,
    /// Overrides the key's `token_uri`.
    pub token_url: Option<String>,
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub max_wait_secs: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service_account_json: None,
            service_account_file: None,
            subject: None,
            parent_folder_id: "root".into(),
            shared_drive_id: None,
            folder_template: "01 Strategy,02 Creatives,03 Reports,04 Invoices".into(),
            base_url: "https://www.googleapis.com".into(),
            token_url: None,
            rate_per_second: None,
            burst: None,
            max_attempts: None,
            retry_base_ms: None,
            max_wait_secs: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = if non_empty_secret(&self.service_account_json).is_some() { "[set]" } else { "[unset]" };
        f.debug_struct("Settings")
            .field("service_account_json", &json)
            .field("service_account_file", &self.service_account_file)
            .field("subject", &self.subject)
            .field("parent_folder_id", &self.parent_folder_id)
            .field("shared_drive_id", &self.shared_drive_id)
            .field("folder_template", &self.folder_template)
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn missing(&self) -> Vec<&'static str> {
        if non_empty_secret(&self.service_account_json).is_none() && non_empty(&self.service_account_file).is_none() {
            vec!["GOOGLE_DRIVE_SERVICE_ACCOUNT_JSON"]
        } else {
            vec![]
        }
    }

    /// In the sandbox, folders go in the simulator's Shared Drive unless a drive or a user is set
    /// (the simulator, like Drive, refuses a service account's creates in My Drive).
    pub fn sandboxed(&self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        let shared_drive_id = match (non_empty(&self.shared_drive_id), non_empty(&self.subject)) {
            (None, None) => Some(crate::sim::google_drive::SANDBOX_SHARED_DRIVE_ID.to_string()),
            _ => self.shared_drive_id.clone(),
        };
        Self {
            service_account_json: Some(crate::sim::google_drive::SANDBOX_SERVICE_ACCOUNT_JSON.into()),
            service_account_file: None,
            base_url: base.to_string(),
            token_url: Some(format!("{base}/token")),
            shared_drive_id,
            ..self.clone()
        }
    }

    /// Why a service account with a key still cannot create folders: it needs a Shared Drive
    /// or a user to act as. Google, to Workspace customers (quoted in
    /// https://github.com/opnsense/core/issues/8343): "new service accounts created after
    /// April 15, 2025 … will not be able to own any Drive items"; Drive's own guide
    /// (https://developers.google.com/workspace/drive/api/guides/about-shareddrives): service
    /// accounts "must upload files and folders into shared drives, or use OAuth 2.0 to upload
    /// items on behalf of a human user".
    pub fn not_ready(&self) -> Vec<String> {
        if !self.missing().is_empty()
            || non_empty(&self.shared_drive_id).is_some()
            || non_empty(&self.subject).is_some()
        {
            return vec![];
        }
        vec![
            "set GOOGLE_DRIVE_SHARED_DRIVE_ID (a Shared Drive the service account is a member of) or GOOGLE_DRIVE_SUBJECT \
             (a Workspace user to act as): service accounts created after 2025-04-15 cannot own Drive items, so their \
             folder creates in My Drive fail with storageQuotaExceeded"
                .to_string(),
        ]
    }

    fn http_settings(&self) -> HttpSettings {
        Overrides {
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            account_rate_per_second: None,
            max_attempts: self.max_attempts,
            retry_base_ms: self.retry_base_ms,
            max_wait_secs: self.max_wait_secs,
        }
        .apply(HttpSettings::new(DEFAULT_RATE_PER_SECOND, DEFAULT_BURST))
    }

    /// The key JSON, inline or from the file.
    fn key(&self) -> Result<ServiceAccountKey, String> {
        let text = match (non_empty_secret(&self.service_account_json), non_empty(&self.service_account_file)) {
            (Some(json), _) => json.to_string(),
            (None, Some(path)) => {
                std::fs::read_to_string(path).map_err(|e| format!("GOOGLE_DRIVE_SERVICE_ACCOUNT_FILE `{path}`: {e}"))?
            }
            (None, None) => return Err("no key".into()),
        };
        ServiceAccountKey::from_json(&text).map_err(|e| format!("GOOGLE_DRIVE_SERVICE_ACCOUNT_*: {e}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub id: String,
    pub name: String,
    #[serde(rename = "webViewLink", default, skip_serializing_if = "Option::is_none")]
    pub web_view_link: Option<String>,
}

/// A client's folder and its template sub-folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderTree {
    pub root: Folder,
    pub children: Vec<Folder>,
    /// Folders this call created (0 when everything existed).
    pub created: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileList {
    #[serde(default)]
    files: Vec<Folder>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// A Drive query string literal: single-quoted, `\` and `'` escaped with a backslash.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

// ---- errors ----

#[derive(Deserialize)]
struct Envelope {
    error: ClassicError,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClassicError {
    code: Option<u16>,
    message: String,
    errors: Vec<Reason>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Reason {
    reason: String,
    message: String,
}

struct Speech;

impl Dialect for Speech {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) else {
            return super::http::default_classify(platform, status, headers, body);
        };
        let http_status = status.as_u16();
        let reason = error.errors.first().map(|r| r.reason.clone()).unwrap_or_default();
        let mut message =
            error.errors.first().map(|r| r.message.clone()).filter(|m| !m.is_empty()).unwrap_or(error.message);
        let kind = match reason.as_str() {
            "userRateLimitExceeded" | "rateLimitExceeded" => ErrorKind::Throttled,
            "backendError" | "internalError" => ErrorKind::Unavailable,
            "storageQuotaExceeded" => {
                message = format!(
                    "{message} — service accounts have no storage of their own: set GOOGLE_DRIVE_SHARED_DRIVE_ID to a Shared Drive \
                     the service account is a member of (Content manager), or GOOGLE_DRIVE_SUBJECT to act as a Workspace user"
                );
                ErrorKind::Rejected
            }
            "authError" | "required" => ErrorKind::Auth,
            // Creating under an id that exists: an earlier attempt of ours made it.
            "fileIdInUse" => ErrorKind::Rejected,
            "notFound" => ErrorKind::NotFound,
            "badRequest" | "invalid" | "invalidParameter" => ErrorKind::Invalid,
            _ => PlatformError::from_status(platform, error.code.unwrap_or(http_status), "").kind,
        };
        let mut e = PlatformError::new(platform, kind, message)
            .status(http_status)
            .retry_after(super::http::retry_after(headers));
        if !reason.is_empty() {
            e = e.code(reason.clone());
        }
        // The daily quota does not come back within any wait we would accept.
        if reason == "dailyLimitExceeded" {
            e = PlatformError { kind: ErrorKind::Throttled, ..e }.retryable(false);
        }
        if e.retryable { Verdict::Retry(e) } else { Verdict::Fail(e) }
    }
}

// ---- client ----

pub struct GoogleDrive {
    http: PlatformHttp,
    auth: Result<ServiceAccountSource, PlatformError>,
    base_url: String,
    parent_folder_id: String,
    shared_drive_id: Option<String>,
    template: Vec<String>,
}

impl super::Platform for GoogleDrive {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::google_drive::State;

    fn connect(settings: &Settings, calls: &Arc<CallCounter>, limits: &Arc<dyn LimitStore>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
        client.http.share_limits(limits);
        if let Ok(auth) = &mut client.auth {
            auth.count_into(calls);
        }
        client
    }
    fn http(&self) -> &PlatformHttp {
        &self.http
    }
    fn missing(settings: &Settings) -> Vec<&'static str> {
        settings.missing()
    }
    fn sandboxed(settings: &Settings, base: &str) -> Settings {
        settings.sandboxed(base)
    }
    fn api_version(_settings: &Settings) -> Option<String> {
        Some("v3".into())
    }
    fn not_ready(settings: &Settings, _today: NaiveDate) -> Vec<String> {
        settings.not_ready()
    }
}

impl GoogleDrive {
    pub fn new(settings: &Settings) -> Self {
        let http_settings = settings.http_settings();
        let missing = settings.missing();
        let auth = if !missing.is_empty() {
            Err(PlatformError::not_configured(INFO.key, &missing))
        } else {
            settings.key().map_err(|e| PlatformError::new(INFO.key, ErrorKind::NotConfigured, e)).and_then(|key| {
                ServiceAccountSource::new(
                    INFO.key,
                    &http_settings,
                    &key,
                    &[DRIVE_SCOPE],
                    non_empty(&settings.subject),
                    non_empty(&settings.token_url),
                )
            })
        };
        let shared_drive_id = non_empty(&settings.shared_drive_id).map(str::to_string);
        let parent = settings.parent_folder_id.trim();
        // In a Shared Drive, "root" means the drive's own root, whose id is the drive id.
        let parent_folder_id = match (&shared_drive_id, parent) {
            (Some(drive), "" | "root") => drive.clone(),
            (None, "") => "root".to_string(),
            _ => parent.to_string(),
        };
        Self {
            http: PlatformHttp::new(INFO.key, http_settings, Arc::new(Speech), vec![]),
            auth,
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            parent_folder_id,
            shared_drive_id,
            template: settings
                .folder_template
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    pub fn http(&self) -> &PlatformHttp {
        &self.http
    }

    /// The first (oldest) non-trashed folder called exactly `name` in `parent`.
    pub async fn find_folder(&self, name: &str, parent: &str) -> Result<Option<Folder>, PlatformError> {
        let q = format!("name = {} and {}", quote(name), self.children_query(parent));
        let page = self.list_page(&q, 10, None).await?;
        // Drive's name match is exact but case-insensitive in places; insist on the exact name.
        Ok(page.files.into_iter().find(|f| f.name == name))
    }

    /// Every non-trashed folder directly in `parent`, following `nextPageToken`.
    pub async fn list_folders(&self, parent: &str) -> Result<Vec<Folder>, PlatformError> {
        let q = self.children_query(parent);
        let mut folders = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_page(&q, LIST_PAGE_SIZE, page_token.as_deref()).await?;
            folders.extend(page.files);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) == page_token.as_ref() => {
                    return Err(PlatformError::malformed(INFO.key, "files.list returned the same nextPageToken twice"));
                }
                Some(next) => page_token = Some(next),
                None => return Ok(folders),
            }
        }
        Err(PlatformError::malformed(INFO.key, format!("files.list did not end after {MAX_PAGES} pages")))
    }

    /// Where client folders go: the configured parent (a Shared Drive's root is the drive id).
    pub fn parent_folder_id(&self) -> &str {
        &self.parent_folder_id
    }

    fn children_query(&self, parent: &str) -> String {
        format!("{} in parents and mimeType = {} and trashed = false", quote(parent), quote(FOLDER_MIME))
    }

    async fn list_page(&self, q: &str, page_size: u32, page_token: Option<&str>) -> Result<FileList, PlatformError> {
        let url = format!("{}/drive/v3/files", self.base_url);
        let fields = format!("nextPageToken,files({FILE_FIELDS})");
        let page_size = page_size.to_string();
        // Both all-drives flags always: without them Drive hides Shared Drive items, and a parent
        // folder inside a Shared Drive would look empty (a new tree on every run).
        let mut params: Vec<(&str, &str)> = vec![
            ("q", q),
            ("fields", &fields),
            ("pageSize", &page_size),
            ("orderBy", "createdTime"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
        ];
        if let Some(drive) = &self.shared_drive_id {
            params.extend([("corpora", "drive"), ("driveId", drive.as_str())]);
        }
        if let Some(token) = page_token {
            params.push(("pageToken", token));
        }
        self.send("list_files", |c, token| c.get(&url).bearer_auth(token).query(&params)).await?.json()
    }

    /// Sends with a token; a 401 on a cached token (revoked or expired early) refreshes once.
    async fn send(
        &self,
        endpoint: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Reply, PlatformError> {
        let auth = self.auth.as_ref().map_err(Clone::clone)?;
        let mut refreshed = false;
        loop {
            let (token, fresh) = auth.token().await?;
            match self.http.send(Call::new(endpoint), |c| build(c, &token)).await {
                Err(e) if e.status == Some(401) && !fresh && !refreshed => {
                    auth.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }
}

/// A file id as one path segment (Drive ids are URL-safe; anything else is escaped).
fn urlencoding(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn check_name(name: &str) -> Result<(), PlatformError> {
    if name.trim().is_empty() {
        return Err(PlatformError::new(INFO.key, ErrorKind::Invalid, "folder name is empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_literals_escape_quotes_and_backslashes() {
        assert_eq!(quote("Acme Corp"), "'Acme Corp'");
        assert_eq!(quote("O'Brien \\ Co"), r"'O\'Brien \\ Co'");
        // The backslash is escaped first, so an escaped quote is not escaped twice.
        assert_eq!(quote(r"a\'b"), r"'a\\\'b'");
    }

    fn classify(status: u16, reason: &str) -> Verdict {
        let body = format!(
            r#"{{"error":{{"errors":[{{"domain":"usageLimits","reason":"{reason}","message":"msg"}}],"code":{status},"message":"msg"}}}}"#
        );
        Speech.classify("google_drive", StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn drive_reasons_map_to_kinds() {
        assert!(matches!(classify(403, "userRateLimitExceeded"), Verdict::Retry(e) if e.kind == ErrorKind::Throttled));
        assert!(matches!(classify(429, "rateLimitExceeded"), Verdict::Retry(e) if e.kind == ErrorKind::Throttled));
        assert!(matches!(classify(500, "backendError"), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable));
        assert!(matches!(classify(502, "somethingNew"), Verdict::Retry(_)));
        assert!(matches!(classify(401, "authError"), Verdict::Fail(e) if e.kind == ErrorKind::Auth));
        assert!(matches!(classify(404, "notFound"), Verdict::Fail(e) if e.kind == ErrorKind::NotFound));
        assert!(matches!(classify(403, "insufficientFilePermissions"), Verdict::Fail(e) if e.kind == ErrorKind::Auth));
        assert!(matches!(classify(403, "dailyLimitExceeded"), Verdict::Fail(e) if e.kind == ErrorKind::Throttled));
        let Verdict::Fail(e) = classify(403, "storageQuotaExceeded") else { panic!("storage quota must fail") };
        assert_eq!(e.code.as_deref(), Some("storageQuotaExceeded"));
        assert!(e.message.contains("Shared Drive"), "{}", e.message);
    }

    #[test]
    fn settings_need_a_key_and_read_the_template() {
        let s = Settings::default();
        assert_eq!(s.missing(), ["GOOGLE_DRIVE_SERVICE_ACCOUNT_JSON"]);
        assert!(Settings { service_account_file: Some("/k.json".into()), ..Settings::default() }.missing().is_empty());
        let drive = GoogleDrive::new(&Settings {
            folder_template: " A , ,B".into(),
            shared_drive_id: Some("0Adrive".into()),
            ..s.sandboxed("http://sim")
        });
        assert_eq!(drive.template, ["A", "B"]);
        assert_eq!(drive.parent_folder_id, "0Adrive");
        let unreadable = GoogleDrive::new(&Settings {
            service_account_file: Some("/nonexistent/key.json".into()),
            ..Settings::default()
        });
        assert!(
            matches!(&unreadable.auth, Err(e) if e.kind == ErrorKind::NotConfigured && e.message.contains("/nonexistent/key.json"))
        );
    }
}
