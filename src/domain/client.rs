//! Clients of the agency: the writable shape (also the JSON merge patch target),
//! the stored record, and the rules that normalise account ids, slugs and money.

use std::{collections::BTreeMap, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::validation::{FieldError, Violations, clean};

pub const MAX_SLUG_LEN: usize = 100;
/// Platforms a monthly budget can be set for (the ad platforms).
pub const BUDGET_PLATFORMS: [&str; 3] = ["meta", "google_ads", "tiktok"];

super::names::text_enum! {
    // `knowledge.clients.status`. (No doc comment: it would become the schema's description.)
    #[derive(Default)]
    pub enum ClientStatus {
        #[default]
        Onboarding = "onboarding",
        Active = "active",
        Paused = "paused",
        Archived = "archived",
    }
}

/// Platform account ids, keyed by platform.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// Meta ad account id; stored as `act_<digits>` whether given with or without the prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "act_1234567890")]
    pub meta: Option<String>,
    /// Google Ads customer id: `123-456-7890` or `1234567890`, stored as 10 digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "1234567890")]
    pub google_ads: Option<String>,
    /// Google Ads manager (MCC) account this client's account is reached through, sent as
    /// `login-customer-id`: `123-456-7890` or `1234567890`, stored as 10 digits. Unset:
    /// `GOOGLE_ADS_LOGIN_CUSTOMER_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "9876543210")]
    pub google_ads_manager: Option<String>,
    /// ClickUp list id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "901234567")]
    pub clickup_list: Option<String>,
    /// Google Drive folder id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "1A2b3C4d5E6f7G8h9I0j")]
    pub drive_folder: Option<String>,
    /// WhatsApp recipient: an E.164 number (`+5511999990000`). Group ids (`…@g.us`) are refused:
    /// the connector cannot send to them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "+5511999990000")]
    pub whatsapp: Option<String>,
    /// TikTok advertiser id (free form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiktok: Option<String>,
    /// GA4 property id (free form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ga4: Option<String>,
}

/// KPI targets the monitoring compares against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Target cost per acquisition, in the client's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 25.0)]
    pub cpa: Option<f64>,
    /// Target return on ad spend (conversion value / spend).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 4.0)]
    pub roas: Option<f64>,
    /// Spend above this in one day raises an alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 400.0)]
    pub max_daily_spend: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[schema(example = "Ana Souza")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "ana@example.com")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "+5511999990000")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Marketing manager")]
    pub role: Option<String>,
}

/// The writable fields of a client: the body of `POST /v1/clients`, and the
/// document a `PATCH` merge patch is applied to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Acme Coffee",
    "industry": "food & beverage",
    "timezone": "America/Sao_Paulo",
    "currency": "BRL",
    "accounts": {"meta": "1234567890", "google_ads": "123-456-7890", "whatsapp": "+5511999990000"},
    "budgets": {"meta": 5000, "google_ads": 3000},
    "targets": {"cpa": 25, "roas": 4},
    "contacts": [{"name": "Ana Souza", "email": "ana@example.com", "role": "Marketing manager"}]
}))]
pub struct ClientInput {
    /// Unique, `[a-z0-9-]`; derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// 1–200 characters.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    /// Defaults to `onboarding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClientStatus>,
    /// IANA time zone; defaults to `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// ISO 4217 code; defaults to `USD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default)]
    pub accounts: Accounts,
    /// Monthly budget per ad platform (`meta`, `google_ads`, `tiktok`), in the client's currency.
    #[serde(default)]
    pub budgets: BTreeMap<String, f64>,
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A validated, normalised client ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFields {
    pub slug: String,
    pub name: String,
    pub industry: Option<String>,
    pub status: ClientStatus,
    pub timezone: String,
    pub currency: String,
    pub accounts: Accounts,
    pub budgets: BTreeMap<String, f64>,
    pub targets: Targets,
    pub contacts: Vec<Contact>,
    pub notes: Option<String>,
}

/// A client as stored and returned by the API (also the `client.*` events' `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Client {
    pub id: Uuid,
    #[schema(example = "acme-coffee")]
    pub slug: String,
    #[schema(example = "Acme Coffee")]
    pub name: String,
    pub industry: Option<String>,
    pub status: ClientStatus,
    #[schema(example = "America/Sao_Paulo")]
    pub timezone: String,
    #[schema(example = "BRL")]
    pub currency: String,
    pub accounts: Accounts,
    pub budgets: BTreeMap<String, f64>,
    pub targets: Targets,
    pub contacts: Vec<Contact>,
    pub notes: Option<String>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::timestamp")]
    #[schema(value_type = String, example = "2026-06-01T08:00:00.000Z")]
    pub updated_at: DateTime<Utc>,
}

