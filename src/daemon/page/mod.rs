//! The daemon's status page: read-only HTML on the metrics listener.
//!
//! This module owns the page's routes (`/`, `/integrations/NAME`,
//! `/runs/ID`, `/campaigns?q=`), what each reads (the daemon's live
//! schedule from the [`Board`], the rest from the store on a connection of
//! its own) and the headers that keep it read-only and inert (GET only, a
//! Content-Security-Policy without scripts). It must not write: refreshing
//! an integration stays `offersync refresh`. When the store cannot be read,
//! every page keeps its navigation and says so (503), and the overview and
//! an integration's page show what the daemon holds in memory: the
//! schedule, and the store's last list of integrations with its age. The HTML is rendered in
//! [`render`], escaped by construction (maud).

mod render;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::store::{IntegrationStatus, RunId, Store, StoreError};

/// What the scheduler knows of an integration and the store does not.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveState {
    pub title: Option<String>,
    /// The cron expression and its zone, as written.
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    /// The manifest's current text does not validate (the last good spec runs).
    pub manifest_broken: bool,
    /// Failed runs in a row and when the next retry is.
    pub retry: Option<(u32, DateTime<Utc>)>,
    pub source_file: String,
}

/// The scheduler's view, refreshed by the daemon loop every second.
pub struct Board {
    pub identity: String,
    pub started_at: DateTime<Utc>,
    live: Mutex<BTreeMap<String, LiveState>>,
}

impl Board {
    pub fn new(identity: String) -> Self {
        Self {
            identity,
            started_at: Utc::now(),
            live: Mutex::default(),
        }
    }

    pub fn publish(&self, live: BTreeMap<String, LiveState>) {
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = live;
    }

    fn snapshot(&self) -> BTreeMap<String, LiveState> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Skipped offers shown on one page of a run.
/// Per-offer warnings a run's page lists (the CLI lists every one kept).
const WARNINGS_SHOWN: i64 = 100;

const SKIPS_PER_PAGE: i64 = 100;
/// Runs the integration page charts.
const CHARTED_RUNS: i64 = 50;
/// Campaigns a search shows.
const SEARCH_LIMIT: i64 = 100;

#[derive(Clone)]
struct PageState {
    board: Arc<Board>,
    /// The page's own store connection (not the scheduler's).
    store: super::Control,
    /// The integrations as the store last listed them, and when: shown,
    /// marked as such, while the store cannot be read.
    remembered: Arc<Mutex<Option<Remembered>>>,
}

struct Remembered {
    at: DateTime<Utc>,
    status: Vec<IntegrationStatus>,
}

impl PageState {
    /// Runs `read` on the page's connection, on a blocking thread; a store
    /// that cannot be read is its error's text (logged here).
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, String> {
        self.store.call(read).await.map_err(|e| {
            tracing::warn!(error = %e, "the status page cannot read the store");
            e.to_string()
        })
    }

    /// What the store listed last, if it has been read.
    fn remembered(&self) -> Option<(DateTime<Utc>, Vec<IntegrationStatus>)> {
        let slot = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|r| (r.at, r.status.clone()))
    }

    fn remember(&self, status: &[IntegrationStatus]) {
        *self.remembered.lock().unwrap_or_else(|p| p.into_inner()) = Some(Remembered {
            at: Utc::now(),
            status: status.to_vec(),
        });
    }

    /// A page of the layout, with the navigation, saying that the store
    /// cannot be read and what the page would have shown.
    fn unavailable(&self, error: &str, what: &str) -> Response {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            render::unavailable(&render::Context::new(&self.board, None), error, what),
        )
    }
}

/// An HTML response with the headers every page carries: no script may
/// run (whatever a network put in a name), no frame may embed it.
fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    let set = |v: &'static str| HeaderValue::from_static(v);
    headers.insert(header::CONTENT_TYPE, set("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        set(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    headers.insert(header::REFERRER_POLICY, set("no-referrer"));
    headers.insert(header::CACHE_CONTROL, set("no-store"));
    response
}

#[derive(serde::Deserialize, Default)]
struct Refresh {
    /// Reload the page every this many seconds (`<meta http-equiv=refresh>`:
    /// no script).
    refresh: Option<u32>,
}

async fn overview(State(s): State<PageState>, Query(q): Query<Refresh>) -> Response {
    let live = s.board.snapshot();
    let ctx = render::Context::new(&s.board, q.refresh);
    match s.read(|store| store.status()).await {
        Ok(status) => {
            s.remember(&status);
            page(StatusCode::OK, render::overview(&ctx, &status, &live, None))
        }
        // What this daemon knows from memory: its schedule, and the store's
        // last list, marked with its age.
        Err(error) => {
            let remembered = s.remembered();
            let outage = render::Outage {
                error: &error,
                as_of: remembered.as_ref().map(|(at, _)| *at),
            };
            let status = remembered.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                render::overview(&ctx, status, &live, Some(&outage)),
            )
        }
    }
}

