//! What the studio does, as data: list a directory, check a file's unsaved
//! text, map samples, run `tests:`, explain an offer, lock expectations,
//! diff and save, read live pages. Every check is the library's own
//! (`manifest::load_dir_editing`, `Mapping::map_page_using`,
//! `cli::testing::run`, `cli::explain::report`): the studio must not
//! decide anything the CLI would decide differently. No HTML here.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::cli::testing;
use crate::manifest::{self, Diagnostic, IntegrationDef, NetworkDef, Origin, Secrets};
use crate::offer::Offer;

/// The largest sample the studio reads or accepts (uploaded or on disk),
/// unless the Network's own `limits.max_response_bytes` is lower.
pub const MAX_SAMPLE_BYTES: u64 = 8 * 1024 * 1024;
/// Sample files listed from the directory, at most.
const MAX_LISTED_SAMPLES: usize = 200;
/// Offers a lock writes expectations for, at most (the count covers all).
const MAX_LOCKED_OFFERS: usize = 20;

/// Why a request of the studio cannot be done; the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StudioError {
    #[error("{0:?}: give a path of a .yaml file inside the directory, without `..`")]
    BadFile(String),
    #[error("{0:?}: not a sample of this file's tests or of the directory; pick one from the list")]
    BadSample(String),
    #[error("{0}")]
    Sample(String),
    #[error("the file has errors: fix them (see the problems list) to map samples")]
    NoNetwork,
    #[error("no valid Integration named {0:?} uses this network; pick one from the list")]
    NoIntegration(String),
    #[error("no offer {0:?} in the sample")]
    NoOffer(String),
    #[error("{file}: cannot write: {error}")]
    Write { file: String, error: std::io::Error },
}

/// A directory's Networks and Integrations, as `validate` loads them.
pub struct Listing {
    /// Local networks: name, file relative to the directory.
    pub networks: Vec<(String, String)>,
    /// Integrations: name, network, file relative to the directory.
    pub integrations: Vec<(String, String, String)>,
    /// YAML files with an error (relative), so a broken one can be opened.
    pub broken: Vec<String>,
}

pub fn list(dir: &Path) -> Listing {
    let loaded = manifest::load_dir_with(dir, Secrets::Offline);
    let rel = |p: &Path| relative_to(p, dir);
    let networks = loaded
        .catalog
        .networks
        .values()
        .filter_map(|n| match &n.origin {
            Origin::File(f) => Some((n.name.clone(), rel(f))),
            Origin::BuiltIn => None,
        })
        .collect();
    let integrations = loaded
        .catalog
        .integrations
        .values()
        .map(|i| (i.name.clone(), i.network.name.clone(), rel(&i.source_file)))
        .collect();
    let mut broken: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| rel(&d.file))
        .collect();
    broken.dedup();
    Listing {
        networks,
        integrations,
        broken,
    }
}

/// `file` (relative, as the browser names it) inside `dir`: a `.yaml` or
/// `.yml` path with no `..`, no root, no hidden part.
pub fn resolve_file(dir: &Path, file: &str) -> Result<PathBuf, StudioError> {
    let bad = || StudioError::BadFile(file.to_string());
    let path = Path::new(file);
    let plain = path.components().all(|c| match c {
        Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
        _ => false,
    });
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if file.is_empty() || !plain || !yaml {
        return Err(bad());
    }
    Ok(dir.join(path))
}

