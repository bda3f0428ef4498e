//! Simulated LLM providers: Anthropic Messages at `/anthropic/v1/messages` and
//! OpenAI Chat Completions at `/openai/v1/chat/completions`, with their auth
//! checks, error bodies and usage. The answer is a short deterministic summary
//! built from the prompt (the first figures it mentions), so reports built in
//! the sandbox are reproducible; token counts are estimated from word counts.
//!
//! The vendors' bad days, on demand ([`Scenario`]): a marker in the prompt
//! (`[sim:overloaded]`, `[sim:spend_limit]`, …) or `POST /_sim/llm/config
//! {"scenario": "refusal", "times": 2}` (the next N requests; without `times`, until
//! `{"scenario": null}`). Each answers with the vendor's documented status and body.
//! Models that take no sampling parameters answer a `temperature` with the vendor's 400.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State as AxumState,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Vendor, new_id, unit};

/// A vendor's bad day, answered as the vendor documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Anthropic 529 `overloaded_error`; OpenAI 503 (platform.claude.com/docs/en/api/errors,
    /// developers.openai.com/api/docs/guides/error-codes).
    Overloaded,
    /// Anthropic 400 `invalid_request_error` "You have reached your specified API usage
    /// limits…" (a spend limit the organisation set); OpenAI 429 `insufficient_quota`.
    SpendLimit,
    /// Anthropic 429 `rate_limit_error` with `details.error_code: enforced_spend_limit_reached`
    /// and no `retry-after` (the tier's monthly cap); OpenAI 429 `insufficient_quota`.
    SpendCap,
    /// Anthropic 400 "Your credit balance is too low…"; OpenAI 429 `insufficient_quota`.
    CreditBalance,
    /// OpenAI 429 `insufficient_quota`; Anthropic's equivalent, the credit-balance 400.
    InsufficientQuota,
    /// Anthropic `stop_reason: "refusal"` with `stop_details`; OpenAI `message.refusal` with
    /// `content: null`.
    Refusal,
    /// Anthropic `stop_reason: "pause_turn"`, no text; OpenAI has no paused turns and answers.
    PauseTurn,
    /// Anthropic `stop_reason: "model_context_window_exceeded"` with partial text; OpenAI 400
    /// `context_length_exceeded`.
    ContextWindow,
}

impl Scenario {
    const ALL: [(&'static str, Scenario); 8] = [
        ("overloaded", Self::Overloaded),
        ("spend_limit", Self::SpendLimit),
        ("spend_cap", Self::SpendCap),
        ("credit_balance", Self::CreditBalance),
        ("insufficient_quota", Self::InsufficientQuota),
        ("refusal", Self::Refusal),
        ("pause_turn", Self::PauseTurn),
        ("context_window", Self::ContextWindow),
    ];

    /// The first `[sim:<name>]` marker in `text`.
    fn marked(text: &str) -> Option<Self> {
        Self::ALL.iter().find(|(name, _)| text.contains(&format!("[sim:{name}]"))).map(|(_, s)| *s)
    }
}

#[derive(Default)]
pub struct State {
    completions: AtomicU64,
    /// The configured scenario and how many more requests it applies to (`None`: all).
    scenario: Mutex<Option<(Scenario, Option<u32>)>>,
}

impl State {
    pub fn created(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([("completions".to_string(), self.completions.load(Ordering::Relaxed))])
    }

    pub fn reset(&self) {
        self.completions.store(0, Ordering::Relaxed);
    }

    /// Answers the next `times` requests (all, when `None`) with `scenario`; `None` clears it.
    pub fn set_scenario(&self, scenario: Option<Scenario>, times: Option<u32>) {
        *self.scenario.lock().expect("llm sim scenario") = scenario.map(|s| (s, times));
    }

