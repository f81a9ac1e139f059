//! Secret references (`${env:NAME}`, `${file:PATH}`, `${credential:NAME}`)
//! and the values they hold.
//!
//! Secrets are resolved once at load, or, offline (`validate --offline`, for
//! a CI that has no secrets), only checked for their form. The resolved text lives in a
//! [`ParamValue`] whose `Debug` and `Display` never show it; code that must
//! send it (fetch) asks for it explicitly with [`ParamValue::expose`].
//!
//! Secret files are read only from the folders secrets belong in (the
//! `secrets/` folder beside the manifest, `$CREDENTIALS_DIRECTORY`, and the
//! folders the operator names with `--secret-root` or
//! `$OFFERSYNC_SECRET_ROOTS`), after resolving symlinks, and never from
//! `/proc`, `/sys` or `/dev`: a manifest is not trusted to name any file the
//! process can read (`/proc/self/environ` is the daemon's whole environment,
//! and a query-auth Network sends the "key" to the manifest's `base_url`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Largest secret file read (a key, a token, a password: never large).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The environment variable naming more folders secret files may be read
/// from, `:`-separated (as `--secret-root` does, once per folder).
pub const SECRET_ROOTS_ENV: &str = "OFFERSYNC_SECRET_ROOTS";

/// The kernel's views of processes, devices and itself: never secret files,
/// whatever folder is allowed (a root of `/` included).
const NEVER_READ: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The folders named with `--secret-root`. Process-wide because one process
/// has one operator, and set once by the CLI before any manifest is loaded:
/// the loaders (CLI commands, the daemon's rescans) then need no extra
/// argument threaded through them.
static OPERATOR_ROOTS: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// Records the folders the operator named with `--secret-root` (the first
/// call wins; the CLI makes it once, at start).
pub fn set_operator_roots(roots: Vec<PathBuf>) {
    let _ = OPERATOR_ROOTS.set(roots);
}

/// A parameter's resolved value.
#[derive(Clone, PartialEq, Eq)]
pub struct ParamValue {
    value: String,
    secret: bool,
    /// Checked offline: the value holds a reference that was not read.
    unresolved: bool,
}

impl ParamValue {
    pub fn new(value: String, secret: bool) -> Self {
        Self {
            value,
            secret,
            unresolved: false,
        }
    }

    /// Whether the value is unknown: a reference checked offline, not read.
    pub fn is_unresolved(&self) -> bool {
        self.unresolved
    }

    /// The value, to put in a request. Never log what this returns for a secret.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn is_secret(&self) -> bool {
        self.secret
    }
}

impl fmt::Debug for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str("[redacted]")
        } else {
            f.write_str(&self.value)
        }
    }
}

/// Where environment variables are read from (the process, or a test's map).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How the references in manifests are treated while loading.
#[derive(Clone, Copy)]
pub enum Secrets<'a> {
    /// Read every reference (environment, files, credentials), as a run does.
    Resolve(EnvLookup<'a>),
    /// Check only each reference's form; read nothing. For CI, which has no
    /// secrets: what it cannot tell is whether the secrets exist where the
    /// daemon runs.
    Offline,
}

impl Secrets<'_> {
    /// A parameter's value: resolved, or (offline) checked and left unknown.
    pub fn param(
        &self,
        raw: &str,
        base_dir: &Path,
        secret: bool,
    ) -> Result<(ParamValue, bool), String> {
        match self {
            Secrets::Resolve(env) => {
                let resolved = resolve(raw, base_dir, *env)?;
                Ok((ParamValue::new(resolved.text, secret), resolved.referenced))
            }
            Secrets::Offline => {
                let referenced = check_references(raw)?;
                let mut value = ParamValue::new(
                    if referenced {
                        String::new()
                    } else {
                        raw.to_string()
                    },
                    secret,
                );
                value.unresolved = referenced;
                Ok((value, referenced))
            }
        }
    }
}

/// The result of filling the references in a parameter value.
#[derive(Debug)]
pub struct Resolved {
    pub text: String,
    /// Whether any `${...}` reference was used.
    pub referenced: bool,
}

