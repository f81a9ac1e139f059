//! The example Integration compiles to the settings it spells out.

use offersync::manifest::model::{Column, ColumnPolicy, OnRemoved, Spillover, Visibility};
use offersync::manifest::{self, process_env};
use offersync::offer::{CapEvent, CapPeriod};
use rust_decimal::Decimal;

#[test]
fn the_example_integration_compiles_every_setting() {
    let loaded = manifest::load_dir("integrations.d".as_ref(), &process_env);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let acme = &loaded.catalog.integrations["acme-everflow"];
    let dec = |s: &str| s.parse::<Decimal>().unwrap();

    assert_eq!(acme.network.name, "everflow");
    assert_eq!(acme.schedule.expression, "*/30 * * * *");
    assert_eq!(
        acme.secrets(),
        ["demo-not-a-real-key"],
        "the ${{file:...}} secret, resolved"
    );
    assert_eq!(
        acme.params["base_url"].expose(),
        "https://api.eflow.team",
        "a Network default"
    );
    assert_eq!(format!("{:?}", acme.params["api_key"]), "[redacted]");
    assert_eq!(
        acme.tracking.append.as_deref(),
        Some("sub1={click_id}&sub2={pub_id}")
    );
    assert_eq!(
        acme.tracking.append_impression.as_deref(),
        Some("imp={imp_id}")
    );
    assert_eq!(
        (acme.defaults.visibility, acme.defaults.redirect),
        (Visibility::Permission, 302)
    );
    assert_eq!(acme.defaults.currency.as_deref(), Some("USD"));
    assert_eq!(
        (acme.payout.ratio, acme.payout.tiers["gold"]),
        (dec("0.8"), dec("0.9"))
    );
    assert_eq!(acme.payout.publishers["pub-42"], dec("12.00"));
    assert_eq!(
        acme.filters.allow_countries,
        ["US", "CA", "GB", "MX", "BR", "AR"]
    );
    assert_eq!(
        (acme.filters.payout_min, acme.filters.payout_max),
        (Some(dec("0.5")), Some(dec("100")))
    );
    assert_eq!(acme.filters.geo[0].country, "US");
    assert_eq!(acme.update.policy(Column::Status), ColumnPolicy::OnCreate);
    assert_eq!(
        acme.update.policy(Column::Kpi),
        ColumnPolicy::Always,
        "unlisted: the default"
    );
    let window = acme.settings.time_targeting.as_ref().unwrap();
    assert_eq!(
        (window.timezone, window.days.len()),
        (chrono_tz::America::New_York, 5)
    );
    assert_eq!(
        (acme.settings.allow_impressions, acme.settings.spillover),
        (true, Spillover::No)
    );
    assert_eq!(acme.caps.additional[0].event, CapEvent::Conversions);
    assert_eq!(
        acme.caps.additional[1].timezone.as_deref(),
        Some("Europe/London")
    );
    assert_eq!(
        acme.caps.additional[1].over_delivery.as_deref(),
        Some("continue")
    );
    assert_eq!(acme.caps.on_import[0].period, CapPeriod::Daily);
    assert_eq!(acme.on_removed, OnRemoved::Pause);
    assert_eq!(acme.on_filtered, OnRemoved::Pause);
    assert!(acme.update.follow_upstream_pauses);
    assert_eq!(acme.filters.percent_min, Some(dec("5")));
    assert_eq!(acme.safety.max_removed_share, dec("0.5"));
    assert_eq!(acme.safety.shrink_window_days, 7);
    assert_eq!(acme.safety.max_duplicate_share, dec("0.01"));
    assert!(!acme.safety.allow_link_local_addresses);
    assert_eq!(acme.spec_hash.len(), 64);
}
