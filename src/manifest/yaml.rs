//! Reading YAML files into typed documents with precise error locations.
//!
//! A file may hold several documents. Each is parsed on its own (after the
//! file is split at `---` lines), first for its envelope to learn its kind,
//! then into its located tree, which is checked against the kind's schema
//! and read as that kind; a broken document is reported and the others
//! still load.

use std::collections::BTreeSet;
use std::path::Path;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::check;
use super::diagnostic::{Diagnostic, DocSource};
use super::raw::{Document, IntegrationSpec, Kind, NetworkSpec};
use super::schema;
use super::tree::{self, Omitted};
use crate::mapping::program::did_you_mean;

/// One parsed document, and what was left out of it to read it. A document
/// with anything left out (the schema or serde faulted a part) is still
/// compiled, to report its other problems, but is never used.
#[derive(Debug)]
pub enum ParsedDoc {
    Network(Box<Document<NetworkSpec>>, DocSource, Omitted),
    Integration(Box<Document<IntegrationSpec>>, DocSource, Omitted),
}

/// Largest manifest file read, against accidents (a log file in the directory).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Parses every document of a file's text; problems go to `diagnostics`.
pub fn parse_file(file: &Path, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<ParsedDoc> {
    let mut docs = Vec::new();
    for (line_offset, chunk) in split_documents(text) {
        let source = DocSource::new(file, line_offset);
        let header: Document<IgnoredAny> = match deserialize(chunk, &source) {
            Ok(h) => h,
            Err(d) => {
                diagnostics.extend(envelope_problems(chunk, &source, d));
                continue;
            }
        };
        let root = match tree::parse(chunk, options()) {
            Ok(root) => root,
            Err(e) => {
                diagnostics.push(located_error(&e, "", &source));
                continue;
            }
        };
        // The schema first: it reports every problem of the document at once,
        // and names the nodes serde must read without.
        let problems = check::check(&root, schema::json(header.kind));
        let faulted: BTreeSet<usize> = problems.iter().map(|p| p.node).collect();
        for p in problems {
            let mut d = source.error_at(p.line, p.column, p.field, p.message);
            d.hint = p.hint;
            diagnostics.push(d);
        }
        let parsed = match header.kind {
            Kind::Network => read(&root, chunk, &faulted, &source, diagnostics)
                .map(|(d, o)| ParsedDoc::Network(Box::new(d), source.clone(), o)),
            Kind::Integration => read(&root, chunk, &faulted, &source, diagnostics)
                .map(|(d, o)| ParsedDoc::Integration(Box::new(d), source.clone(), o)),
        };
        docs.extend(parsed);
    }
    docs
}

/// The envelope's problems when it does not deserialize: a wrong
/// `apiVersion` and a wrong `kind` are reported together (serde stops at
/// the first), beside serde's first problem (`first`) when it is another.
fn envelope_problems(chunk: &str, source: &DocSource, first: Diagnostic) -> Vec<Diagnostic> {
    use super::raw::ApiVersion;
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        #[serde(rename = "apiVersion")]
        _api_version: ApiVersion,
    }
    #[derive(serde::Deserialize)]
    struct KindOnly {
        #[serde(rename = "kind")]
        _kind: Kind,
    }
    let mut problems: Vec<Diagnostic> = [
        deserialize::<VersionOnly>(chunk, source).err(),
        deserialize::<KindOnly>(chunk, source).err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    // serde's own first problem may be another (an unknown key): keep it.
    if !problems.contains(&first) {
        problems.insert(0, first);
    }
    problems
}

/// Reads a document from its tree without the `faulted` nodes; what serde
/// finds besides goes to `diagnostics`, in words for manifest authors.
fn read<T: DeserializeOwned>(
    root: &tree::Node,
    chunk: &str,
    faulted: &BTreeSet<usize>,
    source: &DocSource,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(T, Omitted)> {
    let (read, problems) = tree::read(root, chunk, faulted);
    for p in problems {
        let suggestion = hint_for(&p.message);
        let (message, hint) = humanize(&p.message);
        let mut d = source.error_at(p.line, p.column, p.field, message);
        d.hint = suggestion.or(hint);
        diagnostics.push(d);
    }
    read
}

/// The names of the Network documents of a file that cannot be read as YAML
/// at all, found by a look at the text, so that an Integration using one is
/// told its network is broken rather than missing.
pub fn broken_network_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (_, chunk) in split_documents(text) {
        if tree::parse(chunk, options()).is_ok() {
            continue;
        }
        let is_network = chunk
            .lines()
            .any(|l| l.trim_end() == "kind: Network" || l.trim_end() == "kind: \"Network\"");
        let name = chunk
            .lines()
            .skip_while(|l| !l.starts_with("metadata:"))
            .find_map(|l| l.trim().strip_prefix("name:"))
            .map(|n| {
                n.split('#')
                    .next()
                    .unwrap_or(n)
                    .trim()
                    .trim_matches(['"', '\''])
                    .to_string()
            });
        if let (true, Some(name)) = (is_network, name) {
            names.push(name);
        }
    }
    names
}

/// Splits a YAML stream at document markers: `(lines before the document, its text)`.
/// A `---` or `...` line at column 0 always starts or ends a document in YAML,
/// even after a block scalar, so splitting by lines is exact. Empty documents
/// (only comments or blank lines) are dropped.
pub fn split_documents(text: &str) -> Vec<(u64, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 0u64;
    let mut offset = 0;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "..." || bare.starts_with("... ");
        if is_start || is_end {
            push_doc(&mut docs, start_line, &text[start_byte..offset]);
            // The marker line stays with the new document: `--- {a: 1}` is valid YAML.
            start_byte = if is_end { offset + line.len() } else { offset };
            start_line = if is_end {
                line_no as u64 + 1
            } else {
                line_no as u64
            };
        }
        offset += line.len();
    }
    push_doc(&mut docs, start_line, &text[start_byte..]);
    docs
}

