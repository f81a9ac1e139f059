//! Where campaigns and the run log live.
//!
//! This module owns the store interface reconcile calls ([`Store`] and the
//! [`Writes`] of one transaction), the records read back for the CLI, and one
//! diesel implementation per backend: Postgres, and SQLite for one machine. It decides nothing: what
//! to create, update or pause is reconcile's plan; the store only writes it,
//! all in one transaction. Its calls block, so async code runs them on a
//! blocking thread.

pub mod feed;
mod json;
pub mod postgres;
mod rows;
mod schema;
mod shared;
pub mod sqlite;

pub use feed::{ChangeKind, ChangeRecord, FieldChange};
pub use rows::{INTERRUPTED, db_columns};

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::campaign::Campaign;
use crate::manifest::model::Column;
use crate::rules::{Skip, SkipReason};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("database migrations failed: {0}")]
    Migration(String),
    /// The schema a Postgres URL chooses is unusable (missing, or badly named).
    #[error("{0}")]
    Schema(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(
        "another run of integration `{0}` is in progress (a daemon or another `offersync sync`); try again when it ends"
    )]
    RunInProgress(String),
    #[error(
        "unsupported DATABASE_URL {0:?}: expected postgres://USER@HOST/DB or sqlite://PATH (e.g. sqlite://offersync.db)"
    )]
    UnsupportedUrl(String),
    /// A path where a URL belongs (`DATABASE_URL=offersync.db`): SQLite
    /// files are named `sqlite://PATH`, so that a typo in a Postgres URL is
    /// never taken for a file name.
    #[error(
        "DATABASE_URL {0:?} is a file path, not a URL\n  hint: for an SQLite file write sqlite://{0} (sqlite:///{abs} for an absolute path); for Postgres, postgres://USER@HOST/DB",
        abs = .0.trim_start_matches('/')
    )]
    BarePath(String),
    #[error(
        "another daemon already uses the SQLite store {0}: SQLite serves one daemon on one machine; for several daemons (replicas), use Postgres (DATABASE_URL=postgres://…)"
    )]
    SqliteDaemonRunning(String),
    #[error("cannot take the run lock in {path}: {message}")]
    Lock { path: String, message: String },
    /// The integration's manifest was deleted and the integration retired:
    /// its file, put back, does not bring it back (delete is final).
    #[error(
        "integration `{name}` was deleted (its manifest was removed and the integration retired): {file} does not bring it back\n  hint: {}",
        undelete_hint(name)
    )]
    IntegrationDeleted { name: String, file: String },
}

/// What to do about a deleted integration whose manifest is back.
pub fn undelete_hint(name: &str) -> String {
    format!(
        "to restore it and its campaigns, run `offersync undelete {name}`; to start afresh instead, give the manifest a new metadata.name"
    )
}

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The work inside the transaction gave up (a page failed to fetch, a
    /// safety guard refused the run); everything it wrote is rolled back.
    #[error("{0}")]
    Aborted(String),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(StoreError::Query(e))
    }
}

/// Why a transaction failed, by its first cause, and whether the connection
/// is still fit for use.
pub(crate) struct TxFailure {
    pub error: TxError,
    /// The rollback after the failure failed too: diesel then counts the
    /// connection's transaction state as broken, and the store reconnects.
    pub rollback_failed: bool,
}

