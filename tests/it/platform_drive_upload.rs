//! The Drive connector's report upload against wiremock (Drive's documented answers) and
//! against the built-in simulator.

use serde_json::{Value, json};
use switchboard::{
    platforms::google_drive::{self, GoogleDrive, REPORT_PROPERTY, Upload},
    sim::{self, Behaviour, google_drive::SANDBOX_SERVICE_ACCOUNT_JSON},
};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path, query_param},
};

fn drive_settings(base: &str) -> google_drive::Settings {
    google_drive::Settings {
        service_account_json: Some(SANDBOX_SERVICE_ACCOUNT_JSON.into()),
        base_url: base.to_string(),
        token_url: Some(format!("{base}/token")),
        rate_per_second: Some(1000.0),
        burst: Some(100),
        retry_base_ms: Some(5),
        max_wait_secs: Some(10.0),
        ..google_drive::Settings::default()
    }
}

async fn mount_basics(server: &MockServer, listed: Value) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "ya29.t", "expires_in": 3599, "token_type": "Bearer"})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/drive/v3/files/generateIds"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"kind": "drive#generatedIds", "space": "drive", "ids": ["g1"]})),
        )
        .mount(server)
        .await;
    // The Reports folder exists; the tag search answers `listed`.
    Mock::given(method("GET"))
        .and(path("/drive/v3/files"))
        .respond_with(move |req: &Request| {
            let q = req.url.query_pairs().find(|(k, _)| k == "q").unwrap().1.into_owned();
            if q.contains("appProperties has") {
                ResponseTemplate::new(200).set_body_json(listed.clone())
            } else {
                ResponseTemplate::new(200).set_body_json(json!({"files": [{"id": "rep", "name": "Reports"}]}))
            }
        })
        .mount(server)
        .await;
}

fn uploads(requests: &[Request]) -> Vec<&Request> {
    requests.iter().filter(|r| r.url.path() == "/upload/drive/v3/files").collect()
}