    /// The scenario of this request: its prompt's marker, else the configured one (counted down).
    fn scenario_for(&self, prompt: &str) -> Option<Scenario> {
        if let Some(marked) = Scenario::marked(prompt) {
            return Some(marked);
        }
        let mut current = self.scenario.lock().expect("llm sim scenario");
        let (scenario, times) = (*current)?;
        match times {
            Some(0) => {
                *current = None;
                None
            }
            Some(n) => {
                *current = (n > 1).then_some((scenario, Some(n - 1)));
                Some(scenario)
            }
            None => Some(scenario),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    scenario: Option<Scenario>,
    #[serde(default)]
    times: Option<u32>,
}

async fn configure(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Config>(&body) {
        Ok(c) => {
            state.set_scenario(c.scenario, c.times);
            Json(json!({"scenario": c.scenario, "times": c.times})).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!(
                "expected {{\"scenario\": one of {:?} or null, \"times\": N?}}: {e}",
                Scenario::ALL.map(|(n, _)| n)
            ),
        )
            .into_response(),
    }
}

impl Vendor for State {
    fn routes(self: Arc<Self>) -> Router {
        router().with_state(self)
    }
    fn throttled(&self) -> Response {
        throttled()
    }
    fn fault(&self) -> Response {
        fault()
    }
    fn created(&self) -> BTreeMap<String, u64> {
        State::created(self)
    }
    fn reset(&self) {
        State::reset(self)
    }
    /// Anthropic's `error.details.error_code` or OpenAI's `error.code` when there is one, else
    /// the error `type`.
    fn error_code(&self, body: &Value) -> Option<String> {
        let error = &body["error"];
        (error["details"]["error_code"].as_str())
            .or_else(|| error["code"].as_str())
            .or_else(|| error["type"].as_str())
            .map(String::from)
    }
    /// `POST /_sim/llm/config {"scenario": …, "times": N}`.
    fn controls(self: Arc<Self>) -> Option<Router> {
        Some(Router::new().route("/config", post(configure)).with_state(self))
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/anthropic/v1/messages", post(messages))
        .route("/openai/v1/chat/completions", post(chat_completions))
}

/// Anthropic's 429: wait a second, and the request budget says so too.
pub fn throttled() -> Response {
    let reset = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let headers = [
        ("retry-after", "1".to_string()),
        ("anthropic-ratelimit-requests-limit", "50".to_string()),
        ("anthropic-ratelimit-requests-remaining", "0".to_string()),
        ("anthropic-ratelimit-requests-reset", reset),
    ];
    let body =
        anthropic_error_body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit");
    (StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response()
}

pub fn fault() -> Response {
    (
        StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        Json(anthropic_error_body("overloaded_error", "Overloaded")),
    )
        .into_response()
}

fn anthropic_error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req_")})
}

fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, [("request-id", new_id("req_"))], Json(anthropic_error_body(kind, message))).into_response()
}

fn openai_error(status: StatusCode, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Response {
    (
        status,
        [("x-request-id", new_id("req_"))],
        Json(json!({"error": {"message": message, "type": kind, "param": param, "code": code}})),
    )
        .into_response()
}

/// Text of a message `content`: a string or an array of `{type: "text", text}` blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// About 4 tokens per 3 English words.
pub fn estimate_tokens(text: &str) -> u32 {
    let words = text.split_whitespace().count() as u32;
    (words * 4).div_ceil(3)
}

/// The first three figures in `prompt`, each with the currency code that follows it.
fn figures(prompt: &str) -> Vec<String> {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    let trim = |w: &str| w.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '%')).to_string();
    let mut found = vec![];
    for (i, word) in words.iter().enumerate() {
        if !word.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let mut figure = trim(word);
        if let Some(next) = words.get(i + 1).map(|w| trim(w))
            && next.len() == 3
            && next.chars().all(|c| c.is_ascii_uppercase())
        {
            figure = format!("{figure} {next}");
        }
        found.push(figure);
        if found.len() == 3 {
            break;
        }
    }
    found
}

/// The deterministic answer to `prompt`, cut to `max_tokens`; says whether it was cut.
pub fn answer(prompt: &str, max_tokens: u32) -> (String, bool) {
    let figures = figures(prompt);
    let outlook = ["below target", "on track", "ahead of target"][(unit(&[prompt, "outlook"]) * 3.0) as usize % 3];
    let advice = [
        "shift budget towards the best-performing campaigns",
        "refresh the creatives with the lowest click-through rate",
        "keep budgets steady and review again next week",
    ][(unit(&[prompt, "advice"]) * 3.0) as usize % 3];
    let text = match figures.as_slice() {
        [] => {
            format!("Summary: no figures were provided, so performance cannot be judged yet. Recommendation: {advice}.")
        }
        [one] => format!("Summary: the key figure is {one}; performance looks {outlook}. Recommendation: {advice}."),
        [init @ .., last] => {
            format!(
                "Summary: key figures are {} and {last}; performance looks {outlook}. Recommendation: {advice}.",
                init.join(", ")
            )
        }
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let fit = ((max_tokens as usize) * 3 / 4).max(1);
    if estimate_tokens(&text) <= max_tokens { (text, false) } else { (words[..fit.min(words.len())].join(" "), true) }
}

/// Whether an Anthropic model takes sampling parameters: Claude Opus 4.7/4.8 and every
/// 5th-generation model (and Fable, Mythos) answer them with a 400.
fn anthropic_takes_sampling(model: &str) -> bool {
    let parts: Vec<&str> = model.split('-').collect();
    let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
    match (parts.get(1).copied(), number(2), number(3)) {
        (Some("fable" | "mythos"), ..) => false,
        (Some("opus"), Some(4), Some(minor)) if (7..100).contains(&minor) => false,
        (Some("opus" | "sonnet" | "haiku"), Some(major), _) => major < 5,
        _ => true,
    }
}

/// Whether an OpenAI model takes a temperature other than 1: not the o-series nor GPT-5 and later.
fn openai_takes_sampling(model: &str) -> bool {
    let o_series = model.starts_with('o') && model[1..].starts_with(|c: char| c.is_ascii_digit());
    let major = model.strip_prefix("gpt-").and_then(|r| r.split(['.', '-']).next()?.parse::<u32>().ok());
    !(o_series || major.is_some_and(|m| m >= 5))
}

/// The first day of next month (UTC), when spend limits lift.
fn next_month() -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let (year, month) = if today.month() == 12 { (today.year() + 1, 1) } else { (today.year(), today.month() + 1) };
    chrono::NaiveDate::from_ymd_opt(year, month, 1).map(|d| d.to_string()).unwrap_or_default()
}

fn required_u32(body: &Value, field: &str) -> Option<u32> {
    body.get(field).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok())
}

