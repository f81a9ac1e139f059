//! The conventions of the tools operators know (issue 27.7–27.10), through
//! the real binary: exit codes, typos, what a command waits for, the store
//! URL, machine output and what `--help` and the man pages tell.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// `offersync ARGS --dir M` with the store in DATABASE_URL.
async fn offersync(m: &Manifests, db_url: &str, args: &[&str]) -> Output {
    let (dir, url) = (m.path().to_path_buf(), db_url.to_string());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .args(&args)
            .arg("--dir")
            .arg(dir)
            .env("DATABASE_URL", url)
            .env_remove("RUST_LOG")
            .output()
            .expect("run offersync")
    })
    .await
    .unwrap()
}

/// `offersync ARGS` in `cwd`, with no DATABASE_URL.
fn offersync_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("run offersync")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn synced(backend: Backend) -> (MockNetwork, Manifests, TestDb) {
    let mock = MockNetwork::start(offers(1..=5), 10).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let db = TestDb::new(backend);
    let out = offersync(&m, &db.url, &["sync", "acme"]).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    (mock, m, db)
}

/// Issue 27.8: `runs acem` and `campaigns acem` are typos, not empty
/// histories: exit 1 with the name meant, as `sync` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_campaigns_of_a_misspelt_integration_exit_1_with_did_you_mean() {
    let (_mock, m, db) = synced(Backend::Sqlite).await;
    for command in ["runs", "campaigns"] {
        let out = offersync(&m, &db.url, &[command, "acem"]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}{stderr}");
        assert!(
            stderr.contains("no integration named `acem`")
                && stderr.contains("did you mean `acme`?"),
            "{command}: {stderr}"
        );
        assert!(stdout.is_empty(), "{command}: {stdout}");
        let out = offersync(&m, &db.url, &[command, "acme"]).await;
        assert_eq!(out.status.code(), Some(0), "{command}: {:?}", text(&out));
    }
    // One the directory defines but that never ran has no runs yet: no error.
    m.set_other_integration(&integration_yaml("newcomer", "http://127.0.0.1:9", ""));
    let out = offersync(&m, &db.url, &["runs", "newcomer"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no runs of `newcomer` yet"), "{stderr}");
}

/// Issue 27.8: `refresh` with no daemon on the store is no refresh: it
/// fails once no daemon took the request, unless asked only to queue it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_without_a_daemon_fails_unless_asked_only_to_queue() {
    let (_mock, m, db) = synced(Backend::Sqlite).await;
    let out = offersync(&m, &db.url, &["refresh", "acme", "--queue-only"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout
            .contains("refresh request 1 for acme recorded; the next daemon on this store runs it"),
        "{stdout}"
    );

    let started = std::time::Instant::now();
    let out = offersync(&m, &db.url, &["refresh", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("no daemon took request 2 for acme within 15s")
            && stderr.contains("--queue-only"),
        "{stderr}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(15));

    let out = offersync(&m, &db.url, &["refresh", "acme", "--queue-only", "--wait"]).await;
    assert_eq!(out.status.code(), Some(2), "the two contradict each other");
}

/// Issue 27.8: `plan` exits 0 when it made a plan, as terraform does;
/// `--detailed-exitcode` tells pending changes (2) from none (0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_exits_2_on_pending_changes_only_with_detailed_exitcode() {
    let (mock, m, db) = synced(Backend::Sqlite).await;
    let exit = async |args: &[&str]| offersync(&m, &db.url, args).await.status.code();
    assert_eq!(exit(&["plan", "acme"]).await, Some(0));
    assert_eq!(
        exit(&["plan", "acme", "--detailed-exitcode"]).await,
        Some(0)
    );
    mock.set_offers(offers(1..=6));
    let out = offersync(&m, &db.url, &["plan", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 to create"), "{stdout}");
    assert_eq!(
        exit(&["plan", "acme", "--detailed-exitcode"]).await,
        Some(2)
    );
}

/// Issue 27.8: a plan against an API that cannot be reached is an error,
/// not an all-zero plan that reads as "nothing to do".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_an_unreachable_api_prints_only_the_error() {
    let (_mock, m, db) = synced(Backend::Sqlite).await;
    // Nothing listens there: a port taken and given back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    m.set_integration(&integration_yaml(
        "acme",
        &format!("http://127.0.0.1:{port}"),
        "",
    ));
    for format in ["text", "json"] {
        let out = offersync(&m, &db.url, &["plan", "acme", "--format", format]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(stderr.contains("error: no plan: "), "{stderr}");
        assert!(!stdout.contains("to create"), "{stdout}");
        if format == "json" {
            let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(value["integration"], "acme");
            assert!(value["error"].as_str().is_some(), "{value}");
        } else {
            assert!(stdout.is_empty(), "{stdout}");
        }
    }
}

/// Issue 27.8: an SQLite URL whose directory does not exist is refused (it
/// used to create the directories and a new, empty store); a bare path is
/// told the form a URL takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_in_a_missing_directory_or_a_bare_path_is_refused_with_a_hint() {
    let mock = MockNetwork::start(offers(1..=5), 10).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let place = tempfile::tempdir().unwrap();
    let missing = place.path().join("nonexistent/dir");
    let url = format!("sqlite://{}/x.db", missing.display());
    let out = offersync(&m, &url, &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "the directory {} does not exist",
            missing.display()
        )) && stderr.contains("hint: "),
        "{stderr}"
    );
    assert!(!place.path().join("nonexistent").exists());

    let out = offersync(&m, "offersync.db", &["sync", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("\"offersync.db\" is a file path, not a URL")
            && stderr.contains("write sqlite://offersync.db"),
        "{stderr}"
    );
    assert!(!stderr.contains("unparseable"), "{stderr}");
}

