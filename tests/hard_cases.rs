//! The fourteen hard cases of tests/fixtures/networks/README.md, each written
//! in mapping YAML alone and run on a small response of that shape.

mod mapping_support;

use mapping_support::{BASIC, map, network};
use offersync::offer::{OfferStatus, PayoutModel};
use rust_decimal::Decimal;
use serde_json::json;

#[test]
fn case_01_offers_keyed_by_id_with_the_key_as_the_only_id() {
    let net = network(
        "{first_of: ['$.data.offers.*', '$.data[?(@.name)]']}",
        "external_id: '@key'\nname: $.name",
        "",
    );
    let paged = map(
        &net,
        r#"{"data": {"offers": {"17": {"name": "A"}, "18": {"name": "B"}}}}"#,
    );
    let flat = map(
        &net,
        r#"{"data": {"17": {"name": "A"}, "18": {"name": "B"}}}"#,
    );
    for offers in [paged, flat] {
        assert_eq!(
            offers
                .iter()
                .map(|o| o.external_id.as_str())
                .collect::<Vec<_>>(),
            ["17", "18"]
        );
    }
}

#[test]
fn case_02_fields_spread_over_sibling_wrappers() {
    let net = network(
        "'$.data.*'",
        "external_id: $.offer.id\nname: $.offer.name\ncountries: '$.offer_geo.countries[*]'\ncaps: {each: '$.offer_cap[*]', fields: {event: {value: conversions}, period: $.per, value: $.n}}",
        "",
    );
    let o = &map(
        &net,
        r#"{"data": [{"offer": {"id": 1, "name": "A"}, "offer_geo": {"countries": ["de"]}, "offer_cap": [{"per": "day", "n": 5}]}]}"#,
    )[0];
    assert_eq!(o.countries, ["DE"]);
    assert_eq!(o.caps[0].value, Decimal::from(5));
}

#[test]
fn case_03_numbers_and_booleans_sent_as_strings() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\npayout: $.rate\nstatus: {{first_of: [{{when: {{path: $.active, in: ['false', '0', false]}}, value: paused}}, {{value: active}}]}}"
        ),
        "",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "A", "rate": "2.40000", "active": "false"}, {"id": 2, "name": "B", "rate": 1.5, "active": "1"}]"#,
    );
    assert_eq!(
        (offers[0].payout, offers[0].status),
        (Some("2.40000".parse().unwrap()), OfferStatus::Paused)
    );
    assert_eq!(
        (offers[1].payout, offers[1].status),
        (Some("1.5".parse().unwrap()), OfferStatus::Active)
    );
}

#[test]
fn case_04_units_inside_values() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\npayout: {{path: $.p, range: high}}\ncurrency: {{path: $.p, match: [{{pattern: '^€', value: EUR}}, {{pattern: '^\\$', value: USD}}]}}"
        ),
        "",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "A", "p": "€11.00"}, {"id": 2, "name": "B", "p": "3.5%-6%"}, {"id": 3, "name": "C", "p": "$2.50"}]"#,
    );
    let payouts: Vec<_> = offers
        .iter()
        .map(|o| o.payout.unwrap().to_string())
        .collect();
    assert_eq!(payouts, ["11.00", "6", "2.50"]);
    assert_eq!(offers[0].currency.as_deref(), Some("EUR"));
}

#[test]
fn case_05_countries_in_many_encodings() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\ncountries: {{first_of: ['$.list[*]', {{path: $.csv, split: ','}}, '$.objs[*].country_code', {{path: $.keyed, keys: true}}, '$.entries[?(@.include == true)].code']}}\nblocked_countries: {{first_of: ['$.deny[*]', '$.entries[?(@.include == false)].code']}}"
        ),
        "",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "array", "list": ["us", "UK"]},
            {"id": 2, "name": "csv", "csv": "US, CA,"},
            {"id": 3, "name": "objects", "objs": [{"country_code": "DE"}]},
            {"id": 4, "name": "keyed", "keyed": {"FR": {"n": "France"}, "IT": {}}},
            {"id": 5, "name": "flags", "entries": [{"code": "BR", "include": true}, {"code": "MX", "include": false}]},
            {"id": 6, "name": "allow+deny", "list": ["ALL"], "deny": ["RU"]},
            {"id": 7, "name": "empty", "list": []}]"#,
    );
    let got: Vec<(Vec<String>, Vec<String>)> = offers
        .iter()
        .map(|o| (o.countries.clone(), o.blocked_countries.clone()))
        .collect();
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        [
            (s(&["GB", "US"]), s(&[])),
            (s(&["CA", "US"]), s(&[])),
            (s(&["DE"]), s(&[])),
            (s(&["FR", "IT"]), s(&[])),
            (s(&["BR"]), s(&["MX"])),
            (s(&[]), s(&["RU"])),
            (s(&[]), s(&[])),
        ]
    );
}

