//! The located tree of a document, and the raw types read from it.
//!
//! A document is parsed once into a tree that remembers where each value was
//! written ([`Node`]). [`super::check`] walks that tree against the schema;
//! then [`read`] lets serde read the raw types from the same tree with every
//! node the schema faulted left out, so that everything well typed around a
//! mistake is still compiled and checked in the same pass. No text is
//! repaired or parsed again: serde sees exactly the values the schema saw.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer,
    MapAccess, SeqAccess, Unexpected, Visitor,
};
use serde_saphyr::Spanned;

/// A YAML value and where it was written (1-based line and column within
/// its document).
#[derive(Debug, Clone)]
pub struct Node {
    pub tree: Tree,
    pub line: u64,
    pub column: u64,
    /// Unique within its document (numbered by [`parse`]).
    pub id: usize,
    /// Where a scalar is written (byte offset and length within its
    /// document; for an alias, where its anchor's value is), so that it is
    /// read as text exactly as written (`12.50` stays `12.50`).
    text: Option<(usize, usize)>,
}

#[derive(Debug, Clone)]
pub enum Tree {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Parses one document into its located tree.
pub fn parse(chunk: &str, options: serde_saphyr::Options) -> Result<Node, serde_saphyr::Error> {
    let mut root: Node = serde_saphyr::from_str_with_options(chunk, options)?;
    root.number(&mut 0);
    Ok(root)
}

impl Node {
    fn number(&mut self, next: &mut usize) {
        self.id = *next;
        *next += 1;
        match &mut self.tree {
            Tree::Seq(items) => items.iter_mut().for_each(|item| item.number(next)),
            Tree::Map(entries) => {
                for (key, value) in entries {
                    key.number(next);
                    value.number(next);
                }
            }
            _ => {}
        }
    }

    fn count(&self) -> usize {
        1 + match &self.tree {
            Tree::Seq(items) => items.iter().map(Node::count).sum(),
            Tree::Map(entries) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
            _ => 0,
        }
    }

