//! LLM connector (Anthropic Messages, OpenAI Chat Completions) against wiremock and the simulator.
//! There is no pagination in these APIs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::{
    platforms::{
        ErrorKind,
        http::HttpSettings,
        llm::{self, CompletionRequest, Llm, Provider, Settings},
    },
    sim::{self, Behaviour},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, header, method, path},
};

const ANTHROPIC_KEY: &str = "sk-ant-test-key-123";
const OPENAI_KEY: &str = "sk-openai-test-key-456";

fn fast() -> HttpSettings {
    HttpSettings {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..HttpSettings::new(1000.0, 100)
    }
}

fn anthropic(server: &MockServer) -> Llm {
    let settings = Settings {
        anthropic_api_key: Some(ANTHROPIC_KEY.into()),
        anthropic_base_url: server.uri(),
        ..Settings::default()
    };
    Llm::with_http(&settings, fast())
}

fn openai(server: &MockServer) -> Llm {
    let settings = Settings {
        provider: Provider::OpenAi,
        openai_api_key: Some(OPENAI_KEY.into()),
        openai_base_url: server.uri(),
        ..Settings::default()
    };
    Llm::with_http(&settings, fast())
}

fn request() -> CompletionRequest {
    CompletionRequest {
        system: Some("You are a marketing analyst. Write a concise weekly performance summary.".into()),
        prompt: "Meta spend 1234.56 USD, ROAS 3.4; Google spend 980.10 USD, 41 conversions.".into(),
        max_tokens: None,
        temperature: Some(0.3),
    }
}

fn message_reply() -> Value {
    json!({"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
           "content": [{"type": "text", "text": "This week, Meta delivered "}, {"type": "text", "text": "a 3.4 ROAS."}],
           "stop_reason": "end_turn", "stop_sequence": null,
           "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
}

fn anthropic_error(status: u16, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"type": "error", "error": {"type": kind, "message": format!("{kind} happened")}, "request_id": "req_1"}),
    )
}

#[tokio::test]
async fn platform_llm_anthropic_completion() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", ANTHROPIC_KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(json!({
            "model": "claude-sonnet-5-5", "max_tokens": 4096,
            "system": "You are a marketing analyst. Write a concise weekly performance summary.",
            "messages": [{"role": "user", "content": "Meta spend 1234.56 USD, ROAS 3.4; Google spend 980.10 USD, 41 conversions."}],
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_reply()))
        .expect(1)
        .mount(&server)
        .await;
    let done = anthropic(&server).complete(&request()).await.unwrap();
    assert_eq!(done.text, "This week, Meta delivered a 3.4 ROAS.");
    assert_eq!(
        (done.provider, done.model.as_str(), done.stop_reason.as_str()),
        (Provider::Anthropic, "claude-sonnet-5-5", "end_turn")
    );
    assert_eq!((done.usage.input_tokens, done.usage.output_tokens), (2095, 503));
    assert!(!done.truncated());
}

#[tokio::test]
async fn platform_llm_openai_completion() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {OPENAI_KEY}").as_str()))
        .and(body_partial_json(json!({"model": "gpt-6-luna", "max_completion_tokens": 200,
            "messages": [{"role": "system", "content": "You are a marketing analyst. Write a concise weekly performance summary."},
                         {"role": "user", "content": "Meta spend 1234.56 USD, ROAS 3.4; Google spend 980.10 USD, 41 conversions."}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
            "model": "gpt-6-luna",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "This week…", "refusal": null, "annotations": []},
                         "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}})))
        .expect(1)
        .mount(&server)
        .await;
    let done = openai(&server).complete(&CompletionRequest { max_tokens: Some(200), ..request() }).await.unwrap();
    assert_eq!(
        (done.text.as_str(), done.provider, done.model.as_str()),
        ("This week…", Provider::OpenAi, "gpt-6-luna")
    );
    assert_eq!((done.usage.input_tokens, done.usage.output_tokens), (19, 10));
    assert!(done.truncated());
}

#[tokio::test]
async fn platform_llm_anthropic_429_honours_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(429, "rate_limit_error").insert_header("retry-after", "0.3"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_reply()))
        .mount(&server)
        .await;
    let started = Instant::now();
    anthropic(&server).complete(&request()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "retry-after ignored: {:?}", started.elapsed());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn platform_llm_429_without_retry_after_backs_off_and_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}})),
        )
        .mount(&server)
        .await;
    let done = openai(&server).complete(&request()).await.unwrap();
    assert_eq!((done.text.as_str(), done.model.as_str()), ("ok", "gpt-6-luna"));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn platform_llm_overloaded_and_api_errors_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(529, "overloaded_error"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(anthropic_error(500, "api_error")).up_to_n_times(1).mount(&server).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_reply()))
        .mount(&server)
        .await;
    anthropic(&server).complete(&request()).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