/// `path` relative to `dir` when it is inside, else as given.
pub fn relative_to(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// A file's unsaved text, checked with the rest of its directory.
pub struct Checked {
    /// The problems of this file, in the words of `validate`.
    pub diagnostics: Vec<Diagnostic>,
    /// The Network the file defines, when it is valid.
    pub network: Option<Arc<NetworkDef>>,
    /// The valid Integrations of that Network.
    pub integrations: Vec<IntegrationDef>,
}

/// Checks `text` as the content of `file`; secrets are checked for form
/// only (`validate --offline`): an editor never needs a key.
pub fn check(dir: &Path, file: &Path, text: &str) -> Checked {
    check_with(dir, file, text, Secrets::Offline)
}

/// The same with `secrets` (a live read resolves them, on the server).
pub fn check_with(dir: &Path, file: &Path, text: &str, secrets: Secrets<'_>) -> Checked {
    let mut loaded = manifest::load_dir_editing(dir, file, text, secrets);
    let diagnostics = loaded
        .diagnostics
        .into_iter()
        .filter(|d| d.file == file)
        .collect();
    let network = loaded
        .catalog
        .networks
        .values()
        .find(|n| n.origin == Origin::File(file.to_path_buf()))
        .cloned();
    let integrations = match &network {
        Some(n) => {
            let names: Vec<String> = loaded
                .catalog
                .integrations
                .values()
                .filter(|i| Arc::ptr_eq(&i.network, n))
                .map(|i| i.name.clone())
                .collect();
            names
                .iter()
                .filter_map(|name| loaded.catalog.integrations.remove(name))
                .collect()
        }
        None => Vec::new(),
    };
    Checked {
        diagnostics,
        network,
        integrations,
    }
}

/// The samples a file may be read over: those its `tests:` name, then the
/// JSON and XML files of the directory (not hidden), each once.
pub fn samples(dir: &Path, network: Option<&NetworkDef>) -> Vec<PathBuf> {
    // Resolved (`networks/../samples/a.json` is `samples/a.json`), so that
    // each is listed once and named as the directory has it.
    let mut found: Vec<PathBuf> = network
        .map(|n| {
            n.tests
                .iter()
                .flat_map(|t| t.samples.clone())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|p: PathBuf| p.canonicalize().unwrap_or(p))
        .collect();
    let mut pending = vec![dir.to_path_buf()];
    let mut on_disk = Vec::new();
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t)
                    if t.is_file()
                        && matches!(
                            path.extension().and_then(|e| e.to_str()),
                            Some("json" | "xml")
                        ) =>
                {
                    on_disk.push(path)
                }
                _ => {}
            }
        }
        if on_disk.len() > MAX_LISTED_SAMPLES {
            break;
        }
    }
    on_disk.sort();
    on_disk.truncate(MAX_LISTED_SAMPLES);
    for path in on_disk {
        if !found.iter().any(|f| same_file(f, &path)) {
            found.push(path);
        }
    }
    found.dedup();
    found
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The sample the browser names (as [`sample_label`] showed it), if it is
/// one of `allowed`: nothing else is ever read.
pub fn pick_sample(dir: &Path, allowed: &[PathBuf], label: &str) -> Result<PathBuf, StudioError> {
    allowed
        .iter()
        .find(|p| sample_label(dir, p) == label)
        .cloned()
        .ok_or_else(|| StudioError::BadSample(label.to_string()))
}

/// How a sample is named to the browser: relative to the directory.
pub fn sample_label(dir: &Path, path: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => {
            let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
            crate::cli::scaffold::relative(&path, &canon)
        }
    }
}

/// Reads a sample as `map` does: bounded by the Network's limit and ours.
pub fn read_sample(network: &NetworkDef, path: &Path) -> Result<Vec<u8>, StudioError> {
    let limit = network.limits.max_response_bytes.min(MAX_SAMPLE_BYTES);
    testing::read_sample(path, limit, || {
        if limit < network.limits.max_response_bytes {
            format!("the sample is larger than {MAX_SAMPLE_BYTES} bytes, the most the studio reads; one page of the offer list is enough: save a smaller one")
        } else {
            testing::over_response_limit(network)
        }
    })
    .map_err(StudioError::Sample)
}

/// One page mapped: offers, record problems and warnings, as `map` shows.
#[derive(Default)]
pub struct Mapped {
    pub offers: Vec<Offer>,
    pub problems: Vec<String>,
    /// Paths that select nothing, and the API's own error message.
    pub warnings: Vec<String>,
    pub records: usize,
}

