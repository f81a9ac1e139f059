//! The manifest files exactly as users write them.
//!
//! These serde types are the file formats: every key, its type and its doc
//! comment (which is also the JSON Schema description editors show). Unknown
//! keys are rejected everywhere. Nothing here is interpreted: JSONPaths, cron
//! expressions, templates and secret references are plain strings until
//! [`super::compile`] checks them. No code outside `manifest` sees these types.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::located::Located;
use crate::mapping::spec::{Condition, FieldSpec};
use crate::offer::{CapEvent, CapPeriod, PayoutModel};

/// The only `apiVersion` this release reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "offersync/v1")]
    V1,
}

/// What a document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Kind {
    /// How to talk to one network's API and map its offers.
    Network,
    /// One advertiser account on a network, with its import settings.
    Integration,
}

/// One YAML document: the envelope shared by every kind.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Document<S> {
    /// Always `offersync/v1`.
    pub api_version: ApiVersion,
    /// `Network` or `Integration`.
    pub kind: Kind,
    /// The document's name and, optionally, a title and description.
    pub metadata: Metadata,
    /// The settings of this kind: a Network's API and mapping, or an
    /// Integration's account, filters and schedule.
    pub spec: S,
}

/// Names a document.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique among documents of the same kind: lower case letters, digits and dashes.
    pub name: Located<String>,
    /// A human title (shown in `status`).
    #[serde(default)]
    pub title: Option<String>,
    /// Free text for the people who maintain this file.
    #[serde(default)]
    pub description: Option<String>,
    /// Free-form labels, e.g. `team: growth`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------
// kind: Network
// ---------------------------------------------------------------------------

/// How to fetch one network's offers and map them to offersync offers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The settings an Integration must (or may) supply, used in templates as
    /// `{{ params.NAME }}`: API key, affiliate id, network id, user name...
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// The offer-list request.
    pub request: Request,
    /// How the request authenticates (besides any header or query set in `request`).
    #[serde(default)]
    pub auth: Option<Located<Auth>>,
    /// How to walk through the pages of the offer list. Default: a single request.
    #[serde(default)]
    pub pagination: Option<Located<Pagination>>,
    /// Safety limits for fetching.
    #[serde(default)]
    pub limits: Limits,
    /// Which redirects are followed. By default only those within the
    /// request's own origin (scheme, host and port), with credentials.
    #[serde(default)]
    pub redirects: Redirects,
    /// The response format. XML is converted to a JSON-like tree first (see `xml`).
    #[serde(default)]
    pub format: Format,
    /// How XML responses become a tree (only with `format: xml`).
    #[serde(default)]
    pub xml: Option<XmlOptions>,
    /// Where the offers are in a response: a JSONPath such as `$.offers[*]`, or
    /// `{first_of: [...]}` to try several (the first that finds records wins).
    /// An object keyed by offer id works with `$.data.*`.
    pub records: Located<Records>,
    /// Extra strings that mean "no value" in this network's responses, added to
    /// the built-in ones (`""`, `"0000-00-00"`, `"0000-00-00 00:00:00"`, `"null"`).
    #[serde(default)]
    pub null_values: Vec<String>,
    /// How each record maps to an offer field. JSONPaths are relative to the record.
    pub fields: OfferFields,
    /// Extra requests made per offer for fields the list lacks (a tracking link,
    /// payout terms), with a URL built from the list record.
    #[serde(default)]
    pub enrich: Vec<Enrichment>,
    /// Offer fields an offer of this network cannot exist without, besides
    /// `external_id` and `name`: a record without a usable value there is not
    /// imported. Any other field whose value cannot be read is left empty
    /// with a warning (status, countries, blocked_countries and caps never
    /// are: empty, they would widen where the offer runs).
    #[serde(default)]
    pub required: Vec<String>,
    /// How the API says a response is an error although its HTTP status is
    /// 200 (`{"response": "401", "message": "..."}`): such a response fails
    /// the run with the API's own message.
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    /// The most requests the API allows (pages and per-offer requests
    /// together), honoured across a run and across runs of this network at
    /// once in one daemon.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Tests of this mapping over saved responses, run offline by
    /// `offersync test` and `offersync validate`.
    #[serde(default)]
    pub tests: Vec<MappingTest>,
}

/// One test of a mapping: saved responses and what they must map to.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingTest {
    /// What the test checks, shown when it fails.
    #[serde(default)]
    pub name: Option<String>,
    /// Saved responses (pages), each a path relative to this file.
    pub samples: Vec<String>,
    /// How many offers and record problems the samples give in all.
    #[serde(default)]
    pub count: Option<TestCount>,
    /// Expectations by offer id: offer field → expected value (as `map
    /// --format json` prints it; decimals compare by value), or
    /// `problem: FIELD` for a record that must not become an offer because
    /// of that field.
    #[serde(default)]
    pub offers: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Saved responses of the per-offer requests (`enrich`): request name →
    /// offer id → a path relative to this file, e.g. `{tracking link:
    /// {"20145": link-20145.json}}`. `test`, `map` and `explain --sample`
    /// apply each to its offer as a sync applies the live response; an
    /// offer with none keeps only what its list record gives.
    #[serde(default)]
    pub per_offer: BTreeMap<String, BTreeMap<String, String>>,
}

/// Expected counts of a mapping test.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCount {
    /// Offers mapped.
    #[serde(default)]
    pub offers: Option<usize>,
    /// Records that could not be mapped.
    #[serde(default)]
    pub problems: Option<usize>,
}

