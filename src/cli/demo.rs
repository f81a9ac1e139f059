//! `offersync demo`: a real sync of the bundled demo integration, end to end.

use std::path::Path;
use std::process::ExitCode;

use crate::campaign::PayoutKind;
use crate::demo;
use crate::manifest;
use crate::store::{RunId, Trigger};
use crate::sync;

use super::runs::{load_integration_with, open_store, print_report, print_runs, print_skips};

const INTEGRATION: &str = "demo-everflow";

/// Serves `dir/api/everflow` on 127.0.0.1, syncs `dir/integrations.d` from
/// it into the store at `url`, and shows what happened.
pub fn demo(dir: &Path, url: &str) -> ExitCode {
    let mut store = match open_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = super::runs::runtime();
    let api = match runtime.block_on(demo::serve(&dir.join("api/everflow"))) {
        Ok(api) => api,
        Err(e) => {
            errln!("error: {e}\n  hint: run the demo from the repository root, or pass --dir");
            return ExitCode::from(2);
        }
    };
    let env = |name: &str| match name {
        "OFFERSYNC_DEMO_API" => Some(api.base_url.clone()),
        "OFFERSYNC_DEMO_API_KEY" => Some(demo::API_KEY.to_string()),
        other => manifest::process_env(other),
    };
    let manifests = dir.join("integrations.d");
    let def = match load_integration_with(&manifests, INTEGRATION, &env) {
        Ok(def) => def,
        Err(code) => return code,
    };
    outln!(
        "offersync demo: the Everflow network API is played by {} ({} saved pages from {}),",
        api.base_url,
        api.pages,
        dir.join("api/everflow").display()
    );
    outln!(
        "the integration is {}, the store {url}.\n",
        def.source_file.display()
    );

    let (returned, report) = runtime.block_on(sync::run(def, store, Trigger::Cli));
    store = returned;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    print_report(&report);

    let shown = (|| {
        let campaigns = store.campaigns(INTEGRATION)?;
        outln!("\ncampaigns in the store:");
        outln!(
            "  {:<6} {:<48} {:<7} {:>8} {:>8}  COUNTRIES",
            "OFFER",
            "NAME",
            "STATUS",
            "REVENUE",
            "PAYOUT"
        );
        for c in &campaigns {
            let money = |d: Option<rust_decimal::Decimal>, kind: &str| {
                d.map(|d| PayoutKind::from_stored(kind).shown(d))
                    .unwrap_or_default()
            };
            let countries = c
                .countries
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "worldwide".into());
            outln!(
                "  {:<6} {:<48} {:<7} {:>8} {:>8}  {countries}",
                c.external_id,
                truncate(&c.name, 48),
                c.status,
                money(c.revenue, &c.payout_kind),
                money(c.payout, &c.payout_kind)
            );
        }
        if let Some(run) = report.run {
            let skips = store.run_skips(RunId(run.0))?;
            if !skips.is_empty() {
                outln!("\noffers skipped by this run, and why:");
                print_skips(&skips);
            }
        }
        outln!("\nrun log (offersync runs {INTEGRATION} --database-url {url}):");
        print_runs(&store.recent_runs(INTEGRATION, 5)?);
        Ok::<_, crate::store::StoreError>(())
    })();
    if let Err(e) = shown {
        errln!("error: {e}");
        return ExitCode::from(1);
    }
    outln!(
        "\nRun the demo again: the second run finds every offer unchanged and writes nothing.\n\
         A run's skipped offers: offersync runs show RUN --database-url {url}\n\
         Next: the Quick start in README.md (copy {}, point it at your network, validate, plan, sync).",
        manifests.join("demo-everflow.yaml").display()
    );
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(width - 1).collect();
        short.push('…');
        short
    }
}
