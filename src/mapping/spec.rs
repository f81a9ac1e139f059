//! The mapping language as users write it (the `fields` of a Network).
//!
//! Plain serde types; [`super::program`] compiles them. Kept apart from the
//! manifest envelope so that the language can be read and tested on its own.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// How one field is read: a JSONPath string (`$.offer_name`), or a rule.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum FieldSpec {
    /// A JSONPath relative to the record; `"@key"` is the record's key.
    Path(String),
    Rule(Box<FieldRule>),
}

/// A field rule. Exactly one source: `path`, `first_of`, `all_of`, `value`,
/// `template` or `each`, read from the record (or, with `from`, from an
/// enclosing entry). Then, in this order: `when`, `null_if`, `keys`, `split`,
/// `trim` (always), `unescape`, `replace`, `strip_html`, `case`, `match`, `map`,
/// `type`, `default`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// A JSONPath relative to the record (`$.a.b[0]`, `$.list[?(@.is_default == true)].x`,
    /// `$.by_id.*`); `"@key"` is the record's key in an object keyed by id.
    #[serde(default)]
    pub path: Option<String>,
    /// Alternatives tried in order; the first that gives a value wins. Each is a
    /// path or a rule (rules may have `when`).
    #[serde(default)]
    pub first_of: Option<Vec<FieldSpec>>,
    /// Several sources whose values are all kept, in order (caps from separate
    /// daily and monthly fields; countries from two places).
    #[serde(default)]
    pub all_of: Option<Vec<FieldSpec>>,
    /// A constant.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Text with `{{ $.path }}` placeholders filled from the record, and
    /// `{{ params.NAME }}` from the Integration's (non-secret) params.
    #[serde(default)]
    pub template: Option<String>,
    /// A JSONPath to a list of sub-objects; each becomes one entry whose `fields`
    /// are read relative to it (caps, per-country payouts). A list of paths
    /// walks nested lists, each path relative to the entry before
    /// (`[$.actions[*], $.tariffs[*]]`: one entry per tariff of every action).
    #[serde(default)]
    pub each: Option<EachPath>,
    /// The sub-fields of each entry (with `each`).
    #[serde(default)]
    pub fields: Option<BTreeMap<String, FieldSpec>>,
    /// Where the rule's paths (and `when`) read, inside `each`: `record` (the
    /// whole record), `parent` (the entry one level up), or a level number
    /// (1 is the entry of the first `each` path). Default: the entry itself.
    #[serde(default)]
    pub from: Option<Scope>,
    /// Use this rule only when the condition holds.
    #[serde(default)]
    pub when: Option<Condition>,
    /// More strings meaning "no value" for this field (e.g. `"Need to apply"`).
    #[serde(default)]
    pub null_if: Vec<String>,
    /// Take the keys of an object instead of its values (countries keyed by
    /// code). Keys come in sorted order.
    #[serde(default)]
    pub keys: bool,
    /// Split a delimited string into a list, e.g. `","`.
    #[serde(default)]
    pub split: Option<String>,
    /// Undo backslash escapes left in text by a feed that escaped its JSON
    /// twice: `https:\/\/a.com\/x` becomes `https://a.com/x` (also `\"`,
    /// `\\`, `\n`, `\t`, `\uXXXX`).
    #[serde(default)]
    pub unescape: bool,
    /// Regular-expression replacements applied to text in order; `with` may
    /// use capture groups (`$1`, `${name}`).
    #[serde(default)]
    pub replace: Vec<Replace>,
    /// Remove HTML tags and decode entities.
    #[serde(default)]
    pub strip_html: bool,
    /// Change letter case.
    #[serde(default)]
    pub case: Option<Case>,
    /// Regular expressions tried on the text; each that matches adds its value
    /// (to infer an OS from a name such as `"(Android)"`).
    #[serde(default, rename = "match")]
    pub match_rules: Vec<MatchRule>,
    /// A table from values to values; `"*"` is the default for unlisted values
    /// (without it, unlisted values pass through). Keys match case-insensitively.
    #[serde(default)]
    pub map: Option<BTreeMap<String, serde_json::Value>>,
    /// Convert to a type: string, decimal, integer, bool, list or datetime.
    #[serde(default, rename = "type")]
    pub value_type: Option<ValueType>,
    /// For a range such as `"3.5%-6%"`: take the low (default) or the high end.
    #[serde(default)]
    pub range: Option<RangeEnd>,
    /// The value when nothing else gave one.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
}

/// A condition on the record.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A JSONPath relative to the record.
    pub path: String,
    /// Holds when the value equals this (strings and numbers compare as text: `"1"` equals `1`).
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// Holds when the value is one of these.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// Holds when the value is none of these.
    #[serde(default)]
    pub not_in: Option<Vec<serde_json::Value>>,
    /// Holds when the path has (true) or lacks (false) a non-null value.
    #[serde(default)]
    pub exists: Option<bool>,
}

/// The list (or nested lists) an `each` rule walks.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EachPath {
    /// One JSONPath relative to the record.
    One(String),
    /// JSONPaths of nested lists, each relative to an entry of the one before.
    Levels(Vec<String>),
}

impl EachPath {
    pub fn levels(&self) -> Vec<&str> {
        match self {
            EachPath::One(p) => vec![p.as_str()],
            EachPath::Levels(ps) => ps.iter().map(String::as_str).collect(),
        }
    }
}

/// Where a rule inside `each` reads: `record`, `parent`, or a level number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scope {
    /// `record` (the whole record) or `parent` (the entry one level up).
    Named(ScopeName),
    /// The entry of the `each` path at this level (1 is the first).
    Level(u32),
}

/// A named scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeName {
    Record,
    Parent,
}

/// One text replacement.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replace {
    /// A regular expression (Rust syntax).
    pub pattern: String,
    /// The replacement; `$1` or `${name}` insert a captured group.
    #[serde(default, rename = "with")]
    pub replacement: String,
}

/// One regular expression and the value it stands for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRule {
    /// A regular expression (Rust syntax); `(?i)` makes it case-insensitive.
    pub pattern: String,
    /// The value produced when it matches.
    pub value: serde_json::Value,
}

/// Letter case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    Upper,
    Lower,
}

/// Types a value can be converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Decimal,
    Integer,
    Bool,
    List,
    Datetime,
}

/// Which end of a range to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RangeEnd {
    Low,
    High,
}

// A string or a rule object: a hand-written visitor keeps serde's precise errors
// (unknown keys, wrong types) instead of an untagged enum's "did not match any variant".
impl<'de> Deserialize<'de> for FieldSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldSpecVisitor;
        impl<'de> Visitor<'de> for FieldSpecVisitor {
            type Value = FieldSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSONPath string such as `$.name`, or a rule object with `path`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldSpec, E> {
                Ok(FieldSpec::Path(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldSpec, A::Error> {
                FieldRule::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|rule| FieldSpec::Rule(Box::new(rule)))
            }
        }
        deserializer.deserialize_any(FieldSpecVisitor)
    }
}