/// A response with a success status that is an error.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// The condition on the response (paths from the response's root), e.g.
    /// `{path: $.response, exists: true, not_in: ["200"]}` or `{path: $.error, exists: true}`.
    pub when: crate::mapping::spec::Condition,
    /// A JSONPath to the API's message, shown in the run's error.
    #[serde(default)]
    pub message: Option<String>,
}

/// A request rate.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed in each period (a burst of this many may go at once).
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// The period in seconds, e.g. 60 for "20 requests a minute".
    #[schemars(range(min = 1))]
    pub per_seconds: u32,
}

/// One setting an Integration supplies to a Network.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// A secret (API key, password): Integrations must give it as
    /// `${env:NAME}` or `${file:PATH}`, and it is never printed.
    #[serde(default)]
    pub secret: bool,
    /// Whether an Integration must set it. Default: true unless a `default` is given.
    #[serde(default)]
    pub required: Option<bool>,
    /// The value used when an Integration does not set it.
    #[serde(default)]
    pub default: Option<String>,
    /// What the value is and where the user finds it.
    #[serde(default)]
    pub description: Option<String>,
}

/// The HTTP request that lists offers. Every string may use `{{ params.NAME }}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Absolute http or https URL.
    pub url: Located<String>,
    /// HTTP method. Default GET.
    #[serde(default)]
    pub method: Method,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Located<String>>,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, Located<String>>,
    /// A request body (for POST APIs), sent as is after template filling,
    /// as `application/json`. Prefer `form` or `json`, which encode each value.
    #[serde(default)]
    pub body: Option<Located<String>>,
    /// A form body (`application/x-www-form-urlencoded`, for POST): each field
    /// a template. The pagination's parameters then go in the form too.
    #[serde(default)]
    pub form: BTreeMap<String, Located<String>>,
    /// A JSON object body (`application/json`, for POST): each member a
    /// template, sent as a string. The pagination's parameters then go in the
    /// object too (page numbers and offsets as numbers).
    #[serde(default)]
    pub json: BTreeMap<String, Located<String>>,
    /// How the API fetches chosen offers only: when an Integration selects
    /// offers (`filters.offers`), their ids go in this query parameter,
    /// joined by `separator` (e.g. `{param: "filter[ids]", separator: ","}`).
    /// Without it the whole feed is fetched and filtered here.
    #[serde(default)]
    pub select_ids: Option<SelectIds>,
}

/// The query parameter that restricts the offer list to chosen ids.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectIds {
    /// The parameter's name.
    pub param: String,
    /// What joins several ids. Default `,`.
    #[serde(default = "comma")]
    pub separator: String,
}

fn comma() -> String {
    ",".into()
}

/// HTTP method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Method {
    #[default]
    #[serde(alias = "get")]
    GET,
    #[serde(alias = "post")]
    POST,
}

/// Authentication, by `kind`. Values may use `{{ params.NAME }}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication beyond `request.headers` / `request.query`.
    None,
    /// A query parameter, e.g. `api_key=...`.
    Query {
        /// The query parameter's name, e.g. `api_key`.
        param: String,
        /// Its value, usually `{{ params.api_key }}`.
        value: String,
    },
    /// A header, e.g. `X-Api-Key: ...`.
    Header {
        /// The header's name, e.g. `X-Api-Key`.
        name: String,
        /// Its value, usually `{{ params.api_key }}`.
        value: String,
    },
    /// HTTP Basic authentication.
    Basic {
        /// The user name, e.g. `{{ params.username }}`.
        username: String,
        /// The password, e.g. `{{ params.password }}` (a secret param).
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token, e.g. `{{ params.token }}` (a secret param).
        token: String,
    },
    /// OAuth2 client credentials: a token is fetched from `token_url`, cached
    /// until it expires, and sent as a bearer token.
    Oauth2 {
        /// Where the token is asked for (an https URL; may use params).
        token_url: String,
        /// The client id the network issued.
        client_id: String,
        /// The client secret the network issued (a secret param).
        client_secret: String,
        /// The scope to ask for, when the network wants one.
        #[serde(default)]
        scope: Option<String>,
        /// How the client authenticates to `token_url` (RFC 6749 §2.3.1):
        /// `client_secret_basic` (HTTP Basic, the method servers must
        /// support; the default) or `client_secret_post` (in the form body).
        #[serde(default)]
        client_auth: ClientAuth,
    },
    /// Log in for a token: a request the Network describes (method, URL,
    /// form or JSON body, headers), the token read from its response by
    /// JSONPath, cached for its lifetime and sent in a header or a query
    /// parameter. A 401 is answered by one new login, never more.
    Login {
        /// Where to log in (may use params).
        url: String,
        /// `POST` (default) or `GET`.
        #[serde(default = "post")]
        method: Method,
        /// Extra headers of the login request: each a template.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// A form body (`application/x-www-form-urlencoded`): each field a
        /// template, e.g. `{key: "{{ params.key }}"}`.
        #[serde(default)]
        form: BTreeMap<String, String>,
        /// A JSON object body: each member a template, sent as a string.
        #[serde(default)]
        json: BTreeMap<String, String>,
        /// Where the token is in the login response (a JSONPath), e.g.
        /// `$.data.token`.
        token: String,
        /// Where the token's lifetime in seconds is in the response (a
        /// JSONPath), e.g. `$.expires_in`.
        #[serde(default)]
        expires_in: Option<String>,
        /// The token's lifetime in seconds when the response does not say.
        /// Without either, one hour.
        #[serde(default)]
        lifetime_seconds: Option<u64>,
        /// Send the token in this header; `value` holds `{{ token }}`,
        /// e.g. `{name: Authorization, value: "Bearer {{ token }}"}`.
        #[serde(default)]
        header: Option<LoginHeader>,
        /// Send the token in this query parameter, e.g. `{param: token}`.
        #[serde(default)]
        query: Option<LoginQuery>,
    },
}

