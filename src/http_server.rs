//! The HTTP listener: hyper's HTTP/1.1 server with a header-read timeout and a cap
//! on open connections (slowloris), draining in-flight requests on shutdown.
//!
//! `axum::serve` exposes neither limit, so this is its accept loop with both added
//! (docs/decisions/0016-runtime-limits.md).

use std::{future::Future, io, pin::pin, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's complete headers must arrive within this, counted from when the
    /// connection is ready for the request (so idle keep-alive connections close too).
    pub header_read_timeout: Duration,
    /// Connections served at once. At the cap the loop stops accepting: further
    /// connections wait in the kernel's listen backlog until one closes.
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.http_header_read_timeout_secs),
            max_connections: config.http_max_connections,
        }
    }
}

/// Serves `app` until `shutdown` completes, then stops accepting, lets every
/// connection finish its in-flight request, and returns once all are closed.
/// The caller bounds that wait (the grace period).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Closed (receiver dropped) = shutting down; connections hold `done_rx` clones until they end.
    let (signal_tx, signal_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &permits) => accepted,
            () = signal_tx.closed() => break,
        };
        let (stream, permit) = accepted;
        let service = TowerToHyperService::new(app.clone());
        let signal_tx = signal_tx.clone();
        let done_rx = done_rx.clone();
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
            let mut conn = pin!(http.serve_connection(TokioIo::new(stream), service).with_upgrades());
            let mut stopping = pin!(signal_tx.closed());
            let mut asked_to_stop = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stopping, if !asked_to_stop => {
                        asked_to_stop = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop((permit, done_rx));
        });
    }
    drop((listener, done_rx));
    done_tx.closed().await;
}

/// Waits for a free connection slot, then for a connection.
async fn accept(listener: &TcpListener, permits: &Arc<Semaphore>) -> (TcpStream, OwnedSemaphorePermit) {
    let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (stream, permit),
            // Per-connection failures (reset before accept) are not the listener's problem.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) => {}
            // Out of file descriptors and the like: wait rather than spin (as axum::serve does).
            Err(e) => {
                tracing::error!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn start(
        limits: Limits,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "slow"
            }),
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(serve(listener, app, limits, async move {
            let _ = stop_rx.await;
        }));
        (addr, stop_tx, server)
    }

    async fn get_on(stream: &mut TcpStream, path: &str) -> String {
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_stalls_in_its_headers_is_disconnected() {
        let limits = Limits { header_read_timeout: Duration::from_secs(1), max_connections: 16 };
        let (addr, _stop, _server) = start(limits).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the stalled connection is still open after 5 s");
        let after = started.elapsed();
        assert!(after >= Duration::from_millis(900) && after < Duration::from_secs(3), "closed after {after:?}");
        // A prompt client on another connection is served normally.
        let mut prompt = TcpStream::connect(addr).await.unwrap();
        assert!(get_on(&mut prompt, "/").await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_for_a_free_slot() {
        let limits = Limits { header_read_timeout: Duration::from_secs(30), max_connections: 2 };
        let (addr, _stop, _server) = start(limits).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert!(get_on(&mut first, "/").await.starts_with("HTTP/1.1 200"));
        assert!(get_on(&mut second, "/").await.starts_with("HTTP/1.1 200"));

        // Both slots are held by open keep-alive connections: a third waits unanswered.
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 1024];
        let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
        assert!(early.is_err(), "a connection beyond the cap was served");

        // One closes: the waiting connection gets its slot and its answer.
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(3), third.read(&mut buf))
            .await
            .expect("served once a slot frees")
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn shutdown_lets_the_in_flight_request_finish_then_returns() {
        let limits = Limits { header_read_timeout: Duration::from_secs(30), max_connections: 16 };
        let (addr, stop, server) = start(limits).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        assert!(get_on(&mut idle, "/").await.starts_with("HTTP/1.1 200"));
        let mut busy = TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let mut buf = vec![0u8; 1024];
        let n = busy.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "the in-flight request was cut");
        tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .expect("serve returns once connections close")
            .unwrap();
        // New connections are no longer accepted.
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
