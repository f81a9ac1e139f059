//! Test harness: a throwaway database per test (Postgres or SQLite), a mock
//! network API on 127.0.0.1, and manifests in a temp directory.
#![allow(dead_code)]

pub mod daemon;
pub mod pg_proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use serde_json::{Value, json};

/// The Postgres server tests use: `OFFERSYNC_TEST_PG` or the local one.
pub fn admin_url() -> String {
    std::env::var("OFFERSYNC_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The store backends every scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A fresh database, dropped when the test ends: a new database on the test
/// Postgres server, or a new SQLite file in a temp directory.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Counts every row written to `campaigns` from now on (by anyone): a
    /// test trigger beside offersync's own.
    pub fn count_campaign_writes(&self) {
        self.execute("CREATE TABLE campaign_writes (n INTEGER)");
        match self.backend {
            Backend::Postgres => {
                self.execute(
                    "CREATE FUNCTION count_campaign_write() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN INSERT INTO campaign_writes VALUES (1); RETURN NEW; END $$",
                );
                self.execute(
                    "CREATE TRIGGER count_campaign_writes AFTER INSERT OR UPDATE ON campaigns \
                     FOR EACH ROW EXECUTE FUNCTION count_campaign_write()",
                );
            }
            Backend::Sqlite => {
                self.execute(
                    "CREATE TRIGGER count_campaign_updates AFTER UPDATE ON campaigns \
                     BEGIN INSERT INTO campaign_writes VALUES (1); END",
                );
                self.execute(
                    "CREATE TRIGGER count_campaign_inserts AFTER INSERT ON campaigns \
                     BEGIN INSERT INTO campaign_writes VALUES (1); END",
                );
            }
        }
    }

    /// Rows written to `campaigns` since the last look (after
    /// [`TestDb::count_campaign_writes`]).
    pub fn campaign_writes_since_last_look(&self) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n = self.query::<Count>("SELECT COUNT(*) AS n FROM campaign_writes")[0].n;
        self.execute("DELETE FROM campaign_writes");
        n
    }

    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres(),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("offersync.db");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    name: path.display().to_string(),
                    _dir: Some(dir),
                }
            }
        }
    }

    pub fn postgres() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "offersync_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand_suffix()
        );
        let admin = admin_url();
        let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
            panic!("tests need PostgreSQL at {admin} (run scripts/test, which starts it): {e}")
        });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create the test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Self {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            name,
            _dir: None,
        }
    }

    pub fn query<T>(&self, sql: &str) -> Vec<T>
    where
        T: diesel::deserialize::QueryableByName<diesel::pg::Pg>
            + diesel::deserialize::QueryableByName<diesel::sqlite::Sqlite>
            + 'static,
    {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.url).unwrap();
                diesel::sql_query(sql).load(&mut conn).unwrap()
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.name).unwrap();
                diesel::sql_query(sql).load(&mut conn).unwrap()
            }
        }
    }

    /// Brings a fresh database to the schema of an earlier release: only
    /// the first `migrations` of `migrations/<backend>` applied.
    pub fn migrate_to_release(&self, migrations: usize) {
        use diesel_migrations::{FileBasedMigrations, MigrationHarness};
        let dir = match self.backend {
            Backend::Postgres => "migrations/postgres",
            Backend::Sqlite => "migrations/sqlite",
        };
        let source = || FileBasedMigrations::from_path(dir).unwrap();
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.url).unwrap();
                for _ in 0..migrations {
                    conn.run_next_migration(source()).unwrap();
                }
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.name).unwrap();
                for _ in 0..migrations {
                    conn.run_next_migration(source()).unwrap();
                }
            }
        }
    }

    pub fn execute(&self, sql: &str) -> usize {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.url).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap()
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.name).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap()
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        if let Ok(mut conn) = PgConnection::establish(&admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

/// What the mock does instead of answering a page normally.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Answer this status `times` times, then normally.
    Status { status: u16, times: usize },
    /// 429 with `Retry-After: seconds`, `times` times.
    RetryAfter { seconds: u64, times: usize },
    /// A 200 whose JSON stops halfway.
    Truncated,
    /// Answer nothing for this long.
    Hang(Duration),
}

