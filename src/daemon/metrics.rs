//! The daemon's Prometheus metrics (`--metrics-addr`), and the listener
//! that serves them beside the health probes and the status page.
//!
//! Owns the counters and their text exposition; it observes runs, never
//! influences them. The format is Prometheus' text format 0.0.4, a few lines
//! per family, written here rather than through `prometheus-client`, which
//! writes only OpenMetrics (that `promtool check metrics` rejects) and has
//! no process metrics (README, "Dependency notes"). Per integration, only
//! what an operator alerts on (6 series); offers, skips and run durations
//! over every integration (issue 29: 24 series an integration was 240,000
//! at 10,000 integrations).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::store::RunCounts;

#[derive(Default)]
struct Counters {
    /// integration → its own series (rendered for the integrations
    /// scheduled now only).
    integrations: BTreeMap<String, PerIntegration>,
    /// action → offers, over every integration
    offers: BTreeMap<&'static str, u64>,
    /// reason → offers skipped, over every integration
    skips: BTreeMap<String, u64>,
    /// Run durations, over every integration (per integration, only the
    /// last one: a histogram each was 17 series an integration).
    durations: Histogram,
}

/// What an operator alerts on, per integration: runs by result, when it
/// last succeeded, whether it fails now and how many times in a row, how
/// long its last run took.
#[derive(Default, Clone)]
struct PerIntegration {
    succeeded: u64,
    failed: u64,
    /// Unix seconds of the last successful run, if any is known.
    last_success: Option<i64>,
    failures_in_a_row: u32,
    last_duration: Option<f64>,
}

/// Upper bounds of the run-duration buckets, in seconds: runs take from a
/// tenth of a second (a small feed, nothing changed) to an hour (a huge
/// feed behind a rate limit).
const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Runs at or under each bound (not cumulative here; summed when rendered).
    buckets: [u64; DURATION_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Shared between the daemon loop, its runs and the HTTP server.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// The integrations scheduled now: their series exist from the start, at 0.
    known: Mutex<BTreeSet<String>>,
    integrations: AtomicI64,
    in_flight: AtomicI64,
    /// Unix seconds of the loop's last heartbeat (health).
    heartbeat: AtomicI64,
}

