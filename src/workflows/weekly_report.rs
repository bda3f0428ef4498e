//! The `weekly-report` workflow: per client, the last 7 days against the 7 before
//! per ad platform (synced first so the figures are fresh), the stored
//! `weekly-report` prompt template rendered with the client, its knowledge and
//! the figures, an LLM summary, the report stored, its PDF uploaded to the client's
//! Drive folder and `report.ready` emitted (`delivery`), and a WhatsApp delivery
//! carrying the Drive link (or the PDF URL): the approved report template
//! (`WHATSAPP_REPORT_*`), or a short text while the client's 24 h customer-service
//! window is open.
//! In a dry run the report is stored with the rendered prompt as its body and
//! nothing is sent (no model call, no upload, no message); `report.ready` still goes out.

mod delivery;

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{StepError, TaskContext, Workflow, WorkflowInfo, parse_params, schema_of};
use crate::{
    domain::{pacing::round2, validation::FieldError},
    operations::{
        messages::{self, Origin},
        metrics::{self, linked_ad_accounts},
    },
    platforms::llm::{Completion, CompletionRequest},
    prompts,
    store::{self, metrics::MetricsRow},
};

pub const KEY: &str = "weekly-report";
const MAX_ATTEMPTS: u32 = 3;
/// The WhatsApp `link` when the report has neither a Drive file nor a public URL.
const NO_LINK: &str = "ask us for the PDF";
/// Longest WhatsApp delivery (the report itself is in `GET /v1/reports/{id}`).
const MESSAGE_CHARS: usize = 700;

pub struct WeeklyReport;

/// Parameters of `weekly-report`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Last day of the reported week (default: yesterday in the client's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date, example = "2026-06-07")]
    pub week_ending: Option<NaiveDate>,
    /// Send the summary to the client's WhatsApp recipient.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub deliver: bool,
    /// The prompt template rendered (its current version).
    #[serde(default = "default_template")]
    #[schema(default = "weekly-report")]
    pub template: String,
}

fn yes() -> bool {
    true
}

fn default_template() -> String {
    prompts::WEEKLY_REPORT.into()
}

/// The message that went out (recorded in the ledger).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sent {
    message_id: String,
    to: String,
    /// `template` (the default) or `text` (inside the client's 24 h window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

impl Workflow for WeeklyReport {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: KEY,
            title: "Weekly report",
            description: "Compares the last 7 days with the 7 before per ad platform (spend, conversions, CPA, ROAS), \
                          renders the `weekly-report` prompt template with the client's knowledge and the figures, asks \
                          the LLM for a summary, stores it as a report and sends it by WhatsApp.",
            version: 1,
            default_cron: "0 8 * * 1",
            default_timezone: "UTC",
            max_attempts: MAX_ATTEMPTS,
        }
    }

    fn params_schema(&self) -> Value {
        schema_of::<Params>()
    }

    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>> {
        let (p, normalised) = parse_params::<Params>(params)?;
        let mut errors = vec![];
        if !prompts::valid_key(&p.template) {
            errors.push(FieldError::new("params.template", "must be a prompt template key (e.g. `weekly-report`)"));
        }
        // A day of slack: "today" differs across time zones.
        if p.week_ending.is_some_and(|d| d > Utc::now().date_naive() + Duration::days(1)) {
            errors.push(FieldError::new("params.week_ending", "must not be in the future"));
        }
        if errors.is_empty() { Ok(normalised) } else { Err(errors) }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(report(ctx))
    }
}

/// The reported week and the one before, as `{start, end, previous_start, previous_end}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub previous_start: NaiveDate,
    pub previous_end: NaiveDate,
}

impl Period {
    pub fn ending(end: NaiveDate) -> Self {
        Period {
            start: end - Duration::days(6),
            end,
            previous_start: end - Duration::days(13),
            previous_end: end - Duration::days(7),
        }
    }
}

