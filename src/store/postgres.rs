//! The Postgres store: diesel, migrations embedded from `migrations/postgres`.
//!
//! Its tables, functions and migration table live in the connection's
//! current schema: the first schema of libpq's `search_path` (`public`
//! unless the operator chose one with `options=-csearch_path%3DNAME` in the
//! URL, offersync's `schema=NAME` shortcut for it, or a role's setting).
//! Every statement names tables unqualified, so that two stores in two
//! schemas of one database never see each other; the advisory locks and the
//! change notifications are keyed by schema for the same reason.
//!
//! New campaigns are written with COPY (the fastest way into Postgres);
//! updates rewrite only the columns the integration lets them.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Bool, Int4, Int8, Jsonb, Nullable, Numeric, Text, Timestamptz};
use diesel::{Connection, PgConnection, RunQueryDsl, sql_query};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use rust_decimal::Decimal;

use super::json::JsonText;
use super::rows::{
    BOOKKEEPING_SET, INTERRUPTED, OWN_WRITE_SQL, RunRow, count, restore_sql, run_record,
    update_set, upstream_pause_sql,
};
use super::schema::{
    campaign_changes, campaigns, integrations, pending_changes, publisher_payouts, record_outcomes,
    refresh_requests, schedule_claims, sync_runs, sync_skips, sync_warnings,
};
use super::shared::{shared_queries, shared_store_methods, shared_writes_methods};
use super::{
    CampaignRecord, IntegrationRecord, IntegrationStatus, LiveIntegration, RefreshOutcome,
    RunCounts, RunId, RunRecord, SkipRecord, Store, StoreError, StoredCampaign, StoredHash,
    StoredIndex, Trigger, TxError, Update, UpdateColumns, Writes, redact_url,
};
use crate::campaign::Campaign;
use crate::rules::Skip;

shared_queries!(PgConnection);

/// The change feed's pieces that differ by backend (see `store::feed`).
const JSON_ARRAY_FN: &str = "json_build_array";
/// A JSON column as loaded, and a decimal column.
type StoredJson = JsonText<'static>;
/// The SQL type of a JSON column.
type FeedJsonSql = Jsonb;
type StoredDecimal = Option<Decimal>;

fn stored_decimal(d: StoredDecimal) -> Option<Decimal> {
    d
}

fn feed_json(text: &str) -> JsonText<'_> {
    JsonText(Cow::Borrowed(text))
}

fn stored_json_text(json: &StoredJson) -> &str {
    &json.0
}

/// Where a transaction's feed entries wait (see `store::feed`); a
/// temporary table, so nothing of it outlives the connection.
const PENDING_CHANGES_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS pending_changes (\
     seq BIGSERIAL PRIMARY KEY, integration_id BIGINT NOT NULL, campaign_id BIGINT NOT NULL, \
     external_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, \
     changed_columns JSONB NOT NULL, changed_at TIMESTAMPTZ NOT NULL, cause TEXT)";

fn lock_feed(conn: &mut PgConnection) -> Result<(), StoreError> {
    // Keyed by schema (0 in `public`, as before schemas could be chosen).
    sql_query(
        "SELECT pg_advisory_xact_lock($1, CASE WHEN current_schema() = 'public' THEN 0 \
         ELSE hashtext(current_schema()) END)",
    )
    .bind::<Int4, _>(FEED_LOCK)
    .execute(conn)?;
    Ok(())
}

/// Tells listeners (`LISTEN offersync_changes`) the feed's new end and the
/// schema whose feed it is (the channel is the database's); sent when the
/// transaction commits, never for one that rolls back.
fn notify_feed(conn: &mut PgConnection) -> Result<(), StoreError> {
    sql_query(
        "SELECT pg_notify($1, json_build_object('position', max(position), \
         'schema', current_schema())::text) FROM campaign_changes",
    )
    .bind::<Text, _>(super::feed::NOTIFY_CHANNEL)
    .execute(conn)?;
    Ok(())
}

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory lock namespaces (the first key of two-key advisory locks).
const MIGRATION_LOCK: i32 = 0x0ff5_0001;
const RUN_LOCK: i32 = 0x0ff5_0002;
/// The advisory lock (transaction-scoped) change feed positions are taken under.
const FEED_LOCK: i32 = 0x0ff5_0003;

