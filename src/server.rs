//! Starting and stopping the service: the database (given or embedded), the
//! JWT secret, migrations, the first admin token, background upkeep, and a
//! graceful shutdown that drains requests and stops the embedded Postgres.

use std::{io::IsTerminal, net::SocketAddr, os::unix::fs::OpenOptionsExt, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};

use crate::{
    api,
    api::AppState,
    auth::Tokens,
    config::Config,
    crypto::{self, KeyRing},
    domain::{limits::LimitStore, scope::Scope},
    embedded_pg::EmbeddedPostgres,
    platforms::{Mode, Platforms},
    sim,
    store::{self, audit::Actor},
    workflows::{
        Runtime,
        engine::{Worker, WorkerSettings},
        scheduler,
    },
};

/// The database connection, and the embedded cluster when the service runs its own.
pub struct Database {
    pub pool: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (url, embedded) = match &config.database_url {
            Some(url) => (url.expose_secret().to_string(), None),
            None => {
                let mut pg = EmbeddedPostgres::new(&config.data_dir)?;
                let url = pg.start().await?;
                (url, Some(pg))
            }
        };
        let pool = match store::connect(&url, config.database_max_connections, config.statement_timeout()).await {
            Ok(pool) => pool,
            Err(e) => {
                if let Some(mut pg) = embedded {
                    pg.stop().await.ok();
                }
                return Err(e).context("connecting to the database (DATABASE_URL)");
            }
        };
        Ok(Self { pool, embedded })
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(&mut self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(pg) = &mut self.embedded {
            pg.stop().await?;
        }
        Ok(())
    }
}

/// Applies migrations on a connection of their own without `statement_timeout`
/// (a migration may rewrite a large table); the connection is closed afterwards.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    store::migrate(pool).await.context("applying migrations")
}

/// `JWT_SECRET`, or in zero-setup mode a generated one kept in `DATA_DIR/jwt_secret`.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.expose_secret().as_bytes().to_vec());
    }
    anyhow::ensure!(
        config.zero_setup(),
        "JWT_SECRET is required when DATABASE_URL is set (at least {} bytes; only the zero-setup mode generates one)",
        crate::config::MIN_JWT_SECRET_BYTES
    );
    Ok(local_secret(&config.data_dir, "jwt_secret")?.into_bytes())
}

/// A random secret generated once for this installation and kept (0600) in
/// `DATA_DIR/<name>`; the same value on every later start.
pub fn local_secret(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    let secret = read_or_create_private(&path, || {
        let mut bytes = [0u8; 48];
        rand::rng().fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    })?;
    anyhow::ensure!(secret.len() >= 32, "{} is too short; delete it to generate a new one", path.display());
    Ok(secret)
}

/// The content of `path`, or, when there is none yet, `make()` stored there (0600).
/// Safe when several processes start together on one `DATA_DIR` (roles of one
/// deployment): the file appears whole (written under a temporary name, then
/// hard-linked into place), and a process that loses the race reads the winner's.
fn read_or_create_private(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing.trim().to_string());
    }
    let value = make();
    let tmp = path.with_extension(format!("tmp-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    write_private(&tmp, &value)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(value),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_string())
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// `ENCRYPTION_KEY` (with `ENCRYPTION_KEYS_OLD`), or in zero-setup mode a generated key
/// kept in `DATA_DIR/encryption_key`.
pub fn key_ring(config: &Config) -> anyhow::Result<KeyRing> {
    let old = config.encryption_keys_old.as_ref().map(ExposeSecret::expose_secret);
    if let Some(key) = &config.encryption_key {
        return KeyRing::parse(key.expose_secret(), old).map_err(|why| anyhow::anyhow!(why));
    }
    anyhow::ensure!(
        config.zero_setup(),
        "ENCRYPTION_KEY is required when DATABASE_URL is set (base64 of 32 random bytes, e.g. `openssl rand -base64 32`; \
         every replica needs the same one; only the zero-setup mode generates one)"
    );
    let path = config.data_dir.join("encryption_key");
    let key = read_or_create_private(&path, crypto::generate_key)?;
    KeyRing::parse(&key, old).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(content.as_bytes())?;
    Ok(())
}

/// A new file only its owner can read (refuses to reuse an existing one).
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))
}

pub fn token_signer(config: &Config) -> anyhow::Result<Tokens> {
    Tokens::new(&jwt_secret(config)?, &config.jwt_audience, &config.jwt_issuer)
}

/// What a process does; any number of each can share one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// API, workers and scheduler in one process.
    All,
    /// The HTTP API only.
    Api,
    /// Runs workflow tasks only.
    Worker,
    /// Fires schedules only.
    Scheduler,
}

