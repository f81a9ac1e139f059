//! One sync run of one integration, end to end.
//!
//! This module wires the stages together and owns the run's lifecycle: the
//! run log row, the one transaction, and what a failure leaves behind
//! (nothing but the failed run's log row). Fetching and mapping run on the
//! async side, page by page; the store is driven from one blocking thread
//! that plans and writes each page as it arrives, so fetching the next page
//! overlaps writing this one and no more than a couple of pages are held in
//! memory. A record whose bytes, integration revision and row are
//! unchanged since a run kept its outcome is not parsed again: the fast
//! path hands reconcile the kept outcome instead (which records may reuse
//! theirs is reconcile's call). It makes no decisions of its own: those
//! are rules' and reconcile's.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::campaign::Campaign;
use crate::fetch::{FetchError, Fetcher, Pager, Request, checked_url, escape_controls};
use crate::manifest::model::{EnrichDef, EnrichFailure, IntegrationDef};
use crate::mapping::PageError;
use crate::offer::Offer;
use crate::reconcile::{FastIndex, Outcome, PagePlan, Reconciler, Refusal, RemovalGuard, Reused};
use crate::rules::{Rules, Skip, SkipReason};
use crate::store::{
    IntegrationRecord, NewOutcome, RunCounts, RunId, Store, StoreError, StoredIndex, Trigger,
    TxError, Update, Writes,
};

/// Why a run could not even start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Fetch(#[from] FetchError),
}

/// How a run went.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub integration: String,
    /// The run's id in the run log (`None` for a plan, which logs nothing).
    pub run: Option<RunId>,
    pub counts: RunCounts,
    /// Why the run failed; `None` when it succeeded.
    pub error: Option<String>,
    #[serde(serialize_with = "as_seconds")]
    pub elapsed: Duration,
    /// What a plan found (only for plans).
    pub plan: Option<PlanReport>,
    /// Records whose kept outcome was reused rather than parsed, mapped
    /// and filtered again (the fast path; counted among the others too).
    pub reused: u64,
    /// When a succeeded run ended, as the store recorded it (the
    /// integration's last success).
    #[serde(skip)]
    pub succeeded_at: Option<chrono::DateTime<Utc>>,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// What a run would do, by external id. Serialized (`plan --format json`)
/// as named objects, see [`PlanReport::serialize`].
#[derive(Debug, Default)]
pub struct PlanReport {
    pub create: Vec<(String, String)>,
    pub update: Vec<(String, String)>,
    /// (external id, the columns an update would change) for the updates
    /// whose stored row could be read.
    pub changes: Vec<(String, Vec<crate::reconcile::ColumnChange>)>,
    pub restore: Vec<String>,
    pub remove: Vec<String>,
    pub pause: bool,
    /// Live campaigns whose offers the filters now skip (`on_filtered`).
    pub filter: Vec<String>,
    /// (external id, warning) of every offer the run would import.
    pub warnings: Vec<(String, String)>,
    /// (external id, why) of each update: `upstream changed`, `setting
    /// changed`, `drift`, `restored`.
    pub causes: Vec<(String, String)>,
    pub pause_filtered: bool,
    pub skips: Vec<Skip>,
    /// Every page was fetched and read: the plan is whole (a refused
    /// removal still leaves it whole). When false, the run's error says
    /// why it stopped and the lists hold only what was read before.
    pub complete: bool,
}

/// The JSON of a plan is named objects a tool reads by key, as `terraform
/// show -json` does: `{external_id, name}` per creation; per update also
/// `cause`, `restore` and its `changes` (`{column, old, new,
/// held_back_by_policy}`); per removal and filtered campaign the `action`
/// it gets (`pause`, `mark_removed`, `mark_filtered`); `{external_id,
/// message}` per warning. No tuples, and no flag that qualifies another list.
impl Serialize for PlanReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde_json::json;
        use std::collections::{HashMap, HashSet};
        // By id, so a plan of many updates is not quadratic.
        let causes: HashMap<&str, &str> = self
            .causes
            .iter()
            .map(|(id, why)| (id.as_str(), why.as_str()))
            .collect();
        let changes: HashMap<&str, &[crate::reconcile::ColumnChange]> = self
            .changes
            .iter()
            .map(|(id, list)| (id.as_str(), list.as_slice()))
            .collect();
        let restore: HashSet<&str> = self.restore.iter().map(String::as_str).collect();
        let update: Vec<Value> = self
            .update
            .iter()
            .map(|(id, name)| {
                json!({
                    "external_id": id,
                    "name": name,
                    "cause": causes.get(id.as_str()),
                    "restore": restore.contains(id.as_str()),
                    "changes": changes.get(id.as_str()).copied().unwrap_or_default(),
                })
            })
            .collect();
        let with_action = |ids: &[String], action: &str| -> Vec<Value> {
            ids.iter()
                .map(|id| json!({"external_id": id, "action": action}))
                .collect()
        };
        json!({
            "complete": self.complete,
            "create": self
                .create
                .iter()
                .map(|(id, name)| json!({"external_id": id, "name": name}))
                .collect::<Vec<_>>(),
            "update": update,
            "remove": with_action(&self.remove, if self.pause { "pause" } else { "mark_removed" }),
            "filter": with_action(
                &self.filter,
                if self.pause_filtered { "pause" } else { "mark_filtered" },
            ),
            "warnings": self
                .warnings
                .iter()
                .map(|(id, message)| json!({"external_id": id, "message": message}))
                .collect::<Vec<_>>(),
            "skips": self.skips,
        })
        .serialize(s)
    }
}

