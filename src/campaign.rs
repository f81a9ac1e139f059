//! The campaign offersync wants to exist for one offer: the row rules compute
//! and reconcile writes.
//!
//! This module owns [`Campaign`], its vocabulary (status, visibility,
//! publisher payouts) and its content hash. It does no I/O and applies no
//! rules: `rules` fills it in, `reconcile` compares it, `store` writes it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::offer::{Cap, PayoutEntry, PayoutModel, RawRecord};

/// Whether a campaign takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Active,
    Paused,
    Pending,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Pending => "pending",
        }
    }
}

/// What a campaign's revenue and payout are: money, or a percentage of the
/// sale (revenue-share offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutKind {
    Amount,
    Percent,
}

impl PayoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amount => "amount",
            Self::Percent => "percent",
        }
    }

    /// The kind a stored `payout_kind` column names (`amount` otherwise).
    pub fn from_stored(text: &str) -> Self {
        if text == Self::Percent.as_str() {
            Self::Percent
        } else {
            Self::Amount
        }
    }

    /// A revenue or payout as every command and page prints it: two
    /// decimals at least (`2.60`, as people write amounts), more when the
    /// value has them (`0.125`), no zeros past two places that only a
    /// column's scale added (a NUMERIC(12,4) `2.6000` is `2.60`); a
    /// percentage ends in `%` (`12.00%`). Machine output (JSON) keeps the
    /// decimal as stored.
    pub fn shown(self, value: Decimal) -> String {
        let value = value.normalize();
        let unit = match self {
            Self::Amount => "",
            Self::Percent => "%",
        };
        format!("{value:.*}{unit}", value.scale().max(2) as usize)
    }
}

/// Who can see a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignVisibility {
    Private,
    Permission,
    Public,
}

impl CampaignVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Permission => "permission",
            Self::Public => "public",
        }
    }
}

/// A payout for a publisher tier (revenue × the tier's ratio) or a named publisher (fixed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublisherPayout {
    pub kind: PublisherPayoutKind,
    pub name: String,
    pub payout: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublisherPayoutKind {
    Tier,
    Publisher,
}

impl PublisherPayoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tier => "tier",
            Self::Publisher => "publisher",
        }
    }
}

/// The desired state of one campaign.
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub external_id: String,
    pub name: String,
    pub advertiser: Arc<str>,
    pub status: CampaignStatus,
    /// The offer is paused, pending or expired upstream (what a protected
    /// status follows with `update.follow_upstream_pauses`).
    pub upstream_inactive: bool,
    pub visibility: CampaignVisibility,
    pub preview_url: Option<String>,
    pub tracking_url: Option<String>,
    pub impression_url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// What the advertiser pays: the network's payout.
    pub revenue: Option<Decimal>,
    /// What publishers are paid: revenue × ratio, rounded.
    pub payout: Option<Decimal>,
    /// The top of a commission range: `revenue` is its bottom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_max: Option<Decimal>,
    /// `revenue_max` × ratio, rounded like `payout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_max: Option<Decimal>,
    /// Whether revenue and payout are amounts (in `currency`) or percentages
    /// (no currency).
    pub payout_kind: PayoutKind,
    pub currency: Option<String>,
    pub model: Option<PayoutModel>,
    /// Every model of a hybrid offer (`model` is the first); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<PayoutModel>,
    pub objective: Option<PayoutModel>,
    pub redirect: u16,
    pub countries: Vec<String>,
    pub blocked_countries: Vec<String>,
    pub os: Vec<String>,
    // New columns stay out of the hash while empty, so that campaigns
    // stored before they existed are not all rewritten once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_os: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_os_version: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    pub kpi: Option<String>,
    pub payouts: Vec<PayoutEntry>,
    pub publisher_payouts: Vec<PublisherPayout>,
    /// The network's caps followed by the integration's additional caps.
    pub caps: Vec<Cap>,
    /// Caps set when the campaign is created.
    pub import_caps: Arc<[Cap]>,
    /// Cap type, visibility, timezone, over-delivery: JSON shared by every campaign of a run.
    pub cap_settings: Arc<str>,
    /// Time targeting, multi-conversion, impressions, spillover: JSON shared likewise.
    pub settings: Arc<str>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub raw: RawRecord,
    /// [`Campaign::compute_hash`], filled in once the campaign is complete.
    #[serde(skip)]
    pub content_hash: String,
    /// [`Campaign::compute_raw_hash`]: the raw record alone.
    #[serde(skip)]
    pub raw_hash: String,
    /// The hash of the row this campaign converges a stored one to under
    /// the run's update policy (set by `reconcile`): a stored row whose
    /// `applied_hash` is this one, and that no other writer touched, holds
    /// what this campaign would write.
    #[serde(skip)]
    pub applied_hash: String,
    /// What the operator should know about this campaign (e.g. a fixed
    /// publisher payout above the revenue); logged, and shown by `plan`.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// The offer fields whose value could not be read ([`crate::offer::Offer::unreadable`]):
    /// a stored campaign keeps its columns of them ([`Campaign::kept_columns`]).
    /// Part of the content hash (left out while empty, like new columns), so
    /// that a value unreadable and one the network empties are different
    /// desired rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<&'static str>,
}

impl Campaign {
    /// SHA-256 (hex) of every value offersync mapped or computed, the raw
    /// record aside. Two campaigns with the same hash would be written the
    /// same, so a stored campaign whose hash matches has no column to
    /// update; a raw record that changed alone (an unmapped counter) costs
    /// only its own write ([`Campaign::compute_raw_hash`]).
    pub fn compute_hash(&self) -> String {
        let mut hasher = HashWriter(Sha256::new());
        serde_json::to_writer(&mut hasher, self).expect("a campaign always serializes");
        hex(&hasher.0.finalize())
    }

