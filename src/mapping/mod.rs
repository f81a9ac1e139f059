//! The mapping language: from a network's response to normalized offers.
//!
//! This module owns the declarative field rules of a Network (`spec`), their
//! compiled form (`program`, `path`), the XML-to-tree rule (`xml`) and the
//! typed reading of loose values (`convert`). It is pure: it does no I/O,
//! knows nothing of HTTP or the database, and never panics on input. A record
//! that cannot be mapped becomes a [`RecordProblem`], never a failed page.

pub mod convert;
pub mod expect;
pub mod path;
pub mod program;
pub mod spec;
pub mod split;
pub mod suggest;
pub mod template;
pub mod xml;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::offer::{
    Cap, CountryCode, Offer, OfferStatus, PayoutEntry, RawRecord, is_iso_4217, normalize_country,
    normalize_currency, normalize_device, normalize_os, parse_models,
};
use convert::{describe, text_of};
use path::JsonPath;
use program::{CompileError, Cond, Ctx, FieldEnv, NullSet, Program};
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
    PayoutMax,
    BlockedOs,
    Devices,
    MinOsVersion,
}

impl Target {
    pub const ALL: [(&'static str, Target); 24] = [
        ("external_id", Target::ExternalId),
        ("name", Target::Name),
        ("status", Target::Status),
        ("preview_url", Target::PreviewUrl),
        ("tracking_url", Target::TrackingUrl),
        ("impression_url", Target::ImpressionUrl),
        ("payout", Target::Payout),
        ("payout_max", Target::PayoutMax),
        ("currency", Target::Currency),
        ("model", Target::Model),
        ("countries", Target::Countries),
        ("blocked_countries", Target::BlockedCountries),
        ("os", Target::Os),
        ("blocked_os", Target::BlockedOs),
        ("devices", Target::Devices),
        ("min_os_version", Target::MinOsVersion),
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
    /// Whether the rule says `from: record` anywhere.
    pub fn reads_from_record(&self) -> bool {
        self.program.reads_from_record()
    }

    /// Whether the rule reads `@key` outside an `each` of its own: the key
    /// the record has in the object that holds it.
    pub fn reads_key(&self) -> bool {
        self.program.reads_key()
    }

    /// Compiles a rule for a target, checking `each` sub-fields against the target.
    pub fn compile(target: Target, spec: &FieldSpec) -> Result<Self, CompileError> {
        Self::compile_in(target, spec, FieldEnv::default())
    }

    /// Like [`FieldMapping::compile`], for a rule that may read the params `env` names.
    pub fn compile_in(
        target: Target,
        spec: &FieldSpec,
        env: FieldEnv<'_>,
    ) -> Result<Self, CompileError> {
        let program = Program::compile_in(spec, env)?;
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
    /// Fields an offer cannot exist without: a record without a value there,
    /// or with one that cannot be read, is a problem. Beyond these and
    /// [`ALWAYS_REQUIRED`], a value that cannot be read is left empty, with
    /// a warning.
    required: Vec<Target>,
    /// How a response says it is an error although its status is 200.
    errors: Vec<ResponseError>,
    /// The parts of a record the fields read: records read as text are parsed in this shape.
    record_shape: split::Shape,
}

/// How one field's rule went on one record (`offersync explain`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldTrace {
    pub field: &'static str,
    pub rule: String,
    /// A `first_of`'s alternatives in order (or the rule alone), and
    /// whether each gave a value: the first that did is used.
    pub alternatives: Vec<Alternative>,
    /// Whether a value it cannot read drops the record.
    pub required: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Alternative {
    pub rule: String,
    pub gave_value: bool,
}

/// A Network's rule for an error answered with a success status: when
/// `when` holds on the response, the page is the API's error, with its
/// message at `message`.
#[derive(Debug, Clone)]
pub struct ResponseError {
    pub when: Cond,
    pub message: Option<JsonPath>,
}

/// How the warning for an optional field whose value could not be read ends
/// (`field payout: …; left empty`): what a new campaign gets. A stored one
/// keeps its value instead, and `reconcile` says so in place of this.
pub const LEFT_EMPTY: &str = "; left empty";

/// Fields whose value, when present but unreadable, is never left empty:
/// an offer without them is not an offer, or it would run wider than the
/// network allows (a status left empty reads as active, countries as
/// worldwide, caps as uncapped).
pub const ALWAYS_REQUIRED: [Target; 8] = [
    Target::ExternalId,
    Target::Name,
    Target::Status,
    Target::Countries,
    Target::BlockedCountries,
    Target::BlockedOs,
    Target::Devices,
    Target::Caps,
];

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

/// The reason of a record whose required field has no value.
const MISSING: &str = "no value (the field is required)";

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
    /// With [`Mapping::map_page_reusing`], where the page's records were
    /// read one at a time: each record's hash and place.
    pub hashed: Option<HashedRecords>,
}

/// The records of a page mapped with [`Mapping::map_page_reusing`], by
/// [`record_hash`] and their place among the records the records path
/// selects (the numbering of [`RecordProblem::index`]).
#[derive(Debug, Default)]
pub struct HashedRecords {
    /// (place, hash) of each of [`MappedPage::offers`], in the same order.
    pub offers: Vec<(usize, [u8; 32])>,
    /// (place, hash) of the records left unparsed because the caller knows
    /// their hash (they are neither offers nor problems of the page).
    pub reused: Vec<(usize, [u8; 32])>,
}

/// Whether the caller knows a record by its [`record_hash`] (and so needs
/// it neither parsed nor mapped).
pub type KnownRecord<'a> = &'a (dyn Fn(&[u8; 32]) -> bool + Sync);

/// The hash a record's outcome is kept under: SHA-256 of its bytes exactly
/// as the page lists them, and of its key in an object container (the key
/// can be its id).
pub fn record_hash(key: Option<&str>, raw: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    match key {
        None => hasher.update([0u8]),
        Some(key) => {
            hasher.update([1u8]);
            hasher.update((key.len() as u64).to_le_bytes());
            hasher.update(key.as_bytes());
        }
    }
    hasher.update(raw.as_bytes());
    hasher.finalize().into()
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

    /// The ids of the page's records that have one (mapped or not), which
    /// the pager's loop guard compares across pages.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        let offers = self.offers.iter().map(|o| o.external_id.as_str());
        let problems = self
            .problems
            .iter()
            .filter_map(|p| p.external_id.as_deref());
        offers.chain(problems)
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
            required: vec![Target::ExternalId, Target::Name],
            errors: Vec::new(),
            record_shape,
        }
    }

