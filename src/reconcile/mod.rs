//! Deciding what a run changes: the plan, level-triggered.
//!
//! This module owns the comparison of each campaign's **desired** row (what
//! the network's current record, the integration's compiled spec and its
//! update policy say the row should hold) with what is stored, and the
//! decision to converge it: create, update (the columns whose stored value is
//! not the desired one), unchanged, restore, and, once every page has been
//! fetched, removal, guarded against suspected upstream outages. Nothing is
//! compared with what the network said last time: a changed setting, or a
//! row another writer edited (**drift**), is converged like a changed offer.
//!
//! A stored row keeps the hash of the desired row it was last converged to
//! (**applied**, [`Campaign::applied_hash`]: the policy's fingerprint and the
//! campaign's content hash); a trigger in the store marks rows other writers
//! change. A row whose applied hash is this run's and that is not marked is
//! unchanged without being read; any other is read ([`StoredRow`]) and
//! compared column by column ([`Reconciler::resolve`]).
//!
//! The fast path of a run is decided here too ([`fast_entry`]): which kept
//! outcomes stand for what a full parse of their record would plan, so
//! that reusing one never skips convergence.
//!
//! It is pure: it reads a [`StoredIndex`] and stored rows handed to it and
//! returns plans; the sync run reads and writes the store, inside one
//! transaction.

use std::collections::{BTreeSet, HashSet};

use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::campaign::Campaign;
use crate::manifest::model::{Column, ColumnPolicy, OnRemoved, SafetyDef, UpdateDef};
use crate::rules::{Skip, SkipReason};
use crate::store::{RunCounts, StoredIndex, StoredRow, UpdateColumns};

/// One column a write would change: its stored name, the stored value and
/// the desired one, as text, and whether the update policy keeps it as is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnChange {
    pub column: &'static str,
    pub old: String,
    pub new: String,
    pub held_back_by_policy: bool,
}

/// Why a stored row is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The network's record changed.
    UpstreamChanged,
    /// The manifest changed what the row should hold: the update policy,
    /// caps or pause settings, or the rules (payout, defaults, filters…).
    SettingChanged,
    /// A column offersync writes was edited outside offersync.
    Drift,
    /// The offer is back after its campaign was removed.
    Restored,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpstreamChanged => "upstream changed",
            Self::SettingChanged => "setting changed",
            Self::Drift => "drift",
            Self::Restored => "restored",
        }
    }
}

/// The causes of one rewrite as text (`upstream changed, drift`).
pub fn causes_text(causes: &[Cause]) -> String {
    causes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored campaign the plan converges to its desired row.
#[derive(Debug)]
pub struct RowUpdate {
    pub id: i64,
    pub campaign: Campaign,
    pub restore: bool,
    /// The columns the write changes (stored → desired).
    pub changes: Vec<ColumnChange>,
    /// Columns whose stored value differs from the offer's but that the
    /// update policy leaves to the operator.
    pub held_back: Vec<ColumnChange>,
    pub causes: Vec<Cause>,
    /// [`causes_text`] of `causes`, for the change feed.
    pub cause: String,
}

/// What one page changes.
#[derive(Debug, Default)]
pub struct PagePlan {
    pub create: Vec<Campaign>,
    /// Stored campaigns whose row must be read and compared before the plan
    /// knows what to write: (stored id, desired campaign, restore). Emptied
    /// by [`Reconciler::resolve`].
    pub compare: Vec<(i64, Campaign, bool)>,
    pub update: Vec<RowUpdate>,
    /// Campaigns whose stored columns hold their desired values but whose
    /// bookkeeping does not (a new raw record, hash, or a drift mark on a
    /// column the operator owns): only that is rewritten (counted as
    /// unchanged, no change-feed entry).
    pub refresh: Vec<(i64, Campaign)>,
    pub skips: Vec<Skip>,
    /// (external id, warning) of every offer of the page that became a campaign.
    pub warnings: Vec<(String, String)>,
    /// The outcomes of the page's hashed records computed in this run, to
    /// keep for the next run's fast path.
    pub keep: Vec<KeptOutcome>,
    /// Offers of hashed records whose outcome cannot be reused (a warning,
    /// a mapping problem, a failed enrichment): their kept one is dropped.
    pub forget: Vec<String>,
}

/// One record's outcome as a page hands it to the plan.
// As large as the `Result<Campaign, Skip>` a page's outcomes were: boxing
// would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// Computed in this run (mapped, enriched, through the rules), with the
    /// record's hash when the run keeps outcomes.
    Fresh {
        hash: Option<[u8; 32]>,
        outcome: Result<Campaign, Skip>,
    },
    /// A record whose bytes and revision are those of a kept outcome, and
    /// whose row is as that outcome left it: not parsed again.
    Reused(Reused),
}

