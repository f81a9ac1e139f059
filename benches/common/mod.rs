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

/// A deterministic pseudo-random sequence (xorshift64), so that every run
/// of a benchmark sees the same offers.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Deterministic pseudo-random offers in Everflow's `offersrunnable` shape.
/// With `revised`, every tenth offer has a new name and a payout one higher:
/// the same feed after an upstream change to 10% of it.
pub fn offers(count: usize, revised: bool) -> Vec<Value> {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
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
                "offer_status": if r.is_multiple_of(10) { "paused" } else { "active" },
                "currency_id": "USD",
                "caps_timezone_id": 80,
                "date_live_until": if r.is_multiple_of(3) { "2031-01-31" } else { "" },
                "html_description": format!("<p>Offer {i}: <b>no incent</b>, no SMS.</p>"),
                "terms_and_conditions": "NO Incentivized",
                "visibility": "public",
                "is_caps_enabled": r.is_multiple_of(2),
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

/// Which offers the benchmarks generate: `OFFERSYNC_BENCH_OFFERS=compact`
/// for the original ~1.4 KB shape; by default the realistic one.
pub fn offers_for_bench(count: usize, revised: bool) -> Vec<Value> {
    match std::env::var("OFFERSYNC_BENCH_OFFERS").as_deref() {
        Ok("compact") => offers(count, revised),
        _ => realistic_offers(count, revised),
    }
}

/// Offers in the size range real feeds have (issue 15): about 2 to 8 KB
/// each, 2.5 KB on average, from an HTML description (long for one offer in
/// ten), creatives and a payout table per country, on top of the compact shape.
pub fn realistic_offers(count: usize, revised: bool) -> Vec<Value> {
    const WORDS: [&str; 16] = [
        "Install",
        "the",
        "app",
        "and",
        "complete",
        "registration",
        "within",
        "7",
        "days",
        "<b>no</b>",
        "incent",
        "traffic;",
        "deposit",
        "required",
        "<br/>",
        "users",
    ];
    const COUNTRIES: [&str; 10] = ["US", "CA", "GB", "DE", "FR", "BR", "MX", "IN", "AU", "ES"];
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    offers(count, revised)
        .into_iter()
        .enumerate()
        .map(|(i, mut offer)| {
            // Mostly short copy; one offer in ten has a long one (to ~7 KB).
            let words = match next() % 10 {
                0 => 350 + next() % 400,
                _ => 20 + next() % 70,
            };
            let mut html = String::from("<p>");
            for w in 0..words {
                html.push_str(WORDS[((next() >> 3) % 16) as usize]);
                html.push(if w % 24 == 23 { '\n' } else { ' ' });
            }
            html.push_str(
                "</p><ul><li>Allowed: search, social</li><li>Not allowed: email, incent</li></ul>",
            );
            offer["html_description"] = Value::String(html);
            let creatives: Vec<Value> = (0..1 + next() % 2)
                .map(|k| {
                    json!({
                        "network_offer_creative_id": i * 10 + k as usize,
                        "name": format!("Banner {k} 300x250"),
                        "creative_type": "image",
                        "width": 300, "height": 250,
                        "url": format!("https://cdn.example.com/creatives/{i}/{k}.png"),
                        "creative_status": "active"
                    })
                })
                .collect();
            offer["creatives"] = Value::Array(creatives);
            let table: Vec<Value> = (0..1 + next() % 3)
                .map(|k| {
                    let country = COUNTRIES[((next() >> 5) % 10) as usize];
                    json!({
                        "entry_name": format!("{country} tier {k}"),
                        "is_default": false,
                        "payout_type": "cpa",
                        "payout_amount": (next() % 4000) as f64 / 100.0,
                        "payout_percentage": 0,
                        "countries": [country],
                        "platforms": ["Android", "iOS"]
                    })
                })
                .collect();
            if let Some(entries) = offer["relationship"]["payouts"]["entries"].as_array_mut() {
                entries.extend(table);
            }
            offer
        })
        .collect()
}

/// (utime + stime in clock ticks, VmRSS in MB) of a process.
pub fn proc_usage(pid: u32) -> (u64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reads stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cpu = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads status");
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    (cpu, rss_kb / 1024.0)
}

/// A mock network on 127.0.0.1 serving one 3-offer Everflow page at
/// `/v1/affiliates/offersrunnable`, for the daemon benchmarks' many
/// integrations; it serves while this value lives.
pub struct SmallFeed {
    pub base_url: String,
    _runtime: tokio::runtime::Runtime,
}

impl SmallFeed {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let page = json!({"offers": offers(3, false), "paging": {"total_count": 3}}).to_string();
        let base_url = runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/affiliates/offersrunnable",
                axum::routing::get(move || {
                    let page = page.clone();
                    async move { ([("content-type", "application/json")], page) }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds");
            let addr = listener.local_addr().expect("address");
            tokio::spawn(async move { axum::serve(listener, app).await });
            format!("http://{addr}")
        });
        SmallFeed {
            base_url,
            _runtime: runtime,
        }
    }
}

/// A fresh database on the benchmarks' PostgreSQL (`OFFERSYNC_BENCH_PG`,
/// else `OFFERSYNC_TEST_PG`, else the local one), with the admin connection
/// that drops it at the end.
pub struct BenchDatabase {
    pub name: String,
    pub url: String,
    pub admin: diesel::PgConnection,
}

impl BenchDatabase {
    pub fn create(purpose: &str) -> Self {
        use diesel::{Connection, RunQueryDsl};
        let admin_url = std::env::var("OFFERSYNC_BENCH_PG")
            .or_else(|_| std::env::var("OFFERSYNC_TEST_PG"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let name = format!("offersync_bench_{purpose}_{}", std::process::id());
        let mut admin = diesel::PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("creates the bench database");
        let url = format!(
            "{}/{name}",
            admin_url.rsplit_once('/').expect("a database").0
        );
        BenchDatabase { name, url, admin }
    }
}
