//! Google's documented rules (issue #8): Ads versions and sunsets, manager accounts per
//! client, Drive ownership, Shared Drive visibility and create-with-id. Each rule has a
//! test against the simulator and one against wiremock answering Google's documented body.

use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    platforms::{
        ErrorKind, Platform, PlatformError,
        google_ads::{self, GoogleAds, versions},
        google_drive::{self, FolderIds, GoogleDrive},
    },
    sim::{self, Behaviour, google_drive::SANDBOX_SERVICE_ACCOUNT_JSON},
};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

use crate::support::TestApp;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, d).unwrap()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn simulator() -> (sim::Running, String) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let base = running.base_url.clone();
    (running, base)
}

async fn mount_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "ya29.t", "expires_in": 3599, "token_type": "Bearer"})),
        )
        .mount(server)
        .await;
}

// ---------------------------------------------------------------- Google Ads versions

fn ads_settings(base: &str, version: &str) -> google_ads::Settings {
    google_ads::Settings {
        developer_token: Some("devtoken".into()),
        client_id: Some("client.apps.googleusercontent.com".into()),
        client_secret: Some("secret".into()),
        refresh_token: Some("1//refresh".into()),
        api_version: version.into(),
        base_url: base.to_string(),
        token_url: format!("{base}/token"),
        retry_base_ms: Some(5),
        ..google_ads::Settings::default()
    }
}

fn sim_ads_settings(base: &str, version: &str) -> google_ads::Settings {
    google_ads::Settings { api_version: version.into(), retry_base_ms: Some(5), ..google_ads::Settings::default() }
        .sandboxed(&format!("{base}{}", google_ads::INFO.sim_prefix))
}

/// The connector's table and the simulator's (which may not import the connector) agree.
#[test]
fn google_ads_version_tables_agree() {
    let connector: Vec<(&str, NaiveDate)> = versions::all().iter().map(|v| (v.name, v.sunset)).collect();
    assert_eq!(connector, sim::google_ads::VERSIONS.to_vec());
    assert_eq!(versions::DEFAULT_VERSION, sim::google_ads::LATEST_VERSION);
    assert_eq!(google_ads::Settings::default().api_version, "v26");
}

/// A sunset version: the simulator answers as Google does, and the connector refuses
/// before calling (no request reaches the simulator).
#[tokio::test]
async fn google_sim_ads_sunset_version_is_unsupported_and_never_called() {
    let (sim, base) = simulator().await;
    // Straight at the simulator: Google's answer to a sunset version.
    let res = crate::support::http_client()
        .post(format!("{base}/google-ads/v22/customers/1234567890/googleAds:search"))
        .bearer_auth(format!("{}user-x", sim::google_ads::TOKEN_PREFIX))
        .header("developer-token", "t")
        .json(&json!({"query": "SELECT customer.id FROM customer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let failure = &body["error"]["details"][0];
    assert_eq!(failure["@type"], "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure");
    assert_eq!(failure["errors"][0]["errorCode"]["requestError"], "UNSUPPORTED_VERSION");
    assert!(failure["errors"][0]["message"].as_str().unwrap().contains("Version v22 is deprecated"));
    assert_eq!(sim.state.stats().platforms["google_ads"].errors["requestError.UNSUPPORTED_VERSION"], 1);

    // Through the connector: refused with a clear error, nothing sent.
    let calls = sim.state.stats().platforms["google_ads"].calls;
    let err =
        GoogleAds::new(&sim_ads_settings(&base, "v22")).daily_metrics("1234567890", day(1), day(2)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(
        err.message.contains("v22") && err.message.contains("2026-10-07") && err.message.contains("v26"),
        "{}",
        err.message
    );
    assert_eq!(sim.state.stats().platforms["google_ads"].calls, calls, "no call was made");
    // The default version is served.
    GoogleAds::new(&sim_ads_settings(&base, "v26")).daily_metrics("1234567890", day(1), day(2)).await.unwrap();
}

/// Against Google's documented answer: a sunset version is refused before any request,
/// and Google's UNSUPPORTED_VERSION answer (body as a client received it after v14's
/// sunset, github.com/google-marketing-solutions/adios/issues/47) fails at once.
#[tokio::test]
async fn google_ads_unsupported_version_fails_at_once() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let err = GoogleAds::new(&ads_settings(&server.uri(), "v21"))
        .daily_metrics("1234567890", day(1), day(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(server.received_requests().await.unwrap().is_empty(), "refused before the token, too");

    let documented = json!({"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"requestError": "UNSUPPORTED_VERSION"},
                        "message": " Version v26 is deprecated. Requests to this version will be blocked."}],
            "requestId": "qUu3ZSMS9jDpnmuJSBBbLA"}]}});
    Mock::given(method("POST"))
        .and(path("/v26/customers/1234567890/googleAds:searchStream"))
        .respond_with(ResponseTemplate::new(400).set_body_json(documented))
        .mount(&server)
        .await;
    let err = GoogleAds::new(&ads_settings(&server.uri(), "v26"))
        .daily_metrics("1234567890", day(1), day(2))
        .await
        .unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Invalid, Some("requestError.UNSUPPORTED_VERSION")));
    assert!(!err.retryable);
    assert!(err.message.contains("Version v26 is deprecated"), "{}", err.message);
}