async fn messages(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if header("x-api-key").is_none() {
        return anthropic_error(StatusCode::UNAUTHORIZED, "authentication_error", "x-api-key header is required");
    }
    if header("anthropic-version").is_none() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", "Request body is not valid JSON");
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", "model: Field required");
    };
    let Some(max_tokens) = required_u32(&body, "max_tokens").filter(|m| *m > 0) else {
        return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", "max_tokens: Field required");
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: at least one message is required",
        );
    };
    let prompt = messages.iter().map(|m| content_text(&m["content"])).collect::<Vec<_>>().join("\n");
    let system = body.get("system").map(content_text).unwrap_or_default();
    // platform.claude.com/docs/en/models/sonnet-5-5/migration-guide: sampling parameters are a 400.
    let sampling = ["temperature", "top_p", "top_k"].into_iter().find(|p| body.get(*p).is_some_and(|v| !v.is_null()));
    if let Some(param) = sampling.filter(|_| !anthropic_takes_sampling(model)) {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("`{param}` is deprecated for this model."),
        );
    }
    let (mut text, cut) = answer(&prompt, max_tokens);
    let mut stop = if cut { "max_tokens" } else { "end_turn" };
    let mut stop_details = Value::Null;
    match state.scenario_for(&format!("{system}\n{prompt}")) {
        Some(Scenario::Overloaded) => return fault(),
        Some(Scenario::SpendLimit) => {
            let message = format!(
                "You have reached your specified API usage limits. You will regain access on {} at 00:00 UTC.",
                next_month()
            );
            return anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
        }
        Some(Scenario::SpendCap) => {
            let message = format!(
                "You have reached your API usage limits: your organization has crossed its monthly API usage threshold, set based on your organization's API tier. You will regain access on {} at 00:00 UTC.",
                next_month()
            );
            let mut body = anthropic_error_body("rate_limit_error", &message);
            body["error"]["details"] = json!({"error_code": "enforced_spend_limit_reached"});
            // No retry-after: waiting does not help until the month turns.
            return (StatusCode::TOO_MANY_REQUESTS, [("request-id", new_id("req_"))], Json(body)).into_response();
        }
        Some(Scenario::CreditBalance | Scenario::InsufficientQuota) => {
            return anthropic_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            );
        }
        // The example of platform.claude.com's "Handle streaming refusals".
        Some(Scenario::Refusal) => {
            (text, stop) = (String::new(), "refusal");
            stop_details = json!({"type": "refusal", "category": "cyber",
                                  "explanation": "This request was declined because it could enable cyber harm."});
        }
        Some(Scenario::PauseTurn) => (text, stop) = (String::new(), "pause_turn"),
        Some(Scenario::ContextWindow) => {
            text = text.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
            stop = "model_context_window_exceeded";
        }
        None => {}
    }
    if !text.is_empty() {
        state.completions.fetch_add(1, Ordering::Relaxed);
    }
    let mut content = vec![];
    if !anthropic_takes_sampling(model) {
        // Adaptive thinking is on by default for these models; its text is omitted by default.
        content.push(json!({"type": "thinking", "thinking": "", "signature": new_id("sig_")}));
    }
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    let reset = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = json!({
        "id": new_id("msg_01"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": estimate_tokens(&system) + estimate_tokens(&prompt) + 8,
                  "output_tokens": estimate_tokens(&text).min(max_tokens),
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    });
    if !stop_details.is_null() {
        out["stop_details"] = stop_details;
    }
    let headers = [
        ("request-id", new_id("req_")),
        ("anthropic-ratelimit-requests-limit", "4000".to_string()),
        ("anthropic-ratelimit-requests-remaining", "3999".to_string()),
        ("anthropic-ratelimit-requests-reset", reset),
    ];
    (headers, Json(out)).into_response()
}