/// Maps one response body (a sample or a live page) as `map` does.
pub fn map_body(
    network: &NetworkDef,
    params: &std::collections::BTreeMap<String, String>,
    body: &[u8],
) -> Result<Mapped, StudioError> {
    let mapping = &network.mapping;
    let page = mapping
        .map_page_using(body, 1, params)
        .map_err(|e| StudioError::Sample(not_json_or_xml(&e.to_string())))?;
    let mut warnings = Vec::new();
    if let Some(message) = mapping.response_error(&page.page) {
        warnings.push(format!("the API answered with an error: {message}"));
    }
    if let Ok(tree) = mapping.parse(body) {
        let records: Vec<&Value> = mapping.records(&tree).into_iter().map(|(_, r)| r).collect();
        for u in crate::mapping::suggest::unmatched(mapping, &records) {
            warnings.push(testing::unmatched_line(&u));
        }
    }
    Ok(Mapped {
        records: page.record_count(),
        problems: page.problems.iter().map(|p| p.to_string()).collect(),
        offers: page.offers,
        warnings,
    })
}

fn not_json_or_xml(error: &str) -> String {
    format!(
        "the sample cannot be read as this network's format: {error}; a sample is one response of the API, saved as JSON or XML"
    )
}

/// The field params of a read: the Integration's, or the Network's defaults.
pub fn params_of(
    network: &NetworkDef,
    integration: Option<&IntegrationDef>,
) -> std::collections::BTreeMap<String, String> {
    match integration {
        Some(def) => crate::sync::field_params(def),
        None => network
            .params
            .iter()
            .filter(|(_, p)| !p.secret)
            .filter_map(|(name, p)| Some((name.clone(), p.default.clone()?)))
            .collect(),
    }
}