/// What a record became, kept for the fast path: imported (its row holds
/// the desired state) or skipped by a filter.
/// Compact (24 bytes): a run holds one per reusable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reused {
    pub external_id: Box<str>,
    /// The filter that skipped it and the skip's detail; `None`: imported.
    pub skip: Option<Box<(SkipReason, Box<str>)>>,
}

/// The kept outcomes a run may reuse, by [`crate::mapping::record_hash`].
pub type FastIndex = std::collections::HashMap<[u8; 32], Reused, foldhash::fast::RandomState>;

/// A record's outcome to keep (see [`PagePlan::keep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptOutcome {
    pub record_hash: [u8; 32],
    pub outcome: Reused,
    /// For an imported offer, the applied hash its row now holds.
    pub applied_hash: String,
}

/// The entry of the fast path's index for a kept outcome, when it may be
/// reused: a filter's skip (the same bytes under the same revision are
/// skipped the same way), or an import whose row is still live, not
/// drifted and converged to the applied hash the outcome recorded: a full
/// parse would find it unchanged, with nothing to refresh.
pub fn fast_entry(
    index: &StoredIndex,
    kept: crate::store::StoredOutcome,
) -> Option<([u8; 32], Reused)> {
    let crate::store::StoredHash::Sha256(hash) = crate::store::StoredHash::new(&kept.record_hash)
    else {
        return None;
    };
    let skip = match kept.skip_reason.as_deref() {
        Some(name) => {
            let reason = SkipReason::from_name(name).filter(|r| r.is_filter())?;
            Some(Box::new((reason, kept.detail.into_boxed_str())))
        }
        None => {
            let stored = index.get(&kept.external_id)?;
            let converged = !stored.removed
                && !stored.drifted
                && !kept.applied_hash.is_empty()
                && stored.applied_hash.matches(&kept.applied_hash);
            if !converged {
                return None;
            }
            None
        }
    };
    Some((
        hash,
        Reused {
            external_id: kept.external_id.into_boxed_str(),
            skip,
        },
    ))
}

impl PagePlan {
    /// The stored ids [`Reconciler::resolve`] needs the rows of.
    pub fn ids_to_compare(&self) -> Vec<i64> {
        self.compare.iter().map(|(id, _, _)| *id).collect()
    }
}

/// Campaigns whose offers are gone upstream, and those whose offers the
/// Integration's filters now skip.
#[derive(Debug, Default, Serialize)]
pub struct Removal {
    pub ids: Vec<i64>,
    pub external_ids: Vec<String>,
    /// Pause them (`on_removed: pause`) or only mark them removed (`keep`).
    pub pause: bool,
    pub filtered_ids: Vec<i64>,
    pub filtered_external_ids: Vec<String>,
    /// `on_filtered: pause`.
    pub pause_filtered: bool,
}

