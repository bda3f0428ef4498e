//! Prompt templates (minijinja): the defaults seeded for the built-in workflows
//! (stored in `knowledge.prompt_templates`, editable with versions through
//! `/v1/prompt-templates`), and the renderer every caller shares.
//!
//! Rendering contract: every top-level variable a template names must be in the
//! context (a missing one is reported by name before anything renders; pass
//! `null` for "none"). Inside given values, optional fields may be tested
//! (`{% if client.targets.cpa %}`) but printing or looping over something
//! undefined is an error (minijinja's semi-strict undefined behaviour).
//!
//! Templates are written by API callers, so every render runs under limits
//! (docs/decisions/0013-template-and-cost-limits.md): minijinja fuel (steps),
//! a cap on each rendered part, a recursion limit, a source-size limit, and a
//! blocking thread with a timeout so no async worker is ever held by a template.

use std::{
    collections::BTreeSet,
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use minijinja::{Environment, ErrorKind, Template, UndefinedBehavior};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    domain::{client::Client, knowledge::KnowledgeKind},
    store,
};

pub use store::prompt_templates::DefaultTemplate;

/// Seeds the [`DEFAULTS`] whose keys have no version yet; returns the keys seeded.
pub async fn seed_defaults(pool: &sqlx::PgPool) -> Result<Vec<String>, sqlx::Error> {
    store::prompt_templates::seed_defaults(pool, &DEFAULTS).await
}

pub const WEEKLY_REPORT: &str = "weekly-report";

pub const DEFAULTS: [DefaultTemplate; 3] = [
    DefaultTemplate {
        key: WEEKLY_REPORT,
        description: "The weekly-report workflow's summary: last 7 days vs the 7 before per platform, in the client's brand voice \
                      (variables: client, knowledge, figures, period)",
        system: "You are a senior performance-marketing analyst at an agency. Write for the client's marketing manager in \
                 Markdown: concise, concrete, no jargon. Always state spend, conversions, CPA and ROAS changes.\
                 {% if knowledge.brand_voice %}\nWrite in the client's brand voice:\
                 {% for voice in knowledge.brand_voice %}\n- {{ voice }}{% endfor %}{% endif %}",
        body: "Client: {{ client.name }} ({{ client.industry or 'industry not set' }}), reporting currency {{ client.currency }}.\n\
               {% if client.targets.cpa %}Target CPA: {{ client.targets.cpa }}. {% endif %}\
               {% if client.targets.roas %}Target ROAS: {{ client.targets.roas }}.{% endif %}\n\
               Week {{ period.start }} to {{ period.end }}, compared with {{ period.previous_start }} to {{ period.previous_end }}.\n\
               {% for p in figures.platforms %}\
               - {{ p.platform }} ({{ p.currency }}):\
               {% for m in ['spend', 'conversions', 'cpa', 'roas'] %} {{ m }} \
               {{ p.this_week[m] if p.this_week[m] is not none else 'n/a' }} \
               (previous {{ p.previous_week[m] if p.previous_week[m] is not none else 'n/a' }}, \
               change {{ (p.change_pct[m] ~ '%') if p.change_pct[m] is not none else 'n/a' }})\
               {% if not loop.last %};{% endif %}{% endfor %}\n\
               {% else %}- No ad platform is linked or no delivery was recorded.\n{% endfor %}\
               {% if figures.sync_errors %}Note: some figures may be stale ({{ figures.sync_errors | join('; ') }}).\n{% endif %}\
               {% if knowledge.offer %}Current offers: {{ knowledge.offer | join('; ') }}\n{% endif %}\
               Write the weekly report: a one-line headline, then 3-5 bullet points on what changed and why it matters \
               (compare CPA and ROAS with the targets when set), then one recommendation.",
    },
    DefaultTemplate {
        key: "client-brief",
        description: "A one-paragraph brief of the client for a new team member (variables: client, focus — may be null)",
        system: "You are an account manager at a marketing agency.",
        body: "Write a one-paragraph brief about {{ client.name }} ({{ client.industry or 'industry not set' }}) \
               for a new team member{% if focus %}, focusing on {{ focus }}{% endif %}. \
               Notes: {{ client.notes or 'none' }}.",
    },
    DefaultTemplate {
        key: "alert-digest",
        description: "A WhatsApp-length digest of monitoring alerts (variables: client, alerts)",
        system: "You write short, friendly WhatsApp messages for an agency's clients. Max 600 characters.",
        body: "Summarise these alerts for {{ client.name }} in plain words, most important first: {{ alerts }}",
    },
];

