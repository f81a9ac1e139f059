//! Hostile input: the loader and the mapper return errors, never panic.
//!
//! Property tests throw arbitrary JSON at every built-in mapping, arbitrary
//! mapping rules at the compiler, and mangled manifests at the loader.

use offersync::manifest;
use offersync::mapping::path::JsonPath;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// `default_cases` keeps the debug-build suite quick; PROPTEST_CASES=5000 searches harder.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok());
    ProptestConfig {
        cases: cases.unwrap_or(default_cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        // Numbers as text, in the shapes networks send, and hostile ones.
        prop_oneof![
            Just("1e400"),
            Just("-0"),
            Just("$2.50"),
            Just("3.5%-6%"),
            Just("0000-00-00"),
            Just("99999999999999999999999999999999999"),
            Just("ALL"),
            Just("UK"),
            Just(""),
            Just("<b>x</b>&amp;"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
        ".{0,12}".prop_map(Value::String),
        "[1-9][0-9]{0,39}(\\.[0-9]{1,40})?".prop_map(|s| serde_json::from_str(&s).unwrap()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("id".to_string()),
        Just("name".to_string()),
        Just("offers".to_string()),
        Just("payout".to_string()),
        Just("countries".to_string()),
        Just("Offer".to_string()),
        Just("data".to_string()),
        "[a-z_]{1,8}",
    ];
    json_leaf().prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A page shaped like a network's: records under its container path.
fn page_for(network: &str, records: Vec<Value>) -> Value {
    let list = Value::Array(records.clone());
    let keyed: Map<String, Value> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i.to_string(), r))
        .collect();
    match network {
        "everflow" | "affise" => serde_json::json!({ "offers": list }),
        "trackier" => serde_json::json!({ "data": { "campaigns": list } }),
        "hasoffers" => serde_json::json!({ "response": { "data": { "data": keyed } } }),
        _ => list,
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn built_in_mappings_never_panic_on_arbitrary_records(records in prop::collection::vec(json_value(), 0..8)) {
        for (name, network) in manifest::built_in_networks() {
            let page = page_for(&name, records.clone());
            let mapped = network.mapping.map_value(&page);
            prop_assert!(mapped.record_count() <= records.len().max(1) * 2);
        }
    }

    #[test]
    fn arbitrary_bytes_are_a_page_error_or_a_page(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for network in manifest::built_in_networks().values() {
            let _ = network.mapping.map_page(&bytes);
        }
    }

    #[test]
    fn arbitrary_paths_parse_or_fail_and_never_panic(path in "\\$[\\[\\]\\.*?@()=<>!'\"a-z0-9_ ,:-]{0,24}", value in json_value()) {
        if let Ok(p) = JsonPath::parse(&path) {
            let mut out = Vec::new();
            p.select_into(&value, &mut out);
            let _ = p.select_keyed(&value);
        }
    }

    #[test]
    fn arbitrary_mapping_rules_compile_or_fail_and_never_panic(rule in field_rule(), value in json_value()) {
        let yaml = format!(
            "apiVersion: offersync/v1\nkind: Network\nmetadata: {{name: fuzz}}\nspec:\n  request: {{url: 'http://127.0.0.1/'}}\n  records: '$[*]'\n  fields:\n    external_id: $.id\n    name: {rule}\n    payout: {rule}\n    countries: {rule}\n    caps: {{each: '$.caps[*]', fields: {{event: {rule}, period: {rule}, value: {rule}}}}}\n"
        );
        let loaded = manifest::load_texts(&[("fuzz.yaml".into(), yaml)], &|_| None);
        if let Some(network) = loaded.catalog.networks.get("fuzz") {
            let _ = network.mapping.map_value(&Value::Array(vec![value]));
        } else {
            prop_assert!(loaded.has_errors());
        }
    }

    #[test]
    fn mangled_manifests_are_diagnostics_not_panics(cut in 0usize..2000, insert in ".{0,6}") {
        let original = std::fs::read_to_string("integrations.d/acme-everflow.yaml").unwrap();
        let mut text: String = original.chars().take(cut).collect();
        text.push_str(&insert);
        text.extend(original.chars().skip(cut + insert.chars().count()));
        let _ = manifest::load_texts(&[("mangled.yaml".into(), text)], &|_| Some("k".into()));
    }
}

/// Random field rules from the mapping language's grammar, valid or not.
fn field_rule() -> impl Strategy<Value = String> {
    let path = prop_oneof![
        Just("$.name".to_string()),
        Just("'$.a[*].b'".to_string()),
        Just("'$.x[?(@.y == 1)].z'".to_string()),
        Just("'@key'".to_string()),
        Just("'$[-1]'".to_string()),
        Just("'$..name'".to_string()),
        Just("'$.a[0:2]'".to_string()),
        "'\\$[a-z.*\\[\\]0-9?@()=]{0,10}'",
    ];
    let leaf = prop_oneof![
        path.clone(),
        path.clone()
            .prop_map(|p| format!("{{path: {p}, type: decimal}}")),
        path.clone()
            .prop_map(|p| format!("{{path: {p}, split: ',', case: upper}}")),
        path.clone()
            .prop_map(|p| format!("{{path: {p}, keys: true, map: {{a: b, '*': c}}}}")),
        path.clone().prop_map(|p| format!(
            "{{path: {p}, match: [{{pattern: '(?i)x|y', value: ios}}], default: US}}"
        )),
        path.clone()
            .prop_map(|p| format!("{{path: {p}, strip_html: true, null_if: ['-']}}")),
        path.clone()
            .prop_map(|p| format!("{{template: 'a {{{{ {} }}}} b'}}", p.trim_matches('\''))),
        path.prop_map(|p| format!("{{when: {{path: {p}, in: [1, 'x']}}, value: 7}}")),
        Just("{value: [1, 2]}".to_string()),
        Just("{path: $.a, value: 1}".to_string()),
        Just("{type: datetime}".to_string()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3)
                .prop_map(|v| format!("{{first_of: [{}]}}", v.join(", "))),
            prop::collection::vec(inner, 1..3)
                .prop_map(|v| format!("{{all_of: [{}]}}", v.join(", "))),
        ]
    })
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        "apiVersion: offersync/v1\nkind: Network\nmetadata: {{name: x}}\nspec: {}{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let loaded = manifest::load_texts(&[("deep.yaml".into(), deep)], &|_| None);
    assert!(loaded.has_errors());
}

/// A number beyond the decimal range is no panic and no failed page: the
/// payout (optional, issue 16) is left empty with the reason as a warning.
#[test]
fn huge_numbers_are_per_record_warnings() {
    let network = manifest::built_in_networks().remove("affise").unwrap();
    let body = format!(
        r#"{{"offers": [{{"id": 1, "title": "big", "payments": [{{"revenue": 1{}}}]}}, {{"id": 2, "title": "ok"}}]}}"#,
        "0".repeat(5000)
    );
    let page = network.mapping.map_page(body.as_bytes()).unwrap();
    assert_eq!(page.offers.len(), 2);
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    let big = &page.offers[0];
    assert_eq!(big.payout, None);
    // Named as unreadable, not sent empty: a stored campaign keeps its payout (#30.6).
    assert!(big.unreadable.contains(&"payout"), "{:?}", big.unreadable);
    assert!(
        big.warnings
            .iter()
            .any(|w| w.contains("out of the decimal range")),
        "{:?}",
        big.warnings
    );
}

/// Filter paths the fast walker handles: comparisons, existence, negation, and/or.
fn filter_path() -> impl Strategy<Value = String> {
    let key = prop_oneof![Just("a"), Just("b"), Just("t")];
    let literal = prop_oneof![
        Just("1".to_string()),
        Just("2.5".to_string()),
        Just("'x'".to_string()),
        Just("'include'".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
    ];
    let op = prop_oneof![
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">=")
    ];
    let atom = prop_oneof![
        (key.clone(), op, literal).prop_map(|(k, o, l)| format!("@.{k} {o} {l}")),
        key.clone().prop_map(|k| format!("@.{k}")),
        key.clone().prop_map(|k| format!("!@.{k}")),
    ];
    (
        atom.clone(),
        prop::option::of((prop_oneof![Just("&&"), Just("||")], atom)),
        key,
    )
        .prop_map(|(a, rest, out)| match rest {
            Some((join, b)) => format!("$.e[?({a} {join} {b})].{out}"),
            None => format!("$.e[?({a})].{out}"),
        })
}

fn filter_data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..4).prop_map(Value::from),
        Just(serde_json::json!(2.5)),
        Just(Value::String("x".into())),
        Just(Value::String("include".into())),
    ];
    let entry = prop::collection::btree_map(
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("t".to_string())
        ],
        leaf,
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop::collection::vec(entry, 0..6).prop_map(|e| serde_json::json!({ "e": e }))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_fast_walker_agrees_with_jsonpath_rust_on_filters(path in filter_path(), data in filter_data()) {
        let fast = JsonPath::parse(&path).unwrap();
        let mut ours = Vec::new();
        fast.select_into(&data, &mut ours);
        let query = jsonpath_rust::parser::parse_json_path(&path).unwrap();
        let reference: Vec<&Value> = jsonpath_rust::query::js_path_process(&query, &data).unwrap().into_iter().map(|r| r.val()).collect();
        prop_assert_eq!(ours, reference, "{}", path);
    }
}
