//! The mapping language: from a network's response to normalized offers.
//!
//! This module owns the declarative field rules of a Network (`spec`), their
//! compiled form (`program`, `path`), the XML-to-tree rule (`xml`) and the
//! typed reading of loose values (`convert`). It is pure: it does no I/O,
//! knows nothing of HTTP or the database, and never panics on input. A record
//! that cannot be mapped becomes a [`RecordProblem`], never a failed page.

pub mod convert;
pub mod path;
pub mod program;
pub mod spec;
pub mod split;
pub mod xml;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::offer::{
    Cap, CountryCode, Offer, OfferStatus, PayoutEntry, PayoutModel, RawRecord, normalize_country,
    normalize_currency, normalize_os,
};
use convert::{describe, text_of};
use path::JsonPath;
use program::{CompileError, Ctx, NullSet, Program};
use spec::{FieldSpec, RangeEnd};

/// The response format a mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Xml,
}

/// An offer field a rule can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    ExternalId,
    Name,
    Status,
    PreviewUrl,
    TrackingUrl,
    ImpressionUrl,
    Payout,
    Currency,
    Model,
    Countries,
    BlockedCountries,
    Os,
    Category,
    Description,
    Kpi,
    ThumbnailUrl,
    Caps,
    Payouts,
    StartsAt,
    ExpiresAt,
}

impl Target {
    pub const ALL: [(&'static str, Target); 20] = [
        ("external_id", Target::ExternalId),
        ("name", Target::Name),
        ("status", Target::Status),
        ("preview_url", Target::PreviewUrl),
        ("tracking_url", Target::TrackingUrl),
        ("impression_url", Target::ImpressionUrl),
        ("payout", Target::Payout),
        ("currency", Target::Currency),
        ("model", Target::Model),
        ("countries", Target::Countries),
        ("blocked_countries", Target::BlockedCountries),
        ("os", Target::Os),
        ("category", Target::Category),
        ("description", Target::Description),
        ("kpi", Target::Kpi),
        ("thumbnail_url", Target::ThumbnailUrl),
        ("caps", Target::Caps),
        ("payouts", Target::Payouts),
        ("starts_at", Target::StartsAt),
        ("expires_at", Target::ExpiresAt),
    ];

    pub fn from_name(name: &str) -> Option<Target> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .expect("every target is listed")
    }

    /// The sub-fields an `each` rule for this target may fill.
    pub fn entry_fields(self) -> Option<&'static [&'static str]> {
        match self {
            Target::Caps => Some(&["event", "period", "value"]),
            Target::Payouts => Some(&["payout", "currency", "model", "countries", "os", "goal"]),
            _ => None,
        }
    }
}

/// A field rule compiled for one target.
#[derive(Debug, Clone)]
pub struct FieldMapping {
    pub target: Target,
    program: Program,
}

impl FieldMapping {
    /// Compiles a rule for a target, checking `each` sub-fields against the target.
    pub fn compile(target: Target, spec: &FieldSpec) -> Result<Self, CompileError> {
        let program = Program::compile(spec)?;
        match target.entry_fields() {
            Some(allowed) => {
                for name in program.each_fields() {
                    if !allowed.contains(&name) {
                        let hint = program::did_you_mean(name, allowed.iter().copied())
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        return Err(CompileError {
                            at: format!("fields.{name}"),
                            message: format!(
                                "`{}` entries have no field `{name}`; expected one of {}{hint}",
                                target.name(),
                                allowed.join(", ")
                            ),
                        });
                    }
                }
            }
            None if program.is_each() => {
                return Err(CompileError {
                    at: "each".into(),
                    message: format!(
                        "`each` builds entries, but `{}` is a single value; `each` is for caps and payouts",
                        target.name()
                    ),
                });
            }
            None => {}
        }
        Ok(Self { target, program })
    }
}

/// A Network's compiled mapping: where records are and how each field is read.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub format: ResponseFormat,
    xml_lists: Vec<String>,
    records: Vec<JsonPath>,
    nulls: NullSet,
    fields: Vec<FieldMapping>,
    /// The parts of a record the fields read: records read as text are parsed in this shape.
    record_shape: split::Shape,
}

/// A page that could not be read at all (as opposed to one bad record).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the response is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the response is not UTF-8 text (byte {0})")]
    Utf8(usize),
    #[error("the response is not valid XML: {0}")]
    Xml(#[from] xml::XmlError),
}