/// Brings what diesel's `transaction` returned back to the first cause.
/// The work's own error waits in `work_error` (the work hands diesel
/// [`diesel::result::Error::RollbackTransaction`] instead): when the
/// rollback after a failure fails as well, diesel returns the rollback's
/// error, and on a full disk, where SQLite has already rolled back by
/// itself, that is "cannot rollback - no transaction is active" in place of
/// "database or disk is full". A failed commit whose rollback failed is
/// reported by the commit's error for the same reason.
pub(crate) fn first_cause(
    result: Result<(), diesel::result::Error>,
    work_error: Option<TxError>,
) -> Result<(), TxFailure> {
    use diesel::result::Error;
    let (error, rollback_failed) = match (result, work_error) {
        (Ok(()), _) => return Ok(()),
        (Err(Error::RollbackTransaction), Some(error)) => (error, false),
        (Err(rollback), Some(error)) => {
            tracing::debug!(error = %rollback, "the rollback after a failed transaction failed too");
            (error, true)
        }
        (
            Err(Error::RollbackErrorOnCommit {
                rollback_error,
                commit_error,
            }),
            None,
        ) => {
            tracing::debug!(error = %rollback_error, "the rollback after a failed commit failed too");
            (TxError::from(*commit_error), true)
        }
        (Err(e), None) => (TxError::from(e), false),
    };
    Err(TxFailure {
        error,
        rollback_failed,
    })
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Cli,
    Schedule,
    Refresh,
    Manifest,
    /// The daemon runs again an integration whose last run failed.
    Retry,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Schedule => "schedule",
            Self::Refresh => "refresh",
            Self::Manifest => "manifest",
            Self::Retry => "retry",
        }
    }
}

/// An integration as registered in the store.
#[derive(Debug, Clone)]
pub struct IntegrationRecord<'a> {
    pub name: &'a str,
    pub network: &'a str,
    pub spec: &'a str,
    pub spec_hash: &'a str,
    pub source_file: &'a str,
    pub enabled: bool,
}

/// The id of a run in the run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What reconcile needs to know of every stored campaign on every run: enough
/// to tell, without reading the row, that it holds what this run would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCampaign {
    pub id: i64,
    /// The desired row's hash when offersync last converged the row to it
    /// ([`crate::campaign::Campaign::applied_hash`]).
    pub applied_hash: StoredHash,
    pub raw_hash: StoredHash,
    pub removed: bool,
    /// Another writer changed a column offersync writes since (a trigger
    /// sets it): the row must be read and compared.
    pub drifted: bool,
}

/// An offer's last outcome, as the fast path of a run reads it back
/// (migration `record_outcomes`): what the record with these bytes became
/// under the same revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutcome {
    pub external_id: String,
    /// SHA-256 (hex) of the record's bytes, as `sync` hashes them.
    pub record_hash: String,
    /// `None`: imported; else the filter's [`SkipReason`] name.
    pub skip_reason: Option<String>,
    pub detail: String,
    /// For an imported offer, the applied hash its row was converged to.
    pub applied_hash: String,
}

/// An offer's outcome to keep for the next run's fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutcome<'a> {
    pub external_id: &'a str,
    pub record_hash: &'a str,
    pub skip_reason: Option<&'static str>,
    pub detail: &'a str,
    pub applied_hash: &'a str,
}

/// A stored campaign's columns as read for comparison with its desired row
/// (only for rows whose applied hash or drift says they may differ).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub id: i64,
    pub status_before_pause: Option<String>,
    pub drifted: bool,
    pub content_hash: String,
    pub raw_hash: String,
    /// The values of [`feed::FEED_COLUMNS`], normalized as
    /// [`crate::campaign::Campaign::column_value`] writes desired ones.
    values: Vec<serde_json::Value>,
}

impl StoredRow {
    /// The stored value of a watched column (`null` for an unknown one).
    pub fn value(&self, column: &str) -> &serde_json::Value {
        static NULL: serde_json::Value = serde_json::Value::Null;
        feed::FEED_COLUMNS
            .iter()
            .position(|(c, _)| *c == column)
            .and_then(|i| self.values.get(i))
            .unwrap_or(&NULL)
    }

    /// The same row with one watched column's value replaced.
    pub fn with_value(mut self, column: &str, value: serde_json::Value) -> Self {
        if let Some(i) = feed::FEED_COLUMNS.iter().position(|(c, _)| *c == column) {
            self.values[i] = value;
        }
        self
    }

    /// A row as a test or a pure caller builds it: `values` by column name,
    /// every other watched column `null`.
    pub fn with_values(id: i64, values: &[(&str, serde_json::Value)]) -> Self {
        let values = feed::FEED_COLUMNS
            .iter()
            .map(|(c, _)| {
                values
                    .iter()
                    .find(|(name, _)| name == c)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(serde_json::Value::Null)
            })
            .collect();
        Self {
            id,
            status_before_pause: None,
            drifted: false,
            content_hash: String::new(),
            raw_hash: String::new(),
            values,
        }
    }
}

