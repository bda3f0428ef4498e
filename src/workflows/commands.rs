//! WhatsApp commands from allow-listed numbers: `help`, `status <client>`,
//! `run <workflow> [client]`, `report <client>`. Parsing is pure; [`answer`]
//! carries a command out and returns the reply text. The workflows a command can
//! name come from the registry, so a new workflow is runnable with no change here.

use std::fmt::Write as _;

use serde_json::json;

use super::{Runtime, runs};
use crate::{
    domain::client::Client,
    operations,
    store::{self, audit::Actor, clients::ClientKey, runs::RunTrigger},
};

/// Characters of a report quoted by `report <client>`.
pub const REPORT_EXCERPT_CHARS: usize = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Status {
        client: String,
    },
    Run {
        workflow: String,
        client: Option<String>,
    },
    Report {
        client: String,
    },
    /// A known command with the wrong arguments: the usage line to send back.
    Usage(&'static str),
    Unknown,
}

const USAGE: [&str; 4] = ["help", "status <client>", "run <workflow> [client]", "report <client>"];

/// Reads a message: the first word is the command (any case), the rest its arguments.
pub fn parse(text: &str) -> Command {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    let Some((first, args)) = words.split_first() else {
        return Command::Unknown;
    };
    match (first.trim_start_matches('/'), args) {
        ("help" | "?", _) => Command::Help,
        ("status", [client]) => Command::Status { client: client.clone() },
        ("status", _) => Command::Usage(USAGE[1]),
        ("run", [workflow]) => Command::Run { workflow: workflow.clone(), client: None },
        ("run", [workflow, client]) => Command::Run { workflow: workflow.clone(), client: Some(client.clone()) },
        ("run", _) => Command::Usage(USAGE[2]),
        ("report", [client]) => Command::Report { client: client.clone() },
        ("report", _) => Command::Usage(USAGE[3]),
        _ => Command::Unknown,
    }
}

impl Command {
    /// What is stored as the message's `command`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::Status { .. } => "status",
            Command::Run { .. } => "run",
            Command::Report { .. } => "report",
            Command::Usage(_) => "usage",
            Command::Unknown => "unknown",
        }
    }
}

/// Carries out `command` for `sender` (E.164) and returns the reply.
pub async fn answer(rt: &Runtime, sender: &str, command: &Command) -> String {
    let outcome = match command {
        Command::Help => Ok(help(rt)),
        Command::Status { client } => status(rt, client).await,
        Command::Run { workflow, client } => run(rt, sender, workflow, client.as_deref()).await,
        Command::Report { client } => report(rt, client).await,
        Command::Usage(usage) => Ok(format!("Usage: {usage}. Send `help` for the commands.")),
        Command::Unknown => Ok("Unknown command. Send `help` for the list of commands.".to_string()),
    };
    outcome.unwrap_or_else(|e| {
        tracing::error!(error = %e, command = command.name(), "WhatsApp command failed");
        "Sorry, that failed on our side; please try again in a moment.".to_string()
    })
}

fn help(rt: &Runtime) -> String {
    let mut text = String::from("Commands:\n");
    for usage in USAGE {
        let _ = writeln!(text, "• {usage}");
    }
    text.push_str("Workflows:\n");
    for w in rt.workflows.all() {
        let info = w.info();
        let _ = writeln!(text, "• {} — {}", info.key, info.title);
    }
    text.push_str("<client> is a client's slug or id.");
    text
}

/// The client named in a command, or the reply saying there is none.
async fn find_client(rt: &Runtime, raw: &str) -> anyhow::Result<Result<Client, String>> {
    let mut conn = rt.pool.acquire().await?;
    let found = store::clients::find(&mut conn, &ClientKey::parse(raw), false).await?;
    Ok(found.ok_or_else(|| format!("No client `{raw}`. Use the client's slug (e.g. acme-coffee) or id.")))
}

fn money(x: f64) -> String {
    format!("{x:.2}")
}

