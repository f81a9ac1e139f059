//! Checking raw documents and turning them into [`super::model`] definitions.
//!
//! Every check appends to the diagnostics and goes on, so one pass reports
//! every problem it can find in a document; a document with any error yields
//! no definition.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::NaiveTime;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::diagnostic::{Diagnostic, DocSource};
use super::located::Located;
use super::model::*;
use super::raw::{self, Auth, Document, IntegrationSpec, NetworkSpec, Pagination, Records};
use super::secret::Secrets;
use crate::mapping::path::JsonPath;
use crate::mapping::program::{
    CompileError, Cond, FieldEnv, Template, TemplateScope, did_you_mean,
};
use crate::mapping::{FieldMapping, Mapping, ResponseError, ResponseFormat, Target};
use crate::offer::{Cap, CountryCode, normalize_country, normalize_currency};

/// Collects the diagnostics of one document.
struct Checker<'a> {
    source: &'a DocSource,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error<T>(&mut self, at: &Located<T>, field: &str, message: impl Into<String>) {
        self.diagnostics.push(self.source.error(at, field, message));
    }

    fn error_hint<T>(
        &mut self,
        at: &Located<T>,
        field: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diagnostics
            .push(self.source.error(at, field, message).with_hint(hint));
    }

    fn warn<T>(&mut self, at: &Located<T>, field: &str, message: impl Into<String>) {
        self.diagnostics
            .push(self.source.error(at, field, message).warning());
    }

    fn compile_error<T>(&mut self, at: &Located<T>, field: &str, e: CompileError) {
        let field = if e.at.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{}", e.at)
        };
        self.diagnostics
            .push(self.source.error(at, field, e.message));
    }

    fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn path(&mut self, at: &Located<impl Sized>, field: &str, path: &str) -> Option<JsonPath> {
        match JsonPath::parse(path) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(at, field, e.to_string());
                None
            }
        }
    }

    fn template(
        &mut self,
        at: &Located<impl Sized>,
        field: &str,
        text: &str,
        scope: TemplateScope<'_>,
    ) -> Option<Template> {
        match Template::compile(text, scope) {
            Ok(t) => Some(t),
            Err(e) => {
                self.compile_error(at, field, e);
                None
            }
        }
    }

    fn timezone(&mut self, at: &Located<String>, field: &str) -> Option<chrono_tz::Tz> {
        match chrono_tz::Tz::from_str(at.value().trim()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error_hint(
                    at,
                    field,
                    format!("{:?} is not an IANA time zone", at.value()),
                    "use a name such as UTC, Europe/Berlin or America/New_York",
                );
                None
            }
        }
    }

    fn country(&mut self, at: &Located<String>, field: &str) -> Option<String> {
        match normalize_country(at.value()) {
            Ok(CountryCode::Code(code)) => Some(code),
            Ok(CountryCode::Worldwide) => {
                self.error(
                    at,
                    field,
                    format!(
                        "{:?} means worldwide; list real countries here, or remove the filter",
                        at.value()
                    ),
                );
                None
            }
            Err(e) => {
                self.error(at, field, e.to_string());
                None
            }
        }
    }
}

fn check_name(checker: &mut Checker, name: &Located<String>) {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if !valid {
        checker.error_hint(
            name,
            "metadata.name",
            format!("{:?} is not a valid name", name.value()),
            "use lower case letters, digits and dashes (at most 63), e.g. acme-everflow",
        );
    }
}

