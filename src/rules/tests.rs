use rust_decimal::Decimal;

use super::*;
use crate::manifest;
use crate::offer::{PayoutEntry, PayoutModel};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// An Integration on the built-in everflow network with `spec` lines added.
fn integration(spec: &str) -> IntegrationDef {
    let yaml = format!(
        "apiVersion: offersync/v1\nkind: Integration\nmetadata: {{name: t}}\nspec:\n  network: everflow\n  schedule: '0 * * * *'\n  params: {{api_key: '${{env:K}}'}}\n  advertiser: Acme\n{spec}"
    );
    let mut loaded = manifest::load_texts(&[("t.yaml".into(), yaml)], &|_| Some("k".into()));
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.catalog.integrations.remove("t").unwrap()
}

fn offer(id: &str) -> Offer {
    let mut o = Offer::new(id.into(), format!("Offer {id}"));
    o.payout = Some(dec("10"));
    o.model = Some(PayoutModel::Cpa);
    o.preview_url = Some("https://adv.example/p".into());
    o.tracking_url = Some("https://t.example/c?o=1".into());
    o
}

fn skip_reason(def: &IntegrationDef, o: Offer) -> Option<SkipReason> {
    Rules::new(def).apply(o).err().map(|s| s.reason)
}

#[test]
fn the_status_filter_imports_only_the_listed_upstream_statuses() {
    use crate::offer::OfferStatus;
    let def = integration("  filters:\n    status: [active, paused]\n");
    for (status, imported) in [
        (OfferStatus::Active, true),
        (OfferStatus::Paused, true),
        (OfferStatus::Pending, false),
        (OfferStatus::Expired, false),
    ] {
        let mut o = offer("1");
        o.status = status;
        let skip = Rules::new(&def).apply(o).err();
        assert_eq!(skip.is_none(), imported, "{status:?}");
        if let Some(skip) = skip {
            assert_eq!(skip.reason, SkipReason::StatusExcluded);
            assert!(
                skip.reason.is_filter(),
                "a filter: the campaign follows on_filtered"
            );
            assert!(
                skip.detail.contains("not in filters.status"),
                "{}",
                skip.detail
            );
        }
    }
    let unfiltered = integration("");
    let mut o = offer("1");
    o.status = OfferStatus::Pending;
    assert_eq!(skip_reason(&unfiltered, o), None);
}

#[test]
fn every_filter_names_its_reason() {
    let def = integration(
        "  filters:\n    offers: ['1','2','3','4','5','6','7','8','9','10','11']\n    countries: {allow: [US, CA], block: [RU]}\n    require_preview_url: true\n    models: [CPA, CPI]\n    payout: {min: 1, max: 100}\n    os: android\n    geo: [{country: US, min: 2, max: 50}]\n",
    );
    assert_eq!(skip_reason(&def, offer("1")), None);
    assert_eq!(
        skip_reason(&def, offer("99")),
        Some(SkipReason::NotSelected)
    );

    let mut o = offer("2");
    o.countries = vec!["RU".into()];
    assert_eq!(skip_reason(&def, o), Some(SkipReason::CountryBlocked));
    let mut o = offer("3");
    o.countries = vec!["DE".into()];
    assert_eq!(skip_reason(&def, o), Some(SkipReason::CountryNotAllowed));
    let mut o = offer("4");
    o.preview_url = None;
    assert_eq!(skip_reason(&def, o), Some(SkipReason::NoPreviewUrl));
    let mut o = offer("5");
    o.model = Some(PayoutModel::Cpl);
    assert_eq!(skip_reason(&def, o), Some(SkipReason::ModelExcluded));
    let mut o = offer("6");
    o.payout = Some(dec("0.99"));
    assert_eq!(skip_reason(&def, o), Some(SkipReason::PayoutBelowMin));
    let mut o = offer("7");
    o.payout = Some(dec("100.01"));
    assert_eq!(skip_reason(&def, o), Some(SkipReason::PayoutAboveMax));
    let mut o = offer("8");
    o.os = vec!["ios".into()];
    assert_eq!(skip_reason(&def, o), Some(SkipReason::OsExcluded));
    let mut o = offer("9");
    o.os = vec!["android".into(), "ios".into()];
    assert_eq!(skip_reason(&def, o), None);
    // The geo filter drops US; an offer targeting only the US has nothing left.
    let mut o = offer("10");
    o.countries = vec!["US".into()];
    o.payout = Some(dec("60"));
    assert_eq!(skip_reason(&def, o), Some(SkipReason::GeoPayoutOutOfRange));
    // The US entry (1.50) is what the geo filter judges, not the base payout.
    let mut o = offer("11");
    o.countries = vec!["US".into()];
    o.payouts = vec![PayoutEntry {
        payout: dec("1.50"),
        publisher_payout: None,
        currency: None,
        model: None,
        countries: vec!["US".into()],
        os: vec![],
        goal: None,
    }];
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::GeoPayoutOutOfRange);
    assert_eq!(skip.detail, "US payout 1.50 outside 2.00..50.00");
}