async fn status(rt: &Runtime, raw: &str) -> anyhow::Result<String> {
    let client = match find_client(rt, raw).await? {
        Ok(c) => c,
        Err(reply) => return Ok(reply),
    };
    let mut conn = rt.pool.acquire().await?;
    let pacing = operations::pacing::month(&mut conn, &client, None).await?;
    let alerts = store::inbound::open_alerts(&mut conn, client.id).await?;
    let mut text =
        format!("{} — pacing {} (as of {}, {}):\n", client.name, pacing.month, pacing.as_of, pacing.currency);
    for p in &pacing.platforms {
        let status = serde_json::to_value(p.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let budget = p.budget.map(money).unwrap_or_else(|| "no budget".into());
        let _ = writeln!(
            text,
            "• {}: spent {} of {}, projected {} ({})",
            p.platform,
            money(p.spend_to_date),
            budget,
            money(p.projected_month_end),
            status.replace('_', " ")
        );
    }
    let _ = write!(text, "Open alerts: {alerts}");
    Ok(text)
}

async fn run(rt: &Runtime, sender: &str, key: &str, client: Option<&str>) -> anyhow::Result<String> {
    let Some(workflow) = rt.workflows.get(key).cloned() else {
        return Ok(format!("Unknown workflow `{key}`. Workflows: {}.", rt.workflows.keys().join(", ")));
    };
    let info = workflow.info();
    let params = match workflow.check_params(&json!({})) {
        Ok(p) => p,
        Err(fields) => {
            let names: Vec<String> = fields.iter().map(|f| format!("{} ({})", f.field, f.message)).collect();
            return Ok(format!(
                "`{key}` needs parameters that a message cannot give: {}. Start it from the API.",
                names.join(", ")
            ));
        }
    };
    let target = match client {
        Some(raw) => match find_client(rt, raw).await? {
            Ok(c) => Some(c),
            Err(reply) => return Ok(reply),
        },
        None => None,
    };
    let ids = target.as_ref().map(|c| vec![c.id]);
    let actor = Actor { token_id: None, name: format!("whatsapp:{sender}"), request_id: None };
    let mut tx = rt.pool.begin().await?;
    let start = runs::Start {
        workflow: workflow.as_ref(),
        params: &params,
        trigger: RunTrigger::Whatsapp,
        dry_run: false,
        callback_url: None,
        schedule_id: None,
        client_ids: ids.as_deref(),
    };
    let run = runs::start(&mut tx, &actor, &start).await?;
    let tasks = store::runs::counts(&mut tx, run.id).await?.total();
    tx.commit().await?;
    let whom = match &target {
        Some(c) => c.name.clone(),
        None => format!("{tasks} active client{}", if tasks == 1 { "" } else { "s" }),
    };
    Ok(format!("Started {} for {whom}. Run {}.", info.key, run.id))
}

async fn report(rt: &Runtime, raw: &str) -> anyhow::Result<String> {
    let client = match find_client(rt, raw).await? {
        Ok(c) => c,
        Err(reply) => return Ok(reply),
    };
    let mut conn = rt.pool.acquire().await?;
    let Some(r) = store::inbound::latest_report(&mut conn, client.id).await? else {
        return Ok(format!("No report yet for {}.", client.name));
    };
    let mut excerpt: String = r.body.chars().take(REPORT_EXCERPT_CHARS).collect();
    if r.body.chars().count() > REPORT_EXCERPT_CHARS {
        excerpt.push('…');
    }
    Ok(format!("{} — {} report, {} to {}:\n\n{excerpt}", client.name, r.kind, r.period_start, r.period_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_in_any_case() {
        assert_eq!(parse("help"), Command::Help);
        assert_eq!(parse("  HELP me "), Command::Help);
        assert_eq!(parse("Status Acme-Coffee"), Command::Status { client: "acme-coffee".into() });
        assert_eq!(parse("RUN daily-monitoring"), Command::Run { workflow: "daily-monitoring".into(), client: None });
        assert_eq!(
            parse("run Weekly-Report acme"),
            Command::Run { workflow: "weekly-report".into(), client: Some("acme".into()) }
        );
        assert_eq!(parse("report acme"), Command::Report { client: "acme".into() });
    }

    #[test]
    fn wrong_arguments_get_the_usage_and_the_rest_is_unknown() {
        assert_eq!(parse("status"), Command::Usage("status <client>"));
        assert_eq!(parse("run"), Command::Usage("run <workflow> [client]"));
        assert_eq!(parse("run a b c"), Command::Usage("run <workflow> [client]"));
        assert_eq!(parse("report"), Command::Usage("report <client>"));
        assert_eq!(parse("hello there"), Command::Unknown);
        assert_eq!(parse("   "), Command::Unknown);
        assert_eq!(parse("hello").name(), "unknown");
    }
}
