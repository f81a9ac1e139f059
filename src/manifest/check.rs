//! Checking a document against its kind's JSON Schema, every problem at once.
//!
//! The schema editors use ([`super::schema`]) is the one `validate` enforces:
//! a document is read into a tree that remembers where each value was
//! written, then walked against the schema, and every wrong type, unknown
//! key, value not among the choices and missing key is reported in one pass,
//! in words for the people who write manifests (what to write, not what Rust
//! expected). Each problem names the node that cannot be read as written:
//! serde then reads the same tree without those nodes ([`super::tree`]), so
//! that the rest is still compiled, and serde's own messages are left for
//! the few checks a schema cannot state.
//!
//! This module knows no field of either kind: everything it checks, it reads
//! from the schema.

use serde_json::Value as Json;

use super::tree::{Node, Tree};
use crate::mapping::program::did_you_mean;

/// One problem found by the schema, located within its document.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The node that cannot be read as written (`id` of [`Node`]): the
    /// value, the unknown key, or the entry a required key is missing from.
    pub node: usize,
    pub line: u64,
    pub column: u64,
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem of `document` against `schema` (a draft-07 schema whose
/// `$ref`s point into its own `definitions`).
pub fn check(document: &Node, schema: &Json) -> Vec<Problem> {
    let mut walker = Walker {
        root: schema,
        problems: Vec::new(),
    };
    walker.check(document, schema, "", (1, 1));
    walker.problems
}

struct Walker<'s> {
    root: &'s Json,
    problems: Vec<Problem>,
}

/// The JSON Schema type names a node satisfies.
fn kinds_of(node: &Node) -> &'static [&'static str] {
    match &node.tree {
        Tree::Null => &["null"],
        Tree::Bool(_) => &["boolean"],
        Tree::Int(_) => &["integer", "number"],
        Tree::Float(_) => &["number"],
        Tree::Str(_) => &["string"],
        Tree::Seq(_) => &["array"],
        Tree::Map(_) => &["object"],
    }
}

/// How a value is shown back to its author: text quoted, numbers as written.
fn shown(node: &Node) -> String {
    match &node.tree {
        Tree::Null => "an empty value".into(),
        Tree::Bool(b) => b.to_string(),
        Tree::Int(i) => i.to_string(),
        Tree::Float(f) => f.to_string(),
        Tree::Str(s) => {
            let mut text: String = s.chars().take(60).collect();
            if s.chars().count() > 60 {
                text.push('…');
            }
            format!("{text:?}")
        }
        Tree::Seq(_) => "a list".into(),
        Tree::Map(_) => "a group of `key: value` lines".into(),
    }
}

