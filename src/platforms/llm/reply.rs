//! What a 200 means: the answer's text, or the reason there is none.
//!
//! A 200 is not always an answer. Anthropic's `stop_reason` (anthropics/anthropic-sdk-python
//! `types/stop_reason.py`: `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`,
//! `pause_turn`, `refusal`, `model_context_window_exceeded`) and OpenAI's `message.refusal`
//! and `finish_reason` say what happened, and each is handled on purpose:
//!
//! - a refusal (Anthropic `refusal` with `stop_details.explanation`, platform.claude.com/docs/
//!   test-and-evaluate/strengthen-guardrails/handle-streaming-refusals; OpenAI `message.refusal`
//!   with `content: null`, or `finish_reason: "content_filter"`) is a `Rejected` error carrying
//!   the vendor's reason, never an empty "successful" answer;
//! - `pause_turn` (a server-tool turn the caller must send back to continue) cannot happen
//!   without server tools, which this connector never sends: an `Invalid` error saying so;
//! - `max_tokens`/`length` and `model_context_window_exceeded` keep the partial text and mark
//!   it truncated ([`super::Completion::truncated`]), but a budget spent before any text
//!   (thinking and reasoning tokens count against it) is an error naming the budget;
//! - no text at all, whatever the reason, is an error.

use serde::Deserialize;

use super::{Completion, INFO, Provider, Usage};
use crate::platforms::error::{ErrorKind, PlatformError};

#[derive(Deserialize)]
pub(super) struct AnthropicReply {
    content: Vec<AnthropicBlock>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_details: Option<StopDetails>,
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
struct AnthropicBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// `{"type": "refusal", "category": "cyber", "explanation": "…"}`.
#[derive(Deserialize)]
struct StopDetails {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    explanation: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

#[derive(Deserialize)]
pub(super) struct OpenAiReply {
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

fn refused(reason: &str) -> PlatformError {
    PlatformError::new(INFO.key, ErrorKind::Rejected, format!("the model refused: {reason}"))
        .status(200)
        .code("refusal")
}

/// A reply without usable text: an error named after the stop reason.
fn no_text(stop: &str, max_tokens: u32) -> PlatformError {
    let message = match stop {
        "max_tokens" | "length" => format!(
            "the answer budget ({max_tokens} tokens, thinking/reasoning included) ran out before any text; raise LLM_MAX_TOKENS or the request's max_tokens"
        ),
        "" => "the model answered no text".to_string(),
        other => format!("the model answered no text (stop reason {other})"),
    };
    let e = PlatformError::new(INFO.key, ErrorKind::Invalid, message).status(200);
    if stop.is_empty() { e } else { e.code(stop) }
}

impl AnthropicReply {
    pub(super) fn into_completion(self, default_model: &str, max_tokens: u32) -> Result<Completion, PlatformError> {
        let stop = self.stop_reason.unwrap_or_default();
        match stop.as_str() {
            "refusal" => {
                let details = self.stop_details.as_ref();
                let reason = details
                    .and_then(|d| d.explanation.clone().or_else(|| d.category.clone().map(|c| format!("category {c}"))))
                    .unwrap_or_else(|| "no reason given".into());
                return Err(refused(&reason));
            }
            "pause_turn" => {
                return Err(PlatformError::new(
                    INFO.key,
                    ErrorKind::Invalid,
                    "the model paused its turn (pause_turn), which only server tools cause; this connector sends none and does not continue paused turns",
                )
                .status(200)
                .code("pause_turn"));
            }
            _ => {}
        }
        let text: String = self.content.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref()).collect();
        if text.trim().is_empty() {
            return Err(no_text(&stop, max_tokens));
        }
        Ok(Completion {
            text,
            provider: Provider::Anthropic,
            model: self.model.unwrap_or_else(|| default_model.to_string()),
            stop_reason: stop,
            usage: Usage { input_tokens: self.usage.input_tokens, output_tokens: self.usage.output_tokens },
        })
    }
}

impl OpenAiReply {
    pub(super) fn into_completion(self, default_model: &str, max_tokens: u32) -> Result<Completion, PlatformError> {
        let choice = self
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| PlatformError::malformed(INFO.key, "no choices in the answer"))?;
        let stop = choice.finish_reason.unwrap_or_default();
        if let Some(refusal) = choice.message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(refused(&refusal));
        }
        if stop == "content_filter" {
            return Err(refused("the provider's content filter stopped the answer (finish_reason content_filter)")
                .code("content_filter"));
        }
        let text = choice.message.content.unwrap_or_default();
        if text.trim().is_empty() {
            return Err(no_text(&stop, max_tokens));
        }
        let usage = self.usage.map(|u| Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens });
        Ok(Completion {
            text,
            provider: Provider::OpenAi,
            model: self.model.unwrap_or_else(|| default_model.to_string()),
            stop_reason: stop,
            usage: usage.unwrap_or_default(),
        })
    }
}

