//! `offersync studio`: a local web app in which a mapping author edits a
//! Network file and sees, as they type, its problems (the words of
//! `validate`), the offers its samples map to, each offer's `explain`
//! trace, the file's `tests:`; locks expectations, reads the live API
//! through an Integration, and saves the file into the directory.
//!
//! This module owns the server: routes, the token, the headers (a CSP that
//! allows only the studio's own script and style), request bounds and the
//! live-read rate. What each route computes is [`work`] (data, from the
//! library's own checks: no second implementation of mapping, validation
//! or explain); HTML is [`render`] (maud, escaped by construction); the
//! script and the style sheet are [`assets`], embedded in the binary (no
//! CDN, no build step, works offline).
//!
//! It must not write anything but the file being saved and uploaded
//! samples, both inside the directory; never the store. Secrets are
//! resolved only for a live read, on the server; what a page or a
//! response carries is redacted.

mod assets;
mod render;
pub mod work;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use work::StudioError;

/// The largest request body: a manifest, or a sample being uploaded.
const MAX_BODY_BYTES: usize = work::MAX_SAMPLE_BYTES as usize + 64 * 1024;
/// Live reads the studio starts, at most one per this interval (on top of
/// the Network's own `rate_limit`, which the fetcher obeys).
const LIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Live pages one read may go up to.
const MAX_LIVE_PAGES: usize = 20;
/// The cookie that carries the token after the first visit.
const COOKIE: &str = "offersync_studio";

/// How the studio is started.
pub struct Options {
    pub dir: PathBuf,
    pub listen: SocketAddr,
}

/// Why the studio cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{dir}: not a directory; pass the directory of your manifests with --dir")]
    NoDir { dir: String },
    #[error("cannot listen on {addr}: {error}; choose another --listen address or port")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

#[derive(Clone)]
struct Studio {
    dir: Arc<PathBuf>,
    /// Required on every request when set (a non-loopback listener).
    token: Option<Arc<str>>,
    /// The address the listener has, for the Host check.
    bound: SocketAddr,
    /// Texts of new files not saved yet, by path.
    drafts: Arc<Mutex<HashMap<PathBuf, String>>>,
    /// The pages of the last live read (the server keeps the bodies, so that
    /// an offer of them can be explained).
    live: Arc<Mutex<Arc<Vec<Vec<u8>>>>>,
    last_live: Arc<Mutex<Option<Instant>>>,
}

/// A server ready to serve: where it listens and the URL to open.
pub struct Started {
    pub url: String,
    pub addr: SocketAddr,
    serve: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>,
}

impl Started {
    pub async fn serve(self) -> std::io::Result<()> {
        self.serve.await
    }
}

/// Binds the listener and prepares the app. A non-loopback address gets a
/// random token that every request must carry (`?token=` once, then a
/// cookie); loopback needs none but checks the Host header (so a web page
/// elsewhere cannot reach it through DNS rebinding).
pub async fn start(options: Options) -> Result<Started, StartError> {
    let dir = options.dir;
    if !dir.is_dir() {
        return Err(StartError::NoDir {
            dir: dir.display().to_string(),
        });
    }
    let dir = dir.canonicalize().unwrap_or(dir);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|error| StartError::Listen {
            addr: options.listen,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| StartError::Listen {
        addr: options.listen,
        error,
    })?;
    let token: Option<Arc<str>> = (!addr.ip().is_loopback()).then(|| new_token().into());
    let url = match &token {
        Some(t) => format!("http://{addr}/?token={t}"),
        None => format!("http://{addr}/"),
    };
    let state = Studio {
        dir: Arc::new(dir),
        token,
        bound: addr,
        drafts: Arc::default(),
        live: Arc::default(),
        last_live: Arc::default(),
    };
    let app = router(state);
    let serve = Box::pin(async move { axum::serve(listener, app).await });
    Ok(Started { url, addr, serve })
}

fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