/// Keys the built-in templates had before they were stored (still accepted by
/// `POST /v1/platforms/llm/completions`), and their stored key.
const LEGACY_KEYS: [(&str, &str); 3] =
    [("weekly_summary", WEEKLY_REPORT), ("client_brief", "client-brief"), ("alert_digest", "alert-digest")];

/// The stored key for `key`, translating a legacy built-in name.
pub fn canonical_key(key: &str) -> &str {
    LEGACY_KEYS.iter().find(|(old, _)| *old == key).map_or(key, |(_, new)| new)
}

/// Whether `key` is a valid template key (the table's CHECK): `[a-z0-9]` words joined by `-` or `_`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .split(['-', '_'])
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The source does not parse: which part (`system` or `body`) and minijinja's message.
    Syntax { part: &'static str, message: String },
    /// Top-level variables the template names that the context lacks, sorted.
    Missing(Vec<String>),
    /// Rendering failed on the given values (e.g. printing an undefined attribute).
    Render { part: &'static str, message: String },
    /// The part exceeded a render limit (steps, output size, time or source size).
    Limit { part: &'static str, message: String },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Syntax { part, message } => write!(f, "the template's {part} does not parse: {message}"),
            RenderError::Missing(names) => {
                write!(f, "the template uses variables that were not given: {}", names.join(", "))
            }
            RenderError::Render { part, message } => write!(f, "rendering the template's {part} failed: {message}"),
            RenderError::Limit { part, message } => write!(f, "the template's {part} exceeds a limit: {message}"),
        }
    }
}

/// Largest template source (system or body), in bytes.
pub const MAX_SOURCE_BYTES: usize = 100 * 1024;
/// minijinja steps (instructions) one part may execute: the default weekly report
/// with many platforms and knowledge entries needs a few thousand.
pub const FUEL: u64 = 250_000;
/// Largest rendered part (system or body), in bytes: above any model's context.
pub const MAX_OUTPUT_BYTES: usize = 512 * 1024;
/// Nesting depth of blocks and loops at render time.
pub const RECURSION_LIMIT: usize = 64;
/// How long a caller waits for a render (both parts) before giving up on it.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(2);
/// Renders running at once on blocking threads; more wait (within the timeout), so
/// abandoned slow renders cannot pile up on the blocking pool.
const MAX_CONCURRENT_RENDERS: usize = 8;

static RENDER_SLOTS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_RENDERS);

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env
}

/// Checks that a template source parses; `part` names it in the error.
pub fn check_syntax(part: &'static str, source: &str) -> Result<(), RenderError> {
    let env = environment();
    env.template_from_named_str(part, source)
        .map(drop)
        .map_err(|e| RenderError::Syntax { part, message: e.to_string() })
}

/// Renders a template's system and body with `context` (a JSON object), on a
/// blocking thread within [`RENDER_TIMEOUT`]: the one entry point every caller uses.
pub async fn render(system: &str, body: &str, context: Map<String, Value>) -> Result<(String, String), RenderError> {
    off_thread(system, body, move |system, body, body_started| render_blocking(&system, &body, &context, body_started))
        .await
}

