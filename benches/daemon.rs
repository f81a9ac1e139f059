//! The daemon at scale: 1,000 integrations in one directory (daily
//! schedules, each a small Everflow-shaped feed from a mock network on
//! 127.0.0.1) against a fresh database on the local PostgreSQL.
//!
//! Measured: how long the release daemon takes to give every new integration
//! its first run, then its CPU use and RSS while idle over a minute (which
//! includes one periodic rescan of the 1,000 files).
//!
//! Run: `cargo bench --bench daemon` (optional argument: integration count).
//! Needs PostgreSQL like `cargo bench --bench sync`.

#![recursion_limit = "256"]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let feed = common::SmallFeed::start();
    let base_url = feed.base_url.clone();
    let db = common::BenchDatabase::create("daemon");
    let (name, url, mut admin) = (db.name, db.url, db.admin);

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/api.key"), "bench-key").expect("write");
    for i in 0..count {
        let manifest = format!(
            r#"apiVersion: offersync/v1
kind: Integration
metadata: {{name: bench-{i:04}}}
spec:
  network: everflow
  schedule: "{minute} 3 * * *"
  params:
    api_key: ${{file:secrets/api.key}}
    base_url: {base_url}
  advertiser: Advertiser {i}
  payout: {{ratio: 0.8}}
"#,
            minute = i % 60
        );
        std::fs::write(dir.path().join(format!("bench-{i:04}.yaml")), manifest).expect("write");
    }
    println!("daemon benchmark: {count} integrations, a 3-offer feed each");

    let started = Instant::now();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .args(["daemon", "--dir"])
        .arg(dir.path())
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let mut conn = PgConnection::establish(&url).expect("connects");
    let succeeded = |conn: &mut PgConnection| -> i64 {
        sql_query("SELECT count(*) AS n FROM sync_runs WHERE status = 'succeeded'")
            .get_result::<Count>(conn)
            .map(|c| c.n)
            .unwrap_or(0)
    };
    while succeeded(&mut conn) < count as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the first runs did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let catch_up = started.elapsed().as_secs_f64();
    println!(
        "  first run of every integration   {catch_up:>7.1} s  ({:.0} runs/s, 4 at a time)",
        count as f64 / catch_up
    );

    // Idle: nothing due until 03:00; one periodic rescan falls in the window.
    std::thread::sleep(Duration::from_secs(2));
    let pid = daemon.id();
    let (cpu_before, _) = common::proc_usage(pid);
    let window = Duration::from_secs(65);
    std::thread::sleep(window);
    let (cpu_after, rss_mb) = common::proc_usage(pid);
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let idle_cpu = (cpu_after - cpu_before) as f64 / ticks_per_second / window.as_secs_f64();
    println!(
        "  idle CPU over {}s (1 rescan)       {:>6.2} % of one core",
        window.as_secs(),
        idle_cpu * 100.0
    );
    println!("  RSS while idle                   {rss_mb:>7.1} MB");

    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(conn);
    let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
}
