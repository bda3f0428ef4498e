//! Text completions for reports and summaries: the Anthropic Messages API, or
//! OpenAI Chat Completions as the alternative provider. One provider per
//! connector, chosen by `LLM_PROVIDER`; both return the same [`Completion`] with
//! the token usage the workflows record. Errors and rate-limit headers are read in
//! [`speech`]; what a 200 means (refusals, stop reasons) in [`reply`].
//!
//! Default models (checked 2026-11-30): Anthropic `claude-sonnet-5-5`, the current Sonnet
//! (platform.claude.com/docs/en/models/overview; Sonnet 4.6 is legacy); OpenAI `gpt-6-luna`,
//! the documented replacement of `gpt-4.1-mini`, which shuts down on 2027-01-14
//! (developers.openai.com/api/docs/deprecations). Both reject sampling parameters, so a
//! `temperature` is sent only to models that take one ([`reply::takes_temperature`]).

mod reply;
mod speech;

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::json;

pub use reply::takes_temperature;
pub use speech::{CREDIT_BALANCE_TOO_LOW, SPEND_LIMIT_REACHED};

use self::{
    reply::{AnthropicReply, OpenAiReply},
    speech::Speech,
};
use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::PlatformError,
    expose,
    http::{Call, HttpSettings, PlatformHttp},
};
use crate::domain::limits::LimitStore;

pub const INFO: PlatformInfo =
    PlatformInfo { key: "llm", title: "LLM (Anthropic or OpenAI)", env_prefix: "LLM_", sim_prefix: "/llm", ads: false };

/// The limiter/pause key: both providers limit per organisation (one API key here).
pub const KEY_ACCOUNT: &str = "key";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
        }
    }
}

/// Settings from `LLM_*` variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub provider: Provider,
    pub anthropic_api_key: Option<SecretString>,
    pub anthropic_model: String,
    /// The `anthropic-version` header.
    pub anthropic_version: String,
    /// Without `/v1`.
    pub anthropic_base_url: String,
    pub openai_api_key: Option<SecretString>,
    pub openai_model: String,
    /// Without `/v1`.
    pub openai_base_url: String,
    /// Default answer budget when a request does not set one. Thinking (Claude 5 models think
    /// adaptively by default) and reasoning tokens count against it, hence 4096, not 1024.
    pub max_tokens: u32,
    /// Overrides of the provider's default limits (see [`Settings::http_settings`]).
    pub rate_per_second: Option<f64>,
    pub burst: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            provider: Provider::Anthropic,
            anthropic_api_key: None,
            anthropic_model: "claude-sonnet-5-5".into(),
            anthropic_version: "2023-06-01".into(),
            anthropic_base_url: "https://api.anthropic.com".into(),
            openai_api_key: None,
            openai_model: "gpt-6-luna".into(),
            openai_base_url: "https://api.openai.com".into(),
            max_tokens: 4096,
            rate_per_second: None,
            burst: None,
        }
    }
}

fn blank(v: &Option<SecretString>) -> bool {
    expose(v).is_none_or(|v| v.trim().is_empty())
}

impl Settings {
    pub fn missing(&self) -> Vec<&'static str> {
        match self.provider {
            Provider::Anthropic if blank(&self.anthropic_api_key) => vec!["LLM_ANTHROPIC_API_KEY"],
            Provider::OpenAi if blank(&self.openai_api_key) => vec!["LLM_OPENAI_API_KEY"],
            _ => vec![],
        }
    }

    /// Both providers at the simulator (`{base}/anthropic`, `{base}/openai`).
    pub fn sandboxed(&self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            anthropic_api_key: Some("sandbox-key".into()),
            anthropic_base_url: format!("{base}/anthropic"),
            openai_api_key: Some("sandbox-key".into()),
            openai_base_url: format!("{base}/openai"),
            ..self.clone()
        }
    }

    /// Defaults are the entry tiers' request limits: Anthropic tier 1, 50 requests/min;
    /// OpenAI tier 1, 500 requests/min. Answers can take a minute.
    pub fn http_settings(&self) -> HttpSettings {
        let (per_minute, burst) = match self.provider {
            Provider::Anthropic => (50.0, 5),
            Provider::OpenAi => (500.0, 10),
        };
        HttpSettings {
            request_timeout: Duration::from_secs(120),
            max_total: Duration::from_secs(300),
            ..HttpSettings::new(self.rate_per_second.unwrap_or(per_minute / 60.0), self.burst.unwrap_or(burst))
        }
    }

    pub fn model(&self) -> &str {
        match self.provider {
            Provider::Anthropic => &self.anthropic_model,
            Provider::OpenAi => &self.openai_model,
        }
    }

    fn api_key(&self) -> Option<&str> {
        let key = match self.provider {
            Provider::Anthropic => &self.anthropic_api_key,
            Provider::OpenAi => &self.openai_api_key,
        };
        expose(key).map(str::trim).filter(|k| !k.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    pub system: Option<String>,
    pub prompt: String,
    /// Defaults to `LLM_MAX_TOKENS`.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub provider: Provider,
    /// The model that answered, as the provider names it (may carry a date suffix).
    pub model: String,
    /// The provider's own value: Anthropic `end_turn`/`max_tokens`/…, OpenAI `stop`/`length`/….
    pub stop_reason: String,
    pub usage: Usage,
}

impl Completion {
    /// Whether the answer was cut off: by the token budget (Anthropic `max_tokens`, OpenAI
    /// `length`) or by the model's context window (Anthropic `model_context_window_exceeded`).
    pub fn truncated(&self) -> bool {
        matches!(self.stop_reason.as_str(), "max_tokens" | "length" | "model_context_window_exceeded")
    }
}

pub struct Llm {
    http: PlatformHttp,
    settings: Settings,
}

impl super::Platform for Llm {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::llm::State;

    fn connect(settings: &Settings, calls: &Arc<CallCounter>, limits: &Arc<dyn LimitStore>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
        client.http.share_limits(limits);
        client
    }
    fn http(&self) -> &PlatformHttp {
        &self.http
    }
    fn missing(settings: &Settings) -> Vec<&'static str> {
        settings.missing()
    }
    fn sandboxed(settings: &Settings, base: &str) -> Settings {
        settings.sandboxed(base)
    }
    fn api_version(settings: &Settings) -> Option<String> {
        // Anthropic versions its API by header; OpenAI's is the `/v1` path.
        Some(match settings.provider {
            Provider::Anthropic => settings.anthropic_version.clone(),
            Provider::OpenAi => "v1".into(),
        })
    }
}

