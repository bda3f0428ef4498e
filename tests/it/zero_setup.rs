//! The zero-setup start: the binary with no DATABASE_URL in an empty directory
//! creates and runs its own Postgres, serves, hands out an admin token (in a 0600
//! file, since stdout is not a terminal), lets a second command use the running
//! cluster, stops the cluster on SIGTERM, and keeps its data across a restart.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
    base: String,
}

/// A failing test still stops the service (and so its cluster) instead of leaking it.
impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env_remove("ENCRYPTION_KEY")
        .env_remove("DATA_DIR")
        .env("LOG_LEVEL", "warn");
    cmd
}

fn start(dir: &Path) -> Service {
    let port = free_port();
    let mut child = command(dir)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start switchboard");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Service { child, lines, base: format!("http://127.0.0.1:{port}") }
}

impl Service {
    /// Waits for `/readyz`, collecting what the service printed meanwhile.
    async fn ready(&mut self) -> Vec<String> {
        let client = crate::support::http_client();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("switchboard exited early with {status}");
            }
            if let Ok(res) = client.get(format!("{}/readyz", self.base)).send().await
                && res.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "not ready within 90 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.lines.try_iter().collect()
    }

    fn stop(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "switchboard exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "switchboard did not stop within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn is_jwt(s: &str) -> bool {
    s.split('.').count() == 3 && s.len() > 40 && !s.contains(' ')
}

async fn get(base: &str, path: &str, token: &str) -> u16 {
    crate::support::http_client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn starts_its_own_postgres_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // When tests run as root, the cluster runs as `postgres`, which must reach the directory.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut service = start(dir.path());
    let printed = service.ready().await;
    assert!(printed.iter().any(|l| l.contains("/docs")), "no Swagger UI URL printed: {printed:?}");
    // stdout is a pipe (as under a log collector): the admin token goes to a private file, never to stdout.
    assert!(
        !printed.iter().any(|l| l.split_whitespace().any(is_jwt)),
        "a token was printed to piped stdout: {printed:?}"
    );
    let token_file = dir.path().join(".data/bootstrap-admin-token");
    assert!(printed.iter().any(|l| l.contains("bootstrap-admin-token")), "the token file is not named: {printed:?}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token_file).expect("token file").permissions());
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    let admin = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    assert!(is_jwt(&admin), "{admin}");
    assert_eq!(get(&service.base, "/v1/tokens/current", &admin).await, 200);

    // A second command while the service runs uses the running cluster and prints only the token.
    let out = command(dir.path())
        .args(["token", "create", "--name", "script", "--scope", "clients:write", "--scope", "clients:read"])
        .output()
        .unwrap();
    assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "stdout must hold only the token: {stdout:?}");
    assert!(is_jwt(token), "{token}");
    let created = crate::support::http_client()
        .post(format!("{}/v1/clients", service.base))
        .header("X-API-Key", token)
        .json(&serde_json::json!({"name": "Survives Restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        get(&service.base, "/v1/clients/survives-restart", token).await,
        200,
        "the running service must still work"
    );

    service.stop();
    let pid_file = dir.path().join(".data/pg/data/postmaster.pid");
    assert!(!pid_file.exists(), "the embedded cluster is still running after shutdown");

    // Restart: same cluster, same data, same secret (old tokens still valid), no new admin token.
    let mut service = start(dir.path());
    let printed = service.ready().await;
    assert!(
        !printed.iter().any(|l| is_jwt(l) || l.contains("bootstrap-admin-token")),
        "a second admin token was made: {printed:?}"
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), admin, "the token file was rewritten");
    assert_eq!(get(&service.base, "/v1/clients/survives-restart", token).await, 200);
    service.stop();
    assert!(!pid_file.exists(), "the embedded cluster is still running after the second shutdown");
}