/// The second key of an integration's run lock: its name, qualified by the
/// schema outside `public` (where it is the name alone, as before schemas
/// could be chosen), so that two stores' integrations of one name never
/// wait for each other.
const RUN_LOCK_KEY: &str = "hashtext(CASE WHEN current_schema() = 'public' THEN $2 \
     ELSE current_schema() || '.' || $2 END)";

/// The URL given to libpq: offersync's `schema=NAME` shortcut (libpq itself
/// refuses unknown parameters) becomes libpq's own
/// `options=-csearch_path%3DNAME`, added to any `options` already there.
/// Everything else is passed as written.
pub(super) fn libpq_url(url: &str) -> Result<String, StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_string());
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("schema", name)) => {
                if schema.is_some() {
                    return Err(StoreError::Schema("the URL names `schema=` twice".into()));
                }
                schema = Some(name.to_string());
            }
            _ => kept.push(pair.to_string()),
        }
    }
    let Some(schema) = schema else {
        return Ok(url.to_string());
    };
    let simple = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !simple {
        return Err(StoreError::Schema(format!(
            "`schema={schema}` is not a plain schema name (lower-case letters, digits and _, \
             at most 63)\n  hint: for any other name use libpq's own parameter, \
             options=-csearch_path%3D%22Name%22"
        )));
    }
    let option = format!("-csearch_path%3D{schema}");
    match kept.iter_mut().find(|p| p.starts_with("options=")) {
        Some(options) if options.contains("search_path") => {
            return Err(StoreError::Schema(format!(
                "the URL chooses a schema twice: `schema={schema}` and a search_path in `options`\n  \
                 hint: keep one of them"
            )));
        }
        Some(options) => options.push_str(&format!("%20{option}")),
        None => kept.push(format!("options={option}")),
    }
    Ok(format!("{base}?{}", kept.join("&")))
}

