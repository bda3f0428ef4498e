//! The client folder tree: found before created, and created under ids from
//! `files.generateIds` kept (see [`FolderIds`]) before each create, so a create retried
//! after a lost answer lands on Drive's 409 `fileIdInUse` and reuses that folder.

use std::future::Future;

use serde::Deserialize;

use super::{FILE_FIELDS, FOLDER_MIME, Folder, FolderTree, GoogleDrive, INFO, check_name, urlencoding};
use crate::platforms::error::PlatformError;

/// Where the ids reserved for folders are kept, so that a create retried later (another
/// run, another replica) reuses the id of a create that may have succeeded.
pub trait FolderIds: Send + Sync {
    /// Keeps `candidate` as the id of folder `name` in `parent` unless one is kept already;
    /// answers the kept id (which may be an earlier one).
    fn reserve(
        &self,
        parent: &str,
        name: &str,
        candidate: String,
    ) -> impl Future<Output = Result<String, PlatformError>> + Send;
}

/// Keeps nothing: each id lives for one call (which still covers the HTTP layer's retries).
pub struct Unrecorded;

impl FolderIds for Unrecorded {
    async fn reserve(&self, _parent: &str, _name: &str, candidate: String) -> Result<String, PlatformError> {
        Ok(candidate)
    }
}

impl GoogleDrive {
    /// Creates a folder under a fresh id (Drive allows duplicate names: call [`Self::find_folder`] first).
    pub async fn create_folder(&self, name: &str, parent: &str) -> Result<Folder, PlatformError> {
        let id = self.generate_ids(1).await?.remove(0);
        self.create_folder_with_id(name, parent, &id).await
    }

    /// `count` ids for new files (`files.generateIds`,
    /// https://developers.google.com/workspace/drive/api/reference/rest/v3/files/generateIds).
    pub async fn generate_ids(&self, count: usize) -> Result<Vec<String>, PlatformError> {
        #[derive(Deserialize)]
        struct Generated {
            #[serde(default)]
            ids: Vec<String>,
        }
        let url = format!("{}/drive/v3/files/generateIds", self.base_url);
        let count_param = count.clamp(1, 1000).to_string();
        let reply = self
            .send("generate_ids", |c, token| {
                c.get(&url).bearer_auth(token).query(&[("count", count_param.as_str()), ("space", "drive")])
            })
            .await?;
        let ids = reply.json::<Generated>()?.ids;
        if ids.len() < count.clamp(1, 1000) || ids.iter().any(|id| id.is_empty()) {
            return Err(PlatformError::malformed(INFO.key, "generateIds returned fewer ids than asked"));
        }
        Ok(ids)
    }

    /// Creates folder `name` in `parent` as file `id`. When Drive already has that id (an earlier
    /// attempt succeeded but its answer was lost) it answers 409 `fileIdInUse`, and that
    /// folder is returned instead: retrying creates nothing new.
    pub async fn create_folder_with_id(&self, name: &str, parent: &str, id: &str) -> Result<Folder, PlatformError> {
        check_name(name)?;
        let url = format!("{}/drive/v3/files", self.base_url);
        let body = serde_json::json!({ "id": id, "name": name, "mimeType": FOLDER_MIME, "parents": [parent] });
        let created = self
            .send("create_folder", |c, token| {
                c.post(&url)
                    .bearer_auth(token)
                    .query(&[("supportsAllDrives", "true"), ("fields", FILE_FIELDS)])
                    .json(&body)
            })
            .await;
        let folder: Folder = match created {
            Ok(reply) => reply.json()?,
            Err(e) if e.code.as_deref() == Some("fileIdInUse") => self.get_folder(id).await?,
            Err(e) => return Err(e),
        };
        if folder.id.is_empty() {
            return Err(PlatformError::malformed(INFO.key, "created folder without an id"));
        }
        Ok(folder)
    }

    /// One file by id (`files.get`, all drives).
    pub async fn get_folder(&self, id: &str) -> Result<Folder, PlatformError> {
        let url = format!("{}/drive/v3/files/{}", self.base_url, urlencoding(id));
        self.send("get_file", |c, token| {
            c.get(&url).bearer_auth(token).query(&[("supportsAllDrives", "true"), ("fields", FILE_FIELDS)])
        })
        .await?
        .json()
    }

    /// The folder tree under ids kept only for this call; see [`Self::ensure_client_folders_with`].
    pub async fn ensure_client_folders(&self, client_name: &str) -> Result<FolderTree, PlatformError> {
        self.ensure_client_folders_with(client_name, &Unrecorded).await
    }

    /// The client's folder under the configured parent, with every template sub-folder;
    /// creates only what is missing, so a second run creates nothing. Each create uses an
    /// id kept in `ids` before the create is sent.
    pub async fn ensure_client_folders_with(
        &self,
        client_name: &str,
        ids: &impl FolderIds,
    ) -> Result<FolderTree, PlatformError> {
        let name = client_name.trim();
        check_name(name)?;
        let mut created = 0;
        let mut fresh: Vec<String> = Vec::new();
        let root = match self.find_folder(name, &self.parent_folder_id).await? {
            Some(folder) => folder,
            None => {
                created += 1;
                fresh = self.generate_ids(1 + self.template.len()).await?;
                self.create_reserved(name, &self.parent_folder_id, ids, &mut fresh).await?
            }
        };
        // A new folder is empty; an existing one is listed once instead of one query per sub-folder.
        let existing = if created == 0 { self.list_folders(&root.id).await? } else { Vec::new() };
        let mut children = Vec::with_capacity(self.template.len());
        for sub in &self.template {
            match existing.iter().find(|f| &f.name == sub) {
                Some(folder) => children.push(folder.clone()),
                None => {
                    if fresh.is_empty() {
                        let missing = self.template.iter().filter(|t| !existing.iter().any(|f| &f.name == *t)).count();
                        fresh = self.generate_ids(missing).await?;
                    }
                    children.push(self.create_reserved(sub, &root.id, ids, &mut fresh).await?);
                    created += 1;
                }
            }
        }
        Ok(FolderTree { root, children, created })
    }

    /// Creates `name` in `parent` under the id `ids` keeps for it (a fresh one the first time).
    async fn create_reserved(
        &self,
        name: &str,
        parent: &str,
        ids: &impl FolderIds,
        fresh: &mut Vec<String>,
    ) -> Result<Folder, PlatformError> {
        let candidate = match (!fresh.is_empty()).then(|| fresh.remove(0)) {
            Some(id) => id,
            None => self.generate_ids(1).await?.remove(0),
        };
        let id = ids.reserve(parent, name, candidate).await?;
        self.create_folder_with_id(name, parent, &id).await
    }
}
