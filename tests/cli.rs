//! The `offersync` binary, run as users run it, in temporary directories.

use std::path::Path;
use std::process::{Command, Output};

fn offersync(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `map` on one sample; its exit status and stderr.
fn map_sample(network: &str, sample: &Path) -> (Option<i32>, String) {
    let out = offersync(
        &[
            "map",
            "--network",
            network,
            "--sample",
            sample.to_str().unwrap(),
        ],
        &[],
    );
    (out.status.code(), text(&out).1)
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

const GOOD: &str = r#"apiVersion: offersync/v1
kind: Integration
metadata: {name: acme}
spec:
  network: everflow
  schedule: "*/15 * * * 1-5"
  params: {api_key: "${env:OFFERSYNC_TEST_KEY}"}
  advertiser: Acme
"#;

#[test]
fn the_repository_manifests_are_valid() {
    let out = offersync(&["validate", "--dir", "integrations.d"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("valid: 1 integrations"), "{stdout}");
}

#[test]
fn validate_reports_every_error_in_one_pass_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "acme.yaml",
        r#"apiVersion: offersync/v1
kind: Integration
metadata: {name: acme}
spec:
  network: everflw
  schedule: "*/30 * * *"
  advertiser: Acme
  filters:
    countries: {alow: [US]}
    os: andriod
  defaults: {redirect: 303, currency: dollars}
"#,
    );
    let out = offersync(&["validate", "--dir", dir.path().to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = dir.path().join("acme.yaml");
    let at = |pos: &str| format!("{}:{pos}: error: ", file.display());
    for expected in [
        format!("{}spec.network: no network named \"everflw\"", at("5:12")),
        "  hint: did you mean `everflow`?".to_string(),
        format!(
            "{}spec.schedule: \"*/30 * * *\" has 4 fields; a crontab schedule has 5",
            at("6:13")
        ),
        format!(
            "{}spec.filters.countries.alow: unknown key `alow`\n   |\n 9 |     countries: {{alow: [US]}}\n   |                 ^^^^\n  hint: did you mean `allow`?",
            at("9:17")
        ),
        format!(
            "{}spec.filters.os: \"andriod\" is not one of: all, android, ios",
            at("10:9")
        ),
        format!(
            "{}spec.defaults.currency: \"dollars\" is not a known currency",
            at("11:39")
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing:\n{expected}\nin:\n{stderr}"
        );
    }
}

#[test]
fn validate_checks_networks_params_secrets_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", GOOD);
    write(
        dir.path(),
        "b.yaml",
        &GOOD.replace("${env:OFFERSYNC_TEST_KEY}", "literal-key-123"),
    );
    write(
        dir.path(),
        "c.yaml",
        &GOOD
            .replace("name: acme", "name: gamma")
            .replace("${env:OFFERSYNC_TEST_KEY}", "${file:missing.key}")
            .replace("params: {", "params: {base_urll: x, "),
    );
    write(
        dir.path(),
        "d.yaml",
        &GOOD
            .replace("name: acme", "name: delta")
            .replace("network: everflow", "network: affise"),
    );
    let out = offersync(
        &["validate", "--dir", dir.path().to_str().unwrap()],
        &[("OFFERSYNC_TEST_KEY", "k")],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    for expected in [
        "b.yaml:3:18: error: metadata.name: integration \"acme\" is defined twice",
        "  hint: it is also defined at",
        "b.yaml:7:21: error: spec.params.api_key: `api_key` is a secret and is written in the manifest",
        "c.yaml:7:23: error: spec.params.base_urll: network everflow has no param `base_urll`",
        "  hint: did you mean `base_url`?",
        "c.yaml:7:35: error: spec.params.api_key: secret file missing.key cannot be read",
        "d.yaml:5:12: error: spec.params: network affise needs param `base_url`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing:\n{expected}\nin:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("literal-key-123"),
        "a secret was printed:\n{stderr}"
    );
}

#[test]
fn validate_reports_broken_yaml_and_bad_mappings() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "broken.yaml",
        "apiVersion: offersync/v1\nkind: Network\nmetadata: {name: x\n",
    );
    write(
        dir.path(),
        "networks/mine.yaml",
        "apiVersion: offersync/v1\nkind: Network\nmetadata: {name: mine}\nspec:\n  request: {url: 'https://api.example/{{ params.nope }}'}\n  records: '$.offers[*'\n  fields:\n    external_id: $.id\n    name: {path: $.name, type: decmal}\n    payouts: {each: '$.p[*]', fields: {amount: $.a}}\n",
    );
    let out = offersync(&["validate", "--dir", dir.path().to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    for expected in [
        "broken.yaml:3:11: error: metadata: unclosed bracket",
        "mine.yaml:5:18: error: spec.request.url: template uses `{{ params.nope }}` but the network has no param `nope`",
        "mine.yaml:6:12: error: spec.records: \"$.offers[*\" is not a valid JSONPath: syntax error at character 10",
        "mine.yaml:9:32: error: spec.fields.name.type: \"decmal\" is not one of: string, decimal, integer, bool, list, datetime",
        "  hint: did you mean `decimal`?",
        "mine.yaml:10:14: error: spec.fields.payouts.fields.amount: `payouts` entries have no field `amount`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing:\n{expected}\nin:\n{stderr}"
        );
    }
}

#[test]
fn secrets_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        &GOOD.replace(
            "advertiser: Acme",
            "advertiser: Acme\n  payout: {ratio: -1}",
        ),
    );
    write(dir.path(), "secrets/k.key", "file-secret-456\n");
    write(
        dir.path(),
        "b.yaml",
        &GOOD
            .replace("name: acme", "name: beta")
            .replace("${env:OFFERSYNC_TEST_KEY}", "${file:secrets/k.key}")
            .replace("schedule: \"*/15 * * * 1-5\"", "schedule: nonsense"),
    );
    for format in ["text", "json"] {
        let out = offersync(
            &[
                "validate",
                "--dir",
                dir.path().to_str().unwrap(),
                "--format",
                format,
            ],
            &[
                ("OFFERSYNC_TEST_KEY", "env-secret-789"),
                ("RUST_LOG", "trace"),
            ],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1));
        for secret in ["env-secret-789", "file-secret-456"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{secret} printed:\n{stdout}{stderr}"
            );
        }
    }
}

