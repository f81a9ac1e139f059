//! Mapping tests: what a Network file says its saved responses must map to
//! (`tests:`), checked against mapped pages. Pure: the caller reads the
//! samples and reports the failures.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use super::{MappedPage, Mapping, Target};
use crate::offer::Offer;

/// A compiled `tests:` entry.
#[derive(Debug, Clone)]
pub struct MappingTest {
    pub name: String,
    /// Sample files, resolved against the Network file's directory.
    pub samples: Vec<std::path::PathBuf>,
    pub offers: Option<usize>,
    pub problems: Option<usize>,
    pub expected: BTreeMap<String, BTreeMap<String, Value>>,
    /// Saved per-offer responses: request name → offer id → file, resolved
    /// against the Network file's directory.
    pub per_offer: SavedResponses,
}

/// Saved responses of per-offer requests: request name → offer id → file.
pub type SavedResponses = BTreeMap<String, BTreeMap<String, std::path::PathBuf>>;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The offer id, or none for a count.
    pub offer: Option<String>,
    /// The offer field (or `count.offers`, `count.problems`, `problem`).
    pub field: String,
    pub expected: String,
    pub actual: String,
    /// The path the field's rule reads, to look at first.
    pub path: Option<String>,
}

/// Checks `test` against the pages mapped from its samples.
pub fn check(mapping: &Mapping, test: &MappingTest, pages: &[MappedPage]) -> Vec<Failure> {
    let mut failures = Vec::new();
    let offers: Vec<&Offer> = pages.iter().flat_map(|p| &p.offers).collect();
    let problems: Vec<&super::RecordProblem> = pages.iter().flat_map(|p| &p.problems).collect();
    let mut count = |field: &str, expected: Option<usize>, actual: usize| {
        if let Some(expected) = expected.filter(|e| *e != actual) {
            failures.push(Failure {
                offer: None,
                field: field.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
                path: None,
            });
        }
    };
    count("count.offers", test.offers, offers.len());
    count("count.problems", test.problems, problems.len());
    for (id, fields) in &test.expected {
        let offer = offers.iter().find(|o| o.external_id == *id);
        let problem = problems
            .iter()
            .find(|p| p.external_id.as_deref() == Some(id.as_str()));
        for (field, expected) in fields {
            let path = Target::from_name(field).and_then(|t| mapping.path_of(t));
            let fail = |actual: String| Failure {
                offer: Some(id.clone()),
                field: field.clone(),
                expected: shown(expected),
                actual,
                path: path.clone(),
            };
            if field == "problem" {
                match (offer, problem) {
                    (_, Some(p)) if Some(p.field) == expected.as_str() => {}
                    (_, Some(p)) => {
                        failures.push(fail(format!("a problem in {}: {}", p.field, p.reason)))
                    }
                    (Some(_), None) => failures.push(fail("mapped as an offer".into())),
                    (None, None) => failures.push(fail("no record with this id".into())),
                }
                continue;
            }
            let Some(offer) = offer else {
                failures.push(fail(match problem {
                    Some(p) => format!("no offer: field {}: {}", p.field, p.reason),
                    None => "no offer with this id".into(),
                }));
                continue;
            };
            let value = serde_json::to_value(offer).expect("offers serialize");
            let actual = value.get(field).cloned().unwrap_or(Value::Null);
            if Target::from_name(field).is_none() && field != "warnings" {
                failures.push(fail(format!("`{field}` is not an offer field")));
            } else if !same(expected, &actual) {
                failures.push(fail(shown(&actual)));
            }
        }
    }
    failures
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Equal as a mapping author means it: decimals by value (`"2.50"` is
/// `2.5`), a single value as a one-element list, lists in any order.
fn same(expected: &Value, actual: &Value) -> bool {
    if expected == actual {
        return true;
    }
    let decimal = |v: &Value| match v {
        Value::String(s) => s.parse::<Decimal>().ok(),
        Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
        _ => None,
    };
    if let (Some(a), Some(b)) = (decimal(expected), decimal(actual)) {
        return a == b;
    }
    match (expected, actual) {
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            let mut unmatched: Vec<&Value> = a.iter().collect();
            e.iter()
                .all(|x| match unmatched.iter().position(|y| same(x, y)) {
                    Some(i) => {
                        unmatched.remove(i);
                        true
                    }
                    None => false,
                })
        }
        (scalar, Value::Array(a)) if !scalar.is_array() && a.len() == 1 => same(scalar, &a[0]),
        (Value::String(e), other) if !other.is_string() && !other.is_null() => {
            e == &other.to_string()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_compare_as_an_author_means_them() {
        assert!(same(&json!("2.5"), &json!("2.50")));
        assert!(same(&json!(2.5), &json!("2.50")));
        assert!(same(&json!("US"), &json!(["US"])));
        assert!(same(&json!(["US", "CA"]), &json!(["CA", "US"])));
        assert!(!same(&json!(["US"]), &json!(["US", "CA"])));
        assert!(!same(&json!("active"), &json!("paused")));
        assert!(!same(&json!("2.5"), &Value::Null));
    }
}
