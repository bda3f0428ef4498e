//! Simulated LLM providers: Anthropic Messages at `/anthropic/v1/messages` and
//! OpenAI Chat Completions at `/openai/v1/chat/completions`, with their auth
//! checks, error bodies and usage. The answer is a short deterministic summary
//! built from the prompt (the first figures it mentions), so reports built in
//! the sandbox are reproducible; token counts are estimated from word counts.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
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
use serde_json::{Value, json};

use super::{Vendor, new_id, unit};

#[derive(Default)]
pub struct State {
    completions: AtomicU64,
}

impl State {
    pub fn created(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([("completions".to_string(), self.completions.load(Ordering::Relaxed))])
    }

    pub fn reset(&self) {
        self.completions.store(0, Ordering::Relaxed);
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
    /// OpenAI's `error.code` when it has one, else the error `type` (Anthropic, OpenAI).
    fn error_code(&self, body: &Value) -> Option<String> {
        let error = &body["error"];
        error["code"].as_str().or_else(|| error["type"].as_str()).map(String::from)
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
    let (text, cut) = answer(&prompt, max_tokens);
    state.completions.fetch_add(1, Ordering::Relaxed);
    let reset = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let out = json!({
        "id": new_id("msg_01"), "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": if cut { "max_tokens" } else { "end_turn" }, "stop_sequence": null,
        "usage": {"input_tokens": estimate_tokens(&system) + estimate_tokens(&prompt) + 8,
                  "output_tokens": estimate_tokens(&text).min(max_tokens),
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    });
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
    let (text, cut) = answer(&prompt, max_tokens.max(1));
    state.completions.fetch_add(1, Ordering::Relaxed);
    let (input, output) = (estimate_tokens(&all) + 7 * messages.len() as u32, estimate_tokens(&text).min(max_tokens));
    let out = json!({
        "id": new_id("chatcmpl-"), "object": "chat.completion", "created": chrono::Utc::now().timestamp(), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null, "annotations": []},
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
}
