//! Issue 16: what the mapping language could not say, each on a response in
//! the shape real APIs send it.

use std::collections::BTreeMap;

mod mapping_support;

use mapping_support::{BASIC, map, network, try_network};
use offersync::offer::PayoutModel;
use rust_decimal::Decimal;

#[test]
fn escaped_text_is_cleaned_by_unescape_or_a_replace_with_groups() {
    let net = network(
        "'$.offers[*]'",
        &format!(
            "{BASIC}\npreview_url: {{path: $.preview, unescape: true}}\ntracking_url: {{path: $.link, replace: [{{pattern: '\\\\/', with: '/'}}, {{pattern: '^http://(.*)$', with: 'https://$1'}}]}}"
        ),
        "",
    );
    let o = &map(
        &net,
        r#"{"offers": [{"id": 1, "name": "A", "preview": "https:\\/\\/apps.example.com\\/app\\/id14417?ls=1", "link": "http:\\/\\/trk.example.com\\/c?o=1"}]}"#,
    )[0];
    assert_eq!(
        o.preview_url.as_deref(),
        Some("https://apps.example.com/app/id14417?ls=1")
    );
    assert_eq!(
        o.tracking_url.as_deref(),
        Some("https://trk.example.com/c?o=1")
    );
}

#[test]
fn an_unusable_optional_field_is_left_empty_with_a_warning_and_required_ones_drop_the_record() {
    let fields = format!(
        "{BASIC}\npreview_url: $.preview\nthumbnail_url: $.icon\npayout: $.payout\ntracking_url: $.link"
    );
    let body = r#"{"offers": [
        {"id": 1, "name": "A", "preview": "apps.example.com/x", "icon": "icon.png", "payout": "2.5", "link": "https://t/1"},
        {"id": 2, "name": "B", "preview": "https://p/2", "icon": "https://i/2", "payout": "abc", "link": "ftp://t/2"},
        {"id": 3, "name": "", "preview": "https://p/3"}
    ]}"#;
    let net = network("'$.offers[*]'", &fields, "");
    let page = net.mapping.map_page(body.as_bytes()).unwrap();
    let ids: Vec<&str> = page.offers.iter().map(|o| o.external_id.as_str()).collect();
    assert_eq!(ids, ["1", "2"], "{:?}", page.problems);
    let first = &page.offers[0];
    assert_eq!(
        (first.preview_url.as_deref(), first.thumbnail_url.as_deref()),
        (None, None)
    );
    assert_eq!(first.payout, Some(Decimal::new(25, 1)));
    assert_eq!(
        first.warnings,
        [
            "field preview_url: \"apps.example.com/x\" is not an http(s) URL; left empty",
            "field thumbnail_url: \"icon.png\" is not an http(s) URL; left empty",
        ]
    );
    assert_eq!(page.offers[1].payout, None);
    assert_eq!(page.offers[1].tracking_url, None);
    assert_eq!(
        page.offers[1].warnings.len(),
        2,
        "{:?}",
        page.offers[1].warnings
    );
    // The name is what an offer cannot exist without.
    assert_eq!(page.problems.len(), 1);
    assert_eq!(page.problems[0].field, "name");

    // A Network may make more fields required: then they drop the record too.
    let net = network(
        "'$.offers[*]'",
        &fields,
        "  required: [tracking_url, payout]\n",
    );
    let page = net.mapping.map_page(body.as_bytes()).unwrap();
    let ids: Vec<&str> = page.offers.iter().map(|o| o.external_id.as_str()).collect();
    assert_eq!(ids, ["1"]);
    let problems: Vec<(Option<&str>, &str)> = page
        .problems
        .iter()
        .map(|p| (p.external_id.as_deref(), p.field))
        .collect();
    // Record 2: its tracking link (read before the payout) is unusable.
    assert_eq!(problems, [(Some("2"), "tracking_url"), (Some("3"), "name")]);

    let error = try_network("'$.offers[*]'", BASIC, "  required: [tracking_link]\n").unwrap_err();
    assert!(
        error.contains("`tracking_link` is not an offer field"),
        "{error}"
    );
    assert!(error.contains("did you mean `tracking_url`?"), "{error}");
}

