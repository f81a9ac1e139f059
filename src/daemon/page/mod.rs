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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::provenance::{self, Revision};
use crate::store::{IntegrationHealth, IntegrationStatus, RunId, Store, StoreError};

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
    /// Failed runs in a row (scheduled ones too).
    pub failures: u32,
    /// When the next retry is, before the next tick.
    pub retry: Option<DateTime<Utc>>,
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
/// Changes shown on one page of a run.
const CHANGES_PER_PAGE: i64 = 100;
/// Runs the integration page charts.
const CHARTED_RUNS: i64 = 50;
/// Integrations on one page of the overview (2,000 on one page made 1.6 MB).
const INTEGRATIONS_PER_PAGE: i64 = 100;
/// Campaigns on one page of an integration's list.
const CAMPAIGNS_PER_PAGE: i64 = 100;
/// Campaigns a search shows.
const SEARCH_LIMIT: i64 = 100;

#[derive(Clone)]
struct PageState {
    board: Arc<Board>,
    /// The page's own store connection (not the scheduler's).
    store: super::Control,
    /// The integrations as the store last listed them, and when: shown,
    /// marked as such, while the store cannot be read.
    remembered: Arc<Mutex<Remembered>>,
    /// Revisions looked up in git, by manifest file and spec hash, and when.
    revisions: Arc<Mutex<RevisionCache>>,
}

/// Revisions by manifest file and spec hash, with when they were looked up.
type RevisionCache = HashMap<(String, String), (Instant, Revision)>;

/// How long a revision looked up in git is shown before it is looked up
/// again (a commit of an applied edit shows within this).
const REVISION_FRESH: Duration = Duration::from_secs(30);

/// What the store answered last: every integration's health, and the
/// status of those a page showed.
#[derive(Default)]
struct Remembered {
    at: Option<DateTime<Utc>>,
    health: Vec<IntegrationHealth>,
    status: BTreeMap<String, IntegrationStatus>,
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

    /// When the store was last read, its list of integrations' health, and
    /// the status of these (those it has).
    fn remembered(
        &self,
        names: &[String],
    ) -> (
        Option<DateTime<Utc>>,
        Vec<IntegrationHealth>,
        Vec<IntegrationStatus>,
    ) {
        let slot = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        let status = names
            .iter()
            .filter_map(|n| slot.status.get(n).cloned())
            .collect();
        (slot.at, slot.health.clone(), status)
    }

    fn remember(&self, health: Option<&[IntegrationHealth]>, status: &[IntegrationStatus]) {
        let mut slot = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        slot.at = Some(Utc::now());
        if let Some(health) = health {
            slot.health = health.to_vec();
        }
        for s in status {
            slot.status.insert(s.name.clone(), s.clone());
        }
    }

    /// Where each integration's applied spec came from (git, or its hash),
    /// looked up on a blocking thread, cached for [`REVISION_FRESH`].
    async fn revisions(&self, status: &[IntegrationStatus]) -> BTreeMap<String, Revision> {
        let wanted: Vec<(String, String, String, String)> = status
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.source_file.clone(),
                    s.spec.clone(),
                    s.spec_hash.clone(),
                )
            })
            .collect();
        let cache = self.revisions.clone();
        tokio::task::spawn_blocking(move || {
            let mut found = BTreeMap::new();
            for (name, file, spec, hash) in wanted {
                let key = (file, hash);
                let cached = {
                    let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
                    cache
                        .get(&key)
                        .filter(|(at, _)| at.elapsed() < REVISION_FRESH)
                        .map(|(_, r)| r.clone())
                };
                let revision = cached.unwrap_or_else(|| {
                    let revision =
                        provenance::revision(std::path::Path::new(&key.0), &spec, &key.1);
                    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
                    cache.retain(|_, (at, _)| at.elapsed() < REVISION_FRESH);
                    cache.insert(key.clone(), (Instant::now(), revision.clone()));
                    revision
                });
                found.insert(name, revision);
            }
            found
        })
        .await
        .unwrap_or_default()
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

