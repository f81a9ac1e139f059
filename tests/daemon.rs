//! The daemon binary in a temp directory against a real Postgres and a mock
//! network on 127.0.0.1: files added, edited, broken and deleted; refresh
//! requests; SIGTERM in the middle of a run; two daemons on one database.
//! No test asserts a timing: each waits for an outcome, with a generous bound.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::*;
use common::*;
use offersync::store::{self, CampaignRecord, IntegrationStatus, RunRecord};

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

/// Writes the `acme` integration against the mock, with `extra` settings.
fn write_integration(m: &Manifests, mock: &MockNetwork, extra: &str) {
    std::fs::write(
        integration_path(m),
        integration_yaml("acme", &mock.base_url(), extra),
    )
    .unwrap();
}

/// The `acme` integration scheduled every minute.
fn write_every_minute_integration(m: &Manifests, mock: &MockNetwork) {
    let every_minute =
        integration_yaml("acme", &mock.base_url(), "").replace(QUIET_SCHEDULE, "* * * * *");
    std::fs::write(integration_path(m), every_minute).unwrap();
}

/// The runs, newest first, had exactly these triggers: nothing ran twice.
fn assert_one_run_each<const N: usize>(db: &TestDb, triggers: [&str; N], daemons: [&Daemon; 2]) {
    let found: Vec<String> = runs(db).into_iter().map(|r| r.trigger).collect();
    assert_eq!(
        found,
        triggers,
        "{}\n{}",
        daemons[0].log(),
        daemons[1].log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_edited_broken_and_deleted_drive_the_runs() {
    let (mock, m, db) = setup(12).await;
    let daemon = Daemon::start_with(
        m.path(),
        &db,
        10,
        &[
            "--rescan-seconds",
            "1",
            "--removal-delay-seconds",
            "1",
            "--metrics-addr",
            "0",
        ],
    );
    let page = served_addr(&daemon).await;
    ready(&daemon).await;

    // Added: runs at once.
    write_integration(&m, &mock, "");
    eventually(&daemon, "the first run imports every offer", || {
        (campaigns(&db).len() == 12).then_some(())
    })
    .await;

    // Edited: runs again with the new spec.
    write_integration(&m, &mock, "  filters: {payout: {max: 10}}\n");
    eventually(&daemon, "a second run under the edited spec", || {
        let runs = runs(&db);
        (runs.len() >= 2 && runs[0].status == "succeeded" && runs[0].skipped == 4).then_some(())
    })
    .await;

    // Broken: reported, and the last good spec keeps running.
    write_integration(&m, &mock, "  filterz: {}\n");
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
    let refresh = refresh_and_wait(&db);
    let stdout = String::from_utf8_lossy(&refresh.stdout);
    assert_eq!(refresh.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    assert!(
        stdout.contains("ran as run") && stdout.contains(", which succeeded"),
        "{stdout}"
    );
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
    // The retirement is in the change feed, as no run's: each live campaign
    // removed, its status paused.
    let retired: Vec<_> = store::open(&db.url)
        .unwrap()
        .changes(0, Some("acme"), 1000)
        .unwrap()
        .into_iter()
        .filter(|c| c.run_id.is_none())
        .collect();
    assert!(!retired.is_empty());
    assert!(retired.iter().all(|c| c.kind == store::ChangeKind::Removed
        && c.status == "paused"
        && c.columns.iter().any(|f| f.column == "removed_at")));

    // Put back: delete is final. The file is refused with a diagnostic,
    // logged once; the integration stays deleted, nothing runs, and its
    // campaigns stay paused (issue 25.6).
    let runs_before = runs(&db).len();
    write_integration(&m, &mock, "  filters: {payout: {max: 10}}\n");
    let refusal = "integration `acme` was deleted (its manifest was removed and the integration retired); this file does not bring it back";
    eventually(&daemon, "the re-added file is refused", || {
        daemon.log().contains(refusal).then_some(())
    })
    .await;
    two_rescans(&daemon).await;
    two_rescans(&daemon).await;
    let log = daemon.log();
    assert_eq!(log.matches(refusal).count(), 1, "logged once: {log}");
    assert!(log.contains("integration.yaml:3:"), "{log}");
    assert!(log.contains("offersync undelete acme"), "{log}");
    assert_eq!(log.matches("integration added").count(), 1, "{log}");
    assert_eq!(runs(&db).len(), runs_before, "no run: {log}");
    let stored = status(&db).unwrap();
    assert_eq!(stored.state, "deleted");
    let error = stored.last_error.unwrap_or_default();
    assert!(error.contains("offersync undelete acme"), "{error}");
    assert!(
        campaigns(&db)
            .iter()
            .all(|c| c.status == "paused" && c.removed_at.is_some())
    );
    // The status page shows it deleted, with the message.
    let (head, body) = http_get(&page, "/integrations/acme");
    assert!(head.contains("200"), "{head}");
    assert!(body.contains(">deleted<"), "{body}");
    assert!(body.contains("offersync undelete acme"), "{body}");

    // Undeleted: the daemon takes the file up and the run restores the
    // campaigns whose offers it sees (payout max 10: 8 of the 12).
    let out = Command::new(binary())
        .args(["undelete", "acme", "--dir"])
        .arg(m.path())
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        &daemon,
        "the undeleted integration runs and restores",
        || {
            let c = campaigns(&db);
            let active = c.iter().filter(|c| c.status == "active").count();
            (active == 8 && status(&db)?.state == "active").then_some(())
        },
    )
    .await;
    assert_eq!(runs(&db)[0].restored, 8);
    assert!(daemon.log().contains("manifest has no errors any more"));

    assert!(daemon.stop().await.success());
}

fn rescans(daemon: &Daemon) -> usize {
    daemon
        .log()
        .matches("rescanning the manifest directory")
        .count()
}

/// Waits for the daemon to read the directory twice more (so at least once
/// after whatever the test just did).
async fn two_rescans(daemon: &Daemon) {
    let target = rescans(daemon) + 2;
    eventually(daemon, "two more rescans", || {
        (rescans(daemon) >= target).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_moved_or_gone_briefly_changes_nothing_and_one_deleted_while_stopped_is_retired()
{
    let (mock, m, db) = setup(5).await;
    write_integration(&m, &mock, "");
    // A removal delay far longer than the test takes to bring files back.
    let slow_removal = ["--rescan-seconds", "1", "--removal-delay-seconds", "600"];
    let daemon = Daemon::start_with(m.path(), &db, 10, &slow_removal);
    eventually(&daemon, "the first run", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;

    // A change to its network's file is a change to the integration.
    let network_file = m.path().join("networks/mocknet.yaml");
    let mut network = std::fs::read_to_string(&network_file).unwrap();
    network.push_str("# reviewed\n");
    std::fs::write(&network_file, network).unwrap();
    eventually(&daemon, "the changed network runs", || {
        (succeeded(&db) == 2).then_some(())
    })
    .await;
    assert_eq!(runs(&db)[0].trigger, "manifest");

    // A rotated secret is used by the next run, without a run of its own.
    std::fs::write(m.path().join("secrets/api.key"), "sk-rotated-2").unwrap();
    two_rescans(&daemon).await;
    assert_eq!(succeeded(&db), 2);
    request_refresh(&db);
    eventually(&daemon, "the refresh runs", || {
        (succeeded(&db) == 3).then_some(())
    })
    .await;
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        last.headers.get("x-api-key").map(String::as_str),
        Some("sk-rotated-2")
    );

    // Moved to another file: the same integration, now read from there; an
    // error in it is reported against it, and the last good spec kept.
    let moved = m.path().join("acme.yaml");
    std::fs::rename(integration_path(&m), &moved).unwrap();
    two_rescans(&daemon).await;
    std::fs::write(
        &moved,
        integration_yaml("acme", &mock.base_url(), "  filterz: {}\n"),
    )
    .unwrap();
    let problem = eventually(&daemon, "the broken manifest is reported", || {
        status(&db).and_then(|s| s.last_error)
    })
    .await;
    assert!(problem.contains("acme.yaml:"), "{problem}");
    assert!(!problem.contains("no longer defines"), "{problem}");
    std::fs::write(&moved, integration_yaml("acme", &mock.base_url(), "")).unwrap();
    eventually(&daemon, "the fixed manifest clears the error", || {
        status(&db)
            .is_some_and(|s| s.last_error.is_none())
            .then_some(())
    })
    .await;

    // Deleted, and back before the removal delay: nothing happens.
    std::fs::remove_file(&moved).unwrap();
    eventually(&daemon, "the deletion is noticed", || {
        daemon.log().contains("manifest gone").then_some(())
    })
    .await;
    std::fs::write(&moved, integration_yaml("acme", &mock.base_url(), "")).unwrap();
    eventually(&daemon, "the manifest is back", || {
        daemon.log().contains("manifest back").then_some(())
    })
    .await;

    // The whole directory gone for a moment, as during a deploy: nothing
    // changes either.
    let aside = m.path().with_extension("aside");
    std::fs::rename(m.path(), &aside).unwrap();
    eventually(&daemon, "the missing directory is noticed", || {
        daemon
            .log()
            .contains("the manifest directory is gone")
            .then_some(())
    })
    .await;
    std::fs::rename(&aside, m.path()).unwrap();
    two_rescans(&daemon).await;
    assert_eq!(status(&db).unwrap().state, "active");
    assert!(campaigns(&db).iter().all(|c| c.status == "active"));
    assert_eq!(runs(&db).len(), 3, "nothing ran again:\n{}", daemon.log());
    assert!(
        !daemon.log().contains("manifest deleted"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop().await.success());

    // Deleted while no daemon runs: the next daemon retires it.
    std::fs::remove_file(&moved).unwrap();
    let daemon = Daemon::start(m.path(), &db, 10);
    eventually(&daemon, "the campaigns are paused", || {
        let c = campaigns(&db);
        (c.len() == 5 && c.iter().all(|c| c.status == "paused")).then_some(())
    })
    .await;
    assert_eq!(status(&db).unwrap().state, "deleted");
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_on_a_broken_manifest_runs_the_spec_last_applied() {
    let (mock, m, db) = setup(12).await;
    let good = integration_yaml("acme", &mock.base_url(), "  filters: {payout: {max: 10}}\n");
    std::fs::write(integration_path(&m), &good).unwrap();
    let daemon = Daemon::start(m.path(), &db, 10);
    eventually(&daemon, "the first run", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());

    // Broken while no daemon ran.
    write_integration(&m, &mock, "  filterz: {}\n");
    let daemon = Daemon::start(m.path(), &db, 10);
    let problem = eventually(&daemon, "the broken manifest is reported", || {
        status(&db).and_then(|s| s.last_error)
    })
    .await;
    assert!(problem.contains("integration.yaml:"), "{problem}");
    assert!(problem.contains("filterz"), "{problem}");
    assert!(
        daemon
            .log()
            .contains("running the spec it was last applied with"),
        "{}",
        daemon.log()
    );
    let refresh = refresh_and_wait(&db);
    assert_eq!(refresh.status.code(), Some(0), "{}", daemon.log());
    let last = &runs(&db)[0];
    assert_eq!(
        (last.trigger.as_str(), last.status.as_str()),
        ("refresh", "succeeded")
    );
    assert_eq!(last.skipped, 4, "the last applied spec (max payout 10) ran");
    assert_eq!(status(&db).unwrap().state, "active");

    // Fixed as it was: the same spec, nothing to run.
    std::fs::write(integration_path(&m), &good).unwrap();
    eventually(&daemon, "the error is cleared", || {
        status(&db)
            .is_some_and(|s| s.last_error.is_none())
            .then_some(())
    })
    .await;
    assert_eq!(runs(&db).len(), 2);
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_exits_cleanly_and_keeps_nothing_of_the_run() {
    let (mock, m, db) = setup(25).await;
    mock.fail(1, Failure::Hang(Duration::from_secs(60)));
    let daemon = Daemon::start(m.path(), &db, 1);
    write_integration(&m, &mock, "");
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
        ready(d).await;
    }
    write_integration(&m, &mock, "");
    eventually(&first, "the new integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;

    let refresh = refresh_and_wait(&db);
    assert_eq!(
        refresh.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&refresh.stdout)
    );
    // Both daemons have had several heartbeats to (wrongly) run again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_one_run_each(&db, ["refresh", "manifest"], [&first, &second]);

    assert!(first.stop().await.success());
    assert!(second.stop().await.success());
}

#[test]
fn a_scheduled_tick_is_claimed_once_and_recoverable_on_either_backend() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = TestDb::new(backend);
        // Ticks are whole minutes; whole seconds keep both backends exact here.
        let tick = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap();
        let mut a = store::open(&db.url).unwrap();
        let mut b = store::open(&db.url).unwrap();
        let next = tick + chrono::TimeDelta::minutes(1);
        assert!(a.claim_tick("acme", tick, "host-a:1").unwrap());
        assert!(!b.claim_tick("acme", tick, "host-b:2").unwrap());
        assert!(b.claim_tick("acme", next, "host-b:2").unwrap());
        b.finish_tick("acme", next).unwrap();

        // While a renews its claim, nobody takes it over.
        let a_renewed_at = chrono::Utc::now();
        a.keep_claims("host-a:1").unwrap();
        assert!(
            b.reclaim_ticks("host-b:2", a_renewed_at)
                .unwrap()
                .is_empty()
        );
        // a stops renewing (it died): once its claim is stale, one daemon
        // takes it over; the finished tick is never taken.
        let later = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
        assert_eq!(
            b.reclaim_ticks("host-b:2", later).unwrap(),
            [("acme".to_string(), tick)]
        );
        assert!(
            a.reclaim_ticks("host-a:1", a_renewed_at)
                .unwrap()
                .is_empty()
        );

        // Finished claims are pruned; unfinished ones are kept.
        b.finish_tick("acme", tick).unwrap();
        assert!(
            b.claim_tick("acme", next + chrono::TimeDelta::minutes(1), "host-b:2")
                .unwrap()
        );
        assert_eq!(
            b.prune_ticks(next + chrono::TimeDelta::hours(1)).unwrap(),
            2
        );
        assert!(
            !b.claim_tick("acme", next + chrono::TimeDelta::minutes(1), "host-a:1")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_on_sqlite_runs_refreshes_and_a_second_is_refused() {
    let (mock, m, _) = setup(5).await;
    let db = TestDb::new(Backend::Sqlite);
    write_integration(&m, &mock, "");
    let daemon = Daemon::start(m.path(), &db, 10);
    eventually(&daemon, "the integration runs on SQLite", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;

    let second = Command::new(binary())
        .args(["daemon", "--dir"])
        .arg(m.path())
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another daemon already uses the SQLite store"),
        "{stderr}"
    );
    assert!(stderr.contains("use Postgres"), "{stderr}");

    let refresh = refresh_and_wait(&db);
    assert_eq!(refresh.status.code(), Some(0), "{}", daemon.log());
    assert_eq!(runs(&db)[0].trigger, "refresh");
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_are_served_on_loopback() {
    let (mock, m, db) = setup(5).await;
    write_integration(&m, &mock, "  filters: {payout: {max: 5}}\n");
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    eventually(&daemon, "the run is counted", || {
        let (_, body) = http_get(&addr, "/metrics");
        body.contains("offersync_runs_total{integration=\"acme\",result=\"succeeded\"} 1")
            .then_some(())
    })
    .await;
    let (status, body) = http_get(&addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    for line in [
        "offersync_offers_total{action=\"created\"} 3",
        "offersync_offers_skipped_total{reason=\"payout_above_max\"} 2",
        "offersync_run_duration_seconds_count 1",
        "offersync_integration_failing{integration=\"acme\"} 0",
        "offersync_last_success_timestamp_seconds{integration=\"acme\"}",
        "offersync_integrations 1",
    ] {
        assert!(body.contains(line), "missing {line:?}:\n{body}");
    }
    let (status, body) = http_get(&addr, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");
    // Finished runs are reaped: nothing is in flight on an idle daemon.
    eventually(&daemon, "no run in flight", || {
        let (_, body) = http_get(&addr, "/metrics");
        body.contains("offersync_runs_in_flight 0\n").then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());
}

/// The value of the series `series` (name and labels, exactly) in `body`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Issue 27.6: an integration that never succeeded had no
/// `offersync_last_success_timestamp_seconds`; nothing said which
/// integrations fail; no `process_*` metrics. Now every scheduled
/// integration has its last success (0: never), whether it fails and how
/// many times in a row, from the store after a restart; a deleted
/// manifest's integration has no series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_say_which_integrations_fail_and_which_never_succeeded() {
    let (mock, m, db) = setup(5).await;
    let refusing = MockNetwork::start(offers(1..=5), 10).await;
    refusing.fail(
        0,
        Failure::Status {
            status: 401,
            times: 1_000,
        },
    );
    write_integration(&m, &mock, "");
    m.set_other_integration(&integration_yaml("globex", &refusing.base_url(), ""));
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    let metrics = || http_get(&addr, "/metrics").1;
    let body = eventually(&daemon, "both have run", || {
        let body = metrics();
        (sample(
            &body,
            "offersync_runs_total{integration=\"acme\",result=\"succeeded\"}",
        ) == Some(1.0)
            && sample(
                &body,
                "offersync_runs_total{integration=\"globex\",result=\"failed\"}",
            ) >= Some(1.0))
        .then_some(body)
    })
    .await;
    let last_success = |body: &str, name: &str| {
        sample(
            body,
            &format!("offersync_last_success_timestamp_seconds{{integration=\"{name}\"}}"),
        )
    };
    let failing = |body: &str, name: &str| {
        sample(
            body,
            &format!("offersync_integration_failing{{integration=\"{name}\"}}"),
        )
    };
    let in_a_row = |body: &str, name: &str| {
        sample(
            body,
            &format!("offersync_integration_consecutive_failures{{integration=\"{name}\"}}"),
        )
    };
    let now = chrono::Utc::now().timestamp() as f64;
    let acme_success = last_success(&body, "acme").unwrap();
    assert!((now - 120.0..=now + 1.0).contains(&acme_success), "{body}");
    assert_eq!(last_success(&body, "globex"), Some(0.0), "{body}");
    assert_eq!(failing(&body, "acme"), Some(0.0), "{body}");
    assert_eq!(failing(&body, "globex"), Some(1.0), "{body}");
    assert_eq!(in_a_row(&body, "globex"), Some(1.0), "{body}");
    // The process, as every Prometheus client reports it.
    let started = sample(&body, "process_start_time_seconds").unwrap();
    assert!((now - 300.0..=now + 1.0).contains(&started), "{body}");
    assert!(
        sample(&body, "process_resident_memory_bytes").unwrap() > 1e6,
        "{body}"
    );
    assert!(
        sample(&body, "process_cpu_seconds_total").unwrap() > 0.0,
        "{body}"
    );
    assert!(sample(&body, "process_open_fds").unwrap() >= 3.0, "{body}");
    assert!(sample(&body, "process_max_fds").unwrap() >= 64.0, "{body}");
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter"),
        "{body}"
    );
    assert!(daemon.stop().await.success());

    // A restart starts from the store: still failing, acme's last success
    // as it was, before any run.
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    let metrics = || http_get(&addr, "/metrics").1;
    let body = eventually(&daemon, "the integrations are scheduled", || {
        let body = metrics();
        body.contains("offersync_integrations 2").then_some(body)
    })
    .await;
    assert_eq!(last_success(&body, "acme"), Some(acme_success), "{body}");
    assert_eq!(last_success(&body, "globex"), Some(0.0), "{body}");
    assert_eq!(failing(&body, "globex"), Some(1.0), "{body}");
    assert_eq!(in_a_row(&body, "globex"), Some(1.0), "{body}");

    // Its manifest deleted, globex fails no more: it has no series.
    std::fs::remove_file(m.path().join("other.yaml")).unwrap();
    let body = eventually(&daemon, "globex's series are gone", || {
        let body = metrics();
        (!body.contains("integration=\"globex\"")).then_some(body)
    })
    .await;
    assert_eq!(failing(&body, "acme"), Some(0.0), "{body}");
    assert!(daemon.stop().await.success());
}

/// Issue 27.5: `/healthz` answered ok while Postgres refused connections.
/// `/healthz` is liveness (the scheduler loop beats) and stays ok: a
/// restart would not bring the store back. `/readyz` checks the store, the
/// directory and the loop, and says which failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_what_failed_while_healthz_stays_live() {
    let (mock, m, mut db) = setup(5).await;
    let mut proxy = common::pg_proxy::PgProxy::start().await;
    db.url = proxy.url(&db.url);
    write_integration(&m, &mock, "");
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    let ready = |want: &'static str| {
        let addr = addr.clone();
        move || {
            let (status, body) = http_get(&addr, "/readyz");
            status.contains(want).then_some(body)
        }
    };
    let body = eventually(&daemon, "ready", ready("200")).await;
    for line in [
        "[+]store ok",
        &format!("[+]directory ok: {}", m.path().display()),
        "[+]loop ok",
        "readyz check passed",
    ] {
        assert!(body.contains(line), "{line:?} not in:\n{body}");
    }

    // The store refuses connections: not ready, and the body says why;
    // alive all the same.
    proxy.stop().await;
    // (The first probe may find its connection cut; the next, refused.)
    let body = eventually(&daemon, "not ready: the store refuses", || {
        ready("503")().filter(|body| body.contains("refused"))
    })
    .await;
    assert!(body.contains("[-]store failed: "), "{body}");
    assert!(body.contains("[+]directory ok"), "{body}");
    assert!(body.contains("[+]loop ok"), "{body}");
    assert!(body.contains("readyz check failed"), "{body}");
    assert_eq!(
        http_get(&addr, "/healthz"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    proxy.resume().await;
    eventually(&daemon, "ready again with the store back", ready("200")).await;

    // The directory cannot be read.
    let away = m.path().with_extension("away");
    std::fs::rename(m.path(), &away).unwrap();
    let body = eventually(&daemon, "not ready without the directory", ready("503")).await;
    std::fs::rename(&away, m.path()).unwrap();
    assert!(
        body.contains(&format!(
            "[-]directory failed: cannot read {}",
            m.path().display()
        )),
        "{body}"
    );
    assert!(body.contains("[+]store ok"), "{body}");
    eventually(&daemon, "ready again with the directory back", ready("200")).await;
    assert_eq!(http_get(&addr, "/healthz").0, "HTTP/1.1 200 OK");
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_lost_to_a_restart_runs_again_at_start_and_reports_nothing_kept() {
    let (mock, m, db) = setup(25).await;
    mock.fail(1, Failure::Hang(Duration::from_secs(600)));
    let daemon = Daemon::start(m.path(), &db, 0);
    // Scheduled every 30 minutes: only a resumed run can import it in time.
    write_integration(&m, &mock, "");
    eventually(&daemon, "the first import is fetching page 2", || {
        (mock.requests().len() >= 2).then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());
    assert!(campaigns(&db).is_empty(), "the abandoned run kept nothing");
    mock.clear_failures();

    let daemon = Daemon::start(m.path(), &db, 10);
    eventually(&daemon, "the lost import runs again", || {
        (campaigns(&db).len() == 25).then_some(())
    })
    .await;
    let runs = runs(&db);
    // Issue 27.2: a retry is listed as one.
    assert_eq!(runs[0].trigger, "retry", "{runs:?}");
    let lost = runs.last().expect("the lost run is logged");
    assert_eq!(lost.status, "failed", "{lost:?}");
    assert_eq!(
        (lost.created, lost.updated, lost.removed),
        (0, 0, 0),
        "a rolled-back run reports nothing done: {lost:?}"
    );
    assert!(
        daemon.log().contains("the last run did not succeed"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop().await.success());
}

/// A copy of the test manifests in `to`, the integration with `extra` settings.
fn copy_manifests(m: &Manifests, mock: &MockNetwork, to: &Path, extra: &str) {
    std::fs::create_dir_all(to.join("networks")).unwrap();
    std::fs::create_dir_all(to.join("secrets")).unwrap();
    for file in ["networks/mocknet.yaml", "secrets/api.key"] {
        std::fs::copy(m.path().join(file), to.join(file)).unwrap();
    }
    std::fs::write(
        to.join("integration.yaml"),
        integration_yaml("acme", &mock.base_url(), extra),
    )
    .unwrap();
}

/// After a deploy of `deployed` (max payout 5: 2 of 5 offers skipped), its
/// spec runs; then an edit in it (max payout 4) runs too, so it is watched.
async fn the_deployed_spec_runs_and_then_an_edit_in_it(
    daemon: &Daemon,
    db: &TestDb,
    mock: &MockNetwork,
    deployed: &Path,
) {
    eventually(daemon, "the deployed spec runs", || {
        (succeeded(db) == 2 && runs(db)[0].skipped == 2).then_some(())
    })
    .await;
    std::fs::write(
        deployed.join("integration.yaml"),
        integration_yaml("acme", &mock.base_url(), "  filters: {payout: {max: 4}}\n"),
    )
    .unwrap();
    eventually(daemon, "the edit in the deployed directory runs", || {
        (succeeded(db) == 3 && runs(db)[0].skipped == 3).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_behind_a_swapped_symlink_is_followed() {
    let (mock, m, db) = setup(5).await;
    // Releases side by side and a symlink to the current one, swapped by a
    // deploy. No periodic rescan: only the watches can see what happens.
    let parent = tempfile::tempdir().unwrap();
    let releases = parent.path().join("releases");
    for (release, extra) in [("r1", ""), ("r2", "  filters: {payout: {max: 5}}\n")] {
        copy_manifests(&m, &mock, &releases.join(release), extra);
    }
    std::fs::create_dir(parent.path().join("etc")).unwrap();
    let link = parent.path().join("etc/integrations.d");
    std::os::unix::fs::symlink(releases.join("r1"), &link).unwrap();
    let daemon = Daemon::start_with(&link, &db, 10, &["--rescan-seconds", "3600"]);
    eventually(&daemon, "the first run", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;

    let staged = parent.path().join("etc/integrations.d.new");
    std::os::unix::fs::symlink(releases.join("r2"), &staged).unwrap();
    std::fs::rename(&staged, &link).unwrap();
    // The directory the link now leads to is the one watched.
    the_deployed_spec_runs_and_then_an_edit_in_it(&daemon, &db, &mock, &releases.join("r2")).await;
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_stops_runs_and_a_replaced_directory_is_still_watched() {
    let (mock, m, db) = setup(5).await;
    // The daemon watches a directory that a deploy replaces wholesale.
    let parent = tempfile::tempdir().unwrap();
    let live = parent.path().join("integrations.d");
    let copy_manifests = |to: &Path, extra: &str| copy_manifests(&m, &mock, to, extra);
    copy_manifests(&live, "");
    let daemon = Daemon::start(&live, &db, 10);
    eventually(&daemon, "the first run", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;

    // A deploy: the new directory is built beside and renamed into place.
    let staged = parent.path().join("integrations.d.new");
    copy_manifests(&staged, "  filters: {payout: {max: 5}}\n");
    std::fs::rename(&live, parent.path().join("integrations.d.old")).unwrap();
    std::fs::rename(&staged, &live).unwrap();
    the_deployed_spec_runs_and_then_an_edit_in_it(&daemon, &db, &mock, &live).await;

    // Disabled: no more runs, campaigns left as they are, refresh declined.
    std::fs::write(
        live.join("integration.yaml"),
        integration_yaml("acme", &mock.base_url(), "  enabled: false\n"),
    )
    .unwrap();
    eventually(&daemon, "the integration is disabled", || {
        (status(&db)?.state == "disabled").then_some(())
    })
    .await;
    let before = campaigns(&db);
    let refresh = refresh_and_wait(&db);
    assert_eq!(refresh.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refresh.stdout).contains("not run"));
    assert_eq!(succeeded(&db), 3);
    assert_eq!(campaigns(&db), before);

    // SIGHUP reloads; a re-enabled integration runs again.
    std::fs::write(
        live.join("integration.yaml"),
        integration_yaml("acme", &mock.base_url(), ""),
    )
    .unwrap();
    // SAFETY: signals our own child.
    unsafe { libc::kill(daemon.child.id() as libc::pid_t, libc::SIGHUP) };
    eventually(&daemon, "the re-enabled integration runs", || {
        (succeeded(&db) == 4).then_some(())
    })
    .await;
    eventually(&daemon, "the SIGHUP is logged", || {
        daemon.log().contains("SIGHUP: reloading").then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_manifests_does_not_trigger_another_rescan() {
    let (mock, m, db) = setup(3).await;
    write_integration(&m, &mock, "");
    let daemon = Daemon::start_with(m.path(), &db, 10, &["--rescan-seconds", "3600"]);
    eventually(&daemon, "the first run", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    // A rescan reads every file; if reading counted as a change, the daemon
    // would rescan every few hundred milliseconds from now on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rescans = daemon
        .log()
        .matches("rescanning the manifest directory")
        .count();
    assert_eq!(rescans, 1, "{}", daemon.log());
    assert!(daemon.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_tick_runs_once_across_two_daemons() {
    let (mock, m, db) = setup(3).await;
    // Every minute: the test waits for the next minute boundary (at most
    // ~60 s), or the one after when the first falls during the new spec's run
    // (that tick is skipped, as a tick during a run always is).
    write_every_minute_integration(&m, &mock);
    let first = Daemon::start(m.path(), &db, 10);
    let second = Daemon::start(m.path(), &db, 10);
    let scheduled = |db: &TestDb| runs(db).iter().filter(|r| r.trigger == "schedule").count();
    let deadline = Instant::now() + Duration::from_secs(150);
    while scheduled(&db) == 0 {
        assert!(
            Instant::now() < deadline,
            "no scheduled run:\n{}\n{}",
            first.log(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both daemons have passed the tick by now; the next is a minute away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scheduled(&db), 1, "{}\n{}", first.log(), second.log());
    assert_eq!(succeeded(&db), 2, "the new spec ran once, the tick once");
    assert!(first.stop().await.success());
    assert!(second.stop().await.success());
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A daemon that renews its claims every second and gives them up after 4 s.
// Claims renewed every 1.5 s and taken over after 5 s unrenewed.
const FAST_CLAIMS: &[&str] = &["--rescan-seconds", "1", "--claim-timeout-seconds", "6"];

/// `offersync refresh acme --wait 30`: the request, and its outcome.
fn refresh_and_wait(db: &TestDb) -> std::process::Output {
    Command::new(binary())
        .args(["refresh", "acme", "--wait", "30"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap()
}

fn request_refresh(db: &TestDb) {
    let out = Command::new(binary())
        .args(["refresh", "acme"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn refresh_runs(db: &TestDb, status: &str) -> usize {
    runs(db)
        .iter()
        .filter(|r| r.trigger == "refresh" && r.status == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_held_by_a_live_daemon_stays_and_one_held_by_a_dead_daemon_is_taken_over() {
    let (mock, m, db) = setup(25).await;
    write_integration(&m, &mock, "");
    let mut first = Daemon::start_with(m.path(), &db, 10, FAST_CLAIMS);
    eventually(&first, "the new integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    let mut second = Daemon::start_with(m.path(), &db, 10, FAST_CLAIMS);
    ready(&second).await;

    // A run longer than the claim timeout (every page slow, each within the
    // fetch timeout; pages 2 and 3 overlap, one fetched ahead): its daemon
    // renews the claim, so the other never runs the request too.
    for page in 0..3 {
        mock.fail(page, Failure::Hang(Duration::from_millis(4500)));
    }
    request_refresh(&db);
    eventually(&first, "the slow refresh run succeeds", || {
        (refresh_runs(&db, "succeeded") == 1).then_some(())
    })
    .await;
    mock.clear_failures();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Either daemon may take the request (whichever looks first); the
    // other never does.
    let taken = (first.refreshes_taken(), second.refreshes_taken());
    assert!(
        taken == (1, 0) || taken == (0, 1),
        "only the daemon running the request held it: {taken:?}\n{}\n{}",
        first.log(),
        second.log()
    );
    assert_one_run_each(&db, ["refresh", "manifest"], [&first, &second]);

    // The daemon running the next request dies mid-run: the other takes the
    // request over once the claim is stale, and runs it.
    mock.fail(1, Failure::Hang(Duration::from_secs(600)));
    let taken_before = (first.refreshes_taken(), second.refreshes_taken());
    request_refresh(&db);
    let page_2_requests = |mock: &MockNetwork| {
        mock.requests()
            .iter()
            .filter(|r| r.query.get("page").map(String::as_str) == Some("2"))
            .count()
    };
    let hanging = page_2_requests(&mock) + 1;
    eventually(&first, "the refresh run hangs on page 2", || {
        (page_2_requests(&mock) >= hanging).then_some(())
    })
    .await;
    mock.clear_failures();
    let (dead, survivor) = if first.refreshes_taken() > taken_before.0 {
        (&mut first, &second)
    } else {
        (&mut second, &first)
    };
    dead.kill();
    let mut store = store::open(&db.url).unwrap();
    let outcome = eventually(survivor, "the survivor takes the request over", || {
        store.refresh_outcome(2).unwrap()
    })
    .await;
    assert_eq!(outcome.outcome, "run succeeded");
    assert!(survivor.log().contains("request=2"), "{}", survivor.log());
    assert_eq!(refresh_runs(&db, "succeeded"), 2);
    let first_outcome = store.refresh_outcome(1).unwrap().map(|o| o.outcome);
    assert_eq!(first_outcome.as_deref(), Some("run succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_whose_daemon_dies_mid_run_is_taken_over() {
    let (mock, m, db) = setup(25).await;
    write_every_minute_integration(&m, &mock);
    let mut first = Daemon::start_with(m.path(), &db, 10, FAST_CLAIMS);
    eventually(&first, "the new integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    // The next tick's run hangs on page 2; the test waits for the minute
    // boundary (or the one after, when the first fell during the first run).
    mock.fail(1, Failure::Hang(Duration::from_secs(600)));
    let deadline = Instant::now() + Duration::from_secs(150);
    while !first.log().contains(r#"trigger="schedule""#) || mock.requests().len() < 5 {
        assert!(
            Instant::now() < deadline,
            "no scheduled run:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hung: Vec<Count> = db.query(
        "SELECT EXTRACT(EPOCH FROM tick)::BIGINT AS n FROM schedule_claims WHERE finished_at IS NULL",
    );
    assert_eq!(hung.len(), 1, "one tick is running:\n{}", first.log());
    first.kill();
    mock.clear_failures();

    let second = Daemon::start_with(m.path(), &db, 10, FAST_CLAIMS);
    eventually(&second, "the tick is taken over and run", || {
        (second.log().contains("taking over a tick")
            && runs(&db)
                .iter()
                .any(|r| r.trigger == "schedule" && r.status == "succeeded"))
        .then_some(())
    })
    .await;
    let unfinished: Vec<Count> = db.query(&format!(
        "SELECT COUNT(*) AS n FROM schedule_claims \
         WHERE finished_at IS NULL AND tick = to_timestamp({})",
        hung[0].n
    ));
    assert_eq!(
        unfinished[0].n,
        0,
        "the taken-over tick ended:\n{}",
        second.log()
    );
    assert!(second.stop().await.success());
}

/// Issue 18.4: JSON logs tell the truth: one line per finished run with its
/// integration, run id, trigger, duration and counts as an object; retry
/// lines carry the integration and run; a broken manifest is logged once
/// (not at every rescan) and its recovery is logged too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_give_one_line_per_run_and_a_broken_manifest_once() {
    let (mock, m, db) = setup(12).await;
    mock.fail(
        0,
        Failure::Status {
            status: 503,
            times: 1,
        },
    );
    write_integration(&m, &mock, "");
    let daemon = Daemon::start_with(
        m.path(),
        &db,
        60,
        &["--rescan-seconds", "1", "--log-format", "json"],
    );
    eventually(&daemon, "the first run", || {
        (succeeded(&db) >= 1).then_some(())
    })
    .await;
    let lines = || -> Vec<serde_json::Value> {
        daemon
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let finished = eventually(&daemon, "the run's line", || {
        let done: Vec<serde_json::Value> = lines()
            .into_iter()
            .filter(|l| l["message"] == "run succeeded")
            .collect();
        (!done.is_empty()).then_some(done)
    })
    .await;
    assert_eq!(finished.len(), 1, "one line per finished run: {finished:?}");
    // Issue 27.9: message, level, target, timestamp and the fields at the
    // top level, as log shippers read them.
    let fields = &finished[0];
    assert_eq!(fields["level"], "INFO", "{fields}");
    assert!(fields["timestamp"].is_string() && fields["target"].is_string());
    assert!(fields.get("fields").is_none(), "{fields}");
    assert_eq!(fields["integration"], "acme");
    assert!(fields["run_id"].is_u64(), "{fields}");
    assert!(fields["duration_ms"].is_u64(), "{fields}");
    assert!(fields["trigger"].is_string(), "{fields}");
    assert_eq!(
        fields["counts"]["created"], 12,
        "counts is an object: {fields}"
    );
    let retry = lines()
        .into_iter()
        .find(|l| l["message"] == "retrying")
        .expect("the 503 was retried");
    assert_eq!(retry["integration"], "acme", "{retry}");
    assert!(retry["run_id"].is_u64(), "{retry}");
    // Issue 27.2: and why.
    assert_eq!(retry["cause"], "HTTP 503 Service Unavailable", "{retry}");

    // Broken: one error line for it, however many rescans follow.
    write_integration(&m, &mock, "  filterz: {}\n");
    let broken = |l: &serde_json::Value| {
        l["level"] == "ERROR" && l["message"].as_str().is_some_and(|m| m.contains("filterz"))
    };
    eventually(&daemon, "the broken manifest logged", || {
        lines().iter().any(broken).then_some(())
    })
    .await;
    two_rescans(&daemon).await;
    two_rescans(&daemon).await;
    assert_eq!(lines().iter().filter(|l| broken(l)).count(), 1);
    // Fixed: said once.
    write_integration(&m, &mock, "");
    eventually(&daemon, "the recovery logged", || {
        lines()
            .iter()
            .any(|l| l["message"] == "manifest has no errors any more")
            .then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());
}

/// The threads of a process, from /proc/PID/status.
fn threads(daemon: &Daemon) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/PID/status")
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a plain call with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Issue 30.2: a FIFO, a device and a symlink to a FIFO named `*.yaml` in the
/// watched directory used to block every rescan for 10 s (a thread leaked in
/// `open` each time), refreshes took 15-20 s, /healthz said 503 and SIGTERM
/// never ended the process. Each is now a diagnostic for its own file only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_device_named_yaml_blocks_neither_the_loop_nor_shutdown() {
    let (mock, m, db) = setup(5).await;
    write_integration(&m, &mock, "");
    mkfifo(&m.path().join("pipe.yaml"));
    std::os::unix::fs::symlink(m.path().join("pipe.yaml"), m.path().join("to-pipe.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", m.path().join("zero.yaml")).unwrap();
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    eventually(&daemon, "the integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    for (file, kind) in [
        ("pipe.yaml", "a FIFO"),
        ("to-pipe.yaml", "a FIFO"),
        ("zero.yaml", "a character device"),
    ] {
        eventually(&daemon, "the file is reported", || {
            daemon
                .log()
                .lines()
                .any(|l| l.contains(file) && l.contains(&format!("is {kind}, not a regular file")))
                .then_some(())
        })
        .await;
    }
    two_rescans(&daemon).await;
    let before = threads(&daemon);
    for _ in 0..3 {
        two_rescans(&daemon).await;
    }
    assert!(
        threads(&daemon) < before + 4,
        "no thread per rescan: {before} then {}",
        threads(&daemon)
    );
    assert!(!daemon.log().contains("takes too long"), "{}", daemon.log());
    assert_eq!(http_get(&addr, "/healthz").0, "HTTP/1.1 200 OK");
    let refresh = refresh_and_wait(&db);
    assert_eq!(
        refresh.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&refresh.stdout),
        daemon.log()
    );
    let asked = Instant::now();
    assert!(daemon.stop().await.success());
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "SIGTERM is prompt"
    );
}

/// Issue 30.4: a manifest copied in by `cp` (which writes a large file in
/// pieces) was applied from a prefix that happened to be a valid manifest.
/// A file is applied only once it has stopped changing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_still_being_written_is_applied_only_once_complete() {
    let (mock, m, db) = setup(12).await;
    let daemon = Daemon::start(m.path(), &db, 10);
    ready(&daemon).await;
    // The prefix is a whole integration; the rest (comments, then a filter
    // that skips 4 of the 12 offers) follows in small pieces for 2 s, while
    // the daemon rescans every second.
    let full = integration_yaml("acme", &mock.base_url(), "  filters: {payout: {max: 10}}\n");
    let at = full.find("  filters:").unwrap();
    let (prefix, filter) = (full[..at].to_string(), full[at..].to_string());
    let path = integration_path(&m);
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(prefix.as_bytes()).unwrap();
        for i in 0..100 {
            writeln!(file, "  # copied so far: {i}%").unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        file.write_all(filter.as_bytes()).unwrap();
    });
    writer.join().unwrap();
    eventually(&daemon, "a run of the whole file", || {
        (succeeded(&db) >= 1).then_some(())
    })
    .await;
    two_rescans(&daemon).await;
    let runs = runs(&db);
    assert_eq!(runs.len(), 1, "only the whole file ran:\n{}", daemon.log());
    assert_eq!(runs[0].skipped, 4, "with its filter");
    assert_eq!(campaigns(&db).len(), 8);
    assert!(daemon.stop().await.success());
}

/// The resident memory of a process in kB, from /proc/PID/status.
fn rss_kb(daemon: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS: in /proc/PID/status")
}

/// Issue 30.8: 2,000 SIGHUPs grew the daemon from 59 to 113 MB, each one a
/// reload of its own. Reloads are coalesced (at most one pending): a storm
/// costs about a reload a second, and the daemon stays responsive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_sighups_is_coalesced_into_a_reload_or_two() {
    let (mock, m, db) = setup(5).await;
    write_integration(&m, &mock, "");
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    eventually(&daemon, "the integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    two_rescans(&daemon).await;
    let before = rss_kb(&daemon);
    let rescans_before = rescans(&daemon);
    let pid = daemon.child.id() as libc::pid_t;
    // Spaced a little, as `kill` in a shell loop sends them: each would
    // otherwise find the previous reload done, and start another.
    let storm = std::thread::spawn(move || {
        let started = Instant::now();
        for _ in 0..2000 {
            // SAFETY: signals our own child.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
            std::thread::sleep(Duration::from_micros(500));
        }
        started.elapsed()
    });
    let lasted = storm.join().unwrap();
    eventually(&daemon, "the reload is applied", || {
        (rescans(&daemon) > rescans_before).then_some(())
    })
    .await;
    assert_eq!(http_get(&addr, "/healthz").0, "HTTP/1.1 200 OK");
    let refresh = refresh_and_wait(&db);
    assert_eq!(refresh.status.code(), Some(0), "{}", daemon.log());
    let after = rss_kb(&daemon);
    assert!(
        after < before + 20 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
    // About one reload a second of storm; the periodic rescan (every
    // second here) adds as many again.
    let seconds = lasted.as_secs() as usize + 2;
    let reloads = daemon.log().matches("SIGHUP: reloading").count();
    assert!(
        reloads <= seconds,
        "{reloads} reloads for a storm of {lasted:?}"
    );
    let storm_rescans = rescans(&daemon) - rescans_before;
    assert!(
        storm_rescans <= 3 * seconds,
        "{storm_rescans} rescans for a storm of {lasted:?}"
    );
    assert!(daemon.stop().await.success());
}

/// How often the mock was asked for page `page` (1-based).
fn page_requests(mock: &MockNetwork, page: u32) -> usize {
    let page = page.to_string();
    mock.requests()
        .iter()
        .filter(|r| r.query.get("page") == Some(&page))
        .count()
}

/// SIGSTOP / SIGCONT: a stopped daemon holds what it holds (a run lock, a
/// request it met a lock with) and does nothing, so the test decides which
/// daemon takes a request and when a run ends, with no race.
fn pause(daemon: &Daemon) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(daemon.child.id() as libc::pid_t, libc::SIGSTOP) };
}

fn resume(daemon: &Daemon) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(daemon.child.id() as libc::pid_t, libc::SIGCONT) };
}

/// `offersync refresh acme --wait 300`, left running.
fn refresh_waiting(db: &TestDb) -> std::process::Child {
    Command::new(binary())
        .args(["refresh", "acme", "--wait", "300"])
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The waiting `refresh`'s exit status and stdout, once it has exited.
async fn refresh_result(
    mut child: std::process::Child,
    daemons: &[&Daemon],
) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(150);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let logs: Vec<String> = daemons.iter().map(|d| d.log()).collect();
            panic!("`refresh --wait` did not end:\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Requests answered before the run they name had ended (or naming none).
fn answered_early(db: &TestDb) -> i64 {
    let early: Vec<Count> = db.query(
        "SELECT COUNT(*) AS n FROM refresh_requests q LEFT JOIN sync_runs r ON r.id = q.run_id \
         WHERE q.finished_at IS NOT NULL \
         AND (r.id IS NULL OR r.finished_at IS NULL OR q.finished_at < r.finished_at)",
    );
    early[0].n
}

/// Issue 30.3: a refresh taken by a daemon while another daemon runs the
/// integration was recorded `run succeeded` with no run, at once. It waits,
/// and is answered by the first run that starts after it (here another
/// daemon's: coalesced), never before that run has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_during_another_daemons_run_is_coalesced_into_the_next_run_once_it_ends() {
    let (mock, m, db) = setup(25).await;
    write_integration(&m, &mock, "");
    let first = Daemon::start(m.path(), &db, 10);
    eventually(&first, "the new integration runs", || {
        (succeeded(&db) == 1).then_some(())
    })
    .await;
    let second = Daemon::start(m.path(), &db, 10);
    ready(&second).await;
    let mut store = store::open(&db.url).unwrap();

    // Request 1 goes to the first daemon (the second is stopped), whose run
    // is then stopped on page 2, holding the run lock.
    pause(&second);
    mock.fail(1, Failure::Hang(Duration::from_secs(3)));
    let asked = page_requests(&mock, 2);
    request_refresh(&db);
    eventually(&first, "request 1's run reaches page 2", || {
        (page_requests(&mock, 2) > asked).then_some(())
    })
    .await;
    pause(&first);
    resume(&second);

    // Request 2 goes to the second daemon, which meets the held lock: the
    // run going started before the request, so it does not answer it.
    let waiter = refresh_waiting(&db);
    eventually(
        &second,
        "the second daemon meets the first one's run",
        || {
            second
                .log()
                .contains("another process is running it")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        store.refresh_outcome(2).unwrap(),
        None,
        "nothing is recorded while no run after the request has ended:\n{}",
        second.log()
    );

    // The first run ends (the second daemon is stopped meanwhile); the
    // first daemon takes request 3 and runs it: the first run to start
    // after request 2.
    pause(&second);
    resume(&first);
    let one = eventually(&first, "request 1's run ends", || {
        store.refresh_outcome(1).unwrap()
    })
    .await;
    let n0 = one.run.expect("request 1 ran");
    request_refresh(&db);
    let n1 = eventually(&first, "request 3's run is going", || {
        runs(&db)
            .first()
            .filter(|r| r.id > n0 && r.status == "running")
            .map(|r| r.id)
    })
    .await;
    resume(&second);

    let (code, stdout) = refresh_result(waiter, &[&first, &second]).await;
    let logs = format!("{stdout}\n{}\n{}", first.log(), second.log());
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        stdout.contains(&format!("coalesced into run {n1} ")) && stdout.contains("which succeeded"),
        "{logs}"
    );
    let mut answer = |request| store.refresh_outcome(request).unwrap().unwrap();
    let expected = |run, coalesced| store::RefreshOutcome {
        run: Some(run),
        outcome: "run succeeded".into(),
        coalesced,
    };
    assert_eq!(answer(1), expected(n0, false), "{logs}");
    assert_eq!(answer(2), expected(n1, true), "{logs}");
    assert_eq!(answer(3), expected(n1, false), "{logs}");
    assert_eq!(answered_early(&db), 0, "{logs}");
    assert_one_run_each(&db, ["refresh", "refresh", "manifest"], [&first, &second]);
    mock.clear_failures();
    assert!(first.stop().await.success());
    assert!(second.stop().await.success());
}

/// Issue 30.3, the other answer, on both backends: another process holds
/// the run lock and has not begun a run (as `offersync sync` does for a
/// moment before its run starts); the refresh waits for the lock and then
/// runs, as a run of its own, never recorded as succeeded before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_meets_a_run_lock_held_before_any_run_starts_runs_after_it() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let (mock, m, _) = setup(5).await;
        let db = TestDb::new(backend);
        write_integration(&m, &mock, "");
        let daemon = Daemon::start(m.path(), &db, 10);
        eventually(&daemon, "the integration runs", || {
            (succeeded(&db) == 1).then_some(())
        })
        .await;

        let mut holder = store::open(&db.url).unwrap();
        holder.lock_run("acme").unwrap();
        let waiter = refresh_waiting(&db);
        eventually(&daemon, "the daemon meets the held lock", || {
            daemon
                .log()
                .contains("another process is running it")
                .then_some(())
        })
        .await;
        // A few of the daemon's looks at the lock: none answers the request.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            holder.refresh_outcome(1).unwrap(),
            None,
            "{backend:?}: {}",
            daemon.log()
        );
        holder.end_run().unwrap();

        let (code, stdout) = refresh_result(waiter, &[&daemon]).await;
        let logs = format!("{backend:?}: {stdout}\n{}", daemon.log());
        assert_eq!(code, Some(0), "{logs}");
        let own = runs(&db)[0].id;
        assert!(
            stdout.contains(&format!("ran as run {own}, which succeeded")),
            "{logs}"
        );
        assert_eq!(
            holder.refresh_outcome(1).unwrap(),
            Some(store::RefreshOutcome {
                run: Some(own),
                outcome: "run succeeded".into(),
                coalesced: false,
            }),
            "{logs}"
        );
        let kinds: Vec<String> = runs(&db).into_iter().map(|r| r.trigger).collect();
        assert_eq!(kinds, ["refresh", "manifest"], "{logs}");
        assert!(daemon.stop().await.success());
    }
}
