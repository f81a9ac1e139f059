//! Sync runs end to end: a mock network on 127.0.0.1, a fresh database per
//! test, manifests in a temp directory. Every scenario runs on both store
//! backends (`postgres::` and `sqlite::` test names).

mod common;

use std::time::{Duration, Instant};

use common::*;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use offersync::store::{self, CampaignRecord, Trigger};
use offersync::sync::{self, RunReport};
use rust_decimal::Decimal;

async fn sync_once(m: &Manifests, db: &TestDb, name: &str) -> RunReport {
    let def = m.load(name);
    let store = store::open(&db.url).expect("open the store");
    let (_, report) = sync::run(def, store, Trigger::Cli).await;
    report.expect("the run starts")
}

async fn plan_once(m: &Manifests, db: &TestDb, name: &str) -> RunReport {
    let def = m.load(name);
    let store = store::open(&db.url).expect("open the store");
    let (_, report) = sync::plan(def, store).await;
    report.expect("the plan starts")
}

fn campaigns(db: &TestDb, name: &str) -> Vec<CampaignRecord> {
    store::open(&db.url).unwrap().campaigns(name).unwrap()
}

fn campaign(db: &TestDb, name: &str, external_id: &str) -> CampaignRecord {
    campaigns(db, name)
        .into_iter()
        .find(|c| c.external_id == external_id)
        .unwrap_or_else(|| panic!("campaign {external_id}"))
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct RowVersion {
    #[diesel(sql_type = Text)]
    external_id: String,
    #[diesel(sql_type = Text)]
    version: String,
}

/// Each campaign row's version: any write to a row changes it. Postgres
/// gives the physical version (`xmin`); SQLite has none, so there it is the
/// change time, which every write of offersync's sets.
fn row_versions(db: &TestDb) -> Vec<RowVersion> {
    db.query(match db.backend {
        Backend::Postgres => {
            "SELECT external_id, xmin::text AS version FROM campaigns ORDER BY external_id"
        }
        Backend::Sqlite => {
            "SELECT external_id, changed_at || ' ' || content_hash AS version FROM campaigns ORDER BY external_id"
        }
    })
}

const RULES: &str = r#"  tracking: {append: "sub1={click_id}"}
  defaults: {category: Misc, visibility: public}
  payout: {ratio: 0.8, tiers: {gold: 0.9}, publishers: {pub-42: 12.00}}
  caps:
    update: true
    additional: [{event: clicks, period: daily, value: 5000}]
    on_import: [{event: conversions, period: total, value: 900}]
"#;

async fn first_import_creates_every_campaign_with_every_column(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=25), RULES).await;
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    let c = &report.counts;
    assert_eq!(
        (
            c.pages,
            c.fetched,
            c.created,
            c.updated,
            c.unchanged,
            c.skipped,
            c.removed
        ),
        (3, 25, 25, 0, 0, 0, 0)
    );
    assert_eq!(mock.requests().len(), 3);
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.headers.get("x-api-key").map(String::as_str) == Some(API_KEY))
    );

    let all = campaigns(&db, "acme");
    assert_eq!(all.len(), 25);
    let c7 = campaign(&db, "acme", "7");
    assert_eq!(c7.name, "Offer 7");
    assert_eq!(c7.status, "active");
    assert_eq!(c7.visibility, "public");
    assert_eq!(c7.revenue, Some(dec("8.50")));
    assert_eq!(c7.payout, Some(dec("6.8")));
    assert_eq!(c7.currency.as_deref(), Some("USD"));
    assert_eq!(c7.category.as_deref(), Some("Finance"));
    assert_eq!(
        c7.tracking_url.as_deref(),
        Some("https://trk.example/c/7?aff=1&sub1={click_id}")
    );
    assert_eq!(c7.countries, serde_json::json!(["CA", "US"]));
    assert_eq!(
        c7.caps,
        serde_json::json!([
            {"event": "conversions", "period": "daily", "value": "100"},
            {"event": "clicks", "period": "daily", "value": "5000"}
        ])
    );
    assert_eq!(
        c7.import_caps,
        serde_json::json!([{"event": "conversions", "period": "total", "value": "900"}])
    );

    let payouts = publisher_payouts(&db, "7");
    assert_eq!(
        payouts,
        [
            ("publisher".into(), "pub-42".into(), "12.00".into()),
            ("tier".into(), "gold".into(), "7.65".into()),
        ]
    );

    #[derive(QueryableByName)]
    struct Raw {
        #[diesel(sql_type = Text)]
        name: String,
    }
    // The raw record is stored as the network sent it, as text (lz4 on
    // Postgres, issue 15): the platform reads it as JSON with a cast.
    let read_raw = match backend {
        Backend::Postgres => {
            "SELECT raw::jsonb->>'name' AS name FROM campaigns WHERE external_id = '7'"
        }
        Backend::Sqlite => "SELECT raw->>'name' AS name FROM campaigns WHERE external_id = '7'",
    };
    let raw: Vec<Raw> = db.query(read_raw);
    assert_eq!(raw[0].name, "Offer 7");
    if backend == Backend::Postgres {
        #[derive(QueryableByName)]
        struct Column {
            #[diesel(sql_type = Text)]
            kind: String,
            #[diesel(sql_type = Text)]
            compression: String,
        }
        let column: Vec<Column> = db.query(
            "SELECT format_type(atttypid, atttypmod) AS kind, attcompression::text AS compression \
             FROM pg_attribute WHERE attrelid = 'campaigns'::regclass AND attname = 'raw'",
        );
        assert_eq!(
            (column[0].kind.as_str(), column[0].compression.as_str()),
            ("text", "l"),
            "campaigns.raw is text compressed with lz4"
        );
    }
}

async fn a_rerun_without_upstream_change_writes_nothing(backend: Backend) {
    let (_mock, m, db) = setup(backend, offers(1..=25), RULES).await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let before = row_versions(&db);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    let c = &report.counts;
    assert_eq!(
        (c.created, c.updated, c.unchanged, c.removed),
        (0, 0, 25, 0)
    );
    assert_eq!(row_versions(&db), before, "no campaign row was rewritten");
    let plan = plan_once(&m, &db, "acme").await;
    let p = plan.plan.unwrap();
    assert!(p.create.is_empty() && p.update.is_empty() && p.remove.is_empty());
}

async fn updatable_columns_follow_upstream_and_manual_edits_in_protected_ones_survive(
    backend: Backend,
) {
    let policy = "  update: {columns: {name: on_create, status: on_create, payout: always, revenue: always}}\n";
    let (mock, m, db) = setup(backend, offers(1..=5), policy).await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    db.execute(
        "UPDATE campaigns SET name = 'Hand-named', status = 'paused' WHERE external_id = '3'",
    );

    let mut changed = offers(1..=5);
    changed[2]["name"] = "Renamed upstream".into();
    changed[2]["payout"] = "20.00".into();
    mock.set_offers(changed);
    let plan = plan_once(&m, &db, "acme").await;
    assert_eq!(
        plan.plan.unwrap().update,
        [("3".to_string(), "Renamed upstream".to_string())]
    );

    let before = row_versions(&db);
    let report = sync_once(&m, &db, "acme").await;
    assert_eq!((report.counts.updated, report.counts.unchanged), (1, 4));
    let c3 = campaign(&db, "acme", "3");
    assert_eq!(
        c3.name, "Hand-named",
        "on_create column keeps the manual edit"
    );
    assert_eq!(
        c3.status, "paused",
        "on_create column keeps the manual edit"
    );
    assert_eq!(c3.revenue, Some(dec("20.00")));
    assert_eq!(c3.payout, Some(dec("20")));
    let after = row_versions(&db);
    let rewritten: Vec<&str> = after
        .iter()
        .zip(&before)
        .filter(|(a, b)| a.version != b.version)
        .map(|(a, _)| a.external_id.as_str())
        .collect();
    assert_eq!(rewritten, ["3"]);
}

