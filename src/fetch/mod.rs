//! Talking to a network's API.
//!
//! This module owns HTTP: building requests from a Network's templates,
//! authentication (OAuth2 and login tokens cached until they expire, and
//! renewed once on a 401), retries with
//! backoff, the response size limit, pagination ([`Pager`]) and the
//! redaction of secrets from anything it reports. It returns response
//! bodies; it does not map them (mapping) or decide anything about offers.

mod guard;
mod pager;
mod rate;
mod redact;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method as HttpMethod, StatusCode};
use tokio::sync::Mutex;
use url::Url;

pub use guard::{GuardedResolver, RestrictedAddress, check_literal_host};
pub use pager::Pager;
pub use redact::{Redactor, escape_controls, escape_controls_json, escape_controls_keep_lines};

use crate::manifest::model::{AuthDef, BodyDef, IntegrationDef, LimitsDef, Method, TokenPlace};
use crate::mapping::path::JsonPath;
use crate::mapping::program::Template;

/// Why a fetch failed. URLs in it are redacted.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: HTTP {status} {reason}{detail}")]
    Status {
        url: String,
        status: u16,
        reason: String,
        detail: String,
    },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error(
        "{url}: the response is larger than {limit} bytes; raise the network's limits.max_response_bytes if that is expected"
    )]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: only http and https URLs are fetched")]
    Scheme { url: String },
    #[error("{url:?} is not a valid URL: {message}")]
    BadUrl { url: String, message: String },
    #[error(
        "{url}: asked to wait {seconds} s (Retry-After), more than limits.max_retry_after_seconds"
    )]
    RetryAfterTooLong { url: String, seconds: u64 },
    #[error("pagination loop: {0}")]
    Loop(String),
    #[error(
        "more than {0} pages; stopped (raise the network's limits.max_pages if the feed is really that long)"
    )]
    TooManyPages(u64),
    #[error("OAuth2 token request to {url} failed: {message}")]
    OAuth { url: String, message: String },
    #[error("login to {url} failed: {message}")]
    Login { url: String, message: String },
    #[error(
        "{url}: HTTP 401 Unauthorized again with a new token{detail}; the network refuses the token it just issued: check the credentials and where the Network sends the token (spec.auth)"
    )]
    Unauthorized { url: String, detail: String },
    #[error("{url}: redirected to {to}: {reason}")]
    Redirect {
        url: String,
        to: String,
        reason: String,
    },
    #[error("{url}: {address}")]
    Restricted {
        url: String,
        address: RestrictedAddress,
    },
    #[error("{0}")]
    ShortFeed(String),
    /// The host name does not resolve: not retried within the run (a 503
    /// is), see [`guard::Unresolved`].
    #[error("{url}: {unresolved}; check the host in the Network's base_url and this machine's DNS")]
    Unresolved {
        url: String,
        unresolved: guard::Unresolved,
    },
}

/// Redirects followed for one request, at most (as browsers and curl allow).
const MAX_REDIRECTS: u32 = 10;
/// Of a response that failed, this much is read (decoded) for the message;
/// the rest is never downloaded.
const ERROR_BODY_BYTES: usize = 16 * 1024;
/// The longest excerpt of an error body kept for the run log, in characters.
const EXCERPT_CHARS: usize = 200;
/// An OAuth2 token response larger than this is refused. Fixed, apart from
/// `limits.max_response_bytes` (which sizes offer pages): a token travels in
/// a header of every request, and token endpoints answer in a few KB, so a
/// larger answer is the wrong endpoint or a hostile one, never a setting.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1024 * 1024;

/// A request ready to send (auth is added when it is sent).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

/// A successful response: its body and its headers.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub headers: HeaderMap,
}

/// What a request sends in its body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Text as the Network wrote it, sent as `application/json`.
    Raw(String),
    /// Form fields, sent `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
    /// A JSON object.
    Json(serde_json::Map<String, serde_json::Value>),
}

impl Body {
    /// Fills a Network's body for one request.
    pub fn render(def: &BodyDef, render: impl Fn(&Template) -> String) -> Self {
        Self::render_for(def, render, None)
    }