#[test]
fn worldwide_offers_pass_country_and_os_filters_and_geo_bounds_apply_to_them() {
    let def = integration(
        "  filters:\n    countries: {allow: [US]}\n    os: ios\n    geo: [{country: US, max: 5}]\n",
    );
    let mut o = offer("1");
    o.payout = Some(dec("4"));
    assert_eq!(skip_reason(&def, o), None);
    assert_eq!(
        skip_reason(&def, offer("2")),
        Some(SkipReason::GeoPayoutOutOfRange)
    );
}

#[test]
fn an_offer_without_a_model_takes_the_objective_or_is_excluded() {
    let with_objective = integration("  defaults: {objective: CPI}\n  filters: {models: [CPI]}\n");
    let mut o = offer("1");
    o.model = None;
    let c = Rules::new(&with_objective).apply(o.clone()).unwrap();
    assert_eq!(c.model, Some(PayoutModel::Cpi));
    let without = integration("  filters: {models: [CPI]}\n");
    assert_eq!(skip_reason(&without, o), Some(SkipReason::ModelExcluded));
}

#[test]
fn payout_is_revenue_times_ratio_exactly_with_the_chosen_rounding() {
    for (rounding, expected) in [("half_up", "0.13"), ("half_even", "0.12"), ("down", "0.12")] {
        let def = integration(&format!(
            "  payout: {{ratio: 0.5, decimals: 2, rounding: {rounding}}}\n"
        ));
        let mut o = offer("1");
        o.payout = Some(dec("0.25"));
        let c = Rules::new(&def).apply(o).unwrap();
        assert_eq!(c.revenue, Some(dec("0.25")));
        assert_eq!(c.payout, Some(dec(expected)), "{rounding}");
    }
    // No float drift: 0.1 + 0.2 style values stay exact.
    let def = integration("  payout: {ratio: 0.9}\n");
    let mut o = offer("1");
    o.payout = Some(dec("10.30"));
    assert_eq!(Rules::new(&def).apply(o).unwrap().payout, Some(dec("9.27")));
}

#[test]
fn tiers_and_publishers_get_their_own_payouts() {
    let def = integration(
        "  payout: {ratio: 0.8, tiers: {gold: 0.95, silver: 0.85}, publishers: {pub-42: 12.00}}\n",
    );
    let c = Rules::new(&def).apply(offer("1")).unwrap();
    assert_eq!(c.payout, Some(dec("8")));
    let got: Vec<(&str, &str, String)> = c
        .publisher_payouts
        .iter()
        .map(|p| (p.kind.as_str(), p.name.as_str(), p.payout.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("tier", "gold", "9.5".to_string()),
            ("tier", "silver", "8.5".to_string()),
            ("publisher", "pub-42", "12.00".to_string()),
        ]
    );
    // 12.00 fixed is more than offer 1's revenue of 10: the operator is told.
    assert_eq!(
        c.warnings,
        ["publisher pub-42 is paid 12.00, more than the revenue 10"]
    );
}

