//! Mapping throughput: a generated 100k-offer Everflow-shaped response (about
//! 30 fields per offer, nested), mapped by the built-in `everflow` network.
//! Parse and map are timed separately, on one thread.
//!
//! Run: `cargo bench --bench mapping` (optional argument: offer count).

#![recursion_limit = "256"]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use offersync::manifest;
use offersync::mapping::split;
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let body = serde_json::to_vec(&generate(count)).expect("serializes");
    let text = std::str::from_utf8(&body).expect("utf-8");
    let bench_network = manifest::load_network_file(Path::new("benches/everflow-15-fields.yaml"))
        .expect("bench mapping");
    let full_network = manifest::built_in_networks()
        .remove("everflow")
        .expect("built-in everflow");
    let container = vec!["offers".to_string()];
    println!(
        "mapping benchmark: {count} offers, {:.1} MB response",
        body.len() as f64 / 1e6
    );
    // Best of three rounds after a warm-up: the machine may be busy.
    let rounds = |f: &mut dyn FnMut() -> usize| -> (f64, usize) {
        let mut best = (f64::MAX, 0);
        for round in 0..4 {
            let started = Instant::now();
            let n = f();
            let secs = started.elapsed().as_secs_f64();
            if round > 0 && secs < best.0 {
                best = (secs, n);
            }
        }
        best
    };
    let line = |what: &str, (secs, n): (f64, usize)| {
        println!(
            "  {what:<36} {secs:>7.3} s  {:>9.0} offers/s",
            n as f64 / secs
        );
    };

    // Records are parsed and mapped one at a time (the tree is in cache when
    // mapped), so mapping time is (parse + map) minus (parse alone).
    let split_only = rounds(&mut || {
        split::split(text, &container)
            .unwrap()
            .records
            .unwrap()
            .len()
    });
    let page = split::split(text, &container).unwrap();
    let raws = page.records.unwrap();
    let parse = rounds(&mut || {
        for (_, r) in &raws {
            black_box(serde_json::from_str::<Value>(r.get()).unwrap());
        }
        raws.len()
    });
    let parse_and_map = |mapping: &offersync::mapping::Mapping| {
        rounds(&mut || {
            let offers: Vec<_> = raws
                .iter()
                .enumerate()
                .filter_map(|(i, (_, r))| {
                    let record: Value = mapping.parse_record(r.get()).unwrap();
                    mapping.map_record(i, None, &record).ok()
                })
                .collect();
            black_box(offers).len()
        })
    };
    let bench = parse_and_map(&bench_network.mapping);
    let full = parse_and_map(&full_network.mapping);
    let minus = |a: (f64, usize), b: (f64, usize)| (a.0 - b.0, a.1);
    line("split page into records", split_only);
    line("parse records", parse);
    let shaped = |mapping: &offersync::mapping::Mapping| {
        rounds(&mut || {
            for (_, r) in &raws {
                black_box(mapping.parse_record(r.get()).unwrap());
            }
            raws.len()
        })
    };
    let (bench_parse, full_parse) = (
        shaped(&bench_network.mapping),
        shaped(&full_network.mapping),
    );
    line("parse records, shaped for 15 fields", bench_parse);
    line("parse records, shaped for everflow", full_parse);
    line("map, 15 fields", minus(bench, bench_parse));
    line(
        "map, built-in everflow (18 + caps)",
        minus(full, full_parse),
    );
    line(
        "split + parse + map, 15 fields",
        (split_only.0 + bench.0, count),
    );
    for threads in [1, 2] {
        let end_to_end = rounds(&mut || {
            let mapped = black_box(bench_network.mapping.map_page_with(&body, threads).unwrap());
            assert!(mapped.problems.is_empty());
            mapped.offers.len()
        });
        let label = format!(
            "map_page, 15 fields, {threads} thread{}",
            if threads > 1 { "s" } else { "" }
        );
        line(&label, end_to_end);
    }
}

/// Deterministic pseudo-random offers in Everflow's `offersrunnable` shape.
fn generate(count: usize) -> Value {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const COUNTRIES: [&str; 8] = ["US", "CA", "GB", "DE", "FR", "BR", "MX", "IN"];
    let offers: Vec<Value> = (0..count)
        .map(|i| {
            let r = next();
            let country = COUNTRIES[(r % 8) as usize];
            let payout = format!("{}.{:02}", r % 50, (r >> 8) % 100);
            json!({
                "network_offer_id": 100_000 + i,
                "network_id": 393,
                "name": format!("Offer {i} - {country} - CPA"),
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
        .collect();
    json!({"offers": offers, "paging": {"page": 1, "page_size": count, "total_count": count}})
}
