//! The report as one self-contained HTML page: inline SVG charts, inline CSS
//! with print rules for A4, no script and no external URL. The markup is also
//! well-formed XML (tests parse it as such).

use std::fmt::Write;

use super::{
    ReportData, charts, markdown,
    svg::esc,
    table::{self, HEADER},
};

const CSS: &str = "
body { font-family: 'DejaVu Sans', Verdana, sans-serif; color: #222; margin: 0 auto; max-width: 860px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #666; margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 4px 8px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
tr.platform th { background: #f3f5f8; text-align: left; }
.good { color: #1a7f37; } .bad { color: #c62828; }
figure { margin: 16px 0; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; }
.empty { font-size: 22px; font-weight: bold; color: #666; margin: 32px 0 8px; }
.alert-critical { color: #c62828; } .alert-warning { color: #b26a00; }
@page { size: A4; margin: 15mm; }
@media print { body { max-width: none; padding: 0; } h2 { break-after: avoid; } }
";

pub fn page(data: &ReportData) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>{}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"meta\">{}</p>\n<p class=\"meta\">{}</p>\n",
        esc(&format!("{} ({})", data.title(), data.period_label())),
        esc(&data.title()),
        esc(&data.period_label()),
        esc(&super::pdf::basis_line(data)),
    );
    if data.no_delivery() {
        let _ = write!(
            h,
            "<p class=\"empty\">No delivery this week</p>\n<p>{}</p>\n",
            esc(&super::pdf::no_delivery_line(data))
        );
    } else {
        h.push_str("<h2>Week over week</h2>\n<table>\n<thead><tr>");
        for c in HEADER {
            let _ = write!(h, "<th>{c}</th>");
        }
        h.push_str("</tr></thead>\n");
        for block in table::blocks(data) {
            let _ = write!(
                h,
                "<tbody>\n<tr class=\"platform\"><th colspan=\"4\">{}</th></tr>\n",
                esc(&table::platform_name(&block.key))
            );
            for row in table::rows(&block, &data.currency) {
                let class = match row.good {
                    Some(true) => " class=\"good\"",
                    Some(false) => " class=\"bad\"",
                    None => "",
                };
                let [a, b, c, d] = row.cells.map(|s| esc(&s));
                let _ = writeln!(h, "<tr><td>{a}</td><td>{b}</td><td>{c}</td><td{class}>{d}</td></tr>");
            }
            h.push_str("</tbody>\n");
        }
        h.push_str("</table>\n<h2>Charts</h2>\n");
        for chart in charts::all(data) {
            let svg =
                chart.svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", esc(&chart.title)), 1);
            let _ = write!(h, "<figure id=\"{}\">\n{svg}</figure>\n", chart.name);
        }
    }
    h.push_str("<h2>Alerts</h2>\n");
    if data.alerts.is_empty() {
        h.push_str("<p>No alerts this week.</p>\n");
    } else {
        h.push_str("<ul>\n");
        for a in &data.alerts {
            let _ = writeln!(h, "<li class=\"alert-{}\">{}</li>", esc(&a.severity), esc(&super::pdf::alert_line(a)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Summary</h2>\n");
    let blocks = markdown::blocks(&data.summary);
    if blocks.is_empty() {
        h.push_str("<p>No summary was written for this week.</p>\n");
    }
    let mut in_list = false;
    for block in blocks {
        let bullet = matches!(block, markdown::Block::Bullet(_));
        if bullet && !in_list {
            h.push_str("<ul>\n");
        } else if !bullet && in_list {
            h.push_str("</ul>\n");
        }
        in_list = bullet;
        let _ = match block {
            markdown::Block::Heading(t) => writeln!(h, "<h3>{}</h3>", esc(&t)),
            markdown::Block::Bullet(t) => writeln!(h, "<li>{}</li>", esc(&t)),
            markdown::Block::Paragraph(t) => writeln!(h, "<p>{}</p>", esc(&t)),
        };
    }
    if in_list {
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}
