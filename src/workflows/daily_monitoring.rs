//! `daily-monitoring`: per client, sync the ad platforms' metrics for the month
//! (and the trailing week), check pacing, CPA, ROAS, spend anomalies and the daily
//! spend cap, record each finding as an alert (deduplicated per client, kind,
//! subject and day) and send the client one WhatsApp digest of the new ones: the
//! approved digest template (`WHATSAPP_DIGEST_*`), or the full text while the
//! client's 24 h customer-service window is open.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::{StepError, TaskContext, Workflow, WorkflowInfo, parse_params, schema_of};
use crate::{
    domain::{
        alert::AlertKind,
        client::{Client, Targets},
        metrics::DailyMetrics,
        pacing::{self, PacingStatus, round2},
        validation::FieldError,
    },
    operations::{
        messages::{self, Origin, SendError},
        metrics::{self, AdAccount, linked_ad_accounts},
    },
    platforms::{ErrorKind, PlatformError},
    store::{
        self,
        alerts::{Alert, NewAlert, Severity},
    },
};

/// Days before the checked day whose average spend is the anomaly baseline.
const TRAILING_DAYS: i64 = 7;
/// Projected month-end spend above this share of the budget is critical, not just over.
const CRITICAL_OVERSPEND: f64 = 1.3;
/// Alerts listed in one digest; the rest are counted.
const DIGEST_LINES: usize = 12;

pub struct DailyMonitoring;

/// Parameters of `daily-monitoring`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Relative change of a day's spend against the trailing 7-day average that
    /// raises `spend_anomaly` (0.5 = ±50 %; above twice this it is critical). Over 0, at most 10.
    #[serde(default = "default_threshold")]
    #[schema(default = 0.5, exclusive_minimum = 0.0, maximum = 10.0, example = 0.5)]
    pub anomaly_threshold: f64,
    /// The day to check (`YYYY-MM-DD`); default: yesterday in each client's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date, example = "2026-06-14")]
    pub date: Option<NaiveDate>,
    /// Send each client with new alerts one WhatsApp digest.
    #[serde(default = "default_notify")]
    #[schema(default = true)]
    pub notify: bool,
}

fn default_threshold() -> f64 {
    0.5
}

fn default_notify() -> bool {
    true
}

impl Workflow for DailyMonitoring {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: "daily-monitoring",
            title: "Daily monitoring",
            description: "Syncs month-to-date metrics of every linked ad platform, checks budget pacing, CPA and ROAS \
                against targets, spend anomalies against the trailing 7-day average and the daily spend cap, records \
                each finding as an alert (one per client, kind, subject and day) and sends each client one WhatsApp \
                digest of its new alerts.",
            version: 1,
            default_cron: "0 7 * * *",
            default_timezone: "UTC",
            max_attempts: 3,
        }
    }

    fn params_schema(&self) -> Value {
        schema_of::<Params>()
    }

    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>> {
        let (parsed, normalised) = parse_params::<Params>(params)?;
        let mut errors = vec![];
        if !(parsed.anomaly_threshold > 0.0 && parsed.anomaly_threshold <= 10.0) {
            errors.push(FieldError::new("params.anomaly_threshold", "must be over 0 and at most 10 (0.5 = ±50 %)"));
        }
        // The furthest-ahead time zone is a day ahead of UTC at most.
        if parsed.date.is_some_and(|d| d > Utc::now().date_naive() + Duration::days(1)) {
            errors.push(FieldError::new("params.date", "must not be in the future"));
        }
        if errors.is_empty() { Ok(normalised) } else { Err(errors) }
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        let max_attempts = self.info().max_attempts as i32;
        Box::pin(monitor(ctx, max_attempts))
    }
}

/// Yesterday in the client's time zone.
fn yesterday(timezone: &str) -> NaiveDate {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
    Utc::now().with_timezone(&tz).date_naive() - Duration::days(1)
}

