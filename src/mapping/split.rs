//! Splitting a JSON page into its records without building the whole tree.
//!
//! A page of a hundred thousand offers would otherwise become one tree of
//! hundreds of megabytes. When the records path is plain names followed by a
//! wildcard (`$.data.offers[*]`, `$.response.data.*`), the page is read once:
//! everything outside the records container becomes a small tree (the
//! "skeleton", where pagination paths are read), and each record is kept as
//! its JSON text, to be parsed, mapped and stored one at a time.
//!
//! A record is then parsed in the [`Shape`] of what its mapping reads: keys no
//! rule looks at are skipped at scanning speed instead of becoming a tree.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// A page read with its records left as text.
pub struct SplitPage<'a> {
    /// The page without the records container (which reads as null).
    pub skeleton: Value,
    /// The records with their keys when the container is an object; `None`
    /// when the container is not in the page.
    pub records: Option<Vec<(Option<String>, &'a RawValue)>>,
}

/// Which parts of a JSON object to build: the rest is skipped at scanning speed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The whole value.
    All,
    /// Not built at all (reads as absent).
    Skip,
    /// Kept as text (the records container of a page).
    Capture,
    /// An object's listed keys with their own shapes; other keys are `others`.
    Keys {
        keys: BTreeMap<String, Shape>,
        others: Box<Shape>,
    },
}

impl Shape {
    /// Nothing: a projection that key paths are added to.
    pub fn nothing() -> Self {
        Shape::Keys {
            keys: BTreeMap::new(),
            others: Box::new(Shape::Skip),
        }
    }

    /// Keeps everything under the object keys `prefix` (an empty prefix keeps all).
    pub fn keep(&mut self, prefix: &[String]) {
        let Some((first, rest)) = prefix.split_first() else {
            *self = Shape::All;
            return;
        };
        if let Shape::Keys { keys, .. } = self {
            let child = keys.entry(first.clone()).or_insert_with(Shape::nothing);
            child.keep(rest);
        }
    }
}

impl Shape {
    /// Adds `inner` under the object keys `prefix`.
    pub fn keep_shape(&mut self, prefix: &[String], inner: Shape) {
        match prefix.split_first() {
            None => self.merge(inner),
            Some((first, rest)) => {
                if let Shape::Keys { keys, .. } = self {
                    keys.entry(first.clone())
                        .or_insert_with(Shape::nothing)
                        .keep_shape(rest, inner);
                }
            }
        }
    }

    fn merge(&mut self, other: Shape) {
        match (&mut *self, other) {
            (Shape::All, _) => {}
            (_, Shape::All) => *self = Shape::All,
            (Shape::Keys { keys, .. }, Shape::Keys { keys: more, .. }) => {
                for (key, shape) in more {
                    keys.entry(key).or_insert_with(Shape::nothing).merge(shape);
                }
            }
            _ => {}
        }
    }
}

/// Reads `body`, keeping the value at `container` (a path of object keys) as text.
pub fn split<'a>(body: &'a str, container: &[String]) -> Result<SplitPage<'a>, serde_json::Error> {
    let mut shape = Shape::Capture;
    for key in container.iter().rev() {
        shape = Shape::Keys {
            keys: BTreeMap::from([(key.clone(), shape)]),
            others: Box::new(Shape::All),
        };
    }
    let mut records = None;
    let skeleton = read(body, &shape, &mut records)?;
    Ok(SplitPage { skeleton, records })
}

/// Parses a JSON text, building only what `shape` keeps.
pub fn parse_shaped(text: &str, shape: &Shape) -> Result<Value, serde_json::Error> {
    read(text, shape, &mut None)
}

/// Records as the page read them: each with its key when the container is an
/// object.
type Records<'a> = Vec<(Option<String>, &'a RawValue)>;

fn read<'a>(
    text: &'a str,
    shape: &Shape,
    captured: &mut Option<Records<'a>>,
) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Reader { shape, captured }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The records container read in the same pass as the rest of the page: the
/// elements of an array, or the members of an object with their keys; any
/// other value holds no records.
struct RecordsOf;

impl<'de> Visitor<'de> for RecordsOf {
    type Value = Records<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list or an object of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(record) = seq.next_element::<&RawValue>()? {
            out.push((None, record));
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_KEY {
                map.next_value::<IgnoredAny>()?;
                return Ok(Vec::new());
            }
            out.push((Some(key), map.next_value::<&RawValue>()?));
        }
        Ok(out)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

/// An object key, borrowed from the text unless it has escapes: most keys of
/// a record are skipped, and need no allocation of their own.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyText;
        impl<'de> Visitor<'de> for KeyText {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyText)
    }
}

