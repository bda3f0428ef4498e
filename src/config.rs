//! Every setting, read once from the environment (and `.env` when present) and
//! validated at start-up. `.env.example` documents each one; keep the two in step.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::platforms::PlatformSettings;

/// Minimum length of `JWT_SECRET` outside local zero-setup mode.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Minimum length of `METRICS_TOKEN`.
pub const MIN_METRICS_TOKEN_BYTES: usize = 16;

/// Secrets are `SecretString`s: `{:?}` shows `[REDACTED]`, and serializing shows `[redacted]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// Postgres connection string (it may hold a password). When absent the service runs its own cluster under `data_dir`.
    #[serde(serialize_with = "redacted")]
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub bind: IpAddr,
    pub port: u16,
    /// Where the zero-setup cluster, the generated JWT secret and other local state live.
    pub data_dir: PathBuf,
    #[serde(serialize_with = "redacted")]
    pub jwt_secret: Option<SecretString>,
    /// Comma-separated earlier `JWT_SECRET`s: tokens they signed still verify (rotation
    /// without downtime); new tokens are signed with `JWT_SECRET` only.
    #[serde(serialize_with = "redacted")]
    pub jwt_secrets_previous: Option<SecretString>,
    pub jwt_audience: String,
    pub jwt_issuer: String,
    pub log_format: LogFormat,
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    pub log_file_max_bytes: usize,
    pub log_file_max_files: usize,
    pub request_timeout_secs: u64,
    pub body_limit_bytes: usize,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Comma-separated origins allowed by CORS; `*` allows any; empty disables CORS.
    pub cors_allowed_origins: String,
    pub idempotency_ttl_hours: u32,
    pub token_last_used_flush_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Workflow tasks one worker process runs at once.
    pub worker_concurrency: usize,
    /// How long a worker holds a task without a heartbeat before another may take it.
    pub task_lease_secs: u64,
    /// A worker whose heartbeat row is this old is dead: its tasks go back to the queue
    /// at once instead of waiting out their leases.
    pub worker_takeover_secs: u64,
    /// First retry delay of a failed task (doubles per attempt).
    pub task_retry_base_secs: u64,
    /// How often the scheduler looks for due schedules.
    pub scheduler_tick_secs: u64,
    /// Comma-separated E.164 numbers whose WhatsApp messages are taken as commands.
    pub whatsapp_command_senders: String,
    /// Webhook endpoints may use `http://` (local use only).
    pub webhook_allow_http: bool,
    /// Webhook endpoints may resolve to loopback, private or link-local addresses (local use only).
    pub webhook_allow_private: bool,
    /// Timeout of one webhook delivery attempt.
    pub webhook_timeout_secs: u64,
    /// Deliveries per second to one endpoint, per delivery worker process (burst the same).
    pub webhook_rate_per_second: u32,
    /// `whsec_...` key signing `callback_url` requests (Standard Webhooks); unsigned when unset.
    #[serde(serialize_with = "redacted")]
    pub callback_secret: Option<SecretString>,
    // --- Secrets at rest (docs/decisions/0014-secrets-at-rest.md)
    /// Base64 of 32 bytes: seals webhook signing secrets and stored idempotent responses.
    #[serde(serialize_with = "redacted")]
    pub encryption_key: Option<SecretString>,
    /// Comma-separated previous keys: values sealed with them still open (key rotation).
    #[serde(serialize_with = "redacted")]
    pub encryption_keys_old: Option<SecretString>,
    /// Runtime limits (docs/decisions/0016-runtime-limits.md).
    /// When set, `/metrics` needs `Authorization: Bearer <this>`; open when unset.
    #[serde(serialize_with = "redacted")]
    pub metrics_token: Option<SecretString>,
    /// A connection must send a request's complete headers within this (slowloris).
    pub http_header_read_timeout_secs: u64,
    /// Open HTTP connections at once; further ones wait in the listen backlog.
    pub http_max_connections: usize,
    /// Postgres `statement_timeout` of the service's connections, milliseconds; 0 disables.
    pub database_statement_timeout_ms: u64,
    // --- Retention (docs/OPERATIONS.md "Retention"); days, 0 keeps for ever.
    /// Events with their webhook deliveries and attempts (an event a pending delivery needs stays).
    pub retention_events_days: u32,
    /// Finished runs with their tasks, effects and callbacks (open runs are never pruned).
    pub retention_runs_days: u32,
    /// Inbound WhatsApp messages (0, or at least 7: they deduplicate webhooks Meta retries for
    /// "typically 24 hours, though this may vary"; 7 days is the margin).
    pub retention_inbound_days: u32,
    /// The outbound WhatsApp message log.
    pub retention_messages_days: u32,
    /// The audit log; 0 (the default) keeps it for ever.
    pub retention_audit_days: u32,
    /// Rows deleted per statement.
    pub retention_batch: u32,
    /// Seconds between retention passes (scheduler role).
    pub retention_interval_secs: u64,
    /// The service's public address (`https://switchboard.example.com`, a path prefix allowed):
    /// `report.ready` carries absolute `pdf_url`/`html_url` under it; without it they are left out.
    pub public_base_url: Option<String>,
    /// Each platform's settings, read from its own prefixed variables (`META_*`, ...).
    #[serde(skip)]
    pub platforms: PlatformSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            database_max_connections: 20,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            data_dir: PathBuf::from(".data"),
            jwt_secret: None,
            jwt_secrets_previous: None,
            jwt_audience: "switchboard".into(),
            jwt_issuer: "switchboard".into(),
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            log_file: None,
            log_file_max_bytes: 10 * 1024 * 1024,
            log_file_max_files: 10,
            request_timeout_secs: 30,
            body_limit_bytes: 1024 * 1024,
            rate_limit_per_minute: 600,
            rate_limit_burst: 100,
            cors_allowed_origins: String::new(),
            idempotency_ttl_hours: 24,
            token_last_used_flush_secs: 30,
            shutdown_grace_secs: 20,
            worker_concurrency: 32,
            task_lease_secs: 30,
            worker_takeover_secs: 5,
            task_retry_base_secs: 5,
            scheduler_tick_secs: 5,
            whatsapp_command_senders: String::new(),
            webhook_allow_http: false,
            webhook_allow_private: false,
            webhook_timeout_secs: 10,
            webhook_rate_per_second: 25,
            callback_secret: None,
            encryption_key: None,
            encryption_keys_old: None,
            metrics_token: None,
            http_header_read_timeout_secs: 10,
            http_max_connections: 1024,
            database_statement_timeout_ms: 5000,
            retention_events_days: 30,
            retention_runs_days: 90,
            retention_inbound_days: 90,
            retention_messages_days: 180,
            retention_audit_days: 0,
            retention_batch: 1000,
            retention_interval_secs: 3600,
            public_base_url: None,
            platforms: PlatformSettings::default(),
        }
    }
}

