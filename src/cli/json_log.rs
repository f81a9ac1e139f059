//! The daemon's JSON log lines (`--log-format json`): one flat object per
//! line, as log shippers expect (Vector, Loki, Elasticsearch read
//! `message`, `level` and `timestamp` at the top level): `timestamp`,
//! `level`, `target`, `message` and every field of the event and of the
//! spans around it (the run's `integration`, `run_id`), where a field
//! written as JSON text (`counts`) is an object, not a string. A field that
//! shares a name with one of the first three is kept as `field.NAME`.

use std::fmt;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose text is JSON, written into the line as JSON.
const JSON_FIELDS: [&str; 1] = ["counts"];

pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        // Outer spans first, so the event's own fields win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<JsonFields>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(formatted)
                {
                    fields.extend(map);
                }
            }
        }
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        let fixed = [
            (
                "timestamp",
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            ),
            ("level", json!(meta.level().as_str())),
            ("target", json!(meta.target())),
        ];
        for (name, value) in fixed {
            if let Some(clash) = fields.insert(name.to_string(), value) {
                fields.insert(format!("field.{name}"), clash);
            }
        }
        writeln!(writer, "{}", Value::Object(fields))
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), json!(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), json!(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), json!(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
}

impl Fields<'_> {
    fn insert(&mut self, field: &Field, text: String) {
        let value = if JSON_FIELDS.contains(&field.name()) {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        self.0.insert(field.name().to_string(), value);
    }
}
