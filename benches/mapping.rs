//! Mapping throughput: a generated 100k-offer Everflow-shaped response (31
//! fields per offer, nested), mapped with the 15 fields of
//! `benches/everflow-15-fields.yaml` and with the full built-in `everflow`
//! network. Each stage is timed on its own, on one thread; then the whole
//! `map_page` on one and two threads.
//!
//! Run: `cargo bench --bench mapping` (optional argument: offer count).

#![recursion_limit = "256"]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

mod common;

use common::{best_of_3, generate};
use offersync::manifest;
use offersync::mapping::{Mapping, split};
use serde_json::Value;

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
    let line = |what: &str, secs: f64| {
        println!(
            "  {what:<38} {secs:>7.3} s  {:>9.0} offers/s",
            count as f64 / secs
        );
    };

    let split_only = best_of_3(|| {
        let page = split::split(text, &container).unwrap();
        black_box(page.records.unwrap().len());
    });
    let page = split::split(text, &container).unwrap();
    let raws = page.records.unwrap();
    let parse_whole = best_of_3(|| {
        for (_, r) in &raws {
            black_box(serde_json::from_str::<Value>(r.get()).unwrap());
        }
    });
    let parse_shaped = |mapping: &Mapping| {
        best_of_3(|| {
            for (_, r) in &raws {
                black_box(mapping.parse_record(r.get()).unwrap());
            }
        })
    };
    // Mapping alone: each record is parsed (untimed), then mapped (timed)
    // while its tree is in cache, and the offer dropped, as a sync does.
    let map_only = |mapping: &Mapping| {
        let mut best = f64::MAX;
        for round in 0..4 {
            let mut mapping_time = Duration::ZERO;
            for (i, (_, r)) in raws.iter().enumerate() {
                let record: Value = mapping.parse_record(r.get()).unwrap();
                let started = Instant::now();
                let offer = black_box(mapping.map_record(i, None, &record));
                mapping_time += started.elapsed();
                assert!(offer.is_ok());
            }
            if round > 0 {
                best = best.min(mapping_time.as_secs_f64());
            }
        }
        best
    };
    let bench_parse = parse_shaped(&bench_network.mapping);
    let bench_map = map_only(&bench_network.mapping);
    let full_map = map_only(&full_network.mapping);
    line("split page into records", split_only);
    line("parse records, whole", parse_whole);
    line("parse records, shaped for 15 fields", bench_parse);
    line("map, 15 fields", bench_map);
    line("map, built-in everflow (18 + caps)", full_map);
    line(
        "split + parse + map, 15 fields",
        split_only + bench_parse + bench_map,
    );
    for threads in [1, 2] {
        let end_to_end = best_of_3(|| {
            let mapped = black_box(bench_network.mapping.map_page_with(&body, threads).unwrap());
            assert_eq!(mapped.offers.len(), count);
        });
        let plural = if threads > 1 { "s" } else { "" };
        line(
            &format!("map_page, 15 fields, {threads} thread{plural}"),
            end_to_end,
        );
    }
}
