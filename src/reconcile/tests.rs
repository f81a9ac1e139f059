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
        applied_hash: String::new(),
        warnings: vec![],
        unreadable: vec![],
    }
}

fn skip(id: &str, reason: SkipReason, detail: &str) -> Result<Campaign, Skip> {
    Err(Skip {
        external_id: Some(id.into()),
        reason,
        detail: detail.into(),
    })
}

/// An index of campaigns last converged (under the default policy) to
/// `campaign(id, content hash)`.
fn stored(entries: &[(&str, i64, &str, bool)]) -> StoredIndex {
    stored_under(&UpdateDef::default(), entries)
}

fn stored_under(update: &UpdateDef, entries: &[(&str, i64, &str, bool)]) -> StoredIndex {
    let hashing = Reconciler::new(StoredIndex::default(), update, false);
    entries
        .iter()
        .map(|(ext, id, hash, removed)| {
            (
                ext.to_string(),
                StoredCampaign {
                    id: *id,
                    applied_hash: StoredHash::new(&hashing.applied_hash(&campaign(ext, hash))),
                    raw_hash: StoredHash::new("r"),
                    removed: *removed,
                    drifted: false,
                },
            )
        })
        .collect()
}

/// The removals of a run that pauses what is gone and what is filtered.
fn pausing(r: &mut Reconciler<'_>, share: &str, guard: RemovalGuard) -> Result<Removal, Refusal> {
    r.removals(
        OnRemoved::Pause,
        OnRemoved::Pause,
        &safety(false, share),
        guard,
    )
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
    let mut r = Reconciler::new(index, &update, false);
    let plan = r.plan_page(vec![
        Ok(campaign("a", "h-a")),
        Ok(campaign("b", "new")),
        Ok(campaign("c", "h-c")),
        Ok(campaign("d", "h-d")),
        Ok(campaign("d", "h-d")),
    ]);
    assert_eq!(plan.create.len(), 1);
    // b's desired row moved and c comes back: both are read and compared.
    let compare: Vec<(i64, bool)> = plan.compare.iter().map(|(id, _, r)| (*id, *r)).collect();
    assert_eq!(compare, [(2, false), (3, true)]);
    assert_eq!(plan.skips[0].reason, SkipReason::DuplicateId);
    assert_eq!(
        (r.counts.created, r.counts.unchanged, r.counts.skipped),
        (1, 1, 1)
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
    let mut r = Reconciler::new(index, &update, false);
    r.counts.fetched = 2;
    r.plan_page(vec![
        Ok(campaign("a", "h")),
        skip(
            "b",
            SkipReason::MappingProblem,
            "field payout: \"abc\" is not a decimal",
        ),
    ]);
    let removal = pausing(&mut r, "0.5", RemovalGuard::default()).unwrap();
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
    let mut r = Reconciler::new(index(), &update, false);
    assert_eq!(
        pausing(&mut r, "1", RemovalGuard::default()).unwrap_err(),
        Refusal::EmptyFeed
    );
    let mut r = Reconciler::new(index(), &update, false);
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

    let mut r = Reconciler::new(index(), &update, false);
    r.counts.fetched = 1;
    r.plan_page(vec![Ok(campaign("a", "h"))]);
    let refusal = pausing(&mut r, "0.5", RemovalGuard::default()).unwrap_err();
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
    let mut r = Reconciler::new(StoredIndex::default(), &update, false);
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
    let mut r = Reconciler::new(index, &update, false);
    r.counts.fetched = 1;
    r.plan_page(vec![Ok(campaign("a", "h"))]);
    let guard = RemovalGuard {
        high_water: Some(3),
        accept_removals: true,
    };
    let removal = pausing(&mut r, "0.5", guard).unwrap();
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
    let mut r = Reconciler::new(index.clone(), &update, false);
    plan(&mut r);
    assert!(pausing(&mut r, "0.5", RemovalGuard::default()).is_ok());
    assert_eq!(r.counts.listed, 3);
    // ...but the feed listed 10 a few runs ago: 3 is 70% fewer.
    let mut r = Reconciler::new(index, &update, false);
    plan(&mut r);
    let guard = RemovalGuard {
        high_water: Some(10),
        accept_removals: false,
    };
    let refusal = pausing(&mut r, "0.5", guard).unwrap_err();
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
        let mut r = Reconciler::new(index.clone(), &update, false);
        r.counts.fetched = fetched;
        let mut page: Vec<Result<Campaign, Skip>> = (0..fetched as usize - copies)
            .map(|i| Ok(campaign(&format!("n{i}"), "h")))
            .collect();
        page.extend((0..copies).map(|_| Ok(campaign("n0", "h"))));
        r.plan_page(page);
        pausing(&mut r, "1", RemovalGuard::default())
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
    let mut r = Reconciler::new(index, &update, false);
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
        false,
    );
    let mut counter_moved = campaign("b", "h");
    counter_moved.raw_hash = "r2".into();
    let plan = r.plan_page(vec![Ok(campaign("a", "h")), Ok(counter_moved)]);
    assert!(plan.update.is_empty() && plan.compare.is_empty());
    assert_eq!(plan.refresh.len(), 1);
    assert_eq!(plan.refresh[0].0, 2);
    assert_eq!((r.counts.unchanged, r.counts.updated), (2, 0));
}