struct Reader<'p, 'a> {
    shape: &'p Shape,
    captured: &'p mut Option<Records<'a>>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Reader<'_, 'a> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.shape {
            Shape::All => Value::deserialize(deserializer),
            Shape::Skip => IgnoredAny::deserialize(deserializer).map(|_| Value::Null),
            Shape::Capture => {
                *self.captured = Some(deserializer.deserialize_any(RecordsOf)?);
                Ok(Value::Null)
            }
            Shape::Keys { .. } => deserializer.deserialize_any(self),
        }
    }
}

/// serde_json (with exact numbers) hands a number to `visit_map` under this key.
const NUMBER_KEY: &str = "$serde_json::private::Number";

impl<'de: 'a, 'a> Visitor<'de> for Reader<'_, 'a> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Shape::Keys { keys, others } = self.shape else {
            unreachable!("only Keys shapes visit");
        };
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if key == NUMBER_KEY {
                let text: String = map.next_value()?;
                let number: Number = text.parse().map_err(serde::de::Error::custom)?;
                return Ok(Value::Number(number));
            }
            let shape = keys.get(key.as_ref()).unwrap_or(others);
            if *shape == Shape::Skip {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(Reader {
                shape,
                captured: &mut *self.captured,
            })?;
            out.insert(key.into_owned(), value);
        }
        Ok(Value::Object(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// How deeply arrays and objects nest in valid JSON text (a byte scan that
/// skips strings: records are split off unparsed where unmapped).
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert_eq!(nesting_depth(r#"{"a": 1}"#), 1);
        assert_eq!(nesting_depth(r#"{"a": [{"b": "[[[{"}], "c": "\\"[["}"#), 3);
        assert_eq!(nesting_depth("7"), 0);
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(nesting_depth(&deep), 20_000);
    }

    #[test]
    fn records_are_split_and_the_rest_is_kept() {
        let body =
            r#"{"paging": {"total": 2.50}, "data": {"offers": [{"id": 1}, {"id": 2}], "n": 3}}"#;
        let page = split(body, &path(&["data", "offers"])).unwrap();
        let expected: Value = serde_json::from_str(
            r#"{"paging": {"total": 2.50}, "data": {"offers": null, "n": 3}}"#,
        )
        .unwrap();
        assert_eq!(page.skeleton, expected);
        let records: Vec<&str> = page.records.unwrap().iter().map(|(_, r)| r.get()).collect();
        assert_eq!(records, [r#"{"id": 1}"#, r#"{"id": 2}"#]);
    }

    #[test]
    fn object_containers_keep_their_keys() {
        let page = split(
            r#"{"data": {"17": {"a": 1}, "18": {"a": 2}}}"#,
            &path(&["data"]),
        )
        .unwrap();
        let keys: Vec<_> = page
            .records
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.unwrap())
            .collect();
        assert_eq!(keys, ["17", "18"]);
    }

    #[test]
    fn shaped_parsing_builds_only_the_kept_keys() {
        let mut shape = Shape::nothing();
        shape.keep(&path(&["a", "b"]));
        shape.keep(&path(&["c"]));
        shape.keep(&path(&["esc\"aped"]));
        let text = r#"{"a": {"b": [1, {"x": 2}], "z": 3}, "c": {"d": 1.50}, "e": "skipped",
            "n": 7, "esc\"aped": 1, "\u0065": 2}"#;
        let expected: Value = serde_json::from_str(
            r#"{"a": {"b": [1, {"x": 2}]}, "c": {"d": 1.50}, "esc\"aped": 1}"#,
        )
        .unwrap();
        assert_eq!(parse_shaped(text, &shape).unwrap(), expected);
        assert_eq!(parse_shaped("[1]", &shape).unwrap(), json!([1]));
        let mut all = Shape::nothing();
        all.keep(&[]);
        assert_eq!(
            parse_shaped(text, &all).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn a_missing_container_leaves_the_whole_page() {
        let page = split(
            r#"{"data": {"x": 1}, "n": 12345678901234567890123}"#,
            &path(&["data", "offers"]),
        )
        .unwrap();
        assert!(page.records.is_none());
        for no_records in [r#"{"data": null}"#, r#"{"data": 5}"#, r#"{"data": "x"}"#] {
            let page = split(no_records, &path(&["data"])).unwrap();
            assert_eq!(page.records.unwrap().len(), 0, "{no_records}");
        }
        assert_eq!(page.skeleton["n"].to_string(), "12345678901234567890123");
        assert!(split(r#"{"data": [1, 2"#, &path(&["data"])).is_err());
        assert!(split(r#"{"data": []} trailing"#, &path(&["data"])).is_err());
    }
}
