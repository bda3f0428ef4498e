//! Connectors to the platforms the agency works with, one module each, all
//! calling through the shared HTTP layer (`http.rs`). Adding a platform: its module
//! (`INFO`, `Settings`, its client implementing [`Platform`]), its simulator module
//! (`src/sim/`), one line in the list at the end of `registry.rs`, and its settings in
//! `.env.example` (docs/PLATFORMS.md). This layer knows nothing of the database: calls
//! are counted in a [`calls::CallCounter`] that the caller writes.
//!
//! Every connector is a real HTTP client of the real API; only the base URL
//! changes between live, sandbox (the built-in simulator, `src/sim/`) and tests
//! (wiremock).

pub mod calls;
pub mod clickup;
pub mod error;
pub mod google_ads;
pub mod google_auth;
pub mod google_drive;
pub mod http;
pub mod llm;
pub mod meta;
mod registry;
pub mod whatsapp;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use error::{ErrorKind, PlatformError, PlatformProblem};
pub use registry::{
    Platform, PlatformSettings, Platforms, REGISTRY, Readiness, SUNSET_WARN_DAYS, graph_sunset, simulator,
    sunset_warning,
};
pub use secrecy::SecretString;

/// The value of an optional secret setting (`SecretString`, so `{:?}` never shows it).
pub fn expose(secret: &Option<SecretString>) -> Option<&str> {
    secret.as_ref().map(secrecy::ExposeSecret::expose_secret)
}

/// What the registry knows about a platform.
#[derive(Debug, Clone, Copy)]
pub struct PlatformInfo {
    /// Stable key used in the API, settings and metrics (`meta`, `google_ads`, ...).
    pub key: &'static str,
    pub title: &'static str,
    /// Prefix of its settings in the environment (`META_`, ...).
    pub env_prefix: &'static str,
    /// Path under the simulator where it is served (`/meta`, ...).
    pub sim_prefix: &'static str,
    /// Whether it reports ad metrics (synced into `costs`).
    pub ads: bool,
}

pub fn info(key: &str) -> Option<&'static PlatformInfo> {
    REGISTRY.iter().find(|p| p.key == key)
}

/// A platform's key, as the spec describes it (the keys of [`REGISTRY`]).
pub struct PlatformKey;

crate::domain::names::names_schema!(
    PlatformKey,
    "PlatformKey",
    "A platform's key (`GET /v1/platforms` lists them).",
    REGISTRY.iter().map(|p| p.key)
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The real platforms, with the configured credentials.
    Live,
    /// The built-in simulator, in-process: no credentials needed.
    Sandbox,
}

impl PlatformSettings {
    pub fn effective_mode(&self) -> Mode {
        self.mode.unwrap_or_else(|| {
            let any_configured = self.missing().iter().any(|(_, missing)| missing.is_empty());
            if any_configured { Mode::Live } else { Mode::Sandbox }
        })
    }

    /// In live mode every platform must be configured; says which settings are missing.
    pub fn check_live(&self) -> Result<(), String> {
        let gaps: Vec<String> = self
            .missing()
            .into_iter()
            .filter(|(_, missing)| !missing.is_empty())
            .map(|(platform, missing)| format!("{platform}: {}", missing.join(", ")))
            .collect();
        if gaps.is_empty() {
            Ok(())
        } else {
            Err(format!("PLATFORM_MODE=live but settings are missing — {}", gaps.join("; ")))
        }
    }
}

impl Platforms {
    /// Settings a live platform lacks (names only); empty in sandbox mode.
    pub fn missing(&self, key: &str) -> Vec<&'static str> {
        if self.mode == Mode::Sandbox {
            return vec![];
        }
        self.settings.missing().into_iter().find(|(k, _)| *k == key).map(|(_, m)| m).unwrap_or_default()
    }

    /// Fails with `NotConfigured`, naming the missing settings, before any call is made.
    pub fn ensure_configured(&self, key: &str) -> Result<(), PlatformError> {
        let missing = self.missing(key);
        let platform = info(key).map(|p| p.key).unwrap_or("unknown");
        if missing.is_empty() { Ok(()) } else { Err(PlatformError::not_configured(platform, &missing)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `pub field:` names of a module's `Settings` struct.
    fn settings_fields(source: &str) -> Vec<String> {
        let start = source.find("pub struct Settings {").expect("Settings struct");
        let body = &source[start..source[start..].find("\n}").map(|e| start + e).expect("end of Settings")];
        body.lines()
            .filter_map(|l| l.trim().strip_prefix("pub ")?.split_once(':').map(|(name, _)| name.trim().to_string()))
            .filter(|name| !name.contains(' '))
            .collect()
    }

    /// Every platform setting is documented in `.env.example`, and its values load.
    #[test]
    fn env_example_documents_every_platform_setting() {
        let example = include_str!("../../.env.example");
        // Each platform's module is named after its key (`<key>.rs` or `<key>/mod.rs`).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/platforms");
        for p in REGISTRY {
            let source = std::fs::read_to_string(dir.join(format!("{}.rs", p.key)))
                .or_else(|_| std::fs::read_to_string(dir.join(p.key).join("mod.rs")))
                .unwrap_or_else(|_| panic!("src/platforms/{}.rs (or {}/mod.rs) holds its Settings", p.key, p.key));
            let prefix = p.env_prefix;
            let fields = settings_fields(&source);
            assert!(fields.len() >= 3, "{prefix}: Settings fields not found");
            for field in fields {
                let var = format!("{prefix}{}", field.to_uppercase());
                assert!(example.contains(&format!("{var}=")), ".env.example does not document {var}");
            }
        }
        let active: Vec<(String, String)> = example
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let settings = PlatformSettings::from_vars(&active).expect(".env.example platform values load");
        assert_eq!(settings.effective_mode(), Mode::Sandbox, "no credentials: sandbox");
    }

    #[test]
    fn live_mode_names_the_missing_settings() {
        let vars =
            vec![("PLATFORM_MODE".to_string(), "live".to_string()), ("META_ACCESS_TOKEN".to_string(), "t".to_string())];
        let settings = PlatformSettings::from_vars(&vars).unwrap();
        let err = settings.check_live().unwrap_err();
        assert!(err.contains("CLICKUP_TOKEN") && err.contains("GOOGLE_ADS_DEVELOPER_TOKEN"), "{err}");
        assert!(!err.contains("META_ACCESS_TOKEN"), "{err}");
        assert!(PlatformSettings::from_vars(&[("PLATFORM_MODE".into(), "maybe".into())]).is_err());
    }
}
