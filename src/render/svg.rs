//! A small SVG writer: the elements the charts and pages use, every text escaped.

use std::fmt::Write;

use super::text::FAMILY;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A number with at most two decimals (`12`, `12.5`, `12.25`): short, stable output.
pub fn n(x: f32) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r == r.trunc() { format!("{}", r as i64) } else { format!("{r}") }
}

#[derive(Clone, Copy)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

pub struct Svg {
    pub body: String,
}

impl Svg {
    pub fn new() -> Self {
        Svg { body: String::new() }
    }

    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}"/>"#,
            n(x),
            n(y),
            n(w),
            n(h)
        );
    }

    pub fn line(&mut self, (x1, y1): (f32, f32), (x2, y2): (f32, f32), stroke: &str, width: f32, dash: Option<&str>) {
        let dash = dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{stroke}" stroke-width="{}"{dash}/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            n(width)
        );
    }

    pub fn polyline(&mut self, points: &[(f32, f32)], stroke: &str, width: f32, dash: Option<&str>) {
        if points.is_empty() {
            return;
        }
        let pts: Vec<String> = points.iter().map(|(x, y)| format!("{},{}", n(*x), n(*y))).collect();
        let dash = dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="{}" stroke-linejoin="round"{dash}/>"#,
            pts.join(" "),
            n(width)
        );
    }

    pub fn circle(&mut self, (x, y): (f32, f32), r: f32, fill: &str) {
        let _ = writeln!(self.body, r#"<circle cx="{}" cy="{}" r="{}" fill="{fill}"/>"#, n(x), n(y), n(r));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn text(&mut self, x: f32, y: f32, size: f32, anchor: Anchor, bold: bool, fill: &str, content: &str) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            self.body,
            r#"<text x="{}" y="{}" font-family="{FAMILY}" font-size="{}" text-anchor="{anchor}" fill="{fill}"{weight}>{}</text>"#,
            n(x),
            n(y),
            n(size),
            esc(content)
        );
    }

    /// Another SVG (a chart) placed at `x, y`, scaled to `w × h`.
    pub fn nest(&mut self, x: f32, y: f32, w: f32, h: f32, svg: &str) {
        let inner = svg.replacen("<svg ", &format!(r#"<svg x="{}" y="{}" "#, n(x), n(y)), 1);
        // The chart's own width/height give way to the placement size.
        let inner = replace_attr(&inner, "width", &n(w));
        let inner = replace_attr(&inner, "height", &n(h));
        self.body.push_str(&inner);
        self.body.push('\n');
    }

    /// The document: `w × h` user units.
    pub fn finish(self, w: f32, h: f32) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="{FAMILY}">
{}</svg>
"#,
            n(w),
            n(h),
            n(w),
            n(h),
            self.body
        )
    }
}

/// Replaces the first `name="…"` of the opening tag.
fn replace_attr(svg: &str, name: &str, value: &str) -> String {
    let tag_end = svg.find('>').unwrap_or(svg.len());
    let needle = format!(r#" {name}=""#);
    match svg[..tag_end].find(&needle) {
        Some(i) => {
            let start = i + needle.len();
            let end = start + svg[start..].find('"').unwrap_or(0);
            format!("{}{value}{}", &svg[..start], &svg[end..])
        }
        None => svg.to_string(),
    }
}