async fn monitor(ctx: &TaskContext, max_attempts: i32) -> Result<Value, StepError> {
    let params: Params = ctx.params()?;
    let client = &ctx.client;
    let day = params.date.unwrap_or_else(|| yesterday(&client.timezone));
    let first = day.with_day(1).expect("every month has a 1st");
    let from = first.min(day - Duration::days(TRAILING_DAYS));

    // Platform calls first, with no transaction open.
    let linked = linked_ad_accounts(client);
    let results = metrics::pull(&ctx.runtime.platforms, client.id, &linked, from, day).await;
    let errors: Vec<(bool, String)> =
        results.iter().filter_map(|r| r.as_ref().err()).map(|e| (e.retryable, e.to_string())).collect();
    let complete = errors.is_empty();
    // A platform asked us to stay away for a while (a deferred call, docs/PLATFORMS.md
    // "Capped pauses"): come back when it lets us in rather than alert on a gap we were only
    // told to fetch later. The task waits in the queue without spending an attempt.
    let deferred = results.iter().filter_map(|r| r.as_ref().err()).filter(|e| e.deferred);
    if let Some(wait) = deferred.clone().filter_map(|e| e.retry_after).max()
        && ctx.attempt < max_attempts
    {
        let why: Vec<String> = deferred.map(|e| e.to_string()).collect();
        return Err(StepError::wait(why.join("; "), wait));
    }
    // Every platform failed for a passing reason: worth another attempt while attempts
    // remain; the last one records the failures as alerts and then fails the task.
    let retry_reason = (!linked.is_empty()
        && errors.len() == linked.len()
        && errors.iter().all(|(retryable, _)| *retryable))
    .then(|| {
        let why: Vec<&str> = errors.iter().map(|(_, e)| e.as_str()).collect();
        format!("every ad platform failed: {}", why.join("; "))
    });
    if let Some(reason) = &retry_reason
        && ctx.attempt < max_attempts
    {
        return Err(StepError::transient(reason.clone()));
    }

    let mut platforms = Map::new();
    let mut synced: Vec<(&AdAccount, Vec<DailyMetrics>)> = vec![];
    let mut alerts = vec![];
    for (linked, result) in linked.iter().zip(results) {
        let (platform, account) = (linked.platform.key(), &linked.account);
        match result {
            Ok(days) => synced.push((linked, days)),
            Err(e) => {
                platforms.insert(
                    platform.to_string(),
                    json!({"account": account, "error": e.to_string(), "retryable": e.retryable}),
                );
                alerts.push(platform_error(platform, account, &e));
            }
        }
    }
    let inputs: Vec<(&'static str, &[DailyMetrics])> =
        synced.iter().map(|(a, d)| (a.platform.key(), d.as_slice())).collect();
    alerts.extend(findings(client, day, params.anomaly_threshold, &inputs, complete));

    let mut tx = ctx.runtime.pool.begin().await?;
    for (account, days) in &synced {
        let written = metrics::store_days(&mut tx, client.id, account, days).await?;
        platforms.insert(account.platform.key().to_string(), json!({"account": account.account, "days": written}));
    }
    let recorded = store::alerts::record(&mut tx, client.id, Some(ctx.run.id), day, &alerts).await?;
    tx.commit().await?;

    // New to this run: first raised by it (also in an earlier attempt of this task).
    let new: Vec<&Alert> = recorded.iter().filter(|a| a.run_id == Some(ctx.run.id)).collect();
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    for a in &recorded {
        *kinds.entry(a.kind.as_str()).or_default() += 1;
    }
    let notified = notify(ctx, &params, day, &new).await?;
    if let Some(reason) = retry_reason {
        return Err(StepError::permanent(reason));
    }
    Ok(json!({
        "date": day,
        "platforms": platforms,
        "alerts": {"new": new.len(), "existing": recorded.len() - new.len(), "kinds": kinds},
        "notified": notified,
    }))
}

/// What the WhatsApp digest step came to (recorded in the side-effect ledger).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Delivery {
    Sent {
        message_id: String,
        to: String,
        /// `template` (the default) or `text` (inside the recipient's 24 h window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
    },
    /// WhatsApp refused it for a business reason (e.g. 131026, undeliverable).
    NotSent { reason: String, code: Option<String> },
}