/// Trial-renders a template about to be stored with every variable undefined
/// (lenient): only a limit it already exceeds without any input is an error.
pub async fn check_limits(system: &str, body: &str) -> Result<(), RenderError> {
    off_thread(system, body, |system, body, body_started| {
        let mut env = environment();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        for (part, source) in [("system", system.as_str()), ("body", body.as_str())] {
            body_started.store(part == "body", Ordering::Relaxed);
            check_source_size(part, source)?;
            let Ok(template) = env.template_from_named_str(part, source) else { continue };
            match render_part(&template, part, &Map::new()) {
                Err(e @ RenderError::Limit { .. }) => return Err(e),
                _ => continue,
            }
        }
        Ok(())
    })
    .await
}

/// Runs `work` on a blocking thread (one of [`MAX_CONCURRENT_RENDERS`]) and waits at
/// most [`RENDER_TIMEOUT`] for it; `work` marks when it moves on to the body so a
/// timeout names the part. An abandoned render keeps its slot until it ends (by its
/// fuel, for loops in the template; work inside one filter call is not counted).
async fn off_thread<T, F>(system: &str, body: &str, work: F) -> Result<T, RenderError>
where
    T: Send + 'static,
    F: FnOnce(String, String, &AtomicBool) -> Result<T, RenderError> + Send + 'static,
{
    let body_started = Arc::new(AtomicBool::new(false));
    let (system, body, started) = (system.to_string(), body.to_string(), body_started.clone());
    let run = async move {
        let slot = RENDER_SLOTS.acquire().await.expect("the render semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work(system, body, &started)
        })
        .await
    };
    let part = || if body_started.load(Ordering::Relaxed) { "body" } else { "system" };
    match tokio::time::timeout(RENDER_TIMEOUT, run).await {
        Ok(Ok(result)) => result,
        Ok(Err(_panicked)) => {
            Err(RenderError::Render { part: part(), message: "the renderer stopped unexpectedly".into() })
        }
        Err(_elapsed) => Err(RenderError::Limit {
            part: part(),
            message: format!("rendering takes longer than {} s", RENDER_TIMEOUT.as_secs()),
        }),
    }
}

fn check_source_size(part: &'static str, source: &str) -> Result<(), RenderError> {
    match source.len() > MAX_SOURCE_BYTES {
        true => Err(RenderError::Limit {
            part,
            message: format!("the source is larger than {} KB", MAX_SOURCE_BYTES / 1024),
        }),
        false => Ok(()),
    }
}

