//! The message templates the simulated WhatsApp Business Account has approved, and the
//! checks Meta makes when one is sent (error codes from
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/>;
//! templates: <https://developers.facebook.com/documentation/business-messaging/whatsapp/templates/overview>).

use serde::{Deserialize, Serialize};

/// An approved template: its name, language and the number of POSITIONAL body
/// parameters (`{{1}}`, `{{2}}`, ...) it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Lower-case letters, digits and underscores (Meta's naming rule).
    pub name: String,
    /// e.g. `en_US`.
    pub language: String,
    /// How many body parameters a send must carry.
    pub body_parameters: usize,
}

impl Template {
    fn new(name: &str, body_parameters: usize) -> Self {
        Self { name: name.into(), language: "en_US".into(), body_parameters }
    }

    /// What is wrong with this template as a definition, naming the field; `None` when valid.
    pub fn invalid_field(&self) -> Option<(&'static str, String)> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 512
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            return Some(("name", "lower-case letters, digits and underscores, at most 512 characters".into()));
        }
        // `en`, `en_US`, `pt_BR`, `zh_CN`...: a language, optionally a region.
        let (lang, region) = self.language.split_once('_').unwrap_or((&self.language, ""));
        let valid_language = (2..=3).contains(&lang.len())
            && lang.bytes().all(|b| b.is_ascii_lowercase())
            && (region.is_empty() || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase())));
        if !valid_language {
            return Some(("language", "a language code such as `en` or `en_US`".into()));
        }
        if self.body_parameters > 100 {
            return Some(("body_parameters", "at most 100".into()));
        }
        None
    }
}

/// The templates every simulated account starts with (pre-approved, UTILITY, `en_US`):
/// the ones Switchboard's proactive sends use by default.
pub fn defaults() -> Vec<Template> {
    vec![
        // client name, number of alerts, one-line summary
        Template::new("switchboard_daily_digest", 3),
        // client name, period, link to the PDF (its Drive file, or the report's PDF URL). A real
        // account gets it approved like any template: created in WhatsApp Manager or through the
        // Business Management API (`POST /<WABA_ID>/message_templates`), then reviewed by Meta.
        Template::new("switchboard_weekly_report", 3),
        // client name
        Template::new("welcome_client", 1),
        // client name, alert title, one-line detail
        Template::new("switchboard_alert", 3),
    ]
}

/// Why Meta refuses a template send: its code, title and `error_data.details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub title: &'static str,
    pub details: String,
}

/// 132001: no approved template of that name in that language. Title and details as the
/// Cloud API answers them (e.g. "template name (x) does not exist in en_US").
pub const NOT_FOUND: &str = "Template name does not exist in the translation";
/// 132000: the body carries more or fewer parameters than the template has placeholders.
pub const PARAM_COUNT: &str = "Number of parameters does not match the expected number of params";
/// 132018 ("Template parameter issue"): Meta's own wording in its answers.
pub const PARAM_ISSUE: &str = "There's an issue with the parameters in your template";

/// Checks a template send against the approved list: 132001, then 132000, then 132018.
pub fn check(templates: &[Template], name: &str, language: &str, params: &[String]) -> Result<(), Refusal> {
    let Some(template) = templates.iter().find(|t| t.name == name && t.language == language) else {
        return Err(Refusal {
            code: 132001,
            title: NOT_FOUND,
            details: format!("template name ({name}) does not exist in {language}"),
        });
    };
    if params.len() != template.body_parameters {
        return Err(Refusal {
            code: 132000,
            title: PARAM_COUNT,
            details: format!(
                "body: number of localizable_params ({}) does not match the expected number of params ({})",
                params.len(),
                template.body_parameters
            ),
        });
    }
    if let Some(index) = params.iter().position(|p| !parameter_text_ok(p)) {
        return Err(Refusal {
            code: 132018,
            title: PARAM_ISSUE,
            details: format!(
                "body: Param text cannot have new-line/tab characters or more than 4 consecutive spaces (parameter {})",
                index + 1
            ),
        });
    }
    Ok(())
}

/// A body parameter may not contain a new line or a tab, nor more than 4 consecutive spaces.
pub fn parameter_text_ok(text: &str) -> bool {
    !text.contains(['\n', '\r', '\t']) && !text.contains("     ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("value {i}")).collect()
    }

    #[test]
    fn the_defaults_are_valid_and_go_through_with_their_parameter_count() {
        for t in defaults() {
            assert_eq!(t.invalid_field(), None, "{t:?}");
            assert_eq!(check(&defaults(), &t.name, "en_US", &params(t.body_parameters)), Ok(()));
        }
    }

    #[test]
    fn an_unknown_name_or_language_is_132001() {
        let err = check(&defaults(), "no_such_template", "en_US", &[]).unwrap_err();
        assert_eq!(
            (err.code, err.details.as_str()),
            (132001, "template name (no_such_template) does not exist in en_US")
        );
        // The same name in a language it was not approved in.
        assert_eq!(check(&defaults(), "welcome_client", "pt_BR", &params(1)).unwrap_err().code, 132001);
    }

    #[test]
    fn a_wrong_parameter_count_is_132000() {
        let err = check(&defaults(), "welcome_client", "en_US", &params(2)).unwrap_err();
        assert_eq!(err.code, 132000);
        assert!(err.details.contains("(2) does not match the expected number of params (1)"), "{}", err.details);
        assert_eq!(check(&defaults(), "switchboard_alert", "en_US", &[]).unwrap_err().code, 132000);
    }

    #[test]
    fn new_lines_tabs_and_long_space_runs_are_132018() {
        for bad in ["two\nlines", "cr\rhere", "a\ttab", "five     spaces"] {
            let p = vec![bad.to_string()];
            assert_eq!(check(&defaults(), "welcome_client", "en_US", &p).unwrap_err().code, 132018, "{bad:?}");
        }
        // Four spaces in a row are still allowed.
        assert_eq!(check(&defaults(), "welcome_client", "en_US", &["four    spaces".to_string()]), Ok(()));
    }

    #[test]
    fn a_definition_names_its_bad_field() {
        let t = |name: &str, language: &str, n| Template {
            name: name.into(),
            language: language.into(),
            body_parameters: n,
        };
        assert_eq!(t("Bad Name", "en_US", 1).invalid_field().unwrap().0, "name");
        assert_eq!(t("ok", "english", 1).invalid_field().unwrap().0, "language");
        assert_eq!(t("ok", "en_us", 1).invalid_field().unwrap().0, "language");
        assert_eq!(t("ok", "pt", 101).invalid_field().unwrap().0, "body_parameters");
        assert_eq!(t("order_update_2", "pt_BR", 2).invalid_field(), None);
    }
}