    /// Fills the body of a per-offer request: a JSON member that is one
    /// record placeholder keeps the record value's type when it is a number
    /// or a boolean ([`Template::whole_value`]).
    pub fn render_for(
        def: &BodyDef,
        render: impl Fn(&Template) -> String,
        record: Option<&serde_json::Value>,
    ) -> Self {
        let fields = |fields: &[(String, Template)]| {
            fields
                .iter()
                .map(|(name, value)| (name.clone(), render(value)))
                .collect::<Vec<_>>()
        };
        match def {
            BodyDef::Raw(text) => Body::Raw(render(text)),
            BodyDef::Form(form) => Body::Form(fields(form)),
            BodyDef::Json(json) => Body::Json(
                json.iter()
                    .map(|(name, template)| {
                        let value = match template.whole_value(record) {
                            Some(typed) => typed.clone(),
                            None => serde_json::Value::String(render(template)),
                        };
                        (name.clone(), value)
                    })
                    .collect(),
            ),
        }
    }

    /// Sets a pagination parameter in a form or JSON body (a page number or
    /// an offset as a JSON number); `false` for a raw body, which has no
    /// fields (the parameter then goes in the URL).
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        match self {
            Body::Raw(_) => false,
            Body::Form(fields) => {
                fields.retain(|(n, _)| n != name);
                fields.push((name.to_string(), value.to_string()));
                true
            }
            Body::Json(object) => {
                let value = match value.parse::<u64>() {
                    Ok(n) => serde_json::Value::from(n),
                    Err(_) => serde_json::Value::String(value.to_string()),
                };
                object.insert(name.to_string(), value);
                true
            }
        }
    }

    /// The bytes to send and their content type.
    fn encode(&self) -> (String, &'static str) {
        match self {
            Body::Raw(text) => (text.clone(), "application/json"),
            Body::Form(fields) => (
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
                "application/x-www-form-urlencoded",
            ),
            Body::Json(object) => (
                serde_json::Value::Object(object.clone()).to_string(),
                "application/json",
            ),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// An HTTP client for one integration: its auth, limits and secrets.
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    auth: ResolvedAuth,
    limits: LimitsDef,
    redactor: Redactor,
    token: Mutex<Option<Token>>,
    redirect_hosts: Vec<String>,
    allow_link_local: bool,
    /// The network's request rate, shared with every run of the network.
    rate: Option<Arc<rate::RateLimiter>>,
}

#[derive(Debug)]
enum ResolvedAuth {
    None,
    Query(String, String),
    Header(HeaderName, HeaderValue),
    Basic(String, String),
    Bearer(String),
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        client_auth: crate::manifest::raw::ClientAuth,
    },
    Login(Box<ResolvedLogin>),
}

/// A login request with the integration's params filled in.
#[derive(Debug)]
struct ResolvedLogin {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Body>,
    token: JsonPath,
    expires_in: Option<JsonPath>,
    lifetime_seconds: Option<u64>,
    send: TokenPlace,
    /// Where its token is kept across runs: a hash of the integration, the
    /// login request and its credentials (a change of key logs in anew).
    cache_key: u64,
}

/// Login tokens across the runs of the process (the daemon makes a Fetcher
/// per run), by [`ResolvedLogin::cache_key`].
static LOGIN_TOKENS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<u64, Token>>> =
    std::sync::LazyLock::new(Default::default);

/// Fills a template with the integration's params (no record), for a
/// request made at `now` (one time per request, so that a signature and the
/// timestamp it signs agree).
pub fn render(
    template: &Template,
    def: &IntegrationDef,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    template.render_at(
        None,
        &|name| def.params.get(name).map(|p| p.expose().to_string()),
        now,
    )
}

