//! Knowledge entries of a client, and full-text search across them.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::Caller,
    clients,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery, from_value},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::{
        knowledge::{KnowledgeEntry, KnowledgeHit, KnowledgeInput, KnowledgeKind},
        scope::Scope,
    },
    store,
};

pub const TAG: &str = "knowledge";
const CURSOR: &str = "knowledge";
const SEARCH_CURSOR: &str = "search";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_entry, list_entries))
        .routes(routes!(get_entry, update_entry, delete_entry))
        .routes(routes!(search_knowledge))
}

async fn load_entry(conn: &mut PgConnection, client: &str, id: &str) -> ApiResult<KnowledgeEntry> {
    let owner = clients::load(conn, client, false).await?;
    let missing = || ApiError::not_found(format!("No knowledge entry `{id}` for client `{client}`."));
    let id = Uuid::parse_str(id).map_err(|_| missing())?;
    store::knowledge::find(conn, owner.id, id).await?.ok_or_else(missing)
}

/// Add a knowledge entry
///
/// A note, fact, brand-voice rule, competitor, offer or FAQ about the client; searchable at
/// once (`GET /v1/knowledge/search`) and available to prompt templates by kind.
#[utoipa::path(
    post, path = "/v1/clients/{client}/knowledge", operation_id = "createKnowledgeEntry", tag = TAG,
    params(
        ("client" = String, Path, description = "Client id (UUID) or slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again."),
    ),
    request_body(content = KnowledgeInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = KnowledgeEntry),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields (e.g. body over 100 KB)", body = Problem),
    )
)]
async fn create_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(input): ApiJson<KnowledgeInput>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsWrite)?;
    let input = input.validate().map_err(ApiError::invalid)?;
    let mut tx = state.pool.begin().await?;
    let owner = clients::load(&mut tx, &client, false).await?;
    let entry = store::knowledge::insert(&mut tx, Uuid::now_v7(), owner.id, &input).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "knowledge.create",
        "knowledge_entry",
        &entry.id.to_string(),
        None::<&()>,
        Some(&entry),
    )
    .await?;
    tx.commit().await?;
    let mut response = (StatusCode::CREATED, axum::Json(&entry)).into_response();
    if let Ok(location) = format!("/v1/clients/{}/knowledge/{}", owner.id, entry.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEntriesQuery {
    /// Only entries of this kind.
    kind: Option<KnowledgeKind>,
    /// Only entries carrying this tag.
    tag: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List a client's knowledge entries
///
/// In creation order, cursor-paginated; filter by `kind` or `tag`.
#[utoipa::path(
    get, path = "/v1/clients/{client}/knowledge", operation_id = "listKnowledgeEntries", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), ListEntriesQuery),
    responses(
        (status = 200, description = "A page of entries", body = Page<KnowledgeEntry>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn list_entries(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    ApiQuery(q): ApiQuery<ListEntriesQuery>,
) -> ApiResult<axum::Json<Page<KnowledgeEntry>>> {
    caller.require(Scope::ClientsRead)?;
    let limit = pagination::limit(q.limit)?;
    let after = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let owner = clients::load(&mut conn, &client, false).await?;
    let rows =
        store::knowledge::list(&mut conn, owner.id, q.kind, q.tag.as_deref(), after, i64::from(limit) + 1).await?;
    Ok(axum::Json(pagination::page(rows, limit, CURSOR, |e| e.id)))
}

/// Get a knowledge entry
///
/// One entry of the client's knowledge base, by id.
#[utoipa::path(
    get, path = "/v1/clients/{client}/knowledge/{id}", operation_id = "getKnowledgeEntry", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), ("id" = Uuid, Path, description = "Entry id")),
    responses(
        (status = 200, description = "The entry", body = KnowledgeEntry),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client or entry", body = Problem),
    )
)]
async fn get_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, id)): Path<(String, String)>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<axum::Json<KnowledgeEntry>> {
    caller.require(Scope::ClientsRead)?;
    let mut conn = state.pool.acquire().await?;
    Ok(axum::Json(load_entry(&mut conn, &client, &id).await?))
}

