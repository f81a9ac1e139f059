//! Names the commit in `offersync --version`: `git rev-parse` at build time,
//! or `$OFFERSYNC_COMMIT` where the source is not a git checkout (a source
//! package), else "unknown commit".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OFFERSYNC_COMMIT");
    for path in [".git/HEAD", ".git/index", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("OFFERSYNC_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=OFFERSYNC_COMMIT={commit}");
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let dirty = Command::new("git")
        .args(["diff-index", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|s| s.code() == Some(1));
    if dirty {
        commit.push_str("-modified");
    }
    (!commit.is_empty()).then_some(commit)
}
