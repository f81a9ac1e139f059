use std::sync::Arc;

use rust_decimal::Decimal;

use super::*;
use crate::campaign::{CampaignStatus, CampaignVisibility};
use crate::offer::RawRecord;
use crate::store::StoredCampaign;
use crate::store::StoredHash;

fn campaign(id: &str, hash: &str) -> Campaign {
    Campaign {
        external_id: id.into(),
        name: format!("Offer {id}"),
        advertiser: Arc::from("Acme"),
        status: CampaignStatus::Active,
        upstream_inactive: false,
        visibility: CampaignVisibility::Permission,
        preview_url: Some("https://p".into()),
        tracking_url: None,
        impression_url: None,
        thumbnail_url: None,
        revenue: Some(Decimal::TEN),
        payout: Some(Decimal::TEN),
        revenue_max: None,
        payout_max: None,
        payout_kind: crate::campaign::PayoutKind::Amount,
        currency: None,
        model: None,
        models: vec![],
        objective: None,
        redirect: 302,
        countries: vec!["US".into()],
        blocked_countries: vec![],
        os: vec![],
        blocked_os: vec![],
        devices: vec![],
        min_os_version: None,
        category: Some("Finance".into()),
        description: None,
        kpi: None,
        payouts: vec![],
        publisher_payouts: vec![],
        caps: vec![],
        import_caps: Arc::from(Vec::new()),
        cap_settings: Arc::from("{}"),
        settings: Arc::from("{}"),
        starts_at: None,
        expires_at: None,
        raw: RawRecord::from_json("{}".into()),
        content_hash: hash.into(),
        raw_hash: "r".into(),
        warnings: vec![],
    }
}

fn skip(id: &str, reason: SkipReason, detail: &str) -> Result<Campaign, Skip> {
    Err(Skip {
        external_id: Some(id.into()),
        reason,
        detail: detail.into(),
    })
}

fn stored(entries: &[(&str, i64, &str, bool)]) -> StoredIndex {
    entries
        .iter()
        .map(|(ext, id, hash, removed)| {
            (
                ext.to_string(),
                StoredCampaign {
                    id: *id,
                    content_hash: StoredHash::new(hash),
                    raw_hash: StoredHash::new("r"),
                    removed: *removed,
                },
            )
        })
        .collect()
}

fn safety(allow_empty_feed: bool, share: &str) -> SafetyDef {
    SafetyDef {
        allow_empty_feed,
        max_removed_share: share.parse().unwrap(),
        ..SafetyDef::default()
    }
}

#[test]
fn plans_creates_updates_restores_and_leaves_unchanged_alone() {
    let update = UpdateDef::default();
    let index = stored(&[
        ("a", 1, "h-a", false),
        ("b", 2, "old", false),
        ("c", 3, "h-c", true),
    ]);
    let mut r = Reconciler::new(index, &update);
    let plan = r.plan_page(vec![
        Ok(campaign("a", "h-a")),
        Ok(campaign("b", "new")),
        Ok(campaign("c", "h-c")),
        Ok(campaign("d", "h-d")),
        Ok(campaign("d", "h-d")),
    ]);
    assert_eq!(plan.create.len(), 1);
    let updates: Vec<(i64, bool)> = plan.update.iter().map(|(id, _, r)| (*id, *r)).collect();
    assert_eq!(updates, [(2, false), (3, true)]);
    assert_eq!(plan.skips[0].reason, SkipReason::DuplicateId);
    assert_eq!(
        (
            r.counts.created,
            r.counts.updated,
            r.counts.unchanged,
            r.counts.restored,
            r.counts.skipped
        ),
        (1, 2, 1, 1, 1)
    );
}

