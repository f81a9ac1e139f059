//! Reading YAML files into typed documents with precise error locations.
//!
//! A file may hold several documents. Each is parsed on its own (after the
//! file is split at `---` lines), first for its envelope to learn its kind,
//! then as that kind; a broken document is reported and the others still load.

use std::path::Path;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::check::{self, Node};
use super::diagnostic::{Diagnostic, DocSource};
use super::raw::{Document, IntegrationSpec, Kind, NetworkSpec};
use super::schema;
use crate::mapping::program::did_you_mean;

/// One parsed document. A document parsed only after recovering from errors
/// (`recovered`) is still checked, to report its other problems, but is never used.
#[derive(Debug)]
pub enum ParsedDoc {
    Network(Box<Document<NetworkSpec>>, DocSource, Recovered),
    Integration(Box<Document<IntegrationSpec>>, DocSource, Recovered),
}

/// Whether a document had structural errors that were skipped to parse the rest.
pub type Recovered = bool;

/// How many structural errors one document may report before giving up.
const MAX_RECOVERIES: usize = 20;

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
                diagnostics.push(d);
                continue;
            }
        };
        // The schema first: it reports every problem of the document at once.
        let problems = match serde_saphyr::from_str_with_options::<Node>(chunk, options()) {
            Ok(tree) => check::check(&tree, schema::json(header.kind)),
            Err(e) => {
                diagnostics.push(located_error(&e, "", &source));
                continue;
            }
        };
        let clean = problems.is_empty();
        let mut serde_problems = Vec::new();
        for p in problems {
            let mut d = source.error_at(p.line, p.column, p.field, p.message);
            d.hint = p.hint;
            diagnostics.push(d);
        }
        // serde still reads a document the schema faulted (its repairs let the
        // rest be compiled, so that the document's other problems show in this
        // pass too), but the document is never used, and serde's view of what
        // the schema already reported is dropped.
        let target = if clean {
            &mut *diagnostics
        } else {
            &mut serde_problems
        };
        let parsed = match header.kind {
            Kind::Network => deserialize_recovering(chunk, &source, target)
                .map(|(d, r)| ParsedDoc::Network(Box::new(d), source.clone(), r || !clean)),
            Kind::Integration => deserialize_recovering(chunk, &source, target)
                .map(|(d, r)| ParsedDoc::Integration(Box::new(d), source.clone(), r || !clean)),
        };
        if !clean {
            let faulted_lines: Vec<u64> = diagnostics
                .iter()
                .filter(|d| d.file == source.file)
                .map(|d| d.line)
                .collect();
            diagnostics.extend(
                serde_problems.into_iter().filter(|d| {
                    !faulted_lines.contains(&d.line) && !d.message.contains("is missing")
                }),
            );
        }
        docs.extend(parsed);
    }
    docs
}

