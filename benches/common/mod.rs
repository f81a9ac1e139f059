//! What the benchmarks share: the generated Everflow-shaped offers and timing.

#![allow(dead_code)] // each bench uses its own part

use std::time::Instant;

use serde_json::{Value, json};

/// The best of three timed runs after a warm-up (the machine may be busy).
pub fn best_of_3(mut run: impl FnMut()) -> f64 {
    run();
    (0..3)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// One response holding `count` generated offers.
pub fn generate(count: usize) -> Value {
    let offers = offers(count, false);
    json!({"offers": offers, "paging": {"page": 1, "page_size": count, "total_count": count}})
}

/// Deterministic pseudo-random offers in Everflow's `offersrunnable` shape.
/// With `revised`, every tenth offer has a new name and a payout one higher:
/// the same feed after an upstream change to 10% of it.
pub fn offers(count: usize, revised: bool) -> Vec<Value> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const COUNTRIES: [&str; 8] = ["US", "CA", "GB", "DE", "FR", "BR", "MX", "IN"];
    (0..count)
        .map(|i| {
            let r = next();
            let country = COUNTRIES[(r % 8) as usize];
            let changed = revised && i % 10 == 0;
            let payout = format!("{}.{:02}", r % 50 + u64::from(changed), (r >> 8) % 100);
            let edition = if changed { " (new terms)" } else { "" };
            json!({
                "network_offer_id": 100_000 + i,
                "network_id": 393,
                "name": format!("Offer {i} - {country} - CPA{edition}"),
                "thumbnail_url": format!("https://cdn.example.com/thumbs/{i}.png"),
                "network_category_id": r % 20,
                "preview_url": format!("https://advertiser.example.com/landing/{i}"),
                "offer_status": if r % 10 == 0 { "paused" } else { "active" },
                "currency_id": "USD",
                "caps_timezone_id": 80,
                "date_live_until": if r % 3 == 0 { "2031-01-31" } else { "" },
                "html_description": format!("<p>Offer {i}: <b>no incent</b>, no SMS.</p>"),
                "terms_and_conditions": "NO Incentivized",
                "visibility": "public",
                "is_caps_enabled": r % 2 == 0,
                "daily_conversion_cap": r % 500,
                "weekly_conversion_cap": 0,
                "monthly_conversion_cap": r % 5000,
                "global_conversion_cap": 0,
                "daily_payout_cap": 0,
                "weekly_payout_cap": 0,
                "monthly_payout_cap": 0,
                "global_payout_cap": 0,
                "daily_click_cap": 0,
                "weekly_click_cap": 0,
                "monthly_click_cap": 0,
                "global_click_cap": 0,
                "tracking_url": format!("https://trk.example.com/{i:x}/"),
                "impression_tracking_url": "",
                "time_created": 1_700_000_000 + i,
                "time_saved": 1_715_000_000 + i,
                "relationship": {
                    "offer_affiliate_status": "approved",
                    "category": {"network_category_id": r % 20, "name": format!("Category {}", r % 20), "status": "active"},
                    "payouts": {"total": 1, "entries": [
                        {"entry_name": "Base", "is_default": true, "payout_type": "cpa", "payout_amount": serde_json::from_str::<Value>(&payout).unwrap(), "payout_percentage": 0}
                    ]},
                    "ruleset": {
                        "platforms": [{"platform_id": 1, "label": "Android", "targeting_type": "include", "match_type": "exact"}],
                        "countries": [{"country_id": 227, "country_code": country, "label": country, "targeting_type": "include", "match_type": "exact"}]
                    },
                    "remaining_caps": {"remaining_conversion_cap": 0, "remaining_click_cap": 0}
                }
            })
        })
        .collect()
}
