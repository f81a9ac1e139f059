//! The manifest directory as the daemon sees it: the watch on it (and its
//! parent, re-armed after a deploy replaces it), the rescan that turns its
//! files into new, changed, broken and deleted integrations, the
//! retirement of integrations whose manifests are gone, and the refusal of
//! a manifest put back for an integration already retired (delete is
//! final). It decides nothing about when runs happen beyond marking a new
//! or changed spec due.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use sha2::Digest;
use tokio::sync::mpsc;

use super::{Daemon, Entry, Event, Orphan};
use crate::manifest::{self, model::OnRemoved};
use crate::store::Trigger;

/// How long a read of the directory may take before it is reported (and,
/// at start, before the daemon is ready without it).
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A file is applied once it has not changed for the debounce (a `cp` writes
/// a large file in pieces), waiting at most 5 s (well within `LOAD_TIMEOUT`).
const SETTLE: manifest::Settle = manifest::Settle {
    quiet: super::DEBOUNCE,
    limit: std::time::Duration::from_secs(5),
};

/// Watches the directory and its parent (a deploy may replace the directory
/// itself, which ends a watch on it; each rescan re-arms it).
pub(super) fn watch(
    dir: &Path,
    events: mpsc::UnboundedSender<Event>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    // The parent watch reports its other entries too (think of /tmp): only
    // events about the directory or what is in it count.
    let ours: Vec<PathBuf> = [Some(dir.to_path_buf()), dir.canonicalize().ok()]
        .into_iter()
        .flatten()
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the files (our own rescan) is an access event: not a change.
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
            && event
                .paths
                .iter()
                .any(|p| ours.iter().any(|d| p.starts_with(d)))
        {
            let _ = events.send(Event::FilesChanged);
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "cannot watch files; relying on the periodic rescan"))
    .ok()?;
    if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the manifest directory");
    }
    // The parent as named sees the directory replaced, or a symlink on the
    // way to it swapped to another release (the directory is then watched
    // again where it now leads); the parent it resolves to sees the
    // directory itself replaced.
    let mut parents: Vec<PathBuf> = [
        dir.parent().map(Path::to_path_buf),
        dir.canonicalize()
            .ok()
            .and_then(|d| d.parent().map(Path::to_path_buf)),
    ]
    .into_iter()
    .flatten()
    .collect();
    parents.dedup();
    for parent in parents {
        let _ = watcher.watch(&parent, RecursiveMode::NonRecursive);
    }
    Some(watcher)
}

/// A manifest of a deleted integration, not taken up.
struct Refused {
    name: String,
    diagnostic: manifest::Diagnostic,
    /// What `offersync status` and the status page show.
    message: String,
}

/// The hash of a manifest file as it is now (called on a blocking thread: it
/// reads the file, as loading does, never blocking on what is not a file).
fn file_hash(path: &Path) -> Option<String> {
    let text = manifest::read_regular_file(path, manifest::MAX_FILE_BYTES).ok()?;
    Some(format!("{:x}", sha2::Sha256::digest(text)))
}

/// The directory being read on a blocking thread.
pub(super) struct Loading {
    handle: tokio::task::JoinHandle<Option<manifest::Loaded>>,
    since: tokio::time::Instant,
    /// A rescan was asked for while this one read: one more follows it (at
    /// most one is pending, however many were asked for).
    again: bool,
    /// "takes too long" was logged for this read.
    slow_reported: bool,
}

/// The watcher, shared with the blocking thread that re-arms it.
pub(super) type SharedWatcher = Arc<std::sync::Mutex<Option<notify::RecommendedWatcher>>>;

/// Watches the directory again: after a deploy replaced it, the old watch
/// follows the old directory. Watching a watched path is a no-op. It walks
/// the directory, so it runs on the reading thread, never on the loop.
fn rearm_watch(watcher: &SharedWatcher, dir: &Path) {
    use notify::{RecursiveMode, Watcher};
    let mut watcher = watcher.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(watcher) = watcher.as_mut()
        && dir.is_dir()
    {
        let _ = watcher.unwatch(dir);
        if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the manifest directory");
        }
    }
}