#[test]
fn defaults_overrides_and_appends_shape_the_campaign() {
    let def = integration(
        "  tracking: {append: 'sub1={click_id}', append_impression: 'imp={imp_id}'}\n  defaults: {category: Finance, status: pending, visibility: public, currency: EUR, objective: CPI, redirect: 301}\n  description: {append: 'No incent.'}\n  kpi: {append: 'Fraud > 5% unpaid.'}\n  settings: {allow_impressions: true}\n",
    );
    let mut o = offer("1");
    o.impression_url = Some("https://t.example/i".into());
    o.currency = Some("USD".into());
    o.description = Some("Great offer.  ".into());
    let c = Rules::new(&def).apply(o).unwrap();
    assert_eq!(
        c.tracking_url.as_deref(),
        Some("https://t.example/c?o=1&sub1={click_id}")
    );
    assert_eq!(
        c.impression_url.as_deref(),
        Some("https://t.example/i?imp={imp_id}")
    );
    assert_eq!(c.category.as_deref(), Some("Finance"));
    assert_eq!(c.status, CampaignStatus::Pending);
    assert_eq!(c.visibility, CampaignVisibility::Public);
    assert_eq!(c.currency.as_deref(), Some("EUR"));
    // defaults.objective applies where the network sends no model.
    assert_eq!(c.model, Some(PayoutModel::Cpa));
    assert_eq!(c.objective, Some(PayoutModel::Cpa));
    assert_eq!(c.redirect, 301);
    assert_eq!(c.description.as_deref(), Some("Great offer.\n\nNo incent."));
    assert_eq!(c.kpi.as_deref(), Some("Fraud > 5% unpaid."));

    // The network's category wins over the default; paused upstream is paused here.
    let mut o = offer("2");
    o.category = Some("Games".into());
    o.status = OfferStatus::Paused;
    o.model = None;
    let c = Rules::new(&def).apply(o).unwrap();
    assert_eq!(c.category.as_deref(), Some("Games"));
    assert_eq!(c.status, CampaignStatus::Paused);
    assert_eq!(c.objective, Some(PayoutModel::Cpi));
}

#[test]
fn impressions_come_in_only_when_allowed() {
    let mut o = offer("1");
    o.impression_url = Some("https://t.example/i".into());
    let c = Rules::new(&integration("")).apply(o.clone()).unwrap();
    assert_eq!(c.impression_url, None);
    let allowed = integration("  settings: {allow_impressions: true}\n");
    let c = Rules::new(&allowed).apply(o).unwrap();
    assert_eq!(c.impression_url.as_deref(), Some("https://t.example/i"));
}

#[test]
fn a_worldwide_offer_takes_the_country_filters_with_it() {
    let def = integration("  filters:\n    countries: {allow: [US, CA], block: [RU]}\n");
    let mut o = offer("1");
    o.countries = vec![];
    let c = Rules::new(&def).apply(o).unwrap();
    assert_eq!(c.countries, ["US", "CA"]);
    assert_eq!(c.blocked_countries, ["RU"]);
    let def = integration("  filters:\n    countries: {block: [US]}\n");
    let mut o = offer("2");
    o.countries = vec![];
    let c = Rules::new(&def).apply(o).unwrap();
    assert!(c.countries.is_empty(), "still worldwide");
    assert_eq!(c.blocked_countries, ["US"], "but never served in the US");
}

#[test]
fn every_payout_entry_gets_its_publisher_payout() {
    let def = integration("  payout: {ratio: 0.8}\n");
    let mut o = offer("1");
    o.payouts = vec![PayoutEntry {
        payout: dec("2.50"),
        publisher_payout: None,
        currency: None,
        model: None,
        countries: vec![],
        os: vec![],
        goal: Some("install".into()),
    }];
    let c = Rules::new(&def).apply(o).unwrap();
    assert_eq!(c.payouts[0].publisher_payout, Some(dec("2")));
}