impl Client {
    /// The writable view of this client, the base a merge patch applies to.
    pub fn to_input(&self) -> ClientInput {
        ClientInput {
            slug: Some(self.slug.clone()),
            name: self.name.clone(),
            industry: self.industry.clone(),
            status: Some(self.status),
            timezone: Some(self.timezone.clone()),
            currency: Some(self.currency.clone()),
            accounts: self.accounts.clone(),
            budgets: self.budgets.clone(),
            targets: self.targets.clone(),
            contacts: self.contacts.clone(),
            notes: self.notes.clone(),
        }
    }
}

impl ClientInput {
    /// Validates every field, reporting all problems at once, and normalises ids.
    pub fn validate(self) -> Result<ClientFields, Vec<FieldError>> {
        let mut v = Violations::default();
        v.text("name", &self.name, 1, 200);
        let name = self.name.trim().to_string();

        let slug = match clean(self.slug) {
            Some(slug) => {
                if !is_valid_slug(&slug) {
                    v.add("slug", "must be lowercase letters, digits and single dashes (e.g. acme-coffee), at most 100 characters");
                }
                slug
            }
            None => {
                let derived = derive_slug(&name);
                if derived.is_empty() && !name.is_empty() {
                    v.add("slug", "cannot be derived from this name; give a slug");
                }
                derived
            }
        };

        let industry = clean(self.industry);
        v.optional_text("industry", industry.as_deref(), 100);

        let timezone = clean(self.timezone).unwrap_or_else(|| "UTC".into());
        if chrono_tz::Tz::from_str(&timezone).is_err() {
            v.add("timezone", "must be an IANA time zone (e.g. Europe/Lisbon, America/Sao_Paulo, UTC)");
        }

        let currency = clean(self.currency).unwrap_or_else(|| "USD".into()).to_uppercase();
        if iso_currency::Currency::from_code(&currency).is_none() {
            v.add("currency", "must be an ISO 4217 currency code (e.g. USD, EUR, BRL)");
        }

        let accounts = normalise_accounts(self.accounts, &mut v);

        for (platform, amount) in &self.budgets {
            if !BUDGET_PLATFORMS.contains(&platform.as_str()) {
                v.add(
                    format!("budgets.{platform}"),
                    format!("unknown platform (one of {})", BUDGET_PLATFORMS.join(", ")),
                );
            } else if !amount.is_finite() || *amount < 0.0 {
                v.add(format!("budgets.{platform}"), "must be a non-negative amount");
            }
        }

        for (field, value) in [
            ("targets.cpa", self.targets.cpa),
            ("targets.roas", self.targets.roas),
            ("targets.max_daily_spend", self.targets.max_daily_spend),
        ] {
            if let Some(x) = value
                && (!x.is_finite() || x <= 0.0)
            {
                v.add(field, "must be a positive number");
            }
        }

        if self.contacts.len() > 50 {
            v.add("contacts", "at most 50 contacts");
        }
        let contacts = self.contacts.into_iter().enumerate().map(|(i, c)| normalise_contact(i, c, &mut v)).collect();

        let notes = clean(self.notes);
        v.optional_text("notes", notes.as_deref(), 20_000);

        v.finish(ClientFields {
            slug,
            name,
            industry,
            status: self.status.unwrap_or_default(),
            timezone,
            currency,
            accounts,
            budgets: self.budgets,
            targets: self.targets,
            contacts,
            notes,
        })
    }
}