/// The simulator's throttling and fault answers name the requested version in `@type`.
#[tokio::test]
async fn google_sim_ads_errors_name_the_requested_version() {
    let (sim, base) = simulator().await;
    sim.state.configure("google_ads", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let res = crate::support::http_client()
        .post(format!("{base}/google-ads/v25/customers/1234567890/googleAds:search"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"]["details"][0]["@type"],
        "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure"
    );
}

/// Readiness: a sunset version is "not ready", one sunsetting within 60 days is warned.
#[test]
fn google_ads_readiness_follows_the_table() {
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let with = |v: &str| google_ads::Settings { api_version: v.into(), ..google_ads::Settings::default() };
    assert_eq!(GoogleAds::sunset_on(&with("v26")), NaiveDate::from_ymd_opt(2027, 10, 14));
    assert!(GoogleAds::not_ready(&with("v22"), today)[0].contains("was sunset on 2026-10-07"));
    assert!(GoogleAds::not_ready(&with("v23"), today).is_empty());
    assert!(GoogleAds::warnings(&with("v23"), today)[0].contains("2027-01-28"));
    assert!(GoogleAds::warnings(&with("v26"), today).is_empty());
}

// ---------------------------------------------------------------- manager accounts

/// Per call: the client's manager wins over GOOGLE_ADS_LOGIN_CUSTOMER_ID (documented header,
/// https://developers.google.com/google-ads/api/rest/auth).
#[tokio::test]
async fn google_ads_manager_is_sent_as_login_customer_id() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let stream = "/v26/customers/1234567890/googleAds:searchStream";
    Mock::given(method("POST"))
        .and(path(stream))
        .and(header("login-customer-id", "1112223333"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"results": []}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(stream))
        .and(header("login-customer-id", "9998887777"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"results": []}])))
        .mount(&server)
        .await;
    let settings =
        google_ads::Settings { login_customer_id: Some("999-888-7777".into()), ..ads_settings(&server.uri(), "v26") };
    let ads = GoogleAds::new(&settings);
    ads.daily_metrics_via(Some("111-222-3333"), "1234567890", day(1), day(2)).await.unwrap();
    ads.daily_metrics_via(None, "1234567890", day(1), day(2)).await.unwrap();
    let logins: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == stream)
        .map(|r| r.headers["login-customer-id"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(logins, ["1112223333", "9998887777"]);
    let err = ads.daily_metrics_via(Some("12-34"), "1234567890", day(1), day(2)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
}

/// Through the API against the simulator: metrics sync and the report act through the
/// client's manager; a bad one is a 422 naming `accounts.google_ads_manager`.
#[sqlx::test]
async fn google_sim_ads_client_manager_reaches_the_simulator(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app
        .post(
            "/v1/clients",
            json!({"name": "Bad MCC", "accounts": {"google_ads": "1234567890", "google_ads_manager": "12345"}}),
        )
        .send()
        .await;
    res.problem(422, "validation_failed");
    assert_eq!(res.error_fields(), ["accounts.google_ads_manager"], "{}", res.text());
    assert!(res.text().contains("manager"), "{}", res.text());

    let client = app
        .create_client(
            json!({"name": "MCC Co", "accounts": {"google_ads": "123-456-7890", "google_ads_manager": "555-444-3333"}}),
        )
        .await;
    assert_eq!(client["accounts"]["google_ads_manager"], "5554443333");
    let to = today() - chrono::Duration::days(3);
    let from = to - chrono::Duration::days(2);
    let res = app
        .post("/v1/clients/mcc-co/metrics/sync", json!({"from": from, "to": to, "platforms": ["google_ads"]}))
        .send()
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let ads = app.sim.state.vendor::<sim::google_ads::State>();
    assert_eq!(ads.login_customer_id("1234567890").as_deref(), Some("5554443333"));
    ads.reset();
    let res =
        app.post("/v1/platforms/google-ads/report", json!({"client": "mcc-co", "from": from, "to": to})).send().await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(ads.login_customer_id("1234567890").as_deref(), Some("5554443333"));
}

// ---------------------------------------------------------------- GET /v1/platforms

#[sqlx::test]
async fn platforms_show_api_versions_sunsets_and_readiness(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let res = app.get("/v1/platforms").send().await;
    assert_eq!(res.status, 200, "{}", res.text());
    let all = res.json();
    let by_key = |k: &str| all.as_array().unwrap().iter().find(|p| p["key"] == k).unwrap().clone();
    let ads = by_key("google_ads");
    assert_eq!((ads["api_version"].as_str(), ads["sunset_on"].as_str()), (Some("v26"), Some("2027-10-14")));
    assert_eq!((ads["ready"].as_bool(), ads["not_ready"].as_array().map(Vec::len)), (Some(true), Some(0)));
    let meta = by_key("meta");
    assert_eq!((meta["api_version"].as_str(), meta["sunset_on"].as_str()), (Some("v25.0"), Some("2028-07-29")));
    assert_eq!(by_key("whatsapp")["sunset_on"], "2028-07-29");
    let drive = by_key("google_drive");
    assert_eq!((drive["api_version"].as_str(), drive["ready"].as_bool()), (Some("v3"), Some(true)));
    assert!(drive["sunset_on"].is_null());
}

/// Live Drive with a key but neither a Shared Drive nor a user to act as is not ready.
#[test]
fn google_drive_without_shared_drive_or_subject_is_not_ready() {
    let key = google_drive::Settings {
        service_account_json: Some(SANDBOX_SERVICE_ACCOUNT_JSON.into()),
        ..google_drive::Settings::default()
    };
    let reasons = GoogleDrive::not_ready(&key, today());
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("GOOGLE_DRIVE_SHARED_DRIVE_ID") && reasons[0].contains("2025-04-15"), "{reasons:?}");
    let settings = switchboard::platforms::PlatformSettings { google_drive: key.clone(), ..Default::default() };
    assert_eq!(settings.readiness("google_drive", today()).not_ready, reasons);
    let shared = google_drive::Settings { shared_drive_id: Some("0Adrive".into()), ..key.clone() };
    assert!(GoogleDrive::not_ready(&shared, today()).is_empty());
    let delegated = google_drive::Settings { subject: Some("ops@agency.example".into()), ..key };
    assert!(GoogleDrive::not_ready(&delegated, today()).is_empty());
    assert!(
        GoogleDrive::not_ready(&google_drive::Settings::default(), today()).is_empty(),
        "unconfigured: missing, not this"
    );
}

// ---------------------------------------------------------------- Drive ownership

fn drive_settings(base: &str) -> google_drive::Settings {
    google_drive::Settings {
        service_account_json: Some(SANDBOX_SERVICE_ACCOUNT_JSON.into()),
        base_url: base.to_string(),
        token_url: Some(format!("{base}/token")),
        retry_base_ms: Some(5),
        ..google_drive::Settings::default()
    }
}

fn sim_drive_settings(base: &str) -> google_drive::Settings {
    drive_settings(&format!("{base}{}", google_drive::INFO.sim_prefix))
}

/// A service account as itself cannot create in My Drive; in the Shared Drive, or acting
/// as a user, it can.
#[tokio::test]
async fn google_sim_drive_service_account_cannot_own_my_drive_items() {
    let (sim, base) = simulator().await;
    let own = GoogleDrive::new(&sim_drive_settings(&base));
    let err = own.create_folder("Acme", "root").await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.status),
        (ErrorKind::Rejected, Some("storageQuotaExceeded"), Some(403))
    );
    assert!(err.message.contains("Service Accounts do not have storage quota"), "{}", err.message);
    assert!(err.message.contains("GOOGLE_DRIVE_SHARED_DRIVE_ID"), "{}", err.message);
    assert_eq!(sim.state.stats().platforms["google_drive"].errors["storageQuotaExceeded"], 1);
    assert!(sim.state.stats().platforms["google_drive"].created.is_empty());

    let shared = GoogleDrive::new(&google_drive::Settings {
        shared_drive_id: Some(sim::google_drive::SANDBOX_SHARED_DRIVE_ID.into()),
        ..sim_drive_settings(&base)
    });
    assert_eq!(shared.ensure_client_folders("Acme").await.unwrap().created, 5);
    let delegated = GoogleDrive::new(&google_drive::Settings {
        subject: Some("ops@agency.example".into()),
        ..sim_drive_settings(&base)
    });
    delegated.create_folder("Acme", "root").await.unwrap();
    // An unknown parent is not found, as on Drive.
    let err = delegated.create_folder("Acme", "no-such-folder").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::NotFound, Some("notFound")));
}

