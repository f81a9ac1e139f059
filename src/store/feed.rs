//! The change feed: what each applied run did to campaigns, in the order the
//! runs committed, for the platform to read "everything since position N"
//! without scanning the campaign table.
//!
//! This module owns the feed's vocabulary ([`ChangeRecord`], [`ChangeKind`]),
//! the columns it watches and how their values read ([`FEED_COLUMNS`]), and
//! the changes a transaction gathers before they are written
//! ([`PendingFeed`]). The backends read a campaign's watched columns before
//! and after each update or removal (so the feed says what the row really
//! became, whatever the update policy held back) and append the rows just
//! before the run commits, positions taken under a lock so that they become
//! visible in order.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use serde::Serialize;

/// What happened to a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    /// Removed earlier, its offer is back (and updated with it).
    Restored,
    /// Its offer left the feed or the filters (or its manifest was deleted).
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Restored => "restored",
            Self::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Restored, Self::Removed]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One column a change rewrote, with its stored value before and after (as
/// JSON: text, decimals as exact strings, lists and objects as themselves,
/// times in RFC 3339, `null` for empty).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub column: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// One entry of the feed, as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    /// Increases with every change, in commit order (with gaps): read on
    /// from the last position seen.
    pub position: i64,
    pub integration: String,
    /// The run that made it; `None` for a change outside a run (the manifest
    /// was deleted and the integration retired).
    pub run_id: Option<i64>,
    pub campaign_id: i64,
    pub external_id: String,
    pub kind: ChangeKind,
    /// The campaign's status after the change.
    pub status: String,
    /// For updates, restores and removals: the columns that changed.
    pub columns: Vec<FieldChange>,
    pub changed_at: DateTime<Utc>,
    /// Why a run rewrote the campaign: `upstream changed`, `setting
    /// changed`, `drift` (comma-separated when several); `None` for
    /// creations and removals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Old and new as people read a change: whole when both are at most
/// `width` characters; else the part that differs with `context`
/// characters either side, the common rest elided with `…`, so that two
/// long values that differ at the end do not read the same (the CLI's
/// `changes` and the status page show changes this way).
pub fn differing(old: &str, new: &str, width: usize, context: usize) -> (String, String) {
    let (a, b): (Vec<char>, Vec<char>) = (old.chars().collect(), new.chars().collect());
    if a.len() <= width && b.len() <= width {
        return (old.to_string(), new.to_string());
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let cut = |chars: &[char]| {
        let start = prefix.saturating_sub(context);
        let end = (chars.len() - suffix + context).min(chars.len());
        // The part that differs, itself cut when long.
        let mut middle: String = chars[start..end].iter().collect();
        let mut cut_end = end < chars.len();
        if end - start > width + 2 * context {
            middle = chars[start..start + width + context].iter().collect();
            cut_end = true;
        }
        let mut shown = String::new();
        if start > 0 {
            shown.push('…');
            middle = middle.trim_start().to_string();
        }
        if cut_end {
            middle = middle.trim_end().to_string();
        }
        shown.push_str(&middle);
        if cut_end {
            shown.push('…');
        }
        shown
    };
    (cut(&a), cut(&b))
}

/// How a watched column's stored text reads as a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Text,
    Decimal,
    Json,
    Time,
}

/// The columns the feed compares: every value mapped from an offer or set
/// by a removal, not the bookkeeping (hashes, raw record, times of change).
pub(crate) const FEED_COLUMNS: &[(&str, ValueKind)] = &[
    ("name", ValueKind::Text),
    ("advertiser", ValueKind::Text),
    ("status", ValueKind::Text),
    ("visibility", ValueKind::Text),
    ("preview_url", ValueKind::Text),
    ("tracking_url", ValueKind::Text),
    ("impression_url", ValueKind::Text),
    ("thumbnail_url", ValueKind::Text),
    ("revenue", ValueKind::Decimal),
    ("revenue_max", ValueKind::Decimal),
    ("payout", ValueKind::Decimal),
    ("payout_max", ValueKind::Decimal),
    ("payout_kind", ValueKind::Text),
    ("currency", ValueKind::Text),
    ("model", ValueKind::Text),
    ("models", ValueKind::Json),
    ("objective", ValueKind::Text),
    ("redirect", ValueKind::Text),
    ("countries", ValueKind::Json),
    ("blocked_countries", ValueKind::Json),
    ("os", ValueKind::Json),
    ("blocked_os", ValueKind::Json),
    ("devices", ValueKind::Json),
    ("min_os_version", ValueKind::Text),
    ("category", ValueKind::Text),
    ("description", ValueKind::Text),
    ("kpi", ValueKind::Text),
    ("payouts", ValueKind::Json),
    ("caps", ValueKind::Json),
    ("cap_settings", ValueKind::Json),
    ("settings", ValueKind::Json),
    ("starts_at", ValueKind::Time),
    ("expires_at", ValueKind::Time),
    ("removed_at", ValueKind::Time),
];

/// The SELECT list reading every watched column as text, the texts as one
/// JSON array (`array_fn`: `json_build_array` on Postgres, `json_array` on
/// SQLite; each backend casts its own types to text).
pub(super) fn select_list(array_fn: &str) -> String {
    let casts: Vec<String> = FEED_COLUMNS
        .iter()
        .map(|(column, _)| format!("CAST({column} AS TEXT)"))
        .collect();
    format!(
        "id, external_id, status AS current_status, CAST({array_fn}({}) AS TEXT) AS watched",
        casts.join(", ")
    )
}

/// A campaign's watched columns as [`select_list`] reads them.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub(super) struct WatchedRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub external_id: String,
    #[diesel(sql_type = diesel::sql_types::Text, column_name = current_status)]
    pub status: String,
    /// The JSON array of the columns' texts (`null` where empty).
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub watched: String,
}

