//! `offersync demo`: a real sync of the bundled demo integration, end to end,
//! and `offersync demo --serve`: the demo network API kept running for the
//! Quick start's own commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::campaign::PayoutKind;
use crate::demo::{self, Responses};
use crate::manifest::{self, IntegrationDef};
use crate::store::{self, RunId, Trigger};
use crate::sync;

use super::runs::{load_integration_with, open_store, print_report_with, print_runs, print_skips};

const INTEGRATION: &str = "demo-everflow";

/// What `offersync demo` was asked to do.
pub struct DemoArgs<'a> {
    /// A demo directory to read instead of the copy in the binary.
    pub dir: Option<&'a Path>,
    pub database_url: &'a str,
    /// Keep serving the demo API (on `listen`) instead of syncing from it.
    pub serve: bool,
    pub listen: Option<SocketAddr>,
    /// Print the demo Integration and stop.
    pub manifest: bool,
}

pub fn demo(args: DemoArgs<'_>) -> ExitCode {
    if args.manifest {
        return match args.dir {
            None => {
                outln!("{}", demo::INTEGRATION_YAML.trim_end());
                ExitCode::SUCCESS
            }
            Some(dir) => {
                let file = dir.join("integrations.d").join(demo::INTEGRATION_FILE);
                match std::fs::read_to_string(&file) {
                    Ok(text) => {
                        outln!("{}", text.trim_end());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        errln!("error: cannot read {}: {e}", file.display());
                        ExitCode::from(2)
                    }
                }
            }
        };
    }
    let api_dir = args.dir.map(|d| d.join("api/everflow"));
    let responses = match &api_dir {
        Some(dir) => Responses::Dir(dir),
        None => Responses::Embedded,
    };
    if args.serve {
        return serve(responses, args.listen);
    }
    sync_demo(args.dir, responses, args.database_url)
}

