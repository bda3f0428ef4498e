//! The weekly report's delivery end to end against the in-process simulator: the PDF
//! uploaded once into the client's Drive `Reports/` folder, `report.ready` emitted once
//! after it with the Drive file and absolute PDF/HTML URLs, and the WhatsApp template
//! carrying the link.

use serde_json::{Value, json};
use sqlx::PgPool;
use switchboard::{
    platforms::google_drive::{REPORT_PROPERTY, REPORTS_FOLDER},
    sim::{google_drive, whatsapp},
};
use uuid::Uuid;

use crate::{
    support::{TestApp, test_config},
    workflow_onboarding_reports::{finish, run},
};

const BASE: &str = "https://sb.example.com/switchboard";
const FOLDER_MIME: &str = "application/vnd.google-apps.folder";

async fn app_with_base_url(pool: PgPool) -> TestApp {
    let config = switchboard::config::Config { public_base_url: Some(format!("{BASE}/")), ..test_config() };
    TestApp::with_config(pool, config).await
}

fn week_ending() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Duration::days(2)
}

/// A client with Meta metrics, a WhatsApp number and, when `folder` is set, that Drive folder.
async fn client(app: &TestApp, name: &str, n: u32, folder: Option<&str>) -> Value {
    let mut accounts = json!({"meta": format!("act_77770{n:02}"), "whatsapp": format!("+55119888800{n:02}")});
    if let Some(folder) = folder {
        accounts["drive_folder"] = json!(folder);
    }
    app.create_client(json!({"name": name, "status": "active", "currency": "USD", "accounts": accounts})).await
}

/// The client's folder tree in the simulated Drive (as onboarding makes it); its root's id.
async fn drive_folder(app: &TestApp, name: &str) -> String {
    app.state.platforms.google_drive.ensure_client_folders(name).await.expect("client folders").root.id
}

fn drive_files(app: &TestApp) -> Vec<google_drive::File> {
    let files = app.sim.state.vendor::<google_drive::State>().files();
    files.into_iter().filter(|f| f.mime_type != FOLDER_MIME).collect()
}

