//! What both backends share: the campaign columns an update may write, and
//! run-log rows as read back.

use chrono::{DateTime, Utc};

use super::RunRecord;
use crate::campaign::Campaign;
use crate::manifest::model::Column;

/// The database columns a campaign column is stored in.
pub fn db_columns(column: Column) -> &'static [&'static str] {
    match column {
        Column::Name => &["name"],
        Column::Status => &["status"],
        Column::Visibility => &["visibility"],
        Column::PreviewUrl => &["preview_url"],
        Column::TrackingUrl => &["tracking_url"],
        Column::ImpressionUrl => &["impression_url"],
        Column::Revenue => &["revenue", "revenue_max"],
        Column::Payout => &["payout", "payout_kind", "payout_max"],
        Column::Currency => &["currency"],
        Column::Model => &["model", "models"],
        Column::Countries => &["countries", "blocked_countries"],
        Column::Os => &["os", "blocked_os", "devices", "min_os_version"],
        Column::Category => &["category"],
        Column::Description => &["description"],
        Column::Kpi => &["kpi"],
        Column::ThumbnailUrl => &["thumbnail_url"],
        Column::Payouts => &["payouts"],
        Column::Dates => &["starts_at", "expires_at"],
        Column::Redirect => &["redirect"],
        Column::Objective => &["objective"],
        Column::Settings => &["settings"],
    }
}

/// Every column an update binds, in order: the bookkeeping columns, those
/// the policy allows, and the caps when `caps.update`.
pub(super) fn update_set(allowed: &super::UpdateColumns) -> Vec<&'static str> {
    let mut set: Vec<&'static str> = vec![
        "advertiser",
        "raw",
        "content_hash",
        "raw_hash",
        "applied_hash",
    ];
    set.extend(allowed.columns.iter().flat_map(|c| db_columns(*c)));
    if allowed.caps {
        set.extend(["caps", "cap_settings"]);
    }
    set
}

/// What a restore adds to an update's SET list (no binds): the removal is
/// undone, and no more. Where the status column follows upstream it was
/// bound already; where it is protected, a status the removal paused goes
/// back to what it was (an operator's own pause, or a status the operator
/// set since, stays).
pub(super) fn restore_sql(
    set: &[&str],
    allowed: &super::UpdateColumns,
    c: &Campaign,
) -> &'static str {
    if set.contains(&"status") {
        ", removed_at = NULL, removed_as = NULL, status_before_pause = NULL"
    } else if allowed.follow_upstream_pauses && c.upstream_inactive {
        // Back, but inactive upstream: it stays paused until the offer runs.
        ", removed_at = NULL, removed_as = NULL"
    } else {
        ", removed_at = NULL, removed_as = NULL, status_before_pause = NULL, \
         status = CASE WHEN status = 'paused' THEN COALESCE(status_before_pause, status) ELSE status END"
    }
}

/// What an update that is no restore adds to its SET list (no binds) for a
/// protected status that follows upstream pauses: an offer inactive upstream
/// pauses the campaign (remembering the status it replaces), an active one
/// puts back what such a pause replaced; the operator's own pause stays.
pub(super) fn upstream_pause_sql(
    set: &[&str],
    allowed: &super::UpdateColumns,
    c: &Campaign,
) -> &'static str {
    if set.contains(&"status") || !allowed.follow_upstream_pauses {
        ""
    } else if c.upstream_inactive {
        ", status_before_pause = CASE WHEN status <> 'paused' THEN status ELSE status_before_pause END, \
         status = 'paused'"
    } else {
        ", status = CASE WHEN status = 'paused' THEN COALESCE(status_before_pause, status) ELSE status END, \
         status_before_pause = NULL"
    }
}

diesel::define_sql_function! {
    /// SQL's `lower(text)`: a search that ignores case, the same on both backends.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The bookkeeping a refresh rewrites (a campaign whose stored columns
/// already hold their desired values).
pub(super) const BOOKKEEPING_SET: [&str; 4] = ["raw", "raw_hash", "content_hash", "applied_hash"];

/// What every write of offersync's own adds to its SET list (no binds): the
/// row holds what offersync wrote, and the bumped token keeps the drift
/// trigger (migration `level_triggered`) from marking the write as another
/// writer's.
pub(super) const OWN_WRITE_SQL: &str = ", drifted = FALSE, write_token = write_token + 1";

/// A run count as stored (counts beyond `i32` saturate).
pub(super) fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A run-log row as both backends select it.
pub(super) type RunRow = (
    i64,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    (i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32),
    Option<String>,
);

pub(super) fn run_record(row: RunRow) -> RunRecord {
    let (id, integration, trigger, started_at, finished_at, status, n, error) = row;
    RunRecord {
        id,
        integration,
        trigger,
        started_at,
        finished_at,
        status,
        pages: n.0,
        fetched: n.1,
        created: n.2,
        updated: n.3,
        unchanged: n.4,
        skipped: n.5,
        removed: n.6,
        restored: n.7,
        filtered: n.8,
        drift_corrected: n.9,
        warnings: n.10,
        error,
    }
}

/// The error a run left `running` by a dead process is closed with.
pub const INTERRUPTED: &str =
    "interrupted: the process stopped before the run finished; nothing it did was kept";