fn post() -> Method {
    Method::POST
}

/// The header a login token is sent in.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginHeader {
    /// The header's name, e.g. `Authorization`.
    pub name: String,
    /// Its value, with `{{ token }}` where the token goes. Default
    /// `{{ token }}`.
    #[serde(default = "bare_token")]
    pub value: String,
}

fn bare_token() -> String {
    "{{ token }}".into()
}

/// The query parameter a login token is sent in.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// The parameter's name, e.g. `token`.
    pub param: String,
}

/// How an OAuth2 client sends its id and secret to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// How to walk the pages of the offer list, by `kind`. Paths are JSONPaths on the whole response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request returns everything.
    None,
    /// A page number parameter.
    Page {
        /// The query parameter holding the page number.
        param: String,
        /// The first page's number. Default 1.
        #[serde(default = "one")]
        start: u64,
        /// The query parameter holding the page size, if any.
        #[serde(default)]
        size_param: Option<String>,
        /// The page size to ask for.
        #[serde(default)]
        size: Option<u64>,
        /// Path to the number of pages; stop after it.
        #[serde(default)]
        total_pages: Option<String>,
        /// Path to the number of offers in all pages; stop once that many were seen.
        #[serde(default)]
        total_count: Option<String>,
        /// A response header stating the number of pages
        /// (`X-Pagination-Page-Count`), when the body does not.
        #[serde(default)]
        total_pages_header: Option<String>,
        /// A response header stating the number of offers in all pages
        /// (`X-Total-Count`, `X-Pagination-Total-Count`), when the body does not.
        #[serde(default)]
        total_count_header: Option<String>,
    },
    /// A row offset parameter (or, with `unit: pages`, a parameter that is really a page number).
    Offset {
        /// The query parameter holding the offset.
        param: String,
        /// The first offset. Default 0.
        #[serde(default)]
        start: u64,
        /// The query parameter holding the page size.
        size_param: String,
        /// The page size.
        size: u64,
        /// Whether the offset counts rows (default) or pages.
        #[serde(default)]
        unit: OffsetUnit,
        /// Path to the number of offers in all pages.
        #[serde(default)]
        total_count: Option<String>,
        /// A response header stating the number of offers in all pages
        /// (`X-Total-Count`), when the body does not.
        #[serde(default)]
        total_count_header: Option<String>,
    },
    /// An opaque cursor from each response, sent back as a parameter.
    Cursor {
        /// The query parameter to send the cursor in.
        param: String,
        /// Path to the next cursor in a response; absent, null or empty ends the list.
        path: String,
    },
    /// A link to the next page in each response (absolute, or relative to the request URL).
    NextUrl {
        /// Path to the link; absent, null or empty ends the list.
        path: String,
    },
    /// The next page's URL from the response's `Link: <…>; rel="next"`
    /// header (RFC 8288, as GitHub-style APIs page); none ends the list.
    LinkHeader,
}

fn one() -> u64 {
    1
}

/// What an offset counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OffsetUnit {
    #[default]
    Rows,
    Pages,
}

/// Which redirects a network's responses may send offersync to.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redirects {
    /// Other hosts a redirect may lead to (e.g. a CDN serving exports). They
    /// get no credentials: no auth header, query key, basic or bearer auth,
    /// no request headers and no body. Redirects to any other host, to a
    /// scheme other than http(s), or from https to http fail the request.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
}

/// Safety limits for fetching one integration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Stop with an error after this many pages (a pagination loop guard). Default 10000.
    #[serde(default = "default_max_pages")]
    pub max_pages: u64,
    /// Refuse a response body larger than this many bytes (counted after
    /// decompression). Default 64 MiB. An OAuth2 token response has its own
    /// fixed limit of 1 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Seconds before a request times out. Default 60.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Retries of a request that failed with a timeout, a connection error,
    /// HTTP 429 or a 5xx. Default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry waits up to this many milliseconds; each further one
    /// doubles it (with random jitter, capped at 30 s). Default 500.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// The longest `Retry-After` honoured, in seconds; a longer one fails the
    /// request. Default 120.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pages: default_max_pages(),
            max_response_bytes: default_max_response_bytes(),
            timeout_seconds: default_timeout_seconds(),
            retries: default_retries(),
            retry_base_ms: default_retry_base_ms(),
            max_retry_after_seconds: default_max_retry_after(),
        }
    }
}

fn default_max_pages() -> u64 {
    10_000
}
fn default_max_response_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_timeout_seconds() -> u64 {
    60
}
fn default_retries() -> u32 {
    3
}
fn default_retry_base_ms() -> u64 {
    500
}
fn default_max_retry_after() -> u64 {
    120
}

/// Response format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Xml,
}

