//! Logs (pretty for people, JSON for machines; stdout and optionally a
//! size-rotated file) and the Prometheus metrics recorder.

use std::sync::OnceLock;

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
            LogFormat::Json => tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed(),
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
                LogFormat::Json => tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(writer).boxed(),
                LogFormat::Pretty => tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer).boxed(),
            };
            (Some(layer.with_filter(filter())), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stdout.with_filter(filter()))
        .with(file)
        .try_init()
        .ok(); // already set (tests build many apps in one process)
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
