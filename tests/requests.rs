//! Issue 26: the request shapes real networks use, through the real binary
//! against the mock network.

mod common;

use std::process::{Command, Output};

use common::*;

/// `offersync sync acme` on an SQLite store in the manifest directory, with
/// the request clock fixed at 2026-01-01T00:00:00Z.
fn sync_at_fixed_time(m: &Manifests) -> Output {
    Command::new(binary())
        .args(["sync", "acme", "--dir"])
        .arg(m.path())
        .arg("--database-url")
        .arg(format!("sqlite://{}", m.path().join("store.db").display()))
        .env("OFFERSYNC_FIXED_NOW", "2026-01-01T00:00:00Z")
        .output()
        .expect("run offersync")
}

/// `offersync validate --offline` on the mock network with `network` as its
/// Network file: the exit code and everything printed.
fn validate_offline(network: &str) -> (Option<i32>, String) {
    let m = Manifests::new(network, &integration_yaml("acme", "http://127.0.0.1:9", ""));
    let out = Command::new(binary())
        .args(["validate", "--offline", "--dir"])
        .arg(m.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// `offersync campaigns acme --format json` on the store `sync` wrote.
fn campaigns_json(m: &Manifests) -> String {
    let store = format!("sqlite://{}", m.path().join("store.db").display());
    let out = Command::new(binary())
        .args([
            "campaigns",
            "acme",
            "--format",
            "json",
            "--database-url",
            &store,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_query_is_reproduced_under_a_fixed_clock() {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    // Farly's shape: the time and sha1(time + key) in the query; and an HMAC
    // of a dated string, as request-signing APIs ask.
    let network = network_yaml(PAGE_PAGINATION, "{kind: none}").replace(
        "    url: \"{{ params.base_url }}/offers\"\n",
        "    url: \"{{ params.base_url }}/offers\"
    query:
      timestamp: '{{ now.unix }}'
      hash: '{{ sha1(now.unix, params.api_key) }}'
      signature: \"{{ hmac_sha256_base64(params.api_key, 'GET&', now.format('%Y-%m-%d')) }}\"
",
    );
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let out = sync_at_fixed_time(&m);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "three pages");
    for seen in &requests {
        // Computed outside offersync:
        //   printf '1767225600sk-live-7f3a9c2e5b' | sha1sum
        //   printf 'GET&2026-01-01' | openssl dgst -sha256 -hmac sk-live-7f3a9c2e5b -binary | base64
        assert_eq!(seen.query["timestamp"], "1767225600");
        assert_eq!(
            seen.query["hash"],
            "e23efb4ab3cfe7d0d6a79b4845feb429d2f02435"
        );
        assert_eq!(
            seen.query["signature"],
            "35GmMILmPAr++4uvgAXjDVRuujfiMXYnTtN2eYQqsUA="
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("25"), "{stdout}");
}

#[test]
fn the_time_in_an_offer_field_is_refused_with_the_reason() {
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "    description: $.description\n",
        "    description: {template: '{{ now.unix }} {{ $.description }}'}\n",
    );
    let (code, text) = validate_offline(&network);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("networks/mocknet.yaml"), "{text}");
    assert!(text.contains("only a request"), "{text}");
}

/// `offersync sync acme` on an SQLite store in the manifest directory.
fn sync(m: &Manifests) -> Output {
    Command::new(binary())
        .args(["sync", "acme", "--dir"])
        .arg(m.path())
        .arg("--database-url")
        .arg(format!("sqlite://{}", m.path().join("store.db").display()))
        .output()
        .expect("run offersync")
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Involve Asia's shape: the pages are POSTs whose paging parameters are form
/// fields; MaxBounty's: each campaign's tracking link is a POST with a JSON
/// body whose `campaign_id` is a number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_per_offer_requests_post_form_and_json_bodies() {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH)
        .replace(
            "    url: \"{{ params.base_url }}/offers\"\n",
            "    url: \"{{ params.base_url }}/offers\"
    method: POST
    form:
      filters[status]: active
      key: '{{ params.api_key }}'
",
        )
        .replace(
            "    caps:\n",
            "    tracking_url: {value: 'https://placeholder.example.com/'}
    caps:\n",
        )
        + "  enrich:
    - name: tracking link
      url: '{{ params.base_url }}/links'
      method: POST
      json:
        campaign_id: '{{ record.$.id }}'
        ref: 'o{{ record.$.id }}'
        as_text: \"{{ record.$.id }}{{ '' }}\"
        note: 'say \"hi\" & bye'
      fields:
        tracking_url: $.data.url
";
    let network = network.replace("    tracking_url: $.tracking_url\n", "");
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let out = sync(&m);
    assert_success(&out);

    let posted = mock.with_state(|s| s.posted.clone());
    let (pages, links): (Vec<_>, Vec<_>) = posted.iter().partition(|p| {
        p.content_type
            .starts_with("application/x-www-form-urlencoded")
    });
    // The paging parameters went in the form, beside the Network's fields,
    // and not in the URL.
    let mut page_numbers: Vec<String> = pages
        .iter()
        .map(|p| {
            let fields: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(p.body.as_bytes())
                    .into_owned()
                    .collect();
            assert_eq!(fields["filters[status]"], "active", "{}", p.body);
            assert_eq!(fields["key"], API_KEY);
            assert_eq!(fields["page_size"], "10");
            assert!(!p.url_query.contains_key("page"), "{p:?}");
            fields["page"].clone()
        })
        .collect();
    page_numbers.sort();
    assert_eq!(page_numbers, ["1", "2", "3"]);
    // One JSON POST per offer, each value encoded (quotes and & intact).
    assert_eq!(links.len(), 25);
    for link in &links {
        assert_eq!(link.content_type, "application/json");
        let value: serde_json::Value = serde_json::from_str(&link.body).unwrap();
        assert_eq!(value["note"], "say \"hi\" & bye");
        // MaxBounty reads `campaign_id` as a number: a member that is one
        // record placeholder keeps the record's number; text around it
        // makes it text.
        let id = value["campaign_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{value}"));
        assert_eq!(value["ref"], format!("o{id}"));
        assert_eq!(value["as_text"], id.to_string());
    }
    let campaigns = campaigns_json(&m);
    let text = campaigns;
    assert!(text.contains("https://track.example.com/c/7"), "{text}");
    assert!(!text.contains("placeholder.example.com"), "{text}");
}

#[test]
fn a_body_needs_post_and_a_request_has_one_body() {
    let with_request = |lines: &str| {
        network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
            "    url: \"{{ params.base_url }}/offers\"\n",
            &format!("    url: \"{{{{ params.base_url }}}}/offers\"\n{lines}"),
        )
    };
    let validate = |network: &str| validate_offline(network).1;
    let text = validate(&with_request("    form: {page: '1'}\n"));
    assert!(text.contains("a GET request carries no body"), "{text}");
    assert!(text.contains("add `method: POST`"), "{text}");
    let text = validate(&with_request(
        "    method: POST\n    form: {a: '1'}\n    json: {b: '2'}\n",
    ));
    assert!(text.contains("form and json are given"), "{text}");
}

/// Tapfiliate pages only by `Link: <…>; rel="next"`; Scaleo and others
/// state totals only in headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_the_link_header_and_totals_are_read_from_headers() {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let network = network_yaml("{kind: link_header}", HEADER_AUTH);
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let out = sync(&m);
    assert_success(&out);
    let cursors: Vec<Option<String>> = mock
        .requests()
        .iter()
        .map(|r| r.query.get("next").cloned())
        .collect();
    assert_eq!(cursors, [None, Some("c1".into()), Some("c2".into())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("25"), "{stdout}");

    // Asking for pages of 20 from an API that caps them at 10: without a
    // total the first short page would end the list at 10 offers; the header
    // total keeps it going to all 25.
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let network = network_yaml(
        "{kind: page, param: page, start: 1, size: 20, total_count_header: X-Total-Count}",
        HEADER_AUTH,
    );
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let out = sync(&m);
    assert_success(&out);
    assert_eq!(mock.requests().len(), 3);
    let campaigns = campaigns_json(&m);
    assert_eq!(campaigns.lines().count(), 25);

    // A total is read from the body or from a header, never both.
    let network = network_yaml(
        "{kind: page, param: page, start: 1, size: 10, total_count_header: X-Total-Count, total_count: $.paging.total_count}",
        HEADER_AUTH,
    );
    let (code, text) = validate_offline(&network);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("`total_count` and `total_count_header` are both given"),
        "{text}"
    );
}