    /// A scalar as written in `chunk`; `None` for collections.
    fn written<'c>(&self, chunk: &'c str) -> Option<&'c str> {
        if matches!(self.tree, Tree::Seq(_) | Tree::Map(_)) {
            return None;
        }
        let (offset, len) = self.text?;
        chunk.get(offset..offset + len)
    }

    /// A map key as it appears in a field path.
    fn key_name(&self, chunk: &str) -> String {
        match &self.tree {
            Tree::Str(s) => s.clone(),
            _ => self.written(chunk).unwrap_or_default().to_string(),
        }
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match &self.tree {
            Tree::Null => Unexpected::Unit,
            Tree::Bool(b) => Unexpected::Bool(*b),
            Tree::Int(i) => match i64::try_from(*i) {
                Ok(i) => Unexpected::Signed(i),
                Err(_) => Unexpected::Other("a large integer"),
            },
            Tree::Float(f) => Unexpected::Float(*f),
            Tree::Str(s) => Unexpected::Str(s),
            Tree::Seq(_) => Unexpected::Seq,
            Tree::Map(_) => Unexpected::Map,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Tree>::deserialize(deserializer)?;
        let span = spanned.defined.span();
        Ok(Node {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            id: 0,
            text: span
                .byte_offset()
                .zip(span.byte_len())
                .map(|(offset, len)| (offset as usize, len as usize)),
            tree: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TreeVisitor;
        impl<'de> Visitor<'de> for TreeVisitor {
            type Value = Tree;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
                Ok(Tree::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
                Ok(Tree::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
                Ok(Tree::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Tree, E> {
                Ok(Tree::Int(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
                Ok(Tree::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
                Ok(Tree::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
                Ok(Tree::Str(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
                Tree::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Tree::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Node, Node>()? {
                    entries.push(entry);
                }
                Ok(Tree::Map(entries))
            }
        }
        deserializer.deserialize_any(TreeVisitor)
    }
}

// ---------------------------------------------------------------------------
// Reading the raw types, leaving out what the schema faulted
// ---------------------------------------------------------------------------

/// What reading left out of a document. A document with anything left out
/// is compiled, to report its other problems, but never used.
#[derive(Debug, Clone, Default)]
pub struct Omitted {
    any: bool,
    /// The lists that lost entries (by field path as written) and the
    /// indices, as written, of the entries they lost.
    lists: BTreeMap<String, Vec<usize>>,
}

impl Omitted {
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// A field path of the document as read (`allow[0]` after `allow[0]`
    /// was left out) as it is written in the file (`allow[1]`).
    pub fn written_path(&self, path: &str) -> String {
        if self.lists.is_empty() {
            return path.to_string();
        }
        let mut out = String::with_capacity(path.len());
        let mut rest = path;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else {
                break;
            };
            match (after[..close].parse::<usize>(), self.lists.get(&out)) {
                (Ok(read), Some(removed)) => {
                    let mut index = read;
                    for r in removed {
                        if *r <= index {
                            index += 1;
                        }
                    }
                    out.push_str(&format!("[{index}]"));
                }
                _ => out.push_str(&rest[open..open + close + 2]),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A problem serde found that the schema did not (a check the schema
/// cannot state), located like the schema's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadProblem {
    pub line: u64,
    pub column: u64,
    pub field: String,
    /// serde's own words.
    pub message: String,
}

/// Reads `T` from the tree of `chunk`, leaving out the nodes in `faulted`
/// (reported already) and whatever cannot be read without them: an entry
/// whose required key was left out goes too, up to the nearest value that
/// has a default. Problems serde finds elsewhere are returned, and the node
/// each is about is left out in turn. `None` when nothing can be read.
pub fn read<T: DeserializeOwned>(
    root: &Node,
    chunk: &str,
    faulted: &BTreeSet<usize>,
) -> (Option<(T, Omitted)>, Vec<ReadProblem>) {
    let mut left_out = faulted.clone();
    let mut problems = Vec::new();
    // Each failed attempt leaves out one more node.
    for _ in 0..=root.count() {
        if left_out.contains(&root.id) {
            break;
        }
        let mut tree = root.clone();
        let mut omitted = Omitted {
            any: !left_out.is_empty(),
            lists: BTreeMap::new(),
        };
        let mut touched = BTreeSet::new();
        prune(&mut tree, "", chunk, &left_out, &mut omitted, &mut touched);
        let result = serde_path_to_error::deserialize(NodeDe { node: &tree, chunk });
        let error = match result {
            Ok(value) => return (Some((value, omitted)), problems),
            Err(e) => e,
        };
        let path = clean_path(&error.path().to_string());
        let error = error.into_inner();
        let Some(at) = error.at else {
            problems.push(ReadProblem {
                line: 0,
                column: 0,
                field: omitted.written_path(&path),
                message: error.message,
            });
            break;
        };
        // An error about a value that lost a part is the loss, not a mistake.
        if !touched.contains(&at.id) {
            problems.push(ReadProblem {
                line: at.line,
                column: at.column,
                field: omitted.written_path(&path),
                message: error.message,
            });
        }
        left_out.insert(at.id);
    }
    (None, problems)
}

/// Removes the nodes in `left_out` (a key takes its entry with it); records
/// the nodes that lost a descendant in `touched`. Returns whether `node` did.
fn prune(
    node: &mut Node,
    path: &str,
    chunk: &str,
    left_out: &BTreeSet<usize>,
    omitted: &mut Omitted,
    touched: &mut BTreeSet<usize>,
) -> bool {
    let mut lost = false;
    match &mut node.tree {
        Tree::Map(entries) => {
            let before = entries.len();
            entries.retain(|(k, v)| !left_out.contains(&k.id) && !left_out.contains(&v.id));
            lost = entries.len() != before;
            for (key, value) in entries.iter_mut() {
                let field = child_path(path, &key.key_name(chunk));
                lost |= prune(value, &field, chunk, left_out, omitted, touched);
            }
        }
        Tree::Seq(items) => {
            let mut removed = Vec::new();
            let mut kept = Vec::new();
            for (i, mut item) in std::mem::take(items).into_iter().enumerate() {
                if left_out.contains(&item.id) {
                    removed.push(i);
                } else {
                    lost |= prune(
                        &mut item,
                        &format!("{path}[{i}]"),
                        chunk,
                        left_out,
                        omitted,
                        touched,
                    );
                    kept.push(item);
                }
            }
            *items = kept;
            if !removed.is_empty() {
                omitted.lists.insert(path.to_string(), removed);
                lost = true;
            }
        }
        _ => {}
    }
    if lost {
        touched.insert(node.id);
    }
    lost
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Paths through `Located` values carry an internal `value` step; users never wrote it.
pub fn clean_path(path: &str) -> String {
    let cleaned: Vec<&str> = path
        .split('.')
        .filter(|seg| *seg != "value" && *seg != "?")
        .collect();
    let joined = cleaned.join(".");
    if joined == "." { String::new() } else { joined }
}

/// A serde error, and the node it is about.
#[derive(Debug)]
struct Error {
    message: String,
    at: Option<At>,
}

#[derive(Debug, Clone, Copy)]
struct At {
    id: usize,
    line: u64,
    column: u64,
}

impl Error {
    /// The innermost node an error passes through is the one it is about.
    fn at(mut self, node: &Node) -> Self {
        self.at.get_or_insert(At {
            id: node.id,
            line: node.line,
            column: node.column,
        });
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error {
            message: message.to_string(),
            at: None,
        }
    }
}

/// serde-saphyr's protocol for `Spanned` (and so `Located`) values: the
/// newtype name it asks for, and the first key of the map it then reads
/// (`{marker: true, value, referenced, defined}`). Tested below.
const SPANNED_NEWTYPE: &str = "__yaml_spanned";
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

/// A node as serde reads it, as serde-saphyr would have read its text.
#[derive(Clone, Copy)]
struct NodeDe<'de> {
    node: &'de Node,
    chunk: &'de str,
}

impl<'de> NodeDe<'de> {
    fn of(&self, node: &'de Node) -> Self {
        NodeDe {
            node,
            chunk: self.chunk,
        }
    }

    /// A scalar read as text: as written when it is not text already.
    fn text(&self) -> Option<&'de str> {
        match &self.node.tree {
            Tree::Str(s) => Some(s),
            _ => self.node.written(self.chunk),
        }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let result = match &node.tree {
            Tree::Null => visitor.visit_unit(),
            Tree::Bool(b) => visitor.visit_bool(*b),
            Tree::Int(i) => match (u64::try_from(*i), i64::try_from(*i)) {
                (Ok(u), _) => visitor.visit_u64(u),
                (_, Ok(i)) => visitor.visit_i64(i),
                _ => visitor.visit_i128(*i),
            },
            Tree::Float(f) => visitor.visit_f64(*f),
            Tree::Str(s) => visitor.visit_borrowed_str(s),
            Tree::Seq(items) => visitor.visit_seq(Items {
                de: self,
                items: items.iter(),
            }),
            Tree::Map(entries) => visitor.visit_map(Entries {
                de: self,
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(node))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.tree {
            Tree::Null => visitor.visit_none().map_err(|e: Error| e.at(self.node)),
            _ => visitor.visit_some(self).map_err(|e| e.at(self.node)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.text() {
            Some(text) => visitor
                .visit_borrowed_str(text)
                .map_err(|e: Error| e.at(self.node)),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = if name == SPANNED_NEWTYPE {
            visitor.visit_newtype_struct(SpannedDe(self))
        } else {
            visitor.visit_newtype_struct(self)
        };
        result.map_err(|e| e.at(self.node))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match &self.node.tree {
            Tree::Map(entries) if entries.len() == 1 => visitor.visit_enum(Variant {
                key: self.of(&entries[0].0),
                value: Some(self.of(&entries[0].1)),
            }),
            Tree::Seq(_) | Tree::Map(_) => Err(de::Error::invalid_type(
                self.node.unexpected(),
                &"a name, or one `name: value` line",
            )),
            _ => visitor.visit_enum(Variant {
                key: self,
                value: None,
            }),
        };
        result.map_err(|e| e.at(self.node))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct
    }
}

struct Items<'de> {
    de: NodeDe<'de>,
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(item) => seed.deserialize(self.de.of(item)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Entries<'de> {
    de: NodeDe<'de>,
    entries: std::slice::Iter<'de, (Node, Node)>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(self.de.of(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a value was read before its key"))?;
        seed.deserialize(self.de.of(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as a name (`android`) or as `name: value`.
struct Variant<'de> {
    key: NodeDe<'de>,
    value: Option<NodeDe<'de>>,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = seed.deserialize(self.key)?;
        Ok((name, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(value) if matches!(value.node.tree, Tree::Null) => Ok(()),
            Some(value) => Err(de::Error::invalid_type(
                value.node.unexpected(),
                &"nothing after the name",
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(
                self.key.node.unexpected(),
                &"`name: value`",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(value) => value.deserialize_seq(visitor),
            None => Err(de::Error::invalid_type(
                self.key.node.unexpected(),
                &"`name: [values]`",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(value) => value.deserialize_map(visitor),
            None => Err(de::Error::invalid_type(
                self.key.node.unexpected(),
                &"`name: {key: value}`",
            )),
        }
    }
}

/// A `Located` value: `{marker: true, value, referenced, defined}`.
struct SpannedDe<'de>(NodeDe<'de>);

impl<'de> Deserializer<'de> for SpannedDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(SpannedFields {
            de: self.0,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SpannedFields<'de> {
    de: NodeDe<'de>,
    next: u8,
}

impl<'de> MapAccess<'de> for SpannedFields<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.next {
            0 => SPANNED_MARKER,
            1 => "value",
            2 => "referenced",
            3 => "defined",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self.next;
        self.next += 1;
        let node = self.de.node;
        match field {
            0 => seed.deserialize(true.into_deserializer()),
            1 => seed.deserialize(self.de),
            _ => seed.deserialize(de::value::MapDeserializer::new(
                [("line", node.line), ("column", node.column)].into_iter(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::located::Located;
    use rust_decimal::Decimal;

    fn tree(yaml: &str) -> Node {
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        parse(yaml, options).unwrap()
    }

    fn find(node: &Node, line: u64, column: u64) -> Option<usize> {
        if (node.line, node.column) == (line, column) && !matches!(node.tree, Tree::Map(_)) {
            return Some(node.id);
        }
        match &node.tree {
            Tree::Seq(items) => items.iter().find_map(|i| find(i, line, column)),
            Tree::Map(entries) => entries.iter().find_map(|(_, v)| find(v, line, column)),
            _ => None,
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        name: Located<String>,
        #[serde(default)]
        ratio: Option<Located<Decimal>>,
        #[serde(default)]
        codes: Vec<Located<String>>,
        #[serde(default)]
        os: Os,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        required: u16,
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Os {
        #[default]
        All,
        Android,
    }

    #[test]
    fn serde_reads_the_tree_as_it_reads_the_text() {
        let text = "name: acme\nratio: 12.50\ncodes: [US, \"CA\"]\nos: android\nlabels: {123: x, 1.50: y}\ninner: {required: 302}\n";
        let root = tree(text);
        let (read, problems) = read::<Doc>(&root, text, &BTreeSet::new());
        let (doc, omitted) = read.unwrap();
        assert!(problems.is_empty() && omitted.is_empty(), "{problems:?}");
        let from_text: Doc = serde_saphyr::from_str(text).unwrap();
        assert_eq!(doc.name.value(), from_text.name.value());
        assert_eq!(doc.labels, from_text.labels);
        assert_eq!(doc.labels["1.50"], "y", "a key is read as written");
        assert_eq!(doc.os, Os::Android);
        assert_eq!(doc.inner.unwrap().required, 302);
        assert_eq!((doc.name.line(), doc.name.column()), (1, 7));
        assert_eq!(doc.ratio.as_ref().unwrap().to_string(), "12.50");
        let at = |l: &Located<String>| (l.line(), l.column());
        assert_eq!(at(&doc.codes[1]), (3, 13));
        assert_eq!(at(&doc.codes[1]), at(&from_text.codes[1]));
    }

    #[test]
    fn what_the_schema_faulted_is_left_out_and_the_rest_is_read() {
        let text = "name: acme\ncodes: [12, XX, [y]]\nos: [symbian]\ninner: {required: x}\n";
        let root = tree(text);
        let faulted: BTreeSet<usize> = [(2, 9), (2, 17), (3, 5), (4, 19)]
            .iter()
            .map(|(l, c)| find(&root, *l, *c).unwrap())
            .collect();
        let (read, problems) = read::<Doc>(&root, text, &faulted);
        let (doc, omitted) = read.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!omitted.is_empty());
        assert_eq!(doc.codes.len(), 1);
        assert_eq!(
            (doc.codes[0].value().as_str(), doc.codes[0].column()),
            ("XX", 13)
        );
        assert_eq!(doc.os, Os::All, "left out: the default");
        assert!(doc.inner.is_none(), "it cannot be read without `required`");
        // Paths of the document as read are named as written.
        assert_eq!(omitted.written_path("codes[0]"), "codes[1]");
        assert_eq!(omitted.written_path("name"), "name");
    }

    #[test]
    fn serde_problems_are_located_at_their_node() {
        let text = "name: acme\ninner: {required: 70000}\n";
        let root = tree(text);
        let (read, problems) = read::<Doc>(&root, text, &BTreeSet::new());
        assert!(!read.unwrap().1.is_empty(), "read without it");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert_eq!(
            (p.line, p.column, p.field.as_str()),
            (2, 19, "inner.required")
        );
        assert!(p.message.contains("70000"), "{}", p.message);
    }
}