/// One record that did not become an offer, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordProblem {
    /// Position of the record in its page (0-based).
    pub index: usize,
    /// The record's id, when it could be read.
    pub external_id: Option<String>,
    /// The offer field that failed.
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.external_id {
            Some(id) => write!(f, "record {} (id {id}): ", self.index)?,
            None => write!(f, "record {}: ", self.index)?,
        }
        write!(f, "field {}: {}", self.field, self.reason)
    }
}

/// The deepest nesting of a record's JSON that is stored: as deep as
/// serde_json parses, far below what Postgres's jsonb parser accepts.
pub const MAX_RECORD_DEPTH: usize = 128;

/// The offers of one page and the records that failed.
#[derive(Debug, Default)]
pub struct MappedPage {
    pub offers: Vec<Offer>,
    pub problems: Vec<RecordProblem>,
    /// The page itself, where pagination paths are read. When records were
    /// read one at a time, their container reads as null here.
    pub page: Value,
    /// Entries of the records container, selected by the records path's
    /// filter or not, when records were read one at a time.
    pub container_entries: Option<usize>,
}

impl MappedPage {
    /// Records seen on the page.
    pub fn record_count(&self) -> usize {
        self.offers.len() + self.problems.len()
    }

    /// What the page lists, as pagination counts it (stated totals, row
    /// offsets): every entry of the records container, also those a records
    /// filter leaves out.
    pub fn listed(&self) -> usize {
        self.container_entries
            .unwrap_or_else(|| self.record_count())
    }
}

impl Mapping {
    /// Builds a mapping from compiled parts; `fields` must include external_id and name.
    pub fn new(
        format: ResponseFormat,
        xml_lists: Vec<String>,
        records: Vec<JsonPath>,
        null_values: &[String],
        fields: Vec<FieldMapping>,
    ) -> Self {
        let mut record_shape = split::Shape::nothing();
        for field in &fields {
            field.program.record_needs(&mut record_shape);
        }
        // Records a filtered records path reads one at a time are tested
        // against its filter: what it reads is parsed too.
        if let Some((_, Some(filter))) = records.first().and_then(JsonPath::container_with_filter) {
            filter.needs(&mut record_shape);
        }
        Self {
            format,
            xml_lists,
            records,
            nulls: NullSet::new(null_values),
            fields,
            record_shape,
        }
    }

    /// Parses a record's JSON text in the shape of what this mapping reads.
    pub fn parse_record(&self, text: &str) -> Result<Value, serde_json::Error> {
        split::parse_shaped(text, &self.record_shape)
    }

    /// Parses a response body into a tree (XML by the documented rule).
    pub fn parse(&self, body: &[u8]) -> Result<Value, PageError> {
        match self.format {
            ResponseFormat::Json => Ok(serde_json::from_slice(body)?),
            ResponseFormat::Xml => Ok(xml::xml_to_value(body, &self.xml_lists)?),
        }
    }

