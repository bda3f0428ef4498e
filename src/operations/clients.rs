//! Changing a client: create, update, archive, delete. Each change is one
//! transaction holding the row, its `client.*` event and its audit row; after the
//! commit this replica's client cache forgets the client (other replicas hear of
//! it from the table's NOTIFY trigger).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Refusal;
use crate::{
    cache::ClientCache,
    domain::{
        client::{Client, ClientFields, ClientInput, ClientStatus},
        events::EventType,
    },
    store::{self, audit::Actor, clients::ClientKey},
};

/// Loads a client by id or slug (`for_update` locks its row until the transaction ends).
pub async fn find(conn: &mut PgConnection, raw: &str, for_update: bool) -> Result<Client, Refusal> {
    let not_found = || Refusal::NotFound(format!("No client with id or slug `{raw}`."));
    if raw.contains('\0') {
        // No slug holds NUL, and Postgres text cannot take it as a parameter.
        return Err(Refusal::NotFound("No client with this id or slug.".into()));
    }
    store::clients::find(conn, &ClientKey::parse(raw), for_update).await?.ok_or_else(not_found)
}

/// Creates a client (`client.created`, audit `client.create`).
pub async fn create(pool: &PgPool, actor: &Actor, input: ClientInput) -> Result<Client, Refusal> {
    let fields = input.validate().map_err(Refusal::Invalid)?;
    let mut tx = pool.begin().await?;
    let client = store::clients::insert(&mut tx, Uuid::now_v7(), &fields).await?;
    store::events::emit(&mut tx, EventType::ClientCreated, &client).await?;
    let id = client.id.to_string();
    store::audit::record(&mut tx, actor, "client.create", "client", &id, None::<&()>, Some(&client)).await?;
    tx.commit().await?;
    Ok(client)
}

/// Changes the client named `raw` (id or slug): `change` turns its current
/// writable fields into the new ones, under the row's lock. A change that changes
/// nothing writes nothing (no event, no audit row) and returns the client as it is.
/// Otherwise `client.updated` and an audit row `client.update`.
pub async fn update<F>(
    pool: &PgPool,
    cache: &ClientCache,
    actor: &Actor,
    raw: &str,
    change: F,
) -> Result<Client, Refusal>
where
    F: FnOnce(&Client) -> Result<ClientInput, Refusal>,
{
    let mut tx = pool.begin().await?;
    let before = find(&mut tx, raw, true).await?;
    let input = change(&before)?;
    if input == before.to_input() {
        return Ok(before);
    }
    let fields = input.validate().map_err(Refusal::Invalid)?;
    let after = write(&mut tx, actor, "client.update", &before, &fields).await?;
    tx.commit().await?;
    cache.forget(after.id);
    Ok(after)
}

/// Archives the client (status `archived`; `client.updated`, audit `client.archive`).
pub async fn archive(pool: &PgPool, cache: &ClientCache, actor: &Actor, raw: &str) -> Result<Client, Refusal> {
    let mut tx = pool.begin().await?;
    let before = find(&mut tx, raw, true).await?;
    let mut input = before.to_input();
    input.status = Some(ClientStatus::Archived);
    let fields = input.validate().map_err(Refusal::Invalid)?;
    let after = write(&mut tx, actor, "client.archive", &before, &fields).await?;
    tx.commit().await?;
    cache.forget(after.id);
    Ok(after)
}

/// Deletes the client and its knowledge entries for good (audit `client.delete`;
/// no event: there is no client left to describe). Returns the client as it was.
pub async fn delete(pool: &PgPool, cache: &ClientCache, actor: &Actor, raw: &str) -> Result<Client, Refusal> {
    let mut tx = pool.begin().await?;
    let before = find(&mut tx, raw, true).await?;
    store::clients::delete(&mut tx, before.id).await?;
    let id = before.id.to_string();
    store::audit::record(&mut tx, actor, "client.delete", "client", &id, Some(&before), None::<&()>).await?;
    tx.commit().await?;
    cache.forget(before.id);
    Ok(before)
}

/// Writes the new fields with the event and the audit row, in the caller's transaction.
async fn write(
    tx: &mut PgConnection,
    actor: &Actor,
    action: &str,
    before: &Client,
    fields: &ClientFields,
) -> Result<Client, Refusal> {
    let after = store::clients::update(tx, before.id, fields).await?;
    store::events::emit(tx, EventType::ClientUpdated, &after).await?;
    let id = after.id.to_string();
    store::audit::record(tx, actor, action, "client", &id, Some(before), Some(&after)).await?;
    Ok(after)
}