/// The time a request is made, as `{{ now.unix }}` and the other `now`
/// placeholders of a Network read it. `OFFERSYNC_FIXED_NOW` (RFC 3339)
/// fixes it, so that a signed request can be reproduced exactly (in tests,
/// or to compare with a network's own example).
pub fn request_time() -> chrono::DateTime<chrono::Utc> {
    static FIXED: std::sync::LazyLock<Option<chrono::DateTime<chrono::Utc>>> =
        std::sync::LazyLock::new(|| {
            let text = std::env::var("OFFERSYNC_FIXED_NOW").ok()?;
            match chrono::DateTime::parse_from_rfc3339(text.trim()) {
                Ok(at) => Some(at.to_utc()),
                Err(e) => {
                    tracing::warn!(value = %text, error = %e, "OFFERSYNC_FIXED_NOW is not an RFC 3339 time; using the clock");
                    None
                }
            }
        });
    FIXED.unwrap_or_else(chrono::Utc::now)
}

/// Parses a URL and refuses every scheme but http and https.
pub fn checked_url(text: &str, redactor: &Redactor) -> Result<Url, FetchError> {
    let url = Url::parse(text.trim()).map_err(|e| FetchError::BadUrl {
        url: redactor.redact(text),
        message: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(FetchError::Scheme {
            url: redactor.redact(text),
        }),
    }
}

fn install_crypto_provider() {
    // Several clients may race to install it; the first one wins, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Fetcher {
    pub fn new(def: &IntegrationDef) -> Result<Self, FetchError> {
        install_crypto_provider();
        let network = &def.network;
        let redactor = Redactor::new(def.secrets());
        let now = request_time();
        let r = |t: &Template| render(t, def, now);
        let auth = match &network.auth {
            AuthDef::None => ResolvedAuth::None,
            AuthDef::Query { param, value } => ResolvedAuth::Query(param.clone(), r(value)),
            AuthDef::Header { name, value } => {
                let bad = |message: String| FetchError::BadUrl {
                    url: format!("header {name}"),
                    message,
                };
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
                let mut value = HeaderValue::from_str(&r(value))
                    .map_err(|_| bad("the value is not a valid header value".into()))?;
                value.set_sensitive(true);
                ResolvedAuth::Header(name, value)
            }
            AuthDef::Basic { username, password } => ResolvedAuth::Basic(r(username), r(password)),
            AuthDef::Bearer { token } => ResolvedAuth::Bearer(r(token)),
            AuthDef::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
                client_auth,
            } => ResolvedAuth::OAuth2 {
                token_url: r(token_url),
                client_id: r(client_id),
                client_secret: r(client_secret),
                scope: scope.clone(),
                client_auth: *client_auth,
            },
            AuthDef::Login(login) => {
                let url = r(&login.url);
                let headers: Vec<(String, String)> = login
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), r(value)))
                    .collect();
                let body = login.body.as_ref().map(|body| Body::render(body, r));
                let cache_key = {
                    use std::hash::{Hash, Hasher};
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    def.name.hash(&mut hasher);
                    url.hash(&mut hasher);
                    headers.hash(&mut hasher);
                    body.as_ref().map(|b| b.encode()).hash(&mut hasher);
                    hasher.finish()
                };
                ResolvedAuth::Login(Box::new(ResolvedLogin {
                    method: login.method,
                    url,
                    headers,
                    body,
                    token: login.token.clone(),
                    expires_in: login.expires_in.clone(),
                    lifetime_seconds: login.lifetime_seconds,
                    send: login.send.clone(),
                    cache_key,
                }))
            }
        };
        let timeout = Duration::from_secs(network.limits.timeout_seconds);
        let allow_link_local = def.safety.allow_link_local_addresses;
        // Redirects are followed by hand (`attempt`), so that credentials
        // never go to another origin; no Referer ever carries a URL (and
        // with query auth, the key) anywhere.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("offersync/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .timeout(timeout);
        if !allow_link_local {
            builder = builder.dns_resolver(Arc::new(guard::GuardedResolver));
        }
        let client = builder.build().map_err(|e| FetchError::Transport {
            url: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self {
            client,
            auth,
            limits: network.limits,
            redactor,
            token: Mutex::new(None),
            redirect_hosts: network.redirect_hosts.clone(),
            allow_link_local,
            rate: network
                .rate_limit
                .map(|limit| rate::RateLimiter::shared(&network.name, limit)),
        })
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Sends a request, retrying what is worth retrying, and returns the body.
    /// The request as it is sent, for a person to read (the studio's live
    /// read): method and URL with a query key added, then each header, auth
    /// included, one per line; every secret replaced by `[redacted]`
    /// (the values auth adds, and whatever the redactor knows).
    pub fn describe(&self, request: &Request) -> String {
        use redact::MASK;
        let url = &request.url;
        // Appended as text: the URL would percent-encode the mask.
        let with = |param: &str| {
            let sep = if url.query().is_some() { '&' } else { '?' };
            format!("{url}{sep}{param}={MASK}")
        };
        let mut shown_url = url.to_string();
        let mut lines = Vec::new();
        match &self.auth {
            ResolvedAuth::Query(param, _) => shown_url = with(param),
            ResolvedAuth::Header(name, _) => lines.push(format!("{name}: {MASK}")),
            ResolvedAuth::Basic(..) => lines.push(format!("Authorization: Basic {MASK}")),
            ResolvedAuth::Bearer(_) | ResolvedAuth::OAuth2 { .. } => {
                lines.push(format!("Authorization: Bearer {MASK}"))
            }
            ResolvedAuth::Login(login) => match &login.send {
                TokenPlace::Query(param) => shown_url = with(param),
                TokenPlace::Header { name, .. } => lines.push(format!("{name}: {MASK}")),
            },
            ResolvedAuth::None => {}
        }
        let mut shown = vec![format!("{:?} {shown_url}", request.method)];
        shown.extend(
            request
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}")),
        );
        shown.extend(lines);
        if let Some(body) = &request.body {
            shown.push(String::new());
            shown.push(body.encode().0);
        }
        self.redactor.redact(&shown.join("\n"))
    }

    pub async fn fetch(&self, request: &Request) -> Result<Vec<u8>, FetchError> {
        self.fetch_page(request).await.map(|page| page.body)
    }

    /// Sends a request, retrying what is worth retrying, and returns the
    /// body with the response's headers (where some APIs page).
    pub async fn fetch_page(&self, request: &Request) -> Result<Fetched, FetchError> {
        let shown = self.redactor.redact(request.url.as_str());
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            let (wait, cause) = match self.attempt(request, &shown).await {
                Ok(fetched) => return Ok(fetched),
                Err(Attempt::Fatal(e)) => return Err(e),
                // A token revoked or expired early: forget it and ask for a
                // new one, once. A second 401 fails (never a login loop).
                Err(Attempt::Unauthorized { error, token }) => {
                    if renewed {
                        let FetchError::Status { url, detail, .. } = error else {
                            return Err(error);
                        };
                        return Err(FetchError::Unauthorized { url, detail });
                    }
                    renewed = true;
                    tracing::warn!(url = %shown, "HTTP 401 with a token: asking for a new one, once");
                    self.forget_token(&token).await;
                    continue;
                }
                Err(Attempt::Retry { error, retry_after }) => {
                    if attempt >= self.limits.retries {
                        return Err(error);
                    }
                    let wait = match retry_after {
                        Some(s) if s > self.limits.max_retry_after_seconds => {
                            return Err(FetchError::RetryAfterTooLong {
                                url: shown,
                                seconds: s,
                            });
                        }
                        Some(s) => Duration::from_secs(s),
                        None => self.backoff(attempt),
                    };
                    // What failed, without the URL the line already names.
                    (wait, retry_cause(&error))
                }
            };
            attempt += 1;
            tracing::warn!(url = %shown, attempt, wait_ms = wait.as_millis() as u64, cause = %cause, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with full jitter: a random wait up to base × 2^attempt, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = Duration::from_secs(30).as_millis() as u64;
        let ceiling = self
            .limits
            .retry_base_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(cap)
            .max(1);
        Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
    }

    /// One try of a request, following the redirects the policy allows
    /// (`guard::redirect_allowed`): credentials go only to the request's own
    /// origin.
    async fn attempt(&self, request: &Request, shown: &str) -> Result<Fetched, Attempt> {
        if let Some(rate) = &self.rate {
            rate.acquire().await;
        }
        let mut method = match request.method {
            Method::GET => HttpMethod::GET,
            Method::POST => HttpMethod::POST,
        };
        let mut url = request.url.clone();
        let mut body = request.body.as_ref().map(Body::encode);
        let mut credentials = true;
        let mut hops = 0;
        if let Some((name, _)) = request.headers.iter().find(|(name, value)| {
            HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
        }) {
            return Err(Attempt::Fatal(FetchError::BadUrl {
                url: shown.to_string(),
                message: format!("header {name} is not a valid header"),
            }));
        }
        let oauth = match &self.auth {
            ResolvedAuth::OAuth2 { .. } => Some(self.oauth_token().await?),
            ResolvedAuth::Login(login) => Some(self.login_token(login).await?),
            _ => None,
        };
        let response = loop {
            if !self.allow_link_local {
                check_literal_host(&url).map_err(|address| {
                    Attempt::Fatal(FetchError::Restricted {
                        url: self.redactor.redact(url.as_str()),
                        address,
                    })
                })?;
            }
            let response = self
                .send(
                    &method,
                    &url,
                    request,
                    credentials.then_some(oauth.as_deref()),
                    body.as_ref().map(|(text, kind)| (text.as_str(), *kind)),
                )
                .await
                .map_err(|e| self.transport(shown, e))?;
            let status = response.status();
            let location = response.headers().get(LOCATION).cloned();
            let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
            let (true, Some(location)) = (redirect, location) else {
                break response;
            };
            let refuse = |to: String, reason: String| {
                Attempt::Fatal(FetchError::Redirect {
                    url: shown.to_string(),
                    to: escape_controls(&self.redactor.redact(&to)).into_owned(),
                    reason,
                })
            };
            let target = String::from_utf8_lossy(location.as_bytes()).into_owned();
            let next = url
                .join(&target)
                .map_err(|e| refuse(target.clone(), e.to_string()))?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(refuse(
                    next.to_string(),
                    format!("more than {MAX_REDIRECTS} redirects"),
                ));
            }
            // As browsers do: 303 (and 301/302 after a POST) turn into a GET.
            if status == StatusCode::SEE_OTHER
                || (method == HttpMethod::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = HttpMethod::GET;
                body = None;
            }
            credentials = guard::redirect_allowed(
                &request.url,
                &url,
                &next,
                &self.redirect_hosts,
                body.is_some(),
            )
            .map_err(|reason| refuse(next.to_string(), reason.to_string()))?;
            tracing::debug!(from = %self.redactor.redact(url.as_str()), to = %self.redactor.redact(next.as_str()), credentials, "following a redirect");
            url = next;
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let start = body_start(response, ERROR_BODY_BYTES).await;
            let error = FetchError::Status {
                url: shown.to_string(),
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("").to_string(),
                detail: self.body_excerpt(&start),
            };
            let retryable = status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT;
            if status == StatusCode::UNAUTHORIZED
                && credentials
                && let Some(token) = oauth
            {
                return Err(Attempt::Unauthorized { error, token });
            }
            return Err(if retryable {
                Attempt::Retry { error, retry_after }
            } else {
                Attempt::Fatal(error)
            });
        }
        let headers = response.headers().clone();
        let body = self
            .read_limited(response, shown, self.limits.max_response_bytes)
            .await?;
        Ok(Fetched { body, headers })
    }

    /// Sends one request. `credentials` is `None` on a redirect to another
    /// host, which then gets no auth, no request headers (they may carry
    /// keys) and no body; else it holds the OAuth2 token, if that is the auth.
    async fn send(
        &self,
        method: &HttpMethod,
        url: &Url,
        request: &Request,
        credentials: Option<Option<&str>>,
        body: Option<(&str, &'static str)>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut url = url.clone();
        let Some(oauth) = credentials else {
            return self.client.request(method.clone(), url).send().await;
        };
        if let ResolvedAuth::Query(param, value) = &self.auth
            && !url.query_pairs().any(|(k, _)| k == param.as_str())
        {
            url.query_pairs_mut().append_pair(param, value);
        }
        if let ResolvedAuth::Login(login) = &self.auth
            && let (TokenPlace::Query(param), Some(token)) = (&login.send, oauth)
        {
            let others: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != param.as_str())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(others)
                .append_pair(param, token);
        }
        let mut builder = self.client.request(method.clone(), url);
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            // Each was checked by `attempt`.
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        builder = builder.headers(headers);
        builder = match &self.auth {
            ResolvedAuth::Header(name, value) => builder.header(name, value),
            ResolvedAuth::Basic(user, password) => builder.basic_auth(user, Some(password)),
            ResolvedAuth::Bearer(token) => builder.bearer_auth(token),
            ResolvedAuth::OAuth2 { .. } => match oauth {
                Some(token) => builder.bearer_auth(token),
                None => builder,
            },
            ResolvedAuth::Login(login) => match (&login.send, oauth) {
                (
                    TokenPlace::Header {
                        name,
                        prefix,
                        suffix,
                    },
                    Some(token),
                ) => {
                    let value = HeaderValue::from_str(&format!("{prefix}{token}{suffix}"));
                    match value {
                        Ok(mut value) => {
                            value.set_sensitive(true);
                            builder.header(name.as_str(), value)
                        }
                        // Checked when the token was read.
                        Err(_) => builder,
                    }
                }
                _ => builder,
            },
            ResolvedAuth::None | ResolvedAuth::Query(..) => builder,
        };
        if let Some((body, content_type)) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_string());
        }
        builder.send().await
    }

    /// The body, counted as it is decoded (so a gzip bomb stops at the
    /// limit): more than `limit` bytes fail the request.
    async fn read_limited(
        &self,
        mut response: reqwest::Response,
        shown: &str,
        limit: u64,
    ) -> Result<Vec<u8>, Attempt> {
        let too_large = || {
            Attempt::Fatal(FetchError::TooLarge {
                url: shown.to_string(),
                limit,
            })
        };
        // Content-Length is the compressed size when the body is gzipped, so it
        // is only a first check; the decoded bytes are counted as they arrive.
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body =
            Vec::with_capacity(response.content_length().unwrap_or(0).min(limit) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(shown, e))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport(&self, shown: &str, e: reqwest::Error) -> Attempt {
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(address) = s.downcast_ref::<RestrictedAddress>() {
                return Attempt::Fatal(FetchError::Restricted {
                    url: shown.to_string(),
                    address: address.clone(),
                });
            }
            if let Some(unresolved) = s.downcast_ref::<guard::Unresolved>() {
                return Attempt::Fatal(FetchError::Unresolved {
                    url: shown.to_string(),
                    unresolved: guard::Unresolved {
                        host: unresolved.host.clone(),
                        message: escape_controls(&unresolved.message).into_owned(),
                    },
                });
            }
            source = s.source();
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else if e.is_body() || e.is_decode() {
            "the response was cut off"
        } else {
            "request failed"
        };
        let mut message = kind.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        Attempt::Retry {
            error: FetchError::Transport {
                url: shown.to_string(),
                message: escape_controls(&self.redactor.redact(&message)).into_owned(),
            },
            retry_after: None,
        }
    }

    /// An OAuth2 token or login endpoint that answered with an error: worth
    /// retrying when the server is in trouble, else the run's error.
    async fn token_endpoint_failure(
        &self,
        response: reqwest::Response,
        fail: impl FnOnce(String) -> FetchError,
        hint: &str,
    ) -> Attempt {
        let status = response.status();
        let start = body_start(response, ERROR_BODY_BYTES).await;
        let error = fail(format!(
            "HTTP {}{}{hint}",
            status.as_u16(),
            self.body_excerpt(&start)
        ));
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry {
                error,
                retry_after: None,
            }
        } else {
            Attempt::Fatal(error)
        }
    }

    /// A short, redacted excerpt of an error body with its control
    /// characters escaped: fit for the run log and a terminal.
    fn body_excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        if excerpt.len() < text.len() {
            excerpt.push('…');
        }
        format!(": {}", escape_controls(&self.redactor.redact(&excerpt)))
    }

    async fn oauth_token(&self) -> Result<String, Attempt> {
        let ResolvedAuth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            client_auth,
        } = &self.auth
        else {
            unreachable!("oauth_token is only called for OAuth2 auth");
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.expires > Instant::now()
        {
            return Ok(token.value.clone());
        }
        let shown = self.redactor.redact(token_url);
        let fail = |message: String| FetchError::OAuth {
            url: shown.clone(),
            message,
        };
        let url = checked_url(token_url, &self.redactor).map_err(Attempt::Fatal)?;
        let basic = *client_auth == crate::manifest::raw::ClientAuth::ClientSecretBasic;
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if !basic {
                form.append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret);
            }
            if let Some(scope) = scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let mut token_request = self.client.post(url).header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        if basic {
            token_request = token_request.header(
                reqwest::header::AUTHORIZATION,
                client_secret_basic(client_id, client_secret),
            );
        }
        let response = token_request
            .body(form)
            .send()
            .await
            .map_err(|e| self.transport(&shown, e))?;
        if !response.status().is_success() {
            return Err(self.token_endpoint_failure(response, fail, "").await);
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let body = match self
            .read_limited(response, &shown, MAX_TOKEN_RESPONSE_BYTES)
            .await
        {
            Err(Attempt::Fatal(FetchError::TooLarge { .. })) => {
                // The shared message would advise raising max_response_bytes,
                // which does not govern this limit.
                return Err(Attempt::Fatal(fail(format!(
                    "the OAuth2 token response is larger than {} MiB, a fixed limit (a token is sent in a header of every request, and token endpoints answer in a few KB); check that token_url is the network's token endpoint",
                    MAX_TOKEN_RESPONSE_BYTES >> 20
                ))));
            }
            other => other?,
        };
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Fatal(fail(format!("unexpected response: {e}"))))?;
        self.redactor.add(&parsed.access_token);
        // Renew a little early so a token never expires mid-request.
        let lifetime = parsed.expires_in.unwrap_or(3600).saturating_sub(30).max(1);
        *cached = Some(Token {
            value: parsed.access_token.clone(),
            expires: Instant::now() + Duration::from_secs(lifetime),
        });
        Ok(parsed.access_token)
    }
}

