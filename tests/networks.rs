//! The built-in network library maps every shared fixture offer correctly.
//!
//! `tests/fixtures/expected/<network>.jsonl` holds every mapped offer (one JSON
//! object per line, the raw record left out); each was checked by hand against
//! the fixture response. The named tests below pin the hard cases explicitly.

use std::path::Path;
use std::sync::Arc;

use offersync::manifest::{self, NetworkDef};
use offersync::mapping::{MappedPage, Mapping};
use offersync::offer::{Offer, OfferStatus, PayoutModel};
use rust_decimal::Decimal;
use serde_json::Value;

fn network(name: &str) -> Arc<NetworkDef> {
    manifest::built_in_networks()
        .remove(name)
        .unwrap_or_else(|| panic!("built-in network {name}"))
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new("tests/fixtures/networks").join(path)).expect("fixture exists")
}

fn map_pages(name: &str, pages: &[&str]) -> Vec<Offer> {
    let network = network(name);
    let mut offers = Vec::new();
    for page in pages {
        let mapped: MappedPage = network
            .mapping
            .map_page(&fixture(page))
            .expect("page parses");
        assert!(
            mapped.problems.is_empty(),
            "{name} {page}: {:?}",
            mapped.problems
        );
        offers.extend(mapped.offers);
    }
    offers
}

#[test]
fn raw_records_are_kept_exactly_as_sent() {
    let offers = map_pages("everflow", &["everflow/page1.json"]);
    let raw: Value = serde_json::from_str(offers[0].raw.get()).unwrap();
    let page: Value = serde_json::from_slice(&fixture("everflow/page1.json")).unwrap();
    assert_eq!(raw, page["offers"][0]);
    let cake = map_pages("cake", &["cake/page1.xml"]);
    let raw: Value = serde_json::from_str(cake[1].raw.get()).unwrap();
    assert_eq!(raw["campaign_id"], Value::Null, "xsi:nil");
    assert_eq!(raw["payout"], "$3.00");
}

fn without_raw(offer: &Offer) -> Value {
    let mut v = serde_json::to_value(offer).unwrap();
    v.as_object_mut().unwrap().remove("raw");
    v
}

fn assert_matches_expected(name: &str, offers: &[Offer]) {
    let text = std::fs::read_to_string(format!("tests/fixtures/expected/{name}.jsonl")).unwrap();
    let expected: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(offers.len(), expected.len(), "{name}: offer count");
    for (offer, want) in offers.iter().zip(&expected) {
        assert_eq!(
            &without_raw(offer),
            want,
            "{name}: offer {}",
            offer.external_id
        );
    }
}

fn find<'a>(offers: &'a [Offer], id: &str) -> &'a Offer {
    offers
        .iter()
        .find(|o| o.external_id == id)
        .unwrap_or_else(|| panic!("offer {id}"))
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn everflow_maps_every_fixture_offer() {
    let offers = map_pages("everflow", &["everflow/page1.json", "everflow/page2.json"]);
    assert_matches_expected("everflow", &offers);
    // {entries, total} wrappers with a default entry; a percentage for revshare.
    assert_eq!(find(&offers, "7").payout, Some(dec("22")));
    let revshare = find(&offers, "318");
    assert_eq!(
        (revshare.model, revshare.payout),
        (Some(PayoutModel::RevShare), Some(dec("12")))
    );
    assert!(revshare.countries.is_empty(), "ruleset {{}} is worldwide");
    // include/exclude flags on country entries.
    let excluded = find(&offers, "455");
    assert_eq!(excluded.blocked_countries, ["US"]);
    assert_eq!(excluded.status, OfferStatus::Paused);
    assert_eq!(find(&offers, "402").os, ["android", "windows"]);
    // 0 means "no cap": only the real caps are kept.
    assert_eq!(find(&offers, "214").caps.len(), 2);
    assert!(find(&offers, "7").caps.is_empty(), "caps disabled");
}