#[tokio::test]
async fn drive_uploads_a_report_as_multipart_related_with_its_tag() {
    let server = MockServer::start().await;
    mount_basics(&server, json!({"files": []})).await;
    // Drive's documented answer is the File resource with the fields asked for.
    Mock::given(method("POST"))
        .and(path("/upload/drive/v3/files"))
        .and(query_param("uploadType", "multipart"))
        .and(query_param("supportsAllDrives", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "g1", "name": "2026-06-14 weekly report.pdf",
            "webViewLink": "https://drive.google.com/file/d/g1/view?usp=drivesdk"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let drive = GoogleDrive::new(&drive_settings(&server.uri()));
    let file =
        drive.upload_report_pdf("client-folder", "r-1", "2026-06-14 weekly report.pdf", b"%PDF-1.7 x").await.unwrap();
    assert_eq!(file.id, "g1");
    assert_eq!(file.web_view_link.as_deref(), Some("https://drive.google.com/file/d/g1/view?usp=drivesdk"));

    let requests = server.received_requests().await.unwrap();
    let searches: Vec<String> = requests
        .iter()
        .filter_map(|r| r.url.query_pairs().find(|(k, _)| k == "q").map(|(_, v)| v.into_owned()))
        .collect();
    assert!(
        searches.iter().any(|q| q.contains("appProperties has { key='switchboard_report' and value='r-1' }")
            && q.starts_with("'rep' in parents")),
        "{searches:?}"
    );
    let upload = uploads(&requests)[0];
    let content_type = upload.headers.get("content-type").unwrap().to_str().unwrap();
    let boundary = content_type.strip_prefix("multipart/related; boundary=").expect(content_type);
    let body = String::from_utf8_lossy(&upload.body);
    let parts: Vec<&str> = body.split(&format!("--{boundary}")).collect();
    assert_eq!(parts.len(), 4, "preamble, metadata, media, closing: {body}");
    let metadata: Value = serde_json::from_str(parts[1].split("\r\n\r\n").nth(1).unwrap().trim()).unwrap();
    assert_eq!(metadata["parents"], json!(["rep"]));
    assert_eq!(metadata["name"], "2026-06-14 weekly report.pdf");
    assert_eq!(metadata["mimeType"], "application/pdf");
    assert_eq!(metadata["appProperties"][REPORT_PROPERTY], "r-1");
    assert!(parts[2].starts_with("\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7 x"), "{}", parts[2]);
}

#[tokio::test]
async fn drive_reuses_the_tagged_file_instead_of_uploading_again() {
    let server = MockServer::start().await;
    mount_basics(
        &server,
        json!({"files": [{"id": "old", "name": "x.pdf", "webViewLink": "https://drive.google.com/file/d/old/view"}]}),
    )
    .await;
    let drive = GoogleDrive::new(&drive_settings(&server.uri()));
    let file = drive.upload_report_pdf("client-folder", "r-1", "x.pdf", b"%PDF").await.unwrap();
    assert_eq!(file.id, "old");
    assert!(uploads(&server.received_requests().await.unwrap()).is_empty());
}

// ---------------------------------------------------------------- simulator

fn sim_drive(base: &str) -> GoogleDrive {
    GoogleDrive::new(
        &google_drive::Settings { retry_base_ms: Some(5), ..google_drive::Settings::default() }
            .sandboxed(&format!("{base}{}", google_drive::INFO.sim_prefix)),
    )
}

#[tokio::test]
async fn drive_sim_stores_a_report_once_in_the_reports_folder() {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let drive = sim_drive(&running.base_url);
    let tree = drive.ensure_client_folders("Acme").await.unwrap();
    let first =
        drive.upload_report_pdf(&tree.root.id, "r-1", "2026-06-14 weekly report.pdf", b"%PDF-1.7 one").await.unwrap();
    let again =
        drive.upload_report_pdf(&tree.root.id, "r-1", "2026-06-14 weekly report.pdf", b"%PDF-1.7 one").await.unwrap();
    assert_eq!(first, again, "the second call finds the tagged file");
    assert!(first.web_view_link.as_deref().unwrap().starts_with("https://drive.google.com/file/d/"));
    let other =
        drive.upload_report_pdf(&tree.root.id, "r-2", "2026-06-21 weekly report.pdf", b"%PDF-1.7 two").await.unwrap();
    assert_ne!(other.id, first.id);

    let files = running.state.vendor::<sim::google_drive::State>().files();
    let reports = files.iter().find(|f| f.name == "Reports" && f.parents == [tree.root.id.clone()]).unwrap();
    let pdfs: Vec<_> = files.iter().filter(|f| f.mime_type == "application/pdf").collect();
    assert_eq!(pdfs.len(), 2, "{pdfs:?}");
    assert!(pdfs.iter().all(|f| f.parents == [reports.id.clone()]));
    assert_eq!(pdfs[0].app_properties[REPORT_PROPERTY], "r-1");
    assert_eq!(pdfs[0].size, b"%PDF-1.7 one".len());
    assert_eq!(files.iter().filter(|f| f.name == "Reports").count(), 1, "the Reports folder is reused");
}

#[tokio::test]
async fn drive_sim_refuses_uploads_drive_refuses() {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let drive = sim_drive(&running.base_url);
    let parent = drive.parent_folder_id().to_string();
    let drive = &drive;
    let upload = |name: &'static str, parent: String| async move {
        let file = Upload { name, parent: &parent, mime_type: "application/pdf", tag: ("k", "v"), bytes: b"%PDF" };
        let id = drive.generate_ids(1).await.unwrap().remove(0);
        drive.upload_with_id(&file, &id).await
    };
    let pdf = upload("a.pdf", parent.clone()).await.unwrap();
    // A file is not a folder: 400 invalid.
    let err = upload("b.pdf", pdf.id.clone()).await.unwrap_err();
    assert_eq!((err.status, err.code.as_deref()), (Some(400), Some("invalid")), "{err:?}");
    assert!(err.message.contains("not a folder"), "{}", err.message);
    // A parent that does not exist: 404 notFound.
    let err = upload("c.pdf", "nope".into()).await.unwrap_err();
    assert_eq!((err.status, err.code.as_deref()), (Some(404), Some("notFound")));

    // Raw requests: no name, and a Shared Drive parent without supportsAllDrives.
    let client = reqwest::Client::new();
    let token = "ya29.sim-sa-test";
    let send = |query: &'static str, metadata: Value| {
        let body = format!(
            "--b\r\nContent-Type: application/json\r\n\r\n{metadata}\r\n--b\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b--\r\n"
        );
        client
            .post(format!("{}{}/upload/drive/v3/files?{query}", running.base_url, google_drive::INFO.sim_prefix))
            .bearer_auth(token)
            .header("content-type", "multipart/related; boundary=b")
            .body(body)
            .send()
    };
    let unnamed = send("uploadType=multipart&supportsAllDrives=true", json!({"parents": [parent]})).await.unwrap();
    assert_eq!(unnamed.status(), 400);
    let body: Value = unnamed.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "required");
    let hidden = send("uploadType=multipart", json!({"name": "d.pdf", "parents": [parent]})).await.unwrap();
    assert_eq!(hidden.status(), 404, "a Shared Drive parent is invisible without supportsAllDrives");
    let resumable = send("uploadType=resumable&supportsAllDrives=true", json!({"name": "e.pdf", "parents": [parent]}))
        .await
        .unwrap();
    assert_eq!(resumable.status(), 400);
    let pdfs = running
        .state
        .vendor::<sim::google_drive::State>()
        .files()
        .into_iter()
        .filter(|f| f.mime_type == "application/pdf")
        .count();
    assert_eq!(pdfs, 1, "nothing refused was stored");
}
