//! Which revision of the manifest directory an integration's applied spec
//! came from: when the directory is a git work tree, the newest commit
//! whose version of the manifest file holds the applied document (short
//! SHA, subject, commit time); else the spec's content hash, shortened.
//!
//! This module owns that question and nothing else: it runs `git` as a
//! subprocess (read-only commands, no pager, no prompt; no libgit2 in the
//! build), never writes, and treats any failure of git (not installed, not
//! a work tree, a repository it refuses) as "not in git". The status page
//! and `offersync status` show what it finds.

use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};

/// Commits of a manifest file looked through for the applied document.
const COMMITS_SEARCHED: usize = 50;

/// Where an applied spec came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// A commit of the directory's git repository holds it.
    Commit {
        short_sha: String,
        subject: String,
        time: DateTime<Utc>,
    },
    /// The directory is a git work tree, but no commit of the file holds
    /// the applied spec (it was applied from an uncommitted edit).
    Uncommitted { hash: String },
    /// Not a git work tree (or git cannot say): the content hash.
    Hash(String),
}

impl Revision {
    /// One line: `1a2b3c4 "Raise acme's payout cap" (2026-12-08 00:10 UTC)`,
    /// `uncommitted (spec 1a2b3c4d5e6f)` or `spec 1a2b3c4d5e6f`.
    pub fn describe(&self) -> String {
        match self {
            Self::Commit {
                short_sha,
                subject,
                time,
            } => format!(
                "{short_sha} {subject:?} ({})",
                time.format("%Y-%m-%d %H:%M UTC")
            ),
            Self::Uncommitted { hash } => format!("uncommitted (spec {})", short(hash)),
            Self::Hash(hash) => format!("spec {}", short(hash)),
        }
    }
}

/// The first 12 characters of a content hash.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The revision the applied `spec` (a document of `source_file`, whose
/// content hash is `spec_hash`) came from.
pub fn revision(source_file: &Path, spec: &str, spec_hash: &str) -> Revision {
    let not_in_git = || Revision::Hash(spec_hash.to_string());
    let (Some(dir), Some(file)) = (source_file.parent(), source_file.file_name()) else {
        return not_in_git();
    };
    if !dir.is_dir() {
        return not_in_git();
    }
    let git = |args: &[&std::ffi::OsStr]| -> Option<Vec<u8>> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["--no-pager", "-c", "core.quotepath=off"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    };
    let inside = git(&["rev-parse".as_ref(), "--is-inside-work-tree".as_ref()]);
    if inside.as_deref().map(<[u8]>::trim_ascii) != Some(b"true") {
        return not_in_git();
    }
    let relative = Path::new(".").join(file);
    let limit = format!("-n{COMMITS_SEARCHED}");
    let Some(log) = git(&[
        "log".as_ref(),
        limit.as_ref(),
        "--format=%H%x1f%h%x1f%cI%x1f%s".as_ref(),
        "--".as_ref(),
        relative.as_os_str(),
    ]) else {
        // A work tree whose branch has no commit yet.
        return Revision::Uncommitted {
            hash: spec_hash.to_string(),
        };
    };
    let log = String::from_utf8_lossy(&log);
    for line in log.lines() {
        let mut fields = line.splitn(4, '\u{1f}');
        let (Some(sha), Some(short_sha), Some(time), Some(subject)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let object = format!("{sha}:./{}", file.to_string_lossy());
        let Some(text) = git(&["show".as_ref(), object.as_ref()]) else {
            continue;
        };
        if String::from_utf8_lossy(&text).contains(spec) {
            let Ok(time) = DateTime::parse_from_rfc3339(time) else {
                continue;
            };
            return Revision::Commit {
                short_sha: short_sha.to_string(),
                subject: subject.to_string(),
                time: time.with_timezone(&Utc),
            };
        }
    }
    Revision::Uncommitted {
        hash: spec_hash.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=Ops",
                "-c",
                "user.email=ops@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn the_commit_holding_the_applied_spec_or_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("acme.yaml");
        let v1 = "kind: Integration\nmetadata: {name: acme}\nspec: {payout: 1}\n";
        let v2 = "kind: Integration\nmetadata: {name: acme}\nspec: {payout: 2}\n";
        std::fs::write(&file, v1).unwrap();
        // Not a work tree yet: the hash.
        assert_eq!(
            revision(&file, v1, "abcdef0123456789"),
            Revision::Hash("abcdef0123456789".into())
        );
        git(dir.path(), &["init", "-q"]);
        // In a work tree, never committed.
        assert!(matches!(
            revision(&file, v1, "abcdef0123456789"),
            Revision::Uncommitted { .. }
        ));
        git(dir.path(), &["add", "acme.yaml"]);
        git(dir.path(), &["commit", "-q", "-m", "Add acme"]);
        let first = revision(&file, v1, "h1");
        let Revision::Commit {
            short_sha, subject, ..
        } = &first
        else {
            panic!("{first:?}");
        };
        assert_eq!(subject, "Add acme");
        assert!(short_sha.len() >= 7, "{short_sha}");
        // Edited and committed: v2 comes from the new commit, v1 (still
        // applied while v2 waits) from the first.
        std::fs::write(&file, v2).unwrap();
        git(dir.path(), &["commit", "-q", "-am", "Raise acme's payout"]);
        assert!(
            matches!(&revision(&file, v2, "h2"), Revision::Commit { subject, .. } if subject == "Raise acme's payout")
        );
        assert_eq!(revision(&file, v1, "h1"), first);
        // An edit not committed, applied: said so.
        let v3 = v2.replace("payout: 2", "payout: 3");
        std::fs::write(&file, &v3).unwrap();
        assert_eq!(
            revision(&file, &v3, "h3"),
            Revision::Uncommitted { hash: "h3".into() }
        );
        assert!(first.describe().contains("\"Add acme\" ("));
    }
}
