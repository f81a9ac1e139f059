//! The real binary against hostile and broken upstreams on 127.0.0.1:
//! redirects that would leak the key, endless error bodies, pagers that loop,
//! truncate or repeat, feeds that shrink run by run, a pathological record,
//! terminal escapes in error bodies, and a database lost mid-run. Every
//! failure must end in a failed run that changed no campaign, or in a
//! per-record problem; never in a partial removal.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::*;
use serde_json::{Value, json};

/// One request the hostile server received.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
}

impl Hit {
    fn page(&self) -> usize {
        self.query
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
    }
}

type Reply = dyn Fn(&Hit) -> Response + Send + Sync;

#[derive(Clone)]
struct ServerState {
    hits: Arc<Mutex<Vec<Hit>>>,
    reply: Arc<Reply>,
}

/// An HTTP server on 127.0.0.1 that answers every request with `reply`.
struct Hostile {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Hostile {
    async fn start(reply: impl Fn(&Hit) -> Response + Send + Sync + 'static) -> Self {
        let state = ServerState {
            hits: Arc::default(),
            reply: Arc::new(reply),
        };
        let hits = state.hits.clone();
        let app = Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, hits }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn answer(State(state): State<ServerState>, uri: Uri, headers: HeaderMap) -> Response {
    let hit = Hit {
        path: uri.path().to_string(),
        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
    };
    state.hits.lock().unwrap().push(hit.clone());
    (state.reply)(&hit)
}

/// A page in the mock network's shape, stating `total` offers.
fn page(offers: &[Value], page: usize, total: usize) -> Response {
    axum::Json(json!({
        "offers": offers,
        "paging": {"page": page, "total_count": total}
    }))
    .into_response()
}

/// The `page`-th page of 10 of `offers`, honestly.
fn honest_page(offers: &[Value], hit: &Hit) -> Response {
    let n = hit.page();
    let slice = page_of(offers, n, 10);
    page(&slice, n, offers.len())
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [("location", to.to_string())], "").into_response()
}

/// A manifest directory for the mock network, `acme` against `base_url`.
fn manifests(base_url: &str, auth: &str, network_extra: &str, extra: &str) -> Manifests {
    let network = network_yaml(PAGE_PAGINATION, auth).replace(
        "  records: $.offers[*]\n",
        &format!("{network_extra}  records: $.offers[*]\n"),
    );
    Manifests::new(&network, &integration_yaml("acme", base_url, extra))
}

const QUERY_AUTH: &str = "{kind: query, param: api_key, value: \"{{ params.api_key }}\"}";

/// Runs the binary (off the async threads, so the servers keep answering).
async fn offersync(m: &Manifests, db: &str, args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .arg("--dir")
        .arg(m.path())
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "offersync=info");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `sync acme`, which must succeed.
async fn sync_succeeds(m: &Manifests, db: &TestDb) {
    let out = offersync(m, &db.url, &["sync", "acme"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `sync acme`, which must fail as a run (exit 1); what it printed.
async fn sync_fails(m: &Manifests, db: &TestDb) -> String {
    let out = offersync(m, &db.url, &["sync", "acme"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    shown
}

/// Page `n` (from 1) of `size` offers.
fn page_of(offers: &[Value], n: usize, size: usize) -> Vec<Value> {
    offers
        .iter()
        .skip((n - 1) * size)
        .take(size)
        .cloned()
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite)
}

fn live_campaigns(db: &TestDb) -> usize {
    db.query::<Count>("SELECT COUNT(*) AS n FROM campaigns WHERE removed_at IS NULL")[0].n as usize
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct RunRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    error: Option<String>,
}

fn runs(db: &TestDb) -> Vec<RunRow> {
    db.query("SELECT status, error FROM sync_runs ORDER BY id")
}

// --- Credentials and where requests go -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_refused_and_never_carries_the_key() {
    let offers = offers(1..=5);
    // `localhost` is another origin than `127.0.0.1`, on another port too.
    let thief = Hostile::start(move |hit| honest_page(&offers, hit)).await;
    let thief_url = format!("http://localhost:{}/steal", thief.addr.port());
    let to = thief_url.clone();
    let network = Hostile::start(move |_| redirect(&to)).await;

    for auth in [HEADER_AUTH, QUERY_AUTH] {
        let m = manifests(&network.url(), auth, "", "");
        let db = sqlite();
        let shown = sync_fails(&m, &db).await;
        assert!(shown.contains("redirected to"), "{shown}");
        assert!(shown.contains("redirects.allow_hosts"), "{shown}");
        assert!(thief.hits().is_empty(), "followed: {:?}", thief.hits());
    }
    // A refused redirect is final: one request per sync, no retries.
    assert_eq!(network.hits().len(), 2);

    // Allowed by name, the other host gets the request but no credential in
    // any form: no auth header, no key in the query, no Referer.
    for auth in [HEADER_AUTH, QUERY_AUTH] {
        let m = manifests(
            &network.url(),
            auth,
            "  redirects: {allow_hosts: [localhost]}\n",
            "",
        );
        let db = sqlite();
        sync_succeeds(&m, &db).await;
        assert_eq!(live_campaigns(&db), 5);
    }
    let hits = thief.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    for hit in hits {
        let everything = format!("{:?}{:?}", hit.query, hit.headers);
        assert!(!everything.contains(API_KEY), "the key leaked: {hit:?}");
        assert!(!hit.headers.contains_key("referer"), "{hit:?}");
        assert!(!hit.headers.contains_key("x-api-key"), "{hit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_origin_redirect_is_followed_with_credentials() {
    let offers = offers(1..=15);
    let network = Hostile::start(move |hit| {
        if hit.path == "/offers" {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(hit.query.iter().filter(|(k, _)| *k != "api_key"))
                .finish();
            return redirect(&format!("/v2/offers?{query}"));
        }
        if hit.headers.get("x-api-key").map(String::as_str) != Some(API_KEY) {
            return (StatusCode::UNAUTHORIZED, "no key").into_response();
        }
        honest_page(&offers, hit)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    sync_succeeds(&m, &db).await;
    assert_eq!(live_campaigns(&db), 15);
    assert!(
        network
            .hits()
            .iter()
            .all(|h| !h.headers.contains_key("referer"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_scheme_fails_at_once() {
    let network = Hostile::start(|_| redirect("file:///etc/passwd")).await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    let shown = sync_fails(&m, &db).await;
    assert!(
        shown.contains("only http and https redirects are followed"),
        "{shown}"
    );
    assert_eq!(network.hits().len(), 1, "not retried");
}

#[test]
fn validate_refuses_urls_that_are_not_http_or_point_at_cloud_metadata() {
    for (base_url, expected) in [
        ("file:///etc", "scheme \\\"file\\\""),
        ("gopher://127.0.0.1:70/", "scheme \\\"gopher\\\""),
        (
            "http://169.254.169.254/latest",
            "169.254.169.254 is a link-local or cloud metadata address",
        ),
    ] {
        let m = manifests(base_url, HEADER_AUTH, "", "");
        let out = Command::new(binary())
            .args(["validate", "--format", "json", "--dir"])
            .arg(m.path())
            .output()
            .unwrap();
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{base_url}: {shown}");
        assert!(shown.contains(expected), "{base_url}: {shown}");
        assert!(shown.contains("spec.params.base_url"), "{shown}");
        assert!(shown.contains("integration.yaml"), "{shown}");
    }
    // Allowed explicitly, the metadata address validates.
    let m = manifests(
        "http://169.254.169.254/latest",
        HEADER_AUTH,
        "",
        "  safety: {allow_link_local_addresses: true}\n",
    );
    let out = Command::new(binary())
        .args(["validate", "--dir"])
        .arg(m.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn secret_files_must_be_regular_files_and_a_fifo_never_blocks() {
    let m = manifests("http://127.0.0.1:9", HEADER_AUTH, "", "");
    let fifo = m.path().join("secrets/api.key");
    std::fs::remove_file(&fifo).unwrap();
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: creates a FIFO at a path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let integration = std::fs::read_to_string(m.path().join("integration.yaml")).unwrap();
    for reference in ["secrets/api.key", "/dev/null"] {
        m.set_integration(&integration.replace("secrets/api.key", reference));
        let mut child = Command::new(binary())
            .args(["validate", "--dir"])
            .arg(m.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("validate blocked on ${{file:{reference}}}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{reference}: {shown}");
        // A device is refused before it is opened: /dev is never read (#30.5).
        let expected = if reference == "/dev/null" {
            "/proc, /sys and /dev are never read"
        } else {
            "is not a regular file"
        };
        assert!(shown.contains(expected), "{reference}: {shown}");
    }
}

/// #30.5: `${file:/proc/self/environ}` passed the regular-file check, and a
/// query-auth Network sent the daemon's whole environment to the manifest's
/// base_url. Secret files are read only from the allowed folders (`secrets/`
/// beside the manifest, `$CREDENTIALS_DIRECTORY`, `--secret-root` and
/// `OFFERSYNC_SECRET_ROOTS`), symlinks resolved first; `/proc`, `/sys` and
/// `/dev` never, whatever the operator names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_files_are_read_only_from_allowed_folders_never_proc_sys_or_dev() {
    let network = Hostile::start(|hit| honest_page(&offers(1..=3), hit)).await;
    let m = manifests(&network.url(), QUERY_AUTH, "", "");
    let integration = std::fs::read_to_string(m.path().join("integration.yaml")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("key.txt"), API_KEY).unwrap();
    let outside = elsewhere.path().join("key.txt").display().to_string();
    let secrets = m.path().join("secrets");
    std::os::unix::fs::symlink("/proc/self/environ", secrets.join("environ")).unwrap();
    std::os::unix::fs::symlink(&outside, secrets.join("escape")).unwrap();
    std::fs::write(m.path().join("beside.key"), API_KEY).unwrap();
    let validate = |reference: &str, extra: &[&str], env: &[(&str, &str)]| {
        m.set_integration(&integration.replace("secrets/api.key", reference));
        let out = Command::new(binary())
            .args(["validate", "--dir"])
            .arg(m.path())
            .args(extra)
            .env_remove("OFFERSYNC_SECRET_ROOTS")
            .env_remove("CREDENTIALS_DIRECTORY")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let canonical_secrets = secrets.canonicalize().unwrap().display().to_string();
    for reference in [
        "/proc/self/environ",
        "secrets/environ",
        "/proc/1/environ",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/dev/null",
        "beside.key",
        "secrets/../beside.key",
        outside.as_str(),
        "secrets/escape",
    ] {
        let (code, shown) = validate(reference, &[], &[]);
        assert_eq!(code, Some(1), "{reference}: {shown}");
        assert!(
            shown.contains("is outside the folders secret files are read from"),
            "{reference}: {shown}"
        );
        // The error names the allowed roots and how to add one.
        assert!(shown.contains(&canonical_secrets), "{reference}: {shown}");
        assert!(
            shown.contains("$CREDENTIALS_DIRECTORY"),
            "{reference}: {shown}"
        );
        assert!(shown.contains("--secret-root"), "{reference}: {shown}");
    }
    // Named by the operator (option or environment), a folder is allowed,
    // also as a symlink's target; /proc, /sys and /dev never are.
    let root = elsewhere.path().to_str().unwrap();
    for reference in [outside.as_str(), "secrets/escape"] {
        let (code, shown) = validate(reference, &["--secret-root", root], &[]);
        assert_eq!(code, Some(0), "{reference}: {shown}");
        let (code, shown) = validate(reference, &[], &[("OFFERSYNC_SECRET_ROOTS", root)]);
        assert_eq!(code, Some(0), "{reference}: {shown}");
    }
    for named in ["/proc", "/", "/proc/self"] {
        let (code, shown) = validate("/proc/self/environ", &["--secret-root", named], &[]);
        assert_eq!(code, Some(1), "{named}: {shown}");
        assert!(shown.contains("/proc"), "{named}: {shown}");
        assert!(shown.contains("never read"), "{named}: {shown}");
    }
    // `$CREDENTIALS_DIRECTORY` is a root for `${file:}` as well.
    let (code, shown) = validate(&outside, &[], &[("CREDENTIALS_DIRECTORY", root)]);
    assert_eq!(code, Some(0), "{shown}");

    // A run with the environment as its key sends nothing anywhere.
    m.set_integration(&integration.replace("secrets/api.key", "/proc/self/environ"));
    let db = sqlite();
    let mut command = Command::new(binary());
    command
        .args(["sync", "acme", "--dir"])
        .arg(m.path())
        .env("DATABASE_URL", &db.url)
        .env("OFFERSYNC_LEAK_CANARY", "canary-5d1e");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(!shown.contains("canary-5d1e"), "{shown}");
    assert!(network.hits().is_empty(), "{:?}", network.hits());
}

// --- Memory and time bounds ------------------------------------------------

/// Runs a command to its end; its output and largest resident size, in KiB.
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(mut command: Command) -> (Output, i64) {
    use std::os::unix::process::ExitStatusExt;
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let mut stderr = child.stderr.unwrap();
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut s).unwrap();
        s
    });
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child, with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out,
        stderr: err.join().unwrap(),
    };
    (output, usage.ru_maxrss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_error_body_is_not_read_and_the_excerpt_is_short() {
    const CHUNK: usize = 64 * 1024;
    // Up to 4 GiB per response: "endless" for any client that reads it all.
    const BOUND: u64 = 4 << 30;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let network = Hostile::start(move |_| {
        let counter = counter.clone();
        let chunks = futures_util::stream::unfold(0u64, move |n| {
            let counter = counter.clone();
            async move {
                (n < BOUND).then(|| {
                    counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
                    (
                        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; CHUNK])),
                        n + CHUNK as u64,
                    )
                })
            }
        });
        (StatusCode::INTERNAL_SERVER_ERROR, Body::from_stream(chunks)).into_response()
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    let mut command = Command::new(binary());
    command
        .args(["sync", "acme", "--dir"])
        .arg(m.path())
        .env("DATABASE_URL", &db.url);
    let (out, max_rss_kib) = tokio::task::spawn_blocking(move || run_measured(command))
        .await
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("HTTP 500"), "{shown}");
    assert!(shown.contains("xxxx…"), "an excerpt: {shown}");
    assert!(
        shown.len() < 4_000,
        "the excerpt is short: {} bytes",
        shown.len()
    );
    assert_eq!(network.hits().len(), 3, "retried twice");
    assert!(max_rss_kib < 200 * 1024, "peak RSS {max_rss_kib} KiB");
    // The body was abandoned: what was sent is what the socket buffers took.
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent < 256 << 20, "{sent} bytes were sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_alternate_are_a_loop_however_large_the_total() {
    let a = offers(1..=10);
    let b = offers(11..=20);
    let network = Hostile::start(move |hit| {
        let n = hit.page();
        // Ignores the page number: A, B, A, B, ... with a huge total.
        let offers = if n % 2 == 1 { &a } else { &b };
        axum::Json(json!({"offers": offers, "paging": {"total_count": 10_000_000}})).into_response()
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    let shown = sync_fails(&m, &db).await;
    assert!(shown.contains("page 3 is identical to page 1"), "{shown}");
    // Pages 1 to 3, and page 4, fetched ahead while page 3 was read (the
    // stated total promised it); nothing after the loop was found.
    let pages: Vec<usize> = network.hits().iter().map(|h| h.page()).collect();
    assert!(
        pages.len() <= 4 && pages.iter().all(|p| *p <= 4),
        "{pages:?}"
    );
    assert_eq!(live_campaigns(&db), 0, "nothing kept");
}

/// `sync acme` with `--dir`, killed if it has not ended within `limit` (a
/// run that never ends must fail the test, not hang it); its output.
async fn sync_within(m: &Manifests, db: &TestDb, limit: Duration) -> Output {
    let mut command = Command::new(binary());
    command
        .args(["sync", "acme", "--dir"])
        .arg(m.path())
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "offersync=info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!("still running after {limit:?}: {}", text(&out));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// The run ended as a failed `pagination loop`, kept nothing, and is not
/// left `running`.
fn failed_as_a_loop(out: &Output, db: &TestDb) -> String {
    let shown = text(out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("pagination loop"), "{shown}");
    let runs = runs(db);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "failed", "{:?}", runs[0].error);
    assert!(
        runs[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("pagination loop")),
        "{:?}",
        runs[0].error
    );
    assert_eq!(live_campaigns(db), 0, "nothing kept");
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_pages_that_echo_their_number_are_a_loop_within_a_few_pages() {
    // Issue #30.1: A, B, A, B, ... where each body echoes its page number, so
    // no two bodies are identical, under a stated total of a billion.
    let a = offers(1..=10);
    let b = offers(11..=20);
    let network = Hostile::start(move |hit| {
        let n = hit.page();
        let offers = if n % 2 == 1 { &a } else { &b };
        page(offers, n, 1_000_000_000)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    let out = sync_within(&m, &db, Duration::from_secs(120)).await;
    let shown = failed_as_a_loop(&out, &db);
    assert!(
        shown.contains("page 3 lists only offers already seen"),
        "{shown}"
    );
    // Pages 1 to 3, and page 4 fetched ahead while page 3 was read.
    let pages: Vec<usize> = network.hits().iter().map(|h| h.page()).collect();
    assert!(
        pages.len() <= 4 && pages.iter().all(|p| *p <= 4),
        "{pages:?}"
    );
}

/// A manifest directory for the mock network paged by cursor.
fn cursor_manifests(base_url: &str) -> Manifests {
    let network = network_yaml(
        "{kind: cursor, param: cursor, path: $.paging.next_cursor}",
        HEADER_AUTH,
    );
    Manifests::new(&network, &integration_yaml("acme", base_url, ""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_cycles_through_fresh_tokens_is_a_loop_within_a_few_pages() {
    // Issue #30.1 for cursors: every cursor is new (it carries a counter),
    // but the pages it leads to cycle A, B, A, B, ...
    let a = offers(1..=10);
    let b = offers(11..=20);
    let network = Hostile::start(move |hit| {
        let n: u64 = hit
            .query
            .get("cursor")
            .and_then(|c| c.strip_prefix("c"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let offers = if n.is_multiple_of(2) { &a } else { &b };
        axum::Json(json!({"offers": offers, "paging": {"next_cursor": format!("c{}", n + 1)}}))
            .into_response()
    })
    .await;
    let db = sqlite();
    let out = sync_within(
        &cursor_manifests(&network.url()),
        &db,
        Duration::from_secs(120),
    )
    .await;
    let shown = failed_as_a_loop(&out, &db);
    assert!(
        shown.contains("page 3 lists only offers already seen"),
        "{shown}"
    );
    assert_eq!(network.hits().len(), 3);

    // Empty pages, each naming a fresh cursor: nothing new ever arrives.
    let network = Hostile::start(move |hit| {
        let n: u64 = hit
            .query
            .get("cursor")
            .and_then(|c| c.strip_prefix("c"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let offers = if n == 0 { offers(1..=10) } else { vec![] };
        axum::Json(json!({"offers": offers, "paging": {"next_cursor": format!("c{}", n + 1)}}))
            .into_response()
    })
    .await;
    let db = sqlite();
    let out = sync_within(
        &cursor_manifests(&network.url()),
        &db,
        Duration::from_secs(120),
    )
    .await;
    let shown = failed_as_a_loop(&out, &db);
    assert!(
        shown.contains("pages in a row added no new offer"),
        "{shown}"
    );
    assert!(network.hits().len() <= 10, "{}", network.hits().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_oauth2_token_names_the_limit_that_refused_it() {
    // Issue #30.11: a 2 MiB token answer was refused with advice to raise
    // limits.max_response_bytes, which the token's fixed 1 MiB cap ignores.
    let all = offers(1..=5);
    let network = Hostile::start(move |hit| {
        if hit.path == "/token" {
            let token = "t".repeat(2 << 20);
            return axum::Json(json!({"access_token": token, "expires_in": 3600})).into_response();
        }
        honest_page(&all, hit)
    })
    .await;
    let oauth = "{kind: oauth2, token_url: \"{{ params.base_url }}/token\", client_id: acme, client_secret: \"{{ params.api_key }}\"}";
    // The page limit raised well past the token: it is not the token's limit.
    let yaml = network_yaml(PAGE_PAGINATION, oauth).replace(
        "timeout_seconds: 5",
        "timeout_seconds: 5, max_response_bytes: 8388608",
    );
    let m = Manifests::new(&yaml, &integration_yaml("acme", &network.url(), ""));
    let db = sqlite();
    let shown = sync_fails(&m, &db).await;
    assert!(
        shown.contains("the OAuth2 token response is larger than 1 MiB"),
        "{shown}"
    );
    assert!(!shown.contains("max_response_bytes"), "{shown}");
    assert!(
        network.hits().iter().all(|h| h.path == "/token"),
        "no page was asked for without a token"
    );
    assert_eq!(live_campaigns(&db), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_page_size_does_not_end_the_feed_before_its_total() {
    let all = offers(1..=25);
    // Asked for 10 a page, the API silently serves 4.
    let network = Hostile::start(move |hit| {
        let n = hit.page();
        let slice = page_of(&all, n, 4);
        page(&slice, n, 25)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    sync_succeeds(&m, &db).await;
    assert_eq!(live_campaigns(&db), 25);
    assert_eq!(network.hits().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_ends_short_of_its_total_fails_and_removes_nothing() {
    let all = offers(1..=30);
    let truncate = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut = truncate.clone();
    let network = Hostile::start(move |hit| {
        if cut.load(Ordering::Relaxed) && hit.page() >= 3 {
            // Pages 3 and on are short and then empty: only 24 of 30 arrive.
            let slice: Vec<Value> = if hit.page() == 3 {
                all[20..24].to_vec()
            } else {
                vec![]
            };
            return page(&slice, hit.page(), 30);
        }
        honest_page(&all, hit)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    sync_succeeds(&m, &db).await;
    assert_eq!(live_campaigns(&db), 30);
    truncate.store(true, Ordering::Relaxed);
    let shown = sync_fails(&m, &db).await;
    assert!(shown.contains("ended short of its stated total"), "{shown}");
    assert!(shown.contains("24 records"), "{shown}");
    assert_eq!(live_campaigns(&db), 30, "nothing removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pager_that_repeats_records_fails_instead_of_removing_what_it_hid() {
    let all = offers(1..=40);
    // 0: honest; 1: page 4 serves page 3's records again, hiding offers
    // 31-40; 2: page 4 serves offers 26-35, half of them again, hiding 36-40.
    let broken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flag = broken.clone();
    let network = Hostile::start(move |hit| {
        let slice = match (flag.load(Ordering::Relaxed), hit.page()) {
            (1, 4) => page_of(&all, 3, 10),
            (2, 4) => all[25..35].to_vec(),
            (_, n) => page_of(&all, n, 10),
        };
        page(&slice, hit.page(), 40)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    sync_succeeds(&m, &db).await;
    assert_eq!(live_campaigns(&db), 40);
    // A whole page of ids seen before is a loop the pager stops at once
    // (#30.1); part of a page, the reconciler's duplicate guard at the end.
    for (mode, expected) in [
        (1, "page 4 lists only offers already seen"),
        (2, "5 of the 40 records fetched repeat an id"),
    ] {
        broken.store(mode, Ordering::Relaxed);
        let shown = sync_fails(&m, &db).await;
        assert!(shown.contains(expected), "{shown}");
        assert_eq!(
            live_campaigns(&db),
            40,
            "the hidden offers were not removed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_shrinking_run_by_run_trips_the_guard_until_accepted() {
    let size = Arc::new(std::sync::atomic::AtomicUsize::new(20));
    let shared = size.clone();
    let network = Hostile::start(move |hit| {
        let all = offers(1..=shared.load(Ordering::Relaxed) as u32);
        honest_page(&all, hit)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    // 20 → 12 → 8: each run removes under half of what was live before it.
    for (n, live) in [(20, 20), (12, 12)] {
        size.store(n, Ordering::Relaxed);
        sync_succeeds(&m, &db).await;
        assert_eq!(live_campaigns(&db), live);
    }
    size.store(8, Ordering::Relaxed);
    let shown = sync_fails(&m, &db).await;
    assert!(
        shown.contains("the feed lists 8 offers, 60% fewer than the 20 it listed"),
        "{shown}"
    );
    assert_eq!(live_campaigns(&db), 12);
    // The operator confirms the offers are gone; later runs measure from there.
    let out = offersync(&m, &db.url, &["sync", "acme", "--accept-removals"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_campaigns(&db), 8);
    size.store(5, Ordering::Relaxed);
    sync_succeeds(&m, &db).await;
    assert_eq!(live_campaigns(&db), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pathological_record_is_a_problem_of_its_own() {
    let mut all = offers(1..=12);
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    all[4]["tracking_meta"] = serde_json::from_str::<Value>("0").unwrap();
    let network = Hostile::start(move |hit| {
        let n = hit.page();
        let slice = page_of(&all, n, 10);
        // serde_json builds no 20k-deep tree, so the record is spliced in as text.
        let body = json!({"offers": slice, "paging": {"total_count": 12}})
            .to_string()
            .replace("\"tracking_meta\":0", &format!("\"tracking_meta\":{deep}"));
        ([("content-type", "application/json")], body).into_response()
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = TestDb::postgres();
    let out = offersync(&m, &db.url, &["sync", "acme"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert_eq!(live_campaigns(&db), 11);
    assert!(shown.contains("skipped      1  mapping_problem"), "{shown}");
    let out = offersync(&m, &db.url, &["runs", "show", "1"]).await;
    let shown = text(&out);
    assert!(
        shown.contains("5 ") && shown.contains("nested 20001 levels deep"),
        "the problem names the offer: {shown}"
    );
}

/// Issue 15.4: a records path with a filter (`[?(... || ...)]`) is read
/// record by record like a plain one: a pathological record it does not
/// select costs nothing, one it selects is a problem of its own, the filter
/// may read fields no mapping reads, and stated totals count every listed
/// offer, selected or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_records_path_reads_record_by_record() {
    let mut all = offers(1..=12);
    for (i, offer) in all.iter_mut().enumerate() {
        let id = i + 1;
        let approval = match id {
            _ if id % 3 == 0 => "required",
            _ if id % 2 == 0 => "open",
            _ => "approved",
        };
        offer["approval"] = json!(approval);
        offer["tracking_meta"] = json!(id);
    }
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let network = Hostile::start(move |hit| {
        let n = hit.page();
        let slice = page_of(&all, n, 10);
        // Offer 5 (selected) and offer 6 (not) are 20,001 levels deep.
        let body = json!({"offers": slice, "paging": {"total_count": 12}})
            .to_string()
            .replace(
                "\"tracking_meta\":5,",
                &format!("\"tracking_meta\":{deep},"),
            )
            .replace(
                "\"tracking_meta\":6,",
                &format!("\"tracking_meta\":{deep},"),
            );
        ([("content-type", "application/json")], body).into_response()
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let filtered = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "records: $.offers[*]",
        r#"records: '$.offers[?(@.approval == "approved" || @.approval == "open")]'"#,
    );
    std::fs::write(m.dir.path().join("networks/mocknet.yaml"), filtered).unwrap();
    let db = TestDb::postgres();
    let out = offersync(&m, &db.url, &["sync", "acme"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    // Selected: 1 2 4 5 7 8 10 11; offer 5 is the one problem.
    assert_eq!(live_campaigns(&db), 7, "{shown}");
    assert!(shown.contains("skipped      1  mapping_problem"), "{shown}");
}

// --- What reaches the operator ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_escapes_from_upstream_are_shown_escaped() {
    let network = Hostile::start(|_| {
        (
            StatusCode::BAD_REQUEST,
            "\u{1b}[2J\u{1b}[31mFAKE: all offers synced OK\r\nerror: none",
        )
            .into_response()
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    let mut seen = String::new();
    for args in [
        &["sync", "acme"][..],
        &["runs", "acme"],
        &["runs", "show", "1"],
        &["status"],
    ] {
        let out = offersync(&m, &db.url, args).await;
        seen.push_str(&text(&out));
    }
    assert!(seen.contains("\\u{1b}[2J\\u{1b}[31mFAKE"), "{seen}");
    assert!(!seen.contains('\u{1b}'), "{seen:?}");
    assert!(!seen.contains('\r'), "{seen:?}");
    assert!(
        !seen.lines().any(|l| l.starts_with("error: none")),
        "no faked line: {seen}"
    );
    #[derive(diesel::QueryableByName)]
    struct Error {
        #[diesel(sql_type = diesel::sql_types::Text)]
        error: String,
    }
    let stored = db.query::<Error>("SELECT error FROM sync_runs");
    assert!(!stored[0].error.contains('\u{1b}'), "{:?}", stored[0].error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_command_quietly() {
    let all = offers(1..=3000);
    let network = Hostile::start(move |hit| {
        let n = hit.page();
        let slice = page_of(&all, n, 500);
        page(&slice, n, 3000)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = sqlite();
    // The plan lists 3000 creates, far more than a pipe holds: `head` closes it.
    let script = format!(
        "'{}' plan acme --dir '{}' | head -1",
        binary().display(),
        m.path().display()
    );
    let mut command = Command::new("sh");
    command.args(["-c", &script]).env("DATABASE_URL", &db.url);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("+ create  1     Offer 1"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_mid_run_fails_the_run_exit_1_and_marks_it_failed() {
    let all = offers(1..=20);
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let network = Hostile::start(move |hit| {
        if hit.page() == 2 {
            // Page 2 waits until the test has cut the database connection.
            let opened = opened.clone();
            let slice = all[10..].to_vec();
            let body = futures_util::stream::once(async move {
                opened.notified().await;
                Ok::<_, std::io::Error>(Bytes::from(
                    json!({"offers": slice, "paging": {"total_count": 20}}).to_string(),
                ))
            });
            return (
                [("content-type", "application/json")],
                Body::from_stream(body),
            )
                .into_response();
        }
        honest_page(&all, hit)
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let db = TestDb::postgres();
    let run = offersync(&m, &db.url, &["sync", "acme"]);
    let cut = async {
        while network.hits().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Page 1 is written (or being written) inside the run's transaction.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let name = db.url.rsplit('/').next().unwrap().to_string();
        let admin = TestDb::postgres();
        let _ = admin.execute(&format!(
            "SELECT pg_terminate_backend(pid)::INT FROM pg_stat_activity WHERE datname = '{name}'"
        ));
        gate.notify_one();
    };
    let (out, ()) = tokio::join!(run, cut);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "the run failed: {shown}");
    let runs = runs(&db);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "failed", "{:?}", runs[0].error);
    assert_eq!(live_campaigns(&db), 0);
}

/// A small tmpfs on a temporary directory, unmounted when dropped: a real
/// file system that fills up (mounting needs root, as the test suite runs).
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes}"),
                "offersync-test",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        Self { dir }
    }

    /// Fills the file system up to `headroom` bytes.
    fn fill_leaving(&self, headroom: u64) {
        let path = std::ffi::CString::new(self.dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        let free = stat.f_bavail * stat.f_frsize;
        let filler = free.saturating_sub(headroom) / 4096 * 4096;
        std::fs::write(self.dir.path().join("filler"), vec![1u8; filler as usize]).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A run of `big` offers of 8 KB each onto a SQLite file on a file system
/// with 512 KiB left, after a run of 20 plain offers: the run must fail
/// (exit 1) as disk full, be marked failed, and change no campaign.
async fn a_run_onto_a_full_disk(big: u32) {
    let serve_big = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let big_now = serve_big.clone();
    let network = Hostile::start(move |hit| {
        if big_now.load(Ordering::SeqCst) {
            let all: Vec<Value> = (1..=big)
                .map(|id| {
                    let mut o = offer(id);
                    o["description"] = json!(format!("{id} {}", "x".repeat(8_000)));
                    o
                })
                .collect();
            honest_page(&all, hit)
        } else {
            honest_page(&offers(1..=20), hit)
        }
    })
    .await;
    let m = manifests(&network.url(), HEADER_AUTH, "", "");
    let fs = SmallFs::mount(8 << 20);
    let path = fs.dir.path().join("offersync.db");
    let url = format!("sqlite://{}", path.display());
    let first = offersync(&m, &url, &["sync", "acme"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    fs.fill_leaving(512 << 10);
    serve_big.store(true, Ordering::SeqCst);

    let out = offersync(&m, &url, &["sync", "acme"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("disk is full"), "{shown}");
    assert!(
        shown.contains(&format!(
            "free space on the file system of {}",
            path.display()
        )),
        "{shown}"
    );
    assert!(!shown.contains("rollback"), "{shown}");
    let mut conn = {
        use diesel::Connection;
        diesel::SqliteConnection::establish(&path.display().to_string()).unwrap()
    };
    use diesel::RunQueryDsl;
    let runs: Vec<RunRow> = diesel::sql_query("SELECT status, error FROM sync_runs ORDER BY id")
        .load(&mut conn)
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].status, "failed");
    let error = runs[1].error.as_deref().unwrap_or_default();
    assert!(error.contains("disk is full"), "{error}");
    assert!(!error.contains("rollback"), "{error}");
    let live: Vec<Count> =
        diesel::sql_query("SELECT COUNT(*) AS n FROM campaigns WHERE removed_at IS NULL")
            .load(&mut conn)
            .unwrap();
    assert_eq!(live[0].n, 20, "the failed run changed no campaign");
}

/// 3 MB of offers: SQLite's page cache (2 MB) spills into the WAL before
/// the commit, so a write inside the run's transaction hits the full disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_run_as_disk_full_not_as_the_rollback_after_it() {
    a_run_onto_a_full_disk(400).await;
}

/// 0.8 MB of offers: they stay in SQLite's page cache until the commit,
/// which is what hits the full disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_at_commit_fails_the_run_as_disk_full() {
    a_run_onto_a_full_disk(100).await;
}
