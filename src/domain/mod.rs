//! Types and rules of the business, free of HTTP and SQL: what a valid client,
//! knowledge entry or scope is, and how inputs are normalised.

pub mod client;
pub mod events;
pub mod knowledge;
pub mod metrics;
pub mod pacing;
pub mod scope;
pub mod timestamp;
pub mod validation;