async fn an_offer_gone_upstream_is_paused_and_restored_when_it_comes_back(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=10), "").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());

    mock.set_offers(
        offers(1..=10)
            .into_iter()
            .filter(|o| o["id"] != 4)
            .collect(),
    );
    let plan = plan_once(&m, &db, "acme").await.plan.unwrap();
    assert_eq!(plan.remove, ["4"]);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.removed, 1);
    let c4 = campaign(&db, "acme", "4");
    assert_eq!(c4.status, "paused");
    assert!(c4.removed_at.is_some());

    mock.set_offers(offers(1..=10));
    let report = sync_once(&m, &db, "acme").await;
    assert_eq!(
        (
            report.counts.restored,
            report.counts.updated,
            report.counts.unchanged
        ),
        (1, 1, 9)
    );
    let c4 = campaign(&db, "acme", "4");
    assert_eq!(c4.status, "active");
    assert_eq!(c4.removed_at, None);
}

async fn on_removed_keep_marks_without_pausing(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=10), "  on_removed: keep\n").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    mock.set_offers(offers(2..=10));
    assert_eq!(sync_once(&m, &db, "acme").await.counts.removed, 1);
    let c1 = campaign(&db, "acme", "1");
    assert_eq!(c1.status, "active");
    assert!(c1.removed_at.is_some());
}

/// Runs after a good first run: upstream changed, then `failure` on page 2 of 3.
async fn failing_second_run(
    backend: Backend,
    failure: Failure,
) -> (RunReport, MockNetwork, TestDb, Vec<RowVersion>) {
    let (mock, m, db) = setup(backend, offers(1..=25), "").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let before = row_versions(&db);
    // Every offer renamed and offer 25 gone: a complete run would update and pause.
    mock.set_offers(
        offers(1..=24)
            .into_iter()
            .map(|mut o| {
                o["name"] = format!("{} v2", o["name"].as_str().unwrap()).into();
                o
            })
            .collect(),
    );
    mock.fail(1, failure);
    let report = sync_once(&m, &db, "acme").await;
    (report, mock, db, before)
}

fn assert_nothing_changed(db: &TestDb, before: &[RowVersion]) {
    assert_eq!(row_versions(db), before, "a failed run changes no campaign");
    let all = campaigns(db, "acme");
    assert!(
        all.iter()
            .all(|c| c.status == "active" && c.removed_at.is_none() && !c.name.ends_with("v2"))
    );
}

#[derive(QueryableByName)]
struct RunRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
}

fn last_run(db: &TestDb) -> RunRow {
    db.query::<RunRow>("SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")
        .pop()
        .unwrap()
}

async fn a_failing_page_fails_the_run_and_changes_nothing_after_exhausting_retries(
    backend: Backend,
) {
    let (report, mock, db, before) = failing_second_run(
        backend,
        Failure::Status {
            status: 500,
            times: usize::MAX,
        },
    )
    .await;
    let error = report.error.expect("the run failed");
    assert!(error.contains("HTTP 500"), "{error}");
    // limits.retries is 2: page 2 once in the first run, three times in the
    // second. Page 3: once in the first run, and in the second at most the
    // one request fetched ahead while page 2 was tried (never retried, never
    // used: the run keeps nothing).
    let pages = |n: &str| {
        mock.requests()
            .iter()
            .filter(|r| r.query.get("page").map(String::as_str) == Some(n))
            .count()
    };
    assert_eq!(pages("2"), 1 + 3);
    assert!(
        (1..=2).contains(&pages("3")),
        "page 3 asked {} times",
        pages("3")
    );
    assert_eq!(pages("4"), 0, "nothing past the stated last page");
    assert_nothing_changed(&db, &before);
    let run = last_run(&db);
    assert_eq!(run.status, "failed");
    assert!(run.error.unwrap().contains("HTTP 500"));
}

async fn a_500_that_recovers_within_the_retries_is_only_a_warning(backend: Backend) {
    let (report, _mock, _db, _) = failing_second_run(
        backend,
        Failure::Status {
            status: 503,
            times: 2,
        },
    )
    .await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.updated, report.counts.removed), (24, 1));
}

async fn a_429_with_retry_after_is_waited_out(backend: Backend) {
    let started = Instant::now();
    let (report, mock, _db, _) = failing_second_run(
        backend,
        Failure::RetryAfter {
            seconds: 1,
            times: 1,
        },
    )
    .await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let page2 = mock
        .requests()
        .iter()
        .filter(|r| r.query.get("page").map(String::as_str) == Some("2"))
        .count();
    assert_eq!(
        page2,
        1 + 2,
        "page 2: once in the first run, twice in the second"
    );
}

async fn truncated_json_fails_the_run_and_changes_nothing(backend: Backend) {
    let (report, _mock, db, before) = failing_second_run(backend, Failure::Truncated).await;
    let error = report.error.expect("the run failed");
    assert!(
        error.contains("page 2") && error.contains("not valid JSON"),
        "{error}"
    );
    assert_nothing_changed(&db, &before);
}

async fn an_empty_feed_or_a_mass_removal_is_refused_as_an_outage(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=10), "").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let before = row_versions(&db);

    mock.set_offers(vec![]);
    let report = sync_once(&m, &db, "acme").await;
    assert!(
        report.error.as_deref().unwrap().contains("no offers"),
        "{:?}",
        report.error
    );
    assert_eq!(row_versions(&db), before);

    mock.set_offers(offers(1..=4));
    let report = sync_once(&m, &db, "acme").await;
    let error = report.error.unwrap();
    assert!(error.contains("would remove 6 of 10"), "{error}");
    assert_eq!(row_versions(&db), before);

    m.set_integration(&integration_yaml(
        "acme",
        &mock.base_url(),
        "  safety: {allow_empty_feed: true, max_removed_share: 1}\n",
    ));
    mock.set_offers(vec![]);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.removed, 10);
}

async fn filters_skip_with_reasons_that_the_run_log_keeps(backend: Backend) {
    let filters = r#"  filters:
    countries: {block: [RU]}
    payout: {min: 2, max: 30}
    models: [CPA]
"#;
    let mut list = offers(1..=12);
    list[0]["payout"] = "1.00".into(); // 1: below min
    list[1]["payout"] = "31.00".into(); // 2: above max
    list[2]["countries"] = serde_json::json!(["RU"]); // 3: blocked
    list[3]["model"] = "cpi".into(); // 4: model excluded
    // 5: a mapping problem (countries nobody knows would read as worldwide)
    list[4]["countries"] = serde_json::json!(["Narnia"]);
    list[5]["id"] = 7.into(); // 6 becomes a duplicate of 7
    let (_mock, m, db) = setup(backend, list, filters).await;
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    let by_reason: Vec<(String, u32)> = report
        .counts
        .skipped_by_reason
        .iter()
        .map(|(r, n)| (r.to_string(), *n))
        .collect();
    assert_eq!(
        by_reason,
        [
            ("country_blocked".to_string(), 1),
            ("model_excluded".to_string(), 1),
            ("payout_below_min".to_string(), 1),
            ("payout_above_max".to_string(), 1),
            ("duplicate_id".to_string(), 1),
            ("mapping_problem".to_string(), 1),
        ]
    );
    assert_eq!(report.counts.created, 6);

    #[derive(QueryableByName)]
    struct SkipRow {
        #[diesel(sql_type = Nullable<Text>)]
        external_id: Option<String>,
        #[diesel(sql_type = Text)]
        reason: String,
        #[diesel(sql_type = Text)]
        detail: String,
    }
    let skips: Vec<SkipRow> =
        db.query("SELECT external_id, reason, detail FROM sync_skips ORDER BY external_id");
    let skips: Vec<(String, String, String)> = skips
        .into_iter()
        .map(|s| (s.external_id.unwrap_or_default(), s.reason, s.detail))
        .collect();
    assert!(
        skips.contains(&(
            "1".into(),
            "payout_below_min".into(),
            "payout 1.00 < min 2.00".into()
        )),
        "{skips:?}"
    );
    assert!(
        skips.contains(&(
            "5".into(),
            "mapping_problem".into(),
            "record 4 (id 5): field countries: \"Narnia\" is no country offersync knows; left empty the offer would run worldwide".into()
        )),
        "{skips:?}"
    );
    assert!(
        skips.contains(&(
            "7".into(),
            "duplicate_id".into(),
            "an earlier record of this run had the same id".into()
        )),
        "{skips:?}"
    );
}

