//! Paths that match nothing: for a mapping author, which fields read nothing
//! in any record of a sample, and the paths that do exist there that look
//! most like what was written.

use serde_json::Value;

use super::Mapping;
use super::path::JsonPath;

/// A field whose paths select nothing in any record, with the nearest
/// existing paths.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unmatched {
    pub field: &'static str,
    /// The path as written (the first, for a rule with several).
    pub path: String,
    /// Existing paths of the sample, nearest first (at most three).
    pub suggestions: Vec<String>,
}

/// Paths listed for suggestions, at most: a sample's records are walked only
/// this far, so a huge sample stays quick.
const MAX_KNOWN_PATHS: usize = 20_000;

/// The fields of `mapping` that read nothing in any of `records`.
pub fn unmatched(mapping: &Mapping, records: &[&Value]) -> Vec<Unmatched> {
    if records.is_empty() {
        return Vec::new();
    }
    let mut known: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for field in &mapping.fields {
        let paths = field.program.source_paths();
        let Some(first) = paths.first() else {
            continue;
        };
        let found = records
            .iter()
            .any(|record| paths.iter().any(|p| p.first(record).is_some()));
        if found {
            continue;
        }
        if known.is_empty() {
            for record in records {
                walk(record, "$".to_string(), &mut known);
            }
            known.sort();
            known.dedup();
        }
        out.push(Unmatched {
            field: field.target.name(),
            path: first.as_str().to_string(),
            suggestions: nearest(first.as_str(), &known),
        });
    }
    out
}

/// Why a required field found nothing in one record, when its paths select
/// nothing there: the path as written and the record's nearest existing
/// paths (`\`$.titel\` selects nothing in the record; did you mean
/// \`$.title\`?`). `None` when a path selects something (a null or an empty
/// value: the network sent no value, the path is right).
pub fn nothing_selected(paths: &[&JsonPath], record: &Value) -> Option<String> {
    let first = paths.first()?;
    if paths.iter().any(|p| p.first(record).is_some()) {
        return None;
    }
    let mut known = Vec::new();
    walk(record, "$".to_string(), &mut known);
    known.sort();
    known.dedup();
    Some(format!(
        "`{}` selects nothing in the record{}",
        first.as_str(),
        did_you_mean(&nearest(first.as_str(), &known))
    ))
}

/// `; did you mean `a`?` or `; did you mean one of: `a`, `b`?`, or nothing.
pub fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of: {}?",
            many.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every path to a value in `value`, arrays written with `[0]`.
fn walk(value: &Value, at: String, out: &mut Vec<String>) {
    if out.len() >= MAX_KNOWN_PATHS {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let plain = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_');
                let next = if plain {
                    format!("{at}.{key}")
                } else {
                    format!("{at}['{}']", key.replace('\'', "\\'"))
                };
                walk(child, next, out);
            }
        }
        Value::Array(items) => {
            for item in items.iter().take(3) {
                walk(item, format!("{at}[0]"), out);
            }
        }
        _ => out.push(at),
    }
}

/// The existing paths most like `wanted`: the last key weighs most, since
/// that is what authors usually get right or nearly right.
fn nearest(wanted: &str, known: &[String]) -> Vec<String> {
    let last = |p: &str| {
        p.rsplit(['.', '[', '\''])
            .find(|s| {
                !s.is_empty()
                    && *s != "]"
                    && !s.starts_with(|c: char| c.is_ascii_digit() || c == '*')
            })
            .unwrap_or(p)
            .trim_end_matches(']')
            .to_lowercase()
    };
    let wanted_last = last(wanted);
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|k| {
            let score = 0.6 * strsim::jaro_winkler(&wanted_last, &last(k))
                + 0.4 * strsim::jaro_winkler(&wanted.to_lowercase(), &k.to_lowercase());
            (score, k)
        })
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_nearest_existing_paths_come_first() {
        let record = json!({"relationship": {"payouts": {"entries": [{"payout_amount": 2.5, "payout_type": "cpa"}]}}, "name": "A"});
        let mut known = Vec::new();
        walk(&record, "$".into(), &mut known);
        let near = nearest("$.relationship.payout.entries[0].payout_amout", &known);
        assert_eq!(near[0], "$.relationship.payouts.entries[0].payout_amount");
        assert!(nearest("$.zzzz_qqqq", &known).is_empty());
    }

    /// Issue 26.7: a mistyped required path said only "no value".
    #[test]
    fn a_path_that_selects_nothing_in_a_record_names_the_nearest() {
        let record = json!({"offer_id": 1, "title": "A", "empty": null});
        let path = |p: &str| JsonPath::parse(p).unwrap();
        assert_eq!(
            nothing_selected(&[&path("$.titel")], &record).as_deref(),
            Some("`$.titel` selects nothing in the record; did you mean `$.title`?")
        );
        // A path that finds the key (with no value) is right: no hint.
        assert_eq!(nothing_selected(&[&path("$.empty")], &record), None);
        assert_eq!(
            nothing_selected(&[&path("$.zzzz_qqqq")], &record).as_deref(),
            Some("`$.zzzz_qqqq` selects nothing in the record")
        );
    }
}
