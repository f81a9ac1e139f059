//! Manifests: reading, checking and compiling the YAML files ops commit.
//!
//! This module owns the two kinds (`Network`, `Integration`), their on-disk
//! format ([`raw`]), their checked form ([`model`]), the built-in network
//! library, secret resolution and every diagnostic users see about a file.
//! Loading never stops at the first problem and never fails as a whole: it
//! returns what is valid plus every diagnostic. Nothing outside this module
//! sees YAML.

mod check;
mod compile;
pub mod diagnostic;
pub mod located;
pub mod model;
pub mod raw;
pub mod schema;
pub mod secret;
mod tree;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Severity};
pub use model::{IntegrationDef, NetworkDef, Origin};
pub use secret::{EnvLookup, Secrets};

use diagnostic::DocSource;
use yaml::ParsedDoc;

/// `(name, text)` of each named file of `integrations.d/networks/`.
macro_rules! built_in_networks {
    ($($name:literal),* $(,)?) => {
        &[$((
            $name,
            include_str!(concat!("../../integrations.d/networks/", $name, ".yaml")),
        )),*]
    };
}

/// The networks compiled into the binary: `integrations.d/networks/*.yaml`.
pub const BUILT_IN_NETWORKS: &[(&str, &str)] = built_in_networks![
    "accesstrade",
    "addrevenue",
    "adgatemedia",
    "admitad",
    "adrecord",
    "adscend",
    "adtraction",
    "adworkmedia",
    "affiliatefuture",
    "affise",
    "avantlink",
    "awin",
    "cake",
    "cityads",
    "cj",
    "commissionfactory",
    "convertiser",
    "cpagrip",
    "cpalead",
    "daisycon",
    "digistore24",
    "effinity",
    "everflow",
    "farly",
    "financeads",
    "firstpromoter",
    "flexoffers",
    "hasoffers",
    "impact",
    "involveasia",
    "kwanko",
    "linktrust",
    "lomadee",
    "maxbounty",
    "offer18",
    "ogads",
    "partnerize",
    "pepperjam",
    "rakuten",
    "rewardful",
    "scaleo",
    "sovrn",
    "tapfiliate",
    "trackier",
    "webgains",
    "yieldkit",
];

/// Every valid definition found, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    pub networks: BTreeMap<String, Arc<NetworkDef>>,
    pub integrations: BTreeMap<String, IntegrationDef>,
}

/// The result of loading: what is valid, and every problem found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub catalog: Catalog,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads the process environment (the default secret source).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The YAML files of a manifest directory, recursively, in a stable order.
/// Hidden entries (`.git`) are skipped.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Loads a manifest directory: its files plus the built-in networks, with
/// every secret reference read (as a run needs them).
pub fn load_dir(dir: &Path, env: EnvLookup<'_>) -> Loaded {
    load_dir_with(dir, Secrets::Resolve(env))
}

/// Loads a manifest directory, treating secret references as `secrets` says
/// (`Secrets::Offline` for `validate --offline`: checked, never read).
pub fn load_dir_with(dir: &Path, secrets: Secrets<'_>) -> Loaded {
    let (sources, diagnostics) = match read_dir_files(dir, None) {
        Ok(read) => (read.sources, read.diagnostics),
        Err(d) => (Vec::new(), vec![d]),
    };
    with_read_diagnostics(load_texts_with(&sources, secrets), diagnostics)
}

/// Loads a manifest directory with one file's text given instead of what is
/// on disk (or added, when the file does not exist yet): what an editor
/// shows for unsaved text, with the same checks and words as `validate`.
pub fn load_dir_editing(dir: &Path, file: &Path, text: &str, secrets: Secrets<'_>) -> Loaded {
    let (mut sources, diagnostics) = match read_dir_files(dir, None) {
        Ok(read) => (read.sources, read.diagnostics),
        Err(d) => (Vec::new(), vec![d]),
    };
    let diagnostics = diagnostics.into_iter().filter(|d| d.file != file).collect();
    sources.retain(|(f, _)| f != file);
    sources.push((file.to_path_buf(), text.to_string()));
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    with_read_diagnostics(load_texts_with(&sources, secrets), diagnostics)
}