async fn report(ctx: &TaskContext) -> Result<Value, StepError> {
    let params: Params = ctx.params()?;
    let client = &ctx.client;
    let rt = &ctx.runtime;
    let tz: chrono_tz::Tz = client.timezone.parse().unwrap_or(chrono_tz::UTC);
    let period = Period::ending(
        params.week_ending.unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive() - Duration::days(1)),
    );

    // Fresh figures: pull both weeks from every linked ad platform, then read what is stored.
    let linked = linked_ad_accounts(client);
    let pulled = metrics::pull(&rt.platforms, client.id, &linked, period.previous_start, period.end).await;
    let mut sync_errors = vec![];
    let mut tx = rt.pool.begin().await?;
    for (account, result) in linked.iter().zip(pulled) {
        let platform = account.platform.key();
        match result {
            Ok(days) => {
                metrics::store_days(&mut tx, client.id, account, &days).await?;
            }
            // Another attempt may find the platform back; the last one reports on what is stored.
            Err(e) if e.retryable && (ctx.attempt as u32) < MAX_ATTEMPTS => return Err(e.into()),
            Err(e) => sync_errors.push(format!("{platform}: {e}")),
        }
    }
    let rows = store::metrics::days(&mut tx, client.id, period.previous_start, period.end, None).await?;
    let mut context = prompts::client_context(&mut tx, client).await?;
    let template = store::prompt_templates::current(&mut tx, &params.template, false).await?.ok_or_else(|| {
        StepError::permanent(format!("no prompt template `{}` (POST /v1/prompt-templates)", params.template))
    })?;
    tx.commit().await?;

    let platforms: Vec<&str> = linked.iter().map(|a| a.platform.key()).collect();
    let figures = figures(&rows, &platforms, &client.currency, period, &sync_errors);
    context.insert("figures".into(), figures.clone());
    context.insert("period".into(), serde_json::to_value(period).unwrap_or_default());
    let (system, prompt) = prompts::render(&template.system, &template.body, context)
        .await
        .map_err(|e| StepError::permanent(format!("prompt template `{}` v{}: {e}", template.key, template.version)))?;

    let completion: Option<Completion> = ctx
        .effect("llm_summary", || async {
            rt.platforms.ensure_configured("llm")?;
            let request = CompletionRequest {
                system: Some(system.clone()).filter(|s| !s.trim().is_empty()),
                prompt: prompt.clone(),
                max_tokens: None,
                temperature: None,
            };
            let completion = rt.platforms.llm.complete(&request).await?;
            // Usage is recorded with the call it counts, so a retry reusing the ledger adds nothing.
            let usage = store::metrics::LlmUsage {
                client_id: Some(client.id),
                provider: completion.provider.as_str(),
                model: &completion.model,
                input_tokens: completion.usage.input_tokens as i32,
                output_tokens: completion.usage.output_tokens as i32,
                purpose: "workflow:weekly-report",
            };
            store::metrics::record_llm_usage(&mut *rt.pool.acquire().await?, &usage).await?;
            Ok(completion)
        })
        .await?;

    let body = match &completion {
        Some(c) => c.text.clone(),
        None => format!(
            "> Dry run: no model was called. This is the prompt that would have been sent.\n\n## System\n\n{system}\n\n## Prompt\n\n{prompt}\n"
        ),
    };
    let mut conn = rt.pool.acquire().await?;
    // A retried task finds the report its earlier attempt stored.
    let stored = match store::reports::find_for_run(&mut conn, ctx.run.id, client.id, KEY).await? {
        Some(r) => r,
        None => {
            let new = store::reports::NewReport {
                client_id: client.id,
                run_id: Some(ctx.run.id),
                kind: KEY,
                period_start: period.start,
                period_end: period.end,
                body: &body,
                figures: &figures,
                model: completion.as_ref().map(|c| c.model.as_str()),
                input_tokens: completion.as_ref().map(|c| c.usage.input_tokens as i32),
                output_tokens: completion.as_ref().map(|c| c.usage.output_tokens as i32),
            };
            store::reports::insert(&mut conn, &new).await?
        }
    };
    drop(conn);

    let ready = delivery::settle(ctx, &stored).await?;
    let link = ready.best_link().unwrap_or(NO_LINK).to_string();

    let delivered = match (&client.accounts.whatsapp, params.deliver) {
        (_, false) => "not requested (deliver: false)".to_string(),
        (None, true) => "skipped: the client has no WhatsApp number (accounts.whatsapp)".to_string(),
        (Some(to), true) => {
            let summary = completion.as_ref().map_or("", |c| c.text.as_str());
            let text = message(&client.name, period, &link, summary);
            // The template's parameters by name (WHATSAPP_REPORT_PARAMS picks and orders them).
            let values = [
                ("client", client.name.clone()),
                ("period", format!("{} – {}", period.start, period.end)),
                ("link", link.clone()),
                ("summary", summary_text(summary)),
                ("report_id", stored.id.to_string()),
            ];
            let origin = Origin {
                client_id: Some(client.id),
                run_id: Some(ctx.run.id),
                task_id: Some(ctx.task_id),
                report_id: Some(stored.id),
            };
            let sent: Option<Sent> = ctx
                .effect("deliver_whatsapp", || async {
                    rt.platforms.ensure_configured("whatsapp")?;
                    let template = rt.platforms.whatsapp.settings().report();
                    let sent = messages::send_proactive(
                        &rt.pool,
                        &rt.platforms.whatsapp,
                        to,
                        &text,
                        template,
                        &values,
                        &origin,
                    )
                    .await?;
                    Ok(Sent { message_id: sent.wamid, to: sent.to, kind: Some(sent.kind.as_str().to_string()) })
                })
                .await?;
            sent.map_or_else(
                || "dry run: not sent".to_string(),
                |s| match s.kind.as_deref() {
                    Some(kind) => format!("sent as {kind} ({})", s.message_id),
                    None => format!("sent ({})", s.message_id),
                },
            )
        }
    };

    Ok(json!({
        "report_id": stored.id,
        "period_start": period.start,
        "period_end": period.end,
        "platforms": platforms,
        "model": stored.model,
        "input_tokens": stored.input_tokens,
        "output_tokens": stored.output_tokens,
        "delivered": delivered,
        "drive_file_id": ready.drive_file_id,
        "drive_url": ready.drive_url,
        "drive_skipped": ready.drive_skipped,
        "sync_errors": sync_errors,
        "dry_run": ctx.run.dry_run,
    }))
}