fn redacted<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_some(&secret.as_ref().map(|_| "[redacted]"))
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Enum-valued settings, whose parse errors envy reports without the variable name.
    const KNOWN: [&'static str; 1] = ["log_format"];

    /// Reads `.env` (if present) and then the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(std::env::vars())
    }

    /// Builds a config from explicit variables; empty values count as unset.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        let mut config: Config =
            envy::from_iter(vars.clone()).map_err(|e| ConfigError(describe_envy_error(e, &vars)))?;
        config.platforms = PlatformSettings::from_vars(&vars).map_err(ConfigError)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |name: &str, why: &str| Err(ConfigError(format!("{name}: {why}")));
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < MIN_JWT_SECRET_BYTES
        {
            return fail("JWT_SECRET", &format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"));
        }
        if self.jwt_previous_secrets().iter().any(|s| s.len() < MIN_JWT_SECRET_BYTES) {
            return fail("JWT_SECRETS_PREVIOUS", &format!("each secret must be at least {MIN_JWT_SECRET_BYTES} bytes"));
        }
        if let Some(url) = self.database_url.as_ref().map(ExposeSecret::expose_secret)
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return fail("DATABASE_URL", "must start with postgres:// or postgresql://");
        }
        if self.database_max_connections == 0 {
            return fail("DATABASE_MAX_CONNECTIONS", "must be at least 1");
        }
        if self.rate_limit_per_minute == 0 || self.rate_limit_burst == 0 {
            return fail("RATE_LIMIT_PER_MINUTE/RATE_LIMIT_BURST", "must be at least 1");
        }
        if self.idempotency_ttl_hours < 24 {
            return fail("IDEMPOTENCY_TTL_HOURS", "must be at least 24");
        }
        if self.body_limit_bytes < 1024 {
            return fail("BODY_LIMIT_BYTES", "must be at least 1024");
        }
        if self.worker_concurrency == 0 || self.task_lease_secs < 3 || self.scheduler_tick_secs == 0 {
            return fail(
                "WORKER_CONCURRENCY/TASK_LEASE_SECS/SCHEDULER_TICK_SECS",
                "concurrency and tick at least 1, lease at least 3 seconds",
            );
        }
        if self.worker_takeover_secs < 2 {
            return fail("WORKER_TAKEOVER_SECS", "must be at least 2 (a worker beats five times per period)");
        }
        if self.request_timeout_secs == 0 {
            return fail("REQUEST_TIMEOUT_SECS", "must be at least 1");
        }
        if self.log_file_max_bytes == 0 || self.log_file_max_files == 0 {
            return fail("LOG_FILE_MAX_BYTES/LOG_FILE_MAX_FILES", "must be at least 1");
        }
        if let Some(bad) = self
            .whatsapp_command_senders
            .split(',')
            .map(str::trim)
            .find(|n| !n.is_empty() && crate::domain::client::e164(n).is_none())
        {
            return fail("WHATSAPP_COMMAND_SENDERS", &format!("`{bad}` is not an E.164 number (e.g. +5511999990000)"));
        }
        if !(1..=60).contains(&self.webhook_timeout_secs) || self.webhook_rate_per_second == 0 {
            return fail("WEBHOOK_TIMEOUT_SECS/WEBHOOK_RATE_PER_SECOND", "timeout 1-60 seconds, rate at least 1");
        }
        if let Some(secret) = self.callback_secret.as_ref().map(ExposeSecret::expose_secret)
            && !(secret.starts_with("whsec_")
                && crate::crypto::signing::key(secret).is_ok_and(|k| (24..=64).contains(&k.len())))
        {
            return fail(
                "CALLBACK_SECRET",
                "must be `whsec_` followed by base64 of 24-64 random bytes (e.g. from `openssl rand -base64 32`)",
            );
        }
        if let Some(key) = &self.encryption_key {
            crate::crypto::KeyRing::parse(
                key.expose_secret(),
                self.encryption_keys_old.as_ref().map(ExposeSecret::expose_secret),
            )
            .map_err(|why| ConfigError(format!("{why} (make one with `openssl rand -base64 32`)")))?;
        } else if let Some(old) = &self.encryption_keys_old {
            // Zero-setup mode generates the current key; the old ones must still parse.
            crate::crypto::KeyRing::parse(&crate::crypto::generate_key(), Some(old.expose_secret()))
                .map_err(ConfigError)?;
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.expose_secret().len() < MIN_METRICS_TOKEN_BYTES) {
            return fail("METRICS_TOKEN", &format!("must be at least {MIN_METRICS_TOKEN_BYTES} bytes"));
        }
        if !(1..=300).contains(&self.http_header_read_timeout_secs) || self.http_max_connections == 0 {
            return fail(
                "HTTP_HEADER_READ_TIMEOUT_SECS/HTTP_MAX_CONNECTIONS",
                "timeout 1-300 seconds, connections at least 1",
            );
        }
        if self.database_statement_timeout_ms != 0 && self.database_statement_timeout_ms < 100 {
            return fail("DATABASE_STATEMENT_TIMEOUT_MS", "must be 0 (no limit) or at least 100");
        }
        if self.retention_inbound_days != 0 && self.retention_inbound_days < 7 {
            return fail(
                "RETENTION_INBOUND_DAYS",
                "must be 0 (keep) or at least 7 (duplicate webhooks are recognised by it)",
            );
        }
        if !(1..=100_000).contains(&self.retention_batch) || self.retention_interval_secs < 60 {
            return fail(
                "RETENTION_BATCH/RETENTION_INTERVAL_SECS",
                "batch 1-100000 rows, interval at least 60 seconds",
            );
        }
        if let Some(base) = &self.public_base_url
            && let Err(why) = check_public_base_url(base)
        {
            return fail("PUBLIC_BASE_URL", why);
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return fail("LOG_LEVEL", "not a valid filter (e.g. info, debug, switchboard=debug)");
        }
        Ok(())
    }

    /// The earlier JWT secrets that still verify tokens (`JWT_SECRETS_PREVIOUS`).
    pub fn jwt_previous_secrets(&self) -> Vec<Vec<u8>> {
        let raw = self.jwt_secrets_previous.as_ref().map(ExposeSecret::expose_secret).unwrap_or_default();
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect()
    }

    /// True when the service runs its own Postgres cluster (no `DATABASE_URL`).
    pub fn zero_setup(&self) -> bool {
        self.database_url.is_none()
    }

    /// `statement_timeout` for the service's database connections; `None` for no limit.
    pub fn statement_timeout(&self) -> Option<Duration> {
        (self.database_statement_timeout_ms > 0).then(|| Duration::from_millis(self.database_statement_timeout_ms))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The allow-listed WhatsApp command senders, normalised to E.164 (`+` and digits).
    pub fn command_senders(&self) -> Vec<String> {
        self.whatsapp_command_senders.split(',').filter_map(crate::domain::client::e164).collect()
    }

    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect()
    }
}