/// Drive's answer, verbatim as clients received it (github.com/Jumbo810/Upload_Github_Artifacts_TO_GDrive/issues/22):
/// not retried, and the message says how to fix it.
#[tokio::test]
async fn google_drive_storage_quota_body_fails_at_once() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let message = "Service Accounts do not have storage quota. Leverage shared drives (https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use OAuth delegation (http://support.google.com/a/answer/7281227) instead.";
    Mock::given(method("GET"))
        .and(path("/drive/v3/files/generateIds"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"kind": "drive#generatedIds", "space": "drive", "ids": ["1abc"]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/drive/v3/files"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {"code": 403, "message": message,
            "errors": [{"message": message, "domain": "usageLimits", "reason": "storageQuotaExceeded"}]}})))
        .mount(&server)
        .await;
    let err = GoogleDrive::new(&drive_settings(&server.uri())).create_folder("Acme", "root").await.unwrap_err();
    assert_eq!((err.code.as_deref(), err.retryable), (Some("storageQuotaExceeded"), false));
    assert!(err.message.starts_with("Service Accounts do not have storage quota"), "{}", err.message);
    assert!(err.message.contains("GOOGLE_DRIVE_SUBJECT"), "{}", err.message);
    let creates = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/drive/v3/files")
        .count();
    assert_eq!(creates, 1);
}

