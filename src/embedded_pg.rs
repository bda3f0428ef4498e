//! The zero-setup Postgres (docs/decisions/0006-embedded-postgres.md): with no `DATABASE_URL`, the service runs a
//! private cluster under `<data_dir>/pg` with the server binaries found on the
//! machine, reachable only through a Unix socket in a directory only its owner can
//! enter. PostgreSQL refuses to run as root, so as root every server command runs
//! as the `postgres` user. A second process (e.g. `token create`) finds the
//! cluster already running and uses it without taking ownership of it.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
};

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::Command;

/// The socket file name depends on the port; nothing listens on TCP.
const PORT: u16 = 5432;
const DATABASE: &str = "switchboard";
const SUPERUSER: &str = "postgres";
/// Unix socket paths are limited to 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;

pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    root: PathBuf,
    socket_dir: PathBuf,
    /// `Some("postgres")` when we are root and must drop privileges for the server.
    run_as: Option<String>,
    /// Whether this process started the cluster (and so must stop it).
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Locates the server binaries and lays out the directories under `data_dir/pg`.
    pub fn new(data_dir: &Path) -> Result<Self> {
        let bin_dir = find_bin_dir().ok_or_else(|| {
            anyhow!(
                "no PostgreSQL server binaries found (looked for initdb/pg_ctl on PATH, `pg_config --bindir`, \
                 /usr/lib/postgresql/*/bin). Install PostgreSQL (e.g. `apt-get install postgresql`) or set DATABASE_URL"
            )
        })?;
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let root = std::fs::canonicalize(data_dir)?.join("pg");
        let mut socket_dir = root.join("run");
        if socket_dir.as_os_str().len() + 16 > MAX_SOCKET_PATH {
            // Deep checkouts: keep the socket in a short private path instead.
            let tag = hex::encode(&sha2_digest(root.as_os_str().as_encoded_bytes())[..6]);
            socket_dir = std::env::temp_dir().join(format!("switchboard-pg-{tag}"));
        }
        let run_as = nix::unistd::geteuid().is_root().then(|| SUPERUSER.to_string());
        Ok(Self { bin_dir, root, socket_dir, run_as, started_here: false })
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// Connection string for the service database over the private socket.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE)
    }

    fn url_for(&self, database: &str) -> String {
        let host: String = self
            .socket_dir
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'/' | b'-' | b'_' | b'.' => (b as char).to_string(),
                b if b.is_ascii_alphanumeric() => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        format!("postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={host}")
    }

    /// Creates the cluster on first use, starts it unless it already runs, and
    /// makes sure the service database exists. Returns the connection string.
    pub async fn start(&mut self) -> Result<String> {
        self.prepare_dirs()?;
        if !self.data().join("PG_VERSION").exists() {
            tracing::info!(dir = %self.data().display(), "creating the local PostgreSQL cluster");
            let out = self
                .run(
                    "initdb",
                    &[
                        "-D",
                        &self.data().to_string_lossy(),
                        "-U",
                        SUPERUSER,
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ],
                )
                .await?;
            check(out, "initdb")?;
        }
        if self.is_running().await? {
            tracing::info!("using the local PostgreSQL cluster that is already running");
        } else {
            let options = format!(
                "-p {PORT} -c listen_addresses='' -c unix_socket_directories='{}' -c unix_socket_permissions=0700",
                self.socket_dir.display()
            );
            let out = self
                .run(
                    "pg_ctl",
                    &[
                        "-D",
                        &self.data().to_string_lossy(),
                        "-l",
                        &self.log_file().to_string_lossy(),
                        "-w",
                        "-t",
                        "60",
                        "-o",
                        &options,
                        "start",
                    ],
                )
                .await?;
            if !out.status.success() {
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                bail!(
                    "pg_ctl start failed: {}\nserver log ({}):\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    self.log_file().display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            self.started_here = true;
            tracing::info!(socket = %self.socket_dir.display(), "started the local PostgreSQL cluster");
        }
        self.ensure_database().await?;
        Ok(self.database_url())
    }

    /// Stops the cluster if this process started it.
    pub async fn stop(&mut self) -> Result<()> {
        if !self.started_here {
            return Ok(());
        }
        let out = self.run("pg_ctl", &["-D", &self.data().to_string_lossy(), "-m", "fast", "-w", "stop"]).await?;
        check(out, "pg_ctl stop")?;
        self.started_here = false;
        tracing::info!("stopped the local PostgreSQL cluster");
        Ok(())
    }

    pub async fn is_running(&self) -> Result<bool> {
        let out = self.run("pg_ctl", &["-D", &self.data().to_string_lossy(), "status"]).await?;
        Ok(out.status.success())
    }

    fn prepare_dirs(&self) -> Result<()> {
        for dir in [&self.root, &self.socket_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        if let Some(user) = &self.run_as {
            let pg = nix::unistd::User::from_name(user)?.ok_or_else(|| {
                anyhow!(
                    "running as root, and PostgreSQL refuses root, but there is no `{user}` user to run it as: \
                     install the postgresql package, run as a normal user, or set DATABASE_URL"
                )
            })?;
            for dir in [&self.root, &self.socket_dir] {
                nix::unistd::chown(dir, Some(pg.uid), Some(pg.gid))
                    .with_context(|| format!("giving {} to {user}", dir.display()))?;
            }
            if self.root.join("data").exists() {
                nix::unistd::chown(&self.root.join("data"), Some(pg.uid), Some(pg.gid))?;
            }
            // The postgres user must be able to walk down to the cluster directory.
            let reachable = std::process::Command::new("runuser")
                .args(["-u", user, "--", "test", "-w"])
                .arg(&self.root)
                .status()
                .context("running runuser")?;
            if !reachable.success() {
                bail!(
                    "the `{user}` user cannot reach {} (PostgreSQL refuses to run as root, so the cluster runs as \
                     `{user}`): make the parent directories traversable (chmod o+x) or set DATA_DIR elsewhere",
                    self.root.display()
                );
            }
        }
        Ok(())
    }

    async fn ensure_database(&self) -> Result<()> {
        use sqlx::{Connection, PgConnection};
        let mut conn = PgConnection::connect(&self.url_for("postgres"))
            .await
            .context("connecting to the local PostgreSQL cluster")?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            sqlx::query("CREATE DATABASE switchboard").execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Runs a server binary, as the `postgres` user when we are root.
    async fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let binary = self.bin_dir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        cmd.args(args).current_dir(&self.root).kill_on_drop(true);
        cmd.output().await.with_context(|| format!("running {}", binary.display()))
    }
}

fn check(out: Output, what: &str) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    )
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// `initdb`/`pg_ctl` on PATH, then `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                // Resolve symlinks (Debian links pg_ctl into /usr/local/bin) to the real bin dir.
                let real = std::fs::canonicalize(dir.join("initdb")).ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_points_at_the_socket_directory() {
        let pg = EmbeddedPostgres {
            bin_dir: PathBuf::from("/usr/bin"),
            root: PathBuf::from("/srv/sb/.data/pg"),
            socket_dir: PathBuf::from("/srv/sb/.data/pg/run"),
            run_as: None,
            started_here: false,
        };
        assert_eq!(pg.database_url(), "postgres://postgres@localhost:5432/switchboard?host=/srv/sb/.data/pg/run");
    }
}
