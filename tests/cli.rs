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
        format!(
            "{}spec.network: no network named \"everflw\"\n  hint: did you mean `everflow`?",
            at("5:12")
        ),
        format!(
            "{}spec.schedule: \"*/30 * * *\" has 4 fields; a crontab schedule has 5",
            at("6:13")
        ),
        format!(
            "{}spec.filters.countries.alow: unknown field `alow`, expected one of allow, block\n  hint: did you mean `allow`?",
            at("9:17")
        ),
        format!("{}spec.filters.os: unknown variant `andriod`", at("10:9")),
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
        "b.yaml:3:18: error: metadata.name: integration \"acme\" is defined twice\n  hint: it is also defined at",
        "b.yaml:7:21: error: spec.params.api_key: `api_key` is a secret and is written in the manifest",
        "c.yaml:7:23: error: spec.params.base_urll: network everflow has no param `base_urll`\n  hint: did you mean `base_url`?",
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
        "mine.yaml:9:32: error: spec.fields.name.type: unknown variant `decmal`",
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
    write(dir.path(), "k.key", "file-secret-456\n");
    write(
        dir.path(),
        "b.yaml",
        &GOOD
            .replace("name: acme", "name: beta")
            .replace("${env:OFFERSYNC_TEST_KEY}", "${file:k.key}")
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
        stderr.contains("note: per-offer requests (campaign link) are not made by `map`"),
        "{stderr}"
    );
}

#[test]
fn map_reports_record_problems_and_unreadable_samples() {
    let dir = tempfile::tempdir().unwrap();
    let page = std::fs::read_to_string("tests/fixtures/networks/affise/page1.json")
        .unwrap()
        .replacen("\"revenue\": 1.4", "\"revenue\": \"abc\"", 1);
    write(dir.path(), "bad.json", &page);
    write(dir.path(), "cut.json", &page[..page.len() / 3]);
    let bad = dir.path().join("bad.json");
    let (status, stderr) = map_sample("affise", &bad);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "problem: {}: record 0 (id 78): field payout: \"abc\" is not a decimal",
            bad.display()
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