// ---------------------------------------------------------------- Shared Drive visibility

/// Items in a Shared Drive are invisible to a list without both all-drives flags; the
/// connector always sends them, so a parent folder inside a Shared Drive (without
/// GOOGLE_DRIVE_SHARED_DRIVE_ID) still finds its tree and creates it only once.
#[tokio::test]
async fn google_sim_drive_shared_drive_items_need_the_all_drives_flags() {
    let (sim, base) = simulator().await;
    let in_drive = GoogleDrive::new(&google_drive::Settings {
        shared_drive_id: Some(sim::google_drive::SANDBOX_SHARED_DRIVE_ID.into()),
        ..sim_drive_settings(&base)
    });
    let parent = in_drive.create_folder("Clients", sim::google_drive::SANDBOX_SHARED_DRIVE_ID).await.unwrap();

    let visible = in_drive.find_folder("Clients", sim::google_drive::SANDBOX_SHARED_DRIVE_ID).await.unwrap();
    assert_eq!(visible.map(|f| f.id), Some(parent.id.clone()));

    // The same service account, configured only with the parent folder (no drive id).
    let by_parent =
        GoogleDrive::new(&google_drive::Settings { parent_folder_id: parent.id.clone(), ..sim_drive_settings(&base) });
    assert_eq!(by_parent.ensure_client_folders("Acme").await.unwrap().created, 5);
    assert_eq!(by_parent.ensure_client_folders("Acme").await.unwrap().created, 0, "found again: no second tree");
    assert_eq!(sim.state.stats().platforms["google_drive"].created["folders"], 6);
}

