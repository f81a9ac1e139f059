//! The README's Quick start, step by step as written (issue 14.9): the
//! demo's printed commands read the demo's store, a copied integration runs
//! alone in its own manifest directory with working editor schemas, the
//! `base_url` instructions hold for every built-in network, and the CI check
//! needs no secrets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn offersync(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
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

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const README: &str = include_str!("../README.md");

/// The README's first command, in `work`: the demo into its SQLite store there.
fn run_demo(work: &Path) -> Output {
    let demo_dir = repo().join("demo");
    offersync(work, &["demo", "--dir", demo_dir.to_str().unwrap()], &[])
}

#[test]
fn step_1_the_demos_printed_commands_read_the_demos_store() {
    let work = tempfile::tempdir().unwrap();
    let out = run_demo(work.path());
    let text = stdout(&out);
    assert!(out.status.success(), "{}", all(&out));
    let suggested = "offersync runs demo-everflow --database-url sqlite://offersync-demo.db";
    assert!(text.contains(suggested), "{text}");
    assert!(README.contains(suggested));
    // Typed as printed, in the same directory: the demo's runs, not "no runs yet".
    let args: Vec<&str> = suggested.split_whitespace().skip(1).collect();
    let out = offersync(work.path(), &args, &[]);
    assert!(out.status.success(), "{}", all(&out));
    assert!(stdout(&out).contains("succeeded"), "{}", all(&out));
    let show = offersync(
        work.path(),
        &[
            "runs",
            "show",
            "1",
            "--database-url",
            "sqlite://offersync-demo.db",
        ],
        &[],
    );
    assert!(stdout(&show).contains("no_preview_url"), "{}", all(&show));
    // A read command on a store that does not exist says so and creates nothing.
    let out = offersync(work.path(), &["runs", "demo-everflow"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(
        all(&out).contains("there is no store at offersync.db"),
        "{}",
        all(&out)
    );
    assert!(
        !work.path().join("offersync.db").exists(),
        "runs created an empty store"
    );
}

/// Step 3's table, as the README states it, applied to the copied file.
fn point_at(network: &str, demo: &str) -> String {
    let row = README
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("| `{network}` |")))
        .unwrap_or_else(|| panic!("the README's table has no row for {network}"));
    let mut yaml = demo
        .replace("name: demo-everflow", "name: acme")
        .replace("network: everflow", &format!("network: {network}"))
        .replace("${env:OFFERSYNC_DEMO_API_KEY}", "${env:ACME_API_KEY}");
    let base_url_line = "    base_url: ${env:OFFERSYNC_DEMO_API}\n";
    assert!(yaml.contains(base_url_line));
    let replacement = if row.contains("delete the line") {
        String::new()
    } else {
        assert!(row.contains("set it to"), "{row}");
        "    base_url: https://api.example-network.test\n".to_string()
    };
    yaml = yaml.replace(base_url_line, &replacement);
    for (param, value) in [("affiliate_id", "\"1234\""), ("network_id", "yournetwork")] {
        if row.contains(&format!("add `{param}:")) {
            yaml = yaml.replace(
                "    api_key: ${env:ACME_API_KEY}\n",
                &format!("    api_key: ${{env:ACME_API_KEY}}\n    {param}: {value}\n"),
            );
        }
    }
    yaml
}

#[test]
fn steps_2_to_4_a_copied_integration_validates_for_every_built_in_network() {
    let home = tempfile::tempdir().unwrap();
    let manifests = home.path().join("offersync-manifests");
    std::fs::create_dir_all(manifests.join("integrations.d")).unwrap();
    // Step 2 as written: the demo integration, from the binary.
    let step = "offersync demo --manifest > integrations.d/acme.yaml";
    assert!(README.contains(step));
    let printed = offersync(&manifests, &["demo", "--manifest"], &[]);
    assert!(printed.status.success(), "{}", all(&printed));
    let demo = stdout(&printed);
    let copy = manifests.join("integrations.d/acme.yaml");
    std::fs::write(&copy, &demo).unwrap();
    let out = offersync(
        &manifests,
        &["schema", "--out", "integrations.d/.schemas"],
        &[],
    );
    assert!(out.status.success(), "{}", all(&out));
    // The copy's editor line resolves where it now is.
    let schema_line = demo.lines().next().unwrap();
    let relative = schema_line.split("$schema=").nth(1).unwrap();
    assert!(
        copy.parent().unwrap().join(relative).is_file(),
        "{schema_line}"
    );

    for network in ["everflow", "trackier", "affise", "cake", "hasoffers"] {
        std::fs::write(&copy, point_at(network, &demo)).unwrap();
        let out = offersync(
            &manifests,
            &["validate", "--offline", "--dir", "integrations.d"],
            &[],
        );
        let text = all(&out);
        assert!(out.status.success(), "{network}: {text}");
        // Only the copy runs: no second sample integration from elsewhere.
        assert!(text.contains("valid: 1 integrations"), "{network}: {text}");
        // Without --offline the key must be there, as it must for the daemon.
        let out = offersync(&manifests, &["validate", "--dir", "integrations.d"], &[]);
        assert_eq!(out.status.code(), Some(1), "{network}");
        let out = offersync(
            &manifests,
            &["validate", "--dir", "integrations.d"],
            &[("ACME_API_KEY", "k")],
        );
        assert!(out.status.success(), "{network}: {}", all(&out));
    }
}

/// Issue 14.7: `refresh --wait` with no number, on a store no daemon runs
/// on, gives up once no daemon has taken the request, and says why.
#[test]
fn refresh_wait_without_a_daemon_gives_up_and_says_why() {
    let work = tempfile::tempdir().unwrap();
    let out = run_demo(work.path());
    assert!(out.status.success(), "{}", all(&out));
    let started = std::time::Instant::now();
    let out = offersync(
        work.path(),
        &[
            "refresh",
            "demo-everflow",
            "--wait",
            "--database-url",
            "sqlite://offersync-demo.db",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", all(&out));
    assert!(
        all(&out).contains("no daemon took request"),
        "{}",
        all(&out)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "it waited {:?}",
        started.elapsed()
    );
}
