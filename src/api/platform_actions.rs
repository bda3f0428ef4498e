//! Platform actions a Make scenario can call directly: reports, Drive folders,
//! the ClickUp onboarding project, LLM completions (WhatsApp messages: `api::messages`). Each is
//! audited, honours `Idempotency-Key` (like every POST), and maps platform
//! failures to `platform_error` problems.

use axum::extract::State;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery},
};
use crate::{
    api::AppState,
    domain::{client::Client, scope::Scope},
    platforms::{
        clickup::{ListLocation, TaskTemplate, default_onboarding_template},
        llm::CompletionRequest,
        meta::InsightsLevel,
    },
    prompts, store,
};

pub const TAG: &str = "platforms";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(meta_insights))
        .routes(routes!(google_ads_report))
        .routes(routes!(drive_client_folders))
        .routes(routes!(clickup_onboarding_project))
        .routes(routes!(llm_completion))
}

async fn client_for(state: &AppState, raw: &str) -> ApiResult<Client> {
    let mut conn = state.pool.acquire().await?;
    clients::load(&mut conn, raw, false).await
}

fn missing_account(platform: &str, field: &str) -> ApiError {
    ApiError::invalid(vec![])
        .with_field("client", format!("has no {platform} account (set `accounts.{field}` on the client)"))
}

fn check_range(from: NaiveDate, to: NaiveDate) -> ApiResult<()> {
    if from > to {
        return Err(ApiError::invalid(vec![]).with_field("to", "must not be before `from`"));
    }
    if (to - from).num_days() >= super::metrics::MAX_DAYS {
        return Err(ApiError::invalid(vec![]).with_field("to", "the range may cover at most 366 days"));
    }
    Ok(())
}

/// Writes one audit row for an action, in its own transaction.
async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    client: Option<&Client>,
    what: &impl Serialize,
) -> ApiResult<()> {
    let mut tx = state.pool.begin().await?;
    let id = client.map(|c| c.id.to_string()).unwrap_or_else(|| "-".into());
    store::audit::record(&mut tx, &caller.actor(), action, "platform_action", &id, None::<&()>, Some(what)).await?;
    tx.commit().await?;
    Ok(())
}