#[test]
fn case_06_payouts_nested_per_country_goal_or_os() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\npayout: {{first_of: ['$.payouts.entries[?(@.is_default == true)].amount', '$.payouts.entries[0].amount']}}\npayouts: {{each: '$.payouts.entries[*]', fields: {{payout: $.amount, countries: '$.geo[*]', goal: $.goal, os: $.os}}}}"
        ),
        "",
    );
    let o = &map(
        &net,
        r#"[{"id": 1, "name": "A", "payouts": {"total": 2, "entries": [
        {"amount": 1, "geo": ["US"], "goal": "install", "os": "iOS"},
        {"amount": "2.5", "geo": ["DE", "AT"], "goal": "deposit", "is_default": true}]}}]"#,
    )[0];
    assert_eq!(o.payout, Some("2.5".parse().unwrap()));
    assert_eq!(o.payouts.len(), 2);
    assert_eq!(
        (o.payouts[0].os.clone(), o.payouts[1].countries.clone()),
        (
            vec!["ios".to_string()],
            vec!["AT".to_string(), "DE".to_string()]
        )
    );
}

#[test]
fn case_07_fields_from_one_more_request_per_offer() {
    let net = network(
        "'$[*]'",
        BASIC,
        "  params: {key: {secret: true}}\n  enrich:\n    - name: link\n      url: 'http://127.0.0.1/link?id={{ record.$.id }}&k={{ params.key }}'\n      when: {path: $.approved, equals: true}\n      fields: {tracking_url: $.data.url}\n",
    );
    let e = &net.enrich[0];
    assert_eq!(
        e.url.render(Some(&json!({"id": 9})), &|_| Some("K".into())),
        "http://127.0.0.1/link?id=9&k=K"
    );
    let mut offer = map(&net, r#"[{"id": 9, "name": "A", "approved": true}]"#).remove(0);
    offersync::mapping::Mapping::enrich(
        &e.fields,
        &[],
        &mut offer,
        &json!({"data": {"url": "https://t.example/9"}}),
    )
    .unwrap();
    assert_eq!(offer.tracking_url.as_deref(), Some("https://t.example/9"));
}

#[test]
fn case_08_xml_with_namespaces_nil_empty_elements_and_one_offer() {
    let net = network(
        "'$.feed.offers.offer[*]'",
        &format!(
            "{BASIC}\nstatus: {{first_of: [{{when: {{path: $.campaign, exists: false}}, value: pending}}, {{value: active}}]}}\npreview_url: $.preview\ncountries: '$.countries.country[*].code'"
        ),
        "  format: xml\n  xml: {lists: [offer, country]}\n",
    );
    let xml = r#"<?xml version="1.0"?><f:feed xmlns:f="urn:f" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><f:offers><f:offer><f:id>1</f:id><f:name>A &amp; B</f:name><f:campaign xsi:nil="true"/><f:preview/><f:countries><f:country><f:code>US</f:code></f:country></f:countries></f:offer></f:offers></f:feed>"#;
    let o = &map(&net, xml)[0];
    assert_eq!(
        (
            o.name.as_str(),
            o.status,
            o.preview_url.clone(),
            o.countries.clone()
        ),
        ("A & B", OfferStatus::Pending, None, vec!["US".to_string()])
    );
}

#[test]
fn case_09_placeholder_strings_mean_null() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\nexpires_at: $.until\ntracking_url: {{path: $.link, null_if: ['Need to apply']}}\ncountries: '$.geo[*]'"
        ),
        "  null_values: ['N/A']\n",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "A", "until": "0000-00-00 00:00:00", "link": "Need to apply", "geo": ""},
                              {"id": 2, "name": "B", "until": "N/A", "link": "", "geo": ["N/A"]}]"#,
    );
    for o in &offers {
        assert_eq!(
            (o.expires_at, o.tracking_url.as_deref(), o.countries.len()),
            (None, None, 0)
        );
    }
}

