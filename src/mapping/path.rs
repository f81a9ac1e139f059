//! Compiled JSONPaths.
//!
//! Every path is parsed once, by jsonpath-rust, when a Network is loaded.
//! Paths made only of names, indexes and wildcards (nearly all of a mapping)
//! are then walked directly on the tree, without allocation; anything richer
//! (filters, slices, descendants) runs through jsonpath-rust's evaluator.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// The pseudo-path that reads a record's key in the object that holds it.
pub const RECORD_KEY: &str = "@key";

/// A JSONPath ready to run.
#[derive(Debug, Clone)]
pub struct JsonPath {
    source: String,
    plan: Plan,
}

#[derive(Debug, Clone)]
enum Plan {
    Simple(Vec<Step>),
    Full(JpQuery),
}

#[derive(Debug, Clone)]
enum Step {
    Name(String),
    Index(i64),
    Wildcard,
}

/// A JSONPath that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} is not a valid JSONPath: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<Self, PathError> {
        let trimmed = source.trim();
        if !trimmed.starts_with('$') {
            return Err(PathError {
                path: source.to_string(),
                reason: "a path starts with `$` (the record), e.g. `$.name`".into(),
            });
        }
        let query = parse_json_path(trimmed).map_err(|e| PathError {
            path: source.to_string(),
            reason: parse_reason(&e.to_string()),
        })?;
        let simple: Option<Vec<Step>> = query
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Selector(Selector::Name(name)) => Some(Step::Name(name.clone())),
                Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
                Segment::Selector(Selector::Wildcard) => Some(Step::Wildcard),
                _ => None,
            })
            .collect();
        let plan = match simple {
            Some(steps) => Plan::Simple(steps),
            None => Plan::Full(query),
        };
        Ok(Self {
            source: trimmed.to_string(),
            plan,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Appends every value the path selects in `root` to `out`.
    pub fn select_into<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        match &self.plan {
            Plan::Simple(steps) => walk(root, steps, &mut |_, v| out.push(v), None),
            Plan::Full(query) => {
                if let Ok(found) = js_path_process(query, root) {
                    out.extend(found.into_iter().map(|r| r.val()));
                }
            }
        }
    }

    /// The first value the path selects, if any.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut out = Vec::new();
        self.select_into(root, &mut out);
        out.into_iter().next()
    }

    /// Every selected value with the key (or index) it was found under, for
    /// records held in an object keyed by id.
    pub fn select_keyed<'a>(&self, root: &'a Value) -> Vec<(Option<String>, &'a Value)> {
        let mut out = Vec::new();
        match &self.plan {
            Plan::Simple(steps) => walk(root, steps, &mut |k, v| out.push((k, v)), None),
            Plan::Full(query) => {
                if let Ok(found) = js_path_process(query, root) {
                    for r in found {
                        let key = last_key(&r.clone().path());
                        out.push((key, r.val()));
                    }
                }
            }
        }
        out
    }
}

fn walk<'a>(
    value: &'a Value,
    steps: &[Step],
    emit: &mut dyn FnMut(Option<String>, &'a Value),
    key: Option<&str>,
) {
    let Some((step, rest)) = steps.split_first() else {
        emit(key.map(str::to_string), value);
        return;
    };
    match step {
        Step::Name(name) => {
            if let Some(child) = value.as_object().and_then(|o| o.get(name)) {
                walk(child, rest, emit, Some(name));
            }
        }
        Step::Index(i) => {
            if let Some(items) = value.as_array() {
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&at) {
                    walk(&items[at as usize], rest, emit, None);
                }
            }
        }
        Step::Wildcard => match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, rest, emit, Some(&i.to_string()));
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    walk(item, rest, emit, Some(k));
                }
            }
            _ => {}
        },
    }
}

/// The last name in a normalized path such as `$['data']['1042']`.
fn last_key(path: &str) -> Option<String> {
    let inner = path.strip_suffix("']")?;
    let start = inner.rfind("['")?;
    Some(inner[start + 2..].to_string())
}

/// jsonpath-rust reports pest errors ("--> 1:10 ..."); users need the position.
fn parse_reason(message: &str) -> String {
    let position = message
        .split("--> ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pos| pos.split(':').nth(1))
        .and_then(|col| col.parse::<usize>().ok());
    match position {
        Some(col) => format!("syntax error at character {col}"),
        None => message
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("syntax error")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(path: &str, v: &Value) -> Vec<Value> {
        let p = JsonPath::parse(path).unwrap();
        let mut out = Vec::new();
        p.select_into(v, &mut out);
        out.into_iter().cloned().collect()
    }

    #[test]
    fn simple_and_filtered_paths_select_the_same_way() {
        let v = json!({"entries": [{"d": false, "x": 1}, {"d": true, "x": 2}]});
        assert_eq!(select("$.entries[*].x", &v), vec![json!(1), json!(2)]);
        assert_eq!(select("$.entries[-1].x", &v), vec![json!(2)]);
        assert_eq!(select("$.entries[?(@.d == true)].x", &v), vec![json!(2)]);
        assert!(select("$.missing.x", &v).is_empty());
    }

    #[test]
    fn keyed_selection_reports_object_keys() {
        let v = json!({"data": {"1042": {"n": 1}, "1077": {"n": 2}}});
        let keys: Vec<_> = JsonPath::parse("$.data.*")
            .unwrap()
            .select_keyed(&v)
            .into_iter()
            .map(|(k, _)| k.unwrap())
            .collect();
        assert_eq!(keys, ["1042", "1077"]);
        let filtered = JsonPath::parse("$.data[?(@.n > 1)]")
            .unwrap()
            .select_keyed(&v);
        assert_eq!(filtered[0].0.as_deref(), Some("1077"));
    }

    #[test]
    fn bad_paths_are_refused_with_a_reason() {
        assert!(JsonPath::parse("offers[*]").is_err());
        let err = JsonPath::parse("$.a[?(@.x").unwrap_err();
        assert!(err.to_string().contains("not a valid JSONPath"), "{err}");
    }
}