    /// The records of a parsed page, with their keys when held in an object.
    pub fn records<'a>(&self, page: &'a Value) -> Vec<(Option<String>, &'a Value)> {
        for path in &self.records {
            let found = path.select_keyed(page);
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// Parses and maps a whole page on this thread.
    pub fn map_page(&self, body: &[u8]) -> Result<MappedPage, PageError> {
        self.map_page_with(body, 1)
    }

    /// Parses and maps a page, records spread over up to `threads` threads.
    /// JSON records under a plain container path are split off as text and
    /// each is parsed, mapped and moved into its offer, so the page never
    /// exists as one big tree.
    pub fn map_page_with(&self, body: &[u8], threads: usize) -> Result<MappedPage, PageError> {
        if self.format == ResponseFormat::Xml {
            return Ok(self.map_tree(xml::xml_to_value(body, &self.xml_lists)?));
        }
        let Some((container, filter)) = self
            .records
            .first()
            .and_then(JsonPath::container_with_filter)
        else {
            return Ok(self.map_tree(serde_json::from_slice(body)?));
        };
        let text: Arc<str> = std::str::from_utf8(body)
            .map_err(|e| PageError::Utf8(e.valid_up_to()))?
            .into();
        let page = split::split(&text, &container)?;
        match page.records {
            Some(records) if !records.is_empty() || self.records.len() == 1 => {
                Ok(self.map_raw(page.skeleton, &text, &records, filter, threads))
            }
            // Not there (or empty): the other `first_of` paths may find them.
            _ => Ok(self.map_tree(page.skeleton)),
        }
    }

    /// Maps an already parsed page (records are copied into their offers).
    pub fn map_value(&self, page: &Value) -> MappedPage {
        let mut out = MappedPage::default();
        for (index, (key, record)) in self.records(page).into_iter().enumerate() {
            match self.map_record(index, key.as_deref(), record) {
                Ok(mut offer) => {
                    offer.raw = raw_text(record);
                    out.offers.push(offer);
                }
                Err(problem) => out.problems.push(problem),
            }
        }
        out
    }

    fn map_tree(&self, page: Value) -> MappedPage {
        let mut out = self.map_value(&page);
        out.page = page;
        out
    }

    /// Records are stored whole (`Offer.raw`); one nested deeper than this is
    /// a problem of its own rather than a database error failing the run.
    fn map_raw(
        &self,
        skeleton: Value,
        text: &Arc<str>,
        records: &[(Option<String>, &serde_json::value::RawValue)],
        filter: Option<path::RecordFilter<'_>>,
        threads: usize,
    ) -> MappedPage {
        // `None`: the records path's filter does not select the record.
        let map_chunk = |first: usize, chunk: &[(Option<String>, &serde_json::value::RawValue)]| {
            chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (key, raw))| {
                    // The text was checked when the page was split; parsing it again cannot fail
                    // but a failure would still be a problem for this record, not a panic.
                    let record: Value = match self.parse_record(raw.get()) {
                        Ok(record) => record,
                        Err(e) => {
                            return Some(Err(RecordProblem {
                                index: first + i,
                                external_id: None,
                                field: "record",
                                reason: e.to_string(),
                            }));
                        }
                    };
                    if filter.is_some_and(|f| !f.selects(&record)) {
                        return None;
                    }
                    Some(self.map_selected(first + i, key.as_deref(), &record, raw, text))
                })
                .collect::<Vec<Result<Offer, RecordProblem>>>()
        };

        let threads = threads.clamp(1, 16).min(records.len().div_ceil(256).max(1));
        let results: Vec<Result<Offer, RecordProblem>> = if threads == 1 {
            map_chunk(0, records)
        } else {
            let size = records.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = records
                    .chunks(size)
                    .enumerate()
                    .map(|(n, chunk)| scope.spawn(move || map_chunk(n * size, chunk)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("mapping never panics"))
                    .collect()
            })
        };
        let mut out = MappedPage {
            page: skeleton,
            container_entries: Some(records.len()),
            ..MappedPage::default()
        };
        // Records are numbered among those the records path selects, as
        // when the page is read as one tree.
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(offer) => out.offers.push(offer),
                Err(problem) => out.problems.push(RecordProblem { index, ..problem }),
            }
        }
        out
    }

    /// Maps one record read as text; the offer keeps that text as its raw record.
    fn map_selected(
        &self,
        index: usize,
        key: Option<&str>,
        record: &Value,
        raw: &serde_json::value::RawValue,
        text: &Arc<str>,
    ) -> Result<Offer, RecordProblem> {
        let mut offer = self.map_record(index, key, record)?;
        let depth = split::nesting_depth(raw.get());
        if depth > MAX_RECORD_DEPTH {
            return Err(RecordProblem {
                index,
                external_id: Some(offer.external_id),
                field: "record",
                reason: format!(
                    "the record is nested {depth} levels deep, more than the {MAX_RECORD_DEPTH} a stored record may have (databases refuse such JSON); the offer is not imported"
                ),
            });
        }
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        offer.raw = RawRecord::new(text.clone(), start..start + raw.get().len());
        Ok(offer)
    }

    /// Maps one record. The offer's `raw` is left `null`: the caller has the
    /// record's text (or tree) and sets it.
    pub fn map_record(
        &self,
        index: usize,
        key: Option<&str>,
        record: &Value,
    ) -> Result<Offer, RecordProblem> {
        let ctx = Ctx {
            record,
            key,
            nulls: &self.nulls,
        };
        let mut offer = Offer::new(String::new(), String::new());
        let mut have_id = false;
        let mut have_name = false;
        for field in &self.fields {
            let problem = |reason: String, offer: &Offer, have_id: bool| RecordProblem {
                index,
                external_id: have_id.then(|| offer.external_id.clone()),
                field: field.target.name(),
                reason,
            };
            let values = field
                .program
                .eval(&ctx)
                .map_err(|reason| problem(reason, &offer, have_id))?;
            apply(&mut offer, field.target, values, field.program.range())
                .map_err(|reason| problem(reason, &offer, have_id))?;
            match field.target {
                Target::ExternalId => have_id = !offer.external_id.is_empty(),
                Target::Name => have_name = !offer.name.is_empty(),
                _ => {}
            }
        }
        for (present, target) in [(have_id, Target::ExternalId), (have_name, Target::Name)] {
            if !present {
                return Err(RecordProblem {
                    index,
                    external_id: have_id.then(|| offer.external_id.clone()),
                    field: target.name(),
                    reason: "no value (the field is required)".into(),
                });
            }
        }
        Ok(offer)
    }

    /// Applies fields read from an enrichment response to an offer.
    pub fn enrich(
        fields: &[FieldMapping],
        nulls: &[String],
        offer: &mut Offer,
        response: &Value,
    ) -> Result<(), String> {
        let nulls = NullSet::new(nulls);
        let ctx = Ctx {
            record: response,
            key: None,
            nulls: &nulls,
        };
        for field in fields {
            let values = field
                .program
                .eval(&ctx)
                .map_err(|e| format!("field {}: {e}", field.target.name()))?;
            if !values.is_empty() {
                apply(offer, field.target, values, field.program.range())
                    .map_err(|e| format!("field {}: {e}", field.target.name()))?;
            }
        }
        Ok(())
    }
}

