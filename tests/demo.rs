//! `offersync demo` as a newcomer meets it (issue 27.11): from any working
//! directory (the responses and the integration are in the binary), with
//! the filters at work and the countries explained, printed commands that
//! read the demo's store, no store left behind when it cannot run, and
//! `demo --serve` as the network for the Quick start's own commands.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn offersync(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("OFFERSYNC_DEMO_API")
        .env_remove("OFFERSYNC_DEMO_API_KEY")
        .env_remove("ACME_API_KEY")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn all(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

/// The line of `text` that starts (after spaces) with `start`.
fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}

#[test]
fn the_demo_runs_from_any_directory_and_shows_the_filters_at_work() {
    // A directory with nothing of the source tree in it.
    let work = tempfile::tempdir().unwrap();
    let out = offersync(work.path(), &["demo"], &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", all(&out));
    assert!(work.path().join("offersync-demo.db").exists());
    // A country, a payout and a preview URL filter each skip an offer.
    for (id, reason) in [
        ("509", "country_not_allowed"),
        ("611", "payout_below_min"),
        ("7", "no_preview_url"),
    ] {
        assert!(
            text.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.len() > 2 && words[..3] == ["skipped", id, reason]
            }),
            "no skip of {id} by {reason} in:\n{text}"
        );
    }
    assert!(
        text.contains("JP,KR not in filters.countries.allow"),
        "{text}"
    );
    // The "EU (exclude FR)" offer: its campaign's countries, and why.
    let eu = text
        .lines()
        .find(|l| l.contains("GlowSkin Shop - RevShare 12% - EU (exclude FR)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(eu.trim_end().ends_with("DE,ES,IT"), "{eu}");
    assert!(
        text.contains(
            "318    the offer targets AT,BE,DE,ES,IT,NL,PL and blocks FR upstream; \
             AT,BE,NL,PL not in filters.countries.allow: the campaign targets DE,ES,IT, never FR"
        ),
        "{text}"
    );

    // The printed commands, typed as printed in the same directory, read
    // the demo's store (not the default ./offersync.db).
    let show = line(&text, "This run's skipped offers: ")
        .trim_start_matches("This run's skipped offers: ")
        .to_string();
    assert_eq!(
        show,
        "offersync runs show 1 --database-url sqlite://offersync-demo.db"
    );
    let args: Vec<&str> = show.split_whitespace().skip(1).collect();
    let shown = offersync(work.path(), &args, &[]);
    assert!(shown.status.success(), "{}", all(&shown));
    for reason in ["country_not_allowed", "payout_below_min", "no_preview_url"] {
        assert!(stdout(&shown).contains(reason), "{}", all(&shown));
    }
    let hint = line(&text, "(offersync runs show 1");
    assert!(
        hint.starts_with("(offersync runs show 1 --database-url sqlite://offersync-demo.db "),
        "{hint}"
    );
    let campaigns = line(&text, "Its campaigns: ").trim_start_matches("Its campaigns: ");
    let args: Vec<&str> = campaigns.split_whitespace().skip(1).collect();
    let listed = offersync(work.path(), &args, &[]);
    assert!(listed.status.success(), "{}", all(&listed));
    assert!(stdout(&listed).contains("GlowSkin"), "{}", all(&listed));
    assert!(!work.path().join("offersync.db").exists());

    // Again: nothing changes.
    let again = offersync(work.path(), &["demo"], &[]);
    assert!(again.status.success(), "{}", all(&again));
    assert!(
        stdout(&again).contains("created 0, updated 0, unchanged 3"),
        "{}",
        all(&again)
    );
    assert!(
        stdout(&again).contains("offersync runs show 2 --database-url sqlite://offersync-demo.db"),
        "{}",
        all(&again)
    );
}

#[test]
fn the_built_in_demo_is_the_shipped_demo_directory() {
    let work = tempfile::tempdir().unwrap();
    let printed = offersync(work.path(), &["demo", "--manifest"], &[]);
    assert!(printed.status.success(), "{}", all(&printed));
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/integrations.d/demo-everflow.yaml"),
    )
    .unwrap();
    assert_eq!(stdout(&printed).trim_end(), shipped.trim_end());
    // --dir reads the same demo from disk, with the same outcome.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let from_disk = offersync(work.path(), &["demo", "--dir", dir.to_str().unwrap()], &[]);
    assert!(from_disk.status.success(), "{}", all(&from_disk));
    let built_in_dir = tempfile::tempdir().unwrap();
    let built_in = offersync(built_in_dir.path(), &["demo"], &[]);
    assert!(
        line(&stdout(&built_in), "fetched").contains("fetched 7, created 3,"),
        "{}",
        all(&built_in)
    );
    assert_eq!(
        line(&stdout(&built_in), "fetched"),
        line(&stdout(&from_disk), "fetched")
    );
}

