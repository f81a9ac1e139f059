//! The embedded store: SQLite through diesel (bundled libsqlite3, WAL),
//! migrations embedded from `migrations/sqlite`.
//!
//! The same tables and semantics as Postgres in SQLite's types: decimals are
//! stored as their exact text (never REAL), JSON as text, times as ISO 8601
//! UTC text. A run's writes are one `BEGIN IMMEDIATE` transaction. The run
//! lock is an OS file lock beside the database (`<db>.locks/`), released by
//! the kernel when the process dies, as Postgres releases an advisory lock
//! with its session. SQLite serves one machine: several daemons need Postgres.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, TimestamptzSqlite};
use diesel::sqlite::Sqlite;
use diesel::{Connection, RunQueryDsl, SqliteConnection, sql_query};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use rust_decimal::Decimal;

use super::rows::{
    BOOKKEEPING_SET, INTERRUPTED, OWN_WRITE_SQL, RunRow, count, restore_sql, run_record,
    update_set, upstream_pause_sql,
};
use super::shared::{shared_queries, shared_store_methods, shared_writes_methods};
use super::{
    CampaignRecord, IntegrationRecord, IntegrationStatus, LiveIntegration, RefreshOutcome,
    RunCounts, RunId, RunRecord, SkipRecord, Store, StoreError, StoredCampaign, StoredHash,
    StoredIndex, Trigger, TxError, Update, UpdateColumns, Writes, first_cause,
};
use crate::campaign::Campaign;
use crate::rules::Skip;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT_MS: u32 = 30_000;

mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        integrations (id) {
            id -> BigInt,
            name -> Text,
            network -> Text,
            spec -> Text,
            spec_hash -> Text,
            source_file -> Text,
            state -> Text,
            last_error -> Nullable<Text>,
            last_success_at -> Nullable<TimestamptzSqlite>,
            created_at -> TimestamptzSqlite,
            updated_at -> TimestamptzSqlite,
            attempted_spec_hash -> Nullable<Text>,
            applied_policy -> Nullable<Text>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        campaigns (id) {
            id -> BigInt,
            integration_id -> BigInt,
            external_id -> Text,
            name -> Text,
            advertiser -> Text,
            status -> Text,
            visibility -> Text,
            preview_url -> Nullable<Text>,
            tracking_url -> Nullable<Text>,
            impression_url -> Nullable<Text>,
            thumbnail_url -> Nullable<Text>,
            revenue -> Nullable<Text>,
            payout -> Nullable<Text>,
            revenue_max -> Nullable<Text>,
            payout_max -> Nullable<Text>,
            payout_kind -> Text,
            currency -> Nullable<Text>,
            model -> Nullable<Text>,
            models -> Text,
            objective -> Nullable<Text>,
            redirect -> Integer,
            countries -> Text,
            blocked_countries -> Text,
            os -> Text,
            blocked_os -> Text,
            devices -> Text,
            min_os_version -> Nullable<Text>,
            category -> Nullable<Text>,
            description -> Nullable<Text>,
            kpi -> Nullable<Text>,
            payouts -> Text,
            caps -> Text,
            import_caps -> Text,
            cap_settings -> Text,
            settings -> Text,
            starts_at -> Nullable<TimestamptzSqlite>,
            expires_at -> Nullable<TimestamptzSqlite>,
            raw -> Text,
            content_hash -> Text,
            raw_hash -> Text,
            applied_hash -> Text,
            drifted -> Bool,
            write_token -> BigInt,
            status_before_pause -> Nullable<Text>,
            first_seen_at -> TimestamptzSqlite,
            changed_at -> TimestamptzSqlite,
            removed_at -> Nullable<TimestamptzSqlite>,
            removed_as -> Nullable<Text>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        publisher_payouts (integration_id, external_id, kind, name) {
            integration_id -> BigInt,
            external_id -> Text,
            kind -> Text,
            name -> Text,
            payout -> Text,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        sync_runs (id) {
            id -> BigInt,
            integration_id -> BigInt,
            trigger -> Text,
            spec_hash -> Text,
            started_at -> TimestamptzSqlite,
            finished_at -> Nullable<TimestamptzSqlite>,
            status -> Text,
            pages -> Integer,
            fetched -> Integer,
            created -> Integer,
            updated -> Integer,
            unchanged -> Integer,
            skipped -> Integer,
            removed -> Integer,
            restored -> Integer,
            error -> Nullable<Text>,
            listed -> Nullable<Integer>,
            filtered -> Integer,
            accepted_removals -> Bool,
            drift_corrected -> Integer,
            warnings -> Integer,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        sync_skips (run_id, reason) {
            run_id -> BigInt,
            external_id -> Nullable<Text>,
            reason -> Text,
            detail -> Text,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        sync_warnings (run_id, external_id) {
            run_id -> BigInt,
            external_id -> Text,
            message -> Text,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        record_outcomes (integration_id, external_id) {
            integration_id -> BigInt,
            external_id -> Text,
            record_hash -> Text,
            revision -> Text,
            skip_reason -> Nullable<Text>,
            detail -> Text,
            applied_hash -> Text,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        refresh_requests (id) {
            id -> BigInt,
            integration_id -> BigInt,
            requested_at -> TimestamptzSqlite,
            requested_by -> Text,
            claimed_at -> Nullable<TimestamptzSqlite>,
            claimed_by -> Nullable<Text>,
            run_id -> Nullable<BigInt>,
            finished_at -> Nullable<TimestamptzSqlite>,
            outcome -> Nullable<Text>,
            coalesced -> Bool,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        schedule_claims (integration, tick) {
            integration -> Text,
            tick -> TimestamptzSqlite,
            claimed_by -> Text,
            claimed_at -> TimestamptzSqlite,
            finished_at -> Nullable<TimestamptzSqlite>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        campaign_changes (position) {
            position -> BigInt,
            integration_id -> BigInt,
            run_id -> Nullable<BigInt>,
            campaign_id -> BigInt,
            external_id -> Text,
            kind -> Text,
            status -> Text,
            changed_columns -> Text,
            changed_at -> TimestamptzSqlite,
            cause -> Nullable<Text>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        /// A connection's temporary table of feed entries waiting for their
        /// run to end (`PENDING_CHANGES_TABLE`).
        pending_changes (seq) {
            seq -> BigInt,
            integration_id -> BigInt,
            campaign_id -> BigInt,
            external_id -> Text,
            kind -> Text,
            status -> Text,
            changed_columns -> Text,
            changed_at -> TimestamptzSqlite,
            cause -> Nullable<Text>,
        }
    }

    diesel::joinable!(campaigns -> integrations (integration_id));
    diesel::joinable!(campaign_changes -> integrations (integration_id));
    diesel::joinable!(sync_runs -> integrations (integration_id));
    diesel::joinable!(refresh_requests -> integrations (integration_id));
    diesel::allow_tables_to_appear_in_same_query!(
        integrations,
        campaigns,
        publisher_payouts,
        sync_runs,
        sync_skips,
        sync_warnings,
        refresh_requests,
        schedule_claims,
        campaign_changes,
        pending_changes
    );
}

use schema::{
    campaign_changes, campaigns, integrations, pending_changes, publisher_payouts, record_outcomes,
    refresh_requests, schedule_claims, sync_runs, sync_skips, sync_warnings,
};

shared_queries!(SqliteConnection);

/// The change feed's pieces that differ by backend (see `store::feed`).
const JSON_ARRAY_FN: &str = "json_array";
/// A JSON column as loaded, and a decimal column (its exact text).
type StoredJson = String;
/// The SQL type of a JSON column.
type FeedJsonSql = Text;
type StoredDecimal = Option<String>;

fn stored_decimal(d: StoredDecimal) -> Option<Decimal> {
    text_decimal(d)
}

fn feed_json(text: &str) -> &str {
    text
}

fn stored_json_text(json: &StoredJson) -> &str {
    json
}

/// Where a transaction's feed entries wait (see `store::feed`).
const PENDING_CHANGES_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS pending_changes (\
     seq INTEGER PRIMARY KEY, integration_id INTEGER NOT NULL, campaign_id INTEGER NOT NULL, \
     external_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, \
     changed_columns TEXT NOT NULL, changed_at TEXT NOT NULL, cause TEXT)";

/// SQLite has one writer at a time: transactions commit in the order they
/// took their positions.
fn lock_feed(_: &mut SqliteConnection) -> Result<(), StoreError> {
    Ok(())
}

/// No NOTIFY in SQLite: readers poll `offersync changes --since`.
fn notify_feed(_: &mut SqliteConnection) -> Result<(), StoreError> {
    Ok(())
}

/// A connection to an SQLite store file.
pub struct SqliteStore {
    conn: SqliteConnection,
    path: PathBuf,
    locks: PathBuf,
    /// The run lock this process holds (closing the file releases it).
    run_lock: Option<File>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, switches it to WAL and
    /// applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Self::connect(path)?;
        let migration_error =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        // Checked first so that readers never wait for a writer; applied in
        // one write transaction so that processes opening a new file together
        // (a daemon and `offersync refresh`) apply them once.
        if conn
            .has_pending_migration(MIGRATIONS)
            .map_err(migration_error)?
        {
            conn.immediate_transaction(|conn| {
                conn.run_pending_migrations(MIGRATIONS)
                    .map(|_| ())
                    .map_err(migration_error)
            })?;
        }
        let mut locks = path.as_os_str().to_owned();
        locks.push(".locks");
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            locks: PathBuf::from(locks),
            run_lock: None,
        })
    }

    /// A connection to the file, in WAL, with the settings every connection
    /// needs.
    fn connect(path: &Path) -> Result<SqliteConnection, StoreError> {
        let shown = path.display().to_string();
        let connect_error = |message: String| StoreError::Connect {
            url: format!("sqlite://{shown}"),
            message,
        };
        // The file is created if missing, its directory never: a path with a
        // typo would otherwise become a new, empty store (and a tree of
        // directories) that every later command reads as the real one.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(connect_error(format!(
                "the directory {} does not exist\n  hint: check the path (sqlite://PATH is relative to the working directory, sqlite:///PATH absolute), or create the directory first",
                parent.display()
            )));
        }
        let mut conn = SqliteConnection::establish(&shown)
            .map_err(|e| connect_error(e.to_string().trim().to_string()))?;
        // WAL lets `status` and `runs` read while a run writes; foreign keys
        // are off by default in SQLite.
        for pragma in [
            format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"),
            "PRAGMA synchronous = NORMAL".to_string(),
            "PRAGMA foreign_keys = ON".to_string(),
        ] {
            sql_query(pragma)
                .execute(&mut conn)
                .map_err(|e| connect_error(e.to_string()))?;
        }
        // Switching a new file to WAL fails at once, without the busy
        // handler, while another process is switching it too.
        let started = std::time::Instant::now();
        while let Err(e) = sql_query("PRAGMA journal_mode = WAL").execute(&mut conn) {
            let busy = e.to_string().contains("locked");
            if !busy || started.elapsed().as_millis() >= u128::from(BUSY_TIMEOUT_MS) {
                return Err(connect_error(e.to_string()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(conn)
    }
}

fn decimal_text(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

fn text_decimal(s: Option<String>) -> Option<Decimal> {
    s.and_then(|s| Decimal::from_str(&s).ok())
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("store values always serialize")
}

#[derive(Insertable)]
#[diesel(table_name = campaigns, treat_none_as_default_value = false)]
struct NewCampaign<'a> {
    integration_id: i64,
    external_id: &'a str,
    name: &'a str,
    advertiser: &'a str,
    status: &'static str,
    visibility: &'static str,
    preview_url: Option<&'a str>,
    tracking_url: Option<&'a str>,
    impression_url: Option<&'a str>,
    thumbnail_url: Option<&'a str>,
    revenue: Option<String>,
    payout: Option<String>,
    revenue_max: Option<String>,
    payout_max: Option<String>,
    payout_kind: &'static str,
    currency: Option<&'a str>,
    model: Option<&'static str>,
    models: String,
    objective: Option<&'static str>,
    redirect: i32,
    countries: String,
    blocked_countries: String,
    os: String,
    blocked_os: String,
    devices: String,
    min_os_version: Option<&'a str>,
    category: Option<&'a str>,
    description: Option<&'a str>,
    kpi: Option<&'a str>,
    payouts: String,
    caps: String,
    import_caps: String,
    cap_settings: &'a str,
    settings: &'a str,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    raw: &'a str,
    content_hash: &'a str,
    raw_hash: &'a str,
    applied_hash: &'a str,
    first_seen_at: DateTime<Utc>,
    changed_at: DateTime<Utc>,
}

impl<'a> NewCampaign<'a> {
    fn of(integration_id: i64, now: DateTime<Utc>, c: &'a Campaign) -> Self {
        Self {
            integration_id,
            external_id: &c.external_id,
            name: &c.name,
            advertiser: &c.advertiser,
            status: c.status.as_str(),
            visibility: c.visibility.as_str(),
            preview_url: c.preview_url.as_deref(),
            tracking_url: c.tracking_url.as_deref(),
            impression_url: c.impression_url.as_deref(),
            thumbnail_url: c.thumbnail_url.as_deref(),
            revenue: decimal_text(c.revenue),
            payout: decimal_text(c.payout),
            revenue_max: decimal_text(c.revenue_max),
            payout_max: decimal_text(c.payout_max),
            payout_kind: c.payout_kind.as_str(),
            currency: c.currency.as_deref(),
            model: c.model.map(|m| m.as_str()),
            models: json_text(&c.models),
            objective: c.objective.map(|m| m.as_str()),
            redirect: i32::from(c.redirect),
            countries: json_text(&c.countries),
            blocked_countries: json_text(&c.blocked_countries),
            os: json_text(&c.os),
            blocked_os: json_text(&c.blocked_os),
            devices: json_text(&c.devices),
            min_os_version: c.min_os_version.as_deref(),
            category: c.category.as_deref(),
            description: c.description.as_deref(),
            kpi: c.kpi.as_deref(),
            payouts: json_text(&c.payouts),
            caps: json_text(&c.caps),
            import_caps: json_text(&*c.import_caps),
            cap_settings: &c.cap_settings,
            settings: &c.settings,
            starts_at: c.starts_at,
            expires_at: c.expires_at,
            raw: c.raw.get(),
            content_hash: &c.content_hash,
            raw_hash: &c.raw_hash,
            applied_hash: &c.applied_hash,
            first_seen_at: now,
            changed_at: now,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = publisher_payouts)]
struct NewPublisherPayout<'a> {
    integration_id: i64,
    external_id: &'a str,
    kind: &'static str,
    name: &'a str,
    payout: String,
}

fn publisher_rows(
    integration_id: i64,
    c: &Campaign,
) -> impl Iterator<Item = NewPublisherPayout<'_>> {
    c.publisher_payouts.iter().map(move |p| NewPublisherPayout {
        integration_id,
        external_id: &c.external_id,
        kind: p.kind.as_str(),
        name: &p.name,
        payout: p.payout.to_string(),
    })
}

type Query<'a> = BoxedSqlQuery<'a, Sqlite, diesel::query_builder::SqlQuery>;

/// The `n`th bind parameter (from 1) as this backend writes it.
fn placeholder(_n: usize) -> String {
    "?".to_string()
}

fn bind_time(q: Query<'_>, t: DateTime<Utc>) -> Query<'_> {
    q.bind::<TimestamptzSqlite, _>(t)
}

fn bind_id(q: Query<'_>, id: i64) -> Query<'_> {
    q.bind::<BigInt, _>(id)
}

fn bind_column<'a>(q: Query<'a>, column: &str, c: &'a Campaign) -> Query<'a> {
    let text = |v: &'a Option<String>| v.as_deref();
    match column {
        "name" => q.bind::<Text, _>(&c.name),
        "status" => q.bind::<Text, _>(c.status.as_str()),
        "visibility" => q.bind::<Text, _>(c.visibility.as_str()),
        "preview_url" => q.bind::<Nullable<Text>, _>(text(&c.preview_url)),
        "tracking_url" => q.bind::<Nullable<Text>, _>(text(&c.tracking_url)),
        "impression_url" => q.bind::<Nullable<Text>, _>(text(&c.impression_url)),
        "thumbnail_url" => q.bind::<Nullable<Text>, _>(text(&c.thumbnail_url)),
        "revenue" => q.bind::<Nullable<Text>, _>(decimal_text(c.revenue)),
        "payout" => q.bind::<Nullable<Text>, _>(decimal_text(c.payout)),
        "revenue_max" => q.bind::<Nullable<Text>, _>(decimal_text(c.revenue_max)),
        "payout_max" => q.bind::<Nullable<Text>, _>(decimal_text(c.payout_max)),
        "models" => q.bind::<Text, _>(json_text(&c.models)),
        "blocked_os" => q.bind::<Text, _>(json_text(&c.blocked_os)),
        "devices" => q.bind::<Text, _>(json_text(&c.devices)),
        "min_os_version" => q.bind::<Nullable<Text>, _>(text(&c.min_os_version)),
        "payout_kind" => q.bind::<Text, _>(c.payout_kind.as_str()),
        "currency" => q.bind::<Nullable<Text>, _>(text(&c.currency)),
        "model" => q.bind::<Nullable<Text>, _>(c.model.map(|m| m.as_str())),
        "objective" => q.bind::<Nullable<Text>, _>(c.objective.map(|m| m.as_str())),
        "redirect" => q.bind::<Integer, _>(i32::from(c.redirect)),
        "countries" => q.bind::<Text, _>(json_text(&c.countries)),
        "blocked_countries" => q.bind::<Text, _>(json_text(&c.blocked_countries)),
        "os" => q.bind::<Text, _>(json_text(&c.os)),
        "category" => q.bind::<Nullable<Text>, _>(text(&c.category)),
        "description" => q.bind::<Nullable<Text>, _>(text(&c.description)),
        "kpi" => q.bind::<Nullable<Text>, _>(text(&c.kpi)),
        "payouts" => q.bind::<Text, _>(json_text(&c.payouts)),
        "caps" => q.bind::<Text, _>(json_text(&c.caps)),
        "cap_settings" => q.bind::<Text, _>(&*c.cap_settings),
        "settings" => q.bind::<Text, _>(&*c.settings),
        "starts_at" => q.bind::<Nullable<TimestamptzSqlite>, _>(c.starts_at),
        "expires_at" => q.bind::<Nullable<TimestamptzSqlite>, _>(c.expires_at),
        "advertiser" => q.bind::<Text, _>(&*c.advertiser),
        "raw" => q.bind::<Text, _>(c.raw.get()),
        "content_hash" => q.bind::<Text, _>(&c.content_hash),
        "raw_hash" => q.bind::<Text, _>(&c.raw_hash),
        "applied_hash" => q.bind::<Text, _>(&c.applied_hash),
        other => unreachable!("no campaign column {other}"),
    }
}

struct SqliteWrites<'c> {
    conn: &'c mut SqliteConnection,
    feed: super::feed::PendingFeed,
}

/// Rows per multi-row INSERT (33 columns each; SQLite allows 32,766 parameters).
const BATCH: usize = 500;

impl Writes for SqliteWrites<'_> {
    fn create(
        &mut self,
        integration_id: i64,
        now: DateTime<Utc>,
        campaigns: &[Campaign],
    ) -> Result<(), StoreError> {
        self.feed.note_created(integration_id, now);
        for chunk in campaigns.chunks(BATCH) {
            let rows: Vec<NewCampaign<'_>> = chunk
                .iter()
                .map(|c| NewCampaign::of(integration_id, now, c))
                .collect();
            diesel::insert_into(campaigns::table)
                .values(&rows)
                .execute(self.conn)?;
            let payouts: Vec<NewPublisherPayout<'_>> = chunk
                .iter()
                .flat_map(|c| publisher_rows(integration_id, c))
                .collect();
            if !payouts.is_empty() {
                diesel::insert_into(publisher_payouts::table)
                    .values(&payouts)
                    .execute(self.conn)?;
            }
        }
        Ok(())
    }

    shared_writes_methods!();
}

/// Takes the one-daemon lock of an SQLite store, held while the returned
/// file is open. A second daemon on the same file is refused: SQLite serves
/// one machine, and several daemons need Postgres.
pub fn lock_daemon(path: &Path) -> Result<File, StoreError> {
    let mut locks = path.as_os_str().to_owned();
    locks.push(".locks");
    let locks = PathBuf::from(locks);
    let lock_error = |e: std::io::Error| StoreError::Lock {
        path: locks.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&locks).map_err(lock_error)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(locks.join("daemon.lock"))
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::SqliteDaemonRunning(path.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(lock_error(e)),
    }
}

/// A file name for an integration's lock: its name where that is safe, else its hash.
fn lock_file_name(integration: &str) -> String {
    let safe = !integration.is_empty()
        && integration
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !integration.starts_with('.');
    if safe {
        format!("{integration}.lock")
    } else {
        use sha2::Digest;
        format!("{:x}.lock", sha2::Sha256::digest(integration.as_bytes()))
    }
}

impl Store for SqliteStore {
    fn reopen(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(Self::open(&self.path)?))
    }

    fn upsert_integration(&mut self, record: &IntegrationRecord<'_>) -> Result<i64, StoreError> {
        // `ON CONFLICT … DO UPDATE … WHERE`.
        use diesel::query_dsl::methods::FilterDsl as _;
        use integrations::dsl as i;
        let state = if record.enabled { "active" } else { "disabled" };
        let now = Utc::now();
        let id = diesel::insert_into(i::integrations)
            .values((
                i::name.eq(record.name),
                i::network.eq(record.network),
                i::spec.eq(record.spec),
                i::spec_hash.eq(record.spec_hash),
                i::source_file.eq(record.source_file),
                i::state.eq(state),
                i::created_at.eq(now),
                i::updated_at.eq(now),
            ))
            .on_conflict(i::name)
            .do_update()
            .set((
                i::network.eq(record.network),
                i::spec.eq(record.spec),
                i::spec_hash.eq(record.spec_hash),
                i::source_file.eq(record.source_file),
                i::state.eq(state),
                i::updated_at.eq(now),
            ))
            // A deleted integration is left as it is: delete is final.
            .filter(i::state.ne("deleted"))
            .returning(i::id)
            .get_result(&mut self.conn)
            .optional()?;
        id.ok_or_else(|| StoreError::IntegrationDeleted {
            name: record.name.to_string(),
            file: record.source_file.to_string(),
        })
    }

    fn integration_id(&mut self, name: &str) -> Result<Option<i64>, StoreError> {
        integration_id(&mut self.conn, name)
    }

    fn integration_state(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        integration_state(&mut self.conn, name)
    }

    fn lock_run(&mut self, integration: &str) -> Result<(), StoreError> {
        let lock_error = |e: std::io::Error| StoreError::Lock {
            path: self.locks.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&self.locks).map_err(lock_error)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.locks.join(lock_file_name(integration)))
            .map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::RunInProgress(integration.to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        }
        self.run_lock = Some(file);
        Ok(())
    }

    fn begin_run(
        &mut self,
        integration_id: i64,
        trigger: Trigger,
        spec_hash: &str,
    ) -> Result<RunId, StoreError> {
        insert_run(&mut self.conn, integration_id, trigger, spec_hash)
    }

    fn end_run(&mut self) -> Result<(), StoreError> {
        // Closing the file releases the lock.
        self.run_lock = None;
        Ok(())
    }

    fn stored_index(&mut self, integration_id: i64) -> Result<StoredIndex, StoreError> {
        stored_index(&mut self.conn, integration_id)
    }

    fn in_transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Writes) -> Result<(), TxError>,
    ) -> Result<(), TxError> {
        // IMMEDIATE takes the write lock up front, so a concurrent writer
        // waits at the start instead of failing at the first write.
        let mut work_error = None;
        let result = self.conn.immediate_transaction(|conn| {
            work(&mut SqliteWrites {
                conn,
                feed: Default::default(),
            })
            .map_err(|e| {
                work_error = Some(e);
                diesel::result::Error::RollbackTransaction
            })
        });
        let failure = match first_cause(result, work_error) {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if failure.rollback_failed {
            // SQLite rolled back by itself (a full disk, an I/O error) and
            // diesel will run nothing more on this connection: marking the
            // run failed needs a fresh one. If that fails too, the caller's
            // retries reconnect.
            match Self::connect(&self.path) {
                Ok(fresh) => self.conn = fresh,
                Err(e) => tracing::debug!(error = %e, "cannot reconnect after a failed rollback"),
            }
        }
        // SQLite's text for SQLITE_FULL names neither the file nor the way out.
        if failure
            .error
            .to_string()
            .contains("database or disk is full")
        {
            return Err(TxError::Aborted(format!(
                "{}: free space on the file system of {} and run again",
                failure.error,
                self.path.display()
            )));
        }
        Err(failure.error)
    }

    shared_store_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_does_not_wait_for_a_run_that_is_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offersync.db");
        drop(SqliteStore::open(&path).unwrap());
        let mut run = SqliteConnection::establish(&path.display().to_string()).unwrap();
        sql_query("BEGIN IMMEDIATE").execute(&mut run).unwrap();
        // `offersync status` while the daemon writes: the busy timeout is 30 s.
        let started = std::time::Instant::now();
        let mut reader = SqliteStore::open(&path).unwrap();
        assert!(reader.status().unwrap().is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        sql_query("COMMIT").execute(&mut run).unwrap();
    }

    #[test]
    fn processes_opening_a_new_file_together_migrate_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offersync.db");
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        SqliteStore::open(&path).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
        });
    }

    #[test]
    fn lock_files_are_named_safely() {
        assert_eq!(lock_file_name("acme-everflow"), "acme-everflow.lock");
        assert_eq!(lock_file_name("../etc/passwd").len(), 64 + 5);
        assert_eq!(lock_file_name(".hidden").len(), 64 + 5);
    }
}
