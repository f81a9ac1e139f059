//! Issue 25: the reconcile is level-triggered. What the manifest and the
//! network say is what every row holds after every run: a changed setting
//! reaches rows nothing upstream changed, a row edited outside offersync is
//! put back in its `always` columns (drift) and kept in the operator's, and a
//! run with nothing to converge writes no row (counted by a trigger). Every
//! scenario runs on both store backends, against a mock network on 127.0.0.1.

mod common;

use common::*;
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use offersync::store::{self, CampaignRecord, RunId, Trigger};
use offersync::sync::{self, RunReport};

async fn sync_once(m: &Manifests, db: &TestDb) -> RunReport {
    let store = store::open(&db.url).expect("open the store");
    let (_, report) = sync::run(m.load("acme"), store, Trigger::Cli).await;
    let report = report.expect("the run starts");
    assert!(report.succeeded(), "{:?}", report.error);
    report
}

async fn plan_once(m: &Manifests, db: &TestDb) -> sync::PlanReport {
    let store = store::open(&db.url).expect("open the store");
    let (_, report) = sync::plan(m.load("acme"), store).await;
    report.expect("the plan starts").plan.expect("a plan")
}

fn campaign(db: &TestDb, external_id: &str) -> CampaignRecord {
    store::open(&db.url)
        .unwrap()
        .campaigns("acme")
        .unwrap()
        .into_iter()
        .find(|c| c.external_id == external_id)
        .unwrap_or_else(|| panic!("campaign {external_id}"))
}

fn set_spec(m: &Manifests, mock: &MockNetwork, extra: &str) {
    m.set_integration(&integration_yaml("acme", &mock.base_url(), extra));
}

#[derive(QueryableByName, Debug)]
struct Change {
    #[diesel(sql_type = Text)]
    external_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    cause: Option<String>,
}

fn feed_of_run(db: &TestDb, run: RunId) -> Vec<Change> {
    db.query(&format!(
        "SELECT external_id, kind, cause FROM campaign_changes WHERE run_id = {} ORDER BY position",
        run.0
    ))
}

/// 25.1: a setting widened with nothing changed upstream reaches the row;
/// plan and the feed say why; the run after writes nothing.
async fn a_changed_setting_reaches_rows_nothing_upstream_changed(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=3),
        "  update: {columns: {name: on_create, visibility: on_create}}\n  defaults: {visibility: public}\n",
    )
    .await;
    sync_once(&m, &db).await;
    let mut renamed = offers(1..=3);
    renamed[0]["name"] = "Renamed upstream".into();
    mock.set_offers(renamed);
    set_spec(
        &m,
        &mock,
        "  update: {columns: {name: on_create, visibility: on_create}}\n  defaults: {visibility: private}\n",
    );
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.updated, 0, "on_create columns stay");
    let c1 = campaign(&db, "1");
    assert_eq!(
        (c1.name.as_str(), c1.visibility.as_str()),
        ("Offer 1", "public")
    );

    // Both `always` now: no upstream change, yet every row converges.
    set_spec(&m, &mock, "  defaults: {visibility: private}\n");
    let plan = plan_once(&m, &db).await;
    assert_eq!(plan.update.len(), 3, "{plan:?}");
    assert!(
        plan.causes.iter().all(|(_, why)| why
            == "setting changed: update.columns.name → always, update.columns.visibility → always"),
        "{:?}",
        plan.causes
    );
    let report = sync_once(&m, &db).await;
    assert_eq!((report.counts.updated, report.counts.unchanged), (3, 0));
    let c1 = campaign(&db, "1");
    assert_eq!(
        (c1.name.as_str(), c1.visibility.as_str()),
        ("Renamed upstream", "private")
    );
    let feed = feed_of_run(&db, report.run.unwrap());
    assert_eq!(feed.len(), 3, "every update is in the feed");
    assert!(
        feed.iter().all(|c| c.kind == "updated"
            && c.cause
                .as_deref()
                .is_some_and(|c| c.starts_with("setting changed: update.columns.name → always"))),
        "{feed:?}"
    );

    // Converged: the next run reads no row and writes none.
    db.count_campaign_writes();
    let report = sync_once(&m, &db).await;
    assert_eq!((report.counts.updated, report.counts.unchanged), (0, 3));
    assert_eq!(db.campaign_writes_since_last_look(), 0);
    assert!(plan_once(&m, &db).await.update.is_empty());
}

/// 25.1 and 25.7: a cap held back by `caps.update: false` is no update (and
/// no feed entry); turning the setting on applies it.
async fn caps_held_back_are_applied_when_caps_update_is_turned_on(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=2), "  caps: {update: false}\n").await;
    sync_once(&m, &db).await;
    let mut raised = offers(1..=2);
    raised[0]["daily_cap"] = 80.into();
    mock.set_offers(raised);
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.updated, 0, "the held-back cap is no update");
    assert!(feed_of_run(&db, report.run.unwrap()).is_empty());
    assert_eq!(campaign(&db, "1").caps[0]["value"], "100");

    set_spec(&m, &mock, "  caps: {update: true}\n");
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.updated, 1);
    assert_eq!(campaign(&db, "1").caps[0]["value"], "80");
    assert_eq!(campaign(&db, "2").caps[0]["value"], "100");
    assert_eq!(feed_of_run(&db, report.run.unwrap()).len(), 1);
}

