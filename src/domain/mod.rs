//! Types and rules of the business, free of HTTP and SQL: what a valid client,
//! knowledge entry or scope is, and how inputs are normalised. (The closed sets of
//! names derive `sqlx::Type`, so a TEXT column decodes straight into them; no query
//! lives here.)

pub mod alert;
pub mod client;
pub mod events;
pub mod knowledge;
pub mod limits;
pub mod message;
pub mod metrics;
pub mod names;
pub mod pacing;
pub mod report;
pub mod run;
pub mod scope;
pub mod timestamp;
pub mod validation;
pub mod webhook_headers;
