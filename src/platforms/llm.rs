//! Text completions for reports and summaries: the Anthropic Messages API, or
//! OpenAI Chat Completions as the alternative provider. One provider per
//! connector, chosen by `LLM_PROVIDER`; both return the same [`Completion`] with
//! the token usage the workflows record.

use std::{sync::Arc, time::Duration};

use reqwest::{StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    PlatformInfo, SecretString,
    calls::CallCounter,
    error::{ErrorKind, PlatformError},
    expose,
    http::{Call, Dialect, HttpSettings, PlatformHttp, Verdict, retry_after},
};

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
    /// Default answer budget when a request does not set one.
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
            anthropic_model: "claude-sonnet-4-6".into(),
            anthropic_version: "2023-06-01".into(),
            anthropic_base_url: "https://api.anthropic.com".into(),
            openai_api_key: None,
            openai_model: "gpt-4.1-mini".into(),
            openai_base_url: "https://api.openai.com".into(),
            max_tokens: 1024,
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
    /// OpenAI tier 1 for gpt-4.1-mini, 500 requests/min. Answers can take a minute.
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
    /// Whether the answer was cut off by the token budget.
    pub fn truncated(&self) -> bool {
        matches!(self.stop_reason.as_str(), "max_tokens" | "length")
    }
}

#[derive(Deserialize)]
struct AnthropicReply {
    content: Vec<AnthropicBlock>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
struct AnthropicBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

#[derive(Deserialize)]
struct OpenAiReply {
    choices: Vec<OpenAiChoice>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiChoice {
    message: OpenAiMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// Each provider's error body and rate-limit headers.
struct Speech(Provider);

impl Dialect for Speech {
    fn classify(&self, platform: &'static str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status.is_success() {
            return Verdict::Success;
        }
        let error = match self.0 {
            Provider::Anthropic => anthropic_error(platform, status.as_u16(), body),
            Provider::OpenAi => openai_error(platform, status.as_u16(), body),
        };
        let error = if error.retryable { error.retry_after(retry_after(headers)) } else { error };
        if error.retryable { Verdict::Retry(error) } else { Verdict::Fail(error) }
    }

    /// A spent request or token budget: wait for its reset rather than earn a 429.
    fn pause_for(&self, headers: &HeaderMap) -> Option<Duration> {
        let header = |name: String| headers.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::trim);
        let (kinds, prefix): (&[&str], &str) = match self.0 {
            Provider::Anthropic => (&["requests", "tokens", "input-tokens", "output-tokens"], "anthropic-ratelimit-"),
            Provider::OpenAi => (&["requests", "tokens"], "x-ratelimit-"),
        };
        kinds
            .iter()
            .filter_map(|kind| {
                let (remaining, reset) = match self.0 {
                    Provider::Anthropic => {
                        (header(format!("{prefix}{kind}-remaining"))?, header(format!("{prefix}{kind}-reset"))?)
                    }
                    Provider::OpenAi => {
                        (header(format!("{prefix}remaining-{kind}"))?, header(format!("{prefix}reset-{kind}"))?)
                    }
                };
                if remaining != "0" {
                    return None;
                }
                match self.0 {
                    Provider::Anthropic => until_rfc3339(reset),
                    Provider::OpenAi => go_duration(reset),
                }
            })
            .max()
            .map(|d| d.min(Duration::from_secs(60)))
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).to_string()
}

/// `{"type":"error","error":{"type","message","details"?}}`.
fn anthropic_error(platform: &'static str, status: u16, body: &[u8]) -> PlatformError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let kind = error["type"].as_str().unwrap_or_default().to_string();
    let message =
        error["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}: {}", snippet(body)));
    let detail = error["details"]["error_code"].as_str();
    let mut e = match (status, detail) {
        // The monthly spend limit does not clear with waiting.
        (429, Some(code @ "enforced_spend_limit_reached")) => {
            PlatformError::new(platform, ErrorKind::Rejected, message).status(status).code(code)
        }
        (402, _) => PlatformError::new(platform, ErrorKind::Rejected, message).status(status),
        // 529 overloaded_error, 500 api_error: from_status makes them retryable Unavailable.
        _ => PlatformError::from_status(platform, status, message),
    };
    if e.code.is_none() && !kind.is_empty() {
        e = e.code(kind);
    }
    e
}

