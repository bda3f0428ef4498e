//! `/v1/clients`: the client knowledge base. `{client}` is the UUID or the slug.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, NoQuery, parse_value},
    pagination::{self, Page},
};
use crate::{
    api::AppState,
    domain::{
        client::{Client, ClientInput, ClientStatus},
        scope::Scope,
    },
    operations::{self, Refusal},
    store::{
        self,
        clients::{ClientFilter, ClientKey},
    },
};

pub const TAG: &str = "clients";
const CURSOR: &str = "clients";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_client, list_clients)).routes(routes!(
        get_client,
        update_client,
        delete_client
    ))
}

/// Loads a client by id or slug, or answers 404.
pub async fn load(conn: &mut PgConnection, raw: &str, for_update: bool) -> ApiResult<Client> {
    Ok(operations::clients::find(conn, raw, for_update).await?)
}

fn json_with<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Create a client
///
/// The slug is derived from the name when absent. Account ids are normalised
/// (Meta `act_<digits>`, Google Ads 10 digits). Send `Idempotency-Key` so a retry
/// cannot create the client twice.
#[utoipa::path(
    post, path = "/v1/clients", operation_id = "createClient", tag = TAG,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of creating again.")),
    request_body(content = ClientInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Client, headers(("Location" = String, description = "URL of the new client"))),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 409, description = "Slug taken", body = Problem, extensions(("x-problem-codes" = json!(["slug_taken"])))),
        (status = 413, description = "Body over the limit", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    )
)]
async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    _: ApiQuery<NoQuery>,
    ApiJson(input): ApiJson<ClientInput>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsWrite)?;
    let client = operations::clients::create(&state.pool, &caller.actor(), input).await?;
    let mut response = json_with(StatusCode::CREATED, &client);
    if let Ok(location) = format!("/v1/clients/{}", client.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListClientsQuery {
    /// Only clients with this status. Without it, archived clients are left out.
    status: Option<ClientStatus>,
    /// Only clients of this industry (case-insensitive).
    industry: Option<String>,
    /// Search in name and slug (case-insensitive substring).
    q: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List clients
///
/// In creation order, cursor-paginated. Archived clients appear only with `status=archived`.
#[utoipa::path(
    get, path = "/v1/clients", operation_id = "listClients", tag = TAG,
    params(ListClientsQuery),
    responses(
        (status = 200, description = "A page of clients", body = Page<Client>),
        (status = 400, description = "Bad query parameter (limit, cursor, status)", body = Problem),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
    )
)]
async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListClientsQuery>,
) -> ApiResult<axum::Json<Page<Client>>> {
    caller.require(Scope::ClientsRead)?;
    let limit = pagination::limit(q.limit)?;
    let after = pagination::decode_uuid(CURSOR, q.cursor.as_deref())?;
    let filter = ClientFilter {
        status: q.status,
        industry: q.industry.filter(|s| !s.trim().is_empty()),
        q: q.q.filter(|s| !s.trim().is_empty()),
    };
    let mut conn = state.pool.acquire().await?;
    let rows = store::clients::list(&mut conn, &filter, after, i64::from(limit) + 1).await?;
    Ok(axum::Json(pagination::page(rows, limit, CURSOR, |c| c.id)))
}

/// Get a client
///
/// By id or slug, with its accounts, budgets, targets and contacts.
#[utoipa::path(
    get, path = "/v1/clients/{client}", operation_id = "getClient", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug")),
    responses(
        (status = 200, description = "The client", body = Client),
        (status = 403, description = "Missing scope `clients:read`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn get_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    _: ApiQuery<NoQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::ClientsRead)?;
    // Served from this replica's cache when possible; every change invalidates it (src/cache.rs).
    if let Some(json) = state.clients.get(&ClientKey::parse(&client)) {
        return Ok(cached_json(json));
    }
    let seen = state.clients.generation.current();
    let mut conn = state.pool.acquire().await?;
    let found = load(&mut conn, &client, false).await?;
    let json = axum::body::Bytes::from(serde_json::to_vec(&found).map_err(ApiError::internal)?);
    state.clients.insert(seen, found.id, &found.slug, json.clone());
    Ok(cached_json(json))
}

fn cached_json(json: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// Update a client (JSON merge patch)
///
/// RFC 7386: fields present replace, `null` removes (e.g. `{"accounts": {"meta": null}}`
/// unlinks Meta), absent fields stay. The result is validated as a whole.
#[utoipa::path(
    patch, path = "/v1/clients/{client}", operation_id = "updateClient", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug")),
    request_body(content = ClientInput, content_type = "application/merge-patch+json",
        description = "Any subset of the client's writable fields; `application/json` is accepted too.",
        example = json!({"status": "active", "targets": {"cpa": 22.5}})),
    responses(
        (status = 200, description = "The updated client", body = Client),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 403, description = "Missing scope `clients:write`", body = Problem),
        (status = 404, description = "No such client", body = Problem),
        (status = 409, description = "Slug taken", body = Problem, extensions(("x-problem-codes" = json!(["slug_taken"])))),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    )
)]
async fn update_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    _: ApiQuery<NoQuery>,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> ApiResult<axum::Json<Client>> {
    caller.require(Scope::ClientsWrite)?;
    if !patch.is_object() {
        return Err(ApiError::invalid(vec![]).with_field("body", "must be a JSON object (a merge patch)"));
    }
    let after = operations::clients::update(&state.pool, &state.clients, &caller.actor(), &client, |before| {
        let mut doc = serde_json::to_value(before.to_input()).unwrap_or_default();
        json_patch::merge(&mut doc, &patch);
        parse_value::<ClientInput>(doc).map_err(Refusal::Invalid)
    })
    .await?;
    Ok(axum::Json(after))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteClientQuery {
    /// Delete for good (with its knowledge entries) instead of archiving. Needs the `admin` scope.
    #[serde(default)]
    hard: bool,
}

/// Archive or delete a client
///
/// Archives (status `archived`, answers 200 with the client) unless `hard=true`,
/// which deletes the client and its knowledge entries (admin scope; answers 204).
#[utoipa::path(
    delete, path = "/v1/clients/{client}", operation_id = "deleteClient", tag = TAG,
    params(("client" = String, Path, description = "Client id (UUID) or slug"), DeleteClientQuery),
    responses(
        (status = 200, description = "Archived", body = Client),
        (status = 204, description = "Deleted (hard=true)"),
        (status = 403, description = "Missing scope `clients:write` (or `admin` for hard=true)", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    )
)]
async fn delete_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(client): Path<String>,
    ApiQuery(q): ApiQuery<DeleteClientQuery>,
) -> ApiResult<Response> {
    caller.require(if q.hard { Scope::Admin } else { Scope::ClientsWrite })?;
    let (pool, cache, actor) = (&state.pool, &state.clients, caller.actor());
    Ok(if q.hard {
        operations::clients::delete(pool, cache, &actor, &client).await?;
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_with(StatusCode::OK, &operations::clients::archive(pool, cache, &actor, &client).await?)
    })
}
