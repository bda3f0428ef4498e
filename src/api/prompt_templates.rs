//! `/v1/prompt-templates`: minijinja prompt templates with versions. Every PUT
//! stores a new version (the newest is current; old ones stay readable); the
//! workflows and `POST /v1/platforms/llm/completions` render the current one.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::{
        client::Client,
        scope::Scope,
        validation::{FieldError, Violations},
    },
    prompts::{self, RenderError},
    store::{
        self,
        prompt_templates::{NewTemplate, TemplateRow, VersionRow},
    },
};

pub const TAG: &str = "prompt-templates";
const CURSOR: &str = "prompt-templates";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template))
        .routes(routes!(render_template))
}

/// A version of a prompt template.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "key": "weekly-report", "version": 2, "description": "Weekly summary",
    "system": "You are a senior performance-marketing analyst.",
    "body": "Client: {{ client.name }}. {% for p in figures.platforms %}{{ p.platform }}: {{ p.this_week.spend }}{% endfor %}",
    "created_by": null, "created_at": "2026-06-01T08:00:00.000Z",
    "versions": [{"version": 1, "created_by": null, "created_at": "2026-05-01T08:00:00.000Z"},
                 {"version": 2, "created_by": null, "created_at": "2026-06-01T08:00:00.000Z"}]
}))]
pub struct PromptTemplate {
    pub key: String,
    pub version: i32,
    pub description: String,
    /// The system instruction (a template too; may be empty).
    pub system: String,
    /// The user prompt (minijinja).
    pub body: String,
    /// The token that wrote this version; `null` for seeded defaults.
    pub created_by: Option<Uuid>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub created_at: DateTime<Utc>,
    /// Every version of the key, oldest first (single-template responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<TemplateVersion>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateVersion {
    pub version: i32,
    pub created_by: Option<Uuid>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub created_at: DateTime<Utc>,
}

fn view(row: TemplateRow, versions: Option<Vec<VersionRow>>) -> PromptTemplate {
    PromptTemplate {
        key: row.key,
        version: row.version,
        description: row.description,
        system: row.system,
        body: row.body,
        created_by: row.created_by,
        created_at: row.created_at,
        versions: versions.map(|vs| {
            vs.into_iter()
                .map(|v| TemplateVersion { version: v.version, created_by: v.created_by, created_at: v.created_at })
                .collect()
        }),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "monthly-recap", "description": "Month in review", "system": "You are an analyst.",
    "body": "Summarise {{ client.name }}'s month: {{ figures }}"}))]