async fn notify(ctx: &TaskContext, params: &Params, day: NaiveDate, new: &[&Alert]) -> Result<Value, StepError> {
    let skipped = |reason: &str| Ok(json!({"status": "skipped", "reason": reason}));
    if !params.notify {
        return skipped("notify is off");
    }
    if new.is_empty() {
        return skipped("no new alerts");
    }
    let Some(to) = ctx.client.accounts.whatsapp.clone() else {
        return skipped("no WhatsApp recipient (accounts.whatsapp)");
    };
    let rt = &ctx.runtime;
    let text = digest(&ctx.client.name, day, new);
    let critical = new.iter().filter(|a| a.severity == Severity::Critical).count();
    // The template's parameters by name (WHATSAPP_DIGEST_PARAMS picks and orders them).
    let values = [
        ("client", ctx.client.name.clone()),
        ("date", day.to_string()),
        ("alerts", new.len().to_string()),
        ("critical", critical.to_string()),
        ("summary", summary_line(new)),
    ];
    let origin = Origin {
        client_id: Some(ctx.client.id),
        run_id: Some(ctx.run.id),
        task_id: Some(ctx.task_id),
        report_id: None,
    };
    let delivery = ctx
        .effect("notify_whatsapp", || async {
            let template = rt.platforms.whatsapp.settings().digest();
            let sent =
                messages::send_proactive(&rt.pool, &rt.platforms.whatsapp, &to, &text, template, &values, &origin)
                    .await;
            match sent {
                Ok(sent) => Ok(Delivery::Sent {
                    message_id: sent.wamid,
                    to: sent.to,
                    kind: Some(sent.kind.as_str().to_string()),
                    template: sent.template,
                }),
                Err(SendError::Platform(e)) if e.kind == ErrorKind::Rejected => {
                    Ok(Delivery::NotSent { reason: e.message, code: e.code })
                }
                Err(e) => Err(StepError::from(e)),
            }
        })
        .await?;
    match delivery {
        Some(d) => Ok(serde_json::to_value(d).unwrap_or_default()),
        None => skipped("dry run"),
    }
}

/// The new alerts on one line for the template, most severe first (the parameter
/// is made single-line and cut to length when sent).
fn summary_line(new: &[&Alert]) -> String {
    let mut sorted = new.to_vec();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.kind.cmp(&b.kind)));
    let parts: Vec<String> = sorted.iter().map(|a| format!("[{}] {}", a.severity.as_str(), a.message)).collect();
    parts.join("; ")
}

/// One message listing the new alerts, most severe first.
fn digest(client: &str, day: NaiveDate, new: &[&Alert]) -> String {
    let mut sorted = new.to_vec();
    sorted.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| a.kind.cmp(&b.kind)).then_with(|| a.subject.cmp(&b.subject))
    });
    let plural = if new.len() == 1 { "" } else { "s" };
    let mut text = format!("Daily check for {client} ({day}): {} new alert{plural}", new.len());
    for a in sorted.iter().take(DIGEST_LINES) {
        let message: String = a.message.chars().take(280).collect();
        text.push_str(&format!("\n- [{}] {message}", a.severity.as_str()));
    }
    if sorted.len() > DIGEST_LINES {
        text.push_str(&format!("\n…and {} more", sorted.len() - DIGEST_LINES));
    }
    text
}

fn label(subject: &str) -> &str {
    match subject {
        "meta" => "Meta",
        "google_ads" => "Google Ads",
        "total" => "Total",
        other => other,
    }
}

fn platform_error(platform: &str, account: &str, e: &PlatformError) -> NewAlert {
    NewAlert {
        kind: AlertKind::PlatformError.as_str(),
        severity: Severity::Warning,
        subject: platform.to_string(),
        message: format!("{} metrics could not be synced: {}", label(platform), e.message),
        data: json!({"platform": platform, "account": account, "kind": e.kind, "code": e.code, "status": e.status, "retryable": e.retryable}),
    }
}

/// Sums over the synced days that the checks need.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Figures {
    spend_mtd: f64,
    conversions_mtd: f64,
    value_mtd: f64,
    spend_day: f64,
    /// Spend of the [`TRAILING_DAYS`] days before the checked day.
    spend_trailing: f64,
}

impl Figures {
    fn of(days: &[DailyMetrics], day: NaiveDate) -> Self {
        let first = day.with_day(1).expect("day 1");
        let trailing_from = day - Duration::days(TRAILING_DAYS);
        let mut f = Figures::default();
        for d in days.iter().filter(|d| d.date <= day) {
            if d.date >= first {
                f.spend_mtd += d.spend;
                f.conversions_mtd += d.conversions;
                f.value_mtd += d.conversion_value;
            }
            if d.date == day {
                f.spend_day += d.spend;
            }
            if d.date >= trailing_from && d.date < day {
                f.spend_trailing += d.spend;
            }
        }
        f
    }

    fn plus(self, o: Figures) -> Figures {
        Figures {
            spend_mtd: self.spend_mtd + o.spend_mtd,
            conversions_mtd: self.conversions_mtd + o.conversions_mtd,
            value_mtd: self.value_mtd + o.value_mtd,
            spend_day: self.spend_day + o.spend_day,
            spend_trailing: self.spend_trailing + o.spend_trailing,
        }
    }
}

