//! The daemon's Prometheus metrics and health endpoint (`--metrics-addr`).
//!
//! Owns the counters and their text exposition; it observes runs, never
//! influences them. The format is Prometheus' text format 0.0.4, a few lines
//! per family, written here rather than through a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
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
    /// integration → (sum of seconds, runs)
    durations: BTreeMap<String, (f64, u64)>,
    /// integration → unix seconds of the last successful run
    last_success: BTreeMap<String, i64>,
}

/// Shared between the daemon loop, its runs and the HTTP server.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    integrations: AtomicI64,
    in_flight: AtomicI64,
    /// Unix seconds of the loop's last heartbeat (health).
    heartbeat: AtomicI64,
}

/// The loop is unhealthy when its heartbeat is older than this.
const HEALTHY_WITHIN_SECONDS: i64 = 10;

impl Metrics {
    pub fn heartbeat(&self, integrations: usize, in_flight: usize) {
        self.heartbeat
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        self.integrations
            .store(integrations as i64, Ordering::Relaxed);
        self.in_flight.store(in_flight as i64, Ordering::Relaxed);
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
        let duration = c.durations.entry(integration.to_string()).or_default();
        duration.0 += seconds;
        duration.1 += 1;
        if succeeded {
            c.last_success
                .insert(integration.to_string(), chrono::Utc::now().timestamp());
        }
        let Some(counts) = counts.filter(|_| succeeded) else {
            return;
        };
        for (action, n) in [
            ("created", counts.created),
            ("updated", counts.updated),
            ("unchanged", counts.unchanged),
            ("removed", counts.removed),
            ("skipped", counts.skipped),
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

    pub fn healthy(&self) -> bool {
        chrono::Utc::now().timestamp() - self.heartbeat.load(Ordering::Relaxed)
            <= HEALTHY_WITHIN_SECONDS
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let o = &mut out;
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
        for ((integration, result), n) in &c.runs {
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
            "summary",
            "How long runs took.",
        );
        for (integration, (sum, count)) in &c.durations {
            let i = escape(integration);
            let _ = writeln!(
                o,
                "offersync_run_duration_seconds_sum{{integration=\"{i}\"}} {sum}"
            );
            let _ = writeln!(
                o,
                "offersync_run_duration_seconds_count{{integration=\"{i}\"}} {count}"
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

/// Serves `/metrics` and `/healthz` on `addr` until the runtime stops.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    async fn exposition(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            m.render(),
        )
    }
    async fn health(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
        if m.healthy() {
            (StatusCode::OK, "ok\n")
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the scheduler loop is stuck\n",
            )
        }
    }
    let app = Router::new()
        .route("/metrics", axum::routing::get(exposition))
        .route("/healthz", axum::routing::get(health))
        .with_state(metrics);
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
        m.heartbeat(2, 0);
        let mut counts = RunCounts {
            created: 3,
            unchanged: 1,
            ..RunCounts::default()
        };
        counts.skip(SkipReason::PayoutBelowMin);
        m.record_run("acme \"eu\"", true, Some(&counts), 1.5);
        m.record_run("acme \"eu\"", false, None, 0.5);
        let text = m.render();
        for line in [
            "offersync_integrations 2",
            "offersync_runs_total{integration=\"acme \\\"eu\\\"\",result=\"succeeded\"} 1",
            "offersync_runs_total{integration=\"acme \\\"eu\\\"\",result=\"failed\"} 1",
            "offersync_offers_total{integration=\"acme \\\"eu\\\"\",action=\"created\"} 3",
            "offersync_offers_skipped_total{integration=\"acme \\\"eu\\\"\",reason=\"payout_below_min\"} 1",
            "offersync_run_duration_seconds_sum{integration=\"acme \\\"eu\\\"\"} 2",
            "offersync_run_duration_seconds_count{integration=\"acme \\\"eu\\\"\"} 2",
            "# TYPE offersync_runs_total counter",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains("offersync_last_success_timestamp_seconds{"));
        assert!(m.healthy());
    }
}