/// How an XML response becomes a tree. The rule: an element with child
/// elements becomes an object keyed by the children's local names (namespace
/// prefixes dropped); an element with only text becomes that text; an empty
/// element becomes `""`; `xsi:nil="true"` becomes null; attributes become
/// `@name` keys; a name that repeats among siblings becomes a list. Names in
/// `lists` are always lists, even with one element or none, so that one
/// `<offer>` and many map the same way.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XmlOptions {
    /// Element names that are always lists (e.g. `offer`, `country`).
    #[serde(default)]
    pub lists: Vec<String>,
}

/// Where records are found.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum Records {
    /// One JSONPath.
    Path(String),
    /// Several JSONPaths, tried in order; the first that finds records wins
    /// (for APIs whose response shape changes with request parameters).
    FirstOf {
        /// JSONPaths tried in order, e.g. `[$.offers[*], $.data.offers[*]]`.
        first_of: Vec<String>,
    },
}

/// The offer fields a Network maps. Each is a JSONPath relative to the record
/// (`$.name`), or a rule object (see `FieldRule`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferFields {
    /// The network's offer id (required). Use `"@key"` when the offer id is the
    /// record's key in an object keyed by id.
    pub external_id: Located<FieldSpec>,
    /// The offer's name (required).
    pub name: Located<FieldSpec>,
    /// active, paused, pending or expired (after `map`). Default active.
    #[serde(default)]
    pub status: Option<Located<FieldSpec>>,
    /// The advertiser's landing page, as publishers preview it.
    #[serde(default)]
    pub preview_url: Option<Located<FieldSpec>>,
    /// The network's tracking link for the offer.
    #[serde(default)]
    pub tracking_url: Option<Located<FieldSpec>>,
    /// The network's impression pixel URL, if any (imported only with `settings.allow_impressions`).
    #[serde(default)]
    pub impression_url: Option<Located<FieldSpec>>,
    /// The advertiser's payout (an amount, or a percentage for revshare).
    /// Strings like `"2.40000"`, `"$2.50"`, `"€11.00"`, `"4%"` are read exactly.
    #[serde(default)]
    pub payout: Option<Located<FieldSpec>>,
    /// The top of a commission range. Without it, a payout read as a range
    /// (`"3.5%-6%"`) keeps its top here on its own.
    #[serde(default)]
    pub payout_max: Option<Located<FieldSpec>>,
    /// ISO 4217 code or symbol (`usd`, `$`). Any other code (`XYZ`) is
    /// left empty with a warning.
    #[serde(default)]
    pub currency: Option<Located<FieldSpec>>,
    /// CPA, CPI, CPL, CPS, CPC, CPM or revshare (common spellings are
    /// understood); a hybrid such as `CPA+CPS` keeps every part.
    #[serde(default)]
    pub model: Option<Located<FieldSpec>>,
    /// Countries accepted; ISO codes, `UK`, English names; `ALL` or none = worldwide.
    #[serde(default)]
    pub countries: Option<Located<FieldSpec>>,
    /// Countries refused.
    #[serde(default)]
    pub blocked_countries: Option<Located<FieldSpec>>,
    /// Operating systems (android, ios, windows, macos, linux).
    #[serde(default)]
    pub os: Option<Located<FieldSpec>>,
    /// Operating systems the offer refuses.
    #[serde(default)]
    pub blocked_os: Option<Located<FieldSpec>>,
    /// Device types accepted: desktop, mobile, tablet (`phone`, `pc`... are understood).
    #[serde(default)]
    pub devices: Option<Located<FieldSpec>>,
    /// The lowest OS version accepted; the number is taken from text such as `"Android 8.0+"`.
    #[serde(default)]
    pub min_os_version: Option<Located<FieldSpec>>,
    /// The offer's category or vertical.
    #[serde(default)]
    pub category: Option<Located<FieldSpec>>,
    /// The offer's description (HTML is kept as sent unless the rule strips it).
    #[serde(default)]
    pub description: Option<Located<FieldSpec>>,
    /// The advertiser's KPI / restrictions text.
    #[serde(default)]
    pub kpi: Option<Located<FieldSpec>>,
    /// The offer's icon or thumbnail image URL.
    #[serde(default)]
    pub thumbnail_url: Option<Located<FieldSpec>>,
    /// Caps: `each` over the cap entries with `fields` event, period, value.
    /// A cap of 0 means "no cap" and is dropped.
    #[serde(default)]
    pub caps: Option<Located<FieldSpec>>,
    /// Payouts per country, goal or OS: `each` over the entries with `fields`
    /// payout, currency, model, countries, os, goal.
    #[serde(default)]
    pub payouts: Option<Located<FieldSpec>>,
    /// When the offer starts (dates, date-times, or unix seconds).
    #[serde(default)]
    pub starts_at: Option<Located<FieldSpec>>,
    /// When the offer ends.
    #[serde(default)]
    pub expires_at: Option<Located<FieldSpec>>,
}

impl OfferFields {
    /// Every mapped field with its name, in a stable order.
    pub fn entries(&self) -> Vec<(&'static str, &Located<FieldSpec>)> {
        let optional = [
            ("status", &self.status),
            ("preview_url", &self.preview_url),
            ("tracking_url", &self.tracking_url),
            ("impression_url", &self.impression_url),
            ("payout", &self.payout),
            ("payout_max", &self.payout_max),
            ("currency", &self.currency),
            ("model", &self.model),
            ("countries", &self.countries),
            ("blocked_countries", &self.blocked_countries),
            ("os", &self.os),
            ("blocked_os", &self.blocked_os),
            ("devices", &self.devices),
            ("min_os_version", &self.min_os_version),
            ("category", &self.category),
            ("description", &self.description),
            ("kpi", &self.kpi),
            ("thumbnail_url", &self.thumbnail_url),
            ("caps", &self.caps),
            ("payouts", &self.payouts),
            ("starts_at", &self.starts_at),
            ("expires_at", &self.expires_at),
        ];
        let mut all = vec![("external_id", &self.external_id), ("name", &self.name)];
        all.extend(
            optional
                .into_iter()
                .filter_map(|(name, spec)| spec.as_ref().map(|s| (name, s))),
        );
        all
    }
}