#[test]
fn a_demo_that_cannot_run_leaves_no_store_behind() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-such-demo");
    let out = offersync(
        work.path(),
        &["demo", "--dir", missing.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(
        all(&out).contains("cannot read the demo responses"),
        "{}",
        all(&out)
    );
    assert!(
        !work.path().join("offersync-demo.db").exists(),
        "the demo created a store before knowing it could run"
    );
}

/// `offersync demo --serve` in the background, and the base URL it prints.
struct Served {
    child: Child,
    base_url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(cwd: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .current_dir(cwd)
        .args(["demo", "--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let mut base_url = None;
    for l in lines.by_ref() {
        let l = l.unwrap();
        printed.push_str(&l);
        printed.push('\n');
        if let Some(url) = l.trim().strip_prefix("base_url: ") {
            base_url = Some(url.to_string());
            break;
        }
    }
    // The rest is read (and dropped) so that the server never blocks on a
    // full pipe.
    std::thread::spawn(move || for _ in lines {});
    let base_url = base_url.unwrap_or_else(|| panic!("no base_url printed:\n{printed}"));
    assert!(base_url.starts_with("http://127.0.0.1:"), "{printed}");
    assert!(
        printed.contains("export ACME_API_KEY=demo-api-key"),
        "{printed}"
    );
    Served { child, base_url }
}

#[test]
fn demo_serve_is_the_network_for_fetch_plan_sync_and_the_daemon() {
    let home = tempfile::tempdir().unwrap();
    let served = serve(home.path());
    // The Quick start: the demo integration, copied and pointed at the
    // served API as `--serve` says.
    std::fs::create_dir(home.path().join("integrations.d")).unwrap();
    let manifest = offersync(home.path(), &["demo", "--manifest"], &[]);
    let yaml = stdout(&manifest)
        .replace("name: demo-everflow", "name: acme")
        .replace("${env:OFFERSYNC_DEMO_API_KEY}", "${env:ACME_API_KEY}")
        .replace("${env:OFFERSYNC_DEMO_API}", &served.base_url);
    std::fs::write(home.path().join("integrations.d/acme.yaml"), yaml).unwrap();
    let key = [("ACME_API_KEY", "demo-api-key")];

    let fetched = offersync(home.path(), &["fetch", "acme"], &key);
    assert!(fetched.status.success(), "{}", all(&fetched));
    assert!(
        stdout(&fetched).contains("country_not_allowed"),
        "{}",
        all(&fetched)
    );
    let planned = offersync(home.path(), &["plan", "acme"], &key);
    assert!(planned.status.success(), "{}", all(&planned));
    assert!(
        stdout(&planned).contains("3 to create"),
        "{}",
        all(&planned)
    );
    let synced = offersync(home.path(), &["sync", "acme"], &key);
    assert!(synced.status.success(), "{}", all(&synced));
    assert!(stdout(&synced).contains("created 3"), "{}", all(&synced));

    // The daemon runs the new integration at once, against the same API.
    let log = home.path().join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .current_dir(home.path())
        .args(["daemon", "--dir", "integrations.d"])
        .env("ACME_API_KEY", "demo-api-key")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ran = loop {
        let runs = offersync(home.path(), &["runs", "acme", "--format", "json"], &[]);
        // JSON lines, one a run.
        let by_daemon = String::from_utf8_lossy(&runs.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|r| r["trigger"] != "cli" && r["status"] == "succeeded");
        if by_daemon || Instant::now() > deadline {
            break by_daemon;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        ran,
        "the daemon did not sync from the demo API:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn the_readme_says_what_demo_serve_serves() {
    let readme = include_str!("../README.md");
    let base_url = format!(
        "base_url: http://127.0.0.1:{}",
        offersync::demo::DEFAULT_SERVE_PORT
    );
    assert!(readme.contains("offersync demo --serve"));
    assert!(readme.contains(&base_url), "{base_url}");
    assert!(readme.contains(&format!("export ACME_API_KEY={}", offersync::demo::API_KEY)));
}

#[test]
fn demo_serve_listens_on_loopback_only() {
    let work = tempfile::tempdir().unwrap();
    let out = offersync(
        work.path(),
        &["demo", "--serve", "--listen", "0.0.0.0:0"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(all(&out).contains("loopback only"), "{}", all(&out));
}