/// A stored hash, held compactly: a SHA-256 in hex as its 32 bytes (as
/// strings, the two hashes were most of a 100k-campaign index's memory),
/// anything else (a row from before a hash existed) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredHash {
    Sha256([u8; 32]),
    Text(Box<str>),
}

impl StoredHash {
    pub fn new(text: &str) -> Self {
        let mut bytes = [0u8; 32];
        let decoded = text.len() == 64
            && text
                .as_bytes()
                .chunks(2)
                .zip(bytes.iter_mut())
                .all(
                    |(pair, byte)| match (hex_digit(pair[0]), hex_digit(pair[1])) {
                        (Some(h), Some(l)) => {
                            *byte = h << 4 | l;
                            true
                        }
                        _ => false,
                    },
                );
        if decoded {
            Self::Sha256(bytes)
        } else {
            Self::Text(text.into())
        }
    }

    /// Whether this hash is the SHA-256 `digest`.
    pub fn matches_digest(&self, digest: &[u8]) -> bool {
        matches!(self, Self::Sha256(bytes) if bytes.as_slice() == digest)
    }

    /// Whether `text` (a hash as [`crate::campaign::Campaign`] computes it) is this hash.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Self::Sha256(bytes) => {
                text.len() == 64
                    && text
                        .as_bytes()
                        .chunks(2)
                        .zip(bytes)
                        .all(|(pair, byte)| {
                            matches!((hex_digit(pair[0]), hex_digit(pair[1])), (Some(h), Some(l)) if h << 4 | l == *byte)
                        })
            }
            Self::Text(stored) => &**stored == text,
        }
    }
}

/// Lower-case hex only: the hashes offersync writes.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Rows of the stored index read at a time.
const INDEX_SLICE: i64 = 25_000;

/// An integration's stored campaigns by external id.
pub type StoredIndex = HashMap<String, StoredCampaign, foldhash::fast::RandomState>;

/// A run's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub pages: u32,
    /// Records seen in the responses (offers and records that failed to map).
    pub fetched: u32,
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub skipped: u32,
    pub removed: u32,
    /// Campaigns removed earlier whose offer came back (also counted as updated).
    pub restored: u32,
    pub skipped_by_reason: BTreeMap<SkipReason, u32>,
    /// Live campaigns whose offers the Integration's filters now skip (given
    /// the `on_filtered` action; not counted as removed).
    pub filtered: u32,
    /// Offers the feed listed (records less repeated ids, whatever the
    /// filters decided): what the removal guard compares later runs with.
    pub listed: u32,
    /// Campaigns whose `always` columns another writer had changed, put back
    /// (also counted as updated).
    pub drift_corrected: u32,
    /// Per-offer warnings (a value left empty because it could not be read).
    pub warnings: u32,
}

impl RunCounts {
    pub fn skip(&mut self, reason: SkipReason) {
        self.skipped += 1;
        *self.skipped_by_reason.entry(reason).or_default() += 1;
    }

    /// Whether the run changed any campaign.
    pub fn changed_anything(&self) -> bool {
        self.created + self.updated + self.removed > 0
    }
}

impl fmt::Display for RunCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fetched {}, created {}, updated {}, unchanged {}, skipped {}, removed {}",
            self.fetched, self.created, self.updated, self.unchanged, self.skipped, self.removed
        )?;
        if self.restored > 0 {
            write!(f, " (restored {})", self.restored)?;
        }
        if self.filtered > 0 {
            write!(f, ", filtered out {}", self.filtered)?;
        }
        if self.drift_corrected > 0 {
            write!(f, ", drift corrected {}", self.drift_corrected)?;
        }
        if self.warnings > 0 {
            write!(f, ", warnings {}", self.warnings)?;
        }
        Ok(())
    }
}

/// An existing campaign to rewrite.
#[derive(Debug)]
pub struct Update<'a> {
    pub id: i64,
    pub campaign: &'a Campaign,
    /// The offer came back after removal: clear `removed_at` and take the new status.
    pub restore: bool,
    /// Why the row is rewritten, for the change feed (`upstream changed`,
    /// `setting changed`, `drift`).
    pub cause: &'a str,
}