/// How the daemon waits for files being written (see [`load_dir_settled`]).
#[derive(Debug, Clone, Copy)]
pub struct Settle {
    /// A file changed less than this long ago is still being written.
    pub quiet: std::time::Duration,
    /// The longest a read waits for every file to settle.
    pub limit: std::time::Duration,
}

/// Loads a manifest directory as the daemon does: only files that have
/// settled. A file changed within `settle.quiet` (its mtime), or changed
/// while it was read, is still being written (a `cp` of a large file writes
/// it in pieces, and a prefix may be a valid manifest): the read waits, and
/// reads the directory again, until every file has been quiet that long, at
/// most `settle.limit`. A file still changing then is an error for that
/// file only (its integrations keep their last good spec), read again at
/// the next rescan. Editors and git write a file whole (a temporary file
/// renamed over it), so they are never waited for.
pub fn load_dir_settled(dir: &Path, env: EnvLookup<'_>, settle: Settle) -> Loaded {
    let deadline = std::time::Instant::now() + settle.limit;
    loop {
        let read = match read_dir_files(dir, Some(settle.quiet)) {
            Ok(read) => read,
            Err(d) => return with_read_diagnostics(Loaded::default(), vec![d]),
        };
        let now = std::time::Instant::now();
        if read.unsettled.is_empty() || now >= deadline {
            let mut diagnostics = read.diagnostics;
            for file in &read.unsettled {
                diagnostics.push(
                    DocSource::new(file, 0)
                        .error_at(
                            0,
                            0,
                            "",
                            format!(
                                "is still being written (it changed within {} ms at every read for {} s); it is read once it stops changing",
                                settle.quiet.as_millis(),
                                settle.limit.as_secs()
                            ),
                        )
                        .with_hint("write a manifest whole: to a temporary file whose name starts with `.`, then `mv` it over (editors and git do so; `cp` does not)"),
                );
            }
            let loaded = load_texts_with(&read.sources, Secrets::Resolve(env));
            return with_read_diagnostics(loaded, diagnostics);
        }
        std::thread::sleep(settle.quiet.min(deadline - now));
    }
}

/// The files of a directory, read.
struct DirFiles {
    sources: Vec<(PathBuf, String)>,
    /// Files that could not be read.
    diagnostics: Vec<Diagnostic>,
    /// Files still being written (with `quiet` only): not read.
    unsettled: Vec<PathBuf>,
}

// A diagnostic is made once per mistake a person wrote: its size is no cost.
#[allow(clippy::result_large_err)]
fn read_dir_files(dir: &Path, quiet: Option<std::time::Duration>) -> Result<DirFiles, Diagnostic> {
    let files = manifest_files(dir).map_err(|e| {
        DocSource::new(dir, 0)
            .error_at(0, 0, "", format!("cannot read the manifest directory: {e}"))
            .with_hint("pass the directory of your manifests with --dir")
    })?;
    let mut read = DirFiles {
        sources: Vec::new(),
        diagnostics: Vec::new(),
        unsettled: Vec::new(),
    };
    for file in files {
        match read_manifest_settled(&file, quiet) {
            Ok(text) => read.sources.push((file, text)),
            Err(None) => read.unsettled.push(file),
            Err(Some(d)) => read.diagnostics.push(d),
        }
    }
    Ok(read)
}

/// `loaded` with the diagnostics of reading the files first.
fn with_read_diagnostics(mut loaded: Loaded, mut diagnostics: Vec<Diagnostic>) -> Loaded {
    diagnostics.append(&mut loaded.diagnostics);
    loaded.diagnostics = diagnostics;
    loaded
}

// A diagnostic is made once per mistake a person wrote: its size is no cost.
#[allow(clippy::result_large_err)]
fn read_manifest(file: &Path) -> Result<String, Diagnostic> {
    read_manifest_settled(file, None).map_err(|d| d.expect("unsettled only with a quiet time"))
}

