//! What ops install (issue 14.6–14.8): the systemd unit as systemd itself
//! judges it, secrets through `LoadCredential=`, and the generated docs the
//! unit names. The Debian package itself is built and installed by
//! `scripts/package-test`, which needs a release build.

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../contrib/systemd/offersync.service");

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_offersync")
}

/// The unit as installed, but with ExecStart pointing at the binary under
/// test (systemd checks that the command exists), and the man pages it
/// names generated where `man` finds them.
fn unit_under_test(dir: &Path) -> std::path::PathBuf {
    let unit = UNIT.replace("/usr/bin/offersync", binary());
    let path = dir.join("offersync.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(binary())
        .args(["man", "--out"])
        .arg(dir.join("man/man1"))
        .output()
        .unwrap();
    assert!(out.status.success());
    path
}

#[test]
fn systemd_analyze_verify_finds_nothing_wrong_with_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", dir.path().join("man"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Issue 27.7: nothing may be said, on the systemd of the distribution
    // packaged for (Debian 12: 252, which ignored `Type=notify-reload` and
    // ran the service as `simple`).
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        complaints.is_empty() && out.status.success(),
        "systemd-analyze verify:\n{stderr}"
    );
}

#[test]
fn the_units_exposure_is_two_or_lower() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for offersync.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{text}");
    for directive in [
        "Type=notify\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "EnvironmentFile=-/etc/offersync/offersync.env",
        "--metrics-addr 127.0.0.1:",
        "LoadCredential=",
        "UMask=0077",
    ] {
        assert!(UNIT.contains(directive), "the unit lacks {directive}");
    }
}

/// A `${credential:NAME}` secret is read from `$CREDENTIALS_DIRECTORY`,
/// where systemd puts what `LoadCredential=` names, readable by the
/// service's dynamic user only.
#[test]
fn a_credential_secret_is_read_from_the_credentials_directory() {
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("acme.yaml"),
        "apiVersion: offersync/v1\nkind: Integration\nmetadata: {name: acme}\nspec:\n  network: everflow\n  schedule: \"*/30 * * * *\"\n  params: {api_key: \"${credential:acme.key}\"}\n  advertiser: Acme\n",
    )
    .unwrap();
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("acme.key"), "k3y\n").unwrap();
    let run = |credentials_dir: Option<&Path>| {
        let mut cmd = Command::new(binary());
        cmd.args(["validate", "--dir"]).arg(manifests.path());
        cmd.env_remove("CREDENTIALS_DIRECTORY");
        if let Some(dir) = credentials_dir {
            cmd.env("CREDENTIALS_DIRECTORY", dir);
        }
        cmd.output().unwrap()
    };
    let out = run(Some(credentials.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("LoadCredential="), "{stderr}");
}
