//! Command line: `serve` (default), `migrate`, `token create`, `secrets rotate`, `openapi`,
//! `make-app`, `sim`.

use clap::{Parser, Subcommand};

use crate::{
    config::Config,
    domain::scope::Scope,
    server::{self, Database},
    store::audit::Actor,
    telemetry,
};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Automation backend for a marketing agency (REST API for Make.com).")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default). Without DATABASE_URL it runs its own Postgres under DATA_DIR.
    Serve {
        /// What this process does; run any number of each against one database.
        #[arg(long, value_enum, default_value = "all")]
        role: crate::server::Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the secrets stored in the database (sealed with ENCRYPTION_KEY).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Write the Make custom app (a Make Apps SDK local-development project) generated
    /// from the OpenAPI document into a directory; see docs/MAKE.md.
    MakeApp {
        /// The project directory (created if missing; its `origins` are kept).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Run the platform simulator alone (all six platforms on their real paths).
    Sim {
        #[arg(long, default_value_t = 9090)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Added to every answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Requests per second per platform before its throttling error (default: unlimited).
        #[arg(long)]
        rate_per_second: Option<f64>,
        /// Share of requests (0-1) answered with the platform's 5xx error.
        #[arg(long, default_value_t = 0.0)]
        fault_rate: f64,
        /// Where WhatsApp webhooks go (message statuses, customers writing in), e.g.
        /// http://127.0.0.1:8080/v1/inbound/whatsapp. Without it none are posted.
        #[arg(long)]
        webhook_url: Option<String>,
        /// The app secret WhatsApp webhooks are signed with (X-Hub-Signature-256); default
        /// WHATSAPP_APP_SECRET. Required with --webhook-url.
        #[arg(long)]
        whatsapp_app_secret: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print only the token on stdout (for scripts to capture).
    Create {
        /// What the token is for, e.g. `make-production`.
        #[arg(long)]
        name: String,
        /// A scope to grant; repeat for several (e.g. --scope clients:read --scope workflows:run), or `admin`.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// Lifetime such as 30d, 12h or 90m; without it the token does not expire.
        #[arg(long)]
        expires_in: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret with the current ENCRYPTION_KEY (after rotating it; see
    /// docs/OPERATIONS.md). Values sealed under ENCRYPTION_KEYS_OLD keys are moved; it can
    /// run while the service runs.
    Rotate,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve { role: crate::server::Role::All }) {
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&crate::api::openapi::document())?);
            Ok(())
        }
        Command::MakeApp { out } => {
            let (written, removed) = write_make_app(&out)?;
            println!("Make app: {written} files in {} ({removed} stale files removed)", out.display());
            Ok(())
        }
        Command::Sim { port, bind, latency_ms, rate_per_second, fault_rate, webhook_url, whatsapp_app_secret } => {
            let config = Config::load()?;
            let _guard = telemetry::init_logging(&config, false)?;
            let target = whatsapp_webhook(&config, webhook_url, whatsapp_app_secret)?;
            let behaviour = crate::sim::Behaviour { latency_ms, rate_per_second, fault_rate, timeout_rate: 0.0 };
            let running =
                crate::sim::spawn(std::net::SocketAddr::new(bind, port), crate::platforms::simulator(behaviour))
                    .await?;
            println!("Platform simulator on {} (stats: {}/_sim/stats)", running.base_url, running.base_url);
            for p in crate::platforms::REGISTRY {
                println!("  {:<13} {}{}", p.key, running.base_url, p.sim_prefix);
            }
            match &target {
                Some(t) => println!("  WhatsApp webhooks (signed) go to {}", t.url),
                None => println!("  WhatsApp webhooks: none (--webhook-url); customers writing in still open windows"),
            }
            running.state.vendor::<crate::sim::whatsapp::State>().connect_webhook(target);
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Command::Serve { role } => {
            let config = Config::load()?;
            let _guard = telemetry::init_logging(&config, false)?;
            server::serve(config, role).await
        }
        Command::Migrate => {
            let config = Config::load()?;
            let _guard = telemetry::init_logging(&config, true)?;
            let mut db = Database::open(&config).await?;
            let result = server::migrate(&db.pool).await;
            db.close().await?;
            result
        }
        Command::Secrets(SecretsCommand::Rotate) => {
            let config = Config::load()?;
            let _guard = telemetry::init_logging(&quiet(&config), true)?;
            let mut db = Database::open(&config).await?;
            let result = async {
                server::migrate(&db.pool).await?;
                let keys = server::key_ring(&config)?;
                let done = crate::reseal::run(&db.pool, &keys, true).await?;
                anyhow::Ok((keys.current_id().to_string(), done))
            }
            .await;
            db.close().await?;
            let (key_id, done) = result?;
            println!(
                "Re-sealed with key {key_id}: {} webhook signing secrets, {} endpoints' custom headers, {} stored responses.",
                done.webhook_secrets, done.webhook_headers, done.idempotent_responses
            );
            anyhow::ensure!(
                done.failed == 0,
                "{} values did not open with ENCRYPTION_KEY or ENCRYPTION_KEYS_OLD (see the log); keep the old keys until they do",
                done.failed
            );
            Ok(())
        }
        Command::Token(TokenCommand::Create { name, scopes, expires_in }) => {
            let config = Config::load()?;
            let _guard = telemetry::init_logging(&quiet(&config), true)?;
            let expires_at = expires_in
                .as_deref()
                .map(crate::api::tokens::expiry)
                .transpose()
                .map_err(|why| anyhow::anyhow!("--expires-in {why}"))?;
            let mut db = Database::open(&config).await?;
            let result = async {
                server::migrate(&db.pool).await?;
                let tokens = server::token_signer(&config)?;
                Ok::<_, anyhow::Error>(tokens.issue(&db.pool, &Actor::cli(), &name, &scopes, expires_at).await?)
            }
            .await;
            db.close().await?;
            println!("{}", result?.token);
            Ok(())
        }
    }
}

/// Where `sim` posts WhatsApp webhooks: `--webhook-url`, signed with `--whatsapp-app-secret`
/// (or `WHATSAPP_APP_SECRET`); a URL without a secret is refused (webhooks are always signed).
fn whatsapp_webhook(
    config: &Config,
    url: Option<String>,
    app_secret: Option<String>,
) -> anyhow::Result<Option<crate::sim::whatsapp::Target>> {
    let Some(url) = url else { return Ok(None) };
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--webhook-url must be an http(s) URL, e.g. http://127.0.0.1:8080/v1/inbound/whatsapp"
    );
    let app_secret = app_secret
        .or_else(|| crate::platforms::expose(&config.platforms.whatsapp.app_secret).map(String::from))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("--webhook-url needs --whatsapp-app-secret (or WHATSAPP_APP_SECRET) to sign with")
        })?;
    Ok(Some(crate::sim::whatsapp::Target { url, app_secret }))
}

