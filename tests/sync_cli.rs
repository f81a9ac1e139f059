//! The store commands through the real binary: sync, plan, runs, status,
//! a database that is not there, a process killed mid-write, and secrets.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use diesel::QueryableByName;
use diesel::sql_types::Text;

fn offersync(m: &Manifests, db_url: &str, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--dir")
        .arg(m.path())
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "offersync=debug")
        .output()
        .expect("run offersync")
}

async fn offersync_async(m: &Manifests, db_url: &str, args: &[&str]) -> Output {
    let (dir, url) = (m.path().to_path_buf(), db_url.to_string());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .args(&args)
            .arg("--dir")
            .arg(dir)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "offersync=debug")
            .output()
            .expect("run offersync")
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn setup(extra: &str) -> (MockNetwork, Manifests, TestDb) {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), extra),
    );
    (mock, m, TestDb::postgres())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_sync_runs_and_status_tell_the_story() {
    let (mock, m, db) = setup("  filters: {payout: {max: 20}}\n").await;

    // Issue 27.8: exit 2 on pending changes only when asked, as terraform.
    let out = offersync_async(&m, &db.url, &["plan", "acme", "--detailed-exitcode"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "changes pending: {stdout}{stderr}"
    );
    // The ids line up in one column (issue 18.3).
    assert!(stdout.contains("+ create  1   Offer 1\n"), "{stdout}");
    assert!(stdout.contains("+ create  10  Offer 10\n"), "{stdout}");
    assert!(
        stdout.contains("  skip    25  payout_above_max: payout 26.50 > max 20.00"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "plan for acme: 18 to create, 0 to update, 0 to pause, 0 unchanged, 7 skipped"
        ),
        "{stdout}"
    );

    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("acme: run 1 succeeded"), "{stdout}");
    assert!(
        stdout.contains("fetched 25, created 18, updated 0, unchanged 0, skipped 7, removed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped      7  payout_above_max"),
        "{stdout}"
    );

    let out = offersync_async(&m, &db.url, &["plan", "acme", "--detailed-exitcode"]).await;
    assert_eq!(out.status.code(), Some(0), "no changes: {}", text(&out).0);

    // An update shows the columns it changes, old → new.
    let mut changed = offers(1..=25);
    changed[0]["name"] = "Offer 1 v2".into();
    changed[0]["payout"] = "3.00".into();
    mock.set_offers(changed);
    let out = offersync_async(&m, &db.url, &["plan", "acme"]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("~ update  1   Offer 1 v2\n"), "{stdout}");
    assert!(
        stdout.contains("  name: Offer 1 → Offer 1 v2\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  revenue: 2.50 → 3.00\n"), "{stdout}");
    mock.set_offers(offers(1..=25));

    let out = offersync_async(&m, &db.url, &["sync", "acme", "--format", "json"]).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["counts"]["unchanged"], 18);
    assert_eq!(report["run"], 2);

    let out = offersync_async(&m, &db.url, &["runs", "acme"]).await;
    let (stdout, _) = text(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("   RUN  STARTED"), "{stdout}");
    assert!(lines[0].contains("DURATION"), "{stdout}");
    // Times say their zone, durations their unit.
    assert!(lines[1].contains(" UTC "), "{stdout}");
    assert!(lines[1].contains(" s "), "{stdout}");
    assert!(
        lines[1].trim_start().starts_with("2 ") && lines[1].contains("succeeded"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 3, "{stdout}");

    let out = offersync_async(&m, &db.url, &["runs", "show", "1"]).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("run 1 of acme (cli): succeeded"),
        "{stdout}"
    );
    let line = format!(
        "  skipped {:<12} {:<24} {}",
        "25", "payout_above_max", "payout 26.50 > max 20.00"
    );
    assert!(stdout.contains(&line), "{stdout}");

    let out = offersync_async(&m, &db.url, &["status"]).await;
    let (stdout, _) = text(&out);
    // Issue 27.2: health (enabled) apart from the sync state.
    assert!(
        stdout.starts_with("acme (mocknet): enabled · in sync · 18 campaigns, 18 active\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\n  last run 2 succeeded"), "{stdout}");

    // What is stored, by status.
    let out = offersync_async(&m, &db.url, &["campaigns", "acme", "--status", "active"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("ID  NAME"), "{stdout}");
    assert!(stdout.trim_end().ends_with("18 campaigns"), "{stdout}");
    let out = offersync_async(&m, &db.url, &["campaigns", "acme", "--status", "paused"]).await;
    assert!(
        text(&out)
            .1
            .contains("no campaigns of `acme` with that status stored")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_exits_1_and_keeps_secrets_out_of_every_output() {
    // The key travels in the query string, the place most likely to leak into logs.
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(
        &network_yaml(
            PAGE_PAGINATION,
            "{kind: query, param: api_key, value: \"{{ params.api_key }}\"}",
        ),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let db = TestDb::postgres();
    mock.fail(
        1,
        Failure::Status {
            status: 502,
            times: usize::MAX,
        },
    );
    let mut all = String::new();
    for args in [
        &["sync", "acme"][..],
        &["sync", "acme", "--format", "json"],
        &["plan", "acme"],
        &["runs", "acme"],
        &["runs", "show", "1"],
        &["status"],
        &["status", "--format", "json"],
    ] {
        let out = offersync_async(&m, &db.url, args).await;
        let (stdout, stderr) = text(&out);
        if args == ["sync", "acme"] {
            assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
            assert!(
                stdout.contains("FAILED") && stdout.contains("HTTP 502"),
                "{stdout}"
            );
            assert!(
                stdout.contains("/offers?page_size=10&page=2: HTTP 502"),
                "the URL is shown: {stdout}"
            );
        }
        all.push_str(&stdout);
        all.push_str(&stderr);
    }
    #[derive(QueryableByName)]
    struct Error {
        #[diesel(sql_type = Text)]
        error: String,
    }
    for e in db.query::<Error>("SELECT error FROM sync_runs") {
        all.push_str(&e.error);
    }
    assert!(all.contains("retrying"), "debug logs were captured: {all}");
    assert!(!all.contains(API_KEY), "a secret leaked:\n{all}");
}

#[test]
fn an_unreachable_database_is_a_clear_error_and_exit_2() {
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", "http://127.0.0.1:9", ""),
    );
    let url = "postgres://offersync:hunter2pw@127.0.0.1:1/offersync?connect_timeout=2";
    let out = offersync(&m, url, &["sync", "acme"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.starts_with("error: cannot connect to the database at postgres://offersync:[redacted]@127.0.0.1:1/offersync"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2pw"));

    let out = Command::new(binary())
        .args(["status"])
        .env("DATABASE_URL", "mysql://root@127.0.0.1/offersync")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("expected postgres://USER@HOST/DB or sqlite://PATH"),
        "{}",
        text(&out).1
    );
}

#[test]
fn without_database_url_the_store_is_an_sqlite_file_in_the_working_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let status = || {
        Command::new(binary())
            .args(["status"])
            .env_remove("DATABASE_URL")
            .current_dir(cwd.path())
            .output()
            .unwrap()
    };
    let out = status();
    let (stdout, stderr) = text(&out);
    // A command that only reads names the default store and does not create
    // it (issue 14.9: an empty file that then says "no runs yet" misleads).
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("there is no store at offersync.db"),
        "{stderr}"
    );
    assert!(!cwd.path().join("offersync.db").exists());
    // Once the file is there, it is the store read.
    std::fs::write(cwd.path().join("offersync.db"), "").unwrap();
    let out = status();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
}

#[test]
fn an_unknown_integration_is_named_with_a_suggestion() {
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", "http://127.0.0.1:9", ""),
    );
    let out = offersync(&m, "postgres://127.0.0.1:1/x", &["sync", "acmee"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("no Integration named `acmee`")
            && text(&out).1.contains("did you mean `acme`?")
    );
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Snapshot {
    #[diesel(sql_type = Text)]
    rows: String,
}

fn snapshot(db: &TestDb) -> String {
    db.query::<Snapshot>(
        "SELECT coalesce(string_agg(external_id || ':' || name || ':' || status || ':' || xmin::text, ',' ORDER BY external_id), '') AS rows FROM campaigns",
    )
    .pop()
    .unwrap()
    .rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_mid_write_leaves_campaigns_as_they_were_and_the_next_run_completes() {
    let (mock, m, db) = setup("").await;
    let first = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    let before = snapshot(&db);

    // Upstream renames everything; page 3 hangs so the run is caught with
    // pages 1 and 2 written inside its open transaction.
    mock.set_offers(
        offers(1..=25)
            .into_iter()
            .map(|mut o| {
                o["name"] = "renamed".into();
                o
            })
            .collect(),
    );
    mock.fail(2, Failure::Hang(Duration::from_secs(60)));
    let mut child = Command::new(binary())
        .args(["sync", "acme", "--dir"])
        .arg(m.path())
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    #[derive(QueryableByName)]
    struct Open {
        #[diesel(sql_type = Text)]
        state: String,
    }
    let mut written = false;
    for _ in 0..500 {
        let page3_asked = mock
            .requests()
            .iter()
            .any(|r| r.query.get("page").map(String::as_str) == Some("3"));
        // The run's connection sits in its transaction, having updated rows.
        let in_tx = db
            .query::<Open>("SELECT state FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()")
            .iter()
            .any(|o| o.state.starts_with("idle in transaction"));
        if page3_asked && in_tx {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        written,
        "the run reached page 3 with writes in its transaction"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    mock.clear_failures();

    // Postgres rolls back the dead connection's transaction.
    let mut rolled_back = false;
    for _ in 0..200 {
        if snapshot(&db) == before {
            rolled_back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        rolled_back,
        "campaigns are exactly as before the killed run"
    );

    let mut next = None;
    for _ in 0..50 {
        let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
        // The dead run's lock goes with its connection, which Postgres may notice a moment later.
        if text(&out).1.contains("in progress") {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        next = Some(out);
        break;
    }
    let next = next.expect("the lock was released");
    let (stdout, stderr) = text(&next);
    assert_eq!(next.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("updated 25"), "{stdout}");

    #[derive(QueryableByName)]
    struct RunStatus {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Text)]
        error: String,
    }
    let runs = db.query::<RunStatus>(
        "SELECT status, coalesce(error, '') AS error FROM sync_runs ORDER BY id",
    );
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["succeeded", "failed", "succeeded"]);
    assert!(
        runs[1].error.starts_with("interrupted"),
        "{}",
        runs[1].error
    );
}

#[test]
fn the_demo_syncs_the_bundled_integration_and_a_second_run_changes_nothing() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", store.path().join("demo.db").display());
    let demo = || {
        Command::new(binary())
            .args(["demo", "--database-url", &url])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = demo();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("fetched 7, created 3, updated 0, unchanged 0, skipped 4, removed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  402    QuickLoans - Android + Desktop - MX/BR/AR        active      8.50     6.80  AR,BR,MX"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped 7            no_preview_url"),
        "{stdout}"
    );

    let out = demo();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("fetched 7, created 0, updated 0, unchanged 3, skipped 4, removed 0"),
        "{stdout}"
    );
    assert!(!stdout.contains(demo_key()), "the API key is never printed");
}

fn demo_key() -> &'static str {
    offersync::demo::API_KEY
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_integration_refuses_sync_unless_forced_and_plan_says_so() {
    let (_mock, m, db) = setup("  enabled: false\n").await;
    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("acme is disabled (spec.enabled: false"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    let stored = offersync::store::open(&db.url)
        .unwrap()
        .campaigns("acme")
        .unwrap();
    assert!(stored.is_empty(), "nothing imported");

    let out = offersync_async(&m, &db.url, &["plan", "acme"]).await;
    let (_, stderr) = text(&out);
    assert!(stderr.contains("acme is disabled"), "{stderr}");

    let out = offersync_async(&m, &db.url, &["sync", "acme", "--force"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("created 25"), "{stdout}");
}

/// Issue 18.2: `offersync changes` reads the feed from a position on, as
/// text or one JSON object per line; on Postgres a listener hears of each
/// applied run when it commits, and of nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_is_read_from_a_position_and_announced_on_commit() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let (mock, m, db) = setup("").await;
    let mut listener = PgConnection::establish(&db.url).unwrap();
    diesel::sql_query("LISTEN offersync_changes")
        .execute(&mut listener)
        .unwrap();

    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let mut changed = offers(1..=25);
    changed[4]["name"] = "Offer <five>".into();
    mock.set_offers(changed);
    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    // Nothing changes: no entry, no notification.
    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    let out = offersync_async(&m, &db.url, &["changes", "--format", "json"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let entries: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 26, "{stdout}");
    assert!(entries[..25].iter().all(|e| e["kind"] == "created"));
    let update = &entries[25];
    assert_eq!(
        (&update["kind"], &update["external_id"], &update["run_id"]),
        (&"updated".into(), &"5".into(), &2.into())
    );
    assert_eq!(
        update["columns"],
        serde_json::json!([{"column": "name", "old": "Offer 5", "new": "Offer <five>"}])
    );
    let last_created = entries[24]["position"].as_i64().unwrap();

    let since = last_created.to_string();
    let out = offersync_async(&m, &db.url, &["changes", "--since", &since]).await;
    let (stdout, stderr) = text(&out);
    assert!(stdout.starts_with("POSITION  CHANGED"), "{stdout}");
    assert!(
        stdout.contains("  acme         5   updated  active  name Offer 5 → Offer <five>"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let end = update["position"].as_i64().unwrap();
    assert!(
        stderr.contains(&format!("1 changes; read on with --since {end}")),
        "{stderr}"
    );
    let out = offersync_async(&m, &db.url, &["changes", "--since", &end.to_string()]).await;
    assert!(text(&out).1.contains("no changes after position"));

    // One notification per applied run that changed something, naming the
    // feed's end when it committed.
    let mut heard = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while heard.len() < 2 && std::time::Instant::now() < deadline {
        for n in listener.notifications_iter() {
            heard.push(n.unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    heard.extend(listener.notifications_iter().map(Result::unwrap));
    let payloads: Vec<serde_json::Value> = heard
        .iter()
        .map(|n| {
            assert_eq!(n.channel, "offersync_changes");
            serde_json::from_str(&n.payload).unwrap()
        })
        .collect();
    assert_eq!(
        payloads,
        [
            serde_json::json!({"position": last_created, "schema": "public"}),
            serde_json::json!({"position": end, "schema": "public"})
        ]
    );
}

/// Issue 18.3: on a terminal, a sync shows how far it has got (of the
/// total the feed states) and erases the line; piped, it says nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_shows_progress_on_a_terminal_and_none_when_piped() {
    let (_mock, m, db) = setup("").await;
    let command = format!(
        "{} sync acme --dir {}",
        binary().display(),
        m.path().display()
    );
    let url = db.url.clone();
    // `script` runs the command on a pseudo-terminal, as a person would.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("DATABASE_URL", url)
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux) runs")
    })
    .await
    .unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}");
    assert!(
        terminal.contains("\r\x1b[2Kacme: page 1 of 3 · 10 of 25 offers"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("\r\x1b[2Kacme: page 3 of 3 · 25 of 25 offers\r\x1b[2K"),
        "the last page is shown, then the line erased: {terminal:?}"
    );
    assert!(terminal.contains("acme: run 1 succeeded"), "{terminal:?}");

    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("page 1") && !stderr.contains('\r'),
        "{stderr:?}"
    );
    assert!(
        !stdout.contains("page 1") && !stdout.contains('\r'),
        "{stdout:?}"
    );
}

/// Issue 25.6: delete is final. An integration the daemon retired (its
/// manifest deleted) is not brought back by its file put back: `sync`,
/// `plan` and `validate` refuse it, naming the integration, the file and the
/// way out, and its campaigns stay paused; `undelete` brings it back, and
/// the next sync restores the campaigns whose offers it sees.
async fn a_deleted_integration_stays_deleted_until_undeleted(backend: Backend) {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let db = TestDb::new(backend);
    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let manifest_file = m.path().join("integration.yaml");
    let manifest = std::fs::read_to_string(&manifest_file).unwrap();

    // Deleted as in production: the manifest goes, and a daemon retires
    // the integration once the removal delay has passed.
    std::fs::remove_file(&manifest_file).unwrap();
    let daemon = common::daemon::Daemon::start(m.path(), &db, 10);
    let stored = |db: &TestDb| {
        let mut store = offersync::store::open(&db.url).unwrap();
        let status = store.status().unwrap();
        let state = status
            .iter()
            .find(|s| s.name == "acme")
            .unwrap()
            .state
            .clone();
        (state, store.campaigns("acme").unwrap())
    };
    common::daemon::eventually(&daemon, "the integration is retired", || {
        let (state, campaigns) = stored(&db);
        (state == "deleted" && campaigns.iter().all(|c| c.status == "paused")).then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());
    let all_paused = |db: &TestDb| {
        let (state, campaigns) = stored(db);
        assert_eq!(state, "deleted");
        assert_eq!(campaigns.len(), 25);
        assert!(
            campaigns
                .iter()
                .all(|c| c.status == "paused" && c.removed_at.is_some())
        );
    };
    all_paused(&db);

    // Put back: refused everywhere, with the file and the way out.
    std::fs::write(&manifest_file, &manifest).unwrap();
    let file = manifest_file.display().to_string();
    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("integration `acme` was deleted"),
        "{stderr}"
    );
    assert!(stderr.contains(&file), "{stderr}");
    assert!(stderr.contains("offersync undelete acme"), "{stderr}");
    assert!(stderr.contains("new metadata.name"), "{stderr}");
    all_paused(&db);
    let runs = offersync::store::open(&db.url)
        .unwrap()
        .recent_runs("acme", 10)
        .unwrap();
    assert_eq!(runs.len(), 1, "the refused sync logged no run");

    let out = offersync_async(&m, &db.url, &["plan", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("integration `acme` was deleted"),
        "{stderr}"
    );
    assert!(stderr.contains("offersync undelete acme"), "{stderr}");

    let out = offersync_async(&m, &db.url, &["validate"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{file}:3:"))
            && stderr.contains("metadata.name: integration `acme` was deleted"),
        "{stderr}"
    );
    assert!(stderr.contains("offersync undelete acme"), "{stderr}");
    // Offline, no store is read (this one could not even be reached).
    let out = offersync_async(
        &m,
        "postgres://nobody@127.0.0.1:1/none",
        &["validate", "--offline"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stderr.contains("cannot check"), "{stderr}");
    all_paused(&db);

    // The way out: undelete (only what is deleted), then sync restores.
    let out = offersync_async(&m, &db.url, &["undelete", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("acme: undeleted, now active"), "{stdout}");
    assert!(stdout.contains("its 25 removed campaigns"), "{stdout}");
    assert!(stdout.contains("next run"), "{stdout}");
    let (state, campaigns) = stored(&db);
    assert_eq!(state, "active");
    assert!(campaigns.iter().all(|c| c.status == "paused"), "no run yet");

    let out = offersync_async(&m, &db.url, &["undelete", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("`acme` is not deleted (it is active)"),
        "{stderr}"
    );
    let out = offersync_async(&m, &db.url, &["undelete", "nope"]).await;
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));

    let out = offersync_async(&m, &db.url, &["validate"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = offersync_async(&m, &db.url, &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("(restored 25)"), "{stdout}");
    let (state, campaigns) = stored(&db);
    assert_eq!(state, "active");
    assert!(
        campaigns
            .iter()
            .all(|c| c.status == "active" && c.removed_at.is_none()),
        "{campaigns:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_integration_stays_deleted_until_undeleted_on_postgres() {
    a_deleted_integration_stays_deleted_until_undeleted(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_integration_stays_deleted_until_undeleted_on_sqlite() {
    a_deleted_integration_stays_deleted_until_undeleted(Backend::Sqlite).await;
}

/// Issue 25.6 at the store boundary, on both backends: once retired, an
/// integration is neither registered again nor set active by any path;
/// only `undelete_integration` brings it back, and only from `deleted`.
#[test]
fn the_store_never_reactivates_a_deleted_integration() {
    use offersync::store::{IntegrationRecord, StoreError};
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = TestDb::new(backend);
        let mut store = offersync::store::open(&db.url).unwrap();
        let record = IntegrationRecord {
            name: "acme",
            network: "mocknet",
            spec: "spec: {}",
            spec_hash: "h1",
            source_file: "/etc/offersync/integrations.d/acme.yaml",
            enabled: true,
        };
        store.upsert_integration(&record).unwrap();
        store.retire_integration("acme", true).unwrap();
        let refused = store.upsert_integration(&IntegrationRecord {
            spec_hash: "h2",
            ..record.clone()
        });
        match refused {
            Err(StoreError::IntegrationDeleted { name, file }) => {
                assert_eq!((name.as_str(), file.as_str()), ("acme", record.source_file));
            }
            other => panic!("{backend:?}: {other:?}"),
        }
        assert!(matches!(
            store.set_integration_state("acme", "active"),
            Err(StoreError::IntegrationDeleted { .. })
        ));
        assert_eq!(
            store.integration_state("acme").unwrap().as_deref(),
            Some("deleted")
        );
        let status = store.status().unwrap();
        assert_eq!(
            status[0].spec_hash, "h1",
            "the refused spec was not written"
        );

        assert!(store.undelete_integration("acme", "disabled").unwrap());
        assert!(!store.undelete_integration("acme", "active").unwrap());
        assert!(!store.undelete_integration("nope", "active").unwrap());
        assert_eq!(
            store.integration_state("acme").unwrap().as_deref(),
            Some("disabled")
        );
        store.upsert_integration(&record).unwrap();
        assert_eq!(
            store.integration_state("acme").unwrap().as_deref(),
            Some("active")
        );
    }
}