/// A POST the mock received: its content type, body and URL query.
#[derive(Debug, Clone)]
pub struct Posted {
    pub content_type: String,
    pub body: String,
    pub url_query: HashMap<String, String>,
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
pub struct MockState {
    pub offers: Vec<Value>,
    pub page_size: usize,
    /// By 0-based page index.
    pub failures: HashMap<usize, Failure>,
    pub requests: Vec<Seen>,
    pub token_requests: usize,
    /// How each token request authenticated the client: "basic" or "post".
    pub token_client_auth: Vec<&'static str>,
    /// When each page request arrived.
    pub request_times: Vec<std::time::Instant>,
    /// When set, every page answers HTTP 200 with this body instead.
    pub answer_instead: Option<Value>,
    /// How long each page takes to answer, and the most page requests that
    /// were being answered at once.
    pub page_delay: Option<std::time::Duration>,
    pub in_flight: usize,
    pub max_in_flight: usize,
    /// Each POST (pages and links).
    pub posted: Vec<Posted>,
    /// Tokens: when set, pages answer 401 unless they carry the token now
    /// valid (a login's or the OAuth2 endpoint's), in `Authorization:
    /// Bearer`, `x-access-token` or the `token` query parameter.
    pub tokens_required: bool,
    /// The token now valid, and until when.
    pub valid_token: Option<(String, std::time::Instant)>,
    /// Every token issued (by /login and, when tokens are required, /token).
    pub issued: Vec<String>,
    /// Lifetime of the tokens issued (seconds); `expires_in` of /login.
    pub token_lifetime: u64,
    /// Every token refused, as if the network had revoked the client.
    pub refuse_every_token: bool,
    /// After this many more pages with the valid token, it is revoked
    /// (mid-run, as a password change or a key rotation does).
    pub revoke_after_pages: Option<usize>,
    /// Logins (POSTs to /login), with their content type and body.
    pub logins: Vec<Posted>,
    /// Pages answered 401 for want of a valid token.
    pub unauthorized: usize,
}

/// A network API on 127.0.0.1 serving `offers` in pages, by page number
/// (`page`), row offset (`offset`), cursor (`cursor`) or next link.
#[derive(Clone)]
pub struct MockNetwork {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<MockState>>,
}

impl MockNetwork {
    pub async fn start(offers: Vec<Value>, page_size: usize) -> Self {
        let state = Arc::new(Mutex::new(MockState {
            offers,
            page_size,
            ..MockState::default()
        }));
        let app = Router::new()
            .route("/offers", get(offers_page).post(offers_page_posted))
            .route("/links", post(tracking_link))
            .route("/token", post(token))
            .route("/login", post(login))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_offers(&self, offers: Vec<Value>) {
        self.state.lock().unwrap().offers = offers;
    }

    pub fn fail(&self, page_index: usize, failure: Failure) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(page_index, failure);
    }

    pub fn clear_failures(&self) {
        self.state.lock().unwrap().failures.clear();
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn with_state<T>(&self, f: impl FnOnce(&mut MockState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Pages then need the token now valid (see `MockState::tokens_required`).
    pub fn require_tokens(&self, lifetime_seconds: u64) {
        self.with_state(|s| {
            s.tokens_required = true;
            s.token_lifetime = lifetime_seconds;
        });
    }

    /// Revokes the token now valid (as a network does on a password change).
    pub fn revoke_token(&self) {
        self.with_state(|s| s.valid_token = None);
    }
}

/// Makes `token` the one valid token, for the lifetime the mock is set to.
fn issue(s: &mut MockState, token: &str) {
    let lifetime = Duration::from_secs(s.token_lifetime.max(1));
    s.issued.push(token.to_string());
    s.valid_token = Some((token.to_string(), std::time::Instant::now() + lifetime));
}

/// The login endpoint: key `acme` and secret [`API_KEY`], as a form
/// (`key`, `secret`) or JSON (`email`, `password`). Each login issues a new
/// token (with the mock's port in it, so that it is new at every start of
/// the mock) and makes it the only valid one.
async fn login(
    State(state): State<Arc<Mutex<MockState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields: HashMap<String, String> = body_fields(&headers, &body).into_iter().collect();
    let mut s = state.lock().unwrap();
    s.logins.push(Posted {
        content_type: headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: body.clone(),
        url_query: HashMap::new(),
    });
    let user = fields.get("key").or(fields.get("email"));
    let secret = fields.get("secret").or(fields.get("password"));
    if user.map(String::as_str) != Some("acme") || secret.map(String::as_str) != Some(API_KEY) {
        // Echoes what it was sent, as careless APIs do.
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"status": "error", "message": format!("Invalid Credentials: {body}")}),
            ),
        )
            .into_response();
    }
    let token = format!(
        "lt-{}-{}",
        headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .replace(':', "-"),
        s.logins.len()
    );
    issue(&mut s, &token);
    axum::Json(
        json!({"status": "success", "data": {"token": token}, "expires_in": s.token_lifetime}),
    )
    .into_response()
}