/// A manifest's text; `Err(None)` when it changed within `quiet`.
// A diagnostic is made once per mistake a person wrote: its size is no cost.
#[allow(clippy::result_large_err)]
fn read_manifest_settled(
    file: &Path,
    quiet: Option<std::time::Duration>,
) -> Result<String, Option<Diagnostic>> {
    let source = DocSource::new(file, 0);
    let bytes = read_file(file, MAX_FILE_BYTES, quiet).map_err(|e| {
        let (message, hint) = match e {
            ReadError::Unsettled => return None,
            ReadError::NotRegular(kind) => (
                format!("is {kind}, not a regular file; it is not read"),
                "a manifest is a regular file: remove this one from the directory, or rename it so that it does not end in .yaml or .yml",
            ),
            ReadError::TooLarge => (
                format!("file is larger than {MAX_FILE_BYTES} bytes; is it a manifest?"),
                "split it into smaller files, or move it out of the directory",
            ),
            ReadError::Io(e) => (
                format!("cannot read: {e}"),
                "check the file's permissions: the user offersync runs as must be able to read it",
            ),
        };
        Some(source.error_at(0, 0, "", message).with_hint(hint))
    })?;
    String::from_utf8(bytes).map_err(|_| Some(source.error_at(0, 0, "", "file is not UTF-8 text")))
}

/// The largest manifest file read, in bytes.
pub const MAX_FILE_BYTES: u64 = yaml::MAX_FILE_BYTES as u64;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// What it is instead ("a FIFO", "a character device", ...).
    NotRegular(&'static str),
    TooLarge,
    /// Changed within the quiet time, or while it was read: still being written.
    Unsettled,
    Io(std::io::Error),
}

/// Reads a regular file of at most `max` bytes without ever blocking on it.
///
/// Opening a FIFO waits for a writer, and opening a device may do anything
/// (and reading one may never end): a FIFO or device named `*.yaml` in the
/// manifest directory (or a symlink to one) once hung every rescan and left a
/// thread stuck in `open` each time. So the type is checked before opening,
/// the open does not block (`O_NONBLOCK`, which changes nothing for a regular
/// file), and the opened file is checked again, so that a file swapped in
/// between is never read either.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    read_file(path, max, None)
}