/// Issue 27.8: `daemon --format` did nothing beside `--log-format`; it is
/// now a hidden alias of it, so a unit that passes it logs what it asked for.
#[test]
fn daemon_format_is_a_hidden_alias_of_log_format() {
    use std::io::BufRead;
    let cwd = tempfile::tempdir().unwrap();
    let help = offersync_in(cwd.path(), &["daemon", "--help"]);
    let (stdout, _) = text(&help);
    assert!(stdout.contains("--log-format"), "{stdout}");
    assert!(!stdout.contains("--format "), "{stdout}");
    let mut daemon = Command::new(binary())
        .args(["daemon", "--dir", ".", "--format", "json"])
        .current_dir(cwd.path())
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(daemon.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let line: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(line["level"].is_string(), "{line}");
}

/// Issue 27.8: `explain` reads the same default store as every other
/// command (./offersync.db), so it compares with the campaign unasked.
#[test]
fn explain_uses_the_default_store_like_every_command() {
    let cwd = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = repo.join("demo");
    let out = offersync_in(
        cwd.path(),
        &[
            "demo",
            "--dir",
            demo.to_str().unwrap(),
            "--database-url",
            "sqlite://offersync.db",
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let explain = || {
        offersync_in(
            cwd.path(),
            &[
                "explain",
                "demo-everflow",
                "--offer",
                "318",
                "--sample",
                demo.join("api/everflow/page1.json").to_str().unwrap(),
                "--dir",
                demo.join("integrations.d").to_str().unwrap(),
            ],
        )
    };
    let out = explain();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("plan: unchanged"), "{stdout}");
    // Without the file, there is nothing to compare with, and none is created.
    std::fs::remove_file(cwd.path().join("offersync.db")).unwrap();
    let out = explain();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("plan: unchanged"), "{stdout}");
    assert!(!cwd.path().join("offersync.db").exists());
}

/// Issue 27.9: `fetch --format json` prints an error object on failure, as
/// `sync` does, and `networks --format json` one object per network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_networks_speak_json() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &format!("http://127.0.0.1:{port}"), ""),
    );
    let out = offersync(
        &m,
        "sqlite://unused.db",
        &["fetch", "acme", "--format", "json"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let value: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(value["integration"], "acme");
    assert!(
        value["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{value}"
    );

    let cwd = tempfile::tempdir().unwrap();
    let out = offersync_in(cwd.path(), &["networks", "--format", "json"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let everflow = lines.iter().find(|l| l["name"] == "everflow").unwrap();
    assert!(everflow["auth"].is_string() && everflow["paging"].is_string());
    assert!(lines.len() > 10);
}

/// Issue 27.9: `plan --format json` is named objects a tool can read by
/// key, not tuples and bare flags: each created campaign is `{external_id,
/// name}`, each update also carries its `changes` as `{column, old, new}`,
/// each removal says what it does to the campaign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_json_is_named_objects() {
    let (mock, m, db) = synced(Backend::Sqlite).await;
    let mut now = offers(1..=4);
    now[2]["name"] = "Renamed upstream".into();
    now.push(offer(6));
    mock.set_offers(now);
    let out = offersync(&m, &db.url, &["plan", "acme", "--format", "json"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let value: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(value["integration"], "acme");
    let plan = &value["plan"];
    assert_eq!(
        plan["create"],
        serde_json::json!([{"external_id": "6", "name": "Offer 6"}])
    );
    let update = &plan["update"][0];
    assert_eq!(plan["update"].as_array().map(Vec::len), Some(1), "{plan}");
    assert_eq!(update["external_id"], "3");
    assert_eq!(update["name"], "Renamed upstream");
    assert_eq!(update["restore"], false);
    assert!(update["cause"].as_str().is_some(), "{update}");
    let name_change = update["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["column"] == "name"))
        .unwrap_or_else(|| panic!("{update}"));
    assert_eq!(name_change["old"], "Offer 3");
    assert_eq!(name_change["new"], "Renamed upstream");
    assert_eq!(
        plan["remove"],
        serde_json::json!([{"external_id": "5", "action": "pause"}])
    );
    // No tuples anywhere (an array of arrays), and no flag standing for a
    // list it is not in.
    fn no_tuples(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Array(items) => items.iter().all(|i| !i.is_array() && no_tuples(i)),
            serde_json::Value::Object(map) => map.values().all(no_tuples),
            _ => true,
        }
    }
    assert!(no_tuples(&value), "{value}");
    for flag in ["pause", "pause_filtered", "restore", "changes", "causes"] {
        assert!(plan.get(flag).is_none(), "{flag}: {plan}");
    }
}

/// Issue 27.9: `status` prints a manifest error (a diagnostic with its
/// source line and caret) on real lines, indented under the integration,
/// not as one line of `\n`; other control characters stay escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_a_manifest_error_on_real_lines() {
    let (_mock, m, db) = synced(Backend::Sqlite).await;
    db.execute(
        "UPDATE integrations SET last_error = 'manifest invalid, running the last good spec: integration.yaml:7:12: error: spec.enabled: \"yes\" is not true or false
   |
 7 |   enabled: yes
   |            ^^^
  hint: write true' || char(27) || '[31m' WHERE name = 'acme'",
    );
    let out = offersync(&m, &db.url, &["status"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("\\n"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(
        stdout.contains(
            "  last error: manifest invalid, running the last good spec: integration.yaml:7:12: error: spec.enabled: \"yes\" is not true or false\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n     7 |   enabled: yes\n       |            ^^^\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n      hint: write true\\u{1b}[31m"),
        "{stdout}"
    );
}

/// Issue 27.9: money is printed one way by every command: two decimals at
/// least (2.60, not 2.6 in one command and 2.60 in the next), more when the
/// amount has them, and a revenue share as a percentage.
#[test]
fn money_is_formatted_one_way_in_every_command() {
    let cwd = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = repo.join("demo");
    let manifests = demo.join("integrations.d");
    let (manifests, sample) = (
        manifests.to_str().unwrap(),
        demo.join("api/everflow/page1.json"),
    );
    let run = |args: &[&str]| {
        let out = offersync_in(cwd.path(), args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    let store = ["--database-url", "sqlite://offersync.db"];
    let shown = run(&[&["demo", "--dir", demo.to_str().unwrap()][..], &store].concat());
    let campaigns = run(&[
        &["campaigns", "demo-everflow", "--dir", manifests][..],
        &store,
    ]
    .concat());
    for out in [&shown, &campaigns] {
        // 214: revenue 3.25, payout 2.6; 318: a 12 % revenue share, 9.6 % paid.
        assert!(out.contains("3.25") && out.contains("2.60"), "{out}");
        assert!(out.contains("12.00%") && out.contains("9.60%"), "{out}");
        assert!(!out.contains("2.6 ") && !out.contains(" 12 "), "{out}");
    }
    let mapped = run(&[
        "map",
        "--network",
        "everflow",
        "--sample",
        sample.to_str().unwrap(),
        "--dir",
        manifests,
    ]);
    assert!(
        mapped.contains("3.25") && mapped.contains("22.00") && mapped.contains("12.00%"),
        "{mapped}"
    );
    let explained = run(&[
        "explain",
        "demo-everflow",
        "--offer",
        "214",
        "--sample",
        sample.to_str().unwrap(),
        "--dir",
        manifests,
    ]);
    assert!(
        explained.contains("payout: 3.25 × 0.8 = 2.60"),
        "{explained}"
    );
}

/// Issue 27.9: amounts in `plan` and `changes` read as in every other
/// command (`2.50 → 7.00`, not `2.5 → 7`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_changes_print_amounts_like_every_command() {
    let (mock, m, db) = synced(Backend::Sqlite).await;
    let mut now = offers(1..=5);
    now[0]["payout"] = "7".into();
    mock.set_offers(now);
    let out = offersync(&m, &db.url, &["plan", "acme"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("payout: 2.50 → 7.00"), "{stdout}");
    let out = offersync(&m, &db.url, &["sync", "acme"]).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let out = offersync(&m, &db.url, &["changes", "--since", "5"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("payout 2.50 → 7.00"), "{stdout}");
}

/// Issue 27.1: `changes` in text cut old and new to the same prefix
/// (`name FitTrack Pro - iOS - US  → FitTrack Pro - iOS - US`); it shows
/// the part that differs, with a little context, and elides the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_show_the_part_of_a_long_value_that_differs() {
    let mock = MockNetwork::start(offers(1..=3), 10).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let db = TestDb::new(Backend::Sqlite);
    let named = |first: &str, second: &str| {
        let mut list = offers(1..=3);
        list[0]["name"] = first.into();
        list[1]["name"] = second.into();
        list
    };
    mock.set_offers(named(
        "FitTrack Pro - iOS - US - CPI - Tier 1 traffic only",
        "GlowSkin Shop - RevShare 12% - EU (exclude FR) - new customers",
    ));
    assert!(
        offersync(&m, &db.url, &["sync", "acme"])
            .await
            .status
            .success()
    );
    mock.set_offers(named(
        "FitTrack Pro - iOS - US - CPA - Tier 1 traffic only",
        "GlowSkin Shop - RevShare 15% - EU (exclude FR) - new customers",
    ));
    assert!(
        offersync(&m, &db.url, &["sync", "acme"])
            .await
            .status
            .success()
    );
    let out = offersync(&m, &db.url, &["changes", "--since", "3"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("name …- US - CPI - Tier 1… → …- US - CPA - Tier 1…"),
        "{stdout}"
    );
    assert!(
        stdout.contains("name …RevShare 12% - EU (ex… → …RevShare 15% - EU (ex…"),
        "{stdout}"
    );
}

/// `offersync man --out DIR` into a fresh directory: (file name, text).
fn man_pages() -> (
    tempfile::TempDir,
    std::collections::BTreeMap<String, String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = offersync_in(dir.path(), &["man", "--out", "pages"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let pages = std::fs::read_dir(dir.path().join("pages"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    (dir, pages)
}

/// Issue 27.10: an operator reading `daemon --help` or the man pages learns
/// that the daemon serves a status page, and under which option (`--listen`,
/// the old `--metrics-addr` kept).
#[test]
fn daemon_help_and_man_say_the_status_page_is_served() {
    let cwd = tempfile::tempdir().unwrap();
    let help = offersync_in(cwd.path(), &["daemon", "--help"]);
    let (stdout, _) = text(&help);
    assert!(stdout.contains("--listen"), "{stdout}");
    assert!(stdout.contains("status page"), "{stdout}");
    let short = offersync_in(cwd.path(), &["--help"]);
    assert!(text(&short).0.contains("status page"), "{:?}", text(&short));
    let (_dir, pages) = man_pages();
    for page in ["offersync.1", "offersync-daemon.1"] {
        assert!(
            pages[page].contains("status page"),
            "{page}: {}",
            pages[page]
        );
    }
    assert!(pages["offersync-daemon.1"].contains("listen"));
    // The old name still starts a daemon's listener (parsed, not refused).
    let old = offersync_in(cwd.path(), &["daemon", "--metrics-addr", "nonsense"]);
    assert!(
        text(&old).1.contains("[ADDR:]PORT") || text(&old).1.contains("nonsense"),
        "{:?}",
        text(&old)
    );
}

/// Issue 27.10: the main man page has the sections man readers look for:
/// EXIT STATUS, ENVIRONMENT (every variable offersync reads) and EXAMPLES.
#[test]
fn man_pages_have_exit_status_environment_and_examples() {
    let (_dir, pages) = man_pages();
    let main = &pages["offersync.1"];
    for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH EXAMPLES"] {
        assert!(main.contains(section), "{section} missing:\n{main}");
    }
    for var in [
        "DATABASE_URL",
        "RUST_LOG",
        "CREDENTIALS_DIRECTORY",
        "OFFERSYNC_SECRET_ROOTS",
        "OFFERSYNC_FIXED_NOW",
    ] {
        assert!(main.contains(var), "{var} missing:\n{main}");
    }
    assert!(main.contains("offersync validate"), "{main}");
    // Each command's page carries the environment and exit status too.
    let daemon = &pages["offersync-daemon.1"];
    assert!(daemon.contains(".SH \"EXIT STATUS\"") && daemon.contains("DATABASE_URL"));
}

/// `offersync validate` of the one integration with this schedule.
fn validate_schedule(schedule: &str) -> (Option<i32>, String) {
    let yaml = integration_yaml("acme", "http://127.0.0.1:9", "").replace(
        &format!("schedule: \"{QUIET_SCHEDULE}\""),
        &format!("schedule: \"{schedule}\""),
    );
    assert!(yaml.contains(schedule), "{yaml}");
    let m = Manifests::new(&network_yaml(PAGE_PAGINATION, HEADER_AUTH), &yaml);
    let cwd = tempfile::tempdir().unwrap();
    let dir = m.path().to_str().unwrap().to_string();
    let out = offersync_in(cwd.path(), &["validate", "--dir", &dir]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout + &stderr)
}

/// Issue 27.10: `@every 5m` (Go cron) gets offersync's own message, saying
/// what to write instead, not croner's field count.
#[test]
fn every_duration_schedule_says_what_to_write_instead() {
    let (code, output) = validate_schedule("@every 5m");
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("`@every` is not crontab"), "{output}");
    assert!(output.contains("write \"*/5 * * * *\""), "{output}");
    assert!(!output.contains("between 5 and 7 fields"), "{output}");
}

/// Issue 27.10: a schedule that never fires and a step out of range are
/// refused; one that fires only in leap years stays accepted.
#[test]
fn schedules_that_never_fire_or_step_out_of_range_are_refused() {
    let (code, output) = validate_schedule("0 0 31 2 *");
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("never fires"), "{output}");
    let (code, output) = validate_schedule("*/61 * * * *");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("minute step /61 is out of range"),
        "{output}"
    );
    for fine in ["0 0 29 2 *", "*/59 * * * *", "0 */6 * * 1-5"] {
        let (code, output) = validate_schedule(fine);
        assert_eq!(code, Some(0), "{fine}: {output}");
    }
}

/// Issue 27.10: a wrong `apiVersion` and a wrong `kind` are reported
/// together, each at its line with the value meant, not one per try.
#[test]
fn wrong_api_version_and_kind_are_reported_together() {
    let yaml = integration_yaml("acme", "http://127.0.0.1:9", "")
        .replace("apiVersion: offersync/v1", "apiVersion: offersync/v2")
        .replace("kind: Integration", "kind: Integraton");
    let m = Manifests::new(&network_yaml(PAGE_PAGINATION, HEADER_AUTH), &yaml);
    let cwd = tempfile::tempdir().unwrap();
    let dir = m.path().to_str().unwrap().to_string();
    let out = offersync_in(cwd.path(), &["validate", "--dir", &dir]);
    let (stdout, stderr) = text(&out);
    let output = stdout + &stderr;
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(output.contains("apiVersion: \"offersync/v2\""), "{output}");
    assert!(output.contains("did you mean `offersync/v1`?"), "{output}");
    assert!(output.contains("kind: \"Integraton\""), "{output}");
    assert!(output.contains("did you mean `Integration`?"), "{output}");
    // Each once.
    assert_eq!(
        output.matches("offersync/v2\" is not").count(),
        1,
        "{output}"
    );
}

/// Issue 27.10: bash completion offers the integration names the directory
/// (`--dir`) defines after a command that takes NAME, and clap's own
/// completion elsewhere. Driven by sourcing the script in bash with
/// COMP_WORDS set, `offersync` on PATH being the binary under test.
#[test]
fn bash_completion_offers_integration_names_from_the_directory() {
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", "http://127.0.0.1:9", ""),
    );
    m.set_other_integration(&integration_yaml("acorn", "http://127.0.0.1:9", ""));
    let cwd = tempfile::tempdir().unwrap();
    let script = offersync_in(cwd.path(), &["completions", "bash"]);
    assert_eq!(script.status.code(), Some(0));
    std::fs::write(cwd.path().join("offersync.bash"), &script.stdout).unwrap();
    let bin_dir = binary().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |words: &[&str]| -> Vec<String> {
        let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source ./offersync.bash\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n_offersync_names offersync \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words.join(" "),
            words.len() - 1
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(program)
            .current_dir(cwd.path())
            .env("PATH", &path)
            .output()
            .expect("run bash");
        assert!(out.status.success(), "{:?}", text(&out));
        let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        found.sort();
        found
    };
    let dir = m.path().to_str().unwrap();
    assert_eq!(
        complete(&["offersync", "sync", "--dir", dir, "ac"]),
        ["acme", "acorn"]
    );
    assert_eq!(
        complete(&[
            "offersync",
            "plan",
            "--database-url",
            "sqlite://x.db",
            "--dir",
            dir,
            "aco"
        ]),
        ["acorn"]
    );
    assert_eq!(
        complete(&["offersync", "runs", "--dir", dir, ""]),
        ["acme", "acorn"]
    );
    // A NAME given already: no second one.
    assert!(
        !complete(&["offersync", "sync", "--dir", dir, "acme", "ac"])
            .contains(&"acorn".to_string())
    );
    // Elsewhere, clap's completion: subcommands.
    let commands = complete(&["offersync", "sy"]);
    assert!(commands.contains(&"sync".to_string()), "{commands:?}");
}