/// What the fetching side tells the writing side.
enum Message {
    Page {
        /// In the page's order, offers before mapping problems.
        outcomes: Vec<Outcome>,
        records: u32,
    },
    /// Every page was fetched.
    Done,
    /// Fetching failed: nothing of this run may be kept.
    Failed(String),
}

/// Pages in flight between fetching and writing: enough to overlap the two,
/// few enough to keep memory flat.
const PIPELINE_DEPTH: usize = 2;

/// How a run was asked for.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub trigger: Trigger,
    /// The claimed schedule tick the run serves: marked ended in the run's
    /// own transaction.
    pub tick: Option<DateTime<Utc>>,
    /// An operator accepts the run's removals (`sync --accept-removals`):
    /// the removal-share guards do not apply, and later runs measure
    /// shrinkage from this one on.
    pub accept_removals: bool,
    /// Reuse the kept outcome of a record whose bytes, integration
    /// revision and row are unchanged instead of parsing it again (on
    /// unless [`FULL_PARSE_ENV`] is set). Off, a run neither reads nor keeps
    /// outcomes: tests and the bench compare the two.
    pub fast_path: bool,
}

/// Set (to anything), every record is parsed, mapped and filtered on every
/// run: the full parse the fast path is measured and tested against.
pub const FULL_PARSE_ENV: &str = "OFFERSYNC_FULL_PARSE";

impl RunOptions {
    pub fn new(trigger: Trigger) -> Self {
        Self {
            trigger,
            tick: None,
            accept_removals: false,
            fast_path: std::env::var_os(FULL_PARSE_ENV).is_none(),
        }
    }
}

/// Whether a run of `def` may reuse kept outcomes: not when a record's
/// outcome also depends on other responses (per-offer requests).
fn fast_path_for(def: &IntegrationDef, asked: bool) -> bool {
    asked && def.network.enrich.is_empty()
}

/// What a kept outcome was computed under: the integration's revision (its
/// document and its Network's file), the values of the params a mapping
/// reads, and the build of offersync (whose mapping and rules made it).
/// Any change means every record is parsed again once.
pub fn outcome_revision(def: &IntegrationDef) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(def.revision.as_bytes());
    for (name, value) in field_params(def) {
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
    }
    hasher.update(b"\0");
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(b"\0");
    hasher.update(env!("OFFERSYNC_COMMIT").as_bytes());
    crate::campaign::hex(&hasher.finalize())
}

/// Runs one sync: fetch every page, map, apply the rules, and reconcile into
/// the store in one transaction. Returns the store for reuse.
pub async fn run(
    def: Arc<IntegrationDef>,
    store: Box<dyn Store>,
    trigger: Trigger,
) -> (Box<dyn Store>, Result<RunReport, SyncError>) {
    run_with(def, store, RunOptions::new(trigger)).await
}

/// [`run`], with the options of a claimed tick or a deliberate run.
pub async fn run_with(
    def: Arc<IntegrationDef>,
    store: Box<dyn Store>,
    options: RunOptions,
) -> (Box<dyn Store>, Result<RunReport, SyncError>) {
    drive(def, store, Mode::Apply(options), &|_| {}).await
}

/// How far the fetching of a run has got: after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub pages: u64,
    /// Records read so far.
    pub records: u64,
    /// The pages and records the feed says it has, when it says.
    pub total_pages: Option<u64>,
    pub total_records: Option<u64>,
}