/// One extra request per offer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrichment {
    /// A name for logs and errors.
    pub name: String,
    /// The URL; `{{ params.NAME }}` and `{{ record.$.path }}` (from the list record) are filled in.
    pub url: Located<String>,
    /// Make the request only for records where this holds.
    #[serde(default)]
    pub when: Option<Condition>,
    /// Query parameters (templates as in `url`).
    #[serde(default)]
    pub query: BTreeMap<String, Located<String>>,
    /// Headers (templates as in `url`).
    #[serde(default)]
    pub headers: BTreeMap<String, Located<String>>,
    /// HTTP method. Default GET; a body needs POST.
    #[serde(default)]
    pub method: Method,
    /// A body sent as is after template filling, as `application/json`.
    #[serde(default)]
    pub body: Option<Located<String>>,
    /// A form body (`application/x-www-form-urlencoded`): each field a
    /// template as in `url`.
    #[serde(default)]
    pub form: BTreeMap<String, Located<String>>,
    /// A JSON object body (`application/json`): each member a template as in
    /// `url`, sent as a string; a member that is one record placeholder and
    /// nothing else (`"{{ record.$.id }}"`) sends the record's value as is
    /// when it is a number or a boolean.
    #[serde(default)]
    pub json: BTreeMap<String, Located<String>>,
    /// Response format.
    #[serde(default)]
    pub format: Format,
    /// Offer fields read from the response (JSONPaths relative to the response root).
    pub fields: BTreeMap<String, Located<FieldSpec>>,
    /// How many of these requests run at once. Default 4.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// What to do with the offer when the request fails after retries: `skip`
    /// the offer (default) or `keep` it without these fields.
    #[serde(default)]
    pub on_error: EnrichFailure,
}

fn default_concurrency() -> u32 {
    4
}

/// What a failed enrichment request does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrichFailure {
    #[default]
    Skip,
    Keep,
}

// ---------------------------------------------------------------------------
// kind: Integration
// ---------------------------------------------------------------------------

/// One advertiser account on a network and how its offers are imported.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    /// The Network (mapping file) to use: a built-in name such as `everflow`, or one in this directory.
    pub network: Located<String>,
    /// Integration Status: `false` stops fetching and leaves campaigns as they are.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Import Frequency: a standard 5-field crontab expression (`*/30 * * * *`), or `@hourly`, `@daily`.
    pub schedule: Located<String>,
    /// The time zone `schedule` is read in (IANA name). Default UTC.
    #[serde(default)]
    pub schedule_timezone: Option<Located<String>>,
    /// API details: the values of the Network's `params` (API key, affiliate id,
    /// network id...). Secrets must be `${env:NAME}` or `${file:PATH}`.
    #[serde(default)]
    pub params: BTreeMap<String, Located<String>>,
    /// Advertiser: whose offers these are.
    pub advertiser: String,
    /// Append to tracking and impression URLs.
    #[serde(default)]
    pub tracking: Tracking,
    /// Basic details given to every imported campaign.
    #[serde(default)]
    pub defaults: Defaults,
    /// Publisher payout rules.
    #[serde(default)]
    pub payout: PayoutRules,
    /// Which offers to import.
    #[serde(default)]
    pub filters: Filters,
    /// Which campaign columns later runs may change.
    #[serde(default)]
    pub update: UpdatePolicy,
    /// Integration settings stored with each campaign.
    #[serde(default)]
    pub settings: Settings,
    /// Text appended to every offer's description.
    #[serde(default)]
    pub description: Append,
    /// Text appended to every offer's KPI.
    #[serde(default)]
    pub kpi: Append,
    /// Cap settings.
    #[serde(default)]
    pub caps: CapSettings,
    /// What happens to a campaign whose offer disappears upstream. Default `pause`.
    #[serde(default)]
    pub on_removed: OnRemoved,
    /// What happens to a campaign whose offer is still upstream but now
    /// skipped by this Integration's filters (a narrowed filter, a raised
    /// minimum payout): `pause` (default) pauses it and marks it removed,
    /// `keep` only marks it; either way it is restored when the offer passes
    /// the filters again. Such campaigns are counted as `filtered`, apart from
    /// the removed, and never count toward the outage guards.
    #[serde(default)]
    pub on_filtered: OnRemoved,
    /// Protection against importing a broken upstream response.
    #[serde(default)]
    pub safety: Safety,
}

fn yes() -> bool {
    true
}

/// Parameters appended to the network's links.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    /// Append to Tracking URL: query parameters with macros, e.g. `sub1={click_id}&sub2={pub_id}`.
    #[serde(default)]
    pub append: Option<Located<String>>,
    /// Append to Impression URL; must contain the `{imp_id}` macro.
    #[serde(default)]
    pub append_impression: Option<Located<String>>,
}