#[test]
fn case_10_pagination_styles_are_declared_per_network() {
    for pagination in [
        "{kind: page, param: page, size_param: limit, size: 100, total_pages: $.pageCount}",
        "{kind: page, param: page, total_count: $.paging.total_count}",
        "{kind: offset, param: start_at_row, start: 1, size_param: row_limit, size: 500, total_count: $.row_count}",
        "{kind: offset, param: offset, size_param: per_page, size: 50, unit: pages}",
        "{kind: cursor, param: page, path: $.pagination.next_page}",
        "{kind: next_url, path: $.links.next}",
        "{kind: none}",
    ] {
        let net = network("'$[*]'", BASIC, &format!("  pagination: {pagination}\n"));
        assert_eq!(
            map(&net, r#"[{"id": 1, "name": "bare top-level array"}]"#).len(),
            1
        );
    }
}

#[test]
fn case_11_auth_styles_are_declared_per_network() {
    for auth in [
        "{kind: query, param: api_key, value: '{{ params.key }}'}",
        "{kind: header, name: X-Api-Key, value: '{{ params.key }}'}",
        "{kind: basic, username: '{{ params.user }}', password: '{{ params.key }}'}",
        "{kind: bearer, token: '{{ params.key }}'}",
        "{kind: oauth2, token_url: 'http://127.0.0.1/token', client_id: '{{ params.user }}', client_secret: '{{ params.key }}', scope: offers}",
    ] {
        let extra = format!("  params: {{key: {{secret: true}}, user: {{}}}}\n  auth: {auth}\n");
        network("'$[*]'", BASIC, &extra);
    }
}

#[test]
fn case_12_html_and_multi_language_fields() {
    let net = network(
        "'$[*]'",
        &format!("{BASIC}\ndescription: {{first_of: [$.desc.en, '$.desc.*'], strip_html: true}}"),
        "",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "A", "desc": {"en": "", "ru": "<p>Привет &amp; <b>мир</b></p>"}}]"#,
    );
    assert_eq!(offers[0].description.as_deref(), Some("Привет & мир"));
}

#[test]
fn case_13_os_absent_implied_by_name_or_an_id_lookup() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\nos: {{first_of: [{{path: '$.platform_ids[*]', map: {{'1': android, '2': ios, '*': null}}}}, {{path: $.name, match: [{{pattern: '(?i)\\(android\\)', value: android}}, {{pattern: '(?i)mobile - ios', value: ios}}]}}]}}"
        ),
        "",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "Game (Android)"}, {"id": 2, "name": "Mobile - iOS"}, {"id": 3, "name": "X", "platform_ids": [2, 1]}, {"id": 4, "name": "Desktop"}]"#,
    );
    let os: Vec<Vec<String>> = offers.into_iter().map(|o| o.os).collect();
    assert_eq!(
        os,
        [vec!["android"], vec!["ios"], vec!["android", "ios"], vec![]]
    );
}

#[test]
fn case_14_status_spread_over_several_fields() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\nstatus:\n  first_of:\n    - {{when: {{path: $.expired, equals: '1'}}, value: expired}}\n    - {{when: {{path: $.approval, not_in: [approved]}}, value: pending}}\n    - {{path: $.status, map: {{live: active, stopped: paused}}}}\nmodel: {{path: $.type, map: {{cpa_percentage: revshare}}}}"
        ),
        "",
    );
    let offers = map(
        &net,
        r#"[{"id": 1, "name": "A", "expired": 1, "approval": "approved", "status": "live"},
        {"id": 2, "name": "B", "expired": "0", "approval": "pending", "status": "live"},
        {"id": 3, "name": "C", "expired": "0", "approval": "approved", "status": "stopped", "type": "cpa_percentage"}]"#,
    );
    let statuses: Vec<OfferStatus> = offers.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            OfferStatus::Expired,
            OfferStatus::Pending,
            OfferStatus::Paused
        ]
    );
    assert_eq!(offers[2].model, Some(PayoutModel::RevShare));
}