/// [`read_regular_file`], and with `quiet`, refusing a file changed less
/// than that long ago or while it was read ([`ReadError::Unsettled`]).
fn read_file(
    path: &Path,
    max: u64,
    quiet: Option<std::time::Duration>,
) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let before = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !before.is_file() {
        return Err(ReadError::NotRegular(file_kind(&before)));
    }
    // Each write moves the mtime: one less than `quiet` old means a write
    // that may go on. (An mtime in the future, a skewed clock, is no sign.)
    if let Some(quiet) = quiet
        && let Ok(modified) = before.modified()
        && let Ok(age) = std::time::SystemTime::now().duration_since(modified)
        && age < quiet
    {
        return Err(ReadError::Unsettled);
    }
    let file = open_nonblocking(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(file_kind(&meta)));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge);
    }
    // A file that grows while it is read is still bounded.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge);
    }
    if quiet.is_some() {
        let after = file.metadata().map_err(ReadError::Io)?;
        if after.len() != meta.len() || after.modified().ok() != meta.modified().ok() {
            return Err(ReadError::Unsettled);
        }
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, in words.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() {
            return "a FIFO";
        } else if kind.is_char_device() {
            return "a character device";
        } else if kind.is_block_device() {
            return "a block device";
        } else if kind.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
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

/// Loads manifests given as `(file name, text)` pairs, plus the built-in networks.
pub fn load_texts(sources: &[(PathBuf, String)], env: EnvLookup<'_>) -> Loaded {
    load_texts_with(sources, Secrets::Resolve(env))
}

fn load_texts_with(sources: &[(PathBuf, String)], secrets: Secrets<'_>) -> Loaded {
    let mut diagnostics = Vec::new();
    let mut networks_raw = Vec::new();
    let mut integrations_raw = Vec::new();
    // Local networks that failed, by name, with their file.
    let mut broken_networks = BTreeMap::new();
    for (file, text) in sources {
        for name in yaml::broken_network_names(text) {
            broken_networks.insert(name, file.clone());
        }
        for doc in yaml::parse_file(file, text, &mut diagnostics) {
            match doc {
                ParsedDoc::Network(d, s, omitted) => {
                    let chunk = chunk_of(text, &s).to_string();
                    networks_raw.push((d, s, chunk, omitted));
                }
                ParsedDoc::Integration(d, s, omitted) => {
                    let chunk = chunk_of(text, &s).to_string();
                    integrations_raw.push((d, s, chunk, omitted));
                }
            }
        }
    }

    let mut networks: BTreeMap<String, Arc<NetworkDef>> = built_in_networks();
    let mut seen = FirstDefinitions::default();
    for (doc, source, chunk, omitted) in networks_raw {
        let name = doc.metadata.name.value().clone();
        let duplicate = seen.check("network", &doc.metadata.name, &source);
        let (def, problems) =
            compile::compile_network(*doc, &source, &chunk, Origin::File(source.file.clone()));
        diagnostics.extend(as_written(problems, &omitted));
        if let Some(d) = duplicate {
            diagnostics.push(d);
            networks.remove(&name);
            continue;
        }
        match def {
            Some(def) if omitted.is_empty() => {
                networks.insert(name, Arc::new(def));
            }
            // An invalid local network must not silently fall back to the built-in one.
            _ => {
                networks.remove(&name);
                broken_networks.insert(name, source.file.clone());
            }
        }
    }

    let mut integrations = BTreeMap::new();
    let mut seen = FirstDefinitions::default();
    for (doc, source, chunk, omitted) in integrations_raw {
        let name = doc.metadata.name.value().clone();
        let duplicate = seen.check("integration", &doc.metadata.name, &source);
        let (def, problems) = compile::compile_integration(
            *doc,
            &source,
            &chunk,
            &networks,
            &broken_networks,
            secrets,
        );
        diagnostics.extend(as_written(problems, &omitted));
        if let Some(d) = duplicate {
            // Neither copy runs: which one was meant is for a person to decide.
            diagnostics.push(d);
            integrations.remove(&name);
            continue;
        }
        if let Some(def) = def.filter(|_| omitted.is_empty()) {
            integrations.insert(name, def);
        }
    }
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    let texts: BTreeMap<&Path, &str> = sources
        .iter()
        .map(|(file, text)| (file.as_path(), text.as_str()))
        .collect();
    let diagnostics = diagnostics
        .into_iter()
        .map(|d| match texts.get(d.file.as_path()) {
            Some(text) => d.with_source_line_from(text),
            None => d,
        })
        .collect();
    Loaded {
        catalog: Catalog {
            networks,
            integrations,
        },
        diagnostics,
    }
}

/// Where each name was first defined, to report a second definition.
#[derive(Default)]
struct FirstDefinitions(BTreeMap<String, (PathBuf, u64)>);

impl FirstDefinitions {
    /// Records `name`; a diagnostic when it was already defined.
    fn check(
        &mut self,
        kind: &str,
        name: &located::Located<String>,
        source: &DocSource,
    ) -> Option<Diagnostic> {
        let line = source.file_line(name.line());
        match self.0.get(name.value()) {
            Some((first_file, first_line)) => Some(
                source
                    .error(
                        name,
                        "metadata.name",
                        format!("{kind} {:?} is defined twice", name.value()),
                    )
                    .with_hint(format!(
                        "it is also defined at {}:{first_line}; rename one",
                        first_file.display()
                    )),
            ),
            None => {
                self.0
                    .insert(name.value().clone(), (source.file.clone(), line));
                None
            }
        }
    }
}

/// A document's compile diagnostics with their field paths as the file is
/// written (compile saw the document without what its reading left out).
fn as_written(mut problems: Vec<Diagnostic>, omitted: &tree::Omitted) -> Vec<Diagnostic> {
    for d in &mut problems {
        d.field = omitted.written_path(&d.field);
    }
    problems
}

fn chunk_of<'a>(text: &'a str, source: &DocSource) -> &'a str {
    yaml::split_documents(text)
        .into_iter()
        .find(|(offset, _)| *offset == source.line_offset)
        .map(|(_, chunk)| chunk)
        .unwrap_or(text)
}