#[derive(QueryableByName)]
struct SchemaFacts {
    #[diesel(sql_type = Text)]
    search_path: String,
    #[diesel(sql_type = Nullable<Text>)]
    current: Option<String>,
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// Refuses a `search_path` whose first schema does not exist, before
/// anything is created: Postgres would put the tables in the next schema of
/// the path (or nowhere), and a typo in the name would become a new, empty
/// store beside the real one. offersync creates no schema: the operator
/// does (`CREATE SCHEMA`), once, as for the database.
fn check_schema(conn: &mut PgConnection, url: &str) -> Result<(), StoreError> {
    let facts: SchemaFacts = sql_query(
        "SELECT current_setting('search_path') AS search_path, current_schema() AS current",
    )
    .get_result(conn)?;
    // "$user" is a schema only where one of the role's name exists, and
    // then it is the current one.
    let first = facts
        .search_path
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .find(|s| !s.is_empty() && s != "$user");
    let missing = match &first {
        Some(name) => {
            let found: Exists = sql_query(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS exists",
            )
            .bind::<Text, _>(name)
            .get_result(conn)?;
            (!found.exists).then(|| name.clone())
        }
        None => facts.current.is_none().then(|| facts.search_path.clone()),
    };
    match missing {
        None => Ok(()),
        Some(name) => Err(StoreError::Schema(format!(
            "the schema `{name}` (first in search_path `{path}`) does not exist in the database at {url}\n  \
             hint: offersync creates tables in a schema, never the schema: create it once \
             (psql -c 'CREATE SCHEMA {name}'), or fix its name",
            path = facts.search_path,
            url = redact_url(url),
        ))),
    }
}

/// A connection to the Postgres store.
pub struct PgStore {
    conn: PgConnection,
    url: String,
    /// The integration whose run lock this connection holds.
    run_lock: Option<String>,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

impl PgStore {
    /// Connects and applies pending migrations (serialized between processes
    /// by an advisory lock, so replicas can start together).
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        // TLS (sslmode, sslrootcert, sslcert/sslkey) is libpq's own.
        let mut conn =
            PgConnection::establish(&libpq_url(url)?).map_err(|e| StoreError::Connect {
                url: redact_url(url),
                message: e.to_string().trim().to_string(),
            })?;
        check_schema(&mut conn, url)?;
        sql_query("SELECT pg_advisory_lock($1, 0)")
            .bind::<Int4, _>(MIGRATION_LOCK)
            .execute(&mut conn)?;
        let migrated = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Migration(e.to_string()));
        sql_query("SELECT pg_advisory_unlock($1, 0)")
            .bind::<Int4, _>(MIGRATION_LOCK)
            .execute(&mut conn)?;
        migrated?;
        Ok(Self {
            conn,
            url: url.to_string(),
            run_lock: None,
        })
    }
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
    revenue: Option<Decimal>,
    payout: Option<Decimal>,
    revenue_max: Option<Decimal>,
    payout_max: Option<Decimal>,
    payout_kind: &'static str,
    currency: Option<&'a str>,
    model: Option<&'static str>,
    models: JsonText<'a>,
    objective: Option<&'static str>,
    redirect: i32,
    countries: JsonText<'a>,
    blocked_countries: JsonText<'a>,
    os: JsonText<'a>,
    blocked_os: JsonText<'a>,
    devices: JsonText<'a>,
    min_os_version: Option<&'a str>,
    category: Option<&'a str>,
    description: Option<&'a str>,
    kpi: Option<&'a str>,
    payouts: JsonText<'a>,
    caps: JsonText<'a>,
    import_caps: JsonText<'a>,
    cap_settings: JsonText<'a>,
    settings: JsonText<'a>,
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
            revenue: c.revenue,
            payout: c.payout,
            revenue_max: c.revenue_max,
            payout_max: c.payout_max,
            payout_kind: c.payout_kind.as_str(),
            currency: c.currency.as_deref(),
            model: c.model.map(|m| m.as_str()),
            models: JsonText::of(&c.models),
            objective: c.objective.map(|m| m.as_str()),
            redirect: i32::from(c.redirect),
            countries: JsonText::of(&c.countries),
            blocked_countries: JsonText::of(&c.blocked_countries),
            os: JsonText::of(&c.os),
            blocked_os: JsonText::of(&c.blocked_os),
            devices: JsonText::of(&c.devices),
            min_os_version: c.min_os_version.as_deref(),
            category: c.category.as_deref(),
            description: c.description.as_deref(),
            kpi: c.kpi.as_deref(),
            payouts: JsonText::of(&c.payouts),
            caps: JsonText::of(&c.caps),
            import_caps: JsonText::of(&*c.import_caps),
            cap_settings: JsonText(Cow::Borrowed(&c.cap_settings)),
            settings: JsonText(Cow::Borrowed(&c.settings)),
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
#[diesel(table_name = publisher_payouts, treat_none_as_default_value = false)]
struct NewPublisherPayout<'a> {
    integration_id: i64,
    external_id: &'a str,
    kind: &'static str,
    name: &'a str,
    payout: Decimal,
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
        payout: p.payout,
    })
}

type Query<'a> = BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery>;

/// The `n`th bind parameter (from 1) as this backend writes it.
fn placeholder(n: usize) -> String {
    format!("${n}")
}