/// Why a run was refused rather than applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the feed returned no offers: refusing to treat every campaign as removed (suspected upstream outage); set safety.allow_empty_feed: true if an empty feed is expected"
    )]
    EmptyFeed,
    #[error(
        "the feed returned no offers on the integration's first run: nothing to import (suspected upstream outage or a wrong request); check the Network's base_url and records path with `offersync fetch`, or set safety.allow_empty_feed: true if an empty feed is expected"
    )]
    EmptyFirstFeed,
    #[error(
        "the run would remove {removing} of {live} live campaigns ({share}%), more than safety.max_removed_share allows ({allowed}%): suspected upstream outage; if the offers really are gone, sync once with --accept-removals"
    )]
    TooManyRemoved {
        removing: usize,
        live: usize,
        share: Decimal,
        allowed: Decimal,
    },
    #[error(
        "the feed lists {listed} offers, {share}% fewer than the {high_water} it listed in a successful run in the last {window_days} days, more than safety.max_removed_share allows ({allowed}%): the feed is shrinking run by run, a suspected upstream fault; if the offers really are gone, sync once with --accept-removals"
    )]
    Shrinking {
        listed: usize,
        high_water: usize,
        share: Decimal,
        allowed: Decimal,
        window_days: u32,
    },
    #[error(
        "{duplicates} of the {fetched} records fetched repeat an id seen earlier in the run ({share}%, more than safety.max_duplicate_share allows: {allowed}%): the network's pagination repeats records and may hide others, so nothing was kept or removed; raise the share if the feed really lists offers twice"
    )]
    Duplicates {
        duplicates: u32,
        fetched: u32,
        share: Decimal,
        allowed: Decimal,
    },
}

/// What the removal guard compares a run with, besides the live campaigns.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemovalGuard {
    /// The most offers the feed listed in a successful run in the guard
    /// window (upstream's size: offers the filters skip count too, so that
    /// narrowing a filter is no shrinkage).
    pub high_water: Option<usize>,
    /// An operator's deliberate run: the removal-share guards do not apply.
    pub accept_removals: bool,
}

/// A feed may list an offer twice; a broken pager repeats a whole page. Fewer
/// repeated ids than this never fail a run, whatever their share.
pub const SUSPICIOUS_DUPLICATES: u32 = 5;

/// `part` of `whole` as a percentage, when that share is more than `limit`.
fn share_over(
    part: impl Into<Decimal>,
    whole: impl Into<Decimal>,
    limit: Decimal,
) -> Option<Decimal> {
    let (part, whole) = (part.into(), whole.into());
    if part.is_zero() || whole.is_zero() {
        return None;
    }
    let share = part / whole;
    (share > limit).then(|| percent(share))
}

fn percent(d: Decimal) -> Decimal {
    (d * Decimal::ONE_HUNDRED).round_dp(1).normalize()
}

/// The plan of one run, built page by page.
#[derive(Debug)]
pub struct Reconciler<'a> {
    index: StoredIndex,
    update: &'a UpdateDef,
    columns: UpdateColumns,
    /// The stored columns an update writes and compares (status aside when
    /// it only follows upstream pauses).
    compared: Vec<&'static str>,
    /// The policy's fingerprint, hashed with each campaign's content hash.
    fingerprint: Sha256,
    /// What a policy change since the last applied run was, in the
    /// manifest's words (`update.columns.name → always`), if any.
    policy_change: Option<String>,
    /// With `request.select_ids`, the feed lists only the selected offers:
    /// a stored campaign outside the selection is filtered, not gone.
    fetched_by_id: Option<BTreeSet<String>>,
    seen: HashSet<String, foldhash::fast::RandomState>,
    /// Ids of offers that failed to map or enrich: not imported, but not
    /// treated as gone either (their campaigns are left as they are).
    kept: HashSet<String, foldhash::fast::RandomState>,
    /// Ids of offers upstream that the Integration's filters skipped.
    filtered: HashSet<String, foldhash::fast::RandomState>,
    pub counts: RunCounts,
}

impl<'a> Reconciler<'a> {
    pub fn new(index: StoredIndex, update: &'a UpdateDef, caps_update: bool) -> Self {
        let columns = Self::update_columns(update, caps_update);
        let mut compared: Vec<&'static str> = vec!["advertiser"];
        compared.extend(
            columns
                .columns
                .iter()
                .flat_map(|c| crate::store::db_columns(*c)),
        );
        if columns.caps {
            compared.extend(["caps", "cap_settings"]);
        }
        let mut fingerprint = Sha256::new();
        fingerprint.update(columns.fingerprint().as_bytes());
        fingerprint.update(b"\n");
        Self {
            index,
            update,
            columns,
            compared,
            fingerprint,
            policy_change: None,
            fetched_by_id: None,
            seen: HashSet::default(),
            kept: HashSet::default(),
            filtered: HashSet::default(),
            counts: RunCounts::default(),
        }
    }