/// Issue 26.4: `from: record` inside a per-offer request read the response
/// (where the list record's path finds nothing), silently empty.
#[test]
fn from_record_in_a_per_offer_request_is_refused_with_a_hint() {
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH)
        + "  enrich:
    - name: details
      url: '{{ params.base_url }}/offers/{{ record.$.id }}'
      fields:
        currency: {path: $.currency, from: record}
";
    let (code, text) = validate_offline(&network);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("spec.enrich[0].fields.currency"), "{text}");
    assert!(text.contains("reads that request's response"), "{text}");
    assert!(text.contains("{{ record.$.path }}"), "{text}");
}

/// A record's key exists only for records held in an object; under a
/// records path ending in a name or an index, and in a per-offer request's
/// response, `@key` outside `each` would be empty in every offer.
#[test]
fn a_key_where_no_record_has_one_is_refused_with_a_hint() {
    let base = network_yaml(PAGE_PAGINATION, HEADER_AUTH);
    let network = base.replace("    category: $.category\n", "    category: '@key'\n");
    assert_ne!(network, base, "the mock network maps a category");
    let records = "  records: $.offers[*]\n";
    assert!(network.contains(records), "{network}");
    let (code, text) = validate_offline(&network.replace(records, "  records: $.offers[0]\n"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("spec.fields.category"), "{text}");
    assert!(text.contains("selects no entry of an object"), "{text}");
    assert!(text.contains("end `records` in `.*`"), "{text}");
    // Records in an object keyed by id have keys: that stays valid.
    let (code, text) = validate_offline(&network);
    assert_eq!(code, Some(0), "{text}");

    let network = base
        + "  enrich:
    - name: details
      url: '{{ params.base_url }}/offers/{{ record.$.id }}'
      fields:
        category: '@key'
";
    let (code, text) = validate_offline(&network);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("spec.enrich[0].fields.category"), "{text}");
    assert!(
        text.contains("a per-offer request's response is held in none"),
        "{text}"
    );
}