#[test]
fn affise_maps_every_fixture_offer() {
    let offers = map_pages("affise", &["affise/page1.json", "affise/page2.json"]);
    assert_matches_expected("affise", &offers);
    let excluded = find(&offers, "103");
    assert!(excluded.countries.is_empty());
    assert_eq!(excluded.blocked_countries, ["BY", "RU"]);
    assert_eq!(excluded.model, Some(PayoutModel::RevShare));
    assert_eq!(excluded.tracking_url, None, "\"\" is no link");
    // A revenue sent as the string "0" in an otherwise numeric field.
    assert_eq!(find(&offers, "120").payout, Some(Decimal::ZERO));
    // Lower-case currency, language-keyed description with empty languages.
    let tiered = find(&offers, "91");
    assert_eq!(tiered.currency.as_deref(), Some("EUR"));
    assert_eq!(tiered.payouts.len(), 2);
    assert_eq!(tiered.payouts[1].countries, ["AT", "CH"]);
    assert_eq!(tiered.kpi.as_deref(), Some("D2 retention >= 25%"));
}

#[test]
fn hasoffers_maps_every_fixture_offer() {
    let offers = map_pages(
        "hasoffers",
        &["hasoffers/page1.json", "hasoffers/page2.json"],
    );
    assert_matches_expected("hasoffers", &offers);
    let uk = find(&offers, "1161");
    assert_eq!(uk.countries, ["GB"], "UK is normalized to GB");
    assert_eq!(uk.payout, Some(dec("25.00000")));
    assert_eq!(find(&offers, "1103").model, Some(PayoutModel::RevShare));
    let expired = find(&offers, "1150");
    assert_eq!(
        expired.status,
        OfferStatus::Expired,
        "is_expired overrides status"
    );
    assert!(expired.countries.is_empty(), "Country: [] is worldwide");
    assert_eq!(expired.os, ["android"], "OS inferred from the category");
    let placeholder = find(&offers, "1077");
    assert_eq!(placeholder.expires_at, None, "0000-00-00 is no date");
    assert_eq!(placeholder.preview_url, None);
}

#[test]
fn hasoffers_without_limit_reads_the_object_one_level_up() {
    let offers = map_pages("hasoffers", &["hasoffers/nolimit.json"]);
    let ids: Vec<&str> = offers.iter().map(|o| o.external_id.as_str()).collect();
    assert_eq!(ids, ["1042", "1161"]);
}

#[test]
fn hasoffers_tracking_link_comes_from_the_per_offer_request() {
    let network = network("hasoffers");
    let enrich = &network.enrich[0];
    let mut offer = map_pages("hasoffers", &["hasoffers/page1.json"]).remove(0);
    assert_eq!(offer.tracking_url, None);
    let record: Value = serde_json::from_str(offer.raw.get()).unwrap();
    let url = enrich
        .url
        .render(Some(&record), &|name| Some(format!("<{name}>")));
    assert_eq!(url, "https://<network_id>.api.hasoffers.com/Apiv3/json");
    let offer_id = enrich.query.iter().find(|(k, _)| k == "offer_id").unwrap();
    assert_eq!(offer_id.1.render(Some(&record), &|_| None), "1042");
    let response: Value =
        serde_json::from_slice(&fixture("hasoffers/subrequest_generateTrackingLink.json")).unwrap();
    Mapping::enrich(&enrich.fields, &network.null_values, &mut offer, &response).unwrap();
    assert_eq!(
        offer.tracking_url.as_deref(),
        Some("https://examplenet.go2cloud.org/aff_c?offer_id=1042&aff_id=7788")
    );
}

#[test]
fn trackier_maps_every_fixture_offer_and_stops_on_the_empty_page() {
    let offers = map_pages(
        "trackier",
        &[
            "trackier/page1.json",
            "trackier/page2.json",
            "trackier/page3_empty.json",
        ],
    );
    assert_matches_expected("trackier", &offers);
    // A rate that is a number in one commission and a string in the next.
    let tiered = find(&offers, "96");
    assert_eq!(tiered.payouts[1].payout, dec("0.45"));
    assert_eq!(
        tiered.category.as_deref(),
        Some("Entertainment"),
        "trailing space trimmed"
    );
    assert!(
        find(&offers, "97").countries.is_empty(),
        "[\"ALL\"] is worldwide"
    );
    assert_eq!(find(&offers, "97").preview_url, None, "null preview");
}