#[test]
fn map_prints_offers_and_a_summary() {
    let out = offersync(
        &[
            "map",
            "--network",
            "everflow",
            "--sample",
            "tests/fixtures/networks/everflow/page1.json",
            "--sample",
            "tests/fixtures/networks/everflow/page2.json",
            "--format",
            "json",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let offers: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(offers.len(), 5);
    assert_eq!(offers[0]["external_id"], "214");
    assert_eq!(offers[0]["payout"], "3.25");
    assert!(offers[0].get("raw").is_none());
    assert!(stderr.ends_with("5 offers, 0 problems\n"), "{stderr}");

    let table = offersync(
        &[
            "map",
            "--network",
            "cake",
            "--sample",
            "tests/fixtures/networks/cake/page1.xml",
        ],
        &[],
    );
    let (stdout, stderr) = text(&table);
    assert!(table.status.success(), "{stderr}");
    assert!(stdout.starts_with("ID    NAME"), "{stdout}");
    assert!(
        stdout.contains("4051  Insure My Car v1042 Email - Internal Only  pending  CPL    11"),
        "{stdout}"
    );
    assert!(
        stderr.contains("note: per-offer request \"campaign link\" is not made by `map`: 0 offers read its saved response (tests: per_offer)"),
        "{stderr}"
    );
}

#[test]
fn map_reports_record_problems_and_unreadable_samples() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string("tests/fixtures/networks/affise/page1.json").unwrap();
    // An optional field that cannot be read is left empty with a warning:
    // the offer is still imported.
    let page = original.replacen("\"revenue\": 1.4", "\"revenue\": \"abc\"", 1);
    write(dir.path(), "bad.json", &page);
    write(dir.path(), "cut.json", &page[..page.len() / 3]);
    let bad = dir.path().join("bad.json");
    let (status, stderr) = map_sample("affise", &bad);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {}: offer 78: field payout: \"abc\" is not a decimal; left empty",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.ends_with("3 offers, 0 problems\n"), "{stderr}");

    // Countries nobody knows cannot be left empty (that is worldwide): the
    // record is a problem.
    let page = original.replacen(
        "\"countries\": [\n        \"US\"\n      ]",
        "\"countries\": [\"Atlantis\"]",
        1,
    );
    assert_ne!(page, original, "the fixture lists countries as expected");
    write(dir.path(), "nowhere.json", &page);
    let nowhere = dir.path().join("nowhere.json");
    let (status, stderr) = map_sample("affise", &nowhere);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "problem: {}: record 0 (id 78): field countries: \"Atlantis\" is no country offersync knows; left empty the offer would run worldwide",
            nowhere.display()
        )),
        "{stderr}"
    );
    assert!(stderr.ends_with("2 offers, 1 problems\n"), "{stderr}");

    let cut = dir.path().join("cut.json");
    let (status, stderr) = map_sample("affise", &cut);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("the response is not valid JSON: EOF while parsing"),
        "{stderr}"
    );

    let (status, stderr) = map_sample("evrflow", &cut);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("no network named \"evrflow\"\n  hint: did you mean `everflow`?"),
        "{stderr}"
    );
}

#[test]
fn map_takes_a_network_file_and_local_networks_override_built_ins() {
    let dir = tempfile::tempdir().unwrap();
    let everflow = std::fs::read_to_string("integrations.d/networks/everflow.yaml").unwrap();
    write(
        dir.path(),
        "networks/everflow.yaml",
        &everflow.replace("name: $.name", "name: {template: '[EF] {{ $.name }}'}"),
    );
    let sample = "tests/fixtures/networks/everflow/page1.json";
    let by_dir = offersync(
        &[
            "map",
            "--network",
            "everflow",
            "--dir",
            dir.path().to_str().unwrap(),
            "--sample",
            sample,
            "--format",
            "json",
        ],
        &[],
    );
    let file = dir.path().join("networks/everflow.yaml");
    let by_file = offersync(
        &[
            "map",
            "--network",
            file.to_str().unwrap(),
            "--sample",
            sample,
            "--format",
            "json",
        ],
        &[],
    );
    for out in [by_dir, by_file] {
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.contains("\"name\":\"[EF] FitTrack Pro - iOS - US - CPI\""),
            "{stdout}"
        );
    }
}

#[test]
fn committed_schemas_are_current() {
    for (name, text) in offersync::manifest::schema::all() {
        let committed =
            std::fs::read_to_string(Path::new("schemas").join(name)).unwrap_or_default();
        assert!(
            committed == text,
            "schemas/{name} is stale: run `cargo run -- schema --out schemas`"
        );
    }
}

#[test]
fn schema_command_writes_both_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let out = offersync(&["schema", "--out", dir.path().to_str().unwrap()], &[]);
    assert!(out.status.success());
    let network: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("network.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(network["title"], "offersync Network (mapping file)");
    let integration = std::fs::read_to_string(dir.path().join("integration.schema.json")).unwrap();
    assert!(integration.contains("Append to Impression URL; must contain the `{imp_id}` macro."));
}