/// Compiles an integration from the document it was last applied with, as
/// if `file` of `dir` still held it, beside the directory's other files (its
/// Network may be one of them): the daemon runs this last good spec when it
/// starts while the file is broken. The error is the first that kept it
/// from compiling.
pub fn load_stored(
    dir: &Path,
    file: &Path,
    document: &str,
    name: &str,
    env: EnvLookup<'_>,
) -> Result<IntegrationDef, String> {
    let mut sources: Vec<(PathBuf, String)> = manifest_files(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .into_iter()
        .filter(|f| f != file)
        .filter_map(|f| read_manifest(&f).ok().map(|text| (f, text)))
        .collect();
    sources.push((file.to_path_buf(), document.to_string()));
    let mut loaded = load_texts(&sources, env);
    loaded.catalog.integrations.remove(name).ok_or_else(|| {
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .find(|d| d.file == file)
            .or_else(|| loaded.diagnostics.iter().find(|d| d.is_error()))
            .map_or_else(|| format!("{name} is not defined"), |d| d.to_string())
    })
}

/// The error for the file of an integration the store holds as deleted:
/// put back, a deleted integration's manifest does not bring it back.
/// `hint` says the way out (the store's wording: `store::undelete_hint`).
pub fn deleted_integration(def: &IntegrationDef, hint: String) -> Diagnostic {
    let (line, column) = def.name_at;
    let diagnostic = DocSource::new(&def.source_file, 0)
        .error_at(
            line,
            column,
            "metadata.name",
            format!(
                "integration `{}` was deleted (its manifest was removed and the integration retired); this file does not bring it back, and it is not run",
                def.name
            ),
        )
        .with_hint(hint);
    match read_manifest(&def.source_file) {
        Ok(text) => diagnostic.with_source_line_from(&text),
        Err(_) => diagnostic,
    }
}

/// What a stored manifest document says to do with its campaigns when the
/// integration goes away: read leniently from the document as it was last
/// applied (the daemon retires integrations whose files went while it was
/// stopped). Anything unreadable means the default, `pause`.
pub fn on_removed_of(document: &str) -> raw::OnRemoved {
    #[derive(serde::Deserialize)]
    struct Document {
        spec: Spec,
    }
    #[derive(serde::Deserialize)]
    struct Spec {
        #[serde(default)]
        on_removed: raw::OnRemoved,
    }
    serde_saphyr::from_str::<Document>(document)
        .map(|d| d.spec.on_removed)
        .unwrap_or_default()
}

/// The built-in network library, compiled once per process: it is part of
/// the binary, and a daemon rescanning its directory every few seconds must
/// not spend its CPU compiling the same 40-odd mappings again each time.
pub fn built_in_networks() -> BTreeMap<String, Arc<NetworkDef>> {
    static COMPILED: std::sync::LazyLock<BTreeMap<String, Arc<NetworkDef>>> =
        std::sync::LazyLock::new(compile_built_in_networks);
    COMPILED.clone()
}

/// Compiles the built-in network library. Built-ins are checked by tests, so a
/// broken one is a bug in this release, reported loudly rather than skipped.
fn compile_built_in_networks() -> BTreeMap<String, Arc<NetworkDef>> {
    let mut out = BTreeMap::new();
    for (name, text) in BUILT_IN_NETWORKS {
        let file = PathBuf::from(format!("<built-in>/networks/{name}.yaml"));
        let mut diagnostics = Vec::new();
        for doc in yaml::parse_file(&file, text, &mut diagnostics) {
            if let ParsedDoc::Network(doc, source, _) = doc {
                let chunk = chunk_of(text, &source);
                let (def, mut problems) =
                    compile::compile_network(*doc, &source, chunk, Origin::BuiltIn);
                diagnostics.append(&mut problems);
                if let Some(def) = def {
                    out.insert(def.name.clone(), Arc::new(def));
                }
            }
        }
        for d in diagnostics.iter().filter(|d| d.is_error()) {
            tracing::error!(network = name, "built-in network is invalid: {d}");
        }
    }
    out
}

/// Loads one file that must hold exactly one Network (for `map --network FILE`).
pub fn load_network_file(file: &Path) -> Result<Arc<NetworkDef>, Vec<Diagnostic>> {
    let text = read_manifest(file).map_err(|d| vec![d])?;
    let mut diagnostics = Vec::new();
    let mut found = Vec::new();
    for doc in yaml::parse_file(file, &text, &mut diagnostics) {
        match doc {
            ParsedDoc::Network(doc, source, omitted) => {
                let (def, problems) = compile::compile_network(
                    *doc,
                    &source,
                    chunk_of(&text, &source),
                    Origin::File(file.to_path_buf()),
                );
                diagnostics.extend(as_written(problems, &omitted));
                found.extend(def.filter(|_| omitted.is_empty()));
            }
            ParsedDoc::Integration(_, source, _) => diagnostics.push(source.error_at(
                0,
                0,
                "kind",
                "expected a kind: Network document, found an Integration",
            )),
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    match found.len() {
        1 => Ok(Arc::new(found.pop().expect("one network"))),
        n => Err(vec![DocSource::new(file, 0).error_at(
            0,
            0,
            "",
            format!("expected one Network document, found {n}"),
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raw::Column;

    #[test]
    fn a_file_changed_within_the_quiet_time_is_waited_for_then_reported() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |name: &str| {
            format!(
                "apiVersion: offersync/v1\nkind: Integration\nmetadata: {{name: {name}}}\n\
                 spec:\n  network: everflow\n  schedule: \"0 * * * *\"\n  params: {{api_key: \"${{env:KEY}}\"}}\n  advertiser: Acme\n"
            )
        };
        std::fs::write(dir.path().join("old.yaml"), doc("old")).unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("old.yaml"))
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        std::fs::write(dir.path().join("new.yaml"), doc("new")).unwrap();
        let env = |name: &str| (name == "KEY").then(|| "k".to_string());
        let settle = Settle {
            quiet: std::time::Duration::from_secs(600),
            limit: std::time::Duration::from_millis(50),
        };
        let loaded = load_dir_settled(dir.path(), &env, settle);
        assert!(loaded.catalog.integrations.contains_key("old"));
        assert!(!loaded.catalog.integrations.contains_key("new"), "not read");
        let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains("new.yaml") && errors[0].contains("is still being written"));
        // `validate` reads files as they are.
        assert!(
            load_dir(dir.path(), &env)
                .catalog
                .integrations
                .contains_key("new")
        );
    }

    #[test]
    fn a_fifo_or_device_is_a_diagnostic_of_its_own_file_and_never_opened() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a plain call with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/dev/null", dir.path().join("null.yaml")).unwrap();
        std::fs::write(
            dir.path().join("big.yaml"),
            vec![b'#'; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        // Would block forever (no writer) if the FIFO were opened for reading.
        let loaded = load_dir(dir.path(), &|_| None);
        let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].contains("big.yaml") && errors[0].contains("is larger than"));
        assert!(errors[1].contains("null.yaml") && errors[1].contains("is a character device"));
        assert!(
            errors[2].contains("pipe.yaml") && errors[2].contains("is a FIFO, not a regular file")
        );
    }

    #[test]
    fn a_stored_document_compiles_beside_the_directory_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("acme.yaml");
        std::fs::write(&file, "kind: [broken\n").unwrap();
        let document = "apiVersion: offersync/v1\nkind: Integration\nmetadata: {name: acme}\n\
                        spec:\n  network: everflow\n  schedule: \"0 * * * *\"\n  params: {api_key: \"${env:KEY}\"}\n  advertiser: Acme\n";
        let env = |name: &str| (name == "KEY").then(|| "k".to_string());
        let def = load_stored(dir.path(), &file, document, "acme", &env).unwrap();
        assert_eq!(
            (def.name.as_str(), def.source_file.as_path()),
            ("acme", file.as_path())
        );
        let error = load_stored(dir.path(), &file, "kind: Nope\n", "acme", &env).unwrap_err();
        assert!(error.contains("acme.yaml"), "{error}");
    }

    fn load_update(update: &str) -> Loaded {
        let text = format!(
            "apiVersion: offersync/v1\nkind: Integration\nmetadata: {{name: acme}}\n\
             spec:\n  network: everflow\n  schedule: \"0 * * * *\"\n  params: {{api_key: \"${{env:KEY}}\"}}\n  advertiser: Acme\n  update:\n{update}"
        );
        let env = |name: &str| (name == "KEY").then(|| "k".to_string());
        load_texts(&[(PathBuf::from("acme.yaml"), text)], &env)
    }

    /// Issue 25.3: `never` leaves a column empty on create; refused where
    /// that would widen (no countries: every country) or break a campaign.
    #[test]
    fn never_is_refused_where_an_empty_column_widens_or_breaks_a_campaign() {
        let refused = [
            ("name", "no name — a campaign cannot be created without one"),
            ("status", "no status"),
            ("visibility", "no visibility"),
            ("redirect", "no redirect type"),
            ("tracking_url", "no tracking link"),
            ("revenue", "no revenue"),
            ("payout", "no payout"),
            ("currency", "no currency"),
            ("model", "no payout model"),
            (
                "countries",
                "no countries — an empty country list targets every country",
            ),
            ("os", "no OS list — an empty OS list targets every device"),
            ("dates", "no start and end dates"),
            (
                "settings",
                "no settings — the time targeting would be dropped",
            ),
        ];
        for (column, hint) in refused {
            let loaded = load_update(&format!("    columns: {{{column}: never}}\n"));
            let errors: Vec<&Diagnostic> =
                loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
            assert_eq!(errors.len(), 1, "{column}: {errors:#?}");
            let d = errors[0];
            assert_eq!(
                (d.line, d.column, d.field.as_str()),
                (
                    10,
                    17 + column.len() as u64,
                    format!("spec.update.columns.{column}").as_str()
                ),
                "{d}"
            );
            assert_eq!(d.message, format!("`{column}` cannot be `never`"));
            let written = d.hint.as_deref().unwrap_or_default();
            assert!(
                written.starts_with(&format!("`never` would store {hint}"))
                    && written
                        .ends_with("; use on_create to write it only when the campaign is created"),
                "{column}: {written}"
            );
            assert!(loaded.catalog.integrations.is_empty(), "{column}");
            let on_create = load_update(&format!("    columns: {{{column}: on_create}}\n"));
            assert!(!on_create.has_errors(), "{:?}", on_create.diagnostics);
        }
        for column in [
            "preview_url",
            "impression_url",
            "thumbnail_url",
            "category",
            "description",
            "kpi",
            "payouts",
            "objective",
        ] {
            let loaded = load_update(&format!("    columns: {{{column}: never}}\n"));
            assert!(!loaded.has_errors(), "{column}: {:?}", loaded.diagnostics);
            let def = &loaded.catalog.integrations["acme"];
            let column = Column::ALL
                .into_iter()
                .find(|c| c.name() == column)
                .unwrap();
            assert_eq!(def.update.policy(column), raw::ColumnPolicy::Never);
        }
    }

    #[test]
    fn a_never_default_is_refused_for_the_columns_it_would_empty() {
        let loaded = load_update("    default: never\n    columns: {countries: on_create}\n");
        let errors: Vec<&Diagnostic> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(
            (errors[0].line, errors[0].field.as_str()),
            (10, "spec.update.default")
        );
        assert!(errors[0].message.contains("name, status"), "{}", errors[0]);
        assert!(!errors[0].message.contains("countries"), "{}", errors[0]);
        let every_column_its_own = [
            "name",
            "status",
            "visibility",
            "redirect",
            "tracking_url",
            "revenue",
            "payout",
            "currency",
            "model",
            "countries",
            "os",
            "dates",
            "settings",
        ]
        .map(|c| format!("{c}: on_create"))
        .join(", ");
        let loaded = load_update(&format!(
            "    default: never\n    columns: {{{every_column_its_own}}}\n"
        ));
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let def = &loaded.catalog.integrations["acme"];
        assert_eq!(def.update.policy(Column::Kpi), raw::ColumnPolicy::Never);
        assert_eq!(def.update.policy(Column::Name), raw::ColumnPolicy::OnCreate);
    }

    #[test]
    fn the_removal_action_is_read_from_a_stored_document() {
        let keep = "apiVersion: offersync/v1\nkind: Integration\nmetadata: {name: a}\n\
                    spec:\n  network: everflow\n  on_removed: keep\n";
        assert_eq!(on_removed_of(keep), raw::OnRemoved::Keep);
        let unset = keep.replace("  on_removed: keep\n", "");
        assert_eq!(on_removed_of(&unset), raw::OnRemoved::Pause);
        assert_eq!(on_removed_of("not: [yaml"), raw::OnRemoved::Pause);
    }
}
