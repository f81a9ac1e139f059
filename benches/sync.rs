//! Whole-run throughput: the release `offersync` binary syncing 100k
//! Everflow-shaped offers (31 fields, pages of 1,000) from a mock network on
//! 127.0.0.1 into a fresh database on the local PostgreSQL.
//!
//! Measured, each as wall time, the child's peak RSS and offers/s:
//! - read floor: `offersync fetch` (fetch, parse, map, rules; no database);
//! - first sync into an empty database;
//! - write floor: a plain binary COPY of the final campaign rows into an
//!   identical table (indexes included), by psql's `\copy`;
//! - re-sync with no upstream change (and a check that no campaign row was
//!   written: the rows' `xmin` are the same before and after), with the fast
//!   path (kept outcomes reused) and, right after, with a full parse
//!   (`OFFERSYNC_FULL_PARSE=1`), which must count the same;
//! - re-sync with 10% of the offers changed upstream.
//!
//! `OFFERSYNC_BENCH_STORE=sqlite` puts offersync's store in an SQLite file
//! instead (the Python peer stays on PostgreSQL, so the ratios compare the
//! backends); its write floor is an `INSERT … SELECT` of the final rows into
//! a twin table, and its zero-writes check counts writes with a trigger.
//!
//! Run: `cargo bench --bench sync` (optional argument: offer count). Needs
//! PostgreSQL (`OFFERSYNC_BENCH_PG`, else `OFFERSYNC_TEST_PG`, else
//! postgres://postgres@127.0.0.1:5432/postgres; `scripts/test` starts the
//! local one) and `psql` on the PATH.

#![recursion_limit = "256"]

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::{Query, State};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query};
use serde_json::{Value, json};