#[test]
fn each_reads_its_parents_and_the_record_and_nests() {
    // Actions → tariffs → rates, the currency on the record (Admitad-like).
    let net = network(
        "'$.results[*]'",
        &format!(
            "{BASIC}\npayouts:\n  each: ['$.actions[*]', '$.tariffs[*]', '$.rates[*]']\n  fields:\n    payout: $.size\n    currency: {{path: $.currency, from: record}}\n    goal: {{template: '{{{{ $.name }}}}', from: 1}}\n    model: {{path: $.type, from: 1, map: {{sale: revshare, lead: CPL}}}}\n    countries: {{path: $.country, from: parent}}"
        ),
        "",
    );
    let o = &map(
        &net,
        r#"{"results": [{"id": 7, "name": "Shop", "currency": "EUR", "actions": [
            {"name": "Purchase", "type": "sale", "tariffs": [
                {"country": "de", "rates": [{"size": "5"}, {"size": "7.5"}]},
                {"country": "fr", "rates": [{"size": "4"}]}]},
            {"name": "Signup", "type": "lead", "tariffs": [{"country": "de", "rates": [{"size": "1.2"}]}]}
        ]}]}"#,
    )[0];
    // payout currency model countries goal, one row per rate.
    let rows: Vec<String> = o
        .payouts
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p.payout,
                p.currency.as_deref().unwrap_or("-"),
                p.model.map(|m| m.as_str()).unwrap_or("-"),
                p.countries.join(","),
                p.goal.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "5 EUR revshare DE Purchase",
            "7.5 EUR revshare DE Purchase",
            "4 EUR revshare FR Purchase",
            "1.2 EUR CPL DE Signup",
        ]
    );

    let error = try_network(
        "'$[*]'",
        &format!("{BASIC}\ncategory: {{path: $.x, from: parent}}"),
        "",
    )
    .unwrap_err();
    assert!(
        error.contains("belongs in the `fields` of an `each`"),
        "{error}"
    );
    let error = try_network(
        "'$[*]'",
        &format!(
            "{BASIC}\npayouts: {{each: '$.p[*]', fields: {{payout: {{path: $.x, from: 2}}}}}}"
        ),
        "",
    )
    .unwrap_err();
    assert!(
        error.contains("`from: 2` names an `each` level, but 1 level enclose"),
        "{error}"
    );
}

#[test]
fn countries_as_names_alpha3_and_sentinels_never_widen_the_targeting() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\ncountries: {{path: $.geo, split: ','}}\nblocked_countries: {{path: $.not, split: ','}}"
        ),
        "",
    );
    let body = r#"[
        {"id": 1, "name": "A", "geo": "UNITEDSTATES,UNITEDKINGDOM, Cayman Islands,DEU"},
        {"id": 2, "name": "B", "geo": "00"},
        {"id": 3, "name": "C", "geo": "US, Narnia"},
        {"id": 4, "name": "D", "geo": "Narnia"},
        {"id": 5, "name": "E", "geo": "ALL", "not": "Narnia"}
    ]"#;
    let page = net.mapping.map_page(body.as_bytes()).unwrap();
    let got: Vec<(&str, Vec<String>)> = page
        .offers
        .iter()
        .map(|o| (o.external_id.as_str(), o.countries.clone()))
        .collect();
    let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        [
            ("1", codes(&["DE", "GB", "KY", "US"])),
            ("2", codes(&[])),
            ("3", codes(&["US"])),
        ]
    );
    assert_eq!(
        page.offers[2].warnings,
        [
            "field countries: \"Narnia\" ignored (not a country offersync knows); the offer runs in the 1 countries that were read"
        ]
    );
    // Unknown alone would read as worldwide, and a dropped blocked country
    // would let the offer run there: both records are problems.
    let problems: Vec<(Option<&str>, &str)> = page
        .problems
        .iter()
        .map(|p| (p.external_id.as_deref(), p.field))
        .collect();
    assert_eq!(
        problems,
        [(Some("4"), "countries"), (Some("5"), "blocked_countries")]
    );
}

#[test]
fn field_templates_read_params_but_never_secrets() {
    const PARAMS: &str = "  params:\n    api_key: {secret: true}\n    base_url: {default: 'https://api.example.com'}\n";
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\npreview_url: {{template: '{{{{ params.base_url }}}}/offers/{{{{ $.id }}}}'}}"
        ),
        PARAMS,
    );
    let mut params = BTreeMap::new();
    params.insert(
        "base_url".to_string(),
        "https://eu.api.example.com".to_string(),
    );
    let page = net
        .mapping
        .map_page_using(br#"[{"id": 5, "name": "A"}]"#, 1, &params)
        .unwrap();
    assert_eq!(
        page.offers[0].preview_url.as_deref(),
        Some("https://eu.api.example.com/offers/5")
    );

    let error = try_network(
        "'$[*]'",
        &format!("{BASIC}\ntracking_url: {{template: 'https://t/?k={{{{ params.api_key }}}}'}}"),
        PARAMS,
    )
    .unwrap_err();
    assert!(error.contains("is a secret param"), "{error}");
    let error = try_network(
        "'$[*]'",
        &format!("{BASIC}\npreview_url: {{template: '{{{{ params.base }}}}/x'}}"),
        PARAMS,
    )
    .unwrap_err();
    assert!(error.contains("did you mean `params.base_url`?"), "{error}");
}