/// [`run_with`], telling `on_progress` after every page fetched.
pub async fn run_reporting(
    def: Arc<IntegrationDef>,
    store: Box<dyn Store>,
    options: RunOptions,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> (Box<dyn Store>, Result<RunReport, SyncError>) {
    drive(def, store, Mode::Apply(options), on_progress).await
}

/// Fetches and compares with the store like a run, but writes nothing.
pub async fn plan(
    def: Arc<IntegrationDef>,
    store: Box<dyn Store>,
) -> (Box<dyn Store>, Result<RunReport, SyncError>) {
    drive(def, store, Mode::Plan, &|_| {}).await
}

#[derive(Clone, Copy)]
enum Mode {
    Apply(RunOptions),
    Plan,
}

async fn drive(
    def: Arc<IntegrationDef>,
    store: Box<dyn Store>,
    mode: Mode,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> (Box<dyn Store>, Result<RunReport, SyncError>) {
    let started = Instant::now();
    let trigger_name = match mode {
        Mode::Apply(options) => options.trigger.as_str(),
        Mode::Plan => "plan",
    };
    // Every line logged for the run (retries too) carries its integration
    // and, once the run is registered, its id.
    let span = tracing::info_span!("run", integration = %def.name, run_id = tracing::field::Empty);
    let (tx, rx) = mpsc::channel(PIPELINE_DEPTH);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Option<Arc<FastIndex>>>();
    let writer_def = def.clone();
    let writer_span = span.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let _entered = writer_span.enter();
        let mut store = store;
        let result = write_side(&mut *store, &writer_def, mode, rx, ready_tx);
        (store, result)
    });
    // Fetch only once the run is registered and its lock taken.
    let fetch_result = match ready_rx.await {
        Ok(fast) => Some(
            tracing::Instrument::instrument(fetch_side(&def, &tx, on_progress, fast), span.clone())
                .await,
        ),
        Err(_) => None,
    };
    let mut reused = 0;
    let message = match fetch_result {
        Some(Ok(n)) => {
            reused = n;
            Message::Done
        }
        Some(Err(e)) => Message::Failed(e),
        None => Message::Done,
    };
    let _ = tx.send(message).await;
    drop(tx);
    let (store, result) = writer.await.expect("the writer thread never panics");
    let report = result.map(|(run, counts, error, plan, succeeded_at)| {
        let report = RunReport {
            integration: def.name.clone(),
            run,
            counts,
            error,
            elapsed: started.elapsed(),
            plan,
            reused,
            succeeded_at,
        };
        // The one line a finished run logs; JSON logs carry `counts` as an object.
        let counts = serde_json::to_string(&report.counts).expect("counts serialize");
        let run_id = report.run.map(|r| r.0);
        let duration_ms = report.elapsed.as_millis() as u64;
        let _entered = span.enter();
        match &report.error {
            None => tracing::info!(integration = %def.name, run_id, trigger = %trigger_name, duration_ms, counts = %counts, "run succeeded"),
            Some(e) => tracing::error!(integration = %def.name, run_id, trigger = %trigger_name, duration_ms, counts = %counts, error = %e, "run failed"),
        }
        report
    });
    (store, report)
}

/// What a fetch without a database found.
#[derive(Debug, Default, Serialize)]
pub struct FetchSummary {
    pub pages: u32,
    pub records: u32,
    /// Offers that pass the filters and rules.
    pub offers: u32,
    pub skipped_by_reason: std::collections::BTreeMap<SkipReason, u32>,
}

/// Fetches every page, maps it and applies the rules, touching no store: the
/// read half of a run, for checking an integration against its live API.
pub async fn fetch_only(def: Arc<IntegrationDef>) -> Result<FetchSummary, String> {
    let (tx, mut rx) = mpsc::channel(PIPELINE_DEPTH);
    let counter = tokio::spawn(async move {
        let mut summary = FetchSummary::default();
        while let Some(message) = rx.recv().await {
            if let Message::Page { outcomes, records } = message {
                summary.pages += 1;
                summary.records += records;
                for outcome in outcomes {
                    match outcome {
                        Outcome::Fresh { outcome: Ok(_), .. } => summary.offers += 1,
                        Outcome::Fresh {
                            outcome: Err(skip), ..
                        } => *summary.skipped_by_reason.entry(skip.reason).or_default() += 1,
                        // No store, nothing kept to reuse.
                        Outcome::Reused(_) => {}
                    }
                }
            }
        }
        summary
    });
    let fetched = fetch_side(&def, &tx, &|_| {}, None).await;
    drop(tx);
    let summary = counter.await.expect("counting never panics");
    fetched.map(|_| summary)
}

/// The run's id, counts, error, plan (for plans) and, when it succeeded,
/// the time it ended as the store recorded it.
type WriteResult = (
    Option<RunId>,
    RunCounts,
    Option<String>,
    Option<PlanReport>,
    Option<chrono::DateTime<Utc>>,
);

