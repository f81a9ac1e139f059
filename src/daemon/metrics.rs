//! The daemon's Prometheus metrics (`--metrics-addr`), and the listener
//! that serves them beside the health probes and the status page.
//!
//! Owns the counters and their text exposition; it observes runs, never
//! influences them. The format is Prometheus' text format 0.0.4, a few lines
//! per family, written here rather than through a metrics framework.

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
    /// (integration, result) → runs
    runs: BTreeMap<(String, &'static str), u64>,
    /// (integration, action) → offers
    offers: BTreeMap<(String, &'static str), u64>,
    /// (integration, reason) → offers skipped
    skips: BTreeMap<(String, String), u64>,
    /// integration → run durations
    durations: BTreeMap<String, Histogram>,
    /// integration → unix seconds of the last successful run
    last_success: BTreeMap<String, i64>,
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

    /// A run started (its permit acquired).
    pub fn run_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A run that started ended, however it ended.
    pub fn run_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A finished run: `counts` when it ran, `succeeded` its result.
    pub fn record_run(
        &self,
        integration: &str,
        succeeded: bool,
        counts: Option<&RunCounts>,
        seconds: f64,
    ) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let result = if succeeded { "succeeded" } else { "failed" };
        *c.runs.entry((integration.to_string(), result)).or_default() += 1;
        c.durations
            .entry(integration.to_string())
            .or_default()
            .observe(seconds);
        if succeeded {
            c.last_success
                .insert(integration.to_string(), chrono::Utc::now().timestamp());
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
            *c.offers
                .entry((integration.to_string(), action))
                .or_default() += u64::from(n);
        }
        for (reason, n) in &counts.skipped_by_reason {
            *c.skips
                .entry((integration.to_string(), reason.as_str().to_string()))
                .or_default() += u64::from(*n);
        }
    }

    /// Seconds since the loop's last heartbeat.
    pub fn heartbeat_age(&self) -> i64 {
        chrono::Utc::now().timestamp() - self.heartbeat.load(Ordering::Relaxed)
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
        header(
            o,
            "offersync_runs_total",
            "counter",
            "Finished runs by result.",
        );
        // Both results of every scheduled integration, at 0 until they happen,
        // so that rate() and alerts work from the first scrape.
        let mut runs = c.runs.clone();
        for integration in &known {
            for result in ["succeeded", "failed"] {
                runs.entry((integration.clone(), result)).or_insert(0);
            }
        }
        for ((integration, result), n) in &runs {
            let i = escape(integration);
            let _ = writeln!(
                o,
                "offersync_runs_total{{integration=\"{i}\",result=\"{result}\"}} {n}"
            );
        }
        header(
            o,
            "offersync_offers_total",
            "counter",
            "Offers of successful runs by action.",
        );
        for ((integration, action), n) in &c.offers {
            let i = escape(integration);
            let _ = writeln!(
                o,
                "offersync_offers_total{{integration=\"{i}\",action=\"{action}\"}} {n}"
            );
        }
        header(
            o,
            "offersync_offers_skipped_total",
            "counter",
            "Offers skipped by successful runs, by reason.",
        );
        for ((integration, reason), n) in &c.skips {
            let i = escape(integration);
            let _ = writeln!(
                o,
                "offersync_offers_skipped_total{{integration=\"{i}\",reason=\"{reason}\"}} {n}"
            );
        }
        header(
            o,
            "offersync_run_duration_seconds",
            "histogram",
            "How long runs took.",
        );
        let mut durations = c.durations.clone();
        for integration in &known {
            durations.entry(integration.clone()).or_default();
        }
        for (integration, h) in &durations {
            let i = escape(integration);
            let mut cumulative = 0;
            for (bound, n) in DURATION_BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    o,
                    "offersync_run_duration_seconds_bucket{{integration=\"{i}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                o,
                "offersync_run_duration_seconds_bucket{{integration=\"{i}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "offersync_run_duration_seconds_sum{{integration=\"{i}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "offersync_run_duration_seconds_count{{integration=\"{i}\"}} {}",
                h.count
            );
        }
        header(
            o,
            "offersync_last_success_timestamp_seconds",
            "gauge",
            "When the integration's last successful run finished (Unix time).",
        );
        for (integration, at) in &c.last_success {
            let i = escape(integration);
            let _ = writeln!(
                o,
                "offersync_last_success_timestamp_seconds{{integration=\"{i}\"}} {at}"
            );
        }
        out
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
        m.record_run("acme \"eu\"", true, Some(&counts), 1.5);
        m.run_finished();
        m.record_run("acme \"eu\"", false, None, 0.5);
        let text = m.render();
        assert!(text.contains("offersync_runs_in_flight 1\n"), "{text}");
        m.run_finished();
        for line in [
            "offersync_integrations 2",
            "offersync_runs_total{integration=\"acme \\\"eu\\\"\",result=\"succeeded\"} 1",
            "offersync_runs_total{integration=\"acme \\\"eu\\\"\",result=\"failed\"} 1",
            "offersync_offers_total{integration=\"acme \\\"eu\\\"\",action=\"created\"} 3",
            "offersync_offers_skipped_total{integration=\"acme \\\"eu\\\"\",reason=\"payout_below_min\"} 1",
            "offersync_run_duration_seconds_sum{integration=\"acme \\\"eu\\\"\"} 2",
            "offersync_run_duration_seconds_count{integration=\"acme \\\"eu\\\"\"} 2",
            "offersync_run_duration_seconds_bucket{integration=\"acme \\\"eu\\\"\",le=\"0.5\"} 1",
            "offersync_run_duration_seconds_bucket{integration=\"acme \\\"eu\\\"\",le=\"2.5\"} 2",
            "offersync_run_duration_seconds_bucket{integration=\"acme \\\"eu\\\"\",le=\"+Inf\"} 2",
            // A scheduled integration that has not run: its series at 0.
            "offersync_runs_total{integration=\"globex\",result=\"succeeded\"} 0",
            "offersync_runs_total{integration=\"globex\",result=\"failed\"} 0",
            "offersync_run_duration_seconds_count{integration=\"globex\"} 0",
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
        assert!(text.contains("offersync_last_success_timestamp_seconds{"));
        assert!(m.render().contains("offersync_runs_in_flight 0\n"));
        assert!(m.heartbeat_age() <= super::super::health::LOOP_BEATS_WITHIN_SECONDS);
        if let Err(e) = check_exposition(&text) {
            panic!("{e}\n{text}");
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
