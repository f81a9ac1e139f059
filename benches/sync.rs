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
//!   written: the rows' `xmin` are the same before and after);
//! - re-sync with 10% of the offers changed upstream.
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

const PAGE_SIZE: usize = 1000;

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
    let db = BenchDb::create(&admin_url);
    let dir = tempfile::tempdir().expect("temp dir");
    write_manifests(dir.path(), &network.base_url);
    println!(
        "sync benchmark: {count} {} offers in pages of {PAGE_SIZE}, {:.1} MB of JSON ({:.2} KB an offer)",
        std::env::var("OFFERSYNC_BENCH_OFFERS").unwrap_or_else(|_| "realistic".into()),
        network.megabytes,
        network.megabytes * 1024.0 / count as f64
    );

    let line = |what: &str, m: &Measured| {
        println!(
            "  {what:<34} {:>7.2} s  {:>8.0} offers/s  peak RSS {:>5.1} MB",
            m.seconds,
            count as f64 / m.seconds,
            m.peak_rss_kb as f64 / 1024.0
        );
    };
    let offersync = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_offersync"));
        command
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn");
        run_measured(command)
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
    line("read floor (fetch + map + rules)", &fetch);

    let first = offersync(&["sync", "bench", "--format", "json"]);
    let counts = first.counts();
    assert_eq!(counts["created"], json!(count), "{}", first.stdout);
    line("first sync", &first);

    let write_floor = db.copy_floor();
    line("write floor (COPY into a twin table)", &write_floor);

    let rows_before = db.row_versions();
    let unchanged = offersync(&["sync", "bench", "--format", "json"]);
    let counts = unchanged.counts();
    assert_eq!(counts["unchanged"], json!(count), "{}", unchanged.stdout);
    let zero_writes = db.row_versions() == rows_before;
    line("re-sync, nothing changed", &unchanged);

    network.revise();
    let changed = offersync(&["sync", "bench", "--format", "json"]);
    let counts = changed.counts();
    assert_eq!(counts["updated"], json!(count / 10), "{}", changed.stdout);
    line("re-sync, 10% changed", &changed);

    let floor = write_floor.seconds + fetch.seconds;
    let peak = [&first, &unchanged, &changed]
        .iter()
        .map(|m| m.peak_rss_kb)
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    println!("targets:");
    verdict(
        "first sync <= 1.5 x (write floor + read floor)",
        first.seconds / floor,
        1.5,
        "x",
    );
    verdict(
        "no-change re-sync <= 1.3 x read floor",
        unchanged.seconds / fetch.seconds,
        1.3,
        "x",
    );
    println!(
        "  {:<48} {}",
        "no-change re-sync writes no campaign row",
        if zero_writes { "met" } else { "NOT MET" }
    );
    verdict("peak RSS of any sync < 64 MB", peak, 64.0, "MB");
    drop(db);
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
                .chunks(PAGE_SIZE)
                .enumerate()
                .map(|(i, chunk)| {
                    let page = json!({
                        "offers": chunk,
                        "paging": {"page": i + 1, "page_size": PAGE_SIZE, "total_count": count},
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
        use std::io::Write;
        let addr = self.base_url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connects to the mock");
        write!(stream, "POST /revise HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
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
        let app = axum::Router::new()
            .route("/v1/affiliates/offersrunnable", axum::routing::get(offers))
            .route("/revise", axum::routing::post(revise))
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
    let network = network.replace("size: 500", &format!("size: {PAGE_SIZE}"));
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