/// Which columns an update may write (those whose policy is `always`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateColumns {
    pub columns: Vec<Column>,
    /// `caps.update`: rewrite the network's and the additional caps and the cap settings.
    pub caps: bool,
    /// Where `status` is not among `columns`: pause for an offer inactive
    /// upstream, and undo that pause when it is active again.
    pub follow_upstream_pauses: bool,
}

impl UpdateColumns {
    /// The policy as text (`name=always,…;caps.update=…`): part of every
    /// applied hash, so that a changed policy re-plans every row.
    pub fn fingerprint(&self) -> String {
        let columns: Vec<&str> = self.columns.iter().map(|c| c.name()).collect();
        format!(
            "always={};caps.update={};follow_upstream_pauses={}",
            columns.join(","),
            self.caps,
            self.follow_upstream_pauses
        )
    }
}

/// The writes of one run, inside one transaction.
pub trait Writes {
    /// Inserts new campaigns (and their publisher payouts).
    fn create(
        &mut self,
        integration_id: i64,
        now: DateTime<Utc>,
        campaigns: &[Campaign],
    ) -> Result<(), StoreError>;
    /// Rewrites the allowed columns of existing campaigns, their hash and raw record.
    fn update(
        &mut self,
        integration_id: i64,
        now: DateTime<Utc>,
        updates: &[Update<'_>],
        columns: &UpdateColumns,
    ) -> Result<(), StoreError>;
    /// Rewrites only the bookkeeping of campaigns whose stored columns already
    /// hold their desired values: the raw record, the hashes, and the drift
    /// mark cleared; no column the platform reads, not `changed_at`.
    fn refresh(&mut self, campaigns: &[(i64, &Campaign)]) -> Result<(), StoreError>;
    /// Reads stored rows for comparison with their desired state, inside
    /// the run's transaction.
    fn stored_rows(&mut self, ids: &[i64]) -> Result<Vec<StoredRow>, StoreError>;
    /// Records the update policy the run converged rows to (what the next
    /// plan compares its own with, to name a changed setting).
    fn record_applied_policy(
        &mut self,
        integration_id: i64,
        fingerprint: &str,
    ) -> Result<(), StoreError>;
    /// Keeps per-offer warnings with the run (external id, message).
    fn record_warnings(
        &mut self,
        run: RunId,
        warnings: &[(String, String)],
    ) -> Result<(), StoreError>;
    /// Marks campaigns removed (`removed_as`: `gone` upstream or `filtered`
    /// out), pausing them when `pause` (and remembering the status the pause
    /// replaced, for the restore).
    fn remove(
        &mut self,
        integration_id: i64,
        ids: &[i64],
        removed_as: &'static str,
        pause: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    fn record_skips(&mut self, run: RunId, skips: &[Skip]) -> Result<(), StoreError>;
    /// Keeps the outcomes of records computed in this run under `revision`
    /// (replacing an offer's earlier one) and drops those of `forget`,
    /// whose outcome cannot be reused.
    fn record_outcomes(
        &mut self,
        integration_id: i64,
        revision: &str,
        outcomes: &[NewOutcome<'_>],
        forget: &[&str],
    ) -> Result<(), StoreError>;
    /// Drops the outcomes computed under any revision but `revision`.
    fn prune_outcomes(&mut self, integration_id: i64, revision: &str) -> Result<(), StoreError>;
    /// Appends what the transaction changed to the change feed, then marks
    /// the run succeeded with its counts (and whether an operator accepted
    /// its removals), and the integration's last success. Called last.
    fn finish_run(
        &mut self,
        run: RunId,
        integration_id: i64,
        counts: &RunCounts,
        accepted_removals: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Marks the claimed tick the run serves as ended, in the run's own
    /// transaction: no daemon can see the run succeeded and its tick open.
    fn finish_tick(&mut self, integration: &str, tick: DateTime<Utc>) -> Result<(), StoreError>;
}

/// A store backend.
pub trait Store: Send {
    /// A new connection to the same database (after this one was lost).
    fn reopen(&self) -> Result<Box<dyn Store>, StoreError>;
    /// Registers an integration, or refreshes its spec; returns its id.
    /// A deleted integration is never reactivated this way: that is
    /// [`StoreError::IntegrationDeleted`] (see [`Store::undelete_integration`]).
    fn upsert_integration(&mut self, record: &IntegrationRecord<'_>) -> Result<i64, StoreError>;
    /// The id of a registered integration.
    fn integration_id(&mut self, name: &str) -> Result<Option<i64>, StoreError>;
    /// A registered integration's state (`active`, `disabled` or `deleted`).
    fn integration_state(&mut self, name: &str) -> Result<Option<String>, StoreError>;
    /// Takes the integration's run lock, held until [`Store::end_run`] or
    /// until the process or its connection ends; fails at once with
    /// [`StoreError::RunInProgress`] when another process holds it.
    fn lock_run(&mut self, integration: &str) -> Result<(), StoreError>;
    /// Under the run lock: fails runs a dead process left `running`, and
    /// records a new `running` run.
    fn begin_run(
        &mut self,
        integration_id: i64,
        trigger: Trigger,
        spec_hash: &str,
    ) -> Result<RunId, StoreError>;
    /// Releases the run lock.
    fn end_run(&mut self) -> Result<(), StoreError>;
    fn stored_index(&mut self, integration_id: i64) -> Result<StoredIndex, StoreError>;
    /// Hands each outcome stored under `revision` to `each` (read in slices,
    /// never all at once); returns whether outcomes of other revisions are
    /// stored too (to be pruned by the next applied run).
    fn stored_outcomes(
        &mut self,
        integration_id: i64,
        revision: &str,
        each: &mut dyn FnMut(StoredOutcome),
    ) -> Result<bool, StoreError>;
    /// The update policy the integration's last applied run converged rows to.
    fn applied_policy(&mut self, integration_id: i64) -> Result<Option<String>, StoreError>;
    /// Stored rows for comparison with their desired state (a plan's read).
    fn stored_rows(&mut self, ids: &[i64]) -> Result<Vec<StoredRow>, StoreError>;
    /// The most offers a feed listed in a successful run finished since
    /// `since`, from the last run whose removals were accepted on: what the
    /// removal guard measures a run against.
    fn listed_high_water(
        &mut self,
        integration_id: i64,
        since: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError>;
    /// Runs `work` in one transaction: it commits only if `work` returns `Ok`.
    fn in_transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Writes) -> Result<(), TxError>,
    ) -> Result<(), TxError>;
    /// Marks a run failed (outside any transaction, so the failure is logged
    /// even though nothing else was written).
    fn fail_run(
        &mut self,
        run: RunId,
        integration_id: i64,
        counts: &RunCounts,
        error: &str,
    ) -> Result<(), StoreError>;
    fn recent_runs(&mut self, integration: &str, limit: i64) -> Result<Vec<RunRecord>, StoreError>;
    /// The change feed after position `since` (of one integration, or all),
    /// oldest first, at most `limit` entries.
    fn changes(
        &mut self,
        since: i64,
        integration: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ChangeRecord>, StoreError>;
    /// A page of the changes one run made (oldest first), and how many it
    /// made in all (while the feed keeps them: see its retention).
    fn run_changes(
        &mut self,
        run: RunId,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ChangeRecord>, i64), StoreError>;
    /// Deletes feed entries older than `before` (retention); returns how many.
    fn prune_changes(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError>;
    fn run(&mut self, run: RunId) -> Result<Option<RunRecord>, StoreError>;
    fn run_skips(&mut self, run: RunId) -> Result<Vec<SkipRecord>, StoreError>;
    /// A page of a run's per-offer warnings (external id, message), by id.
    fn run_warnings(
        &mut self,
        run: RunId,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// A page of a run's skipped offers (of one reason, or all), by reason and id.
    fn run_skips_page(
        &mut self,
        run: RunId,
        reason: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<SkipRecord>, StoreError>;
    /// How many offers a run skipped for each reason, most first.
    fn skip_reasons(&mut self, run: RunId) -> Result<Vec<(String, i64)>, StoreError>;
    fn status(&mut self) -> Result<Vec<IntegrationStatus>, StoreError>;
    /// [`Store::status`] of these integrations only (names the store does
    /// not know are left out), by name.
    fn status_of(&mut self, names: &[String]) -> Result<Vec<IntegrationStatus>, StoreError>;
    /// Every integration, light: its name, state and failed runs in a
    /// row, by name, in one query.
    fn integration_health(&mut self) -> Result<Vec<IntegrationHealth>, StoreError>;
    /// Every integration not retired, with the file and document it was last
    /// registered from.
    fn live_integrations(&mut self) -> Result<Vec<LiveIntegration>, StoreError>;
    fn campaigns(&mut self, integration: &str) -> Result<Vec<CampaignRecord>, StoreError>;
    /// A page of an integration's campaigns by external id, and how many
    /// it has.
    fn campaigns_page(
        &mut self,
        integration: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<CampaignRecord>, i64), StoreError>;
    /// Campaigns (with their integration's name) whose id is `needle` or
    /// whose name contains it, in any case; of one integration or all.
    fn search_campaigns(
        &mut self,
        integration: Option<&str>,
        needle: &str,
        limit: i64,
    ) -> Result<Vec<(String, CampaignRecord)>, StoreError>;

    /// Claims one scheduled tick of an integration: `true` for exactly one
    /// caller, however many daemons share the store.
    fn claim_tick(
        &mut self,
        integration: &str,
        tick: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, StoreError>;
    /// Marks a claimed tick's run ended (whatever its result).
    fn finish_tick(&mut self, integration: &str, tick: DateTime<Utc>) -> Result<(), StoreError>;
    /// Takes over ticks claimed before `stale_before` whose run never ended
    /// (the daemon that claimed them died): each for one caller.
    fn reclaim_ticks(
        &mut self,
        by: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
    /// Whether a claimed tick of the integration has not ended (its run is
    /// going, or its daemon died and another will take it over).
    fn has_open_tick(&mut self, integration: &str) -> Result<bool, StoreError>;
    /// Marks the unfinished claims of daemon `by` (ticks and refresh
    /// requests) as still held, so that no other daemon takes them over.
    fn keep_claims(&mut self, by: &str) -> Result<(), StoreError>;
    /// Forgets the claims of ticks before `before` whose runs ended.
    fn prune_ticks(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Takes up a spec version of an integration: `true` when it differs from
    /// the version last taken up (by any daemon), so that one daemon runs it.
    fn claim_spec(&mut self, integration: &str, spec_hash: &str) -> Result<bool, StoreError>;
    /// Records a refresh request; `None` when the store knows no such integration.
    fn request_refresh(&mut self, integration: &str, by: &str) -> Result<Option<i64>, StoreError>;
    /// Claims the refresh requests nobody handles (each for one caller):
    /// unclaimed ones, and those claimed before `stale_before` and never finished.
    fn claim_refreshes(
        &mut self,
        by: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    fn finish_refresh(
        &mut self,
        request: i64,
        run: Option<RunId>,
        outcome: &str,
    ) -> Result<(), StoreError>;
    /// A finished refresh request's run and outcome; `None` while it waits or runs.
    fn refresh_outcome(&mut self, request: i64) -> Result<Option<RefreshOutcome>, StoreError>;
    /// Whether a daemon has taken the refresh request (it may still be running).
    fn refresh_claimed(&mut self, request: i64) -> Result<bool, StoreError>;
    /// Answers a refresh request with a run another process made: the
    /// first run of its integration that started at or after the request
    /// and has ended (not interrupted). Records it (`coalesced`, the run
    /// and its outcome) and returns the outcome; `None` while no such run
    /// has ended. A request already answered gives its outcome.
    fn coalesce_refresh(&mut self, request: i64) -> Result<Option<RefreshOutcome>, StoreError>;
    /// `active`, `disabled` or `deleted`. A deleted integration stays
    /// deleted: setting it `active` or `disabled` is
    /// [`StoreError::IntegrationDeleted`].
    fn set_integration_state(&mut self, integration: &str, state: &str) -> Result<(), StoreError>;
    /// Brings a deleted integration back as `state` (`active` or
    /// `disabled`), clearing its recorded manifest problem; its campaigns
    /// stay as they are until a run sees their offers again. `false` when
    /// the integration is not deleted (or unknown): nothing changed.
    fn undelete_integration(&mut self, integration: &str, state: &str) -> Result<bool, StoreError>;
    /// The manifest no longer validates (`Some`), or validates again (`None`s).
    fn record_manifest_problem(
        &mut self,
        integration: &str,
        attempted_spec_hash: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The manifest was deleted: the integration is marked deleted and its live
    /// campaigns get the removal action, in one transaction. Nothing is deleted.
    fn retire_integration(&mut self, integration: &str, pause: bool) -> Result<u32, StoreError>;
}

/// How a daemon finished a refresh request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshOutcome {
    /// The run that answered it: its own, or the one it was coalesced into.
    pub run: Option<i64>,
    /// [`REFRESH_SUCCEEDED`], [`REFRESH_FAILED`], or why no run answered it.
    pub outcome: String,
    /// Answered by a run of another process (another daemon, `offersync
    /// sync`) that started after the request, rather than by a run of its own.
    pub coalesced: bool,
}

/// The outcome of a refresh request whose run succeeded.
pub const REFRESH_SUCCEEDED: &str = "run succeeded";
/// The outcome of a refresh request whose run failed.
pub const REFRESH_FAILED: &str = "run failed (see the run log)";

/// One run as logged.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub integration: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub pages: i32,
    pub fetched: i32,
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub skipped: i32,
    pub removed: i32,
    pub restored: i32,
    /// Live campaigns the filters now skip.
    pub filtered: i32,
    pub drift_corrected: i32,
    pub warnings: i32,
    pub error: Option<String>,
}

/// One skipped offer of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SkipRecord {
    pub external_id: Option<String>,
    pub reason: String,
    pub detail: String,
}

/// An integration and its last run.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationStatus {
    pub name: String,
    pub network: String,
    pub state: String,
    /// The version of the spec runs use (the last one that validated).
    pub spec_hash: String,
    /// The version last seen in the directory when it did not validate.
    pub attempted_spec_hash: Option<String>,
    pub last_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_run: Option<RunRecord>,
    pub campaigns: i64,
    pub active_campaigns: i64,
    /// The manifest file it was last registered from.
    pub source_file: String,
    /// The applied spec's document, as written (secrets are references):
    /// where it came from is looked up by its text (`provenance`).
    #[serde(skip)]
    pub spec: String,
    /// Failed runs since its last success (all its runs if it never
    /// succeeded); 0 when its last finished run succeeded.
    pub failures_in_a_row: u32,
    /// When the first of those failed runs started.
    pub failing_since: Option<DateTime<Utc>>,
}

/// An integration as the overview counts it (see [`Store::integration_health`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrationHealth {
    pub name: String,
    /// `active`, `disabled` or `deleted`.
    pub state: String,
    pub failures_in_a_row: u32,
}

/// An integration the store holds as active or disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveIntegration {
    pub name: String,
    pub source_file: String,
    /// The manifest document it was last registered with.
    pub spec: String,
}

/// A stored campaign, as the CLI and tests read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRecord {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub status: String,
    pub visibility: String,
    pub revenue: Option<rust_decimal::Decimal>,
    /// `amount` or `percent` (revenue share: revenue and payout are percentages).
    pub payout_kind: String,
    pub payout: Option<rust_decimal::Decimal>,
    pub currency: Option<String>,
    pub tracking_url: Option<String>,
    pub category: Option<String>,
    pub countries: serde_json::Value,
    pub caps: serde_json::Value,
    pub import_caps: serde_json::Value,
    pub content_hash: String,
    pub changed_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    /// `gone` (upstream), `filtered` (by the Integration's filters) or
    /// `retired` (its manifest was deleted), while removed.
    pub removed_as: Option<String>,
}

/// The store used when `DATABASE_URL` is not set: an SQLite file in the
/// working directory.
pub const DEFAULT_URL: &str = "sqlite://offersync.db";

/// The backend a `DATABASE_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres(String),
    /// `sqlite://PATH`: relative to the working directory, or absolute as
    /// `sqlite:///var/lib/offersync/offersync.db`.
    Sqlite(std::path::PathBuf),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() && !path.contains('?') => {
                Ok(Self::Sqlite(std::path::PathBuf::from(path)))
            }
            _ if looks_like_a_path(url) => Err(StoreError::BarePath(url.to_string())),
            _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
        }
    }
}

/// A file name or path with no scheme, which is safe to echo (it holds no
/// password: no `@`, no `:`).
fn looks_like_a_path(url: &str) -> bool {
    !url.is_empty()
        && !url.contains(':')
        && !url.contains('@')
        && !url.contains(char::is_whitespace)
}

/// Opens the store a `DATABASE_URL` names and brings its schema up to date.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    Ok(match Backend::from_url(url)? {
        Backend::Postgres(url) => Box::new(postgres::PgStore::connect(&url)?),
        Backend::Sqlite(path) => Box::new(sqlite::SqliteStore::open(&path)?),
    })
}

