//! Compiled JSONPaths.
//!
//! Every path is parsed once, by jsonpath-rust, when a Network is loaded.
//! Paths made of names, indexes, wildcards and filters comparing the current
//! node's fields with literals (nearly all of a mapping) are then walked
//! directly on the tree, without allocation; anything richer (slices,
//! descendants, functions, root references) runs through jsonpath-rust's
//! evaluator. A property test checks that both agree.

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, JpQuery, Literal, Segment, Selector, SingularQuery,
    SingularQuerySegment, Test,
};
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
    Filter(Predicate),
}

/// A filter the fast walker evaluates itself.
#[derive(Debug, Clone)]
enum Predicate {
    Or(Vec<Predicate>),
    And(Vec<Predicate>),
    Not(Box<Predicate>),
    /// `@.a.b` exists.
    Exists(Vec<Key>),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone)]
enum Key {
    Name(String),
    Index(i64),
}

#[derive(Debug, Clone)]
enum Operand {
    Current(Vec<Key>),
    Literal(serde_json::Value),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
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
            reason: match bracketed(trimmed) {
                Some((key, fixed)) => format!(
                    "{}; a key with symbols (`{key}`) is written in brackets and quotes: `{fixed}`",
                    parse_reason(&e.to_string())
                ),
                None => parse_reason(&e.to_string()),
            },
        })?;
        let simple: Option<Vec<Step>> = query
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Selector(Selector::Name(name)) => Some(Step::Name(name.clone())),
                Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
                Segment::Selector(Selector::Wildcard) => Some(Step::Wildcard),
                Segment::Selector(Selector::Filter(filter)) => predicate(filter).map(Step::Filter),
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

    /// The object keys the path reads through before its first other step
    /// (everything under them may be read); `None` when the path may read
    /// anywhere (it runs on jsonpath-rust).
    pub fn key_prefix(&self) -> Option<Vec<String>> {
        match &self.plan {
            Plan::Full(_) => None,
            Plan::Simple(steps) => Some(
                steps
                    .iter()
                    .map_while(|s| match s {
                        Step::Name(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }

    /// Whether the path is object keys only (`$`, `$.a.b`).
    pub fn is_keys_only(&self) -> bool {
        matches!(&self.plan, Plan::Simple(steps) if steps.iter().all(|s| matches!(s, Step::Name(_))))
    }

    /// For a path of object keys ending in a wildcard (`$.data.offers[*]`),
    /// the keys of the container; records there can be read one at a time.
    pub fn container_keys(&self) -> Option<Vec<String>> {
        match self.container_with_filter()? {
            (keys, None) => Some(keys),
            (_, Some(_)) => None,
        }
    }

    /// For a path of object keys ending in a wildcard or in a filter the
    /// fast walker evaluates (`$.offers[?(@.status == "active" || @.status
    /// == "paused")]`), the keys of the container and the filter, which
    /// each record is then tested against on its own.
    pub fn container_with_filter(&self) -> Option<(Vec<String>, Option<RecordFilter<'_>>)> {
        let Plan::Simple(steps) = &self.plan else {
            return None;
        };
        let (last, names) = steps.split_last()?;
        let filter = match last {
            Step::Wildcard => None,
            Step::Filter(predicate) => Some(RecordFilter(predicate)),
            _ => return None,
        };
        let keys = names
            .iter()
            .map(|s| match s {
                Step::Name(n) => Some(n.clone()),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()?;
        Some((keys, filter))
    }

    /// Appends every value the path selects in `root` to `out`.
    pub fn select_into<'a>(&self, root: &'a Value, out: &mut Vec<&'a Value>) {
        self.select_with(root, &mut |v| out.push(v));
    }

    /// Calls `emit` with every value the path selects in `root`.
    pub fn select_with<'a>(&self, root: &'a Value, emit: &mut dyn FnMut(&'a Value)) {
        match &self.plan {
            Plan::Simple(steps) => walk(root, steps, &mut |_, v| emit(v), Found::Root),
            Plan::Full(query) => {
                if let Ok(found) = js_path_process(query, root) {
                    found.into_iter().for_each(|r| emit(r.val()));
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

    /// Whether the path may select entries of an object (it ends in a
    /// wildcard or a filter, or runs on jsonpath-rust), which have keys that
    /// `@key` reads; a path ending in a name or an index never does.
    pub fn may_select_members(&self) -> bool {
        match &self.plan {
            Plan::Full(_) => true,
            Plan::Simple(steps) => matches!(steps.last(), Some(Step::Wildcard | Step::Filter(_))),
        }
    }

    /// Every selected value with its key when it is an entry of an object
    /// (an array's items have none): the entries of `each`.
    pub fn select_members<'a>(&self, root: &'a Value, out: &mut Vec<(Option<String>, &'a Value)>) {
        match &self.plan {
            Plan::Simple(steps) => walk(
                root,
                steps,
                &mut |found, v| {
                    let key = match found {
                        Found::Key(k) => Some(k.to_string()),
                        Found::Root | Found::Position(_) => None,
                    };
                    out.push((key, v));
                },
                Found::Root,
            ),
            Plan::Full(query) => {
                if let Ok(found) = js_path_process(query, root) {
                    for r in found {
                        out.push((last_key(&r.clone().path()), r.val()));
                    }
                }
            }
        }
    }

    /// Every selected value with the key (or index) it was found under, for
    /// records held in an object keyed by id.
    pub fn select_keyed<'a>(&self, root: &'a Value) -> Vec<(Option<String>, &'a Value)> {
        let mut out = Vec::new();
        match &self.plan {
            Plan::Simple(steps) => walk(
                root,
                steps,
                &mut |k, v| out.push((k.text(), v)),
                Found::Root,
            ),
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

/// Where a selected value was found in its parent; made into text only by
/// callers that want it (records keyed by id), not on every lookup.
#[derive(Clone, Copy)]
enum Found<'a> {
    Root,
    Key(&'a str),
    Position(usize),
}

impl Found<'_> {
    fn text(self) -> Option<String> {
        match self {
            Found::Root => None,
            Found::Key(k) => Some(k.to_string()),
            Found::Position(i) => Some(i.to_string()),
        }
    }
}

fn walk<'a>(
    value: &'a Value,
    steps: &[Step],
    emit: &mut dyn FnMut(Found<'a>, &'a Value),
    found: Found<'a>,
) {
    let Some((step, rest)) = steps.split_first() else {
        emit(found, value);
        return;
    };
    let mut children = |keep: &dyn Fn(&Value) -> bool| match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if keep(item) {
                    walk(item, rest, emit, Found::Position(i));
                }
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                if keep(item) {
                    walk(item, rest, emit, Found::Key(k));
                }
            }
        }
        _ => {}
    };
    match step {
        Step::Name(name) => {
            if let Some((k, child)) = value.as_object().and_then(|o| o.get_key_value(name)) {
                walk(child, rest, emit, Found::Key(k));
            }
        }
        Step::Index(i) => {
            if let Some(items) = value.as_array() {
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&at) {
                    walk(
                        &items[at as usize],
                        rest,
                        emit,
                        Found::Position(at as usize),
                    );
                }
            }
        }
        Step::Wildcard => children(&|_| true),
        Step::Filter(predicate) => children(&|item| predicate.holds(item)),
    }
}

/// A records path's final filter, to test records read one at a time.
#[derive(Debug, Clone, Copy)]
pub struct RecordFilter<'a>(&'a Predicate);

impl RecordFilter<'_> {
    /// Whether the path selects this record.
    pub fn selects(&self, record: &Value) -> bool {
        self.0.holds(record)
    }

    /// Adds what the filter reads of a record to the shape records are parsed in.
    pub fn needs(&self, shape: &mut super::split::Shape) {
        self.0.needs(shape);
    }
}

/// The fast form of a filter, when it only compares the current node with literals.
fn predicate(filter: &Filter) -> Option<Predicate> {
    Some(match filter {
        Filter::Or(parts) => Predicate::Or(parts.iter().map(predicate).collect::<Option<_>>()?),
        Filter::And(parts) => Predicate::And(parts.iter().map(predicate).collect::<Option<_>>()?),
        Filter::Atom(FilterAtom::Filter { expr, not }) => negate(predicate(expr)?, *not),
        Filter::Atom(FilterAtom::Test { expr, not }) => match expr.as_ref() {
            Test::RelQuery(segments) => {
                negate(Predicate::Exists(keys_of_segments(segments)?), *not)
            }
            _ => return None,
        },
        Filter::Atom(FilterAtom::Comparison(cmp)) => {
            let (l, op, r) = match cmp.as_ref() {
                Comparison::Eq(l, r) => (l, Op::Eq, r),
                Comparison::Ne(l, r) => (l, Op::Ne, r),
                Comparison::Lt(l, r) => (l, Op::Lt, r),
                Comparison::Lte(l, r) => (l, Op::Le, r),
                Comparison::Gt(l, r) => (l, Op::Gt, r),
                Comparison::Gte(l, r) => (l, Op::Ge, r),
            };
            Predicate::Compare(operand(l)?, op, operand(r)?)
        }
    })
}

fn negate(p: Predicate, not: bool) -> Predicate {
    if not { Predicate::Not(Box::new(p)) } else { p }
}

fn keys_of_segments(segments: &[Segment]) -> Option<Vec<Key>> {
    segments
        .iter()
        .map(|s| match s {
            Segment::Selector(Selector::Name(n)) => Some(Key::Name(n.clone())),
            Segment::Selector(Selector::Index(i)) => Some(Key::Index(*i)),
            _ => None,
        })
        .collect()
}

fn operand(c: &Comparable) -> Option<Operand> {
    match c {
        Comparable::Literal(lit) => Some(Operand::Literal(match lit {
            Literal::Int(i) => Value::from(*i),
            Literal::Float(f) => Value::from(*f),
            Literal::String(s) => Value::String(s.clone()),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Null => Value::Null,
        })),
        Comparable::SingularQuery(SingularQuery::Current(segments)) => Some(Operand::Current(
            segments
                .iter()
                .map(|s| match s {
                    SingularQuerySegment::Name(n) => Key::Name(n.clone()),
                    SingularQuerySegment::Index(i) => Key::Index(*i),
                })
                .collect(),
        )),
        _ => None,
    }
}

fn lookup<'a>(value: &'a Value, keys: &[Key]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, key| match key {
        Key::Name(n) => v.as_object()?.get(n),
        Key::Index(i) => {
            let items = v.as_array()?;
            let at = if *i < 0 { items.len() as i64 + i } else { *i };
            usize::try_from(at).ok().and_then(|at| items.get(at))
        }
    })
}

impl Operand {
    fn resolve<'a>(&'a self, current: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Literal(v) => Some(v),
            Operand::Current(keys) => lookup(current, keys),
        }
    }
}

