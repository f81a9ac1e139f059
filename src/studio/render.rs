//! The studio's HTML, from data already computed: pure functions, no I/O.
//! maud escapes every interpolated value, so text from a sample or a
//! network (offer names, API messages) only ever shows as text. Pages are
//! whole documents; the editor's panels are fragments the script swaps in.

use std::path::Path;

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::work::{DiffLine, Listing, LivePage, Mapped, StudioError};
use crate::cli::testing::Outcome;
use crate::manifest::Diagnostic;

fn layout(title: &str, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · offersync studio" }
                link rel="stylesheet" href="/assets/studio.css";
                script src="/assets/studio.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "offersync studio" }
                }
                main { (content) }
            }
        }
    }
    .into_string()
}

pub fn error_page(message: &str) -> String {
    layout(
        "Error",
        html! { p.error { (message) } p { a href="/" { "Back to the list" } } },
    )
}

pub fn error(message: &str) -> String {
    html! { p.error role="alert" { (message) } }.into_string()
}

pub fn index(dir: &Path, listing: &Listing) -> String {
    layout(
        "Networks",
        html! {
            h1 { "Networks and Integrations in " code { (dir.display()) } }
            section {
                h2 { "Networks" }
                @if listing.networks.is_empty() {
                    p { "No Network file yet: start one below." }
                }
                ul #networks {
                    @for (name, file) in &listing.networks {
                        li { a href=(format!("/edit?file={}", encode(file))) { (name) } " " small { (file) } }
                    }
                }
                @if !listing.broken.is_empty() {
                    h3 { "Files with errors" }
                    ul {
                        @for file in &listing.broken {
                            li { a href=(format!("/edit?file={}", encode(file))) { (file) } }
                        }
                    }
                }
            }
            section {
                h2 { "Integrations" }
                ul #integrations {
                    @for (name, network, file) in &listing.integrations {
                        li { (name) " on " (network) " " small { (file) } }
                    }
                }
            }
            section #new {
                h2 { "New network" }
                p { "Paste one response of the network's offer list (JSON or XML). The studio saves it under "
                    code { "samples/" } " and proposes a Network file from it." }
                label { "Name " input #new-name type="text" placeholder="acme" autocomplete="off"; }
                label { "Sample " textarea #new-sample rows="8" placeholder="{\"offers\": [...]}" {} }
                label { "…or upload a file " input #new-file type="file" accept=".json,.xml"; }
                label { "…or read it from a URL " input #new-url type="url" placeholder="https://api.example.com/offers?page=1" autocomplete="off"; }
                button #new-go type="button" { "Propose a Network" }
                div #new-result {}
            }
        },
    )
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub fn editor(file: &str, text: &str) -> String {
    layout(
        file,
        html! {
            div #studio data-file=(file) {
                section.edit {
                    h1 { (file) }
                    div.editor {
                        pre #gutter aria-hidden="true" {}
                        textarea #text spellcheck="false" autocomplete="off" wrap="off" { (text) }
                    }
                    div #problems {}
                    div.actions {
                        button #lock type="button" { "Lock these offers as a test" }
                        button #review type="button" { "Save…" }
                    }
                    div #save {}
                    div #tests {}
                }
                section.read {
                    div.controls {
                        label { "Sample " select #sample {} }
                        button #next type="button" { "Next page" }
                        label { "Integration " select #integration { option value="" { "(none: the mapping only)" } } }
                        button #live type="button" { "Read live" }
                        label { "Upload a sample " input #upload type="file" accept=".json,.xml"; }
                    }
                    div #livelog {}
                    div #results {}
                    div #trace {}
                }
            }
        },
    )
}

/// The file's problems, each with its line, in the words of `validate`.
pub fn problems(diagnostics: &[Diagnostic], dir: &Path) -> String {
    html! {
        @if diagnostics.is_empty() {
            p.ok { "No problems: the file validates." }
        } @else {
            ul.problems {
                @for d in diagnostics {
                    li class=(if d.is_error() { "error" } else { "warning" }) data-line=(d.line) {
                        @if d.line > 0 { a.goto href="#" data-line=(d.line) { "line " (d.line) } ": " }
                        (d.to_string().replace(&format!("{}/", dir.display()), ""))
                    }
                }
            }
        }
    }
    .into_string()
}

/// The file's `tests:`, as `offersync test` reports them.
pub fn tests(valid: bool, outcomes: &[Outcome]) -> String {
    html! {
        h2 { "Tests" }
        @if !valid {
            p { "The file has errors: its tests run once it validates." }
        } @else if outcomes.is_empty() {
            p #tests-none { "No tests yet: pick a sample and press “Lock these offers as a test”." }
        } @else {
            ul #test-list {
                @for o in outcomes {
                    li class=(if o.passed() { "pass" } else { "fail" }) {
                        strong { (if o.passed() { "PASS " } else { "FAIL " }) } (o.test)
                        @let lines = o.lines();
                        @if !lines.is_empty() {
                            ul { @for l in &lines { li { (l) } } }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The offers of a sample, a column per field, problems and warnings.
pub fn results(sample: &str, mapped: &Result<Option<Mapped>, StudioError>) -> String {
    let mapped = match mapped {
        Ok(Some(m)) => m,
        Ok(None) => {
            return html! { p { "Pick a sample (or upload one) to see its offers." } }
                .into_string();
        }
        Err(e) => return error(&e.to_string()),
    };
    let (columns, rows) = super::work::columns(&mapped.offers);
    html! {
        h2 { "Offers of " code { (sample) } }
        p #summary { (mapped.offers.len()) " offers, " (mapped.problems.len()) " problems, " (mapped.records) " records" }
        @for w in &mapped.warnings { p.warning { "warning: " (w) } }
        @for p in &mapped.problems { p.error { "problem: " (p) } }
        div.scroll {
            table #offers {
                thead { tr { @for c in &columns { th { (c) } } th { "warnings" } } }
                tbody {
                    @for (offer, row) in mapped.offers.iter().zip(&rows) {
                        tr data-offer=(offer.external_id) tabindex="0" {
                            @for c in &columns { td { (cell(row.get(c))) } }
                            td.warning { (offer.warnings.join("; ")) }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

fn cell(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(79).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// One offer's `explain` report: fields with rule, path and alternatives,
/// filters' verdicts, payout arithmetic, verdict.
pub fn trace(offer: &str, report: &Value) -> String {
    let raw = serde_json::to_string_pretty(&report["raw"]).unwrap_or_default();
    html! {
        h2 #trace-title { "Offer " code { (offer) } }
        @if let Some(i) = report["integration"].as_str() { p { "Through Integration " strong { (i) } } }
        table.trace {
            thead { tr { th { "field" } th { "value" } th { "rule" } th { "alternatives" } } }
            tbody {
                @for f in report["fields"].as_array().into_iter().flatten() {
                    tr {
                        td { (f["field"].as_str().unwrap_or_default()) }
                        td { (cell(Some(&f["value"]))) }
                        td { code { (f["rule"].as_str().unwrap_or_default()) } }
                        td {
                            @if f["alternatives"].as_array().is_some_and(|a| a.len() > 1) {
                                @for alt in f["alternatives"].as_array().into_iter().flatten() {
                                    div { code { (alt["rule"].as_str().unwrap_or_default()) } ": "
                                        (if alt["gave_value"] == Value::Bool(true) { "gave a value" } else { "gave nothing" }) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for w in report["warnings"].as_array().into_iter().flatten() { p.warning { "warning: " (w.as_str().unwrap_or_default()) } }
        @if let Some(p) = report["mapping_problem"].as_str() { p.error { "mapping problem: " (p) } }
        @if let Some(filters) = report["filters"].as_array() {
            h3 { "Filters" }
            ul #filters {
                @for f in filters {
                    li class=(if f["passes"] == Value::Bool(true) { "pass" } else { "fail" }) {
                        (f["filter"].as_str().unwrap_or_default()) ": "
                        @if f["passes"] == Value::Bool(true) { "passes" } @else {
                            "skips: " (f["reason"].as_str().unwrap_or_default()) " (" (f["detail"].as_str().unwrap_or_default()) ")"
                        }
                    }
                }
            }
        }
        @if let Some(a) = report["payout"]["arithmetic"].as_str() { p #payout { "payout: " (a) } }
        @if let Some(v) = report["verdict"].as_str() { p #verdict { "verdict: " (v) } }
        details { summary { "Raw record" } pre.raw { (raw) } }
    }
    .into_string()
}

pub fn diff(file: &str, exists: bool, lines: &[DiffLine]) -> String {
    let changed = lines.iter().any(|(k, _)| *k != ' ');
    html! {
        h2 { "Save " code { (file) } }
        @if !exists { p { "A new file." } }
        @if !changed { p { "No change against the file on disk." } }
        pre #diff {
            @for (kind, line) in lines {
                @let class = match kind { '+' => "add", '-' => "del", _ => "same" };
                span class=(class) { (kind) " " (line) "\n" }
            }
        }
        button #confirm type="button" { "Write the file" }
    }
    .into_string()
}

pub fn saved(file: &str, errors: usize, git: Option<&str>) -> String {
    html! {
        p #saved.ok { "Saved " code { (file) } "." }
        @if errors > 0 {
            p.warning { "It has " (errors) " errors: a daemon keeps the last good version until they are fixed." }
        }
        @match git {
            Some(status) => p #git { "git status: " code { (status) } },
            None => p #git { "The directory is not a git work tree." },
        }
    }
    .into_string()
}

/// The requests of a live read (redacted), each with status, time and a
/// collapsible, size-limited response.
pub fn live(pages: &[LivePage]) -> String {
    const SHOWN: usize = 64 * 1024;
    html! {
        h2 { "Live read" }
        ol #live-pages {
            @for (i, p) in pages.iter().enumerate() {
                li {
                    strong { (p.status) } " in " (p.millis) " ms"
                    @if !p.request.is_empty() { pre.request { (p.request) } }
                    @if let Some(body) = &p.body {
                        @let pretty = pretty(body);
                        details {
                            summary { "Response, " (body.len()) " bytes (page " (i + 1) ")" }
                            pre.raw {
                                (pretty.chars().take(SHOWN).collect::<String>())
                                @if pretty.len() > SHOWN { "\n… (cut at 64 KiB)" }
                            }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

fn pretty(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}