/// The row a campaign was last written as: every watched column as the
/// campaign would write it.
fn row_of(id: i64, c: &Campaign) -> StoredRow {
    let values: Vec<(&str, serde_json::Value)> = crate::store::feed::FEED_COLUMNS
        .iter()
        .filter_map(|(col, _)| Some((*col, c.column_value(col)?)))
        .collect();
    let mut row = StoredRow::with_values(id, &values);
    row.content_hash = c.content_hash.clone();
    row.raw_hash = c.raw_hash.clone();
    row
}

#[test]
fn a_widened_policy_re_plans_a_row_nothing_upstream_changed() {
    // Stored under `name: on_create` while upstream renamed the offer.
    let mut on_create = UpdateDef::default();
    on_create
        .columns
        .insert(Column::Name, ColumnPolicy::OnCreate);
    let index = stored_under(&on_create, &[("a", 1, "h", false)]);
    let kept = row_of(1, &campaign("a", "h")).with_value("name", serde_json::json!("Old name"));
    // The same policy: nothing to read, nothing to write.
    let mut r = Reconciler::new(index.clone(), &on_create, false);
    let plan = r.plan_page(vec![Ok(campaign("a", "h"))]);
    assert!(plan.compare.is_empty() && plan.update.is_empty());
    // `name: always`: the row is read and its name converged.
    let always = UpdateDef::default();
    let mut r = Reconciler::new(index, &always, false);
    let mut plan = r.plan_page(vec![Ok(campaign("a", "h"))]);
    assert_eq!(plan.ids_to_compare(), [1]);
    r.resolve(&mut plan, vec![kept]);
    assert_eq!(plan.update.len(), 1, "{plan:?}");
    let update = &plan.update[0];
    assert_eq!(update.causes, [Cause::SettingChanged]);
    let changed: Vec<(&str, &str, &str)> = update
        .changes
        .iter()
        .map(|c| (c.column, c.old.as_str(), c.new.as_str()))
        .collect();
    assert_eq!(changed, [("name", "Old name", "Offer a")]);
    assert_eq!((r.counts.updated, r.counts.unchanged), (1, 0));
}