impl Fetcher {
    /// Forgets a token the network refused, unless another request has
    /// already replaced it (then that one is used, with no new login).
    async fn forget_token(&self, refused: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == refused) {
            *cached = None;
        }
        if let ResolvedAuth::Login(login) = &self.auth {
            let mut shared = LOGIN_TOKENS.lock().unwrap_or_else(|e| e.into_inner());
            if shared
                .get(&login.cache_key)
                .is_some_and(|t| t.value == refused)
            {
                shared.remove(&login.cache_key);
            }
        }
    }

    /// The login token: cached for its lifetime (in this run, and across the
    /// runs of the process), else asked for with the Network's request.
    async fn login_token(&self, login: &ResolvedLogin) -> Result<String, Attempt> {
        let mut cached = self.token.lock().await;
        let now = Instant::now();
        if let Some(token) = cached.as_ref()
            && token.expires > now
        {
            return Ok(token.value.clone());
        }
        if let Some(token) = LOGIN_TOKENS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&login.cache_key)
            .filter(|t| t.expires > now)
            .cloned()
        {
            let value = token.value.clone();
            self.redactor.add(&value);
            *cached = Some(token);
            return Ok(value);
        }
        let shown = self.redactor.redact(&login.url);
        let fail = |message: String| FetchError::Login {
            url: shown.clone(),
            message,
        };
        let url = checked_url(&login.url, &self.redactor).map_err(Attempt::Fatal)?;
        if !self.allow_link_local {
            check_literal_host(&url).map_err(|address| {
                Attempt::Fatal(FetchError::Restricted {
                    url: shown.clone(),
                    address,
                })
            })?;
        }
        let method = match login.method {
            Method::GET => HttpMethod::GET,
            Method::POST => HttpMethod::POST,
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in &login.headers {
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(Attempt::Fatal(fail(format!(
                    "header {name} is not a valid header"
                ))));
            };
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        if let Some(body) = &login.body {
            let (text, content_type) = body.encode();
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(text);
        }
        // Never logged: the request carries the credentials.
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport(&shown, e))?;
        if !response.status().is_success() {
            let hint = "; check the credentials in the Integration's params";
            return Err(self.token_endpoint_failure(response, fail, hint).await);
        }
        let body = match self
            .read_limited(response, &shown, MAX_TOKEN_RESPONSE_BYTES)
            .await
        {
            Err(Attempt::Fatal(FetchError::TooLarge { .. })) => {
                return Err(Attempt::Fatal(fail(format!(
                    "the login response is larger than {} MiB, a fixed limit; check spec.auth.url",
                    MAX_TOKEN_RESPONSE_BYTES >> 20
                ))));
            }
            other => other?,
        };
        // The response holds the token: it is never quoted in an error.
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            Attempt::Fatal(fail(
                "the response is not JSON (the token is read from a JSON response)".into(),
            ))
        })?;
        let token = match login.token.first(&json) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                return Err(Attempt::Fatal(fail(format!(
                    "no token at {} in the response; check spec.auth.token",
                    login.token.as_str()
                ))));
            }
        };
        self.redactor.add(&token);
        if let TokenPlace::Header { prefix, suffix, .. } = &login.send
            && HeaderValue::from_str(&format!("{prefix}{token}{suffix}")).is_err()
        {
            return Err(Attempt::Fatal(fail(
                "the token is not a valid header value".into(),
            )));
        }
        let stated = login
            .expires_in
            .as_ref()
            .and_then(|path| match path.first(&json) {
                Some(serde_json::Value::Number(n)) => n.as_f64().map(|f| f.max(0.0) as u64),
                Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
                _ => None,
            });
        let lifetime = stated.or(login.lifetime_seconds).unwrap_or(3600);
        // Renew a little early so a token never expires mid-request.
        let margin = (lifetime / 10).min(30);
        let token_entry = Token {
            value: token.clone(),
            expires: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin).max(1)),
        };
        LOGIN_TOKENS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(login.cache_key, token_entry.clone());
        *cached = Some(token_entry);
        tracing::debug!(url = %shown, lifetime, "logged in for a token");
        Ok(token)
    }
}