/// 25.1: `follow_upstream_pauses` turned on pauses a campaign already paused
/// upstream, in plan and run.
async fn upstream_pauses_apply_when_the_setting_is_turned_on(backend: Backend) {
    let (mock, m, db) = setup(
        backend,
        offers(1..=3),
        "  update: {columns: {status: on_create}, follow_upstream_pauses: false}\n",
    )
    .await;
    sync_once(&m, &db).await;
    let mut paused = offers(1..=3);
    paused[1]["status"] = "paused".into();
    mock.set_offers(paused);
    sync_once(&m, &db).await;
    assert_eq!(campaign(&db, "2").status, "active");

    set_spec(
        &m,
        &mock,
        "  update: {columns: {status: on_create}, follow_upstream_pauses: true}\n",
    );
    let plan = plan_once(&m, &db).await;
    let changes: Vec<_> = plan
        .changes
        .iter()
        .flat_map(|(id, list)| {
            list.iter()
                .map(move |c| (id.as_str(), c.column, c.new.as_str()))
        })
        .collect();
    assert!(changes.contains(&("2", "status", "paused")), "{changes:?}");
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.updated, 1);
    assert_eq!(campaign(&db, "2").status, "paused");
    assert_eq!(campaign(&db, "1").status, "active");
}

/// 25.2: a hand edit of `always` columns is corrected and counted as drift,
/// every run alike; one of an `on_create` column is kept.
async fn manual_edits_of_always_columns_are_drift_corrected_and_counted(backend: Backend) {
    let (_mock, m, db) = setup(
        backend,
        offers(1..=4),
        "  update: {columns: {category: on_create}}\n",
    )
    .await;
    sync_once(&m, &db).await;
    db.execute(
        "UPDATE campaigns SET name = 'MANUAL NAME', payout = '1.11' WHERE external_id = '1'",
    );
    db.execute("UPDATE campaigns SET status = 'paused' WHERE external_id = '2'");
    db.execute("UPDATE campaigns SET category = 'Hand-picked' WHERE external_id = '3'");

    let plan = plan_once(&m, &db).await;
    let ids: Vec<&str> = plan.update.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["1", "2"], "{plan:?}");
    assert!(
        plan.causes.iter().all(|(_, why)| why == "drift"),
        "{:?}",
        plan.causes
    );

    db.count_campaign_writes();
    let report = sync_once(&m, &db).await;
    assert_eq!(
        (
            report.counts.updated,
            report.counts.drift_corrected,
            report.counts.unchanged
        ),
        (2, 2, 2)
    );
    let c1 = campaign(&db, "1");
    assert_eq!(c1.name, "Offer 1");
    assert_ne!(c1.payout, Some("1.11".parse().unwrap()));
    assert_eq!(campaign(&db, "2").status, "active");
    assert_eq!(campaign(&db, "3").category.as_deref(), Some("Hand-picked"));
    // Two corrections and the drift mark of row 3 cleared: three rows.
    assert_eq!(db.campaign_writes_since_last_look(), 3);
    let feed = feed_of_run(&db, report.run.unwrap());
    let drift: Vec<(&str, Option<&str>)> = feed
        .iter()
        .map(|c| (c.external_id.as_str(), c.cause.as_deref()))
        .collect();
    assert_eq!(drift, [("1", Some("drift")), ("2", Some("drift"))]);
    let run = store::open(&db.url)
        .unwrap()
        .run(report.run.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(run.drift_corrected, 2);

    // Nothing left to converge: no row read or written.
    let report = sync_once(&m, &db).await;
    assert_eq!(
        (report.counts.updated, report.counts.drift_corrected),
        (0, 0)
    );
    assert_eq!(db.campaign_writes_since_last_look(), 0);
}

/// 25.5: narrowing `filters.offers` on a network that fetches by id filters
/// the campaigns left out; the outage guards do not trip.
async fn a_narrowed_selection_fetched_by_id_is_filtered_not_removed(backend: Backend) {
    let mock = MockNetwork::start(offers(1..=10), 10).await;
    let network = network_yaml(PAGE_PAGINATION, HEADER_AUTH).replace(
        "    url: \"{{ params.base_url }}/offers\"\n",
        "    url: \"{{ params.base_url }}/offers\"\n    select_ids: {param: ids}\n",
    );
    let select = |ids: &str| format!("  filters: {{offers: [{ids}]}}\n");
    let m = Manifests::new(
        &network,
        &integration_yaml(
            "acme",
            &mock.base_url(),
            &select("'1', '2', '3', '4', '5', '6'"),
        ),
    );
    let db = TestDb::new(backend);
    assert_eq!(sync_once(&m, &db).await.counts.created, 6);
    set_spec(&m, &mock, &select("'1', '5'"));
    let report = sync_once(&m, &db).await;
    assert_eq!((report.counts.removed, report.counts.filtered), (0, 4));
    let c2 = campaign(&db, "2");
    assert_eq!(c2.removed_as.as_deref(), Some("filtered"));
    assert!(campaign(&db, "1").removed_at.is_none());
}