#[test]
fn a_drifted_row_is_corrected_in_always_columns_and_kept_in_the_operators() {
    let mut update = UpdateDef::default();
    update
        .columns
        .insert(Column::Category, ColumnPolicy::OnCreate);
    let mut index = stored_under(&update, &[("a", 1, "h", false), ("b", 2, "h", false)]);
    index.get_mut("a").unwrap().drifted = true;
    index.get_mut("b").unwrap().drifted = true;
    let c = campaign("a", "h");
    // a: an operator edited the payout (always) and the category (on_create).
    let mut a = row_of(1, &c)
        .with_value("payout", serde_json::json!("1.11"))
        .with_value("category", serde_json::json!("MANUAL"));
    a.drifted = true;
    // b: only the operator's column was edited.
    let mut b = row_of(2, &campaign("b", "h"));
    b.drifted = true;
    let mut r = Reconciler::new(index, &update, false);
    let mut plan = r.plan_page(vec![Ok(c), Ok(campaign("b", "h"))]);
    assert_eq!(plan.ids_to_compare(), [1, 2]);
    r.resolve(&mut plan, vec![b, a]);
    assert_eq!(plan.update.len(), 1);
    let update = &plan.update[0];
    assert_eq!(update.causes, [Cause::Drift]);
    assert_eq!(update.changes.len(), 1, "{:?}", update.changes);
    assert_eq!(
        (
            update.changes[0].column,
            update.changes[0].old.as_str(),
            update.changes[0].new.as_str()
        ),
        ("payout", "1.11", "10")
    );
    assert!(
        update
            .held_back
            .iter()
            .any(|h| h.column == "category" && h.old == "MANUAL")
    );
    // b changes nothing the platform reads: only its drift mark is cleared.
    assert_eq!(
        plan.refresh.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(
        (
            r.counts.updated,
            r.counts.drift_corrected,
            r.counts.unchanged
        ),
        (1, 1, 1)
    );
}

#[test]
fn upstream_pauses_are_followed_when_the_setting_is_turned_on() {
    let mut update = UpdateDef::default();
    update
        .columns
        .insert(Column::Status, ColumnPolicy::OnCreate);
    let index = stored_under(&update, &[("a", 1, "h", false)]);
    let mut paused_upstream = campaign("a", "h");
    paused_upstream.upstream_inactive = true;
    let row = row_of(1, &campaign("a", "h"));
    // Not following: a paused offer's campaign stays active.
    let mut r = Reconciler::new(index.clone(), &update, false);
    let plan = r.plan_page(vec![Ok(paused_upstream.clone())]);
    assert!(plan.compare.is_empty());
    update.follow_upstream_pauses = true;
    let mut r = Reconciler::new(index, &update, false);
    let mut plan = r.plan_page(vec![Ok(paused_upstream)]);
    r.resolve(&mut plan, vec![row]);
    let changes: Vec<(&str, &str)> = plan.update[0]
        .changes
        .iter()
        .map(|c| (c.column, c.new.as_str()))
        .collect();
    assert_eq!(changes, [("status", "paused")]);
}

#[test]
fn the_first_empty_feed_is_refused_in_words_that_fit() {
    let update = UpdateDef::default();
    let mut r = Reconciler::new(StoredIndex::default(), &update, false);
    let refusal = pausing(&mut r, "0.5", RemovalGuard::default()).unwrap_err();
    assert_eq!(refusal, Refusal::EmptyFirstFeed);
    assert!(!refusal.to_string().contains("campaign"), "{refusal}");
}

#[test]
fn a_selection_narrowed_on_a_feed_fetched_by_id_is_filtered_not_removed() {
    let update = UpdateDef::default();
    let index = stored(&[
        ("a1", 1, "h", false),
        ("a2", 2, "h", false),
        ("a3", 3, "h", false),
        ("a4", 4, "h", false),
        ("a5", 5, "h", false),
        ("a6", 6, "h", false),
    ]);
    let selected: std::collections::BTreeSet<String> =
        ["a1", "a5"].iter().map(|s| s.to_string()).collect();
    let mut r = Reconciler::new(index, &update, false).fetching_by_id(&selected);
    r.counts.fetched = 2;
    r.plan_page(vec![Ok(campaign("a1", "h")), Ok(campaign("a5", "h"))]);
    let guard = RemovalGuard {
        high_water: Some(6),
        accept_removals: false,
    };
    let removal = pausing(&mut r, "0.5", guard).unwrap();
    assert!(removal.ids.is_empty());
    assert_eq!(removal.filtered_external_ids, ["a2", "a3", "a4", "a6"]);
}

#[test]
fn a_policy_change_is_named_in_the_manifests_words() {
    let old = "always=payout,revenue;caps.update=false;follow_upstream_pauses=true";
    let new = "always=name,payout;caps.update=true;follow_upstream_pauses=true";
    assert_eq!(
        policy_change(old, new).as_deref(),
        Some(
            "update.columns.name → always, update.columns.revenue → no longer always, caps.update false → true"
        )
    );
    assert_eq!(policy_change(new, new), None);
}

/// #30.6: an offer field that could not be read keeps a stored row's
/// columns of it (no change, none held back), says so in the warning, and
/// is a desired row of its own (not the same as the network's null).
#[test]
fn an_unreadable_value_keeps_the_stored_columns_and_says_so() {
    let update = UpdateDef::default();
    let stored_campaign = campaign("a", "h");
    let row = row_of(1, &stored_campaign);
    let mut unreadable = campaign("a", "h2");
    unreadable.revenue = None;
    unreadable.payout = None;
    unreadable.name = "Renamed".into();
    unreadable.unreadable = vec!["payout"];
    unreadable.warnings = vec![format!(
        "field payout: 1e400 is out of the decimal range{}",
        crate::mapping::LEFT_EMPTY
    )];
    let mut emptied = unreadable.clone();
    emptied.unreadable.clear();
    assert_ne!(unreadable.compute_hash(), emptied.compute_hash());

    let mut r = Reconciler::new(stored(&[("a", 1, "h", false)]), &update, false);
    let mut plan = r.plan_page(vec![Ok(unreadable.clone())]);
    r.resolve(&mut plan, vec![row.clone()]);
    assert_eq!(plan.update.len(), 1, "{plan:?}");
    let changed: Vec<&str> = plan.update[0].changes.iter().map(|c| c.column).collect();
    assert_eq!(changed, ["name"]);
    assert!(plan.update[0].held_back.is_empty());
    assert_eq!(plan.warnings.len(), 1);
    let warning = &plan.warnings[0].1;
    assert!(
        warning.starts_with(
            "field payout: 1e400 is out of the decimal range; the stored value is kept"
        ),
        "{warning}"
    );

    // The network's own null empties the columns.
    let mut r = Reconciler::new(stored(&[("a", 1, "h", false)]), &update, false);
    let mut plan = r.plan_page(vec![Ok(emptied)]);
    r.resolve(&mut plan, vec![row]);
    let changed: Vec<&str> = plan.update[0].changes.iter().map(|c| c.column).collect();
    assert_eq!(changed, ["name", "revenue", "payout"]);

    // A new campaign has nothing to keep: the warning says it is left empty.
    let mut r = Reconciler::new(stored(&[]), &update, false);
    let plan = r.plan_page(vec![Ok(unreadable)]);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.warnings[0].1.ends_with(crate::mapping::LEFT_EMPTY));
}