    /// The policy (fingerprint) the last applied run converged rows to.
    pub fn after_policy(mut self, previous: Option<&str>) -> Self {
        self.policy_change = previous.and_then(|p| policy_change(p, &self.columns.fingerprint()));
        self
    }

    /// The feed is fetched by id (`request.select_ids`) for these offers.
    pub fn fetching_by_id(mut self, selected: &BTreeSet<String>) -> Self {
        if !selected.is_empty() {
            self.fetched_by_id = Some(selected.clone());
        }
        self
    }

    /// The columns updates may write: those whose policy is `always`.
    pub fn update_columns(update: &UpdateDef, caps: bool) -> UpdateColumns {
        UpdateColumns {
            columns: Column::ALL
                .into_iter()
                .filter(|c| update.policy(*c) == ColumnPolicy::Always)
                .collect(),
            caps,
            follow_upstream_pauses: update.follow_upstream_pauses,
        }
    }

    /// The policy this run writes under.
    pub fn columns(&self) -> &UpdateColumns {
        &self.columns
    }

    /// The hash of the row `campaign` converges a stored one to under this
    /// run's policy.
    #[cfg(test)]
    fn applied_hash(&self, campaign: &Campaign) -> String {
        crate::campaign::hex(&self.applied_digest(campaign))
    }

    /// [`Reconciler::applied_hash`] as bytes: compared with the stored one
    /// without formatting it, on the path every unchanged campaign takes.
    fn applied_digest(&self, campaign: &Campaign) -> [u8; 32] {
        let mut hasher = self.fingerprint.clone();
        hasher.update(campaign.content_hash.as_bytes());
        hasher.finalize().into()
    }

    /// Plans one page's outcomes (campaigns, or skips from rules and
    /// mapping). Stored campaigns that may differ from their desired row are
    /// left in `compare`, for [`Reconciler::resolve`] with their rows.
    pub fn plan_page(&mut self, outcomes: Vec<Result<Campaign, Skip>>) -> PagePlan {
        self.plan_records(
            outcomes
                .into_iter()
                .map(|outcome| Outcome::Fresh {
                    hash: None,
                    outcome,
                })
                .collect(),
        )
    }

    /// [`Reconciler::plan_page`] of records computed in this run or reused
    /// (counted, logged and planned exactly as the outcome they reuse), in
    /// the page's order; the hashed fresh ones' outcomes go to
    /// [`PagePlan::keep`] or [`PagePlan::forget`].
    pub fn plan_records(&mut self, records: Vec<Outcome>) -> PagePlan {
        let mut plan = PagePlan::default();
        for record in records {
            let (hash, outcome) = match record {
                Outcome::Fresh { hash, outcome } => (hash, outcome),
                Outcome::Reused(reused) => {
                    self.plan_reused(reused, &mut plan);
                    continue;
                }
            };
            let mut campaign = match outcome {
                Ok(c) => c,
                Err(skip) => {
                    if let (Some(hash), Some(id)) = (hash, &skip.external_id) {
                        if skip.reason.is_filter() {
                            plan.keep.push(KeptOutcome {
                                record_hash: hash,
                                outcome: Reused {
                                    external_id: id.as_str().into(),
                                    skip: Some(Box::new((
                                        skip.reason,
                                        skip.detail.as_str().into(),
                                    ))),
                                },
                                applied_hash: String::new(),
                            });
                        } else if skip.reason != SkipReason::DuplicateId {
                            plan.forget.push(id.clone());
                        }
                    }
                    if let Some(id) = &skip.external_id
                        && matches!(
                            skip.reason,
                            SkipReason::MappingProblem | SkipReason::EnrichFailed
                        )
                    {
                        self.kept.insert(id.clone());
                    }
                    if let Some(id) = &skip.external_id
                        && skip.reason.is_filter()
                    {
                        self.filtered.insert(id.clone());
                    }
                    self.counts.skip(skip.reason);
                    plan.skips.push(skip);
                    continue;
                }
            };
            if !self.seen.insert(campaign.external_id.clone()) {
                self.counts.skip(SkipReason::DuplicateId);
                plan.skips.push(Skip {
                    external_id: Some(campaign.external_id),
                    reason: SkipReason::DuplicateId,
                    detail: "an earlier record of this run had the same id".into(),
                });
                continue;
            }
            let stored_row = self.index.contains_key(&campaign.external_id);
            for warning in &campaign.warnings {
                self.counts.warnings += 1;
                let warning = if stored_row {
                    kept_warning(warning, &campaign.unreadable)
                } else {
                    warning.clone()
                };
                plan.warnings.push((campaign.external_id.clone(), warning));
            }
            let digest = self.applied_digest(&campaign);
            let hex = || crate::campaign::hex(&digest);
            if let Some(hash) = hash {
                if campaign.warnings.is_empty() {
                    plan.keep.push(KeptOutcome {
                        record_hash: hash,
                        outcome: Reused {
                            external_id: campaign.external_id.as_str().into(),
                            skip: None,
                        },
                        applied_hash: hex(),
                    });
                } else {
                    // A warning's text depends on the stored row (kept or
                    // left empty): such a record is always mapped again.
                    plan.forget.push(campaign.external_id.clone());
                }
            }
            match self.index.get(&campaign.external_id) {
                None => {
                    self.counts.created += 1;
                    campaign.applied_hash = hex();
                    blank_never_columns(&mut campaign, self.update);
                    plan.create.push(campaign);
                }
                Some(stored) if stored.removed => {
                    campaign.applied_hash = hex();
                    plan.compare.push((stored.id, campaign, true));
                }
                Some(stored) if !stored.drifted && stored.applied_hash.matches_digest(&digest) => {
                    self.counts.unchanged += 1;
                    if !stored.raw_hash.matches(&campaign.raw_hash) {
                        campaign.applied_hash = hex();
                        plan.refresh.push((stored.id, campaign));
                    }
                }
                Some(stored) => {
                    campaign.applied_hash = hex();
                    plan.compare.push((stored.id, campaign, false));
                }
            }
        }
        plan
    }