/// Renders one part into a capped buffer, telling limits apart from other failures.
fn render_part(
    template: &Template<'_, '_>,
    part: &'static str,
    context: &Map<String, Value>,
) -> Result<String, RenderError> {
    let mut out = CappedWriter { buf: Vec::new(), overflowed: false };
    match template.render_captured_to(context, &mut out) {
        Ok(_) => Ok(String::from_utf8(out.buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Err(_) if out.overflowed => Err(RenderError::Limit {
            part,
            message: format!("the output is larger than {} KB", MAX_OUTPUT_BYTES / 1024),
        }),
        Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(RenderError::Limit {
            part,
            message: format!("rendering takes more than {FUEL} steps (loops too long or nested too deep)"),
        }),
        Err(e) if is_size_refusal(&e) => {
            Err(RenderError::Limit { part, message: e.detail().unwrap_or("too large").to_string() })
        }
        Err(e) => Err(RenderError::Render { part, message: e.to_string() }),
    }
}

/// minijinja's own caps (a `range` over 100,000 items, a string repeated past 100 MB,
/// the recursion limit): the template's fault whatever the values, so a limit.
/// Matched on its messages; a unit test pins them.
fn is_size_refusal(e: &minijinja::Error) -> bool {
    const REFUSALS: [&str; 3] =
        ["range has too many elements", "repeated string is too large", "recursion limit exceeded"];
    e.kind() == ErrorKind::InvalidOperation && e.detail().is_some_and(|d| REFUSALS.iter().any(|r| d.contains(r)))
}

/// A buffer that refuses to grow past [`MAX_OUTPUT_BYTES`] (which stops the render).
struct CappedWriter {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buf.len() + bytes.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The synchronous render under limits; only [`render`] calls it (on a blocking thread).
fn render_blocking(
    system: &str,
    body: &str,
    context: &Map<String, Value>,
    body_started: &AtomicBool,
) -> Result<(String, String), RenderError> {
    let env = environment();
    let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_string()).collect();
    let parts = [("system", system), ("body", body)];
    let mut templates = Vec::with_capacity(2);
    let mut missing = BTreeSet::new();
    for (part, source) in parts {
        check_source_size(part, source)?;
        let template = env
            .template_from_named_str(part, source)
            .map_err(|e| RenderError::Syntax { part, message: e.to_string() })?;
        // Named but neither given nor a minijinja global (range, dict, ...).
        missing.extend(
            template
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !context.contains_key(v) && !globals.contains(v)),
        );
        templates.push((part, template));
    }
    if !missing.is_empty() {
        return Err(RenderError::Missing(missing.into_iter().collect()));
    }
    let mut out = templates.into_iter().map(|(part, t)| {
        body_started.store(part == "body", Ordering::Relaxed);
        render_part(&t, part, context)
    });
    let system = out.next().expect("system")?;
    let body = out.next().expect("body")?;
    Ok((system, body))
}

/// What a template sees of a client: `client` (its JSON) and `knowledge` (the
/// bodies of its knowledge entries by kind, every kind present, e.g.
/// `knowledge.brand_voice` is a list of strings).
pub async fn client_context(conn: &mut PgConnection, client: &Client) -> Result<Map<String, Value>, sqlx::Error> {
    let mut knowledge: Map<String, Value> = [
        KnowledgeKind::Note,
        KnowledgeKind::Fact,
        KnowledgeKind::BrandVoice,
        KnowledgeKind::Competitor,
        KnowledgeKind::Offer,
        KnowledgeKind::Faq,
    ]
    .iter()
    .map(|k| (k.as_str().to_string(), Value::Array(vec![])))
    .collect();
    let mut after: Option<Uuid> = None;
    loop {
        let page = store::knowledge::list(conn, client.id, None, None, after, 500).await?;
        for entry in &page {
            if let Some(Value::Array(bodies)) = knowledge.get_mut(entry.kind.as_str()) {
                bodies.push(Value::String(entry.body.clone()));
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id),
            _ => break,
        }
    }
    let mut context = Map::new();
    context.insert("client".into(), serde_json::to_value(client).unwrap_or_default());
    context.insert("knowledge".into(), Value::Object(knowledge));
    Ok(context)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The render core, synchronously (the async wrapper is tested below).
    fn render_now(system: &str, body: &str, context: &Map<String, Value>) -> Result<(String, String), RenderError> {
        render_blocking(system, body, context, &AtomicBool::new(false))
    }

    fn ctx(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn default(key: &str) -> &'static DefaultTemplate {
        DEFAULTS.iter().find(|t| t.key == key).unwrap()
    }

    fn figures() -> Value {
        json!({"platforms": [{"platform": "meta", "currency": "USD",
            "this_week": {"spend": 120.5, "conversions": 4.0, "cpa": 30.13, "roas": 2.1},
            "previous_week": {"spend": 100.0, "conversions": 0.0, "cpa": null, "roas": 1.5},
            "change_pct": {"spend": 20.5, "conversions": null, "cpa": null, "roas": 40.0}}], "sync_errors": []})
    }

    #[test]
    fn weekly_report_renders_figures_targets_and_brand_voice() {
        let t = default(WEEKLY_REPORT);
        let context = ctx(json!({
            "client": {"name": "Acme", "industry": null, "currency": "BRL", "targets": {"cpa": 25}},
            "knowledge": {"brand_voice": ["Warm and direct"], "offer": []},
            "figures": figures(),
            "period": {"start": "2026-06-01", "end": "2026-06-07", "previous_start": "2026-05-25", "previous_end": "2026-05-31"},
        }));
        let (system, body) = render_now(t.system, t.body, &context).unwrap();
        assert!(system.contains("- Warm and direct"), "{system}");
        assert!(
            body.contains("Acme (industry not set)")
                && body.contains("Target CPA: 25")
                && !body.contains("Target ROAS"),
            "{body}"
        );
        assert!(body.contains("spend 120.5 (previous 100.0, change 20.5%)"), "{body}");
        assert!(body.contains("cpa 30.13 (previous n/a, change n/a)"), "{body}");
        assert!(!body.contains("Current offers") && !body.contains("stale"), "{body}");
    }

    #[test]
    fn missing_variables_are_named_before_rendering() {
        let t = default(WEEKLY_REPORT);
        let err = render_now(t.system, t.body, &ctx(json!({"client": {"name": "A"}}))).unwrap_err();
        assert_eq!(err, RenderError::Missing(vec!["figures".into(), "knowledge".into(), "period".into()]));
        // Globals and template-local names are not variables.
        assert!(
            render_now("", "{% set x = 1 %}{% for i in range(2) %}{{ x }}{{ i }}{% endfor %}", &Map::new()).is_ok()
        );
    }

    #[test]
    fn undefined_attributes_may_be_tested_but_not_printed() {
        let c = ctx(json!({"client": {"targets": {}}}));
        assert_eq!(render_now("", "{% if client.targets.cpa %}x{% endif %}ok", &c).unwrap().1, "ok");
        assert!(matches!(
            render_now("", "{{ client.targets.cpa }}", &c),
            Err(RenderError::Render { part: "body", .. })
        ));
    }

    #[test]
    fn syntax_errors_name_the_part() {
        let err = check_syntax("body", "{% if x %}never closed").unwrap_err();
        assert!(matches!(&err, RenderError::Syntax { part: "body", message } if message.contains("body:")), "{err:?}");
        assert!(matches!(render_now("{{ }", "", &Map::new()), Err(RenderError::Syntax { part: "system", .. })));
    }

    #[test]
    fn defaults_parse_and_keys_are_valid_and_unique() {
        let mut keys: Vec<&str> = DEFAULTS.iter().map(|t| t.key).collect();
        for t in DEFAULTS {
            assert!(valid_key(t.key), "{}", t.key);
            check_syntax("system", t.system).unwrap();
            check_syntax("body", t.body).unwrap();
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), DEFAULTS.len());
        for (_, new) in LEGACY_KEYS {
            assert!(keys.contains(&new));
        }
    }

    const NESTED_RANGES: &str = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

    fn limit_part(result: Result<(String, String), RenderError>) -> Option<(&'static str, String)> {
        match result {
            Err(RenderError::Limit { part, message }) => Some((part, message)),
            _ => None,
        }
    }

    #[test]
    fn loops_stop_at_the_fuel_limit() {
        let started = std::time::Instant::now();
        let (part, message) = limit_part(render_now("", NESTED_RANGES, &Map::new())).expect("out of fuel");
        assert!(part == "body" && message.contains("steps"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        // One long loop too, and in the system part.
        let long = "{% for i in range(100000) %}{{ i }}{% endfor %}";
        assert_eq!(limit_part(render_now(long, "", &Map::new())).map(|l| l.0), Some("system"));
    }

    #[test]
    fn output_is_capped_and_minijinjas_own_caps_are_limits() {
        let bombs = [
            r#"{% for i in range(1000) %}{{ "x" * 1000 }}{% endfor %}"#,
            r#"{{ range(100000) | join("-----") }}"#,
            r#"{{ "x" * 10**9 }}"#,
            "{{ range(10**6) | length }}",
            &format!("{}x{}", "{% for i in [1] %}".repeat(80), "{% endfor %}".repeat(80)),
        ];
        for bomb in bombs {
            assert!(limit_part(render_now("", bomb, &Map::new())).is_some_and(|l| l.0 == "body"), "{bomb}");
        }
        let (_, body) = render_now("", &format!(r#"{{{{ "x" * {MAX_OUTPUT_BYTES} }}}}"#), &Map::new()).unwrap();
        assert_eq!(body.len(), MAX_OUTPUT_BYTES, "exactly the cap renders");
        let big = "x".repeat(MAX_SOURCE_BYTES + 1);
        assert!(
            limit_part(render_now(&big, "", &Map::new()))
                .is_some_and(|(part, m)| part == "system" && m.contains("100 KB"))
        );
    }

    #[test]
    fn the_default_weekly_report_fits_its_limits_with_a_large_client() {
        let t = default(WEEKLY_REPORT);
        let platforms: Vec<Value> = (0..20).map(|_| figures()["platforms"][0].clone()).collect();
        let voices: Vec<String> = (0..500).map(|i| format!("Voice rule {i}")).collect();
        let offers: Vec<String> = (0..500).map(|i| format!("Offer {i}")).collect();
        let context = ctx(json!({
            "client": {"name": "Acme", "industry": "Coffee", "currency": "BRL", "targets": {"cpa": 25, "roas": 3}},
            "knowledge": {"brand_voice": voices, "offer": offers},
            "figures": {"platforms": platforms, "sync_errors": ["meta: timeout"]},
            "period": {"start": "2026-06-01", "end": "2026-06-07", "previous_start": "2026-05-25", "previous_end": "2026-05-31"},
        }));
        let (system, body) = render_now(t.system, t.body, &context).unwrap();
        assert!(
            system.contains("Voice rule 499")
                && body.contains("Offer 499")
                && body.matches("- meta (USD)").count() == 20,
            "{body}"
        );
    }

    #[tokio::test]
    async fn check_limits_refuses_only_what_exceeds_a_limit_without_input() {
        let t = default(WEEKLY_REPORT);
        assert_eq!(check_limits(t.system, t.body).await, Ok(()));
        // Other failures depend on the values given later: not refused here.
        assert_eq!(check_limits("", "{{ client.name | nosuchfilter }} {{ range(n) }}").await, Ok(()));
        let err = check_limits(NESTED_RANGES, "fine").await.unwrap_err();
        assert!(matches!(err, RenderError::Limit { part: "system", .. }), "{err:?}");
    }

    /// On a single-threaded runtime, a render held on the async thread would also
    /// hold the ticker: it must finish on time while a slow render is abandoned.
    #[test]
    fn a_slow_render_is_abandoned_and_never_holds_the_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(slow_render_is_abandoned());
        // Dropping the runtime would wait for the abandoned render.
        runtime.shutdown_background();
    }

    async fn slow_render_is_abandoned() {
        // `sum` walks a lazily repeated list inside one step: fuel does not see it.
        let slow = "{{ (range(100000) | list * 100000) | sum }}";
        let ticker = tokio::spawn(async {
            let started = std::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(50)).await;
            started.elapsed()
        });
        let started = std::time::Instant::now();
        let err = render("", slow, Map::new()).await.unwrap_err();
        assert!(
            matches!(&err, RenderError::Limit { part: "body", message } if message.contains("longer than")),
            "{err:?}"
        );
        assert!(started.elapsed() < RENDER_TIMEOUT + Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(ticker.await.unwrap() < Duration::from_millis(500), "the runtime thread stayed free");
        let t = default("client-brief");
        let (_, body) =
            render(t.system, t.body, ctx(json!({"client": {"name": "Acme"}, "focus": null}))).await.unwrap();
        assert!(body.contains("Acme"), "{body}");
    }

    #[test]
    fn keys_follow_the_table_check() {
        for ok in ["weekly-report", "a1", "x_y-z"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a b", "ä"] {
            assert!(!valid_key(bad), "{bad}");
        }
        assert_eq!(canonical_key("client_brief"), "client-brief");
        assert_eq!(canonical_key("mine"), "mine");
    }
}
