//! The shared limiter keeps a platform under its rate: many concurrent calls never
//! draw the platform's throttling error (measured with the simulator's stats).

use std::time::{Duration, Instant};

use switchboard::{
    platforms::clickup::{ClickUp, ListLocation, Settings},
    sim::Behaviour,
};

async fn simulator(rate_per_second: f64) -> switchboard::sim::Running {
    let state = switchboard::platforms::simulator(Behaviour::default());
    state.configure("clickup", Behaviour { rate_per_second: Some(rate_per_second), ..Behaviour::default() });
    switchboard::sim::spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap()
}

fn clickup(sim: &switchboard::sim::Running, rate: f64, burst: u32) -> ClickUp {
    let settings = Settings { rate_per_second: Some(rate), burst: Some(burst), ..Settings::default() }
        .sandboxed(&format!("{}/clickup", sim.base_url));
    let mut http = settings.http_settings();
    http.max_attempts = 1; // a throttled call must show up as an error, not be retried away
    ClickUp::with_http(&settings, http)
}

async fn fire(client: &ClickUp, n: usize) -> usize {
    let location = ListLocation::Space("90120000001".into());
    let calls = (0..n).map(|_| client.lists(&location));
    futures::future::join_all(calls).await.into_iter().filter(|r| r.is_err()).count()
}

#[tokio::test]
async fn concurrent_calls_stay_under_the_platform_limit() {
    // The platform allows 20/s (burst 20); we are configured for 15/s, burst 1.
    let sim = simulator(20.0).await;
    let client = clickup(&sim, 15.0, 1);
    let started = Instant::now();
    let failed = fire(&client, 45).await;
    let elapsed = started.elapsed();
    let stats = sim.state.stats().platforms["clickup"].clone();
    assert_eq!(failed, 0);
    assert_eq!(stats.calls, 45);
    assert_eq!(stats.throttled, 0, "the limiter let calls through faster than the platform allows");
    // 45 calls at 15/s with burst 1 take at least 44 intervals of 1/15 s.
    assert!(elapsed >= Duration::from_millis(2800), "{elapsed:?}: faster than the configured rate");
}

#[tokio::test]
async fn without_a_matching_limit_the_platform_throttles() {
    // The control: a limiter far above the platform's rate draws its throttling error.
    let sim = simulator(20.0).await;
    let client = clickup(&sim, 1000.0, 1000);
    let failed = fire(&client, 45).await;
    let stats = sim.state.stats().platforms["clickup"].clone();
    assert!(stats.throttled > 0 && failed > 0, "{stats:?}");
}
