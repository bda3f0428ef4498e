//! The report as an A4 PDF (595 × 842 pt): each page's shapes and charts are
//! SVG drawn by krilla through krilla-svg, and the page's own lines of text are
//! drawn by krilla as text runs in the shipped font, so they search and copy as
//! words (krilla-svg places every glyph on its own, which reads back as
//! "A c m e"). The document id and creation date come from the report, so the
//! same report always gives the same bytes.

use std::sync::{Arc, LazyLock};

use chrono::{Datelike, Timelike};
use krilla::{
    Data, Document,
    color::rgb,
    geom::{Point, Size},
    metadata::{DateTime, Metadata},
    num::NormalizedF32,
    page::PageSettings,
    paint::{Fill, FillRule},
    surface::Surface,
    text::{Font, TextDirection},
};
use krilla_svg::{SurfaceExt, SvgSettings};

use super::{
    AlertLine, RenderError, ReportData, charts, markdown, raster,
    svg::{Anchor, Svg},
    table::{self, HEADER},
    text,
};

const W: f32 = 595.0;
const H: f32 = 842.0;
const MARGIN: f32 = 40.0;
const CONTENT: f32 = W - 2.0 * MARGIN;
const LIMIT: f32 = H - 50.0;
const INK: &str = "#222222";
const MUTED: &str = "#666666";

/// "Days are calendar days in …; amounts in …" under the title.
pub fn basis_line(data: &ReportData) -> String {
    format!("Days are calendar days in {}. Amounts in {}.", data.timezone, data.currency)
}

pub fn no_delivery_line(data: &ReportData) -> String {
    format!(
        "No spend and no impressions were recorded for {} from {} to {} on any linked platform.",
        data.client_name,
        data.period_start.format("%-d %b"),
        data.period_end.format("%-d %b %Y")
    )
}

pub fn alert_line(a: &AlertLine) -> String {
    format!("{} · {} · {}: {}", a.day.format("%a %-d %b"), a.severity, a.subject, a.message)
}

/// One line of text on a page, `(x, y)` its anchor point on the baseline.
struct TextRun {
    x: f32,
    y: f32,
    size: f32,
    anchor: Anchor,
    bold: bool,
    fill: &'static str,
    content: String,
}

/// A page: shapes and charts as SVG, its lines of text apart (drawn as text runs in the PDF).
struct Page {
    shapes: Svg,
    texts: Vec<TextRun>,
}

impl Page {
    fn new() -> Self {
        Page { shapes: Svg::new(), texts: vec![] }
    }

    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f32, y: f32, size: f32, anchor: Anchor, bold: bool, fill: &'static str, content: &str) {
        self.texts.push(TextRun { x, y, size, anchor, bold, fill, content: content.to_string() });
    }

    /// The whole page as one SVG document (the PNG previews).
    fn svg(&self) -> String {
        let mut svg = Svg { body: self.shapes.body.clone() };
        for t in &self.texts {
            svg.text(t.x, t.y, t.size, t.anchor, t.bold, t.fill, &t.content);
        }
        svg.finish(W, H)
    }
}

/// Pages filled top to bottom; a block that does not fit starts a new page.
struct Pages {
    done: Vec<Page>,
    page: Page,
    y: f32,
}

impl Pages {
    fn new() -> Self {
        Pages { done: vec![], page: Page::new(), y: MARGIN }
    }

    fn need(&mut self, h: f32) {
        if self.y + h > LIMIT {
            self.done.push(std::mem::replace(&mut self.page, Page::new()));
            self.y = MARGIN;
        }
    }

    fn line(&mut self, s: &str, size: f32, bold: bool, fill: &'static str) {
        let lh = size * 1.45;
        self.need(lh);
        self.y += lh;
        self.page.text(MARGIN, self.y - size * 0.35, size, Anchor::Start, bold, fill, s);
    }

    fn paragraph(&mut self, s: &str, size: f32, bold: bool, indent: f32, first: &str) {
        for (i, l) in text::wrap(s, size, bold, CONTENT - indent).iter().enumerate() {
            let lh = size * 1.45;
            self.need(lh);
            self.y += lh;
            if i == 0 && !first.is_empty() {
                self.page.text(MARGIN, self.y - size * 0.35, size, Anchor::Start, bold, INK, first);
            }
            self.page.text(MARGIN + indent, self.y - size * 0.35, size, Anchor::Start, bold, INK, l);
        }
    }

    fn heading(&mut self, s: &str) {
        self.need(60.0); // a heading stays with what follows it
        self.y += 14.0;
        self.line(s, 14.0, true, INK);
        self.page.shapes.line((MARGIN, self.y + 2.0), (W - MARGIN, self.y + 2.0), "#dddddd", 1.0, None);
        self.y += 6.0;
    }

    fn finish(mut self, footer: &str) -> Vec<Page> {
        self.done.push(self.page);
        let total = self.done.len();
        for (i, p) in self.done.iter_mut().enumerate() {
            let label = format!("{footer} · page {} of {total}", i + 1);
            p.text(W / 2.0, H - 24.0, 8.0, Anchor::Middle, false, MUTED, &label);
        }
        self.done
    }
}

/// The pages as SVG documents.
pub fn pages(data: &ReportData) -> Vec<String> {
    layout(data).iter().map(Page::svg).collect()
}