impl Predicate {
    fn needs(&self, shape: &mut super::split::Shape) {
        let keep = |shape: &mut super::split::Shape, keys: &[Key]| {
            let names: Vec<String> = keys
                .iter()
                .map_while(|k| match k {
                    Key::Name(n) => Some(n.clone()),
                    Key::Index(_) => None,
                })
                .collect();
            shape.keep(&names);
        };
        match self {
            Predicate::Or(parts) | Predicate::And(parts) => {
                parts.iter().for_each(|p| p.needs(shape))
            }
            Predicate::Not(p) => p.needs(shape),
            Predicate::Exists(keys) => keep(shape, keys),
            Predicate::Compare(l, _, r) => {
                for operand in [l, r] {
                    if let Operand::Current(keys) = operand {
                        keep(shape, keys);
                    }
                }
            }
        }
    }

    fn holds(&self, current: &Value) -> bool {
        match self {
            Predicate::Or(parts) => parts.iter().any(|p| p.holds(current)),
            Predicate::And(parts) => parts.iter().all(|p| p.holds(current)),
            Predicate::Not(p) => !p.holds(current),
            Predicate::Exists(keys) => lookup(current, keys).is_some(),
            Predicate::Compare(l, op, r) => compare(l.resolve(current), *op, r.resolve(current)),
        }
    }
}

