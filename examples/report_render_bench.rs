//! Report rendering benchmark (docs/PERFORMANCE.md "Report rendering"); run it
//! with `scripts/bench-report-render`.
//!
//! Renders the fixed sample report (`render::sample`) ROUNDS times in every form
//! a request or the weekly workflow asks for (HTML, PDF, each chart PNG) and
//! reports the time per form (median and worst) and the memory the rendering
//! added: peak RSS (VmHWM) over the RSS before the first rendering.
//! With `EXAMPLE_DIR` set it also writes the example shown in docs/WORKFLOWS.md
//! (the pages as PNG, and the PDF itself).

use std::time::{Duration, Instant};

use switchboard::render::{self, CHART_NAMES, sample};

fn status_kb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn timed(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let mut times = vec![];
    let mut bytes = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        bytes = f();
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() - 1], bytes)
}

/// One form of the report: renders it and answers its size in bytes.
type Render<'a> = Box<dyn Fn() -> usize + 'a>;

fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let data = sample::data();
    let rss_before = status_kb("VmRSS:");

    let first = Instant::now();
    let whole = render::pdf(&data).expect("pdf").len()
        + render::html(&data).len()
        + CHART_NAMES.iter().map(|n| render::chart_png(&data, n).unwrap().unwrap().len()).sum::<usize>();
    let first = first.elapsed();

    println!("report rendering, {rounds} rounds (the sample report: 2 platforms, 2 weeks, 1 alert)");
    println!("first complete rendering (fonts loaded): {first:.2?} ({whole} bytes)");
    let forms: Vec<(&str, Render)> = vec![
        ("html", Box::new(|| render::html(&data).len())),
        ("pdf", Box::new(|| render::pdf(&data).unwrap().len())),
        ("png daily-spend", Box::new(|| render::chart_png(&data, "daily-spend").unwrap().unwrap().len())),
        ("png conversions-cpa", Box::new(|| render::chart_png(&data, "conversions-cpa").unwrap().unwrap().len())),
        ("png roas", Box::new(|| render::chart_png(&data, "roas").unwrap().unwrap().len())),
    ];
    for (name, f) in &forms {
        let (median, worst, bytes) = timed(rounds, f);
        println!("{name:<22} median {median:>9.2?}  worst {worst:>9.2?}  {bytes:>7} bytes");
    }
    let peak = status_kb("VmHWM:");
    println!(
        "memory: RSS before {:.1} MB, peak {:.1} MB, added by rendering {:.1} MB",
        rss_before / 1024.0,
        peak / 1024.0,
        (peak - rss_before) / 1024.0
    );

    if let Ok(dir) = std::env::var("EXAMPLE_DIR") {
        let pages = render::page_pngs(&data, 1.5).expect("pages");
        for (i, png) in pages.iter().enumerate() {
            let path = format!("{dir}/report-example-page-{}.png", i + 1);
            std::fs::write(&path, png).expect("write the example");
            println!("wrote {path}");
        }
        let path = format!("{dir}/report-example.pdf");
        std::fs::write(&path, render::pdf(&data).expect("pdf")).expect("write the example");
        println!("wrote {path}");
    }
}