fn write_side(
    store: &mut dyn Store,
    def: &IntegrationDef,
    mode: Mode,
    mut rx: mpsc::Receiver<Message>,
    ready: tokio::sync::oneshot::Sender<Option<Arc<FastIndex>>>,
) -> Result<WriteResult, SyncError> {
    let record = IntegrationRecord {
        name: &def.name,
        network: &def.network.name,
        spec: &def.source_text,
        spec_hash: &def.spec_hash,
        source_file: &def.source_file.to_string_lossy(),
        enabled: def.enabled,
    };
    let Mode::Apply(options) = mode else {
        let fast_path = fast_path_for(def, std::env::var_os(FULL_PARSE_ENV).is_none());
        let (index, high_water, policy, fast) = match store.integration_id(def.name.as_str())? {
            Some(id) => {
                let index = store.stored_index(id)?;
                let fast = if fast_path {
                    Some(fast_index(store, def, id, &index)?.0)
                } else {
                    None
                };
                (
                    index,
                    high_water(store, def, id)?,
                    store.applied_policy(id)?,
                    fast,
                )
            }
            None => (StoredIndex::default(), None, None, None),
        };
        let guard = RemovalGuard {
            high_water,
            accept_removals: false,
        };
        let _ = ready.send(fast.map(Arc::new));
        let mut reconciler = reconciler_for(def, index, policy.as_deref());
        let mut report = PlanReport::default();
        let error = consume(&mut rx, &mut reconciler, |reconciler, mut plan| {
            reconciler
                .resolve_reading(&mut plan, |ids| store.stored_rows(ids))
                .map_err(|e| e.to_string())?;
            report.warnings.extend(plan.warnings);
            report
                .create
                .extend(plan.create.into_iter().map(|c| (c.external_id, c.name)));
            for update in plan.update {
                let id = update.campaign.external_id;
                if update.restore {
                    report.restore.push(id.clone());
                }
                let mut changes = update.changes;
                changes.extend(update.held_back);
                report.changes.push((id.clone(), changes));
                report.causes.push((id.clone(), update.cause));
                report.update.push((id, update.campaign.name));
            }
            report.skips.extend(plan.skips);
            Ok(())
        })
        .map(|()| {
            report.complete = true;
            report
                .skips
                .extend(reconciler.missing_selected(&def.filters.offers))
        })
        .err()
        .or_else(|| {
            match reconciler.removals(def.on_removed, def.on_filtered, &def.safety, guard) {
                Ok(removal) => {
                    report.remove = removal.external_ids;
                    report.pause = removal.pause;
                    report.filter = removal.filtered_external_ids;
                    report.pause_filtered = removal.pause_filtered;
                    None
                }
                Err(refusal) => Some(refusal.to_string()),
            }
        });
        return Ok((None, reconciler.counts, error, Some(report), None));
    };

    // The lock comes first: on SQLite, registering the integration is a
    // write, which would wait for a running run's transaction.
    store.lock_run(&def.name)?;
    let started = store
        .upsert_integration(&record)
        .and_then(|integration_id| {
            let run = store.begin_run(integration_id, options.trigger, &def.spec_hash)?;
            Ok((integration_id, run))
        });
    let (integration_id, run) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = store.end_run();
            return Err(e.into());
        }
    };
    tracing::Span::current().record("run_id", run.0);
    let outcome = apply(store, def, integration_id, run, options, &mut rx, ready);
    let (counts, error, succeeded_at) = match outcome {
        Ok((counts, succeeded_at)) => (counts, None, Some(succeeded_at)),
        Err((counts, error)) => {
            // Nothing of a failed run was kept: it reports what it read,
            // never creates or removals that were rolled back.
            let counts = RunCounts {
                pages: counts.pages,
                fetched: counts.fetched,
                skipped: counts.skipped,
                skipped_by_reason: counts.skipped_by_reason,
                ..RunCounts::default()
            };
            record_failure(store, def, run, integration_id, &counts, &error);
            (counts, Some(error), None)
        }
    };
    if let Err(e) = store.end_run() {
        // The lock goes with the connection; the run's outcome is what matters.
        tracing::warn!(integration = %def.name, run = run.0, error = %e, "cannot release the run lock");
    }
    Ok((Some(run), counts, error, None, succeeded_at))
}

/// Marks a run failed. When the store itself is what failed (the database
/// went away mid-run), it reconnects a few times over about 15 s, so that
/// the run log says `failed` as soon as the database is back; if it stays
/// away, the next run marks this one failed (interrupted).
fn record_failure(
    store: &mut dyn Store,
    def: &IntegrationDef,
    run: RunId,
    integration_id: i64,
    counts: &RunCounts,
    error: &str,
) {
    let Err(first) = store.fail_run(run, integration_id, counts, error) else {
        return;
    };
    let mut last = first;
    for wait_ms in [250, 1_000, 2_000, 4_000, 8_000] {
        std::thread::sleep(Duration::from_millis(wait_ms));
        match store.reopen() {
            Ok(mut fresh) => match fresh.fail_run(run, integration_id, counts, error) {
                Ok(()) => return,
                Err(e) => last = e,
            },
            Err(e) => last = e,
        }
    }
    tracing::error!(integration = %def.name, run = run.0, error = %last, "cannot record the failed run; the next run will mark it failed");
}

/// The kept outcomes of an integration that this run may reuse (see
/// [`crate::reconcile::fast_entry`]), and whether outcomes of other
/// revisions are stored (to prune). Read slice by slice into the index.
fn fast_index(
    store: &mut dyn Store,
    def: &IntegrationDef,
    integration_id: i64,
    index: &StoredIndex,
) -> Result<(FastIndex, bool), StoreError> {
    let revision = outcome_revision(def);
    let mut fast = FastIndex::with_capacity_and_hasher(index.len(), Default::default());
    let stale = store.stored_outcomes(integration_id, &revision, &mut |kept| {
        if let Some((hash, reused)) = crate::reconcile::fast_entry(index, kept) {
            fast.insert(hash, reused);
        }
    })?;
    fast.shrink_to_fit();
    Ok((fast, stale))
}

/// Keeps the fresh outcomes of a page (the last per offer, when a feed
/// lists an id twice) for the next run.
fn keep_outcomes(
    writes: &mut dyn Writes,
    integration_id: i64,
    revision: &str,
    plan: &PagePlan,
) -> Result<(), StoreError> {
    if plan.keep.is_empty() && plan.forget.is_empty() {
        return Ok(());
    }
    // The last word per offer, whether kept or forgotten: one statement
    // may not upsert a row twice.
    let mut last: std::collections::HashMap<&str, Option<usize>, foldhash::fast::RandomState> =
        Default::default();
    for (i, kept) in plan.keep.iter().enumerate() {
        last.insert(&*kept.outcome.external_id, Some(i));
    }
    for id in &plan.forget {
        last.insert(id, None);
    }
    let hashes: Vec<String> = plan
        .keep
        .iter()
        .map(|k| crate::campaign::hex(&k.record_hash))
        .collect();
    let mut keep = Vec::with_capacity(plan.keep.len());
    let mut forget = Vec::new();
    for (id, which) in last {
        match which {
            Some(i) => {
                let kept = &plan.keep[i];
                let (skip_reason, detail) = match kept.outcome.skip.as_deref() {
                    Some((reason, detail)) => (Some(reason.as_str()), &**detail),
                    None => (None, ""),
                };
                keep.push(NewOutcome {
                    external_id: id,
                    record_hash: &hashes[i],
                    skip_reason,
                    detail,
                    applied_hash: &kept.applied_hash,
                });
            }
            None => forget.push(id),
        }
    }
    // Forgotten first: an id both forgotten and kept on one page is kept
    // only when keeping was its last word, which `last` already decided.
    writes.record_outcomes(integration_id, revision, &keep, &forget)
}