/// Resolves when the read under way ends (never, when none is): for the
/// loop's `select!`, which keeps the read when another branch wins.
pub(super) async fn read_done(loading: &mut Option<Loading>) -> Option<manifest::Loaded> {
    match loading {
        Some(loading) => (&mut loading.handle).await.expect("loading never panics"),
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Starts reading the directory (re-arming the watch first) on a blocking
    /// thread; the loop applies it when it ends ([`read_done`], then
    /// [`Daemon::apply_read`]). The loop never waits on the file system, and
    /// a read that hangs (a file system that does not answer) is never
    /// joined by another: while one is under way, asking again only makes
    /// one more follow it.
    pub(super) fn request_rescan(&mut self) {
        if let Some(loading) = &mut self.loading {
            loading.again = true;
            return;
        }
        let (dir, watcher) = (self.options.dir.clone(), self.watcher.clone());
        let handle = tokio::task::spawn_blocking(move || {
            rearm_watch(&watcher, &dir);
            // Gone or unreadable (a deploy in the middle of replacing it):
            // what it held is unknown.
            dir.is_dir()
                .then(|| manifest::load_dir_settled(&dir, &manifest::process_env, SETTLE))
                .filter(|_| dir.is_dir())
        });
        self.loading = Some(Loading {
            handle,
            since: tokio::time::Instant::now(),
            again: false,
            slow_reported: false,
        });
    }

    /// Reads the directory and applies it, waiting for the read at most
    /// `LOAD_TIMEOUT` (at start: a read that takes longer is applied by the
    /// loop when it ends).
    pub(super) async fn rescan_now(&mut self) {
        self.request_rescan();
        let Some(loading) = self.loading.as_mut() else {
            return;
        };
        if let Ok(loaded) = tokio::time::timeout(LOAD_TIMEOUT, &mut loading.handle).await {
            self.apply_read(loaded.expect("loading never panics")).await;
        } else {
            self.report_slow_read();
        }
    }

    /// Says once per read that it takes too long (the loop calls it each
    /// heartbeat).
    pub(super) fn report_slow_read(&mut self) {
        if let Some(loading) = &mut self.loading
            && !loading.slow_reported
            && loading.since.elapsed() >= LOAD_TIMEOUT
        {
            loading.slow_reported = true;
            tracing::error!(dir = %self.options.dir.display(), waited_seconds = loading.since.elapsed().as_secs(), "reading the manifest directory takes too long (a file system that does not answer?); every integration stays as it is until it ends");
        }
    }

    /// Applies a finished read of the directory: new, changed, disabled,
    /// broken (keeps its last good spec) and deleted (retired) integrations.
    /// Starts the next read when one was asked for meanwhile.
    pub(super) async fn apply_read(&mut self, loaded: Option<manifest::Loaded>) {
        let again = self.loading.take().is_some_and(|l| l.again);
        self.apply(loaded).await;
        if again {
            self.request_rescan();
        }
    }

    async fn apply(&mut self, loaded: Option<manifest::Loaded>) {
        // Gone or unreadable: nothing changes until it is back.
        let Some(loaded) = loaded else {
            tracing::warn!(dir = %self.options.dir.display(), "the manifest directory is gone; every integration stays as it is until it is back");
            return;
        };
        tracing::debug!(dir = %self.options.dir.display(), "rescanning the manifest directory");
        let mut loaded = loaded;
        let refused = self.refuse_deleted(&mut loaded.catalog).await;
        let mut broken_files: BTreeMap<PathBuf, String> = BTreeMap::new();
        let mut errors_by_file: BTreeMap<PathBuf, Vec<&manifest::Diagnostic>> = BTreeMap::new();
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            errors_by_file.entry(d.file.clone()).or_default().push(d);
            broken_files
                .entry(d.file.clone())
                .or_insert_with(|| d.to_string());
        }
        // A deleted integration's file is reported like a broken one, but the
        // directory still validates: it blocks no other deletion.
        for deleted in &refused {
            errors_by_file
                .entry(deleted.diagnostic.file.clone())
                .or_default()
                .push(&deleted.diagnostic);
        }
        // Each rescan sees the same broken file again: log it when its
        // errors change, not every minute; and say when it is valid again.
        for (file, errors) in &errors_by_file {
            let texts: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
            if self.reported_errors.get(file) != Some(&texts) {
                for d in errors {
                    tracing::error!(file = %d.file.display(), line = d.line, "{d}");
                }
                self.reported_errors.insert(file.clone(), texts);
                // For `offersync status` and the status page: the
                // integration stays deleted, and why its file is not run.
                for deleted in refused.iter().filter(|r| &r.diagnostic.file == file) {
                    let (name, message) = (deleted.name.clone(), deleted.message.clone());
                    let result = self
                        .control
                        .call(move |s| s.record_manifest_problem(&name, None, Some(&message)))
                        .await;
                    if let Err(e) = result {
                        tracing::warn!(integration = %deleted.name, error = %e, "cannot record the manifest problem");
                    }
                }
            }
        }
        let recovered: Vec<PathBuf> = self
            .reported_errors
            .keys()
            .filter(|f| !errors_by_file.contains_key(*f))
            .cloned()
            .collect();
        for file in recovered {
            self.reported_errors.remove(&file);
            tracing::info!(file = %file.display(), "manifest has no errors any more");
        }
        let now = Utc::now();
        let mut seen = HashSet::new();
        for (name, def) in loaded.catalog.integrations {
            seen.insert(name.clone());
            self.orphans.remove(&name);
            let def = Arc::new(def);
            match self.entries.get_mut(&name) {
                None => {
                    tracing::info!(integration = %name, enabled = def.enabled, "integration added");
                    let due_now = def.enabled.then_some(Trigger::Manifest);
                    self.entries.insert(
                        name.clone(),
                        Entry {
                            next_tick: def.schedule.next_after(now),
                            def,
                            running: false,
                            due_now,
                            retry: None,
                            failures: 0,
                            refreshes: Vec::new(),
                            waiting: Vec::new(),
                            broken: false,
                            recorded_state: None,
                            gone_since: None,
                        },
                    );
                }
                Some(entry) if entry.def.revision != def.revision => {
                    tracing::info!(integration = %name, enabled = def.enabled, "integration changed");
                    entry.next_tick = def.schedule.next_after(now);
                    entry.due_now = def.enabled.then_some(Trigger::Manifest);
                    entry.retry = None;
                    entry.def = def;
                }
                // The same spec, but maybe moved to another file or with a
                // rotated secret: the next run uses it.
                Some(entry) => entry.def = def,
            }
            let entry = self.entries.get_mut(&name).expect("inserted above");
            if entry.gone_since.take().is_some() {
                tracing::info!(integration = %name, "manifest back: the integration carries on");
                entry.next_tick = entry.def.schedule.next_after(now);
            }
            let was_broken = std::mem::replace(&mut entry.broken, false);
            let state = if entry.def.enabled {
                "active"
            } else {
                "disabled"
            };
            if !was_broken && entry.recorded_state == Some(state) {
                continue;
            }
            entry.recorded_state = Some(state);
            let name_for_store = name.clone();
            let hash = entry.def.revision.clone();
            let result = self
                .control
                .call(move |s| {
                    if was_broken {
                        s.record_manifest_problem(&name_for_store, None, None)?;
                    }
                    if state == "disabled" {
                        // Taken up without a run, so that enabling it again is a change.
                        s.claim_spec(&name_for_store, &hash)?;
                    }
                    s.set_integration_state(&name_for_store, state)
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(integration = %name, error = %e, "cannot record the integration's state");
            }
        }

        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|n| !seen.contains(*n))
            .cloned()
            .collect();
        // A deletion is applied only when the whole directory validates: an
        // integration missing from a directory with errors may be in the
        // broken file (moved, renamed, defined twice), so it keeps running
        // its last good spec.
        let first_error = broken_files.values().next().cloned();
        self.directory_valid = first_error.is_none();
        for name in gone {
            let entry = self.entries.get_mut(&name).expect("listed above");
            if let Some(first_error) = &first_error {
                entry.gone_since = None;
                let file = entry.def.source_file.clone();
                let error = broken_files.get(&file).cloned().unwrap_or_else(|| {
                    format!(
                        "{} no longer defines this integration validly; the directory has errors: {first_error}",
                        file.display()
                    )
                });
                self.keep_broken(&name, &file, error).await;
                continue;
            }
            let entry = self.entries.get_mut(&name).expect("listed above");
            let gone_since = *entry.gone_since.get_or_insert_with(|| {
                tracing::info!(
                    integration = %name,
                    file = %entry.def.source_file.display(),
                    retire_in_seconds = self.options.removal_delay.as_secs(),
                    "manifest gone: no more runs; the integration is retired unless it comes back"
                );
                tokio::time::Instant::now()
            });
            if entry.running || gone_since.elapsed() < self.options.removal_delay {
                // A running integration is retired once its run ends.
                continue;
            }
            let entry = self.entries.remove(&name).expect("listed above");
            let pause = entry.def.on_removed == OnRemoved::Pause;
            if !self.retire(&name, pause).await {
                self.entries.insert(name, entry);
            }
        }
        if first_error.is_none() {
            let due: Vec<(String, bool)> = self
                .orphans
                .iter()
                .filter(|(_, o)| o.gone_since.elapsed() >= self.options.removal_delay)
                .map(|(name, o)| (name.clone(), o.pause))
                .collect();
            for (name, pause) in due {
                if self.retire(&name, pause).await {
                    self.orphans.remove(&name);
                }
            }
        }
    }

    /// Takes out of `catalog` the integrations this daemon does not run yet
    /// whose store state is `deleted` (their manifests were put back after
    /// they were retired): delete is final, so they are refused, each with a
    /// diagnostic for its document, until `offersync undelete` or a new name.
    async fn refuse_deleted(&self, catalog: &mut manifest::Catalog) -> Vec<Refused> {
        let new: Vec<String> = catalog
            .integrations
            .keys()
            .filter(|name| !self.entries.contains_key(*name))
            .cloned()
            .collect();
        if new.is_empty() {
            return Vec::new();
        }
        let states = self
            .control
            .call(move |s| {
                new.into_iter()
                    .map(|name| Ok((s.integration_state(&name)?, name)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
        let states = match states {
            Ok(states) => states,
            Err(e) => {
                // The store refuses a deleted one anyway (registering it, or
                // running it, is `IntegrationDeleted`).
                tracing::warn!(error = %e, "cannot read the new integrations' states");
                return Vec::new();
            }
        };
        let mut refused = Vec::new();
        for (state, name) in states {
            if state.as_deref() != Some("deleted") {
                continue;
            }
            let def = catalog.integrations.remove(&name).expect("listed above");
            let error = crate::store::StoreError::IntegrationDeleted {
                name: name.clone(),
                file: def.source_file.display().to_string(),
            };
            refused.push(Refused {
                diagnostic: manifest::deleted_integration(&def, crate::store::undelete_hint(&name)),
                message: error.to_string(),
                name,
            });
        }
        refused
    }

    /// Records that `name`'s manifest does not validate, and keeps it
    /// running on its last good spec.
    async fn keep_broken(&mut self, name: &str, file: &Path, error: String) {
        let entry = self.entries.get_mut(name).expect("a known integration");
        if !entry.broken {
            tracing::error!(
                integration = %name,
                file = %file.display(),
                error = %error,
                "manifest invalid: keeping the last good spec"
            );
        }
        entry.broken = true;
        let message = format!("manifest invalid, running the last good spec: {error}");
        self.record_problem(name, file, message).await;
    }

    /// Records for `offersync status` why `name`'s manifest is not applied,
    /// and the version of `file` that was attempted.
    async fn record_problem(&self, name: &str, file: &Path, message: String) {
        let (store_name, file) = (name.to_string(), file.to_path_buf());
        let result = self
            .control
            .call(move |s| {
                let attempted = file_hash(&file);
                s.record_manifest_problem(&store_name, attempted.as_deref(), Some(&message))
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(integration = %name, error = %e, "cannot record the manifest problem");
        }
    }

    /// Disables an integration whose manifest was deleted and gives its live
    /// campaigns the removal action; `false` when the store could not be told
    /// (tried again at the next rescan).
    async fn retire(&self, name: &str, pause: bool) -> bool {
        let store_name = name.to_string();
        match self
            .control
            .call(move |s| s.retire_integration(&store_name, pause))
            .await
        {
            Ok(n) => {
                tracing::info!(
                    integration = %name,
                    campaigns = n,
                    action = if pause { "paused" } else { "marked removed" },
                    "manifest deleted: integration disabled"
                );
                true
            }
            Err(e) => {
                tracing::error!(integration = %name, error = %e, "cannot retire the integration; will retry");
                false
            }
        }
    }

    /// At start, the live integrations the store holds from files of this
    /// directory that it does not define now. With the directory valid, they
    /// were deleted while no daemon ran: retired after the removal delay like
    /// any deleted manifest. With errors in it, each runs on the spec it was
    /// last applied with, as it would have had the daemon kept running.
    pub(super) async fn take_up_stored(&mut self) {
        let live = match self.control.call(|s| s.live_integrations()).await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the stored integrations");
                return;
            }
        };
        let mut adopted = false;
        for integration in live {
            let file = PathBuf::from(&integration.source_file);
            if self.entries.contains_key(&integration.name)
                || !file.is_absolute()
                || !file.starts_with(&self.options.dir)
            {
                continue;
            }
            if !self.directory_valid {
                let (dir, name) = (self.options.dir.clone(), integration.name.clone());
                let (stored_file, document) = (file.clone(), integration.spec.clone());
                let compiled = tokio::task::spawn_blocking(move || {
                    manifest::load_stored(
                        &dir,
                        &stored_file,
                        &document,
                        &name,
                        &manifest::process_env,
                    )
                })
                .await
                .expect("loading never panics");
                match compiled {
                    Ok(def) => {
                        tracing::warn!(
                            integration = %integration.name,
                            file = %file.display(),
                            "manifest invalid at start: running the spec it was last applied with"
                        );
                        let now = Utc::now();
                        self.entries.insert(
                            integration.name,
                            Entry {
                                next_tick: def.schedule.next_after(now),
                                def: Arc::new(def),
                                running: false,
                                due_now: None,
                                retry: None,
                                failures: 0,
                                refreshes: Vec::new(),
                                waiting: Vec::new(),
                                broken: false,
                                recorded_state: None,
                                gone_since: None,
                            },
                        );
                        adopted = true;
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(
                            integration = %integration.name,
                            file = %file.display(),
                            error = %error,
                            "manifest invalid at start, and its last applied spec does not compile: not running"
                        );
                        let message = format!(
                            "manifest invalid, and the spec last applied does not compile now; not running: {error}"
                        );
                        self.record_problem(&integration.name, &file, message).await;
                    }
                }
            } else {
                tracing::info!(
                    integration = %integration.name,
                    file = %file.display(),
                    retire_in_seconds = self.options.removal_delay.as_secs(),
                    "registered from this directory, which no longer defines it: the integration is retired unless it comes back"
                );
            }
            // Retired once the directory validates without it.
            let pause = manifest::on_removed_of(&integration.spec) == OnRemoved::Pause;
            self.orphans.insert(
                integration.name,
                Orphan {
                    pause,
                    gone_since: tokio::time::Instant::now(),
                },
            );
        }
        if adopted {
            // Records why each adopted integration runs its last applied spec.
            self.rescan_now().await;
        }
    }

    /// Whether a gone manifest's removal delay has passed (a rescan then
    /// checks it is still gone and retires it).
    pub(super) fn removal_due(&self) -> bool {
        if !self.directory_valid {
            return false;
        }
        let due = |since: tokio::time::Instant| since.elapsed() >= self.options.removal_delay;
        self.entries
            .values()
            .filter(|e| !e.running)
            .filter_map(|e| e.gone_since)
            .chain(self.orphans.values().map(|o| o.gone_since))
            .any(due)
    }
}
