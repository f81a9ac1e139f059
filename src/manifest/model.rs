//! The compiled manifests: what the rest of offersync works from.
//!
//! Everything here has been checked: paths parsed, cron parsed, templates
//! checked against the declared params, secrets resolved, countries and
//! currencies normalized. Simple enums are shared with the raw types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveTime;
use rust_decimal::Decimal;

pub use super::raw::{
    CapType, CapVisibility, Column, ColumnPolicy, CountryMode, EnrichFailure, Format,
    ImportedStatus, Method, OffsetUnit, OnRemoved, OsFilter, OverDelivery, Rounding, Spillover,
    Visibility, Weekday,
};
pub use super::secret::ParamValue;
use crate::mapping::path::JsonPath;
use crate::mapping::program::{Cond, Template};
use crate::mapping::{FieldMapping, Mapping};
use crate::offer::{Cap, PayoutModel};

/// Where a definition came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary.
    BuiltIn,
    /// A file in the manifest directory (or given on the command line).
    File(PathBuf),
}

/// A checked Network.
#[derive(Debug)]
pub struct NetworkDef {
    pub name: String,
    pub title: Option<String>,
    pub params: BTreeMap<String, ParamDef>,
    pub request: RequestDef,
    pub auth: AuthDef,
    pub pagination: PaginationDef,
    pub limits: LimitsDef,
    /// Other hosts redirects may lead to (lowercase), without credentials.
    pub redirect_hosts: Vec<String>,
    pub mapping: Mapping,
    pub enrich: Vec<EnrichDef>,
    pub null_values: Vec<String>,
    /// The most requests allowed in a period, shared by every run of the network.
    pub rate_limit: Option<RateLimitDef>,
    /// The file's `tests:`, samples resolved against its directory.
    pub tests: Vec<crate::mapping::expect::MappingTest>,
    pub origin: Origin,
    /// SHA-256 of the document's text.
    pub source_hash: String,
}

/// A request rate: `requests` in every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimitDef {
    pub requests: u32,
    pub period: std::time::Duration,
}

impl NetworkDef {
    /// The offer fields the Network maps from the list (not from per-offer requests).
    pub fn network_fields(&self) -> Vec<&'static str> {
        self.mapping.targets().map(|t| t.name()).collect()
    }
}

/// A parameter a Network declares.
#[derive(Debug, Clone)]
pub struct ParamDef {
    pub secret: bool,
    pub required: bool,
    pub default: Option<String>,
    pub description: Option<String>,
}

/// The offer-list request.
#[derive(Debug)]
pub struct RequestDef {
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(String, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Option<BodyDef>,
    /// (param, separator) that restricts the list to `filters.offers`.
    pub select_ids: Option<(String, String)>,
}

/// A request body: each value a template.
#[derive(Debug)]
pub enum BodyDef {
    /// Text sent as is, as `application/json`.
    Raw(Template),
    /// `application/x-www-form-urlencoded` fields.
    Form(Vec<(String, Template)>),
    /// A JSON object of strings.
    Json(Vec<(String, Template)>),
}

/// Authentication.
#[derive(Debug)]
pub enum AuthDef {
    None,
    Query {
        param: String,
        value: Template,
    },
    Header {
        name: String,
        value: Template,
    },
    Basic {
        username: Template,
        password: Template,
    },
    Bearer {
        token: Template,
    },
    OAuth2 {
        token_url: Template,
        client_id: Template,
        client_secret: Template,
        scope: Option<String>,
        client_auth: crate::manifest::raw::ClientAuth,
    },
    /// Log in for a token (see `raw::Auth::Login`).
    Login(Box<LoginDef>),
}

/// A login request and where its token goes.
#[derive(Debug)]
pub struct LoginDef {
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Option<BodyDef>,
    pub token: JsonPath,
    pub expires_in: Option<JsonPath>,
    pub lifetime_seconds: Option<u64>,
    pub send: TokenPlace,
}

/// Where a login token is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenPlace {
    /// A header; its value is `prefix` + token + `suffix`.
    Header {
        name: String,
        prefix: String,
        suffix: String,
    },
    /// A query parameter.
    Query(String),
}

/// Pagination.
#[derive(Debug)]
pub enum PaginationDef {
    None,
    Page {
        param: String,
        start: u64,
        size_param: Option<String>,
        size: Option<u64>,
        total_pages: Option<Total>,
        total_count: Option<Total>,
    },
    Offset {
        param: String,
        start: u64,
        size_param: String,
        size: u64,
        unit: OffsetUnit,
        total_count: Option<Total>,
    },
    Cursor {
        param: String,
        path: JsonPath,
    },
    NextUrl {
        path: JsonPath,
    },
    LinkHeader,
}

