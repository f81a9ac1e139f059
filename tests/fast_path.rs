//! Issue 29: the fast path of a re-sync. A record whose bytes, integration
//! revision and row are unchanged is not parsed, mapped or filtered again:
//! its kept outcome is reused. These scenarios run the same feeds with the
//! fast path and with a full parse (each into its own database) and compare
//! counts, skips and rows after every run; a changed setting, a hand-edited
//! row and a deleted row still converge with the fast path on, and a run
//! with nothing changed writes no campaign row. Both store backends, a mock
//! network on 127.0.0.1.

mod common;

use common::*;
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use offersync::store::{self, Trigger};
use offersync::sync::{self, RunReport};
use serde_json::Value;

async fn sync_with(m: &Manifests, db: &TestDb, fast_path: bool) -> RunReport {
    let store = store::open(&db.url).expect("open the store");
    let options = sync::RunOptions {
        fast_path,
        ..sync::RunOptions::new(Trigger::Cli)
    };
    let (_, report) = sync::run_with(m.load("acme"), store, options).await;
    let report = report.expect("the run starts");
    assert!(report.succeeded(), "{:?}", report.error);
    report
}

/// A stored row as the platform and the next run see it: every value
/// offersync mapped (content hash), the raw record, the policy it was
/// converged under, and the state operations leave on it.
#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Row {
    #[diesel(sql_type = Text)]
    external_id: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    payout: Option<String>,
    #[diesel(sql_type = Text)]
    content_hash: String,
    #[diesel(sql_type = Text)]
    raw_hash: String,
    #[diesel(sql_type = Text)]
    applied_hash: String,
    #[diesel(sql_type = Text)]
    drifted: String,
    #[diesel(sql_type = Nullable<Text>)]
    removed_as: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    status_before_pause: Option<String>,
}

fn rows(db: &TestDb) -> Vec<Row> {
    db.query(
        "SELECT external_id, name, status, CAST(payout AS TEXT) AS payout, content_hash, \
         raw_hash, applied_hash, CAST(drifted AS TEXT) AS drifted, removed_as, \
         status_before_pause FROM campaigns ORDER BY external_id",
    )
}

/// A run's skips as the run log keeps them, in a stable order.
fn skips(db: &TestDb, report: &RunReport) -> Vec<(Option<String>, String, String)> {
    let mut s = store::open(&db.url).unwrap();
    let mut skips: Vec<_> = s
        .run_skips(report.run.unwrap())
        .unwrap()
        .into_iter()
        .map(|r| (r.external_id, r.reason, r.detail))
        .collect();
    skips.sort();
    skips
}

/// A feed with every kind of outcome: offers imported, offers the payout
/// filter skips, a record that cannot be mapped (no name), an id listed
/// twice, and an offer whose payout cannot be read (a warning).
fn varied_feed() -> Vec<Value> {
    let mut list = offers(1..=30);
    // Payouts are `id % 40 + 1`.50: over the filter's max of 20 from id 19.
    list[4]["name"] = Value::Null;
    list[7] = list[2].clone();
    list[9]["payout"] = "a lot".into();
    list
}

const FILTERED: &str = "  filters: {payout: {max: 20}}\n";

/// Runs `steps` (a feed each, or a spec change) on two databases, one with
/// the fast path and one with a full parse, and compares every run.
async fn fast_and_full_parse_agree_run_by_run(backend: Backend) {
    let (mock, m, fast_db) = setup(backend, varied_feed(), FILTERED).await;
    let full_db = TestDb::new(backend);
    let mut feed = varied_feed();
    let mut reused = Vec::new();
    for step in 0..7 {
        match step {
            // Nothing changed (steps 1, 3, 5 repeat the step before).
            0 | 1 | 3 | 5 => {}
            2 => {
                // Upstream: one offer renamed, one now over the filter, one
                // back under it, one gone, one new, the unmappable one fixed.
                feed[0]["name"] = "Renamed".into();
                feed[1]["payout"] = "25.50".into();
                feed[21]["payout"] = "3.50".into();
                feed.remove(15);
                let mut new = offer(99);
                new["payout"] = "30.50".into();
                feed.push(new);
                feed[4]["name"] = "Named now".into();
                mock.set_offers(feed.clone());
            }
            4 => m.set_integration(&integration_yaml(
                "acme",
                &mock.base_url(),
                "  filters: {payout: {max: 24}}\n  on_filtered: pause\n",
            )),
            6 => {
                // Hand edits on both databases: drift, and a deleted row.
                for db in [&fast_db, &full_db] {
                    db.execute("UPDATE campaigns SET name = 'By hand' WHERE external_id = '3'");
                    db.execute("DELETE FROM campaigns WHERE external_id = '7'");
                }
            }
            _ => unreachable!(),
        }
        let fast = sync_with(&m, &fast_db, true).await;
        let full = sync_with(&m, &full_db, false).await;
        assert_eq!(fast.counts, full.counts, "step {step}");
        assert_eq!(full.reused, 0, "a full parse reuses nothing");
        assert_eq!(
            skips(&fast_db, &fast),
            skips(&full_db, &full),
            "step {step}"
        );
        assert_eq!(rows(&fast_db), rows(&full_db), "step {step}");
        reused.push(fast.reused);
    }
    // Never reused: the unmappable record (id 5, until step 2 names it)
    // and the one with a warning (id 10). The repeat of id 3 has its
    // bytes, so it is reused (and skipped as a repeat) whenever id 3 is.
    // Step 2 computes ids 1, 2, 5, 22 and 99 anew; step 4 changes the
    // revision; step 6 drifts id 3 (and so its repeat) and deletes id 7.
    assert_eq!(reused, [0, 28, 24, 29, 0, 29, 26]);
}

