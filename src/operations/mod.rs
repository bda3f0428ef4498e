//! Business operations that more than one caller performs — an HTTP handler, a
//! workflow step, a WhatsApp command: changing a client, syncing ad metrics,
//! budget pacing. Each is written once here and writes its audit row and its
//! event the same way whoever calls it (the caller names itself as the
//! [`Actor`](crate::store::audit::Actor)). Operations know nothing of HTTP: they
//! answer with [`Refusal`]s that the API turns into problems and workflows into
//! step errors. Starting a run is the engine's own operation
//! (`workflows::runs::start`).

pub mod clients;
pub mod drive_folders;
pub mod messages;
pub mod metrics;
pub mod metrics_sync;
pub mod pacing;
pub mod reports;

use crate::domain::validation::FieldError;

/// Why an operation did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// What the operation acts on does not exist (the message says what).
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule; each error names its field.
    #[error("invalid: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl Refusal {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}