/// The references of `raw`, as `(kind, argument)` pairs, or what is wrong
/// with their form. Reads nothing.
fn references(raw: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut found = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed secret reference in {:?}", redact_refs(raw)))?;
        let reference = &after[..end];
        let (kind, argument) = match reference.split_once(':') {
            Some((kind @ ("env" | "file" | "credential"), argument)) => (kind, argument.trim()),
            _ => {
                return Err(format!(
                    "`${{{reference}}}` is not a secret reference; write `${{env:NAME}}`, `${{file:PATH}}` or `${{credential:NAME}}`"
                ));
            }
        };
        if argument.is_empty() {
            return Err(format!(
                "`${{{kind}:}}` names nothing; write `${{{kind}:{}}}`",
                if kind == "file" { "PATH" } else { "NAME" }
            ));
        }
        let is_name = |s: &str| {
            s.chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        };
        if kind == "env" && !is_name(argument) {
            return Err(format!(
                "`{argument}` is not an environment variable name (letters, digits and _, not starting with a digit)"
            ));
        }
        if kind == "credential" && (argument.contains('/') || argument == "." || argument == "..") {
            return Err(format!(
                "`{argument}` is not a credential name: write the name given to LoadCredential=, without a directory"
            ));
        }
        found.push((kind, argument));
        rest = &after[end + 1..];
    }
    Ok(found)
}

/// Checks the form of every reference in `raw`; whether it has any.
pub fn check_references(raw: &str) -> Result<bool, String> {
    references(raw).map(|found| !found.is_empty())
}

/// Fills every `${env:NAME}`, `${file:PATH}` and `${credential:NAME}` in
/// `raw`. Relative file paths are relative to `base_dir` (the manifest's
/// folder); a credential is the file systemd's `LoadCredential=` put in
/// `$CREDENTIALS_DIRECTORY`. A file is read only from the allowed folders
/// ([`SecretRoots`]). Errors name the reference, never its value.
pub fn resolve(raw: &str, base_dir: &Path, env: EnvLookup<'_>) -> Result<Resolved, String> {
    references(raw)?;
    let mut text = String::with_capacity(raw.len());
    let mut referenced = false;
    let mut roots = None;
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap_or(after.len());
        let reference = &after[..end];
        referenced = true;
        let value = match reference.split_once(':').map(|(k, a)| (k, a.trim())) {
            Some(("env", name)) => env(name).ok_or_else(|| {
                format!("environment variable {name} is not set (referenced as ${{env:{name}}})")
            })?,
            Some(("file", path)) => {
                let roots = roots.get_or_insert_with(|| SecretRoots::new(base_dir, env));
                read_secret_file(&base_dir.join(path), path, roots)?
            }
            Some(("credential", name)) => {
                let dir = env("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!(
                        "${{credential:{name}}} needs $CREDENTIALS_DIRECTORY, which systemd sets for a unit with LoadCredential={name}:PATH; outside systemd use ${{file:PATH}}"
                    )
                })?;
                let roots = roots.get_or_insert_with(|| SecretRoots::new(base_dir, env));
                read_secret_file(
                    &Path::new(&dir).join(name),
                    &format!("credential {name}"),
                    roots,
                )?
            }
            _ => unreachable!("references() accepted only env, file and credential"),
        };
        text.push_str(&value);
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    Ok(Resolved { text, referenced })
}

/// The folders a manifest's secret files may be read from.
pub struct SecretRoots {
    /// `(as shown, canonical form if the folder exists)`, in the order shown.
    roots: Vec<(String, Option<PathBuf>)>,
}