/// Shows the bundled libpq's OpenSSL where this system keeps its
/// certificate authorities, which `sslrootcert=system` trusts: OpenSSL built
/// from source looks in /usr/local/ssl, where Debian keeps none. Sets
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` unless the operator set either.
///
/// # Safety
/// It sets environment variables: call it before any other thread starts.
pub unsafe fn find_system_authorities() {
    #[cfg(feature = "bundled-libpq")]
    if !openssl_probe::has_ssl_cert_env_vars() {
        // SAFETY: the caller runs this before any other thread exists.
        unsafe { openssl_probe::try_init_openssl_env_vars() };
    }
}

/// A database URL with its password hidden.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.password() {
            Some(password) => url.replacen(&format!(":{password}@"), ":[redacted]@", 1),
            None => url.to_string(),
        },
        Err(_) => "[an unparseable URL]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{StoredHash, TxError, first_cause};
    use diesel::result::Error;

    fn full() -> Error {
        Error::QueryBuilderError("database or disk is full".into())
    }

    fn no_transaction() -> Error {
        Error::QueryBuilderError("cannot rollback - no transaction is active".into())
    }

    #[test]
    fn a_failed_transaction_reports_its_first_cause_not_the_rollback_after_it() {
        let work = TxError::from(full());
        let failure = first_cause(Err(no_transaction()), Some(work)).unwrap_err();
        assert_eq!(
            failure.error.to_string(),
            "database error: database or disk is full"
        );
        assert!(failure.rollback_failed);

        let commit = Error::RollbackErrorOnCommit {
            rollback_error: Box::new(no_transaction()),
            commit_error: Box::new(full()),
        };
        let failure = first_cause(Err(commit), None).unwrap_err();
        assert_eq!(
            failure.error.to_string(),
            "database error: database or disk is full"
        );
        assert!(failure.rollback_failed);

        let aborted = TxError::Aborted("page 3 failed".into());
        let failure = first_cause(Err(Error::RollbackTransaction), Some(aborted)).unwrap_err();
        assert_eq!(failure.error.to_string(), "page 3 failed");
        assert!(!failure.rollback_failed);

        assert!(first_cause(Ok(()), None).is_ok());
    }

    #[test]
    fn a_stored_sha256_is_held_as_bytes_and_matches_its_hex() {
        let hex = "00ff10a9".repeat(8);
        let stored = StoredHash::new(&hex);
        assert!(matches!(stored, StoredHash::Sha256(_)));
        assert!(stored.matches(&hex));
        assert!(!stored.matches(&"00ff10a8".repeat(8)));
        assert!(!stored.matches(""));
        // A row from before raw hashes existed has '' and never matches one.
        let empty = StoredHash::new("");
        assert!(empty.matches("") && !empty.matches(&hex));
        assert!(std::mem::size_of::<StoredHash>() <= 40);
    }
}
