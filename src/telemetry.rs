//! Logs (pretty for people, JSON for machines; stdout and optionally a
//! size-rotated file) and the Prometheus metrics recorder.

use std::{sync::OnceLock, time::Duration};

use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{Config, LogFormat};

/// Keeps the file writer flushing; drop it last.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Sets up logging. `RUST_LOG` overrides `LOG_LEVEL` when set. Commands whose
/// stdout scripts capture (e.g. `token create`) log to stderr instead.
pub fn init_logging(config: &Config, to_stderr: bool) -> anyhow::Result<LogGuard> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let stdout = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(true).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let stdout = if to_stderr {
        match config.log_format {
            LogFormat::Json => {
                tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed()
            }
            LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().with_writer(std::io::stderr).boxed(),
        }
    } else {
        stdout
    };
    let (file, guard) = match &config.log_file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let rotating = FileRotate::new(
                path,
                AppendCount::new(config.log_file_max_files),
                ContentLimit::BytesSurpassed(config.log_file_max_bytes),
                Compression::None,
                None,
            );
            let (writer, guard) = tracing_appender::non_blocking(rotating);
            let layer = match config.log_format {
                LogFormat::Json => {
                    tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(writer).boxed()
                }
                LogFormat::Pretty => tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer).boxed(),
            };
            (Some(layer.with_filter(filter())), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(stdout.with_filter(filter())).with(file).try_init().ok(); // already set (tests build many apps in one process)
    Ok(LogGuard(guard))
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist in tests; the handle still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// How often recorded histogram samples are folded into their buckets.
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds recorded histogram samples into their buckets every `every` until `stop`.
/// The recorder keeps each raw sample until then, and `/metrics` may never be
/// scraped (no Prometheus): without this, memory grows with every request.
pub async fn metrics_upkeep(handle: PrometheusHandle, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        alloc::{GlobalAlloc, Layout, System},
        sync::atomic::{AtomicIsize, Ordering},
    };

    use super::*;

    /// Counts the bytes this test process holds (nextest runs each test in its own process).
    struct Counting;
    static HELD: AtomicIsize = AtomicIsize::new(0);
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            unsafe { System.dealloc(ptr, layout) }
        }
    }
    #[global_allocator]
    static ALLOC: Counting = Counting;

    #[tokio::test]
    async fn the_upkeep_timer_frees_histogram_samples_without_a_scrape() {
        let handle = metrics_handle();
        let histogram = metrics::histogram!("upkeep_test_seconds", "route" => "/test");
        let before = HELD.load(Ordering::Relaxed);
        for i in 0..500_000 {
            histogram.record(i as f64 * 1e-6);
        }
        let grown = HELD.load(Ordering::Relaxed) - before;
        assert!(grown > 2_000_000, "500k samples should hold megabytes until upkeep, held {grown} bytes");

        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let timer = tokio::spawn(metrics_upkeep(handle, Duration::from_millis(20), stop));
        // Traffic goes on (a trickle); drained blocks are freed once the epoch moves on.
        for _ in 0..30 {
            (0..100).for_each(|_| histogram.record(0.001));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = HELD.load(Ordering::Relaxed) - before;
        assert!(left < grown / 10, "upkeep should free the samples: {grown} bytes before, {left} after");

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), timer).await.expect("the timer stops").unwrap();
    }
}
