//! A fleet: many integrations on several daemons sharing one PostgreSQL.
//!
//! 10,000 integrations (each a small Everflow-shaped feed from a mock network
//! on 127.0.0.1) in one directory, read by 3 release daemons against one
//! fresh database. Each integration is hourly, at a minute of the measured
//! window chosen so that every minute of the window has the same share of
//! ticks: over a window of N minutes every integration ticks exactly once.
//!
//! Measured, from the database the daemons write (`schedule_claims`, one row
//! per tick a daemon claimed; `sync_runs`, one row per run):
//! - every tick due in the window run exactly once (missed, duplicated);
//! - latency from the tick's due time to its run's start (p50, p99, max);
//! - CPU and RSS of each daemon over the window, and idle CPU per 1,000
//!   integrations afterwards (nothing due; rescans of the directory included);
//! - after `kill -9` of one daemon mid-window: how long until the ticks it had
//!   claimed and not finished are taken over by the others (goal: within the
//!   claim timeout), and that none of its ticks is lost.
//!
//! Run: `cargo bench --bench fleet` (options: `--integrations N`,
//! `--daemons N`, `--minutes N`, `--no-kill`). Needs PostgreSQL like
//! `cargo bench --bench sync` (`OFFERSYNC_BENCH_PG` or `OFFERSYNC_TEST_PG`, else
//! postgres://postgres@127.0.0.1:5432/postgres). Takes the window plus about
//! four minutes.

#![recursion_limit = "256"]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query};

/// Short, so that the kill's takeover falls inside a 10-minute window; the
/// daemon's default is 120 s.
const CLAIM_TIMEOUT_SECONDS: u64 = 60;

struct Options {
    integrations: usize,
    daemons: usize,
    minutes: u32,
    kill: bool,
}

fn options() -> Options {
    let mut options = Options {
        integrations: 10_000,
        daemons: 3,
        minutes: 10,
        kill: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} takes a number"))
        };
        match arg.as_str() {
            "--integrations" => options.integrations = value(),
            "--daemons" => options.daemons = value(),
            "--minutes" => options.minutes = value() as u32,
            "--no-kill" => options.kill = false,
            _ => {} // cargo bench passes --bench
        }
    }
    assert!(
        options.minutes >= 1 && options.minutes <= 50,
        "1-50 minutes"
    );
    assert!(options.daemons >= 1);
    options
}