/// 25.7: a value left empty because it could not be read is a warning kept
/// with the run.
async fn per_offer_warnings_are_kept_with_the_run(backend: Backend) {
    let mut list = offers(1..=3);
    list[1]["payout"] = "abc".into();
    let (_mock, m, db) = setup(backend, list, "").await;
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.created, 3);
    assert_eq!(report.counts.warnings, 1, "{:?}", report.counts);
    let mut s = store::open(&db.url).unwrap();
    let run = s.run(report.run.unwrap()).unwrap().unwrap();
    assert_eq!(run.warnings, 1);
    let warnings = s.run_warnings(report.run.unwrap(), 0, 100).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].0, "2");
    assert!(warnings[0].1.contains("payout"), "{warnings:?}");
}

/// #30.6: a value that turns unreadable upstream (a payout of `1e400`, a
/// link that is none) keeps what the live campaign holds, with a warning in
/// the run log: a read failure is not the network's word. Only an explicit
/// null or empty value from the network empties a column; the rest of the
/// row still converges, and the run after writes nothing.
async fn an_unreadable_value_keeps_the_stored_one_and_only_null_empties_it(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=3), "").await;
    sync_once(&m, &db).await;
    let (one, two, three) = (campaign(&db, "1"), campaign(&db, "2"), campaign(&db, "3"));
    assert!(one.revenue.is_some() && one.payout.is_some() && three.revenue.is_some());
    assert!(two.tracking_url.is_some() && three.category.is_some());

    let huge: serde_json::Value = serde_json::from_str("1e400").unwrap();
    let mut list = offers(1..=3);
    list[0]["payout"] = huge;
    list[0]["name"] = "Renamed upstream".into();
    list[1]["tracking_url"] = "not a link".into();
    list[2]["payout"] = serde_json::Value::Null;
    list[2]["category"] = "".into();
    mock.set_offers(list.clone());
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.updated, 2, "{:?}", report.counts);
    let after = campaign(&db, "1");
    assert_eq!(after.name, "Renamed upstream");
    assert_eq!((after.revenue, after.payout), (one.revenue, one.payout));
    assert_eq!(campaign(&db, "2").tracking_url, two.tracking_url);
    let emptied = campaign(&db, "3");
    assert_eq!(
        (emptied.revenue, emptied.payout, emptied.category),
        (None, None, None)
    );
    let mut s = store::open(&db.url).unwrap();
    let warnings = s.run_warnings(report.run.unwrap(), 0, 100).unwrap();
    for (id, field) in [("1", "field payout"), ("2", "field tracking_url")] {
        let warning = warnings
            .iter()
            .find(|(w_id, w)| w_id == id && w.starts_with(field))
            .unwrap_or_else(|| panic!("no warning for {id}: {warnings:?}"));
        assert!(
            warning.1.contains("the stored value is kept"),
            "{warning:?}"
        );
        assert!(!warning.1.contains("left empty"), "{warning:?}");
    }
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    // Plan agrees: nothing pending; a repeated run writes no row.
    assert!(plan_once(&m, &db).await.update.is_empty());
    db.count_campaign_writes();
    let report = sync_once(&m, &db).await;
    assert_eq!(report.counts.updated, 0, "{:?}", report.counts);
    assert_eq!(db.campaign_writes_since_last_look(), 0);
    assert_eq!(campaign(&db, "1").revenue, one.revenue);

    // The network's own null empties it; a readable value is taken.
    list[0]["payout"] = serde_json::Value::Null;
    mock.set_offers(list.clone());
    sync_once(&m, &db).await;
    assert_eq!(campaign(&db, "1").revenue, None);
    list[0]["payout"] = "9.25".into();
    list[1]["tracking_url"] = "https://trk.example/new".into();
    mock.set_offers(list);
    sync_once(&m, &db).await;
    assert_eq!(campaign(&db, "1").revenue, Some("9.25".parse().unwrap()));
    assert_eq!(
        campaign(&db, "2").tracking_url.as_deref(),
        Some("https://trk.example/new")
    );
}

on_both_backends!(
    an_unreadable_value_keeps_the_stored_one_and_only_null_empties_it,
    a_changed_setting_reaches_rows_nothing_upstream_changed,
    caps_held_back_are_applied_when_caps_update_is_turned_on,
    upstream_pauses_apply_when_the_setting_is_turned_on,
    manual_edits_of_always_columns_are_drift_corrected_and_counted,
    a_narrowed_selection_fetched_by_id_is_filtered_not_removed,
    per_offer_warnings_are_kept_with_the_run,
);