#[test]
fn offers_gone_upstream_are_removed_but_not_those_that_failed_to_map() {
    let update = UpdateDef::default();
    let index = stored(&[
        ("a", 1, "h", false),
        ("b", 2, "h", false),
        ("c", 3, "h", false),
        ("z", 9, "h", true),
    ]);
    let mut r = Reconciler::new(index, &update);
    r.counts.fetched = 2;
    r.plan_page(vec![
        Ok(campaign("a", "h")),
        skip(
            "b",
            SkipReason::MappingProblem,
            "field payout: \"abc\" is not a decimal",
        ),
    ]);
    let removal = r
        .removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "0.5"),
            RemovalGuard::default(),
        )
        .unwrap();
    assert_eq!(removal.external_ids, ["c"]);
    assert!(removal.pause);
    assert_eq!(r.counts.removed, 1);
}

#[test]
fn an_empty_feed_or_a_mass_removal_is_refused_unless_allowed() {
    let update = UpdateDef::default();
    let index = || {
        stored(&[
            ("a", 1, "h", false),
            ("b", 2, "h", false),
            ("c", 3, "h", false),
        ])
    };
    let mut r = Reconciler::new(index(), &update);
    assert_eq!(
        r.removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "1"),
            RemovalGuard::default()
        )
        .unwrap_err(),
        Refusal::EmptyFeed
    );
    let mut r = Reconciler::new(index(), &update);
    assert_eq!(
        r.removals(
            OnRemoved::Keep,
            OnRemoved::Pause,
            &safety(true, "1"),
            RemovalGuard::default()
        )
        .unwrap()
        .ids
        .len(),
        3
    );

    let mut r = Reconciler::new(index(), &update);
    r.counts.fetched = 1;
    r.plan_page(vec![Ok(campaign("a", "h"))]);
    let refusal = r
        .removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "0.5"),
            RemovalGuard::default(),
        )
        .unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the run would remove 2 of 3 live campaigns (66.7%), more than safety.max_removed_share allows (50%): suspected upstream outage; if the offers really are gone, sync once with --accept-removals"
    );
}

#[test]
fn never_columns_are_left_empty_on_create_and_only_always_columns_update() {
    let mut update = UpdateDef::default();
    update.columns.insert(Column::Category, ColumnPolicy::Never);
    update.columns.insert(Column::Name, ColumnPolicy::Never);
    update
        .columns
        .insert(Column::Status, ColumnPolicy::OnCreate);
    let mut r = Reconciler::new(StoredIndex::default(), &update);
    let plan = r.plan_page(vec![Ok(campaign("a", "h"))]);
    assert_eq!(plan.create[0].category, None);
    assert_eq!(plan.create[0].name, "Offer a");
    let columns = Reconciler::update_columns(&update, false);
    assert!(!columns.columns.contains(&Column::Status));
    assert!(!columns.columns.contains(&Column::Category));
    assert!(columns.columns.contains(&Column::Payout));
}

#[test]
fn a_deliberate_run_may_remove_what_the_share_guard_refuses() {
    let update = UpdateDef::default();
    let index = stored(&[
        ("a", 1, "h", false),
        ("b", 2, "h", false),
        ("c", 3, "h", false),
    ]);
    let mut r = Reconciler::new(index, &update);
    r.counts.fetched = 1;
    r.plan_page(vec![Ok(campaign("a", "h"))]);
    let guard = RemovalGuard {
        high_water: Some(3),
        accept_removals: true,
    };
    let removal = r
        .removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "0.5"),
            guard,
        )
        .unwrap();
    assert_eq!(removal.external_ids, ["b", "c"]);
    assert_eq!(r.counts.listed, 1);
}