/// Checks a Network document.
pub fn compile_network(
    doc: Document<NetworkSpec>,
    source: &DocSource,
    chunk: &str,
    origin: Origin,
) -> (Option<NetworkDef>, Vec<Diagnostic>) {
    let mut c = Checker {
        source,
        diagnostics: Vec::new(),
    };
    check_name(&mut c, &doc.metadata.name);
    let spec = doc.spec;
    let param_names: Vec<&str> = spec.params.keys().map(String::as_str).collect();
    let params_scope = TemplateScope::Params(&param_names);

    let mut params = BTreeMap::new();
    for (name, p) in &spec.params {
        if p.secret && p.default.is_some() {
            c.error(&doc.metadata.name, &format!("spec.params.{name}.default"), "a secret param cannot have a default: secrets come only from ${env:...} or ${file:...}");
        }
        params.insert(
            name.clone(),
            ParamDef {
                secret: p.secret,
                required: p.required.unwrap_or(p.default.is_none()),
                default: p.default.clone(),
                description: p.description.clone(),
            },
        );
    }

    let url = c.template(
        &spec.request.url,
        "spec.request.url",
        spec.request.url.value(),
        params_scope,
    );
    let literal_url = spec.request.url.value().trim();
    if !literal_url.starts_with("{{")
        && !literal_url.starts_with("http://")
        && !literal_url.starts_with("https://")
    {
        c.error(
            &spec.request.url,
            "spec.request.url",
            format!("{literal_url:?} is not an http or https URL"),
        );
    }
    let headers = templates(
        &mut c,
        &spec.request.headers,
        "spec.request.headers",
        params_scope,
    );
    let query = templates(
        &mut c,
        &spec.request.query,
        "spec.request.query",
        params_scope,
    );
    let body = compile_body(
        &mut c,
        BodySpec {
            at: &spec.request.url,
            field: "spec.request",
            method: spec.request.method,
            raw: spec.request.body.as_ref(),
            form: &spec.request.form,
            json: &spec.request.json,
        },
        params_scope,
    );

    let auth = match &spec.auth {
        None => Some(AuthDef::None),
        Some(located) => compile_auth(&mut c, located, params_scope),
    };
    let pagination = match &spec.pagination {
        None => Some(PaginationDef::None),
        Some(located) => compile_pagination(&mut c, located),
    };

    if spec.xml.is_some() && spec.format != raw::Format::Xml {
        c.warn(
            &doc.metadata.name,
            "spec.xml",
            "`xml` options are ignored unless `format: xml`",
        );
    }
    let records: Vec<JsonPath> = match spec.records.value() {
        Records::Path(p) => vec![p.clone()],
        Records::FirstOf { first_of } => first_of.clone(),
    }
    .iter()
    .filter_map(|p| c.path(&spec.records, "spec.records", p))
    .collect();

    let secret_params: Vec<&str> = spec
        .params
        .iter()
        .filter(|(_, p)| p.secret)
        .map(|(n, _)| n.as_str())
        .collect();
    let plain_params: Vec<&str> = spec
        .params
        .iter()
        .filter(|(_, p)| !p.secret)
        .map(|(n, _)| n.as_str())
        .collect();
    let field_env = FieldEnv::new(&plain_params, &secret_params);
    let mut fields = Vec::new();
    for (name, field_spec) in spec.fields.entries() {
        let target = Target::from_name(name).expect("OfferFields names are targets");
        match FieldMapping::compile_in(target, field_spec.value(), field_env) {
            // A record has a key only as an entry of an object (`records:
            // $.offers.*` over `{"1042": {...}}`); under a records path that
            // ends in a name or an index `@key` would be empty in every offer.
            Ok(f) if f.reads_key() && !records.iter().any(|r| r.may_select_members()) => c
                .error_hint(
                    field_spec,
                    &format!("spec.fields.{name}"),
                    format!(
                        "`@key` reads the key of a record held in an object, but `records: {}` selects no entry of an object, so it would never have a value",
                        records.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    "inside `each`, `@key` reads the key of each entry (e.g. `each: $.payouts_per_country.*` with `countries: '@key'`); for a record's own key, end `records` in `.*` (e.g. `$.offers.*`)",
                ),
            Ok(f) => fields.push(f),
            Err(e) => c.compile_error(field_spec, &format!("spec.fields.{name}"), e),
        }
    }

    let mut enrich = Vec::new();
    for (i, e) in spec.enrich.iter().enumerate() {
        let at = format!("spec.enrich[{i}]");
        let scope = TemplateScope::ParamsAndRecord(&param_names);
        let url = c.template(&e.url, &format!("{at}.url"), e.url.value(), scope);
        let query = templates(&mut c, &e.query, &format!("{at}.query"), scope);
        let headers = templates(&mut c, &e.headers, &format!("{at}.headers"), scope);
        let body = compile_body(
            &mut c,
            BodySpec {
                at: &e.url,
                field: &at,
                method: e.method,
                raw: e.body.as_ref(),
                form: &e.form,
                json: &e.json,
            },
            scope,
        );
        let when = match e.when.as_ref().map(Cond::compile).transpose() {
            Ok(w) => w,
            Err(err) => {
                c.compile_error(&e.url, &format!("{at}.when"), err);
                None
            }
        };
        let mut enrich_fields = Vec::new();
        for (name, field_spec) in &e.fields {
            let Some(target) = Target::from_name(name) else {
                let names = Target::ALL.iter().map(|(n, _)| *n);
                let hint = did_you_mean(name, names).map(|s| format!("did you mean `{s}`?"));
                let message = format!("`{name}` is not an offer field");
                match hint {
                    Some(h) => c.error_hint(field_spec, &format!("{at}.fields.{name}"), message, h),
                    None => c.error(field_spec, &format!("{at}.fields.{name}"), message),
                }
                continue;
            };
            match FieldMapping::compile(target, field_spec.value()) {
                // A response has no key in an object that holds it.
                Ok(f) if f.reads_key() => c.error_hint(
                    field_spec,
                    &format!("{at}.fields.{name}"),
                    "`@key` outside `each` reads the key of a record held in an object, but a per-offer request's response is held in none, so it would never have a value",
                    "read the key inside `each` (e.g. `each: $.payouts.*` with `countries: '@key'`), or map the list record's key in spec.fields",
                ),
                // The rules of a per-offer request read its response: there,
                // `record` is that response, never the list's record, so a
                // path of the list record would silently find nothing.
                Ok(f) if f.reads_from_record() => c.error_hint(
                    field_spec,
                    &format!("{at}.fields.{name}"),
                    "`from: record` in a per-offer request's fields reads that request's response, not the offer's record in the list",
                    "map a field of the list record in spec.fields, or send it in this request (`{{ record.$.path }}` in its url, query or body)",
                ),
                Ok(f) => enrich_fields.push(f),
                Err(err) => c.compile_error(field_spec, &format!("{at}.fields.{name}"), err),
            }
        }
        if e.concurrency == 0 {
            c.error(&e.url, &format!("{at}.concurrency"), "must be at least 1");
        }
        if let (Some(url), Some(query), Some(headers), Some(body)) = (url, query, headers, body) {
            enrich.push(EnrichDef {
                name: e.name.clone(),
                url,
                when,
                query,
                headers,
                method: e.method,
                body,
                format: e.format,
                fields: enrich_fields,
                concurrency: e.concurrency.max(1),
                on_error: e.on_error,
            });
        }
    }

    let mut required = Vec::new();
    for name in &spec.required {
        match Target::from_name(name) {
            Some(target) => required.push(target),
            None => {
                let names = Target::ALL.iter().map(|(n, _)| *n);
                let message = format!("`{name}` is not an offer field");
                match did_you_mean(name, names) {
                    Some(h) => c.error_hint(
                        &doc.metadata.name,
                        "spec.required",
                        message,
                        format!("did you mean `{h}`?"),
                    ),
                    None => c.error(&doc.metadata.name, "spec.required", message),
                }
            }
        }
    }
    let mut errors = Vec::new();
    for (i, rule) in spec.errors.iter().enumerate() {
        let at = format!("spec.errors[{i}]");
        let when = Cond::compile(&rule.when)
            .map_err(|e| c.compile_error(&doc.metadata.name, &format!("{at}.when"), e))
            .ok();
        let message = match &rule.message {
            None => Some(None),
            Some(p) => c
                .path(&doc.metadata.name, &format!("{at}.message"), p)
                .map(Some),
        };
        if let (Some(when), Some(message)) = (when, message) {
            errors.push(ResponseError { when, message });
        }
    }
    let base = source.file.parent().unwrap_or(Path::new("."));
    let tests = spec
        .tests
        .iter()
        .enumerate()
        .map(|(i, t)| crate::mapping::expect::MappingTest {
            name: t.name.clone().unwrap_or_else(|| format!("tests[{i}]")),
            samples: t.samples.iter().map(|s| base.join(s)).collect(),
            offers: t.count.and_then(|c| c.offers),
            problems: t.count.and_then(|c| c.problems),
            expected: t.offers.clone(),
            per_offer: t
                .per_offer
                .iter()
                .map(|(request, files)| {
                    let files = files.iter().map(|(id, f)| (id.clone(), base.join(f)));
                    (request.clone(), files.collect())
                })
                .collect(),
        })
        .collect();
    for (i, t) in spec.tests.iter().enumerate() {
        for request in t.per_offer.keys() {
            if spec.enrich.iter().any(|e| e.name == *request) {
                continue;
            }
            let field = format!("spec.tests[{i}].per_offer.{request}");
            let names = spec.enrich.iter().map(|e| e.name.as_str());
            let message = format!("no per-offer request (`enrich`) is named `{request}`");
            match did_you_mean(request, names.clone()) {
                Some(near) => c.error_hint(
                    &doc.metadata.name,
                    &field,
                    message,
                    format!("did you mean `{near}`?"),
                ),
                None if spec.enrich.is_empty() => c.error_hint(
                    &doc.metadata.name,
                    &field,
                    message,
                    "per_offer holds saved responses of the requests under spec.enrich; this Network has none",
                ),
                None => c.error_hint(
                    &doc.metadata.name,
                    &field,
                    message,
                    format!(
                        "the requests are: {}",
                        names.collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
    }
    let rate_limit = spec.rate_limit.map(|r| RateLimitDef {
        requests: r.requests.max(1),
        period: std::time::Duration::from_secs(u64::from(r.per_seconds.max(1))),
    });

    if c.has_errors() {
        return (None, c.diagnostics);
    }
    let (Some(url), Some(headers), Some(query), Some(auth), Some(pagination)) =
        (url, headers, query, auth, pagination)
    else {
        return (None, c.diagnostics);
    };
    let format = match spec.format {
        raw::Format::Json => ResponseFormat::Json,
        raw::Format::Xml => ResponseFormat::Xml,
    };
    let xml_lists = spec.xml.map(|x| x.lists).unwrap_or_default();
    let mapping = Mapping::new(format, xml_lists, records, &spec.null_values, fields)
        .with_required(required)
        .with_errors(errors);
    let def = NetworkDef {
        name: doc.metadata.name.into_value(),
        title: doc.metadata.title,
        params,
        request: RequestDef {
            method: spec.request.method,
            url,
            headers,
            query,
            // An invalid body is an error of the file, which then yields no definition.
            body: body.flatten(),
            select_ids: spec.request.select_ids.map(|s| (s.param, s.separator)),
        },
        auth,
        pagination,
        limits: LimitsDef {
            max_pages: spec.limits.max_pages.max(1),
            max_response_bytes: spec.limits.max_response_bytes,
            timeout_seconds: spec.limits.timeout_seconds.max(1),
            retries: spec.limits.retries,
            retry_base_ms: spec.limits.retry_base_ms,
            max_retry_after_seconds: spec.limits.max_retry_after_seconds,
        },
        redirect_hosts: spec
            .redirects
            .allow_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        mapping,
        enrich,
        null_values: spec.null_values,
        rate_limit,
        tests,
        origin,
        source_hash: hex(&Sha256::digest(chunk.as_bytes())),
    };
    (Some(def), c.diagnostics)
}

fn templates(
    c: &mut Checker,
    map: &BTreeMap<String, Located<String>>,
    field: &str,
    scope: TemplateScope<'_>,
) -> Option<Vec<(String, Template)>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (name, value) in map {
        match c.template(value, &format!("{field}.{name}"), value.value(), scope) {
            Some(t) => out.push((name.clone(), t)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Where a request's body is written: `body`, `form` or `json`.
struct BodySpec<'s> {
    /// What a diagnostic points at when the body's own key has no line.
    at: &'s Located<String>,
    /// The request's dotted path (`spec.request`, `spec.enrich[0]`).
    field: &'s str,
    method: raw::Method,
    raw: Option<&'s Located<String>>,
    form: &'s BTreeMap<String, Located<String>>,
    json: &'s BTreeMap<String, Located<String>>,
}

/// The body of a request: `Some(None)` for none, `None` after an error.
fn compile_body(
    c: &mut Checker,
    spec: BodySpec<'_>,
    scope: TemplateScope<'_>,
) -> Option<Option<BodyDef>> {
    let field = spec.field;
    let given: Vec<&str> = [
        ("body", spec.raw.is_some()),
        ("form", !spec.form.is_empty()),
        ("json", !spec.json.is_empty()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    if given.len() > 1 {
        c.error_hint(
            spec.at,
            field,
            format!("a request has one body, but {} are given", given.join(" and ")),
            "keep one: `form` for form fields, `json` for a JSON object, `body` for text sent as is",
        );
        return None;
    }
    if !given.is_empty() && spec.method == raw::Method::GET {
        c.error_hint(
            spec.at,
            &format!("{field}.{}", given[0]),
            "a GET request carries no body",
            "add `method: POST`",
        );
        return None;
    }
    if let Some(raw_body) = spec.raw {
        let body = c.template(raw_body, &format!("{field}.body"), raw_body.value(), scope)?;
        return Some(Some(BodyDef::Raw(body)));
    }
    if !spec.form.is_empty() {
        let form = templates(c, spec.form, &format!("{field}.form"), scope)?;
        return Some(Some(BodyDef::Form(form)));
    }
    if !spec.json.is_empty() {
        let json = templates(c, spec.json, &format!("{field}.json"), scope)?;
        return Some(Some(BodyDef::Json(json)));
    }
    Some(None)
}

fn compile_auth(c: &mut Checker, at: &Located<Auth>, scope: TemplateScope<'_>) -> Option<AuthDef> {
    let mut t =
        |field: &str, text: &str| c.template(at, &format!("spec.auth.{field}"), text, scope);
    Some(match at.value() {
        Auth::None => AuthDef::None,
        Auth::Query { param, value } => AuthDef::Query {
            param: param.clone(),
            value: t("value", value)?,
        },
        Auth::Header { name, value } => AuthDef::Header {
            name: name.clone(),
            value: t("value", value)?,
        },
        Auth::Basic { username, password } => {
            let username = t("username", username);
            let password = t("password", password);
            AuthDef::Basic {
                username: username?,
                password: password?,
            }
        }
        Auth::Bearer { token } => AuthDef::Bearer {
            token: t("token", token)?,
        },
        Auth::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            client_auth,
        } => {
            let token_url = t("token_url", token_url);
            let client_id = t("client_id", client_id);
            let client_secret = t("client_secret", client_secret);
            AuthDef::OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope: scope.clone(),
                client_auth: *client_auth,
            }
        }
        Auth::Login {
            url,
            method,
            headers,
            form,
            json,
            token,
            expires_in,
            lifetime_seconds,
            header,
            query,
        } => {
            return compile_login(
                c,
                at,
                scope,
                LoginSpec {
                    url,
                    method: *method,
                    headers,
                    form,
                    json,
                    token,
                    expires_in,
                    lifetime_seconds: *lifetime_seconds,
                    header,
                    query,
                },
            );
        }
    })
}

struct LoginSpec<'s> {
    url: &'s str,
    method: raw::Method,
    headers: &'s BTreeMap<String, String>,
    form: &'s BTreeMap<String, String>,
    json: &'s BTreeMap<String, String>,
    token: &'s str,
    expires_in: &'s Option<String>,
    lifetime_seconds: Option<u64>,
    header: &'s Option<raw::LoginHeader>,
    query: &'s Option<raw::LoginQuery>,
}

fn compile_login(
    c: &mut Checker,
    at: &Located<Auth>,
    scope: TemplateScope<'_>,
    spec: LoginSpec<'_>,
) -> Option<AuthDef> {
    let field = "spec.auth";
    let mut ok = true;
    let mut fields = |c: &mut Checker, map: &BTreeMap<String, String>, name: &str| {
        let mut out = Vec::new();
        for (key, value) in map {
            match c.template(at, &format!("{field}.{name}.{key}"), value, scope) {
                Some(t) => out.push((key.clone(), t)),
                None => ok = false,
            }
        }
        out
    };
    let headers = fields(c, spec.headers, "headers");
    let form = fields(c, spec.form, "form");
    let json = fields(c, spec.json, "json");
    let url = c.template(at, &format!("{field}.url"), spec.url, scope);
    let body = match (form.is_empty(), json.is_empty()) {
        (true, true) => None,
        (false, true) => Some(BodyDef::Form(form)),
        (true, false) => Some(BodyDef::Json(json)),
        (false, false) => {
            c.error_hint(
                at,
                field,
                "a login request has one body, but form and json are given",
                "keep one: `form` for form fields, `json` for a JSON object",
            );
            return None;
        }
    };
    if body.is_some() && spec.method == raw::Method::GET {
        c.error_hint(
            at,
            &format!("{field}.method"),
            "a GET request carries no body",
            "use `method: POST` (the default), or drop the form/json",
        );
        return None;
    }
    let token = c.path(at, &format!("{field}.token"), spec.token);
    let expires_in = match spec.expires_in {
        Some(path) => Some(c.path(at, &format!("{field}.expires_in"), path)?),
        None => None,
    };
    if spec.lifetime_seconds == Some(0) {
        c.error_hint(
            at,
            &format!("{field}.lifetime_seconds"),
            "a token lifetime of 0 seconds would log in before every request",
            "give the lifetime the network documents, in seconds (e.g. 7200 for 2 hours)",
        );
        return None;
    }
    let send = match (spec.header, spec.query) {
        (Some(header), None) => {
            const TOKEN: &str = "{{ token }}";
            let Some((prefix, suffix)) = header.value.split_once(TOKEN) else {
                c.error_hint(
                    at,
                    &format!("{field}.header.value"),
                    format!("{:?} does not say where the token goes", header.value),
                    "write `{{ token }}` where the token goes, e.g. \"Bearer {{ token }}\"",
                );
                return None;
            };
            if reqwest::header::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
                c.error(
                    at,
                    &format!("{field}.header.name"),
                    format!("{:?} is not a valid header name", header.name),
                );
                return None;
            }
            TokenPlace::Header {
                name: header.name.clone(),
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
            }
        }
        (None, Some(query)) => TokenPlace::Query(query.param.clone()),
        (given_header, _) => {
            c.error_hint(
                at,
                field,
                if given_header.is_some() {
                    "the token is sent in one place, but header and query are both given"
                } else {
                    "a login auth says where the token is sent"
                },
                "add `header: {name: Authorization, value: \"Bearer {{ token }}\"}` or `query: {param: token}`",
            );
            return None;
        }
    };
    if !ok {
        return None;
    }
    Some(AuthDef::Login(Box::new(LoginDef {
        method: spec.method,
        url: url?,
        headers,
        body,
        token: token?,
        expires_in,
        lifetime_seconds: spec.lifetime_seconds,
        send,
    })))
}

fn compile_pagination(c: &mut Checker, at: &Located<Pagination>) -> Option<PaginationDef> {
    let field = "spec.pagination";
    // A total is read from the body or from a header, not both.
    let total = |c: &mut Checker,
                 name: &str,
                 path: &Option<String>,
                 header: &Option<String>|
     -> Result<Option<Total>, ()> {
        match (path, header) {
            (None, None) => Ok(None),
            (Some(p), None) => c.path(at, field, p).map(|p| Some(Total::Path(p))).ok_or(()),
            (None, Some(h)) => {
                if reqwest::header::HeaderName::from_bytes(h.trim().as_bytes()).is_err() {
                    c.error(
                        at,
                        &format!("{field}.{name}_header"),
                        format!("{h:?} is not a header name"),
                    );
                    return Err(());
                }
                Ok(Some(Total::Header(h.trim().to_string())))
            }
            (Some(_), Some(_)) => {
                c.error_hint(
                    at,
                    &format!("{field}.{name}"),
                    format!("`{name}` and `{name}_header` are both given"),
                    "keep the one where the API states it: the body or a header",
                );
                Err(())
            }
        }
    };
    Some(match at.value() {
        Pagination::None => PaginationDef::None,
        Pagination::Page {
            param,
            start,
            size_param,
            size,
            total_pages,
            total_count,
            total_pages_header,
            total_count_header,
        } => PaginationDef::Page {
            param: param.clone(),
            start: *start,
            size_param: size_param.clone(),
            size: *size,
            total_pages: total(c, "total_pages", total_pages, total_pages_header).ok()?,
            total_count: total(c, "total_count", total_count, total_count_header).ok()?,
        },
        Pagination::Offset {
            param,
            start,
            size_param,
            size,
            unit,
            total_count,
            total_count_header,
        } => {
            if *size == 0 {
                c.error(
                    at,
                    "spec.pagination.size",
                    "the page size must be at least 1",
                );
            }
            PaginationDef::Offset {
                param: param.clone(),
                start: *start,
                size_param: size_param.clone(),
                size: *size,
                unit: *unit,
                total_count: total(c, "total_count", total_count, total_count_header).ok()?,
            }
        }
        Pagination::Cursor { param, path } => PaginationDef::Cursor {
            param: param.clone(),
            path: c.path(at, field, path)?,
        },
        Pagination::NextUrl { path } => PaginationDef::NextUrl {
            path: c.path(at, field, path)?,
        },
        Pagination::LinkHeader => PaginationDef::LinkHeader,
    })
}

/// Checks an Integration document against the Networks it may use.
pub fn compile_integration(
    doc: Document<IntegrationSpec>,
    source: &DocSource,
    chunk: &str,
    networks: &BTreeMap<String, Arc<NetworkDef>>,
    broken_networks: &BTreeMap<String, PathBuf>,
    secrets: Secrets<'_>,
) -> (Option<IntegrationDef>, Vec<Diagnostic>) {
    let mut c = Checker {
        source,
        diagnostics: Vec::new(),
    };
    check_name(&mut c, &doc.metadata.name);
    let spec = doc.spec;

    let network = networks.get(spec.network.value().as_str()).cloned();
    if let (None, Some(file)) = (&network, broken_networks.get(spec.network.value())) {
        // Its own errors are reported in its file: no "no such network" too.
        c.error_hint(
            &spec.network,
            "spec.network",
            format!(
                "network {:?} cannot be used until the errors in its file are fixed",
                spec.network.value()
            ),
            format!("see the errors reported for {}", file.display()),
        );
    } else if network.is_none() {
        let hint = did_you_mean(&spec.network, networks.keys().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| {
                format!(
                    "known networks: {}; or add a kind: Network file to the directory",
                    networks.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            });
        c.error_hint(
            &spec.network,
            "spec.network",
            format!("no network named {:?}", spec.network.value()),
            hint,
        );
    }

    let schedule = compile_schedule(&mut c, &spec.schedule, spec.schedule_timezone.as_ref());
    let base_dir = source.file.parent().unwrap_or(Path::new("."));
    let params = network
        .as_ref()
        .map(|n| compile_params(&mut c, &spec, n, base_dir, secrets));

    let tracking = TrackingDef {
        append: spec
            .tracking
            .append
            .as_ref()
            .and_then(|a| query_append(&mut c, a, "spec.tracking.append")),
        append_impression: spec.tracking.append_impression.as_ref().and_then(|a| {
            if !a.contains("{imp_id}") {
                c.error_hint(
                    a,
                    "spec.tracking.append_impression",
                    "the impression append must contain the {imp_id} macro",
                    "e.g. `imp={imp_id}`",
                );
            }
            query_append(&mut c, a, "spec.tracking.append_impression")
        }),
    };

    let currency = spec
        .defaults
        .currency
        .as_ref()
        .and_then(|cur| match normalize_currency(cur) {
            Ok(code) if !crate::offer::is_iso_4217(&code) => {
                c.error_hint(
                    cur,
                    "spec.defaults.currency",
                    format!("{code} is not an ISO 4217 currency"),
                    "write a code such as USD, EUR or GBP",
                );
                None
            }
            Ok(code) => Some(code),
            Err(e) => {
                c.error(cur, "spec.defaults.currency", e.to_string());
                None
            }
        });
    let redirect = *spec.defaults.redirect.value();
    if ![200, 301, 302, 303, 307, 308].contains(&redirect) {
        c.error_hint(
            &spec.defaults.redirect,
            "spec.defaults.redirect",
            format!("{redirect} is not a redirect type"),
            "use 302 (temporary), 301, 307, 308, 303, or 200 (no redirect)",
        );
    }

    check_update_policy(&mut c, &spec.update);
    let payout = compile_payout(&mut c, &spec.payout);
    let filters = compile_filters(&mut c, &spec.filters);
    let settings = compile_settings(&mut c, &spec.settings);
    let caps = compile_caps(&mut c, &spec.caps);

    for (share, field) in [
        (
            &spec.safety.max_removed_share,
            "spec.safety.max_removed_share",
        ),
        (
            &spec.safety.max_duplicate_share,
            "spec.safety.max_duplicate_share",
        ),
    ] {
        let value = *share.value();
        if value < Decimal::ZERO || value > Decimal::ONE {
            c.error(
                share,
                field,
                format!("{value} is not a share between 0 and 1"),
            );
        }
    }
    if let (Some(network), Some(Some(params))) = (&network, &params) {
        check_urls(&mut c, &spec, network, params);
    }

    if c.has_errors() {
        return (None, c.diagnostics);
    }
    let (
        Some(network),
        Some(schedule),
        Some(params),
        Some(payout),
        Some(filters),
        Some(settings),
        Some(caps),
    ) = (
        network,
        schedule,
        params.flatten(),
        payout,
        filters,
        settings,
        caps,
    )
    else {
        return (None, c.diagnostics);
    };
    let spec_hash = hex(&Sha256::digest(chunk.as_bytes()));
    let revision = hex(&Sha256::digest(
        format!("{spec_hash}\n{}", network.source_hash).as_bytes(),
    ));
    let name_at = (
        source.file_line(doc.metadata.name.line()),
        doc.metadata.name.column(),
    );
    let def = IntegrationDef {
        name: doc.metadata.name.into_value(),
        title: doc.metadata.title,
        network,
        enabled: spec.enabled,
        schedule,
        params,
        advertiser: spec.advertiser,
        tracking,
        defaults: DefaultsDef {
            category: spec.defaults.category.filter(|s| !s.trim().is_empty()),
            status: spec.defaults.status,
            visibility: spec.defaults.visibility,
            currency,
            objective: spec.defaults.objective,
            redirect,
        },
        payout,
        filters,
        update: UpdateDef {
            default: *spec.update.default.value(),
            columns: spec
                .update
                .columns
                .into_iter()
                .map(|(column, policy)| (column, policy.into_value()))
                .collect(),
            follow_upstream_pauses: spec.update.follow_upstream_pauses,
        },
        settings,
        description_append: spec.description.append.filter(|s| !s.trim().is_empty()),
        kpi_append: spec.kpi.append.filter(|s| !s.trim().is_empty()),
        caps,
        on_removed: spec.on_removed,
        on_filtered: spec.on_filtered,
        safety: SafetyDef {
            allow_empty_feed: spec.safety.allow_empty_feed,
            max_removed_share: *spec.safety.max_removed_share.value(),
            shrink_window_days: spec.safety.shrink_window_days,
            max_duplicate_share: *spec.safety.max_duplicate_share.value(),
            allow_link_local_addresses: spec.safety.allow_link_local_addresses,
        },
        source_file: source.file.clone(),
        name_at,
        spec_hash,
        revision,
        source_text: chunk.to_string(),
    };
    (Some(def), c.diagnostics)
}

/// The URLs an integration will fetch, as its params fill the Network's
/// templates: only http(s), and no link-local or metadata address written as
/// an IP unless the Integration allows it (names are checked when they
/// resolve, at run time). An error points at the param that made the URL,
/// when one did.
fn check_urls(
    c: &mut Checker,
    spec: &IntegrationSpec,
    network: &NetworkDef,
    params: &BTreeMap<String, ParamValue>,
) {
    // Offline, a param given as a reference has no value: a URL made with
    // one is unknown and not checked.
    let unknown = std::cell::Cell::new(false);
    let lookup = |name: &str| {
        let param = params.get(name)?;
        if param.is_unresolved() {
            unknown.set(true);
        }
        Some(param.expose().to_string())
    };
    // An enrichment URL may be built from the record, unknown here: it is
    // checked only when it reads as a URL already.
    let render = |template: &crate::mapping::program::Template| {
        unknown.set(false);
        let text = template.render(None, &lookup);
        (text, unknown.get())
    };
    let mut urls = Vec::new();
    let (text, unknown_url) = render(&network.request.url);
    urls.push(("request URL", text, true, unknown_url));
    if let AuthDef::OAuth2 { token_url, .. } = &network.auth {
        let (text, unknown_url) = render(token_url);
        urls.push(("OAuth2 token URL", text, true, unknown_url));
    }
    if let AuthDef::Login(login) = &network.auth {
        let (text, unknown_url) = render(&login.url);
        urls.push(("login URL", text, true, unknown_url));
    }
    for enrich in &network.enrich {
        let (text, unknown_url) = render(&enrich.url);
        urls.push(("enrichment URL", text, false, unknown_url));
    }
    let redact = |text: &str| {
        params
            .values()
            .filter(|p| p.is_secret() && !p.expose().is_empty())
            .fold(text.to_string(), |t, p| t.replace(p.expose(), "[redacted]"))
    };
    for (what, text, whole, unknown_url) in urls {
        if unknown_url {
            continue;
        }
        let text = text.trim();
        let problem = match url::Url::parse(text) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => Some((
                "only http and https URLs are fetched; write an http:// or https:// URL".to_string(),
                format!("scheme {:?}", url.scheme()),
            )),
            Ok(url) if !spec.safety.allow_link_local_addresses => {
                crate::address::check_literal_host(&url).err().map(|e| {
                    (
                        "set spec.safety.allow_link_local_addresses: true only if the network's API really is there".to_string(),
                        format!("{} is a link-local or cloud metadata address", e.addr),
                    )
                })
            }
            Ok(_) => None,
            Err(_) if !whole => None,
            Err(e) => Some((
                "write a full URL such as https://api.network.example".to_string(),
                e.to_string(),
            )),
        };
        let Some((hint, why)) = problem else {
            continue;
        };
        let message = format!("the {what} would be {:?}: {why}", redact(text));
        let culprit = spec.params.iter().find(|(name, _)| {
            params.get(*name).is_some_and(|p| {
                let value = p.expose().trim();
                !p.is_secret() && !value.is_empty() && text.starts_with(value)
            })
        });
        match culprit {
            Some((name, located)) => {
                c.error_hint(located, &format!("spec.params.{name}"), message, hint)
            }
            None => c.error_hint(&spec.network, "spec.network", message, hint),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn compile_schedule(
    c: &mut Checker,
    expr: &Located<String>,
    tz: Option<&Located<String>>,
) -> Option<Schedule> {
    let text = expr.value().trim();
    let fields = text.split_whitespace().count();
    let cron = if let Some(every) = text.strip_prefix("@every") {
        // Go's cron and Kubernetes-adjacent tools accept `@every 5m`;
        // croner would call it a wrong field count, which misleads.
        c.error_hint(
            expr,
            "spec.schedule",
            format!(
                "{text:?}: `@every` is not crontab; offersync takes a 5-field crontab schedule"
            ),
            every_hint(every.trim()),
        );
        None
    } else if !text.starts_with('@') && fields != 5 {
        c.error_hint(
            expr,
            "spec.schedule",
            format!("{text:?} has {fields} fields; a crontab schedule has 5"),
            "minute hour day-of-month month day-of-week, e.g. \"*/30 * * * *\"",
        );
        None
    } else {
        match croner::Cron::from_str(text) {
            Ok(cron) => match step_out_of_range(text) {
                Some(problem) => {
                    c.error_hint(
                        expr,
                        "spec.schedule",
                        format!("{text:?}: {problem}"),
                        "a step is at most the field's range: minute */1-*/59, hour */1-*/23, e.g. \"0 * * * *\" for hourly",
                    );
                    None
                }
                None if never_fires(&cron) => {
                    c.error_hint(
                        expr,
                        "spec.schedule",
                        format!("{text:?} never fires: no month has that day"),
                        "choose a day every chosen month has, e.g. \"0 0 28 2 *\" or \"0 0 L 2 *\" (the last day)",
                    );
                    None
                }
                None => Some(cron),
            },
            Err(e) => {
                c.error_hint(
                    expr,
                    "spec.schedule",
                    format!("{text:?} is not a valid cron expression: {e}"),
                    "standard crontab, e.g. \"*/30 * * * *\" or \"0 6 * * 1-5\" (Monday to Friday)",
                );
                None
            }
        }
    };
    let timezone = match tz {
        Some(tz) => c.timezone(tz, "spec.schedule_timezone"),
        None => Some(chrono_tz::Tz::UTC),
    };
    Some(Schedule {
        cron: cron?,
        expression: text.to_string(),
        timezone: timezone?,
    })
}

/// What to write instead of `@every DURATION`, for the durations crontab
/// can say.
fn every_hint(every: &str) -> String {
    let (number, unit) = every.split_at(
        every
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(every.len()),
    );
    let instead = match (number.parse::<u32>().ok(), unit) {
        (Some(n @ 1..=59), "m") => Some(format!("\"*/{n} * * * *\"")),
        (Some(n @ 1..=23), "h") => Some(format!("\"0 */{n} * * *\"")),
        (Some(24), "h") => Some("\"0 0 * * *\"".to_string()),
        _ => None,
    };
    match instead {
        Some(cron) => format!("write {cron} (minute hour day-of-month month day-of-week)"),
        None => "write minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\" for every 5 minutes".to_string(),
    }
}

/// A step larger than its field's range (`*/61` in minutes) fires once per
/// period, at the start: croner accepts it, a crontab reader expects
/// something else.
fn step_out_of_range(text: &str) -> Option<String> {
    const FIELDS: [(&str, u32); 5] = [
        ("minute", 59),
        ("hour", 23),
        ("day of month", 31),
        ("month", 12),
        ("day of week", 7),
    ];
    for (field, (name, max)) in text.split_whitespace().zip(FIELDS) {
        for part in field.split(',') {
            if let Some((_, step)) = part.split_once('/')
                && let Ok(step) = step.parse::<u32>()
                && step > max
            {
                return Some(format!(
                    "the {name} step /{step} is out of range (at most {max})"
                ));
            }
        }
    }
    None
}

/// True if the schedule has no next time (`0 0 31 2 *`: February has no
/// 31st). Looked for from a fixed leap year, so `0 0 29 2 *` (leap years
/// only) fires; croner gives up at its own year limit.
fn never_fires(cron: &croner::Cron) -> bool {
    use chrono::TimeZone;
    let start = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    cron.find_next_occurrence(&start, true).is_err()
}

fn compile_params(
    c: &mut Checker,
    spec: &IntegrationSpec,
    network: &NetworkDef,
    base_dir: &Path,
    secrets: Secrets<'_>,
) -> Option<BTreeMap<String, ParamValue>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, value) in &spec.params {
        let field = format!("spec.params.{name}");
        let Some(def) = network.params.get(name) else {
            let hint = did_you_mean(name, network.params.keys().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "network {} takes: {}",
                        network.name,
                        network
                            .params
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            c.error_hint(
                value,
                &field,
                format!("network {} has no param `{name}`", network.name),
                hint,
            );
            ok = false;
            continue;
        };
        match secrets.param(value, base_dir, def.secret) {
            Ok((param, referenced)) => {
                if def.secret && !referenced {
                    c.error_hint(value, &field, format!("`{name}` is a secret and is written in the manifest"), format!("write `${{env:NAME}}`, `${{file:PATH}}` or `${{credential:NAME}}` and keep the {name} out of git"));
                    ok = false;
                }
                out.insert(name.clone(), param);
            }
            Err(e) => {
                c.error(value, &field, e);
                ok = false;
            }
        }
    }
    for (name, def) in &network.params {
        if out.contains_key(name) || spec.params.contains_key(name) {
            continue;
        }
        match &def.default {
            Some(d) => {
                out.insert(name.clone(), ParamValue::new(d.clone(), def.secret));
            }
            None if def.required => {
                let hint = if def.secret {
                    format!("add `{name}: ${{env:NAME}}` under spec.params")
                } else {
                    format!("add `{name}: ...` under spec.params")
                };
                let what = def
                    .description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                c.error_hint(
                    &spec.network,
                    "spec.params",
                    format!("network {} needs param `{name}`{what}", network.name),
                    hint,
                );
                ok = false;
            }
            None => {
                out.insert(name.clone(), ParamValue::new(String::new(), def.secret));
            }
        }
    }
    ok.then_some(out)
}

/// Checks a `k=v&k2=v2` append and strips a leading `?` or `&`.
fn query_append(c: &mut Checker, at: &Located<String>, field: &str) -> Option<String> {
    let text = at.value().trim().trim_start_matches(['?', '&']);
    if text.is_empty() {
        return None;
    }
    for pair in text.split('&') {
        if !pair.contains('=') || pair.starts_with('=') {
            c.error_hint(
                at,
                field,
                format!("{pair:?} is not a name=value parameter"),
                "write parameters as name=value joined by &, e.g. sub1={click_id}&sub2={pub_id}",
            );
            return None;
        }
    }
    Some(text.to_string())
}

/// What a column left empty (`never`) would do, for the columns a campaign
/// cannot do without: what it would not store, and the consequence.
fn never_would(column: raw::Column) -> Option<(&'static str, &'static str)> {
    use raw::Column::*;
    let cannot_create = "a campaign cannot be created without one";
    Some(match column {
        Name => ("name", cannot_create),
        Status => ("status", cannot_create),
        Visibility => ("visibility", cannot_create),
        Redirect => ("redirect type", cannot_create),
        TrackingUrl => (
            "tracking link",
            "the campaign would have no link to send its traffic to",
        ),
        Revenue => (
            "revenue",
            "the campaign would not record what the advertiser pays",
        ),
        Payout => (
            "payout",
            "publishers would be offered no payout, and the per-publisher payouts would be dropped",
        ),
        Currency => (
            "currency",
            "payout and revenue would be amounts in no currency",
        ),
        Model => (
            "payout model",
            "the payout would not say what it pays for (CPA, CPI...)",
        ),
        Countries => (
            "countries",
            "an empty country list targets every country, and the blocked countries would be dropped too",
        ),
        Os => ("OS list", "an empty OS list targets every device"),
        Dates => (
            "start and end dates",
            "the campaign would run before its offer starts and after it ends",
        ),
        Settings => (
            "settings",
            "the time targeting would be dropped, so the campaign would take traffic at any hour",
        ),
        PreviewUrl | ImpressionUrl | ThumbnailUrl | Category | Description | Kpi | Payouts
        | Objective => return None,
    })
}

/// `never` leaves a column empty on create: refused where that would widen
/// or break a campaign.
fn check_update_policy(c: &mut Checker, update: &raw::UpdatePolicy) {
    let use_on_create = "use on_create to write it only when the campaign is created";
    for (column, policy) in &update.columns {
        if *policy.value() != raw::ColumnPolicy::Never {
            continue;
        }
        if let Some((what, consequence)) = never_would(*column) {
            c.error_hint(
                policy,
                &format!("spec.update.columns.{}", column.name()),
                format!("`{}` cannot be `never`", column.name()),
                format!("`never` would store no {what} — {consequence}; {use_on_create}"),
            );
        }
    }
    if *update.default.value() != raw::ColumnPolicy::Never {
        return;
    }
    let unlisted: Vec<raw::Column> = raw::Column::ALL
        .into_iter()
        .filter(|column| !update.columns.contains_key(column))
        .filter(|column| never_would(*column).is_some())
        .collect();
    if unlisted.is_empty() {
        return;
    }
    let names: Vec<&str> = unlisted.iter().map(|column| column.name()).collect();
    let whats: Vec<&str> = unlisted
        .iter()
        .filter_map(|column| never_would(*column))
        .map(|(what, _)| what)
        .collect();
    let example = if unlisted.contains(&raw::Column::Countries) {
        " (an empty country list targets every country)"
    } else {
        ""
    };
    c.error_hint(
        &update.default,
        "spec.update.default",
        format!(
            "`never` as the default would leave {} empty, which they cannot be",
            names.join(", ")
        ),
        format!(
            "`never` would store no {} — a campaign cannot do without them{example}; use on_create as the default to write them only when the campaign is created, or give these columns their own policy under `columns`",
            whats.join(", ")
        ),
    );
}

fn compile_payout(c: &mut Checker, p: &raw::PayoutRules) -> Option<PayoutDef> {
    let mut ok = true;
    let mut ratio = |c: &mut Checker, at: &Located<Decimal>, field: &str| -> Decimal {
        let r = *at.value();
        if r <= Decimal::ZERO {
            c.error(at, field, format!("ratio {r} must be greater than 0"));
            ok = false;
        } else if r > Decimal::ONE {
            c.warn(
                at,
                field,
                format!("ratio {r} pays publishers more than the advertiser pays"),
            );
        }
        r
    };
    let main = ratio(c, &p.ratio, "spec.payout.ratio");
    let tiers = p
        .tiers
        .iter()
        .map(|(name, r)| {
            (
                name.clone(),
                ratio(c, r, &format!("spec.payout.tiers.{name}")),
            )
        })
        .collect();
    let mut publishers = BTreeMap::new();
    for (name, amount) in &p.publishers {
        if amount.value().is_sign_negative() {
            c.error(
                amount,
                &format!("spec.payout.publishers.{name}"),
                "a payout cannot be negative",
            );
            ok = false;
        }
        publishers.insert(name.clone(), *amount.value());
    }
    if p.decimals > 8 {
        c.error(
            &p.ratio,
            "spec.payout.decimals",
            format!("{} decimal places is more than 8", p.decimals),
        );
        ok = false;
    }
    ok.then_some(PayoutDef {
        ratio: main,
        tiers,
        publishers,
        decimals: p.decimals,
        rounding: p.rounding,
    })
}

fn compile_filters(c: &mut Checker, f: &raw::Filters) -> Option<FiltersDef> {
    let before = c.diagnostics.len();
    let allow = f
        .countries
        .allow
        .iter()
        .enumerate()
        .filter_map(|(i, cc)| c.country(cc, &format!("spec.filters.countries.allow[{i}]")))
        .collect();
    let block = f
        .countries
        .block
        .iter()
        .enumerate()
        .filter_map(|(i, cc)| c.country(cc, &format!("spec.filters.countries.block[{i}]")))
        .collect();
    let mut geo = Vec::new();
    for (i, g) in f.geo.iter().enumerate() {
        let field = format!("spec.filters.geo[{i}]");
        if let (Some(min), Some(max)) = (g.min, g.max)
            && min > max
        {
            c.error(&g.country, &field, format!("min {min} is above max {max}"));
        }
        if let Some(country) = c.country(&g.country, &format!("{field}.country")) {
            geo.push(GeoDef {
                country,
                min: g.min,
                max: g.max,
            });
        }
    }
    if let (Some(min), Some(max)) = (f.payout.min, f.payout.max)
        && min > max
    {
        let at = f.geo.first().map(|g| &g.country);
        match at {
            Some(at) => c.error(
                at,
                "spec.filters.payout",
                format!("min {min} is above max {max}"),
            ),
            None => c.diagnostics.push(c.source.error_at(
                0,
                0,
                "spec.filters.payout",
                format!("min {min} is above max {max}"),
            )),
        }
    }
    (c.diagnostics.len() == before).then(|| FiltersDef {
        allow_countries: allow,
        block_countries: block,
        country_mode: f.countries.mode,
        require_preview_url: f.require_preview_url,
        models: f.models.clone(),
        payout_min: f.payout.min,
        payout_max: f.payout.max,
        percent_min: f.payout_percent.min,
        percent_max: f.payout_percent.max,
        os: f.os,
        geo,
        offers: f
            .offers
            .iter()
            .map(|s| s.trim().to_string())
            .collect::<BTreeSet<_>>(),
        statuses: f.status.clone(),
    })
}

fn compile_settings(c: &mut Checker, s: &raw::Settings) -> Option<SettingsDef> {
    let time_targeting = match &s.time_targeting {
        None => None,
        Some(t) => {
            let tz = c.timezone(&t.timezone, "spec.settings.time_targeting.timezone");
            let mut time = |at: &Located<String>, field: &str| match NaiveTime::parse_from_str(
                at.value().trim(),
                "%H:%M",
            ) {
                Ok(v) => Some(v),
                Err(_) => {
                    c.error_hint(
                        at,
                        field,
                        format!("{:?} is not a time of day", at.value()),
                        "write HH:MM, e.g. 09:00",
                    );
                    None
                }
            };
            let from = time(&t.from, "spec.settings.time_targeting.from");
            let to = time(&t.to, "spec.settings.time_targeting.to");
            Some(TimeTargetingDef {
                timezone: tz?,
                days: t.days.clone(),
                from: from?,
                to: to?,
            })
        }
    };
    Some(SettingsDef {
        time_targeting,
        multi_conversion: s.multi_conversion,
        allow_impressions: s.allow_impressions,
        spillover: s.spillover,
    })
}

fn compile_caps(c: &mut Checker, caps: &raw::CapSettings) -> Option<CapsDef> {
    let timezone = match &caps.timezone {
        Some(tz) => c.timezone(tz, "spec.caps.timezone"),
        None => Some(chrono_tz::Tz::UTC),
    };
    let mut rules = |list: &[raw::CapRule], field: &str| -> Vec<Cap> {
        list.iter()
            .enumerate()
            .filter_map(|(i, r)| {
                if *r.value.value() <= Decimal::ZERO {
                    c.error(
                        &r.value,
                        &format!("{field}[{i}].value"),
                        "a cap must be greater than 0",
                    );
                    return None;
                }
                let timezone = match &r.timezone {
                    Some(tz) => Some(
                        c.timezone(tz, &format!("{field}[{i}].timezone"))?
                            .name()
                            .to_string(),
                    ),
                    None => None,
                };
                Some(Cap {
                    event: r.event,
                    period: r.period,
                    value: *r.value.value(),
                    timezone,
                    over_delivery: r.over_delivery.map(|o| match o {
                        raw::OverDelivery::Pause => "pause".to_string(),
                        raw::OverDelivery::Continue => "continue".to_string(),
                    }),
                })
            })
            .collect()
    };
    let additional = rules(&caps.additional, "spec.caps.additional");
    let on_import = rules(&caps.on_import, "spec.caps.on_import");
    Some(CapsDef {
        update: caps.update,
        cap_type: caps.cap_type,
        visibility: caps.visibility,
        timezone: timezone?,
        over_delivery: caps.over_delivery,
        additional,
        on_import,
    })
}