/// Basic details.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Category for offers whose network sends none (the network's category wins when present).
    #[serde(default)]
    pub category: Option<String>,
    /// Imported Offers Status: the status of campaigns whose offer is active
    /// upstream. Offers paused or expired upstream are always imported
    /// paused, and offers pending upstream `pending`.
    #[serde(default)]
    pub status: ImportedStatus,
    /// Imported Offers Visibility.
    #[serde(default)]
    pub visibility: Visibility,
    /// Override Campaign Currency (ISO 4217): every campaign gets this currency.
    #[serde(default)]
    pub currency: Option<Located<String>>,
    /// Campaign Primary Objective: used when the network sends no model.
    #[serde(default)]
    pub objective: Option<PayoutModel>,
    /// Redirect Type: 302 (default), 301, 307, or 200 (no redirect).
    #[serde(default = "default_redirect")]
    #[schemars(with = "u16")]
    pub redirect: Located<u16>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            category: None,
            status: ImportedStatus::default(),
            visibility: Visibility::default(),
            currency: None,
            objective: None,
            redirect: default_redirect(),
        }
    }
}

fn default_redirect() -> Located<u16> {
    Located::unlocated(302)
}

/// The status given to imported campaigns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportedStatus {
    #[default]
    Active,
    Paused,
    /// Stored as `pending` (not `paused`): a status of its own, until a
    /// person reviews the campaign and sets another.
    Pending,
}

/// Who sees imported campaigns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only assigned publishers.
    Private,
    /// Publishers see it and ask permission to run it.
    #[default]
    Permission,
    /// Every publisher can run it.
    Public,
}

/// The ratio of payout to revenue and its exceptions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRules {
    /// Publisher payout = advertiser payout (revenue) × ratio. Default 1.
    #[serde(default = "unit_ratio")]
    #[schemars(with = "f64")]
    pub ratio: Located<Decimal>,
    /// Ratios for publisher tiers, e.g. `gold: 0.95`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub tiers: BTreeMap<String, Located<Decimal>>,
    /// Fixed payouts for named publishers, e.g. `pub-42: 12.00`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub publishers: BTreeMap<String, Located<Decimal>>,
    /// Decimal places payouts are rounded to. Default 2.
    #[serde(default = "two")]
    pub decimals: u32,
    /// How payouts are rounded. Default `half_up`.
    #[serde(default)]
    pub rounding: Rounding,
}

impl Default for PayoutRules {
    fn default() -> Self {
        Self {
            ratio: unit_ratio(),
            tiers: BTreeMap::new(),
            publishers: BTreeMap::new(),
            decimals: 2,
            rounding: Rounding::default(),
        }
    }
}

fn unit_ratio() -> Located<Decimal> {
    Located::unlocated(Decimal::ONE)
}

fn two() -> u32 {
    2
}

/// Rounding of computed payouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// 0.125 → 0.13.
    #[default]
    HalfUp,
    /// Banker's rounding: 0.125 → 0.12, 0.135 → 0.14.
    HalfEven,
    /// Toward zero: never pays more than the ratio allows.
    Down,
}

/// Filters: offers failing one are skipped with a reason.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Country Logic: allow or block countries.
    #[serde(default)]
    pub countries: CountryFilter,
    /// Skip offers without a preview link.
    #[serde(default)]
    pub require_preview_url: bool,
    /// Offers Model to Import; empty imports every model.
    #[serde(default)]
    pub models: Vec<PayoutModel>,
    /// Minimum and maximum payout, as amounts: revenue-share offers (model
    /// `revshare`, whose payout is a percentage) are not judged by these.
    #[serde(default)]
    pub payout: PayoutRange,
    /// Minimum and maximum payout percentage of revenue-share offers, e.g.
    /// `{min: 10}` for 10 %. Unset, percentage offers pass.
    #[serde(default)]
    pub payout_percent: PayoutRange,
    /// OS: all, android or ios.
    #[serde(default)]
    pub os: OsFilter,
    /// Geo Filter: per-country payout bounds. A country whose payout (its
    /// own `payouts` entry, else the offer's) is out of its bounds is dropped
    /// from the campaign's targeting; the offer is skipped as
    /// `geo_payout_out_of_range` only when no country is left (under
    /// `countries.mode: skip_offer`, as soon as one targeted country is out).
    #[serde(default)]
    pub geo: Vec<GeoFilter>,
    /// View Offers: import only these offer ids (empty imports all).
    #[serde(default)]
    pub offers: Vec<String>,
    /// Upstream statuses to import, e.g. `[active, paused]` (not pending or
    /// expired); empty imports every status. An offer whose status is not
    /// listed is skipped as `status_excluded`, and its campaign follows
    /// `on_filtered`.
    #[serde(default)]
    pub status: Vec<crate::offer::OfferStatus>,
}

/// Country logic: which countries an imported offer's campaign targets.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountryFilter {
    /// The countries campaigns may target. An offer's campaign targets those
    /// of its countries that are listed here (`narrow`); an offer with none of
    /// them is skipped as `country_not_allowed`. A worldwide offer (no country
    /// list) is imported targeting these, less the blocked ones.
    #[serde(default)]
    pub allow: Vec<Located<String>>,
    /// The countries campaigns never target. They are dropped from an offer's
    /// targeting (`narrow`); an offer left with no country is skipped as
    /// `country_blocked`. A worldwide offer is imported with these added to
    /// its blocked countries, so they are never served.
    #[serde(default)]
    pub block: Vec<Located<String>>,
    /// What an offer with a country outside these lists (or outside its
    /// `filters.geo` bounds) becomes. `narrow` (default): the campaign targets
    /// the offer's countries that are allowed, not blocked and within their
    /// geo bounds, and the offer is skipped only when none is left.
    /// `skip_offer`: the offer is skipped when it targets any blocked country,
    /// none of the allowed ones, or any country outside its geo bounds, and
    /// is otherwise imported with its own country list. Either way a campaign
    /// never targets a country it blocks (or the offer blocks upstream).
    #[serde(default)]
    pub mode: CountryMode,
}