impl WatchedRow {
    fn values(&self) -> Vec<Option<String>> {
        serde_json::from_str(&self.watched).unwrap_or_default()
    }
}

/// A campaign's watched columns and what its comparison needs besides
/// (see `shared::stored_rows`).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub(super) struct ComparedRow {
    #[diesel(embed)]
    pub watched: WatchedRow,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub status_before_pause: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub drifted: bool,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub content_hash: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub raw_hash: String,
}

impl ComparedRow {
    pub fn into_stored_row(self) -> super::StoredRow {
        let values = FEED_COLUMNS
            .iter()
            .zip(self.watched.values())
            .map(|(&(_, kind), text)| value(kind, text.as_deref()))
            .collect();
        super::StoredRow {
            id: self.watched.id,
            status_before_pause: self.status_before_pause,
            drifted: self.drifted,
            content_hash: self.content_hash,
            raw_hash: self.raw_hash,
            values,
        }
    }
}

/// The columns whose stored value differs between two reads of one campaign.
pub(super) fn diff(before: &WatchedRow, after: &WatchedRow) -> Vec<FieldChange> {
    let (before, after) = (before.values(), after.values());
    FEED_COLUMNS
        .iter()
        .zip(before.iter().zip(&after))
        .filter_map(|(&(column, kind), (old, new))| {
            let (old, new) = (value(kind, old.as_deref()), value(kind, new.as_deref()));
            (old != new).then(|| FieldChange {
                column: column.to_string(),
                old,
                new,
            })
        })
        .collect()
}

/// A stored value as the feed shows it, the same for either backend's text.
fn value(kind: ValueKind, text: Option<&str>) -> serde_json::Value {
    use serde_json::Value;
    let Some(text) = text else {
        return Value::Null;
    };
    match kind {
        ValueKind::Text => Value::String(text.to_string()),
        ValueKind::Decimal => Value::String(
            text.parse::<rust_decimal::Decimal>()
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|_| text.to_string()),
        ),
        ValueKind::Json => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
        ValueKind::Time => Value::String(
            parse_time(text)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_else(|| text.to_string()),
        ),
    }
}

/// Postgres writes `2026-12-03 12:00:00.5+00`, SQLite (through diesel) an
/// RFC 3339 variant.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A change waiting for the transaction's end.
#[derive(Debug, Clone)]
pub(super) struct PendingChange {
    pub integration_id: i64,
    pub campaign_id: i64,
    pub external_id: String,
    pub kind: ChangeKind,
    pub status: String,
    pub columns: String,
    pub changed_at: DateTime<Utc>,
    pub cause: Option<String>,
}

