//! JSON Schemas of the two kinds, generated from the raw types.
//!
//! One schema serves editors and `validate` alike: [`super::check`] walks
//! every document against it before serde reads it, so an editor and
//! `validate` give the same answers. `offersync schema --out DIR` writes the
//! files; a test fails when the committed ones (`schemas/`) are stale. The
//! schemas use only standard JSON Schema keywords and formats, so strict
//! validators (ajv) accept them.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::Value as Json;

use super::raw::{Document, IntegrationSpec, Kind, NetworkSpec};

/// The stable identifiers of the schemas: names, not addresses to fetch.
pub const INTEGRATION_ID: &str = "urn:offersync:schema:v1:integration";
pub const NETWORK_ID: &str = "urn:offersync:schema:v1:network";

/// Where `offersync schema --out` is pointed in a manifest directory, and so
/// where the `yaml-language-server` line of every shipped manifest looks.
pub const DIR_IN_MANIFESTS: &str = ".schemas";

/// `(file name, schema text)` for every kind.
pub fn all() -> Vec<(&'static str, String)> {
    [Kind::Network, Kind::Integration]
        .into_iter()
        .map(|kind| {
            let mut text = serde_json::to_string_pretty(json(kind)).expect("a schema serializes");
            text.push('\n');
            (file_name(kind), text)
        })
        .collect()
}

pub fn file_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Network => "network.schema.json",
        Kind::Integration => "integration.schema.json",
    }
}

/// The schema of a kind, generated once per process.
pub fn json(kind: Kind) -> &'static Json {
    static NETWORK: OnceLock<Json> = OnceLock::new();
    static INTEGRATION: OnceLock<Json> = OnceLock::new();
    match kind {
        Kind::Network => NETWORK.get_or_init(|| {
            render::<Document<NetworkSpec>>(NETWORK_ID, "offersync Network (mapping file)")
        }),
        Kind::Integration => INTEGRATION.get_or_init(|| {
            render::<Document<IntegrationSpec>>(INTEGRATION_ID, "offersync Integration")
        }),
    }
}

fn render<T: schemars::JsonSchema>(id: &str, title: &str) -> Json {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value = serde_json::to_value(&schema).expect("a schema serializes");
    standard_formats_only(&mut value);
    describe_tags(&mut value, None);
    let definitions = value.get("definitions").cloned().unwrap_or_default();
    describe_references(&mut value, &definitions);
    if let Json::Object(map) = &mut value {
        // `$schema` first, then `$id`: the order people expect to read.
        let mut ordered = serde_json::Map::new();
        if let Some(draft) = map.remove("$schema") {
            ordered.insert("$schema".into(), draft);
        }
        ordered.insert("$id".into(), id.into());
        ordered.insert("title".into(), title.into());
        map.remove("title");
        ordered.extend(std::mem::take(map));
        *map = ordered;
    }
    value
}

/// A tagged variant's tag (`kind: query`) is described by its variant.
fn describe_tags(value: &mut Json, variant: Option<&str>) {
    match value {
        Json::Object(map) => {
            let own = map
                .get("description")
                .and_then(Json::as_str)
                .map(first_line);
            if let Some(Json::Object(properties)) = map.get_mut("properties") {
                for property in properties.values_mut() {
                    let Json::Object(p) = property else { continue };
                    if let (Some(Json::String(tag)), false) =
                        (p.get("const").cloned(), p.contains_key("description"))
                    {
                        let text = match own.as_deref().or(variant) {
                            Some(what) => format!("`{tag}`: {what}"),
                            None => format!("Always `{tag}` here."),
                        };
                        p.insert("description".into(), text.into());
                    }
                }
            }
            for child in map.values_mut() {
                describe_tags(child, own.as_deref());
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|i| describe_tags(i, variant)),
        _ => {}
    }
}

/// A property that is only a reference (`columns.status` is a
/// `ColumnPolicy`) is described by what it refers to, named by its key.
fn describe_references(value: &mut Json, definitions: &Json) {
    match value {
        Json::Object(map) => {
            if let Some(Json::Object(properties)) = map.get_mut("properties") {
                for (key, property) in properties.iter_mut() {
                    let Json::Object(p) = property else { continue };
                    if p.contains_key("description") {
                        continue;
                    }
                    let target = p
                        .get("$ref")
                        .and_then(Json::as_str)
                        .and_then(|r| r.strip_prefix("#/definitions/"))
                        .and_then(|name| definitions.get(name))
                        .and_then(|d| d.get("description"))
                        .and_then(Json::as_str)
                        .map(first_line);
                    if let Some(what) = target {
                        p.insert("description".into(), format!("`{key}`: {what}").into());
                    }
                }
            }
            map.values_mut()
                .for_each(|child| describe_references(child, definitions));
        }
        Json::Array(items) => items
            .iter_mut()
            .for_each(|i| describe_references(i, definitions)),
        _ => {}
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// schemars writes Rust's number types as formats (`uint16`, `double`) that
/// JSON Schema does not define and strict validators reject. The range they
/// stand for is kept as `minimum`/`maximum`.
fn standard_formats_only(value: &mut Json) {
    match value {
        Json::Object(map) => {
            if let Some(Json::String(format)) = map.get("format").cloned() {
                let range: Option<(i64, i64)> = match format.as_str() {
                    "uint8" => Some((0, u8::MAX.into())),
                    "uint16" => Some((0, u16::MAX.into())),
                    "uint32" => Some((0, u32::MAX.into())),
                    "int32" => Some((i32::MIN.into(), i32::MAX.into())),
                    _ => None,
                };
                let standard = [
                    "date-time",
                    "date",
                    "time",
                    "duration",
                    "email",
                    "hostname",
                    "ipv4",
                    "ipv6",
                    "uri",
                    "uri-reference",
                    "uri-template",
                    "regex",
                    "uuid",
                ];
                if !standard.contains(&format.as_str()) {
                    map.remove("format");
                }
                if let Some((min, max)) = range {
                    map.entry("minimum").or_insert(min.into());
                    map.entry("maximum").or_insert(max.into());
                }
            }
            map.values_mut().for_each(standard_formats_only);
        }
        Json::Array(items) => items.iter_mut().for_each(standard_formats_only),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk<'a>(value: &'a Json, path: String, out: &mut Vec<(String, &'a Json)>) {
        if let Json::Object(map) = value {
            if let Some(Json::Object(props)) = map.get("properties") {
                for (name, prop) in props {
                    out.push((format!("{path}.{name}"), prop));
                }
            }
            for (key, child) in map {
                walk(child, format!("{path}/{key}"), out);
            }
        } else if let Json::Array(items) = value {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{path}[{i}]"), out);
            }
        }
    }

    #[test]
    fn every_property_has_a_description_and_formats_are_standard() {
        for kind in [Kind::Network, Kind::Integration] {
            let schema = json(kind);
            let mut properties = Vec::new();
            walk(schema, String::new(), &mut properties);
            let undocumented: Vec<&str> = properties
                .iter()
                .filter(|(_, p)| p.get("description").is_none())
                .map(|(path, _)| path.as_str())
                .collect();
            assert!(
                undocumented.is_empty(),
                "{} properties without a description: {undocumented:#?}",
                file_name(kind)
            );
            let text = schema.to_string();
            for bad in ["uint", "int32", "int64", "double", "float"] {
                assert!(
                    !text.contains(&format!("\"format\":\"{bad}")),
                    "{}: non-standard format {bad}",
                    file_name(kind)
                );
            }
            assert!(
                schema["$id"]
                    .as_str()
                    .unwrap()
                    .starts_with("urn:offersync:")
            );
        }
    }
}
