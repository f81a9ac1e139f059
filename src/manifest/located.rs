//! `Located<T>`: a value read from YAML together with where it was written.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value from a manifest and its line and column, so that checks made after
/// parsing (a JSONPath, a cron expression, a secret) can point at the source.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Located<T>(Spanned<T>);

impl<T> Located<T> {
    pub fn value(&self) -> &T {
        &self.0.value
    }

    pub fn into_value(self) -> T {
        self.0.value
    }

    /// 1-based line within the document it was parsed from (0 when unknown).
    pub fn line(&self) -> u64 {
        self.0.referenced.line()
    }

    /// 1-based column (0 when unknown).
    pub fn column(&self) -> u64 {
        self.0.referenced.column()
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A default: not written in a file.
impl<T: Default> Default for Located<T> {
    fn default() -> Self {
        Self::unlocated(T::default())
    }
}

impl<T> Located<T> {
    /// A value that was not written in a file (a default); its location reads 0:0.
    pub fn unlocated(value: T) -> Self {
        Self(Spanned::new(
            value,
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        ))
    }
}