/// What country logic does with an offer that targets a country it refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountryMode {
    /// Drop the refused countries from the campaign's targeting; skip the
    /// offer only when no country is left.
    #[default]
    Narrow,
    /// Skip the whole offer (the behaviour before `narrow`).
    SkipOffer,
}

/// Payout bounds (inclusive).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRange {
    /// Minimum Payout.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub min: Option<Decimal>,
    /// Maximum Payout.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub max: Option<Decimal>,
}

/// Device OS filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OsFilter {
    #[default]
    All,
    Android,
    Ios,
}

/// Payout bounds for one country.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoFilter {
    /// The country these bounds are for: an ISO code such as `US`.
    pub country: Located<String>,
    /// The smallest payout accepted for offers in this country.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub min: Option<Decimal>,
    /// The largest payout accepted for offers in this country.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub max: Option<Decimal>,
}

/// Updatable Columns: what later runs may change in an existing campaign.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    /// The policy of columns not listed in `columns`. Default `always`.
    /// `never` is refused here unless every column that cannot be `never`
    /// (see `columns`) has its own policy.
    #[serde(default)]
    pub default: Located<ColumnPolicy>,
    /// Per-column policy, e.g. `{status: on_create, payout: always, kpi: never}`.
    /// `never` is only for the columns a campaign can do without:
    /// preview_url, impression_url, thumbnail_url, category, description,
    /// kpi, payouts and objective. It is refused for the others (name,
    /// status, visibility, redirect, tracking_url, revenue, payout,
    /// currency, model, countries, os, dates, settings), whose emptiness
    /// would widen or break a campaign (no countries targets every
    /// country); `on_create` keeps manual edits of those.
    #[serde(default)]
    pub columns: BTreeMap<Column, Located<ColumnPolicy>>,
    /// Where `status` is not `always` (manual status edits kept): still pause
    /// a campaign whose offer is paused, pending or expired upstream, and put
    /// back the status that pause replaced when the offer is active again
    /// (a pause of the operator's own stays). Default true; false leaves the
    /// status entirely to the operator.
    #[serde(default = "yes")]
    pub follow_upstream_pauses: bool,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        Self {
            default: Located::default(),
            columns: BTreeMap::new(),
            follow_upstream_pauses: true,
        }
    }
}

/// When a column is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnPolicy {
    /// On create and on every update.
    #[default]
    Always,
    /// Only when the campaign is created; manual edits survive.
    OnCreate,
    /// Never written by offersync, not even on create: the column is left
    /// empty for people to fill. Only for columns a campaign can do without
    /// (not name, status, visibility, redirect, tracking_url, revenue,
    /// payout, currency, model, countries, os, dates or settings).
    Never,
}

/// Campaign columns offersync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Name,
    Status,
    Visibility,
    PreviewUrl,
    TrackingUrl,
    ImpressionUrl,
    Revenue,
    Payout,
    Currency,
    Model,
    Countries,
    Os,
    Category,
    Description,
    Kpi,
    ThumbnailUrl,
    Payouts,
    Dates,
    Redirect,
    Objective,
    Settings,
}

impl Column {
    /// Every column, in the order of the key's documentation.
    pub const ALL: [Column; 21] = [
        Column::Name,
        Column::Status,
        Column::Visibility,
        Column::PreviewUrl,
        Column::TrackingUrl,
        Column::ImpressionUrl,
        Column::Revenue,
        Column::Payout,
        Column::Currency,
        Column::Model,
        Column::Countries,
        Column::Os,
        Column::Category,
        Column::Description,
        Column::Kpi,
        Column::ThumbnailUrl,
        Column::Payouts,
        Column::Dates,
        Column::Redirect,
        Column::Objective,
        Column::Settings,
    ];

    /// The column's name as manifests write it (`tracking_url`).
    pub fn name(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Status => "status",
            Column::Visibility => "visibility",
            Column::PreviewUrl => "preview_url",
            Column::TrackingUrl => "tracking_url",
            Column::ImpressionUrl => "impression_url",
            Column::Revenue => "revenue",
            Column::Payout => "payout",
            Column::Currency => "currency",
            Column::Model => "model",
            Column::Countries => "countries",
            Column::Os => "os",
            Column::Category => "category",
            Column::Description => "description",
            Column::Kpi => "kpi",
            Column::ThumbnailUrl => "thumbnail_url",
            Column::Payouts => "payouts",
            Column::Dates => "dates",
            Column::Redirect => "redirect",
            Column::Objective => "objective",
            Column::Settings => "settings",
        }
    }
}

/// Integration settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Time Targeting: when the campaigns accept traffic.
    #[serde(default)]
    pub time_targeting: Option<TimeTargeting>,
    /// Track Multiple Conversions with the Same Click ID.
    #[serde(default)]
    pub multi_conversion: bool,
    /// Allow Impressions: only then is the offer's impression URL imported
    /// (default false: no impression URL is written).
    #[serde(default)]
    pub allow_impressions: bool,
    /// Allow Spillover Conversions once a cap is exceeded: `always` approve,
    /// `yes` approve when paused by a cap, `no` cancel (default).
    #[serde(default)]
    pub spillover: Spillover,
}