#[test]
fn cake_xml_maps_every_fixture_offer() {
    let offers = map_pages("cake", &["cake/page1.xml", "cake/page2.xml"]);
    assert_matches_expected("cake", &offers);
    let dollars = find(&offers, "169");
    assert_eq!(
        (dollars.payout, dollars.currency.as_deref()),
        (Some(dec("2.50")), Some("USD"))
    );
    assert_eq!(
        dollars.name, "Eternal Quest ( android)",
        "trailing space trimmed"
    );
    let euros = find(&offers, "4051");
    assert_eq!(
        (euros.payout, euros.currency.as_deref()),
        (Some(dec("11.00")), Some("EUR"))
    );
    assert!(
        euros.countries.is_empty(),
        "empty <allowed_countries /> is worldwide"
    );
    assert_eq!(
        find(&offers, "4102").payout,
        Some(dec("30.00")),
        "\"30.00 %\""
    );
    // xsi:nil campaign_id: not runnable until applied for.
    assert_eq!(find(&offers, "158").status, OfferStatus::Pending);
    assert_eq!(find(&offers, "158").preview_url, None, "empty element");
    assert_eq!(
        find(&offers, "158").os,
        ["ios"],
        "OS from the targeting terms"
    );
}

#[test]
fn cake_single_offer_feed_maps_like_many() {
    let page = String::from_utf8(fixture("cake/page2.xml")).unwrap();
    let start = page.find("<offer>").unwrap();
    let second = page[start + 1..].find("<offer>").unwrap() + start + 1;
    let end = page.find("</offers>").unwrap();
    let single = format!("{}{}", &page[..second], &page[end..]);
    let mapped = network("cake").mapping.map_page(single.as_bytes()).unwrap();
    assert_eq!(mapped.offers.len(), 1);
    assert_eq!(mapped.offers[0].external_id, "4102");
    assert_eq!(mapped.offers[0].countries, ["CA", "US"]);
}

#[test]
fn a_bad_record_is_a_problem_not_a_failed_page() {
    let page = String::from_utf8(fixture("everflow/page1.json"))
        .unwrap()
        .replacen("\"payout_amount\": 3.25", "\"payout_amount\": \"abc\"", 1);
    let mapped = network("everflow")
        .mapping
        .map_page(page.as_bytes())
        .unwrap();
    assert_eq!(mapped.offers.len(), 2);
    assert_eq!(mapped.problems.len(), 1);
    assert_eq!(
        mapped.problems[0].to_string(),
        "record 0 (id 214): field payout: \"abc\" is not a decimal"
    );
}

#[test]
fn truncated_and_deeply_nested_pages_give_clear_errors() {
    let mapping = &network("everflow").mapping;
    let page = fixture("everflow/page1.json");
    let err = mapping.map_page(&page[..page.len() / 2]).unwrap_err();
    assert!(
        err.to_string()
            .contains("not valid JSON: EOF while parsing"),
        "{err}"
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let err = mapping.map_page(deep.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
}

#[test]
fn built_in_networks_are_the_library_files_and_have_no_diagnostics() {
    for (name, text) in manifest::BUILT_IN_NETWORKS {
        let on_disk =
            std::fs::read_to_string(format!("integrations.d/networks/{name}.yaml")).unwrap();
        assert_eq!(&on_disk, text);
        let loaded = manifest::load_texts(&[(format!("{name}.yaml").into(), on_disk)], &|_| None);
        assert!(
            loaded.diagnostics.is_empty(),
            "{name}: {:?}",
            loaded.diagnostics
        );
        assert!(loaded.catalog.networks.contains_key(*name));
    }
}
