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
    let hint = suggest::did_you_mean(&u.suggestions);
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

/// What saved per-offer responses did to a set of pages.
#[derive(Debug, Default)]
pub struct PerOffer {
    /// Offers that got a saved response, per request name.
    pub applied: std::collections::BTreeMap<String, usize>,
    /// Offers the request is made for that have no saved response, per
    /// request name: their fields from it are absent.
    pub missing: std::collections::BTreeMap<String, usize>,
    /// The saved files read: request name, offer id, file.
    pub files: Vec<(String, String, std::path::PathBuf)>,
}

/// Applies saved per-offer responses (`tests: per_offer`) to mapped pages as
/// a sync applies the live ones: a request's `when` decides whether it is
/// made, its `on_error` whether a response that cannot be used drops the
/// offer (a record problem in field `enrich`) or leaves a warning. An offer
/// without a saved response keeps what its list record gives. The error is
/// a saved file that cannot be read: the caller names it.
pub fn apply_per_offer(
    network: &NetworkDef,
    saved: &expect::SavedResponses,
    pages: &mut [crate::mapping::MappedPage],
) -> Result<PerOffer, String> {
    let mut report = PerOffer::default();
    if network.enrich.is_empty() {
        return Ok(report);
    }
    for page in pages {
        let mut kept = Vec::with_capacity(page.offers.len());
        // Offers and problems are in record order: an offer's record is the
        // next position no problem holds.
        let taken: std::collections::BTreeSet<usize> =
            page.problems.iter().map(|p| p.index).collect();
        let mut positions = (0..).filter(|i| !taken.contains(i));
        for offer in std::mem::take(&mut page.offers) {
            let index = positions.next().expect("an unbounded range");
            let external_id = offer.external_id.clone();
            match per_offer(network, saved, offer, &mut report)? {
                Ok(offer) => kept.push(offer),
                Err(reason) => page.problems.push(crate::mapping::RecordProblem {
                    index,
                    external_id: Some(external_id),
                    field: "enrich",
                    reason,
                }),
            }
        }
        page.problems.sort_by_key(|p| p.index);
        page.offers = kept;
    }
    Ok(report)
}

/// One offer through the saved responses of its per-offer requests: the
/// offer, or why a request with `on_error: skip` drops it.
pub fn per_offer(
    network: &NetworkDef,
    saved: &expect::SavedResponses,
    mut offer: crate::offer::Offer,
    report: &mut PerOffer,
) -> Result<Result<crate::offer::Offer, String>, String> {
    let Ok(record) = serde_json::from_str::<serde_json::Value>(offer.raw.get()) else {
        return Ok(Ok(offer));
    };
    for enrich in &network.enrich {
        if !enrich.applies_to(&record, &network.null_values) {
            continue;
        }
        let Some(file) = saved
            .get(&enrich.name)
            .and_then(|by_id| by_id.get(&offer.external_id))
        else {
            *report.missing.entry(enrich.name.clone()).or_default() += 1;
            continue;
        };
        let limit = network.limits.max_response_bytes;
        let body = read_sample(file, limit, || over_response_limit(network))
            .map_err(|e| format!("per-offer sample {}: {e}", file.display()))?;
        *report.applied.entry(enrich.name.clone()).or_default() += 1;
        report
            .files
            .push((enrich.name.clone(), offer.external_id.clone(), file.clone()));
        if let Err(reason) = enrich.apply(&body, &network.null_values, &mut offer) {
            let reason = format!(
                "per-offer request {} (saved in {}): {reason}",
                enrich.name,
                file.display()
            );
            match enrich.on_error {
                crate::manifest::model::EnrichFailure::Skip => return Ok(Err(reason)),
                crate::manifest::model::EnrichFailure::Keep => {
                    offer.warnings.push(format!("{reason}; offer kept"))
                }
            }
        }
    }
    Ok(Ok(offer))
}

/// Every saved per-offer response the Network's tests name, for `map` and
/// `explain --sample` (which run over any sample, not one test's).
pub fn all_per_offer(network: &NetworkDef) -> expect::SavedResponses {
    let mut all = expect::SavedResponses::new();
    for test in &network.tests {
        for (request, files) in &test.per_offer {
            let by_id = all.entry(request.clone()).or_default();
            for (id, file) in files {
                by_id.entry(id.clone()).or_insert_with(|| file.clone());
            }
        }
    }
    all
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
            if let Err(e) = apply_per_offer(network, &test.per_offer, &mut pages) {
                outcome.file_problem = Some(e);
                return outcome;
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
