//! Secret references (`${env:NAME}`, `${file:PATH}`) and the values they hold.
//!
//! Secrets are resolved once at load. The resolved text lives in a
//! [`ParamValue`] whose `Debug` and `Display` never show it; code that must
//! send it (fetch) asks for it explicitly with [`ParamValue::expose`].

use std::fmt;
use std::path::Path;

/// Largest secret file read (a key, a token, a password: never large).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A parameter's resolved value.
#[derive(Clone, PartialEq, Eq)]
pub struct ParamValue {
    value: String,
    secret: bool,
}

impl ParamValue {
    pub fn new(value: String, secret: bool) -> Self {
        Self { value, secret }
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

/// The result of filling the references in a parameter value.
#[derive(Debug)]
pub struct Resolved {
    pub text: String,
    /// Whether any `${...}` reference was used.
    pub referenced: bool,
}

/// Fills every `${env:NAME}` and `${file:PATH}` in `raw`. Relative file paths
/// are relative to `base_dir` (the manifest's folder). Errors name the
/// reference, never its value.
pub fn resolve(raw: &str, base_dir: &Path, env: EnvLookup<'_>) -> Result<Resolved, String> {
    let mut text = String::with_capacity(raw.len());
    let mut referenced = false;
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed secret reference in {:?}", redact_refs(raw)))?;
        let reference = &after[..end];
        referenced = true;
        let value = match reference.split_once(':') {
            Some(("env", name)) => {
                let name = name.trim();
                env(name).ok_or_else(|| {
                    format!(
                        "environment variable {name} is not set (referenced as ${{env:{name}}})"
                    )
                })?
            }
            Some(("file", path)) => read_secret_file(&base_dir.join(path.trim()), path.trim())?,
            _ => {
                return Err(format!(
                    "`${{{reference}}}` is not a secret reference; write `${{env:NAME}}` or `${{file:PATH}}`"
                ));
            }
        };
        text.push_str(&value);
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    Ok(Resolved { text, referenced })
}

/// Reads a secret file: only a regular file, and at most the limit (+1 byte
/// to tell a file that is too large). Opened without blocking, so a FIFO
/// dropped into the directory cannot hang the loader (or the daemon's loop
/// behind it), and checked after opening, so the file checked is the file read.
fn read_secret_file(path: &Path, as_written: &str) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("secret file {as_written} cannot be read: {e}");
    let file = open_nonblocking(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "secret file {as_written} is not a regular file (a device, pipe, socket or directory); point it at a file holding the secret"
        ));
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

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
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
        std::fs::write(dir.path().join("key.txt"), "s3cr3t\n").unwrap();
        let env = |n: &str| (n == "TOKEN").then(|| "abc".to_string());
        let r = resolve("Bearer ${env:TOKEN}", dir.path(), &env).unwrap();
        assert_eq!(r.text, "Bearer abc");
        assert!(r.referenced);
        assert_eq!(
            resolve("${file:key.txt}", dir.path(), &env).unwrap().text,
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
    fn secret_values_never_print() {
        let v = ParamValue::new("hunter2".into(), true);
        assert_eq!(format!("{v} {v:?}"), "[redacted] [redacted]");
        assert_eq!(v.expose(), "hunter2");
    }
}