/// The removal guard's high-water mark for an integration.
fn high_water(
    store: &mut dyn Store,
    def: &IntegrationDef,
    integration_id: i64,
) -> Result<Option<usize>, StoreError> {
    let since = Utc::now() - chrono::TimeDelta::days(i64::from(def.safety.shrink_window_days));
    Ok(store
        .listed_high_water(integration_id, since)?
        .map(|n| n as usize))
}

/// The transaction: every page's writes, the removals and the run's success,
/// or (on any failure) none of them.
fn apply(
    store: &mut dyn Store,
    def: &IntegrationDef,
    integration_id: i64,
    run: RunId,
    options: RunOptions,
    rx: &mut mpsc::Receiver<Message>,
    ready: tokio::sync::oneshot::Sender<Option<Arc<FastIndex>>>,
) -> Result<(RunCounts, chrono::DateTime<Utc>), (RunCounts, String)> {
    let fast_path = fast_path_for(def, options.fast_path);
    let revision = outcome_revision(def);
    let read = store.stored_index(integration_id).and_then(|index| {
        let fast = if fast_path {
            Some(fast_index(store, def, integration_id, &index)?)
        } else {
            None
        };
        Ok((
            index,
            high_water(store, def, integration_id)?,
            store.applied_policy(integration_id)?,
            fast,
        ))
    });
    let (index, high_water, policy, fast) = match read {
        Ok(read) => read,
        Err(e) => return Err((RunCounts::default(), e.to_string())),
    };
    let guard = RemovalGuard {
        high_water,
        accept_removals: options.accept_removals,
    };
    let stale_outcomes = fast.as_ref().is_some_and(|(_, stale)| *stale);
    let _ = ready.send(fast.map(|(fast, _)| Arc::new(fast)));
    let mut reconciler = reconciler_for(def, index, policy.as_deref());
    let mut finished_at = Utc::now();
    let result = store.in_transaction(&mut |writes: &mut dyn Writes| {
        let now = Utc::now();
        let mut warnings_kept = 0;
        consume(rx, &mut reconciler, |reconciler, mut plan| {
            reconciler
                .resolve_reading(&mut plan, |ids| writes.stored_rows(ids))
                .map_err(|e| e.to_string())?;
            if fast_path {
                keep_outcomes(writes, integration_id, &revision, &plan)
                    .map_err(|e| e.to_string())?;
            }
            let columns = reconciler.columns();
            write_page(
                writes,
                integration_id,
                run,
                now,
                plan,
                columns,
                &mut warnings_kept,
            )
        })
        .map_err(TxError::Aborted)?;
        let missing = reconciler.missing_selected(&def.filters.offers);
        if !missing.is_empty() {
            writes.record_skips(run, &missing)?;
        }
        let removal = reconciler
            .removals(def.on_removed, def.on_filtered, &def.safety, guard)
            .map_err(|r: Refusal| TxError::Aborted(r.to_string()))?;
        if !removal.ids.is_empty() {
            writes.remove(integration_id, &removal.ids, "gone", removal.pause, now)?;
        }
        if !removal.filtered_ids.is_empty() {
            writes.remove(
                integration_id,
                &removal.filtered_ids,
                "filtered",
                removal.pause_filtered,
                now,
            )?;
        }
        if let Some(tick) = options.tick {
            writes.finish_tick(&def.name, tick)?;
        }
        writes.record_applied_policy(integration_id, &reconciler.columns().fingerprint())?;
        if stale_outcomes {
            writes.prune_outcomes(integration_id, &revision)?;
        }
        finished_at = Utc::now();
        writes.finish_run(
            run,
            integration_id,
            &reconciler.counts,
            options.accept_removals,
            finished_at,
        )?;
        Ok(())
    });
    let counts = std::mem::take(&mut reconciler.counts);
    match result {
        Ok(()) => Ok((counts, finished_at)),
        Err(e) => Err((counts, e.to_string())),
    }
}

/// The reconciler of a run of `def` against the stored `index`.
pub(crate) fn reconciler_for<'d>(
    def: &'d IntegrationDef,
    index: StoredIndex,
    applied_policy: Option<&str>,
) -> Reconciler<'d> {
    let reconciler =
        Reconciler::new(index, &def.update, def.caps.update).after_policy(applied_policy);
    if def.network.request.select_ids.is_some() {
        reconciler.fetching_by_id(&def.filters.offers)
    } else {
        reconciler
    }
}

