//! Field rules compiled into programs, and their evaluation on one record.
//!
//! Compiling checks everything that can be checked without data (paths parse,
//! regexes compile, exactly one source); evaluation never panics and reports
//! a reason for a value it cannot use.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use regex::Regex;
use serde_json::Value;
use smallvec::SmallVec;

use super::convert::{self, describe, text_of};
use super::path::{JsonPath, RECORD_KEY};
use super::spec::{Case, Condition, FieldRule, FieldSpec, RangeEnd, Scope, ScopeName, ValueType};
use super::split::Shape;
pub use super::template::Template;

/// What a rule produces: usually one value, so kept inline.
pub type Values<'a> = SmallVec<[Cow<'a, Value>; 2]>;

/// A problem found while compiling a rule: where in the rule, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Dotted path inside the field rule (`first_of[1].path`), empty for the rule itself.
    pub at: String,
    pub message: String,
}

impl CompileError {
    pub(super) fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
        }
    }

    fn within(mut self, prefix: &str) -> Self {
        self.at = if self.at.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.at)
        };
        self
    }
}

/// Values that mean "nothing": the built-ins plus a network's own.
#[derive(Debug, Clone)]
pub struct NullSet(Vec<String>);

impl NullSet {
    pub const BUILT_IN: [&'static str; 4] = ["", "0000-00-00", "0000-00-00 00:00:00", "null"];

    pub fn new(extra: &[String]) -> Self {
        let mut all: Vec<String> = Self::BUILT_IN.iter().map(|s| s.to_string()).collect();
        all.extend(extra.iter().map(|s| s.trim().to_string()));
        Self(all)
    }

    fn contains(&self, s: &str) -> bool {
        let s = s.trim();
        self.0.iter().any(|n| n == s)
    }
}

/// What a rule reads from.
#[derive(Debug, Clone)]
enum Source {
    Path(JsonPath),
    Key,
    FirstOf(Vec<Program>),
    AllOf(Vec<Program>),
    Value(Value),
    Template(Template),
    Each {
        /// Nested lists: each path is read from an entry of the one before.
        levels: Vec<JsonPath>,
        fields: Vec<(String, Program)>,
    },
}

/// A compiled field rule.
#[derive(Debug, Clone)]
pub struct Program {
    source: Source,
    from: Option<Scope>,
    when: Option<Cond>,
    null_if: Vec<String>,
    keys: bool,
    split: Option<String>,
    unescape: bool,
    replaces: Vec<(Regex, String)>,
    strip_html: bool,
    case: Option<Case>,
    matches: Vec<(Regex, Value)>,
    map: Option<MapTable>,
    value_type: Option<ValueType>,
    range: RangeEnd,
    default: Option<Value>,
}

/// A compiled condition on a record (`when`).
#[derive(Debug, Clone)]
pub struct Cond {
    path: PathOrKey,
    equals: Option<String>,
    one_of: Option<Vec<String>>,
    not_in: Option<Vec<String>>,
    exists: Option<bool>,
}

#[derive(Debug, Clone)]
enum PathOrKey {
    Path(JsonPath),
    Key,
}

#[derive(Debug, Clone)]
struct MapTable {
    entries: HashMap<String, Value>,
    fallback: Option<Value>,
}

/// What placeholders a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateScope<'a> {
    /// `{{ $.path }}` on the record.
    Record,
    /// `{{ params.NAME }}` with these names.
    Params(&'a [&'a str]),
    /// Both: `{{ params.NAME }}` and `{{ record.$.path }}`.
    ParamsAndRecord(&'a [&'a str]),
    /// An offer field: `{{ $.path }}` and `{{ params.NAME }}`, where a secret
    /// param is refused (a field's value is stored and shown).
    Field(FieldEnv<'a>),
}

/// What an offer field's rules may use besides the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldEnv<'a> {
    /// The Network's params a field template may read.
    pub params: &'a [&'a str],
    /// Params that are secrets: named in a field, they are refused.
    pub secret_params: &'a [&'a str],
    /// How many `each` levels enclose the rule.
    depth: usize,
}