#[test]
fn a_currency_override_must_be_iso_4217() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        &GOOD.replace(
            "  advertiser:",
            "  defaults: {currency: qqq}\n  advertiser:",
        ),
    );
    let out = offersync(
        &["validate", "--dir", dir.path().to_str().unwrap()],
        &[("OFFERSYNC_TEST_KEY", "k")],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("spec.defaults.currency: QQQ is not an ISO 4217 currency"),
        "{stderr}"
    );
    write(
        dir.path(),
        "a.yaml",
        &GOOD.replace(
            "  advertiser:",
            "  defaults: {currency: gbp}\n  advertiser:",
        ),
    );
    let out = offersync(
        &["validate", "--dir", dir.path().to_str().unwrap()],
        &[("OFFERSYNC_TEST_KEY", "k")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

/// Issue 14.1: CI has no secrets; `validate --offline` checks references for
/// their form only, and says what is wrong with a malformed one.
#[test]
fn validate_offline_needs_no_secrets_and_still_checks_their_form() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "acme.yaml",
        &GOOD.replace(
            "api_key: \"${env:OFFERSYNC_TEST_KEY}\"",
            "api_key: \"${file:secrets/absent.key}\", base_url: \"${env:ACME_BASE_URL}\"",
        ),
    );
    write(
        dir.path(),
        "beta.yaml",
        &GOOD
            .replace("name: acme", "name: beta")
            .replace("${env:OFFERSYNC_TEST_KEY}", "${credential:beta.key}"),
    );
    let path = dir.path().to_str().unwrap();
    let online = offersync(&["validate", "--dir", path], &[]);
    assert_eq!(
        online.status.code(),
        Some(1),
        "without --offline the secrets are read"
    );
    let offline = offersync(&["validate", "--offline", "--dir", path], &[]);
    let (stdout, stderr) = text(&offline);
    assert_eq!(offline.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("valid: 2 integrations"), "{stdout}");

    write(
        dir.path(),
        "gamma.yaml",
        &GOOD
            .replace("name: acme", "name: gamma")
            .replace("${env:OFFERSYNC_TEST_KEY}", "${env:BAD-NAME}"),
    );
    let out = offersync(&["validate", "--offline", "--dir", path], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`BAD-NAME` is not an environment variable name"),
        "{stderr}"
    );
}

/// Issue 14.2 and 14.3: seven mistakes in one file, all reported in one run,
/// in words that say what to write, each under its source line.
#[test]
fn validate_reports_every_mistake_of_a_file_at_once_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "acme.yaml",
        r#"apiVersion: offersync/v1
kind: Integration
metadata: {name: acme}
spec:
  network: everflow
  schedule: "*/30 * * * *"
  enabled: yes
  params: {api_key: "${env:OFFERSYNC_TEST_KEY}"}
  advertiser: Acme
  defaults: {status: actve, redirect: lots}
  payout:
    ratio: "90%"
    decimals: two
  filters:
    countries: {alow: [US]}
    payout: {min: abc}
  caps:
    additional:
      - {period: daily}
"#,
    );
    let out = offersync(
        &[
            "validate",
            "--offline",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("9 errors"), "{stdout}\n{stderr}");
    for expected in [
        "acme.yaml:7:12: error: spec.enabled: \"yes\" is not true or false\n   |\n 7 |   enabled: yes\n   |            ^^^\n  hint: write true",
        "acme.yaml:10:22: error: spec.defaults.status: \"actve\" is not one of: active, paused, pending",
        "acme.yaml:10:39: error: spec.defaults.redirect: \"lots\" is not a whole number",
        "acme.yaml:12:12: error: spec.payout.ratio: \"90%\" is not a number\n    |\n 12 |     ratio: \"90%\"\n    |            ^^^^^\n  hint: write 0.9 for 90 %",
        "acme.yaml:13:15: error: spec.payout.decimals: \"two\" is not a whole number",
        "acme.yaml:15:17: error: spec.filters.countries.alow: unknown key `alow`",
        "acme.yaml:16:19: error: spec.filters.payout.min: \"abc\" is not a number",
        // A missing key points at its parent's line.
        "acme.yaml:19:9: error: spec.caps.additional[0]: `value` is missing",
    ] {
        assert!(
            stderr.contains(expected),
            "missing:\n{expected}\nin:\n{stderr}"
        );
    }
    for jargon in [
        "u32",
        "u16",
        "Decimal",
        "invalid boolean",
        "serde",
        "variant",
        "field `",
    ] {
        assert!(!stderr.contains(jargon), "jargon {jargon:?} in:\n{stderr}");
    }
}

/// Issue 25.8: a wrong type does not hide the file's other mistakes: the
/// values around it that are well typed are still checked in the same run.
#[test]
fn a_type_error_does_not_hide_the_semantic_errors_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "acme.yaml",
        r#"apiVersion: offersync/v1
kind: Integration
metadata: {name: acme}
spec:
  network: everflow
  schedule: "61 * * * *"
  params: {api_key: "${env:OFFERSYNC_TEST_KEY}"}
  advertiser: Acme
  defaults: {currency: EURO, redirect: 999}
  filters:
    os: [symbian]
    countries: {allow: [XX]}
  settings:
    time_targeting: {timezone: Mars/Base, from: "25:00", to: "18:00"}
