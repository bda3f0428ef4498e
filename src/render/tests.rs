//! Rendering tests on the fixed data set of `sample.rs`: the PDF read back as
//! text, the PNGs decoded, the HTML parsed as XML, the table's figures exact.

use super::{CHART_NAMES, chart_png, charts::TARGET_RGB, html, pdf, sample, table};

/// The page count and the text of a PDF, read back through its ToUnicode maps,
/// white space collapsed to single spaces.
fn pdf_text(bytes: &[u8]) -> (usize, String) {
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes).expect("a PDF whose text extracts");
    (pages.len(), pages.concat().split_whitespace().collect::<Vec<_>>().join(" "))
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn decode(bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = info.color_type.samples();
    let pixels = buf[..info.buffer_size()].chunks(step).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, pixels)
}

#[test]
fn golden_table_figures_are_exact() {
    let data = sample::data();
    let blocks = table::blocks(&data);
    assert_eq!(blocks.iter().map(|b| b.key.as_str()).collect::<Vec<_>>(), ["meta", "google_ads", "total"]);
    let cells = |i: usize| table::rows(&blocks[i], &data.currency).into_iter().map(|r| r.cells).collect::<Vec<_>>();
    assert_eq!(
        cells(0),
        [
            ["Spend", "R$ 700,00", "R$ 560,00", "▲ 25,0 %"],
            ["Impressions", "70.000", "63.000", "▲ 11,1 %"],
            ["Link clicks", "1.750", "1.400", "▲ 25,0 %"],
            ["Conversions", "21,0", "14,0", "▲ 50,0 %"],
            ["CPA", "R$ 33,33", "R$ 40,00", "▼ 16,7 %"],
            ["ROAS", "2,70×", "2,50×", "▲ 8,0 %"],
        ]
    );
    // Google Ads reports no link clicks: its clicks stand in.
    assert_eq!(cells(1)[2], ["Link clicks", "700", "840", "▼ 16,7 %"]);
    assert_eq!(cells(1)[4], ["CPA", "R$ 50,00", "R$ 25,00", "▲ 100,0 %"]);
    assert_eq!(
        cells(2),
        [
            ["Spend", "R$ 1.050,00", "R$ 910,00", "▲ 15,4 %"],
            ["Impressions", "84.000", "80.500", "▲ 4,3 %"],
            ["Link clicks", "2.450", "2.240", "▲ 9,4 %"],
            ["Conversions", "28,0", "28,0", "► 0,0 %"],
            ["CPA", "R$ 37,50", "R$ 32,50", "▲ 15,4 %"],
            ["ROAS", "2,80×", "2,62×", "▲ 7,1 %"],
        ]
    );
    // A CPA going up is bad news, conversions going up good news.
    let total = table::rows(&blocks[2], &data.currency);
    assert_eq!((total[4].good, total[1].good, total[0].good), (Some(false), Some(true), None));
}

#[test]
fn pdf_is_a4_with_the_clients_name_and_figures_as_text() {
    let bytes = pdf(&sample::data()).unwrap();
    let (pages, text) = pdf_text(&bytes);
    assert!((2..=4).contains(&pages), "{pages} pages");
    // The page's own text reads back as words (it is drawn as text runs), so a
    // client can search and copy it.
    for needle in ["Acme Coffee: weekly report", "R$ 1.050,00", "R$ 33,33", "▲ 15,4 %", "Week over week"] {
        assert!(text.contains(needle), "`{needle}` not in the PDF text:\n{text}");
    }
    // Chart labels are glyphs placed one by one (krilla-svg): present, read without spaces.
    assert!(squeeze(&text).contains(&squeeze("Target CPA")), "the chart legend is missing:\n{text}");
    let doc = pdf_extract::Document::load_mem(&bytes).unwrap();
    let first = *doc.get_pages().values().next().unwrap();
    let media_box = doc.get_dictionary(first).unwrap().get(b"MediaBox").unwrap().as_array().unwrap().clone();
    let size: Vec<f32> = media_box.iter().map(|v| v.as_float().unwrap()).collect();
    assert_eq!(size, [0.0, 0.0, 595.0, 842.0], "A4 in points");
}

#[test]
fn chart_pngs_decode_non_blank_with_the_target_line() {
    let data = sample::data();
    for name in CHART_NAMES {
        let (w, h, pixels) = decode(&chart_png(&data, name).unwrap().unwrap());
        assert_eq!((w, h), (1600, 720), "{name}");
        let mut colours = pixels.clone();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 20, "{name} looks blank: {} colours", colours.len());
        let target = pixels.iter().filter(|p| **p == TARGET_RGB).count();
        if name == "daily-spend" {
            assert_eq!(target, 0, "no target on the spend chart");
        } else {
            assert!(target > 500, "{name}: the target line's colour is missing ({target} pixels)");
        }
    }
    assert!(chart_png(&data, "pie").is_none());
}

#[test]
fn target_line_is_absent_without_a_target() {
    let data = super::ReportData { target_cpa: None, ..sample::data() };
    let (_, _, pixels) = decode(&chart_png(&data, "conversions-cpa").unwrap().unwrap());
    assert!(!pixels.contains(&TARGET_RGB));
}

#[test]
fn html_is_well_formed_and_self_contained() {
    let page = html(&sample::data());
    let doc = roxmltree::Document::parse_with_options(
        &page,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .expect("well-formed");
    let mut svgs = 0;
    for node in doc.descendants().filter(|n| n.is_element()) {
        let tag = node.tag_name().name();
        assert!(!matches!(tag, "script" | "link" | "img" | "iframe" | "object"), "<{tag}> in the page");
        svgs += usize::from(tag == "svg");
        for a in node.attributes() {
            if matches!(a.name(), "src" | "href") {
                assert!(!a.value().contains("://"), "{}={} loads from outside", a.name(), a.value());
            }
        }
    }
    assert_eq!(svgs, CHART_NAMES.len(), "one inline SVG per chart");
    assert!(!page.contains("url(http") && !page.contains("@import"));
    for needle in ["Acme Coffee: weekly report", "R$ 1.050,00", "▲ 15,4 %", "A strong week on Meta", "@page"] {
        assert!(page.contains(needle), "`{needle}` not in the page");
    }
}

#[test]
fn the_summary_cannot_inject_markup() {
    let data = super::ReportData { summary: "<script>alert(1)</script> & <img src=x>".into(), ..sample::data() };
    let page = html(&data);
    assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    assert!(pdf(&data).is_ok());
}

#[test]
fn an_empty_week_says_no_delivery() {
    let data = sample::empty();
    let (pages, text) = pdf_text(&pdf(&data).unwrap());
    assert_eq!(pages, 1);
    assert!(
        text.contains("No delivery this week")
            && text.contains("No spend and no impressions were recorded for Acme Coffee"),
        "{text}"
    );
    assert!(html(&data).contains("No delivery this week"));
    for name in CHART_NAMES {
        let (w, _, _) = decode(&chart_png(&data, name).unwrap().unwrap());
        assert_eq!(w, 1600);
    }
}

#[test]
fn same_data_same_bytes() {
    let data = sample::data();
    assert_eq!(pdf(&data).unwrap(), pdf(&data).unwrap());
    assert_eq!(html(&data), html(&data));
    assert_eq!(chart_png(&data, "roas").unwrap().unwrap(), chart_png(&data, "roas").unwrap().unwrap());
}
