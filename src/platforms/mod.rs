//! Connectors to the platforms the agency works with, one module each, all
//! calling through the shared HTTP layer (`http.rs`). Adding a platform: one new
//! module (its `INFO`, `Settings` and client), one line in [`REGISTRY`] and a field
//! in [`PlatformSettings`] / [`Platforms`], and its settings in `.env.example`.
//!
//! Every connector is a real HTTP client of the real API; only the base URL
//! changes between live, sandbox (the built-in simulator, `src/sim/`) and tests
//! (wiremock).

pub mod clickup;
pub mod error;
pub mod google_ads;
pub mod google_auth;
pub mod google_drive;
pub mod http;
pub mod llm;
pub mod meta;
pub mod whatsapp;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use error::{ErrorKind, PlatformError};
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

/// Every platform, in display order. Everything that lists platforms reads this.
pub const REGISTRY: [PlatformInfo; 6] =
    [meta::INFO, google_ads::INFO, google_drive::INFO, clickup::INFO, whatsapp::INFO, llm::INFO];

pub fn info(key: &str) -> Option<&'static PlatformInfo> {
    REGISTRY.iter().find(|p| p.key == key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The real platforms, with the configured credentials.
    Live,
    /// The built-in simulator, in-process: no credentials needed.
    Sandbox,
}

/// Settings of every platform, each read from its own prefixed variables.
#[derive(Debug, Clone, Default)]
pub struct PlatformSettings {
    /// `PLATFORM_MODE`; when unset: live if any platform has credentials, else sandbox.
    pub mode: Option<Mode>,
    pub meta: meta::Settings,
    pub google_ads: google_ads::Settings,
    pub google_drive: google_drive::Settings,
    pub clickup: clickup::Settings,
    pub whatsapp: whatsapp::Settings,
    pub llm: llm::Settings,
}

impl PlatformSettings {
    pub fn from_vars(vars: &[(String, String)]) -> Result<Self, String> {
        fn load<T: serde::de::DeserializeOwned>(prefix: &str, vars: &[(String, String)]) -> Result<T, String> {
            envy::prefixed(prefix).from_iter(vars.iter().cloned()).map_err(|e| match e {
                envy::Error::MissingValue(f) => format!("{prefix}{} is required", f.to_uppercase()),
                envy::Error::Custom(m) => format!("{prefix}*: {m}"),
            })
        }
        let mode = match vars.iter().find(|(k, _)| k == "PLATFORM_MODE").map(|(_, v)| v.trim().to_lowercase()) {
            None => None,
            Some(v) if v == "live" => Some(Mode::Live),
            Some(v) if v == "sandbox" => Some(Mode::Sandbox),
            Some(v) => return Err(format!("PLATFORM_MODE: `{v}` is not one of live, sandbox")),
        };
        Ok(Self {
            mode,
            meta: load(meta::INFO.env_prefix, vars)?,
            google_ads: load(google_ads::INFO.env_prefix, vars)?,
            google_drive: load(google_drive::INFO.env_prefix, vars)?,
            clickup: load(clickup::INFO.env_prefix, vars)?,
            whatsapp: load(whatsapp::INFO.env_prefix, vars)?,
            llm: load(llm::INFO.env_prefix, vars)?,
        })
    }

    /// Credentials each platform lacks for live use (names of the variables, never values).
    pub fn missing(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        vec![
            (meta::INFO.key, self.meta.missing()),
            (google_ads::INFO.key, self.google_ads.missing()),
            (google_drive::INFO.key, self.google_drive.missing()),
            (clickup::INFO.key, self.clickup.missing()),
            (whatsapp::INFO.key, self.whatsapp.missing()),
            (llm::INFO.key, self.llm.missing()),
        ]
    }

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

    /// The same settings pointed at a simulator at `base`, with sandbox credentials.
    pub fn sandboxed(&self, base: &str) -> Self {
        Self {
            mode: Some(Mode::Sandbox),
            meta: self.meta.sandboxed(&format!("{base}{}", meta::INFO.sim_prefix)),
            google_ads: self.google_ads.sandboxed(&format!("{base}{}", google_ads::INFO.sim_prefix)),
            google_drive: self.google_drive.sandboxed(&format!("{base}{}", google_drive::INFO.sim_prefix)),
            clickup: self.clickup.sandboxed(&format!("{base}{}", clickup::INFO.sim_prefix)),
            whatsapp: self.whatsapp.sandboxed(&format!("{base}{}", whatsapp::INFO.sim_prefix)),
            llm: self.llm.sandboxed(&format!("{base}{}", llm::INFO.sim_prefix)),
        }
    }
}

/// One client per platform, built once at start-up.
pub struct Platforms {
    pub mode: Mode,
    pub settings: PlatformSettings,
    pub meta: meta::Meta,
    pub google_ads: google_ads::GoogleAds,
    pub google_drive: google_drive::GoogleDrive,
    pub clickup: clickup::ClickUp,
    pub whatsapp: whatsapp::WhatsApp,
    pub llm: llm::Llm,
}

impl Platforms {
    /// `settings` must already point where calls should go (see [`PlatformSettings::sandboxed`]).
    pub fn new(mode: Mode, settings: PlatformSettings) -> Self {
        Self {
            mode,
            meta: meta::Meta::new(&settings.meta),
            google_ads: google_ads::GoogleAds::new(&settings.google_ads),
            google_drive: google_drive::GoogleDrive::new(&settings.google_drive),
            clickup: clickup::ClickUp::new(&settings.clickup),
            whatsapp: whatsapp::WhatsApp::new(&settings.whatsapp),
            llm: llm::Llm::new(&settings.llm),
            settings,
        }
    }

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

    /// The HTTP layer of a platform (limits, status), by registry key.
    pub fn http(&self, key: &str) -> Option<&http::PlatformHttp> {
        Some(match key {
            "meta" => self.meta.http(),
            "google_ads" => self.google_ads.http(),
            "google_drive" => self.google_drive.http(),
            "clickup" => self.clickup.http(),
            "whatsapp" => self.whatsapp.http(),
            "llm" => self.llm.http(),
            _ => return None,
        })
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
        let sources = [
            (meta::INFO.env_prefix, include_str!("meta/mod.rs")),
            (google_ads::INFO.env_prefix, include_str!("google_ads.rs")),
            (google_drive::INFO.env_prefix, include_str!("google_drive.rs")),
            (clickup::INFO.env_prefix, include_str!("clickup.rs")),
            (whatsapp::INFO.env_prefix, include_str!("whatsapp.rs")),
            (llm::INFO.env_prefix, include_str!("llm.rs")),
        ];
        for (prefix, source) in sources {
            let fields = settings_fields(source);
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