async fn chat_completions(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth.strip_prefix("Bearer ").is_none_or(|k| k.trim().is_empty()) {
        let message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
        return openai_error(StatusCode::UNAUTHORIZED, message, "invalid_request_error", None, None);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
            None,
        );
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
            None,
        );
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'messages'.",
            "invalid_request_error",
            Some("messages"),
            Some("missing_required_parameter"),
        );
    };
    let max_tokens =
        required_u32(&body, "max_completion_tokens").or_else(|| required_u32(&body, "max_tokens")).unwrap_or(4096);
    let prompt = messages
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| content_text(&m["content"]))
        .collect::<Vec<_>>()
        .join("\n");
    let all = messages.iter().map(|m| content_text(&m["content"])).collect::<Vec<_>>().join("\n");
    // Reasoning models take only the default temperature (1).
    if let Some(t) =
        body.get("temperature").and_then(Value::as_f64).filter(|t| *t != 1.0 && !openai_takes_sampling(model))
    {
        let message = format!(
            "Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."
        );
        return openai_error(
            StatusCode::BAD_REQUEST,
            &message,
            "invalid_request_error",
            Some("temperature"),
            Some("unsupported_value"),
        );
    }
    let (text, cut) = answer(&prompt, max_tokens.max(1));
    let (mut content, mut refusal) = (json!(text), Value::Null);
    match state.scenario_for(&all) {
        Some(Scenario::Overloaded) => {
            let message = "The engine is currently overloaded, please try again later.";
            return openai_error(StatusCode::SERVICE_UNAVAILABLE, message, "server_error", None, None);
        }
        Some(Scenario::SpendLimit | Scenario::SpendCap | Scenario::CreditBalance | Scenario::InsufficientQuota) => {
            let message = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.";
            return openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                message,
                "insufficient_quota",
                None,
                Some("insufficient_quota"),
            );
        }
        Some(Scenario::ContextWindow) => {
            let message = format!(
                "This model's maximum context length is 1047576 tokens. However, your messages resulted in {} tokens. Please reduce the length of the messages.",
                1_047_577 + estimate_tokens(&all)
            );
            return openai_error(
                StatusCode::BAD_REQUEST,
                &message,
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
            );
        }
        Some(Scenario::Refusal) => {
            (content, refusal) = (Value::Null, json!("I'm sorry, I cannot assist with that request."))
        }
        Some(Scenario::PauseTurn) | None => {}
    }
    if refusal.is_null() {
        state.completions.fetch_add(1, Ordering::Relaxed);
    }
    let (input, output) = (estimate_tokens(&all) + 7 * messages.len() as u32, estimate_tokens(&text).min(max_tokens));
    let out = json!({
        "id": new_id("chatcmpl-"), "object": "chat.completion", "created": chrono::Utc::now().timestamp(), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                     "logprobs": null, "finish_reason": if cut { "length" } else { "stop" }}],
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default",
    });
    let headers = [
        ("x-request-id", new_id("req_")),
        ("x-ratelimit-limit-requests", "500".to_string()),
        ("x-ratelimit-remaining-requests", "499".to_string()),
        ("x-ratelimit-reset-requests", "120ms".to_string()),
    ];
    (headers, Json(out)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mention_the_first_figures_and_are_deterministic() {
        let prompt = "Meta spend 1234.56 USD, ROAS 3.4; Google spend 980.10 USD, 41 conversions.";
        let (text, cut) = answer(prompt, 1024);
        assert!(!cut);
        assert!(text.contains("1234.56 USD, 3.4 and 980.10 USD"), "{text}");
        assert!(!text.contains("41"), "only the first three figures: {text}");
        assert_eq!(answer(prompt, 1024).0, text);
        assert!(answer("No numbers here.", 1024).0.contains("no figures"));
    }

    #[test]
    fn answers_respect_max_tokens() {
        let (text, cut) = answer("Spend 10 USD", 6);
        assert!(cut);
        assert!(estimate_tokens(&text) <= 6, "{text}");
    }

    #[test]
    fn token_estimate_is_about_four_per_three_words() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("one two three"), 4);
    }

    #[test]
    fn scenarios_come_from_the_prompt_or_the_config_and_count_down() {
        let state = State::default();
        assert_eq!(state.scenario_for("spend 10 USD [sim:refusal]"), Some(Scenario::Refusal));
        assert_eq!(state.scenario_for("spend 10 USD"), None);
        state.set_scenario(Some(Scenario::Overloaded), Some(2));
        assert_eq!(state.scenario_for("a"), Some(Scenario::Overloaded));
        assert_eq!(state.scenario_for("[sim:pause_turn]"), Some(Scenario::PauseTurn), "a marker wins, uncounted");
        assert_eq!(state.scenario_for("b"), Some(Scenario::Overloaded));
        assert_eq!(state.scenario_for("c"), None);
        state.set_scenario(Some(Scenario::SpendLimit), None);
        assert_eq!(
            (state.scenario_for("d"), state.scenario_for("e")),
            (Some(Scenario::SpendLimit), Some(Scenario::SpendLimit))
        );
        state.set_scenario(None, None);
        assert_eq!(state.scenario_for("f"), None);
    }

    #[test]
    fn sampling_parameters_by_model() {
        assert!(anthropic_takes_sampling("claude-sonnet-4-6") && anthropic_takes_sampling("claude-haiku-4-5-20251001"));
        assert!(!anthropic_takes_sampling("claude-sonnet-5-5") && !anthropic_takes_sampling("claude-opus-4-7"));
        assert!(
            openai_takes_sampling("gpt-4.1-mini")
                && !openai_takes_sampling("gpt-6-luna")
                && !openai_takes_sampling("o3")
        );
        assert_eq!(next_month().len(), 10);
    }
}
