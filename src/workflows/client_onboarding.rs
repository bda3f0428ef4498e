//! The `client-onboarding` workflow: per client, the Drive folder tree, the ClickUp
//! onboarding list and its tasks, the WhatsApp welcome template, then the client
//! becomes `active`. Safe to re-run: Drive and ClickUp are find-or-create, the
//! welcome goes out once per client (an earlier run's ledger entry is honoured),
//! and the ledger keeps a retried task from repeating anything.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{StepError, TaskContext, Workflow, WorkflowInfo, parse_params, schema_of};
use crate::{
    domain::{
        client::{Client, ClientInput, ClientStatus},
        validation::{FieldError, Violations},
    },
    operations::{
        self,
        messages::{Content, Origin},
    },
    platforms::{
        clickup::{ListLocation, default_onboarding_template},
        google_drive::FolderTree,
    },
    store,
};

/// The ledger step of the welcome message (sent once per client, whatever the run).
const WELCOME_STEP: &str = "welcome_message";

pub const KEY: &str = "client-onboarding";

pub struct ClientOnboarding;

/// Parameters of `client-onboarding`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// ClickUp space for the onboarding list (default `CLICKUP_SPACE_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    /// Or this ClickUp folder (default `CLICKUP_FOLDER_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// Approved WhatsApp template sent as the welcome; its `{{1}}` is the client's name.
    #[serde(default = "default_welcome")]
    #[schema(default = "welcome_client")]
    pub welcome_template: String,
    /// The template's language code.
    #[serde(default = "default_language")]
    #[schema(default = "en_US")]
    pub language: String,
    /// Set the client `active` at the end (only a client still `onboarding`).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub activate: bool,
}

fn default_welcome() -> String {
    "welcome_client".into()
}

fn default_language() -> String {
    "en_US".into()
}

fn yes() -> bool {
    true
}

/// What the ClickUp step created or found (recorded in the ledger).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClickupProject {
    list_id: String,
    list_created: bool,
    task_ids: Vec<String>,
    tasks_created: usize,
}

/// A WhatsApp message that went out (recorded in the ledger).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sent {
    message_id: String,
    to: String,
}

impl Workflow for ClientOnboarding {
    fn info(&self) -> WorkflowInfo {
        WorkflowInfo {
            key: KEY,
            title: "Client onboarding",
            description: "Creates the client's Drive folder tree and ClickUp onboarding list with its tasks, sends the \
                          WhatsApp welcome template, stores the Drive folder and ClickUp list on the client and sets it \
                          active. Safe to re-run: nothing is created twice.",
            version: 1,
            // The scheduler needs a schedule; this one is seeded disabled (onboarding is usually run on demand).
            default_cron: "0 9 * * 1",
            default_timezone: "UTC",
            max_attempts: 3,
        }
    }

    fn params_schema(&self) -> Value {
        schema_of::<Params>()
    }

    fn check_params(&self, params: &Value) -> Result<Value, Vec<FieldError>> {
        let (p, normalised) = parse_params::<Params>(params)?;
        let mut v = Violations::default();
        if p.space_id.is_some() && p.folder_id.is_some() {
            v.add("params.folder_id", "give space_id or folder_id, not both");
        }
        for (field, value) in [("params.space_id", &p.space_id), ("params.folder_id", &p.folder_id)] {
            if let Some(id) = value {
                v.text(field, id, 1, 64);
            }
        }
        for (field, value, max) in
            [("params.welcome_template", &p.welcome_template, 512), ("params.language", &p.language, 15)]
        {
            v.text(field, value, 1, max);
            if value.chars().any(char::is_whitespace) {
                v.add(field, "must not contain spaces");
            }
        }
        v.finish(normalised)
    }

    fn run<'a>(&'a self, ctx: &'a TaskContext) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(onboard(ctx))
    }
}