    /// SHA-256 (hex) of the raw record's text.
    pub fn compute_raw_hash(&self) -> String {
        hex(&Sha256::digest(self.raw.get().as_bytes()))
    }
}

/// The stored columns an offer field's value becomes (the payout is the
/// revenue, and the publishers' payout and ranges computed from it; the model
/// is the objective too). Empty for the fields that are never unreadable on
/// a campaign (an unreadable id, name, status, countries, OS exclusions,
/// devices or caps drop the record instead).
pub fn columns_of_field(field: &str) -> &'static [&'static str] {
    match field {
        "preview_url" => &["preview_url"],
        "tracking_url" => &["tracking_url"],
        "impression_url" => &["impression_url"],
        "thumbnail_url" => &["thumbnail_url"],
        "payout" => &["revenue", "payout", "revenue_max", "payout_max"],
        "payout_max" => &["revenue_max", "payout_max"],
        "currency" => &["currency"],
        "model" => &["model", "models", "objective"],
        "os" => &["os"],
        "min_os_version" => &["min_os_version"],
        "category" => &["category"],
        "description" => &["description"],
        "kpi" => &["kpi"],
        "payouts" => &["payouts"],
        "starts_at" => &["starts_at"],
        "expires_at" => &["expires_at"],
        _ => &[],
    }
}

impl Campaign {
    /// The stored columns an existing row keeps as they are, because the
    /// offer's value for them could not be read: a read failure is not the
    /// network's word (only a null or empty value it sends empties a column).
    pub fn kept_columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.unreadable
            .iter()
            .flat_map(|field| columns_of_field(field).iter().copied())
    }

    /// Whether an existing row keeps `column` ([`Campaign::kept_columns`]).
    pub fn keeps(&self, column: &str) -> bool {
        self.kept_columns().any(|c| c == column)
    }
}

impl Campaign {
    /// A stored column's desired value, as the store reads stored values
    /// back for comparison (`store::feed`): text as itself, decimals
    /// normalized, lists and objects as JSON, times in RFC 3339 to the
    /// microsecond (what Postgres keeps), `null` where empty. `None` for a
    /// column that is no campaign value.
    pub fn column_value(&self, column: &str) -> Option<serde_json::Value> {
        use serde_json::Value;
        let text = |t: Option<&str>| t.map_or(Value::Null, |t| Value::String(t.to_string()));
        let decimal = |d: Option<Decimal>| {
            d.map_or(Value::Null, |d| Value::String(d.normalize().to_string()))
        };
        let json = |v: serde_json::Result<Value>| v.unwrap_or(Value::Null);
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or(Value::Null, |t| {
                use chrono::SubsecRound;
                Value::String(
                    t.trunc_subsecs(6)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                )
            })
        };
        Some(match column {
            "name" => text(Some(&self.name)),
            "advertiser" => text(Some(&self.advertiser)),
            "status" => text(Some(self.status.as_str())),
            "visibility" => text(Some(self.visibility.as_str())),
            "preview_url" => text(self.preview_url.as_deref()),
            "tracking_url" => text(self.tracking_url.as_deref()),
            "impression_url" => text(self.impression_url.as_deref()),
            "thumbnail_url" => text(self.thumbnail_url.as_deref()),
            "revenue" => decimal(self.revenue),
            "revenue_max" => decimal(self.revenue_max),
            "payout" => decimal(self.payout),
            "payout_max" => decimal(self.payout_max),
            "payout_kind" => text(Some(self.payout_kind.as_str())),
            "currency" => text(self.currency.as_deref()),
            "model" => text(self.model.map(|m| m.as_str())),
            "models" => json(serde_json::to_value(&self.models)),
            "objective" => text(self.objective.map(|m| m.as_str())),
            "redirect" => Value::String(self.redirect.to_string()),
            "countries" => json(serde_json::to_value(&self.countries)),
            "blocked_countries" => json(serde_json::to_value(&self.blocked_countries)),
            "os" => json(serde_json::to_value(&self.os)),
            "blocked_os" => json(serde_json::to_value(&self.blocked_os)),
            "devices" => json(serde_json::to_value(&self.devices)),
            "min_os_version" => text(self.min_os_version.as_deref()),
            "category" => text(self.category.as_deref()),
            "description" => text(self.description.as_deref()),
            "kpi" => text(self.kpi.as_deref()),
            "payouts" => json(serde_json::to_value(&self.payouts)),
            "caps" => json(serde_json::to_value(&self.caps)),
            "cap_settings" => json(serde_json::from_str(&self.cap_settings)),
            "settings" => json(serde_json::from_str(&self.settings)),
            "starts_at" => time(self.starts_at),
            "expires_at" => time(self.expires_at),
            _ => return None,
        })
    }
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lower-case hex, by table: three hashes of every offer of every run are
/// formatted, and `write!` per byte was a measurable share of a re-sync.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals_at_least_and_no_scale_padding() {
        let shown = |text: &str, kind: PayoutKind| kind.shown(text.parse().unwrap());
        assert_eq!(shown("2.6", PayoutKind::Amount), "2.60");
        assert_eq!(shown("2.6000", PayoutKind::Amount), "2.60");
        assert_eq!(shown("22", PayoutKind::Amount), "22.00");
        assert_eq!(shown("0.125", PayoutKind::Amount), "0.125");
        assert_eq!(shown("0", PayoutKind::Amount), "0.00");
        assert_eq!(shown("-1.5", PayoutKind::Amount), "-1.50");
        assert_eq!(shown("12", PayoutKind::Percent), "12.00%");
        assert_eq!(PayoutKind::from_stored("percent"), PayoutKind::Percent);
        assert_eq!(PayoutKind::from_stored("amount"), PayoutKind::Amount);
    }
}
