//! Prompt templates (minijinja): the defaults seeded for the built-in workflows
//! (stored in `knowledge.prompt_templates`, editable with versions through
//! `/v1/prompt-templates`), and the renderer every caller shares.
//!
//! Rendering contract: every top-level variable a template names must be in the
//! context (a missing one is reported by name before anything renders; pass
//! `null` for "none"). Inside given values, optional fields may be tested
//! (`{% if client.targets.cpa %}`) but printing or looping over something
//! undefined is an error (minijinja's semi-strict undefined behaviour).

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{client::Client, knowledge::KnowledgeKind},
    store,
};

/// A template seeded as version 1 when its key has no version yet.
#[derive(Debug, Clone, Copy)]
pub struct DefaultTemplate {
    pub key: &'static str,
    pub description: &'static str,
    pub system: &'static str,
    pub body: &'static str,
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
const LEGACY_KEYS: [(&str, &str); 3] = [("weekly_summary", WEEKLY_REPORT), ("client_brief", "client-brief"), ("alert_digest", "alert-digest")];

/// The stored key for `key`, translating a legacy built-in name.
pub fn canonical_key(key: &str) -> &str {
    LEGACY_KEYS.iter().find(|(old, _)| *old == key).map_or(key, |(_, new)| new)
}

/// Whether `key` is a valid template key (the table's CHECK): `[a-z0-9]` words joined by `-` or `_`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key.split(['-', '_']).all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
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
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Syntax { part, message } => write!(f, "the template's {part} does not parse: {message}"),
            RenderError::Missing(names) => write!(f, "the template uses variables that were not given: {}", names.join(", ")),
            RenderError::Render { part, message } => write!(f, "rendering the template's {part} failed: {message}"),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env
}

/// Checks that a template source parses; `part` names it in the error.
pub fn check_syntax(part: &'static str, source: &str) -> Result<(), RenderError> {
    let env = environment();
    env.template_from_named_str(part, source).map(drop).map_err(|e| RenderError::Syntax { part, message: e.to_string() })
}

/// Renders a template's system and body with `context` (a JSON object).
pub fn render(system: &str, body: &str, context: &Map<String, Value>) -> Result<(String, String), RenderError> {
    let env = environment();
    let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_string()).collect();
    let parts = [("system", system), ("body", body)];
    let mut templates = Vec::with_capacity(2);
    let mut missing = BTreeSet::new();
    for (part, source) in parts {
        let template = env.template_from_named_str(part, source).map_err(|e| RenderError::Syntax { part, message: e.to_string() })?;
        // Named but neither given nor a minijinja global (range, dict, ...).
        missing.extend(template.undeclared_variables(false).into_iter().filter(|v| !context.contains_key(v) && !globals.contains(v)));
        templates.push((part, template));
    }
    if !missing.is_empty() {
        return Err(RenderError::Missing(missing.into_iter().collect()));
    }
    let mut out = templates
        .into_iter()
        .map(|(part, t)| t.render(context).map_err(|e| RenderError::Render { part, message: e.to_string() }));
    let system = out.next().expect("system")?;
    let body = out.next().expect("body")?;
    Ok((system, body))
}

/// What a template sees of a client: `client` (its JSON) and `knowledge` (the
/// bodies of its knowledge entries by kind, every kind present, e.g.
/// `knowledge.brand_voice` is a list of strings).
pub async fn client_context(conn: &mut PgConnection, client: &Client) -> Result<Map<String, Value>, sqlx::Error> {
    let mut knowledge: Map<String, Value> = [KnowledgeKind::Note, KnowledgeKind::Fact, KnowledgeKind::BrandVoice, KnowledgeKind::Competitor, KnowledgeKind::Offer, KnowledgeKind::Faq]
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
        let (system, body) = render(t.system, t.body, &context).unwrap();
        assert!(system.contains("- Warm and direct"), "{system}");
        assert!(body.contains("Acme (industry not set)") && body.contains("Target CPA: 25") && !body.contains("Target ROAS"), "{body}");
        assert!(body.contains("spend 120.5 (previous 100.0, change 20.5%)"), "{body}");
        assert!(body.contains("cpa 30.13 (previous n/a, change n/a)"), "{body}");
        assert!(!body.contains("Current offers") && !body.contains("stale"), "{body}");
    }

    #[test]
    fn missing_variables_are_named_before_rendering() {
        let t = default(WEEKLY_REPORT);
        let err = render(t.system, t.body, &ctx(json!({"client": {"name": "A"}}))).unwrap_err();
        assert_eq!(err, RenderError::Missing(vec!["figures".into(), "knowledge".into(), "period".into()]));
        // Globals and template-local names are not variables.
        assert!(render("", "{% set x = 1 %}{% for i in range(2) %}{{ x }}{{ i }}{% endfor %}", &Map::new()).is_ok());
    }

    #[test]
    fn undefined_attributes_may_be_tested_but_not_printed() {
        let c = ctx(json!({"client": {"targets": {}}}));
        assert_eq!(render("", "{% if client.targets.cpa %}x{% endif %}ok", &c).unwrap().1, "ok");
        assert!(matches!(render("", "{{ client.targets.cpa }}", &c), Err(RenderError::Render { part: "body", .. })));
    }

    #[test]
    fn syntax_errors_name_the_part() {
        let err = check_syntax("body", "{% if x %}never closed").unwrap_err();
        assert!(matches!(&err, RenderError::Syntax { part: "body", message } if message.contains("body:")), "{err:?}");
        assert!(matches!(render("{{ }", "", &Map::new()), Err(RenderError::Syntax { part: "system", .. })));
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