async fn onboard(ctx: &TaskContext) -> Result<Value, StepError> {
    let params: Params = ctx.params()?;
    let platforms = &ctx.runtime.platforms;
    let name = ctx.client.name.clone();
    let mut notes: Vec<String> = vec![];

    let folders: Option<FolderTree> = ctx
        .effect("drive_folders", || async {
            platforms.ensure_configured("google_drive")?;
            let ids = operations::drive_folders::RecordedFolderIds(&ctx.runtime.pool);
            Ok(platforms.google_drive.ensure_client_folders_with(&name, &ids).await?)
        })
        .await?;

    let project: Option<ClickupProject> = ctx
        .effect("clickup_project", || async {
            platforms.ensure_configured("clickup")?;
            let location = match (&params.space_id, &params.folder_id) {
                (Some(space), _) => ListLocation::Space(space.clone()),
                (_, Some(folder)) => ListLocation::Folder(folder.clone()),
                _ => platforms.clickup.settings().default_location().ok_or_else(|| {
                    StepError::permanent(
                        "no ClickUp location: give params.space_id or params.folder_id, or set CLICKUP_SPACE_ID",
                    )
                })?,
            };
            let (list, list_created) =
                platforms.clickup.find_or_create_list(&format!("{name} — Onboarding"), location).await?;
            let tasks = platforms
                .clickup
                .ensure_tasks(&list.id, &default_onboarding_template(), chrono::Utc::now().date_naive())
                .await?;
            Ok(ClickupProject {
                list_id: list.id,
                list_created,
                task_ids: tasks.task_ids,
                tasks_created: tasks.created,
            })
        })
        .await?;

    // Store the links before the message, so a WhatsApp failure does not lose them.
    let drive_folder = folders.as_ref().map(|f| f.root.id.clone());
    let clickup_list = project.as_ref().map(|p| p.list_id.clone());
    let mut client = update_client(ctx, |input| {
        if let Some(id) = &drive_folder {
            input.accounts.drive_folder = Some(id.clone());
        }
        if let Some(id) = &clickup_list {
            input.accounts.clickup_list = Some(id.clone());
        }
    })
    .await?;

    let welcome = match client.accounts.whatsapp.clone() {
        None => "skipped: the client has no WhatsApp number (accounts.whatsapp)".to_string(),
        Some(to) => match welcomed_in(ctx).await? {
            Some(run) => format!("skipped: already sent in run {run}"),
            None => {
                let origin = Origin {
                    client_id: Some(ctx.client.id),
                    run_id: Some(ctx.run.id),
                    task_id: Some(ctx.task_id),
                    report_id: None,
                };
                let sent: Option<Sent> = ctx
                    .effect(WELCOME_STEP, || async {
                        platforms.ensure_configured("whatsapp")?;
                        // Always the template: a new client has not written to us yet.
                        let content = Content::Template {
                            name: &params.welcome_template,
                            language: &params.language,
                            params: std::slice::from_ref(&name),
                        };
                        let sent =
                            operations::messages::send(&ctx.runtime.pool, &platforms.whatsapp, &to, content, &origin)
                                .await?;
                        Ok(Sent { message_id: sent.wamid, to: sent.to })
                    })
                    .await?;
                match sent {
                    Some(s) => format!("sent ({})", s.message_id),
                    None => "dry run: not sent".to_string(),
                }
            }
        },
    };

    if ctx.run.dry_run {
        notes.push("dry run: nothing was created or sent, and the client was not changed".into());
    } else if params.activate {
        if client.status == ClientStatus::Onboarding {
            client = update_client(ctx, |input| input.status = Some(ClientStatus::Active)).await?;
        } else if client.status != ClientStatus::Active {
            notes.push(format!("left {} (only an onboarding client is activated)", client.status.as_str()));
        }
    }

    Ok(json!({
        "drive_folder": client.accounts.drive_folder,
        "folders_created": folders.as_ref().map(|f| f.created),
        "clickup_list": client.accounts.clickup_list,
        "list_created": project.as_ref().map(|p| p.list_created),
        "tasks_created": project.as_ref().map(|p| p.tasks_created),
        "welcome": welcome,
        "status": client.status,
        "dry_run": ctx.run.dry_run,
        "notes": notes,
    }))
}

/// An earlier run of this workflow that already sent this client's welcome.
async fn welcomed_in(ctx: &TaskContext) -> Result<Option<Uuid>, StepError> {
    let mut conn = ctx.runtime.pool.acquire().await?;
    Ok(store::effects::earlier_effect_run(&mut conn, KEY, ctx.client.id, WELCOME_STEP, ctx.run.id).await?)
}

/// Changes the client (the workflow as actor, the run as request id).
/// Nothing is written when the change changes nothing.
async fn update_client(ctx: &TaskContext, change: impl FnOnce(&mut ClientInput)) -> Result<Client, StepError> {
    let rt = &ctx.runtime;
    let updated =
        operations::clients::update(&rt.pool, &rt.clients, &ctx.actor(), &ctx.client.id.to_string(), |before| {
            let mut input = before.to_input();
            change(&mut input);
            Ok(input)
        })
        .await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(params: Value) -> Vec<String> {
        ClientOnboarding.check_params(&params).unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn params_get_defaults() {
        let p = ClientOnboarding.check_params(&Value::Null).unwrap();
        assert_eq!(p, json!({"welcome_template": "welcome_client", "language": "en_US", "activate": true}));
    }

    #[test]
    fn bad_params_name_the_field() {
        assert_eq!(fields(json!({"space_id": "1", "folder_id": "2"})), ["params.folder_id"]);
        assert_eq!(fields(json!({"welcome_template": "two words"})), ["params.welcome_template"]);
        assert_eq!(fields(json!({"language": ""})), ["params.language"]);
        assert_eq!(fields(json!({"activate": "yes"})), ["params.activate"]);
        assert_eq!(fields(json!({"colour": "red"})), ["params.colour"]);
    }
}
