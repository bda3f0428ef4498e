//! Knowledge entries: what the agency knows about a client (notes, facts, brand
//! voice, competitors, offers, FAQs), searchable with Postgres full-text search.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::validation::{FieldError, Violations};

/// Largest body in bytes (100 KB).
pub const MAX_BODY_BYTES: usize = 100 * 1024;
pub const MAX_TAGS: usize = 50;

super::names::text_enum! {
    // `knowledge.entries.kind`. (No doc comment: it would become the schema's description.)
    pub enum KnowledgeKind {
        Note = "note",
        Fact = "fact",
        BrandVoice = "brand_voice",
        Competitor = "competitor",
        Offer = "offer",
        Faq = "faq",
    }
}

/// Writable fields of a knowledge entry (create body and merge patch target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "brand_voice",
    "title": "Tone of voice",
    "body": "Warm, direct, no jargon. Always mention free delivery in São Paulo.",
    "tags": ["tone", "copy"]
}))]
pub struct KnowledgeInput {
    pub kind: KnowledgeKind,
    /// 1–300 characters.
    pub title: String,
    /// Up to 100 KB of text.
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl KnowledgeInput {
    pub fn validate(self) -> Result<KnowledgeInput, Vec<FieldError>> {
        let mut v = Violations::default();
        v.text("title", &self.title, 1, 300);
        if self.body.len() > MAX_BODY_BYTES {
            v.add("body", format!("must be at most {MAX_BODY_BYTES} bytes (100 KB); got {}", self.body.len()));
        }
        if self.tags.len() > MAX_TAGS {
            v.add("tags", format!("at most {MAX_TAGS} tags"));
        }
        let tags: Vec<String> = self.tags.iter().map(|t| t.trim().to_string()).collect();
        for (i, tag) in tags.iter().enumerate() {
            v.text(&format!("tags[{i}]"), tag, 1, 50);
        }
        v.finish(KnowledgeInput { title: self.title.trim().to_string(), tags, ..self })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KnowledgeEntry {
    pub id: Uuid,
    pub client_id: Uuid,
    pub kind: KnowledgeKind,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub updated_at: DateTime<Utc>,
}

impl KnowledgeEntry {
    pub fn to_input(&self) -> KnowledgeInput {
        KnowledgeInput { kind: self.kind, title: self.title.clone(), body: self.body.clone(), tags: self.tags.clone() }
    }
}

/// One ranked search hit with a highlighted snippet (`<b>…</b>` around matches).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KnowledgeHit {
    pub id: Uuid,
    pub client_id: Uuid,
    #[schema(example = "acme-coffee")]
    pub client_slug: String,
    pub kind: KnowledgeKind,
    pub title: String,
    pub tags: Vec<String>,
    /// Relevance; higher is better.
    #[schema(example = 0.61)]
    pub rank: f32,
    #[schema(example = "Always mention <b>free delivery</b> in São Paulo.")]
    pub snippet: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_over_100kb_is_refused_by_name() {
        let input = KnowledgeInput {
            kind: KnowledgeKind::Note,
            title: "t".into(),
            body: "x".repeat(MAX_BODY_BYTES + 1),
            tags: vec![],
        };
        let errors = input.validate().unwrap_err();
        assert_eq!(errors[0].field, "body");
    }

    #[test]
    fn kinds_round_trip() {
        for kind in KnowledgeKind::ALL {
            assert_eq!(kind.as_str().parse::<KnowledgeKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        assert!("gossip".parse::<KnowledgeKind>().is_err());
    }
}