/// Time targeting.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeTargeting {
    /// IANA time zone the hours are in, e.g. `America/New_York`.
    pub timezone: Located<String>,
    /// Days traffic is accepted; empty means every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// Start of the daily window, `HH:MM`.
    pub from: Located<String>,
    /// End of the daily window, `HH:MM` (exclusive).
    pub to: Located<String>,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Spillover policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spillover {
    Always,
    Yes,
    #[default]
    No,
}

/// Text appended to a field of every offer.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Append {
    /// Appended after a blank line.
    #[serde(default)]
    pub append: Option<String>,
}

/// Cap settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapSettings {
    /// Update CAPs: later runs update imported caps and `additional` caps.
    #[serde(default)]
    pub update: bool,
    /// CAP type for imported campaigns: count `gross` (all) or `approved` conversions.
    #[serde(default, rename = "type")]
    pub cap_type: CapType,
    /// Cap Visibility: whether publishers see caps.
    #[serde(default)]
    pub visibility: CapVisibility,
    /// CAP Timezone (IANA name). Default UTC.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    /// Cap Over Delivery: `pause` the campaign when a cap is reached, or `continue`.
    #[serde(default)]
    pub over_delivery: OverDelivery,
    /// Additional Cap Settings: caps applied to every campaign of this integration.
    #[serde(default)]
    pub additional: Vec<CapRule>,
    /// Add CAP to imported campaigns: caps set once, when a campaign is created.
    #[serde(default)]
    pub on_import: Vec<CapRule>,
}

/// A cap offersync adds.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapRule {
    /// What is counted.
    pub event: CapEvent,
    /// The period it resets over.
    pub period: CapPeriod,
    /// The limit.
    #[schemars(with = "f64")]
    pub value: Located<Decimal>,
    /// This cap's own time zone (IANA name). Default: `caps.timezone`.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    /// What happens once this cap is reached. Default: `caps.over_delivery`.
    #[serde(default)]
    pub over_delivery: Option<OverDelivery>,
}

/// Which conversions a cap counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapType {
    #[default]
    Gross,
    Approved,
}

/// Whether publishers see caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapVisibility {
    Visible,
    #[default]
    Hidden,
}

/// What happens when a cap is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverDelivery {
    #[default]
    Pause,
    Continue,
}

/// The action for offers gone upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRemoved {
    /// Pause the campaign (restored when the offer comes back).
    #[default]
    Pause,
    /// Leave the campaign as it is; only record that the offer is gone.
    Keep,
}

/// Guards against importing a broken upstream response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    /// Accept a feed with zero offers (otherwise the run fails as a suspected outage).
    #[serde(default)]
    pub allow_empty_feed: bool,
    /// Refuse a run that would remove more than this share of the live
    /// campaigns, or whose feed lists more than this share fewer offers than
    /// the most it listed in a successful run in the last
    /// `shrink_window_days` (so a feed shrinking run by run trips it too).
    /// Offers the filters skip still count as listed. Default 0.5.
    #[serde(default = "half")]
    #[schemars(with = "f64")]
    pub max_removed_share: Located<Decimal>,
    /// How far back the removal guard looks for the most live campaigns, in
    /// days. Default 7.
    #[serde(default = "default_shrink_window_days")]
    pub shrink_window_days: u32,
    /// Fail a run in which more than this share of the records fetched repeat
    /// an id already seen in the run (and at least 5 do): a pager that
    /// repeats records hides others, which must not be removed. Default 0.01.
    #[serde(default = "one_percent")]
    #[schemars(with = "f64")]
    pub max_duplicate_share: Located<Decimal>,
    /// Allow the network's host to be a link-local or cloud metadata address
    /// (169.254.0.0/16, fe80::/10, 100.100.100.200, fd00:ec2::254), which are
    /// refused by default. Loopback and private addresses are always allowed.
    #[serde(default)]
    pub allow_link_local_addresses: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            allow_empty_feed: false,
            max_removed_share: half(),
            shrink_window_days: default_shrink_window_days(),
            max_duplicate_share: one_percent(),
            allow_link_local_addresses: false,
        }
    }
}

fn default_shrink_window_days() -> u32 {
    7
}

fn one_percent() -> Located<Decimal> {
    Located::unlocated(Decimal::new(1, 2))
}

fn half() -> Located<Decimal> {
    Located::unlocated(Decimal::new(5, 1))
}

// ---------------------------------------------------------------------------
// "A string or an object" fields keep serde's precise errors (unknown keys,
// wrong types) instead of an untagged enum's "did not match any variant".
// ---------------------------------------------------------------------------

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FirstOf {
            first_of: Vec<String>,
        }
        struct RecordsVisitor;
        impl<'de> Visitor<'de> for RecordsVisitor {
            type Value = Records;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSONPath string such as `$.offers[*]`, or `{first_of: [paths]}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Records, E> {
                Ok(Records::Path(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Records, A::Error> {
                FirstOf::deserialize(de::value::MapAccessDeserializer::new(map)).map(|f| {
                    Records::FirstOf {
                        first_of: f.first_of,
                    }
                })
            }
        }
        deserializer.deserialize_any(RecordsVisitor)
    }
}