    /// Marks more fields as ones an offer cannot exist without.
    pub fn with_required(mut self, targets: impl IntoIterator<Item = Target>) -> Self {
        for target in targets {
            if !self.required.contains(&target) {
                self.required.push(target);
            }
        }
        self
    }

    /// Adds the rules by which a response with a success status is an error.
    pub fn with_errors(mut self, errors: Vec<ResponseError>) -> Self {
        self.errors = errors;
        self
    }

    /// Whether a value of this field that cannot be read drops the record
    /// (rather than leaving the field empty with a warning).
    pub fn is_required(&self, target: Target) -> bool {
        ALWAYS_REQUIRED.contains(&target) || self.required.contains(&target)
    }

    /// The offer fields this mapping fills, in the order they are read.
    pub fn targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.fields.iter().map(|f| f.target)
    }

    /// The fields beyond `external_id` and `name` a record must have.
    pub fn required_targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.required.iter().copied().skip(2)
    }

    /// The record of a mapped page whose offer (or record problem) has
    /// `external_id`, as a tree, with its key in an object keyed by id.
    pub fn find_record(
        &self,
        body: &[u8],
        mapped: &MappedPage,
        external_id: &str,
    ) -> Option<(Value, Option<String>)> {
        if let Some(offer) = mapped.offers.iter().find(|o| o.external_id == external_id) {
            let record = serde_json::from_str(offer.raw.get()).ok()?;
            let key = self.parse(body).ok().and_then(|tree| {
                self.records(&tree)
                    .into_iter()
                    .find(|(_, r)| **r == record)
                    .and_then(|(k, _)| k)
            });
            return Some((record, key));
        }
        let problem = mapped
            .problems
            .iter()
            .find(|p| p.external_id.as_deref() == Some(external_id))?;
        let tree = self.parse(body).ok()?;
        self.records(&tree)
            .into_iter()
            .nth(problem.index)
            .map(|(key, record)| (record.clone(), key))
    }

    /// For `explain`: each field's rule on one record, its alternatives and
    /// which gave a value, in the order the fields are read.
    pub fn trace(
        &self,
        record: &Value,
        key: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Vec<FieldTrace> {
        let ctx = Ctx {
            params,
            ..Ctx::new(record, key, &self.nulls)
        };
        self.fields
            .iter()
            .map(|f| FieldTrace {
                field: f.target.name(),
                rule: f.program.describe(),
                alternatives: f
                    .program
                    .alternatives(&ctx)
                    .into_iter()
                    .map(|(rule, gave_value)| Alternative { rule, gave_value })
                    .collect(),
                required: self.is_required(f.target),
            })
            .collect()
    }

    /// The path a field's rule reads first, for messages about it.
    pub fn path_of(&self, target: Target) -> Option<String> {
        self.fields
            .iter()
            .find(|f| f.target == target)
            .and_then(|f| {
                f.program
                    .source_paths()
                    .first()
                    .map(|p| p.as_str().to_string())
            })
    }

    /// Whether the Network declares how its responses signal errors.
    pub fn has_error_rules(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Whether any field fills a template with params.
    pub fn uses_params(&self) -> bool {
        self.fields.iter().any(|f| f.program.uses_params())
    }

    /// The API's own error, when a page (parsed; records may have been split
    /// off) is one by the Network's `errors` rules: its message, or the rule.
    pub fn response_error(&self, page: &Value) -> Option<String> {
        let nulls = NullSet::new(&[]);
        let ctx = Ctx::new(page, None, &nulls);
        self.errors.iter().find(|e| e.when.holds(&ctx)).map(|e| {
            e.message
                .as_ref()
                .and_then(|m| m.first(page))
                .and_then(text_of)
                .map(|m| m.trim().chars().take(500).collect::<String>())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the response matches the network's error rule".to_string())
        })
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
    pub fn map_page_with(&self, body: &[u8], threads: usize) -> Result<MappedPage, PageError> {
        self.map_page_using(body, threads, &program::NO_PARAMS)
    }

    /// Parses and maps a page with an Integration's params (for field
    /// templates), records spread over up to `threads` threads. JSON
    /// records under a plain container path are split off as text and each
    /// is parsed, mapped and moved into its offer, so the page never exists
    /// as one big tree.
    pub fn map_page_using(
        &self,
        body: &[u8],
        threads: usize,
        params: &BTreeMap<String, String>,
    ) -> Result<MappedPage, PageError> {
        self.map_page_reusing(body, threads, params, None)
    }

    /// [`Mapping::map_page_using`] that hashes each record as the page is
    /// split and leaves unparsed those whose hash `known` accepts (their
    /// outcome is the caller's: [`MappedPage::hashed`]). Only JSON records
    /// read one at a time are hashed; otherwise every record is mapped.
    pub fn map_page_reusing(
        &self,
        body: &[u8],
        threads: usize,
        params: &BTreeMap<String, String>,
        known: Option<KnownRecord<'_>>,
    ) -> Result<MappedPage, PageError> {
        if self.format == ResponseFormat::Xml {
            return Ok(self.map_tree(xml::xml_to_value(body, &self.xml_lists)?, params));
        }
        let Some((container, filter)) = self
            .records
            .first()
            .and_then(JsonPath::container_with_filter)
        else {
            return Ok(self.map_tree(serde_json::from_slice(body)?, params));
        };
        let text: Arc<str> = std::str::from_utf8(body)
            .map_err(|e| PageError::Utf8(e.valid_up_to()))?
            .into();
        let page = split::split(&text, &container)?;
        match page.records {
            Some(records) if !records.is_empty() || self.records.len() == 1 => Ok(self.map_raw(
                page.skeleton,
                &text,
                &records,
                filter,
                threads,
                params,
                known,
            )),
            // Not there (or empty): the other `first_of` paths may find them.
            _ => Ok(self.map_tree(page.skeleton, params)),
        }
    }

    /// Maps an already parsed page (records are copied into their offers).
    pub fn map_value(&self, page: &Value) -> MappedPage {
        self.map_value_using(page, &program::NO_PARAMS)
    }

    fn map_value_using(&self, page: &Value, params: &BTreeMap<String, String>) -> MappedPage {
        let mut out = MappedPage::default();
        for (index, (key, record)) in self.records(page).into_iter().enumerate() {
            match self.map_record_using(index, key.as_deref(), record, params) {
                Ok(mut offer) => {
                    offer.raw = raw_text(record);
                    out.offers.push(offer);
                }
                Err(problem) => out.problems.push(problem),
            }
        }
        out
    }

    fn map_tree(&self, page: Value, params: &BTreeMap<String, String>) -> MappedPage {
        let mut out = self.map_value_using(&page, params);
        out.page = page;
        out
    }

    /// Records are stored whole (`Offer.raw`); one nested deeper than this is
    /// a problem of its own rather than a database error failing the run.
    #[allow(clippy::too_many_arguments)]
    fn map_raw(
        &self,
        skeleton: Value,
        text: &Arc<str>,
        records: &[(Option<String>, &serde_json::value::RawValue)],
        filter: Option<path::RecordFilter<'_>>,
        threads: usize,
        params: &BTreeMap<String, String>,
        known: Option<KnownRecord<'_>>,
    ) -> MappedPage {
        /// One selected record: mapped (with its hash when hashing), or
        /// known by its hash and left unparsed.
        // As large as the `Result` it wraps was: boxing would cost an
        // allocation per record.
        #[allow(clippy::large_enum_variant)]
        enum Read {
            Mapped(Option<[u8; 32]>, Result<Offer, RecordProblem>),
            Known([u8; 32]),
        }
        // `None`: the records path's filter does not select the record.
        let map_chunk = |first: usize, chunk: &[(Option<String>, &serde_json::value::RawValue)]| {
            chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (key, raw))| {
                    let hash = known.map(|_| record_hash(key.as_deref(), raw.get()));
                    if let (Some(known), Some(hash)) = (known, hash)
                        && known(&hash)
                    {
                        return Some(Read::Known(hash));
                    }
                    // The text was checked when the page was split; parsing it again cannot fail
                    // but a failure would still be a problem for this record, not a panic.
                    let record: Value = match self.parse_record(raw.get()) {
                        Ok(record) => record,
                        Err(e) => {
                            return Some(Read::Mapped(
                                hash,
                                Err(RecordProblem {
                                    index: first + i,
                                    external_id: None,
                                    field: "record",
                                    reason: e.to_string(),
                                }),
                            ));
                        }
                    };
                    if filter.is_some_and(|f| !f.selects(&record)) {
                        return None;
                    }
                    Some(Read::Mapped(
                        hash,
                        self.map_selected(first + i, key.as_deref(), &record, raw, text, params),
                    ))
                })
                .collect::<Vec<Read>>()
        };

        let threads = threads.clamp(1, 16).min(records.len().div_ceil(256).max(1));
        let results: Vec<Read> = if threads == 1 {
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
            hashed: known.map(|_| HashedRecords::default()),
            ..MappedPage::default()
        };
        // Records are numbered among those the records path selects, as
        // when the page is read as one tree (a known record was selected
        // when its outcome was kept: the filter is part of the revision).
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Read::Known(hash) => {
                    if let Some(hashed) = &mut out.hashed {
                        hashed.reused.push((index, hash));
                    }
                }
                Read::Mapped(hash, Ok(offer)) => {
                    if let (Some(hashed), Some(hash)) = (&mut out.hashed, hash) {
                        hashed.offers.push((index, hash));
                    }
                    out.offers.push(offer);
                }
                Read::Mapped(_, Err(problem)) => {
                    out.problems.push(RecordProblem { index, ..problem })
                }
            }
        }
        out
    }

    /// Why a required field has no value in `record`: a mistyped path is
    /// the usual cause, so a path that selects nothing there is named with
    /// the record's nearest existing paths.
    fn missing_reason(&self, target: Target, record: &Value) -> String {
        let hint = self
            .fields
            .iter()
            .find(|f| f.target == target)
            .and_then(|f| suggest::nothing_selected(&f.program.source_paths(), record))
            .map(|h| format!(": {h}"))
            .unwrap_or_default();
        format!("{MISSING}{hint}")
    }

    /// Maps one record read as text; the offer keeps that text as its raw record.
    fn map_selected(
        &self,
        index: usize,
        key: Option<&str>,
        record: &Value,
        raw: &serde_json::value::RawValue,
        text: &Arc<str>,
        params: &BTreeMap<String, String>,
    ) -> Result<Offer, RecordProblem> {
        let mut offer = match self.map_record_using(index, key, record, params) {
            Ok(offer) => offer,
            // The record was parsed only in the shape the mapping reads:
            // the keys a mistyped path meant are in its whole text.
            Err(mut problem) if problem.reason.starts_with(MISSING) => {
                if let (Some(target), Ok(whole)) = (
                    Target::from_name(problem.field),
                    serde_json::from_str::<Value>(raw.get()),
                ) {
                    problem.reason = self.missing_reason(target, &whole);
                }
                return Err(problem);
            }
            Err(problem) => return Err(problem),
        };
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
        self.map_record_using(index, key, record, &program::NO_PARAMS)
    }

    /// [`Mapping::map_record`] with an Integration's params for field templates.
    pub fn map_record_using(
        &self,
        index: usize,
        key: Option<&str>,
        record: &Value,
        params: &BTreeMap<String, String>,
    ) -> Result<Offer, RecordProblem> {
        let ctx = Ctx {
            params,
            ..Ctx::new(record, key, &self.nulls)
        };
        let mut offer = Offer::new(String::new(), String::new());
        let mut have_id = false;
        let mut have_name = false;
        for field in &self.fields {
            let read = field
                .program
                .eval(&ctx)
                .and_then(|values| apply(&mut offer, field.target, values, field.program.range()));
            if let Err(reason) = read {
                if self.is_required(field.target) {
                    return Err(RecordProblem {
                        index,
                        external_id: have_id.then(|| offer.external_id.clone()),
                        field: field.target.name(),
                        reason,
                    });
                }
                offer.warnings.push(format!(
                    "field {}: {reason}{LEFT_EMPTY}",
                    field.target.name()
                ));
                offer.unreadable.push(field.target.name());
            }
            match field.target {
                Target::ExternalId => have_id = !offer.external_id.is_empty(),
                Target::Name => have_name = !offer.name.is_empty(),
                _ => {}
            }
        }
        let missing = self.required.iter().copied().find(|&target| match target {
            Target::ExternalId => !have_id,
            Target::Name => !have_name,
            other => !has_value(&offer, other),
        });
        if let Some(target) = missing {
            return Err(RecordProblem {
                index,
                external_id: have_id.then(|| offer.external_id.clone()),
                field: target.name(),
                reason: self.missing_reason(target, record),
            });
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
        let ctx = Ctx::new(response, None, &nulls);
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

/// Whether a mapped offer has a value for a field.
fn has_value(offer: &Offer, target: Target) -> bool {
    match target {
        Target::ExternalId => !offer.external_id.is_empty(),
        Target::Name => !offer.name.is_empty(),
        // A status is always there: active when the network says nothing.
        Target::Status => true,
        Target::PreviewUrl => offer.preview_url.is_some(),
        Target::TrackingUrl => offer.tracking_url.is_some(),
        Target::ImpressionUrl => offer.impression_url.is_some(),
        Target::ThumbnailUrl => offer.thumbnail_url.is_some(),
        Target::Payout => offer.payout.is_some(),
        Target::Currency => offer.currency.is_some(),
        Target::Model => offer.model.is_some(),
        Target::Countries => !offer.countries.is_empty(),
        Target::BlockedCountries => !offer.blocked_countries.is_empty(),
        Target::Os => !offer.os.is_empty(),
        Target::Category => offer.category.is_some(),
        Target::Description => offer.description.is_some(),
        Target::Kpi => offer.kpi.is_some(),
        Target::Caps => !offer.caps.is_empty(),
        Target::Payouts => !offer.payouts.is_empty(),
        Target::StartsAt => offer.starts_at.is_some(),
        Target::ExpiresAt => offer.expires_at.is_some(),
        Target::PayoutMax => offer.payout_max.is_some(),
        Target::BlockedOs => !offer.blocked_os.is_empty(),
        Target::Devices => !offer.devices.is_empty(),
        Target::MinOsVersion => offer.min_os_version.is_some(),
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
/// and a stable order keeps an unchanged offer unchanged. Values that are no
/// country are returned apart, for the caller to decide: dropping one must
/// never widen where an offer runs.
fn countries(values: &[Cow<'_, Value>]) -> Result<Countries, String> {
    let mut out = Countries::default();
    for v in values {
        let text = text_of(v).ok_or_else(|| format!("{} is not a country code", describe(v)))?;
        match normalize_country(&text) {
            // A worldwide sentinel anywhere means "no restriction".
            Ok(CountryCode::Worldwide) => return Ok(Countries::default()),
            Ok(CountryCode::Code(code)) => out.codes.push(code),
            Err(_) => out.unknown.push(text),
        }
    }
    out.codes.sort_unstable();
    out.codes.dedup();
    Ok(out)
}

#[derive(Default)]
struct Countries {
    codes: Vec<String>,
    unknown: Vec<String>,
}

impl Countries {
    /// Where an offer runs. Unknown values beside known ones are dropped
    /// with a warning (the offer runs in fewer places, never more); when
    /// every value is unknown, an empty list would mean worldwide, so the
    /// field cannot be read.
    fn allowed(self, warnings: &mut Vec<String>, field: &str) -> Result<Vec<String>, String> {
        if self.unknown.is_empty() {
            return Ok(self.codes);
        }
        let listed = quoted_list(&self.unknown);
        if self.codes.is_empty() {
            return Err(format!(
                "{listed} {} no country offersync knows; left empty the offer would run worldwide",
                if self.unknown.len() == 1 { "is" } else { "are" }
            ));
        }
        warnings.push(format!(
            "field {field}: {listed} ignored (not a country offersync knows); the offer runs in the {} countries that were read",
            self.codes.len()
        ));
        Ok(self.codes)
    }

    /// Where an offer must not run: dropping an unknown value would let it
    /// run there, so any unknown value makes the field unreadable.
    fn blocked(self) -> Result<Vec<String>, String> {
        if self.unknown.is_empty() {
            return Ok(self.codes);
        }
        Err(format!(
            "{} {} no country offersync knows; a blocked country cannot be dropped",
            quoted_list(&self.unknown),
            if self.unknown.len() == 1 { "is" } else { "are" }
        ))
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Device types as a sorted set. Unknown values beside known ones are
/// dropped with a warning; when none is known, an empty list would mean
/// every device, so the field cannot be read.
fn devices(values: &[Cow<'_, Value>], warnings: &mut Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for v in values {
        let text = text_of(v).ok_or_else(|| format!("{} is not a device type", describe(v)))?;
        if matches!(text.trim().to_ascii_lowercase().as_str(), "all" | "any") {
            return Ok(Vec::new());
        }
        match normalize_device(&text) {
            Ok(device) => out.push(device.to_string()),
            Err(_) => unknown.push(text),
        }
    }
    if !unknown.is_empty() {
        let listed = quoted_list(&unknown);
        if out.is_empty() {
            return Err(format!(
                "{listed}: no device type (desktop, mobile, tablet); left empty the offer would accept every device"
            ));
        }
        warnings.push(format!(
            "field devices: {listed} ignored (not desktop, mobile or tablet)"
        ));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The version in text like `"Android 8.0+"`, `"iOS >= 14.2"` or `"10"`.
fn os_version(text: &str) -> Result<String, String> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} holds no version number"))?;
    let version: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    Ok(version.trim_end_matches('.').to_string())
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

/// A currency as stored: an ISO 4217 code (symbols and lower case read as
/// one). A code that is none (`XYZ`) is not stored as sent, as the manifest's
/// currency override would not be either.
fn iso_currency(text: String) -> Result<String, String> {
    let code = normalize_currency(&text).map_err(|e| e.to_string())?;
    if is_iso_4217(&code) {
        Ok(code)
    } else {
        Err(format!("{text:?} is not an ISO 4217 currency"))
    }
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
        Target::Payout => {
            offer.payout = decimal(&values, range)?;
            // A range keeps both ends: the other end is the top.
            if range == RangeEnd::Low
                && let Some(high) = decimal(&values, RangeEnd::High)?
                && Some(high) > offer.payout
            {
                offer.payout_max = Some(high);
            }
        }
        Target::PayoutMax => offer.payout_max = decimal(&values, RangeEnd::High)?,
        Target::BlockedOs => offer.blocked_os = os_list(&values)?,
        Target::Devices => offer.devices = devices(&values, &mut offer.warnings)?,
        Target::MinOsVersion => {
            offer.min_os_version = first_text(&values)?.map(|v| os_version(&v)).transpose()?
        }
        Target::Currency => offer.currency = first_text(&values)?.map(iso_currency).transpose()?,
        Target::Model => {
            let models = first_text(&values)?
                .map(|t| parse_models(&t).map_err(|e| e.to_string()))
                .transpose()?
                .unwrap_or_default();
            offer.model = models.first().copied();
            offer.models = if models.len() > 1 { models } else { Vec::new() };
        }
        Target::Countries => {
            offer.countries = countries(&values)?.allowed(&mut offer.warnings, "countries")?
        }
        Target::BlockedCountries => offer.blocked_countries = countries(&values)?.blocked()?,
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
                        .map(iso_currency)
                        .transpose()
                        .map_err(at)?,
                    model: parse_word(&field("model")).map_err(at)?,
                    countries: countries(&text_list(entry.get("countries")))
                        .and_then(|c| c.allowed(&mut offer.warnings, "payouts"))
                        .map_err(at)?,
                    os: os_list(&text_list(entry.get("os"))).map_err(at)?,
                    goal: first_text(&field("goal")).map_err(at)?,
                });
            }
            offer.payouts = payouts;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(fields: &[(Target, &str)]) -> Mapping {
        let fields = fields
            .iter()
            .map(|(target, path)| {
                FieldMapping::compile(*target, &FieldSpec::Path(path.to_string())).unwrap()
            })
            .collect();
        let records = vec![JsonPath::parse("$.offers[*]").unwrap()];
        Mapping::new(ResponseFormat::Json, Vec::new(), records, &[], fields)
    }

    /// Issue 25.9: a currency that is no ISO 4217 code is left empty with a
    /// warning, as any unreadable optional value, rather than stored as sent.
    #[test]
    fn a_currency_that_is_no_iso_code_is_left_empty_with_a_warning() {
        let m = mapping(&[
            (Target::ExternalId, "$.id"),
            (Target::Name, "$.name"),
            (Target::Currency, "$.currency"),
        ]);
        let body = br#"{"offers": [
            {"id": 1, "name": "A", "currency": "XYZ"},
            {"id": 2, "name": "B", "currency": "eur"},
            {"id": 3, "name": "C", "currency": "$"}
        ]}"#;
        let page = m.map_page(body).unwrap();
        assert!(page.problems.is_empty(), "{:?}", page.problems);
        let currencies: Vec<Option<&str>> =
            page.offers.iter().map(|o| o.currency.as_deref()).collect();
        assert_eq!(currencies, [None, Some("EUR"), Some("USD")]);
        assert_eq!(
            page.offers[0].warnings,
            ["field currency: \"XYZ\" is not an ISO 4217 currency; left empty"]
        );
        assert!(page.offers[1].warnings.is_empty());

        // A Network that requires a currency drops such a record instead.
        let m = m.with_required(vec![Target::Currency]);
        let page = m.map_page(body).unwrap();
        assert_eq!(page.offers.len(), 2);
        assert_eq!(
            (page.problems[0].field, page.problems[0].reason.as_str()),
            ("currency", "\"XYZ\" is not an ISO 4217 currency")
        );
    }
}
