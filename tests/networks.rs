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
        .replacen(
            "\"name\": \"FitTrack Pro - iOS - US - CPI\"",
            "\"name\": {\"en\": \"FitTrack\"}",
            1,
        );
    let mapped = network("everflow")
        .mapping
        .map_page(page.as_bytes())
        .unwrap();
    assert_eq!(mapped.offers.len(), 2);
    assert_eq!(mapped.problems.len(), 1);
    assert_eq!(
        mapped.problems[0].to_string(),
        "record 0 (id 214): field name: an object is not text (add a path to a value inside it)"
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

/// Issue 16: every built-in network maps its fixtures, checked offer by offer
/// against the expected file, with its messy cases pinned below.
#[test]
fn admitad_reads_nested_rates_ranges_and_region_groups() {
    let offers = map_pages("admitad", &["admitad/page1.json", "admitad/page2.json"]);
    assert_matches_expected("admitad", &offers);
    let ali = find(&offers, "6");
    assert_eq!(
        (ali.payout, ali.payout_max),
        (Some(dec("0.5")), Some(dec("3")))
    );
    assert!(ali.countries.is_empty(), "region 00 is All");
    // actions → tariffs → rates, with the action's name and the program's currency.
    assert_eq!(ali.payouts[1].countries, ["RU"]);
    assert_eq!(ali.payouts[1].goal.as_deref(), Some("Paid order"));
    assert_eq!(ali.payouts[1].currency.as_deref(), Some("USD"));
    let card = find(&offers, "17");
    assert_eq!(
        card.currency.as_deref(),
        Some("USD"),
        "\"5USD\" names its currency"
    );
    assert_eq!(card.countries, ["KZ", "RU"], "01 (CIS) is a group: dropped");
    assert_eq!(card.warnings.len(), 1, "{:?}", card.warnings);
    assert_eq!(card.status, OfferStatus::Pending);
    assert_eq!(find(&offers, "23").status, OfferStatus::Paused);
}

#[test]
fn scaleo_reads_the_default_goal_and_geo_strings() {
    let offers = map_pages(
        "scaleo",
        &[
            "scaleo/page1.json",
            "scaleo/page2.json",
            "scaleo/page3_empty.json",
        ],
    );
    assert_matches_expected("scaleo", &offers);
    assert_eq!(find(&offers, "1201").payout, Some(dec("2.50")));
    let uk = find(&offers, "1305");
    assert_eq!(uk.countries, ["GB"], "an English name");
    assert_eq!(uk.thumbnail_url, None, "a bare file name is left out");
    assert_eq!(uk.model, Some(PayoutModel::RevShare));
    assert_eq!(find(&offers, "1410").blocked_countries, ["IR", "US"]);
    assert!(
        matches!(
            &network("scaleo").pagination,
            manifest::model::PaginationDef::Page {
                total_count: Some(manifest::model::Total::Header(h)),
                ..
            } if h == "X-Pagination-Total-Count"
        ),
        "the total is only in a header"
    );
}

#[test]
fn adgatemedia_reads_events_and_its_error_envelope() {
    let offers = map_pages("adgatemedia", &["adgatemedia/page1.json"]);
    assert_matches_expected("adgatemedia", &offers);
    let raid = find(&offers, "4849");
    assert_eq!(raid.payouts.len(), 2);
    assert_eq!(raid.os, ["ios"], "from the name");
    let network = network("adgatemedia");
    let page = network
        .mapping
        .map_page(&fixture("adgatemedia/error.json"))
        .unwrap();
    assert_eq!(
        network.mapping.response_error(&page.page).as_deref(),
        Some("Invalid API key or affiliate ID.")
    );
}

#[test]
fn adscend_reads_placeholders_and_daily_caps() {
    let offers = map_pages("adscend", &["adscend/page1.json"]);
    assert_matches_expected("adscend", &offers);
    assert_eq!(
        find(&offers, "225").expires_at,
        None,
        "0000-00-00 is no date"
    );
    assert!(find(&offers, "225").caps.is_empty(), "a null cap is no cap");
    assert_eq!(find(&offers, "4410").caps[0].value, dec("500"));
}

#[test]
fn impact_reads_squashed_region_names_and_pages_by_link() {
    let offers = map_pages("impact", &["impact/page1.json", "impact/page2.json"]);
    assert_matches_expected("impact", &offers);
    assert_eq!(find(&offers, "10306").countries, ["CA", "GB", "US"]);
    assert_eq!(find(&offers, "20411").countries, ["AG", "DO", "KY"]);
    assert_eq!(find(&offers, "30777").status, OfferStatus::Expired);
    assert_eq!(
        network("impact").enrich.len(),
        1,
        "payouts come per program"
    );
}

#[test]
fn involveasia_logs_in_posts_its_paging_form_and_maps_every_fixture_offer() {
    let offers = map_pages(
        "involveasia",
        &["involveasia/page1.json", "involveasia/page2.json"],
    );
    assert_matches_expected("involveasia", &offers);
    assert_eq!(find(&offers, "5126").name, "Agoda & Partners (APAC)");
    assert_eq!(
        find(&offers, "25").tracking_url,
        None,
        "an empty tracking link is none"
    );
    let net = network("involveasia");
    assert!(
        matches!(net.request.method, manifest::raw::Method::POST),
        "the offer list is a POST"
    );
    assert!(
        matches!(net.request.body, Some(manifest::model::BodyDef::Form(_))),
        "its paging fields go in a form body"
    );
    match &net.auth {
        manifest::model::AuthDef::Login(login) => {
            assert!(matches!(
                login.body,
                Some(manifest::model::BodyDef::Form(_))
            ));
            assert_eq!(login.lifetime_seconds, Some(7200));
            assert_eq!(
                login.send,
                manifest::model::TokenPlace::Header {
                    name: "Authorization".into(),
                    prefix: "Bearer ".into(),
                    suffix: String::new(),
                }
            );
        }
        other => panic!("involveasia logs in for a token, not {other:?}"),
    }
}

#[test]
fn maxbounty_maps_every_fixture_campaign_and_posts_json_for_its_tracking_link() {
    let offers = map_pages(
        "maxbounty",
        &["maxbounty/page1.json", "maxbounty/page2.json"],
    );
    assert_matches_expected("maxbounty", &offers);
    assert_eq!(
        find(&offers, "18877").payout,
        Some(dec("30")),
        "default_rate"
    );
    assert_eq!(find(&offers, "18877").model, Some(PayoutModel::RevShare));
    assert_eq!(find(&offers, "9931").status, OfferStatus::Paused);
    let network = network("maxbounty");
    match &network.auth {
        manifest::model::AuthDef::Login(login) => {
            assert!(matches!(
                login.body,
                Some(manifest::model::BodyDef::Json(_))
            ));
            assert_eq!(login.lifetime_seconds, Some(7200));
            assert_eq!(
                login.send,
                manifest::model::TokenPlace::Header {
                    name: "x-access-token".into(),
                    prefix: String::new(),
                    suffix: String::new(),
                }
            );
        }
        other => panic!("maxbounty logs in for a token, not {other:?}"),
    }
    // The tracking link: one POST per campaign, its id in a JSON body.
    let enrich = &network.enrich[0];
    assert!(matches!(enrich.method, manifest::raw::Method::POST));
    let mut offer = map_pages("maxbounty", &["maxbounty/page1.json"]).remove(0);
    assert_eq!(offer.tracking_url, None);
    let record: Value = serde_json::from_str(offer.raw.get()).unwrap();
    let url = enrich
        .url
        .render(Some(&record), &|name| Some(format!("<{name}>")));
    assert_eq!(url, "<base_url>/trackinglink");
    let Some(manifest::model::BodyDef::Json(body)) = &enrich.body else {
        panic!("a JSON body, not {:?}", enrich.body);
    };
    let (key, value) = &body[0];
    assert_eq!(key, "campaign_id");
    assert_eq!(value.render(Some(&record), &|_| None), "20145");
    let response: Value = serde_json::from_slice(&fixture("maxbounty/trackinglink.json")).unwrap();
    Mapping::enrich(&enrich.fields, &network.null_values, &mut offer, &response).unwrap();
    assert_eq!(
        offer.tracking_url.as_deref(),
        Some("https://www.mb103.example/lnk.asp?o=20145&c=918277&a=123456")
    );
}

#[test]
fn tapfiliate_pages_by_the_link_header_and_maps_every_fixture_program() {
    let offers = map_pages(
        "tapfiliate",
        &["tapfiliate/page1.json", "tapfiliate/page2.json"],
    );
    assert_matches_expected("tapfiliate", &offers);
    assert_eq!(find(&offers, "bloom-eu").name, "Bloom & Co (EU)");
    assert_eq!(
        find(&offers, "beta-program").preview_url,
        None,
        "an empty landing page is none"
    );
    assert_eq!(find(&offers, "42117").currency.as_deref(), Some("GBP"));
    assert!(
        matches!(
            network("tapfiliate").pagination,
            manifest::model::PaginationDef::LinkHeader
        ),
        "the next page is only in the Link header"
    );
}

#[test]
fn cpalead_reads_a_payout_per_country_from_the_keys() {
    let offers = map_pages("cpalead", &["cpalead/page1.json"]);
    assert_matches_expected("cpalead", &offers);
    let course = find(&offers, "30002");
    let rates: Vec<(&[String], Decimal)> = course
        .payouts
        .iter()
        .map(|p| (p.countries.as_slice(), p.payout))
        .collect();
    assert_eq!(
        rates,
        [
            (&["DE".to_string()][..], dec("3.1")),
            (&["FR".to_string()][..], dec("2.75")),
            (&["GB".to_string()][..], dec("3.5")),
        ],
        "each rate carries its key as its country, never worldwide"
    );
    assert!(
        find(&offers, "30877").payouts.is_empty(),
        "an empty object is no rate"
    );
    assert_eq!(find(&offers, "31547").caps[0].value, dec("250"));
    assert!(find(&offers, "29811").caps.is_empty(), "false is no cap");
}

#[test]
fn awin_cj_partnerize_farly_and_convertiser_map_every_fixture_offer() {
    let awin = map_pages("awin", &["awin/page1.json"]);
    assert_matches_expected("awin", &awin);
    assert_eq!(find(&awin, "1001").status, OfferStatus::Paused);
    let awin_net = network("awin");
    assert_eq!(
        awin_net
            .rate_limit
            .map(|r| (r.requests, r.period.as_secs())),
        Some((20, 60)),
        "Awin allows 20 calls a minute"
    );

    let cj = map_pages("cj", &["cj/page1.xml", "cj/page2.xml"]);
    assert_matches_expected("cj", &cj);
    let acme = find(&cj, "1513033");
    assert_eq!(
        (acme.model, acme.payout),
        (Some(PayoutModel::RevShare), Some(dec("8.00")))
    );
    assert_eq!(acme.payouts[1].model, Some(PayoutModel::Cpl));
    assert!(
        find(&cj, "3100200").payouts.is_empty(),
        "<actions/> is none"
    );

    let partnerize = map_pages("partnerize", &["partnerize/page1.json"]);
    assert_matches_expected("partnerize", &partnerize);
    assert_eq!(
        find(&partnerize, "1100l77").description.as_deref(),
        Some("Gadgets pour tous."),
        "no English description: the first language"
    );

    let farly = map_pages("farly", &["farly/page1.json"]);
    assert_matches_expected("farly", &farly);
    let coin = find(&farly, "90211");
    assert_eq!(
        (coin.os.as_slice(), coin.devices.as_slice()),
        (
            &["ios".to_string()][..],
            &["mobile".to_string(), "tablet".to_string()][..]
        )
    );

    let convertiser = map_pages(
        "convertiser",
        &["convertiser/page1.json", "convertiser/page2.json"],
    );
    assert_matches_expected("convertiser", &convertiser);
    assert_eq!(
        find(&convertiser, "c0a911").payout,
        None,
        "0.00 is no CPC rate"
    );
}

#[test]
fn every_network_file_is_built_in_and_the_catalogue_is_current() {
    let mut on_disk: Vec<String> = std::fs::read_dir("integrations.d/networks")
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let built_in: Vec<&str> = manifest::BUILT_IN_NETWORKS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(on_disk, built_in);
    assert!(
        built_in.len() >= 15,
        "the library has {} networks",
        built_in.len()
    );
    for name in &built_in {
        assert!(
            Path::new(&format!("tests/fixtures/expected/{name}.jsonl")).exists(),
            "{name} has fixtures checked offer by offer"
        );
    }
    assert_eq!(
        std::fs::read_to_string("docs/networks.md").unwrap(),
        offersync::cli::catalogue::markdown(),
        "docs/networks.md is stale: run `offersync networks --format markdown > docs/networks.md`"
    );
}

/// Issue 17: every library network carries `tests:` in its own file, and
/// they pass through the same runner `offersync test` and `validate` use.
#[test]
fn every_library_network_carries_passing_tests_in_its_file() {
    let loaded = manifest::load_dir_with(Path::new("integrations.d"), manifest::Secrets::Offline);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    for (name, _) in manifest::BUILT_IN_NETWORKS {
        let network = &loaded.catalog.networks[*name];
        assert!(!network.tests.is_empty(), "{name} has no tests in its file");
        for outcome in offersync::cli::testing::run(network) {
            assert!(outcome.passed(), "{}", outcome.lines().join("\n"));
            assert!(
                outcome.unmatched.is_empty(),
                "{name}: {}",
                outcome.lines().join("\n")
            );
        }
    }
}