#[test]
fn caps_and_settings_are_carried_onto_every_campaign() {
    let def = integration(
        "  caps: {update: true, type: approved, visibility: visible, timezone: Europe/Berlin, over_delivery: continue, additional: [{event: conversions, period: daily, value: 50}, {event: clicks, period: daily, value: 900, timezone: Asia/Tokyo, over_delivery: pause}], on_import: [{event: clicks, period: total, value: 1000}]}\n  settings: {multi_conversion: true, allow_impressions: true, spillover: always, time_targeting: {timezone: UTC, days: [mon], from: '09:00', to: '17:30'}}\n",
    );
    let mut o = offer("1");
    o.caps = vec![Cap {
        event: crate::offer::CapEvent::Conversions,
        period: crate::offer::CapPeriod::Monthly,
        value: dec("300"),
        timezone: None,
        over_delivery: None,
    }];
    let c = Rules::new(&def).apply(o).unwrap();
    assert_eq!(c.caps.len(), 3);
    assert_eq!(c.caps[1].value, dec("50"));
    assert_eq!(
        (
            c.caps[1].timezone.as_deref(),
            c.caps[1].over_delivery.as_deref()
        ),
        (None, None)
    );
    // An additional cap may reset in its own time zone and act on its own.
    assert_eq!(c.caps[2].timezone.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(c.caps[2].over_delivery.as_deref(), Some("pause"));
    assert_eq!(c.import_caps.len(), 1);
    let caps: serde_json::Value = serde_json::from_str(&c.cap_settings).unwrap();
    assert_eq!(
        caps,
        serde_json::json!({"type": "approved", "visibility": "visible", "timezone": "Europe/Berlin", "over_delivery": "continue"})
    );
    let settings: serde_json::Value = serde_json::from_str(&c.settings).unwrap();
    assert_eq!(
        settings,
        serde_json::json!({"time_targeting": {"timezone": "UTC", "days": ["mon"], "from": "09:00", "to": "17:30"}, "multi_conversion": true, "allow_impressions": true, "spillover": "always"})
    );
}

#[test]
fn the_content_hash_changes_with_any_mapped_value_and_only_then() {
    let def = integration("");
    let rules = Rules::new(&def);
    let a = rules.apply(offer("1")).unwrap();
    let same = rules.apply(offer("1")).unwrap();
    assert_eq!(
        (&a.content_hash, &a.raw_hash),
        (&same.content_hash, &same.raw_hash)
    );
    let mut o = offer("1");
    o.payout = Some(dec("10.01"));
    assert_ne!(a.content_hash, rules.apply(o).unwrap().content_hash);
    // A raw-only change (an unmapped counter) is no change of the campaign.
    let mut o = offer("1");
    o.raw = crate::offer::RawRecord::from_json("{\"x\":1}".into());
    let raw_only = rules.apply(o).unwrap();
    assert_eq!(a.content_hash, raw_only.content_hash);
    assert_ne!(a.raw_hash, raw_only.raw_hash);
}

#[test]
fn a_revenue_share_percentage_is_no_money() {
    let def = integration(
        "  defaults: {currency: GBP}\n  filters:\n    payout: {min: 5, max: 20}\n    geo: [{country: US, max: 10}]\n",
    );
    let mut o = offer("1");
    o.model = Some(PayoutModel::RevShare);
    o.payout = Some(dec("30"));
    o.currency = Some("USD".into());
    // 30 % passes money bounds of 5..20 and the US bound of 10: they judge amounts.
    let c = Rules::new(&def).apply(o.clone()).unwrap();
    assert_eq!(c.payout_kind, crate::campaign::PayoutKind::Percent);
    assert_eq!(
        c.currency, None,
        "a percentage has no currency, override or not"
    );
    // Percentage bounds judge it.
    let def = integration("  filters:\n    payout_percent: {min: 35}\n");
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::PayoutBelowMin);
    assert_eq!(skip.detail, "payout 30.00% < min 35.00%");
    // An amount offer is still judged by money and labelled.
    let def = integration("  defaults: {currency: GBP}\n  filters:\n    payout: {max: 20}\n");
    let mut o = offer("2");
    o.payout = Some(dec("30"));
    assert_eq!(
        Rules::new(&def).apply(o).unwrap_err().reason,
        SkipReason::PayoutAboveMax
    );
    let c = Rules::new(&def).apply(offer("3")).unwrap();
    assert_eq!(c.payout_kind, crate::campaign::PayoutKind::Amount);
    assert_eq!(c.currency.as_deref(), Some("GBP"));
}