/// Issue 25.4: country logic narrows what a row targets; it skips an offer
/// only when no country is left, and a row never both targets and blocks a
/// country. `mode: skip_offer` keeps skipping the whole offer.
async fn country_logic_narrows_the_stored_targeting(backend: Backend) {
    let mut list = offers(1..=6);
    list[0]["countries"] = serde_json::json!(["US", "DE"]); // 1: DE not allowed
    list[1]["countries"] = serde_json::json!(["US", "RU"]); // 2: RU blocked
    list[2]["countries"] = serde_json::json!([]); // 3: worldwide, but not GB
    list[2]["blocked_countries"] = serde_json::json!(["GB"]);
    list[3]["countries"] = serde_json::json!(["RU"]); // 4: nothing left
    list[4]["countries"] = serde_json::json!(["DE"]); // 5: nothing allowed
    list[5]["countries"] = serde_json::json!(["US", "GB"]); // 6: GB pays 7.50, over 5
    let mock = MockNetwork::start(list, 10).await;
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replacen(
        "    caps:\n",
        "    blocked_countries: $.blocked_countries[*]\n    caps:\n",
        1,
    );
    let filters = |mode: &str| {
        format!(
            "  filters:\n    countries: {{allow: [US, GB], block: [RU]{mode}}}\n    geo: [{{country: GB, max: 5}}]\n  safety: {{max_removed_share: 1}}\n"
        )
    };
    let m = Manifests::new(
        &network,
        &integration_yaml("acme", &mock.base_url(), &filters("")),
    );
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    let targeting = |id: &str| {
        let row = stored_row(&db, id);
        (row["countries"].clone(), row["blocked_countries"].clone())
    };
    let json = |list: &[&str]| serde_json::json!(list);
    assert_eq!(targeting("1"), (json(&["US"]), json(&[])));
    assert_eq!(targeting("2"), (json(&["US"]), json(&[])));
    assert_eq!(targeting("3"), (json(&["US"]), json(&["GB", "RU"])));
    assert_eq!(targeting("6"), (json(&["US"]), json(&[])));
    let by_reason: Vec<(String, u32)> = report
        .counts
        .skipped_by_reason
        .iter()
        .map(|(r, n)| (r.to_string(), *n))
        .collect();
    assert_eq!(
        by_reason,
        [
            ("country_blocked".to_string(), 1),
            ("country_not_allowed".to_string(), 1)
        ]
    );
    assert_eq!(report.counts.created, 4);

    // Under skip_offer, an offer with a blocked country (2) or a country out
    // of its geo bounds (6) is skipped whole; one allowed country is enough
    // (1 keeps DE); the worldwide offer still never targets GB.
    m.set_integration(&integration_yaml(
        "acme",
        &mock.base_url(),
        &filters(", mode: skip_offer"),
    ));
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.filtered, 2);
    assert_eq!(targeting("1"), (json(&["DE", "US"]), json(&[])));
    assert_eq!(targeting("3"), (json(&["US"]), json(&["GB", "RU"])));
    assert!(campaign(&db, "acme", "2").removed_at.is_some());
    assert!(campaign(&db, "acme", "6").removed_at.is_some());
}

async fn a_skipped_offer_that_was_imported_is_filtered_out_but_a_mapping_problem_is_left_alone(
    backend: Backend,
) {
    let (mock, m, db) = setup(backend, offers(1..=10), "  filters: {payout: {max: 30}}\n").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let mut list = offers(1..=10);
    list[0]["payout"] = "99".into(); // now filtered out: its campaign is paused
    list[1]["payout"] = "n/a".into(); // unreadable: its campaign is left as it is
    mock.set_offers(list);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.removed, report.counts.filtered), (0, 1));
    let filtered = campaign(&db, "acme", "1");
    assert_eq!(filtered.status, "paused");
    assert!(filtered.removed_at.is_some());
    assert_eq!(campaign(&db, "acme", "2").status, "active");
}

async fn narrowing_the_filters_filters_out_without_tripping_the_outage_guard(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=10), "").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    // 8 of 10 no longer selected: more than max_removed_share, but not gone.
    let narrowed = |extra: &str| {
        integration_yaml(
            "acme",
            &mock.base_url(),
            &format!("  filters: {{offers: ['2', '7']}}\n{extra}"),
        )
    };
    m.set_integration(&narrowed(""));
    let plan = plan_once(&m, &db, "acme").await;
    assert!(plan.succeeded(), "{:?}", plan.error);
    assert_eq!(plan.plan.as_ref().unwrap().filter.len(), 8);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.removed, report.counts.filtered), (0, 8));
    let stored = campaigns(&db, "acme");
    let active: Vec<&str> = stored
        .iter()
        .filter(|c| c.status == "active" && c.removed_at.is_none())
        .map(|c| c.external_id.as_str())
        .collect();
    assert_eq!(active, ["2", "7"]);
    let runs = store::open(&db.url)
        .unwrap()
        .recent_runs("acme", 1)
        .unwrap();
    assert_eq!(
        (runs[0].filtered, runs[0].removed),
        (8, 0),
        "the run log counts them"
    );
    // Widened again, the filtered-out campaigns are restored.
    m.set_integration(&integration_yaml("acme", &mock.base_url(), ""));
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.restored, 8);
    assert!(
        campaigns(&db, "acme")
            .iter()
            .all(|c| c.status == "active" && c.removed_at.is_none())
    );
    // on_filtered: keep only marks them.
    m.set_integration(&narrowed("  on_filtered: keep\n"));
    let report = sync_once(&m, &db, "acme").await;
    assert_eq!(report.counts.filtered, 8);
    let kept = campaign(&db, "acme", "1");
    assert_eq!(kept.status, "active");
    assert!(kept.removed_at.is_some());
}

async fn a_restore_undoes_the_removal_and_leaves_a_protected_status_as_set(backend: Backend) {
    for on_removed in ["pause", "keep"] {
        let extra = format!(
            "  update: {{columns: {{status: on_create}}}}\n  on_removed: {on_removed}\n  safety: {{max_removed_share: 1}}\n"
        );
        let (mock, m, db) = setup(backend, offers(1..=3), &extra).await;
        assert!(sync_once(&m, &db, "acme").await.succeeded());
        db.execute("UPDATE campaigns SET status = 'paused' WHERE external_id = '1'");
        mock.set_offers(offers(3..=3));
        let report = sync_once(&m, &db, "acme").await;
        assert_eq!(report.counts.removed, 2, "{on_removed}: {:?}", report.error);
        let expected = if on_removed == "pause" {
            "paused"
        } else {
            "active"
        };
        assert_eq!(campaign(&db, "acme", "2").status, expected, "{on_removed}");
        mock.set_offers(offers(1..=3));
        let report = sync_once(&m, &db, "acme").await;
        assert_eq!(report.counts.restored, 2, "{on_removed}");
        let (one, two) = (campaign(&db, "acme", "1"), campaign(&db, "acme", "2"));
        assert_eq!(
            one.status, "paused",
            "{on_removed}: the operator's pause stays"
        );
        assert_eq!(
            two.status, "active",
            "{on_removed}: the removal's pause is undone"
        );
        assert!(one.removed_at.is_none() && two.removed_at.is_none());
    }
}

#[derive(QueryableByName, Debug)]
struct RawRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    raw: String,
    #[diesel(sql_type = Text)]
    changed_at: String,
}

fn raw_row(db: &TestDb, external_id: &str) -> RawRow {
    let sql = match db.backend {
        Backend::Postgres => {
            "SELECT name, raw::text AS raw, changed_at::text AS changed_at FROM campaigns WHERE external_id = "
        }
        Backend::Sqlite => "SELECT name, raw, changed_at FROM campaigns WHERE external_id = ",
    };
    db.query::<RawRow>(&format!("{sql}'{external_id}'"))
        .remove(0)
}