/// platform.claude.com/docs/api/rate-limits: the usage tier's monthly cap answers 429 with
/// `details.error_code: enforced_spend_limit_reached` and no `retry-after` (their example body).
#[tokio::test]
async fn platform_llm_spend_limit_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"type": "error",
            "error": {"type": "rate_limit_error", "message": "You have reached your API usage limits: your organization has crossed its monthly API usage threshold, set based on your organization's API tier. You will regain access on 2026-09-01 at 00:00 UTC.",
                      "details": {"error_code": "enforced_spend_limit_reached"}}, "request_id": "req_018EeWyXxfu5pfWkrYcMdjWG"})))
        .mount(&server)
        .await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.retryable),
        (ErrorKind::Rejected, Some("enforced_spend_limit_reached"), false)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn platform_llm_invalid_request_fails_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(anthropic_error(400, "invalid_request_error")).mount(&server).await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Invalid, Some("invalid_request_error")));
    assert!(err.message.contains("invalid_request_error happened"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn platform_llm_openai_insufficient_quota_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
        ))
        .mount(&server)
        .await;
    let err = openai(&server).complete(&request()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.retryable),
        (ErrorKind::Rejected, Some("insufficient_quota"), false)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn platform_llm_bad_keys_are_auth_errors_and_masked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"type": "error",
            "error": {"type": "authentication_error", "message": format!("invalid x-api-key {ANTHROPIC_KEY}")}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Incorrect API key provided: sk-opena***-456.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
        )
        .mount(&server)
        .await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("authentication_error")));
    assert!(!err.message.contains(ANTHROPIC_KEY), "key leaked: {}", err.message);
    let err = openai(&server).complete(&request()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Auth, Some("invalid_api_key")));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn platform_llm_malformed_answers_are_clear_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"content": 5})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": []})))
        .mount(&server)
        .await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert!(err.message.contains("unexpected response"), "{}", err.message);
    let err = openai(&server).complete(&request()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MalformedResponse);
    assert!(err.message.contains("no choices"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn platform_llm_without_key_is_not_configured() {
    let err = Llm::new(&Settings::default()).complete(&request()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotConfigured);
    assert!(err.message.contains("LLM_ANTHROPIC_API_KEY"), "{}", err.message);
}

async fn sandbox(provider: Provider) -> (sim::Running, Llm) {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let settings = Settings { provider, ..Settings::default() }.sandboxed(&format!(
        "{}{}",
        running.base_url,
        llm::INFO.sim_prefix
    ));
    let llm = Llm::with_http(&settings, fast());
    (running, llm)
}

#[tokio::test]
async fn platform_llm_sim_serves_both_providers() {
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let (running, llm) = sandbox(provider).await;
        let first = llm.complete(&request()).await.unwrap();
        assert_eq!(first.provider, provider);
        assert_eq!(first.model, llm.settings().model());
        assert!(first.text.contains("1234.56 USD"), "{provider:?}: {}", first.text);
        assert!(first.usage.input_tokens >= 20 && first.usage.output_tokens >= 10, "{:?}", first.usage);
        assert!(!first.truncated());
        let again = llm.complete(&request()).await.unwrap();
        assert_eq!(again.text, first.text, "the sandbox answers deterministically");
        let short = llm.complete(&CompletionRequest { max_tokens: Some(5), ..request() }).await.unwrap();
        assert!(short.truncated() && short.usage.output_tokens <= 5, "{short:?}");
        assert_eq!(running.state.stats().platforms["llm"].created["completions"], 3);
    }
}

#[tokio::test]
async fn platform_llm_sim_checks_credentials_and_version() {
    let running = sim::spawn("127.0.0.1:0".parse().unwrap(), switchboard::platforms::simulator(Behaviour::default()))
        .await
        .unwrap();
    let http = crate::support::http_client();
    let body = json!({"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/llm/anthropic/v1/messages", running.base_url);
    let res = http.post(&url).header("anthropic-version", "2023-06-01").json(&body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["type"], "authentication_error");
    let res = http.post(&url).header("x-api-key", "k").json(&body).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let url = format!("{}/llm/openai/v1/chat/completions", running.base_url);
    let res = http
        .post(&url)
        .json(&json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["type"], "invalid_request_error");
    assert_eq!(running.state.stats().platforms["llm"].created["completions"], 0);
}

#[tokio::test]
async fn platform_llm_sim_throttling_and_overload_are_retried() {
    let (running, llm) = sandbox(Provider::Anthropic).await;
    running.state.configure("llm", Behaviour { rate_per_second: Some(1.0), ..Behaviour::default() });
    let started = Instant::now();
    llm.complete(&request()).await.unwrap();
    llm.complete(&request()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500), "retry-after: 1 not honoured: {:?}", started.elapsed());
    assert!(running.state.stats().platforms["llm"].throttled >= 1);

    running.state.configure("llm", Behaviour { fault_rate: 1.0, ..Behaviour::default() });
    let settings = llm.settings().clone();
    let err =
        Llm::with_http(&settings, HttpSettings { max_attempts: 2, ..fast() }).complete(&request()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.retryable),
        (ErrorKind::Unavailable, Some("overloaded_error"), true)
    );
    assert_eq!(running.state.stats().platforms["llm"].faults, 2);
}

