//! Liveness and readiness on the metrics listener: `/healthz` and `/readyz`.
//!
//! Owns what each probe checks. `/healthz` is liveness and checks one thing:
//! the scheduler loop beat within the last 10 s. A store or a directory
//! that fails does not make it fail: restarting the daemon would bring
//! neither back, and a supervisor that restarts on it would only add
//! restarts to an outage. `/readyz` is readiness: the store answers a query
//! (on a connection of its own), the manifest directory can be read, and
//! the loop beats. Its body names every check, `[+]NAME ok` or `[-]NAME
//! failed: WHY`, then `readyz check passed|failed`, as Kubernetes' own
//! components write theirs; 200 when all pass, else 503.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{Control, Metrics};

/// The loop is stuck when its last beat is older than this.
pub(super) const LOOP_BEATS_WITHIN_SECONDS: i64 = 10;
/// A check that has not answered by then fails (a store or file system
/// that hangs must not hang the probe, whose caller has a timeout too).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Health {
    metrics: Arc<Metrics>,
    dir: PathBuf,
    store: Control,
    store_check: Check,
    dir_check: Check,
}

/// One check at a time: while the last one has not returned (a store or
/// file system that does not answer), a probe reports that rather than
/// starting another thread that would hang too.
#[derive(Clone, Default)]
struct Check {
    busy: Arc<AtomicBool>,
}

impl Check {
    async fn run(
        &self,
        check: impl Future<Output = Result<String, String>> + Send + 'static,
    ) -> Result<String, String> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err("the previous check has not returned yet".into());
        }
        let busy = self.busy.clone();
        let task = tokio::spawn(async move {
            let outcome = check.await;
            busy.store(false, Ordering::Release);
            outcome
        });
        match tokio::time::timeout(CHECK_TIMEOUT, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err("the check did not complete".into()),
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        }
    }
}

impl Health {
    async fn store(&self) -> Result<String, String> {
        let store = self.store.clone();
        self.store_check
            .run(async move {
                // Any read that goes to the server will do: the integration
                // of an empty name, which none has.
                store
                    .call(|s| s.integration_id("").map(|_| ()))
                    .await
                    .map(|()| String::new())
                    .map_err(|e| e.to_string())
            })
            .await
    }

    async fn directory(&self) -> Result<String, String> {
        let dir = self.dir.clone();
        self.dir_check
            .run(async move {
                tokio::task::spawn_blocking(move || {
                    // Listing is reading: a directory that is gone, not a
                    // directory or not ours to read fails here.
                    match std::fs::read_dir(&dir).and_then(|mut entries| entries.next().transpose())
                    {
                        Ok(_) => Ok(dir.display().to_string()),
                        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
                    }
                })
                .await
                .unwrap_or_else(|_| Err("the check did not complete".into()))
            })
            .await
    }

    fn scheduler_loop(&self) -> Result<String, String> {
        let age = self.metrics.heartbeat_age();
        if age <= LOOP_BEATS_WITHIN_SECONDS {
            Ok(String::new())
        } else {
            Err(format!("the scheduler loop last beat {age} s ago"))
        }
    }
}

async fn liveness(State(h): State<Health>) -> impl IntoResponse {
    match h.scheduler_loop() {
        Ok(_) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn readiness(State(h): State<Health>) -> impl IntoResponse {
    let (store, directory) = tokio::join!(h.store(), h.directory());
    let checks = [
        ("store", store),
        ("directory", directory),
        ("loop", h.scheduler_loop()),
    ];
    let mut body = String::new();
    let mut ready = true;
    for (name, outcome) in checks {
        match outcome {
            Ok(detail) if detail.is_empty() => body.push_str(&format!("[+]{name} ok\n")),
            Ok(detail) => body.push_str(&format!("[+]{name} ok: {detail}\n")),
            Err(why) => {
                ready = false;
                // One line per check, whatever the error's text holds.
                let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
                body.push_str(&format!("[-]{name} failed: {why}\n"));
            }
        }
    }
    if ready {
        body.push_str("readyz check passed\n");
        (StatusCode::OK, body)
    } else {
        body.push_str("readyz check failed\n");
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

/// `/healthz` and `/readyz`, to merge into the metrics listener's router.
pub(super) fn router(metrics: Arc<Metrics>, dir: PathBuf, database_url: &str) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(liveness))
        .route("/readyz", axum::routing::get(readiness))
        .with_state(Health {
            metrics,
            dir,
            store: Control {
                url: database_url.to_string(),
                store: Arc::default(),
            },
            store_check: Check::default(),
            dir_check: Check::default(),
        })
}