#[test]
fn a_feed_shrinking_run_by_run_is_refused_against_the_high_water_mark() {
    let update = UpdateDef::default();
    // 4 live now, 3 of them still listed: 25% removed, within the share...
    let index = stored(&[
        ("a", 1, "h", false),
        ("b", 2, "h", false),
        ("c", 3, "h", false),
        ("d", 4, "h", false),
    ]);
    let plan = |r: &mut Reconciler<'_>| {
        r.counts.fetched = 3;
        r.plan_page(vec![
            Ok(campaign("a", "h")),
            Ok(campaign("b", "h")),
            Ok(campaign("c", "h")),
        ]);
    };
    let mut r = Reconciler::new(index.clone(), &update);
    plan(&mut r);
    assert!(
        r.removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "0.5"),
            RemovalGuard::default()
        )
        .is_ok()
    );
    assert_eq!(r.counts.listed, 3);
    // ...but the feed listed 10 a few runs ago: 3 is 70% fewer.
    let mut r = Reconciler::new(index, &update);
    plan(&mut r);
    let guard = RemovalGuard {
        high_water: Some(10),
        accept_removals: false,
    };
    let refusal = r
        .removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "0.5"),
            guard,
        )
        .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Shrinking {
            listed: 3,
            high_water: 10,
            share: Decimal::from(70),
            allowed: Decimal::from(50),
            window_days: 7,
        }
    );
    assert_eq!(r.counts.removed, 0);
}

#[test]
fn many_repeated_ids_fail_the_run_a_few_do_not() {
    let update = UpdateDef::default();
    let index = stored(&[("a", 1, "h", false), ("z", 9, "h", false)]);
    let run = |copies: usize, fetched: u32| {
        let mut r = Reconciler::new(index.clone(), &update);
        r.counts.fetched = fetched;
        let mut page: Vec<Result<Campaign, Skip>> = (0..fetched as usize - copies)
            .map(|i| Ok(campaign(&format!("n{i}"), "h")))
            .collect();
        page.extend((0..copies).map(|_| Ok(campaign("n0", "h"))));
        r.plan_page(page);
        r.removals(
            OnRemoved::Pause,
            OnRemoved::Pause,
            &safety(false, "1"),
            RemovalGuard::default(),
        )
    };
    // 1 in 200 is 0.5%: within the default 1%; 4 in 12 are too few to mean
    // a broken pager, whatever their share.
    assert!(run(1, 200).is_ok());
    assert!(run(4, 12).is_ok());
    let refusal = run(20, 200).unwrap_err();
    assert!(
        matches!(
            refusal,
            Refusal::Duplicates {
                duplicates: 20,
                fetched: 200,
                ..
            }
        ),
        "{refusal}"
    );
    assert!(
        refusal.to_string().contains("nothing was kept or removed"),
        "{refusal}"
    );
}

#[test]
fn offers_the_filters_now_skip_are_filtered_out_not_removed() {
    let update = UpdateDef::default();
    let index = stored(&[
        ("a", 1, "h", false),
        ("b", 2, "h", false),
        ("c", 3, "h", false),
    ]);
    let mut r = Reconciler::new(index, &update);
    r.counts.fetched = 3;
    r.plan_page(vec![
        Ok(campaign("a", "h")),
        skip("b", SkipReason::NotSelected, "not in filters.offers"),
        skip("c", SkipReason::PayoutBelowMin, "payout 1 < min 5"),
    ]);
    // 2 of 3 is more than the share guard allows, but nothing is gone.
    let removal = r
        .removals(
            OnRemoved::Pause,
            OnRemoved::Keep,
            &safety(false, "0.5"),
            RemovalGuard::default(),
        )
        .unwrap();
    assert!(removal.ids.is_empty());
    assert_eq!(removal.filtered_external_ids, ["b", "c"]);
    assert!(!removal.pause_filtered);
    assert_eq!((r.counts.removed, r.counts.filtered), (0, 2));
}

#[test]
fn a_raw_only_change_is_unchanged_and_rewrites_only_the_raw_record() {
    let update = UpdateDef::default();
    let mut r = Reconciler::new(
        stored(&[("a", 1, "h", false), ("b", 2, "h", false)]),
        &update,
    );
    let mut counter_moved = campaign("b", "h");
    counter_moved.raw_hash = "r2".into();
    let plan = r.plan_page(vec![Ok(campaign("a", "h")), Ok(counter_moved)]);
    assert!(plan.update.is_empty());
    assert_eq!(plan.raw_only.len(), 1);
    assert_eq!(plan.raw_only[0].0, 2);
    assert_eq!((r.counts.unchanged, r.counts.updated), (2, 0));
}