impl<'a> FieldEnv<'a> {
    pub fn new(params: &'a [&'a str], secret_params: &'a [&'a str]) -> Self {
        Self {
            params,
            secret_params,
            depth: 0,
        }
    }

    fn deeper(self, levels: usize) -> Self {
        Self {
            depth: self.depth + levels,
            ..self
        }
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

impl Program {
    /// Compiles a rule that reads the record only (no params).
    pub fn compile(spec: &FieldSpec) -> Result<Self, CompileError> {
        Self::compile_in(spec, FieldEnv::default())
    }

    /// Compiles a rule that may read the params `env` names.
    pub fn compile_in(spec: &FieldSpec, env: FieldEnv<'_>) -> Result<Self, CompileError> {
        match spec {
            FieldSpec::Path(path) => Ok(Self::from_source(source_for_path(path)?)),
            FieldSpec::Rule(rule) => Self::compile_rule(rule, env),
        }
    }

    fn from_source(source: Source) -> Self {
        Self {
            source,
            from: None,
            when: None,
            null_if: Vec::new(),
            keys: false,
            split: None,
            unescape: false,
            replaces: Vec::new(),
            strip_html: false,
            case: None,
            matches: Vec::new(),
            map: None,
            value_type: None,
            range: RangeEnd::Low,
            default: None,
        }
    }

    fn compile_rule(rule: &FieldRule, env: FieldEnv<'_>) -> Result<Self, CompileError> {
        match rule.from {
            Some(Scope::Named(ScopeName::Parent)) if env.depth == 0 => {
                return Err(CompileError::new(
                    "from",
                    "`from: parent` reads the entry one level up, so it belongs in the `fields` of an `each`",
                ));
            }
            Some(Scope::Level(level)) if level == 0 || level as usize > env.depth => {
                return Err(CompileError::new(
                    "from",
                    format!(
                        "`from: {level}` names an `each` level, but {} enclose this rule (1 is the first path of `each`)",
                        match env.depth {
                            0 => "none".to_string(),
                            1 => "1 level".to_string(),
                            n => format!("{n} levels"),
                        }
                    ),
                ));
            }
            _ => {}
        }
        let mut sources = Vec::new();
        if let Some(path) = &rule.path {
            sources.push(source_for_path(path).map_err(|e| e.within("path"))?);
        }
        if let Some(alternatives) = &rule.first_of {
            sources.push(Source::FirstOf(compile_list(
                alternatives,
                "first_of",
                env,
            )?));
        }
        if let Some(parts) = &rule.all_of {
            sources.push(Source::AllOf(compile_list(parts, "all_of", env)?));
        }
        if let Some(value) = &rule.value {
            sources.push(Source::Value(value.clone()));
        }
        if let Some(template) = &rule.template {
            sources.push(Source::Template(
                Template::compile(template, TemplateScope::Field(env))
                    .map_err(|e| e.within("template"))?,
            ));
        }
        if let Some(each) = &rule.each {
            let levels = each
                .levels()
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    JsonPath::parse(p).map_err(|e| {
                        CompileError::new(
                            if each.levels().len() == 1 {
                                "each".to_string()
                            } else {
                                format!("each[{i}]")
                            },
                            e.to_string(),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if levels.is_empty() {
                return Err(CompileError::new("each", "`each` lists no path"));
            }
            let inner = env.deeper(levels.len());
            let Some(fields) = &rule.fields else {
                return Err(CompileError::new(
                    "each",
                    "`each` needs `fields`: the sub-fields read from every entry",
                ));
            };
            let fields: Vec<(String, Program)> = fields
                .iter()
                .map(|(name, spec)| {
                    Program::compile_in(spec, inner)
                        .map(|p| (name.clone(), p))
                        .map_err(|e| e.within(&format!("fields.{name}")))
                })
                .collect::<Result<_, _>>()?;
            let last = levels.last().expect("at least one level, checked");
            if !last.may_select_members()
                && let Some((name, _)) = fields.iter().find(|(_, p)| p.reads_key())
            {
                return Err(CompileError::new(
                    format!("fields.{name}"),
                    format!(
                        "`@key` reads the key of an object's entry, but `each: {}` ends in a name or an index and selects no entry of an object, so it would always be empty; end the path in `.*` to go through the object's entries (e.g. `$.payouts_per_country.*`)",
                        last.as_str()
                    ),
                ));
            }
            sources.push(Source::Each { levels, fields });
        } else if rule.fields.is_some() {
            return Err(CompileError::new(
                "fields",
                "`fields` only goes with `each`",
            ));
        }
        let source = match sources.len() {
            1 => sources.pop().expect("one source"),
            0 if rule.default.is_some() => Source::Value(Value::Null),
            0 => {
                return Err(CompileError::new(
                    "",
                    "a rule needs a source: one of `path`, `first_of`, `all_of`, `value`, `template`, `each`",
                ));
            }
            _ => {
                return Err(CompileError::new(
                    "",
                    "a rule has exactly one source: choose one of `path`, `first_of`, `all_of`, `value`, `template`, `each`",
                ));
            }
        };
        let when = rule
            .when
            .as_ref()
            .map(|c| Cond::compile(c).map_err(|e| e.within("when")))
            .transpose()?;
        let matches = rule
            .match_rules
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Regex::new(&m.pattern)
                    .map(|re| (re, m.value.clone()))
                    .map_err(|e| {
                        CompileError::new(
                            format!("match[{i}].pattern"),
                            format!(
                                "{:?} is not a valid regular expression: {}",
                                m.pattern,
                                first_line(&e.to_string())
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        let map = rule.map.as_ref().map(|table| {
            let mut entries = HashMap::new();
            let mut fallback = None;
            for (key, value) in table {
                if key == "*" {
                    fallback = Some(value.clone());
                } else {
                    entries.insert(key.trim().to_lowercase(), value.clone());
                }
            }
            MapTable { entries, fallback }
        });
        if rule.split.as_deref() == Some("") {
            return Err(CompileError::new("split", "the delimiter is empty"));
        }
        let replaces = rule
            .replace
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Regex::new(&r.pattern)
                    .map(|re| (re, r.replacement.clone()))
                    .map_err(|e| {
                        CompileError::new(
                            format!("replace[{i}].pattern"),
                            format!(
                                "{:?} is not a valid regular expression: {}",
                                r.pattern,
                                first_line(&e.to_string())
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            source,
            from: rule.from,
            when,
            null_if: rule.null_if.iter().map(|s| s.trim().to_string()).collect(),
            keys: rule.keys,
            split: rule.split.clone(),
            unescape: rule.unescape,
            replaces,
            strip_html: rule.strip_html,
            case: rule.case,
            matches,
            map,
            value_type: rule.value_type,
            range: rule.range.unwrap_or(RangeEnd::Low),
            default: rule.default.clone(),
        })
    }

    /// For `type: decimal` conversions and the payout field: which end of a range.
    pub fn range(&self) -> RangeEnd {
        self.range
    }

    /// Whether this rule builds entries with `each`.
    pub fn is_each(&self) -> bool {
        matches!(self.source, Source::Each { .. })
    }

    /// The sub-field names of an `each` rule.
    pub fn each_fields(&self) -> Vec<&str> {
        match &self.source {
            Source::Each { fields, .. } => fields.iter().map(|(n, _)| n.as_str()).collect(),
            Source::FirstOf(alts) | Source::AllOf(alts) => {
                alts.iter().flat_map(|p| p.each_fields()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Adds to `shape` every part of a record this rule may read.
    pub fn record_needs(&self, shape: &mut Shape) {
        let keep = |path: &JsonPath, shape: &mut Shape| match path.key_prefix() {
            Some(prefix) => shape.keep(&prefix),
            None => shape.keep(&[]),
        };
        if let Some(Cond {
            path: PathOrKey::Path(p),
            ..
        }) = &self.when
        {
            keep(p, shape);
        }
        match &self.source {
            Source::Path(p) => keep(p, shape),
            Source::Key | Source::Value(_) => {}
            Source::FirstOf(programs) | Source::AllOf(programs) => {
                programs.iter().for_each(|p| p.record_needs(shape));
            }
            Source::Template(t) => t.paths().into_iter().for_each(|p| keep(p, shape)),
            Source::Each { levels, fields } => match levels[0].key_prefix() {
                // `each: $.a` reads its fields relative to the object at `$.a`.
                Some(prefix)
                    if levels.len() == 1
                        && levels[0].is_keys_only()
                        && fields.iter().all(|(_, p)| !p.reads_outside_entry()) =>
                {
                    let mut inner = Shape::nothing();
                    fields.iter().for_each(|(_, p)| p.record_needs(&mut inner));
                    shape.keep_shape(&prefix, inner);
                }
                // Entries that read their parents or the record: the record whole.
                _ if fields.iter().any(|(_, p)| p.reads_outside_entry()) => shape.keep(&[]),
                _ => keep(&levels[0], shape),
            },
        }
    }

    /// The JSONPaths the rule reads its values from (not its `when`, not
    /// inside `each`), in the order written.
    pub fn source_paths(&self) -> Vec<&JsonPath> {
        match &self.source {
            Source::Path(p) => vec![p],
            Source::FirstOf(programs) | Source::AllOf(programs) => {
                programs.iter().flat_map(Program::source_paths).collect()
            }
            Source::Each { levels, .. } => vec![&levels[0]],
            Source::Template(t) => t.paths(),
            Source::Key | Source::Value(_) => Vec::new(),
        }
    }

    /// The rule in a few words, for `explain`: its source and the steps that
    /// change values.
    pub fn describe(&self) -> String {
        let mut text = match &self.source {
            Source::Path(p) => p.as_str().to_string(),
            Source::Key => "@key".to_string(),
            Source::FirstOf(alts) => format!(
                "first_of [{}]",
                alts.iter()
                    .map(Program::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Source::AllOf(parts) => format!(
                "all_of [{}]",
                parts
                    .iter()
                    .map(Program::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Source::Value(v) => format!("value {v}"),
            Source::Template(t) => format!("template ({} parts)", t.part_count()),
            Source::Each { levels, fields } => format!(
                "each {} with {}",
                levels
                    .iter()
                    .map(JsonPath::as_str)
                    .collect::<Vec<_>>()
                    .join(" → "),
                fields
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if let Some(from) = self.from {
            text.push_str(&format!(" from {from:?}"));
        }
        if self.when.is_some() {
            text.push_str(" when …");
        }
        for (on, step) in [
            (self.split.is_some(), "split"),
            (self.unescape, "unescape"),
            (!self.replaces.is_empty(), "replace"),
            (self.strip_html, "strip_html"),
            (self.case.is_some(), "case"),
        ] {
            if on {
                text.push_str(" | ");
                text.push_str(step);
            }
        }
        if self.map.is_some() {
            text.push_str(" | map");
        }
        if !self.matches.is_empty() {
            text.push_str(" | match");
        }
        if let Some(ty) = self.value_type {
            text.push_str(&format!(" | type {ty:?}").to_lowercase());
        }
        text
    }

    /// For `explain`: each alternative of a `first_of` (or the rule itself)
    /// and whether it gave a value on this record; the first that did is
    /// the one used.
    pub fn alternatives(&self, ctx: &Ctx<'_>) -> Vec<(String, bool)> {
        match &self.source {
            Source::FirstOf(alts) => alts
                .iter()
                .map(|alt| (alt.describe(), alt.eval(ctx).is_ok_and(|v| !v.is_empty())))
                .collect(),
            _ => vec![(self.describe(), self.eval(ctx).is_ok_and(|v| !v.is_empty()))],
        }
    }

    /// Whether the rule (or one inside it) reads from an enclosing entry.
    fn reads_outside_entry(&self) -> bool {
        self.from.is_some()
            || match &self.source {
                Source::FirstOf(programs) | Source::AllOf(programs) => {
                    programs.iter().any(Program::reads_outside_entry)
                }
                Source::Each { fields, .. } => fields.iter().any(|(_, p)| p.reads_outside_entry()),
                _ => false,
            }
    }

    /// Whether the rule (or one inside it) says `from: record`.
    pub fn reads_from_record(&self) -> bool {
        matches!(self.from, Some(Scope::Named(ScopeName::Record)))
            || match &self.source {
                Source::FirstOf(programs) | Source::AllOf(programs) => {
                    programs.iter().any(Program::reads_from_record)
                }
                Source::Each { fields, .. } => fields.iter().any(|(_, p)| p.reads_from_record()),
                _ => false,
            }
    }

    /// Whether the rule reads `@key` at its own level (not inside an `each`
    /// of its own, whose entries have their own keys).
    pub(crate) fn reads_key(&self) -> bool {
        matches!(self.source, Source::Key)
            || self
                .when
                .as_ref()
                .is_some_and(|c| matches!(c.path, PathOrKey::Key))
            || match &self.source {
                Source::FirstOf(programs) | Source::AllOf(programs) => {
                    programs.iter().any(Program::reads_key)
                }
                _ => false,
            }
    }

    /// Whether the rule fills text with params.
    pub fn uses_params(&self) -> bool {
        match &self.source {
            Source::Template(t) => t.uses_params(),
            Source::FirstOf(programs) | Source::AllOf(programs) => {
                programs.iter().any(Program::uses_params)
            }
            Source::Each { fields, .. } => fields.iter().any(|(_, p)| p.uses_params()),
            _ => false,
        }
    }

    /// Runs the rule on a record.
    pub fn eval<'a>(&'a self, ctx: &Ctx<'a>) -> Result<Values<'a>, String> {
        if let Some(from) = self.from {
            let record = match from {
                Scope::Named(ScopeName::Record) => ctx.scopes.first().copied(),
                Scope::Named(ScopeName::Parent) => ctx.scopes.last().copied(),
                Scope::Level(level) => ctx.scopes.get(level as usize).copied(),
            }
            // Level n of n (the entry itself), or a rule outside any `each`.
            .unwrap_or(ctx.record);
            let outer = Ctx { record, ..*ctx };
            return self.eval_here(&outer);
        }
        self.eval_here(ctx)
    }

    fn eval_here<'a>(&'a self, ctx: &Ctx<'a>) -> Result<Values<'a>, String> {
        if let Some(cond) = &self.when
            && !cond.holds(ctx)
        {
            return Ok(Values::new());
        }
        let mut raw: Values<'a> = Values::new();
        match &self.source {
            Source::Path(path) => path.select_with(ctx.record, &mut |v| raw.push(Cow::Borrowed(v))),
            Source::Key => {
                if let Some(key) = ctx.key {
                    raw.push(Cow::Owned(Value::String(key.to_string())));
                }
            }
            Source::FirstOf(alternatives) => {
                for alt in alternatives {
                    let values = alt.eval(ctx)?;
                    if !values.is_empty() {
                        raw = values;
                        break;
                    }
                }
            }
            Source::AllOf(parts) => {
                for part in parts {
                    raw.extend(part.eval(ctx)?);
                }
            }
            Source::Value(v) => raw.push(Cow::Borrowed(v)),
            Source::Template(t) => {
                let text = t.render(Some(ctx.record), &|name| ctx.params.get(name).cloned());
                raw.push(Cow::Owned(Value::String(text)));
            }
            Source::Each { levels, fields } => {
                // Every entry of the innermost list, with the entries that
                // enclose it (the record first).
                let mut scopes: Vec<&Value> = ctx.scopes.to_vec();
                // At the top the record is the first scope; inside an entry, that entry.
                scopes.push(ctx.record);
                // Each entry with its key in its object (`@key`), if it has one.
                type Entry<'v> = (Vec<&'v Value>, &'v Value, Option<String>);
                let mut current: Vec<Entry> = vec![(scopes, ctx.record, None)];
                for (i, level) in levels.iter().enumerate() {
                    let mut next = Vec::new();
                    for (scopes, entry, _) in current {
                        let mut found = Vec::new();
                        level.select_members(entry, &mut found);
                        for (key, item) in found {
                            let mut inner = scopes.clone();
                            if i > 0 {
                                inner.push(entry);
                            }
                            next.push((inner, item, key));
                        }
                    }
                    current = next;
                }
                for (scopes, entry, key) in &current {
                    let sub = Ctx {
                        record: entry,
                        key: key.as_deref(),
                        scopes,
                        ..*ctx
                    };
                    let mut object = serde_json::Map::new();
                    for (name, program) in fields {
                        let mut values = program.eval(&sub).map_err(|e| format!("{name}: {e}"))?;
                        match values.len() {
                            0 => {}
                            1 => {
                                object
                                    .insert(name.clone(), values.pop().expect("one").into_owned());
                            }
                            _ => {
                                object.insert(
                                    name.clone(),
                                    Value::Array(values.into_iter().map(Cow::into_owned).collect()),
                                );
                            }
                        }
                    }
                    raw.push(Cow::Owned(Value::Object(object)));
                }
                return Ok(raw);
            }
        }
        self.transform(raw, ctx)
    }

    fn transform<'a>(&'a self, raw: Values<'a>, ctx: &Ctx<'a>) -> Result<Values<'a>, String> {
        let needs_flattening = self.keys || raw.iter().any(|v| v.is_array());
        let mut values: Values<'a> = if needs_flattening {
            let mut flat = Values::with_capacity(raw.len());
            for value in raw {
                let value = match value.as_ref() {
                    Value::Object(map) if self.keys => Cow::Owned(Value::Array(
                        map.keys().map(|k| Value::String(k.clone())).collect(),
                    )),
                    _ => value,
                };
                match value {
                    Cow::Borrowed(Value::Array(items)) => {
                        flat.extend(items.iter().map(Cow::Borrowed))
                    }
                    Cow::Owned(Value::Array(items)) => {
                        flat.extend(items.into_iter().map(Cow::Owned))
                    }
                    other => flat.push(other),
                }
            }
            flat
        } else {
            raw
        };
        values.retain(|v| !self.is_null(v, ctx.nulls));
        if let Some(delimiter) = &self.split {
            let mut parts = Values::with_capacity(values.len());
            for value in values {
                match value.as_ref() {
                    Value::String(s) => parts.extend(
                        s.split(delimiter.as_str())
                            .map(str::trim)
                            .filter(|p| !p.is_empty())
                            .map(|p| Cow::Owned(Value::String(p.to_string()))),
                    ),
                    _ => parts.push(value),
                }
            }
            values = parts;
        }
        for value in &mut values {
            if let Value::String(s) = value.as_ref() {
                let mut text: Cow<'_, str> = Cow::Borrowed(s.as_str());
                if text.trim().len() != text.len() {
                    text = Cow::Owned(text.trim().to_string());
                }
                if self.unescape && text.contains('\\') {
                    text = Cow::Owned(convert::unescape(&text));
                }
                for (re, with) in &self.replaces {
                    if let Cow::Owned(replaced) = re.replace_all(&text, with.as_str()) {
                        text = Cow::Owned(replaced);
                    }
                }
                if self.strip_html {
                    text = Cow::Owned(convert::strip_html(&text));
                }
                match self.case {
                    Some(Case::Upper) => text = Cow::Owned(text.to_uppercase()),
                    Some(Case::Lower) => text = Cow::Owned(text.to_lowercase()),
                    None => {}
                }
                if let Cow::Owned(changed) = text {
                    *value = Cow::Owned(Value::String(changed));
                }
            }
        }
        if !self.matches.is_empty() {
            let mut matched = Values::new();
            for value in &values {
                if let Some(text) = text_of(value) {
                    for (re, out) in &self.matches {
                        if re.is_match(&text)
                            && !matched.iter().any(|m: &Cow<Value>| m.as_ref() == out)
                        {
                            matched.push(Cow::Borrowed(out));
                        }
                    }
                }
            }
            values = matched;
        }
        if let Some(table) = &self.map {
            let mut mapped = Values::with_capacity(values.len());
            for value in values {
                let found = match value.as_ref() {
                    // Most values are already trimmed lower case: look them up without copying.
                    Value::String(s) if !s.bytes().any(|b| b.is_ascii_uppercase() || b == b' ') => {
                        table.entries.get(s.as_str())
                    }
                    other => {
                        text_of(other).and_then(|t| table.entries.get(&t.trim().to_lowercase()))
                    }
                };
                match found {
                    Some(out) => mapped.push(Cow::Borrowed(out)),
                    None => match &table.fallback {
                        Some(out) => mapped.push(Cow::Borrowed(out)),
                        None => mapped.push(value),
                    },
                }
            }
            values = mapped;
            values.retain(|v| !v.is_null());
        }
        if let Some(ty) = self.value_type {
            values = values
                .into_iter()
                .map(|v| convert_type(v, ty, self.range))
                .collect::<Result<_, _>>()?;
        }
        if values.is_empty()
            && let Some(default) = &self.default
        {
            values.push(Cow::Borrowed(default));
        }
        Ok(values)
    }

    fn is_null(&self, value: &Value, nulls: &NullSet) -> bool {
        match value {
            Value::Null => true,
            Value::String(s) => nulls.contains(s) || self.null_if.iter().any(|n| n == s.trim()),
            Value::Number(_) => {
                !self.null_if.is_empty()
                    && text_of(value).is_some_and(|t| self.null_if.contains(&t))
            }
            _ => false,
        }
    }
}

fn convert_type<'a>(
    value: Cow<'a, Value>,
    ty: ValueType,
    range: RangeEnd,
) -> Result<Cow<'a, Value>, String> {
    Ok(match ty {
        ValueType::String => match value.as_ref() {
            Value::String(_) => value,
            other => Cow::Owned(Value::String(
                text_of(other).ok_or_else(|| format!("{} is not text", describe(other)))?,
            )),
        },
        ValueType::Decimal => Cow::Owned(Value::String(
            convert::to_decimal(&value, range)?.to_string(),
        )),
        ValueType::Integer => Cow::Owned(Value::from(convert::to_integer(&value)?)),
        ValueType::Bool => Cow::Owned(Value::Bool(convert::to_bool(&value)?)),
        ValueType::Datetime => {
            Cow::Owned(Value::String(convert::to_datetime(&value)?.to_rfc3339()))
        }
        ValueType::List => value,
    })
}

fn source_for_path(path: &str) -> Result<Source, CompileError> {
    if path.trim() == RECORD_KEY {
        return Ok(Source::Key);
    }
    JsonPath::parse(path)
        .map(Source::Path)
        .map_err(|e| CompileError::new("", e.to_string()))
}

fn compile_list(
    specs: &[FieldSpec],
    name: &str,
    env: FieldEnv<'_>,
) -> Result<Vec<Program>, CompileError> {
    if specs.is_empty() {
        return Err(CompileError::new(name, format!("`{name}` is empty")));
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| Program::compile_in(s, env).map_err(|e| e.within(&format!("{name}[{i}]"))))
        .collect()
}

impl Cond {
    pub fn compile(c: &Condition) -> Result<Self, CompileError> {
        let path = if c.path.trim() == RECORD_KEY {
            PathOrKey::Key
        } else {
            PathOrKey::Path(
                JsonPath::parse(&c.path).map_err(|e| CompileError::new("path", e.to_string()))?,
            )
        };
        let texts = |vs: &Option<Vec<Value>>| {
            vs.as_ref()
                .map(|vs| vs.iter().filter_map(text_of).collect())
        };
        let cond = Self {
            path,
            equals: c.equals.as_ref().and_then(text_of),
            one_of: texts(&c.one_of),
            not_in: texts(&c.not_in),
            exists: c.exists,
        };
        if cond.equals.is_none()
            && cond.one_of.is_none()
            && cond.not_in.is_none()
            && cond.exists.is_none()
        {
            return Err(CompileError::new(
                "",
                "a condition needs one of `equals`, `in`, `not_in`, `exists`",
            ));
        }
        Ok(cond)
    }

    pub fn holds(&self, ctx: &Ctx<'_>) -> bool {
        let value: Option<Cow<'_, Value>> = match &self.path {
            PathOrKey::Key => ctx.key.map(|k| Cow::Owned(Value::String(k.to_string()))),
            PathOrKey::Path(p) => p.first(ctx.record).map(Cow::Borrowed),
        };
        let text = value.as_deref().and_then(text_of);
        let present = value.as_deref().is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !ctx.nulls.contains(s),
            _ => true,
        });
        if let Some(exists) = self.exists
            && exists != present
        {
            return false;
        }
        if let Some(expected) = &self.equals
            && text.as_deref() != Some(expected.as_str())
        {
            return false;
        }
        if let Some(options) = &self.one_of
            && !text.as_ref().is_some_and(|t| options.contains(t))
        {
            return false;
        }
        if let Some(options) = &self.not_in
            && text.as_ref().is_some_and(|t| options.contains(t))
        {
            return false;
        }
        true
    }
}

/// What a rule runs against.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub record: &'a Value,
    /// The record's key in the object that holds it, when it is in one.
    pub key: Option<&'a str>,
    pub nulls: &'a NullSet,
    /// Inside `each`: the record, then the entries of the levels that
    /// enclose `record` (empty outside `each`).
    pub scopes: &'a [&'a Value],
    /// The Integration's params field templates may read.
    pub params: &'a BTreeMap<String, String>,
}

/// No params (a saved response mapped without an Integration).
pub static NO_PARAMS: BTreeMap<String, String> = BTreeMap::new();

impl<'a> Ctx<'a> {
    /// A record at the top level.
    pub fn new(record: &'a Value, key: Option<&'a str>, nulls: &'a NullSet) -> Self {
        Self {
            record,
            key,
            nulls,
            scopes: &[],
            params: &NO_PARAMS,
        }
    }
}

/// The regex crate's multi-line report ends in "error: <what>"; that line says it all.
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| s.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(yaml: &str) -> Program {
        let spec: FieldSpec = serde_saphyr::from_str(yaml).unwrap();
        Program::compile(&spec).unwrap()
    }

    fn run(p: &Program, record: &Value) -> Result<Vec<Value>, String> {
        let nulls = NullSet::new(&["Need to apply".to_string()]);
        let ctx = Ctx::new(record, Some("1042"), &nulls);
        p.eval(&ctx)
            .map(|vs| vs.into_iter().map(Cow::into_owned).collect())
    }

    #[test]
    fn first_of_skips_placeholders_and_honours_when() {
        let p = rule(
            "first_of:\n  - {when: {path: $.expired, in: ['1', true]}, value: expired}\n  - $.status\n  - {value: pending}",
        );
        assert_eq!(
            run(&p, &json!({"expired": "1", "status": "active"})).unwrap(),
            [json!("expired")]
        );
        assert_eq!(
            run(&p, &json!({"expired": "0", "status": "active"})).unwrap(),
            [json!("active")]
        );
        assert_eq!(
            run(&p, &json!({"status": "Need to apply"})).unwrap(),
            [json!("pending")]
        );
    }

    #[test]
    fn keys_split_map_and_match() {
        assert_eq!(
            run(
                &rule("{path: $.Country, keys: true}"),
                &json!({"Country": {"US": {}, "UK": {}}})
            )
            .unwrap(),
            [json!("UK"), json!("US")]
        );
        assert_eq!(
            run(
                &rule("{path: $.r, split: ','}"),
                &json!({"r": "No Incent,No Email,"})
            )
            .unwrap(),
            [json!("No Incent"), json!("No Email")]
        );
        assert_eq!(
            run(
                &rule("{path: $.s, map: {live: active, '*': paused}}"),
                &json!({"s": "LIVE"})
            )
            .unwrap(),
            [json!("active")]
        );
        let os = rule(
            "{path: $.name, match: [{pattern: '(?i)android', value: android}, {pattern: '(?i)\\bios\\b|iphone', value: ios}]}",
        );
        assert_eq!(
            run(&os, &json!({"name": "Eternal Quest ( android) "})).unwrap(),
            [json!("android")]
        );
        assert_eq!(
            run(&os, &json!({"name": "Desktop only"})).unwrap(),
            Vec::<Value>::new()
        );
        assert_eq!(run(&rule("\"@key\""), &json!({})).unwrap(), [json!("1042")]);
    }

    #[test]
    fn each_builds_entries_and_types_convert() {
        let p = rule(
            "{each: '$.payments[*]', fields: {payout: {path: $.revenue, type: decimal}, countries: '$.countries[*]'}}",
        );
        let out = run(&p, &json!({"payments": [{"revenue": "2.10", "countries": ["DE"]}, {"revenue": 1, "countries": []}]})).unwrap();
        assert_eq!(
            out,
            [
                json!({"payout": "2.10", "countries": "DE"}),
                json!({"payout": "1"})
            ]
        );
        let bad = rule("{path: $.p, type: decimal}");
        assert_eq!(
            run(&bad, &json!({"p": "abc"})).unwrap_err(),
            "\"abc\" is not a decimal"
        );
    }

    #[test]
    fn templates_fill_paths_and_params() {
        let t = Template::compile("{{ $.a }}-{{$.b}}", TemplateScope::Record).unwrap();
        assert_eq!(t.render(Some(&json!({"a": 1, "b": "x"})), &|_| None), "1-x");
        let names = ["api_key"];
        let t = Template::compile(
            "k={{ params.api_key }}&id={{ record.$.id }}",
            TemplateScope::ParamsAndRecord(&names),
        )
        .unwrap();
        assert_eq!(
            t.render(Some(&json!({"id": 7})), &|n| Some(format!("<{n}>"))),
            "k=<api_key>&id=7"
        );
        let err =
            Template::compile("{{ params.api_kye }}", TemplateScope::Params(&names)).unwrap_err();
        assert!(
            err.message.contains("did you mean `params.api_key`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn compile_errors_say_where() {
        let spec: FieldSpec = serde_saphyr::from_str("{first_of: [$.a, '$.b[?(@.x']}").unwrap();
        let err = Program::compile(&spec).unwrap_err();
        assert_eq!(err.at, "first_of[1]");
        let spec: FieldSpec = serde_saphyr::from_str("{path: $.a, value: 1}").unwrap();
        assert!(
            Program::compile(&spec)
                .unwrap_err()
                .message
                .contains("exactly one source")
        );
    }
}