pub fn is_valid_slug(slug: &str) -> bool {
    slug.len() <= MAX_SLUG_LEN
        && !slug.is_empty()
        && slug
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// `Açaí & Co. São Paulo` → `acai-co-sao-paulo`, cut to the slug length at a dash.
pub fn derive_slug(name: &str) -> String {
    let mut slug = slug::slugify(name);
    if slug.len() > MAX_SLUG_LEN {
        slug.truncate(MAX_SLUG_LEN);
        slug = slug.trim_end_matches('-').to_string();
    }
    slug
}

fn normalise_accounts(a: Accounts, v: &mut Violations) -> Accounts {
    let mut check = |platform: &str, value: Option<String>, rule: fn(&str) -> Option<String>, expected: &str| {
        let value = clean(value)?;
        match rule(&value) {
            Some(normalised) => Some(normalised),
            None => {
                v.add(format!("accounts.{platform}"), expected.to_string());
                Some(value)
            }
        }
    };
    Accounts {
        meta: check(
            "meta",
            a.meta,
            meta_account,
            "Meta ad account id must be digits, optionally prefixed with act_ (e.g. act_1234567890)",
        ),
        google_ads: check(
            "google_ads",
            a.google_ads,
            google_ads_customer,
            "Google Ads customer id must be 10 digits, as 123-456-7890 or 1234567890",
        ),
        google_ads_manager: check(
            "google_ads_manager",
            a.google_ads_manager,
            google_ads_customer,
            "Google Ads manager account id must be 10 digits, as 123-456-7890 or 1234567890",
        ),
        clickup_list: check(
            "clickup_list",
            a.clickup_list,
            plain_id,
            "ClickUp list id must be letters, digits, - or _ (e.g. 901234567)",
        ),
        drive_folder: check(
            "drive_folder",
            a.drive_folder,
            plain_id,
            "Google Drive folder id must be letters, digits, - or _ (as in the folder URL)",
        ),
        whatsapp: check(
            "whatsapp",
            a.whatsapp,
            whatsapp_recipient,
            "WhatsApp recipient must be an E.164 number (e.g. +5511999990000); group ids (…@g.us) cannot be sent to by the Cloud API connector",
        ),
        tiktok: check("tiktok", a.tiktok, free_form_id, "TikTok advertiser id must be 1-200 characters without spaces"),
        ga4: check("ga4", a.ga4, free_form_id, "GA4 property id must be 1-200 characters without spaces"),
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `act_123` or `123` → `act_123`.
pub fn meta_account(raw: &str) -> Option<String> {
    let digits = raw.strip_prefix("act_").unwrap_or(raw);
    (all_digits(digits) && digits.len() <= 20).then(|| format!("act_{digits}"))
}

/// `123-456-7890` or `1234567890` → `1234567890`.
pub fn google_ads_customer(raw: &str) -> Option<String> {
    let dashed = raw.len() == 12 && raw.as_bytes()[3] == b'-' && raw.as_bytes()[7] == b'-';
    let digits: String = if dashed { raw.replace('-', "") } else { raw.to_string() };
    (digits.len() == 10 && all_digits(&digits)).then_some(digits)
}

/// E.164 (`+` and 8–15 digits; spaces, dashes and parentheses dropped): the only
/// recipient the connector sends to (`recipient_type: individual`). Group ids
/// (`…@g.us`) are refused: the Cloud API addresses groups through its Groups API,
/// which the connector does not use.
pub fn whatsapp_recipient(raw: &str) -> Option<String> {
    e164(raw)
}

pub fn e164(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    let digits = compact.strip_prefix('+')?;
    (all_digits(digits) && (8..=15).contains(&digits.len()) && !digits.starts_with('0')).then_some(compact)
}

fn plain_id(raw: &str) -> Option<String> {
    (raw.len() <= 200 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| raw.to_string())
}

fn free_form_id(raw: &str) -> Option<String> {
    (raw.chars().count() <= 200 && !raw.chars().any(char::is_whitespace)).then(|| raw.to_string())
}

fn normalise_contact(i: usize, c: Contact, v: &mut Violations) -> Contact {
    let field = |name: &str| format!("contacts[{i}].{name}");
    v.text(&field("name"), &c.name, 1, 200);
    let email = clean(c.email);
    if let Some(email) = &email
        && !looks_like_email(email)
    {
        v.add(field("email"), "must be an email address (name@example.com)");
    }
    let phone = clean(c.phone).map(|p| match e164(&p) {
        Some(normalised) => normalised,
        None => {
            v.add(field("phone"), "must be an E.164 number (e.g. +5511999990000)");
            p
        }
    });
    let role = clean(c.role);
    v.optional_text(&field("role"), role.as_deref(), 100);
    Contact { name: c.name.trim().to_string(), email, phone, role }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str) -> ClientInput {
        ClientInput { name: name.into(), ..Default::default() }
    }

    #[test]
    fn meta_ids_are_stored_with_the_prefix() {
        assert_eq!(meta_account("1234567890").as_deref(), Some("act_1234567890"));
        assert_eq!(meta_account("act_1234567890").as_deref(), Some("act_1234567890"));
        assert_eq!(meta_account("act_12ab"), None);
        assert_eq!(meta_account("act_"), None);
    }

    #[test]
    fn google_ads_ids_are_stored_as_digits() {
        assert_eq!(google_ads_customer("123-456-7890").as_deref(), Some("1234567890"));
        assert_eq!(google_ads_customer("1234567890").as_deref(), Some("1234567890"));
        assert_eq!(google_ads_customer("12-3456-7890"), None);
        assert_eq!(google_ads_customer("123456789"), None);
    }

    #[test]
    fn whatsapp_accepts_only_numbers_the_connector_can_send_to() {
        assert_eq!(whatsapp_recipient("+55 11 99999-0000").as_deref(), Some("+5511999990000"));
        assert_eq!(whatsapp_recipient("120363025246125486@g.us"), None, "groups are not sendable");
        assert_eq!(whatsapp_recipient("5511999990000"), None);
        assert_eq!(whatsapp_recipient("+0123"), None);
    }

    #[test]
    fn defaults_and_derived_slug() {
        let c = input("Açaí & Co. São Paulo").validate().unwrap();
        assert_eq!(c.slug, "acai-co-sao-paulo");
        assert_eq!(c.status, ClientStatus::Onboarding);
        assert_eq!(c.timezone, "UTC");
        assert_eq!(c.currency, "USD");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let bad = ClientInput {
            name: "".into(),
            slug: Some("Bad Slug".into()),
            timezone: Some("Mars/Olympus".into()),
            currency: Some("XYZ".into()),
            accounts: Accounts {
                meta: Some("act_x".into()),
                google_ads: Some("123".into()),
                google_ads_manager: Some("MCC-1".into()),
                ..Default::default()
            },
            budgets: [("meta".to_string(), -1.0), ("myspace".to_string(), 10.0)].into(),
            targets: Targets { cpa: Some(0.0), ..Default::default() },
            contacts: vec![Contact { name: "A".into(), email: Some("nope".into()), phone: None, role: None }],
            ..Default::default()
        };
        let errors = bad.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "name",
            "slug",
            "timezone",
            "currency",
            "accounts.meta",
            "accounts.google_ads",
            "accounts.google_ads_manager",
            "budgets.meta",
            "budgets.myspace",
            "targets.cpa",
            "contacts[0].email",
        ] {
            assert!(fields.contains(&expected), "missing {expected} in {fields:?}");
        }
        let meta = errors.iter().find(|e| e.field == "accounts.meta").unwrap();
        assert!(meta.message.contains("Meta") && meta.message.contains("act_"));
    }

    #[test]
    fn google_ads_manager_is_stored_as_digits() {
        let mut c = input("Acme");
        c.accounts.google_ads_manager = Some(" 987-654-3210 ".into());
        assert_eq!(c.validate().unwrap().accounts.google_ads_manager.as_deref(), Some("9876543210"));
    }

    #[test]
    fn slug_rules() {
        assert!(is_valid_slug("acme-coffee-2"));
        for bad in ["", "-acme", "acme-", "ac--me", "Acme", "acme_coffee", &"a".repeat(101)] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }
}