fn layout(data: &ReportData) -> Vec<Page> {
    let mut p = Pages::new();
    p.line(&data.title(), 20.0, true, INK);
    p.line(&data.period_label(), 11.0, false, MUTED);
    p.line(&basis_line(data), 9.0, false, MUTED);
    if data.no_delivery() {
        p.y += 30.0;
        p.line("No delivery this week", 22.0, true, MUTED);
        p.y += 4.0;
        p.paragraph(&no_delivery_line(data), 11.0, false, 0.0, "");
    } else {
        week_over_week(&mut p, data);
        for chart in charts::all(data) {
            let h = CONTENT * charts::HEIGHT / charts::WIDTH;
            p.need(h + 10.0);
            p.page.shapes.nest(MARGIN, p.y + 5.0, CONTENT, h, &chart.svg);
            p.y += h + 10.0;
        }
    }
    p.heading("Alerts");
    if data.alerts.is_empty() {
        p.paragraph("No alerts this week.", 10.0, false, 0.0, "");
    }
    for a in &data.alerts {
        p.paragraph(&alert_line(a), 10.0, false, 12.0, "•");
    }
    p.heading("Summary");
    let blocks = markdown::blocks(&data.summary);
    if blocks.is_empty() {
        p.paragraph("No summary was written for this week.", 10.0, false, 0.0, "");
    }
    for b in blocks {
        match b {
            markdown::Block::Heading(t) => {
                p.y += 4.0;
                p.paragraph(&t, 11.0, true, 0.0, "");
            }
            markdown::Block::Bullet(t) => p.paragraph(&t, 10.0, false, 12.0, "•"),
            markdown::Block::Paragraph(t) => {
                p.paragraph(&t, 10.0, false, 0.0, "");
                p.y += 4.0;
            }
        }
    }
    p.finish(&format!("{} · {}", data.title(), data.period_label()))
}

fn week_over_week(p: &mut Pages, data: &ReportData) {
    p.heading("Week over week");
    // Right edges of the value columns.
    let cols = [MARGIN + 4.0, MARGIN + 290.0, MARGIN + 410.0, W - MARGIN - 4.0];
    let row = |p: &mut Pages, cells: [&str; 4], bold: bool, fill: [&'static str; 4]| {
        p.need(16.0);
        p.y += 16.0;
        let y = p.y - 4.5;
        p.page.text(cols[0], y, 9.5, Anchor::Start, bold, fill[0], cells[0]);
        for i in 1..4 {
            p.page.text(cols[i], y, 9.5, Anchor::End, bold, fill[i], cells[i]);
        }
    };
    row(p, HEADER, true, [INK; 4]);
    for block in table::blocks(data) {
        p.need(16.0 * 7.0);
        p.page.shapes.rect(MARGIN, p.y + 2.0, CONTENT, 15.0, "#f3f5f8");
        p.y += 16.0;
        p.page.text(cols[0], p.y - 4.5, 9.5, Anchor::Start, true, INK, &table::platform_name(&block.key));
        for r in table::rows(&block, &data.currency) {
            let change = match r.good {
                Some(true) => "#1a7f37",
                Some(false) => "#c62828",
                None => INK,
            };
            let [a, b, c, d] = &r.cells;
            row(p, [a, b, c, d], false, [INK, INK, INK, change]);
        }
    }
}

static FONTS: LazyLock<[Font; 2]> = LazyLock::new(|| {
    let font = |bytes: &'static [u8]| {
        let data: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(bytes);
        Font::new(Data::from(data), 0).expect("the shipped font loads")
    };
    [font(text::REGULAR), font(text::BOLD)]
});

/// One text run; its anchor resolved with the font's own advances (as the wrapping measures).
fn draw_text(surface: &mut Surface<'_>, t: &TextRun) {
    let width = text::width(&t.content, t.size, t.bold);
    let x = match t.anchor {
        Anchor::Start => t.x,
        Anchor::Middle => t.x - width / 2.0,
        Anchor::End => t.x - width,
    };
    surface.set_fill(Some(Fill {
        paint: hex_colour(t.fill).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }));
    let font = FONTS[usize::from(t.bold)].clone();
    surface.draw_text(Point::from_xy(x, t.y), font, t.size, &t.content, false, TextDirection::Auto);
}

/// `#rrggbb` (the page's own constants) as a colour; a malformed part reads as the ink's grey.
fn hex_colour(hex: &str) -> rgb::Color {
    let byte = |i: usize| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0x22);
    rgb::Color::new(byte(1), byte(3), byte(5))
}

/// The whole PDF.
pub fn document(data: &ReportData) -> Result<Vec<u8>, RenderError> {
    let mut doc = Document::new();
    for p in layout(data) {
        let tree = raster::tree(&p.shapes.finish(W, H))?;
        let mut page = doc.start_page_with(PageSettings::from_wh(W, H).ok_or_else(|| RenderError("page size".into()))?);
        let mut surface = page.surface();
        surface
            .draw_svg(
                &tree,
                Size::from_wh(W, H).ok_or_else(|| RenderError("page size".into()))?,
                SvgSettings::default(),
            )
            .ok_or_else(|| RenderError("svg page".into()))?;
        for t in &p.texts {
            draw_text(&mut surface, t);
        }
        surface.finish();
        page.finish();
    }
    let c = data.created_at;
    let created = DateTime::new(c.year() as u16)
        .month(c.month() as u8)
        .day(c.day() as u8)
        .hour(c.hour() as u8)
        .minute(c.minute() as u8)
        .second(c.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0);
    doc.set_metadata(
        Metadata::new()
            .title(format!("{} ({})", data.title(), data.period_label()))
            .creator("Switchboard".into())
            .language("en".into())
            .creation_date(created)
            .document_id(data.report_id.to_string()),
    );
    doc.finish().map_err(|e| RenderError(format!("pdf: {e:?}")))
}