/// Stores an account id the action just created on the client (with its audit row).
async fn link_account(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    set: impl FnOnce(&mut crate::domain::client::Accounts),
) -> ApiResult<()> {
    let id = client.id.to_string();
    crate::operations::clients::update(&state.pool, &state.clients, &caller.actor(), &id, |before| {
        let mut input = before.to_input();
        set(&mut input.accounts);
        Ok(input)
    })
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client": "acme-coffee", "from": "2026-06-01", "to": "2026-06-07", "level": "campaign"}))]
pub struct ReportRequest {
    /// Client id or slug; its linked account is used.
    pub client: String,
    #[schema(value_type = NaiveDate, example = "2026-06-01")]
    pub from: NaiveDate,
    #[schema(value_type = NaiveDate, example = "2026-06-07")]
    pub to: NaiveDate,
    /// Meta only: `account` (default) or `campaign`.
    #[serde(default)]
    pub level: Option<InsightsLevel>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportResponse {
    #[schema(example = "act_1234567890")]
    pub account: String,
    /// One row per day (and campaign at campaign level), as the platform reported it, typed.
    #[schema(value_type = Vec<Object>)]
    pub rows: Value,
}

/// Meta Ads insights
///
/// Daily insights of the client's Meta ad account, at account or campaign level.
#[utoipa::path(
    post, path = "/v1/platforms/meta/insights", operation_id = "metaInsights", tag = TAG,
    request_body(content = ReportRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Daily rows", body = ReportResponse),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 422, description = "Bad dates, or the client has no Meta account", body = Problem),
        (status = 502, description = "Meta refused (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 503, description = "Meta unavailable, not configured, or pausing the account longer than a request waits (platform_error, Retry-After)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
    )
)]
async fn meta_insights(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> ApiResult<axum::Json<ReportResponse>> {
    caller.require(Scope::PlatformsAct)?;
    check_range(req.from, req.to)?;
    let client = client_for(&state, &req.client).await?;
    let account = client.accounts.meta.clone().ok_or_else(|| missing_account("Meta", "meta"))?;
    state.platforms.ensure_configured("meta")?;
    let level = req.level.unwrap_or(InsightsLevel::Account);
    let rows =
        crate::costs::for_client(client.id, state.platforms.meta.insights_report(&account, req.from, req.to, level))
            .await?;
    audit(
        &state,
        &caller,
        "platform.meta.insights",
        Some(&client),
        &json!({"account": account, "from": req.from, "to": req.to, "rows": rows.len()}),
    )
    .await?;
    Ok(axum::Json(ReportResponse { account, rows: serde_json::to_value(rows).map_err(ApiError::internal)? }))
}

/// Google Ads campaign report
///
/// Daily campaign metrics of the client's Google Ads customer.
#[utoipa::path(
    post, path = "/v1/platforms/google-ads/report", operation_id = "googleAdsReport", tag = TAG,
    request_body(content = ReportRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Daily campaign rows", body = ReportResponse),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 422, description = "Bad dates, or the client has no Google Ads account", body = Problem),
        (status = 502, description = "Google Ads refused (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 503, description = "Google Ads unavailable or not configured (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
    )
)]
async fn google_ads_report(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> ApiResult<axum::Json<ReportResponse>> {
    caller.require(Scope::PlatformsAct)?;
    check_range(req.from, req.to)?;
    if req.level.is_some() {
        return Err(ApiError::invalid(vec![]).with_field("level", "applies to Meta insights only"));
    }
    let client = client_for(&state, &req.client).await?;
    let account = client.accounts.google_ads.clone().ok_or_else(|| missing_account("Google Ads", "google_ads"))?;
    state.platforms.ensure_configured("google_ads")?;
    let manager = client.accounts.google_ads_manager.as_deref();
    let report = state.platforms.google_ads.campaign_report_via(manager, &account, req.from, req.to);
    let rows = crate::costs::for_client(client.id, report).await?;
    audit(
        &state,
        &caller,
        "platform.google_ads.report",
        Some(&client),
        &json!({"account": account, "from": req.from, "to": req.to, "rows": rows.len()}),
    )
    .await?;
    Ok(axum::Json(ReportResponse { account, rows: serde_json::to_value(rows).map_err(ApiError::internal)? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client": "acme-coffee"}))]
pub struct ClientRef {
    /// Client id or slug.
    pub client: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FolderTreeResponse {
    /// `{root: {id, name, webViewLink}, children: [...], created}`; `created` is 0 when everything existed.
    #[schema(value_type = Object)]
    pub tree: Value,
}

/// Ensure the client's Drive folders
///
/// Finds or creates `<client name>/` and its template sub-folders (default
/// `01 Strategy, 02 Creatives, 03 Reports, 04 Invoices`) under the configured parent
/// or Shared Drive, and stores the folder id on the client as `accounts.drive_folder`.
/// Running it again creates nothing new.
#[utoipa::path(
    post, path = "/v1/platforms/google-drive/client-folders", operation_id = "ensureClientFolders", tag = TAG,
    request_body(content = ClientRef, content_type = "application/json"),
    responses(
        (status = 200, description = "The folder tree", body = FolderTreeResponse),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 422, description = "Invalid body", body = Problem),
        (status = 502, description = "Drive refused (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 503, description = "Drive unavailable or not configured (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
    )
)]
async fn drive_client_folders(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<ClientRef>,
) -> ApiResult<axum::Json<FolderTreeResponse>> {
    caller.require(Scope::PlatformsAct)?;
    let client = client_for(&state, &req.client).await?;
    state.platforms.ensure_configured("google_drive")?;
    let ids = crate::operations::drive_folders::RecordedFolderIds(&state.pool);
    let tree = crate::costs::for_client(
        client.id,
        state.platforms.google_drive.ensure_client_folders_with(&client.name, &ids),
    )
    .await?;
    let root = tree.root.id.clone();
    link_account(&state, &caller, &client, |a| a.drive_folder = Some(root)).await?;
    audit(&state, &caller, "platform.google_drive.client_folders", Some(&client), &tree).await?;
    Ok(axum::Json(FolderTreeResponse { tree: serde_json::to_value(tree).map_err(ApiError::internal)? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client": "acme-coffee", "space_id": "90123"}))]
pub struct OnboardingProjectRequest {
    pub client: String,
    /// Create the list in this space (default `CLICKUP_SPACE_ID`).
    #[serde(default)]
    pub space_id: Option<String>,
    /// Or in this folder.
    #[serde(default)]
    pub folder_id: Option<String>,
    /// Tasks to ensure (default: the agency's onboarding checklist).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub template: Option<Vec<TaskTemplate>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingProjectResponse {
    #[schema(example = "901234567")]
    pub list_id: String,
    pub list_created: bool,
    pub task_ids: Vec<String>,
    /// Tasks this call created (0 when all existed).
    pub tasks_created: usize,
}

/// Create the ClickUp onboarding project
///
/// Finds or creates the list `<client name> — Onboarding` and the checklist's tasks
/// (due dates counted from today), and stores the list id on the client as
/// `accounts.clickup_list`. Running it again creates nothing new.
#[utoipa::path(
    post, path = "/v1/platforms/clickup/onboarding-project", operation_id = "clickupOnboardingProject", tag = TAG,
    request_body(content = OnboardingProjectRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The list and its tasks", body = OnboardingProjectResponse),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 422, description = "Both or neither of space_id/folder_id (and no default), bad template", body = Problem),
        (status = 502, description = "ClickUp refused (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 503, description = "ClickUp unavailable or not configured (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
    )
)]
async fn clickup_onboarding_project(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<OnboardingProjectRequest>,
) -> ApiResult<axum::Json<OnboardingProjectResponse>> {
    caller.require(Scope::PlatformsAct)?;
    let location = match (req.space_id, req.folder_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(vec![]).with_field("folder_id", "give space_id or folder_id, not both"));
        }
        (Some(space), None) => ListLocation::Space(space),
        (None, Some(folder)) => ListLocation::Folder(folder),
        (None, None) => state.platforms.clickup.settings().default_location().ok_or_else(|| {
            ApiError::invalid(vec![]).with_field("space_id", "is required (no CLICKUP_SPACE_ID is configured)")
        })?,
    };
    let template = req.template.unwrap_or_else(default_onboarding_template);
    if template.is_empty() {
        return Err(ApiError::invalid(vec![]).with_field("template", "must hold at least one task"));
    }
    if let Some(i) = template.iter().position(|t| t.name.trim().is_empty()) {
        return Err(ApiError::invalid(vec![]).with_field(format!("template[{i}].name"), "must not be empty"));
    }
    let client = client_for(&state, &req.client).await?;
    state.platforms.ensure_configured("clickup")?;
    let clickup = &state.platforms.clickup;
    let (list, list_created) = crate::costs::for_client(
        client.id,
        clickup.find_or_create_list(&format!("{} — Onboarding", client.name), location),
    )
    .await?;
    let tasks =
        crate::costs::for_client(client.id, clickup.ensure_tasks(&list.id, &template, Utc::now().date_naive())).await?;
    let list_id = list.id.clone();
    link_account(&state, &caller, &client, |a| a.clickup_list = Some(list_id)).await?;
    let response = OnboardingProjectResponse {
        list_id: list.id,
        list_created,
        task_ids: tasks.task_ids,
        tasks_created: tasks.created,
    };
    audit(&state, &caller, "platform.clickup.onboarding_project", Some(&client), &response).await?;
    Ok(axum::Json(response))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"template_key": "client-brief", "client": "acme-coffee", "variables": {"focus": "Meta campaigns"}}))]
pub struct CompletionBody {
    /// A free prompt...
    #[serde(default)]
    pub prompt: Option<String>,
    /// ...or a stored prompt template's key (`GET /v1/prompt-templates`), rendered in its current version.
    #[serde(default)]
    pub template_key: Option<String>,
    /// The client the prompt is about (its fields are available to templates as `client`).
    #[serde(default)]
    pub client: Option<String>,
    /// Values for the template's variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Option<serde_json::Map<String, Value>>,
    /// System instruction for a free prompt.
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionResponse {
    pub text: String,
    #[schema(example = "anthropic")]
    pub provider: String,
    #[schema(example = "claude-sonnet-4-6")]
    pub model: String,
    pub stop_reason: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// LLM completion
///
/// A completion from the configured provider (Anthropic, or OpenAI), from a free
/// prompt or a stored prompt template (current version) rendered with the client, its knowledge and `variables`. Token
/// usage is recorded per client.
#[utoipa::path(
    post, path = "/v1/platforms/llm/completions", operation_id = "llmCompletion", tag = TAG,
    request_body(content = CompletionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The completion and its token usage", body = CompletionResponse),
        (status = 403, description = "Missing scope `platforms:act`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 422, description = "Neither or both of prompt/template_key, unknown template, missing variables (named), bad max_tokens", body = Problem),
        (status = 429, description = "Provider throttled (platform_error, Retry-After)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 502, description = "Provider refused (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
        (status = 503, description = "Provider overloaded or not configured (platform_error)", body = Problem, extensions(("x-problem-codes" = json!(["platform_error"])))),
    )
)]
async fn llm_completion(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<CompletionBody>,
) -> ApiResult<axum::Json<CompletionResponse>> {
    caller.require(Scope::PlatformsAct)?;
    if let Some(n) = req.max_tokens
        && !(1..=8192).contains(&n)
    {
        return Err(ApiError::invalid(vec![]).with_field("max_tokens", "must be between 1 and 8192"));
    }
    let client = match req.client.as_deref() {
        Some(raw) => Some(client_for(&state, raw).await?),
        None => None,
    };
    let (system, prompt, purpose) = match (&req.prompt, &req.template_key) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::invalid(vec![]).with_field("prompt", "give either prompt or template_key"));
        }
        (Some(p), None) if p.trim().is_empty() || p.len() > 200_000 => {
            return Err(ApiError::invalid(vec![]).with_field("prompt", "must be 1-200000 characters"));
        }
        (Some(p), None) => (req.system.clone(), p.clone(), "prompt".to_string()),
        (None, Some(key)) => {
            // The stored current version (GET/PUT /v1/prompt-templates); legacy built-in names still resolve.
            let mut conn = state.pool.acquire().await?;
            let stored_key = prompts::canonical_key(key);
            let template = match prompts::valid_key(stored_key) {
                true => store::prompt_templates::current(&mut conn, stored_key, false).await?,
                false => None,
            };
            let Some(template) = template else {
                let known: Vec<String> = store::prompt_templates::list_current(&mut conn, None, 50)
                    .await?
                    .into_iter()
                    .map(|t| t.key)
                    .collect();
                return Err(ApiError::invalid(vec![])
                    .with_field("template_key", format!("unknown template (known: {})", known.join(", "))));
            };
            let context =
                super::prompt_templates::render_context(&mut conn, client.as_ref(), req.variables.clone()).await?;
            drop(conn);
            let (system, prompt) = prompts::render(&template.system, &template.body, context)
                .await
                .map_err(super::prompt_templates::render_problem)?;
            (Some(system), prompt, format!("template:{key}"))
        }
    };
    state.platforms.ensure_configured("llm")?;
    let request = CompletionRequest { system, prompt, max_tokens: req.max_tokens, temperature: None };
    let completion =
        crate::costs::for_maybe_client(client.as_ref().map(|c| c.id), state.platforms.llm.complete(&request)).await?;
    let provider =
        serde_json::to_value(completion.provider).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let mut tx = state.pool.begin().await?;
    let usage = store::metrics::LlmUsage {
        client_id: client.as_ref().map(|c| c.id),
        provider: &provider,
        model: &completion.model,
        input_tokens: completion.usage.input_tokens as i32,
        output_tokens: completion.usage.output_tokens as i32,
        purpose: &purpose,
    };
    store::metrics::record_llm_usage(&mut tx, &usage).await?;
    let id = client.as_ref().map(|c| c.id.to_string()).unwrap_or_else(|| "-".into());
    store::audit::record(&mut tx, &caller.actor(), "platform.llm.completion", "platform_action", &id, None::<&()>, Some(&json!({"purpose": purpose, "model": completion.model, "input_tokens": completion.usage.input_tokens, "output_tokens": completion.usage.output_tokens}))).await?;
    tx.commit().await?;
    Ok(axum::Json(CompletionResponse {
        text: completion.text,
        provider,
        model: completion.model,
        stop_reason: completion.stop_reason,
        input_tokens: completion.usage.input_tokens,
        output_tokens: completion.usage.output_tokens,
    }))
}
