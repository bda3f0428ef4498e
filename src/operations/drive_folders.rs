//! Drive folder ids kept in the database before each create (see
//! `platforms::google_drive::FolderIds`), shared by the onboarding workflow and the
//! client-folders action.

use sqlx::PgPool;

use crate::{
    platforms::{
        ErrorKind, PlatformError,
        google_drive::{self, FolderIds},
    },
    store,
};

/// [`FolderIds`] in `engine.drive_folder_ids`.
pub struct RecordedFolderIds<'a>(pub &'a PgPool);

impl FolderIds for RecordedFolderIds<'_> {
    async fn reserve(&self, parent: &str, name: &str, candidate: String) -> Result<String, PlatformError> {
        store::drive_folders::reserve(self.0, parent, name, &candidate).await.map_err(|e| {
            PlatformError::new(
                google_drive::INFO.key,
                ErrorKind::Unavailable,
                format!("keeping the folder id failed: {e}"),
            )
        })
    }
}
