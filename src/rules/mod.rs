//! The integration's business rules: which offers are imported, and what
//! campaign each becomes.
//!
//! This module owns the filters (each with a named [`SkipReason`]) and the
//! rules that turn an [`Offer`] into a [`Campaign`]: payout ratios, tiers and
//! publisher payouts, defaults, overrides, link appends, text appends, caps
//! and settings. It is pure: no I/O, no knowledge of what is stored (that is
//! reconcile's job), no YAML.

mod links;

use std::fmt;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

pub use links::append_query;

use crate::campaign::{
    Campaign, CampaignStatus, CampaignVisibility, PayoutKind, PublisherPayout, PublisherPayoutKind,
};
use crate::manifest::model::{
    CountryMode, FiltersDef, ImportedStatus, IntegrationDef, OsFilter, PayoutDef, Rounding,
    Visibility,
};
use crate::offer::{Cap, Offer, OfferStatus};

/// Why an offer was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `filters.offers` lists ids and this is not one of them.
    NotSelected,
    /// No country is left to target once those in
    /// `filters.countries.block` (and those the offer blocks itself) are
    /// dropped; under `mode: skip_offer`, the offer targets a blocked country.
    CountryBlocked,
    /// The offer targets none of `filters.countries.allow`.
    CountryNotAllowed,
    /// `filters.require_preview_url` and the offer has no preview link.
    NoPreviewUrl,
    /// The offer's model is not in `filters.models`.
    ModelExcluded,
    PayoutBelowMin,
    PayoutAboveMax,
    /// The offer does not run on the OS of `filters.os`.
    OsExcluded,
    /// Every targeted country's payout is out of its `filters.geo` bounds
    /// (under `mode: skip_offer`, one is).
    GeoPayoutOutOfRange,
    /// An earlier record in the same run had the same id.
    DuplicateId,
    /// The record could not be mapped to an offer.
    MappingProblem,
    /// A per-offer request (`enrich`) failed.
    EnrichFailed,
    /// An id `filters.offers` selects that the feed did not list.
    NotInFeed,
    /// The offer's upstream status is not in `filters.status`.
    StatusExcluded,
}

impl SkipReason {
    /// A skip by one of the Integration's filters: the offer is upstream,
    /// this integration does not import it.
    pub fn is_filter(self) -> bool {
        !matches!(
            self,
            Self::DuplicateId | Self::MappingProblem | Self::EnrichFailed | Self::NotInFeed
        )
    }

    pub const ALL: [SkipReason; 14] = [
        Self::NotSelected,
        Self::StatusExcluded,
        Self::CountryBlocked,
        Self::CountryNotAllowed,
        Self::NoPreviewUrl,
        Self::ModelExcluded,
        Self::PayoutBelowMin,
        Self::PayoutAboveMax,
        Self::OsExcluded,
        Self::GeoPayoutOutOfRange,
        Self::DuplicateId,
        Self::MappingProblem,
        Self::EnrichFailed,
        Self::NotInFeed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSelected => "not_selected",
            Self::CountryBlocked => "country_blocked",
            Self::CountryNotAllowed => "country_not_allowed",
            Self::NoPreviewUrl => "no_preview_url",
            Self::ModelExcluded => "model_excluded",
            Self::PayoutBelowMin => "payout_below_min",
            Self::PayoutAboveMax => "payout_above_max",
            Self::OsExcluded => "os_excluded",
            Self::GeoPayoutOutOfRange => "geo_payout_out_of_range",
            Self::DuplicateId => "duplicate_id",
            Self::MappingProblem => "mapping_problem",
            Self::EnrichFailed => "enrich_failed",
            Self::NotInFeed => "not_in_feed",
            Self::StatusExcluded => "status_excluded",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in a skip's detail, as every command prints one.
fn money(d: Decimal) -> String {
    PayoutKind::Amount.shown(d)
}

/// A revenue share's percentage in a skip's detail.
fn percent(d: Decimal) -> String {
    PayoutKind::Percent.shown(d)
}

/// One offer not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub external_id: Option<String>,
    pub reason: SkipReason,
    /// The specifics, e.g. `payout 0.20 < min 0.50`.
    pub detail: String,
}

impl Skip {
    fn new(offer: &Offer, reason: SkipReason, detail: impl Into<String>) -> Self {
        Self {
            external_id: Some(offer.external_id.clone()),
            reason,
            detail: detail.into(),
        }
    }
}

/// An integration's rules, prepared once per run.
#[derive(Debug)]
pub struct Rules<'a> {
    def: &'a IntegrationDef,
    advertiser: Arc<str>,
    import_caps: Arc<[Cap]>,
    cap_settings: Arc<str>,
    settings: Arc<str>,
}