/// When tokens are required, the 401 a page gets without the valid one.
fn token_refusal(
    state: &Mutex<MockState>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Option<Response> {
    let mut s = state.lock().unwrap();
    if !s.tokens_required {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sent = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(header("x-access-token"))
        .or(query.get("token").map(String::as_str));
    let valid = match (&s.valid_token, sent) {
        (Some((token, until)), Some(sent)) => {
            token == sent && *until > std::time::Instant::now() && !s.refuse_every_token
        }
        _ => false,
    };
    match s.revoke_after_pages {
        Some(0) if valid => {
            s.revoke_after_pages = None;
            s.valid_token = None;
        }
        Some(n) if valid => {
            s.revoke_after_pages = Some(n - 1);
            return None;
        }
        _ if valid => return None,
        _ => {}
    }
    s.unauthorized += 1;
    Some(
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "invalid or expired token"})),
        )
            .into_response(),
    )
}

/// The OAuth2 token endpoint: the client `acme` with secret `cs-secret-3`,
/// by HTTP Basic (RFC 6749 §2.3.1, id and secret form-encoded) or in the body.
async fn token(
    State(state): State<Arc<Mutex<MockState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut s = state.lock().unwrap();
    s.token_requests += 1;
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "Basic YWNtZTpjcy1zZWNyZXQtMw=="); // acme:cs-secret-3
    let post = body.contains("client_id=acme") && body.contains("client_secret=cs-secret-3");
    if !body.contains("grant_type=client_credentials") || basic == post {
        // Neither, or both at once (RFC 6749 forbids more than one method).
        return (StatusCode::UNAUTHORIZED, "bad client").into_response();
    }
    s.token_client_auth
        .push(if basic { "basic" } else { "post" });
    let token = format!("tok-{}", s.token_requests);
    if s.tokens_required {
        issue(&mut s, &token);
    }
    axum::Json(json!({"access_token": token, "expires_in": 3600})).into_response()
}

/// The fields of a form or JSON object body (numbers as their text).
fn body_fields(headers: &HeaderMap, body: &str) -> Vec<(String, String)> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    } else if content_type.starts_with("application/json") {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(object)) => object
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    }
}

fn record_post(
    state: &Mutex<MockState>,
    headers: &HeaderMap,
    body: &str,
    url_query: &HashMap<String, String>,
) {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    state.lock().unwrap().posted.push(Posted {
        content_type,
        body: body.to_string(),
        url_query: url_query.clone(),
    });
}

/// A page asked for by POST: its parameters in a form or JSON body (as
/// Involve Asia's API takes them), answered as the same GET would be.
async fn offers_page_posted(
    State(state): State<Arc<Mutex<MockState>>>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    record_post(&state, &headers, &body, &query);
    query.extend(body_fields(&headers, &body));
    offers_page(State(state), Query(query), headers).await
}

/// A campaign's tracking link, made by a POST with a JSON body (MaxBounty's
/// shape): `{"campaign_id": …}` → `{"data": {"url": …}}`.
async fn tracking_link(
    State(state): State<Arc<Mutex<MockState>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refusal) = token_refusal(&state, &query, &headers) {
        return refusal;
    }
    record_post(&state, &headers, &body, &query);
    let fields: HashMap<String, String> = body_fields(&headers, &body).into_iter().collect();
    match fields.get("campaign_id") {
        Some(id) => {
            axum::Json(json!({"data": {"url": format!("https://track.example.com/c/{id}")}}))
                .into_response()
        }
        None => (StatusCode::BAD_REQUEST, "campaign_id missing").into_response(),
    }
}

