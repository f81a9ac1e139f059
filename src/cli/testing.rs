//! `offersync test`: the `tests:` of Network files, run offline over their
//! saved responses; `validate` runs the same for a directory's networks.

use std::process::ExitCode;

use crate::fetch::escape_controls;
use crate::manifest::{self, NetworkDef, Origin};
use crate::mapping::expect::{self, Failure};
use crate::mapping::suggest::{self, Unmatched};

/// What one `tests:` entry gave.
pub struct Outcome {
    pub network: String,
    pub test: String,
    /// A sample that could not be read or parsed: the test did not run.
    pub file_problem: Option<String>,
    pub failures: Vec<Failure>,
    /// Fields whose paths select nothing in any record of the samples.
    pub unmatched: Vec<Unmatched>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.file_problem.is_none() && self.failures.is_empty()
    }

    /// The report's lines: a failed expectation each, then the paths that
    /// match nothing. Each is one line with its control characters escaped,
    /// line breaks too: ids, values and reasons come from the samples.
    pub fn lines(&self) -> Vec<String> {
        let at = format!("{} ({})", self.network, self.test);
        let mut lines = Vec::new();
        if let Some(problem) = &self.file_problem {
            lines.push(format!("error: {at}: {problem}"));
        }
        for f in &self.failures {
            let offer = f
                .offer
                .as_ref()
                .map(|id| format!("offer {id}: "))
                .unwrap_or_default();
            let path = f
                .path
                .as_ref()
                .map(|p| format!(" (read from `{p}`)"))
                .unwrap_or_default();
            lines.push(format!(
                "FAIL {at}: {offer}{}: expected {}, got {}{path}",
                f.field, f.expected, f.actual
            ));
        }
        for u in &self.unmatched {
            lines.push(format!("warning: {at}: {}", unmatched_line(u)));
        }
        lines
            .into_iter()
            .map(|l| escape_controls(&l).into_owned())
            .collect()
    }
}

/// `field X: `$.path` selects nothing...; did you mean ...?`, escaped as
/// one line (the suggestions are paths of the samples' keys).
pub fn unmatched_line(u: &Unmatched) -> String {
    let hint = match u.suggestions.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of: {}?",
            many.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let line = format!(
        "field {}: `{}` selects nothing in any record of the samples{hint}",
        u.field, u.path
    );
    escape_controls(&line).into_owned()
}

/// Reads a saved response, at most `limit` bytes: a larger one is refused
/// with `too_large` (which names the limit and how to raise it) before it is
/// read, or as soon as the limit is passed for a pipe or a file that grows,
/// so a huge sample costs the author tools no more than the limit. The
/// error is the reason alone; the caller names the file.
pub(crate) fn read_sample(
    path: &std::path::Path,
    limit: u64,
    too_large: impl Fn() -> String,
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let stated = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if stated.is_file() && stated.len() > limit {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(stated.len().min(limit) as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read: {e}"))?;
    if body.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(body)
}

/// Why a sample over a Network's response limit is refused: a sync would
/// refuse such a response too.
pub(crate) fn over_response_limit(network: &NetworkDef) -> String {
    format!(
        "the sample is larger than the network's limits.max_response_bytes ({} bytes), the most a sync reads of one response; save a smaller page, or raise limits.max_response_bytes in the Network file",
        network.limits.max_response_bytes
    )
}

/// Runs every test of `network`.
pub fn run(network: &NetworkDef) -> Vec<Outcome> {
    network
        .tests
        .iter()
        .map(|test| {
            let mut outcome = Outcome {
                network: network.name.clone(),
                test: test.name.clone(),
                file_problem: None,
                failures: Vec::new(),
                unmatched: Vec::new(),
            };
            let mut pages = Vec::new();
            let mut trees = Vec::new();
            for sample in &test.samples {
                let limit = network.limits.max_response_bytes;
                let body = match read_sample(sample, limit, || over_response_limit(network)) {
                    Ok(body) => body,
                    Err(e) => {
                        outcome.file_problem = Some(format!("sample {}: {e}", sample.display()));
                        return outcome;
                    }
                };
                match network.mapping.map_page(&body) {
                    Ok(page) => pages.push(page),
                    Err(e) => {
                        outcome.file_problem = Some(format!("sample {}: {e}", sample.display()));
                        return outcome;
                    }
                }
                if let Ok(tree) = network.mapping.parse(&body) {
                    trees.push(tree);
                }
            }
            outcome.failures = expect::check(&network.mapping, test, &pages);
            let records: Vec<&serde_json::Value> = trees
                .iter()
                .flat_map(|t| network.mapping.records(t).into_iter().map(|(_, r)| r))
                .collect();
            outcome.unmatched = suggest::unmatched(&network.mapping, &records);
            outcome
        })
        .collect()
}

/// `offersync test [--dir DIR] [NETWORK...]`: 0 all pass, 1 a failure, 2 a
/// file problem (a manifest or a sample that cannot be read).
pub fn command(dir: &std::path::Path, names: &[String]) -> ExitCode {
    let loaded = manifest::load_dir_with(dir, manifest::Secrets::Offline);
    let broken: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    for d in &broken {
        errln!("{d}");
    }
    let mut selected: Vec<&NetworkDef> = Vec::new();
    for name in names {
        match loaded.catalog.networks.get(name) {
            Some(n) => selected.push(n),
            None => {
                errln!("error: no network named {name:?} in {}", dir.display());
                return ExitCode::from(2);
            }
        }
    }
    if names.is_empty() {
        selected = loaded
            .catalog
            .networks
            .values()
            .filter(|n| n.origin != Origin::BuiltIn && !n.tests.is_empty())
            .map(|n| n.as_ref())
            .collect();
    }
    let outcomes: Vec<Outcome> = selected.iter().flat_map(|n| run(n)).collect();
    for outcome in &outcomes {
        for line in outcome.lines() {
            errln!("{line}");
        }
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    outln!(
        "{} tests in {} networks: {} passed, {failed} failed",
        outcomes.len(),
        selected.len(),
        outcomes.len() - failed
    );
    if !broken.is_empty() || outcomes.iter().any(|o| o.file_problem.is_some()) {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