fn push_doc<'a>(docs: &mut Vec<(u64, &'a str)>, line: u64, chunk: &'a str) {
    let has_content = chunk.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    });
    if has_content {
        docs.push((line, chunk));
    }
}

fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML 1.2: `yes`, `on` are text, as the schema (and editors) read them.
    options.strict_booleans = true;
    options
}

/// Deserializes one document from its text (its envelope, to learn its
/// kind), turning serde's error into a located diagnostic that names the
/// field path and, for a misspelled key, the likely intended one.
// A diagnostic is made once per mistake a person wrote: its size is no cost.
#[allow(clippy::result_large_err)]
fn deserialize<T: DeserializeOwned>(chunk: &str, source: &DocSource) -> Result<T, Diagnostic> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(chunk, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|error| located_error(&error, &tree::clean_path(&path), source))
}

/// serde-saphyr's error as a diagnostic in words for manifest authors.
fn located_error(error: &serde_saphyr::Error, field: &str, source: &DocSource) -> Diagnostic {
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let raw = strip_location(&error.to_string());
    let suggestion = hint_for(&raw);
    let (message, hint) = humanize(&raw);
    let mut diagnostic = source.error_at(line, column, field, message);
    diagnostic.hint = suggestion.or(hint);
    diagnostic
}

/// Rewrites the parser's and serde's wording (Rust type names, parser
/// states) as what the author should write. Unknown wording passes through.
fn humanize(message: &str) -> (String, Option<String>) {
    let m = message.trim();
    let owned = |s: &str| s.to_string();
    if m.contains("tabs disallowed") || m.contains("found a tab") || m.contains("tab character") {
        return (
            owned("a tab is used to indent this line; YAML indents with spaces only"),
            Some(owned(
                "replace the tab with spaces, lined up with the keys beside it",
            )),
        );
    }
    if m.starts_with("invalid boolean") {
        return (
            owned("this is not true or false"),
            Some(owned("write true or false")),
        );
    }
    if let Some(rest) = m.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (format!("unknown key `{name}`"), None);
    }
    if let Some(rest) = m.strip_prefix("unknown variant `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let choices = rest
            .split_once("expected one of ")
            .or_else(|| rest.split_once("expected "))
            .map(|(_, list)| list.replace('`', ""))
            .unwrap_or_default();
        return (format!("{name:?} is not one of: {choices}"), None);
    }
    if let Some(rest) = m.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return (
            format!("`{name}` is missing"),
            Some(format!("add `{name}: ...` here")),
        );
    }
    let integer_type = [
        "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "usize",
    ]
    .iter()
    .any(|t| m.contains(&format!("invalid {t}")) || m.contains(&format!("expected {t}")));
    if integer_type {
        return (
            owned("this is not a whole number"),
            Some(owned(
                "write a whole number such as 2 (no quotes, no decimal point)",
            )),
        );
    }
    if m.contains("Decimal type") || m.contains("invalid f64") || m.contains("expected f64") {
        return (
            owned("this is not a number"),
            Some(owned(
                "write a number such as 0.9 or 12.50 (no units, no quotes)",
            )),
        );
    }
    if m.contains("mapping values are not allowed") || m.contains("did not find expected key") {
        return (
            owned("the indentation or a `:` is off on this line"),
            Some(owned(
                "line the key up with the keys beside it, and put text containing `: ` in quotes",
            )),
        );
    }
    (m.to_string(), None)
}

/// serde-saphyr appends " at line L, column C"; the diagnostic carries those itself.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// "did you mean" for unknown keys and variants, from serde's list of expected names.
fn hint_for(message: &str) -> Option<String> {
    let unknown = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = unknown.split_once('`')?;
    let expected = rest
        .split_once("expected one of ")
        .map(|(_, list)| list)
        .or_else(|| rest.split_once("expected ").map(|(_, list)| list))?;
    let candidates: Vec<String> = expected
        .split([','])
        .flat_map(|s| s.split(" or "))
        .map(|s| s.trim().trim_matches('`').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    did_you_mean(word, candidates.iter().map(String::as_str))
        .map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_markers_with_their_line_offsets() {
        let text = "# comment\na: 1\n---\nb: 2\n--- {c: 3}\n...\n\n---\n# only a comment\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0], (0, "# comment\na: 1\n"));
        assert_eq!(docs[1], (2, "---\nb: 2\n"));
        assert_eq!(docs[2], (4, "--- {c: 3}\n"));
    }

    #[test]
    fn misspelled_keys_get_a_suggestion() {
        let hint = hint_for("unknown field `alow`, expected one of allow, block");
        assert_eq!(hint.as_deref(), Some("did you mean `allow`?"));
        assert_eq!(
            hint_for("unknown field `zzz`, expected one of allow, block"),
            None
        );
        assert_eq!(
            hint_for("unknown variant `andriod`, expected one of `all`, `android`, `ios`")
                .as_deref(),
            Some("did you mean `android`?")
        );
    }
}
