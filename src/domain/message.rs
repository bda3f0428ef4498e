//! Outbound WhatsApp messages (`engine.whatsapp_messages`): their kind, where a
//! message is in its life, and the WhatsApp rules a send must respect (template
//! parameters, the 24 h customer-service window). No I/O.

use chrono::{DateTime, Duration, Utc};

super::names::text_enum! {
    /// A free-form `text` (only inside the customer-service window) or an approved `template`.
    pub enum MessageKind {
        Text = "text",
        Template = "template",
    }
}

super::names::text_enum! {
    /// Where a message is: `accepted` (the API took it) → `sent` → `delivered` → `read`,
    /// or `failed` (final). Status webhooks can arrive out of order and `delivered` may
    /// be skipped (read implies delivered), so a status only ever moves forward.
    pub enum MessageStatus {
        Accepted = "accepted",
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
    }
}

impl MessageStatus {
    fn rank(self) -> u8 {
        match self {
            Self::Accepted => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }

    /// Whether a message in `self` may move to `next` (never backwards; `failed` is final).
    pub fn advances_to(self, next: MessageStatus) -> bool {
        self != Self::Failed && next.rank() > self.rank()
    }
}

/// Meta's customer-service window: free-form messages are delivered only within 24 h
/// of the customer's last message to the business (Meta, "Send messages"; error 131047).
pub const WINDOW: Duration = Duration::hours(24);
/// Closed a little early: a send decided at 23:59:59 reaches Meta after the window
/// (the stricter reading).
pub const WINDOW_MARGIN: Duration = Duration::minutes(10);

/// Whether the window opened by a customer's message at `last_inbound` is still open `now`.
pub fn window_open(last_inbound: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_inbound.is_some_and(|at| at <= now + Duration::minutes(5) && now - at < WINDOW - WINDOW_MARGIN)
}

/// Longest template parameter we send. Meta caps a template body at 1,024 characters
/// with its parameters filled in, and our templates take up to three: each is kept
/// well under a third (the stricter reading).
pub const MAX_PARAM_CHARS: usize = 300;

/// A template parameter as Meta accepts it: no newline or tab and at most four
/// consecutive spaces (else error 132018), not empty (131008), at most
/// [`MAX_PARAM_CHARS`]. Line breaks become ` · `, other whitespace runs one space.
pub fn template_param(raw: &str) -> String {
    let lines: Vec<String> =
        raw.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|l| !l.is_empty()).collect();
    let joined = lines.join(" · ");
    let mut out: String = joined.chars().take(MAX_PARAM_CHARS).collect();
    if joined.chars().count() > MAX_PARAM_CHARS {
        out = out.chars().take(MAX_PARAM_CHARS - 1).collect::<String>().trim_end().to_string();
        out.push('…');
    }
    if out.is_empty() { "-".to_string() } else { out }
}

/// Whether a parameter already follows [`template_param`]'s rules.
pub fn param_is_clean(p: &str) -> bool {
    !p.is_empty() && !p.contains(['\n', '\r', '\t']) && !p.contains("     ") && p.chars().count() <= MAX_PARAM_CHARS
}

/// Fills a template's body parameters from named values by a mapping setting
/// (`client,alerts,summary`): the `n`-th name gives `{{n}}`. Unknown names are an
/// error naming the setting and the names it may use.
pub fn map_params(setting: &str, mapping: &str, values: &[(&str, String)]) -> Result<Vec<String>, String> {
    mapping
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            values.iter().find(|(k, _)| *k == name).map(|(_, v)| template_param(v)).ok_or_else(|| {
                let known: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
                format!("{setting}: `{name}` is not a parameter (known: {})", known.join(", "))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward_and_failed_is_final() {
        use MessageStatus::*;
        assert!(Accepted.advances_to(Sent) && Sent.advances_to(Delivered) && Delivered.advances_to(Read));
        assert!(Sent.advances_to(Read), "delivered may be skipped");
        assert!(!Read.advances_to(Delivered) && !Delivered.advances_to(Sent) && !Sent.advances_to(Sent));
        assert!(Delivered.advances_to(Failed));
        for s in MessageStatus::ALL {
            assert!(!Failed.advances_to(*s), "{s}");
        }
    }

    #[test]
    fn window_is_24_hours_less_the_margin() {
        let now = Utc::now();
        assert!(!window_open(None, now));
        assert!(window_open(Some(now - Duration::hours(1)), now));
        assert!(window_open(Some(now - Duration::hours(23)), now));
        assert!(!window_open(Some(now - Duration::minutes(23 * 60 + 55)), now), "inside the margin");
        assert!(!window_open(Some(now - Duration::hours(25)), now));
    }

    #[test]
    fn params_are_single_line_without_long_space_runs() {
        let p = template_param("Pacing over\n\t- Meta:      1.2×\r\n\n- Google");
        assert_eq!(p, "Pacing over · - Meta: 1.2× · - Google");
        assert!(param_is_clean(&p));
        assert_eq!(template_param("  \n "), "-");
        let long = template_param(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_PARAM_CHARS);
        assert!(long.ends_with('…') && param_is_clean(&long));
        assert!(!param_is_clean("a\tb") && !param_is_clean("a     b") && !param_is_clean(""));
    }

    #[test]
    fn params_follow_the_mapping() {
        let values = [("client", "Acme".to_string()), ("alerts", "3".to_string())];
        assert_eq!(map_params("S", "alerts, client", &values).unwrap(), ["3", "Acme"]);
        let err = map_params("WHATSAPP_DIGEST_PARAMS", "client,colour", &values).unwrap_err();
        assert!(err.contains("WHATSAPP_DIGEST_PARAMS") && err.contains("colour") && err.contains("alerts"), "{err}");
    }
}