"#,
    );
    let out = offersync(
        &[
            "validate",
            "--offline",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for expected in [
        "acme.yaml:6:13: error: spec.schedule: \"61 * * * *\" is not a valid cron expression",
        "acme.yaml:9:24: error: spec.defaults.currency: \"EURO\" is not a known currency",
        "acme.yaml:9:40: error: spec.defaults.redirect: 999 is not a redirect type",
        "acme.yaml:11:9: error: spec.filters.os: a list is not text",
        "acme.yaml:12:25: error: spec.filters.countries.allow[0]: ",
        "acme.yaml:14:32: error: spec.settings.time_targeting.timezone: \"Mars/Base\" is not an IANA time zone",
        "acme.yaml:14:49: error: spec.settings.time_targeting.from: \"25:00\" is not a time of day",
    ] {
        assert!(
            stderr.contains(expected),
            "missing:\n{expected}\nin:\n{stderr}"
        );
    }
    assert!(stdout.contains("7 errors"), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 integrations"), "{stdout}");
}

/// Issue 25.3: `never` stores nothing on create; where that would widen a
/// campaign (no countries: every country) or leave it without a link or
/// payout, validate refuses it and says what to write instead.
#[test]
fn validate_refuses_never_where_an_empty_column_widens_a_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let with = |columns: &str| {
        GOOD.replace(
            "  advertiser:",
            &format!("  update:\n    columns: {{{columns}}}\n  advertiser:"),
        )
    };
    write(
        dir.path(),
        "acme.yaml",
        &with("countries: never, kpi: never, tracking_url: never"),
    );
    let path = dir.path().to_str().unwrap();
    let out = offersync(&["validate", "--offline", "--dir", path], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("2 errors"), "{stdout}\n{stderr}");
    for expected in [
        "acme.yaml:9:26: error: spec.update.columns.countries: `countries` cannot be `never`",
        "  hint: `never` would store no countries — an empty country list targets every country, and the blocked countries would be dropped too; use on_create to write it only when the campaign is created",
        "error: spec.update.columns.tracking_url: `tracking_url` cannot be `never`",
        "  hint: `never` would store no tracking link — ",
    ] {
        assert!(
            stderr.contains(expected),
            "missing:\n{expected}\nin:\n{stderr}"
        );
    }
    assert!(!stderr.contains("columns.kpi"), "{stderr}");
    write(
        dir.path(),
        "acme.yaml",
        &with("countries: on_create, kpi: never, tracking_url: on_create"),
    );
    let out = offersync(&["validate", "--offline", "--dir", path], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

/// Issue 14.3: a tab is explained, and a broken Network file is not also
/// reported as a missing network by the Integrations that use it.
#[test]
fn a_broken_network_is_not_also_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "networks/mynet.yaml",
        "apiVersion: offersync/v1\nkind: Network\nmetadata:\n  name: mynet\nspec:\n\trequest: {url: 'https://api.example'}\n",
    );
    write(
        dir.path(),
        "acme.yaml",
        &GOOD
            .replace("network: everflow", "network: mynet")
            .replace("  params: {api_key: \"${env:OFFERSYNC_TEST_KEY}\"}\n", ""),
    );
    let out = offersync(&["validate", "--dir", dir.path().to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("a tab is used to indent this line; YAML indents with spaces only"),
        "{stderr}"
    );
    assert!(!stderr.contains("no network named"), "{stderr}");
    assert!(!stderr.contains("add a kind: Network file"), "{stderr}");
    assert!(
        stderr.contains("network \"mynet\" cannot be used until the errors in its file are fixed"),
        "{stderr}"
    );
}

/// Issue 14.4: `offersync schema` prints one valid JSON document; the
/// committed schemas are what the binary generates.
#[test]
fn schema_prints_valid_json_and_the_committed_schemas_are_current() {
    let out = offersync(&["schema"], &[]);
    assert!(out.status.success());
    let both: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(
        both["integration.schema.json"]["$id"],
        "urn:offersync:schema:v1:integration"
    );
    let out = offersync(&["schema", "--kind", "network"], &[]);
    let network: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(network, both["network.schema.json"]);
    for name in ["integration.schema.json", "network.schema.json"] {
        let committed: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new("schemas").join(name)).unwrap(),
        )
        .unwrap();
        assert_eq!(
            committed, both[name],
            "schemas/{name} is stale: run `offersync schema --out schemas`"
        );
    }
}

