//! Deciding what a run changes: the plan.
//!
//! This module owns the comparison of desired campaigns with what is stored
//! ([`Reconciler`]): create, update (in the columns the policy allows),
//! unchanged (same content hash: no write), restore, and, once every page
//! has been fetched, removal, guarded against suspected upstream outages.
//! It is pure: it reads a [`StoredIndex`] and returns plans; the sync run
//! hands the plans to the store, inside one transaction.

use std::collections::HashSet;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::campaign::Campaign;
use crate::manifest::model::{Column, ColumnPolicy, OnRemoved, SafetyDef, UpdateDef};
use crate::rules::{Skip, SkipReason};
use crate::store::{RunCounts, StoredIndex, UpdateColumns};

/// One column a write would change: its manifest name, the stored value
/// and the new one, as text, and whether the update policy keeps it as is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnChange {
    pub column: &'static str,
    pub old: String,
    pub new: String,
    pub held_back_by_policy: bool,
}

/// The columns of a stored campaign that `campaign` would change (those the
/// store reads back: name, status, revenue, payout, currency, tracking URL,
/// category, countries), marking those `columns` (the update policy) does
/// not let an update write.
pub fn column_changes(
    stored: &crate::store::CampaignRecord,
    campaign: &Campaign,
    columns: &crate::store::UpdateColumns,
) -> Vec<ColumnChange> {
    let text = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let decimal = |d: Option<rust_decimal::Decimal>| text(d.map(|d| d.normalize().to_string()));
    let allowed = |name: &str| columns.columns.iter().any(|c| c.name() == name);
    [
        ("name", stored.name.clone(), campaign.name.clone()),
        (
            "status",
            stored.status.clone(),
            campaign.status.as_str().to_string(),
        ),
        (
            "revenue",
            decimal(stored.revenue),
            decimal(campaign.revenue),
        ),
        ("payout", decimal(stored.payout), decimal(campaign.payout)),
        (
            "currency",
            text(stored.currency.clone()),
            text(campaign.currency.clone()),
        ),
        (
            "tracking_url",
            text(stored.tracking_url.clone()),
            text(campaign.tracking_url.clone()),
        ),
        (
            "category",
            text(stored.category.clone()),
            text(campaign.category.clone()),
        ),
        (
            "countries",
            stored.countries.to_string(),
            serde_json::json!(campaign.countries).to_string(),
        ),
    ]
    .into_iter()
    .filter(|(_, old, new)| old != new)
    .map(|(column, old, new)| ColumnChange {
        column,
        old,
        new,
        held_back_by_policy: !allowed(column),
    })
    .collect()
}

/// What one page changes.
#[derive(Debug, Default)]
pub struct PagePlan {
    pub create: Vec<Campaign>,
    /// (stored id, desired campaign, restore).
    pub update: Vec<(i64, Campaign, bool)>,
    /// Campaigns whose mapped values did not change but whose raw record
    /// did: only the raw record is rewritten (counted as unchanged).
    pub raw_only: Vec<(i64, Campaign)>,
    pub skips: Vec<Skip>,
}

impl PagePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.update.is_empty()
            && self.raw_only.is_empty()
            && self.skips.is_empty()
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
    seen: HashSet<String, foldhash::fast::RandomState>,
    /// Ids of offers that failed to map or enrich: not imported, but not
    /// treated as gone either (their campaigns are left as they are).
    kept: HashSet<String, foldhash::fast::RandomState>,
    /// Ids of offers upstream that the Integration's filters skipped.
    filtered: HashSet<String, foldhash::fast::RandomState>,
    pub counts: RunCounts,
}

impl<'a> Reconciler<'a> {
    pub fn new(index: StoredIndex, update: &'a UpdateDef) -> Self {
        Self {
            index,
            update,
            seen: HashSet::default(),
            kept: HashSet::default(),
            filtered: HashSet::default(),
            counts: RunCounts::default(),
        }
    }

    /// The columns updates may write: those whose policy is `always`.
    pub fn update_columns(update: &UpdateDef, caps: bool) -> UpdateColumns {
        UpdateColumns {
            columns: ALL_COLUMNS
                .into_iter()
                .filter(|c| update.policy(*c) == ColumnPolicy::Always)
                .collect(),
            caps,
            follow_upstream_pauses: update.follow_upstream_pauses,
        }
    }

    /// Plans one page's outcomes (campaigns, or skips from rules and mapping).
    pub fn plan_page(&mut self, outcomes: Vec<Result<Campaign, Skip>>) -> PagePlan {
        let mut plan = PagePlan::default();
        for outcome in outcomes {
            let mut campaign = match outcome {
                Ok(c) => c,
                Err(skip) => {
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
            match self.index.get(&campaign.external_id) {
                None => {
                    self.counts.created += 1;
                    blank_never_columns(&mut campaign, self.update);
                    plan.create.push(campaign);
                }
                Some(stored) if stored.removed => {
                    self.counts.updated += 1;
                    self.counts.restored += 1;
                    plan.update.push((stored.id, campaign, true));
                }
                Some(stored) if stored.content_hash.matches(&campaign.content_hash) => {
                    self.counts.unchanged += 1;
                    if !stored.raw_hash.matches(&campaign.raw_hash) {
                        plan.raw_only.push((stored.id, campaign));
                    }
                }
                Some(stored) => {
                    self.counts.updated += 1;
                    plan.update.push((stored.id, campaign, false));
                }
            }
        }
        plan
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
            return Err(Refusal::EmptyFeed);
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
            // Still upstream, skipped by this integration's own filters: not
            // gone, so no part of the outage guards.
            if self.filtered.contains(external_id) {
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
            let high_water = guard.high_water.unwrap_or(0);
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

const ALL_COLUMNS: [Column; 21] = [
    Column::Name,
    Column::Status,
    Column::Visibility,
    Column::PreviewUrl,
    Column::TrackingUrl,
    Column::ImpressionUrl,
    Column::Revenue,
    Column::Payout,
    Column::Currency,
    Column::Model,
    Column::Countries,
    Column::Os,
    Column::Category,
    Column::Description,
    Column::Kpi,
    Column::ThumbnailUrl,
    Column::Payouts,
    Column::Dates,
    Column::Redirect,
    Column::Objective,
    Column::Settings,
];

/// `never` columns are left empty on create. Name, status, visibility and
/// redirect cannot be empty, so for them `never` means `on_create`.
fn blank_never_columns(c: &mut Campaign, update: &UpdateDef) {
    for column in ALL_COLUMNS {
        if update.policy(column) != ColumnPolicy::Never {
            continue;
        }
        match column {
            Column::PreviewUrl => c.preview_url = None,
            Column::TrackingUrl => c.tracking_url = None,
            Column::ImpressionUrl => c.impression_url = None,
            Column::Revenue => c.revenue = None,
            Column::Payout => {
                c.payout = None;
                c.publisher_payouts.clear();
            }
            Column::Currency => c.currency = None,
            Column::Model => c.model = None,
            Column::Countries => {
                c.countries.clear();
                c.blocked_countries.clear();
            }
            Column::Os => c.os.clear(),
            Column::Category => c.category = None,
            Column::Description => c.description = None,
            Column::Kpi => c.kpi = None,
            Column::ThumbnailUrl => c.thumbnail_url = None,
            Column::Payouts => c.payouts.clear(),
            Column::Dates => {
                c.starts_at = None;
                c.expires_at = None;
            }
            Column::Objective => c.objective = None,
            Column::Settings => c.settings = "{}".into(),
            Column::Name | Column::Status | Column::Visibility | Column::Redirect => {}
        }
    }
}

#[cfg(test)]
mod tests;