/// An absolute http(s) URL with a host and no query, fragment or credentials: links are
/// built by appending `/v1/...` to it.
fn check_public_base_url(raw: &str) -> Result<(), &'static str> {
    let why = "must be an http:// or https:// URL with a host and no query, fragment or user info \
               (e.g. https://switchboard.example.com)";
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| why)?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if plain { Ok(()) } else { Err(why) }
}

/// envy names fields in lower case, and names none for enum errors; users set
/// upper-case variables and need to know which one is wrong.
fn describe_envy_error(e: envy::Error, vars: &[(String, String)]) -> String {
    match e {
        envy::Error::MissingValue(field) => format!("{} is required", field.to_uppercase()),
        envy::Error::Custom(msg) => match msg.rsplit_once(" provided by ") {
            Some((why, var)) => format!("{}: {why}", var.to_uppercase()),
            None => {
                let culprit = vars.iter().find(|(k, v)| {
                    Config::KNOWN.contains(&k.to_lowercase().as_str()) && msg.contains(&format!("`{v}`"))
                });
                match culprit {
                    Some((k, _)) => format!("{}: {msg}", k.to_uppercase()),
                    None => msg,
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_zero_setup() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert!(c.zero_setup());
        assert_eq!(c.port, 8080);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
    }

    #[test]
    fn bad_port_names_the_variable() {
        let err = Config::from_vars(vars(&[("PORT", "eighty")])).unwrap_err().to_string();
        assert!(err.contains("PORT"), "{err}");
    }

    #[test]
    fn public_base_url_is_a_plain_http_url() {
        for ok in ["https://switchboard.example.com", "http://127.0.0.1:8080/", "https://agency.example/switchboard"] {
            let c = Config::from_vars(vars(&[("PUBLIC_BASE_URL", ok)])).unwrap();
            assert_eq!(c.public_base_url.as_deref(), Some(ok));
        }
        for bad in [
            "switchboard.example.com",
            "ftp://example.com",
            "https://example.com/?a=1",
            "https://example.com/#top",
            "https://user:pw@example.com",
            "https://",
        ] {
            let err = Config::from_vars(vars(&[("PUBLIC_BASE_URL", bad)])).unwrap_err().to_string();
            assert!(err.contains("PUBLIC_BASE_URL"), "{bad}: {err}");
        }
        assert_eq!(Config::from_vars(vars(&[])).unwrap().public_base_url, None);
    }

    #[test]
    fn command_senders_are_e164_numbers() {
        let c = Config::from_vars(vars(&[("WHATSAPP_COMMAND_SENDERS", "+55 11 99999-0000, +14155550100,")])).unwrap();
        assert_eq!(c.command_senders(), vec!["+5511999990000", "+14155550100"]);
        let err =
            Config::from_vars(vars(&[("WHATSAPP_COMMAND_SENDERS", "+14155550100,5511")])).unwrap_err().to_string();
        assert!(err.contains("WHATSAPP_COMMAND_SENDERS") && err.contains("5511"), "{err}");
    }

    #[test]
    fn short_secret_is_refused() {
        let err = Config::from_vars(vars(&[("JWT_SECRET", "short")])).unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
    }

    /// `.env.example` documents every setting, and its values are valid.
    #[test]
    fn env_example_covers_every_setting() {
        let example = include_str!("../.env.example");
        let fields = serde_json::to_value(Config::default()).unwrap();
        for name in fields.as_object().unwrap().keys() {
            let var = name.to_uppercase();
            assert!(example.contains(&format!("{var}=")), ".env.example does not document {var}");
        }
        let active = example
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()));
        Config::from_vars(active).expect(".env.example values are valid");
    }

    #[test]
    fn callback_secret_must_be_a_whsec_key() {
        let err = Config::from_vars(vars(&[("CALLBACK_SECRET", "hunter2")])).unwrap_err().to_string();
        assert!(err.contains("CALLBACK_SECRET") && !err.contains("hunter2"), "{err}");
        let ok = crate::crypto::signing::new_secret();
        let config = Config::from_vars(vars(&[("CALLBACK_SECRET", &ok)])).unwrap();
        assert_eq!(config.callback_secret.as_ref().map(ExposeSecret::expose_secret), Some(ok.as_str()));
    }

    /// Issue #10 finding 16: no secret setting reaches `{:?}` (or the serialized config).
    #[test]
    fn earlier_jwt_secrets_are_checked_like_the_current_one() {
        let config = Config::from_vars(vars(&[(
            "JWT_SECRETS_PREVIOUS",
            "first-previous-secret-long-enough-000001, second-previous-secret-long-enough-00002",
        )]))
        .unwrap();
        assert_eq!(config.jwt_previous_secrets().len(), 2);
        let err =
            Config::from_vars(vars(&[("JWT_SECRETS_PREVIOUS", "first-previous-secret-long-enough-000001,short")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("JWT_SECRETS_PREVIOUS") && !err.contains("first-previous"), "{err}");
    }

    #[test]
    fn debug_and_serialize_show_no_secret() {
        let whsec = crate::crypto::signing::new_secret();
        let (key, old) = (crate::crypto::generate_key(), crate::crypto::generate_key());
        let secrets: Vec<(&str, String)> = vec![
            ("DATABASE_URL", "postgres://switchboard:db-password-4411@db.internal/switchboard".into()),
            ("JWT_SECRET", "jwt-secret-value-that-is-long-enough-0001".into()),
            ("JWT_SECRETS_PREVIOUS", "jwt-previous-secret-that-is-long-enough-0014".into()),
            ("CALLBACK_SECRET", whsec),
            ("ENCRYPTION_KEY", key),
            ("ENCRYPTION_KEYS_OLD", old),
            ("META_ACCESS_TOKEN", "meta-access-token-0002".into()),
            ("META_APP_SECRET", "meta-app-secret-0003".into()),
            ("GOOGLE_ADS_DEVELOPER_TOKEN", "gads-developer-token-0004".into()),
            ("GOOGLE_ADS_CLIENT_SECRET", "gads-client-secret-0005".into()),
            ("GOOGLE_ADS_REFRESH_TOKEN", "gads-refresh-token-0006".into()),
            ("GOOGLE_DRIVE_SERVICE_ACCOUNT_JSON", r#"{"private_key": "drive-private-key-0007"}"#.into()),
            ("CLICKUP_TOKEN", "pk_clickup-token-0008".into()),
            ("WHATSAPP_ACCESS_TOKEN", "whatsapp-access-token-0009".into()),
            ("WHATSAPP_APP_SECRET", "whatsapp-app-secret-0010".into()),
            ("WHATSAPP_VERIFY_TOKEN", "whatsapp-verify-token-0011".into()),
            ("LLM_ANTHROPIC_API_KEY", "anthropic-api-key-0012".into()),
            ("LLM_OPENAI_API_KEY", "openai-api-key-0013".into()),
        ];
        let config = Config::from_vars(secrets.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap();
        let shown = [format!("{config:?}"), format!("{config:#?}"), serde_json::to_string(&config).unwrap()];
        for (name, value) in &secrets {
            let needle = if *name == "DATABASE_URL" {
                "db-password-4411"
            } else if name.contains("SERVICE_ACCOUNT") {
                "drive-private-key-0007"
            } else {
                value.as_str()
            };
            for text in &shown {
                assert!(!text.contains(needle), "{name} shown: {text}");
            }
        }
        assert_eq!(
            config.platforms.clickup.token.as_ref().map(ExposeSecret::expose_secret),
            Some("pk_clickup-token-0008"),
            "still usable"
        );
    }

    #[test]
    fn a_bad_encryption_key_names_the_variable_not_the_value() {
        let err = Config::from_vars(vars(&[("ENCRYPTION_KEY", "c2hvcnQta2V5")])).unwrap_err().to_string();
        assert!(
            err.contains("ENCRYPTION_KEY") && err.contains("openssl rand -base64 32") && !err.contains("c2hvcnQta2V5"),
            "{err}"
        );
        let key = crate::crypto::generate_key();
        let err = Config::from_vars(vars(&[("ENCRYPTION_KEY", &key), ("ENCRYPTION_KEYS_OLD", "oops")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ENCRYPTION_KEYS_OLD") && !err.contains("oops"), "{err}");
        assert!(
            Config::from_vars(vars(&[("ENCRYPTION_KEYS_OLD", &key)])).is_ok(),
            "zero-setup: old keys without a current one"
        );
    }

    #[test]
    fn runtime_limits_are_validated_without_echoing_the_token() {
        let err = Config::from_vars(vars(&[("METRICS_TOKEN", "hunter2")])).unwrap_err().to_string();
        assert!(err.contains("METRICS_TOKEN") && !err.contains("hunter2"), "{err}");
        let err = Config::from_vars(vars(&[("HTTP_MAX_CONNECTIONS", "0")])).unwrap_err().to_string();
        assert!(err.contains("HTTP_MAX_CONNECTIONS"), "{err}");
        let err = Config::from_vars(vars(&[("HTTP_HEADER_READ_TIMEOUT_SECS", "0")])).unwrap_err().to_string();
        assert!(err.contains("HTTP_HEADER_READ_TIMEOUT_SECS"), "{err}");
        let err = Config::from_vars(vars(&[("DATABASE_STATEMENT_TIMEOUT_MS", "5")])).unwrap_err().to_string();
        assert!(err.contains("DATABASE_STATEMENT_TIMEOUT_MS"), "{err}");
        let c = Config::from_vars(vars(&[("DATABASE_STATEMENT_TIMEOUT_MS", "0")])).unwrap();
        assert_eq!(c.statement_timeout(), None);
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(c.http_max_connections, 1024);
    }

    #[test]
    fn retention_settings_are_validated() {
        let err = Config::from_vars(vars(&[("RETENTION_INBOUND_DAYS", "1")])).unwrap_err().to_string();
        assert!(err.contains("RETENTION_INBOUND_DAYS"), "{err}");
        let err = Config::from_vars(vars(&[("RETENTION_BATCH", "0")])).unwrap_err().to_string();
        assert!(err.contains("RETENTION_BATCH"), "{err}");
        let c = Config::from_vars(vars(&[("RETENTION_INBOUND_DAYS", "0"), ("RETENTION_AUDIT_DAYS", "365")])).unwrap();
        assert_eq!((c.retention_inbound_days, c.retention_audit_days), (0, 365));
    }

    #[test]
    fn bad_log_format_names_the_variable() {
        let err = Config::from_vars(vars(&[("LOG_FORMAT", "xml")])).unwrap_err().to_string();
        assert!(err.contains("LOG_FORMAT"), "{err}");
    }
}
