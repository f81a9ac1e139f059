//! JSON Schemas of the two kinds, generated from the raw types.
//!
//! `offersync schema --out schemas/` writes them; a test fails when the
//! committed files differ, so editors always complete the real format.

use schemars::generate::SchemaSettings;

use super::raw::{Document, IntegrationSpec, NetworkSpec};

/// `(file name, schema text)` for every kind.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        (
            "network.schema.json",
            render::<Document<NetworkSpec>>("offersync Network (mapping file)"),
        ),
        (
            "integration.schema.json",
            render::<Document<IntegrationSpec>>("offersync Integration"),
        ),
    ]
}

fn render<T: schemars::JsonSchema>(title: &str) -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
