//! Integration tests through HTTP against a real Postgres: every test gets a fresh
//! database from `#[sqlx::test]` (DATABASE_URL must point at a server whose user
//! may CREATE DATABASE; `scripts/test` starts one).

mod support;

mod api_replicas;
mod audit;
mod auth;
mod auth_matrix;
mod bad_input;
mod cache;
mod clients;
mod constraints;
mod cost_limits;
mod crash;
mod deploy_files;
mod engine;
mod events;
mod idempotency;
mod inbound_costs;
mod knowledge;
mod layers;
mod make_blueprints;
mod messages;
mod meta_rules;
mod openapi;
mod pagination;
mod platform_api;
mod platform_clickup;
mod platform_drive_upload;
mod platform_google;
mod platform_google_rules;
mod platform_limits;
mod platform_llm;
mod platform_meta;
mod platform_pauses;
mod platform_whatsapp;
mod replicas;
mod report_views;
mod retention;
mod run_callbacks;
mod runs_api;
mod runtime_limits;
mod secrets_at_rest;
mod security_headers;
mod shared_limits;
mod sim_whatsapp;
mod strict_query;
mod system;
mod template_limits;
mod token_lineage;
mod webhooks;
mod workflow_monitoring;
mod workflow_onboarding_reports;
mod zero_setup;