impl Llm {
    pub fn new(settings: &Settings) -> Self {
        Self::with_http(settings, settings.http_settings())
    }

    /// With an explicit limiter/retry policy (tests use short backoffs).
    pub fn with_http(settings: &Settings, http: HttpSettings) -> Self {
        let secrets = [expose(&settings.anthropic_api_key), expose(&settings.openai_api_key)]
            .into_iter()
            .flatten()
            .map(String::from)
            .collect();
        Self {
            http: PlatformHttp::new(INFO.key, http, Arc::new(Speech(settings.provider)), secrets),
            settings: settings.clone(),
        }
    }

    pub fn http(&self) -> &PlatformHttp {
        &self.http
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn provider(&self) -> Provider {
        self.settings.provider
    }

    /// The request's temperature, unless the model refuses sampling parameters (then the
    /// model's own default applies, rather than a 400 for every call).
    fn temperature(&self, req: &CompletionRequest) -> Option<f32> {
        let t = req.temperature?;
        if takes_temperature(self.settings.provider, self.settings.model()) {
            return Some(t);
        }
        tracing::debug!(model = self.settings.model(), "temperature not sent: the model takes no sampling parameters");
        None
    }

    pub async fn complete(&self, req: &CompletionRequest) -> Result<Completion, PlatformError> {
        let key =
            self.settings.api_key().ok_or_else(|| PlatformError::not_configured(INFO.key, &self.settings.missing()))?;
        match self.settings.provider {
            Provider::Anthropic => self.anthropic(key, req).await,
            Provider::OpenAi => self.openai(key, req).await,
        }
    }

    async fn anthropic(&self, key: &str, req: &CompletionRequest) -> Result<Completion, PlatformError> {
        let s = &self.settings;
        let max_tokens = req.max_tokens.unwrap_or(s.max_tokens);
        let mut body = json!({
            "model": s.anthropic_model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": req.prompt}],
        });
        if let Some(system) = &req.system {
            body["system"] = json!(system);
        }
        if let Some(t) = self.temperature(req) {
            body["temperature"] = json!(t);
        }
        let url = format!("{}/v1/messages", s.anthropic_base_url.trim_end_matches('/'));
        let reply = self
            .http
            .send(Call::new("messages").account(KEY_ACCOUNT), |c| {
                c.post(&url).header("x-api-key", key).header("anthropic-version", &s.anthropic_version).json(&body)
            })
            .await?;
        reply.json::<AnthropicReply>()?.into_completion(&s.anthropic_model, max_tokens)
    }

    async fn openai(&self, key: &str, req: &CompletionRequest) -> Result<Completion, PlatformError> {
        let s = &self.settings;
        let mut messages = vec![];
        if let Some(system) = &req.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": req.prompt}));
        let max_tokens = req.max_tokens.unwrap_or(s.max_tokens);
        let mut body = json!({
            "model": s.openai_model,
            "messages": messages,
            "max_completion_tokens": max_tokens,
        });
        if let Some(t) = self.temperature(req) {
            body["temperature"] = json!(t);
        }
        let url = format!("{}/v1/chat/completions", s.openai_base_url.trim_end_matches('/'));
        let reply = self
            .http
            .send(Call::new("chat_completions").account(KEY_ACCOUNT), |c| c.post(&url).bearer_auth(key).json(&body))
            .await?;
        reply.json::<OpenAiReply>()?.into_completion(&s.openai_model, max_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        let s = Settings::default();
        assert_eq!(s.missing(), vec!["LLM_ANTHROPIC_API_KEY"]);
        assert_eq!(s.model(), "claude-sonnet-5-5");
        let openai = Settings { provider: Provider::OpenAi, ..Settings::default() };
        assert_eq!(openai.missing(), vec!["LLM_OPENAI_API_KEY"]);
        assert_eq!(openai.model(), "gpt-6-luna");
        let sandbox = s.sandboxed("http://127.0.0.1:1/llm/");
        assert!(sandbox.missing().is_empty());
        assert_eq!(sandbox.anthropic_base_url, "http://127.0.0.1:1/llm/anthropic");
        assert_eq!(sandbox.openai_base_url, "http://127.0.0.1:1/llm/openai");
        let vars =
            [("LLM_PROVIDER".to_string(), "openai".to_string()), ("LLM_MAX_TOKENS".to_string(), "300".to_string())];
        let loaded: Settings = envy::prefixed("LLM_").from_iter(vars).unwrap();
        assert_eq!(
            (loaded.provider, loaded.max_tokens, loaded.openai_model.as_str()),
            (Provider::OpenAi, 300, "gpt-6-luna")
        );
    }
}