/// `offersync demo --serve`: the demo API on loopback until Ctrl-C or SIGTERM.
fn serve(responses: Responses<'_>, listen: Option<SocketAddr>) -> ExitCode {
    let addr =
        listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], demo::DEFAULT_SERVE_PORT)));
    let runtime = super::runs::runtime();
    runtime.block_on(async {
        let api = match demo::serve(responses, addr).await {
            Ok(api) => api,
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        outln!(
            "offersync demo --serve: the demo Everflow API is listening on {} ({} offers); Ctrl-C stops it.\n",
            api.base_url,
            api.offers.len()
        );
        outln!(
            "In an Integration (network: everflow), point it here:\n\
             \x20 params:\n\
             \x20   api_key: ${{env:ACME_API_KEY}}     # export ACME_API_KEY={}\n\
             \x20   base_url: {}\n",
            demo::API_KEY,
            api.base_url
        );
        outln!(
            "Or run the demo integration itself against it:\n\
             \x20 offersync demo --manifest > integrations.d/demo-everflow.yaml\n\
             \x20 export OFFERSYNC_DEMO_API={} OFFERSYNC_DEMO_API_KEY={}\n\
             \x20 offersync fetch demo-everflow; offersync plan demo-everflow; offersync sync demo-everflow",
            api.base_url,
            demo::API_KEY
        );
        wait_for_stop().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Serves the demo responses on 127.0.0.1, syncs the demo integration from
/// them into the store at `url`, and shows what happened. The store is
/// opened (and, for SQLite, created) only once the API and the manifest are
/// known to work.
fn sync_demo(dir: Option<&Path>, responses: Responses<'_>, url: &str) -> ExitCode {
    let runtime = super::runs::runtime();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let api = match runtime.block_on(demo::serve(responses, loopback)) {
        Ok(api) => api,
        Err(e) => {
            errln!(
                "error: {e}\n  hint: `offersync demo` without --dir uses the responses built into the binary"
            );
            return ExitCode::from(2);
        }
    };
    let env = |name: &str| match name {
        "OFFERSYNC_DEMO_API" => Some(api.base_url.clone()),
        "OFFERSYNC_DEMO_API_KEY" => Some(demo::API_KEY.to_string()),
        other => manifest::process_env(other),
    };
    let def = match dir {
        Some(dir) => match load_integration_with(&dir.join("integrations.d"), INTEGRATION, &env) {
            Ok(def) => def,
            Err(code) => return code,
        },
        None => {
            let sources = [(
                PathBuf::from(demo::INTEGRATION_FILE),
                demo::INTEGRATION_YAML.to_string(),
            )];
            let mut loaded = manifest::load_texts(&sources, &env);
            match loaded.catalog.integrations.remove(INTEGRATION) {
                Some(def) => std::sync::Arc::new(def),
                None => {
                    // Only a broken build gets here: tests load this file.
                    for d in &loaded.diagnostics {
                        errln!("{d}");
                    }
                    return ExitCode::from(2);
                }
            }
        }
    };
    let mut store = match open_store(url) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let from = match dir {
        Some(dir) => dir.join("api/everflow").display().to_string(),
        None => "the binary".to_string(),
    };
    outln!(
        "offersync demo: the Everflow network API is played by {} ({} saved pages from {from}),",
        api.base_url,
        api.pages,
    );
    let manifest_shown = match dir {
        Some(_) => def.source_file.display().to_string(),
        None => format!(
            "{} (built in; `offersync demo --manifest` prints it)",
            demo::INTEGRATION_FILE
        ),
    };
    outln!("the integration is {manifest_shown}, the store {url}.\n");

    // The demo's store is not the commands' default one: every command
    // printed here names it.
    let store_arg = if url == store::DEFAULT_URL {
        String::new()
    } else {
        format!(" --database-url {url}")
    };
    let (returned, report) = runtime.block_on(sync::run(def.clone(), store, Trigger::Cli));
    store = returned;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    print_report_with(&report, &store_arg);

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
        let mut notes = Vec::new();
        for c in &campaigns {
            let money = |d: Option<rust_decimal::Decimal>, kind: &str| {
                d.map(|d| PayoutKind::from_stored(kind).shown(d))
                    .unwrap_or_default()
            };
            let targeted: Vec<String> = c
                .countries
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let countries = if targeted.is_empty() {
                "worldwide".to_string()
            } else {
                targeted.join(",")
            };
            outln!(
                "  {:<6} {:<48} {:<7} {:>8} {:>8}  {countries}",
                c.external_id,
                truncate(&c.name, 48),
                c.status,
                money(c.revenue, &c.payout_kind),
                money(c.payout, &c.payout_kind)
            );
            if let Some(note) = countries_note(&def, &api.offers, &c.external_id, &targeted) {
                notes.push(format!("  {:<6} {note}", c.external_id));
            }
        }
        if !notes.is_empty() {
            outln!(
                "\nwhy these countries (filters.countries narrows each offer's own list; mode: narrow):"
            );
            for note in notes {
                outln!("{note}");
            }
        }
        if let Some(run) = report.run {
            let skips = store.run_skips(RunId(run.0))?;
            if !skips.is_empty() {
                outln!("\noffers skipped by this run, and why:");
                print_skips(&skips);
            }
        }
        outln!("\nrun log (offersync runs {INTEGRATION}{store_arg}):");
        print_runs(&store.recent_runs(INTEGRATION, 5)?);
        Ok::<_, crate::store::StoreError>(())
    })();
    if let Err(e) = shown {
        errln!("error: {e}");
        return ExitCode::from(1);
    }
    let run = report
        .run
        .map(|r| r.to_string())
        .unwrap_or_else(|| "RUN".into());
    outln!(
        "\nRun the demo again: the second run finds every offer unchanged and writes nothing.\n\
         This run's skipped offers: offersync runs show {run}{store_arg}\n\
         Its campaigns: offersync campaigns {INTEGRATION}{store_arg}\n\
         Next: the Quick start in README.md; `offersync demo --serve` keeps this API running for it."
    );
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Why a campaign targets the countries it does, where that is not simply
/// the offer's own list: which countries the offer names and blocks
/// upstream, and which the Integration's lists dropped.
fn countries_note(
    def: &IntegrationDef,
    offers: &[serde_json::Value],
    external_id: &str,
    targeted: &[String],
) -> Option<String> {
    let record = offers.iter().find(|o| {
        o.get("network_offer_id")
            .map(|id| id.to_string().trim_matches('"') == external_id)
            .unwrap_or(false)
    })?;
    let params = sync::field_params(def);
    let offer = def
        .network
        .mapping
        .map_record_using(0, None, record, &params)
        .ok()?;
    if offer.countries == targeted && offer.blocked_countries.is_empty() {
        return None;
    }
    let filters = &def.filters;
    let own = if offer.countries.is_empty() {
        "the offer is worldwide upstream".to_string()
    } else {
        format!("the offer targets {}", offer.countries.join(","))
    };
    let blocks = if offer.blocked_countries.is_empty() {
        String::new()
    } else {
        format!(" and blocks {} upstream", offer.blocked_countries.join(","))
    };
    let dropped = |why: &dyn Fn(&String) -> bool| -> Vec<&str> {
        offer
            .countries
            .iter()
            .filter(|c| !targeted.contains(c) && why(c))
            .map(String::as_str)
            .collect()
    };
    let not_allowed =
        dropped(&|c| !filters.allow_countries.is_empty() && !filters.allow_countries.contains(c));
    let in_block = dropped(&|c| filters.block_countries.contains(c));
    let mut why = String::new();
    if offer.countries.is_empty() && !filters.allow_countries.is_empty() {
        why = format!(
            "; filters.countries.allow narrows it to {}",
            targeted.join(",")
        );
    }
    if !not_allowed.is_empty() {
        why.push_str(&format!(
            "; {} not in filters.countries.allow",
            not_allowed.join(",")
        ));
    }
    if !in_block.is_empty() {
        why.push_str(&format!(
            "; {} in filters.countries.block",
            in_block.join(",")
        ));
    }
    let result = if targeted.is_empty() {
        "worldwide".to_string()
    } else {
        targeted.join(",")
    };
    let never = if offer.blocked_countries.is_empty() {
        String::new()
    } else {
        format!(", never {}", offer.blocked_countries.join(","))
    };
    Some(format!(
        "{own}{blocks}{why}: the campaign targets {result}{never}"
    ))
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