/// The `Authorization` header of RFC 6749 §2.3.1: id and secret each
/// form-encoded, joined by a colon, in base64; marked sensitive.
fn client_secret_basic(client_id: &str, client_secret: &str) -> HeaderValue {
    use base64::Engine as _;
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(client_id),
        encode(client_secret)
    ));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// The first `keep` bytes of a body (decoded), for an error message; the
/// rest is never read, and a body that breaks off gives what came.
async fn body_start(mut response: reqwest::Response, keep: usize) -> Vec<u8> {
    let mut start = Vec::new();
    while start.len() < keep {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = keep - start.len();
                start.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    start
}

enum Attempt {
    Retry {
        error: FetchError,
        retry_after: Option<u64>,
    },
    Fatal(FetchError),
    /// HTTP 401 to a request that carried this OAuth2 or login token.
    Unauthorized {
        error: FetchError,
        token: String,
    },
}

/// Why a request is retried, for the `retrying` log line: the status and
/// its reason (`HTTP 503 Service Unavailable`) or the transport's error.
fn retry_cause(error: &FetchError) -> String {
    match error {
        FetchError::Status { status, reason, .. } => format!("HTTP {status} {reason}"),
        FetchError::Transport { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `Retry-After` in seconds: a number, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.timestamp() - chrono::Utc::now().timestamp();
    Some(wait.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(7));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(0));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert!((88..=90).contains(&retry_after(&h).unwrap()));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_http_and_https_are_fetched() {
        let r = Redactor::new(vec!["s3cret"]);
        assert!(checked_url("https://a.example/x", &r).is_ok());
        assert!(checked_url("http://127.0.0.1:9/x", &r).is_ok());
        let e = checked_url("file:///etc/passwd?k=s3cret", &r).unwrap_err();
        assert!(matches!(e, FetchError::Scheme { .. }));
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(matches!(
            checked_url("ftp://a.example/", &r),
            Err(FetchError::Scheme { .. })
        ));
    }
}