impl<'a> Rules<'a> {
    pub fn new(def: &'a IntegrationDef) -> Self {
        let caps = &def.caps;
        let cap_settings = serde_json::json!({
            "type": caps.cap_type,
            "visibility": caps.visibility,
            "timezone": caps.timezone.name(),
            "over_delivery": caps.over_delivery,
        });
        let s = &def.settings;
        let time_targeting = s.time_targeting.as_ref().map(|t| {
            serde_json::json!({
                "timezone": t.timezone.name(),
                "days": t.days,
                "from": t.from.format("%H:%M").to_string(),
                "to": t.to.format("%H:%M").to_string(),
            })
        });
        let settings = serde_json::json!({
            "time_targeting": time_targeting,
            "multi_conversion": s.multi_conversion,
            "allow_impressions": s.allow_impressions,
            "spillover": s.spillover,
        });
        Self {
            def,
            advertiser: def.advertiser.as_str().into(),
            import_caps: caps.on_import.clone().into(),
            cap_settings: cap_settings.to_string().into(),
            settings: settings.to_string().into(),
        }
    }

    /// The campaign an offer becomes, or why it is skipped.
    pub fn apply(&self, mut offer: Offer) -> Result<Campaign, Skip> {
        let mut targeting = Targeting::new(
            std::mem::take(&mut offer.countries),
            std::mem::take(&mut offer.blocked_countries),
        );
        for (_, check) in &Self::FILTERS {
            check(self, &offer, &mut targeting)?;
        }
        Ok(self.campaign(offer, targeting))
    }

    /// Each filter's verdict on an offer, in the order `apply` checks them
    /// (`apply` stops at the first that skips), named as in the manifest.
    /// Each judges the targeting the filters before it that passed narrowed.
    pub fn filter_verdicts(&self, offer: &Offer) -> Vec<(&'static str, Result<(), Skip>)> {
        let mut targeting =
            Targeting::new(offer.countries.clone(), offer.blocked_countries.clone());
        Self::FILTERS
            .iter()
            .map(|(name, check)| {
                let mut narrowed = targeting.clone();
                let verdict = check(self, offer, &mut narrowed);
                if verdict.is_ok() {
                    targeting = narrowed;
                }
                (*name, verdict)
            })
            .collect()
    }

    /// The filters, in order: an earlier one names the skip reason. The
    /// country logic and the geo filter narrow the targeting as they go.
    #[allow(clippy::type_complexity)]
    const FILTERS: [(
        &'static str,
        fn(&Self, &Offer, &mut Targeting) -> Result<(), Skip>,
    ); 9] = [
        ("filters.offers", Self::check_selected),
        ("filters.status", Self::check_status),
        ("filters.countries", Self::check_countries),
        ("filters.require_preview_url", Self::check_preview),
        ("filters.models", Self::check_model),
        ("filters.payout (percent)", Self::check_percent),
        ("filters.payout", Self::check_payout),
        ("filters.os", Self::check_os),
        ("filters.geo", Self::check_geo),
    ];

    fn is_percent(&self, offer: &Offer) -> bool {
        self.model_of(offer) == Some(crate::offer::PayoutModel::RevShare)
    }

    fn check_selected(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        let f = &self.def.filters;
        if !f.offers.is_empty() && !f.offers.contains(&offer.external_id) {
            return Err(Skip::new(
                offer,
                SkipReason::NotSelected,
                "not in filters.offers",
            ));
        }
        Ok(())
    }

    fn check_status(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        let f = &self.def.filters;
        if !f.statuses.is_empty() && !f.statuses.contains(&offer.status) {
            return Err(Skip::new(
                offer,
                SkipReason::StatusExcluded,
                format!("status {} is not in filters.status", offer.status),
            ));
        }
        Ok(())
    }