pub struct PromptTemplateInput {
    /// `[a-z0-9]` words joined by `-` or `_`, at most 100 characters.
    pub key: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    /// The user prompt (minijinja); checked for syntax.
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Summarise {{ client.name }}'s week in 3 bullets: {{ figures }}"}))]
pub struct PromptTemplateUpdate {
    /// Kept from the current version when absent.
    #[serde(default)]
    pub description: Option<String>,
    /// Kept from the current version when absent.
    #[serde(default)]
    pub system: Option<String>,
    pub body: String,
}

/// Length and syntax checks shared by create and update.
fn check_sources(v: &mut Violations, description: &str, system: &str, body: &str) {
    if description.chars().count() > 1000 {
        v.add("description", "must be at most 1000 characters");
    }
    for (part, source, min) in [("system", system, 0), ("body", body, 1)] {
        if source.trim().len() < min {
            v.add(part, "must not be empty");
        } else if source.len() > prompts::MAX_SOURCE_BYTES {
            v.add(part, format!("must be at most {} bytes (100 KB)", prompts::MAX_SOURCE_BYTES));
        } else if let Err(RenderError::Syntax { message, .. }) = prompts::check_syntax(part, source) {
            v.add(part, format!("is not a valid template: {message}"));
        }
    }
}

/// 404 unless `key` names a stored template; invalid keys cannot exist.
async fn load_current(conn: &mut PgConnection, key: &str, for_update: bool) -> ApiResult<TemplateRow> {
    let missing = || ApiError::not_found(format!("No prompt template `{key}`."));
    if !prompts::valid_key(key) {
        return Err(missing());
    }
    store::prompt_templates::current(conn, key, for_update).await?.ok_or_else(missing)
}

fn created(template: &PromptTemplate) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(template)).into_response();
    if let Ok(location) = format!("/v1/prompt-templates/{}", template.key).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTemplatesQuery {
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List prompt templates
///
/// The current version of each template, in key order.
#[utoipa::path(
    get, path = "/v1/prompt-templates", operation_id = "listPromptTemplates", tag = TAG,
    params(ListTemplatesQuery),
    responses(
        (status = 200, description = "A page of templates (current versions)", body = Page<PromptTemplate>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
    )
)]
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListTemplatesQuery>,
) -> ApiResult<axum::Json<Page<PromptTemplate>>> {
    caller.require(Scope::ClientsRead)?;
    let limit = pagination::limit(q.limit)?;
    let after = match pagination::given(q.cursor.as_deref()) {
        Some(c) => Some(pagination::decode(CURSOR, c)?),
        None => None,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = store::prompt_templates::list_current(&mut conn, after.as_deref(), i64::from(limit) + 1).await?;
    let page = pagination::page(rows, limit, CURSOR, |t| t.key.clone());
    Ok(axum::Json(Page::new(page.data.into_iter().map(|t| view(t, None)).collect(), page.next_cursor)))
}

/// Create a prompt template
///
/// Stores version 1 of a new key. The body and system are checked for minijinja syntax.
#[utoipa::path(
    post, path = "/v1/prompt-templates", operation_id = "createPromptTemplate", tag = TAG,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again.")),
    request_body(content = PromptTemplateInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created (version 1)", body = PromptTemplate, headers(("Location" = String, description = "URL of the template"))),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 409, description = "The key exists (PUT it to add a version)", body = Problem, extensions(("x-problem-codes" = json!(["template_exists"])))),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid key, empty body, a template syntax error, or a template that exceeds a render limit (field `body`/`system`)", body = Problem),
    )
)]
async fn create_template(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(input): ApiJson<PromptTemplateInput>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsWrite)?;
    let key = input.key.trim();
    let description = input.description.as_deref().unwrap_or("").trim();
    let system = input.system.as_deref().unwrap_or("");
    let mut v = Violations::default();
    if !prompts::valid_key(key) {
        v.add("key", "must be lowercase letters and digits in words joined by `-` or `_` (e.g. `weekly-report`), at most 100 characters");
    }
    check_sources(&mut v, description, system, &input.body);
    v.finish(()).map_err(ApiError::invalid)?;
    prompts::check_limits(system, &input.body).await.map_err(render_problem)?;
    let mut tx = state.pool.begin().await?;
    let new = NewTemplate { description, system, body: &input.body, created_by: Some(caller.principal.token_id) };
    let row = match store::prompt_templates::insert_first(&mut tx, key, &new).await {
        Err(e) if store::unique_violation(&e).is_some() => {
            return Err(ApiError::conflict(
                "template_exists",
                format!("The prompt template `{key}` exists; PUT /v1/prompt-templates/{key} adds a version."),
            )
            .with_field("key", "is already taken"));
        }
        other => other?,
    };
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "prompt_template.create",
        "prompt_template",
        key,
        None::<&()>,
        Some(&row),
    )
    .await?;
    let versions = store::prompt_templates::versions(&mut tx, key).await?;
    tx.commit().await?;
    Ok(created(&view(row, Some(versions))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetTemplateQuery {
    /// An older version (default: the current one).
    version: Option<i32>,
}

/// Get a prompt template
///
/// The current version, or `?version=N`; `versions` lists every version.
#[utoipa::path(
    get, path = "/v1/prompt-templates/{key}", operation_id = "getPromptTemplate", tag = TAG,
    params(("key" = String, Path, description = "Template key"), GetTemplateQuery),
    responses(
        (status = 200, description = "The template", body = PromptTemplate),
        (status = 400, description = "Bad version", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such template or version", body = Problem),
    )
)]
async fn get_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    ApiQuery(q): ApiQuery<GetTemplateQuery>,
) -> ApiResult<axum::Json<PromptTemplate>> {
    caller.require(Scope::ClientsRead)?;
    let mut conn = state.pool.acquire().await?;
    let current = load_current(&mut conn, &key, false).await?;
    let row = match q.version {
        Some(n) if n != current.version => {
            store::prompt_templates::version(&mut conn, &key, n).await?.ok_or_else(|| {
                ApiError::not_found(format!(
                    "No version {n} of prompt template `{key}` (current: {}).",
                    current.version
                ))
            })?
        }
        _ => current,
    };
    let versions = store::prompt_templates::versions(&mut conn, &key).await?;
    Ok(axum::Json(view(row, Some(versions))))
}

