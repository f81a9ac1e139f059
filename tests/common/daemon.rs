//! The daemon binary as tests drive it: started against a directory and a
//! store, its log read back, stopped with SIGTERM (or killed).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TestDb, binary};

/// A daemon process; killed if a test fails before stopping it.
pub struct Daemon {
    pub child: Child,
    log: std::path::PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(dir: &Path, db: &TestDb, grace_seconds: u32) -> Self {
        let fast = ["--rescan-seconds", "1", "--removal-delay-seconds", "1"];
        Self::start_with(dir, db, grace_seconds, &fast)
    }

    pub fn start_with(dir: &Path, db: &TestDb, grace_seconds: u32, extra: &[&str]) -> Self {
        // Not in the watched directory: the daemon's own writes are no events.
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("daemon.log");
        let child = Command::new(binary())
            .arg("daemon")
            .args(extra)
            .args(["--grace-seconds", &grace_seconds.to_string()])
            .arg("--dir")
            .arg(dir)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "offersync=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the daemon starts");
        Self {
            child,
            log,
            _log_dir: log_dir,
        }
    }

    /// A daemon serving its page and metrics on a free loopback port, and
    /// that port's address.
    pub async fn serving(dir: &Path, db: &TestDb) -> (Self, String) {
        let daemon = Self::start_with(
            dir,
            db,
            10,
            &["--rescan-seconds", "1", "--metrics-addr", "0"],
        );
        let addr = served_addr(&daemon).await;
        (daemon, addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Daemon {
    /// SIGKILL: the daemon dies without a word, as on a lost machine.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// How often this daemon has taken up a refresh request.
    pub fn refreshes_taken(&self) -> usize {
        self.log().matches("refresh requested").count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` gives `Some`, up to 30 s; the failure shows the log.
pub async fn eventually<T>(daemon: &Daemon, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\ndaemon log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn ready(daemon: &Daemon) {
    eventually(daemon, "the daemon is ready", || {
        daemon.log().contains("daemon ready").then_some(())
    })
    .await;
}

/// A plain HTTP/1.1 GET on loopback: (status line, body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let (head, body) = http_get_with_headers(addr, path);
    (head.lines().next().unwrap_or_default().to_string(), body)
}

/// A plain HTTP/1.1 GET on loopback: (status line and headers, body).
pub fn http_get_with_headers(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

/// The address the daemon logged it serves its page and metrics on.
pub async fn served_addr(daemon: &Daemon) -> String {
    eventually(daemon, "the metrics address is logged", || {
        let log = daemon.log();
        let line = log
            .lines()
            .find(|l| l.contains("serving /metrics"))?
            .to_string();
        let at = line.find("addr=")? + 5;
        Some(line[at..].split_whitespace().next()?.to_string())
    })
    .await
}
