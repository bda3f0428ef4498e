//! Content negotiation: which of the media types an endpoint offers the
//! request's `Accept` header prefers (RFC 9110 §12.5.1: q-values, the most
//! specific matching range decides a type's q). Ranges are parsed by `mime`.

/// The offered type the client prefers; the first offered when there is no
/// `Accept` header (or an empty one); `None` when it accepts none of them.
pub fn pick(accept: Option<&str>, offered: &[&'static str]) -> Option<&'static str> {
    let accept = accept.map(str::trim).filter(|a| !a.is_empty());
    let Some(accept) = accept else { return offered.first().copied() };
    let ranges: Vec<(mime::Mime, f32)> = accept
        .split(',')
        .filter_map(|r| r.trim().parse::<mime::Mime>().ok())
        .map(|m| {
            let q = m.get_param("q").and_then(|q| q.as_str().parse::<f32>().ok()).unwrap_or(1.0).clamp(0.0, 1.0);
            (m, q)
        })
        .collect();
    let mut best: Option<(&'static str, f32)> = None;
    for candidate in offered {
        let Ok(c) = candidate.parse::<mime::Mime>() else { continue };
        // The most specific range that matches this type gives its q.
        let q = ranges
            .iter()
            .filter_map(|(r, q)| {
                let specificity = if r.type_() == mime::STAR {
                    0
                } else if r.type_() != c.type_() {
                    return None;
                } else if r.subtype() == mime::STAR {
                    1
                } else if r.subtype() == c.subtype() {
                    2
                } else {
                    return None;
                };
                Some((specificity, *q))
            })
            .max_by_key(|(s, _)| *s)
            .map(|(_, q)| q);
        if let Some(q) = q.filter(|q| *q > 0.0)
            && best.is_none_or(|(_, b)| q > b)
        {
            best = Some((candidate, q));
        }
    }
    best.map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::pick;

    const OFFERED: [&str; 3] = ["application/json", "text/html", "application/pdf"];

    #[test]
    fn picks_by_q_and_specificity() {
        assert_eq!(pick(None, &OFFERED), Some("application/json"));
        assert_eq!(pick(Some(""), &OFFERED), Some("application/json"));
        assert_eq!(pick(Some("*/*"), &OFFERED), Some("application/json"));
        assert_eq!(pick(Some("application/pdf"), &OFFERED), Some("application/pdf"));
        assert_eq!(
            pick(Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), &OFFERED),
            Some("text/html")
        );
        assert_eq!(pick(Some("application/json;q=0.5, application/pdf"), &OFFERED), Some("application/pdf"));
        assert_eq!(pick(Some("text/*"), &OFFERED), Some("text/html"));
        // A specific q=0 excludes a type that a wildcard would accept.
        assert_eq!(pick(Some("*/*, application/json;q=0"), &OFFERED), Some("text/html"));
        assert_eq!(pick(Some("image/png"), &OFFERED), None);
        assert_eq!(pick(Some("not a type"), &OFFERED), None);
    }
}
