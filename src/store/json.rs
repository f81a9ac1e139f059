//! JSON text bound to a JSONB column without building a `serde_json::Value`:
//! offers arrive as text and the raw record is stored as it came.

use std::borrow::Cow;
use std::io::Write;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Jsonb;

/// Valid JSON text for a JSONB column.
#[derive(Debug, Clone, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
#[diesel(sql_type = Jsonb)]
pub struct JsonText<'a>(pub Cow<'a, str>);

impl JsonText<'_> {
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        Self(Cow::Owned(
            serde_json::to_string(value).expect("store values always serialize"),
        ))
    }
}

/// JSONB's binary form is a version byte (1) then the text.
const JSONB_VERSION: u8 = 1;

impl ToSql<Jsonb, Pg> for JsonText<'_> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(&[JSONB_VERSION])?;
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<Jsonb, Pg> for JsonText<'static> {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        match value.as_bytes().split_first() {
            Some((&JSONB_VERSION, text)) => {
                Ok(Self(Cow::Owned(std::str::from_utf8(text)?.to_string())))
            }
            _ => Err("unsupported JSONB version".into()),
        }
    }
}