/// Per-offer warnings a run keeps in its log (all are counted): a feed
/// whose every offer warns costs a bounded table.
pub const MAX_WARNINGS_KEPT: usize = 10_000;

fn write_page(
    writes: &mut dyn Writes,
    integration_id: i64,
    run: RunId,
    now: chrono::DateTime<Utc>,
    plan: PagePlan,
    columns: &crate::store::UpdateColumns,
    warnings_kept: &mut usize,
) -> Result<(), String> {
    let fail = |e: StoreError| e.to_string();
    if !plan.create.is_empty() {
        writes
            .create(integration_id, now, &plan.create)
            .map_err(fail)?;
    }
    if !plan.update.is_empty() {
        let updates: Vec<Update<'_>> = plan
            .update
            .iter()
            .map(|u| Update {
                id: u.id,
                campaign: &u.campaign,
                restore: u.restore,
                cause: &u.cause,
            })
            .collect();
        writes
            .update(integration_id, now, &updates, columns)
            .map_err(fail)?;
    }
    if !plan.refresh.is_empty() {
        let rows: Vec<(i64, &Campaign)> = plan.refresh.iter().map(|(id, c)| (*id, c)).collect();
        writes.refresh(&rows).map_err(fail)?;
    }
    if !plan.skips.is_empty() {
        writes.record_skips(run, &plan.skips).map_err(fail)?;
    }
    if !plan.warnings.is_empty() {
        let kept = MAX_WARNINGS_KEPT.saturating_sub(*warnings_kept);
        let page = &plan.warnings[..plan.warnings.len().min(kept)];
        if !page.is_empty() {
            writes.record_warnings(run, page).map_err(fail)?;
            *warnings_kept += page.len();
        }
    }
    Ok(())
}

/// Feeds each page to the reconciler and its plan to `on_plan`, until every
/// page has arrived (`Ok`) or fetching failed (`Err` with the reason).
fn consume<'d>(
    rx: &mut mpsc::Receiver<Message>,
    reconciler: &mut Reconciler<'d>,
    mut on_plan: impl FnMut(&mut Reconciler<'d>, PagePlan) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        match rx.blocking_recv() {
            Some(Message::Page { outcomes, records }) => {
                reconciler.counts.pages += 1;
                reconciler.counts.fetched += records;
                let mut plan = reconciler.plan_records(outcomes);
                // The run log keeps upstream text only with its control
                // characters escaped.
                for skip in &mut plan.skips {
                    if let Cow::Owned(escaped) = escape_controls(&skip.detail) {
                        skip.detail = escaped;
                    }
                }
                for (_, warning) in &mut plan.warnings {
                    if let Cow::Owned(escaped) = escape_controls(warning) {
                        *warning = escaped;
                    }
                }
                on_plan(reconciler, plan)?;
            }
            Some(Message::Done) => return Ok(()),
            Some(Message::Failed(reason)) => return Err(escape_controls(&reason).into_owned()),
            // The fetching side went away: the process is stopping.
            None => return Err(crate::store::INTERRUPTED.into()),
        }
    }
}

/// Threads a page's records are mapped on: the machine's cores (at most 4),
/// since mapping is most of a run's work and the writer mostly waits.
fn mapping_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
    })
}

/// Pages in flight at once: the one being waited for and those after it that
/// the stated total promises. Bounded, so memory is at most this many bodies.
const PAGES_AHEAD: usize = 2;

/// A page being fetched: its URL, and the task fetching its body.
type PageInFlight = (
    url::Url,
    tokio::task::JoinHandle<Result<crate::fetch::Fetched, crate::fetch::FetchError>>,
);

/// Page requests fetched ahead, in the order the pager will ask for them.
#[derive(Default)]
struct PagesAhead {
    queue: std::collections::VecDeque<PageInFlight>,
}

impl PagesAhead {
    /// The body of `request`: fetched ahead when it was, else now. Anything
    /// fetched ahead for another request is dropped unused.
    async fn take(
        &mut self,
        request: &crate::fetch::Request,
        fetcher: &Arc<Fetcher>,
    ) -> Result<crate::fetch::Fetched, crate::fetch::FetchError> {
        match self.queue.pop_front() {
            Some((url, handle)) if url == request.url => match handle.await {
                Ok(result) => result,
                // Cancelled by a stopping runtime: fetch it here instead.
                Err(_) => fetcher.fetch_page(request).await,
            },
            other => {
                other.into_iter().for_each(|(_, h)| h.abort());
                self.clear();
                fetcher.fetch_page(request).await
            }
        }
    }

    /// Starts fetching the requests not yet in flight (`requests` starts at
    /// the pager's next request).
    fn schedule(&mut self, requests: Vec<crate::fetch::Request>, fetcher: &Arc<Fetcher>) {
        let in_order = requests
            .iter()
            .zip(&self.queue)
            .all(|(r, (url, _))| r.url == *url);
        if !in_order {
            self.clear();
        }
        for request in requests.into_iter().skip(self.queue.len()) {
            let fetcher = fetcher.clone();
            let url = request.url.clone();
            let handle = tokio::spawn(tracing::Instrument::instrument(
                async move { fetcher.fetch_page(&request).await },
                tracing::Span::current(),
            ));
            self.queue.push_back((url, handle));
        }
    }