/// The daemon killed mid-window, when, and the ticks it held open then.
struct Killed {
    pid: u32,
    at: DateTime<Utc>,
    open: Vec<(String, DateTime<Utc>)>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Claim {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integration: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    tick: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    claimed_by: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    claimed_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    finished_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Run {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    started_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    error: Option<String>,
}

fn main() {
    let options = options();
    let feed = common::SmallFeed::start();
    let base_url = feed.base_url.clone();
    let db = common::BenchDatabase::create("fleet");
    let (name, url, mut admin) = (db.name, db.url, db.admin);

    // The window starts at the first whole minute after the first runs of
    // every integration are expected to be done; until then nothing ticks.
    let setup_allowance = TimeDelta::seconds((options.integrations as i64 / 40).max(60) + 30);
    let window_start = next_minute(Utc::now() + setup_allowance);
    let window_end = window_start + TimeDelta::minutes(i64::from(options.minutes));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/api.key"), "bench-key").expect("write");
    let mut due: Vec<(String, DateTime<Utc>)> = Vec::with_capacity(options.integrations);
    for i in 0..options.integrations {
        let tick = window_start + TimeDelta::minutes((i as u32 % options.minutes).into());
        let integration = format!("fleet-{i:05}");
        let manifest = format!(
            r#"apiVersion: offersync/v1
kind: Integration
metadata: {{name: {integration}}}
spec:
  network: everflow
  schedule: "{minute} * * * *"
  params:
    api_key: ${{file:secrets/api.key}}
    base_url: {base_url}
  advertiser: Advertiser {i}
  payout: {{ratio: 0.8}}
"#,
            minute = tick.minute()
        );
        std::fs::write(dir.path().join(format!("{integration}.yaml")), manifest).expect("write");
        due.push((integration, tick));
    }
    println!(
        "fleet benchmark: {} integrations, {} daemons, one PostgreSQL, a {}-minute window from {}",
        options.integrations,
        options.daemons,
        options.minutes,
        window_start.format("%H:%M:%S")
    );

    let started = Instant::now();
    let mut daemons: Vec<Child> = (0..options.daemons)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_offersync"))
                .args(["daemon", "--dir"])
                .arg(dir.path())
                .args([
                    "--claim-timeout-seconds",
                    &CLAIM_TIMEOUT_SECONDS.to_string(),
                ])
                .env("DATABASE_URL", &url)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("a daemon starts")
        })
        .collect();
    let mut conn = PgConnection::establish(&url).expect("connects");
    let count = |conn: &mut PgConnection, sql: &str| -> i64 {
        sql_query(sql)
            .get_result::<Count>(conn)
            .map(|c| c.n)
            .unwrap_or(0)
    };
    let first_runs = "SELECT count(DISTINCT integration_id) AS n FROM sync_runs \
                      WHERE trigger = 'manifest' AND status = 'succeeded'";
    while count(&mut conn, first_runs) < options.integrations as i64 {
        assert!(
            Utc::now() < window_start,
            "the first runs did not finish before the window: give setup more time"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let catch_up = started.elapsed().as_secs_f64();
    println!(
        "  first run of every integration    {catch_up:>8.1} s  ({:.0} runs/s over {} daemons)",
        options.integrations as f64 / catch_up,
        options.daemons
    );

    sleep_until(window_start);
    let usage_before: Vec<(u64, f64)> =
        daemons.iter().map(|d| common::proc_usage(d.id())).collect();
    let window_clock = Instant::now();

    // Kill the last daemon 2 s into a minute past the middle: it then holds
    // claims on ticks that are running or waiting for a run slot.
    let mut killed: Option<Killed> = None;
    if options.kill && options.daemons > 1 {
        let kill_at = window_start
            + TimeDelta::minutes(i64::from(options.minutes / 2))
            + TimeDelta::seconds(2);
        sleep_until(kill_at);
        let victim = daemons.last_mut().expect("a daemon");
        let pid = victim.id();
        victim.kill().expect("kill -9");
        let _ = victim.wait();
        let killed_at = Utc::now();
        let open: Vec<(String, DateTime<Utc>)> = claims(&mut conn)
            .into_iter()
            .filter(|c| c.finished_at.is_none() && c.claimed_by.ends_with(&format!(":{pid}")))
            .map(|c| (c.integration, c.tick))
            .collect();
        println!(
            "  kill -9 of daemon {pid} at {}: {} ticks claimed and not finished",
            killed_at.format("%H:%M:%S"),
            open.len()
        );
        killed = Some(Killed {
            pid,
            at: killed_at,
            open,
        });
    }

    // The window, then time for its last ticks to finish.
    sleep_until(window_end + TimeDelta::seconds(5));
    let window_seconds = window_clock.elapsed().as_secs_f64();
    let alive = if killed.is_some() {
        options.daemons - 1
    } else {
        options.daemons
    };
    let usage_after: Vec<(u64, f64)> = daemons[..alive]
        .iter()
        .map(|d| common::proc_usage(d.id()))
        .collect();
    let drain_deadline = Instant::now() + Duration::from_secs(CLAIM_TIMEOUT_SECONDS * 3);
    let in_window = |c: &Claim| c.tick >= window_start && c.tick < window_end;
    loop {
        let open = claims(&mut conn)
            .iter()
            .filter(|c| in_window(c) && c.finished_at.is_none())
            .count();
        if open == 0 || Instant::now() > drain_deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    // Due ticks against claims against runs.
    let all_claims = claims(&mut conn);
    let window_claims: HashMap<(String, DateTime<Utc>), &Claim> = all_claims
        .iter()
        .filter(|c| in_window(c))
        .map(|c| ((c.integration.clone(), c.tick), c))
        .collect();
    let missed = due
        .iter()
        .filter(|key| {
            window_claims
                .get(key)
                .is_none_or(|c| c.finished_at.is_none())
        })
        .count();
    let extra_claims = window_claims.len() - (due.len() - missed).min(window_claims.len());
    let runs: Vec<Run> = sql_query(
        "SELECT i.name, r.started_at, r.status, r.error FROM sync_runs r \
         JOIN integrations i ON i.id = r.integration_id \
         WHERE r.trigger IN ('schedule', 'retry') ORDER BY r.started_at",
    )
    .load(&mut conn)
    .expect("reads runs");
    let mut runs_by_integration: HashMap<&str, Vec<&Run>> = HashMap::new();
    for run in runs.iter().filter(|r| r.started_at >= window_start) {
        runs_by_integration
            .entry(run.name.as_str())
            .or_default()
            .push(run);
    }
    // A tick ran twice if its integration succeeded more than once in the
    // window (a failed run is retried: that is not a duplicate).
    let duplicated: usize = runs_by_integration
        .values()
        .map(|r| {
            r.iter()
                .filter(|r| r.status == "succeeded")
                .count()
                .saturating_sub(1)
        })
        .sum();
    let failed: Vec<&Run> = runs
        .iter()
        .filter(|r| r.started_at >= window_start && r.status != "succeeded")
        .collect();
    let mut latencies: Vec<f64> = due
        .iter()
        .filter_map(|(integration, tick)| {
            let first = runs_by_integration.get(integration.as_str())?.first()?;
            Some((first.started_at - *tick).as_seconds_f64())
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        latencies[((latencies.len() - 1) as f64 * p).round() as usize]
    };

    println!(
        "  ticks due in the window           {:>8}   claimed {}, missed {missed}, duplicated {duplicated}, failed runs {}{}",
        due.len(),
        window_claims.len(),
        failed.len(),
        if extra_claims > 0 {
            format!(", {extra_claims} claims for ticks not due")
        } else {
            String::new()
        }
    );
    let mut errors: HashMap<String, usize> = HashMap::new();
    for run in &failed {
        let error = run.error.as_deref().unwrap_or(&run.status);
        *errors.entry(error.chars().take(160).collect()).or_default() += 1;
    }
    for (error, n) in &errors {
        println!("    {n} × {error}");
    }
    println!(
        "  due → start latency               p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        percentile(0.5),
        percentile(0.99),
        percentile(1.0)
    );
    let mut ticks_by_daemon: HashMap<&str, usize> = HashMap::new();
    for claim in window_claims.values() {
        *ticks_by_daemon
            .entry(claim.claimed_by.as_str())
            .or_default() += 1;
    }
    for (i, daemon) in daemons[..alive].iter().enumerate() {
        let (cpu_before, _) = usage_before[i];
        let (cpu_after, rss) = usage_after[i];
        let cpu = (cpu_after - cpu_before) as f64 / 100.0 / window_seconds;
        let ticks = ticks_by_daemon
            .iter()
            .filter(|(by, _)| by.ends_with(&format!(":{}", daemon.id())))
            .map(|(_, n)| n)
            .sum::<usize>();
        println!(
            "  daemon {} over the window           CPU {:>5.1} % of a core, RSS {rss:>5.1} MB, {ticks} ticks",
            i + 1,
            cpu * 100.0
        );
    }

    if let Some(Killed {
        pid,
        at: killed_at,
        open,
    }) = &killed
    {
        let taken_over: Vec<f64> = open
            .iter()
            .filter_map(|key| {
                let claim = all_claims
                    .iter()
                    .find(|c| (&c.integration, &c.tick) == (&key.0, &key.1))?;
                (claim.finished_at.is_some() && !claim.claimed_by.ends_with(&format!(":{pid}")))
                    .then(|| (claim.claimed_at - *killed_at).as_seconds_f64())
            })
            .collect();
        let slowest = taken_over.iter().copied().fold(0.0, f64::max);
        println!(
            "  takeover after kill -9            {} of {} open ticks run by another daemon, the last {:.1} s after the kill (claim timeout {} s)",
            taken_over.len(),
            open.len(),
            slowest,
            CLAIM_TIMEOUT_SECONDS
        );
    }

    // Idle: nothing is due for the rest of the hour; one rescan falls in the window.
    let idle_window = Duration::from_secs(65);
    let idle_before: Vec<(u64, f64)> = daemons[..alive]
        .iter()
        .map(|d| common::proc_usage(d.id()))
        .collect();
    std::thread::sleep(idle_window);
    for (i, daemon) in daemons[..alive].iter().enumerate() {
        let (cpu_after, rss) = common::proc_usage(daemon.id());
        let cpu = (cpu_after - idle_before[i].0) as f64 / 100.0 / idle_window.as_secs_f64();
        println!(
            "  daemon {} idle (65 s, 1 rescan)     CPU {:>5.2} % of a core = {:.3} % per 1,000 integrations, RSS {rss:.1} MB",
            i + 1,
            cpu * 100.0,
            cpu * 100.0 * 1000.0 / options.integrations as f64
        );
    }

    for daemon in &mut daemons {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    drop(conn);
    let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
    assert_eq!(missed, 0, "ticks were missed");
    assert_eq!(duplicated, 0, "ticks ran twice");
}

fn claims(conn: &mut PgConnection) -> Vec<Claim> {
    sql_query("SELECT integration, tick, claimed_by, claimed_at, finished_at FROM schedule_claims")
        .load(conn)
        .expect("reads claims")
}

fn next_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute");
    floor + TimeDelta::minutes(1)
}

fn sleep_until(t: DateTime<Utc>) {
    if let Ok(wait) = (t - Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
}