/// Issue 14.7: `--version` names the commit; completions and man pages come
/// from the clap definitions.
#[test]
fn version_names_the_commit_and_completions_and_man_pages_are_generated() {
    let out = offersync(&["--version"], &[]);
    let (stdout, _) = text(&out);
    assert!(stdout.starts_with("offersync 0."), "{stdout}");
    assert!(stdout.contains(" ("), "no commit in {stdout}");
    for shell in ["bash", "zsh", "fish"] {
        let out = offersync(&["completions", shell], &[]);
        assert!(out.status.success());
        assert!(text(&out).0.contains("validate"), "{shell}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = offersync(&["man", "--out", dir.path().to_str().unwrap()], &[]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(dir.path().join("offersync-validate.1")).unwrap();
    assert!(page.contains(".TH offersync-validate"), "{page}");
    assert!(page.contains("offline"), "{page}");
}

/// Issue 17: `tests:` in a Network file, run by `offersync test` and by
/// `validate`, each failure with the offer, field, expected, actual and path.
#[test]
fn network_file_tests_report_each_failed_expectation_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "networks/samples/page1.json",
        r#"{"data": {"offers": [
            {"id": 1, "title": "A", "relationship": {"payouts": {"entries": [{"payout_amount": 2.5}]}}},
            {"id": 2, "title": "B", "relationship": {"payouts": {"entries": [{"payout_amount": "abc"}]}}}
        ]}}"#,
    );
    let network = |expected_payout: &str, sample: &str| {
        format!(
            r#"apiVersion: offersync/v1
kind: Network
metadata: {{name: mynet}}
spec:
  request: {{url: "https://api.example.com/offers"}}
  records: $.data.offers[*]
  fields:
    external_id: $.id
    name: $.title
    payout: '$.relationship.payouts.entries[0].payout_amount'
    category: $.relationship.vertical
  tests:
    - name: first page
      samples: [{sample}]
      count: {{offers: 2, problems: 0}}
      offers:
        "1": {{payout: "{expected_payout}"}}
        "2": {{payout: null}}
"#
        )
    };
    let dir_arg = dir.path().to_str().unwrap();
    write(
        dir.path(),
        "networks/mynet.yaml",
        &network("3.0", "samples/page1.json"),
    );
    let out = offersync(&["test", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("FAIL mynet (first page): offer 1: payout: expected \"3.0\", got \"2.5\" (read from `$.relationship.payouts.entries[0].payout_amount`)"),
        "{stderr}"
    );
    // A path that reads nothing in any record says so, with what exists.
    assert!(
        stderr.contains("warning: mynet (first page): field category: `$.relationship.vertical` selects nothing in any record of the samples"),
        "{stderr}"
    );
    assert!(
        stdout.contains("1 tests in 1 networks: 0 passed, 1 failed"),
        "{stdout}"
    );
    // validate runs them too, offline.
    let out = offersync(&["validate", "--offline", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("FAIL mynet (first page)"), "{stderr}");

    write(
        dir.path(),
        "networks/mynet.yaml",
        &network("2.50", "samples/page1.json"),
    );
    let out = offersync(&["test", "mynet", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("1 tests in 1 networks: 1 passed, 0 failed"),
        "{stdout}"
    );

    write(
        dir.path(),
        "networks/mynet.yaml",
        &network("2.5", "samples/missing.json"),
    );
    let out = offersync(&["test", "--dir", dir_arg], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("samples/missing.json: cannot read"),
        "{stderr}"
    );
}

#[test]
fn map_names_a_path_that_matches_nothing_and_the_nearest_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "page.json",
        r#"{"offers": [{"id": 1, "name": "A", "relationship": {"payouts": {"entries": [{"payout_amount": 2.5}]}}}]}"#,
    );
    write(
        dir.path(),
        "net.yaml",
        r#"apiVersion: offersync/v1
kind: Network
metadata: {name: typo}
spec:
  request: {url: "https://api.example.com/offers"}
  records: $.offers[*]
  fields:
    external_id: $.id
    name: $.name
    payout: '$.relationship.payout.entries[0].payout_amout'
"#,
    );
    let out = offersync(
        &[
            "map",
            "--network",
            dir.path().join("net.yaml").to_str().unwrap(),
            "--sample",
            dir.path().join("page.json").to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("warning: field payout: `$.relationship.payout.entries[0].payout_amout` selects nothing in any record of the samples; did you mean `$.relationship.payouts.entries[0].payout_amount`?"),
        "{stderr}"
    );
}

/// Issue 17: a Network file proposed from a saved response maps it at once,
/// and its own test over the sample passes.
#[test]
fn scaffold_proposes_a_network_that_maps_its_sample() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("networks/acme.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = offersync(
        &[
            "scaffold",
            "--sample",
            std::fs::canonicalize("tests/fixtures/networks/admitad/page1.json")
                .unwrap()
                .to_str()
                .unwrap(),
            "--name",
            "acme",
            "--out",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("records at $.results[*] (2 in the sample)"),
        "{stdout}"
    );
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(yaml.contains("    external_id: '$.id'\n"), "{yaml}");
    assert!(
        yaml.contains("    countries: '$.regions[*].region'\n"),
        "{yaml}"
    );
    assert!(yaml.contains("    tracking_url: '$.gotolink'\n"), "{yaml}");
    // The proposal is a valid file whose test over the sample passes.
    let dir_arg = dir.path().to_str().unwrap();
    let out = offersync(&["test", "acme", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{yaml}\n{stdout}{stderr}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    // It never overwrites.
    let again = offersync(
        &[
            "scaffold",
            "--sample",
            "tests/fixtures/networks/admitad/page1.json",
            "--out",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(2));
}

/// Issue 26.7: the sample's path in `tests:` is written relative to the
/// file, whatever the working directory and however the paths were given.
#[test]
fn scaffold_writes_the_sample_path_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("networks")).unwrap();
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    std::fs::copy(
        "tests/fixtures/networks/admitad/page1.json",
        dir.path().join("samples/page1.json"),
    )
    .unwrap();
    let scaffold = |out: &str, name: &str| {
        Command::new(env!("CARGO_BIN_EXE_offersync"))
            .args([
                "scaffold",
                "--sample",
                "../samples/page1.json",
                "--name",
                name,
                "--out",
                out,
            ])
            .current_dir(&work)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    // A file in the working directory, and one reached through `..`.
    for (out, name, expected) in [
        ("acme.yaml", "acme", "[../samples/page1.json]"),
        (
            "networks/../networks/beta.yaml",
            "beta",
            "[../../samples/page1.json]",
        ),
    ] {
        let done = scaffold(out, name);
        let (stdout, stderr) = text(&done);
        assert!(done.status.success(), "{stdout}{stderr}");
        let yaml = std::fs::read_to_string(work.join(out)).unwrap();
        assert!(yaml.contains(&format!("samples: {expected}")), "{yaml}");
        assert!(
            !yaml.contains("//tmp") && !yaml.contains("from /"),
            "{yaml}"
        );
    }
    let out = offersync(&["test", "beta", "--dir", work.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
}

/// Issue 17: one offer through the whole pipeline, from saved responses,
/// with each field's rule, each filter's verdict, the payout arithmetic and,
/// against a store, the planned change and what the update policy holds back.
#[test]
fn explain_traces_one_offer_through_mapping_filters_payout_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let demo = offersync(&["demo", "--database-url", &db], &[]);
    assert!(demo.status.success(), "{}", text(&demo).1);
    let manifests = dir.path().join("integrations.d");
    let integration = std::fs::read_to_string("demo/integrations.d/demo-everflow.yaml").unwrap()
        + "  update: {columns: {name: on_create}}\n";
    write(&manifests, "demo-everflow.yaml", &integration);
    let page = std::fs::read_to_string("demo/api/everflow/page1.json")
        .unwrap()
        .replace("\"name\": \"GlowSkin Shop", "\"name\": \"GlowSkin Store");
    write(dir.path(), "page1.json", &page);
    let explain = |offer: &str, format: &str| {
        offersync(
            &[
                "explain",
                "demo-everflow",
                "--offer",
                offer,
                "--sample",
                dir.path().join("page1.json").to_str().unwrap(),
                "--dir",
                manifests.to_str().unwrap(),
                "--database-url",
                &db,
                "--format",
                format,
            ],
            &[],
        )
    };
    let out = explain("318", "table");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("\"network_offer_id\": 318"),
        "the raw record: {stdout}"
    );
    assert!(
        stdout.contains("  filters.countries              passes"),
        "{stdout}"
    );
    assert!(stdout.contains("payout: 12.00% × 0.8 = 9.60%"), "{stdout}");
    // Only a column the policy leaves to the operator differs: nothing to write.
    assert!(stdout.contains("plan: unchanged"), "{stdout}");
    assert!(
        stdout.contains("  name: GlowSkin Shop - RevShare 12% - EU (exclude FR) → GlowSkin Store - RevShare 12% - EU (exclude FR)  (held back by update policy)"),
        "{stdout}"
    );

    // An offer the filters skip says which filter and why.
    let out = explain("7", "table");
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("filters.require_preview_url    skips: no_preview_url (no preview URL)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: skipped: no_preview_url"),
        "{stdout}"
    );

    // JSON for tools: a first_of's alternatives and which gave the value.
    let out = explain("7", "json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let payout = report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "payout")
        .unwrap();
    assert_eq!(payout["value"], "22");
    let gave: Vec<bool> = payout["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["gave_value"].as_bool().unwrap())
        .collect();
    assert_eq!(gave[..2], [false, true], "{payout}");

    let missing = explain("999", "table");
    assert_eq!(missing.status.code(), Some(1));

    // An imported offer that is gone from the feed: the removal a sync would make.
    let gone = offersync(
        &[
            "explain",
            "demo-everflow",
            "--offer",
            "318",
            "--sample",
            "demo/api/everflow/page2.json",
            "--dir",
            manifests.to_str().unwrap(),
            "--database-url",
            &db,
        ],
        &[],
    );
    let (stdout, stderr) = text(&gone);
    assert_eq!(gone.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("its campaign is stored: a sync would record it gone and pause it"),
        "{stdout}{stderr}"
    );
}

/// What a hostile sample carries into the author tools: a window-title
/// sequence, colours, a carriage return, a line break that would fake an
/// output line, a C1 control sequence introducer and a bidi override.
const HOSTILE_TEXT: &str =
    "a\u{1b}]0;t\u{7}b \u{1b}[31mRED\u{1b}[0m\r\nFAKE: all good \u{9b}2J \u{202e}txet";

/// Output of ours that came from a sample: none of its control characters
/// reach the terminal raw, and no line of it is one the sample wrote.
fn assert_no_raw_controls(what: &str, out: &Output) {
    let (stdout, stderr) = text(out);
    for (stream, shown) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !shown
                .chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}'),
            "{what} {stream}: {shown:?}"
        );
        assert!(
            !shown.lines().any(|l| l.starts_with("FAKE")),
            "{what} {stream}: a faked line: {shown}"
        );
    }
}

/// Issue #30.9: `map`, `scaffold` and `test` escape a sample's control
/// characters as `plan` and `campaigns` do, in every line they print.
#[test]
fn author_tools_escape_control_characters_of_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let sample = serde_json::json!({"offers": [
        // Mapped, with hostile text in its id, name, category and an
        // unreadable payout (a warning that quotes the value).
        {"id": format!("7{HOSTILE_TEXT}"), "name": HOSTILE_TEXT, "category": HOSTILE_TEXT,
         "payout": HOSTILE_TEXT, HOSTILE_TEXT: 1},
        // A problem naming its id and quoting an unknown country.
        {"id": format!("8{HOSTILE_TEXT}"), "name": "B", "countries": [HOSTILE_TEXT]}
    ], HOSTILE_TEXT: {"x": 1}});
    write(
        dir.path(),
        "networks/samples/page.json",
        &sample.to_string(),
    );
    write(
        dir.path(),
        "networks/hostile.yaml",
        r#"apiVersion: offersync/v1
kind: Network
metadata: {name: hostile}
spec:
  request: {url: "https://api.example.com/offers"}
  records: $.offers[*]
  fields:
    external_id: $.id
    name: $.name
    payout: {path: $.payout, type: decimal}
    countries: $.countries[*]
    category: $.category
    description: $.descripton
  tests:
    - name: the sample
      samples: [samples/page.json]
      count: {offers: 2, problems: 0}
      offers:
        "7": {name: "x"}
"#,
    );
    let network = dir.path().join("networks/hostile.yaml");
    let sample_path = dir.path().join("networks/samples/page.json");
    for format in ["table", "json"] {
        let out = offersync(
            &[
                "map",
                "--network",
                network.to_str().unwrap(),
                "--sample",
                sample_path.to_str().unwrap(),
                "--format",
                format,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
        assert_no_raw_controls(&format!("map --format {format}"), &out);
        let (stdout, stderr) = text(&out);
        assert!(stderr.contains("\\u{1b}[31mRED"), "{stderr}");
        if format == "json" {
            // Still JSON, and the exact value once decoded.
            let offer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(offer["name"], HOSTILE_TEXT, "{stdout}");
        } else {
            assert!(stdout.contains("a\\u{1b}]0;t\\u{7}b"), "{stdout}");
        }
    }

    let out = offersync(&["test", "--dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_no_raw_controls("test", &out);

    let proposed = dir.path().join("proposed.yaml");
    let out = offersync(
        &[
            "scaffold",
            "--sample",
            sample_path.to_str().unwrap(),
            "--out",
            proposed.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_no_raw_controls("scaffold", &out);
    // The records hide under a hostile key: their path is printed escaped.
    let sample =
        serde_json::json!({HOSTILE_TEXT: [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]});
    write(dir.path(), "hidden.json", &sample.to_string());
    let proposed = dir.path().join("hidden.yaml");
    let out = offersync(
        &[
            "scaffold",
            "--sample",
            dir.path().join("hidden.json").to_str().unwrap(),
            "--out",
            proposed.to_str().unwrap(),
        ],
        &[],
    );
    assert_no_raw_controls("scaffold", &out);
}

/// Issue #30.10: `scaffold` refuses an existing output before it reads
/// anything, and `map`, `test` and `scaffold` read a sample only up to a
/// stated limit, named in the refusal with how to raise it.
#[test]
fn author_tools_check_the_output_first_and_bound_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("exists.yaml");
    std::fs::write(&existing, "kept").unwrap();
    // The sample is never opened: the output is checked first.
    let out = offersync(
        &[
            "scaffold",
            "--sample",
            dir.path().join("no-such-sample.json").to_str().unwrap(),
            "--out",
            existing.to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exists.yaml exists"), "{stderr}");
    assert!(!stderr.contains("cannot read"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "kept");

    // A 5 KB sample against a 1000-byte limit.
    let records: Vec<_> = (1..=40)
        .map(|i| serde_json::json!({"id": i, "name": format!("Offer number {i}")}))
        .collect();
    let sample = serde_json::json!({ "offers": records }).to_string();
    assert!(sample.len() > 1000);
    write(dir.path(), "networks/samples/page.json", &sample);
    write(
        dir.path(),
        "networks/small.yaml",
        r#"apiVersion: offersync/v1
kind: Network
metadata: {name: small}
spec:
  request: {url: "https://api.example.com/offers"}
  limits: {max_response_bytes: 1000}
  records: $.offers[*]
  fields: {external_id: $.id, name: $.name}
  tests:
    - name: the sample
      samples: [samples/page.json]
      count: {offers: 40, problems: 0}
"#,
    );
    let sample_path = dir.path().join("networks/samples/page.json");
    let network = dir.path().join("networks/small.yaml");
    let out = offersync(
        &[
            "map",
            "--network",
            network.to_str().unwrap(),
            "--sample",
            sample_path.to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("is larger than the network's limits.max_response_bytes (1000 bytes)"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    let out = offersync(&["test", "--dir", dir.path().to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("limits.max_response_bytes (1000 bytes)"),
        "{stderr}"
    );

    let scaffold = |extra: &[&str], out_name: &str| {
        let mut args = vec![
            "scaffold",
            "--sample",
            sample_path.to_str().unwrap(),
            "--out",
        ];
        let out_path = dir.path().join(out_name);
        let out_path = out_path.to_str().unwrap().to_string();
        args.push(&out_path);
        args.extend_from_slice(extra);
        offersync(&args, &[])
    };
    let out = scaffold(&["--max-sample-bytes", "1000"], "a.yaml");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("larger than 1000 bytes") && stderr.contains("--max-sample-bytes"),
        "{stderr}"
    );
    assert!(!dir.path().join("a.yaml").exists());
    // Under the default limit (64 MiB) it is read.
    let out = scaffold(&[], "b.yaml");
    assert!(out.status.success(), "{:?}", text(&out));
}

/// Issue 26.6: what a per-offer request (`enrich`) reads is checked offline:
/// `tests:` name saved responses by request and offer id, and `test`, `map`
/// and `explain --sample` apply them as a sync applies the live ones.
#[test]
fn saved_per_offer_responses_feed_test_map_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    write(
        dir.path(),
        "networks/samples/page1.json",
        r#"{"campaigns": [
            {"campaign_id": 1, "name": "One", "rate": "2.5"},
            {"campaign_id": 2, "name": "Two", "rate": "3"},
            {"campaign_id": 3, "name": "Three", "rate": "4"}
        ]}"#,
    );
    write(
        dir.path(),
        "networks/samples/link-1.json",
        r#"{"success": true, "tracking-link": "https://trk.example.com/c/1?a=9"}"#,
    );
    write(
        dir.path(),
        "networks/samples/link-2.json",
        r#"{"success": true, "tracking-link": "https://trk.example.com/c/2?a=9"}"#,
    );
    write(
        dir.path(),
        "networks/samples/details-1.json",
        r#"{"campaign": {"countries": ["US", "CA"]}}"#,
    );
    // A details answer the mapping cannot use: `on_error: skip` drops it.
    write(
        dir.path(),
        "networks/samples/details-2.json",
        r#"{"campaign": {"countries": [{"weird": true}]}}"#,
    );
    let network = |per_offer: &str, expected_link: &str| {
        format!(
            r#"apiVersion: offersync/v1
kind: Network
metadata: {{name: pernet}}
spec:
  request: {{url: "https://api.example.com/campaigns"}}
  records: $.campaigns[*]
  fields:
    external_id: $.campaign_id
    name: $.name
    payout: $.rate
  enrich:
    - name: tracking link
      url: "https://api.example.com/trackinglink"
      method: POST
      json: {{campaign_id: "{{{{ record.$.campaign_id }}}}"}}
      on_error: keep
      fields:
        tracking_url: "$['tracking-link']"
    - name: details
      url: "https://api.example.com/campaign/{{{{ record.$.campaign_id }}}}"
      fields:
        countries: $.campaign.countries[*]
  tests:
    - name: with links
      samples: [samples/page1.json]
{per_offer}      count: {{offers: 2, problems: 1}}
      offers:
        "1": {{tracking_url: "{expected_link}", countries: [US, CA], payout: "2.5"}}
        "2": {{problem: enrich}}
        "3": {{tracking_url: null, countries: []}}
"#
        )
    };
    let saved = "      per_offer:
        tracking link:
          \"1\": samples/link-1.json
          \"2\": samples/link-2.json
        details:
          \"1\": samples/details-1.json
          \"2\": samples/details-2.json
";
    write(
        dir.path(),
        "networks/pernet.yaml",
        &network(saved, "https://trk.example.com/c/1?a=9"),
    );
    let out = offersync(&["test", "pernet", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");

    // A wrong expectation on what the request gives fails like any other.
    write(
        dir.path(),
        "networks/pernet.yaml",
        &network(saved, "https://trk.example.com/c/1"),
    );
    let out = offersync(&["test", "pernet", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("offer 1: tracking_url: expected \"https://trk.example.com/c/1\", got \"https://trk.example.com/c/1?a=9\""),
        "{stderr}"
    );

    // A request name that is not the Network's: an error with the nearest.
    write(
        dir.path(),
        "networks/pernet.yaml",
        &network(
            &saved.replace("tracking link:", "tracking-link:"),
            "https://trk.example.com/c/1?a=9",
        ),
    );
    let out = offersync(&["validate", "--offline", "--dir", dir_arg], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let all = stdout + &stderr;
    assert!(
        all.contains("spec.tests[0].per_offer.tracking-link"),
        "{all}"
    );
    assert!(all.contains("did you mean `tracking link`?"), "{all}");
    // A saved file that is not there: the test cannot run.
    write(
        dir.path(),
        "networks/pernet.yaml",
        &network(
            &saved.replace("link-2.json", "link-9.json"),
            "https://trk.example.com/c/1?a=9",
        ),
    );
    let out = offersync(&["test", "pernet", "--dir", dir_arg], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("per-offer sample") && stderr.contains("link-9.json: cannot read"),
        "{stderr}"
    );

    write(
        dir.path(),
        "networks/pernet.yaml",
        &network(saved, "https://trk.example.com/c/1?a=9"),
    );
    let sample = dir.path().join("networks/samples/page1.json");
    let out = offersync(
        &[
            "map",
            "--network",
            "pernet",
            "--dir",
            dir_arg,
            "--sample",
            sample.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let offers: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(offers.len(), 2, "{stdout}");
    assert_eq!(offers[0]["tracking_url"], "https://trk.example.com/c/1?a=9");
    assert_eq!(offers[0]["countries"], serde_json::json!(["CA", "US"]));
    assert_eq!(offers[1]["external_id"], "3");
    assert!(
        stderr.contains("(id 2): field enrich: per-offer request details"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: per-offer request \"tracking link\" is not made by `map`: 2 offers read its saved response (tests: per_offer), 1 have none"),
        "{stderr}"
    );

    write(
        dir.path(),
        "acme.yaml",
        "apiVersion: offersync/v1\nkind: Integration\nmetadata: {name: acme}\nspec:\n  network: pernet\n  schedule: \"*/15 * * * *\"\n  advertiser: Acme\n",
    );
    let explain = |offer: &str| {
        Command::new(env!("CARGO_BIN_EXE_offersync"))
            .args(["explain", "acme", "--offer", offer, "--dir", dir_arg])
            .args(["--format", "json", "--sample"])
            .arg(&sample)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = explain("1");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verdict"], "imported", "{report}");
    assert_eq!(report["per_offer"][0]["request"], "tracking link");
    assert_eq!(
        report["per_offer"][0]["fields"]["tracking_url"],
        "https://trk.example.com/c/1?a=9"
    );
    assert!(
        report["per_offer"][1]["saved"]
            .as_str()
            .is_some_and(|f| f.ends_with("details-1.json")),
        "{report}"
    );
    let out = explain("2");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let verdict = report["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("skipped: enrich_failed (per-offer request details"),
        "{verdict}"
    );
}

/// Issue 26.7: a mistyped required path gave only `field name: no value
/// (the field is required)` in the record's problem, wherever it is shown
/// (`map`, `test`, `explain`, a run's log); it names the nearest existing
/// path like the other paths' warnings do.
#[test]
fn a_mistyped_required_path_names_the_nearest_in_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "networks/page.json",
        r#"{"offers": [{"id": 1, "title": "A"}, {"id": 2, "title": null}]}"#,
    );
    write(
        dir.path(),
        "networks/typo.yaml",
        r#"apiVersion: offersync/v1
kind: Network
metadata: {name: typo}
spec:
  request: {url: "https://api.example.com/offers"}
  records: $.offers[*]
  fields:
    external_id: $.id
    name: $.titel
"#,
    );
    write(
        dir.path(),
        "acme.yaml",
        "apiVersion: offersync/v1\nkind: Integration\nmetadata: {name: acme}\nspec:\n  network: typo\n  schedule: \"*/15 * * * *\"\n  advertiser: Acme\n",
    );
    let sample = dir.path().join("networks/page.json");
    let dir_arg = dir.path().to_str().unwrap();
    let out = offersync(
        &[
            "map",
            "--network",
            "typo",
            "--dir",
            dir_arg,
            "--sample",
            sample.to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("record 0 (id 1): field name: no value (the field is required): `$.titel` selects nothing in the record; did you mean `$.title`?"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .args([
            "explain", "acme", "--offer", "1", "--dir", dir_arg, "--sample",
        ])
        .arg(&sample)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("mapping problem: record 0 (id 1): field name: no value (the field is required): `$.titel` selects nothing in the record; did you mean `$.title`?"),
        "{stdout}"
    );
}