    /// Country logic: the offer's countries ∩ allow − block − the offer's
    /// own blocked countries (`mode: narrow`), skipped only when none is
    /// left; or skipped when one is blocked or none allowed (`skip_offer`).
    fn check_countries(&self, offer: &Offer, t: &mut Targeting) -> Result<(), Skip> {
        let f = &self.def.filters;
        let narrow = f.country_mode == CountryMode::Narrow;
        let Some(listed) = &t.countries else {
            // A worldwide offer blocks the blocked countries, and with an
            // allow list targets those of it that are left.
            let mut dropped = Dropped::default();
            let kept = dropped.sort(f.allow_countries.iter(), &t.blocked, f, false);
            for c in &f.block_countries {
                if !t.blocked.contains(c) {
                    t.blocked.push(c.clone());
                }
            }
            if f.allow_countries.is_empty() {
                return Ok(());
            }
            t.narrowed_worldwide = true;
            return self.targeted(offer, t, kept, dropped, || {
                format!("worldwide, allowed {}", f.allow_countries.join(","))
            });
        };
        let targets = listed.join(",");
        let mut dropped = Dropped::default();
        let kept = dropped.sort(listed.iter(), &t.blocked, f, narrow);
        if !narrow {
            // Today's semantics: one blocked country, or none allowed, skips it.
            if !dropped.block.is_empty() {
                let detail = format!(
                    "targets {targets}; {} in filters.countries.block",
                    dropped.block.join(",")
                );
                return Err(Skip::new(offer, SkipReason::CountryBlocked, detail));
            }
            if !f.allow_countries.is_empty()
                && !kept.is_empty()
                && !kept.iter().any(|c| f.allow_countries.contains(c))
            {
                let detail = format!(
                    "targets {targets}; {} not in filters.countries.allow",
                    kept.join(",")
                );
                return Err(Skip::new(offer, SkipReason::CountryNotAllowed, detail));
            }
        }
        self.targeted(offer, t, kept, dropped, || format!("targets {targets}"))
    }

    /// The targeting left after country logic dropped `dropped`, or the
    /// skip when nothing is left (`what` says what the offer targeted).
    fn targeted(
        &self,
        offer: &Offer,
        t: &mut Targeting,
        kept: Vec<String>,
        dropped: Dropped,
        what: impl FnOnce() -> String,
    ) -> Result<(), Skip> {
        if kept.is_empty() {
            // Blocking named first, as the lists are checked.
            let reason = if dropped.block.is_empty() && !dropped.not_allowed.is_empty() {
                SkipReason::CountryNotAllowed
            } else {
                SkipReason::CountryBlocked
            };
            let detail = format!("{}; none left: {}", what(), dropped.describe());
            return Err(Skip::new(offer, reason, detail));
        }
        t.dropped.extend(dropped.into_countries());
        t.countries = Some(kept);
        Ok(())
    }

    fn check_preview(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        if self.def.filters.require_preview_url
            && offer.preview_url.as_deref().is_none_or(str::is_empty)
        {
            return Err(Skip::new(offer, SkipReason::NoPreviewUrl, "no preview URL"));
        }
        Ok(())
    }

    fn check_model(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        let f = &self.def.filters;
        if !f.models.is_empty() {
            match self.model_of(offer) {
                Some(m) if f.models.contains(&m) => {}
                Some(m) => {
                    return Err(Skip::new(
                        offer,
                        SkipReason::ModelExcluded,
                        format!("model {m}"),
                    ));
                }
                None => {
                    return Err(Skip::new(
                        offer,
                        SkipReason::ModelExcluded,
                        "no model (and no defaults.objective)",
                    ));
                }
            }
        }
        Ok(())
    }

    // A percentage is no money: the money bounds and the geo filter's
    // bounds do not judge it; the percentage bounds do.
    fn check_percent(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        if self.is_percent(offer) {
            check_percent(offer, &self.def.filters)?;
        }
        Ok(())
    }

    fn check_payout(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        let f = &self.def.filters;
        let percent = self.is_percent(offer);
        if let Some(min) = f.payout_min.filter(|_| !percent) {
            match offer.payout {
                Some(p) if p >= min => {}
                Some(p) => {
                    return Err(Skip::new(
                        offer,
                        SkipReason::PayoutBelowMin,
                        format!("payout {} < min {}", money(p), money(min)),
                    ));
                }
                None => {
                    return Err(Skip::new(
                        offer,
                        SkipReason::PayoutBelowMin,
                        format!("no payout; min is {}", money(min)),
                    ));
                }
            }
        }
        if let (Some(max), Some(p)) = (f.payout_max.filter(|_| !percent), offer.payout)
            && p > max
        {
            return Err(Skip::new(
                offer,
                SkipReason::PayoutAboveMax,
                format!("payout {} > max {}", money(p), money(max)),
            ));
        }
        Ok(())
    }