#[test]
fn keys_with_symbols_are_read_in_brackets_and_the_dotted_error_says_so() {
    let net = network(
        "'$[*]'",
        "external_id: \"$['@id']\"\nname: \"$['offer-name']\"",
        "",
    );
    let o = &map(&net, r#"[{"@id": "9", "offer-name": "A"}]"#)[0];
    assert_eq!((o.external_id.as_str(), o.name.as_str()), ("9", "A"));
    let error = try_network("'$[*]'", "external_id: $.@id\nname: $.name", "").unwrap_err();
    assert!(
        error.contains("written in brackets and quotes: `$['@id']`"),
        "{error}"
    );
}

#[test]
fn hybrid_models_commission_ranges_blocked_os_devices_and_os_versions() {
    let net = network(
        "'$[*]'",
        &format!(
            "{BASIC}\nmodel: $.model\npayout: $.commission\nos: $.os[*]\nblocked_os: $.os_block[*]\ndevices: {{path: $.devices, split: ','}}\nmin_os_version: $.min_os"
        ),
        "",
    );
    let offers = map(
        &net,
        r#"[
        {"id": 1, "name": "A", "model": "CPA+CPS", "commission": "3.5%-6%", "os": ["Android"], "os_block": ["iOS"], "devices": "Phone, Tablet", "min_os": "Android 8.0+"},
        {"id": 2, "name": "B", "model": "CPL", "commission": "4", "devices": "desktop,smart TV"}
    ]"#,
    );
    let a = &offers[0];
    assert_eq!(a.model, Some(PayoutModel::Cpa));
    assert_eq!(a.models, [PayoutModel::Cpa, PayoutModel::Cps]);
    assert_eq!(
        (a.payout, a.payout_max),
        (Some(Decimal::new(35, 1)), Some(Decimal::from(6)))
    );
    assert_eq!(
        (a.os.as_slice(), a.blocked_os.as_slice()),
        (&["android".to_string()][..], &["ios".to_string()][..])
    );
    assert_eq!(a.devices, ["mobile", "tablet"]);
    assert_eq!(a.min_os_version.as_deref(), Some("8.0"));
    let b = &offers[1];
    assert!(b.models.is_empty());
    assert_eq!((b.payout, b.payout_max), (Some(Decimal::from(4)), None));
    assert_eq!(b.devices, ["desktop"]);
    assert_eq!(
        b.warnings,
        ["field devices: \"smart TV\" ignored (not desktop, mobile or tablet)"]
    );
}

#[test]
fn an_error_rule_names_the_apis_own_message() {
    let net = network(
        "'$.response.data[*]'",
        BASIC,
        "  errors:\n    - when: {path: $.response.status, not_in: [\"1\"]}\n      message: $.response.errorMessage\n",
    );
    let page = net
        .mapping
        .map_page(
            br#"{"response": {"status": -1, "errorMessage": "Invalid NetworkToken", "data": []}}"#,
        )
        .unwrap();
    assert_eq!(
        net.mapping.response_error(&page.page).as_deref(),
        Some("Invalid NetworkToken")
    );
    let page = net
        .mapping
        .map_page(br#"{"response": {"status": 1, "data": [{"id": 1, "name": "A"}]}}"#)
        .unwrap();
    assert_eq!(net.mapping.response_error(&page.page), None);
    assert_eq!(page.offers.len(), 1);
}

/// Issue 26.4: CPAlead's payouts per country, `{"US": 2.4, "CA": 1.6}`.
#[test]
fn keys_of_an_object_are_read_inside_each_and_a_path_with_no_keys_is_refused() {
    let payouts = "payouts:\n  each: '$.payouts_per_country.*'\n  fields:\n    payout: $\n    countries: '@key'";
    let net = network("'$.offers[*]'", &format!("{BASIC}\n{payouts}"), "");
    let offers = map(
        &net,
        r#"{"offers": [{"id": 7, "name": "Quiz", "payouts_per_country": {"US": 2.4, "CA": "1.6"}}]}"#,
    );
    let mut rates: Vec<(String, Vec<String>)> = offers[0]
        .payouts
        .iter()
        .map(|p| {
            (
                p.payout.to_string(),
                p.countries.iter().map(|c| c.to_string()).collect(),
            )
        })
        .collect();
    rates.sort();
    assert_eq!(
        rates,
        [
            ("1.6".to_string(), vec!["CA".to_string()]),
            ("2.4".to_string(), vec!["US".to_string()])
        ]
    );

    // `each` on the object itself, or on a list's item by index: no entry
    // has a key there, so `@key` would always be empty.
    for each in ["$.payouts_per_country", "$.rates[0]"] {
        let error = try_network(
            "'$.offers[*]'",
            &format!("{BASIC}\npayouts:\n  each: '{each}'\n  fields:\n    payout: $.amount\n    countries: '@key'"),
            "",
        )
        .unwrap_err();
        assert!(
            error.contains("`@key` reads the key of an object's entry"),
            "{error}"
        );
        assert!(error.contains("end the path in `.*`"), "{error}");
    }
}
