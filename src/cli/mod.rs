//! The `offersync` command line: parsing, exit codes and rendering.
//!
//! This module turns library results into what people read (text, tables,
//! JSON lines) and into exit codes. It holds no logic of its own beyond
//! choosing what to call; every decision lives in the library modules.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

/// `println!` for the command line: every line goes out with its control
/// characters escaped (the layout's own line breaks and tabs kept), so text
/// that came from a network can neither repaint the terminal nor fake a line
/// of output. Upstream values printed inside a line are escaped whole with
/// [`crate::fetch::escape_controls`] where they are formatted.
macro_rules! outln {
    () => { $crate::cli::write_line(false, "") };
    ($($arg:tt)*) => { $crate::cli::write_line(false, &format!($($arg)*)) };
}

/// `eprintln!` with the same escaping as [`outln!`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::write_line(true, &format!($($arg)*)) };
}

pub mod catalogue;
mod demo;
pub mod explain;
mod json_log;
mod runs;
pub mod scaffold;
pub mod testing;

/// Writes one line of output (see [`outln!`]). A closed stdout ends the
/// process through SIGPIPE (restored in [`main`]), as for any Unix filter.
pub(crate) fn write_line(stderr: bool, text: &str) {
    let text = crate::fetch::escape_controls_keep_lines(text);
    let _ = if stderr {
        writeln!(std::io::stderr().lock(), "{text}")
    } else {
        writeln!(std::io::stdout().lock(), "{text}")
    };
}

/// Restores the default SIGPIPE action, which Rust's runtime ignores: then
/// `offersync sync NAME | head -3` ends quietly when `head` has read enough,
/// instead of panicking on the closed pipe. (The daemon keeps ignoring it: a
/// closed log pipe must not stop it.)
fn end_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default at start, before
    // any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

use crate::fetch::{escape_controls, escape_controls_json};
use crate::manifest::{self, Diagnostic, NetworkDef};
use crate::mapping::program::did_you_mean;
use crate::mapping::{MappedPage, RecordProblem};
use crate::offer::Offer;
use crate::store;