/// Offers a page: `OFFERSYNC_BENCH_PAGE_SIZE` (default 1,000).
fn page_size() -> usize {
    std::env::var("OFFERSYNC_BENCH_PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Whether offersync's store is an SQLite file (`OFFERSYNC_BENCH_STORE=sqlite`).
fn sqlite() -> bool {
    std::env::var("OFFERSYNC_BENCH_STORE").is_ok_and(|s| s == "sqlite")
}

/// Runs of the whole sequence, for medians (`OFFERSYNC_BENCH_RUNS`, default 3).
fn runs() -> usize {
    std::env::var("OFFERSYNC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let admin_url = std::env::var("OFFERSYNC_BENCH_PG")
        .or_else(|_| std::env::var("OFFERSYNC_TEST_PG"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());

    if std::env::var_os(SERVE).is_some() {
        return serve(count);
    }
    let network = MockNetwork::start(count);
    let dir = tempfile::tempdir().expect("temp dir");
    write_manifests(dir.path(), &network.base_url);
    let python = peer::python();
    println!(
        "sync benchmark: {count} {} offers in pages of {} into {}, {:.1} MB of JSON ({:.2} KB an offer); {} runs",
        std::env::var("OFFERSYNC_BENCH_OFFERS").unwrap_or_else(|_| "realistic".into()),
        page_size(),
        if sqlite() { "SQLite" } else { "PostgreSQL" },
        network.megabytes,
        network.megabytes * 1024.0 / count as f64,
        runs()
    );

    let mut figures: Vec<Figures> = Vec::new();
    for _ in 0..runs() {
        let db = BenchDb::create(&admin_url);
        let store = OffersyncStore::new(&db);
        let offersync_with = |args: &[&str], full_parse: bool| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_offersync"));
            command
                .args(args)
                .arg("--dir")
                .arg(dir.path())
                .env("DATABASE_URL", store.url())
                .env("RUST_LOG", "warn");
            if full_parse {
                command.env("OFFERSYNC_FULL_PARSE", "1");
            }
            run_measured(command)
        };
        let offersync = |args: &[&str]| offersync_with(args, false);
        let peer = || {
            let mut command = Command::new(&python);
            command.arg(peer::SCRIPT).args([
                network.base_url.as_str(),
                "bench-key",
                db.url.as_str(),
                &page_size().to_string(),
            ]);
            let measured = run_measured(command);
            let report: Value = serde_json::from_str(measured.stdout.trim()).expect("JSON");
            (measured, report)
        };

        // The read floor, best of two (the first also warms the page cache).
        let fetch = offersync(&["fetch", "bench", "--format", "json"]);
        let fetch = fetch.best(offersync(&["fetch", "bench", "--format", "json"]));
        let summary: Value = serde_json::from_str(&fetch.stdout).expect("fetch prints JSON");
        assert_eq!(
            summary["offers"],
            json!(count),
            "every offer passes the rules"
        );
        let read_bytes = network.read_floor();

        let first = offersync(&["sync", "bench", "--format", "json"]);
        assert_eq!(first.counts()["created"], json!(count), "{}", first.stdout);
        let write_floor = store.write_floor();
        let (unchanged, zero_writes) =
            store.campaign_writes_none(|| offersync(&["sync", "bench", "--format", "json"]));
        assert_eq!(
            unchanged.counts()["unchanged"],
            json!(count),
            "{}",
            unchanged.stdout
        );
        let (unchanged_full, zero_writes_full) = store
            .campaign_writes_none(|| offersync_with(&["sync", "bench", "--format", "json"], true));
        assert_eq!(
            unchanged_full.counts(),
            unchanged.counts(),
            "a full parse counts as the fast path"
        );
        let reused: Value = serde_json::from_str(&unchanged.stdout).expect("JSON");
        assert_eq!(reused["reused"], json!(count), "{}", unchanged.stdout);

        let (peer_first, report) = peer();
        assert_eq!(report["created"], json!(count), "{report}");
        let (peer_unchanged, report) = peer();
        assert_eq!(report["updated"], json!(0), "{report}");

        network.revise();
        let changed = offersync(&["sync", "bench", "--format", "json"]);
        assert_eq!(
            changed.counts()["updated"],
            json!(count / 10),
            "{}",
            changed.stdout
        );
        let (peer_changed, report) = peer();
        assert_eq!(report["updated"], json!(count / 10), "{report}");
        network.restore();

        figures.push(Figures {
            read_bytes,
            fetch,
            first,
            write_floor,
            unchanged,
            unchanged_full,
            changed,
            peer_first,
            peer_unchanged,
            peer_changed,
            zero_writes: zero_writes && zero_writes_full,
        });
        drop(store);
        drop(db);
    }

    let line = |what: &str, pick: &dyn Fn(&Figures) -> &Measured| {
        let seconds: Vec<f64> = figures.iter().map(|f| pick(f).seconds).collect();
        let rss: Vec<f64> = figures
            .iter()
            .map(|f| pick(f).peak_rss_kb as f64 / 1024.0)
            .collect();
        println!(
            "  {what:<40} {}  peak RSS {}",
            spread(&seconds, "s"),
            spread(&rss, "MB")
        );
    };
    line("read floor: pages as bytes, no parse", &|f| &f.read_bytes);
    line("offersync fetch (fetch + map + rules)", &|f| &f.fetch);
    line("first sync", &|f| &f.first);
    line(
        if sqlite() {
            "write floor (INSERT-SELECT into a twin)"
        } else {
            "write floor (COPY into a twin table)"
        },
        &|f| &f.write_floor,
    );
    line("re-sync, nothing changed", &|f| &f.unchanged);
    line("re-sync, nothing changed, full parse", &|f| {
        &f.unchanged_full
    });
    line("re-sync, 10% changed", &|f| &f.changed);
    line("python peer: first sync", &|f| &f.peer_first);
    line("python peer: re-sync, nothing changed", &|f| {
        &f.peer_unchanged
    });
    line("python peer: re-sync, 10% changed", &|f| &f.peer_changed);

    let ratio = |a: &dyn Fn(&Figures) -> f64| {
        let values: Vec<f64> = figures.iter().map(a).collect();
        median(&values)
    };
    println!("targets (medians of the per-run ratios):");
    verdict_at_least(
        "first sync vs the python peer >= 10 x",
        ratio(&|f| f.peer_first.seconds / f.first.seconds),
        10.0,
    );
    verdict_at_least(
        "no-change re-sync vs the python peer >= 20 x",
        ratio(&|f| f.peer_unchanged.seconds / f.unchanged.seconds),
        20.0,
    );
    verdict_at_least(
        "10% changed re-sync vs the python peer >= 15 x",
        ratio(&|f| f.peer_changed.seconds / f.changed.seconds),
        15.0,
    );
    verdict(
        "no-change re-sync <= 2.5 x the read floor",
        ratio(&|f| f.unchanged.seconds / f.read_bytes.seconds),
        2.5,
        "x",
    );
    verdict_at_least(
        "no-change re-sync vs the python peer >= 15 x",
        ratio(&|f| f.peer_unchanged.seconds / f.unchanged.seconds),
        15.0,
    );
    println!(
        "  {:<48} {:>6.2} x",
        "no-change re-sync: full parse / fast path",
        ratio(&|f| f.unchanged_full.seconds / f.unchanged.seconds)
    );
    // The write floor of the changed rows: a tenth of the rows' COPY.
    verdict(
        "10% changed <= no-change + 1.5 x their write floor",
        ratio(&|f| f.changed.seconds / (f.unchanged.seconds + 0.15 * f.write_floor.seconds)),
        1.0,
        "x",
    );
    verdict(
        "first sync <= 1.2 x the write floor",
        ratio(&|f| f.first.seconds / f.write_floor.seconds),
        1.2,
        "x",
    );
    verdict(
        "first sync <= 1.5 x (write floor + fetch)",
        ratio(&|f| f.first.seconds / (f.write_floor.seconds + f.fetch.seconds)),
        1.5,
        "x",
    );
    println!(
        "  {:<48} {}",
        "no-change re-sync writes no campaign row",
        if figures.iter().all(|f| f.zero_writes) {
            "met"
        } else {
            "NOT MET"
        }
    );
    let peak = figures
        .iter()
        .flat_map(|f| [&f.first, &f.unchanged, &f.unchanged_full, &f.changed])
        .map(|m| m.peak_rss_kb)
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    let peer_peak = figures
        .iter()
        .flat_map(|f| [&f.peer_first, &f.peer_unchanged, &f.peer_changed])
        .map(|m| m.peak_rss_kb)
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    verdict("peak RSS of any sync <= 50 MB", peak, 50.0, "MB");
    verdict(
        "peak RSS of any sync <= the python peer's",
        peak,
        peer_peak,
        "MB",
    );
}

/// One run's measurements.
struct Figures {
    read_bytes: Measured,
    fetch: Measured,
    first: Measured,
    write_floor: Measured,
    unchanged: Measured,
    unchanged_full: Measured,
    changed: Measured,
    peer_first: Measured,
    peer_unchanged: Measured,
    peer_changed: Measured,
    zero_writes: bool,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `median (min-max)`.
fn spread(values: &[f64], unit: &str) -> String {
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    format!("{:>6.2} {unit} ({min:.2}-{max:.2})", median(values))
}

fn verdict_at_least(what: &str, value: f64, limit: f64) {
    let result = if value >= limit { "met" } else { "NOT MET" };
    println!("  {what:<48} {value:>6.2} x   {result}");
}

/// The hand-written Python importer (`benches/peer/importer.py`), in a
/// virtual environment of its own made the first time (untimed).
mod peer {
    use std::path::PathBuf;
    use std::process::Command;

    pub const SCRIPT: &str = "benches/peer/importer.py";

    pub fn python() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        let venv = cache.join("offersync-bench-peer");
        let python = venv.join("bin/python");
        let ready = Command::new(&python)
            .args(["-c", "import psycopg, jsonpath_ng, requests"])
            .status()
            .is_ok_and(|s| s.success());
        if !ready {
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "-r", "benches/peer/requirements.txt"])
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(ok, "cannot set up the python peer in {}", venv.display());
        }
        python
    }
}

fn verdict(what: &str, value: f64, limit: f64, unit: &str) {
    let result = if value <= limit { "met" } else { "NOT MET" };
    println!("  {what:<48} {value:>6.2} {unit:<2}  {result}");
}

/// The mock network's pages, pre-rendered for both editions of the feed.
struct Feed {
    /// `pages[0]` is the feed as first seen, `pages[1]` after 10% changed.
    pages: [Vec<axum::body::Bytes>; 2],
    revised: AtomicBool,
}

impl Feed {
    fn new(count: usize) -> Self {
        let render = |revised: bool| {
            let offers = common::offers_for_bench(count, revised);
            offers
                .chunks(page_size())
                .enumerate()
                .map(|(i, chunk)| {
                    let page = json!({
                        "offers": chunk,
                        "paging": {"page": i + 1, "page_size": page_size(), "total_count": count},
                    });
                    axum::body::Bytes::from(serde_json::to_vec(&page).expect("serializes"))
                })
                .collect()
        };
        Self {
            pages: [render(false), render(true)],
            revised: AtomicBool::new(false),
        }
    }
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: usize,
}

/// Set in the environment of the bench binary started as the mock network.
const SERVE: &str = "OFFERSYNC_BENCH_SERVE";

/// The mock network runs in a child process: a child's peak RSS as the
/// kernel reports it (`ru_maxrss`) includes its parent's memory at spawn
/// time, so the process that spawns `offersync` must stay small.
struct MockNetwork {
    process: std::process::Child,
    base_url: String,
    megabytes: f64,
}

impl MockNetwork {
    fn start(count: usize) -> Self {
        let mut process = Command::new(std::env::current_exe().expect("own path"))
            .arg(count.to_string())
            .env(SERVE, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the mock network starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(process.stdout.take().expect("piped")),
            &mut line,
        )
        .expect("the mock network prints its address");
        let (base_url, megabytes) = line.trim().split_once(' ').expect("URL and size");
        Self {
            process,
            base_url: base_url.to_string(),
            megabytes: megabytes.parse().expect("size"),
        }
    }

    /// Switches the feed to its revised edition (10% of offers changed).
    fn revise(&self) {
        self.post("/revise");
    }

    /// The read floor: every page fetched as bytes, one after another, on
    /// one keep-alive connection, nothing parsed (what curl would do).
    fn read_floor(&self) -> Measured {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // The crate's reqwest has no TLS provider of its own (offersync installs ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let started = Instant::now();
        let bytes = runtime.block_on(async {
            let mut bytes = 0;
            for page in 1.. {
                let body = client
                    .get(format!(
                        "{}/v1/affiliates/offersrunnable?page={page}&page_size={}",
                        self.base_url,
                        page_size()
                    ))
                    .send()
                    .await
                    .expect("the mock answers")
                    .bytes()
                    .await
                    .expect("a body");
                if body.starts_with(br#"{"offers":[]"#) {
                    break;
                }
                bytes += body.len();
            }
            bytes
        });
        Measured {
            seconds: started.elapsed().as_secs_f64(),
            peak_rss_kb: 0,
            stdout: bytes.to_string(),
        }
    }

    /// Back to the feed as first seen, for the next run.
    fn restore(&self) {
        self.post("/restore");
    }

    fn post(&self, path: &str) {
        use std::io::Write;
        let addr = self.base_url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connects to the mock");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("sends");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

impl Drop for MockNetwork {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The mock network process: prints `URL MEGABYTES`, then serves until killed.
fn serve(count: usize) {
    let feed = Arc::new(Feed::new(count));
    let bytes: usize = feed.pages[0].iter().map(|p| p.len()).sum();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        async fn offers(
            State(feed): State<Arc<Feed>>,
            Query(q): Query<PageQuery>,
        ) -> ([(&'static str, &'static str); 1], axum::body::Bytes) {
            let pages = &feed.pages[usize::from(feed.revised.load(Ordering::SeqCst))];
            let body = q
                .page
                .checked_sub(1)
                .and_then(|i| pages.get(i))
                .cloned()
                .unwrap_or_else(|| axum::body::Bytes::from_static(br#"{"offers":[],"paging":{}}"#));
            ([("content-type", "application/json")], body)
        }
        async fn revise(State(feed): State<Arc<Feed>>) -> &'static str {
            feed.revised.store(true, Ordering::SeqCst);
            "revised"
        }
        async fn restore(State(feed): State<Arc<Feed>>) -> &'static str {
            feed.revised.store(false, Ordering::SeqCst);
            "restored"
        }
        let app = axum::Router::new()
            .route("/v1/affiliates/offersrunnable", axum::routing::get(offers))
            .route("/revise", axum::routing::post(revise))
            .route("/restore", axum::routing::post(restore))
            .with_state(feed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("address");
        println!("http://{addr} {:.1}", bytes as f64 / 1e6);
        axum::serve(listener, app).await.expect("serves");
    });
}

/// The built-in Everflow network with pages of 1,000, and an integration of it.
fn write_manifests(dir: &Path, base_url: &str) {
    let network = std::fs::read_to_string("integrations.d/networks/everflow.yaml")
        .expect("the built-in everflow network");
    assert!(network.contains("size: 500"), "everflow pages by 500");
    let network = network.replace("size: 500", &format!("size: {}", page_size()));
    std::fs::create_dir_all(dir.join("networks")).expect("mkdir");
    std::fs::create_dir_all(dir.join("secrets")).expect("mkdir");
    std::fs::write(dir.join("networks/everflow.yaml"), network).expect("write");
    std::fs::write(dir.join("secrets/api.key"), "bench-key").expect("write");
    let integration = format!(
        r#"apiVersion: offersync/v1
kind: Integration
metadata: {{name: bench}}
spec:
  network: everflow
  schedule: "*/30 * * * *"
  params:
    api_key: ${{file:secrets/api.key}}
    base_url: {base_url}
  advertiser: Bench Ads
  tracking:
    append: sub1={{click_id}}&sub2={{pub_id}}
  payout:
    ratio: 0.8
"#
    );
    std::fs::write(dir.join("bench.yaml"), integration).expect("write");
}

struct Measured {
    seconds: f64,
    peak_rss_kb: i64,
    stdout: String,
}

impl Measured {
    fn best(self, other: Measured) -> Measured {
        if other.seconds < self.seconds {
            other
        } else {
            self
        }
    }

    fn counts(&self) -> Value {
        let report: Value = serde_json::from_str(&self.stdout).expect("sync prints JSON");
        assert!(report["error"].is_null(), "the run failed: {}", self.stdout);
        report["counts"].clone()
    }
}

/// Runs a command to its end; wall time and the child's peak RSS (wait4).
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's wait() cannot replace
fn run_measured(mut command: Command) -> Measured {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("offersync starts");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .expect("reads stdout");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which std has not reaped (no wait() call).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let status = ExitStatus::from_raw(status);
    assert!(status.success(), "{command:?} failed ({status}): {stdout}");
    Measured {
        seconds,
        peak_rss_kb: usage.ru_maxrss,
        stdout,
    }
}

/// A fresh database for one benchmark run, dropped at the end.
struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

#[derive(QueryableByName, PartialEq, Debug)]
struct Versions {
    #[diesel(sql_type = diesel::sql_types::Text)]
    digest: String,
}

impl BenchDb {
    fn create(admin_url: &str) -> Self {
        let name = format!("offersync_bench_{}", std::process::id());
        let mut admin = PgConnection::establish(admin_url).unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url}: {e} (run scripts/test once, or start it)")
        });
        sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("creates the bench database");
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("the admin URL names a database");
        let url = format!("{base}/{name}");
        Self {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }

    fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connects to the bench database")
    }

    /// A digest of every campaign row's version: equal digests, no row written.
    fn row_versions(&self) -> Versions {
        sql_query(
            "SELECT coalesce(md5(string_agg(xmin::text || ':' || ctid::text, ',' ORDER BY id)), '') \
             AS digest FROM campaigns",
        )
        .get_result(&mut self.connect())
        .expect("reads row versions")
    }

    /// Times psql's `\copy` of the campaigns (binary, exported untimed first)
    /// into an empty table made `LIKE campaigns INCLUDING ALL`.
    fn copy_floor(&self) -> Measured {
        let mut conn = self.connect();
        sql_query("CREATE TABLE campaigns_twin (LIKE campaigns INCLUDING ALL)")
            .execute(&mut conn)
            .expect("creates the twin table");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let export = format!(
            "\\copy campaigns TO '{}' WITH (FORMAT binary)",
            file.path().display()
        );
        let import = format!(
            "\\copy campaigns_twin FROM '{}' WITH (FORMAT binary)",
            file.path().display()
        );
        let psql = |command: &str| {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                command,
            ]);
            c
        };
        run_measured(psql(&export));
        let measured = run_measured(psql(&import));
        sql_query("DROP TABLE campaigns_twin")
            .execute(&mut conn)
            .expect("drops the twin table");
        measured
    }
}

