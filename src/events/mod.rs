//! Outbound events (docs/MAKE.md): every event is written to the outbox in the
//! same transaction as the change it describes (`store::events::emit`, which also
//! fans it out to the subscribed endpoints), served as a feed (`GET /v1/events`)
//! and delivered to registered webhook endpoints (Make custom webhooks), signed the
//! Standard Webhooks way, with retries. This module sends: the delivery workers,
//! signing, the SSRF guard and the endpoints' sealed secrets. The event types live
//! in `domain::events`, all SQL in `store` (events, webhook_endpoints, deliveries,
//! callbacks).

pub mod catalogue;
pub mod delivery;
pub mod secret;
pub mod ssrf;

/// Standard Webhooks signing lives with the other keys in `crypto`.
pub use crate::crypto::signing;
