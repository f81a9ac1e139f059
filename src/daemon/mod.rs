//! The daemon: every integration of a manifest directory, on its schedule.
//!
//! Owns the schedule (croner, per-integration time zone), the watch on the
//! directory (notify, debounced, re-armed, plus a periodic rescan), the last
//! good spec of each integration, refresh requests, the bound on concurrent
//! runs, and the process lifecycle under systemd. A run is an ordinary
//! [`sync::run`]: the daemon decides when, never what; it writes campaigns
//! only through [`Store::retire_integration`] when a manifest is deleted.

mod health;
mod manifests;
mod metrics;
pub mod page;
mod systemd;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::diagnosis::{self, ErrorKind};
use crate::manifest::IntegrationDef;
use crate::store::{self, RunId, Store, StoreError, Trigger};
use crate::sync::{self, SyncError};
use manifests::{Loading, SharedWatcher, watch};

pub use metrics::Metrics;
pub use systemd::Notifier;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub database_url: String,
    /// Runs at once, across all integrations.
    pub max_concurrent_runs: usize,
    /// How long SIGTERM waits for runs in flight before abandoning them.
    pub grace: Duration,
    /// The safety-net rescan of the directory, besides file events.
    pub rescan_every: Duration,
    /// How long an integration's manifest must stay gone before the
    /// integration is retired: a deploy that briefly empties the directory
    /// pauses nothing.
    pub removal_delay: Duration,
    /// This daemon's name in claims (`host:pid`).
    pub identity: String,
    /// A claim (tick or refresh request) of a daemon that died is taken
    /// over by another within this time of its last renewal.
    pub claim_timeout: Duration,
    /// How long the change feed keeps an entry.
    pub changes_retention: chrono::TimeDelta,
    /// Where to serve `/metrics`, `/healthz`, `/readyz` and the status
    /// page, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Options {
    /// How often the daemon looks for claims of dead daemons to take over.
    /// Claims are renewed four times per timeout; a claim is taken once it
    /// has gone unrenewed for the timeout less this interval, which leaves
    /// a live daemon two renewals to miss in a row before it loses one.
    pub fn reclaim_every(&self) -> Duration {
        (self.claim_timeout / 8).max(Duration::from_secs(1))
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{} is not a directory: pass the manifest directory with --dir", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot serve metrics on {addr}: {error}")]
    Metrics {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
}

/// Claims of ticks whose runs ended are kept this long (for `offersync
/// status` readers and debugging), then pruned.
const KEEP_FINISHED_TICKS: chrono::TimeDelta = chrono::TimeDelta::days(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// File events are gathered this long before a rescan (editors and `git pull`
/// write in bursts).
const DEBOUNCE: Duration = Duration::from_millis(300);
/// At start, a run that failed is retried this long after it ended.
const FIRST_RETRY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

struct Entry {
    def: Arc<IntegrationDef>,
    next_tick: Option<DateTime<Utc>>,
    running: bool,
    /// A run is due now: a new or changed spec, a retry, a queued refresh.
    due_now: Option<Trigger>,
    /// Failed runs in a row, scheduled ones included: the backoff grows
    /// with them, and only a success clears them.
    failures: u32,
    /// When to run again after a failure, before the next tick.
    retry: Option<DateTime<Utc>>,
    /// Refresh requests the next run answers.
    refreshes: Vec<i64>,
    /// Refresh requests whose run found another process running the
    /// integration (another daemon, `offersync sync`): each is answered by
    /// the first run that starts after it and ends (coalesced), or, once
    /// the lock is free and no such run came, by a run of this daemon.
    waiting: Vec<i64>,
    /// The manifest's current text does not validate (we run the last good one).
    broken: bool,
    /// The state last written to the store (written again only when it changes).
    recorded_state: Option<&'static str>,
    /// When the directory, valid, stopped defining this integration: it no
    /// longer runs, and is retired once gone for the removal delay.
    gone_since: Option<tokio::time::Instant>,
}

/// An integration the store holds as live, registered from a file of this
/// directory that no longer defines it when the daemon starts (deleted while
/// no daemon ran): retired like a manifest deleted under a running daemon,
/// once the directory validates without it.
struct Orphan {
    pause: bool,
    gone_since: tokio::time::Instant,
}

/// How a run the daemon started ended.
enum RunEnd {
    /// It ran (succeeded or failed: `error`), as this run.
    Ran {
        run: Option<RunId>,
        error: Option<String>,
    },
    /// Another process holds the integration's run lock: nothing ran.
    Busy,
    /// It could not start (the store is unreachable, …).
    NotStarted(String),
}

enum Event {
    FilesChanged,
    RunDone {
        name: String,
        outcome: RunEnd,
        refreshes: Vec<i64>,
        /// The claimed tick the run was for.
        tick: Option<DateTime<Utc>>,
    },
}

/// A store connection opened on first use and again after an error: the
/// daemon's own bookkeeping uses one, the status page another (runs open
/// their own).
#[derive(Clone)]
struct Control {
    url: String,
    store: Arc<Mutex<Option<Box<dyn Store>>>>,
}

impl Control {
    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (url, slot) = (self.url.clone(), self.store.clone());
        tokio::task::spawn_blocking(move || {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(store::open(&url)?);
            }
            let result = work(slot.as_deref_mut().expect("opened above"));
            if result.is_err() {
                // Reconnect next time: the error may be a lost connection.
                *slot = None;
            }
            result
        })
        .await
        .expect("store calls do not panic")
    }
}

