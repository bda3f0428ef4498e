//! Command line: `serve` (default), `migrate`, `token create`, `secrets rotate`, `openapi`.

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
        Command::Sim { port, bind, latency_ms, rate_per_second, fault_rate } => {
            let config = Config::load()?;
            let _guard = telemetry::init_logging(&config, false)?;
            let behaviour = crate::sim::Behaviour { latency_ms, rate_per_second, fault_rate, timeout_rate: 0.0 };
            let running =
                crate::sim::spawn(std::net::SocketAddr::new(bind, port), crate::platforms::simulator(behaviour))
                    .await?;
            println!("Platform simulator on {} (stats: {}/_sim/stats)", running.base_url, running.base_url);
            for p in crate::platforms::REGISTRY {
                println!("  {:<13} {}{}", p.key, running.base_url, p.sim_prefix);
            }
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
                "Re-sealed with key {key_id}: {} webhook signing secrets, {} stored responses.",
                done.webhook_secrets, done.idempotent_responses
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

/// `token create` logs only warnings, so its stderr stays readable too.
fn quiet(config: &Config) -> Config {
    Config { log_level: "warn".into(), ..config.clone() }
}