/// Update a knowledge entry (JSON merge patch)
///
/// RFC 7386: fields present replace, `null` removes (`tags` back to none), absent fields stay.
/// `kind`, `title` and `body` cannot be removed. The result is validated as a whole.
#[utoipa::path(
    patch, path = "/v1/clients/{client}/knowledge/{id}", operation_id = "updateKnowledgeEntry", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), ("id" = Uuid, Path, description = "Entry id")),
    request_body(content = KnowledgeInput, content_type = "application/merge-patch+json",
        description = "Any subset of the entry's fields; `application/json` is accepted too.",
        example = json!({"tags": ["tone", "copy", "2026"]})),
    responses(
        (status = 200, description = "The updated entry", body = KnowledgeEntry),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such client or entry", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    )
)]
async fn update_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, id)): Path<(String, String)>,
    _: ApiQuery<NoQuery>,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> ApiResult<axum::Json<KnowledgeEntry>> {
    caller.require(Scope::ClientsWrite)?;
    if !patch.is_object() {
        return Err(ApiError::invalid(vec![]).with_field("body", "must be a JSON object (a merge patch)"));
    }
    let mut tx = state.pool.begin().await?;
    let before = load_entry(&mut tx, &client, &id).await?;
    let mut doc = serde_json::to_value(before.to_input()).map_err(ApiError::internal)?;
    json_patch::merge(&mut doc, &patch);
    let input: KnowledgeInput = from_value(doc)?;
    let input = input.validate().map_err(ApiError::invalid)?;
    let after = store::knowledge::update(&mut tx, before.id, &input).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "knowledge.update",
        "knowledge_entry",
        &after.id.to_string(),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(after))
}

/// Delete a knowledge entry
///
/// For good; the audit log keeps what it was.
#[utoipa::path(
    delete, path = "/v1/clients/{client}/knowledge/{id}", operation_id = "deleteKnowledgeEntry", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), ("id" = Uuid, Path, description = "Entry id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such client or entry", body = Problem),
    )
)]
async fn delete_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, id)): Path<(String, String)>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::ClientsWrite)?;
    let mut tx = state.pool.begin().await?;
    let before = load_entry(&mut tx, &client, &id).await?;
    store::knowledge::delete(&mut tx, before.id).await?;
    store::audit::record(
        &mut tx,
        &caller.actor(),
        "knowledge.delete",
        "knowledge_entry",
        &before.id.to_string(),
        Some(&before),
        None::<&()>,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Search text: words, "quoted phrases", `-excluded`, `or`.
    q: Option<String>,
    /// Only this client's entries (id or slug).
    client: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Search knowledge
///
/// Postgres full-text search over titles and bodies, ranked (title matches weigh
/// more), with highlighted snippets (`<b>…</b>`).
#[utoipa::path(
    get, path = "/v1/knowledge/search", operation_id = "searchKnowledge", tag = TAG,
    params(SearchQuery),
    responses(
        (status = 200, description = "Ranked hits", body = Page<KnowledgeHit>),
        (status = 400, description = "Missing `q` or bad query parameter", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn search_knowledge(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<axum::Json<Page<KnowledgeHit>>> {
    caller.require(Scope::ClientsRead)?;
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::bad_request("invalid_query", "q: is required").with_field("q", "is required"))?;
    let limit = pagination::limit(q.limit)?;
    let offset = pagination::decode_offset(SEARCH_CURSOR, q.cursor.as_deref())?;
    let mut conn = state.pool.acquire().await?;
    let client_id = match q.client.as_deref() {
        Some(raw) => Some(clients::load(&mut conn, raw, false).await?.id),
        None => None,
    };
    let mut hits = store::knowledge::search(&mut conn, text, client_id, offset, i64::from(limit) + 1).await?;
    let next_cursor = (hits.len() > limit as usize).then(|| {
        hits.truncate(limit as usize);
        pagination::encode(SEARCH_CURSOR, &(offset + i64::from(limit)).to_string())
    });
    Ok(axum::Json(Page::new(hits, next_cursor)))
}