async fn offers_page(
    State(state): State<Arc<Mutex<MockState>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = token_refusal(&state, &query, &headers) {
        return refusal;
    }
    let delay = {
        let mut s = state.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.page_delay
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let (failure, body, paging) = {
        let mut s = state.lock().unwrap();
        s.in_flight -= 1;
        s.request_times.push(std::time::Instant::now());
        s.requests.push(Seen {
            path: "/offers".into(),
            query: query.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
        });
        let size = query
            .get("page_size")
            .or(query.get("limit"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(s.page_size)
            .max(1);
        let index = if let Some(p) = query.get("page") {
            p.parse::<usize>().unwrap_or(1).saturating_sub(1)
        } else if let Some(o) = query.get("offset") {
            o.parse::<usize>().unwrap_or(0) / size
        } else if let Some(c) = query.get("cursor").or(query.get("next")) {
            c.trim_start_matches('c').parse().unwrap_or(0)
        } else {
            0
        };
        let failure = match s.failures.get_mut(&index) {
            Some(Failure::Status { status, times }) if *times > 0 => {
                *times -= 1;
                Some(Failure::Status {
                    status: *status,
                    times: 1,
                })
            }
            Some(Failure::RetryAfter { seconds, times }) if *times > 0 => {
                *times -= 1;
                Some(Failure::RetryAfter {
                    seconds: *seconds,
                    times: 1,
                })
            }
            Some(f @ (Failure::Truncated | Failure::Hang(_))) => Some(f.clone()),
            _ => None,
        };
        let total = s.offers.len();
        let pages = total.div_ceil(size);
        let slice: Vec<Value> = s
            .offers
            .iter()
            .skip(index * size)
            .take(size)
            .cloned()
            .collect();
        let more = index + 1 < pages;
        let body = s.answer_instead.clone().unwrap_or_else(|| json!({
            "offers": slice,
            "paging": {
                "page": index + 1,
                "page_size": size,
                "total_count": total,
                "total_pages": pages,
                "next_cursor": if more { json!(format!("c{}", index + 1)) } else { Value::Null },
                "next_url": if more { json!(format!("/offers?next=c{}", index + 1)) } else { json!("") },
            }
        }));
        // The same paging in headers, as GitHub-style APIs send it: totals
        // and an RFC 8288 Link (with a comma inside a URL, and several rels).
        let mut paging = vec![
            ("x-total-count".to_string(), total.to_string()),
            ("x-pagination-page-count".to_string(), pages.to_string()),
        ];
        if more {
            paging.push((
                "link".to_string(),
                format!(
                    "</offers?next=c{}&fields=a,b>; rel=\"next nofollow\", </offers?next=c0>; rel=\"first\"",
                    index + 1
                ),
            ));
        }
        (failure, body, paging)
    };
    match failure {
        Some(Failure::Status { status, .. }) => {
            (StatusCode::from_u16(status).unwrap(), "upstream trouble").into_response()
        }
        Some(Failure::RetryAfter { seconds, .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            "slow down",
        )
            .into_response(),
        Some(Failure::Truncated) => {
            let text = body.to_string();
            let cut = text[..text.len() / 2].to_string();
            ([("content-type", "application/json")], cut).into_response()
        }
        Some(Failure::Hang(d)) => {
            tokio::time::sleep(d).await;
            axum::Json(body).into_response()
        }
        None => {
            let mut response = axum::Json(body).into_response();
            for (name, value) in paging {
                response.headers_mut().insert(
                    axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            response
        }
    }
}

/// An offer in the mock network's shape.
pub fn offer(id: u32) -> Value {
    json!({
        "id": id,
        "name": format!("Offer {id}"),
        "status": "active",
        "payout": format!("{}.50", id % 40 + 1),
        "currency": "usd",
        "model": "cpa",
        "countries": ["US", "CA"],
        "os": ["android", "ios"],
        "category": "Finance",
        "preview_url": format!("https://adv.example/{id}"),
        "tracking_url": format!("https://trk.example/c/{id}?aff=1"),
        "description": "An offer.",
        "daily_cap": 100
    })
}

pub fn offers(ids: std::ops::RangeInclusive<u32>) -> Vec<Value> {
    ids.map(offer).collect()
}

pub const API_KEY: &str = "sk-live-7f3a9c2e5b";

/// The mock network's mapping; `pagination` and `auth` are YAML flow maps.
pub fn network_yaml(pagination: &str, auth: &str) -> String {
    format!(
        r#"apiVersion: offersync/v1
kind: Network
metadata: {{name: mocknet}}
spec:
  params:
    api_key: {{secret: true}}
    base_url: {{}}
  request:
    url: "{{{{ params.base_url }}}}/offers"
  auth: {auth}
  pagination: {pagination}
  limits: {{retries: 2, retry_base_ms: 10, timeout_seconds: 5}}
  records: $.offers[*]
  fields:
    external_id: $.id
    name: $.name
    status: {{path: $.status, map: {{active: active, paused: paused, "*": pending}}}}
    payout: {{path: $.payout, type: decimal}}
    currency: $.currency
    model: $.model
    countries: $.countries[*]
    os: $.os[*]
    category: $.category
    preview_url: $.preview_url
    tracking_url: $.tracking_url
    description: $.description
    caps:
      each: $
      fields: {{event: {{value: conversions}}, period: {{value: daily}}, value: $.daily_cap}}
"#
    )
}

pub const PAGE_PAGINATION: &str = "{kind: page, param: page, start: 1, size_param: page_size, size: 10, total_count: $.paging.total_count}";
pub const HEADER_AUTH: &str = "{kind: header, name: X-Api-Key, value: \"{{ params.api_key }}\"}";

/// An Integration of the mock network; `extra` is more `spec` lines.
/// The schedule of the tests' integrations: midnight UTC on 29 February, so
/// that no scheduled tick falls inside a test (one on `*/30` fired whenever
/// a daemon test crossed the hour or half hour, and ran an extra run).
pub const QUIET_SCHEDULE: &str = "0 0 29 2 *";

pub fn integration_yaml(name: &str, base_url: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: offersync/v1
kind: Integration
metadata: {{name: {name}}}
spec:
  network: mocknet
  schedule: "{QUIET_SCHEDULE}"
  params:
    api_key: ${{file:secrets/api.key}}
    base_url: {base_url}
  advertiser: Acme Ads
{extra}"#
    )
}

/// A manifest directory: the mock network, one integration, the key file.
pub struct Manifests {
    pub dir: tempfile::TempDir,
}

impl Manifests {
    pub fn new(network: &str, integration: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("networks")).unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("networks/mocknet.yaml"), network).unwrap();
        std::fs::write(dir.path().join("secrets/api.key"), API_KEY).unwrap();
        let m = Self { dir };
        m.set_integration(integration);
        m
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn set_integration(&self, yaml: &str) {
        std::fs::write(self.dir.path().join("integration.yaml"), yaml).unwrap();
    }

    /// A second integration beside the first.
    pub fn set_other_integration(&self, yaml: &str) {
        std::fs::write(self.dir.path().join("other.yaml"), yaml).unwrap();
    }

    pub fn load(&self, name: &str) -> Arc<offersync::manifest::IntegrationDef> {
        let mut loaded = offersync::manifest::load_dir(self.path(), &|_| None);
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        Arc::new(
            loaded
                .catalog
                .integrations
                .remove(name)
                .expect("integration loads"),
        )
    }
}

/// The mock network serving `offers`, the `acme` integration of it (with
/// `extra` spec lines) and a fresh database on `backend`.
pub fn setup(
    backend: Backend,
    offers: Vec<Value>,
    extra: &str,
) -> impl std::future::Future<Output = (MockNetwork, Manifests, TestDb)> {
    let extra = extra.to_string();
    async move {
        let mock = MockNetwork::start(offers, 10).await;
        let m = Manifests::new(
            &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
            &integration_yaml("acme", &mock.base_url(), &extra),
        );
        (mock, m, TestDb::new(backend))
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_offersync"))
}

/// Each scenario (an `async fn(Backend)` at the test crate's root), as one
/// test per store backend: `postgres::NAME` and `sqlite::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Sqlite).await
                }
            )*
        }
    };
}