async fn a_raw_only_change_rewrites_the_raw_record_and_nothing_else(backend: Backend) {
    let with_counter = |n: u32| {
        let mut list = offers(1..=3);
        list[1]["remaining_conversion_cap"] = n.into();
        list
    };
    let (mock, m, db) = setup(backend, with_counter(100), "").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let before = raw_row(&db, "2");
    mock.set_offers(with_counter(97));
    let plan = plan_once(&m, &db, "acme").await;
    assert!(
        plan.plan.as_ref().unwrap().update.is_empty(),
        "no ~ update: {:?}",
        plan.plan
    );
    let report = sync_once(&m, &db, "acme").await;
    assert_eq!((report.counts.updated, report.counts.unchanged), (0, 3));
    let after = raw_row(&db, "2");
    assert_eq!(after.name, before.name);
    assert_eq!(after.changed_at, before.changed_at, "changed_at stays");
    assert!(
        before.raw.contains("100") && after.raw.contains("97"),
        "{after:?}"
    );
    // A mapped change still updates.
    let mut renamed = with_counter(97);
    renamed[1]["name"] = "Renamed upstream".into();
    mock.set_offers(renamed);
    assert_eq!(sync_once(&m, &db, "acme").await.counts.updated, 1);
    assert_eq!(raw_row(&db, "2").name, "Renamed upstream");
}

/// A database made by the release before the removal guard (its two
/// migrations), with a campaign and a run in it, upgrades without losing a
/// row, and syncs.
async fn a_database_of_the_previous_release_upgrades_without_losing_a_row(backend: Backend) {
    let mock = MockNetwork::start(offers(1..=3), 10).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let db = TestDb::new(backend);
    db.migrate_to_release(2);
    let now = "2026-11-30T12:00:00Z";
    let (json, time) = match backend {
        Backend::Postgres => ("::jsonb", "::timestamptz"),
        Backend::Sqlite => ("", ""),
    };
    db.execute(&format!(
        "INSERT INTO integrations (id, name, network, spec, spec_hash, source_file, state, created_at, updated_at) \
         VALUES (1, 'acme', 'mocknet', '', 'old', 'integration.yaml', 'active', '{now}'{time}, '{now}'{time})"
    ));
    db.execute(&format!(
        "INSERT INTO campaigns (integration_id, external_id, name, advertiser, status, visibility, redirect, \
         countries, blocked_countries, os, payouts, caps, import_caps, cap_settings, settings, raw, content_hash, \
         first_seen_at, changed_at) VALUES (1, '1', 'Hand-named', 'Acme Ads', 'paused', 'permission', 302, \
         '[]'{json}, '[]'{json}, '[]'{json}, '[]'{json}, '[]'{json}, '[]'{json}, '{{}}'{json}, '{{}}'{json}, \
         '{{\"id\": 1}}'{json}, 'old-hash', '{now}'{time}, '{now}'{time})"
    ));
    db.execute(&format!(
        "INSERT INTO sync_runs (integration_id, trigger, spec_hash, started_at, finished_at, status, created) \
         VALUES (1, 'cli', 'old', '{now}'{time}, '{now}'{time}, 'succeeded', 1)"
    ));

    let runs = store::open(&db.url)
        .unwrap()
        .recent_runs("acme", 10)
        .unwrap();
    assert_eq!((runs.len(), runs[0].created, runs[0].filtered), (1, 1, 0));
    let kept = campaign(&db, "acme", "1");
    assert_eq!(
        (kept.name.as_str(), kept.status.as_str()),
        ("Hand-named", "paused")
    );

    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.created, report.counts.updated), (2, 1));
    assert_eq!(campaigns(&db, "acme").len(), 3);
    let runs = store::open(&db.url)
        .unwrap()
        .recent_runs("acme", 10)
        .unwrap();
    assert_eq!(runs.len(), 2, "the old run is still in the log");
}

async fn a_protected_status_follows_upstream_pauses_unless_told_not_to(backend: Backend) {
    let policy = "  update: {columns: {status: on_create}}\n";
    let (mock, m, db) = setup(backend, offers(1..=3), policy).await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    // The operator pauses 3 by hand; upstream pauses 1 and 3.
    db.execute("UPDATE campaigns SET status = 'paused' WHERE external_id = '3'");
    let mut list = offers(1..=3);
    list[0]["status"] = "paused".into();
    list[2]["status"] = "paused".into();
    mock.set_offers(list);
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    assert_eq!(
        campaign(&db, "acme", "1").status,
        "paused",
        "follows the upstream pause"
    );
    assert_eq!(campaign(&db, "acme", "2").status, "active");
    // Active upstream again: the pause offersync made is undone, the operator's stays.
    mock.set_offers(offers(1..=3));
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    assert_eq!(campaign(&db, "acme", "1").status, "active");
    assert_eq!(
        campaign(&db, "acme", "3").status,
        "paused",
        "the manual pause stays"
    );

    // Told not to, the status is the operator's alone.
    m.set_integration(&integration_yaml(
        "acme",
        &mock.base_url(),
        "  update: {columns: {status: on_create}, follow_upstream_pauses: false}\n",
    ));
    let mut list = offers(1..=3);
    list[1]["status"] = "expired".into();
    mock.set_offers(list);
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    assert_eq!(campaign(&db, "acme", "2").status, "active");
}

async fn a_revenue_share_offer_is_stored_as_a_percentage(backend: Backend) {
    let mut list = offers(1..=2);
    list[0]["model"] = "revshare".into();
    list[0]["payout"] = "12".into();
    let filters = "  defaults: {currency: GBP}\n  filters: {payout: {min: 15}}\n";
    let (_mock, m, db) = setup(backend, list, filters).await;
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    // Offer 2 pays 3.50 < 15 and is skipped; 12 % is no money and passes.
    assert_eq!((report.counts.created, report.counts.skipped), (1, 1));
    #[derive(QueryableByName)]
    struct Kind {
        #[diesel(sql_type = Text)]
        payout_kind: String,
        #[diesel(sql_type = Nullable<Text>)]
        currency: Option<String>,
    }
    let rows: Vec<Kind> =
        db.query("SELECT payout_kind, currency FROM campaigns WHERE external_id = '1'");
    assert_eq!(rows[0].payout_kind, "percent");
    assert_eq!(rows[0].currency, None, "not labelled 12 GBP");
}

async fn selected_offers_are_asked_for_by_id_and_a_missing_one_is_logged(backend: Backend) {
    let mock = MockNetwork::start(offers(1..=10), 10).await;
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "    url: \"{{ params.base_url }}/offers\"\n",
        "    url: \"{{ params.base_url }}/offers\"\n    select_ids: {param: ids}\n",
    );
    let m = Manifests::new(
        &network,
        &integration_yaml(
            "acme",
            &mock.base_url(),
            "  filters: {offers: ['2', '7', '99']}\n",
        ),
    );
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(
        mock.requests()[0].query.get("ids").map(String::as_str),
        Some("2,7,99")
    );
    assert_eq!(report.counts.created, 2);
    let runs = store::open(&db.url).unwrap();
    let skips = {
        let mut s = runs;
        s.run_skips(report.run.unwrap()).unwrap()
    };
    let missing: Vec<_> = skips.iter().filter(|s| s.reason == "not_in_feed").collect();
    assert_eq!(missing.len(), 1, "{skips:?}");
    assert_eq!(missing[0].external_id.as_deref(), Some("99"));
}