/// The changes one transaction has made so far, none of them held long in
/// memory. Creations are kept as (integration, time of the write) only:
/// every campaign a run creates has that `first_seen_at`, so they are
/// appended from the table itself (a first import creates 100k). Other
/// changes wait in `changes` only until the write that made them ends, then
/// in a temporary table (`staged`) until the run appends them all.
#[derive(Debug, Default)]
pub(super) struct PendingFeed {
    pub created: Vec<(i64, DateTime<Utc>)>,
    pub changes: Vec<PendingChange>,
    /// Changes wait in the connection's temporary table.
    pub staged: bool,
}

impl PendingFeed {
    pub fn note_created(&mut self, integration_id: i64, at: DateTime<Utc>) {
        if !self.created.contains(&(integration_id, at)) {
            self.created.push((integration_id, at));
        }
    }

    /// Records what each campaign read in `before` became in `after` (rows
    /// matched by id; a row whose watched columns did not change is an
    /// update all the same when `always` (a restore), else it is left out).
    pub fn note_rewrites(
        &mut self,
        integration_id: i64,
        kind_of: impl Fn(i64) -> (ChangeKind, Option<String>),
        before: &[WatchedRow],
        after: &[WatchedRow],
        at: DateTime<Utc>,
    ) {
        let after: std::collections::HashMap<i64, &WatchedRow> =
            after.iter().map(|row| (row.id, row)).collect();
        for old in before {
            let Some(new) = after.get(&old.id) else {
                continue;
            };
            let columns = diff(old, new);
            let (kind, cause) = kind_of(old.id);
            if columns.is_empty() && kind == ChangeKind::Updated {
                // A new raw record or hash only: nothing the platform reads.
                continue;
            }
            self.changes.push(PendingChange {
                integration_id,
                campaign_id: old.id,
                external_id: new.external_id.clone(),
                kind,
                status: new.status.clone(),
                columns: serde_json::to_string(&columns).expect("values serialize"),
                changed_at: at,
                cause,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.changes.is_empty() && !self.staged
    }
}

/// The channel Postgres notifies on when changes commit; the payload is
/// `{"position": LAST}` (the highest position the transaction appended).
pub const NOTIFY_CHANNEL: &str = "offersync_changes";

/// How long the feed is kept by default; the daemon prunes older entries
/// (`--changes-retention-days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[Option<&str>]) -> WatchedRow {
        let mut all: Vec<Option<String>> = vec![None; FEED_COLUMNS.len()];
        for (slot, v) in all.iter_mut().zip(values) {
            *slot = v.map(str::to_string);
        }
        WatchedRow {
            id: 1,
            external_id: "7".into(),
            status: "active".into(),
            watched: serde_json::to_string(&all).unwrap(),
        }
    }

    #[test]
    fn a_diff_names_the_columns_and_reads_values_the_same_on_either_backend() {
        let position = |name: &str| FEED_COLUMNS.iter().position(|(c, _)| *c == name).unwrap();
        let mut before: Vec<Option<&str>> = vec![None; FEED_COLUMNS.len()];
        let mut after = before.clone();
        (before[0], after[0]) = (Some("Old name"), Some("New name"));
        before[position("payout")] = Some("2.50");
        after[position("payout")] = Some("2.5");
        before[position("countries")] = Some(r#"["US", "CA"]"#);
        after[position("countries")] = Some(r#"["US","CA","MX"]"#);
        before[position("removed_at")] = Some("2026-12-03 12:00:00.5+00");
        after[position("removed_at")] = Some("2026-12-03T12:00:00.500Z");
        let changes = diff(&row(&before), &row(&after));
        let names: Vec<&str> = changes.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(names, ["name", "countries"], "{changes:?}");
        assert_eq!(changes[1].new, serde_json::json!(["US", "CA", "MX"]));
    }

    #[test]
    fn an_update_that_changed_no_watched_column_is_left_out_but_a_restore_is_not() {
        let same = row(&[Some("A")]);
        let mut feed = PendingFeed::default();
        let at = Utc::now();
        feed.note_rewrites(
            1,
            |_| (ChangeKind::Updated, None),
            std::slice::from_ref(&same),
            std::slice::from_ref(&same),
            at,
        );
        assert!(feed.is_empty());
        feed.note_rewrites(
            1,
            |_| (ChangeKind::Restored, None),
            std::slice::from_ref(&same),
            std::slice::from_ref(&same),
            at,
        );
        assert_eq!(feed.changes.len(), 1);
        assert_eq!(feed.changes[0].columns, "[]");
    }
}
