//! The commands that touch the store: `sync`, `plan`, `runs`, `status`, `undelete`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::campaign::PayoutKind;
use crate::diagnosis::{self, ErrorKind, SyncState};
use crate::manifest::{self, IntegrationDef};
use crate::mapping::program::did_you_mean;
use crate::provenance;
use crate::store::{self, RunId, RunRecord, SkipRecord, Store, Trigger};
use crate::sync::{self, RunReport};

use super::OutputFormat;

/// Exit status of a command that could not do its job at all (bad manifest,
/// no database).
const CANNOT_START: u8 = 2;

pub(super) fn open_store(url: &str) -> Result<Box<dyn Store>, ExitCode> {
    store::open(url).map_err(|e| {
        errln!("error: {e}");
        ExitCode::from(CANNOT_START)
    })
}

/// For commands that only read (runs, status, refresh): an SQLite store
/// that does not exist is an error, not a new empty file that then says
/// "no runs yet".
pub(super) fn open_existing_store(url: &str) -> Result<Box<dyn Store>, ExitCode> {
    if let Ok(store::Backend::Sqlite(path)) = store::Backend::from_url(url)
        && !path.exists()
    {
        errln!(
            "error: there is no store at {}: nothing has been synced into it\n  hint: pass the store you synced into with --database-url (the demo's is sqlite://offersync-demo.db) or set DATABASE_URL",
            path.display()
        );
        return Err(ExitCode::from(CANNOT_START));
    }
    open_store(url)
}

/// Loads the manifest directory and finds one integration in it.
fn load_integration(dir: &Path, name: &str) -> Result<Arc<IntegrationDef>, ExitCode> {
    load_integration_with(dir, name, &manifest::process_env)
}

/// [`load_integration`] with the environment `${env:…}` references read.
pub(super) fn load_integration_with(
    dir: &Path,
    name: &str,
    env: manifest::EnvLookup<'_>,
) -> Result<Arc<IntegrationDef>, ExitCode> {
    if !dir.is_dir() {
        errln!(
            "error: {} is not a directory\n  hint: pass the directory of your manifests with --dir",
            dir.display()
        );
        return Err(ExitCode::from(CANNOT_START));
    }
    let mut loaded = manifest::load_dir(dir, env);
    if let Some(def) = loaded.catalog.integrations.remove(name) {
        // Problems elsewhere in the directory do not stop this integration.
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            if d.file != def.source_file {
                errln!("warning: another manifest is invalid: {d}");
            }
        }
        return Ok(Arc::new(def));
    }
    let own_errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    if own_errors.is_empty() {
        let names = loaded.catalog.integrations.keys().map(String::as_str);
        let hint = did_you_mean(name, names)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        errln!(
            "error: no Integration named `{name}` in {}{hint}",
            dir.display()
        );
    } else {
        errln!(
            "error: no valid Integration named `{name}` in {} (run `offersync validate --dir {}`):",
            dir.display(),
            dir.display()
        );
        for e in own_errors {
            errln!("{e}");
        }
    }
    Err(ExitCode::from(CANNOT_START))
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the async runtime starts")
}

/// `offersync sync NAME`: one run now. Exit 0 succeeded, 1 the run failed, 2 it could not start.
/// The deliberate overrides of `offersync sync`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncFlags {
    pub accept_removals: bool,
    pub force: bool,
}