/// Where offersync stores its campaigns in this run: the bench database, or
/// an SQLite file beside it.
enum OffersyncStore<'a> {
    Postgres(&'a BenchDb),
    Sqlite { dir: tempfile::TempDir, url: String },
}

impl<'a> OffersyncStore<'a> {
    fn new(db: &'a BenchDb) -> Self {
        if !sqlite() {
            return Self::Postgres(db);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        Self::Sqlite { dir, url }
    }

    fn url(&self) -> &str {
        match self {
            Self::Postgres(db) => &db.url,
            Self::Sqlite { url, .. } => url,
        }
    }

    fn sqlite(&self) -> diesel::SqliteConnection {
        let Self::Sqlite { dir, .. } = self else {
            unreachable!("an SQLite store")
        };
        diesel::SqliteConnection::establish(&dir.path().join("bench.db").to_string_lossy())
            .expect("opens the bench SQLite file")
    }

    /// Runs `sync` and says whether it wrote no campaign row.
    fn campaign_writes_none(&self, sync: impl FnOnce() -> Measured) -> (Measured, bool) {
        match self {
            Self::Postgres(db) => {
                let before = db.row_versions();
                let measured = sync();
                let none = db.row_versions() == before;
                (measured, none)
            }
            Self::Sqlite { .. } => {
                let mut conn = self.sqlite();
                diesel::connection::SimpleConnection::batch_execute(
                    &mut conn,
                    "CREATE TABLE bench_writes (n INTEGER NOT NULL); \
                     INSERT INTO bench_writes VALUES (0); \
                     CREATE TRIGGER bench_inserts AFTER INSERT ON campaigns \
                       BEGIN UPDATE bench_writes SET n = n + 1; END; \
                     CREATE TRIGGER bench_updates AFTER UPDATE ON campaigns \
                       BEGIN UPDATE bench_writes SET n = n + 1; END;",
                )
                .expect("installs the write counter");
                let measured = sync();
                #[derive(QueryableByName)]
                struct Writes {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let writes: Writes = sql_query("SELECT n FROM bench_writes")
                    .get_result(&mut conn)
                    .expect("reads the write counter");
                diesel::connection::SimpleConnection::batch_execute(
                    &mut conn,
                    "DROP TRIGGER bench_inserts; DROP TRIGGER bench_updates; DROP TABLE bench_writes;",
                )
                .expect("removes the write counter");
                (measured, writes.n == 0)
            }
        }
    }

    /// The fastest the backend takes the final rows: PostgreSQL's binary
    /// COPY, or SQLite's `INSERT … SELECT` into a twin with the same indexes.
    fn write_floor(&self) -> Measured {
        match self {
            Self::Postgres(db) => db.copy_floor(),
            Self::Sqlite { .. } => {
                #[derive(QueryableByName)]
                struct Sql {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    sql: String,
                }
                let mut conn = self.sqlite();
                let schema: Vec<Sql> = sql_query(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = 'campaigns' AND sql IS NOT NULL",
                )
                .load(&mut conn)
                .expect("reads the campaigns schema");
                let twin = schema
                    .iter()
                    .map(|s| {
                        // Indexes are named after their table; the table is named once.
                        s.sql.replace("campaigns", "campaigns_twin")
                    })
                    .collect::<Vec<_>>()
                    .join(";\n");
                diesel::connection::SimpleConnection::batch_execute(&mut conn, &twin)
                    .expect("creates the twin table");
                let started = Instant::now();
                sql_query("INSERT INTO campaigns_twin SELECT * FROM campaigns")
                    .execute(&mut conn)
                    .expect("copies the rows");
                let seconds = started.elapsed().as_secs_f64();
                sql_query("DROP TABLE campaigns_twin")
                    .execute(&mut conn)
                    .expect("drops the twin table");
                Measured {
                    seconds,
                    peak_rss_kb: 0,
                    stdout: String::new(),
                }
            }
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}