/// The summary's first lines, for the template's one-line parameter (cut to length when sent).
fn summary_text(summary: &str) -> String {
    let lines: Vec<&str> = summary.lines().map(str::trim).filter(|l| !l.is_empty()).take(6).collect();
    if lines.is_empty() { "see the report in Switchboard".to_string() } else { lines.join(" ") }
}

/// The WhatsApp text (inside the window): a title, the link and the summary's first lines.
fn message(client: &str, period: Period, link: &str, summary: &str) -> String {
    let mut text = format!("Weekly report for {client} ({} to {}): {link}", period.start, period.end);
    for line in summary.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if text.chars().count() + line.chars().count() + 1 > MESSAGE_CHARS {
            break;
        }
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Totals of one week.
#[derive(Debug, Default, Clone, Copy)]
struct Week {
    spend: f64,
    impressions: i64,
    clicks: i64,
    conversions: f64,
    conversion_value: f64,
}

impl Week {
    fn add(&mut self, r: &MetricsRow) {
        self.spend += r.spend;
        self.impressions += r.impressions;
        self.clicks += r.clicks;
        self.conversions += r.conversions;
        self.conversion_value += r.conversion_value;
    }

    fn metrics(&self) -> BTreeMap<&'static str, Option<f64>> {
        BTreeMap::from([
            ("spend", Some(round2(self.spend))),
            ("impressions", Some(self.impressions as f64)),
            ("clicks", Some(self.clicks as f64)),
            ("conversions", Some(round2(self.conversions))),
            ("conversion_value", Some(round2(self.conversion_value))),
            ("cpa", (self.conversions > 0.0).then(|| round2(self.spend / self.conversions))),
            ("roas", (self.spend > 0.0).then(|| round2(self.conversion_value / self.spend))),
        ])
    }
}

/// One platform's (or the total's) two weeks and the change in % per metric
/// (`null` when the previous week's value is 0 or absent).
fn compare(this: &Week, previous: &Week) -> Value {
    let (now, before) = (this.metrics(), previous.metrics());
    let change: BTreeMap<&str, Option<f64>> = now
        .iter()
        .map(|(k, v)| {
            let pct = match (v, before[k]) {
                (Some(v), Some(b)) if b != 0.0 => Some(((v - b) / b * 1000.0).round() / 10.0),
                _ => None,
            };
            (*k, pct)
        })
        .collect();
    json!({"this_week": now, "previous_week": before, "change_pct": change})
}

