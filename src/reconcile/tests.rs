use std::sync::Arc;

use rust_decimal::Decimal;

use super::*;
use crate::campaign::{CampaignStatus, CampaignVisibility};
use crate::offer::RawRecord;
use crate::store::StoredCampaign;

fn campaign(id: &str, hash: &str) -> Campaign {
    Campaign {
        external_id: id.into(),
        name: format!("Offer {id}"),
        advertiser: Arc::from("Acme"),
        status: CampaignStatus::Active,
        visibility: CampaignVisibility::Permission,
        preview_url: Some("https://p".into()),
        tracking_url: None,
        impression_url: None,
        thumbnail_url: None,
        revenue: Some(Decimal::TEN),
        payout: Some(Decimal::TEN),
        currency: None,
        model: None,
        objective: None,
        redirect: 302,
        countries: vec!["US".into()],
        blocked_countries: vec![],
        os: vec![],
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
    }
}

fn stored(entries: &[(&str, i64, &str, bool)]) -> StoredIndex {
    entries
        .iter()
        .map(|(ext, id, hash, removed)| {
            (
                ext.to_string(),
                StoredCampaign {
                    id: *id,
                    content_hash: hash.to_string(),
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
        Err(Skip {
            external_id: Some("b".into()),
            reason: SkipReason::MappingProblem,
            detail: "field payout: \"abc\" is not a decimal".into(),
        }),
    ]);
    let removal = r.removals(OnRemoved::Pause, &safety(false, "0.5")).unwrap();
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
        r.removals(OnRemoved::Pause, &safety(false, "1"))
            .unwrap_err(),
        Refusal::EmptyFeed
    );
    let mut r = Reconciler::new(index(), &update);
    assert_eq!(
        r.removals(OnRemoved::Keep, &safety(true, "1"))
            .unwrap()
            .ids
            .len(),
        3
    );

    let mut r = Reconciler::new(index(), &update);
    r.counts.fetched = 1;
    r.plan_page(vec![Ok(campaign("a", "h"))]);
    let refusal = r
        .removals(OnRemoved::Pause, &safety(false, "0.5"))
        .unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the run would remove 2 of 3 live campaigns (66.7%), more than safety.max_removed_share allows (50%): suspected upstream outage; raise the share if this is expected"
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
    let mut r = Reconciler::new(StoredIndex::new(), &update);
    let plan = r.plan_page(vec![Ok(campaign("a", "h"))]);
    assert_eq!(plan.create[0].category, None);
    assert_eq!(plan.create[0].name, "Offer a");
    let columns = Reconciler::update_columns(&update, false);
    assert!(!columns.columns.contains(&Column::Status));
    assert!(!columns.columns.contains(&Column::Category));
    assert!(columns.columns.contains(&Column::Payout));
}
