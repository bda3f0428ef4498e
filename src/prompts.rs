//! Built-in prompt templates (minijinja), rendered with the client and caller
//! variables. Adding one: one entry in [`TEMPLATES`].

use minijinja::Environment;
use serde::Serialize;
use utoipa::ToSchema;

/// A named prompt: the system instruction and the user prompt template.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct PromptTemplate {
    #[schema(example = "weekly_summary")]
    pub key: &'static str,
    pub description: &'static str,
    pub system: &'static str,
    pub prompt: &'static str,
}

pub const TEMPLATES: [PromptTemplate; 3] = [
    PromptTemplate {
        key: "weekly_summary",
        description: "A short week-over-week performance summary for the client (variables: metrics, previous_metrics)",
        system: "You are a senior performance-marketing analyst at an agency. Write for the client's marketing \
                 manager: concise, concrete, no jargon. Always state spend, conversions, CPA and ROAS changes.",
        prompt: "Client: {{ client.name }} ({{ client.industry or 'industry not set' }}), currency {{ client.currency }}.\n\
                 {% if client.targets.cpa %}Target CPA: {{ client.targets.cpa }}. {% endif %}\
                 {% if client.targets.roas %}Target ROAS: {{ client.targets.roas }}.{% endif %}\n\
                 This week: {{ metrics }}\nLast week: {{ previous_metrics }}\n\
                 Write a 5-sentence summary with one recommendation.",
    },
    PromptTemplate {
        key: "client_brief",
        description: "A one-paragraph brief of the client for a new team member (variables: focus)",
        system: "You are an account manager at a marketing agency.",
        prompt: "Write a one-paragraph brief about {{ client.name }} ({{ client.industry or 'industry not set' }}) \
                 for a new team member{% if focus %}, focusing on {{ focus }}{% endif %}. \
                 Notes: {{ client.notes or 'none' }}.",
    },
    PromptTemplate {
        key: "alert_digest",
        description: "A WhatsApp-length digest of monitoring alerts (variables: alerts)",
        system: "You write short, friendly WhatsApp messages for an agency's clients. Max 600 characters.",
        prompt: "Summarise these alerts for {{ client.name }} in plain words, most important first: {{ alerts }}",
    },
];

pub fn find(key: &str) -> Option<&'static PromptTemplate> {
    TEMPLATES.iter().find(|t| t.key == key)
}

/// Renders a template's system and user prompts. Unknown variables render empty.
pub fn render(template: &PromptTemplate, context: &serde_json::Value) -> Result<(String, String), String> {
    let env = Environment::new();
    let render = |source: &str| env.render_str(source, context).map_err(|e| format!("template `{}`: {e}", template.key));
    Ok((render(template.system)?, render(template.prompt)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_client_fields_and_variables() {
        let t = find("weekly_summary").unwrap();
        let ctx = json!({"client": {"name": "Acme", "currency": "BRL", "targets": {"cpa": 25}}, "metrics": "spend 100", "previous_metrics": "spend 80"});
        let (system, prompt) = render(t, &ctx).unwrap();
        assert!(system.contains("analyst"));
        assert!(prompt.contains("Acme") && prompt.contains("BRL") && prompt.contains("Target CPA: 25") && prompt.contains("spend 80"));
        assert!(!prompt.contains("Target ROAS"));
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<&str> = TEMPLATES.iter().map(|t| t.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), TEMPLATES.len());
    }
}