fn key_text(key: &Node) -> String {
    match &key.tree {
        Tree::Str(s) => s.clone(),
        _ => shown(key),
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The first sentence of a description, for hints.
fn first_sentence(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find(". ") {
        Some(i) => flat[..=i].to_string(),
        None => flat,
    }
}

impl<'s> Walker<'s> {
    /// Follows `$ref`s to the schema they name.
    fn resolve(&self, mut schema: &'s Json) -> &'s Json {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let Some(name) = reference.strip_prefix("#/definitions/") else {
                break;
            };
            match self.root.get("definitions").and_then(|d| d.get(name)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn push(&mut self, at: &Node, field: &str, message: String, hint: Option<String>) {
        self.push_at(at.id, (at.line, at.column), field, message, hint);
    }

    /// A problem about `node` reported at another place (a missing key: where
    /// it belongs).
    fn push_at(
        &mut self,
        node: usize,
        at: (u64, u64),
        field: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            node,
            line: at.0,
            column: at.1,
            field: field.to_string(),
            message,
            hint,
        });
    }

    /// `anchor` is where the node's key was written: a missing key is
    /// reported there (the line the author has to add to).
    fn check(&mut self, node: &Node, schema: &'s Json, path: &str, anchor: (u64, u64)) {
        let schema = self.resolve(schema);
        if let Some(parts) = schema.get("allOf").and_then(Json::as_array) {
            for part in parts {
                self.check(node, part, path, anchor);
            }
            let own_rules = [
                "type",
                "enum",
                "const",
                "properties",
                "items",
                "anyOf",
                "oneOf",
            ];
            if !own_rules.iter().any(|k| schema.get(*k).is_some()) {
                return;
            }
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            self.check_alternatives(node, schema, branches, path, anchor);
            return;
        }
        if !self.accepts_kind(schema, node) {
            self.type_problem(node, schema, path);
            return;
        }
        if let Some(allowed) = self.allowed_values(schema)
            && !allowed.iter().any(|v| same_value(node, v))
        {
            self.choice_problem(node, allowed.iter().map(|v| plain(v)).collect(), path);
            return;
        }
        match &node.tree {
            Tree::Map(entries) => self.check_object(node.id, entries, schema, path, anchor),
            Tree::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(
                            item,
                            item_schema,
                            &format!("{path}[{i}]"),
                            (item.line, item.column),
                        );
                    }
                }
            }
            Tree::Int(_) | Tree::Float(_) => self.check_bounds(node, schema, path),
            _ => {}
        }
    }

    fn check_object(
        &mut self,
        node: usize,
        entries: &[(Node, Node)],
        schema: &'s Json,
        path: &str,
        anchor: (u64, u64),
    ) {
        let properties = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in entries {
            let name = key_text(key);
            let field = child_path(path, &name);
            match properties.and_then(|p| p.get(&name)) {
                Some(property) => self.check(value, property, &field, (key.line, key.column)),
                None => match additional {
                    Some(Json::Bool(false)) => {
                        let known: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let hint = did_you_mean(&name, known.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| {
                                format!("the keys allowed here are: {}", known.join(", "))
                            });
                        self.push(key, &field, format!("unknown key `{name}`"), Some(hint));
                    }
                    Some(extra @ Json::Object(_)) => {
                        self.check(value, extra, &field, (key.line, key.column))
                    }
                    _ => {}
                },
            }
        }
        let required = schema.get("required").and_then(Json::as_array);
        for name in required.into_iter().flatten().filter_map(Json::as_str) {
            if entries.iter().any(|(k, _)| key_text(k) == name) {
                continue;
            }
            let what = properties
                .and_then(|p| p.get(name))
                .map(|p| self.describe(p))
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let parent = if path.is_empty() {
                "at the top of the document".to_string()
            } else if path.ends_with(']') {
                "in this list entry".to_string()
            } else {
                format!("under `{}:`", path.rsplit('.').next().unwrap_or(path))
            };
            self.push_at(
                node,
                anchor,
                path,
                format!("`{name}` is missing{what}"),
                Some(format!("add `{name}: ...` {parent}")),
            );
        }
    }

    /// A property's description: its own, or the one of the definition it names.
    fn describe(&self, schema: &'s Json) -> String {
        if let Some(text) = schema.get("description").and_then(Json::as_str) {
            return first_sentence(text);
        }
        let resolved = self.resolve(schema);
        let via_all_of = resolved
            .get("allOf")
            .and_then(Json::as_array)
            .and_then(|parts| parts.first())
            .map(|part| self.resolve(part));
        [Some(resolved), via_all_of]
            .into_iter()
            .flatten()
            .find_map(|s| s.get("description").and_then(Json::as_str))
            .map(first_sentence)
            .unwrap_or_default()
    }

    fn check_bounds(&mut self, node: &Node, schema: &Json, path: &str) {
        let value = match node.tree {
            Tree::Int(i) => i as f64,
            Tree::Float(f) => f,
            _ => return,
        };
        if let Some(min) = schema.get("minimum").and_then(Json::as_f64)
            && value < min
        {
            self.push(
                node,
                path,
                format!("{} is less than the smallest allowed, {min}", shown(node)),
                None,
            );
        }
        if let Some(max) = schema.get("maximum").and_then(Json::as_f64)
            && value > max
        {
            self.push(
                node,
                path,
                format!("{} is more than the largest allowed, {max}", shown(node)),
                None,
            );
        }
    }

    /// The type names a schema admits; `None` when it says nothing of types.
    fn kinds(&self, schema: &'s Json) -> Option<Vec<&'s str>> {
        let schema = self.resolve(schema);
        if let Some(t) = schema.get("type") {
            return Some(match t {
                Json::String(s) => vec![s.as_str()],
                Json::Array(list) => list.iter().filter_map(Json::as_str).collect(),
                _ => return None,
            });
        }
        if let Some(values) = self.allowed_values(schema) {
            let mut kinds: Vec<&str> = values
                .iter()
                .map(|v| match v {
                    Json::String(_) => "string",
                    Json::Bool(_) => "boolean",
                    Json::Number(_) => "number",
                    Json::Null => "null",
                    Json::Array(_) => "array",
                    Json::Object(_) => "object",
                })
                .collect();
            kinds.dedup();
            return Some(kinds);
        }
        let parts = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .or_else(|| schema.get("allOf"))
            .and_then(Json::as_array)?;
        let mut kinds = Vec::new();
        for part in parts {
            kinds.extend(self.kinds(part)?);
        }
        Some(kinds)
    }

    fn accepts_kind(&self, schema: &'s Json, node: &Node) -> bool {
        match self.kinds(schema) {
            None => true,
            Some(kinds) => kinds_of(node).iter().any(|k| kinds.contains(k)),
        }
    }

    /// The values of an `enum` or `const` schema.
    fn allowed_values(&self, schema: &'s Json) -> Option<Vec<&'s Json>> {
        let schema = self.resolve(schema);
        if let Some(values) = schema.get("enum").and_then(Json::as_array) {
            return Some(values.iter().collect());
        }
        schema.get("const").map(|v| vec![v])
    }

    fn check_alternatives(
        &mut self,
        node: &Node,
        schema: &'s Json,
        branches: &'s [Json],
        path: &str,
        anchor: (u64, u64),
    ) {
        let candidates: Vec<&'s Json> = branches
            .iter()
            .map(|b| self.resolve(b))
            .filter(|b| self.accepts_kind(b, node))
            .collect();
        if candidates.is_empty() {
            self.type_problem(node, schema, path);
            return;
        }
        // Choices written as several enum/const branches (documented variants).
        let choices: Option<Vec<&Json>> = candidates.iter().try_fold(Vec::new(), |mut all, b| {
            all.extend(self.allowed_values(b)?);
            Some(all)
        });
        if let Some(choices) = choices {
            if !choices.iter().any(|v| same_value(node, v)) {
                self.choice_problem(node, choices.iter().map(|v| plain(v)).collect(), path);
            }
            return;
        }
        if candidates.len() == 1 {
            self.check(node, candidates[0], path, anchor);
            return;
        }
        if let (Tree::Map(entries), Some(tag)) = (&node.tree, self.discriminator(&candidates)) {
            let written = entries.iter().find(|(k, _)| key_text(k) == tag);
            let Some((_, value)) = written else {
                let names = self.tag_values(&candidates, tag);
                self.push_at(
                    node.id,
                    anchor,
                    path,
                    format!("`{tag}` is missing"),
                    Some(format!("add `{tag}:` with one of: {}", names.join(", "))),
                );
                return;
            };
            let chosen = candidates.iter().find(|b| {
                self.tag_schema(b, tag)
                    .and_then(|t| self.allowed_values(t))
                    .is_some_and(|vals| vals.iter().any(|v| same_value(value, v)))
            });
            match chosen {
                Some(branch) => self.check(node, branch, path, anchor),
                None => {
                    let names = self.tag_values(&candidates, tag);
                    self.choice_problem(value, names, &child_path(path, tag));
                }
            }
            return;
        }
        // No way to tell the branches apart: the one that fits, else the
        // one that fits best.
        let mut best: Option<Vec<Problem>> = None;
        for branch in candidates {
            let mut trial = Walker {
                root: self.root,
                problems: Vec::new(),
            };
            trial.check(node, branch, path, anchor);
            if trial.problems.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| trial.problems.len() < b.len()) {
                best = Some(trial.problems);
            }
        }
        self.problems.extend(best.unwrap_or_default());
    }

    /// A key every branch fixes to its own value (`kind` of a tagged enum).
    fn discriminator(&self, branches: &[&'s Json]) -> Option<&'s str> {
        let first = branches.first()?.get("properties")?.as_object()?;
        first
            .keys()
            .find(|key| {
                branches.iter().all(|b| {
                    self.tag_schema(b, key)
                        .and_then(|t| self.allowed_values(t))
                        .is_some_and(|v| v.len() == 1)
                })
            })
            .map(String::as_str)
    }

    fn tag_schema(&self, branch: &'s Json, tag: &str) -> Option<&'s Json> {
        branch.get("properties")?.get(tag)
    }

    fn tag_values(&self, branches: &[&'s Json], tag: &str) -> Vec<String> {
        branches
            .iter()
            .filter_map(|b| self.tag_schema(b, tag))
            .filter_map(|t| self.allowed_values(t))
            .flatten()
            .map(plain)
            .collect()
    }

    fn choice_problem(&mut self, node: &Node, names: Vec<String>, path: &str) {
        let hint = match &node.tree {
            Tree::Str(s) => did_you_mean(s, names.iter().map(String::as_str))
                .map(|n| format!("did you mean `{n}`?")),
            _ => None,
        }
        .unwrap_or_else(|| format!("write one of: {}", names.join(", ")));
        self.push(
            node,
            path,
            format!("{} is not one of: {}", shown(node), names.join(", ")),
            Some(hint),
        );
    }

    fn type_problem(&mut self, node: &Node, schema: &'s Json, path: &str) {
        let kinds = self.kinds(schema).unwrap_or_default();
        let mut wanted: Vec<&str> = Vec::new();
        for kind in &kinds {
            let phrase = match *kind {
                "integer" => "a whole number",
                "number" => "a number",
                "boolean" => "true or false",
                "string" => "text",
                "array" => "a list",
                "object" => "a group of `key: value` lines",
                _ => continue, // "null": an empty value is never what to write
            };
            if !wanted.contains(&phrase) {
                wanted.push(phrase);
            }
        }
        if wanted.contains(&"a whole number") && wanted.contains(&"a number") {
            wanted.retain(|w| *w != "a whole number");
        }
        let message = format!("{} is not {}", shown(node), wanted.join(" or "));
        let hint = type_hint(node, &kinds);
        self.push(node, path, message, hint);
    }
}

/// What to write instead, for the mistakes people make most.
fn type_hint(node: &Node, kinds: &[&str]) -> Option<String> {
    let wants = |k: &str| kinds.contains(&k);
    match &node.tree {
        Tree::Str(s) if wants("number") || wants("integer") => {
            let bare = s.trim();
            if let Some(percent) = bare.strip_suffix('%')
                && let Ok(n) = percent.trim().parse::<rust_decimal::Decimal>()
            {
                let ratio = (n / rust_decimal::Decimal::ONE_HUNDRED).normalize();
                return Some(format!("write {ratio} for {} %", n.normalize()));
            }
            if bare.parse::<f64>().is_ok() {
                return Some(format!("write the number without quotes: {bare}"));
            }
            Some(if wants("number") {
                "write a number such as 0.9 or 12.50 (no units, no quotes)".into()
            } else {
                "write a whole number such as 2 (no quotes)".into()
            })
        }
        Tree::Float(_) if wants("integer") && !wants("number") => {
            Some("write a whole number, without a decimal point".into())
        }
        Tree::Str(s) if wants("boolean") => {
            let lower = s.trim().to_ascii_lowercase();
            let meant = match lower.as_str() {
                "yes" | "y" | "on" | "enabled" | "enable" => Some(true),
                "no" | "n" | "off" | "disabled" | "disable" => Some(false),
                _ => None,
            };
            Some(match meant {
                Some(b) => format!("write {b} (YAML reads {s:?} as text, not as true or false)"),
                None => "write true or false".into(),
            })
        }
        Tree::Int(_) | Tree::Float(_) | Tree::Bool(_) if wants("string") => {
            Some(format!("put it in quotes: \"{}\"", shown(node)))
        }
        Tree::Map(_) if wants("string") => Some(
            "text containing `: ` or starting with `{` must be quoted: put the whole value in quotes"
                .into(),
        ),
        Tree::Str(_) | Tree::Int(_) | Tree::Float(_) | Tree::Bool(_) if wants("array") => {
            Some(format!("write a list: [{}]", shown(node)))
        }
        Tree::Null if wants("array") => Some("write a list, e.g. [US, CA], or remove the key".into()),
        Tree::Null => Some("write a value after the colon, or remove the key".into()),
        _ => None,
    }
}

fn same_value(node: &Node, value: &Json) -> bool {
    match (&node.tree, value) {
        (Tree::Str(s), Json::String(v)) => s == v,
        (Tree::Bool(b), Json::Bool(v)) => b == v,
        (Tree::Null, Json::Null) => true,
        (Tree::Int(i), Json::Number(n)) => n.as_f64() == Some(*i as f64),
        (Tree::Float(f), Json::Number(n)) => n.as_f64() == Some(*f),
        _ => false,
    }
}

fn plain(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(yaml: &str) -> Node {
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        super::super::tree::parse(yaml, options).unwrap()
    }

    fn schema() -> Json {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "payout"],
            "properties": {
                "name": {"type": "string"},
                "enabled": {"type": "boolean"},
                "payout": {"$ref": "#/definitions/Payout"},
                "status": {"oneOf": [
                    {"type": "string", "enum": ["active", "paused"]},
                    {"type": "string", "const": "pending"}
                ]},
                "auth": {"oneOf": [
                    {"type": "object", "additionalProperties": false, "required": ["kind"],
                     "properties": {"kind": {"type": "string", "const": "none"}}},
                    {"type": "object", "additionalProperties": false, "required": ["kind", "param"],
                     "properties": {"kind": {"type": "string", "const": "query_key"},
                                    "param": {"type": "string", "description": "The query parameter. More."}}}
                ]},
                "countries": {"type": ["array", "null"], "items": {"type": "string"}}
            },
            "definitions": {
                "Payout": {"type": "object", "additionalProperties": false,
                           "properties": {"ratio": {"type": "number"},
                                          "decimals": {"type": "integer", "minimum": 0}}}
            }
        })
    }

    fn messages(yaml: &str) -> Vec<String> {
        check(&tree(yaml), &schema())
            .into_iter()
            .map(|p| format!("{}:{} {}: {}", p.line, p.column, p.field, p.message))
            .collect()
    }

    #[test]
    fn every_problem_of_a_document_is_reported_in_one_pass() {
        let yaml = "name: x\nenabled: yes\npayout:\n  ratio: \"90%\"\n  decimals: two\nstatus: actve\ncolor: red\nauth: {kind: query_key}\ncountries: US\n";
        let found = messages(yaml);
        assert_eq!(
            found,
            [
                "2:10 enabled: \"yes\" is not true or false",
                "4:10 payout.ratio: \"90%\" is not a number",
                "5:13 payout.decimals: \"two\" is not a whole number",
                "6:9 status: \"actve\" is not one of: active, paused, pending",
                "7:1 color: unknown key `color`",
                "8:1 auth: `param` is missing (The query parameter.)",
                "9:12 countries: \"US\" is not a list",
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn hints_say_what_to_write() {
        let problems = check(
            &tree("name: x\nenabled: yes\npayout: {ratio: \"90%\"}\n"),
            &schema(),
        );
        let hints: Vec<_> = problems.iter().filter_map(|p| p.hint.clone()).collect();
        assert_eq!(
            hints,
            [
                "write true (YAML reads \"yes\" as text, not as true or false)",
                "write 0.9 for 90 %",
            ]
        );
    }

    #[test]
    fn a_missing_key_points_at_its_parent() {
        assert_eq!(
            messages("payout:\n  ratio: 1\n"),
            ["1:1 : `name` is missing"]
        );
        let found = check(
            &tree("name: x\npayout: {}\nauth:\n  kind: query_key\n"),
            &schema(),
        );
        assert_eq!((found[0].line, found[0].column), (3, 1), "{found:?}");
        assert_eq!(
            found[0].hint.as_deref(),
            Some("add `param: ...` under `auth:`")
        );
    }

    #[test]
    fn an_unknown_tag_lists_the_known_ones() {
        assert_eq!(
            messages("name: x\npayout: {}\nauth: {kind: query_kye}\n"),
            ["3:14 auth.kind: \"query_kye\" is not one of: none, query_key"]
        );
        assert!(
            messages("name: x\npayout: {decimals: 2}\nauth: {kind: none}\ncountries:\n").is_empty()
        );
    }
}
