//! The stored report's way to the client: its PDF into the client's Drive folder
//! (`Reports/YYYY-MM-DD weekly report.pdf`, once per report), then `report.ready`
//! recorded with the outcome in one transaction.
//!
//! Once per report, at two levels: the effect ledger keeps the uploaded file as soon as
//! Drive answers (a retried task reads it back instead of uploading), and the connector
//! looks the file up by its `appProperties` tag before uploading (a task that crashed
//! between Drive's answer and the ledger finds the file it made).

use super::MAX_ATTEMPTS;
use crate::{
    domain::report::{DriveDelivery, ReportReady},
    operations, render,
    store::{self, reports::ReportRow},
    workflows::{StepError, TaskContext},
};

/// The ledger step of the upload.
pub const UPLOAD_STEP: &str = "upload_report_pdf";
/// Why nothing was uploaded for a client without a folder.
pub const NO_FOLDER: &str = "the client has no Drive folder (accounts.drive_folder)";

/// The report's delivery settled and announced: the Drive outcome recorded on the report
/// and `report.ready` emitted, exactly once however often this runs.
pub async fn settle(ctx: &TaskContext, report: &ReportRow) -> Result<ReportReady, StepError> {
    let links = &ctx.runtime.report_links;
    // A retried task whose earlier attempt got this far.
    if let Some(drive) = report.drive() {
        return Ok(report.ready_event(links, &drive));
    }
    let drive = upload(ctx, report).await?;
    let mut conn = ctx.runtime.pool.acquire().await?;
    match store::reports::mark_ready(&mut conn, report, links, &drive).await? {
        Some(event) => Ok(event),
        // Another attempt settled it first: what it recorded stands.
        None => {
            let row = store::reports::find(&mut conn, report.id)
                .await?
                .ok_or_else(|| StepError::permanent("the report was deleted while it was delivered"))?;
            let drive = row.drive().unwrap_or(drive);
            Ok(row.ready_event(links, &drive))
        }
    }
}

/// Uploads the PDF, or says why not. A client without a folder, Drive not configured and a
/// dry run are skips, not failures; a failed upload is tried again while the task has
/// attempts left, and then recorded as the reason (the report still goes out without it).
async fn upload(ctx: &TaskContext, report: &ReportRow) -> Result<DriveDelivery, StepError> {
    let Some(folder) = ctx.client.accounts.drive_folder.as_deref().map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(DriveDelivery::skipped(NO_FOLDER));
    };
    let rt = &ctx.runtime;
    if let Err(e) = rt.platforms.ensure_configured("google_drive") {
        return Ok(DriveDelivery::skipped(format!("Google Drive is not configured: {e}")));
    }
    let uploaded = ctx
        .effect(UPLOAD_STEP, || async {
            let pdf = render_pdf(ctx, report).await?;
            let name = render::file_name(report.period_end, "application/pdf");
            let file = rt.platforms.google_drive.upload_report_pdf(folder, &report.id.to_string(), &name, &pdf).await?;
            Ok(DriveDelivery::Uploaded { file_id: file.id, url: file.web_view_link })
        })
        .await;
    match uploaded {
        Ok(Some(done)) => Ok(done),
        Ok(None) => Ok(DriveDelivery::skipped("dry run: nothing uploaded")),
        // A platform pause returns the task to the queue without spending an attempt.
        Err(e) if e.wait.is_some() => Err(e),
        Err(e) if e.retryable && (ctx.attempt as u32) < MAX_ATTEMPTS => Err(e),
        Err(e) => Ok(DriveDelivery::skipped(format!("upload failed: {e}"))),
    }
}

/// The report's A4 PDF, rendered off the async threads.
async fn render_pdf(ctx: &TaskContext, report: &ReportRow) -> Result<Vec<u8>, StepError> {
    let mut conn = ctx.runtime.pool.acquire().await?;
    let data = operations::reports::data(&mut conn, report, &ctx.client).await?;
    drop(conn);
    tokio::task::spawn_blocking(move || render::pdf(&data))
        .await
        .map_err(|e| StepError::permanent(format!("rendering the PDF stopped: {e}")))?
        .map_err(|e| StepError::permanent(format!("rendering the PDF failed: {}", e.0)))
}