/// Every column of a stored campaign, as JSON values (decimals and
/// timestamps as text, JSON columns parsed), read the same on both backends.
fn stored_row(db: &TestDb, external_id: &str) -> serde_json::Map<String, serde_json::Value> {
    const COLUMNS: [&str; 44] = [
        "id",
        "integration_id",
        "external_id",
        "name",
        "advertiser",
        "status",
        "visibility",
        "preview_url",
        "tracking_url",
        "impression_url",
        "thumbnail_url",
        "revenue",
        "payout",
        "payout_kind",
        "currency",
        "model",
        "objective",
        "redirect",
        "countries",
        "blocked_countries",
        "os",
        "category",
        "description",
        "kpi",
        "payouts",
        "caps",
        "import_caps",
        "cap_settings",
        "settings",
        "starts_at",
        "expires_at",
        "raw",
        "content_hash",
        "raw_hash",
        "first_seen_at",
        "changed_at",
        "removed_at",
        "status_before_pause",
        "revenue_max",
        "payout_max",
        "models",
        "blocked_os",
        "devices",
        "min_os_version",
    ];
    let pairs: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("'{c}', CAST({c} AS TEXT)"))
        .collect();
    let object = match db.backend {
        Backend::Postgres => format!("json_build_object({})::text", pairs.join(", ")),
        Backend::Sqlite => format!("json_object({})", pairs.join(", ")),
    };
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        row: String,
    }
    let rows: Vec<Row> = db.query(&format!(
        "SELECT {object} AS row FROM campaigns WHERE external_id = '{external_id}'"
    ));
    let serde_json::Value::Object(map) = serde_json::from_str(&rows[0].row).unwrap() else {
        panic!("an object")
    };
    // JSON columns come back as text: parse them, so both backends compare alike.
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(t) if t.starts_with(['[', '{']) => {
                    serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t))
                }
                other => other,
            };
            (k, v)
        })
        .collect()
}

fn text_of(row: &serde_json::Map<String, serde_json::Value>, column: &str) -> Option<String> {
    match &row[column] {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A campaign's publisher payouts as stored: (kind, name, payout as text).
fn publisher_payouts(db: &TestDb, external_id: &str) -> Vec<(String, String, String)> {
    #[derive(QueryableByName)]
    struct Payout {
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        payout: String,
    }
    let rows: Vec<Payout> = db.query(&format!(
        "SELECT kind, name, CAST(payout AS TEXT) AS payout FROM publisher_payouts \
         WHERE external_id = '{external_id}' ORDER BY kind, name"
    ));
    rows.into_iter()
        .map(|p| (p.kind, p.name, p.payout))
        .collect()
}

async fn every_column_is_stored_right_through_create_update_removal_and_restore(backend: Backend) {
    let rich = |payout: &str, description: &str| {
        let mut list = offers(1..=3);
        let o = &mut list[1];
        o["payout"] = payout.into();
        o["description"] = description.into();
        o["impression_url"] = "https://imp.example/2".into();
        o["thumbnail_url"] = "https://img.example/2.png".into();
        o["kpi"] = "No incent.".into();
        o["blocked_countries"] = serde_json::json!(["FR"]);
        o["starts_at"] = "2026-11-01 00:00:00".into();
        o["expires_at"] = "2027-01-31 23:59:59".into();
        list
    };
    let extra_fields = "    impression_url: $.impression_url\n    thumbnail_url: $.thumbnail_url\n    kpi: $.kpi\n    blocked_countries: $.blocked_countries[*]\n    starts_at: $.starts_at\n    expires_at: $.expires_at\n";
    let mock = MockNetwork::start(rich("5.00", "First."), 10).await;
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replacen(
        "    caps:\n",
        &format!("{extra_fields}    caps:\n"),
        1,
    );
    let policy = "  update: {columns: {name: on_create, category: on_create, status: on_create}}\n  payout: {ratio: 0.8, tiers: {gold: 0.9}, publishers: {pub-7: 3.00}}\n  settings: {allow_impressions: true}\n  tracking: {append: 'sub1={click_id}', append_impression: 'imp={imp_id}'}\n  defaults: {visibility: public, redirect: 301}\n  description: {append: 'Read the KPI.'}\n  safety: {max_removed_share: 0.5}\n";
    let m = Manifests::new(
        &network,
        &integration_yaml("acme", &mock.base_url(), policy),
    );
    let db = TestDb::new(backend);

    // Create.
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let created = stored_row(&db, "2");
    let expect = [
        ("external_id", Some("2")),
        ("name", Some("Offer 2")),
        ("advertiser", Some("Acme Ads")),
        ("status", Some("active")),
        ("visibility", Some("public")),
        ("preview_url", Some("https://adv.example/2")),
        (
            "tracking_url",
            Some("https://trk.example/c/2?aff=1&sub1={click_id}"),
        ),
        ("impression_url", Some("https://imp.example/2?imp={imp_id}")),
        ("thumbnail_url", Some("https://img.example/2.png")),
        ("payout_kind", Some("amount")),
        ("currency", Some("USD")),
        ("model", Some("CPA")),
        ("objective", Some("CPA")),
        ("redirect", Some("301")),
        ("category", Some("Finance")),
        ("description", Some("First.\n\nRead the KPI.")),
        ("kpi", Some("No incent.")),
        ("removed_at", None),
        ("status_before_pause", None),
    ];
    for (column, value) in expect {
        assert_eq!(
            text_of(&created, column).as_deref(),
            value,
            "{column}: {created:?}"
        );
    }
    assert_eq!(dec(&text_of(&created, "revenue").unwrap()), dec("5"));
    assert_eq!(dec(&text_of(&created, "payout").unwrap()), dec("4"));
    assert_eq!(created["countries"], serde_json::json!(["CA", "US"]));
    assert_eq!(created["blocked_countries"], serde_json::json!(["FR"]));
    assert_eq!(created["os"], serde_json::json!(["android", "ios"]));
    assert!(
        created["caps"].as_array().is_some_and(|c| !c.is_empty()),
        "{created:?}"
    );
    assert!(created["import_caps"].is_array() && created["payouts"].is_array());
    assert!(
        created["cap_settings"].is_object() && created["settings"]["allow_impressions"] == true
    );
    assert!(
        text_of(&created, "starts_at")
            .unwrap()
            .starts_with("2026-11-01")
    );
    assert!(
        text_of(&created, "expires_at")
            .unwrap()
            .starts_with("2027-01-31")
    );
    assert_eq!(created["raw"]["description"], "First.");
    for hash in ["content_hash", "raw_hash"] {
        assert_eq!(text_of(&created, hash).unwrap().len(), 64, "{hash}");
    }
    assert_eq!(
        publisher_payouts(&db, "2"),
        [
            ("publisher".into(), "pub-7".into(), "3.00".into()),
            ("tier".into(), "gold".into(), "4.5".into()),
        ]
    );

    // Manual edits in protected columns; then an upstream change.
    db.execute("UPDATE campaigns SET name = 'Hand-named', category = 'Hand-picked' WHERE external_id = '2'");
    mock.set_offers(rich("20.00", "Second."));
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let updated = stored_row(&db, "2");
    assert_eq!(dec(&text_of(&updated, "revenue").unwrap()), dec("20"));
    assert_eq!(dec(&text_of(&updated, "payout").unwrap()), dec("16"));
    assert_eq!(
        text_of(&updated, "description").as_deref(),
        Some("Second.\n\nRead the KPI.")
    );
    assert_eq!(updated["raw"]["description"], "Second.");
    assert_ne!(updated["content_hash"], created["content_hash"]);
    assert_ne!(updated["changed_at"], created["changed_at"]);
    assert_eq!(updated["first_seen_at"], created["first_seen_at"]);
    assert_eq!(
        publisher_payouts(&db, "2"),
        [
            ("publisher".into(), "pub-7".into(), "3.00".into()),
            ("tier".into(), "gold".into(), "18".into()),
        ]
    );

    // Removal, then restore: the protected columns survive each.
    let without_2: Vec<_> = rich("20.00", "Second.")
        .into_iter()
        .filter(|o| o["id"] != 2)
        .collect();
    mock.set_offers(without_2);
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let removed = stored_row(&db, "2");
    assert!(text_of(&removed, "removed_at").is_some());
    assert_eq!(text_of(&removed, "status").as_deref(), Some("paused"));
    assert_eq!(
        text_of(&removed, "status_before_pause").as_deref(),
        Some("active")
    );
    mock.set_offers(rich("20.00", "Second."));
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let restored = stored_row(&db, "2");
    assert_eq!(text_of(&restored, "removed_at"), None);
    assert_eq!(text_of(&restored, "status").as_deref(), Some("active"));
    assert_eq!(text_of(&restored, "status_before_pause"), None);
    for row in [&updated, &removed, &restored] {
        assert_eq!(text_of(row, "name").as_deref(), Some("Hand-named"));
        assert_eq!(text_of(row, "category").as_deref(), Some("Hand-picked"));
    }
}

async fn sync_with_network(
    backend: Backend,
    pagination: &str,
    auth: &str,
    page_size: usize,
) -> (RunReport, MockNetwork) {
    let mock = MockNetwork::start(offers(1..=25), page_size).await;
    let m = Manifests::new(
        &network_yaml(pagination, auth),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    (report, mock)
}

async fn every_pagination_kind_reads_every_page(backend: Backend) {
    for (pagination, expected_pages) in [
        (
            "{kind: page, param: page, size_param: page_size, size: 10}",
            3,
        ),
        (
            "{kind: page, param: page, total_pages: $.paging.total_pages}",
            3,
        ),
        (
            "{kind: offset, param: offset, size_param: limit, size: 10, total_count: $.paging.total_count}",
            3,
        ),
        (
            "{kind: cursor, param: cursor, path: $.paging.next_cursor}",
            3,
        ),
        ("{kind: next_url, path: $.paging.next_url}", 3),
        ("{kind: none}", 1),
    ] {
        let (report, _) = sync_with_network(backend, pagination, HEADER_AUTH, 10).await;
        assert!(report.succeeded(), "{pagination}: {:?}", report.error);
        let expected_offers = if expected_pages == 1 { 10 } else { 25 };
        assert_eq!(
            (report.counts.pages, report.counts.created),
            (expected_pages, expected_offers),
            "{pagination}"
        );
    }
}

async fn pagination_loops_and_endless_feeds_are_stopped(backend: Backend) {
    // The mock ignores `pg`, so every page is page 1.
    let (report, _) = sync_with_network(backend, "{kind: page, param: pg}", HEADER_AUTH, 10).await;
    assert!(
        report.error.as_deref().unwrap().contains("pagination loop"),
        "{:?}",
        report.error
    );

    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH)
        .replace("timeout_seconds: 5", "timeout_seconds: 5, max_pages: 2");
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("more than 2 pages"),
        "{:?}",
        report.error
    );
    assert!(campaigns(&db, "acme").is_empty());
}

async fn a_response_over_the_size_limit_fails_the_run(backend: Backend) {
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "timeout_seconds: 5",
        "timeout_seconds: 5, max_response_bytes: 2000",
    );
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("larger than 2000 bytes"),
        "{:?}",
        report.error
    );
}