impl Role {
    fn api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
    fn worker(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
    fn scheduler(self) -> bool {
        matches!(self, Role::All | Role::Scheduler)
    }
}

pub async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    let mut db = Database::open(&config).await?;
    let result = run(&config, &db.pool, role).await;
    if let Err(e) = db.close().await {
        tracing::error!(error = %e, "stopping the database failed");
    }
    result
}

async fn run(config: &Config, pool: &PgPool, role: Role) -> anyhow::Result<()> {
    migrate(pool).await?;
    crate::prompts::seed_defaults(pool).await.context("seeding the default prompt templates")?;
    let keys = Arc::new(key_ring(config)?);
    seal_plaintext(pool, &keys).await?;
    // Every process on this database shares the vendors' limits and pauses (decision 0022).
    let limits: Arc<dyn LimitStore> = Arc::new(store::limits::PgLimits::new(pool.clone()));
    let (platforms, simulator) = platforms(config, limits).await?;
    let runtime = Runtime::new(pool.clone(), platforms).configured(config);
    let state = AppState::new(runtime.clone(), config.clone(), &jwt_secret(config)?, keys.clone())?;
    scheduler::seed_defaults(pool, &state.workflows).await?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut background = JoinSet::new();
    background.spawn(crate::costs::flush_every(
        pool.clone(),
        state.platforms.calls.clone(),
        crate::costs::FLUSH_EVERY,
        stop.clone(),
    ));
    // Every role records metrics; their samples are freed only by this timer (or a scrape).
    background.spawn(forget_idle_limits(pool.clone(), stop.clone()));
    background.spawn(crate::telemetry::metrics_upkeep(
        state.metrics.clone(),
        crate::telemetry::METRICS_UPKEEP_EVERY,
        stop.clone(),
    ));
    if role.worker() {
        let worker = Arc::new(Worker::new(runtime.clone(), WorkerSettings::from_config(config)));
        background.spawn(worker.run(stop.clone()));
        let deliverer = Arc::new(crate::events::delivery::Deliverer::new(
            pool.clone(),
            crate::events::delivery::DeliverySettings::from_config(config),
            keys.clone(),
        ));
        background.spawn(deliverer.run(stop.clone()));
    }
    if role.scheduler() {
        background.spawn(scheduler::run(
            runtime.clone(),
            Duration::from_secs(config.scheduler_tick_secs),
            stop.clone(),
        ));
        // Old rows go in small batches (docs/OPERATIONS.md "Retention").
        background.spawn(crate::retention::run(
            pool.clone(),
            crate::retention::RetentionSettings::from_config(config),
            stop.clone(),
        ));
    }
    let served = if role.api() {
        serve_http(config, &state, simulator.as_ref()).await
    } else {
        println!("Switchboard {role:?} running (no HTTP API in this role); Ctrl-C or SIGTERM stops it");
        shutdown_signal().await;
        Ok(())
    };
    let _ = stop_tx.send(true);
    // Workers finish their running tasks; anything left after the grace period is
    // picked up by another worker when its lease expires.
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, async { while background.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("background work did not stop within the grace period");
    }
    served
}

/// Seals secrets stored in plaintext before they were sealed (a no-op once done).
async fn seal_plaintext(pool: &PgPool, keys: &KeyRing) -> anyhow::Result<()> {
    let done = crate::reseal::run(pool, keys, false).await.context("sealing stored secrets")?;
    if done != crate::reseal::Resealed::default() {
        tracing::info!(
            webhook_secrets = done.webhook_secrets,
            idempotent_responses = done.idempotent_responses,
            failed = done.failed,
            "sealed secrets stored in plaintext"
        );
    }
    Ok(())
}

async fn serve_http(config: &Config, state: &AppState, simulator: Option<&sim::Running>) -> anyhow::Result<()> {
    let pool = &state.pool;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr).await.with_context(|| format!("listening on {addr} (BIND/PORT)"))?;
    let bound = listener.local_addr()?;
    let base = format!("http://{bound}");
    tracing::info!(%base, "listening");
    println!("Switchboard is listening on {base}");
    println!("Swagger UI: {base}/docs");
    if let Some(sim) = simulator {
        println!(
            "Platforms: sandbox (built-in simulator at {}; set credentials or PLATFORM_MODE=live for real ones)",
            sim.base_url
        );
        wire_simulator(&sim.state, bound, &state.platforms);
    }
    if store::tokens::count(pool).await? == 0 {
        bootstrap_token(config, state).await?;
    }

    let mut upkeep = JoinSet::new();
    spawn_upkeep(&mut upkeep, state);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let server = crate::http_server::serve(
        listener,
        api::app(state.clone()),
        crate::http_server::Limits::from_config(config),
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: draining in-flight requests");
            let _ = stopping_tx.send(true);
        },
    );
    // In-flight requests get `grace` to finish; idle keep-alive connections do not hold us up.
    let deadline = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        () = server => Ok(()),
        () = deadline => {
            tracing::warn!("grace period over; closing the remaining connections");
            Ok(())
        }
    };
    upkeep.abort_all();
    // Last-use times collected since the last flush are still worth keeping.
    let _ = tokio::time::timeout(Duration::from_secs(5), state.tokens.flush_last_used(&state.pool)).await;
    served
}