/// `{"error":{"message","type","param","code"}}`.
fn openai_error(platform: &'static str, status: u16, body: &[u8]) -> PlatformError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let message =
        error["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}: {}", snippet(body)));
    let code = error["code"].as_str().or_else(|| error["type"].as_str()).map(str::to_string);
    let quota =
        error["code"].as_str() == Some("insufficient_quota") || error["type"].as_str() == Some("insufficient_quota");
    let e = if status == 429 && quota {
        // Out of credit: retrying only burns attempts.
        PlatformError::new(platform, ErrorKind::Rejected, message).status(status)
    } else {
        PlatformError::from_status(platform, status, message)
    };
    match code {
        Some(code) => e.code(code),
        None => e,
    }
}

/// Time until an RFC 3339 instant (Anthropic's `*-reset` headers).
fn until_rfc3339(value: &str) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc3339(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// Go-style durations as OpenAI sends them: `12ms`, `6s`, `1m0s`, `1h2m3.5s`.
fn go_duration(value: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

pub struct Llm {
    http: PlatformHttp,
    settings: Settings,
}

impl super::Platform for Llm {
    const INFO: PlatformInfo = INFO;
    type Settings = Settings;
    type Sim = crate::sim::llm::State;

    fn connect(settings: &Settings, calls: &Arc<CallCounter>) -> Self {
        let mut client = Self::new(settings);
        client.http.count_into(calls);
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
        let mut body = json!({
            "model": s.anthropic_model,
            "max_tokens": req.max_tokens.unwrap_or(s.max_tokens),
            "messages": [{"role": "user", "content": req.prompt}],
        });
        if let Some(system) = &req.system {
            body["system"] = json!(system);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        let url = format!("{}/v1/messages", s.anthropic_base_url.trim_end_matches('/'));
        let reply = self
            .http
            .send(Call::new("messages").account(KEY_ACCOUNT), |c| {
                c.post(&url).header("x-api-key", key).header("anthropic-version", &s.anthropic_version).json(&body)
            })
            .await?;
        let parsed: AnthropicReply = reply.json()?;
        let text: String =
            parsed.content.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref()).collect();
        Ok(Completion {
            text,
            provider: Provider::Anthropic,
            model: parsed.model.unwrap_or_else(|| s.anthropic_model.clone()),
            stop_reason: parsed.stop_reason.unwrap_or_default(),
            usage: Usage { input_tokens: parsed.usage.input_tokens, output_tokens: parsed.usage.output_tokens },
        })
    }

    async fn openai(&self, key: &str, req: &CompletionRequest) -> Result<Completion, PlatformError> {
        let s = &self.settings;
        let mut messages = vec![];
        if let Some(system) = &req.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": req.prompt}));
        let mut body = json!({
            "model": s.openai_model,
            "messages": messages,
            "max_completion_tokens": req.max_tokens.unwrap_or(s.max_tokens),
        });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        let url = format!("{}/v1/chat/completions", s.openai_base_url.trim_end_matches('/'));
        let reply = self
            .http
            .send(Call::new("chat_completions").account(KEY_ACCOUNT), |c| c.post(&url).bearer_auth(key).json(&body))
            .await?;
        let parsed: OpenAiReply = reply.json()?;
        let choice = parsed
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| PlatformError::malformed(INFO.key, "no choices in the answer"))?;
        let text = match (choice.message.content, choice.message.refusal) {
            (_, Some(refusal)) if !refusal.is_empty() => {
                return Err(PlatformError::new(INFO.key, ErrorKind::Rejected, format!("the model refused: {refusal}"))
                    .code("refusal"));
            }
            (content, _) => content.unwrap_or_default(),
        };
        let usage = parsed.usage.map(|u| Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens });
        Ok(Completion {
            text,
            provider: Provider::OpenAi,
            model: parsed.model.unwrap_or_else(|| s.openai_model.clone()),
            stop_reason: choice.finish_reason.unwrap_or_default(),
            usage: usage.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(provider: Provider, status: u16, headers: &HeaderMap, body: &str) -> Verdict {
        Speech(provider).classify("llm", StatusCode::from_u16(status).unwrap(), headers, body.as_bytes())
    }

    #[test]
    fn anthropic_errors() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let rate = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#;
        assert!(matches!(classify(Provider::Anthropic, 429, &h, rate),
            Verdict::Retry(e) if e.kind == ErrorKind::Throttled && e.retry_after == Some(Duration::from_secs(7)) && e.code.as_deref() == Some("rate_limit_error")));
        let spend = r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        assert!(matches!(classify(Provider::Anthropic, 429, &HeaderMap::new(), spend),
            Verdict::Fail(e) if e.kind == ErrorKind::Rejected && e.code.as_deref() == Some("enforced_spend_limit_reached")));
        let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(
            matches!(classify(Provider::Anthropic, 529, &HeaderMap::new(), overloaded), Verdict::Retry(e) if e.kind == ErrorKind::Unavailable)
        );
        assert!(
            matches!(classify(Provider::Anthropic, 403, &HeaderMap::new(), "{}"), Verdict::Fail(e) if e.kind == ErrorKind::Auth)
        );
        assert!(
            matches!(classify(Provider::Anthropic, 413, &HeaderMap::new(), "<html>too large</html>"), Verdict::Fail(e) if e.kind == ErrorKind::Invalid)
        );
    }

    #[test]
    fn openai_errors() {
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(
            matches!(classify(Provider::OpenAi, 429, &HeaderMap::new(), quota), Verdict::Fail(e) if e.kind == ErrorKind::Rejected && !e.retryable)
        );
        let rate = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert!(
            matches!(classify(Provider::OpenAi, 429, &HeaderMap::new(), rate), Verdict::Retry(e) if e.code.as_deref() == Some("rate_limit_exceeded"))
        );
        let key = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        assert!(
            matches!(classify(Provider::OpenAi, 401, &HeaderMap::new(), key), Verdict::Fail(e) if e.kind == ErrorKind::Auth)
        );
        assert!(matches!(classify(Provider::OpenAi, 503, &HeaderMap::new(), ""), Verdict::Retry(_)));
    }

    #[test]
    fn pauses_when_a_budget_is_spent() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining-requests", "0".parse().unwrap());
        h.insert("x-ratelimit-reset-requests", "1m0s".parse().unwrap());
        h.insert("x-ratelimit-remaining-tokens", "150000".parse().unwrap());
        h.insert("x-ratelimit-reset-tokens", "6s".parse().unwrap());
        assert_eq!(Speech(Provider::OpenAi).pause_for(&h), Some(Duration::from_secs(60)));
        let mut a = HeaderMap::new();
        let reset = (chrono::Utc::now() + chrono::Duration::seconds(20)).to_rfc3339();
        a.insert("anthropic-ratelimit-tokens-remaining", "0".parse().unwrap());
        a.insert("anthropic-ratelimit-tokens-reset", reset.parse().unwrap());
        a.insert("anthropic-ratelimit-requests-remaining", "10".parse().unwrap());
        let pause = Speech(Provider::Anthropic).pause_for(&a).unwrap();
        assert!(pause > Duration::from_secs(15) && pause <= Duration::from_secs(20), "{pause:?}");
        assert_eq!(Speech(Provider::Anthropic).pause_for(&HeaderMap::new()), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(go_duration("1m30.5s"), Some(Duration::from_millis(90_500)));
        assert_eq!(go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(go_duration("soon"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn settings() {
        let s = Settings::default();
        assert_eq!(s.missing(), vec!["LLM_ANTHROPIC_API_KEY"]);
        let openai = Settings { provider: Provider::OpenAi, ..Settings::default() };
        assert_eq!(openai.missing(), vec!["LLM_OPENAI_API_KEY"]);
        assert_eq!(openai.model(), "gpt-4.1-mini");
        let sandbox = s.sandboxed("http://127.0.0.1:1/llm/");
        assert!(sandbox.missing().is_empty());
        assert_eq!(sandbox.anthropic_base_url, "http://127.0.0.1:1/llm/anthropic");
        assert_eq!(sandbox.openai_base_url, "http://127.0.0.1:1/llm/openai");
        let vars =
            [("LLM_PROVIDER".to_string(), "openai".to_string()), ("LLM_MAX_TOKENS".to_string(), "300".to_string())];
        let loaded: Settings = envy::prefixed("LLM_").from_iter(vars).unwrap();
        assert_eq!(
            (loaded.provider, loaded.max_tokens, loaded.openai_model.as_str()),
            (Provider::OpenAi, 300, "gpt-4.1-mini")
        );
    }
}