fn bind_time(q: Query<'_>, t: DateTime<Utc>) -> Query<'_> {
    q.bind::<Timestamptz, _>(t)
}

fn bind_id(q: Query<'_>, id: i64) -> Query<'_> {
    q.bind::<Int8, _>(id)
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
        "revenue" => q.bind::<Nullable<Numeric>, _>(c.revenue),
        "payout" => q.bind::<Nullable<Numeric>, _>(c.payout),
        "revenue_max" => q.bind::<Nullable<Numeric>, _>(c.revenue_max),
        "payout_max" => q.bind::<Nullable<Numeric>, _>(c.payout_max),
        "models" => q.bind::<Jsonb, _>(JsonText::of(&c.models)),
        "blocked_os" => q.bind::<Jsonb, _>(JsonText::of(&c.blocked_os)),
        "devices" => q.bind::<Jsonb, _>(JsonText::of(&c.devices)),
        "min_os_version" => q.bind::<Nullable<Text>, _>(text(&c.min_os_version)),
        "currency" => q.bind::<Nullable<Text>, _>(text(&c.currency)),
        "payout_kind" => q.bind::<Text, _>(c.payout_kind.as_str()),
        "model" => q.bind::<Nullable<Text>, _>(c.model.map(|m| m.as_str())),
        "objective" => q.bind::<Nullable<Text>, _>(c.objective.map(|m| m.as_str())),
        "redirect" => q.bind::<Int4, _>(i32::from(c.redirect)),
        "countries" => q.bind::<Jsonb, _>(JsonText::of(&c.countries)),
        "blocked_countries" => q.bind::<Jsonb, _>(JsonText::of(&c.blocked_countries)),
        "os" => q.bind::<Jsonb, _>(JsonText::of(&c.os)),
        "category" => q.bind::<Nullable<Text>, _>(text(&c.category)),
        "description" => q.bind::<Nullable<Text>, _>(text(&c.description)),
        "kpi" => q.bind::<Nullable<Text>, _>(text(&c.kpi)),
        "payouts" => q.bind::<Jsonb, _>(JsonText::of(&c.payouts)),
        "caps" => q.bind::<Jsonb, _>(JsonText::of(&c.caps)),
        "cap_settings" => q.bind::<Jsonb, _>(JsonText(Cow::Borrowed(&c.cap_settings))),
        "settings" => q.bind::<Jsonb, _>(JsonText(Cow::Borrowed(&c.settings))),
        "starts_at" => q.bind::<Nullable<Timestamptz>, _>(c.starts_at),
        "expires_at" => q.bind::<Nullable<Timestamptz>, _>(c.expires_at),
        "advertiser" => q.bind::<Text, _>(&*c.advertiser),
        "raw" => q.bind::<Text, _>(c.raw.get()),
        "content_hash" => q.bind::<Text, _>(&c.content_hash),
        "raw_hash" => q.bind::<Text, _>(&c.raw_hash),
        "applied_hash" => q.bind::<Text, _>(&c.applied_hash),
        other => unreachable!("no campaign column {other}"),
    }
}

struct PgWrites<'c> {
    conn: &'c mut PgConnection,
    feed: super::feed::PendingFeed,
}

/// Rows per COPY or multi-row INSERT.
const BATCH: usize = 2_000;

impl Writes for PgWrites<'_> {
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
            diesel::copy_from(campaigns::table)
                .from_insertable(&rows)
                .execute(self.conn)?;
            let payouts: Vec<NewPublisherPayout<'_>> = chunk
                .iter()
                .flat_map(|c| publisher_rows(integration_id, c))
                .collect();
            if !payouts.is_empty() {
                diesel::copy_from(publisher_payouts::table)
                    .from_insertable(&payouts)
                    .execute(self.conn)?;
            }
        }
        Ok(())
    }

    shared_writes_methods!();
}