/// The simulator's list, asked directly: Shared Drive items only with both flags.
#[tokio::test]
async fn google_sim_drive_list_hides_shared_drive_items_without_flags() {
    let (_sim, base) = simulator().await;
    let drive = GoogleDrive::new(&google_drive::Settings {
        shared_drive_id: Some(sim::google_drive::SANDBOX_SHARED_DRIVE_ID.into()),
        ..sim_drive_settings(&base)
    });
    drive.create_folder("Visible?", sim::google_drive::SANDBOX_SHARED_DRIVE_ID).await.unwrap();
    let token = sim_service_account_token(&base).await;
    let list = |query: &'static str| {
        let url = format!("{base}/google-drive/drive/v3/files?q=name+%3D+%27Visible%3F%27{query}");
        let token = token.clone();
        async move {
            let res = crate::support::http_client().get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["files"].as_array().unwrap().len()
        }
    };
    assert_eq!(list("").await, 0, "no flags: My Drive only");
    assert_eq!(list("&supportsAllDrives=true").await, 0, "one flag is not enough");
    assert_eq!(list("&supportsAllDrives=true&includeItemsFromAllDrives=true").await, 1);
}

/// A JWT-bearer token from the simulated Google for the sandbox service account (no `sub`).
async fn sim_service_account_token(base: &str) -> String {
    use base64::Engine;
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = Utc::now().timestamp();
    let claims = json!({"iss": "sa@x.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/drive",
        "aud": "https://oauth2.googleapis.com/token", "iat": now, "exp": now + 3600});
    let assertion = format!("{}.{}.sig", enc(json!({"alg": "RS256", "typ": "JWT"})), enc(claims));
    let res = crate::support::http_client()
        .post(format!("{base}/google-drive/token"))
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())])
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

/// Without a Shared Drive the connector still lists with both flags (files.list:
/// includeItemsFromAllDrives, supportsAllDrives; valid with the default corpora=user).
#[tokio::test]
async fn google_drive_lists_always_include_all_drives() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .and(query_param("includeItemsFromAllDrives", "true"))
        .and(query_param("supportsAllDrives", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": [{"id": "f1", "name": "Acme"}]})))
        .mount(&server)
        .await;
    let settings =
        google_drive::Settings { parent_folder_id: "1FolderInASharedDrive".into(), ..drive_settings(&server.uri()) };
    let found = GoogleDrive::new(&settings).find_folder("Acme", "1FolderInASharedDrive").await.unwrap();
    assert_eq!(found.map(|f| f.id).as_deref(), Some("f1"));
    let list = &server.received_requests().await.unwrap()[1];
    assert!(!list.url.query().unwrap().contains("corpora="), "no drive: the default corpora");
}

// ---------------------------------------------------------------- create with a generated id

/// generateIds, create with an id, and Drive's 409 `fileIdInUse` on a second create with it;
/// the connector answers the existing folder, so a repeated create makes nothing new.
#[tokio::test]
async fn google_sim_drive_create_with_a_used_id_is_a_conflict_and_reused() {
    let (sim, base) = simulator().await;
    let drive = GoogleDrive::new(&google_drive::Settings {
        shared_drive_id: Some(sim::google_drive::SANDBOX_SHARED_DRIVE_ID.into()),
        ..sim_drive_settings(&base)
    });
    let parent = drive.parent_folder_id().to_string();
    let ids = drive.generate_ids(2).await.unwrap();
    assert_eq!(ids.len(), 2);
    let first = drive.create_folder_with_id("Acme", &parent, &ids[0]).await.unwrap();
    assert_eq!(first.id, ids[0]);
    let again = drive.create_folder_with_id("Acme", &parent, &ids[0]).await.unwrap();
    assert_eq!(again, first);
    let stats = sim.state.stats().platforms["google_drive"].clone();
    assert_eq!((stats.created["folders"], stats.errors["fileIdInUse"]), (1, 1));
    // An id Drive did not generate is refused.
    let err = drive.create_folder_with_id("Acme", &parent, "made-up-id").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Invalid, Some("invalid")));
}