/// The first admin token. Shown only on an interactive terminal: piped stdout usually ends
/// up in a log collector, so otherwise it goes to a 0600 file and only its path is logged.
async fn bootstrap_token(config: &Config, state: &AppState) -> anyhow::Result<()> {
    use std::io::Write;
    let interactive = std::io::stdout().is_terminal();
    let path = config.data_dir.join(BOOTSTRAP_TOKEN_FILE);
    // Opened before the token exists, so a token is never issued that nobody can read.
    let file = if interactive {
        None
    } else {
        // No token exists, so a file left from an earlier database holds nothing valid.
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(anyhow::Error::new(e).context(format!("removing {}", path.display())));
        }
        Some(create_private(&path)?)
    };
    let issued = match state.tokens.issue(&state.pool, &Actor::cli(), "bootstrap-admin", &[Scope::Admin], None).await {
        Ok(issued) => issued,
        Err(e) => {
            if file.is_some() {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e.into());
        }
    };
    match file {
        None => {
            println!("No API token existed, so one admin token was created (shown once; keep it):\n{}", issued.token)
        }
        Some(mut file) => {
            file.write_all(format!("{}\n", issued.token).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(path = %path.display(), "no API token existed: one admin token was written to this file (mode 0600); store it safely and delete the file");
            println!(
                "No API token existed, so one admin token was written to {} (mode 0600); store it safely and delete the file",
                path.display()
            );
        }
    }
    Ok(())
}

/// Where the first admin token goes when stdout is not a terminal.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-admin-token";

/// The platform clients: live with the configured credentials, or sandbox against an
/// in-process simulator. Explicit `PLATFORM_MODE=live` refuses to start with missing settings.
/// Their limits and pauses are drawn from `limits`.
pub async fn platforms(
    config: &Config,
    limits: Arc<dyn LimitStore>,
) -> anyhow::Result<(Arc<Platforms>, Option<sim::Running>)> {
    let settings = &config.platforms;
    match settings.effective_mode() {
        Mode::Live => {
            if settings.mode == Some(Mode::Live) {
                settings.check_live().map_err(|e| anyhow::anyhow!(e))?;
            }
            warn_readiness(settings);
            Ok((Arc::new(Platforms::sharing(Mode::Live, settings.clone(), Arc::default(), limits)), None))
        }
        Mode::Sandbox => {
            let simulator = crate::platforms::simulator(sim::Behaviour::default());
            let sim = sim::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), simulator).await?;
            let mut sandboxed = settings.sandboxed(&sim.base_url);
            sandbox_webhook_secrets(&mut sandboxed.whatsapp, &config.data_dir)?;
            Ok((Arc::new(Platforms::sharing(Mode::Sandbox, sandboxed, Arc::default(), limits)), Some(sim)))
        }
    }
}

/// Points the sandbox simulator's WhatsApp webhooks at this service's own
/// `/v1/inbound/whatsapp` on `bound` (the HTTP listener's address), signed with the
/// installation's app secret: a customer played with `POST /_sim/whatsapp/inbound`, and the
/// statuses of every send, reach the service as Meta's would. Without an app secret nothing
/// is wired (the service would refuse every delivery).
pub fn wire_simulator(simulator: &sim::SimState, bound: SocketAddr, platforms: &Platforms) {
    let Some(app_secret) = crate::platforms::expose(&platforms.whatsapp.settings().app_secret) else {
        tracing::warn!("sandbox: no WhatsApp app secret, so the simulator posts no webhooks");
        return;
    };
    // Listening on every interface: the simulator, in this process, calls the loopback one.
    let host = match bound.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    let url = format!("http://{}/v1/inbound/whatsapp", SocketAddr::new(host, bound.port()));
    tracing::info!(%url, "sandbox: the simulator posts WhatsApp webhooks to the service");
    simulator
        .vendor::<sim::whatsapp::State>()
        .connect_webhook(Some(sim::whatsapp::Target { url, app_secret: app_secret.to_string() }));
}

/// Logs, at start-up, why a live platform is not ready and which API versions sunset soon.
fn warn_readiness(settings: &crate::platforms::PlatformSettings) {
    for (platform, readiness) in settings.versions(chrono::Utc::now().date_naive()) {
        for reason in readiness.not_ready.iter().chain(&readiness.warnings) {
            tracing::warn!(platform, "{reason}");
        }
    }
}