/// RFC 9535 comparison: absent equals only absent; numbers compare by value;
/// strings order by code points; other kinds are only equal or not.
fn compare(l: Option<&Value>, op: Op, r: Option<&Value>) -> bool {
    let equal = match (l, r) {
        (None, None) => true,
        (Some(Value::Number(a)), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    let less = match (l, r) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => a.as_f64() < b.as_f64(),
        (Some(Value::String(a)), Some(Value::String(b))) => a < b,
        _ => false,
    };
    match op {
        Op::Eq => equal,
        Op::Ne => !equal,
        Op::Lt => less,
        Op::Le => less || equal,
        Op::Gt => !less && !equal && comparable(l, r),
        Op::Ge => (!less && comparable(l, r)) || equal,
    }
}

fn comparable(l: Option<&Value>, r: Option<&Value>) -> bool {
    matches!(
        (l, r),
        (Some(Value::Number(_)), Some(Value::Number(_)))
            | (Some(Value::String(_)), Some(Value::String(_)))
    )
}

/// The last name in a normalized path such as `$['data']['1042']`.
fn last_key(path: &str) -> Option<String> {
    let inner = path.strip_suffix("']")?;
    let start = inner.rfind("['")?;
    Some(inner[start + 2..].to_string())
}

/// jsonpath-rust reports pest errors ("--> 1:10 ..."); users need the position.
/// For a path whose dotted keys hold symbols (`$.@nextpageuri`,
/// `$.data.offer-id`): the first such key, and the path with every such key
/// in brackets (`$['@nextpageuri']`).
fn bracketed(path: &str) -> Option<(String, String)> {
    let mut fixed = String::from("$");
    let mut first = None;
    let rest = path.strip_prefix('$')?;
    // Only plain dotted paths are rewritten; brackets and filters are left to the user.
    if rest.contains(['[', ']', '(', ')', '?', '\'', '"']) {
        return None;
    }
    for key in rest.split('.').skip(1) {
        let plain =
            !key.is_empty() && (key == "*" || key.chars().all(|c| c.is_alphanumeric() || c == '_'));
        if plain {
            fixed.push('.');
            fixed.push_str(key);
        } else {
            first.get_or_insert_with(|| key.to_string());
            fixed.push_str(&format!("['{key}']"));
        }
    }
    first.map(|key| (key, fixed))
}

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

    #[test]
    fn a_dotted_key_with_symbols_is_shown_in_brackets() {
        let err = JsonPath::parse("$.@nextpageuri").unwrap_err().to_string();
        assert!(err.contains("`$['@nextpageuri']`"), "{err}");
        let err = JsonPath::parse("$.meta.next-page").unwrap_err().to_string();
        assert!(err.contains("`$.meta['next-page']`"), "{err}");
        // The bracketed form reads the key.
        let page = json!({"@nextpageuri": "/offers?page=2"});
        assert_eq!(
            select("$['@nextpageuri']", &page),
            [json!("/offers?page=2")]
        );
    }

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
    fn filters_run_on_the_fast_walker_like_jsonpath_rust() {
        let v = json!({"e": [
            {"t": "include", "c": "US", "n": 1, "d": true},
            {"t": "exclude", "c": "FR", "n": 2.5},
            {"c": "DE", "n": "3"}
        ]});
        for path in [
            "$.e[?(@.t == 'include')].c",
            "$.e[?(@.t != 'include')].c",
            "$.e[?(@.n > 1)].c",
            "$.e[?(@.n <= 2.5 && @.t)].c",
            "$.e[?(@.d || @.n == '3')].c",
            "$.e[?(!@.t)].c",
            "$.e[?(@.d == true)].c",
        ] {
            let fast = JsonPath::parse(path).unwrap();
            assert!(matches!(fast.plan, Plan::Simple(_)), "{path} is fast");
            let query = parse_json_path(path).unwrap();
            let reference: Vec<Value> = js_path_process(&query, &v)
                .unwrap()
                .into_iter()
                .map(|r| r.val().clone())
                .collect();
            assert_eq!(select(path, &v), reference, "{path}");
        }
    }

    #[test]
    fn container_keys_only_for_names_then_wildcard() {
        let keys = |p: &str| JsonPath::parse(p).unwrap().container_keys();
        assert_eq!(
            keys("$.data.offers[*]"),
            Some(vec!["data".to_string(), "offers".to_string()])
        );
        assert_eq!(keys("$[*]"), Some(vec![]));
        assert_eq!(keys("$.data[?(@.x)]"), None);
        assert_eq!(keys("$.data[0]"), None);
    }

    #[test]
    fn bad_paths_are_refused_with_a_reason() {
        assert!(JsonPath::parse("offers[*]").is_err());
        let err = JsonPath::parse("$.a[?(@.x").unwrap_err();
        assert!(err.to_string().contains("not a valid JSONPath"), "{err}");
    }
}