struct Daemon {
    options: Options,
    entries: BTreeMap<String, Entry>,
    orphans: BTreeMap<String, Orphan>,
    /// The errors last logged per manifest file: a file is logged when its
    /// errors change, and once more when it is valid again.
    reported_errors: BTreeMap<std::path::PathBuf, Vec<String>>,
    /// The last rescan found no errors (deletions are applied only then).
    directory_valid: bool,
    control: Control,
    events: mpsc::UnboundedSender<Event>,
    runs: JoinSet<()>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// What the status page shows of the schedule.
    board: Arc<page::Board>,
    watcher: SharedWatcher,
    /// The read of the directory under way, if any.
    loading: Option<Loading>,
}

/// Runs until SIGTERM or SIGINT; then lets runs in flight finish within the
/// grace period and returns.
pub async fn run(options: Options) -> Result<(), DaemonError> {
    if !options.dir.is_dir() {
        return Err(DaemonError::NotADirectory(options.dir.clone()));
    }
    // Held for the daemon's life: a second daemon on one SQLite file is refused.
    let mut options = options;
    // Absolute, so that the files integrations were registered from can be
    // told apart from other directories' (not canonical: a deploy may point
    // a symlink elsewhere, and the daemon must follow it).
    options.dir = std::path::absolute(&options.dir).unwrap_or(options.dir);
    let _sqlite_lock = match store::Backend::from_url(&options.database_url)? {
        store::Backend::Sqlite(path) => {
            // SQLite has one writer at a time, and a run writes in one
            // transaction: runs take turns.
            options.max_concurrent_runs = 1;
            Some(store::sqlite::lock_daemon(&path)?)
        }
        store::Backend::Postgres(_) => None,
    };
    let notifier = Notifier::from_env();
    let control = Control {
        url: options.database_url.clone(),
        store: Arc::new(Mutex::new(None)),
    };
    // Reachable and migrated before READY=1.
    control.call(|_| Ok(())).await?;
    let metrics = Arc::new(Metrics::default());
    let board = Arc::new(page::Board::new(options.identity.clone()));
    if let Some(addr) = options.metrics_addr {
        let also = health::router(metrics.clone(), options.dir.clone(), &options.database_url)
            .merge(page::router(board.clone(), &options.database_url));
        let bound = metrics::serve(addr, metrics.clone(), also)
            .await
            .map_err(|error| DaemonError::Metrics { addr, error })?;
        tracing::info!(addr = %bound, "serving /metrics, /healthz, /readyz and the status page at /");
    }
    let (events, mut inbox) = mpsc::unbounded_channel();
    let watcher = watch(&options.dir, events.clone());
    let mut daemon = Daemon {
        metrics,
        board,
        watcher: Arc::new(Mutex::new(watcher)),
        loading: None,
        permits: Arc::new(Semaphore::new(options.max_concurrent_runs.max(1))),
        options,
        entries: BTreeMap::new(),
        orphans: BTreeMap::new(),
        reported_errors: BTreeMap::new(),
        directory_valid: false,
        control,
        events,
        runs: JoinSet::new(),
    };
    daemon.rescan_now().await;
    daemon.take_up_stored().await;
    daemon.resume_failed().await;
    notifier.notify(&format!(
        "READY=1\nSTATUS=watching {} integrations",
        daemon.entries.len()
    ));
    tracing::info!(
        dir = %daemon.options.dir.display(),
        integrations = daemon.entries.len(),
        "daemon ready"
    );

    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut rescan = tokio::time::interval(daemon.options.rescan_every);
    rescan.reset();
    let watchdog = Notifier::watchdog_interval();
    let mut last_ping = tokio::time::Instant::now();
    // Claims are renewed several times per timeout, by a task and a store
    // connection of their own: a loop busy with a slow rescan or store call
    // must never make this daemon look dead to the others, who would then
    // run its ticks and refreshes a second time.
    let renew_every = (daemon.options.claim_timeout / 4).max(Duration::from_secs(1));
    let renewal = tokio::spawn(keep_claims(
        Control {
            url: daemon.options.database_url.clone(),
            store: Arc::new(Mutex::new(None)),
        },
        daemon.options.identity.clone(),
        renew_every,
    ));
    // Dead daemons' claims are looked for this often, and taken once they
    // have gone unrenewed for the timeout less this interval: a claim is
    // taken over within the timeout of its daemon's death, after at least
    // two renewals missed in a row.
    let reclaim_every = daemon.options.reclaim_every();
    let mut last_reclaim = tokio::time::Instant::now();
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut rescan_at: Option<tokio::time::Instant> = None;
    // A SIGHUP's reload is under way: READY=1 follows when it is applied.
    let mut reloading = false;
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).expect("signal handlers install");
    let mut terminate = signal(SignalKind::terminate()).expect("signal handlers install");
    let mut interrupt = signal(SignalKind::interrupt()).expect("signal handlers install");

    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if daemon.removal_due() {
                    rescan_at.get_or_insert(tokio::time::Instant::now());
                }
                if rescan_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
                    rescan_at = None;
                    daemon.request_rescan();
                }
                daemon.report_slow_read();
                daemon.start_due().await;
                daemon.take_refreshes().await;
                daemon.settle_waiting().await;
                if last_reclaim.elapsed() >= reclaim_every {
                    daemon.reclaim_ticks().await;
                    last_reclaim = tokio::time::Instant::now();
                }
                if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    daemon.prune().await;
                    last_prune = Some(tokio::time::Instant::now());
                }
                // Integrations whose manifest is gone have no series: they
                // run no more, so they neither fail nor go stale.
                daemon.metrics.heartbeat(
                    daemon
                        .entries
                        .iter()
                        .filter(|(_, e)| e.gone_since.is_none())
                        .map(|(name, _)| name),
                );
                daemon.publish_board();
                if let Some(every) = watchdog
                    && last_ping.elapsed() >= every
                {
                    notifier.notify("WATCHDOG=1");
                    last_ping = tokio::time::Instant::now();
                }
            }
            // Finished runs are reaped as they end (their outcome came as RunDone).
            Some(_) = daemon.runs.join_next(), if !daemon.runs.is_empty() => {}
            Some(event) = inbox.recv() => match event {
                Event::FilesChanged => {
                    rescan_at.get_or_insert(tokio::time::Instant::now() + DEBOUNCE);
                }
                Event::RunDone { name, outcome, refreshes, tick } => {
                    daemon.finished(&name, outcome, refreshes, tick).await;
                }
            },
            // The directory was read (on a blocking thread): apply it.
            loaded = manifests::read_done(&mut daemon.loading) => {
                daemon.apply_read(loaded).await;
                if reloading && daemon.loading.is_none() && rescan_at.is_none() {
                    reloading = false;
                    notifier.notify("READY=1");
                }
            }
            _ = rescan.tick() => {
                // Also catches a symlink swapped above the directory, which
                // no watch sees: the directory is watched where it now leads.
                daemon.request_rescan();
            }
            _ = hangup.recv() => {
                // A storm of SIGHUPs is one reload (a reload each grew the
                // daemon's memory): the read starts after the debounce, as
                // for a file event, so the signals before it add nothing;
                // those during it make one more read follow (at most one
                // pending), and READY=1 comes when none is left.
                if !reloading {
                    notifier.notify(&systemd::reloading());
                    tracing::info!("SIGHUP: reloading every manifest");
                }
                reloading = true;
                rescan_at.get_or_insert(tokio::time::Instant::now() + DEBOUNCE);
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }

    notifier.notify("STOPPING=1");
    let in_flight = daemon.runs.len();
    tracing::info!(
        in_flight,
        grace_seconds = daemon.options.grace.as_secs(),
        "stopping: no new runs; waiting for runs in flight"
    );
    let grace = daemon.options.grace;
    let drained = tokio::time::timeout(grace, async {
        while daemon.runs.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        // Abandoned runs never committed: their transactions roll back when
        // the process exits and the connections close.
        tracing::warn!(
            abandoned = daemon.runs.len(),
            "grace period over: abandoning runs in flight, nothing of theirs is kept"
        );
    }
    renewal.abort();
    Ok(())
}