async fn integration(
    State(s): State<PageState>,
    Path(name): Path<String>,
    Query(q): Query<Refresh>,
) -> Response {
    let live = s.board.snapshot().remove(&name);
    let wanted = name.clone();
    let ctx = render::Context::new(&s.board, q.refresh);
    let read = s
        .read(move |store| {
            let Some(status) = store.status()?.into_iter().find(|i| i.name == wanted) else {
                return Ok(None);
            };
            let runs = store.recent_runs(&wanted, CHARTED_RUNS)?;
            // The reasons of the newest run that skipped anything.
            let skipped = runs.iter().find(|r| r.skipped > 0).map(|r| r.id);
            let reasons = match skipped {
                Some(id) => Some((id, store.skip_reasons(RunId(id))?)),
                None => None,
            };
            Ok(Some((status, runs, reasons)))
        })
        .await;
    match read {
        Ok(Some((status, runs, reasons))) => page(
            StatusCode::OK,
            render::integration(
                &ctx,
                &name,
                Some(&status),
                live.as_ref(),
                &runs,
                reasons.as_ref().map(|(id, r)| (*id, r.as_slice())),
                None,
            ),
        ),
        Ok(None) => not_found(&s, &format!("No integration named {name:?} in the store.")),
        Err(error) => {
            let remembered = s.remembered();
            let status = remembered
                .as_ref()
                .and_then(|(_, list)| list.iter().find(|i| i.name == name));
            if status.is_none() && live.is_none() {
                return s.unavailable(&error, &format!("the integration {name:?}"));
            }
            let outage = render::Outage {
                error: &error,
                as_of: remembered.as_ref().map(|(at, _)| *at),
            };
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                render::integration(&ctx, &name, status, live.as_ref(), &[], None, Some(&outage)),
            )
        }
    }
}

#[derive(serde::Deserialize)]
struct RunQuery {
    page: Option<i64>,
    reason: Option<String>,
}

async fn run(
    State(s): State<PageState>,
    Path(id): Path<i64>,
    Query(q): Query<RunQuery>,
) -> Response {
    let page_number = q.page.unwrap_or(1).max(1);
    let reason = q.reason.filter(|r| !r.is_empty());
    let wanted_reason = reason.clone();
    let read = s
        .read(move |store| {
            let Some(run) = store.run(RunId(id))? else {
                return Ok(None);
            };
            let reasons = store.skip_reasons(RunId(id))?;
            let skips = store.run_skips_page(
                RunId(id),
                wanted_reason.as_deref(),
                (page_number - 1).saturating_mul(SKIPS_PER_PAGE),
                SKIPS_PER_PAGE,
            )?;
            let warnings = store.run_warnings(RunId(id), 0, WARNINGS_SHOWN)?;
            Ok(Some((run, reasons, skips, warnings)))
        })
        .await;
    match read {
        Ok(Some((run, reasons, skips, warnings))) => page(
            StatusCode::OK,
            render::run(
                &render::Context::new(&s.board, None),
                &run,
                &reasons,
                &skips,
                &warnings,
                render::SkipPage {
                    number: page_number,
                    per_page: SKIPS_PER_PAGE,
                    reason: reason.as_deref(),
                },
            ),
        ),
        Ok(None) => not_found(&s, &format!("No run {id} in the store.")),
        Err(error) => s.unavailable(&error, &format!("run #{id}")),
    }
}

#[derive(serde::Deserialize)]
struct SearchQuery {
    q: Option<String>,
    integration: Option<String>,
}

async fn campaigns(State(s): State<PageState>, Query(q): Query<SearchQuery>) -> Response {
    let needle = q.q.unwrap_or_default().trim().to_string();
    let integration = q.integration.filter(|i| !i.is_empty());
    let found = if needle.is_empty() {
        Vec::new()
    } else {
        let (needle, integration) = (needle.clone(), integration.clone());
        match s
            .read(move |store| {
                store.search_campaigns(integration.as_deref(), &needle, SEARCH_LIMIT + 1)
            })
            .await
        {
            Ok(found) => found,
            Err(error) => return s.unavailable(&error, "the campaigns"),
        }
    };
    page(
        StatusCode::OK,
        render::campaigns(
            &render::Context::new(&s.board, None),
            &needle,
            integration.as_deref(),
            &found,
            SEARCH_LIMIT as usize,
        ),
    )
}

fn not_found(s: &PageState, message: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        render::not_found(&render::Context::new(&s.board, None), message),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("style.css"),
    )
}

/// The page's routes, to merge into the metrics listener's router.
pub fn router(board: Arc<Board>, database_url: &str) -> Router {
    let state = PageState {
        board,
        store: super::Control {
            url: database_url.to_string(),
            store: Arc::default(),
        },
        remembered: Arc::default(),
    };
    Router::new()
        .route("/", axum::routing::get(overview))
        .route("/integrations/{name}", axum::routing::get(integration))
        .route("/runs/{id}", axum::routing::get(run))
        .route("/campaigns", axum::routing::get(campaigns))
        .route("/assets/style.css", axum::routing::get(stylesheet))
        .with_state(state)
}