/// Where a response states a total: in its body, or in a header.
#[derive(Debug)]
pub enum Total {
    Path(JsonPath),
    Header(String),
}

/// Fetch limits.
#[derive(Debug, Clone, Copy)]
pub struct LimitsDef {
    pub max_pages: u64,
    pub max_response_bytes: u64,
    pub timeout_seconds: u64,
    pub retries: u32,
    pub retry_base_ms: u64,
    pub max_retry_after_seconds: u64,
}

/// One per-offer request.
#[derive(Debug)]
pub struct EnrichDef {
    pub name: String,
    pub url: Template,
    pub when: Option<Cond>,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub method: Method,
    pub body: Option<BodyDef>,
    pub format: Format,
    pub fields: Vec<FieldMapping>,
    pub concurrency: u32,
    pub on_error: EnrichFailure,
}

impl EnrichDef {
    /// Whether the request is made for this list record (its `when`).
    pub fn applies_to(&self, record: &serde_json::Value, null_values: &[String]) -> bool {
        self.when.as_ref().is_none_or(|when| {
            let nulls = crate::mapping::program::NullSet::new(null_values);
            when.holds(&crate::mapping::program::Ctx::new(record, None, &nulls))
        })
    }

    /// Applies the request's response, as received or as saved, to an
    /// offer: the one step a sync and the author tools share.
    pub fn apply(
        &self,
        body: &[u8],
        null_values: &[String],
        offer: &mut crate::offer::Offer,
    ) -> Result<(), String> {
        let response = match self.format {
            Format::Json => serde_json::from_slice(body).map_err(|e| e.to_string())?,
            Format::Xml => {
                crate::mapping::xml::xml_to_value(body, &[]).map_err(|e| e.to_string())?
            }
        };
        Mapping::enrich(&self.fields, null_values, offer, &response)
    }
}

/// A checked Integration.
#[derive(Debug)]
pub struct IntegrationDef {
    pub name: String,
    pub title: Option<String>,
    pub network: Arc<NetworkDef>,
    pub enabled: bool,
    pub schedule: Schedule,
    /// Every param the Network declares, with defaults filled in.
    pub params: BTreeMap<String, ParamValue>,
    pub advertiser: String,
    pub tracking: TrackingDef,
    pub defaults: DefaultsDef,
    pub payout: PayoutDef,
    pub filters: FiltersDef,
    pub update: UpdateDef,
    pub settings: SettingsDef,
    pub description_append: Option<String>,
    pub kpi_append: Option<String>,
    pub caps: CapsDef,
    pub on_removed: OnRemoved,
    pub on_filtered: OnRemoved,
    pub safety: SafetyDef,
    pub source_file: PathBuf,
    /// The file line and column of `metadata.name`: where a problem with
    /// the integration as a whole (it was deleted) is reported.
    pub name_at: (u64, u64),
    /// SHA-256 of the document's text: changes whenever the manifest does.
    pub spec_hash: String,
    /// The spec together with its Network's mapping: a change of either is
    /// a change the daemon runs at once.
    pub revision: String,
    /// The document's text (secrets are references there, never values).
    pub source_text: String,
}

impl IntegrationDef {
    /// Every secret value, so that anything printed can be scrubbed of them.
    pub fn secrets(&self) -> Vec<&str> {
        self.params
            .values()
            .filter(|p| p.is_secret() && !p.expose().is_empty())
            .map(ParamValue::expose)
            .collect()
    }
}

/// When an integration runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: croner::Cron,
    /// The expression as written.
    pub expression: String,
    pub timezone: chrono_tz::Tz,
}