async fn every_auth_kind_sends_its_credentials(backend: Backend) {
    let (report, mock) = sync_with_network(
        backend,
        PAGE_PAGINATION,
        "{kind: query, param: api_key, value: \"{{ params.api_key }}\"}",
        10,
    )
    .await;
    assert!(report.succeeded());
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.query.get("api_key").map(String::as_str) == Some(API_KEY))
    );

    let (report, mock) = sync_with_network(
        backend,
        PAGE_PAGINATION,
        "{kind: bearer, token: \"{{ params.api_key }}\"}",
        10,
    )
    .await;
    assert!(report.succeeded());
    let bearer = format!("Bearer {API_KEY}");
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.headers.get("authorization") == Some(&bearer))
    );

    let (report, mock) = sync_with_network(
        backend,
        PAGE_PAGINATION,
        "{kind: basic, username: acme, password: \"{{ params.api_key }}\"}",
        10,
    )
    .await;
    assert!(report.succeeded());
    let basic = format!("Basic {}", base64(&format!("acme:{API_KEY}")));
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.headers.get("authorization") == Some(&basic))
    );

    // OAuth2 client credentials: one token for the whole run, the client
    // authenticated by HTTP Basic unless the Network says it posts them.
    for (client_auth, sent) in [
        ("", "basic"),
        (", client_auth: client_secret_basic", "basic"),
        (", client_auth: client_secret_post", "post"),
    ] {
        let oauth = format!(
            "{{kind: oauth2, token_url: \"{{{{ params.base_url }}}}/token\", client_id: acme, client_secret: \"{{{{ params.api_key }}}}\"{client_auth}}}"
        );
        let mock = MockNetwork::start(offers(1..=25), 10).await;
        let network = network_yaml(PAGE_PAGINATION, &oauth);
        let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
        std::fs::write(m.path().join("secrets/api.key"), "cs-secret-3").unwrap();
        let db = TestDb::new(backend);
        let report = sync_once(&m, &db, "acme").await;
        assert!(report.succeeded(), "{client_auth}: {:?}", report.error);
        assert_eq!(mock.with_state(|s| s.token_client_auth.clone()), [sent]);
        assert!(
            mock.requests().iter().all(
                |r| r.headers.get("authorization").map(String::as_str) == Some("Bearer tok-1")
            )
        );
    }
}

async fn an_error_answered_with_200_fails_the_run_with_the_apis_message(backend: Backend) {
    let errors = "  errors:\n    - when: {path: $.response, exists: true, not_in: [\"200\"]}\n      message: $.message\n  records: $.offers[*]\n";
    let network =
        network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace("  records: $.offers[*]\n", errors);
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let db = TestDb::new(backend);
    assert!(sync_once(&m, &db, "acme").await.succeeded());

    // A bad key, answered the way HasOffers-style APIs do: 200 and a body
    // that says 401. Without the rule this is an empty feed (refused as an
    // outage, or, with allow_empty_feed, every campaign paused).
    mock.with_state(|s| {
        s.answer_instead =
            Some(serde_json::json!({"response": "401", "message": "Invalid API key \u{1b}[31m"}))
    });
    let before = row_versions(&db);
    let report = sync_once(&m, &db, "acme").await;
    let error = report.error.clone().expect("the run fails");
    assert!(
        error.contains("the API answered with an error: Invalid API key \\u{1b}[31m"),
        "{error}"
    );
    assert_nothing_changed(&db, &before);
    assert_eq!(last_run(&db).status, "failed");
}

async fn hybrid_models_ranges_and_device_targeting_reach_the_campaign_row(backend: Backend) {
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "    caps:\n",
        "    payout_max: $.payout_top\n    blocked_os: $.os_block[*]\n    devices: {path: $.devices, split: ','}\n    min_os_version: $.min_os\n    caps:\n",
    );
    let mut hybrid = offer(1);
    hybrid["model"] = serde_json::json!("CPA+CPS");
    hybrid["payout"] = serde_json::json!("3.50");
    hybrid["payout_top"] = serde_json::json!("6");
    hybrid["os_block"] = serde_json::json!(["iOS"]);
    hybrid["devices"] = serde_json::json!("phone,tablet");
    hybrid["min_os"] = serde_json::json!("Android 8.0+");
    let mock = MockNetwork::start(vec![hybrid, offer(2)], 10).await;
    let m = Manifests::new(
        &network,
        &integration_yaml("acme", &mock.base_url(), "  payout: {ratio: 0.5}\n"),
    );
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    let row = stored_row(&db, "1");
    assert_eq!(text_of(&row, "model").as_deref(), Some("CPA"));
    assert_eq!(row["models"], serde_json::json!(["CPA", "CPS"]));
    assert_eq!(dec(&text_of(&row, "revenue").unwrap()), dec("3.50"));
    assert_eq!(dec(&text_of(&row, "revenue_max").unwrap()), dec("6"));
    assert_eq!(dec(&text_of(&row, "payout_max").unwrap()), dec("3"));
    assert_eq!(row["blocked_os"], serde_json::json!(["ios"]));
    assert_eq!(row["devices"], serde_json::json!(["mobile", "tablet"]));
    assert_eq!(text_of(&row, "min_os_version").as_deref(), Some("8.0"));
    // An offer without them stores the empty values, and a rerun writes nothing.
    let plain = stored_row(&db, "2");
    assert_eq!(plain["models"], serde_json::json!([]));
    assert_eq!(plain["revenue_max"], serde_json::Value::Null);
    let before = row_versions(&db);
    let again = sync_once(&m, &db, "acme").await;
    assert_eq!(again.counts.unchanged, 2, "{:?}", again.counts);
    assert_nothing_changed(&db, &before);
}