/// A tree's JSON text (for records that were not read as text: XML, filtered paths).
fn raw_text(record: &Value) -> RawRecord {
    RawRecord::from_json(record.to_string())
}

fn first_text(values: &[Cow<'_, Value>]) -> Result<Option<String>, String> {
    match values.first() {
        None => Ok(None),
        Some(v) => text_of(v).map(Some).ok_or_else(|| {
            format!(
                "{} is not text (add a path to a value inside it)",
                describe(v)
            )
        }),
    }
}

/// Several values (restrictions split from a list, terms from two fields) read as lines.
fn joined_text(values: &[Cow<'_, Value>]) -> Result<Option<String>, String> {
    let mut lines = Vec::with_capacity(values.len());
    for v in values {
        lines.push(text_of(v).ok_or_else(|| format!("{} is not text", describe(v)))?);
    }
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

fn url(values: &[Cow<'_, Value>]) -> Result<Option<String>, String> {
    match first_text(values)? {
        None => Ok(None),
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => Ok(Some(u)),
        Some(u) if u.starts_with("//") => Ok(Some(format!("https:{u}"))),
        Some(u) => Err(format!(
            "{} is not an http(s) URL",
            describe(&Value::String(u))
        )),
    }
}

fn parse_word<T: std::str::FromStr<Err = crate::offer::UnknownWord>>(
    values: &[Cow<'_, Value>],
) -> Result<Option<T>, String> {
    first_text(values)?
        .map(|t| t.parse::<T>().map_err(|e| e.to_string()))
        .transpose()
}

/// Countries as a sorted set: the order a network lists them in means nothing,
/// and a stable order keeps an unchanged offer unchanged.
fn countries(values: &[Cow<'_, Value>]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let text = text_of(v).ok_or_else(|| format!("{} is not a country code", describe(v)))?;
        match normalize_country(&text).map_err(|e| e.to_string())? {
            // A worldwide sentinel anywhere means "no restriction".
            CountryCode::Worldwide => return Ok(Vec::new()),
            CountryCode::Code(code) => out.push(code),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Operating systems as a sorted set, like countries.
fn os_list(values: &[Cow<'_, Value>]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let text = text_of(v).ok_or_else(|| format!("{} is not an OS name", describe(v)))?;
        let os = normalize_os(&text);
        if !matches!(os.as_str(), "all" | "any" | "") {
            out.push(os);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn decimal(values: &[Cow<'_, Value>], range: RangeEnd) -> Result<Option<Decimal>, String> {
    values
        .first()
        .map(|v| convert::to_decimal(v, range))
        .transpose()
}

fn datetime(values: &[Cow<'_, Value>]) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    values.first().map(|v| convert::to_datetime(v)).transpose()
}

fn text_list(v: Option<&Value>) -> Vec<Cow<'_, Value>> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(Cow::Borrowed).collect(),
        Some(other) => vec![Cow::Borrowed(other)],
    }
}

fn entries<'v>(
    values: &'v [Cow<'v, Value>],
) -> Result<Vec<&'v serde_json::Map<String, Value>>, String> {
    values
        .iter()
        .map(|v| {
            v.as_object()
                .ok_or_else(|| format!("{} is not an entry; use `each` with `fields`", describe(v)))
        })
        .collect()
}

/// One field of an `each` entry, as rule values.
fn entry_field<'v>(entry: &'v serde_json::Map<String, Value>, name: &str) -> Vec<Cow<'v, Value>> {
    entry.get(name).map(Cow::Borrowed).into_iter().collect()
}

fn apply(
    offer: &mut Offer,
    target: Target,
    values: program::Values<'_>,
    range: RangeEnd,
) -> Result<(), String> {
    match target {
        Target::ExternalId => offer.external_id = first_text(&values)?.unwrap_or_default(),
        Target::Name => offer.name = first_text(&values)?.unwrap_or_default(),
        Target::Status => offer.status = parse_word(&values)?.unwrap_or(OfferStatus::Active),
        Target::PreviewUrl => offer.preview_url = url(&values)?,
        Target::TrackingUrl => offer.tracking_url = url(&values)?,
        Target::ImpressionUrl => offer.impression_url = url(&values)?,
        Target::ThumbnailUrl => offer.thumbnail_url = url(&values)?,
        Target::Payout => offer.payout = decimal(&values, range)?,
        Target::Currency => {
            offer.currency = first_text(&values)?
                .map(|c| normalize_currency(&c).map_err(|e| e.to_string()))
                .transpose()?
        }
        Target::Model => offer.model = parse_word::<PayoutModel>(&values)?,
        Target::Countries => offer.countries = countries(&values)?,
        Target::BlockedCountries => offer.blocked_countries = countries(&values)?,
        Target::Os => offer.os = os_list(&values)?,
        Target::Category => offer.category = first_text(&values)?,
        Target::Description => offer.description = joined_text(&values)?,
        Target::Kpi => offer.kpi = joined_text(&values)?,
        Target::StartsAt => offer.starts_at = datetime(&values)?,
        Target::ExpiresAt => offer.expires_at = datetime(&values)?,
        Target::Caps => {
            let mut caps = Vec::new();
            for (i, entry) in entries(&values)?.into_iter().enumerate() {
                let at = |e: String| format!("entry {i}: {e}");
                let field = |name: &str| entry_field(entry, name);
                let value = decimal(&field("value"), range).map_err(at)?;
                let Some(value) = value.filter(|v| !v.is_zero()) else {
                    continue;
                };
                let event = parse_word(&field("event"))
                    .map_err(at)?
                    .ok_or_else(|| at("`event` has no value".into()))?;
                let period = parse_word(&field("period"))
                    .map_err(at)?
                    .ok_or_else(|| at("`period` has no value".into()))?;
                caps.push(Cap {
                    event,
                    period,
                    value,
                    timezone: None,
                    over_delivery: None,
                });
            }
            offer.caps = caps;
        }
        Target::Payouts => {
            let mut payouts = Vec::new();
            for (i, entry) in entries(&values)?.into_iter().enumerate() {
                let at = |e: String| format!("entry {i}: {e}");
                let field = |name: &str| entry_field(entry, name);
                let Some(payout) = decimal(&field("payout"), range).map_err(at)? else {
                    continue;
                };
                payouts.push(PayoutEntry {
                    payout,
                    publisher_payout: None,
                    currency: first_text(&field("currency"))
                        .map_err(at)?
                        .map(|c| normalize_currency(&c).map_err(|e| at(e.to_string())))
                        .transpose()?,
                    model: parse_word(&field("model")).map_err(at)?,
                    countries: countries(&text_list(entry.get("countries"))).map_err(at)?,
                    os: os_list(&text_list(entry.get("os"))).map_err(at)?,
                    goal: first_text(&field("goal")).map_err(at)?,
                });
            }
            offer.payouts = payouts;
        }
    }
    Ok(())
}