    /// A reused outcome, planned as [`Reconciler::plan_records`] plans the
    /// outcome it stands for: a skip, a duplicate, or an unchanged row.
    fn plan_reused(&mut self, reused: Reused, plan: &mut PagePlan) {
        let Reused { external_id, skip } = reused;
        let external_id = String::from(external_id);
        if let Some(skip) = skip {
            let (reason, detail) = *skip;
            // Only a filter's skips are reused.
            self.filtered.insert(external_id.clone());
            self.counts.skip(reason);
            plan.skips.push(Skip {
                external_id: Some(external_id),
                reason,
                detail: detail.into(),
            });
            return;
        }
        if self.seen.contains(&external_id) {
            self.counts.skip(SkipReason::DuplicateId);
            plan.skips.push(Skip {
                external_id: Some(external_id),
                reason: SkipReason::DuplicateId,
                detail: "an earlier record of this run had the same id".into(),
            });
            return;
        }
        self.seen.insert(external_id);
        self.counts.unchanged += 1;
    }

    /// Compares each campaign of `plan.compare` with its stored row (`rows`,
    /// in any order) and moves it to `update` (some column to converge, or
    /// a restore) or `refresh` (nothing the platform reads differs).
    pub fn resolve(&mut self, plan: &mut PagePlan, rows: Vec<StoredRow>) {
        let mut rows: std::collections::HashMap<i64, StoredRow> =
            rows.into_iter().map(|row| (row.id, row)).collect();
        for (id, campaign, restore) in std::mem::take(&mut plan.compare) {
            let Some(row) = rows.remove(&id) else {
                // Gone since the index was read (not possible under the run
                // lock): leave it as it is.
                self.counts.unchanged += 1;
                continue;
            };
            let stored_applied = self
                .index
                .get(&campaign.external_id)
                .map(|s| s.applied_hash.clone());
            match self.compare(&row, &campaign, restore, stored_applied) {
                Some((changes, held_back, causes)) => {
                    let mut cause = causes_text(&causes);
                    if let Some(change) = self
                        .policy_change
                        .as_ref()
                        .filter(|_| causes.contains(&Cause::SettingChanged))
                    {
                        cause =
                            cause.replace("setting changed", &format!("setting changed: {change}"));
                    }
                    self.counts.updated += 1;
                    if restore {
                        self.counts.restored += 1;
                    }
                    if causes.contains(&Cause::Drift) {
                        self.counts.drift_corrected += 1;
                    }
                    plan.update.push(RowUpdate {
                        id,
                        campaign,
                        restore,
                        changes,
                        held_back,
                        cause,
                        causes,
                    });
                }
                None => {
                    self.counts.unchanged += 1;
                    plan.refresh.push((id, campaign));
                }
            }
        }
    }