async fn a_rate_limit_holds_across_pages_and_concurrent_runs_of_the_network(backend: Backend) {
    // 3 requests a second: two integrations of the network, 3 pages each, run at once.
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "  records: $.offers[*]\n",
        "  rate_limit: {requests: 3, per_seconds: 1}\n  records: $.offers[*]\n",
    );
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    m.set_other_integration(&integration_yaml("globex", &mock.base_url(), ""));
    let db = TestDb::new(backend);
    let runs = ["acme", "globex"].map(|name| {
        let (def, url) = (m.load(name), db.url.clone());
        tokio::spawn(async move {
            let store = store::open(&url).unwrap();
            sync::run(def, store, Trigger::Cli).await.1
        })
    });
    for run in runs {
        assert!(run.await.unwrap().unwrap().succeeded());
    }
    let times = mock.with_state(|s| s.request_times.clone());
    assert_eq!(times.len(), 6);
    // No window of one second holds more than 3 of the 6 requests.
    for window in times.windows(4) {
        let spread = window[3] - window[0];
        assert!(spread >= Duration::from_millis(900), "{times:?}");
    }
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn two_runs_of_one_integration_cannot_overlap(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=25), "").await;
    mock.fail(1, Failure::Hang(Duration::from_secs(3)));
    let (m1, db_url) = (m.load("acme"), db.url.clone());
    let first = tokio::spawn(async move {
        let store = store::open(&db_url).unwrap();
        sync::run(m1, store, Trigger::Cli).await.1
    });
    // Wait until the first run is fetching page 2 (it holds the lock by then).
    while mock.requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = store::open(&db.url).unwrap();
    let (_, second) = sync::run(m.load("acme"), store, Trigger::Cli).await;
    let error = second
        .expect_err("the second run does not start")
        .to_string();
    assert!(error.contains("in progress"), "{error}");
    assert!(first.await.unwrap().unwrap().succeeded());
}

async fn the_run_log_and_status_read_back(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=12), "  filters: {payout: {max: 10}}\n").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    mock.fail(
        0,
        Failure::Status {
            status: 404,
            times: 1,
        },
    );
    assert!(!sync_once(&m, &db, "acme").await.succeeded());
    let mut store = store::open(&db.url).unwrap();
    let runs = store.recent_runs("acme", 10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, "failed");
    assert!(runs[0].error.as_deref().unwrap().contains("HTTP 404"));
    assert_eq!(
        (runs[1].status.as_str(), runs[1].created, runs[1].skipped),
        ("succeeded", 8, 4)
    );
    let skips = store
        .run_skips(offersync::store::RunId(runs[1].id))
        .unwrap();
    assert_eq!(skips.len(), 4);
    assert!(skips.iter().all(|s| s.reason == "payout_above_max"));
    let status = store.status().unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].campaigns, 8);
    assert!(
        status[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 404")
    );
    assert!(status[0].last_success_at.is_some());

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: Vec<Count> =
        db.query("SELECT count(*) AS n FROM integrations WHERE spec LIKE '%kind: Integration%'");
    assert_eq!(n[0].n, 1);
}

fn changes_since(db: &TestDb, since: i64) -> Vec<offersync::store::ChangeRecord> {
    store::open(&db.url)
        .unwrap()
        .changes(since, None, 10_000)
        .unwrap()
}

/// Issue 18.2: every applied run appends what it changed, in order; a run
/// that fails or changes nothing appends nothing; retention never lets a
/// position be used twice.
async fn the_change_feed_records_each_applied_change_in_order(backend: Backend) {
    use offersync::store::ChangeKind;
    let (mock, m, db) = setup(backend, offers(1..=10), "").await;
    let first = sync_once(&m, &db, "acme").await;
    assert!(first.succeeded());
    let created = changes_since(&db, 0);
    assert_eq!(created.len(), 10);
    assert!(created.iter().all(|c| c.kind == ChangeKind::Created
        && c.run_id == first.run.map(|r| r.0)
        && c.integration == "acme"
        && c.status == "active"));
    assert!(created.windows(2).all(|w| w[0].position < w[1].position));
    let mut ids: Vec<&str> = created.iter().map(|c| c.external_id.as_str()).collect();
    ids.sort_by_key(|id| id.parse::<u32>().unwrap());
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    let seen = created.last().unwrap().position;

    // Nothing changed upstream: nothing new in the feed.
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    assert!(changes_since(&db, seen).is_empty());

    // Offer 3 renamed and repriced, offer 4 gone.
    let mut changed = offers(1..=10);
    changed[2]["name"] = "Offer three".into();
    changed[2]["payout"] = "9.00".into();
    changed.remove(3);
    mock.set_offers(changed);
    let second = sync_once(&m, &db, "acme").await;
    assert!(second.succeeded(), "{:?}", second.error);
    let feed = changes_since(&db, seen);
    assert_eq!(feed.len(), 2, "{feed:#?}");
    let update = feed.iter().find(|c| c.external_id == "3").unwrap();
    assert_eq!(update.kind, ChangeKind::Updated);
    let columns: Vec<(&str, String, String)> = update
        .columns
        .iter()
        .map(|c| (c.column.as_str(), c.old.to_string(), c.new.to_string()))
        .collect();
    // Decimals as exact strings, normalized (4.50 and 9.00 upstream).
    assert_eq!(
        columns,
        [
            ("name", "\"Offer 3\"".into(), "\"Offer three\"".into()),
            ("revenue", "\"4.5\"".into(), "\"9\"".into()),
            ("payout", "\"4.5\"".into(), "\"9\"".into()),
        ],
        "{update:#?}"
    );
    let removal = feed.iter().find(|c| c.external_id == "4").unwrap();
    assert_eq!(
        (removal.kind, removal.status.as_str()),
        (ChangeKind::Removed, "paused")
    );
    let removal_columns: Vec<&str> = removal.columns.iter().map(|c| c.column.as_str()).collect();
    assert_eq!(removal_columns, ["status", "removed_at"]);
    assert!(feed.iter().all(|c| c.run_id == second.run.map(|r| r.0)));
    let seen = feed.iter().map(|c| c.position).max().unwrap();

    // A run that fails appends nothing, though it got as far as writing.
    mock.set_offers(offers(1..=10));
    mock.fail(0, Failure::Truncated);
    assert!(!sync_once(&m, &db, "acme").await.succeeded());
    assert!(changes_since(&db, seen).is_empty());
    mock.clear_failures();

    // Offer 4 back: restored, active again.
    let third = sync_once(&m, &db, "acme").await;
    assert!(third.succeeded());
    let feed = changes_since(&db, seen);
    let kinds: Vec<(&str, ChangeKind, &str)> = feed
        .iter()
        .map(|c| (c.external_id.as_str(), c.kind, c.status.as_str()))
        .collect();
    assert!(
        kinds.contains(&("4", ChangeKind::Restored, "active")),
        "{kinds:?}"
    );
    let last = feed.iter().map(|c| c.position).max().unwrap();

    // Retention empties the feed; the next change still comes after `last`.
    let mut s = store::open(&db.url).unwrap();
    let pruned = s
        .prune_changes(chrono::Utc::now() + chrono::TimeDelta::days(1))
        .unwrap();
    assert!(pruned >= 13, "{pruned}");
    assert!(changes_since(&db, 0).is_empty());
    mock.set_offers(offers(1..=11));
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let feed = changes_since(&db, 0);
    assert_eq!(feed.len(), 1);
    assert!(feed[0].position > last, "{} after {last}", feed[0].position);
    assert_eq!(
        s.changes(0, Some("no-such-integration"), 10).unwrap().len(),
        0
    );
}