/// Drive's 409 for an id in use ("A file already exists with the provided ID.", reason
/// `fileIdInUse`): the connector fetches that file instead of failing.
#[tokio::test]
async fn google_drive_file_id_in_use_returns_the_existing_folder() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/drive/v3/files"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error": {"code": 409,
            "message": "A file already exists with the provided ID.",
            "errors": [{"domain": "global", "reason": "fileIdInUse", "message": "A file already exists with the provided ID."}]}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files/1kept"))
        .and(query_param("supportsAllDrives", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1kept", "name": "Acme"})))
        .mount(&server)
        .await;
    let drive = GoogleDrive::new(&drive_settings(&server.uri()));
    let folder = drive.create_folder_with_id("Acme", "root", "1kept").await.unwrap();
    assert_eq!((folder.id.as_str(), folder.name.as_str()), ("1kept", "Acme"));
    let posts = |reqs: &[Request]| {
        reqs.iter().filter(|r| r.method.as_str() == "POST" && r.url.path() == "/drive/v3/files").count()
    };
    assert_eq!(posts(&server.received_requests().await.unwrap()), 1, "a conflict is not retried");

    // A run after one whose create timed out once Drive had made the folder (and whose
    // listing does not show it yet): the kept id lands on the 409, and the folder is reused.
    struct Kept;
    impl FolderIds for Kept {
        async fn reserve(&self, _parent: &str, _name: &str, _candidate: String) -> Result<String, PlatformError> {
            Ok("1kept".into())
        }
    }
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files/generateIds"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"kind": "drive#generatedIds", "space": "drive", "ids": ["1a", "1b"]})),
        )
        .mount(&server)
        .await;
    let settings = google_drive::Settings { folder_template: String::new(), ..drive_settings(&server.uri()) };
    let tree = GoogleDrive::new(&settings).ensure_client_folders_with("Acme", &Kept).await.unwrap();
    assert_eq!(tree.root.id, "1kept");
    let bodies: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/drive/v3/files")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["id"], "1kept", "the create used the kept id, not the fresh 1a: {bodies:?}");
}

/// The ids are kept in the database before the create: a second reservation for the same
/// folder answers the first id, and onboarding through the API records one per folder.
#[sqlx::test]
async fn drive_folder_ids_are_kept_before_the_create(pool: PgPool) {
    let ids = switchboard::operations::drive_folders::RecordedFolderIds(&pool);
    assert_eq!(ids.reserve("p1", "Acme", "1first".into()).await.unwrap(), "1first");
    assert_eq!(ids.reserve("p1", "Acme", "1second".into()).await.unwrap(), "1first");
    assert_eq!(ids.reserve("p1", "Other", "1third".into()).await.unwrap(), "1third");

    let app = TestApp::new(pool).await;
    app.create_client(json!({"name": "Kept Co"})).await;
    let res = app.post("/v1/platforms/google-drive/client-folders", json!({"client": "kept-co"})).send().await;
    assert_eq!(res.status, 200, "{}", res.text());
    let root = res.json()["tree"]["root"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.count("SELECT count(*) FROM engine.drive_folder_ids WHERE name <> 'Acme' AND name <> 'Other'").await,
        5
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM engine.drive_folder_ids WHERE name = 'Kept Co' AND file_id = '{root}'"
        ))
        .await,
        1
    );
}