// ---------------------------------------------------------------------------------------
// The vendors' rules (docs/PLATFORMS.md, "Vendor rules"): wiremock with the documented bodies.

/// platform.claude.com/docs/en/api/errors: "The API also returns a 400 when usage reaches an
/// organization or workspace spend limit you set"; the message says when access resumes.
#[tokio::test]
async fn platform_llm_anthropic_spend_limit_400_is_named_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).insert_header("x-should-retry", "false").set_body_json(json!({
            "type": "error", "error": {"type": "invalid_request_error",
            "message": "You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."},
            "request_id": "req_011CYwZjVSiJTexyaHTWcaqh"})))
        .mount(&server)
        .await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.retryable, err.status),
        (ErrorKind::Rejected, Some(llm::SPEND_LIMIT_REACHED), false, Some(400))
    );
    assert!(err.message.contains("regain access on 2026-12-01"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// The SDKs retry 409 `conflict_error` and obey `x-should-retry`.
#[tokio::test]
async fn platform_llm_anthropic_409_and_should_retry_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(409, "conflict_error").insert_header("retry-after-ms", "50"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(anthropic_error(529, "overloaded_error").insert_header("x-should-retry", "false"))
        .mount(&server)
        .await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!((err.code.as_deref(), err.retryable), (Some("overloaded_error"), false));
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "409 retried once, the 529 said not to retry");
}

/// platform.claude.com "Handle streaming refusals": `stop_reason: "refusal"` with `stop_details`
/// (their example body) is an error carrying the explanation, never an empty answer.
#[tokio::test]
async fn platform_llm_anthropic_refusal_is_an_error_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
            "content": [{"type": "text", "text": "Hello.."}], "stop_reason": "refusal",
            "stop_details": {"type": "refusal", "category": "cyber",
                             "explanation": "This request was declined because it could enable cyber harm."},
            "usage": {"input_tokens": 20, "output_tokens": 2}})))
        .mount(&server)
        .await;
    let err = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref(), err.retryable), (ErrorKind::Rejected, Some("refusal"), false));
    assert!(err.message.contains("could enable cyber harm"), "{}", err.message);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// OpenAI: a refusal comes as `message.refusal` with `content: null` (openai-python
/// `ChatCompletionMessage.refusal`).
#[tokio::test]
async fn platform_llm_openai_refusal_is_an_error_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1764547200, "model": "gpt-6-luna",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                         "refusal": "I'm sorry, I cannot assist with that request."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}})))
        .mount(&server)
        .await;
    let err = openai(&server).complete(&request()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Rejected, Some("refusal")));
    assert!(err.message.contains("cannot assist"), "{}", err.message);
}

/// anthropic-sdk-python `types/stop_reason.py`: `pause_turn` (not continued: no server tools
/// are sent) is an error; `model_context_window_exceeded` keeps the text, marked truncated.
#[tokio::test]
async fn platform_llm_anthropic_pause_turn_and_context_window() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
            "content": [], "stop_reason": "pause_turn", "usage": {"input_tokens": 20, "output_tokens": 0}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_03", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
            "content": [{"type": "thinking", "thinking": "", "signature": "sig"}, {"type": "text", "text": "This week, Meta"}],
            "stop_reason": "model_context_window_exceeded", "usage": {"input_tokens": 20, "output_tokens": 4}})))
        .mount(&server)
        .await;
    let llm = anthropic(&server);
    let err = llm.complete(&request()).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref(), err.retryable), (ErrorKind::Invalid, Some("pause_turn"), false));
    let done = llm.complete(&request()).await.unwrap();
    assert_eq!(done.text, "This week, Meta", "thinking blocks are skipped by type");
    assert!(done.truncated());
}