    fn clear(&mut self) {
        for (_, handle) in self.queue.drain(..) {
            handle.abort();
        }
    }
}

impl Drop for PagesAhead {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Fetches, maps and applies the rules to every page, sending each to the writer.
async fn fetch_side(
    def: &Arc<IntegrationDef>,
    tx: &mpsc::Sender<Message>,
    on_progress: &(dyn Fn(Progress) + Sync),
    fast: Option<Arc<FastIndex>>,
) -> Result<u64, String> {
    let fetcher = Arc::new(Fetcher::new(def).map_err(|e| e.to_string())?);
    let mut pager = Pager::new(def, fetcher.redactor().clone()).map_err(|e| e.to_string())?;
    let mut ahead = PagesAhead::default();
    let field_params = Arc::new(field_params(def));
    let mut records_so_far = 0u64;
    let mut reused_so_far = 0u64;
    while let Some(request) = pager.next_request().cloned() {
        let page_number = pager.pages() + 1;
        let crate::fetch::Fetched { body, headers } = ahead
            .take(&request, &fetcher)
            .await
            .map_err(|e| e.to_string())?;
        let shown = fetcher.redactor().redact(request.url.as_str());
        let mapping_def = def.clone();
        let params = field_params.clone();
        let page_fast = fast.clone();
        let (mapped, body) = tokio::task::spawn_blocking(move || {
            let known = page_fast
                .as_ref()
                .map(|fast| move |hash: &[u8; 32]| fast.contains_key(hash));
            let mapped = mapping_def.network.mapping.map_page_reusing(
                &body,
                mapping_threads(),
                &params,
                known.as_ref().map(|k| k as crate::mapping::KnownRecord<'_>),
            );
            (mapped, body)
        })
        .await
        .expect("mapping never panics");
        let mapped = mapped.map_err(|e: PageError| format!("page {page_number} ({shown}): {e}"))?;
        if let Some(message) = def.network.mapping.response_error(&mapped.page) {
            return Err(format!(
                "page {page_number} ({shown}): the API answered with an error: {}",
                fetcher.redactor().redact(&message)
            ));
        }
        let records = mapped.listed();
        let reused: Vec<(usize, Reused)> = match (&fast, &mapped.hashed) {
            (Some(fast), Some(hashed)) => hashed
                .reused
                .iter()
                .filter_map(|(place, hash)| fast.get(hash).map(|r| (*place, r.clone())))
                .collect(),
            _ => Vec::new(),
        };
        let reused_ids = reused.iter().map(|(_, r)| &*r.external_id);
        pager
            .advance(
                &mapped.page,
                &headers,
                records,
                &body,
                mapped.ids().chain(reused_ids),
            )
            .map_err(|e| e.to_string())?;
        drop(body);
        ahead.schedule(pager.ahead(PAGES_AHEAD), &fetcher);
        records_so_far += records as u64;
        let (total_pages, total_records) = pager.stated_totals();
        on_progress(Progress {
            pages: pager.pages(),
            records: records_so_far,
            total_pages,
            total_records,
        });
        let hashes: Option<Vec<(usize, [u8; 32])>> = mapped.hashed.map(|h| h.offers);
        let mut outcomes: Vec<Result<Offer, Skip>> = mapped.offers.into_iter().map(Ok).collect();
        outcomes.extend(mapped.problems.into_iter().map(|p| {
            Err(Skip {
                external_id: p.external_id.clone(),
                reason: SkipReason::MappingProblem,
                detail: p.to_string(),
            })
        }));
        if !def.network.enrich.is_empty() {
            outcomes = enrich_page(def, &fetcher, outcomes).await;
        }
        let rules_def = def.clone();
        let outcomes = tokio::task::spawn_blocking(move || {
            let rules = Rules::new(&rules_def);
            outcomes
                .into_iter()
                .map(|o| o.and_then(|offer| rules.apply(offer)))
                .collect::<Vec<_>>()
        })
        .await
        .expect("rules never panic");
        for campaign in outcomes.iter().flatten() {
            for warning in &campaign.warnings {
                tracing::warn!(integration = %def.name, offer = %escape_controls(&campaign.external_id), "{warning}");
            }
        }
        tracing::debug!(integration = %def.name, page = page_number, records, reused = reused.len(), "page fetched");
        reused_so_far += reused.len() as u64;
        let outcomes = in_page_order(outcomes, hashes, reused);
        if tx
            .send(Message::Page {
                outcomes,
                records: records as u32,
            })
            .await
            .is_err()
        {
            // The writer stopped (its transaction failed); it reports why.
            return Ok(reused_so_far);
        }
    }
    Ok(reused_so_far)
}

/// A page's outcomes for the plan: the fresh ones (offers, then mapping
/// problems, as mapped) with their hashes, and the reused ones put back at
/// their places among the offers, so that the first record of an id listed
/// twice is the one imported, as in a full parse. Without hashes (no fast
/// path, or a page not read record by record) all are fresh, unhashed.
fn in_page_order(
    outcomes: Vec<Result<Campaign, Skip>>,
    hashes: Option<Vec<(usize, [u8; 32])>>,
    reused: Vec<(usize, Reused)>,
) -> Vec<Outcome> {
    let Some(hashes) = hashes else {
        return outcomes
            .into_iter()
            .map(|outcome| Outcome::Fresh {
                hash: None,
                outcome,
            })
            .collect();
    };
    let mut out = Vec::with_capacity(outcomes.len() + reused.len());
    let mut reused = reused.into_iter().peekable();
    let mut outcomes = outcomes.into_iter();
    // The first `hashes.len()` outcomes are the offers, in page order.
    for (place, hash) in hashes {
        while let Some((_, r)) = reused.next_if(|(p, _)| *p < place) {
            out.push(Outcome::Reused(r));
        }
        let outcome = outcomes.next().expect("one outcome per offer");
        out.push(Outcome::Fresh {
            hash: Some(hash),
            outcome,
        });
    }
    out.extend(reused.map(|(_, r)| Outcome::Reused(r)));
    out.extend(outcomes.map(|outcome| Outcome::Fresh {
        hash: None,
        outcome,
    }));
    out
}

/// The params an offer field's template may read: the Integration's values
/// of the Network's non-secret params (compiling refuses secret ones).
pub fn field_params(def: &IntegrationDef) -> std::collections::BTreeMap<String, String> {
    if !def.network.mapping.uses_params() {
        return Default::default();
    }
    def.params
        .iter()
        .filter(|(_, value)| !value.is_secret())
        .map(|(name, value)| (name.clone(), value.expose().to_string()))
        .collect()
}

/// The record of one offer as the network lists it (for `explain`): the
/// pages are read in order until a record maps to `external_id` (or fails
/// to map with that id). Nothing is written.
pub async fn find_record(
    def: &Arc<IntegrationDef>,
    external_id: &str,
) -> Result<Option<(Value, Option<String>)>, String> {
    let fetcher = Arc::new(Fetcher::new(def).map_err(|e| e.to_string())?);
    let mut pager = Pager::new(def, fetcher.redactor().clone()).map_err(|e| e.to_string())?;
    let mapping = &def.network.mapping;
    let params = field_params(def);
    while let Some(request) = pager.next_request().cloned() {
        let crate::fetch::Fetched { body, headers } = fetcher
            .fetch_page(&request)
            .await
            .map_err(|e| e.to_string())?;
        let mapped = mapping
            .map_page_using(&body, 1, &params)
            .map_err(|e| e.to_string())?;
        if let Some(message) = mapping.response_error(&mapped.page) {
            return Err(format!("the API answered with an error: {message}"));
        }
        if let Some(found) = mapping.find_record(&body, &mapped, external_id) {
            return Ok(Some(found));
        }
        pager
            .advance(&mapped.page, &headers, mapped.listed(), &body, mapped.ids())
            .map_err(|e| e.to_string())?;
    }
    Ok(None)
}

/// Runs a network's per-offer requests, a bounded number at a time.
async fn enrich_page(
    def: &IntegrationDef,
    fetcher: &Fetcher,
    outcomes: Vec<Result<Offer, Skip>>,
) -> Vec<Result<Offer, Skip>> {
    let concurrency = def
        .network
        .enrich
        .iter()
        .map(|e| e.concurrency as usize)
        .min()
        .unwrap_or(1)
        .max(1);
    futures_util::stream::iter(outcomes)
        .map(|outcome| async move {
            let mut offer = outcome?;
            for enrich in &def.network.enrich {
                if let Err(reason) = enrich_offer(def, fetcher, enrich, &mut offer).await {
                    match enrich.on_error {
                        EnrichFailure::Skip => {
                            return Err(Skip {
                                external_id: Some(offer.external_id.clone()),
                                reason: SkipReason::EnrichFailed,
                                detail: format!("{}: {reason}", enrich.name),
                            });
                        }
                        EnrichFailure::Keep => {
                            tracing::warn!(integration = %def.name, offer = %offer.external_id, enrich = %enrich.name, %reason, "enrichment failed; offer kept");
                        }
                    }
                }
            }
            Ok(offer)
        })
        .buffered(concurrency)
        .collect()
        .await
}

async fn enrich_offer(
    def: &IntegrationDef,
    fetcher: &Fetcher,
    enrich: &EnrichDef,
    offer: &mut Offer,
) -> Result<(), String> {
    let record: Value = serde_json::from_str(offer.raw.get()).map_err(|e| e.to_string())?;
    if !enrich.applies_to(&record, &def.network.null_values) {
        return Ok(());
    }
    let params = |name: &str| def.params.get(name).map(|p| p.expose().to_string());
    // One time for the whole request: a signature and its timestamp agree.
    let now = crate::fetch::request_time();
    let render = |t: &crate::mapping::program::Template| t.render_at(Some(&record), &params, now);
    let mut url =
        checked_url(&render(&enrich.url), fetcher.redactor()).map_err(|e| e.to_string())?;
    for (name, value) in &enrich.query {
        url.query_pairs_mut().append_pair(name, &render(value));
    }
    let request = Request {
        method: enrich.method,
        url,
        headers: enrich
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), render(v)))
            .collect(),
        body: enrich
            .body
            .as_ref()
            .map(|b| crate::fetch::Body::render_for(b, render, Some(&record))),
    };
    let body = fetcher.fetch(&request).await.map_err(|e| e.to_string())?;
    enrich.apply(&body, &def.network.null_values, offer)
}