/// Imports advertiser offers from affiliate network APIs, driven by YAML manifests.
#[derive(Debug, Parser)]
#[command(name = "offersync", version = crate::VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A folder secret files (`${file:PATH}`) may be read from, besides the
    /// `secrets/` folder beside each manifest and $CREDENTIALS_DIRECTORY;
    /// repeat for more ($OFFERSYNC_SECRET_ROOTS adds more, `:`-separated).
    /// Symlinks are resolved first; /proc, /sys and /dev are never read.
    #[arg(long = "secret-root", value_name = "DIR", global = true)]
    secret_roots: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every manifest in a directory (the check to run in git CI).
    ///
    /// Reports every problem with file:line:column, the field, and what was
    /// expected. In CI, use --offline: secret references are checked for
    /// their form only, so CI needs no keys. Without it, every
    /// `${env:...}`, `${file:...}` and `${credential:...}` is also read, as
    /// the daemon will: run that on the machine that runs the daemon; there,
    /// with a store (DATABASE_URL, or ./offersync.db when it exists), an
    /// integration the store holds as deleted is an error too (its manifest
    /// would not bring it back). Exit status: 0 valid (warnings allowed),
    /// 1 invalid, 2 the directory cannot be read.
    Validate {
        /// The manifest directory.
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
        /// Check secret references for their form only; read no environment
        /// variable, secret file or credential, and no store (for CI, which
        /// has no secrets).
        #[arg(long)]
        offline: bool,
        /// The store to check for deleted integrations (without --offline):
        /// postgres://… or sqlite://PATH (default: ./offersync.db if it exists).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Run a Network mapping over saved API responses and print the offers.
    ///
    /// The mapping author's loop: offers go to stdout, every record that could
    /// not be mapped goes to stderr with its reason, then a summary line.
    /// Per-offer requests (`enrich`) are not made: the responses the
    /// Network's `tests:` save for them (`per_offer`) are read instead, by
    /// offer id. Exit status: 0 every record
    /// mapped, 1 some records had problems, 2 the network or a sample could
    /// not be read.
    Map {
        /// A network name (built-in or in --dir) or a path to a Network file.
        #[arg(long)]
        network: String,
        /// A saved response (JSON or XML, as the network sends it); repeat for pages.
        #[arg(long, required = true)]
        sample: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OfferFormat::Table)]
        format: OfferFormat,
        /// The manifest directory (for networks defined there).
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
        /// A param value for field templates (`{{ params.NAME }}`), as
        /// NAME=VALUE; repeat for more. Params' defaults apply without it.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Run the bundled demo: a real sync, over HTTP on 127.0.0.1, of the demo
    /// integration from saved Everflow responses into an SQLite file; or,
    /// with --serve, keep the demo network API running for your own commands.
    ///
    /// Needs no database server and no network, and runs from any directory
    /// (the responses and the integration are built into the binary). Writes
    /// only the store file (default `offersync-demo.db` in the working
    /// directory). Run it twice: the second run finds everything unchanged.
    Demo {
        /// A demo directory to read instead of the built-in copy:
        /// `integrations.d/demo-everflow.yaml` and `api/everflow/page*.json`.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The store to sync into.
        #[arg(long, default_value = "sqlite://offersync-demo.db")]
        database_url: String,
        /// Keep serving the demo Everflow API on loopback (until Ctrl-C), for
        /// the Quick start's fetch, plan, sync and daemon steps without an account.
        #[arg(long, conflicts_with = "manifest")]
        serve: bool,
        /// Where --serve listens: a port or 127.0.0.1:PORT (loopback only).
        #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_metrics_addr, requires = "serve")]
        listen: Option<std::net::SocketAddr>,
        /// Print the demo Integration manifest (to copy it) and stop.
        #[arg(long)]
        manifest: bool,
    },
    /// Open the mapping studio: a local web app to write a Network file while
    /// seeing what its samples map to.
    ///
    /// Lists the directory's Networks and Integrations; "new network" starts
    /// from a pasted sample. The editor shows problems at their lines (the
    /// words of `validate`), the offers of a sample as a table, an offer's
    /// `explain` trace, the file's `tests:`; locks the current offers as a
    /// test, reads the live API through an Integration (secrets stay on the
    /// server), and saves the file into the directory after showing the
    /// diff. It prints the URL to open. A --listen address beyond loopback
    /// gets a token, printed in the URL; requests without it are refused.
    Studio {
        /// The manifest directory.
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
        /// Where to listen; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Run every integration of the directory on its schedule, as a service, with a status page, metrics and health checks (--listen).
    ///
    /// Watches the directory (a changed file is applied within a second; a
    /// file that stops validating keeps its last good spec), runs new and
    /// changed integrations at once, retries failed runs with backoff,
    /// answers `offersync refresh`, and speaks systemd's notify protocol
    /// (READY, RELOADING on SIGHUP, WATCHDOG, STOPPING). SIGTERM stops
    /// scheduling and waits for runs in flight up to --grace-seconds.
    Daemon {
        /// The manifest directory.
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
        /// The store: postgres://USER@HOST:PORT/DB, or sqlite://PATH (a file,
        /// created if missing, in a directory that exists; relative to the
        /// working directory).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = store::DEFAULT_URL)]
        database_url: String,
        /// Runs at once, across all integrations.
        #[arg(long, default_value_t = 4)]
        max_concurrent_runs: usize,
        /// How long SIGTERM waits for runs in flight before abandoning them
        /// (an abandoned run keeps nothing).
        #[arg(long, default_value_t = 60)]
        grace_seconds: u64,
        /// The periodic rescan of the directory, besides file events.
        #[arg(long, default_value_t = 60)]
        rescan_seconds: u64,
        /// Daemons sharing a database renew their claims on ticks and refresh
        /// requests four times in this time; the claims of a daemon that died
        /// are taken over by another within this time of its last renewal.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(4..))]
        claim_timeout_seconds: u64,
        /// An integration whose manifest is deleted stops at once, and is
        /// retired (its campaigns get the removal action) once the manifest
        /// has stayed gone this long: a deploy that briefly empties the
        /// directory pauses nothing.
        #[arg(long, default_value_t = 30)]
        removal_delay_seconds: u64,
        /// How long the change feed (`offersync changes`) keeps an entry;
        /// older ones are deleted hourly. A reader that stays away longer
        /// must rescan the campaigns.
        #[arg(long, default_value_t = crate::store::feed::DEFAULT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
        changes_retention_days: u32,
        /// Log lines: human text, or one JSON object per line.
        // `--format` was accepted here (from the store commands' options)
        // and did nothing; units that pass it get what they meant.
        #[arg(long, alias = "format", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Serve Prometheus metrics at /metrics, liveness at /healthz,
        /// readiness at /readyz and the status page at /: a port (bound to
        /// 127.0.0.1) or ADDRESS:PORT. `--metrics-addr` is its former name.
        // Named for what it serves (the page first); the old name stays
        // for units and scripts written against it.
        #[arg(long = "listen", visible_alias = "metrics-addr", value_name = "[ADDR:]PORT", value_parser = parse_metrics_addr)]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Ask the daemon to run an integration now (from any host that reaches the store).
    ///
    /// Records a refresh request in the store and waits until a daemon takes
    /// it (daemons look every second). With --wait, also waits for the run
    /// and prints its outcome: the run that answered the request, its own
    /// ("ran as run 13") or one of another process that started after it
    /// ("coalesced into run 12"). Exit status: 0 a daemon took the request (with
    /// --wait: the run succeeded; with --queue-only: the request is
    /// recorded), 1 no daemon took it within 15 s (it stays queued for the
    /// next daemon) or the run failed, 2 the store or the integration is
    /// unknown.
    Refresh {
        /// The Integration's `metadata.name`.
        name: String,
        #[command(flatten)]
        common: StoreArgs,
        /// Wait for the run (at most this many seconds).
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "600")]
        wait: Option<u64>,
        /// Only record the request, for a daemon that is not running yet;
        /// do not wait for one to take it.
        #[arg(long, conflicts_with = "wait")]
        queue_only: bool,
    },
    /// Run one integration now: fetch, map, filter, and reconcile into the store.
    ///
    /// All or nothing: a run that fails (a page that cannot be fetched, a
    /// suspected upstream outage) changes no campaign and is logged as
    /// failed. Exit status: 0 succeeded, 1 the run failed, 2 it could not
    /// start (invalid manifest, database unreachable, another run in progress).
    Sync {
        /// The Integration's `metadata.name`.
        name: String,
        #[command(flatten)]
        common: StoreArgs,
        /// The offers really are gone: apply this run's removals even where the
        /// removal guard (safety.max_removed_share, against the last run or the
        /// most campaigns live in safety.shrink_window_days) would refuse them.
        /// Later runs measure shrinkage from this run on.
        #[arg(long)]
        accept_removals: bool,
        /// Run it even though the manifest says `enabled: false` (a deliberate one-off).
        #[arg(long)]
        force: bool,
    },
    /// Fetch, map and filter every page of an integration's API, without a database.
    ///
    /// Checks credentials, pagination and mapping against the live API.
    /// Exit status: 0 fetched, 1 the fetch failed, 2 the manifest is invalid.
    Fetch {
        /// The Integration's `metadata.name`.
        name: String,
        /// The manifest directory.
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Show what a run would change, writing nothing.
    ///
    /// Exit status: 0 the plan was made, 1 error (the API or the store
    /// could not be read, or a run now would fail). With
    /// --detailed-exitcode, as `terraform plan -detailed-exitcode`: 0
    /// nothing would change, 1 error, 2 changes are pending.
    Plan {
        /// The Integration's `metadata.name`.
        name: String,
        #[command(flatten)]
        common: StoreArgs,
        /// Exit 2 when changes are pending (0 only when nothing would change),
        /// for CI to gate on.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Recent runs of an integration with their counts, or one run's skips.
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        #[command(subcommand)]
        action: Option<RunsAction>,
        /// The Integration's `metadata.name`.
        name: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        common: StoreArgs,
    },
    /// The campaigns stored for an integration: id, name, status, revenue,
    /// payout, currency and when each last changed.
    Campaigns {
        /// The Integration's `metadata.name`.
        name: String,
        /// Only these statuses (repeat for more), e.g. active, paused.
        #[arg(long)]
        status: Vec<String>,
        #[command(flatten)]
        common: StoreArgs,
    },
    /// The change feed: what applied runs changed, oldest first, from a
    /// position on. A reader keeps the last position it saw and asks for
    /// `--since` it next time; on Postgres, `LISTEN offersync_changes` tells
    /// when there is more. Entries are kept 30 days (the daemon's
    /// `--changes-retention-days`).
    Changes {
        /// Only changes after this position.
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// Only this integration's changes.
        #[arg(long)]
        integration: Option<String>,
        /// At most this many (read on with `--since` the last position).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[command(flatten)]
        common: StoreArgs,
    },
    /// Bring back an integration that was deleted (its manifest removed and
    /// the integration retired).
    ///
    /// Delete is final: putting a deleted integration's manifest back does
    /// not reactivate it (`sync`, `plan`, `validate` and the daemon refuse
    /// it). This sets it `active` again, or `disabled` when its manifest in
    /// --dir says `enabled: false`; its campaigns come back on its next run,
    /// as their offers are seen again. To start afresh instead, give the
    /// manifest a new `metadata.name`. Exit status: 0 undeleted, 1 it is not
    /// deleted, 2 the store knows no such integration or cannot be read.
    Undelete {
        /// The Integration's `metadata.name`.
        name: String,
        #[command(flatten)]
        common: StoreArgs,
    },
    /// Every integration in the store (disabled and deleted ones too): its
    /// health (enabled, disabled, deleted) apart from its sync state (in
    /// sync; failing since when, how many runs in a row; never succeeded),
    /// the revision that runs (the git commit its applied spec came from,
    /// or the spec's hash), the last run and its counts, and the last
    /// error with its kind and what to check.
    Status {
        #[command(flatten)]
        common: StoreArgs,
    },
    /// One offer through the whole pipeline, from the live API or saved responses.
    ///
    /// Shows the raw record; each mapped field with the rule that produced it
    /// (and a `first_of`'s alternatives that gave nothing); each filter's
    /// verdict; the payout arithmetic; and, with a store, what a sync would
    /// do to its campaign (create, update with old → new per column,
    /// unchanged, restore) and which changes the update policy holds back.
    /// The store is the one every command uses (--database-url or
    /// DATABASE_URL, else ./offersync.db when it exists). Writes nothing. Exit status: 0 explained, 1 no such offer, 2 a file
    /// or the API could not be read.
    Explain {
        /// The Integration.
        name: String,
        /// The offer's id as the network sends it.
        #[arg(long)]
        offer: String,
        /// Saved responses to read instead of the live API; repeat for pages.
        #[arg(long)]
        sample: Vec<PathBuf>,
        /// The manifest directory.
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
        /// The store whose campaign to compare with: postgres://… or
        /// sqlite://PATH (default, as for every command: ./offersync.db,
        /// when it exists; else no comparison).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OfferFormat::Table)]
        format: OfferFormat,
    },
    /// Propose a Network file from one saved response (JSON or XML).
    ///
    /// Finds the records and guesses the path of each offer field from key
    /// names and value shapes; marks with TODO what it is unsure of (and
    /// the request, auth and paging, which a response cannot show); adds a
    /// `tests:` entry over the sample. Then `map` and `test` show the result.
    Scaffold {
        /// A saved response of the network's offer list.
        #[arg(long)]
        sample: PathBuf,
        /// The network's name (lower case, digits, `-`).
        #[arg(long, default_value = "mynetwork")]
        name: String,
        /// Where to write the file (default NAME.yaml here); never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The largest sample read, in bytes (default 64 MiB): scaffold holds
        /// the whole response in memory, and one page is enough.
        #[arg(long, value_name = "BYTES", default_value_t = scaffold::DEFAULT_MAX_SAMPLE_BYTES)]
        max_sample_bytes: u64,
    },
    /// Run the `tests:` of Network files offline, over their saved responses.
    ///
    /// Prints each failed expectation with the offer, field, expected and
    /// actual value and the path that produced it, and each field whose path
    /// selects nothing in any record (with the nearest paths that exist).
    /// Without names, runs the tests of every network file in --dir. Exit
    /// status: 0 all pass, 1 a test failed, 2 a file could not be read.
    Test {
        /// Networks to test (default: every network file in --dir with tests).
        networks: Vec<String>,
        /// The manifest directory.
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
    },
    /// List the networks built into offersync: their auth and paging, or
    /// (`--format markdown`) the whole catalogue of docs/networks.md.
    Networks {
        /// Output format.
        #[arg(long, value_enum, default_value_t = CatalogueFormat::Table)]
        format: CatalogueFormat,
    },
    /// Print or write the JSON Schemas of the manifest kinds, for editors.
    ///
    /// `offersync schema --out integrations.d/.schemas` puts them where the
    /// `# yaml-language-server: $schema=.schemas/...` line of every shipped
    /// manifest looks, in any manifest directory. Without --out, prints one
    /// schema (--kind) or a JSON object of both, by file name.
    Schema {
        /// Write `network.schema.json` and `integration.schema.json` into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print only this kind's schema.
        #[arg(long, value_enum, conflicts_with = "out")]
        kind: Option<SchemaKind>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// e.g. `offersync completions bash > /etc/bash_completion.d/offersync`.
    /// The Debian package installs them.
    Completions { shell: clap_complete::Shell },
    /// The integration names a directory defines, one a line: what the
    /// bash completion offers after a command that takes NAME.
    #[command(name = "__complete-integrations", hide = true)]
    CompleteIntegrations {
        #[arg(long, default_value = "integrations.d")]
        dir: PathBuf,
    },
    /// Print the manual page (roff), or write one per command into a directory.
    Man {
        /// Write `offersync.1` and `offersync-COMMAND.1` into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SchemaKind {
    Integration,
    Network,
}

#[derive(Debug, Subcommand)]
enum RunsAction {
    /// One run: its counts, error, and every skipped offer with its reason.
    Show {
        run_id: i64,
        #[command(flatten)]
        common: StoreArgs,
    },
}

/// Where the store is and how to print.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The manifest directory.
    #[arg(long, default_value = "integrations.d")]
    dir: PathBuf,
    /// The store: postgres://USER@HOST:PORT/DB, or sqlite://PATH (a file,
    /// created if missing, in a directory that exists; relative to the
    /// working directory, or sqlite:///ABSOLUTE/PATH).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = store::DEFAULT_URL)]
    database_url: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// Output of the store commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    /// JSON (one object per line for lists).
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DiagnosticFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CatalogueFormat {
    /// A table of names, auth and paging.
    Table,
    /// The catalogue page (docs/networks.md).
    Markdown,
    /// One JSON object per network and line: name, title, auth, paging.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OfferFormat {
    /// One JSON object per line.
    Json,
    /// An aligned table for reading.
    Table,
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    manifest::secret::set_operator_roots(cli.secret_roots);
    if !matches!(cli.command, Command::Daemon { .. }) {
        end_quietly_on_closed_pipe();
        init_tracing();
    }
    match cli.command {
        Command::Validate {
            dir,
            offline,
            database_url,
            format,
        } => validate(&dir, offline, database_url.as_deref(), format),
        Command::Map {
            network,
            sample,
            format,
            dir,
            params,
        } => map(&network, &sample, format, &dir, &params),
        Command::Schema { out, kind } => schema(out.as_deref(), kind),
        Command::Test { networks, dir } => testing::command(&dir, &networks),
        Command::Explain {
            name,
            offer,
            sample,
            dir,
            database_url,
            format,
        } => explain::command(
            &name,
            &offer,
            &sample,
            &dir,
            explain_store(database_url).as_deref(),
            matches!(format, OfferFormat::Json),
        ),
        Command::Scaffold {
            sample,
            name,
            out,
            max_sample_bytes,
        } => scaffold::command(&sample, &name, out.as_deref(), max_sample_bytes),
        Command::Networks { format } => {
            let text = match format {
                CatalogueFormat::Table => catalogue::table(),
                CatalogueFormat::Markdown => catalogue::markdown(),
                CatalogueFormat::Json => catalogue::json_lines(),
            };
            outln!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "offersync", &mut std::io::stdout());
            if shell == clap_complete::Shell::Bash {
                outln!("{}", bash_complete_names(&command).trim_end());
            }
            ExitCode::SUCCESS
        }
        Command::CompleteIntegrations { dir } => {
            // Invalid documents are skipped: completion offers what would run.
            let loaded = manifest::load_dir(&dir, &manifest::process_env);
            for name in loaded.catalog.integrations.keys() {
                outln!("{name}");
            }
            ExitCode::SUCCESS
        }
        Command::Man { out } => man(out.as_deref()),
        Command::Sync {
            name,
            common,
            accept_removals,
            force,
        } => runs::sync(
            &name,
            &common.dir,
            &common.database_url,
            common.format,
            runs::SyncFlags {
                accept_removals,
                force,
            },
        ),
        Command::Plan {
            name,
            common,
            detailed_exitcode,
        } => runs::plan(
            &name,
            &common.dir,
            &common.database_url,
            common.format,
            detailed_exitcode,
        ),
        Command::Runs {
            action: Some(RunsAction::Show { run_id, common }),
            ..
        } => runs::show_run(run_id, &common.database_url, common.format),
        Command::Runs {
            action: None,
            name: Some(name),
            limit,
            common,
        } => runs::runs(
            &name,
            limit,
            &common.dir,
            &common.database_url,
            common.format,
        ),
        Command::Runs { name: None, .. } => {
            errln!(
                "error: name an integration (`offersync runs NAME`) or a run (`offersync runs show RUN_ID`)"
            );
            ExitCode::from(2)
        }
        Command::Fetch { name, dir, format } => runs::fetch(&name, &dir, format),
        Command::Demo {
            dir,
            database_url,
            serve,
            listen,
            manifest,
        } => demo::demo(demo::DemoArgs {
            dir: dir.as_deref(),
            database_url: &database_url,
            serve,
            listen,
            manifest,
        }),
        Command::Studio { dir, listen } => crate::studio::command(&dir, listen),
        Command::Daemon {
            dir,
            database_url,
            max_concurrent_runs,
            grace_seconds,
            rescan_seconds,
            claim_timeout_seconds,
            removal_delay_seconds,
            changes_retention_days,
            log_format,
            metrics_addr,
        } => {
            init_daemon_tracing(log_format);
            let options = crate::daemon::Options {
                dir,
                database_url,
                max_concurrent_runs,
                grace: std::time::Duration::from_secs(grace_seconds),
                rescan_every: std::time::Duration::from_secs(rescan_seconds.max(1)),
                identity: format!("{}:{}", hostname(), std::process::id()),
                claim_timeout: std::time::Duration::from_secs(claim_timeout_seconds),
                removal_delay: std::time::Duration::from_secs(removal_delay_seconds),
                changes_retention: chrono::TimeDelta::days(i64::from(changes_retention_days)),
                metrics_addr,
            };
            let runtime = runs::runtime();
            let stopped = runtime.block_on(crate::daemon::run(options));
            // A thread still stuck in the file system (a mount that does
            // not answer) must not keep the process alive after SIGTERM;
            // runs past their grace are abandoned (rolled back) anyway.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            match stopped {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    errln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Refresh {
            name,
            common,
            wait,
            queue_only,
        } => runs::refresh(
            &name,
            &common.database_url,
            match (queue_only, wait) {
                (true, _) => runs::RefreshWait::QueueOnly,
                (false, None) => runs::RefreshWait::ForADaemon,
                (false, Some(s)) => runs::RefreshWait::ForTheRun(std::time::Duration::from_secs(s)),
            },
        ),
        Command::Status { common } => runs::status(&common.database_url, common.format),
        Command::Undelete { name, common } => {
            runs::undelete(&name, &common.dir, &common.database_url, common.format)
        }
        Command::Changes {
            since,
            integration,
            limit,
            common,
        } => runs::changes(
            since,
            integration.as_deref(),
            limit,
            &common.database_url,
            common.format,
        ),
        Command::Campaigns {
            name,
            status,
            common,
        } => runs::campaigns(
            &name,
            &status,
            &common.dir,
            &common.database_url,
            common.format,
        ),
    }
}

/// Daemon log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The daemon logs at `info` (RUST_LOG overrides), as text or JSON lines.
fn init_daemon_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let subscriber: Box<dyn tracing::Subscriber + Send + Sync> = match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(json_log::JsonLines)
                .finish(),
        ),
    };
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// A bare port binds to loopback: metrics are not for the open network.
fn parse_metrics_addr(value: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value
        .parse()
        .map_err(|_| format!("`{value}` is not a port or an ADDRESS:PORT"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The store `validate` checks for deleted integrations: the one named,
/// else the default SQLite file when it exists. An SQLite file that does
/// not exist is no store to check (and is not created).
fn validate_store(url: Option<&str>) -> Option<String> {
    let url = url.unwrap_or(store::DEFAULT_URL);
    match store::Backend::from_url(url) {
        Ok(store::Backend::Sqlite(path)) if !path.exists() => None,
        _ => Some(url.to_string()),
    }
}

/// The store `explain` compares with: the one named, else the default
/// SQLite file when it exists (as every command reads it); an explanation
/// without a store is still one, so the default is not created.
fn explain_store(url: Option<String>) -> Option<String> {
    url.or_else(|| validate_store(None))
}

/// Errors for the integrations of `catalog` that the store holds as deleted;
/// `Err` when the store cannot be read.
fn deleted_in_store(url: &str, catalog: &manifest::Catalog) -> Result<Vec<Diagnostic>, String> {
    let mut store = store::open(url).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for (name, def) in &catalog.integrations {
        if store
            .integration_state(name)
            .map_err(|e| e.to_string())?
            .as_deref()
            == Some("deleted")
        {
            found.push(manifest::deleted_integration(
                def,
                store::undelete_hint(name),
            ));
        }
    }
    Ok(found)
}

fn validate(
    dir: &Path,
    offline: bool,
    database_url: Option<&str>,
    format: DiagnosticFormat,
) -> ExitCode {
    if !dir.is_dir() {
        errln!(
            "error: {} is not a directory\n  hint: pass the directory of your manifests with --dir",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let secrets = if offline {
        manifest::Secrets::Offline
    } else {
        manifest::Secrets::Resolve(&manifest::process_env)
    };
    let mut loaded = manifest::load_dir_with(dir, secrets);
    // Offline reads no store; otherwise a deleted integration's file is an
    // error (it would be refused), when there is a store to ask.
    let mut store_problem = None;
    if let Some(url) = validate_store(database_url).filter(|_| !offline) {
        match deleted_in_store(&url, &loaded.catalog) {
            Ok(deleted) => {
                loaded.diagnostics.extend(deleted);
                loaded
                    .diagnostics
                    .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            }
            Err(e) => {
                store_problem = Some(format!(
                    "warning: cannot check {} for deleted integrations: {e}",
                    store::redact_url(&url)
                ))
            }
        }
    }
    // The directory's own networks carry tests over saved responses: run offline.
    let tests: Vec<testing::Outcome> = loaded
        .catalog
        .networks
        .values()
        .filter(|n| n.origin != manifest::Origin::BuiltIn)
        .flat_map(|n| testing::run(n))
        .collect();
    let failed_tests = tests.iter().filter(|t| !t.passed()).count();
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count() + failed_tests;
    let warnings =
        loaded.diagnostics.len() + failed_tests - errors + usize::from(store_problem.is_some());
    if let Some(problem) = &store_problem {
        errln!("{problem}");
    }
    match format {
        DiagnosticFormat::Text => {
            for d in &loaded.diagnostics {
                errln!("{d}");
            }
            for t in &tests {
                for line in t.lines() {
                    errln!("{line}");
                }
            }
            let local_networks = loaded
                .catalog
                .networks
                .values()
                .filter(|n| n.origin != manifest::Origin::BuiltIn)
                .count();
            let verdict = if errors == 0 { "valid" } else { "invalid" };
            outln!(
                "{}: {verdict}: {} integrations, {local_networks} local networks ({} built in); {errors} errors, {warnings} warnings",
                dir.display(),
                loaded.catalog.integrations.len(),
                manifest::BUILT_IN_NETWORKS.len(),
            );
        }
        DiagnosticFormat::Json => {
            let out = serde_json::json!({
                "valid": errors == 0,
                "integrations": loaded.catalog.integrations.keys().collect::<Vec<_>>(),
                "networks": loaded.catalog.networks.keys().collect::<Vec<_>>(),
                "diagnostics": loaded.diagnostics,
                "tests": tests.iter().map(|t| serde_json::json!({
                    "network": t.network,
                    "test": t.test,
                    "passed": t.passed(),
                    "file_problem": t.file_problem,
                    "failures": t.failures,
                    "unmatched": t.unmatched,
                })).collect::<Vec<_>>(),
            });
            outln!("{out}");
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn find_network(name_or_file: &str, dir: &Path) -> Result<Arc<NetworkDef>, Vec<String>> {
    let as_path = Path::new(name_or_file);
    let looks_like_file =
        name_or_file.ends_with(".yaml") || name_or_file.ends_with(".yml") || as_path.is_file();
    if looks_like_file {
        return manifest::load_network_file(as_path)
            .map_err(|ds| ds.iter().map(Diagnostic::to_string).collect());
    }
    let loaded = if dir.is_dir() {
        manifest::load_dir(dir, &manifest::process_env)
    } else {
        manifest::Loaded {
            catalog: manifest::Catalog {
                networks: manifest::built_in_networks(),
                ..Default::default()
            },
            diagnostics: Vec::new(),
        }
    };
    if let Some(n) = loaded.catalog.networks.get(name_or_file) {
        return Ok(n.clone());
    }
    let mut messages: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| {
            d.is_error()
                && std::fs::read_to_string(&d.file).is_ok_and(|t| t.contains("kind: Network"))
        })
        .map(Diagnostic::to_string)
        .collect();
    let names = loaded.catalog.networks.keys().map(String::as_str);
    let hint = match did_you_mean(name_or_file, names) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "known networks: {}",
            loaded
                .catalog
                .networks
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    messages.push(format!(
        "error: no network named {name_or_file:?}\n  hint: {hint}"
    ));
    Err(messages)
}

fn map(
    network: &str,
    samples: &[PathBuf],
    format: OfferFormat,
    dir: &Path,
    params: &[String],
) -> ExitCode {
    let network = match find_network(network, dir) {
        Ok(n) => n,
        Err(messages) => {
            for m in messages {
                errln!("{m}");
            }
            return ExitCode::from(2);
        }
    };
    let mut field_params: std::collections::BTreeMap<String, String> = network
        .params
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), p.default.clone()?)))
        .collect();
    for given in params {
        let Some((name, value)) = given.split_once('=') else {
            errln!("error: --param {given:?}: write NAME=VALUE");
            return ExitCode::from(2);
        };
        match network.params.get(name) {
            Some(p) if p.secret => {
                errln!(
                    "error: --param {name}: a secret param is never read by a field; leave it out"
                );
                return ExitCode::from(2);
            }
            Some(_) => {
                field_params.insert(name.to_string(), value.to_string());
            }
            None => {
                errln!("error: --param {name}: the network has no such param");
                return ExitCode::from(2);
            }
        }
    }
    let mut api_errors = Vec::new();
    let mut pages = Vec::new();
    let mut trees = Vec::new();
    let saved = testing::all_per_offer(&network);
    let mut per_offer = testing::PerOffer::default();
    for sample in samples {
        let limit = network.limits.max_response_bytes;
        let body =
            match testing::read_sample(sample, limit, || testing::over_response_limit(&network)) {
                Ok(b) => b,
                Err(e) => {
                    errln!("error: {}: {e}", sample.display());
                    return ExitCode::from(2);
                }
            };
        if let Ok(tree) = network.mapping.parse(&body) {
            trees.push(tree);
        }
        match network.mapping.map_page_using(&body, 1, &field_params) {
            Ok(mut page) => {
                match testing::apply_per_offer(&network, &saved, std::slice::from_mut(&mut page)) {
                    Ok(report) => {
                        for (request, n) in report.applied {
                            *per_offer.applied.entry(request).or_default() += n;
                        }
                        for (request, n) in report.missing {
                            *per_offer.missing.entry(request).or_default() += n;
                        }
                    }
                    Err(e) => {
                        errln!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
                if let Some(message) = network.mapping.response_error(&page.page) {
                    api_errors.push((sample.clone(), message));
                }
                pages.push((sample.clone(), page));
            }
            Err(e) => {
                errln!("error: {}: {e}", sample.display());
                return ExitCode::from(2);
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let offers: Vec<&Offer> = pages.iter().flat_map(|(_, p)| &p.offers).collect();
    let written = match format {
        OfferFormat::Json => offers
            .iter()
            .try_for_each(|o| writeln!(out, "{}", escape_controls_json(&offer_json(o)))),
        OfferFormat::Table => write_table(&mut out, &offers),
    };
    if written.and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2); // stdout closed (e.g. piped into `head`)
    }
    let problems: Vec<(&PathBuf, &RecordProblem)> = pages
        .iter()
        .flat_map(|(f, p): &(PathBuf, MappedPage)| p.problems.iter().map(move |r| (f, r)))
        .collect();
    // A sample's text is printed with its control characters escaped, line
    // breaks too: each value sits inside one line of ours.
    for (file, problem) in &problems {
        errln!(
            "problem: {}: {}",
            file.display(),
            escape_controls(&problem.to_string())
        );
    }
    for (file, page) in &pages {
        for offer in &page.offers {
            for warning in &offer.warnings {
                errln!(
                    "warning: {}: offer {}: {}",
                    file.display(),
                    escape_controls(&offer.external_id),
                    escape_controls(warning)
                );
            }
        }
    }
    let records: Vec<&serde_json::Value> = trees
        .iter()
        .flat_map(|t| network.mapping.records(t).into_iter().map(|(_, r)| r))
        .collect();
    for unmatched in crate::mapping::suggest::unmatched(&network.mapping, &records) {
        errln!("warning: {}", testing::unmatched_line(&unmatched));
    }
    for (file, message) in &api_errors {
        errln!(
            "problem: {}: the API answered with an error: {}",
            file.display(),
            escape_controls(message)
        );
    }
    for enrich in &network.enrich {
        let applied = per_offer.applied.get(&enrich.name).copied().unwrap_or(0);
        let missing = per_offer.missing.get(&enrich.name).copied().unwrap_or(0);
        if missing > 0 {
            errln!(
                "note: per-offer request {:?} is not made by `map`: {applied} offers read its saved response (tests: per_offer), {missing} have none and lack its fields",
                enrich.name
            );
        } else if applied > 0 {
            errln!(
                "note: per-offer request {:?}: {applied} offers read its saved response (tests: per_offer)",
                enrich.name
            );
        }
    }
    errln!(
        "{} offers, {} problems",
        offers.len(),
        problems.len() + api_errors.len()
    );
    if problems.is_empty() && api_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// An offer as one JSON object, without the raw record (it is the input).
fn offer_json(offer: &Offer) -> String {
    let mut value = serde_json::to_value(offer).expect("offers serialize");
    if let Some(map) = value.as_object_mut() {
        map.remove("raw");
    }
    value.to_string()
}

fn write_table(out: &mut dyn Write, offers: &[&Offer]) -> std::io::Result<()> {
    let headers = [
        "ID",
        "NAME",
        "STATUS",
        "MODEL",
        "PAYOUT",
        "CUR",
        "COUNTRIES",
        "OS",
        "CATEGORY",
    ];
    // Cells are escaped before they are measured and cut, so the columns
    // line up and no value of the sample reaches the terminal raw.
    let rows: Vec<[String; 9]> = offers
        .iter()
        .map(|o| {
            [
                escape_controls(&o.external_id).into_owned(),
                truncate(&escape_controls(&o.name), 44),
                o.status.to_string(),
                o.model.map(|m| m.to_string()).unwrap_or_default(),
                o.payout
                    .map(|p| payout_kind(o).shown(p))
                    .unwrap_or_default(),
                escape_controls(o.currency.as_deref().unwrap_or("")).into_owned(),
                escape_controls(&countries_cell(o)).into_owned(),
                escape_controls(&o.os.join(",")).into_owned(),
                truncate(&escape_controls(o.category.as_deref().unwrap_or("")), 20),
            ]
        })
        .collect();
    for line in aligned(&headers, &rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A table as lines: the headers, then each row, every column as wide as its
/// widest cell, two spaces between, no trailing blanks.
pub(crate) fn aligned<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        cells
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut lines = vec![line(&mut headers.iter().copied())];
    lines.extend(
        rows.iter()
            .map(|row| line(&mut row.iter().map(String::as_str))),
    );
    lines
}

/// A revenue-share offer's payout is a percentage (as `rules` reads it).
fn payout_kind(o: &Offer) -> crate::campaign::PayoutKind {
    if o.model == Some(crate::offer::PayoutModel::RevShare) {
        crate::campaign::PayoutKind::Percent
    } else {
        crate::campaign::PayoutKind::Amount
    }
}

fn countries_cell(o: &Offer) -> String {
    let allowed = if o.countries.is_empty() {
        "ALL".to_string()
    } else {
        truncate(&o.countries.join(","), 24)
    };
    if o.blocked_countries.is_empty() {
        allowed
    } else {
        format!("{allowed} -{}", o.blocked_countries.join(",-"))
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

fn schema(out: Option<&Path>, kind: Option<SchemaKind>) -> ExitCode {
    use manifest::raw::Kind;
    match (out, kind) {
        (None, Some(kind)) => {
            let kind = match kind {
                SchemaKind::Integration => Kind::Integration,
                SchemaKind::Network => Kind::Network,
            };
            let text = serde_json::to_string_pretty(manifest::schema::json(kind))
                .expect("a schema serializes");
            outln!("{text}");
        }
        (None, None) => {
            let both: serde_json::Map<String, serde_json::Value> =
                [Kind::Network, Kind::Integration]
                    .into_iter()
                    .map(|k| {
                        (
                            manifest::schema::file_name(k).to_string(),
                            manifest::schema::json(k).clone(),
                        )
                    })
                    .collect();
            let text = serde_json::to_string_pretty(&both).expect("a schema serializes");
            outln!("{text}");
        }
        (Some(dir), _) => {
            for (name, text) in manifest::schema::all() {
                let path = dir.join(name);
                if let Err(e) =
                    std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text))
                {
                    errln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
                outln!("wrote {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}

/// Appended to clap's bash completion: after a command that takes an
/// integration NAME, offer the names the directory (`--dir`, else
/// integrations.d) defines; everything else is clap's.
const BASH_COMPLETE_NAMES: &str = r#"
_offersync_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" command="" dir="integrations.d" named="" i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in
            --dir) dir="${COMP_WORDS[i+1]}"; ((i++)); continue ;;
            --dir=*) dir="${word#--dir=}"; continue ;;
        esac
        if [[ -z "$command" ]]; then
            case " __NAMED__ " in *" $word "*) command="$word" ;; esac
        elif [[ " __VALUED__ " == *" $word "* ]]; then
            ((i++))
        elif [[ "$word" != -* ]]; then
            named=1
        fi
    done
    # The command's NAME: what the directory defines (else clap's completion).
    if [[ -n "$command" && -z "$named" && "$cur" != -* && " __VALUED__ " != *" ${COMP_WORDS[COMP_CWORD-1]} "* ]]; then
        COMPREPLY=($(compgen -W "$(offersync __complete-integrations --dir "$dir" 2>/dev/null)" -- "$cur"))
        return 0
    fi
    _offersync "$@"
}
complete -F _offersync_names -o nosort -o bashdefault -o default offersync
"#;

/// [`BASH_COMPLETE_NAMES`] filled in from the clap definitions: the
/// commands whose first positional is NAME, and the options that take a
/// value (whose value is not a NAME).
fn bash_complete_names(command: &clap::Command) -> String {
    let mut named = Vec::new();
    let mut valued = std::collections::BTreeSet::new();
    for sub in command.get_subcommands() {
        let first = sub.get_positionals().next();
        if first.is_some_and(|a| a.get_id() == "name") {
            named.push(sub.get_name().to_string());
        }
        for arg in sub.get_arguments() {
            if arg.get_action().takes_values() {
                for long in arg.get_long_and_visible_aliases().into_iter().flatten() {
                    valued.insert(format!("--{long}"));
                }
                if let Some(short) = arg.get_short() {
                    valued.insert(format!("-{short}"));
                }
            }
        }
    }
    let valued: Vec<String> = valued.into_iter().collect();
    BASH_COMPLETE_NAMES
        .replace("__NAMED__", &named.join(" "))
        .replace("__VALUED__", &valued.join(" "))
}

/// The sections clap does not generate, shared by every page (roff):
/// what man readers look for after OPTIONS.
const MAN_EXTRA_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
The command did what it was asked (a run succeeded, the manifests are valid, ...).
.TP
\fB1\fR
It ran and the result is a failure: a run failed, a manifest is invalid, no such integration (with the name meant), no daemon took a refresh.
.TP
\fB2\fR
It could not start: bad arguments, an unreadable directory or manifest, an unreachable or unusable store.
With \fBplan \-\-detailed\-exitcode\fR, 2 means changes are pending.
Each command's description gives its own codes.
.SH ENVIRONMENT
.TP
\fBDATABASE_URL\fR
The store, when \fB\-\-database\-url\fR is not given: postgres://USER@HOST:PORT/DB or sqlite://PATH.
Without either, commands use sqlite://offersync.db in the working directory.
A Postgres store's tables go into the URL's schema: \fB?options=\-csearch_path%3DNAME\fR (libpq's) or \fB?schema=NAME\fR, else \fBpublic\fR; the schema must exist.
.TP
\fBRUST_LOG\fR
Which log lines to write, as a tracing filter (e.g. \fBoffersync=debug\fR); the default is info for the daemon, warn for other commands.
.TP
\fBCREDENTIALS_DIRECTORY\fR
Set by systemd (\fBLoadCredential=\fR): where \fB${credential:NAME}\fR reads API keys from; also a folder \fB${file:PATH}\fR may read.
.TP
\fBOFFERSYNC_SECRET_ROOTS\fR
More folders (\fB:\fR\-separated) secret files (\fB${file:PATH}\fR) may be read from, as \fB\-\-secret\-root\fR.
.TP
\fBOFFERSYNC_FIXED_NOW\fR
An RFC 3339 time that date placeholders of a Network use instead of the clock (for tests and reproducible requests).
.SH EXAMPLES
Check the manifests, as in CI:
.PP
.nf
    offersync validate \-\-dir integrations.d
.fi
.PP
See what a run would change, then run it:
.PP
.nf
    offersync plan acme \-\-dir integrations.d
    offersync sync acme \-\-dir integrations.d
.fi
.PP
Run every integration as a service, with the status page at http://127.0.0.1:9187/:
.PP
.nf
    DATABASE_URL=postgres://offersync@db/offersync \\
        offersync daemon \-\-dir /etc/offersync/integrations.d \-\-listen 9187
.fi
.PP
Ask the running daemon for a run now and wait for its outcome:
.PP
.nf
    offersync refresh acme \-\-wait
.fi
.PP
Try it without an account:
.PP
.nf
    offersync demo
.fi
"#;

/// The manual pages, from the same clap definitions as `--help`, with
/// EXIT STATUS, ENVIRONMENT and EXAMPLES added before VERSION.
fn man(out: Option<&Path>) -> ExitCode {
    let command = <Cli as clap::CommandFactory>::command();
    let render = |cmd: clap::Command| -> Vec<u8> {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .expect("rendering into memory cannot fail");
        // clap_mangen renders only its own sections; ours go before VERSION
        // (and AUTHORS), where man readers expect them.
        let text = String::from_utf8_lossy(&page).into_owned();
        let at = text.find(".SH VERSION").unwrap_or(text.len());
        let mut page = text[..at].to_string();
        page.push_str(MAN_EXTRA_SECTIONS);
        page.push_str(&text[at..]);
        page.into_bytes()
    };
    let Some(dir) = out else {
        let _ = std::io::stdout().write_all(&render(command));
        return ExitCode::SUCCESS;
    };
    let mut pages = vec![("offersync.1".to_string(), render(command.clone()))];
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name: &'static str =
            Box::leak(format!("offersync-{}", sub.get_name()).into_boxed_str());
        pages.push((format!("{name}.1"), render(sub.clone().name(name))));
    }
    for (name, page) in pages {
        let path = dir.join(name);
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, page)) {
            errln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
        outln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