#[derive(serde::Deserialize, Default)]
struct OverviewQuery {
    refresh: Option<u32>,
    page: Option<i64>,
}

/// The names on page `number` of the overview: the store's integrations
/// and those this daemon schedules, by name.
fn overview_names(
    health: &[IntegrationHealth],
    live: &BTreeMap<String, LiveState>,
    number: i64,
) -> (Vec<String>, i64) {
    let names: std::collections::BTreeSet<&str> = health
        .iter()
        .map(|h| h.name.as_str())
        .chain(live.keys().map(String::as_str))
        .collect();
    let total = names.len() as i64;
    let start = usize::try_from((number - 1).saturating_mul(INTEGRATIONS_PER_PAGE)).unwrap_or(0);
    let page = names
        .into_iter()
        .skip(start)
        .take(INTEGRATIONS_PER_PAGE as usize)
        .map(str::to_string)
        .collect();
    (page, total)
}

async fn overview(State(s): State<PageState>, Query(q): Query<OverviewQuery>) -> Response {
    let live = s.board.snapshot();
    let ctx = render::Context::new(&s.board, q.refresh);
    let number = q.page.unwrap_or(1).max(1);
    let known = live.clone();
    let read = s
        .read(move |store| {
            let health = store.integration_health()?;
            let (names, total) = overview_names(&health, &known, number);
            let status = store.status_of(&names)?;
            Ok((health, names, total, status))
        })
        .await;
    match read {
        Ok((health, names, total, status)) => {
            s.remember(Some(&health), &status);
            let revisions = s.revisions(&status).await;
            let view = render::OverviewPage {
                health: &health,
                names: &names,
                status: &status,
                revisions: &revisions,
                paging: render::Paging {
                    number,
                    per_page: INTEGRATIONS_PER_PAGE,
                    total,
                },
            };
            page(StatusCode::OK, render::overview(&ctx, &view, &live, None))
        }
        // What this daemon knows from memory: its schedule, and the store's
        // last answers, marked with their age.
        Err(error) => {
            let (at, health, _) = s.remembered(&[]);
            let (names, total) = overview_names(&health, &live, number);
            let (_, _, status) = s.remembered(&names);
            let revisions = s.revisions(&status).await;
            let outage = render::Outage {
                error: &error,
                as_of: at,
            };
            let view = render::OverviewPage {
                health: &health,
                names: &names,
                status: &status,
                revisions: &revisions,
                paging: render::Paging {
                    number,
                    per_page: INTEGRATIONS_PER_PAGE,
                    total,
                },
            };
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                render::overview(&ctx, &view, &live, Some(&outage)),
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
            let Some(status) = store.status_of(std::slice::from_ref(&wanted))?.pop() else {
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
        Ok(Some((status, runs, reasons))) => {
            s.remember(None, std::slice::from_ref(&status));
            let revision = s.revisions(std::slice::from_ref(&status)).await.pop_first();
            page(
                StatusCode::OK,
                render::integration(
                    &ctx,
                    &name,
                    Some((&status, revision.as_ref().map(|(_, r)| r))),
                    live.as_ref(),
                    &runs,
                    reasons.as_ref().map(|(id, r)| (*id, r.as_slice())),
                    None,
                ),
            )
        }
        Ok(None) => not_found(&s, &format!("No integration named {name:?} in the store.")),
        Err(error) => {
            let (at, _, mut status) = s.remembered(std::slice::from_ref(&name));
            let status = status.pop();
            if status.is_none() && live.is_none() {
                return s.unavailable(&error, &format!("the integration {name:?}"));
            }
            let revision = match &status {
                Some(status) => s.revisions(std::slice::from_ref(status)).await.pop_first(),
                None => None,
            };
            let outage = render::Outage {
                error: &error,
                as_of: at,
            };
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                render::integration(
                    &ctx,
                    &name,
                    status
                        .as_ref()
                        .map(|s| (s, revision.as_ref().map(|(_, r)| r))),
                    live.as_ref(),
                    &[],
                    None,
                    Some(&outage),
                ),
            )
        }
    }
}

#[derive(serde::Deserialize)]
struct RunQuery {
    /// The page of skipped offers.
    page: Option<i64>,
    reason: Option<String>,
    /// The page of changes.
    changes: Option<i64>,
}

async fn run(
    State(s): State<PageState>,
    Path(id): Path<i64>,
    Query(q): Query<RunQuery>,
) -> Response {
    let page_number = q.page.unwrap_or(1).max(1);
    let changes_page = q.changes.unwrap_or(1).max(1);
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
            let changes = store.run_changes(
                RunId(id),
                (changes_page - 1).saturating_mul(CHANGES_PER_PAGE),
                CHANGES_PER_PAGE,
            )?;
            Ok(Some((run, reasons, skips, warnings, changes)))
        })
        .await;
    match read {
        Ok(Some((run, reasons, skips, warnings, (changes, changes_total)))) => page(
            StatusCode::OK,
            render::run(
                &render::Context::new(&s.board, None),
                &run,
                &render::RunDetails {
                    reasons: &reasons,
                    skips: &skips,
                    warnings: &warnings,
                    changes: &changes,
                },
                render::SkipPage {
                    number: page_number,
                    per_page: SKIPS_PER_PAGE,
                    reason: reason.as_deref(),
                },
                render::Paging {
                    number: changes_page,
                    per_page: CHANGES_PER_PAGE,
                    total: changes_total,
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
    page: Option<i64>,
}

/// `/campaigns?q=`: a search; `/campaigns?integration=NAME`: that
/// integration's campaigns, a page at a time.
async fn campaigns(State(s): State<PageState>, Query(q): Query<SearchQuery>) -> Response {
    let needle = q.q.unwrap_or_default().trim().to_string();
    let integration = q.integration.filter(|i| !i.is_empty());
    let number = q.page.unwrap_or(1).max(1);
    let (found, listing) = match (needle.is_empty(), integration.clone()) {
        (true, None) => (
            Vec::new(),
            render::Listing::Search {
                limit: SEARCH_LIMIT as usize,
            },
        ),
        (true, Some(name)) => {
            let read = s
                .read(move |store| {
                    store.campaigns_page(
                        &name,
                        (number - 1).saturating_mul(CAMPAIGNS_PER_PAGE),
                        CAMPAIGNS_PER_PAGE,
                    )
                })
                .await;
            match read {
                Ok((page, total)) => {
                    let name = integration.clone().unwrap_or_default();
                    (
                        page.into_iter().map(|c| (name.clone(), c)).collect(),
                        render::Listing::Page(render::Paging {
                            number,
                            per_page: CAMPAIGNS_PER_PAGE,
                            total,
                        }),
                    )
                }
                Err(error) => return s.unavailable(&error, "the campaigns"),
            }
        }
        (false, _) => {
            let (needle, integration) = (needle.clone(), integration.clone());
            match s
                .read(move |store| {
                    store.search_campaigns(integration.as_deref(), &needle, SEARCH_LIMIT + 1)
                })
                .await
            {
                Ok(found) => (
                    found,
                    render::Listing::Search {
                        limit: SEARCH_LIMIT as usize,
                    },
                ),
                Err(error) => return s.unavailable(&error, "the campaigns"),
            }
        }
    };
    page(
        StatusCode::OK,
        render::campaigns(
            &render::Context::new(&s.board, None),
            &needle,
            integration.as_deref(),
            &found,
            listing,
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
        revisions: Arc::default(),
    };
    Router::new()
        .route("/", axum::routing::get(overview))
        .route("/integrations/{name}", axum::routing::get(integration))
        .route("/runs/{id}", axum::routing::get(run))
        .route("/campaigns", axum::routing::get(campaigns))
        .route("/assets/style.css", axum::routing::get(stylesheet))
        .with_state(state)
}