/// The columns of the results table: the offer fields any offer has.
pub fn columns(offers: &[Offer]) -> (Vec<String>, Vec<serde_json::Map<String, Value>>) {
    let rows: Vec<serde_json::Map<String, Value>> = offers
        .iter()
        .map(
            |o| match serde_json::to_value(o).expect("offers serialize") {
                Value::Object(mut m) => {
                    m.remove("raw");
                    m.remove("warnings");
                    m.remove("unreadable");
                    m
                }
                _ => serde_json::Map::new(),
            },
        )
        .collect();
    let mut columns: Vec<String> = vec!["external_id".into(), "name".into()];
    for row in &rows {
        for (key, value) in row {
            let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
            if !empty && !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    (columns, rows)
}

/// The `explain` report of one offer of `body`: with an Integration, its
/// filters and payout too (`cli::explain::report`); without, the mapping.
pub fn explain(
    network: &NetworkDef,
    integration: Option<&IntegrationDef>,
    body: &[u8],
    offer: &str,
) -> Result<Value, StudioError> {
    let params = params_of(network, integration);
    let mapped = network
        .mapping
        .map_page_using(body, 1, &params)
        .map_err(|e| StudioError::Sample(not_json_or_xml(&e.to_string())))?;
    let (record, key) = network
        .mapping
        .find_record(body, &mapped, offer)
        .ok_or_else(|| StudioError::NoOffer(offer.to_string()))?;
    Ok(match integration {
        Some(def) => {
            // The per-offer requests read the responses the file's tests
            // save, as `explain --sample` does.
            let saved = crate::cli::testing::all_per_offer(network);
            crate::cli::explain::report(def, &record, key.as_deref(), Some(&saved), None)
                .map_err(StudioError::Sample)?
        }
        None => {
            crate::cli::explain::mapping_report(&network.mapping, &params, &record, key.as_deref())
                .0
        }
    })
}

/// The file's text with a `tests:` entry that locks what `offers` and
/// `problems` are now: the counts, and per offer (the first
/// [`MAX_LOCKED_OFFERS`]) its name, status, payout, currency, model and
/// countries. The sample path is written relative to the file.
pub fn lock(text: &str, file: &Path, sample: &Path, mapped: &Mapped) -> String {
    let folder = file.parent().unwrap_or(Path::new("."));
    let folder = folder
        .canonicalize()
        .unwrap_or_else(|_| folder.to_path_buf());
    let sample = sample
        .canonicalize()
        .unwrap_or_else(|_| sample.to_path_buf());
    let sample_path = crate::cli::scaffold::relative(&sample, &folder);
    let name = format!(
        "locked in the studio: {}",
        sample.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut entry = vec![
        format!("    - name: {}", yaml_string(&name)),
        format!("      samples: [{}]", yaml_string(&sample_path)),
        format!(
            "      count: {{offers: {}, problems: {}}}",
            mapped.offers.len(),
            mapped.problems.len()
        ),
    ];
    if !mapped.offers.is_empty() {
        entry.push("      offers:".into());
    }
    for offer in mapped.offers.iter().take(MAX_LOCKED_OFFERS) {
        let value = serde_json::to_value(offer).expect("offers serialize");
        let mut fields = Vec::new();
        for field in ["name", "status", "payout", "currency", "model", "countries"] {
            match value.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => fields.push(format!("{field}: {}", flow_json(v))),
            }
        }
        entry.push(format!(
            "        {}: {{{}}}",
            yaml_string(&offer.external_id),
            fields.join(", ")
        ));
    }
    insert_test(text, &entry)
}

/// JSON is YAML's flow style: a value as a JSON text is valid in `{…}`.
fn flow_json(value: &Value) -> String {
    value.to_string()
}

fn yaml_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// Adds `entry` to the `tests:` list under `spec:` (made when absent),
/// keeping every other line as written.
fn insert_test(text: &str, entry: &[String]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    let block_end = |start: usize, level: usize| {
        let mut end = start + 1;
        let mut last = start + 1;
        while end < lines.len() {
            let l = lines[end];
            if l.starts_with("---") || (!blank(l) && indent(l) <= level) {
                break;
            }
            end += 1;
            if !blank(l) {
                last = end;
            }
        }
        last
    };
    let spec = lines.iter().position(|l| l.trim_end() == "spec:");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match spec {
        Some(spec) => {
            let spec_end = block_end(spec, 0);
            let tests = (spec + 1..spec_end).find(|&i| {
                lines[i].trim_end() == "  tests:" || lines[i].trim_end() == "  tests: []"
            });
            match tests {
                Some(t) if lines[t].trim_end() == "  tests:" => {
                    let end = block_end(t, 2);
                    out.splice(end..end, entry.iter().cloned());
                }
                Some(t) => {
                    out[t] = "  tests:".into();
                    out.splice(t + 1..t + 1, entry.iter().cloned());
                }
                None => {
                    let mut block = vec!["  tests:".to_string()];
                    block.extend(entry.iter().cloned());
                    out.splice(spec_end..spec_end, block);
                }
            }
        }
        None => {
            out.push("spec:".into());
            out.push("  tests:".into());
            out.extend(entry.iter().cloned());
        }
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

/// One line of a diff: `' '` kept, `'-'` removed, `'+'` added.
pub type DiffLine = (char, String);

/// The lines of `new` against `old` (longest common subsequence; a
/// manifest is small, and a file over 4000 lines is shown as replaced).
pub fn diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() * b.len() > 4000 * 4000 {
        return a
            .iter()
            .map(|l| ('-', l.to_string()))
            .chain(b.iter().map(|l| ('+', l.to_string())))
            .collect();
    }
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push((' ', a[i].to_string()));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(('+', b[j].to_string()));
            j += 1;
        } else {
            out.push(('-', a[i].to_string()));
            i += 1;
        }
    }
    out
}

/// Writes `text` to `file` whole: a temporary file beside it, renamed over
/// it, so a daemon watching the directory never reads half a file (its
/// loader skips hidden files, and the rename is atomic).
pub fn save(file: &Path, text: &str) -> Result<(), StudioError> {
    let failed = |error| StudioError::Write {
        file: file.display().to_string(),
        error,
    };
    let folder = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(failed)?;
    let temp = folder.join(format!(
        ".{}.studio-{}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temp, text).map_err(failed)?;
    std::fs::rename(&temp, file).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        failed(e)
    })
}

/// Writes an uploaded sample under `samples/` of the directory, named after
/// `name` (made safe), refusing what is not JSON or XML or is too large.
pub fn save_sample(dir: &Path, name: &str, body: &[u8]) -> Result<PathBuf, StudioError> {
    if body.len() as u64 > MAX_SAMPLE_BYTES {
        return Err(StudioError::Sample(format!(
            "the sample is larger than {MAX_SAMPLE_BYTES} bytes, the most the studio accepts; one page of the offer list is enough"
        )));
    }
    let xml = sniff_xml(body);
    let parsed = if xml {
        crate::mapping::xml::xml_to_value(body, &[])
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    if let Err(e) = parsed {
        return Err(StudioError::Sample(format!(
            "the sample is not JSON or XML ({}); paste one whole response of the API",
            crate::fetch::escape_controls(&e)
        )));
    }
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "sample" } else { stem };
    let folder = dir.join("samples");
    let mut path = folder.join(format!("{stem}.{}", if xml { "xml" } else { "json" }));
    let mut n = 2;
    while path.exists() {
        path = folder.join(format!("{stem}-{n}.{}", if xml { "xml" } else { "json" }));
        n += 1;
    }
    std::fs::create_dir_all(&folder)
        .and_then(|()| std::fs::write(&path, body))
        .map_err(|error| StudioError::Write {
            file: path.display().to_string(),
            error,
        })?;
    Ok(path)
}

/// A sample read from a URL ("new network from a URL"): one GET, no
/// redirect, no link-local or metadata address (the fetcher's resolver),
/// at most [`MAX_SAMPLE_BYTES`], 20 s. A URL that needs a key belongs in an
/// Integration: read it live once the Network exists.
pub async fn fetch_sample(address: &str) -> Result<Vec<u8>, StudioError> {
    let refused = |why: String| {
        StudioError::Sample(format!("{}: {why}", crate::fetch::escape_controls(address)))
    };
    let url = url::Url::parse(address.trim())
        .map_err(|e| refused(format!("not a URL ({e}); write it as https://host/path")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("only http and https URLs are read".into()));
    }
    crate::fetch::check_literal_host(&url).map_err(|e| refused(e.to_string()))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(crate::fetch::GuardedResolver))
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .map_err(|e| refused(e.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| refused(e.to_string()))?;
    if !response.status().is_success() {
        return Err(refused(format!(
            "the server answered {}; save a response by hand and paste it instead",
            response.status()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| refused(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_SAMPLE_BYTES {
            return Err(refused(format!(
                "the response is larger than {MAX_SAMPLE_BYTES} bytes, the most the studio reads; ask for one page"
            )));
        }
    }
    Ok(body)
}

pub fn sniff_xml(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// A new Network proposed by `scaffold` from a saved sample: its text.
pub fn scaffold(name: &str, file: &Path, sample: &Path) -> Result<String, StudioError> {
    let body = testing::read_sample(sample, MAX_SAMPLE_BYTES, || {
        format!("the sample is larger than {MAX_SAMPLE_BYTES} bytes")
    })
    .map_err(StudioError::Sample)?;
    let xml = sniff_xml(&body);
    let tree = if xml {
        crate::mapping::xml::xml_to_value(&body, &[]).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
    }
    .map_err(|e| StudioError::Sample(format!("not JSON or XML: {e}")))?;
    // The draft's folder is made now: the proposal's sample path is
    // relative to it, and resolving `..` needs it to exist.
    let folder = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|error| StudioError::Write {
        file: folder.display().to_string(),
        error,
    })?;
    let rel = crate::cli::scaffold::relative(sample, folder);
    crate::cli::scaffold::propose(name, &tree, &rel, xml)
        .map(|p| p.yaml)
        .ok_or_else(|| {
            StudioError::Sample(
                "no list of records found in the sample (an array of objects, or an object keyed by id)"
                    .into(),
            )
        })
}

/// `git status --porcelain` of `file` when `dir` is in a git work tree:
/// e.g. `?? networks/acme.yaml` or ` M networks/acme.yaml`; `None` outside
/// git (or without git installed), "unchanged" when clean.
pub fn git_status(dir: &Path, file: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--"])
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    Some(if text.is_empty() {
        "unchanged (committed)".into()
    } else {
        text
    })
}

/// One live page: the request as sent (secrets redacted), how it went, the
/// body when it came.
pub struct LivePage {
    pub request: String,
    pub status: String,
    pub millis: u128,
    pub body: Option<Vec<u8>>,
}

/// Reads the first `pages` pages of the Integration's live API, as a sync
/// reads them (the same fetcher and pager: the Network's `rate_limit`,
/// `limits` and loop guards hold); stops at the first failure.
pub async fn live_pages(def: &Arc<IntegrationDef>, pages: usize) -> Vec<LivePage> {
    use crate::fetch::{Fetcher, Pager};
    let mut out = Vec::new();
    let fetcher = match Fetcher::new(def) {
        Ok(f) => f,
        Err(e) => {
            out.push(LivePage {
                request: String::new(),
                status: e.to_string(),
                millis: 0,
                body: None,
            });
            return out;
        }
    };
    let redactor = fetcher.redactor().clone();
    let mut pager = match Pager::new(def, redactor.clone()) {
        Ok(p) => p,
        Err(e) => {
            out.push(LivePage {
                request: String::new(),
                status: e.to_string(),
                millis: 0,
                body: None,
            });
            return out;
        }
    };
    let params = crate::sync::field_params(def);
    while out.len() < pages {
        let Some(request) = pager.next_request().cloned() else {
            break;
        };
        let shown = fetcher.describe(&request);
        let started = std::time::Instant::now();
        let fetched = fetcher.fetch_page(&request).await;
        let millis = started.elapsed().as_millis();
        match fetched {
            Ok(crate::fetch::Fetched { body, headers }) => {
                let advance = def
                    .network
                    .mapping
                    .map_page_using(&body, 1, &params)
                    .map_err(|e| e.to_string())
                    .and_then(|m| {
                        pager
                            .advance(&m.page, &headers, m.listed(), &body, m.ids())
                            .map_err(|e| e.to_string())
                    });
                out.push(LivePage {
                    request: shown,
                    status: "200 OK".into(),
                    millis,
                    body: Some(body),
                });
                if let Err(e) = advance {
                    out.push(LivePage {
                        request: String::new(),
                        status: redactor.redact(&e),
                        millis: 0,
                        body: None,
                    });
                    break;
                }
            }
            Err(e) => {
                out.push(LivePage {
                    request: shown,
                    status: redactor.redact(&e.to_string()),
                    millis,
                    body: None,
                });
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_outside_the_directory_is_refused() {
        let dir = Path::new("/d");
        assert!(resolve_file(dir, "networks/a.yaml").is_ok());
        for bad in [
            "../a.yaml",
            "/etc/a.yaml",
            "a.json",
            ".git/a.yaml",
            "",
            "a/../b.yaml",
        ] {
            assert!(resolve_file(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_test_entry_goes_under_spec_tests() {
        let text = "kind: Network\nspec:\n  request: {}\n  tests:\n    - name: a\n      samples: [x.json]\n# end\n";
        let out = insert_test(text, &["    - name: b".into()]);
        assert_eq!(
            out,
            "kind: Network\nspec:\n  request: {}\n  tests:\n    - name: a\n      samples: [x.json]\n    - name: b\n# end\n"
        );
        let out = insert_test("spec:\n  a: 1\n", &["    - name: b".into()]);
        assert_eq!(out, "spec:\n  a: 1\n  tests:\n    - name: b\n");
    }

    #[test]
    fn a_diff_keeps_common_lines() {
        let d = diff("a\nb\nc\n", "a\nx\nc\n");
        assert_eq!(
            d,
            vec![
                (' ', "a".into()),
                ('+', "x".into()),
                ('-', "b".into()),
                (' ', "c".into())
            ]
        );
    }
}