/// Tells the other daemons, every `every`, that this one is alive and still
/// holds its claims; until the daemon stops (runs draining included).
async fn keep_claims(control: Control, identity: String, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let identity = identity.clone();
        if let Err(e) = control.call(move |s| s.keep_claims(&identity)).await {
            tracing::warn!(error = %e, "cannot renew this daemon's claims");
        }
    }
}

impl Daemon {
    /// Hands the status page what the scheduler knows now.
    fn publish_board(&self) {
        let live = self
            .entries
            .iter()
            .filter(|(_, e)| e.gone_since.is_none())
            .map(|(name, e)| {
                let schedule = &e.def.schedule;
                (
                    name.clone(),
                    page::LiveState {
                        title: e.def.title.clone(),
                        schedule: format!("{} ({})", schedule.expression, schedule.timezone),
                        next_run: if e.def.enabled { e.next_tick } else { None },
                        running: e.running,
                        manifest_broken: e.broken,
                        failures: e.failures,
                        retry: e.retry,
                        source_file: e.def.source_file.display().to_string(),
                    },
                )
            })
            .collect();
        self.board.publish(live);
    }

    /// At start: an integration whose last run failed, or was left running
    /// by a process that stopped (its work rolled back), is run again rather
    /// than waiting for its next tick (which may be hours away).
    async fn resume_failed(&mut self) {
        let statuses = match self.control.call(|s| s.status()).await {
            Ok(statuses) => statuses,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the last runs; nothing is resumed");
                return;
            }
        };
        let now = Utc::now();
        for status in statuses {
            if !self.entries.contains_key(&status.name) {
                continue;
            }
            // The metrics start from what the store says, not from nothing:
            // a restart neither clears a failing integration nor makes one
            // that succeeded yesterday look as if it never had.
            let failures = status.failures_in_a_row;
            self.metrics
                .seed(&status.name, status.last_success_at, failures);
            if let Some(entry) = self.entries.get_mut(&status.name) {
                entry.failures = failures;
            }
            let (Some(entry), Some(run)) = (self.entries.get(&status.name), status.last_run) else {
                continue;
            };
            if !matches!(run.status.as_str(), "failed" | "running") || !entry.def.enabled {
                continue;
            }
            if run.status == "running" {
                // Left running: by a live process (which holds the run
                // lock), or for a tick another daemon will take over; else
                // by a process that died, and it is resumed here.
                let name = status.name.clone();
                let run_id = store::RunId(run.id);
                let orphaned = self
                    .control
                    .call(move |s| {
                        match s.lock_run(&name) {
                            Ok(()) => {
                                // The status was read before the lock: the
                                // run may have ended in between (its process
                                // then let the lock go). Lost only if it is
                                // still running under our lock.
                                let still_running =
                                    s.run(run_id)?.is_some_and(|r| r.status == "running");
                                s.end_run()?;
                                if !still_running {
                                    return Ok(false);
                                }
                            }
                            Err(StoreError::RunInProgress(_)) => return Ok(false),
                            Err(e) => return Err(e),
                        }
                        Ok(!s.has_open_tick(&name)?)
                    })
                    .await
                    .unwrap_or(false);
                if !orphaned {
                    continue;
                }
            }
            let Some(entry) = self.entries.get_mut(&status.name) else {
                continue;
            };
            // A run cut short by a stopping process is resumed at once; one
            // that failed waits the first backoff from its end.
            let abandoned =
                run.status == "running" || run.error.as_deref() == Some(store::INTERRUPTED);
            let at = match run.finished_at {
                Some(ended) if !abandoned => (ended + FIRST_RETRY).max(now),
                _ => now,
            };
            tracing::info!(integration = %status.name, run_id = run.id, last = %run.status, retry_in_seconds = (at - now).num_seconds(), "the last run did not succeed: retrying");
            entry.retry = Some(at);
        }
    }

    /// Starts every run that is due: scheduled ticks (claimed, so that one
    /// daemon of several runs each), new or changed specs (claimed too),
    /// refresh requests (claimed when they were taken) and retries.
    async fn start_due(&mut self) {
        let now = Utc::now();
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for name in names {
            let entry = self.entries.get_mut(&name).expect("listed");
            if !entry.def.enabled || entry.gone_since.is_some() {
                entry.due_now = None;
                continue;
            }
            let tick = entry.next_tick.filter(|t| *t <= now);
            if tick.is_some() {
                entry.next_tick = entry.def.schedule.next_after(now);
            }
            let retry_due = entry.retry.is_some_and(|at| at <= now);
            if entry.due_now.is_none() && tick.is_none() && !retry_due {
                continue;
            }
            if entry.running {
                // A manifest change, refresh or retry waits for the run to
                // end; a tick does not, so that a slow feed never piles up runs.
                if let Some(tick) = tick {
                    tracing::info!(integration = %name, %tick, "tick skipped: the previous run is still going");
                }
                continue;
            }
            let due_now = entry.due_now.take();
            let spec = (due_now == Some(Trigger::Manifest)).then(|| entry.def.revision.clone());
            let (identity, key) = (self.options.identity.clone(), name.clone());
            // A tick that coincides with a new spec is served by the spec's
            // run, and both are claimed so that no other daemon runs either.
            let claimed = self
                .control
                .call(move |s| {
                    let tick = match tick {
                        Some(tick) if s.claim_tick(&key, tick, &identity)? => Some(tick),
                        _ => None,
                    };
                    let spec = match spec {
                        Some(hash) => s.claim_spec(&key, &hash)?,
                        None => false,
                    };
                    Ok::<_, StoreError>((tick, spec))
                })
                .await;
            let (tick, spec) = match claimed {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(integration = %name, error = %e, "cannot claim the run; skipping it");
                    continue;
                }
            };
            let trigger = match due_now {
                Some(Trigger::Manifest) if spec => Trigger::Manifest,
                Some(Trigger::Refresh) => Trigger::Refresh,
                _ if tick.is_some() => Trigger::Schedule,
                _ if retry_due => Trigger::Retry,
                _ => continue,
            };
            self.start(&name, trigger, tick);
        }
    }

    /// Forgets old tick claims, and feed entries past their retention.
    async fn prune(&self) {
        let before = Utc::now() - KEEP_FINISHED_TICKS;
        match self.control.call(move |s| s.prune_ticks(before)).await {
            Ok(pruned) => tracing::debug!(pruned, "old tick claims pruned"),
            Err(e) => tracing::warn!(error = %e, "cannot prune old tick claims"),
        }
        let before = Utc::now() - self.options.changes_retention;
        match self.control.call(move |s| s.prune_changes(before)).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "change feed entries past retention deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the change feed"),
        }
    }

    /// The instant before which an unrenewed claim belongs to a dead daemon:
    /// the claim timeout less the interval of the look for such claims, so
    /// that a claim is taken over within the timeout.
    fn stale_before(&self) -> DateTime<Utc> {
        let unrenewed = self
            .options
            .claim_timeout
            .saturating_sub(self.options.reclaim_every());
        let timeout = chrono::TimeDelta::from_std(unrenewed).unwrap_or(chrono::TimeDelta::MAX);
        Utc::now()
            .checked_sub_signed(timeout)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Takes over the ticks of daemons that died mid-run, and runs them.
    async fn reclaim_ticks(&mut self) {
        let identity = self.options.identity.clone();
        let stale_before = self.stale_before();
        let taken = match self
            .control
            .call(move |s| s.reclaim_ticks(&identity, stale_before))
            .await
        {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for abandoned ticks");
                return;
            }
        };
        for (name, tick) in taken {
            match self.entries.get(&name) {
                Some(entry) if entry.def.enabled && !entry.running => {
                    tracing::info!(integration = %name, %tick, "taking over a tick whose daemon stopped mid-run");
                    self.start(&name, Trigger::Schedule, Some(tick));
                }
                _ => {
                    let _ = self.control.call(move |s| s.finish_tick(&name, tick)).await;
                }
            }
        }
    }

    fn start(&mut self, name: &str, trigger: Trigger, tick: Option<DateTime<Utc>>) {
        let entry = self.entries.get_mut(name).expect("known");
        entry.running = true;
        let refreshes = std::mem::take(&mut entry.refreshes);
        let def = entry.def.clone();
        let url = self.options.database_url.clone();
        let permits = self.permits.clone();
        let events = self.events.clone();
        let metrics = self.metrics.clone();
        let name = name.to_string();
        self.runs.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            metrics.run_started();
            tracing::info!(integration = %name, trigger = trigger.as_str(), "run starting");
            let started = std::time::Instant::now();
            let opened = tokio::task::spawn_blocking(move || store::open(&url))
                .await
                .expect("opening never panics");
            let outcome = match opened {
                Err(e) => RunEnd::NotStarted(e.to_string()),
                Ok(store) => {
                    let options = sync::RunOptions {
                        tick,
                        ..sync::RunOptions::new(trigger)
                    };
                    match sync::run_with(def, store, options).await.1 {
                        Ok(report) => {
                            metrics.record_run(
                                &name,
                                report.succeeded_at.filter(|_| report.succeeded()),
                                Some(&report.counts),
                                report.elapsed.as_secs_f64(),
                            );
                            // sync logs the run's one line (with its counts).
                            RunEnd::Ran {
                                run: report.run,
                                error: report.error,
                            }
                        }
                        Err(SyncError::Store(StoreError::RunInProgress(_))) => RunEnd::Busy,
                        Err(e) => RunEnd::NotStarted(e.to_string()),
                    }
                }
            };
            if matches!(outcome, RunEnd::NotStarted(_)) {
                // It could not start: a failed run all the same, for alerts.
                metrics.record_run(&name, None, None, started.elapsed().as_secs_f64());
            }
            metrics.run_finished();
            let _ = events.send(Event::RunDone {
                name,
                outcome,
                refreshes,
                tick,
            });
        });
    }

    async fn finished(
        &mut self,
        name: &str,
        outcome: RunEnd,
        mut refreshes: Vec<i64>,
        tick: Option<DateTime<Utc>>,
    ) {
        let (run, failure, text) = match outcome {
            RunEnd::Ran { run, error: None } => (run, None, store::REFRESH_SUCCEEDED.to_string()),
            RunEnd::Ran {
                run,
                error: Some(error),
            } => (run, Some(error), store::REFRESH_FAILED.to_string()),
            RunEnd::Busy => {
                // No run of ours: a refresh is answered by the run that
                // comes after it, never by this non-run (`settle_waiting`).
                if refreshes.is_empty() {
                    tracing::info!(integration = %name, "another process is running it; skipped");
                } else {
                    tracing::info!(integration = %name, requests = ?refreshes, "another process is running it; the refresh waits for a run that starts after it");
                }
                // (An integration is never dropped while it runs.)
                let waiting = std::mem::take(&mut refreshes);
                if let Some(entry) = self.entries.get_mut(name) {
                    entry.waiting.extend(waiting);
                }
                (None, None, String::new())
            }
            RunEnd::NotStarted(e) => {
                tracing::error!(integration = %name, error = %e, "run could not start");
                (None, Some(e.clone()), format!("run could not start: {e}"))
            }
        };
        for request in refreshes {
            let text = text.clone();
            if let Err(e) = self
                .control
                .call(move |s| s.finish_refresh(request, run, &text))
                .await
            {
                tracing::warn!(request, error = %e, "cannot record the refresh outcome");
            }
        }
        if let Some(tick) = tick {
            let key = name.to_string();
            if let Err(e) = self.control.call(move |s| s.finish_tick(&key, tick)).await {
                tracing::warn!(integration = %name, error = %e, "cannot mark the tick done");
            }
        }
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        entry.running = false;
        if !entry.refreshes.is_empty() {
            entry.due_now.get_or_insert(Trigger::Refresh);
        }
        let Some(error) = failure else {
            entry.failures = 0;
            entry.retry = None;
            return;
        };
        // Counted across scheduled ticks too: a tick that fails again is
        // one more failure, and the backoff goes on growing.
        entry.failures = entry.failures.saturating_add(1);
        let kind = ErrorKind::of(&error);
        let failures = entry.failures;
        entry.retry = diagnosis::next_retry(kind, failures, Utc::now(), entry.next_tick);
        match entry.retry {
            Some(at) => tracing::info!(
                integration = %name,
                failures,
                retry_in_seconds = (at - Utc::now()).num_seconds().max(0),
                kind = kind.label(),
                cause = %error,
                "will retry"
            ),
            None => tracing::info!(
                integration = %name,
                failures,
                kind = kind.label(),
                cause = %error,
                hint = kind.hint().unwrap_or_default(),
                "not retried before the next tick"
            ),
        }
    }

    /// Answers the refresh requests that found another process running
    /// their integration: with that process's next run once it has ended
    /// (coalesced; never before it ends), or, when the run lock is free
    /// and no run came after the request, with a run of this daemon.
    async fn settle_waiting(&mut self) {
        let waiting: Vec<(String, Vec<i64>)> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.waiting.is_empty() && !e.running)
            .map(|(name, e)| (name.clone(), e.waiting.clone()))
            .collect();
        for (name, requests) in waiting {
            let key = name.clone();
            let settled = self
                .control
                .call(move |s| {
                    let mut answered = Vec::new();
                    let mut open = Vec::new();
                    for request in requests {
                        match s.coalesce_refresh(request)? {
                            Some(answer) => answered.push((request, answer)),
                            None => open.push(request),
                        }
                    }
                    if open.is_empty() {
                        return Ok((answered, Vec::new(), false));
                    }
                    match s.lock_run(&key) {
                        Err(StoreError::RunInProgress(_)) => return Ok((answered, open, true)),
                        Err(e) => return Err(e),
                        Ok(()) => {}
                    }
                    // Free now: a run that ended between the two looks
                    // still answers; else nobody runs it and we do.
                    let mut free = Vec::new();
                    let mut checked = Ok(());
                    for request in open {
                        match s.coalesce_refresh(request) {
                            Ok(Some(answer)) => answered.push((request, answer)),
                            Ok(None) => free.push(request),
                            Err(e) => {
                                checked = Err(e);
                                break;
                            }
                        }
                    }
                    s.end_run()?;
                    checked.map(|()| (answered, free, false))
                })
                .await;
            let (answered, open, busy) = match settled {
                Ok(settled) => settled,
                Err(e) => {
                    tracing::warn!(integration = %name, error = %e, "cannot look for the run that answers a waiting refresh");
                    continue;
                }
            };
            let Some(entry) = self.entries.get_mut(&name) else {
                continue;
            };
            for (request, answer) in answered {
                entry.waiting.retain(|r| *r != request);
                tracing::info!(integration = %name, request, run_id = answer.run, outcome = %answer.outcome, "refresh answered by another process's run, which started after it");
            }
            if busy {
                continue;
            }
            // The lock was free and no run came after them: run them here.
            entry.waiting.retain(|r| !open.contains(r));
            entry.refreshes.extend(open);
            if !entry.refreshes.is_empty() {
                entry.due_now.get_or_insert(Trigger::Refresh);
            }
        }
    }

    /// Claims refresh requests and starts (or queues) their runs.
    async fn take_refreshes(&mut self) {
        let identity = self.options.identity.clone();
        let stale_before = self.stale_before();
        let claimed = match self
            .control
            .call(move |s| s.claim_refreshes(&identity, stale_before))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read refresh requests");
                return;
            }
        };
        for (request, name) in claimed {
            match self.entries.get_mut(&name) {
                Some(entry) if entry.def.enabled => {
                    tracing::info!(integration = %name, request, "refresh requested");
                    entry.refreshes.push(request);
                    if !entry.running {
                        self.start(&name, Trigger::Refresh, None);
                    }
                }
                _ => {
                    let outcome = format!(
                        "not run: `{name}` is not an enabled integration in this daemon's directory"
                    );
                    let _ = self
                        .control
                        .call(move |s| s.finish_refresh(request, None, &outcome))
                        .await;
                }
            }
        }
    }
}