/// The directories of a Make app project that the generator owns: files in them that
/// it no longer writes are removed, so a deleted operation leaves no module behind.
const MAKE_APP_DIRS: [&str; 5] = ["connections", "general", "modules", "rpcs", "webhooks"];

/// Generates the Make app into `out`, keeping the `origins` of an existing
/// `makecomapp.json` (they name the user's app in Make). Returns (written, removed).
pub fn write_make_app(out: &std::path::Path) -> anyhow::Result<(usize, usize)> {
    use anyhow::Context;
    let spec = serde_json::to_value(crate::api::openapi::document())?;
    let index = out.join("makecomapp.json");
    let origins = match std::fs::read_to_string(&index) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .with_context(|| format!("{} is not JSON", index.display()))?["origins"]
            .clone(),
        Err(_) => serde_json::Value::Null,
    };
    let origins = if origins.is_array() { origins } else { serde_json::json!([]) };
    let files = crate::make_app::generate(&spec, origins)?;
    let mut removed = 0;
    for dir in MAKE_APP_DIRS {
        for entry in walkdir(&out.join(dir)) {
            let relative = entry.strip_prefix(out)?.to_string_lossy().replace('\\', "/");
            if !files.contains_key(&relative) {
                std::fs::remove_file(&entry).with_context(|| format!("removing {}", entry.display()))?;
                removed += 1;
            }
        }
    }
    for (path, content) in &files {
        let path = out.join(path);
        std::fs::create_dir_all(path.parent().expect("a file has a directory"))?;
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    for dir in MAKE_APP_DIRS {
        remove_empty_dirs(&out.join(dir));
    }
    Ok((files.len(), removed))
}

/// Every file under `dir` (none when it does not exist).
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walkdir(&path)) } else { out.push(path) }
    }
    out
}

fn remove_empty_dirs(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            remove_empty_dirs(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir); // fails, as intended, when not empty
}

/// `token create` logs only warnings, so its stderr stays readable too.
fn quiet(config: &Config) -> Config {
    Config { log_level: "warn".into(), ..config.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_webhooks_need_an_http_url_and_a_secret() {
        let config = Config::default();
        let url = Some("http://127.0.0.1:8080/v1/inbound/whatsapp".to_string());
        assert!(whatsapp_webhook(&config, None, Some("s".into())).unwrap().is_none(), "no URL, no webhooks");
        let err = whatsapp_webhook(&config, url.clone(), None).unwrap_err().to_string();
        assert!(err.contains("--whatsapp-app-secret"), "{err}");
        let err = whatsapp_webhook(&config, Some("127.0.0.1:8080".into()), Some("s".into())).unwrap_err().to_string();
        assert!(err.contains("http(s)"), "{err}");
        let target = whatsapp_webhook(&config, url.clone(), Some("from-the-flag".into())).unwrap().unwrap();
        assert_eq!((target.url.as_str(), target.app_secret.as_str()), (url.as_deref().unwrap(), "from-the-flag"));
        // Without the flag, WHATSAPP_APP_SECRET signs.
        let mut config = Config::default();
        config.platforms.whatsapp.app_secret = Some("from-the-environment".into());
        assert_eq!(whatsapp_webhook(&config, url, None).unwrap().unwrap().app_secret, "from-the-environment");
    }

    #[test]
    fn sim_takes_the_webhook_flags() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "sim",
            "--webhook-url",
            "http://127.0.0.1:8080/v1/inbound/whatsapp",
            "--whatsapp-app-secret",
            "s",
        ])
        .unwrap();
        let Some(Command::Sim { webhook_url, whatsapp_app_secret, .. }) = cli.command else { panic!("sim") };
        assert_eq!(webhook_url.as_deref(), Some("http://127.0.0.1:8080/v1/inbound/whatsapp"));
        assert_eq!(whatsapp_app_secret.as_deref(), Some("s"));
    }
}