/// The figures a report is built from: per platform (every linked one, and any
/// with stored days) and in total (only when all share one currency).
pub fn figures(
    rows: &[MetricsRow],
    linked: &[&str],
    client_currency: &str,
    period: Period,
    sync_errors: &[String],
) -> Value {
    let mut weeks: BTreeMap<&str, (Week, Week, Option<&str>)> =
        linked.iter().map(|p| (*p, Default::default())).collect();
    for r in rows {
        let entry = weeks.entry(r.platform.as_str()).or_default();
        entry.2.get_or_insert(r.currency.as_str());
        if r.date >= period.start && r.date <= period.end {
            entry.0.add(r);
        } else if r.date >= period.previous_start && r.date <= period.previous_end {
            entry.1.add(r);
        }
    }
    let mut currencies: Vec<&str> = weeks.values().filter_map(|w| w.2).collect();
    currencies.sort_unstable();
    currencies.dedup();
    let platforms: Vec<Value> = weeks
        .iter()
        .map(|(platform, (this, previous, currency))| {
            let mut v = compare(this, previous);
            v["platform"] = json!(platform);
            v["currency"] = json!(currency.unwrap_or(client_currency));
            v
        })
        .collect();
    let total = match currencies.as_slice() {
        [] | [_] => {
            let (mut this, mut previous) = (Week::default(), Week::default());
            for (t, p, _) in weeks.values() {
                for (sum, w) in [(&mut this, t), (&mut previous, p)] {
                    sum.spend += w.spend;
                    sum.impressions += w.impressions;
                    sum.clicks += w.clicks;
                    sum.conversions += w.conversions;
                    sum.conversion_value += w.conversion_value;
                }
            }
            let mut v = compare(&this, &previous);
            v["currency"] = json!(currencies.first().copied().unwrap_or(client_currency));
            v
        }
        // Spend in different currencies does not add up.
        _ => Value::Null,
    };
    json!({"period": period, "platforms": platforms, "total": total, "sync_errors": sync_errors})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(platform: &str, date: &str, spend: f64, conversions: f64, value: f64, currency: &str) -> MetricsRow {
        MetricsRow {
            platform: platform.into(),
            date: date.parse().unwrap(),
            spend,
            impressions: 1000,
            clicks: 10,
            link_clicks: Some(9),
            conversions,
            conversion_value: value,
            currency: currency.into(),
        }
    }

    #[test]
    fn weeks_compare_per_platform_and_in_total() {
        let period = Period::ending("2026-06-14".parse().unwrap());
        assert_eq!(
            (period.start.to_string(), period.previous_start.to_string(), period.previous_end.to_string()),
            ("2026-06-08".into(), "2026-06-01".into(), "2026-06-07".into())
        );
        let rows = [
            row("meta", "2026-06-01", 100.0, 4.0, 200.0, "USD"),
            row("meta", "2026-06-09", 60.0, 2.0, 90.0, "USD"),
            row("meta", "2026-06-14", 60.0, 1.0, 90.0, "USD"),
            row("meta", "2026-05-31", 999.0, 1.0, 1.0, "USD"), // outside both weeks
        ];
        let f = figures(&rows, &["google_ads", "meta"], "BRL", period, &[]);
        let meta = &f["platforms"][1];
        assert_eq!(meta["platform"], "meta");
        assert_eq!(meta["this_week"]["spend"], 120.0);
        assert_eq!(meta["this_week"]["cpa"], 40.0);
        assert_eq!(meta["previous_week"]["cpa"], 25.0);
        assert_eq!(meta["change_pct"]["spend"], 20.0);
        assert_eq!(meta["change_pct"]["cpa"], 60.0);
        assert_eq!(meta["this_week"]["roas"], 1.5);
        // Linked but silent: zeros in the client's currency, no ratios, no change.
        let ads = &f["platforms"][0];
        assert_eq!((ads["currency"].as_str(), ads["this_week"]["spend"].as_f64()), (Some("BRL"), Some(0.0)));
        assert!(ads["this_week"]["cpa"].is_null() && ads["change_pct"]["spend"].is_null());
        assert_eq!(f["total"]["this_week"]["spend"], 120.0);
        assert_eq!(f["total"]["currency"], "USD");
    }

    #[test]
    fn mixed_currencies_have_no_total() {
        let period = Period::ending("2026-06-14".parse().unwrap());
        let rows =
            [row("meta", "2026-06-09", 1.0, 0.0, 0.0, "USD"), row("google_ads", "2026-06-09", 1.0, 0.0, 0.0, "EUR")];
        assert!(figures(&rows, &["meta", "google_ads"], "USD", period, &[])["total"].is_null());
    }

    #[test]
    fn message_keeps_the_first_lines_within_the_limit() {
        let period = Period::ending("2026-06-14".parse().unwrap());
        let summary = format!("# Headline\n\n- one\n{}\n- never", "x".repeat(MESSAGE_CHARS));
        let text = message("Acme", period, "https://drive.google.com/file/d/f/view", &summary);
        assert_eq!(
            text,
            "Weekly report for Acme (2026-06-08 to 2026-06-14): https://drive.google.com/file/d/f/view\n# Headline\n- one"
        );
    }

    #[test]
    fn params_default_and_name_bad_fields() {
        let p = WeeklyReport.check_params(&Value::Null).unwrap();
        assert_eq!(p, json!({"deliver": true, "template": "weekly-report"}));
        let fields =
            |v: Value| WeeklyReport.check_params(&v).unwrap_err().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(json!({"template": "Not A Key"})), ["params.template"]);
        assert_eq!(fields(json!({"week_ending": "2999-01-01"})), ["params.week_ending"]);
        assert_eq!(fields(json!({"week_ending": "last monday"})), ["params.week_ending"]);
    }
}