/// Whether `model` takes sampling parameters (`temperature`). Anthropic: Claude Opus 4.7 and
/// later, and every 5th-generation model, answer 400 "`temperature` is deprecated for this
/// model" (platform.claude.com/docs/en/models/sonnet-5-5/migration-guide: "sampling
/// parameters … return a 400 error"); Haiku 4.5 and Sonnet 4.6 still take it. OpenAI's
/// reasoning models (o-series, GPT-5 and later) accept only the default.
pub fn takes_temperature(provider: Provider, model: &str) -> bool {
    match provider {
        Provider::Anthropic => {
            let parts: Vec<&str> = model.split('-').collect();
            let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
            match (parts.get(1).copied(), number(2), number(3)) {
                (Some("fable" | "mythos"), ..) => false,
                (Some("opus"), Some(4), Some(minor)) if (7..100).contains(&minor) => false,
                (Some("opus" | "sonnet" | "haiku"), Some(major), _) => major < 5,
                _ => true,
            }
        }
        Provider::OpenAi => {
            let reasoning_o = model.len() >= 2
                && model.starts_with('o')
                && model[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
            let gpt_major = model.strip_prefix("gpt-").and_then(|r| r.split(['.', '-']).next()?.parse::<u32>().ok());
            !(reasoning_o || gpt_major.is_some_and(|m| m >= 5))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anthropic(body: &str) -> Result<Completion, PlatformError> {
        serde_json::from_str::<AnthropicReply>(body).unwrap().into_completion("claude-sonnet-5-5", 1024)
    }

    fn openai(body: &str) -> Result<Completion, PlatformError> {
        serde_json::from_str::<OpenAiReply>(body).unwrap().into_completion("gpt-6-luna", 1024)
    }

    #[test]
    fn anthropic_stop_reasons() {
        // The refusal example of platform.claude.com's "Handle streaming refusals".
        let refusal = r#"{"role":"assistant","content":[{"type":"text","text":"Hello.."}],"stop_reason":"refusal",
            "stop_details":{"type":"refusal","category":"cyber","explanation":"This request was declined because it could enable cyber harm."},
            "usage":{"input_tokens":10,"output_tokens":2}}"#;
        let e = anthropic(refusal).unwrap_err();
        assert_eq!((e.kind, e.code.as_deref()), (ErrorKind::Rejected, Some("refusal")));
        assert!(e.message.contains("declined because it could enable cyber harm"), "{}", e.message);
        let paused = r#"{"content":[],"stop_reason":"pause_turn","usage":{}}"#;
        assert_eq!(anthropic(paused).unwrap_err().code.as_deref(), Some("pause_turn"));
        let full = r#"{"content":[{"type":"thinking","thinking":"","signature":"x"},{"type":"text","text":"Part"}],"stop_reason":"model_context_window_exceeded","usage":{"input_tokens":5,"output_tokens":1}}"#;
        let done = anthropic(full).unwrap();
        assert!(done.truncated() && done.text == "Part", "{done:?}");
        let spent =
            r#"{"content":[{"type":"thinking","thinking":"","signature":"x"}],"stop_reason":"max_tokens","usage":{}}"#;
        let e = anthropic(spent).unwrap_err();
        assert!(e.code.as_deref() == Some("max_tokens") && e.message.contains("1024"), "{e:?}");
    }

    #[test]
    fn openai_refusals_and_filters() {
        let refusal = r#"{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I cannot assist with that request."},"finish_reason":"stop"}]}"#;
        let e = openai(refusal).unwrap_err();
        assert!(e.kind == ErrorKind::Rejected && e.message.contains("cannot assist"), "{e:?}");
        let filtered =
            r#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"content_filter"}]}"#;
        assert_eq!(openai(filtered).unwrap_err().code.as_deref(), Some("content_filter"));
        let reasoning = r#"{"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":1024}}"#;
        assert_eq!(openai(reasoning).unwrap_err().code.as_deref(), Some("length"));
    }

    #[test]
    fn which_models_take_a_temperature() {
        for model in ["claude-sonnet-4-6", "claude-haiku-4-5-20251001", "claude-opus-4-6", "claude-3-7-sonnet-20250219"]
        {
            assert!(takes_temperature(Provider::Anthropic, model), "{model}");
        }
        for model in [
            "claude-sonnet-5-5",
            "claude-sonnet-5",
            "claude-opus-4-7",
            "claude-opus-4-8",
            "claude-haiku-5-5",
            "claude-fable-5-1",
        ] {
            assert!(!takes_temperature(Provider::Anthropic, model), "{model}");
        }
        for model in ["gpt-4.1-mini", "gpt-4o", "gpt-4.1-mini-2025-04-14"] {
            assert!(takes_temperature(Provider::OpenAi, model), "{model}");
        }
        for model in ["gpt-6-luna", "gpt-5-mini", "gpt-5.6-sol", "o3", "o4-mini"] {
            assert!(!takes_temperature(Provider::OpenAi, model), "{model}");
        }
    }
}
