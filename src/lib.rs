//! Switchboard: the automation backend of a marketing agency. See `docs/ARCHITECTURE.md`.

pub mod api;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod costs;
pub mod crypto;
pub mod domain;
pub mod embedded_pg;
pub mod events;
pub mod http_server;
pub mod limits;
pub mod make_app;
pub mod operations;
pub mod platforms;
pub mod prompts;
pub mod render;
pub mod reseal;
pub mod retention;
pub mod server;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod workflows;