impl SecretRoots {
    /// The roots for a manifest in `base_dir`: its `secrets/` folder,
    /// `$CREDENTIALS_DIRECTORY`, `$OFFERSYNC_SECRET_ROOTS` and `--secret-root`.
    pub fn new(base_dir: &Path, env: EnvLookup<'_>) -> Self {
        let mut named: Vec<(String, PathBuf)> = Vec::new();
        let beside = base_dir.join("secrets");
        named.push((beside.display().to_string(), beside));
        if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
            named.push((format!("$CREDENTIALS_DIRECTORY ({dir})"), dir.into()));
        }
        for dir in env(SECRET_ROOTS_ENV).iter().flat_map(|v| v.split(':')) {
            if !dir.is_empty() {
                named.push((dir.to_string(), dir.into()));
            }
        }
        for dir in OPERATOR_ROOTS.get().into_iter().flatten() {
            named.push((dir.display().to_string(), dir.clone()));
        }
        let roots = named
            .into_iter()
            .map(|(shown, dir)| match dir.canonicalize() {
                // Shown as resolved: the form a file's path is compared with.
                Ok(real) => (
                    if shown.starts_with('$') {
                        shown
                    } else {
                        real.display().to_string()
                    },
                    Some(real),
                ),
                Err(_) => (format!("{shown} (missing)"), None),
            })
            .collect();
        Self { roots }
    }

    /// Whether `real` (a canonical path) is inside one of the roots and
    /// outside the folders never read.
    fn allows(&self, real: &Path) -> bool {
        !never_read(real)
            && self
                .roots
                .iter()
                .filter_map(|(_, root)| root.as_deref())
                .any(|root| real.starts_with(root))
    }

    /// The roots, for an error message.
    fn describe(&self) -> String {
        let mut shown: Vec<&str> = self.roots.iter().map(|(s, _)| s.as_str()).collect();
        if !shown
            .iter()
            .any(|s| s.starts_with("$CREDENTIALS_DIRECTORY"))
        {
            shown.push("$CREDENTIALS_DIRECTORY (unset)");
        }
        shown.join(", ")
    }
}

/// Whether `real` is under `/proc`, `/sys` or `/dev`.
fn never_read(real: &Path) -> bool {
    NEVER_READ.iter().any(|dir| real.starts_with(dir))
}

/// Reads a secret file: only inside the allowed roots (symlinks resolved
/// first, so a link in `secrets/` cannot point out of them), only a regular
/// file, and at most the limit (+1 byte to tell a file that is too large).
/// Its type is checked before opening (opening a device can do something)
/// and again after, on the file opened, which must be the one checked; it is
/// opened without blocking, so a FIFO dropped in cannot hang the loader (or
/// the daemon's loop behind it).
fn read_secret_file(path: &Path, as_written: &str, roots: &SecretRoots) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("secret file {as_written} cannot be read: {e}");
    let real = path.canonicalize().map_err(cannot)?;
    if !roots.allows(&real) {
        let resolved = if Path::new(as_written) == real {
            String::new()
        } else {
            format!(" ({})", real.display())
        };
        let never = if never_read(&real) {
            "; /proc, /sys and /dev are never read"
        } else {
            ""
        };
        return Err(format!(
            "secret file {as_written}{resolved} is outside the folders secret files are read from: {}{never}; put the secret in one of them, or name its folder with --secret-root DIR (or ${SECRET_ROOTS_ENV}=DIR:DIR)",
            roots.describe()
        ));
    }
    let not_regular = || {
        format!(
            "secret file {as_written} is not a regular file (a device, pipe, socket or directory); point it at a file holding the secret"
        )
    };
    let checked = std::fs::metadata(&real).map_err(cannot)?;
    if !checked.is_file() {
        return Err(not_regular());
    }
    let file = open_nonblocking(&real).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() || !same_file(&checked, &meta) {
        return Err(not_regular());
    }
    let mut content = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut content)
        .map_err(cannot)?;
    if content.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "secret file {as_written} is larger than {MAX_SECRET_FILE_BYTES} bytes; is it the right file?"
        ));
    }
    let content = String::from_utf8(content)
        .map_err(|_| format!("secret file {as_written} is not UTF-8 text"))?;
    Ok(content.trim_end_matches(['\n', '\r']).to_string())
}