/// The names of the Network documents of a file that cannot be read as YAML
/// at all, found by a look at the text, so that an Integration using one is
/// told its network is broken rather than missing.
pub fn broken_network_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (_, chunk) in split_documents(text) {
        if serde_saphyr::from_str_with_options::<Node>(chunk, options()).is_ok() {
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

/// Deserializes a document, reporting every structural error rather than the
/// first. After an error, the offending value is replaced by `~` (or, when that
/// does not help, its line is blanked; a parent left empty becomes `{}`) and
/// parsing starts again; line and column numbers never move. Only errors that
/// such repairs cannot cause (unknown keys, wrong types or values) are reported
/// after the first; recovery stops at anything else. Returns the document
/// parsed from what was left, if any.
fn deserialize_recovering<T: DeserializeOwned>(
    chunk: &str,
    source: &DocSource,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(T, Recovered)> {
    let mut text = chunk.to_string();
    let mut recovered = false;
    // The text before a value was nulled, and where: to blank the line instead
    // if the field does not accept null.
    let mut nulled: Option<(String, u64, u64)> = None;
    for _ in 0..MAX_RECOVERIES {
        let (diagnostic, raw_message) = match deserialize_raw(&text, source) {
            Ok(doc) => return Some((doc, recovered)),
            Err(e) => e,
        };
        let line = diagnostic.line.saturating_sub(source.line_offset);
        // The field did not take `~` (a required value, or an enum reading "~").
        if let Some((before, at_line, at_column)) = nulled.take()
            && (line, diagnostic.column) == (at_line, at_column)
        {
            text = before;
            if blank_line(&mut text, line) {
                continue;
            }
            return None;
        }
        let recoverable = is_recoverable(&raw_message);
        let repeated = diagnostics.iter().any(|d| {
            (d.file.as_path(), d.line, d.column)
                == (
                    diagnostic.file.as_path(),
                    diagnostic.line,
                    diagnostic.column,
                )
        });
        if recovered && (!recoverable || repeated) {
            return None; // possibly caused by a repair: not reported
        }
        let column = diagnostic.column;
        let message = raw_message;
        diagnostics.push(diagnostic);
        if !recoverable || line == 0 {
            return None;
        }
        recovered = true;
        if !message.starts_with("unknown field") {
            let before = text.clone();
            if null_value(&mut text, line, column) {
                nulled = Some((before, line, column));
                continue;
            }
        }
        if !blank_line(&mut text, line) {
            return None;
        }
    }
    None
}

fn is_recoverable(message: &str) -> bool {
    [
        "unknown field",
        "unknown variant",
        "invalid type",
        "invalid value",
        "invalid length",
    ]
    .iter()
    .any(|p| message.starts_with(p))
        && !message.starts_with("invalid type: null")
}

/// Replaces the plain or quoted scalar at a 1-based line and column with `~`,
/// padded to its length. Collections are left alone (returns false).
fn null_value(text: &mut String, line: u64, column: u64) -> bool {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let Some(target) = lines.get_mut(line.saturating_sub(1) as usize) else {
        return false;
    };
    let chars: Vec<char> = target.chars().collect();
    let start = column.saturating_sub(1) as usize;
    let Some(&first) = chars.get(start) else {
        return false;
    };
    let end = match first {
        '[' | '{' | '|' | '>' | '&' | '*' | '!' => return false,
        '"' | '\'' => match chars[start + 1..].iter().position(|&c| c == first) {
            Some(i) => start + i + 2,
            None => return false,
        },
        _ => chars[start..]
            .iter()
            .position(|&c| matches!(c, ',' | '}' | ']' | '#' | '\n' | '\r'))
            .map_or(chars.len(), |i| start + i),
    };
    let width = end - start;
    let replacement = format!("~{}", " ".repeat(width.saturating_sub(1)));
    *target = chars[..start].iter().collect::<String>()
        + &replacement
        + &chars[end..].iter().collect::<String>();
    *text = lines.concat();
    true
}

/// Replaces a 1-based line with a comment, keeping every other line where it
/// was; a block mapping key left with nothing under it gets `{}`, so that it
/// reads as empty rather than null.
fn blank_line(text: &mut String, line: u64) -> bool {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let index = line.saturating_sub(1) as usize;
    match lines.get_mut(index) {
        Some(l) if !l.trim_start().starts_with('#') => {
            *l = if l.ends_with('\n') {
                "#\n".into()
            } else {
                "#".into()
            };
        }
        _ => return false,
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_content = |l: &str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    for i in 0..lines.len() {
        let body = lines[i].trim_end().to_string();
        if !is_content(&body) || !body.ends_with(':') {
            continue;
        }
        let next = lines[i + 1..].iter().find(|l| is_content(l));
        let empty = match next {
            None => true,
            Some(n) => indent(n) <= indent(&body) && !n.trim_start().starts_with("- "),
        };
        if empty {
            let newline = if lines[i].ends_with('\n') { "\n" } else { "" };
            lines[i] = format!("{body} {{}}{newline}");
        }
    }
    *text = lines.concat();
    true
}

/// Deserializes one document, turning serde's error into a located diagnostic
/// that names the field path and, for a misspelled key, the likely intended one.
// A diagnostic is made once per mistake a person wrote: its size is no cost.
#[allow(clippy::result_large_err)]
pub fn deserialize<T: DeserializeOwned>(chunk: &str, source: &DocSource) -> Result<T, Diagnostic> {
    deserialize_raw(chunk, source).map_err(|(diagnostic, _)| diagnostic)
}

/// [`deserialize`], also returning serde's own wording, by which recovery
/// decides what it can repair.
// A diagnostic is made once per mistake a person wrote: its size is no cost.
#[allow(clippy::result_large_err)]
fn deserialize_raw<T: DeserializeOwned>(
    chunk: &str,
    source: &DocSource,
) -> Result<T, (Diagnostic, String)> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(chunk, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|error| {
        let raw = strip_location(&error.to_string());
        (located_error(&error, &clean_path(&path), source), raw)
    })
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

/// Paths through `Located` values carry an internal `value` step; users never wrote it.
fn clean_path(path: &str) -> String {
    let cleaned: Vec<&str> = path
        .split('.')
        .filter(|seg| *seg != "value" && *seg != "?")
        .collect();
    let joined = cleaned.join(".");
    if joined == "." { String::new() } else { joined }
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
    fn repairs_keep_positions_and_leave_no_null_parents() {
        let mut text = "a:\n  b: {c: oops, d: 1}\n  e: \"x y\"\n".to_string();
        assert!(null_value(&mut text, 2, 10));
        assert_eq!(text, "a:\n  b: {c: ~   , d: 1}\n  e: \"x y\"\n");
        assert!(null_value(&mut text, 3, 6));
        assert_eq!(text, "a:\n  b: {c: ~   , d: 1}\n  e: ~    \n");
        assert!(!null_value(&mut text, 2, 6), "a collection is not nulled");
        let mut text = "spec:\n  filters:\n    os: andriod\n  name: x\n".to_string();
        assert!(blank_line(&mut text, 3));
        assert_eq!(text, "spec:\n  filters: {}\n#\n  name: x\n");
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