    fn check_os(&self, offer: &Offer, _: &mut Targeting) -> Result<(), Skip> {
        let wanted_os = match self.def.filters.os {
            OsFilter::All => None,
            OsFilter::Android => Some("android"),
            OsFilter::Ios => Some("ios"),
        };
        // An offer with no OS list runs on any device.
        if let Some(os) = wanted_os
            && !offer.os.is_empty()
            && !offer.os.iter().any(|o| o == os)
        {
            return Err(Skip::new(
                offer,
                SkipReason::OsExcluded,
                format!("runs on {}", offer.os.join(",")),
            ));
        }
        Ok(())
    }

    /// The geo filter: a targeted country whose payout is out of its bounds
    /// is dropped (`narrow`; the offer is skipped when none is left), or
    /// skips the offer (`skip_offer`).
    fn check_geo(&self, offer: &Offer, t: &mut Targeting) -> Result<(), Skip> {
        let f = &self.def.filters;
        if f.geo.is_empty() || self.is_percent(offer) {
            return Ok(());
        }
        let mut out: Vec<(&str, String)> = Vec::new();
        for geo in &f.geo {
            if !t.targets(&geo.country) {
                continue;
            }
            let Some(payout) = country_payout(offer, &geo.country) else {
                continue;
            };
            let low = geo.min.is_some_and(|min| payout < min);
            let high = geo.max.is_some_and(|max| payout > max);
            if low || high {
                let bound = |b: Option<Decimal>| b.map(money).unwrap_or("-".into());
                out.push((
                    &geo.country,
                    format!(
                        "{} payout {} outside {}..{}",
                        geo.country,
                        money(payout),
                        bound(geo.min),
                        bound(geo.max)
                    ),
                ));
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let skip = |out: &[(&str, String)]| {
            let detail: Vec<&str> = out.iter().map(|(_, d)| d.as_str()).collect();
            Err(Skip::new(
                offer,
                SkipReason::GeoPayoutOutOfRange,
                detail.join(", "),
            ))
        };
        if f.country_mode == CountryMode::SkipOffer {
            return skip(&out);
        }
        match &mut t.countries {
            Some(list) => {
                list.retain(|c| !out.iter().any(|(o, _)| o == c));
                if list.is_empty() {
                    return skip(&out);
                }
            }
            // Worldwide, less the countries out of their bounds.
            None => t.blocked.extend(out.iter().map(|(c, _)| c.to_string())),
        }
        t.dropped.extend(out.iter().map(|(c, _)| c.to_string()));
        Ok(())
    }

    fn model_of(&self, offer: &Offer) -> Option<crate::offer::PayoutModel> {
        offer.model.or(self.def.defaults.objective)
    }

    fn campaign(&self, offer: Offer, targeting: Targeting) -> Campaign {
        let mut campaign = self.unhashed_campaign(offer, targeting);
        campaign.content_hash = campaign.compute_hash();
        campaign.raw_hash = campaign.compute_raw_hash();
        campaign
    }

    fn unhashed_campaign(&self, offer: Offer, targeting: Targeting) -> Campaign {
        let def = self.def;
        let defaults = &def.defaults;
        let status = match offer.status {
            OfferStatus::Active => match defaults.status {
                ImportedStatus::Active => CampaignStatus::Active,
                ImportedStatus::Paused => CampaignStatus::Paused,
                ImportedStatus::Pending => CampaignStatus::Pending,
            },
            OfferStatus::Pending => CampaignStatus::Pending,
            OfferStatus::Paused | OfferStatus::Expired => CampaignStatus::Paused,
        };
        let visibility = match defaults.visibility {
            Visibility::Private => CampaignVisibility::Private,
            Visibility::Permission => CampaignVisibility::Permission,
            Visibility::Public => CampaignVisibility::Public,
        };
        let revenue = offer.payout;
        let percent = self.model_of(&offer) == Some(crate::offer::PayoutModel::RevShare);
        let payout_rules = &def.payout;
        let payout = revenue.map(|r| scaled(r, payout_rules.ratio, payout_rules));
        let revenue_max = offer.payout_max.filter(|max| Some(*max) != revenue);
        let payout_max = revenue_max.map(|r| scaled(r, payout_rules.ratio, payout_rules));
        let mut publisher_payouts = Vec::new();
        if let Some(r) = revenue {
            for (tier, ratio) in &payout_rules.tiers {
                publisher_payouts.push(PublisherPayout {
                    kind: PublisherPayoutKind::Tier,
                    name: tier.clone(),
                    payout: scaled(r, *ratio, payout_rules),
                });
            }
        }
        let mut warnings = offer.warnings;
        for (publisher, fixed) in &payout_rules.publishers {
            if let Some(r) = revenue.filter(|r| fixed > r && !percent) {
                warnings.push(format!(
                    "publisher {publisher} is paid {fixed}, more than the revenue {r}"
                ));
            }
            publisher_payouts.push(PublisherPayout {
                kind: PublisherPayoutKind::Publisher,
                name: publisher.clone(),
                payout: *fixed,
            });
        }
        let mut caps = offer.caps;
        caps.extend(def.caps.additional.iter().cloned());
        let model = offer.model.or(defaults.objective);
        let mut payouts = offer.payouts;
        targeting.prune(&mut payouts);
        for entry in &mut payouts {
            entry.publisher_payout = Some(scaled(entry.payout, payout_rules.ratio, payout_rules));
        }
        let (countries, blocked_countries) = targeting.into_lists();
        Campaign {
            external_id: offer.external_id,
            name: offer.name,
            advertiser: self.advertiser.clone(),
            status,
            upstream_inactive: offer.status != OfferStatus::Active,
            visibility,
            preview_url: offer.preview_url,
            tracking_url: offer
                .tracking_url
                .map(|u| with_append(u, def.tracking.append.as_deref())),
            // Impressions are brought in only where the Integration allows them.
            impression_url: offer
                .impression_url
                .filter(|_| def.settings.allow_impressions)
                .map(|u| with_append(u, def.tracking.append_impression.as_deref())),
            thumbnail_url: offer.thumbnail_url,
            revenue,
            payout,
            revenue_max,
            payout_max,
            payout_kind: if percent {
                PayoutKind::Percent
            } else {
                PayoutKind::Amount
            },
            // A percentage has no currency, and the override labels amounts only.
            currency: if percent {
                None
            } else {
                defaults.currency.clone().or(offer.currency)
            },
            model,
            models: offer.models,
            // The network's own model first; defaults.objective when it sends none.
            objective: model,
            redirect: defaults.redirect,
            countries,
            blocked_countries,
            os: offer.os,
            blocked_os: offer.blocked_os,
            devices: offer.devices,
            min_os_version: offer.min_os_version,
            category: offer.category.or_else(|| defaults.category.clone()),
            description: appended(offer.description, def.description_append.as_deref()),
            kpi: appended(offer.kpi, def.kpi_append.as_deref()),
            payouts,
            publisher_payouts,
            caps,
            import_caps: self.import_caps.clone(),
            cap_settings: self.cap_settings.clone(),
            settings: self.settings.clone(),
            starts_at: offer.starts_at,
            expires_at: offer.expires_at,
            raw: offer.raw,
            content_hash: String::new(),
            raw_hash: String::new(),
            applied_hash: String::new(),
            warnings,
            unreadable: offer.unreadable,
        }
    }
}

/// `amount × ratio`, rounded as the integration says. Exact: decimals, never floats.
pub fn scaled(amount: Decimal, ratio: Decimal, rules: &PayoutDef) -> Decimal {
    let strategy = match rules.rounding {
        Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
        Rounding::Down => RoundingStrategy::ToZero,
    };
    (amount * ratio)
        .round_dp_with_strategy(rules.decimals, strategy)
        .normalize()
}

/// The percentage bounds of a revenue-share offer (`filters.payout_percent`).
fn check_percent(offer: &Offer, f: &FiltersDef) -> Result<(), Skip> {
    let Some(p) = offer.payout else {
        return match f.percent_min {
            Some(min) => Err(Skip::new(
                offer,
                SkipReason::PayoutBelowMin,
                format!("no payout percentage; min is {}", percent(min)),
            )),
            None => Ok(()),
        };
    };
    if let Some(min) = f.percent_min
        && p < min
    {
        return Err(Skip::new(
            offer,
            SkipReason::PayoutBelowMin,
            format!("payout {} < min {}", percent(p), percent(min)),
        ));
    }
    if let Some(max) = f.percent_max
        && p > max
    {
        return Err(Skip::new(
            offer,
            SkipReason::PayoutAboveMax,
            format!("payout {} > max {}", percent(p), percent(max)),
        ));
    }
    Ok(())
}

/// What a campaign targets and blocks, as the filters narrow the offer's
/// own targeting. A country is never both targeted and blocked.
#[derive(Debug, Clone)]
struct Targeting {
    /// The countries targeted; `None` is worldwide, less `blocked`.
    countries: Option<Vec<String>>,
    blocked: Vec<String>,
    /// Countries of the offer's list that the rules dropped.
    dropped: Vec<String>,
    /// A worldwide offer narrowed to the allow list: every other country
    /// was dropped.
    narrowed_worldwide: bool,
}

impl Targeting {
    /// The offer's own: its countries (none: worldwide) and blocked ones.
    /// Country logic drops a listed country the offer also blocks.
    fn new(countries: Vec<String>, blocked: Vec<String>) -> Self {
        Self {
            countries: (!countries.is_empty()).then_some(countries),
            blocked,
            dropped: Vec::new(),
            narrowed_worldwide: false,
        }
    }

    fn targets(&self, country: &str) -> bool {
        let listed = match &self.countries {
            Some(list) => list.iter().any(|c| c == country),
            None => true,
        };
        listed && !self.blocked.iter().any(|c| c == country)
    }

    /// Drops from the per-country payouts the countries the rules stopped
    /// targeting, and an entry left with none. Entries for any country
    /// (no list) stay.
    fn prune(&self, payouts: &mut Vec<crate::offer::PayoutEntry>) {
        if self.dropped.is_empty() && !self.narrowed_worldwide {
            return;
        }
        payouts.retain_mut(|p| {
            if p.countries.is_empty() {
                return true;
            }
            p.countries.retain(|c| {
                self.targets(c) || !(self.narrowed_worldwide || self.dropped.contains(c))
            });
            !p.countries.is_empty()
        });
    }

    /// `(countries, blocked_countries)` of the campaign.
    fn into_lists(self) -> (Vec<String>, Vec<String>) {
        let mut countries = self.countries.unwrap_or_default();
        countries.retain(|c| !self.blocked.contains(c));
        (countries, self.blocked)
    }
}

/// The countries country logic dropped, by the list that dropped them.
#[derive(Debug, Default)]
struct Dropped {
    /// Blocked by the offer itself (its `blocked_countries`).
    upstream: Vec<String>,
    not_allowed: Vec<String>,
    block: Vec<String>,
}

impl Dropped {
    /// The countries kept of `countries`; the rest are recorded by the list
    /// that drops them (the offer's own blocked countries first, then
    /// `block`, then `allow` when `allow` narrows).
    fn sort<'c>(
        &mut self,
        countries: impl Iterator<Item = &'c String>,
        blocked: &[String],
        f: &FiltersDef,
        allow: bool,
    ) -> Vec<String> {
        let mut kept = Vec::new();
        for c in countries {
            let list = if blocked.contains(c) {
                &mut self.upstream
            } else if f.block_countries.contains(c) {
                &mut self.block
            } else if allow && !f.allow_countries.is_empty() && !f.allow_countries.contains(c) {
                &mut self.not_allowed
            } else {
                &mut kept
            };
            list.push(c.clone());
        }
        kept
    }

    /// E.g. `DE not in filters.countries.allow, RU in filters.countries.block`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.upstream.is_empty() {
            parts.push(format!("{} blocked by the offer", self.upstream.join(",")));
        }
        if !self.not_allowed.is_empty() {
            parts.push(format!(
                "{} not in filters.countries.allow",
                self.not_allowed.join(",")
            ));
        }
        if !self.block.is_empty() {
            parts.push(format!(
                "{} in filters.countries.block",
                self.block.join(",")
            ));
        }
        parts.join(", ")
    }

    fn into_countries(self) -> impl Iterator<Item = String> {
        self.upstream
            .into_iter()
            .chain(self.not_allowed)
            .chain(self.block)
    }
}

/// The payout an offer pays for traffic from `country`: the country's own
/// entry when it has one, else the offer's payout.
fn country_payout(offer: &Offer, country: &str) -> Option<Decimal> {
    offer
        .payouts
        .iter()
        .find(|p| p.goal.is_none() && p.countries.iter().any(|c| c == country))
        .map(|p| p.payout)
        .or(offer.payout)
}

fn with_append(url: String, append: Option<&str>) -> String {
    match append {
        Some(a) => append_query(&url, a),
        None => url,
    }
}

fn appended(text: Option<String>, append: Option<&str>) -> Option<String> {
    match (text, append) {
        (Some(t), Some(a)) if !t.trim().is_empty() => Some(format!("{}\n\n{a}", t.trim_end())),
        (_, Some(a)) => Some(a.to_string()),
        (t, None) => t,
    }
}

#[cfg(test)]
mod tests;