/// Opens a canonical path; a last component swapped for a symlink since it
/// was resolved is refused (`O_NOFOLLOW`).
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// A value with its references shown but nothing else (for messages about a literal).
fn redact_refs(raw: &str) -> String {
    if raw.len() > 12 {
        format!(
            "{}…",
            &raw[..raw
                .char_indices()
                .nth(8)
                .map(|(i, _)| i)
                .unwrap_or(raw.len())]
        )
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/key.txt"), "s3cr3t\n").unwrap();
        let env = |n: &str| (n == "TOKEN").then(|| "abc".to_string());
        let r = resolve("Bearer ${env:TOKEN}", dir.path(), &env).unwrap();
        assert_eq!(r.text, "Bearer abc");
        assert!(r.referenced);
        assert_eq!(
            resolve("${file:secrets/key.txt}", dir.path(), &env)
                .unwrap()
                .text,
            "s3cr3t"
        );
        assert!(!resolve("plain", dir.path(), &env).unwrap().referenced);
    }

    #[test]
    fn unresolvable_references_say_which_without_values() {
        let env = |_: &str| None;
        let err = resolve("${env:MISSING}", Path::new("."), &env).unwrap_err();
        assert!(err.contains("MISSING is not set"), "{err}");
        assert!(resolve("${file:/nonexistent/k}", Path::new("."), &env).is_err());
        assert!(
            resolve("${vault:x}", Path::new("."), &env)
                .unwrap_err()
                .contains("not a secret reference")
        );
    }

    #[test]
    fn credentials_are_read_from_the_directory_systemd_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("acme.key"), "k3y\n").unwrap();
        let creds = dir.path().display().to_string();
        let env = move |n: &str| (n == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
        let r = resolve("${credential:acme.key}", Path::new("/nonexistent"), &env).unwrap();
        assert_eq!(r.text, "k3y");
        let outside = resolve("${credential:acme.key}", Path::new("."), &|_| None).unwrap_err();
        assert!(outside.contains("LoadCredential="), "{outside}");
        assert!(resolve("${credential:../etc/passwd}", Path::new("."), &env).is_err());
    }

    #[test]
    fn secret_files_outside_the_allowed_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("beside.key"), "k").unwrap();
        std::fs::write(other.path().join("named.key"), "n").unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("secrets/env")).unwrap();
        let none = |_: &str| None;
        for reference in [
            "${file:beside.key}",
            "${file:secrets/../beside.key}",
            "${file:secrets/env}",
            "${file:/proc/self/environ}",
            "${file:/dev/null}",
        ] {
            let err = resolve(reference, dir.path(), &none).unwrap_err();
            assert!(err.contains("is outside the folders"), "{reference}: {err}");
            assert!(err.contains("--secret-root"), "{reference}: {err}");
        }
        let named = other.path().display().to_string();
        let root = named.clone();
        let env = move |n: &str| (n == SECRET_ROOTS_ENV).then(|| format!("/nonexistent:{root}"));
        let file = format!("${{file:{named}/named.key}}");
        assert_eq!(resolve(&file, dir.path(), &env).unwrap().text, "n");
        // Even under a root of `/`, the kernel's folders are never read.
        let everything = |n: &str| (n == SECRET_ROOTS_ENV).then(|| "/".to_string());
        assert_eq!(resolve(&file, dir.path(), &everything).unwrap().text, "n");
        let err = resolve("${file:secrets/env}", dir.path(), &everything).unwrap_err();
        assert!(err.contains("/proc, /sys and /dev are never read"), "{err}");
    }

    #[test]
    fn offline_checks_the_form_of_references_and_reads_nothing() {
        let offline = Secrets::Offline;
        let (value, referenced) = offline
            .param("${env:UNSET_IN_CI}", Path::new("/nonexistent"), true)
            .unwrap();
        assert!(referenced && value.is_unresolved());
        let (value, _) = offline
            .param("${file:/nonexistent/key}", Path::new("."), true)
            .unwrap();
        assert!(value.is_unresolved());
        let (value, referenced) = offline
            .param("https://api.example", Path::new("."), false)
            .unwrap();
        assert!(!referenced && !value.is_unresolved());
        assert_eq!(value.expose(), "https://api.example");
        for bad in [
            "${env:}",
            "${env:1X}",
            "${env:A-B}",
            "${vault:x}",
            "${env:X",
            "${credential:a/b}",
        ] {
            assert!(offline.param(bad, Path::new("."), true).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_values_never_print() {
        let v = ParamValue::new("hunter2".into(), true);
        assert_eq!(format!("{v} {v:?}"), "[redacted] [redacted]");
        assert_eq!(v.expose(), "hunter2");
    }
}