impl Metrics {
    /// The loop is alive, scheduling these integrations.
    pub fn heartbeat<'a>(&self, integrations: impl Iterator<Item = &'a String>) {
        self.heartbeat
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.clear();
        known.extend(integrations.cloned());
        self.integrations
            .store(known.len() as i64, Ordering::Relaxed);
    }

    /// Seconds since the loop's last heartbeat.
    pub fn heartbeat_age(&self) -> i64 {
        chrono::Utc::now().timestamp() - self.heartbeat.load(Ordering::Relaxed)
    }

    /// What the store says of an integration when the daemon starts: its
    /// last success and the failed runs since, so that a restart does not
    /// make a failing integration look healthy (or one that succeeded
    /// yesterday look as if it never had).
    pub fn seed(
        &self,
        integration: &str,
        last_success: Option<chrono::DateTime<chrono::Utc>>,
        failures_in_a_row: u32,
    ) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let i = c.integrations.entry(integration.to_string()).or_default();
        i.last_success = last_success.map(|t| t.timestamp());
        i.failures_in_a_row = failures_in_a_row;
    }

    /// A run started (its permit acquired).
    pub fn run_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A run that started ended, however it ended.
    pub fn run_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A finished run: `counts` when it ran, `succeeded` its result (a run
    /// that could not start failed).
    pub fn record_run(
        &self,
        integration: &str,
        succeeded_at: Option<chrono::DateTime<chrono::Utc>>,
        counts: Option<&RunCounts>,
        seconds: f64,
    ) {
        let succeeded = succeeded_at.is_some();
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.durations.observe(seconds);
        let i = c.integrations.entry(integration.to_string()).or_default();
        i.last_duration = Some(seconds);
        if succeeded {
            i.succeeded += 1;
            i.failures_in_a_row = 0;
            // The time the store recorded: a restart seeds the same value.
            i.last_success = succeeded_at.map(|t| t.timestamp());
        } else {
            i.failed += 1;
            i.failures_in_a_row = i.failures_in_a_row.saturating_add(1);
        }
        let Some(counts) = counts.filter(|_| succeeded) else {
            return;
        };
        // Skips are counted once, by reason, in offersync_offers_skipped_total.
        for (action, n) in [
            ("created", counts.created),
            ("updated", counts.updated),
            ("unchanged", counts.unchanged),
            ("removed", counts.removed),
            ("drift_corrected", counts.drift_corrected),
            ("warned", counts.warnings),
        ] {
            *c.offers.entry(action).or_default() += u64::from(n);
        }
        for (reason, n) in &counts.skipped_by_reason {
            *c.skips.entry(reason.as_str().to_string()).or_default() += u64::from(*n);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        let o = &mut out;
        header(
            o,
            "offersync_build_info",
            "gauge",
            "The running build: version and commit (always 1).",
        );
        let _ = writeln!(
            o,
            "offersync_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            escape(env!("OFFERSYNC_COMMIT"))
        );
        header(
            o,
            "offersync_integrations",
            "gauge",
            "Integrations the daemon schedules.",
        );
        let _ = writeln!(
            o,
            "offersync_integrations {}",
            self.integrations.load(Ordering::Relaxed)
        );
        header(
            o,
            "offersync_runs_in_flight",
            "gauge",
            "Runs started and not yet finished.",
        );
        let _ = writeln!(
            o,
            "offersync_runs_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        // Per integration: every scheduled one, from the first scrape (at 0
        // until something happens), so that rate() and alerts work at once;
        // none of an integration no longer scheduled (a deleted manifest's
        // integration neither fails nor is stale).
        let none = PerIntegration::default();
        let per = |name: &String| c.integrations.get(name).unwrap_or(&none);
        header(
            o,
            "offersync_runs_total",
            "counter",
            "Finished runs by result (a run that could not start failed).",
        );
        for name in &known {
            let (i, p) = (escape(name), per(name));
            for (result, n) in [("succeeded", p.succeeded), ("failed", p.failed)] {
                let _ = writeln!(
                    o,
                    "offersync_runs_total{{integration=\"{i}\",result=\"{result}\"}} {n}"
                );
            }
        }
        header(
            o,
            "offersync_last_success_timestamp_seconds",
            "gauge",
            "When the integration's last successful run finished (Unix time); 0: it never succeeded.",
        );
        for name in &known {
            let _ = writeln!(
                o,
                "offersync_last_success_timestamp_seconds{{integration=\"{}\"}} {}",
                escape(name),
                per(name).last_success.unwrap_or(0)
            );
        }
        header(
            o,
            "offersync_integration_failing",
            "gauge",
            "1 while the integration's last run failed, else 0.",
        );
        for name in &known {
            let _ = writeln!(
                o,
                "offersync_integration_failing{{integration=\"{}\"}} {}",
                escape(name),
                u8::from(per(name).failures_in_a_row > 0)
            );
        }
        header(
            o,
            "offersync_integration_consecutive_failures",
            "gauge",
            "Failed runs in a row since the integration's last success.",
        );
        for name in &known {
            let _ = writeln!(
                o,
                "offersync_integration_consecutive_failures{{integration=\"{}\"}} {}",
                escape(name),
                per(name).failures_in_a_row
            );
        }
        header(
            o,
            "offersync_last_run_duration_seconds",
            "gauge",
            "How long the integration's last run took (0 before its first).",
        );
        for name in &known {
            let _ = writeln!(
                o,
                "offersync_last_run_duration_seconds{{integration=\"{}\"}} {}",
                escape(name),
                per(name).last_duration.unwrap_or(0.0)
            );
        }
        // Over every integration.
        header(
            o,
            "offersync_offers_total",
            "counter",
            "Offers of successful runs by action, over every integration.",
        );
        for (action, n) in &c.offers {
            let _ = writeln!(o, "offersync_offers_total{{action=\"{action}\"}} {n}");
        }
        header(
            o,
            "offersync_offers_skipped_total",
            "counter",
            "Offers skipped by successful runs, by reason, over every integration.",
        );
        for (reason, n) in &c.skips {
            let _ = writeln!(
                o,
                "offersync_offers_skipped_total{{reason=\"{}\"}} {n}",
                escape(reason)
            );
        }
        header(
            o,
            "offersync_run_duration_seconds",
            "histogram",
            "How long runs took, over every integration.",
        );
        let h = &c.durations;
        let mut cumulative = 0;
        for (bound, n) in DURATION_BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(
                o,
                "offersync_run_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            o,
            "offersync_run_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(o, "offersync_run_duration_seconds_sum {}", h.sum);
        let _ = writeln!(o, "offersync_run_duration_seconds_count {}", h.count);
        process::render(o);
        out
    }
}

/// The standard `process_*` metrics, as Prometheus' own clients name them,
/// read from /proc at each scrape (Linux; elsewhere, none).
mod process {
    use super::header;
    use std::fmt::Write;

    /// What /proc says of this process.
    #[derive(Debug, PartialEq)]
    pub(super) struct Sample {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
        pub virtual_bytes: u64,
        pub start_time_seconds: f64,
        pub open_fds: Option<u64>,
        pub max_fds: Option<u64>,
    }

    /// `/proc/self/stat` and `/proc/stat`'s `btime`, with the clock tick
    /// and page size: `None` when they do not read as documented in proc(5).
    pub(super) fn parse(
        stat: &str,
        boot: &str,
        ticks: f64,
        page: u64,
    ) -> Option<(f64, u64, u64, f64)> {
        // The command name (field 2) is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Counting from field 3 (state) at index 0.
        let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
        let cpu = (number(14)? + number(15)?) as f64 / ticks;
        let started = number(22)? as f64 / ticks;
        let virtual_bytes = number(23)?;
        let resident = number(24)? * page;
        let btime: f64 = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some((cpu, resident, virtual_bytes, btime + started))
    }

    /// The soft limit on open files, from `/proc/self/limits`.
    pub(super) fn max_fds(limits: &str) -> Option<u64> {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line["Max open files".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn sample() -> Option<Sample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        // SAFETY: sysconf only reads configuration values.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let (cpu_seconds, resident_bytes, virtual_bytes, start_time_seconds) =
            parse(&stat, &boot, ticks.max(1) as f64, page.max(1) as u64)?;
        Some(Sample {
            cpu_seconds,
            resident_bytes,
            virtual_bytes,
            start_time_seconds,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|l| max_fds(&l)),
        })
    }

    pub(super) fn render(o: &mut String) {
        let Some(s) = sample() else {
            return;
        };
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            header(o, name, kind, help);
            let _ = writeln!(o, "{name} {value}");
        };
        one(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            s.cpu_seconds.to_string(),
        );
        one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            s.resident_bytes.to_string(),
        );
        one(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            s.virtual_bytes.to_string(),
        );
        one(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            s.start_time_seconds.to_string(),
        );
        if let Some(n) = s.open_fds {
            one(
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                n.to_string(),
            );
        }
        if let Some(n) = s.max_fds {
            one(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                n.to_string(),
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `/metrics` on `addr`, with the routes of `also` (the health
/// probes and the status page), until the runtime stops.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    also: Router,
) -> std::io::Result<SocketAddr> {
    async fn exposition(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            m.render(),
        )
    }
    let app = Router::new()
        .route("/metrics", axum::routing::get(exposition))
        .with_state(metrics)
        .merge(also);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SkipReason;

    #[test]
    fn renders_runs_offers_skips_durations_and_last_success() {
        let m = Metrics::default();
        let names = ["acme \"eu\"".to_string(), "globex".to_string()];
        m.heartbeat(names.iter());
        m.run_started();
        m.run_started();
        let mut counts = RunCounts {
            created: 3,
            unchanged: 1,
            ..RunCounts::default()
        };
        counts.skip(SkipReason::PayoutBelowMin);
        m.record_run("acme \"eu\"", Some(chrono::Utc::now()), Some(&counts), 1.5);
        m.run_finished();
        m.record_run("acme \"eu\"", None, None, 0.5);
        let text = m.render();
        assert!(text.contains("offersync_runs_in_flight 1\n"), "{text}");
        m.run_finished();
        for line in [
            "offersync_integrations 2",
            "offersync_runs_total{integration=\"acme \\\"eu\\\"\",result=\"succeeded\"} 1",
            "offersync_runs_total{integration=\"acme \\\"eu\\\"\",result=\"failed\"} 1",
            "offersync_integration_failing{integration=\"acme \\\"eu\\\"\"} 1",
            "offersync_integration_consecutive_failures{integration=\"acme \\\"eu\\\"\"} 1",
            "offersync_last_run_duration_seconds{integration=\"acme \\\"eu\\\"\"} 0.5",
            // Offers, skips and durations over every integration.
            "offersync_offers_total{action=\"created\"} 3",
            "offersync_offers_skipped_total{reason=\"payout_below_min\"} 1",
            "offersync_run_duration_seconds_sum 2",
            "offersync_run_duration_seconds_count 2",
            "offersync_run_duration_seconds_bucket{le=\"0.5\"} 1",
            "offersync_run_duration_seconds_bucket{le=\"2.5\"} 2",
            "offersync_run_duration_seconds_bucket{le=\"+Inf\"} 2",
            // A scheduled integration that has not run: its series at 0,
            // never succeeded included.
            "offersync_runs_total{integration=\"globex\",result=\"succeeded\"} 0",
            "offersync_runs_total{integration=\"globex\",result=\"failed\"} 0",
            "offersync_last_success_timestamp_seconds{integration=\"globex\"} 0",
            "offersync_integration_failing{integration=\"globex\"} 0",
            "offersync_integrations 2",
            "# TYPE offersync_runs_total counter",
            "# TYPE offersync_run_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        // A skip is counted once: by reason, not again as an action.
        assert!(!text.contains("action=\"skipped\""), "{text}");
        assert!(text.contains(&format!(
            "offersync_build_info{{version=\"{}\",commit=",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.contains(
            "offersync_last_success_timestamp_seconds{integration=\"acme \\\"eu\\\"\"} 1"
        ));
        assert!(m.render().contains("offersync_runs_in_flight 0\n"));
        assert!(m.heartbeat_age() <= super::super::health::LOOP_BEATS_WITHIN_SECONDS);
        if let Err(e) = check_exposition(&text) {
            panic!("{e}\n{text}");
        }
    }

    /// Issue 27.6: failing, in a row, and back to 0 on a success; a
    /// deleted manifest's integration has no series (it fails no more);
    /// what the store said at start is the starting point.
    #[test]
    fn failing_counts_the_failures_in_a_row_and_a_success_clears_it() {
        let m = Metrics::default();
        let names = ["acme".to_string(), "gone".to_string(), "old".to_string()];
        m.heartbeat(names.iter());
        let yesterday = chrono::Utc::now() - chrono::TimeDelta::days(1);
        m.seed("old", Some(yesterday), 4);
        for _ in 0..3 {
            m.record_run("acme", None, None, 0.1);
            m.record_run("gone", None, None, 0.1);
        }
        let text = m.render();
        for line in [
            "offersync_integration_failing{integration=\"acme\"} 1",
            "offersync_integration_consecutive_failures{integration=\"acme\"} 3",
            "offersync_last_success_timestamp_seconds{integration=\"acme\"} 0",
            "offersync_integration_failing{integration=\"gone\"} 1",
            "offersync_integration_failing{integration=\"old\"} 1",
            "offersync_integration_consecutive_failures{integration=\"old\"} 4",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains(&format!(
            "offersync_last_success_timestamp_seconds{{integration=\"old\"}} {}",
            yesterday.timestamp()
        )));
        m.record_run(
            "acme",
            Some(chrono::Utc::now()),
            Some(&RunCounts::default()),
            0.1,
        );
        m.heartbeat(names[..1].iter().chain(&names[2..]));
        let text = m.render();
        assert!(text.contains("offersync_integration_failing{integration=\"acme\"} 0"));
        assert!(
            text.contains("offersync_integration_consecutive_failures{integration=\"acme\"} 0")
        );
        assert!(!text.contains("integration=\"gone\""), "{text}");
        if let Err(e) = check_exposition(&text) {
            panic!("{e}\n{text}");
        }
    }

    /// Issue 29: 2,000 integrations were 48,003 series (24 each). Per
    /// integration now only what an operator alerts on; the figures in the
    /// README ("Metrics at scale") come from here.
    #[test]
    fn series_per_integration_stay_what_an_operator_alerts_on() {
        let series = |n: usize| {
            let m = Metrics::default();
            let names: Vec<String> = (0..n).map(|i| format!("integration-{i}")).collect();
            m.heartbeat(names.iter());
            let mut counts = RunCounts::default();
            // Every skip reason seen at least once, and every integration run.
            for reason in SkipReason::ALL {
                counts.skip(reason);
            }
            for name in &names {
                m.record_run(name, Some(chrono::Utc::now()), Some(&counts), 0.3);
                m.record_run(name, None, None, 0.3);
            }
            let text = m.render();
            let samples = text.lines().filter(|l| !l.starts_with('#')).count();
            let per_integration = text
                .lines()
                .filter(|l| l.contains("integration=\"integration-0\""))
                .count();
            (samples, per_integration)
        };
        let (at_2000, per) = series(2_000);
        let (at_10000, _) = series(10_000);
        assert_eq!(per, 6, "series of one integration");
        let fixed = at_2000 - 2_000 * per;
        assert_eq!(at_10000, fixed + 10_000 * per);
        eprintln!(
            "series: {at_2000} at 2,000 integrations, {at_10000} at 10,000 ({fixed} fixed, {per} each)"
        );
        assert!(fixed < 100, "{fixed}");
    }

    #[test]
    fn process_metrics_read_proc_as_proc5_documents_it() {
        let stat = "4242 (offer sync) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 1000 123456789 2500 18446744073709551615";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 99\n";
        let (cpu, rss, vsize, start) = process::parse(stat, boot, 100.0, 4096).unwrap();
        assert_eq!(cpu, 3.0);
        assert_eq!(rss, 2500 * 4096);
        assert_eq!(vsize, 123456789);
        assert_eq!(start, 1_700_000_010.0);
        assert_eq!(process::parse("garbage", boot, 100.0, 4096), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(process::max_fds(limits), Some(1024));
        let text = Metrics::default().render();
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(text.contains(&format!("\n{family} ")), "{family}:\n{text}");
        }
    }

    /// What `promtool check metrics` checks that matters here, for the text
    /// format 0.0.4: every sample belongs to a family declared by HELP and
    /// TYPE before it, names and labels are well formed, values are numbers,
    /// no series repeats, and a histogram's buckets are cumulative, end in
    /// `+Inf` and equal its count.
    fn check_exposition(text: &str) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars().enumerate().all(|(i, c)| {
                    c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
                })
        };
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helped: BTreeSet<String> = BTreeSet::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut buckets: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                helped.insert(name.to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (name, kind) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(format!("unknown type {kind:?}"));
                }
                if types.insert(name.to_string(), kind.to_string()).is_some() {
                    return Err(format!("{name} declared twice"));
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').ok_or(format!("no value: {line}"))?;
            let value: f64 = value.parse().map_err(|_| format!("bad value: {line}"))?;
            let name = series.split('{').next().unwrap_or_default();
            if !name_ok(name) {
                return Err(format!("bad name: {line}"));
            }
            let labels = series.strip_prefix(name).unwrap_or_default();
            if !(labels.is_empty() || labels.starts_with('{') && labels.ends_with('}')) {
                return Err(format!("bad labels: {line}"));
            }
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
                .unwrap_or(name);
            if !types.contains_key(family) || !helped.contains(family) {
                return Err(format!("{name} has no HELP and TYPE before it"));
            }
            if !seen.insert(series.to_string()) {
                return Err(format!("repeated series: {series}"));
            }
            if types[family] == "histogram" {
                let labels = series.split_once('{').map(|(_, l)| l).unwrap_or_default();
                let (base, le) = match labels.split_once(",le=\"") {
                    Some((b, le)) => (b.to_string(), Some(le.trim_end_matches("\"}").to_string())),
                    None => (labels.trim_end_matches('}').to_string(), None),
                };
                match (name.ends_with("_bucket"), le) {
                    (true, Some(le)) => buckets.entry(base).or_default().push((le, value)),
                    (false, _) if name.ends_with("_count") => {
                        counts.insert(base, value);
                    }
                    _ => {}
                }
            }
        }
        for (series, list) in &buckets {
            if !list.windows(2).all(|w| w[0].1 <= w[1].1) {
                return Err(format!("{series}: buckets not cumulative"));
            }
            match list.last() {
                Some((le, n)) if le == "+Inf" && Some(n) == counts.get(series) => {}
                _ => return Err(format!("{series}: no +Inf bucket equal to its count")),
            }
        }
        Ok(())
    }
}