/// WhatsApp's inbound webhook secrets in sandbox mode, unless configured: generated per
/// installation under `DATA_DIR` (a fixed one would let anyone forge webhooks that start
/// runs). Says where they are and how to sign a test delivery, never the values.
fn sandbox_webhook_secrets(whatsapp: &mut crate::platforms::whatsapp::Settings, data_dir: &Path) -> anyhow::Result<()> {
    const APP_SECRET: &str = "whatsapp_sandbox_app_secret";
    const VERIFY_TOKEN: &str = "whatsapp_sandbox_verify_token";
    if whatsapp.app_secret.is_none() {
        whatsapp.app_secret = Some(local_secret(data_dir, APP_SECRET)?.into());
        let path = data_dir.join(APP_SECRET);
        println!(
            "WhatsApp sandbox: POST /v1/inbound/whatsapp needs `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` keyed with the secret in {} (or set WHATSAPP_APP_SECRET)",
            path.display()
        );
    }
    if whatsapp.verify_token.is_none() {
        whatsapp.verify_token = Some(local_secret(data_dir, VERIFY_TOKEN)?.into());
    }
    Ok(())
}

/// Periodic work: last-use flushes and following token revocations
/// from other replicas. (Expired idempotency keys go with retention, in the scheduler role.)
fn spawn_upkeep(set: &mut JoinSet<()>, state: &AppState) {
    let s = state.clone();
    set.spawn(async move { s.follow_changes().await });
    let s = state.clone();
    set.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(s.config.token_last_used_flush_secs.max(1)));
        loop {
            tick.tick().await;
            if let Err(e) = s.tokens.flush_last_used(&s.pool).await {
                tracing::warn!(error = %e, "recording token last use failed");
            }
        }
    });
}

/// Drops shared-limit rows whose bucket has been full for a while and pauses that are over
/// (a missing row is a full bucket), so keys used once (tokens, accounts) do not pile up.
async fn forget_idle_limits(pool: PgPool, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = store::limits::forget_idle(&pool, Duration::from_secs(600)).await {
                    tracing::warn!(error = %e, "forgetting idle shared limits failed");
                }
            }
            _ = stop.changed() => {}
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_database_needs_a_given_secret() {
        let config = Config { database_url: Some("postgres://db/x".into()), ..Config::default() };
        let err = jwt_secret(&config).unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn processes_starting_together_agree_on_one_generated_secret() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::sync::Barrier::new(8);
        let secrets: Vec<String> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        local_secret(dir.path(), "shared_secret").unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(secrets.iter().all(|s| *s == secrets[0]), "{secrets:?}");
        assert_eq!(std::fs::read_to_string(dir.path().join("shared_secret")).unwrap(), secrets[0]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[tokio::test]
    async fn sandbox_webhook_secrets_are_generated_per_installation() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let secret = |dir: &tempfile::TempDir| {
            let mut settings = crate::platforms::whatsapp::Settings::default();
            sandbox_webhook_secrets(&mut settings, dir.path()).unwrap();
            let expose =
                |s: Option<secrecy::SecretString>| secrecy::ExposeSecret::expose_secret(&s.unwrap()).to_string();
            (expose(settings.app_secret), expose(settings.verify_token))
        };
        let (app_secret, verify_token) = secret(&one);
        assert!(app_secret.len() >= 32 && verify_token.len() >= 32 && app_secret != verify_token);
        assert_eq!(secret(&one), (app_secret.clone(), verify_token), "kept across restarts");
        assert_ne!(secret(&two).0, app_secret, "each installation has its own");
        let mode = std::fs::metadata(one.path().join("whatsapp_sandbox_app_secret")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);

        // The sandbox the service builds uses them.
        let config = Config { data_dir: one.path().to_path_buf(), ..Config::default() };
        let (platforms, _sim) = platforms(&config, crate::limits::MemoryLimits::shared()).await.unwrap();
        let used = platforms
            .whatsapp
            .settings()
            .app_secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string());
        assert_eq!(used, Some(app_secret));
    }

    #[test]
    fn zero_setup_generates_a_secret_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        let first = jwt_secret(&config).unwrap();
        assert!(first.len() >= 32);
        assert_eq!(jwt_secret(&config).unwrap(), first);
        let mode = std::fs::metadata(dir.path().join("jwt_secret")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }

    #[test]
    fn a_given_database_needs_a_given_encryption_key() {
        let config = Config { database_url: Some("postgres://db/x".into()), ..Config::default() };
        let err = key_ring(&config).unwrap_err().to_string();
        assert!(err.contains("ENCRYPTION_KEY") && err.contains("openssl rand -base64 32"), "{err}");
    }

    #[test]
    fn zero_setup_generates_an_encryption_key_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        let sealed = key_ring(&config).unwrap().seal(b"secret", b"row");
        assert_eq!(key_ring(&config).unwrap().open(&sealed, b"row").unwrap(), b"secret");
        let mode = std::fs::metadata(dir.path().join("encryption_key")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }
}
