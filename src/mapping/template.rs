//! Text with `{{ ... }}` placeholders: request URLs, headers, bodies and
//! field templates.
//!
//! A placeholder is a reference (`params.NAME`, a record path `$.a`, or in a
//! request `record.$.a`), a quoted literal, the time a request is made
//! (`now.unix`, `now.unix_ms`, `now.format('%Y-%m-%d')`, requests only), or a
//! function of such arguments, which are joined before the function applies:
//! `{{ sha1(now.unix, params.api_key) }}`. The functions are the ones APIs
//! sign requests with (md5, sha1, sha256, hmac_sha256 in hex or base64),
//! base64, url-encoding and case. Rendering is pure: the caller passes the
//! time, so tests fix it.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::convert::text_of;
use super::path::JsonPath;
use super::program::{CompileError, TemplateScope, did_you_mean};

/// Text with `{{ ... }}` placeholders, compiled.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Path(JsonPath),
    Param(String),
    Now(NowForm),
    Call(Function, Vec<Part>),
}

/// How the time of a request is written.
#[derive(Debug, Clone)]
enum NowForm {
    UnixSeconds,
    UnixMillis,
    /// A strftime pattern (checked when compiled), in UTC.
    Format(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Md5,
    Sha1,
    Sha256,
    /// HMAC-SHA256 keyed by the first argument over the rest, in hex.
    HmacSha256,
    /// The same, in base64.
    HmacSha256Base64,
    Base64,
    UrlEncode,
    Upper,
    Lower,
}

impl Function {
    const ALL: [(&'static str, Function); 9] = [
        ("md5", Function::Md5),
        ("sha1", Function::Sha1),
        ("sha256", Function::Sha256),
        ("hmac_sha256", Function::HmacSha256),
        ("hmac_sha256_base64", Function::HmacSha256Base64),
        ("base64", Function::Base64),
        ("urlencode", Function::UrlEncode),
        ("upper", Function::Upper),
        ("lower", Function::Lower),
    ];

    fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn min_args(self) -> usize {
        match self {
            Function::HmacSha256 | Function::HmacSha256Base64 => 2,
            _ => 1,
        }
    }

    fn apply(self, args: &[String]) -> String {
        use hmac::Mac;
        use sha2::Digest;
        let joined = || args.concat();
        match self {
            Function::Md5 => hex(&md5::Md5::digest(joined().as_bytes())),
            Function::Sha1 => hex(&sha1::Sha1::digest(joined().as_bytes())),
            Function::Sha256 => hex(&sha2::Sha256::digest(joined().as_bytes())),
            Function::HmacSha256 | Function::HmacSha256Base64 => {
                let (key, message) = args.split_first().expect("two arguments, checked");
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(message.concat().as_bytes());
                let tag = mac.finalize().into_bytes();
                if self == Function::HmacSha256 {
                    hex(&tag)
                } else {
                    base64::engine::general_purpose::STANDARD.encode(tag)
                }
            }
            Function::Base64 => base64::engine::general_purpose::STANDARD.encode(joined()),
            Function::UrlEncode => {
                url::form_urlencoded::byte_serialize(joined().as_bytes()).collect()
            }
            Function::Upper => joined().to_uppercase(),
            Function::Lower => joined().to_lowercase(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

impl Template {
    pub fn compile(source: &str, scope: TemplateScope<'_>) -> Result<Self, CompileError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                CompileError::new("", format!("unclosed `{{{{` in template {source:?}"))
            })?;
            let expr = after[..close].trim();
            parts.push(expression(expr, scope)?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// Whether the template reads any param.
    pub fn uses_params(&self) -> bool {
        fn reads_param(part: &Part) -> bool {
            match part {
                Part::Param(_) => true,
                Part::Call(_, args) => args.iter().any(reads_param),
                _ => false,
            }
        }
        self.parts.iter().any(reads_param)
    }

    /// The record paths the template reads, function arguments included.
    pub fn paths(&self) -> Vec<&JsonPath> {
        fn collect<'t>(part: &'t Part, out: &mut Vec<&'t JsonPath>) {
            match part {
                Part::Path(p) => out.push(p),
                Part::Call(_, args) => args.iter().for_each(|a| collect(a, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        self.parts.iter().for_each(|p| collect(p, &mut out));
        out
    }

    /// The record's own value when the template is one record placeholder
    /// and nothing else (`{{ record.$.campaign_id }}`) and that value is a
    /// number or a boolean: a JSON body sends it as such, not as text, as
    /// an API that reads `campaign_id` as a number expects. Anything else
    /// (text around it, a function, a param, a string value) is `None`:
    /// the rendered text is sent.
    pub fn whole_value<'r>(&self, record: Option<&'r Value>) -> Option<&'r Value> {
        match self.parts.as_slice() {
            [Part::Path(path)] => record
                .and_then(|r| path.first(r))
                .filter(|v| v.is_number() || v.is_boolean()),
            _ => None,
        }
    }

    /// How many pieces of text and placeholders the template has.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Fills the template. A record placeholder that finds nothing becomes
    /// empty text; so does the time, which only [`Template::render_at`] knows.
    pub fn render(
        &self,
        record: Option<&Value>,
        params: &dyn Fn(&str) -> Option<String>,
    ) -> String {
        self.fill(record, params, None)
    }

    /// Fills the template of a request made at `now`.
    pub fn render_at(
        &self,
        record: Option<&Value>,
        params: &dyn Fn(&str) -> Option<String>,
        now: DateTime<Utc>,
    ) -> String {
        self.fill(record, params, Some(now))
    }

    fn fill(
        &self,
        record: Option<&Value>,
        params: &dyn Fn(&str) -> Option<String>,
        now: Option<DateTime<Utc>>,
    ) -> String {
        let mut out = String::new();
        for part in &self.parts {
            fill_part(part, record, params, now, &mut out);
        }
        out
    }
}

fn fill_part(
    part: &Part,
    record: Option<&Value>,
    params: &dyn Fn(&str) -> Option<String>,
    now: Option<DateTime<Utc>>,
    out: &mut String,
) {
    match part {
        Part::Text(t) => out.push_str(t),
        Part::Param(name) => out.push_str(&params(name).unwrap_or_default()),
        Part::Path(path) => {
            if let Some(text) = record.and_then(|r| path.first(r)).and_then(text_of) {
                out.push_str(&text);
            }
        }
        Part::Now(form) => {
            if let Some(now) = now {
                match form {
                    NowForm::UnixSeconds => out.push_str(&now.timestamp().to_string()),
                    NowForm::UnixMillis => out.push_str(&now.timestamp_millis().to_string()),
                    NowForm::Format(pattern) => out.push_str(&now.format(pattern).to_string()),
                }
            }
        }
        Part::Call(function, args) => {
            let args: Vec<String> = args
                .iter()
                .map(|arg| {
                    let mut text = String::new();
                    fill_part(arg, record, params, now, &mut text);
                    text
                })
                .collect();
            out.push_str(&function.apply(&args));
        }
    }
}

/// One placeholder's expression: a function call, a literal or a reference.
fn expression(expr: &str, scope: TemplateScope<'_>) -> Result<Part, CompileError> {
    if let Some(literal) = quoted(expr) {
        return Ok(Part::Text(literal.to_string()));
    }
    if let Some(rest) = expr.strip_prefix("now.") {
        return now(expr, rest, scope);
    }
    if let Some((name, args)) = call(expr) {
        let Some(function) = Function::named(name) else {
            let names = Function::ALL.iter().map(|(n, _)| *n);
            let hint = did_you_mean(name, names.clone())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    format!("the functions are {}", names.collect::<Vec<_>>().join(", "))
                });
            return Err(CompileError::new(
                "",
                format!("unknown function `{name}` in `{{{{ {expr} }}}}`; {hint}"),
            ));
        };
        let args = split_args(args)
            .into_iter()
            .map(|arg| expression(arg, scope))
            .collect::<Result<Vec<_>, _>>()?;
        if args.len() < function.min_args() {
            return Err(CompileError::new(
                "",
                format!(
                    "`{name}` takes at least {} arguments (the key, then what it signs), in `{{{{ {expr} }}}}`",
                    function.min_args()
                ),
            ));
        }
        return Ok(Part::Call(function, args));
    }
    reference(expr, scope)
}

/// `now.unix`, `now.unix_ms`, `now.format('…')`: only where a request is made.
fn now(expr: &str, form: &str, scope: TemplateScope<'_>) -> Result<Part, CompileError> {
    if !matches!(
        scope,
        TemplateScope::Params(_) | TemplateScope::ParamsAndRecord(_)
    ) {
        return Err(CompileError::new(
            "",
            format!(
                "`{{{{ {expr} }}}}` is the time a request is made, which only a request (URL, query, header, body) may use: an offer's field built from the time would change at every run"
            ),
        ));
    }
    let form = match form {
        "unix" => NowForm::UnixSeconds,
        "unix_ms" => NowForm::UnixMillis,
        _ => {
            let pattern = call(form)
                .filter(|(name, _)| *name == "format")
                .and_then(|(_, arg)| quoted(arg.trim()))
                .ok_or_else(|| {
                    CompileError::new(
                        "",
                        format!(
                            "unknown `{{{{ {expr} }}}}`; the time is `now.unix`, `now.unix_ms` or `now.format('%Y-%m-%dT%H:%M:%SZ')`"
                        ),
                    )
                })?;
            let valid = chrono::format::StrftimeItems::new(pattern)
                .all(|item| !matches!(item, chrono::format::Item::Error));
            if !valid {
                return Err(CompileError::new(
                    "",
                    format!(
                        "`{pattern}` in `{{{{ {expr} }}}}` is not a strftime pattern (e.g. '%Y-%m-%d %H:%M:%S')"
                    ),
                ));
            }
            NowForm::Format(pattern.to_string())
        }
    };
    Ok(Part::Now(form))
}

/// `'text'` or `"text"`: the text.
fn quoted(expr: &str) -> Option<&str> {
    ['\'', '"'].into_iter().find_map(|q| {
        expr.strip_prefix(q)?
            .strip_suffix(q)
            .filter(|inner| !inner.contains(q))
    })
}

/// `name(args)`: the name and the text between the parentheses.
fn call(expr: &str) -> Option<(&str, &str)> {
    let open = expr.find('(')?;
    let name = &expr[..open];
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let args = expr[open + 1..].strip_suffix(')')?;
    is_name.then_some((name, args))
}

/// Splits arguments at the commas outside quotes, brackets and parentheses
/// (a path argument may hold any of them).
fn split_args(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    for (i, c) in args.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = args[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last);
    }
    out
}

fn reference(expr: &str, scope: TemplateScope<'_>) -> Result<Part, CompileError> {
    let (allowed_params, record_prefix) = match scope {
        TemplateScope::Record => (None, Some("")),
        TemplateScope::Params(p) => (Some(p), None),
        TemplateScope::ParamsAndRecord(p) => (Some(p), Some("record.")),
        TemplateScope::Field(env) => (Some(env.params), Some("")),
    };
    if let (TemplateScope::Field(env), Some(name)) = (scope, expr.strip_prefix("params."))
        && env.secret_params.contains(&name)
    {
        return Err(CompileError::new(
            "",
            format!(
                "`{{{{ {expr} }}}}` is a secret param: a field's value is stored in the campaign table and shown, so a secret cannot be part of it"
            ),
        ));
    }
    if let (Some(names), Some(name)) = (allowed_params, expr.strip_prefix("params.")) {
        if names.contains(&name) {
            return Ok(Part::Param(name.to_string()));
        }
        let hint = did_you_mean(name, names.iter().copied())
            .map(|s| format!("; did you mean `params.{s}`?"))
            .unwrap_or_else(|| {
                format!(
                    "; declare it under `spec.params` (declared: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            });
        return Err(CompileError::new(
            "",
            format!("template uses `{{{{ {expr} }}}}` but the network has no param `{name}`{hint}"),
        ));
    }
    if let Some(prefix) = record_prefix
        && let Some(path) = expr.strip_prefix(prefix)
        && path.starts_with('$')
    {
        let path = JsonPath::parse(path).map_err(|e| CompileError::new("", e.to_string()))?;
        return Ok(Part::Path(path));
    }
    let expected = match scope {
        TemplateScope::Record => "`{{ $.path }}`",
        TemplateScope::Field(_) => "`{{ $.path }}` or `{{ params.NAME }}`",
        TemplateScope::Params(_) => "`{{ params.NAME }}`, `{{ now.unix }}` or a function",
        TemplateScope::ParamsAndRecord(_) => {
            "`{{ params.NAME }}`, `{{ record.$.path }}`, `{{ now.unix }}` or a function"
        }
    };
    Err(CompileError::new(
        "",
        format!("unknown placeholder `{{{{ {expr} }}}}`; expected {expected}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAMES: [&str; 3] = ["api_key", "secret", "pubid"];

    fn params(name: &str) -> Option<String> {
        match name {
            "api_key" => Some("KEY123".into()),
            "secret" => Some("s3cr3t".into()),
            "pubid" => Some("42".into()),
            _ => None,
        }
    }

    /// 2026-01-01T00:00:00.250Z: a fixed clock.
    fn fixed_now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_767_225_600_250).unwrap()
    }

    fn render(source: &str) -> String {
        Template::compile(source, TemplateScope::Params(&NAMES))
            .unwrap()
            .render_at(None, &params, fixed_now())
    }

    #[test]
    fn the_time_of_a_request_in_each_form() {
        assert_eq!(render("t={{ now.unix }}"), "t=1767225600");
        assert_eq!(render("{{now.unix_ms}}"), "1767225600250");
        assert_eq!(
            render("{{ now.format('%Y-%m-%dT%H:%M:%SZ') }}"),
            "2026-01-01T00:00:00Z"
        );
    }

    // Expected digests computed outside offersync, e.g.
    // `printf 1767225600KEY123 | sha1sum` and `openssl dgst -sha256 -hmac s3cr3t`.
    #[test]
    fn signatures_join_their_arguments_and_match_the_reference_tools() {
        assert_eq!(
            render("{{ sha1(now.unix, params.api_key) }}"),
            "88055f231d090824c8e14ee4a7029593b1b0f9f9"
        );
        assert_eq!(
            render("{{ md5(params.pubid, ':', params.api_key) }}"),
            "4798e598e618f11935b9ca3efa96f244"
        );
        assert_eq!(
            render("{{ sha256('a,b') }}"),
            "1eb7c54d52831bbfe8942af0b1c56b7409523a59ed6ca99c1174fef7eb32c1b5"
        );
        assert_eq!(
            render("{{ hmac_sha256(params.secret, 'GET', now.unix) }}"),
            "91ed27a96bd6c2236c96395924e88debffbfca92107b9b3fc0990328de4c1ae1"
        );
        assert_eq!(
            render("{{ hmac_sha256_base64(params.secret, 'GET', now.unix) }}"),
            "ke0nqWvWwiNsljlZJOiN6/+/ypIQe5s/wJkDKN5MGuE="
        );
    }

    #[test]
    fn encodings_and_case_nest() {
        assert_eq!(
            render("{{ urlencode('a b&c=d/é') }}"),
            "a+b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(
            render("{{ base64(params.api_key, ':', params.secret) }}"),
            "S0VZMTIzOnMzY3IzdA=="
        );
        assert_eq!(
            render("{{ upper(md5('x')) }}"),
            "9DD4E461268C8034F5C8564E155C67A6"
        );
        assert_eq!(render("{{ lower('AbC') }}"), "abc");
    }

    #[test]
    fn record_paths_may_be_arguments() {
        let t = Template::compile(
            "{{ sha1(record.$.ids[0], params.api_key) }}",
            TemplateScope::ParamsAndRecord(&NAMES),
        )
        .unwrap();
        let record = json!({"ids": ["7", "8"]});
        assert_eq!(
            t.render_at(Some(&record), &params, fixed_now()),
            render("{{ sha1('7KEY123') }}")
        );
    }

    #[test]
    fn mistakes_are_named_with_what_to_write() {
        let err = |source: &str, scope| Template::compile(source, scope).unwrap_err().message;
        let params_scope = TemplateScope::Params(&NAMES);
        assert!(err("{{ sha11(params.api_key) }}", params_scope).contains("did you mean `sha1`"));
        assert!(err("{{ hmac_sha256(params.secret) }}", params_scope).contains("at least 2"));
        assert!(err("{{ now.week }}", params_scope).contains("now.unix"));
        assert!(err("{{ now.format('%Q') }}", params_scope).contains("strftime"));
        assert!(
            err("{{ sha1(params.api_kye) }}", params_scope)
                .contains("did you mean `params.api_key`")
        );
        // An offer field built from the time would never converge.
        let field = TemplateScope::Field(super::super::program::FieldEnv::new(&NAMES, &[]));
        assert!(err("{{ now.unix }}", field).contains("only a request"));
        // Hashes of the record are fine in a field: they do not change.
        assert!(Template::compile("{{ md5($.id) }}", field).is_ok());
    }

    #[test]
    fn plain_templates_render_as_before() {
        let t = Template::compile("{{ $.a }}-{{$.b}}", TemplateScope::Record).unwrap();
        assert_eq!(t.render(Some(&json!({"a": 1, "b": "x"})), &|_| None), "1-x");
        assert!(!t.uses_params());
        let t =
            Template::compile("{{ sha1(params.api_key) }}", TemplateScope::Params(&NAMES)).unwrap();
        assert!(t.uses_params());
    }
}