fn countries(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

/// The campaign's (countries, blocked_countries), or the skip.
fn targeting_of(def: &IntegrationDef, o: Offer) -> Result<(Vec<String>, Vec<String>), Skip> {
    Rules::new(def)
        .apply(o)
        .map(|c| (c.countries, c.blocked_countries))
}

fn never_both(targets: &[String], blocks: &[String]) {
    assert!(
        !targets.iter().any(|c| blocks.contains(c)),
        "targets {targets:?} and blocks {blocks:?}"
    );
}

fn country_entry(country: &str, payout: &str) -> PayoutEntry {
    PayoutEntry {
        payout: dec(payout),
        publisher_payout: None,
        currency: None,
        model: None,
        countries: countries(&[country]),
        os: vec![],
        goal: None,
    }
}

#[test]
fn the_allow_list_narrows_the_targeting_to_the_allowed_countries() {
    let def = integration("  filters:\n    countries: {allow: [US, GB]}\n");
    let mut o = offer("1");
    o.countries = countries(&["DE", "US"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert_eq!(targets, ["US"], "DE is not allowed: not targeted");
    assert!(blocks.is_empty(), "{blocks:?}");
}

#[test]
fn the_block_list_narrows_the_targeting_instead_of_skipping_the_offer() {
    let def = integration("  filters:\n    countries: {block: [RU]}\n");
    let mut o = offer("1");
    o.countries = countries(&["RU", "US"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert_eq!(targets, ["US"], "the US traffic is kept");
    never_both(&targets, &blocks);
}

#[test]
fn an_offer_whose_every_country_is_blocked_is_skipped_as_country_blocked() {
    let def = integration("  filters:\n    countries: {block: [RU, BY]}\n");
    let mut o = offer("1");
    o.countries = countries(&["BY", "RU"]);
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::CountryBlocked);
    assert_eq!(
        skip.detail,
        "targets BY,RU; none left: BY,RU in filters.countries.block"
    );
}

#[test]
fn an_offer_with_no_allowed_country_is_skipped_as_country_not_allowed() {
    let def = integration("  filters:\n    countries: {allow: [US, GB]}\n");
    let mut o = offer("1");
    o.countries = countries(&["DE", "FR"]);
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::CountryNotAllowed);
    assert_eq!(
        skip.detail,
        "targets DE,FR; none left: DE,FR not in filters.countries.allow"
    );
}

#[test]
fn a_worldwide_offer_targets_allow_minus_block_and_never_a_country_blocked_upstream() {
    let def = integration("  filters:\n    countries: {allow: [US, GB, CA], block: [CA, RU]}\n");
    let mut o = offer("1");
    o.blocked_countries = countries(&["GB"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert_eq!(targets, ["US"], "GB is excluded upstream, CA blocked here");
    assert_eq!(blocks, ["GB", "CA", "RU"]);
    never_both(&targets, &blocks);

    // Without an allow list it stays worldwide, blocking both lists.
    let def = integration("  filters:\n    countries: {block: [RU]}\n");
    let mut o = offer("2");
    o.blocked_countries = countries(&["GB"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert!(targets.is_empty(), "still worldwide: {targets:?}");
    assert_eq!(blocks, ["GB", "RU"]);

    // Nothing of the allow list left: skipped, never stored as worldwide.
    let def = integration("  filters:\n    countries: {allow: [GB, RU], block: [RU]}\n");
    let mut o = offer("3");
    o.blocked_countries = countries(&["GB"]);
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::CountryBlocked);
    assert_eq!(
        skip.detail,
        "worldwide, allowed GB,RU; none left: GB blocked by the offer, RU in filters.countries.block"
    );

    // A listed country the offer itself blocks is not targeted either.
    let def = integration("  filters:\n    countries: {allow: [US, GB]}\n");
    let mut o = offer("4");
    o.countries = countries(&["GB", "US"]);
    o.blocked_countries = countries(&["GB"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert_eq!((targets, blocks), (countries(&["US"]), countries(&["GB"])));
}

#[test]
fn both_lists_together_keep_what_is_allowed_and_not_blocked() {
    let def = integration("  filters:\n    countries: {allow: [US, CA, RU], block: [RU]}\n");
    let mut o = offer("1");
    o.countries = countries(&["CA", "DE", "RU", "US"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert_eq!(targets, ["CA", "US"]);
    never_both(&targets, &blocks);

    // Nothing left: the detail says which list dropped which country.
    let mut o = offer("2");
    o.countries = countries(&["DE", "RU"]);
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::CountryBlocked);
    assert_eq!(
        skip.detail,
        "targets DE,RU; none left: DE not in filters.countries.allow, RU in filters.countries.block"
    );
}

#[test]
fn the_geo_filter_drops_the_out_of_range_country_and_skips_only_when_none_is_left() {
    let def = integration("  filters:\n    geo: [{country: DE, min: 2}, {country: FR, min: 2}]\n");
    let mut o = offer("1");
    o.countries = countries(&["DE", "US"]);
    o.payouts = vec![country_entry("DE", "1.50"), country_entry("US", "12")];
    let c = Rules::new(&def).apply(o).unwrap();
    assert_eq!(c.countries, ["US"], "DE pays 1.50, under its min of 2");
    let entries: Vec<&[String]> = c.payouts.iter().map(|p| p.countries.as_slice()).collect();
    assert_eq!(
        entries,
        [countries(&["US"])],
        "DE's payout goes with DE's targeting"
    );

    // Only DE: nothing left.
    let mut o = offer("2");
    o.countries = countries(&["DE"]);
    o.payouts = vec![country_entry("DE", "1.50")];
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::GeoPayoutOutOfRange);
    assert_eq!(skip.detail, "DE payout 1.50 outside 2.00..-");

    // A worldwide offer keeps running everywhere else.
    let mut o = offer("3");
    o.payouts = vec![country_entry("FR", "1")];
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert!(targets.is_empty(), "still worldwide: {targets:?}");
    assert_eq!(blocks, ["FR"]);
}

#[test]
fn payout_entries_of_countries_no_longer_targeted_are_dropped() {
    let def = integration("  filters:\n    countries: {allow: [US, GB]}\n");
    let mut o = offer("1");
    o.countries = countries(&["DE", "GB", "US"]);
    let mut both = country_entry("DE", "3");
    both.countries = countries(&["DE", "GB"]);
    let mut any_country = country_entry("US", "1");
    any_country.countries = vec![];
    any_country.goal = Some("install".into());
    o.payouts = vec![country_entry("DE", "2"), both, any_country];
    let c = Rules::new(&def).apply(o).unwrap();
    let entries: Vec<(Vec<String>, Option<String>)> = c
        .payouts
        .iter()
        .map(|p| (p.countries.clone(), p.goal.clone()))
        .collect();
    assert_eq!(
        entries,
        [
            (countries(&["GB"]), None),
            (vec![], Some("install".to_string()))
        ]
    );
}

#[test]
fn skip_offer_mode_keeps_skipping_the_whole_offer() {
    let def = integration(
        "  filters:\n    countries: {allow: [US, GB], block: [RU], mode: skip_offer}\n    geo: [{country: US, max: 5}]\n",
    );
    let mut o = offer("1");
    o.countries = countries(&["RU", "US"]);
    o.payout = Some(dec("4"));
    let skip = Rules::new(&def).apply(o).unwrap_err();
    assert_eq!(skip.reason, SkipReason::CountryBlocked);
    assert_eq!(skip.detail, "targets RU,US; RU in filters.countries.block");
    let mut o = offer("2");
    o.countries = countries(&["DE", "FR"]);
    assert_eq!(skip_reason(&def, o), Some(SkipReason::CountryNotAllowed));
    // One allowed country is enough, and the offer keeps its own list.
    let mut o = offer("3");
    o.countries = countries(&["DE", "US"]);
    o.payout = Some(dec("4"));
    let (targets, _) = targeting_of(&def, o).unwrap();
    assert_eq!(targets, ["DE", "US"]);
    // One country out of its geo bounds skips the offer.
    let mut o = offer("4");
    o.countries = countries(&["DE", "US"]);
    assert_eq!(skip_reason(&def, o), Some(SkipReason::GeoPayoutOutOfRange));
    // Even so, a row never both targets and blocks a country.
    let mut o = offer("5");
    o.payout = Some(dec("4"));
    o.blocked_countries = countries(&["GB"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    assert_eq!(targets, ["US"]);
    assert_eq!(blocks, ["GB", "RU"]);
    let mut o = offer("6");
    o.payout = Some(dec("4"));
    o.countries = countries(&["GB", "US"]);
    o.blocked_countries = countries(&["GB"]);
    let (targets, blocks) = targeting_of(&def, o).unwrap();
    never_both(&targets, &blocks);
    assert_eq!(targets, ["US"]);
}