/// Update a prompt template (new version)
///
/// Stores a new version; the previous ones stay readable with `?version=N`.
/// `description` and `system` are kept from the current version when absent.
#[utoipa::path(
    put, path = "/v1/prompt-templates/{key}", operation_id = "updatePromptTemplate", tag = TAG,
    params(("key" = String, Path, description = "Template key")),
    request_body(content = PromptTemplateUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "The new current version", body = PromptTemplate),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such template", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Empty body, a template syntax error, or a template that exceeds a render limit (field `body`/`system`)", body = Problem),
    )
)]
async fn update_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(input): ApiJson<PromptTemplateUpdate>,
) -> ApiResult<axum::Json<PromptTemplate>> {
    caller.require(Scope::ClientsWrite)?;
    let mut tx = state.pool.begin().await?;
    let before = load_current(&mut tx, &key, true).await?;
    let description = input.description.as_deref().map_or(before.description.as_str(), str::trim);
    let system = input.system.as_deref().unwrap_or(&before.system);
    let mut v = Violations::default();
    check_sources(&mut v, description, system, &input.body);
    v.finish(()).map_err(ApiError::invalid)?;
    prompts::check_limits(system, &input.body).await.map_err(render_problem)?;
    let new = NewTemplate { description, system, body: &input.body, created_by: Some(caller.principal.token_id) };
    let after = store::prompt_templates::insert_next(&mut tx, &key, &new).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "prompt_template.update",
        "prompt_template",
        &key,
        Some(&before),
        Some(&after),
    )
    .await?;
    let versions = store::prompt_templates::versions(&mut tx, &key).await?;
    tx.commit().await?;
    Ok(axum::Json(view(after, Some(versions))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client": "acme-coffee", "variables": {"focus": "Meta campaigns"}}))]
pub struct RenderRequest {
    /// Client id or slug: the template sees it as `client`, and its knowledge
    /// entries' bodies by kind as `knowledge` (e.g. `knowledge.brand_voice`).
    #[serde(default)]
    pub client: Option<String>,
    /// Values for the template's other variables; every variable it names must be given (`null` for none).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Option<Map<String, Value>>,
    /// Render an older version (default: the current one).
    #[serde(default)]
    pub version: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RenderedTemplate {
    pub key: String,
    pub version: i32,
    /// The rendered system instruction.
    pub system: String,
    /// The rendered prompt.
    pub text: String,
}

/// The 422 for a template that cannot be rendered, naming what is missing:
/// `variables.<name>` for a variable, `client` when the template needs a client.
pub fn render_problem(e: RenderError) -> ApiError {
    match e {
        RenderError::Missing(names) => {
            let mut errors: Vec<FieldError> = vec![];
            for name in names {
                let error = match name.as_str() {
                    "client" | "knowledge" => {
                        FieldError::new("client", format!("the template uses `{name}`: give a client"))
                    }
                    _ => FieldError::new(
                        format!("variables.{name}"),
                        "is used by the template but was not given (pass null for none)",
                    ),
                };
                if !errors.iter().any(|e| e.field == error.field) {
                    errors.push(error);
                }
            }
            ApiError::invalid(errors)
        }
        RenderError::Syntax { part, message } => {
            ApiError::invalid(vec![]).with_field(part, format!("is not a valid template: {message}"))
        }
        RenderError::Render { message, .. } => {
            ApiError::invalid(vec![]).with_field("variables", format!("rendering failed: {message}"))
        }
        // The template itself is at fault (whatever the values): name its part.
        RenderError::Limit { part, message } => {
            ApiError::invalid(vec![]).with_field(part, format!("exceeds a render limit: {message}"))
        }
    }
}

/// The render context: the variables, plus `client` and `knowledge` when a client is named.
pub async fn render_context(
    conn: &mut PgConnection,
    client: Option<&Client>,
    variables: Option<Map<String, Value>>,
) -> ApiResult<Map<String, Value>> {
    let mut context = variables.unwrap_or_default();
    for reserved in ["client", "knowledge"] {
        if context.contains_key(reserved) {
            return Err(ApiError::invalid(vec![])
                .with_field(format!("variables.{reserved}"), "is reserved: name the client in `client`"));
        }
    }
    if let Some(client) = client {
        context.extend(prompts::client_context(conn, client).await?);
    }
    Ok(context)
}

/// Render a prompt template
///
/// Renders the template with the client (as `client`, with its knowledge entries
/// as `knowledge`) and `variables`, without calling a model. Every variable the
/// template names must be given: the missing ones are a 422 naming each
/// (`variables.<name>`, or `client`).
#[utoipa::path(
    post, path = "/v1/prompt-templates/{key}/render", operation_id = "renderPromptTemplate", tag = TAG,
    params(("key" = String, Path, description = "Template key")),
    request_body(content = RenderRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rendered system instruction and prompt", body = RenderedTemplate),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such template, version or client", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Missing variables (named in `errors`), rendering failed, or a render limit was exceeded (field `body`/`system`)", body = Problem),
    )
)]
async fn render_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(req): ApiJson<RenderRequest>,
) -> ApiResult<axum::Json<RenderedTemplate>> {
    caller.require(Scope::ClientsRead)?;
    let mut conn = state.pool.acquire().await?;
    let mut template = load_current(&mut conn, &key, false).await?;
    if let Some(n) = req.version.filter(|n| *n != template.version) {
        template = store::prompt_templates::version(&mut conn, &key, n)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("No version {n} of prompt template `{key}`.")))?;
    }
    let client = match req.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?),
        None => None,
    };
    let context = render_context(&mut conn, client.as_ref(), req.variables).await?;
    drop(conn);
    let (system, text) = prompts::render(&template.system, &template.body, context).await.map_err(render_problem)?;
    Ok(axum::Json(RenderedTemplate { key: template.key, version: template.version, system, text }))
}