pub fn sync(name: &str, dir: &Path, url: &str, format: OutputFormat, flags: SyncFlags) -> ExitCode {
    let def = match load_integration(dir, name) {
        Ok(def) => def,
        Err(code) => return code,
    };
    if !def.enabled && !flags.force {
        errln!(
            "error: {name} is disabled (spec.enabled: false in {}); nothing was run\n  hint: enable it, or run it once anyway with `offersync sync {name} --force`",
            def.source_file.display()
        );
        return ExitCode::from(CANNOT_START);
    }
    let store = match open_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = sync::RunOptions {
        accept_removals: flags.accept_removals,
        ..sync::RunOptions::new(Trigger::Cli)
    };
    let progress = Progress::on_terminal(name, format);
    let (_, report) = runtime().block_on(sync::run_reporting(def, store, options, &|p| {
        if let Some(progress) = &progress {
            progress.show(p);
        }
    }));
    if let Some(progress) = progress {
        progress.clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    match format {
        OutputFormat::Json => outln!("{}", serde_json::to_string(&report).unwrap_or_default()),
        OutputFormat::Text => print_report(&report),
    }
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A progress line on stderr while a run fetches, for a person watching a
/// terminal: rewritten in place at most every 100 ms, erased at the end.
/// Never when stderr is piped or logged, nor with `--format json`.
struct Progress {
    name: String,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Progress {
    fn on_terminal(name: &str, format: OutputFormat) -> Option<Self> {
        use std::io::IsTerminal;
        (format == OutputFormat::Text && std::io::stderr().is_terminal()).then(|| Self {
            name: name.to_string(),
            last: std::sync::Mutex::new(None),
        })
    }

    fn show(&self, p: sync::Progress) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let done = p.total_pages.is_some_and(|t| p.pages >= t);
        if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_millis(100)) && !done {
            return;
        }
        *last = Some(std::time::Instant::now());
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", progress_line(&self.name, p));
        let _ = err.flush();
    }

    fn clear(self) {
        if self
            .last
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// `acme: page 3 of 10 · 2,000 of 10,000 offers`.
fn progress_line(name: &str, p: sync::Progress) -> String {
    let of = |total: Option<u64>| {
        total
            .map(|t| format!(" of {}", thousands(t)))
            .unwrap_or_default()
    };
    format!(
        "{name}: page {}{} · {}{} offers",
        thousands(p.pages),
        of(p.total_pages),
        thousands(p.records),
        of(p.total_records)
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn print_report(report: &RunReport) {
    print_report_with(report, "")
}

/// [`print_report`], with `store_arg` (` --database-url URL`, or empty)
/// added to the command it suggests, for a store other than the one
/// commands use by default.
pub(super) fn print_report_with(report: &RunReport, store_arg: &str) {
    let run = report.run.map(|r| format!(" run {r}")).unwrap_or_default();
    let secs = report.elapsed.as_secs_f64();
    match &report.error {
        None => outln!("{}:{run} succeeded in {secs:.1}s", report.integration),
        Some(e) => outln!(
            "{}:{run} FAILED after {secs:.1}s, no campaign changed: {}",
            report.integration,
            shown(e)
        ),
    }
    outln!("  {}", report.counts);
    for (reason, n) in &report.counts.skipped_by_reason {
        outln!("  skipped {n:>6}  {reason}");
    }
    if let Some(run) = report.run
        && report.counts.skipped > 0
    {
        outln!("  (offersync runs show {run}{store_arg} lists every skipped offer and why)");
    }
}

/// `offersync fetch NAME`: the read half of a run, with no database.
pub fn fetch(name: &str, dir: &Path, format: OutputFormat) -> ExitCode {
    let def = match load_integration(dir, name) {
        Ok(def) => def,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    match runtime().block_on(sync::fetch_only(def)) {
        Ok(summary) => {
            match format {
                OutputFormat::Json => {
                    outln!("{}", serde_json::to_string(&summary).unwrap_or_default())
                }
                OutputFormat::Text => {
                    let skipped: u32 = summary.skipped_by_reason.values().sum();
                    outln!(
                        "{name}: {} pages, {} records in {:.1}s: {} offers to import, {skipped} skipped",
                        summary.pages,
                        summary.records,
                        started.elapsed().as_secs_f64(),
                        summary.offers
                    );
                    for (reason, n) in &summary.skipped_by_reason {
                        outln!("  skipped {n:>6}  {reason}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // As `sync --format json` does: a tool reading stdout gets an
            // object that says the fetch failed, not nothing.
            if format == OutputFormat::Json {
                outln!(
                    "{}",
                    serde_json::json!({"integration": name, "error": e.to_string()})
                );
            }
            errln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `offersync plan NAME`: what a run would do. Exit 0 planned, 1 error; with
/// `detailed_exitcode`, 0 nothing to change, 1 error, 2 changes pending
/// (as `terraform plan -detailed-exitcode`).
pub fn plan(
    name: &str,
    dir: &Path,
    url: &str,
    format: OutputFormat,
    detailed_exitcode: bool,
) -> ExitCode {
    let def = match load_integration(dir, name) {
        Ok(def) => def,
        Err(_) => return ExitCode::from(1),
    };
    let mut store = match open_store(url) {
        Ok(s) => s,
        Err(_) => return ExitCode::from(1),
    };
    // `sync` is refused when it registers the integration; a plan registers
    // nothing, so it asks.
    match store.integration_state(name) {
        Ok(Some(state)) if state == "deleted" => {
            let e = store::StoreError::IntegrationDeleted {
                name: name.to_string(),
                file: def.source_file.display().to_string(),
            };
            errln!("error: {e}");
            return ExitCode::from(1);
        }
        Ok(_) => {}
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    if !def.enabled {
        errln!(
            "note: {name} is disabled (spec.enabled: false in {}): the daemon does not run it, and `offersync sync` needs --force",
            def.source_file.display()
        );
    }
    let (_, report) = runtime().block_on(sync::plan(def, store));
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let plan = report.plan.as_ref().expect("a plan reports its plan");
    if let Some(e) = report.error.as_ref().filter(|_| !plan.complete) {
        // The feed was not read whole (an unreachable API, a page that
        // failed): what was read is no plan, and its zeros would read as
        // "nothing to do".
        if format == OutputFormat::Json {
            outln!(
                "{}",
                serde_json::json!({"integration": report.integration, "error": e})
            );
        }
        errln!("error: no plan: {e}");
        return ExitCode::from(1);
    }
    match format {
        OutputFormat::Json => outln!("{}", serde_json::to_string(&report).unwrap_or_default()),
        OutputFormat::Text => {
            let verb = if plan.pause { "pause" } else { "mark removed" };
            let filtered_verb = if plan.pause_filtered {
                "pause (filtered out)"
            } else {
                "mark filtered out"
            };
            // One table: action, id, then what follows, the ids lined up.
            let mut rows: Vec<(String, String, String)> = Vec::new();
            for (id, name) in &plan.create {
                rows.push((
                    "+ create".into(),
                    shown(id).into_owned(),
                    shown(name).into_owned(),
                ));
            }
            for (id, name) in &plan.update {
                let restore = if plan.restore.contains(id) {
                    " (restore)"
                } else {
                    ""
                };
                rows.push((
                    "~ update".into(),
                    shown(id).into_owned(),
                    format!("{}{restore}", shown(name)),
                ));
                if let Some((_, why)) = plan.causes.iter().find(|(c, _)| c == id) {
                    rows.push((String::new(), String::new(), format!("  why: {why}")));
                }
                let changes = plan.changes.iter().find(|(c, _)| c == id);
                for change in changes.map(|(_, list)| list.as_slice()).unwrap_or_default() {
                    let held = if change.held_back_by_policy {
                        "  (kept: update policy)"
                    } else {
                        ""
                    };
                    rows.push((
                        String::new(),
                        String::new(),
                        format!(
                            "  {}: {} → {}{held}",
                            change.column,
                            column_value(change.column, &change.old),
                            column_value(change.column, &change.new)
                        ),
                    ));
                }
            }
            for id in &plan.remove {
                rows.push((format!("- {verb}"), shown(id).into_owned(), String::new()));
            }
            for id in &plan.filter {
                rows.push((
                    format!("- {filtered_verb}"),
                    shown(id).into_owned(),
                    String::new(),
                ));
            }
            for (id, warning) in &plan.warnings {
                rows.push(("  warning".into(), shown(id).into_owned(), warning.clone()));
            }
            for skip in &plan.skips {
                let id = skip.external_id.as_deref().unwrap_or("?");
                rows.push((
                    "  skip".into(),
                    shown(id).into_owned(),
                    format!("{}: {}", skip.reason, shown(&skip.detail)),
                ));
            }
            let action_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
            let id_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
            for (action, id, rest) in &rows {
                let line = format!("{action:<action_width$}  {id:<id_width$}  {rest}");
                outln!("{}", line.trim_end());
            }
            let filtered = if plan.filter.is_empty() {
                String::new()
            } else {
                format!(", {} filtered out", plan.filter.len())
            };
            outln!(
                "plan for {}: {} to create, {} to update, {} to {verb}, {} unchanged, {} skipped{filtered}",
                report.integration,
                plan.create.len(),
                plan.update.len(),
                plan.remove.len(),
                report.counts.unchanged,
                plan.skips.len()
            );
        }
    }
    if let Some(e) = &report.error {
        errln!("error: a run now would fail: {e}");
        return ExitCode::from(1);
    }
    let pending = !(plan.create.is_empty()
        && plan.update.is_empty()
        && plan.remove.is_empty()
        && plan.filter.is_empty());
    if pending && detailed_exitcode {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// An integration neither the store nor the manifest directory knows is a
/// typo, not an empty history: exit 1 with the nearest name, as `sync`
/// names one. One that only the directory knows has not run yet.
fn known_integration(store: &mut dyn Store, name: &str, dir: &Path) -> Result<(), ExitCode> {
    match store.integration_state(name) {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(e) => {
            errln!("error: {e}");
            return Err(ExitCode::from(CANNOT_START));
        }
    }
    // Read without secrets: only the names matter here.
    let in_dir = dir.is_dir().then(|| {
        manifest::load_dir_with(dir, manifest::Secrets::Offline)
            .catalog
            .integrations
    });
    if in_dir
        .as_ref()
        .is_some_and(|found| found.contains_key(name))
    {
        return Ok(());
    }
    let mut names: Vec<String> = store
        .status()
        .map(|rows| rows.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
    names.extend(in_dir.into_iter().flat_map(|found| found.into_keys()));
    let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
        Some(s) => format!("; did you mean `{s}`?"),
        None if names.is_empty() => String::new(),
        None => {
            names.sort();
            names.dedup();
            format!("\n  hint: known integrations: {}", names.join(", "))
        }
    };
    errln!(
        "error: no integration named `{name}` in the store or in {}{hint}",
        dir.display()
    );
    Err(ExitCode::from(1))
}

/// `offersync runs NAME` and `offersync runs show RUN_ID`.
pub fn runs(name: &str, limit: i64, dir: &Path, url: &str, format: OutputFormat) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = known_integration(&mut *store, name, dir) {
        return code;
    }
    let runs = match store.recent_runs(name, limit) {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    if runs.is_empty() && format == OutputFormat::Text {
        errln!("no runs of `{name}` yet (offersync sync {name} runs one)");
    }
    match format {
        OutputFormat::Json => {
            for r in &runs {
                outln!("{}", serde_json::to_string(r).unwrap_or_default());
            }
        }
        OutputFormat::Text => print_runs(&runs),
    }
    ExitCode::SUCCESS
}

/// The run log as a table, newest first.
pub(super) fn print_runs(runs: &[RunRecord]) {
    if !runs.is_empty() {
        outln!(
            "{:>6}  {:<23}  {:>9}  {:<9}  {:<8}  {:>7} {:>7} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>5} {:>8}",
            "RUN",
            "STARTED",
            "DURATION",
            "STATUS",
            "TRIGGER",
            "FETCHED",
            "CREATED",
            "UPDATED",
            "UNCHANGED",
            "SKIPPED",
            "REMOVED",
            "FILTERED",
            "RESTORED",
            "DRIFT",
            "WARNINGS"
        );
    }
    for r in runs {
        outln!("{}", run_line(r));
        if let Some(e) = &r.error {
            outln!("        error: {}", shown(e));
        }
    }
}

/// Every skipped offer of a run and why.
pub(super) fn print_skips(skips: &[SkipRecord]) {
    for s in skips {
        let id = s.external_id.as_deref().unwrap_or("?");
        outln!(
            "  skipped {:<12} {:<24} {}",
            shown(id),
            s.reason,
            shown(&s.detail)
        );
    }
}

fn run_line(r: &RunRecord) -> String {
    format!(
        "{:>6}  {:<23}  {:>9}  {:<9}  {:<8}  {:>7} {:>7} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>5} {:>8}",
        r.id,
        r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        duration(r),
        r.status,
        r.trigger,
        r.fetched,
        r.created,
        r.updated,
        r.unchanged,
        r.skipped,
        r.removed,
        r.filtered,
        r.restored,
        r.drift_corrected,
        r.warnings
    )
}

/// How long a run took (`1.4 s`, `2m 05s`, `1h 03m`), or `running`.
fn duration(r: &RunRecord) -> String {
    let Some(finished) = r.finished_at else {
        return "running".into();
    };
    let ms = (finished - r.started_at).num_milliseconds().max(0);
    match ms {
        0..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// `offersync campaigns NAME [--status S]`: what is stored for an integration.
pub fn campaigns(
    name: &str,
    statuses: &[String],
    dir: &Path,
    url: &str,
    format: OutputFormat,
) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = known_integration(&mut *store, name, dir) {
        return code;
    }
    let mut list = match store.campaigns(name) {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    list.retain(|c| statuses.is_empty() || statuses.contains(&c.status));
    if list.is_empty() && format == OutputFormat::Text {
        errln!(
            "no campaigns of `{name}`{} stored",
            if statuses.is_empty() {
                ""
            } else {
                " with that status"
            }
        );
        return ExitCode::SUCCESS;
    }
    match format {
        OutputFormat::Json => {
            for c in &list {
                outln!("{}", serde_json::to_string(c).unwrap_or_default());
            }
        }
        OutputFormat::Text => {
            let kind = |c: &store::CampaignRecord| PayoutKind::from_stored(&c.payout_kind);
            let rows: Vec<[String; 7]> = list
                .iter()
                .map(|c| {
                    [
                        shown(&c.external_id).into_owned(),
                        shown(&c.name).chars().take(44).collect(),
                        if c.removed_at.is_some() {
                            format!(
                                "{} ({})",
                                c.status,
                                c.removed_as.as_deref().unwrap_or("gone")
                            )
                        } else {
                            c.status.clone()
                        },
                        c.revenue.map(|d| kind(c).shown(d)).unwrap_or_default(),
                        c.payout.map(|d| kind(c).shown(d)).unwrap_or_default(),
                        c.currency.clone().unwrap_or_default(),
                        c.changed_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    ]
                })
                .collect();
            let headers = [
                "ID", "NAME", "STATUS", "REVENUE", "PAYOUT", "CUR", "CHANGED",
            ];
            for line in super::aligned(&headers, &rows) {
                outln!("{line}");
            }
            outln!("{} campaigns", list.len());
        }
    }
    ExitCode::SUCCESS
}

/// `offersync changes [--since N]`: the change feed from a position on.
pub fn changes(
    since: i64,
    integration: Option<&str>,
    limit: i64,
    url: &str,
    format: OutputFormat,
) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let list = match store.changes(since, integration, limit.max(1)) {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    match format {
        OutputFormat::Json => {
            for c in &list {
                outln!("{}", serde_json::to_string(c).unwrap_or_default());
            }
        }
        OutputFormat::Text if list.is_empty() => {
            errln!("no changes after position {since}");
        }
        OutputFormat::Text => {
            let rows: Vec<[String; 7]> = list
                .iter()
                .map(|c| {
                    let columns: Vec<String> = c
                        .columns
                        .iter()
                        .map(|f| {
                            let value = |v: &serde_json::Value| -> String {
                                match v {
                                    serde_json::Value::String(s) => {
                                        column_value(&f.column, s).into_owned()
                                    }
                                    serde_json::Value::Null => "-".into(),
                                    other => shown(&other.to_string()).into_owned(),
                                }
                            };
                            let (old, new) = differing(&value(&f.old), &value(&f.new));
                            format!("{} {old} → {new}", f.column)
                        })
                        .collect();
                    [
                        c.position.to_string(),
                        c.changed_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                        shown(&c.integration).into_owned(),
                        shown(&c.external_id).into_owned(),
                        c.kind.as_str().to_string(),
                        c.status.clone(),
                        columns.join("; "),
                    ]
                })
                .collect();
            let headers = [
                "POSITION",
                "CHANGED",
                "INTEGRATION",
                "ID",
                "CHANGE",
                "STATUS",
                "COLUMNS",
            ];
            for line in super::aligned(&headers, &rows) {
                outln!("{line}");
            }
            if let Some(last) = list.last() {
                errln!(
                    "{} changes; read on with --since {}",
                    list.len(),
                    last.position
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// The longest value `changes` shows whole, and the context kept on either
/// side of the part of a longer one that changed.
const CHANGE_WIDTH: usize = 24;
const CHANGE_CONTEXT: usize = 10;

/// Old and new as `changes` prints them: whole when short; else the part
/// that differs with some context, the common rest elided with `…`
/// (`…- US - CPI - Tier 1…` → `…- US - CPA - Tier 1…`), so that two long
/// values that differ at the end do not read the same.
fn differing(old: &str, new: &str) -> (String, String) {
    crate::store::feed::differing(old, new, CHANGE_WIDTH, CHANGE_CONTEXT)
}

/// `offersync runs show RUN_ID`: one run and every offer it skipped.
pub fn show_run(id: i64, url: &str, format: OutputFormat) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let run = match store.run(RunId(id)) {
        Ok(Some(run)) => run,
        Ok(None) => {
            errln!("error: no run {id}");
            return ExitCode::from(1);
        }
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    let read = store.run_skips(RunId(id)).and_then(|skips| {
        let warnings = store.run_warnings(RunId(id), 0, sync::MAX_WARNINGS_KEPT as i64)?;
        Ok((skips, warnings))
    });
    let (skips, warnings) = match read {
        Ok(read) => read,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    match format {
        OutputFormat::Json => {
            let warnings: Vec<_> = warnings
                .iter()
                .map(|(id, message)| serde_json::json!({"external_id": id, "message": message}))
                .collect();
            let value = serde_json::json!({"run": run, "skips": skips, "warnings": warnings});
            outln!("{value}");
        }
        OutputFormat::Text => {
            outln!(
                "run {} of {} ({}): {}",
                run.id,
                run.integration,
                run.trigger,
                run.status
            );
            outln!(
                "  fetched {}, created {}, updated {}, unchanged {}, skipped {}, removed {}, filtered out {}, restored {}, drift corrected {}, warnings {}",
                run.fetched,
                run.created,
                run.updated,
                run.unchanged,
                run.skipped,
                run.removed,
                run.filtered,
                run.restored,
                run.drift_corrected,
                run.warnings
            );
            if let Some(e) = &run.error {
                outln!("  error: {}", shown_lines(e, "    "));
            }
            print_skips(&skips);
            for (id, message) in &warnings {
                outln!("  warning  {}  {}", shown(id), shown(message));
            }
            if run.warnings > warnings.len() as i32 {
                outln!(
                    "  … {} more warnings (a run keeps the first {})",
                    run.warnings as usize - warnings.len(),
                    sync::MAX_WARNINGS_KEPT
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// `offersync status`: every registered integration and its last run.
pub fn status(url: &str, format: OutputFormat) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rows = match store.status() {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    let utc = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    match format {
        OutputFormat::Json => {
            for r in &rows {
                let mut row = serde_json::to_value(r).unwrap_or_default();
                let sync = SyncState::of(r);
                let revision =
                    provenance::revision(Path::new(&r.source_file), &r.spec, &r.spec_hash);
                let kind = r.last_error.as_deref().map(ErrorKind::of);
                if let Some(object) = row.as_object_mut() {
                    object.insert("health".into(), diagnosis::health(&r.state).into());
                    object.insert(
                        "sync".into(),
                        match sync {
                            SyncState::NeverRun => serde_json::json!({"state": "never_run"}),
                            SyncState::InSync => serde_json::json!({"state": "in_sync"}),
                            SyncState::Failing {
                                since,
                                in_a_row,
                                ever_succeeded,
                            } => serde_json::json!({
                                "state": if ever_succeeded { "failing" } else { "never_succeeded" },
                                "since": since,
                                "failures_in_a_row": in_a_row,
                            }),
                        },
                    );
                    object.insert(
                        "revision".into(),
                        match &revision {
                            provenance::Revision::Commit {
                                short_sha,
                                subject,
                                time,
                            } => serde_json::json!({
                                "commit": short_sha, "subject": subject, "time": time,
                            }),
                            provenance::Revision::Uncommitted { hash } => {
                                serde_json::json!({"uncommitted": true, "spec_hash": hash})
                            }
                            provenance::Revision::Hash(hash) => {
                                serde_json::json!({"spec_hash": hash})
                            }
                        },
                    );
                    if let Some(kind) = kind {
                        object.insert("error_kind".into(), kind.label().into());
                        object.insert("hint".into(), kind.hint().into());
                    }
                }
                outln!("{}", serde_json::to_string(&row).unwrap_or_default());
            }
        }
        OutputFormat::Text => {
            if rows.is_empty() {
                errln!("no integrations have run yet");
            }
            for r in &rows {
                let last = match &r.last_run {
                    Some(run) => format!(
                        "last run {} {} at {}: fetched {}, created {}, updated {}, unchanged {}, skipped {}, removed {}",
                        run.id,
                        run.status,
                        run.started_at.format("%Y-%m-%d %H:%M:%S"),
                        run.fetched,
                        run.created,
                        run.updated,
                        run.unchanged,
                        run.skipped,
                        run.removed
                    ),
                    None => "never run".into(),
                };
                // A deleted integration runs no more: it is not failing.
                let sync = if r.state == "deleted" {
                    "not synced (its manifest was deleted)".to_string()
                } else {
                    SyncState::of(r).describe(utc)
                };
                outln!(
                    "{} ({}): {} · {sync} · {} campaigns, {} active",
                    r.name,
                    r.network,
                    diagnosis::health(&r.state),
                    r.campaigns,
                    r.active_campaigns
                );
                let revision =
                    provenance::revision(Path::new(&r.source_file), &r.spec, &r.spec_hash);
                outln!("  revision: {}", shown(&revision.describe()));
                outln!("  {last}");
                if let Some(attempted) = &r.attempted_spec_hash {
                    outln!(
                        "  last applied spec {}, last attempted {} (does not validate)",
                        short_hash(&r.spec_hash),
                        short_hash(attempted)
                    );
                }
                if let Some(e) = r.last_error.as_deref().filter(|_| r.state != "deleted") {
                    let kind = ErrorKind::of(e);
                    match kind {
                        ErrorKind::Other => outln!("  last error: {}", shown_lines(e, "    ")),
                        _ => outln!(
                            "  last error ({}): {}",
                            kind.label(),
                            shown_lines(e, "    ")
                        ),
                    }
                    if let Some(hint) = kind.hint() {
                        outln!("    hint: {hint}");
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// `offersync undelete NAME`: brings a deleted integration back, as
/// `active`, or `disabled` when the manifest in `dir` says `enabled: false`.
/// Its campaigns stay paused or removed until its next run sees their
/// offers again. Exit 0 undeleted, 1 it is not deleted, 2 the store knows
/// no such integration or cannot be read.
pub fn undelete(name: &str, dir: &Path, url: &str, format: OutputFormat) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fail = |e: store::StoreError| {
        errln!("error: {e}");
        ExitCode::from(CANNOT_START)
    };
    let refuse = |state: &str| {
        errln!(
            "error: `{name}` is not deleted (it is {state}): there is nothing to undelete\n  hint: `offersync undelete` brings back an integration the daemon retired when its manifest was deleted"
        );
        ExitCode::from(1)
    };
    match store.integration_state(name) {
        Ok(Some(state)) if state == "deleted" => {}
        Ok(Some(state)) => return refuse(&state),
        Ok(None) => {
            errln!("error: the store knows no integration `{name}`");
            return ExitCode::from(CANNOT_START);
        }
        Err(e) => return fail(e),
    }
    // The state the manifest asks for, read without its secrets.
    let manifest = dir
        .is_dir()
        .then(|| manifest::load_dir_with(dir, manifest::Secrets::Offline))
        .and_then(|mut loaded| loaded.catalog.integrations.remove(name));
    let state = match &manifest {
        Some(def) if !def.enabled => "disabled",
        _ => "active",
    };
    match store.undelete_integration(name, state) {
        Ok(true) => {}
        Ok(false) => {
            // Undeleted by someone else meanwhile.
            let state = store
                .integration_state(name)
                .ok()
                .flatten()
                .unwrap_or_else(|| "unknown".into());
            return refuse(&state);
        }
        Err(e) => return fail(e),
    }
    let removed = store
        .campaigns(name)
        .map(|c| c.iter().filter(|c| c.removed_at.is_some()).count())
        .unwrap_or(0);
    match format {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({"integration": name, "state": state, "removed_campaigns": removed})
        ),
        OutputFormat::Text => {
            outln!("{name}: undeleted, now {state}");
            outln!(
                "  its {removed} removed campaigns stay as they are until its next run (`offersync sync {name}`, or a daemon's run once it sees the manifest), which brings back each one whose offer it finds"
            );
            match &manifest {
                None => errln!(
                    "note: {} does not define `{name}`: put its manifest back, or a daemon watching that directory retires it again",
                    dir.display()
                ),
                Some(def) if !def.enabled => errln!(
                    "note: {} says enabled: false, so it is disabled: the daemon does not run it, and `offersync sync` needs --force",
                    def.source_file.display()
                ),
                Some(_) => {}
            }
        }
    }
    ExitCode::SUCCESS
}

/// How long `refresh` waits for some daemon to take its request (daemons
/// look every second; a busy one still takes requests).
const NO_DAEMON_AFTER: std::time::Duration = std::time::Duration::from_secs(15);

/// What `offersync refresh` waits for.
#[derive(Debug, Clone, Copy)]
pub enum RefreshWait {
    /// Nothing: record the request for a daemon that may start later.
    QueueOnly,
    /// A daemon to take the request (the default): a request no daemon
    /// takes is no refresh, and exit 0 would say it was.
    ForADaemon,
    /// The run, at most this long.
    ForTheRun(std::time::Duration),
}

/// `offersync refresh NAME [--wait | --queue-only]`: records a refresh
/// request for the daemon.
pub fn refresh(name: &str, url: &str, wait: RefreshWait) -> ExitCode {
    let mut store = match open_existing_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let by = format!("offersync refresh (pid {})", std::process::id());
    let request = match store.request_refresh(name, &by) {
        Ok(Some(id)) => id,
        Ok(None) => {
            errln!(
                "error: the store knows no integration `{name}` (a daemon registers an integration when it first runs it)"
            );
            return ExitCode::from(CANNOT_START);
        }
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(CANNOT_START);
        }
    };
    let run_wait = match wait {
        RefreshWait::QueueOnly => {
            outln!(
                "refresh request {request} for {name} recorded; the next daemon on this store runs it"
            );
            return ExitCode::SUCCESS;
        }
        RefreshWait::ForADaemon => None,
        RefreshWait::ForTheRun(limit) => {
            outln!("refresh request {request} for {name} recorded; waiting for a daemon to run it");
            Some(limit)
        }
    };
    let started = std::time::Instant::now();
    let deadline = started + run_wait.unwrap_or(NO_DAEMON_AFTER);
    let claim_limit = run_wait.map_or(NO_DAEMON_AFTER, |w| w.min(NO_DAEMON_AFTER));
    let mut claimed = false;
    loop {
        match store.refresh_outcome(request) {
            Ok(Some(answer)) => {
                outln!(
                    "refresh request {request} for {name}: {}",
                    refresh_answer(&answer)
                );
                // Without --wait the request was taken: that is the answer.
                return if answer.outcome == store::REFRESH_SUCCEEDED || run_wait.is_none() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                };
            }
            Ok(None) => {}
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(CANNOT_START);
            }
        }
        if !claimed {
            match store.refresh_claimed(request) {
                Ok(true) if run_wait.is_none() => {
                    outln!(
                        "refresh request {request} for {name}: a daemon took it and runs it now (`offersync runs {name}` shows the run)"
                    );
                    return ExitCode::SUCCESS;
                }
                Ok(true) => claimed = true,
                // Daemons look for requests every second: one that nobody
                // took for a while means no daemon runs on this store.
                Ok(false) if started.elapsed() >= claim_limit => {
                    errln!(
                        "error: no daemon took request {request} for {name} within {}s: none is running on this store, or all are stuck\n  hint: start one (`systemctl start offersync` or `offersync daemon`); the request stays queued and the next daemon runs it (`offersync refresh {name} --queue-only` only queues, without waiting)",
                        claim_limit.as_secs()
                    );
                    return ExitCode::from(1);
                }
                Ok(false) => {}
                Err(e) => {
                    errln!("error: {e}");
                    return ExitCode::from(CANNOT_START);
                }
            }
        }
        if std::time::Instant::now() >= deadline && claimed {
            errln!(
                "error: no daemon finished request {request} within {}s; it is still running (`offersync runs {name}` shows it)",
                run_wait.unwrap_or_default().as_secs()
            );
            return ExitCode::from(1);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// What answered a refresh request: its own run, a run of another process
/// that started after it, or why none did.
fn refresh_answer(answer: &store::RefreshOutcome) -> String {
    let Some(run) = answer.run else {
        return answer.outcome.clone();
    };
    let result = if answer.outcome == store::REFRESH_SUCCEEDED {
        "succeeded".to_string()
    } else if answer.outcome == store::REFRESH_FAILED {
        "failed".to_string()
    } else {
        answer.outcome.clone()
    };
    if answer.coalesced {
        format!(
            "coalesced into run {run} (another process's run, started after the request), which {result} (offersync runs show {run})"
        )
    } else {
        format!("ran as run {run}, which {result} (offersync runs show {run})")
    }
}

/// A value that may have come from a network, with every control
/// character escaped (line breaks too: it is printed inside a line).
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    crate::fetch::escape_controls(text)
}

/// A message of several lines (a manifest diagnostic with its source line
/// and caret) on real lines, each after the first indented by `indent`;
/// every other control character is escaped as [`shown`] does.
fn shown_lines(text: &str, indent: &str) -> String {
    text.trim_end_matches('\n')
        .split('\n')
        .map(|line| shown(line.strip_suffix('\r').unwrap_or(line)))
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

/// A column's value in text output: amounts as every command prints them
/// (`2.60`), anything else as [`shown`].
fn column_value<'a>(column: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    const MONEY: [&str; 4] = ["revenue", "payout", "revenue_max", "payout_max"];
    match value.parse::<rust_decimal::Decimal>() {
        Ok(d) if MONEY.contains(&column) => PayoutKind::Amount.shown(d).into(),
        _ => shown(value),
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_with_and_without_totals() {
        let p = sync::Progress {
            pages: 3,
            records: 2_000,
            total_pages: Some(10),
            total_records: Some(10_000),
        };
        assert_eq!(
            progress_line("acme", p),
            "acme: page 3 of 10 · 2,000 of 10,000 offers"
        );
        let p = sync::Progress {
            total_pages: None,
            total_records: None,
            records: 999,
            ..p
        };
        assert_eq!(progress_line("acme", p), "acme: page 3 · 999 offers");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn changes_show_what_differs_in_long_values() {
        let d = |a: &str, b: &str| differing(a, b);
        assert_eq!(
            d("Offer 1", "Offer 2"),
            ("Offer 1".into(), "Offer 2".into())
        );
        assert_eq!(
            d(
                "FitTrack Pro - iOS - US - CPI - Tier 1 traffic only",
                "FitTrack Pro - iOS - US - CPA - Tier 1 traffic only"
            ),
            (
                "…- US - CPI - Tier 1…".into(),
                "…- US - CPA - Tier 1…".into()
            )
        );
        // A change at the start keeps it, one at the end has no trailing `…`.
        assert_eq!(
            d(
                "Alpha campaign for the US market",
                "Beta campaign for the US market"
            )
            .0,
            "Alpha campaign…"
        );
        assert_eq!(
            d(
                "A campaign for the US market, v1",
                "A campaign for the US market, v2"
            )
            .1,
            "…market, v2"
        );
        // One a prefix of the other.
        assert_eq!(
            d(
                "A campaign for the US market",
                "A campaign for the US market and CA"
            ),
            ("…US market".into(), "…US market and CA".into())
        );
        // A value replaced whole is cut after some characters.
        let long = "x".repeat(100);
        let (_, new) = d("short", &long);
        assert_eq!(new.chars().count(), CHANGE_WIDTH + CHANGE_CONTEXT + 1);
    }

    #[test]
    fn several_lines_are_indented_and_controls_escaped() {
        assert_eq!(shown_lines("one", "  "), "one");
        assert_eq!(
            shown_lines("a: b\r\n 7 | x\t\x1b\n", "  "),
            "a: b\n   7 | x\\t\\u{1b}"
        );
    }
}