impl Store for PgStore {
    fn reopen(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(Self::connect(&self.url)?))
    }

    fn upsert_integration(&mut self, record: &IntegrationRecord<'_>) -> Result<i64, StoreError> {
        // `ON CONFLICT … DO UPDATE … WHERE`.
        use diesel::query_dsl::methods::FilterDsl as _;
        use integrations::dsl as i;
        let state = if record.enabled { "active" } else { "disabled" };
        let values = (
            i::name.eq(record.name),
            i::network.eq(record.network),
            i::spec.eq(record.spec),
            i::spec_hash.eq(record.spec_hash),
            i::source_file.eq(record.source_file),
            i::state.eq(state),
        );
        let id = diesel::insert_into(i::integrations)
            .values(values)
            .on_conflict(i::name)
            .do_update()
            .set((
                i::network.eq(record.network),
                i::spec.eq(record.spec),
                i::spec_hash.eq(record.spec_hash),
                i::source_file.eq(record.source_file),
                i::state.eq(state),
                i::updated_at.eq(diesel::dsl::now),
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
        let locked: Locked = sql_query(format!(
            "SELECT pg_try_advisory_lock($1, {RUN_LOCK_KEY}) AS locked"
        ))
        .bind::<Int4, _>(RUN_LOCK)
        .bind::<Text, _>(integration)
        .get_result(&mut self.conn)?;
        if !locked.locked {
            return Err(StoreError::RunInProgress(integration.to_string()));
        }
        self.run_lock = Some(integration.to_string());
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
        if let Some(name) = self.run_lock.take() {
            sql_query(format!("SELECT pg_advisory_unlock($1, {RUN_LOCK_KEY})"))
                .bind::<Int4, _>(RUN_LOCK)
                .bind::<Text, _>(name)
                .execute(&mut self.conn)?;
        }
        Ok(())
    }

    fn stored_index(&mut self, integration_id: i64) -> Result<StoredIndex, StoreError> {
        stored_index(&mut self.conn, integration_id)
    }

    fn in_transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Writes) -> Result<(), TxError>,
    ) -> Result<(), TxError> {
        // The first cause, not a rollback's failure after it (see
        // `first_cause`). A connection whose rollback failed is left as it
        // is: reconnecting would drop the run lock, and marking the run
        // failed reconnects when it must.
        let mut work_error = None;
        let result = self.conn.transaction(|conn| {
            work(&mut PgWrites {
                conn,
                feed: Default::default(),
            })
            .map_err(|e| {
                work_error = Some(e);
                diesel::result::Error::RollbackTransaction
            })
        });
        super::first_cause(result, work_error).map_err(|failure| failure.error)
    }

    shared_store_methods!();
}

#[cfg(test)]
mod tests {
    use super::libpq_url;

    #[test]
    fn the_schema_shortcut_becomes_libpqs_search_path_option() {
        let url = "postgres://u@h/db?schema=shop_a&sslmode=disable";
        assert_eq!(
            libpq_url(url).unwrap(),
            "postgres://u@h/db?sslmode=disable&options=-csearch_path%3Dshop_a"
        );
        // Added to the options already there, with libpq's own escape for
        // the space (libpq decodes %XX only, never `+`).
        assert_eq!(
            libpq_url("postgres://h/db?options=-cstatement_timeout%3D5000&schema=b").unwrap(),
            "postgres://h/db?options=-cstatement_timeout%3D5000%20-csearch_path%3Db"
        );
        // Without the shortcut the URL is libpq's, untouched.
        for plain in [
            "postgres://h/db",
            "postgres://h/db?options=-csearch_path%3Dx",
            "postgresql://h1,h2/db?target_session_attrs=read-write",
        ] {
            assert_eq!(libpq_url(plain).unwrap(), plain);
        }
        for refused in [
            "postgres://h/db?schema=Shop",
            "postgres://h/db?schema=a;drop",
            "postgres://h/db?schema=",
            "postgres://h/db?schema=a&schema=b",
            "postgres://h/db?schema=a&options=-csearch_path%3Db",
        ] {
            assert!(libpq_url(refused).is_err(), "{refused}");
        }
    }
}