    /// [`Reconciler::resolve`] with the rows `read` returns for the plan's
    /// ids (read only when there are any).
    pub fn resolve_reading<E>(
        &mut self,
        plan: &mut PagePlan,
        read: impl FnOnce(&[i64]) -> Result<Vec<StoredRow>, E>,
    ) -> Result<(), E> {
        let ids = plan.ids_to_compare();
        if !ids.is_empty() {
            let rows = read(&ids)?;
            self.resolve(plan, rows);
        }
        Ok(())
    }

    /// What converging `row` to `campaign` changes (the columns written,
    /// those the policy holds back, why); `None` when nothing.
    pub fn compare(
        &self,
        row: &StoredRow,
        campaign: &Campaign,
        restore: bool,
        stored_applied: Option<crate::store::StoredHash>,
    ) -> Option<(Vec<ColumnChange>, Vec<ColumnChange>, Vec<Cause>)> {
        let changes = converging_changes(row, campaign, &self.columns, &self.compared, restore);
        if changes.is_empty() && !restore {
            return None;
        }
        let held_back = held_back_changes(row, campaign, &self.columns, &self.compared);
        let mut causes = Vec::new();
        if restore {
            causes.push(Cause::Restored);
        }
        let content_changed = row.content_hash != campaign.content_hash;
        if content_changed && row.raw_hash != campaign.raw_hash {
            causes.push(Cause::UpstreamChanged);
        } else if content_changed
            || !stored_applied.is_some_and(|h| h.matches(&campaign.applied_hash))
        {
            causes.push(Cause::SettingChanged);
        }
        if row.drifted {
            causes.push(Cause::Drift);
        }
        Some((changes, held_back, causes))
    }

    /// The differences between `row` and `campaign` the update policy holds back.
    pub fn held_back(&self, row: &StoredRow, campaign: &Campaign) -> Vec<ColumnChange> {
        held_back_changes(row, campaign, &self.columns, &self.compared)
    }

    /// The stored index entry of an offer.
    pub fn stored(&self, external_id: &str) -> Option<&crate::store::StoredCampaign> {
        self.index.get(external_id)
    }

    /// Once every page was fetched: the ids of `selected` that no record of
    /// the feed had, each a skip (`not_in_feed`) for the run log.
    pub fn missing_selected(&mut self, selected: &std::collections::BTreeSet<String>) -> Vec<Skip> {
        let missing: Vec<Skip> = selected
            .iter()
            .filter(|id| {
                !self.seen.contains(*id) && !self.kept.contains(*id) && !self.filtered.contains(*id)
            })
            .map(|id| Skip {
                external_id: Some(id.clone()),
                reason: SkipReason::NotInFeed,
                detail: "selected in filters.offers, but the feed does not list it".into(),
            })
            .collect();
        for _ in &missing {
            self.counts.skip(SkipReason::NotInFeed);
        }
        missing
    }

