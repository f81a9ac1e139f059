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
    let m = Manifests::new(
        &network,
        &integration_yaml("acme", "http://127.0.0.1:9", ""),
    );
    let out = Command::new(binary())
        .args(["validate", "--offline", "--dir"])
        .arg(m.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("networks/mocknet.yaml"), "{text}");
    assert!(text.contains("only a request"), "{text}");
}