/// What the checks of one subject (a platform, or `total`) compare against.
struct Subject<'a> {
    key: &'a str,
    currency: &'a str,
    budget: Option<f64>,
}

/// Every finding for the synced platforms. Totals are checked only when every
/// linked platform synced (a partial total would mislead), and only when there
/// is more than one platform (else the total repeats the platform).
fn findings(
    client: &Client,
    day: NaiveDate,
    threshold: f64,
    synced: &[(&'static str, &[DailyMetrics])],
    complete: bool,
) -> Vec<NewAlert> {
    let mut out = vec![];
    let mut total = Figures::default();
    let mut total_budget = 0.0;
    for (platform, days) in synced {
        let figures = Figures::of(days, day);
        total = total.plus(figures);
        let budget = client.budgets.get(*platform).copied();
        total_budget += budget.unwrap_or(0.0);
        let currency = days.first().map(|d| d.currency.as_str()).unwrap_or(&client.currency);
        let subject = Subject { key: platform, currency, budget };
        out.extend(target_checks(&subject, &figures, &client.targets, day));
        out.extend(anomaly(&subject, &figures, day, threshold));
    }
    if complete && synced.len() > 1 {
        let subject =
            Subject { key: "total", currency: &client.currency, budget: (total_budget > 0.0).then_some(total_budget) };
        out.extend(target_checks(&subject, &total, &client.targets, day));
    }
    if let Some(max) = client.targets.max_daily_spend
        && !synced.is_empty()
        && total.spend_day > max
    {
        let platforms: Vec<&str> = synced.iter().map(|(p, _)| *p).collect();
        out.push(NewAlert {
            kind: AlertKind::MaxDailySpend.as_str(),
            severity: Severity::Critical,
            subject: "total".into(),
            message: format!("Total spend on {day} was {:.2} {}, above the daily maximum of {max:.2}", total.spend_day, client.currency),
            data: json!({"spend": round2(total.spend_day), "max_daily_spend": max, "currency": client.currency, "platforms": platforms, "complete": complete}),
        });
    }
    out
}

/// Pacing against the monthly budget, CPA and ROAS against the targets, month to date.
fn target_checks(s: &Subject, f: &Figures, targets: &Targets, day: NaiveDate) -> Vec<NewAlert> {
    let mut out = vec![];
    let name = label(s.key);
    let c = s.currency;
    let p = pacing::pace(s.key, s.budget, f.spend_mtd, day);
    if let (Some(budget), PacingStatus::Over | PacingStatus::Under) = (s.budget, p.status) {
        let over = p.status == PacingStatus::Over;
        let severity = match over {
            true if p.projected_month_end > CRITICAL_OVERSPEND * budget => Severity::Critical,
            true => Severity::Warning,
            false => Severity::Info,
        };
        let share = p.projected_month_end / budget * 100.0;
        out.push(NewAlert {
            kind: AlertKind::Pacing.as_str(),
            severity,
            subject: s.key.to_string(),
            message: format!(
                "{name} is pacing {} budget: {:.2} {c} spent by {day}, projected {:.2} against a monthly budget of {budget:.2} ({share:.0} %)",
                if over { "over" } else { "under" },
                p.spend_to_date,
                p.projected_month_end
            ),
            data: json!({"pacing": p, "currency": c, "as_of": day}),
        });
    }
    if let Some(target) = targets.cpa
        && f.spend_mtd > 0.0
    {
        let cpa = (f.conversions_mtd > 0.0).then(|| f.spend_mtd / f.conversions_mtd);
        if cpa.is_none_or(|cpa| cpa > target) {
            let message = match cpa {
                Some(cpa) => format!(
                    "{name} month-to-date CPA is {cpa:.2} {c}, above the {target:.2} target ({:.2} spent for {} conversions)",
                    f.spend_mtd, f.conversions_mtd
                ),
                None => format!(
                    "{name} spent {:.2} {c} this month with no conversions (target CPA {target:.2})",
                    f.spend_mtd
                ),
            };
            out.push(NewAlert {
                kind: AlertKind::CpaAboveTarget.as_str(),
                severity: Severity::Warning,
                subject: s.key.to_string(),
                message,
                data: json!({"cpa": cpa.map(round2), "target": target, "spend": round2(f.spend_mtd), "conversions": f.conversions_mtd, "currency": c, "from": day.with_day(1), "to": day}),
            });
        }
    }
    if let Some(target) = targets.roas
        && f.spend_mtd > 0.0
    {
        let roas = f.value_mtd / f.spend_mtd;
        if roas < target {
            out.push(NewAlert {
                kind: AlertKind::RoasBelowTarget.as_str(),
                severity: Severity::Warning,
                subject: s.key.to_string(),
                message: format!(
                    "{name} month-to-date ROAS is {roas:.2}, below the {target:.2} target ({:.2} {c} of conversion value on {:.2} spent)",
                    f.value_mtd, f.spend_mtd
                ),
                data: json!({"roas": (roas * 100.0).round() / 100.0, "target": target, "conversion_value": round2(f.value_mtd), "spend": round2(f.spend_mtd), "currency": c, "from": day.with_day(1), "to": day}),
            });
        }
    }
    out
}

/// The day's spend against the trailing average: beyond ±threshold is a warning,
/// beyond twice that critical. Spend after a silent week counts as infinitely above.
fn anomaly(s: &Subject, f: &Figures, day: NaiveDate, threshold: f64) -> Option<NewAlert> {
    let average = f.spend_trailing / TRAILING_DAYS as f64;
    if average <= 0.0 && f.spend_day <= 0.0 {
        return None;
    }
    let ratio = if average > 0.0 { f.spend_day / average } else { f64::INFINITY };
    let deviation = (ratio - 1.0).abs();
    if deviation <= threshold {
        return None;
    }
    let severity = if deviation > 2.0 * threshold { Severity::Critical } else { Severity::Warning };
    let (name, c) = (label(s.key), s.currency);
    let message = if ratio.is_finite() {
        format!("{name} spend on {day} was {:.2} {c}, {ratio:.1}× the 7-day average ({average:.2})", f.spend_day)
    } else {
        format!("{name} spent {:.2} {c} on {day} after no spend in the previous 7 days", f.spend_day)
    };
    let ratio_value = ratio.is_finite().then(|| (ratio * 100.0).round() / 100.0);
    Some(NewAlert {
        kind: AlertKind::SpendAnomaly.as_str(),
        severity,
        subject: s.key.to_string(),
        message,
        data: json!({"spend": round2(f.spend_day), "trailing_average": round2(average), "ratio": ratio_value, "threshold": threshold, "currency": c}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn figures(spend_day: f64, trailing_average: f64) -> Figures {
        Figures { spend_day, spend_trailing: trailing_average * 7.0, ..Figures::default() }
    }

    fn severity(spend_day: f64, average: f64, threshold: f64) -> Option<Severity> {
        let s = Subject { key: "meta", currency: "BRL", budget: None };
        anomaly(&s, &figures(spend_day, average), day("2026-06-14"), threshold).map(|a| a.severity)
    }

    #[test]
    fn anomaly_bands() {
        assert_eq!(severity(140.0, 100.0, 0.5), None, "within ±50 %");
        assert_eq!(severity(160.0, 100.0, 0.5), Some(Severity::Warning));
        assert_eq!(severity(40.0, 100.0, 0.5), Some(Severity::Warning), "a drop counts too");
        assert_eq!(severity(210.0, 100.0, 0.5), Some(Severity::Critical), "beyond twice the threshold");
        assert_eq!(severity(0.0, 0.0, 0.5), None, "a silent week and a silent day");
        assert_eq!(severity(5.0, 0.0, 0.5), Some(Severity::Critical), "spend after a silent week");
    }

    #[test]
    fn anomaly_message_names_the_ratio() {
        let s = Subject { key: "meta", currency: "BRL", budget: None };
        let a = anomaly(&s, &figures(812.4, 386.1), day("2026-06-14"), 0.5).unwrap();
        assert_eq!(a.message, "Meta spend on 2026-06-14 was 812.40 BRL, 2.1× the 7-day average (386.10)");
    }

    #[test]
    fn figures_split_month_day_and_trailing_week() {
        let row = |date: &str, spend: f64| DailyMetrics {
            date: day(date),
            spend,
            impressions: 0,
            clicks: 0,
            link_clicks: 0,
            conversions: 1.0,
            conversion_value: 2.0 * spend,
            currency: "USD".into(),
        };
        let days = [row("2026-05-30", 10.0), row("2026-06-01", 20.0), row("2026-06-03", 30.0), row("2026-06-04", 99.0)];
        let f = Figures::of(&days, day("2026-06-03"));
        assert_eq!(f.spend_mtd, 50.0);
        assert_eq!(f.conversions_mtd, 2.0);
        assert_eq!(f.spend_day, 30.0);
        assert_eq!(f.spend_trailing, 30.0, "May 30 and June 1, not the day itself nor later days");
    }
}