    /// Once every page was fetched: the campaigns whose offers are gone,
    /// unless that looks like an upstream fault rather than a change (an
    /// empty feed, a pager repeating records, too many removed at once or
    /// over the recent runs).
    pub fn removals(
        &mut self,
        on_removed: OnRemoved,
        on_filtered: OnRemoved,
        safety: &SafetyDef,
        guard: RemovalGuard,
    ) -> Result<Removal, Refusal> {
        if self.counts.fetched == 0 && !safety.allow_empty_feed {
            return Err(if self.index.values().any(|s| !s.removed) {
                Refusal::EmptyFeed
            } else {
                Refusal::EmptyFirstFeed
            });
        }
        let duplicates = self
            .counts
            .skipped_by_reason
            .get(&SkipReason::DuplicateId)
            .copied()
            .unwrap_or(0);
        let fetched = self.counts.fetched;
        if duplicates >= SUSPICIOUS_DUPLICATES
            && let Some(share) = share_over(duplicates, fetched, safety.max_duplicate_share)
        {
            return Err(Refusal::Duplicates {
                duplicates,
                fetched,
                share,
                allowed: percent(safety.max_duplicate_share),
            });
        }
        let live = self.index.values().filter(|s| !s.removed).count();
        let mut removal = Removal {
            pause: on_removed == OnRemoved::Pause,
            pause_filtered: on_filtered == OnRemoved::Pause,
            ..Removal::default()
        };
        for (external_id, stored) in &self.index {
            if stored.removed || self.seen.contains(external_id) || self.kept.contains(external_id)
            {
                continue;
            }
            // Still upstream, skipped by this integration's own filters (or
            // outside the selection a feed fetched by id asks for): not
            // gone, so no part of the outage guards.
            let unselected = self
                .fetched_by_id
                .as_ref()
                .is_some_and(|selected| !selected.contains(external_id));
            if self.filtered.contains(external_id) || unselected {
                removal.filtered_ids.push(stored.id);
                removal.filtered_external_ids.push(external_id.clone());
            } else {
                removal.ids.push(stored.id);
                removal.external_ids.push(external_id.clone());
            }
        }
        removal.external_ids.sort();
        removal.filtered_external_ids.sort();
        let removing = removal.ids.len();
        let listed = (fetched - duplicates) as usize;
        let allowed = safety.max_removed_share;
        if removing > 0 && !guard.accept_removals {
            if let Some(share) = share_over(removing, live, allowed) {
                return Err(Refusal::TooManyRemoved {
                    removing,
                    live,
                    share,
                    allowed: percent(allowed),
                });
            }
            // A feed fetched by id lists the selection, not upstream: it is
            // measured against what it was asked for.
            let high_water = match &self.fetched_by_id {
                Some(selected) => guard.high_water.unwrap_or(0).min(selected.len()),
                None => guard.high_water.unwrap_or(0),
            };
            if let Some(share) = share_over(high_water.saturating_sub(listed), high_water, allowed)
            {
                return Err(Refusal::Shrinking {
                    listed,
                    high_water,
                    share,
                    allowed: percent(allowed),
                    window_days: safety.shrink_window_days,
                });
            }
        }
        self.counts.removed = removing as u32;
        self.counts.filtered = removal.filtered_ids.len() as u32;
        self.counts.listed = listed as u32;
        Ok(removal)
    }
}