fn router(state: Studio) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/edit", get(editor))
        .route(
            "/assets/studio.js",
            get(|| asset("text/javascript", assets::SCRIPT)),
        )
        .route(
            "/assets/studio.css",
            get(|| asset("text/css", assets::STYLE)),
        )
        .route("/api/new", post(new_network))
        .route("/api/sample", post(upload_sample))
        .route("/api/check", post(check))
        .route("/api/explain", post(explain))
        .route("/api/lock", post(lock))
        .route("/api/diff", post(diff))
        .route("/api/save", post(save))
        .route("/api/live", post(live))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Every request: the Host is this studio's (no DNS rebinding), the token
/// when one is required, a script-carrying POST only from the studio's own
/// pages (the `X-Studio` header a cross-site form cannot send); and the
/// headers every answer carries.
async fn guard(State(s): State<Studio>, request: Request, next: Next) -> Response {
    let refused = |status: StatusCode, why: &str| {
        with_headers(
            (status, format!("{why}\n")).into_response(),
            "text/plain; charset=utf-8",
        )
    };
    if !host_allowed(request.headers(), s.bound) {
        return refused(
            StatusCode::MISDIRECTED_REQUEST,
            "the Host of this request is not the studio's address; open the URL the studio printed",
        );
    }
    let mut set_cookie = None;
    if let Some(token) = &s.token {
        let from_query = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned());
        let from_cookie = cookie(request.headers(), COOKIE);
        let given = from_query.as_deref().or(from_cookie.as_deref());
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return refused(
                StatusCode::FORBIDDEN,
                "this studio listens beyond this machine and needs its token: open the URL with ?token=… that `offersync studio` printed",
            );
        }
        if from_query.is_some() {
            set_cookie = Some(format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            ));
        }
    }
    if request.method() == axum::http::Method::POST && request.headers().get("x-studio").is_none() {
        return refused(
            StatusCode::FORBIDDEN,
            "a change is accepted only from the studio's own page",
        );
    }
    let mut response = next.run(request).await;
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

fn host_allowed(headers: &HeaderMap, bound: SocketAddr) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    if !bound.ip().is_loopback() {
        // The token guards a shared listener; its Host is any name of it.
        return true;
    }
    let port = bound.port().to_string();
    let (name, given_port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, p),
        None => (host, ""),
    };
    given_port == port && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The headers every answer carries: only the studio's own script and