async fn ready_events(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar("SELECT data FROM engine.events WHERE type = 'report.ready' ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn report_row(app: &TestApp) -> (Uuid, Option<String>, Option<String>, Option<String>) {
    sqlx::query_as("SELECT id, drive_file_id, drive_url, drive_skipped FROM engine.reports")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Puts a finished run's tasks back in the queue, as after a crash right before they were marked done.
async fn requeue(app: &TestApp, run: Uuid) {
    sqlx::query(
        "UPDATE engine.tasks SET status = 'queued', attempt = 0, run_at = now(), finished_at = NULL WHERE run_id = $1",
    )
    .bind(run)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE engine.runs SET status = 'running', finished_at = NULL WHERE id = $1")
        .bind(run)
        .execute(&app.pool)
        .await
        .unwrap();
}

/// The path and query of an absolute link under [`BASE`].
fn local(url: &str) -> &str {
    url.strip_prefix(BASE).unwrap_or_else(|| panic!("{url} is not under {BASE}"))
}

#[sqlx::test]
async fn weekly_report_uploads_its_pdf_to_drive_and_announces_the_links(pool: PgPool) {
    let app = app_with_base_url(pool).await;
    let folder = drive_folder(&app, "Drive Client").await;
    let c = client(&app, "Drive Client", 1, Some(&folder)).await;
    let (done, tasks) = run(&app, "weekly-report", &[&c], json!({"week_ending": week_ending()}), false).await;
    assert_eq!(done.status.as_str(), "succeeded", "{tasks:?}");

    // One PDF, named for the week, in Reports/ of the client's folder, tagged with the report.
    let (report_id, file_id, drive_url, skipped) = report_row(&app).await;
    let files = drive_files(&app);
    assert_eq!(files.len(), 1, "{files:?}");
    let pdf = &files[0];
    assert_eq!(pdf.name, format!("{} weekly report.pdf", week_ending()));
    assert_eq!(pdf.mime_type, "application/pdf");
    assert!(pdf.size > 1000, "a rendered PDF, not an empty file: {} bytes", pdf.size);
    assert_eq!(pdf.app_properties.get(REPORT_PROPERTY), Some(&report_id.to_string()));
    let all = app.sim.state.vendor::<google_drive::State>().files();
    let reports = all.iter().find(|f| f.id == pdf.parents[0]).expect("the parent folder");
    assert_eq!((reports.name.as_str(), reports.parents.clone()), (REPORTS_FOLDER, vec![folder.clone()]));
    assert_eq!(file_id.as_deref(), Some(pdf.id.as_str()), "the report row has the file");
    assert!(drive_url.as_deref().is_some_and(|u| u.contains(&pdf.id)), "{drive_url:?}");
    assert_eq!(skipped, None);

    // report.ready: after the upload, once, with the Drive file and the absolute URLs.
    let events = ready_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["id"], report_id.to_string());
    assert_eq!(event["drive_file_id"], pdf.id);
    assert_eq!(event["drive_url"].as_str(), drive_url.as_deref());
    assert!(event["drive_skipped"].is_null(), "{event}");
    assert_eq!(event["pdf_url"], format!("{BASE}/v1/reports/{report_id}?format=pdf"));
    assert_eq!(event["html_url"], format!("{BASE}/v1/reports/{report_id}?format=html"));
    // The report's JSON shows the same links.
    let shown = app.get(&format!("/v1/reports/{report_id}")).send().await.json();
    assert_eq!((&shown["drive_url"], &shown["pdf_url"]), (&event["drive_url"], &event["pdf_url"]), "{shown}");
    // The URLs answer with the PDF and the page (Make sends its token; no Accept needed).
    let res = app.get(local(event["pdf_url"].as_str().unwrap())).send().await;
    assert_eq!((res.status.as_u16(), res.header("content-type")), (200, Some("application/pdf")), "{}", res.text());
    assert!(res.body.starts_with(b"%PDF-"));
    let res = app.get(local(event["html_url"].as_str().unwrap())).send().await;
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"), "{}", res.text());
    assert!(res.text().contains("Drive Client"));

    // The WhatsApp template carries the client, the period and the Drive link.
    let messages = app.sim.state.vendor::<whatsapp::State>().messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!((m.kind.as_str(), m.body.as_str()), ("template", "switchboard_weekly_report"));
    assert_eq!(m.params[0], "Drive Client");
    assert!(m.params[1].contains(&week_ending().to_string()), "{:?}", m.params);
    assert_eq!(Some(m.params[2].as_str()), drive_url.as_deref());
    let result = tasks[0].result.as_ref().unwrap();
    assert_eq!(result["drive_file_id"], pdf.id, "{result}");
}

#[sqlx::test]
async fn a_rerun_or_a_crash_after_the_upload_leaves_one_file_and_one_event(pool: PgPool) {
    let app = app_with_base_url(pool).await;
    let folder = drive_folder(&app, "Retry Client").await;
    let c = client(&app, "Retry Client", 2, Some(&folder)).await;
    let (done, tasks) = run(&app, "weekly-report", &[&c], json!({"week_ending": week_ending()}), false).await;
    assert_eq!(done.status.as_str(), "succeeded", "{tasks:?}");
    let (report_id, first_file, ..) = report_row(&app).await;

    // The task again: the report row says the delivery is settled; nothing is uploaded or announced.
    requeue(&app, done.id).await;
    let (again, tasks) = finish(&app, done.id).await;
    assert_eq!(again.status.as_str(), "succeeded", "{tasks:?}");
    assert_eq!(drive_files(&app).len(), 1);
    assert_eq!(ready_events(&app).await.len(), 1);

    // A crash after Drive stored the file but before the ledger and the report row recorded it
    // (so before report.ready was committed): the connector finds the tagged file.
    sqlx::query("DELETE FROM engine.effects WHERE run_id = $1 AND step = 'upload_report_pdf'")
        .bind(done.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE engine.reports SET drive_file_id = NULL, drive_url = NULL, drive_skipped = NULL, ready_at = NULL",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM engine.events WHERE type = 'report.ready'").execute(&app.pool).await.unwrap();
    requeue(&app, done.id).await;
    let (again, tasks) = finish(&app, done.id).await;
    assert_eq!(again.status.as_str(), "succeeded", "{tasks:?}");
    let files = drive_files(&app);
    assert_eq!(files.len(), 1, "no second upload: {files:?}");
    let (same_report, file, ..) = report_row(&app).await;
    assert_eq!((same_report, file.clone()), (report_id, first_file));
    let events = ready_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["drive_file_id"].as_str(), file.as_deref());
    assert_eq!(app.sim.state.vendor::<whatsapp::State>().messages().len(), 1, "the message went once");
}

#[sqlx::test]
async fn without_a_drive_folder_the_upload_is_skipped_and_whatsapp_carries_the_pdf_url(pool: PgPool) {
    let app = app_with_base_url(pool).await;
    let c = client(&app, "Folderless", 3, None).await;
    let (done, tasks) = run(&app, "weekly-report", &[&c], json!({"week_ending": week_ending()}), false).await;
    assert_eq!(done.status.as_str(), "succeeded", "skipping the upload is not a failure: {tasks:?}");
    assert!(drive_files(&app).is_empty());

    let (report_id, file_id, drive_url, skipped) = report_row(&app).await;
    assert_eq!((file_id, drive_url), (None, None));
    assert_eq!(skipped.as_deref(), Some("the client has no Drive folder (accounts.drive_folder)"));
    let events = ready_events(&app).await;
    assert_eq!(events.len(), 1, "report.ready still goes out: {events:?}");
    let event = &events[0];
    assert!(event["drive_url"].is_null() && event["drive_file_id"].is_null(), "{event}");
    assert_eq!(event["drive_skipped"].as_str(), skipped.as_deref());
    let pdf_url = format!("{BASE}/v1/reports/{report_id}?format=pdf");
    assert_eq!(event["pdf_url"], pdf_url);

    let messages = app.sim.state.vendor::<whatsapp::State>().messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].params[2], pdf_url, "no Drive file: the PDF URL is the link");
    assert_eq!(tasks[0].result.as_ref().unwrap()["drive_skipped"].as_str(), skipped.as_deref());
}