/// platform.claude.com/docs/en/models/sonnet-5-5/migration-guide: sampling parameters are a 400
/// on Claude 5 models; the connector leaves the temperature out for them, and keeps it for the
/// models that take one.
#[tokio::test]
async fn platform_llm_temperature_goes_only_to_models_that_take_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_reply()))
        .mount(&server)
        .await;
    anthropic(&server).complete(&request()).await.unwrap();
    let legacy = Settings {
        anthropic_api_key: Some(ANTHROPIC_KEY.into()),
        anthropic_base_url: server.uri(),
        anthropic_model: "claude-sonnet-4-6".into(),
        ..Settings::default()
    };
    Llm::with_http(&legacy, fast()).complete(&request()).await.unwrap();
    let sent: Vec<Value> =
        server.received_requests().await.unwrap().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    assert_eq!(sent[0]["model"], "claude-sonnet-5-5");
    assert!(sent[0].get("temperature").is_none(), "{}", sent[0]);
    assert_eq!(
        (sent[1]["model"].as_str(), sent[1]["temperature"].as_f64()),
        (Some("claude-sonnet-4-6"), Some(0.30000001192092896))
    );
}

// ---------------------------------------------------------------------------------------
// The same rules, enforced by the simulator (markers in the prompt, or /_sim/llm/config).

fn marked(marker: &str) -> CompletionRequest {
    CompletionRequest { prompt: format!("{} [sim:{marker}]", request().prompt), ..request() }
}

#[tokio::test]
async fn platform_llm_sim_billing_stops_are_named_and_not_retried() {
    let (running, llm) = sandbox(Provider::Anthropic).await;
    for (marker, code) in [
        ("spend_limit", llm::SPEND_LIMIT_REACHED),
        ("credit_balance", llm::CREDIT_BALANCE_TOO_LOW),
        ("spend_cap", "enforced_spend_limit_reached"),
    ] {
        let err = llm.complete(&marked(marker)).await.unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_deref(), err.retryable),
            (ErrorKind::Rejected, Some(code), false),
            "{marker}"
        );
    }
    let stats = running.state.stats().platforms["llm"].clone();
    assert_eq!(stats.calls, 3, "no retries: {stats:?}");
    assert_eq!(stats.errors.get("enforced_spend_limit_reached"), Some(&1));
    assert_eq!(stats.created["completions"], 0);

    let (running, llm) = sandbox(Provider::OpenAi).await;
    let err = llm.complete(&marked("insufficient_quota")).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.status),
        (ErrorKind::Rejected, Some("insufficient_quota"), Some(429))
    );
    assert_eq!(running.state.stats().platforms["llm"].calls, 1);
}

#[tokio::test]
async fn platform_llm_sim_overloaded_is_retried() {
    let (running, llm) = sandbox(Provider::Anthropic).await;
    let http = crate::support::http_client();
    let config = format!("{}/_sim/llm/config", running.base_url);
    let res = http.post(&config).json(&json!({"scenario": "overloaded", "times": 2})).send().await.unwrap();
    assert!(res.status().is_success());
    let done = llm.complete(&request()).await.unwrap();
    assert!(done.text.contains("1234.56 USD"), "{}", done.text);
    let stats = running.state.stats().platforms["llm"].clone();
    assert_eq!((stats.calls, stats.errors.get("overloaded_error")), (3, Some(&2)), "{stats:?}");
    let bad = http.post(&config).json(&json!({"scenario": "sunny"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn platform_llm_sim_refusals_are_errors_for_both_providers() {
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let (running, llm) = sandbox(provider).await;
        let err = llm.complete(&marked("refusal")).await.unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Rejected, Some("refusal")), "{provider:?}");
        assert!(err.message.len() > "llm: the model refused: ".len(), "{provider:?}: {}", err.message);
        assert_eq!(running.state.stats().platforms["llm"].created["completions"], 0);
    }
}

#[tokio::test]
async fn platform_llm_sim_stop_reasons_and_sampling() {
    let (running, llm) = sandbox(Provider::Anthropic).await;
    let err = llm.complete(&marked("pause_turn")).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("pause_turn"));
    let cut = llm.complete(&marked("context_window")).await.unwrap();
    assert!(cut.truncated() && !cut.text.is_empty(), "{cut:?}");
    // The default model takes no temperature: the connector leaves it out, a raw request gets the 400.
    assert!(llm.complete(&CompletionRequest { temperature: Some(0.2), ..request() }).await.is_ok());
    let http = crate::support::http_client();
    let res = http
        .post(format!("{}/llm/anthropic/v1/messages", running.base_url))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-5-5", "max_tokens": 10, "temperature": 0.2,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["message"], "`temperature` is deprecated for this model.");
    let (_, openai) = sandbox(Provider::OpenAi).await;
    assert!(openai.complete(&CompletionRequest { temperature: Some(0.2), ..request() }).await.is_ok());
}