/// style may run, nothing may frame it, nothing is cached.
fn with_headers(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    let set = |v: &'static str| HeaderValue::from_static(v);
    headers.insert(header::CONTENT_TYPE, set(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        set(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    headers.insert(header::REFERRER_POLICY, set("no-referrer"));
    headers.insert(header::CACHE_CONTROL, set("no-store"));
    response
}

fn html(status: StatusCode, body: String) -> Response {
    with_headers((status, body).into_response(), "text/html; charset=utf-8")
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    with_headers(
        (status, value.to_string()).into_response(),
        "application/json",
    )
}

fn failed(error: &StudioError) -> Response {
    let status = match error {
        StudioError::Write { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    json_response(
        status,
        json!({"error": error.to_string(), "html": render::error(&error.to_string())}),
    )
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    with_headers(body.into_response(), content_type)
}

/// Runs `work` on a blocking thread: loading a directory and mapping read
/// files and take CPU.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("studio work never panics")
}

async fn index(State(s): State<Studio>) -> Response {
    let dir = s.dir.clone();
    let listing = blocking(move || work::list(&dir)).await;
    html(StatusCode::OK, render::index(&s.dir, &listing))
}

#[derive(Deserialize)]
struct FileQuery {
    file: String,
}

async fn editor(State(s): State<Studio>, Query(q): Query<FileQuery>) -> Response {
    let file = match work::resolve_file(&s.dir, &q.file) {
        Ok(f) => f,
        Err(e) => return html(StatusCode::BAD_REQUEST, render::error_page(&e.to_string())),
    };
    let draft = s
        .drafts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&file)
        .cloned();
    let text = match draft {
        Some(text) => text,
        None => match crate::manifest::read_regular_file(&file, crate::manifest::MAX_FILE_BYTES) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                let why = match e {
                    crate::manifest::ReadError::Io(e) => e.to_string(),
                    crate::manifest::ReadError::NotRegular(what) => {
                        format!("is {what}, not a file")
                    }
                    crate::manifest::ReadError::TooLarge => {
                        "is larger than a manifest may be".into()
                    }
                    crate::manifest::ReadError::Unsettled => "is still being written".into(),
                };
                return html(
                    StatusCode::NOT_FOUND,
                    render::error_page(&format!("{}: {why}; pick a file from the list", q.file)),
                );
            }
        },
    };
    html(StatusCode::OK, render::editor(&q.file, &text))
}

#[derive(Deserialize)]
struct NewNetwork {
    name: String,
    /// A pasted sample response.
    #[serde(default)]
    sample: String,
    /// Or where to read one (when no sample is pasted).
    #[serde(default)]
    url: String,
}

/// "New network": the pasted sample (or one read from a URL) is saved under `samples/`, `scaffold`
/// proposes the file, which opens unsaved (a draft) in the editor.
async fn new_network(State(s): State<Studio>, axum::Json(n): axum::Json<NewNetwork>) -> Response {
    let name: String = n
        .name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        return failed(&StudioError::Sample(
            "give the network a name (letters, digits and dashes)".into(),
        ));
    }
    let rel = format!("networks/{name}.yaml");
    let sample = if n.sample.trim().is_empty() && !n.url.trim().is_empty() {
        match work::fetch_sample(&n.url).await {
            Ok(body) => body,
            Err(e) => return failed(&e),
        }
    } else {
        n.sample.into_bytes()
    };
    let dir = s.dir.clone();
    let made = blocking(move || {
        let file = work::resolve_file(&dir, &rel)?;
        if file.exists() {
            return Err(StudioError::BadFile(format!(
                "{rel} exists; choose another name"
            )));
        }
        let sample = work::save_sample(&dir, &name, &sample)?;
        let text = work::scaffold(&name, &file, &sample)?;
        Ok((rel, file, text))
    })
    .await;
    match made {
        Ok((rel, file, text)) => {
            s.drafts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(file, text);
            json_response(StatusCode::OK, json!({"file": rel}))
        }
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
struct Upload {
    name: String,
    body: String,
}

async fn upload_sample(State(s): State<Studio>, axum::Json(u): axum::Json<Upload>) -> Response {
    let dir = s.dir.clone();
    let saved = blocking(move || work::save_sample(&dir, &u.name, u.body.as_bytes())).await;
    match saved {
        Ok(path) => json_response(
            StatusCode::OK,
            json!({"sample": work::sample_label(&s.dir, &path)}),
        ),
        Err(e) => failed(&e),
    }
}

/// What the editor sends with each change.
#[derive(Deserialize, Clone)]
struct Edit {
    file: String,
    text: String,
    #[serde(default)]
    sample: String,
    #[serde(default)]
    integration: String,
    #[serde(default)]
    offer: String,
    #[serde(default)]
    page: usize,
}

/// A checked edit, with the sample and Integration it names resolved.
struct Context {
    file: PathBuf,
    checked: work::Checked,
    samples: Vec<PathBuf>,
    sample: Option<PathBuf>,
}

impl Context {
    fn load(dir: &Path, e: &Edit) -> Result<Self, StudioError> {
        let file = work::resolve_file(dir, &e.file)?;
        let checked = work::check(dir, &file, &e.text);
        let samples = work::samples(dir, checked.network.as_deref());
        let sample = if e.sample.is_empty() || e.sample.starts_with("live:") {
            None
        } else {
            Some(work::pick_sample(dir, &samples, &e.sample)?)
        };
        Ok(Self {
            file,
            checked,
            samples,
            sample,
        })
    }

    fn integration(
        &self,
        name: &str,
    ) -> Result<Option<&crate::manifest::IntegrationDef>, StudioError> {
        if name.is_empty() {
            return Ok(None);
        }
        self.checked
            .integrations
            .iter()
            .find(|i| i.name == name)
            .map(Some)
            .ok_or_else(|| StudioError::NoIntegration(name.to_string()))
    }
}

/// The editor's refresh: problems (with their lines), the file's tests,
/// the samples and Integrations to choose from, and the sample's offers.
async fn check(State(s): State<Studio>, axum::Json(e): axum::Json<Edit>) -> Response {
    let dir = s.dir.clone();
    let live = s.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let out = blocking(move || -> Result<serde_json::Value, StudioError> {
        let ctx = Context::load(&dir, &e)?;
        let gutter: Vec<_> = ctx
            .checked
            .diagnostics
            .iter()
            .map(|d| {
                json!({
                    "line": d.line,
                    "severity": if d.is_error() { "error" } else { "warning" },
                    "text": d.to_string(),
                })
            })
            .collect();
        let network = ctx.checked.network.clone();
        let outcomes = network
            .as_deref()
            .map(crate::cli::testing::run)
            .unwrap_or_default();
        let integration = ctx.integration(&e.integration).ok().flatten();
        let (sample_label, body) = match (&ctx.sample, e.sample.strip_prefix("live:")) {
            (Some(path), _) => (
                work::sample_label(&dir, path),
                network.as_deref().map(|n| work::read_sample(n, path)),
            ),
            (None, Some(n)) => (
                e.sample.clone(),
                n.parse::<usize>()
                    .ok()
                    .and_then(|n| live.get(n.wrapping_sub(1)).cloned())
                    .map(Ok),
            ),
            (None, None) => (String::new(), None),
        };
        let results = match (&network, body) {
            (None, _) => Err(StudioError::NoNetwork),
            (Some(_), None) => Ok(None),
            (Some(n), Some(Ok(body))) => {
                work::map_body(n, &work::params_of(n, integration), &body).map(Some)
            }
            (Some(_), Some(Err(err))) => Err(err),
        };
        let labels: Vec<String> = ctx
            .samples
            .iter()
            .map(|p| work::sample_label(&dir, p))
            .collect();
        let integrations: Vec<String> = ctx
            .checked
            .integrations
            .iter()
            .map(|i| i.name.clone())
            .collect();
        Ok(json!({
            "gutter": gutter,
            "problems": render::problems(&ctx.checked.diagnostics, &dir),
            "tests": render::tests(network.is_some(), &outcomes),
            "results": render::results(&sample_label, &results),
            "samples": labels,
            "integrations": integrations,
            "live_pages": live.len(),
        }))
    })
    .await;
    match out {
        Ok(v) => json_response(StatusCode::OK, v),
        Err(e) => failed(&e),
    }
}

async fn explain(State(s): State<Studio>, axum::Json(e): axum::Json<Edit>) -> Response {
    let dir = s.dir.clone();
    let live = s.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let out = blocking(move || -> Result<String, StudioError> {
        let ctx = Context::load(&dir, &e)?;
        let network = ctx.checked.network.clone().ok_or(StudioError::NoNetwork)?;
        let integration = ctx.integration(&e.integration)?;
        let body = match (&ctx.sample, e.sample.strip_prefix("live:")) {
            (Some(path), _) => work::read_sample(&network, path)?,
            (None, Some(n)) => n
                .parse::<usize>()
                .ok()
                .and_then(|n| live.get(n.wrapping_sub(1)).cloned())
                .ok_or_else(|| StudioError::BadSample(e.sample.clone()))?,
            (None, None) => return Err(StudioError::BadSample(String::new())),
        };
        let report = work::explain(&network, integration, &body, &e.offer)?;
        Ok(render::trace(&e.offer, &report))
    })
    .await;
    match out {
        Ok(html) => json_response(StatusCode::OK, json!({"html": html})),
        Err(e) => failed(&e),
    }
}

async fn lock(State(s): State<Studio>, axum::Json(e): axum::Json<Edit>) -> Response {
    let dir = s.dir.clone();
    let out = blocking(move || -> Result<String, StudioError> {
        let ctx = Context::load(&dir, &e)?;
        let network = ctx.checked.network.clone().ok_or(StudioError::NoNetwork)?;
        let sample = ctx
            .sample
            .clone()
            .ok_or_else(|| StudioError::BadSample(e.sample.clone()))?;
        let body = work::read_sample(&network, &sample)?;
        let integration = ctx.integration(&e.integration)?;
        let mapped = work::map_body(&network, &work::params_of(&network, integration), &body)?;
        Ok(work::lock(&e.text, &ctx.file, &sample, &mapped))
    })
    .await;
    match out {
        Ok(text) => json_response(StatusCode::OK, json!({"text": text})),
        Err(e) => failed(&e),
    }
}

async fn diff(State(s): State<Studio>, axum::Json(e): axum::Json<Edit>) -> Response {
    let file = match work::resolve_file(&s.dir, &e.file) {
        Ok(f) => f,
        Err(e) => return failed(&e),
    };
    let old = std::fs::read_to_string(&file).unwrap_or_default();
    let lines = work::diff(&old, &e.text);
    let changed = lines.iter().any(|(k, _)| *k != ' ');
    json_response(
        StatusCode::OK,
        json!({"html": render::diff(&e.file, file.exists(), &lines), "changed": changed}),
    )
}

async fn save(State(s): State<Studio>, axum::Json(e): axum::Json<Edit>) -> Response {
    let dir = s.dir.clone();
    let drafts = s.drafts.clone();
    let out = blocking(move || -> Result<String, StudioError> {
        let file = work::resolve_file(&dir, &e.file)?;
        work::save(&file, &e.text)?;
        drafts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&file);
        let checked = work::check(&dir, &file, &e.text);
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        Ok(render::saved(
            &e.file,
            errors,
            work::git_status(&dir, &file).as_deref(),
        ))
    })
    .await;
    match out {
        Ok(html) => json_response(StatusCode::OK, json!({"html": html})),
        Err(e) => failed(&e),
    }
}

/// A live read through the chosen Integration: its secrets are resolved
/// here, from this process's environment and secret files, as a run does;
/// the browser sees the requests redacted and the bodies as the studio
/// shows samples.
async fn live(State(s): State<Studio>, axum::Json(e): axum::Json<Edit>) -> Response {
    {
        let mut last = s.last_live.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < LIVE_INTERVAL) {
            return failed(&StudioError::Sample(format!(
                "one live read every {} s: wait a moment and read again",
                LIVE_INTERVAL.as_secs()
            )));
        }
        *last = Some(Instant::now());
    }
    if e.integration.is_empty() {
        return failed(&StudioError::NoIntegration(String::new()));
    }
    let dir = s.dir.clone();
    let edit = e.clone();
    let def = blocking(
        move || -> Result<Arc<crate::manifest::IntegrationDef>, StudioError> {
            let file = work::resolve_file(&dir, &edit.file)?;
            let checked = work::check_with(
                &dir,
                &file,
                &edit.text,
                crate::manifest::Secrets::Resolve(&crate::manifest::process_env),
            );
            checked
                .integrations
                .into_iter()
                .find(|i| i.name == edit.integration)
                .map(Arc::new)
                .ok_or(StudioError::NoIntegration(edit.integration))
        },
    )
    .await;
    let def = match def {
        Ok(d) => d,
        Err(e) => return failed(&e),
    };
    let pages = work::live_pages(&def, e.page.clamp(1, MAX_LIVE_PAGES)).await;
    let html = render::live(&pages);
    let bodies: Vec<Vec<u8>> = pages.into_iter().filter_map(|p| p.body).collect();
    let count = bodies.len();
    // Shared, not copied, by each keystroke's refresh that reads them.
    *s.live.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(bodies);
    json_response(StatusCode::OK, json!({"html": html, "pages": count}))
}

/// `offersync studio`: starts, prints the URL, serves until interrupted.
pub fn command(dir: &Path, listen: SocketAddr) -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let started = match start(Options {
            dir: dir.to_path_buf(),
            listen,
        })
        .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        println!("offersync studio for {}: open {}", dir.display(), started.url);
        if !started.addr.ip().is_loopback() {
            println!(
                "it listens beyond this machine: anyone with the token can edit the files; stop it with Ctrl-C when done"
            );
        }
        tokio::select! {
            served = started.serve() => match served {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: the studio stopped: {e}");
                    std::process::ExitCode::from(2)
                }
            },
            _ = tokio::signal::ctrl_c() => std::process::ExitCode::SUCCESS,
        }
    })
}