/// What changed between two policy fingerprints
/// ([`UpdateColumns::fingerprint`]), in the manifest's words:
/// `update.columns.name → always, caps.update → true`.
fn policy_change(old: &str, new: &str) -> Option<String> {
    let parse = |text: &str| -> std::collections::BTreeMap<String, String> {
        text.split(';')
            .filter_map(|part| part.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (old, new) = (parse(old), parse(new));
    let always = |m: &std::collections::BTreeMap<String, String>| -> BTreeSet<String> {
        m.get("always")
            .map(|v| {
                v.split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (was, is) = (always(&old), always(&new));
    let mut parts: Vec<String> = is
        .difference(&was)
        .map(|c| format!("update.columns.{c} → always"))
        .chain(
            was.difference(&is)
                .map(|c| format!("update.columns.{c} → no longer always")),
        )
        .collect();
    for key in ["caps.update", "follow_upstream_pauses"] {
        let setting = if key == "caps.update" {
            key.to_string()
        } else {
            format!("update.{key}")
        };
        if let (Some(a), Some(b)) = (old.get(key), new.get(key))
            && a != b
        {
            parts.push(format!("{setting} {a} → {b}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// An unreadable field's warning as it reads for a campaign already stored,
/// which keeps its value rather than being left empty (`mapping`'s warnings
/// end in [`crate::mapping::LEFT_EMPTY`]); any other warning as it is.
fn kept_warning(warning: &str, unreadable: &[&'static str]) -> String {
    let about_unreadable = unreadable.iter().any(|field| {
        warning
            .strip_prefix("field ")
            .and_then(|rest| rest.strip_prefix(field))
            .is_some_and(|rest| rest.starts_with(':'))
    });
    match warning.strip_suffix(crate::mapping::LEFT_EMPTY) {
        Some(stem) if about_unreadable => format!(
            "{stem}; the stored value is kept (a value that cannot be read is not the network's word: only a null or empty value empties it)"
        ),
        _ => warning.to_string(),
    }
}

/// A compared value as `plan` shows it.
fn shown_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn column_change(
    column: &'static str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    held_back_by_policy: bool,
) -> ColumnChange {
    ColumnChange {
        column,
        old: shown_value(old),
        new: shown_value(new),
        held_back_by_policy,
    }
}

/// The columns converging `row` to `campaign` writes with another value:
/// the compared columns, the status where it follows upstream pauses or
/// comes back from a removal's pause, and the removal a restore undoes.
fn converging_changes(
    row: &StoredRow,
    campaign: &Campaign,
    columns: &UpdateColumns,
    compared: &[&'static str],
    restore: bool,
) -> Vec<ColumnChange> {
    let mut changes = Vec::new();
    for &column in compared {
        if campaign.keeps(column) {
            continue;
        }
        let desired = campaign
            .column_value(column)
            .unwrap_or(serde_json::Value::Null);
        let stored = row.value(column);
        if *stored != desired {
            changes.push(column_change(column, stored, &desired, false));
        }
    }
    if !compared.contains(&"status") {
        let stored = row.value("status").as_str().unwrap_or_default();
        let paused_by_offersync = || {
            (stored == "paused")
                .then(|| row.status_before_pause.clone())
                .flatten()
        };
        // What `store::rows::{restore_sql, upstream_pause_sql}` write.
        let desired = if columns.follow_upstream_pauses && campaign.upstream_inactive {
            (!restore && stored != "paused").then(|| "paused".to_string())
        } else if restore || columns.follow_upstream_pauses {
            paused_by_offersync()
        } else {
            None
        };
        if let Some(desired) = desired.filter(|d| d != stored) {
            changes.push(ColumnChange {
                column: "status",
                old: stored.to_string(),
                new: desired,
                held_back_by_policy: false,
            });
        }
    }
    if restore {
        changes.push(column_change(
            "removed_at",
            row.value("removed_at"),
            &serde_json::Value::Null,
            false,
        ));
    }
    changes
}

/// The campaign columns whose stored value differs from the offer's but
/// that the update policy leaves as they are.
fn held_back_changes(
    row: &StoredRow,
    campaign: &Campaign,
    columns: &UpdateColumns,
    compared: &[&'static str],
) -> Vec<ColumnChange> {
    Column::ALL
        .iter()
        .flat_map(|c| crate::store::db_columns(*c).iter().copied())
        .chain(["caps", "cap_settings"])
        .filter(|column| !compared.contains(column))
        .filter(|column| !(*column == "status" && columns.follow_upstream_pauses))
        .filter(|column| !campaign.keeps(column))
        .filter_map(|column| {
            let desired = campaign.column_value(column)?;
            let stored = row.value(column);
            (*stored != desired).then(|| column_change(column, stored, &desired, true))
        })
        .collect()
}

/// `never` columns are left empty on create. Only columns whose emptiness
/// narrows nothing may be `never` (validation refuses it on the others: an
/// empty country list, OS list, payout, link or schedule would widen or
/// break the campaign); should one reach here all the same, it is written
/// at creation, never blanked, so no manifest makes a row wider than its offer.
fn blank_never_columns(c: &mut Campaign, update: &UpdateDef) {
    for column in Column::ALL {
        if update.policy(column) != ColumnPolicy::Never {
            continue;
        }
        match column {
            Column::PreviewUrl => c.preview_url = None,
            Column::ImpressionUrl => c.impression_url = None,
            Column::ThumbnailUrl => c.thumbnail_url = None,
            Column::Category => c.category = None,
            Column::Description => c.description = None,
            Column::Kpi => c.kpi = None,
            Column::Payouts => c.payouts.clear(),
            Column::Objective => c.objective = None,
            Column::Name
            | Column::Status
            | Column::Visibility
            | Column::Redirect
            | Column::TrackingUrl
            | Column::Revenue
            | Column::Payout
            | Column::Currency
            | Column::Model
            | Column::Countries
            | Column::Os
            | Column::Dates
            | Column::Settings => {}
        }
    }
}

#[cfg(test)]
mod tests;