/// Issue 18.1: the status page's search: an id exactly, or a part of the
/// name in any case; LIKE's wildcards in the text are only text.
async fn campaigns_are_found_by_id_or_by_name_in_any_case(backend: Backend) {
    let mut feed = offers(1..=12);
    feed[4]["name"] = "Casino_Royale 100%".into();
    let (_mock, m, db) = setup(backend, feed, "").await;
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let mut s = store::open(&db.url).unwrap();
    let found = |s: &mut Box<dyn store::Store>, needle: &str| -> Vec<String> {
        s.search_campaigns(Some("acme"), needle, 100)
            .unwrap()
            .into_iter()
            .map(|(integration, c)| {
                assert_eq!(integration, "acme");
                c.external_id
            })
            .collect()
    };
    assert_eq!(found(&mut s, "OFFER 1"), ["1", "10", "11", "12"]);
    assert_eq!(found(&mut s, "casino_r"), ["5"]);
    assert_eq!(found(&mut s, "100%"), ["5"]);
    assert!(found(&mut s, "%").len() == 1 && found(&mut s, "_").len() == 1);
    // The id exactly (not ids containing it), or names holding it.
    assert_eq!(found(&mut s, "2"), ["12", "2"]);
    assert_eq!(s.search_campaigns(None, "offer", 3).unwrap().len(), 3);
    assert!(
        s.search_campaigns(Some("other"), "1", 10)
            .unwrap()
            .is_empty()
    );
}

on_both_backends!(
    first_import_creates_every_campaign_with_every_column,
    a_rerun_without_upstream_change_writes_nothing,
    updatable_columns_follow_upstream_and_manual_edits_in_protected_ones_survive,
    an_offer_gone_upstream_is_paused_and_restored_when_it_comes_back,
    on_removed_keep_marks_without_pausing,
    a_failing_page_fails_the_run_and_changes_nothing_after_exhausting_retries,
    a_500_that_recovers_within_the_retries_is_only_a_warning,
    a_429_with_retry_after_is_waited_out,
    truncated_json_fails_the_run_and_changes_nothing,
    an_empty_feed_or_a_mass_removal_is_refused_as_an_outage,
    filters_skip_with_reasons_that_the_run_log_keeps,
    country_logic_narrows_the_stored_targeting,
    a_skipped_offer_that_was_imported_is_filtered_out_but_a_mapping_problem_is_left_alone,
    narrowing_the_filters_filters_out_without_tripping_the_outage_guard,
    a_restore_undoes_the_removal_and_leaves_a_protected_status_as_set,
    a_raw_only_change_rewrites_the_raw_record_and_nothing_else,
    a_database_of_the_previous_release_upgrades_without_losing_a_row,
    a_protected_status_follows_upstream_pauses_unless_told_not_to,
    a_revenue_share_offer_is_stored_as_a_percentage,
    selected_offers_are_asked_for_by_id_and_a_missing_one_is_logged,
    every_column_is_stored_right_through_create_update_removal_and_restore,
    every_pagination_kind_reads_every_page,
    pagination_loops_and_endless_feeds_are_stopped,
    a_response_over_the_size_limit_fails_the_run,
    every_auth_kind_sends_its_credentials,
    an_error_answered_with_200_fails_the_run_with_the_apis_message,
    a_rate_limit_holds_across_pages_and_concurrent_runs_of_the_network,
    hybrid_models_ranges_and_device_targeting_reach_the_campaign_row,
    two_runs_of_one_integration_cannot_overlap,
    the_run_log_and_status_read_back,
    the_change_feed_records_each_applied_change_in_order,
    campaigns_are_found_by_id_or_by_name_in_any_case,
);

/// Issue 17.2: `explain` reads one offer's record from the live API, page
/// after page, without writing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_finds_one_record_in_the_live_feed() {
    let (mock, m, _db) = setup(Backend::Sqlite, offers(1..=25), "").await;
    let def = m.load("acme");
    let (record, _key) = sync::find_record(&def, "13")
        .await
        .unwrap()
        .expect("offer 13");
    assert_eq!(record["id"], 13);
    let pages_read = mock.requests().len();
    assert!(
        pages_read <= 2,
        "stops at the page holding it: {pages_read}"
    );
    assert_eq!(sync::find_record(&def, "404").await.unwrap(), None);
}

/// Issue 15.6: when the response states its total, the pages after the one
/// being read are fetched ahead (a bounded number at once), and the run is
/// the same as page by page: every offer, in order, nothing fetched twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_fetched_ahead_when_the_total_is_stated() {
    let (mock, m, db) = setup(Backend::Postgres, offers(1..=60), RULES).await;
    mock.with_state(|s| {
        s.page_size = 10;
        s.page_delay = Some(std::time::Duration::from_millis(150));
    });
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.pages, report.counts.fetched), (6, 60));
    let (max, pages) = mock.with_state(|s| {
        let pages: Vec<String> = s
            .requests
            .iter()
            .filter_map(|r| r.query.get("page").cloned())
            .collect();
        (s.max_in_flight, pages)
    });
    assert!(max >= 2, "pages were fetched one at a time");
    assert!(max <= 2, "{max} pages in flight: the look-ahead is bounded");
    let mut sorted = pages.clone();
    sorted.sort_by_key(|p| p.parse::<u32>().unwrap());
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        pages.len(),
        "a page was fetched twice: {pages:?}"
    );
    assert_eq!(sorted, ["1", "2", "3", "4", "5", "6"], "{pages:?}");
    // The same campaigns as a page-by-page run would write.
    let again = sync_once(&m, &db, "acme").await;
    assert_eq!(
        again.counts.unchanged,
        60 - again.counts.skipped,
        "{:?}",
        again.counts
    );
}

/// Issue 18.2: feed positions become visible in order. A run takes its
/// positions only under the feed lock, held until its transaction ends, so
/// while another transaction that took positions is still open, the run
/// waits rather than commit positions above ones not yet visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_takes_feed_positions_only_after_open_feed_writers_commit() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let (mock, m, db) = setup(Backend::Postgres, offers(1..=5), "").await;
    // Migrated, and an integration to hang an entry on.
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let first_run_end = changes_since(&db, 0).last().unwrap().position;

    // Another writer: holds the feed lock and an entry not yet committed.
    let mut other = PgConnection::establish(&db.url).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({}, 0)", 0x0ff5_0003))
        .execute(&mut other)
        .unwrap();
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = BigInt)]
        position: i64,
    }
    let held: Position = diesel::sql_query(
        "INSERT INTO campaign_changes (integration_id, campaign_id, external_id, kind, status, changed_at) \
         SELECT id, 0, 'elsewhere', 'created', 'active', now() FROM integrations LIMIT 1 RETURNING position",
    )
    .get_result(&mut other)
    .unwrap();

    mock.set_offers(offers(1..=6));
    let (def, url) = (m.load("acme"), db.url.clone());
    let run = tokio::spawn(async move {
        let store = store::open(&url).unwrap();
        sync::run(def, store, Trigger::Cli).await.1.unwrap()
    });
    // The run gets as far as the feed lock and waits there.
    let waiting = || -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        // The feed lock of this database (other tests share the server).
        db.query::<Count>(&format!(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND classid::bigint = {} AND objsubid = 2 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            0x0ff5_0003
        ))[0]
            .n
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting() == 0 {
        assert!(
            Instant::now() < deadline,
            "the run never waited for the feed lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !run.is_finished(),
        "the run committed while the feed lock was held"
    );
    assert!(changes_since(&db, first_run_end).is_empty());

    diesel::sql_query("COMMIT").execute(&mut other).unwrap();
    let report = run.await.unwrap();
    assert!(report.succeeded(), "{:?}", report.error);
    let feed = changes_since(&db, first_run_end);
    assert_eq!(feed[0].position, held.position, "{feed:#?}");
    assert_eq!(feed[1].external_id, "6");
    assert!(feed[1].position > held.position);
}
