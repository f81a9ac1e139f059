//! The daemon binary in a temp directory against a real Postgres and a mock
//! network on 127.0.0.1: files added, edited, broken and deleted; refresh
//! requests; SIGTERM in the middle of a run; two daemons on one database.
//! No test asserts a timing: each waits for an outcome, with a generous bound.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use offersync::store::{self, CampaignRecord, IntegrationStatus, RunRecord};

/// A daemon process; killed if a test fails before stopping it.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(dir: &Path, db: &TestDb, grace_seconds: u32) -> Self {
        let log = dir.join(format!("daemon-{}.log", rand_name()));
        let child = Command::new(binary())
            .args(["daemon", "--rescan-seconds", "1"])
            .args(["--grace-seconds", &grace_seconds.to_string()])
            .arg("--dir")
            .arg(dir)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "offersync=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the daemon starts");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    async fn stop(mut self) -> std::process::ExitStatus {
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

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_name() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// Waits until `check` gives `Some`, up to 30 s; the failure shows the log.
async fn eventually<T>(daemon: &Daemon, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
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

fn runs(db: &TestDb) -> Vec<RunRecord> {
    store::open(&db.url)
        .unwrap()
        .recent_runs("acme", 100)
        .unwrap()
}

fn campaigns(db: &TestDb) -> Vec<CampaignRecord> {
    store::open(&db.url).unwrap().campaigns("acme").unwrap()
}

fn status(db: &TestDb) -> Option<IntegrationStatus> {
    store::open(&db.url)
        .unwrap()
        .status()
        .unwrap()
        .into_iter()
        .find(|s| s.name == "acme")
}

fn succeeded(db: &TestDb) -> usize {
    runs(db).iter().filter(|r| r.status == "succeeded").count()
}

/// A manifest directory with the mock network and no integration yet.
async fn setup(offer_count: u32) -> (MockNetwork, Manifests, TestDb) {
    let mock = MockNetwork::start(offers(1..=offer_count), 10).await;
    let m = Manifests::new(&network_yaml(PAGE_PAGINATION, HEADER_AUTH), "");
    std::fs::remove_file(m.path().join("integration.yaml")).unwrap();
    (mock, m, TestDb::postgres())
}

fn integration_path(m: &Manifests) -> std::path::PathBuf {
    m.path().join("integration.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_edited_broken_and_deleted_drive_the_runs() {
    let (mock, m, db) = setup(12).await;
    let daemon = Daemon::start(m.path(), &db, 10);
    eventually(&daemon, "the daemon is ready", || {
        daemon.log().contains("daemon ready").then_some(())
    })
    .await;

    // Added: runs at once.
    std::fs::write(
        integration_path(&m),
        integration_yaml("acme", &mock.base_url(), ""),
    )
    .unwrap();
    eventually(&daemon, "the first run imports every offer", || {
        (campaigns(&db).len() == 12).then_some(())
    })
    .await;

    // Edited: runs again with the new spec.
    std::fs::write(
        integration_path(&m),
        integration_yaml("acme", &mock.base_url(), "  filters: {payout: {max: 10}}\n"),
    )
    .unwrap();
    eventually(&daemon, "a second run under the edited spec", || {
        let runs = runs(&db);
        (runs.len() >= 2 && runs[0].status == "succeeded" && runs[0].skipped == 4).then_some(())
    })
    .await;

    // Broken: reported, and the last good spec keeps running.
    std::fs::write(
        integration_path(&m),
        integration_yaml("acme", &mock.base_url(), "  filterz: {}\n"),
    )
    .unwrap();
    let problem = eventually(&daemon, "the broken manifest is reported", || {
        status(&db).and_then(|s| {
            s.attempted_spec_hash
                .is_some()
                .then(|| s.last_error.unwrap_or_default())
        })
    })
    .await;
    assert!(problem.contains("manifest invalid"), "{problem}");
    assert!(problem.contains("integration.yaml:"), "{problem}");
    assert!(daemon.log().contains("filterz"), "{}", daemon.log());
    let before = runs(&db).len();
    let refresh = Command::new(binary())
        .args(["refresh", "acme", "--wait", "30"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&refresh.stdout);
    assert_eq!(refresh.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    assert!(stdout.contains("run succeeded: run"), "{stdout}");
    let after = runs(&db);
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[0].trigger, "refresh");
    assert_eq!(
        after[0].skipped, 4,
        "the last good spec (max payout 10) ran"
    );

    // Deleted: the integration is retired and its campaigns paused.
    std::fs::remove_file(integration_path(&m)).unwrap();
    eventually(&daemon, "the campaigns are paused", || {
        let c = campaigns(&db);
        (!c.is_empty()
            && c.iter()
                .all(|c| c.status == "paused" && c.removed_at.is_some()))
        .then_some(())
    })
    .await;
    assert_eq!(status(&db).unwrap().state, "deleted");
    assert_eq!(
        campaigns(&db).len(),
        12,
        "nothing is deleted from the store"
    );

    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_exits_cleanly_and_keeps_nothing_of_the_run() {
    let (mock, m, db) = setup(25).await;
    mock.fail(1, Failure::Hang(Duration::from_secs(60)));
    let daemon = Daemon::start(m.path(), &db, 1);
    std::fs::write(
        integration_path(&m),
        integration_yaml("acme", &mock.base_url(), ""),
    )
    .unwrap();
    eventually(&daemon, "the run is fetching page 2", || {
        (mock.requests().len() >= 2).then_some(())
    })
    .await;
    let status = daemon.stop().await;
    assert!(status.success(), "exit 0 after SIGTERM: {status}");
    assert!(campaigns(&db).is_empty(), "page 1 was not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_database_run_each_change_and_refresh_once() {
    let (mock, m, db) = setup(5).await;
    let first = Daemon::start(m.path(), &db, 10);
    let second = Daemon::start(m.path(), &db, 10);
    for d in [&first, &second] {
        eventually(d, "both daemons are ready", || {
            d.log().contains("daemon ready").then_some(())
        })
        .await;
    }
    std::fs::write(
        integration_path(&m),
        integration_yaml("acme", &mock.base_url(), ""),
    )
    .unwrap();
    eventually(&first, "the new integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;

    let refresh = Command::new(binary())
        .args(["refresh", "acme", "--wait", "30"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(
        refresh.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&refresh.stdout)
    );
    // Both daemons have had several heartbeats to (wrongly) run again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = runs(&db);
    let triggers: Vec<&str> = runs.iter().map(|r| r.trigger.as_str()).collect();
    assert_eq!(
        triggers,
        ["refresh", "manifest"],
        "{}\n{}",
        first.log(),
        second.log()
    );

    assert!(first.stop().await.success());
    assert!(second.stop().await.success());
}

#[test]
fn a_scheduled_tick_is_claimed_once_on_either_backend() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = TestDb::new(backend);
        let tick = chrono::Utc::now();
        let mut a = store::open(&db.url).unwrap();
        let mut b = store::open(&db.url).unwrap();
        assert!(a.claim_tick("acme", tick, "host-a:1").unwrap());
        assert!(!b.claim_tick("acme", tick, "host-b:2").unwrap());
        assert!(
            b.claim_tick("acme", tick + chrono::TimeDelta::minutes(1), "host-b:2")
                .unwrap()
        );
    }
}

#[test]
fn refresh_of_an_unknown_integration_says_so() {
    let db = TestDb::postgres();
    let out = Command::new(binary())
        .args(["refresh", "nope"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("knows no integration `nope`"));
}