/// Zero campaign writes on no change, and every record reused.
async fn a_run_with_nothing_changed_writes_no_campaign_and_parses_nothing(backend: Backend) {
    let (_mock, m, db) = setup(backend, offers(1..=25), FILTERED).await;
    let first = sync_with(&m, &db, true).await;
    // Payouts are `id % 40 + 1`.50: ids 19 to 25 are over the max of 20.
    assert_eq!((first.counts.created, first.reused), (18, 0));
    db.count_campaign_writes();
    let again = sync_with(&m, &db, true).await;
    assert_eq!(again.reused, 25, "{:?}", again.counts);
    assert_eq!(again.counts.unchanged, 18);
    assert_eq!(again.counts.skipped_by_reason.values().sum::<u32>(), 7);
    assert_eq!(db.campaign_writes_since_last_look(), 0);
}

/// A changed setting reaches every row although no record changed: the
/// revision is part of what a kept outcome is reused under.
async fn a_changed_setting_converges_with_the_fast_path_on(backend: Backend) {
    let (mock, m, db) = setup(backend, offers(1..=12), "").await;
    sync_with(&m, &db, true).await;
    assert_eq!(sync_with(&m, &db, true).await.reused, 12);
    m.set_integration(&integration_yaml(
        "acme",
        &mock.base_url(),
        "  payout: {ratio: 0.5}\n",
    ));
    let changed = sync_with(&m, &db, true).await;
    assert_eq!(
        (changed.counts.updated, changed.reused),
        (12, 0),
        "{:?}",
        changed.counts
    );
    let payouts: Vec<Option<String>> = rows(&db).into_iter().map(|r| r.payout).collect();
    let full_db = TestDb::new(backend);
    sync_with(&m, &full_db, false).await;
    let expected: Vec<Option<String>> = rows(&full_db).into_iter().map(|r| r.payout).collect();
    assert_eq!(payouts, expected);
    db.count_campaign_writes();
    let again = sync_with(&m, &db, true).await;
    assert_eq!((again.counts.unchanged, again.reused), (12, 12));
    assert_eq!(db.campaign_writes_since_last_look(), 0);
}

/// A hand-edited row is drift: its record is parsed again and the row put
/// back; a row deleted by hand is created again.
async fn a_hand_edited_row_converges_with_the_fast_path_on(backend: Backend) {
    let (_mock, m, db) = setup(backend, offers(1..=12), "").await;
    sync_with(&m, &db, true).await;
    sync_with(&m, &db, true).await;
    db.execute("UPDATE campaigns SET name = 'By hand' WHERE external_id = '4'");
    db.execute("DELETE FROM campaigns WHERE external_id = '9'");
    let report = sync_with(&m, &db, true).await;
    assert_eq!(
        (
            report.counts.updated,
            report.counts.drift_corrected,
            report.counts.created,
            report.reused
        ),
        (1, 1, 1, 10),
        "{:?}",
        report.counts
    );
    let after = rows(&db);
    let row = |id: &str| after.iter().find(|r| r.external_id == id).unwrap();
    assert_eq!(row("4").name, "Offer 4");
    assert_eq!(
        row("4").drifted,
        row("5").drifted,
        "the drift mark is cleared"
    );
    assert_eq!(row("9").name, "Offer 9");
    assert_eq!(sync_with(&m, &db, true).await.reused, 12);
}

on_both_backends!(
    fast_and_full_parse_agree_run_by_run,
    a_run_with_nothing_changed_writes_no_campaign_and_parses_nothing,
    a_changed_setting_converges_with_the_fast_path_on,
    a_hand_edited_row_converges_with_the_fast_path_on,
);