impl Schedule {
    /// The first tick strictly after `after`, in whole seconds: croner keeps
    /// the fraction of a second it is given, and every daemon must name (and
    /// claim) the same tick.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::SubsecRound;
        let local = after.trunc_subsecs(0).with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// Appends to links, without a leading `?` or `&`.
#[derive(Debug, Clone, Default)]
pub struct TrackingDef {
    pub append: Option<String>,
    pub append_impression: Option<String>,
}

/// Basic details.
#[derive(Debug, Clone)]
pub struct DefaultsDef {
    pub category: Option<String>,
    pub status: ImportedStatus,
    pub visibility: Visibility,
    pub currency: Option<String>,
    pub objective: Option<PayoutModel>,
    pub redirect: u16,
}

/// Payout rules.
#[derive(Debug, Clone)]
pub struct PayoutDef {
    pub ratio: Decimal,
    pub tiers: BTreeMap<String, Decimal>,
    pub publishers: BTreeMap<String, Decimal>,
    pub decimals: u32,
    pub rounding: Rounding,
}

/// Filters.
#[derive(Debug, Clone, Default)]
pub struct FiltersDef {
    pub allow_countries: Vec<String>,
    pub block_countries: Vec<String>,
    /// Whether refused countries narrow the targeting or skip the offer.
    pub country_mode: CountryMode,
    pub require_preview_url: bool,
    pub models: Vec<PayoutModel>,
    pub payout_min: Option<Decimal>,
    pub payout_max: Option<Decimal>,
    /// Bounds of revenue-share percentages (the money bounds skip them).
    pub percent_min: Option<Decimal>,
    pub percent_max: Option<Decimal>,
    pub os: OsFilter,
    pub geo: Vec<GeoDef>,
    pub offers: BTreeSet<String>,
    /// Upstream statuses imported; empty: all.
    pub statuses: Vec<crate::offer::OfferStatus>,
}

/// Payout bounds for one country.
#[derive(Debug, Clone)]
pub struct GeoDef {
    pub country: String,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
}

/// Column update policy.
#[derive(Debug, Clone, Default)]
pub struct UpdateDef {
    pub default: ColumnPolicy,
    pub columns: BTreeMap<Column, ColumnPolicy>,
    /// A protected status still follows upstream pauses (see the raw key).
    pub follow_upstream_pauses: bool,
}

impl UpdateDef {
    pub fn policy(&self, column: Column) -> ColumnPolicy {
        self.columns.get(&column).copied().unwrap_or(self.default)
    }
}

/// Integration settings.
#[derive(Debug, Clone, Default)]
pub struct SettingsDef {
    pub time_targeting: Option<TimeTargetingDef>,
    pub multi_conversion: bool,
    pub allow_impressions: bool,
    pub spillover: Spillover,
}

/// Time targeting.
#[derive(Debug, Clone)]
pub struct TimeTargetingDef {
    pub timezone: chrono_tz::Tz,
    pub days: Vec<Weekday>,
    pub from: NaiveTime,
    pub to: NaiveTime,
}

/// Cap settings.
#[derive(Debug, Clone)]
pub struct CapsDef {
    pub update: bool,
    pub cap_type: CapType,
    pub visibility: CapVisibility,
    pub timezone: chrono_tz::Tz,
    pub over_delivery: OverDelivery,
    pub additional: Vec<Cap>,
    pub on_import: Vec<Cap>,
}

/// Outage guards.
#[derive(Debug, Clone)]
pub struct SafetyDef {
    pub allow_empty_feed: bool,
    pub max_removed_share: Decimal,
    pub shrink_window_days: u32,
    pub max_duplicate_share: Decimal,
    pub allow_link_local_addresses: bool,
}

impl Default for SafetyDef {
    fn default() -> Self {
        Self {
            allow_empty_feed: false,
            max_removed_share: Decimal::new(5, 1),
            shrink_window_days: 7,
            max_duplicate_share: Decimal::new(1, 2),
            allow_link_local_addresses: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::{TimeZone, Utc};

    use super::Schedule;

    fn schedule(expression: &str, timezone: chrono_tz::Tz) -> Schedule {
        Schedule {
            cron: croner::Cron::from_str(expression).unwrap(),
            expression: expression.to_string(),
            timezone,
        }
    }

    #[test]
    fn daemons_starting_at_different_instants_name_the_same_tick() {
        let every_minute = schedule("* * * * *", chrono_tz::Tz::UTC);
        let a = Utc.with_ymd_and_hms(2026, 11, 24, 18, 2, 4).unwrap()
            + chrono::TimeDelta::milliseconds(607);
        let b = a + chrono::TimeDelta::milliseconds(61);
        let expected = Utc.with_ymd_and_hms(2026, 11, 24, 18, 3, 0).unwrap();
        assert_eq!(every_minute.next_after(a), Some(expected));
        assert_eq!(every_minute.next_after(b), Some(expected));
        // Strictly after: at the tick itself the next one is a minute on.
        assert_eq!(
            every_minute.next_after(expected),
            Some(expected + chrono::TimeDelta::minutes(1))
        );
    }

    #[test]
    fn ticks_follow_the_schedule_timezone() {
        let six_on_weekdays = schedule("0 6 * * 1-5", chrono_tz::Europe::Berlin);
        // Saturday 2026-11-28: the next is Monday 06:00 Berlin, 05:00 UTC.
        let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        assert_eq!(
            six_on_weekdays.next_after(saturday),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 5, 0, 0).unwrap())
        );
    }
}
