//! `offersync explain INTEGRATION --offer ID`: one offer through the whole
//! pipeline, from the live API or a saved response: the raw record, each
//! mapped field with its rule and the alternatives that gave nothing, each
//! filter's verdict, the payout arithmetic, and, with a store, what a sync
//! would do to its campaign. It writes nothing. With saved responses
//! (`--sample`) the per-offer requests read the responses the Network's
//! `tests:` save for them (`per_offer`); live, they are not made.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};

use super::testing::PerOffer;
use crate::manifest::{self, IntegrationDef};
use crate::mapping::FieldTrace;
use crate::mapping::expect::SavedResponses;
use crate::rules::Rules;

/// The mapping half of `explain`: the raw record and each mapped field with
/// its rule and alternatives, and the offer (or why the record is a
/// problem). The studio shows this for a Network with no Integration chosen.
pub fn mapping_report(
    mapping: &crate::mapping::Mapping,
    params: &std::collections::BTreeMap<String, String>,
    record: &Value,
    key: Option<&str>,
) -> (Value, Option<crate::offer::Offer>) {
    let traces: Vec<FieldTrace> = mapping.trace(record, key, params);
    let mapped = mapping.map_record_using(0, key, record, params);
    let offer_json = mapped.as_ref().ok().map(shown_offer);
    let fields: Vec<Value> = traces
        .iter()
        .map(|t| {
            json!({
                "field": t.field,
                "rule": t.rule,
                "alternatives": t.alternatives,
                "required": t.required,
                "value": offer_json.as_ref().and_then(|o| o.get(t.field)).cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut out = json!({
        "raw": record,
        "fields": fields,
    });
    match mapped {
        Ok(offer) => {
            out["warnings"] = json!(offer.warnings);
            (out, Some(offer))
        }
        Err(problem) => {
            out["mapping_problem"] = json!(problem.to_string());
            out["verdict"] = json!(format!("skipped: mapping_problem ({problem})"));
            (out, None)
        }
    }
}

/// An offer as the report shows it: its fields without the raw record,
/// which the report holds once.
fn shown_offer(offer: &crate::offer::Offer) -> Value {
    let mut v = serde_json::to_value(offer).expect("offers serialize");
    if let Some(m) = v.as_object_mut() {
        m.remove("raw");
    }
    v
}

/// What `explain` found, as `--format json` prints it: the mapping half,
/// then the per-offer requests, each filter's verdict, the payout arithmetic
/// and, with a store, the plan. `saved` are the per-offer responses the
/// Network's tests save (with `--sample`): the offer reads them as a sync
/// reads the live ones. The error is a saved response that cannot be read.
/// The studio renders the same report.
pub fn report(
    def: &IntegrationDef,
    record: &Value,
    key: Option<&str>,
    saved: Option<&SavedResponses>,
    store: Option<&mut Box<dyn crate::store::Store>>,
) -> Result<Value, String> {
    let params = crate::sync::field_params(def);
    let (mapped, offer) = mapping_report(&def.network.mapping, &params, record, key);
    let mut out = json!({
        "integration": def.name,
        "network": def.network.name,
    });
    if let (Some(out), Some(mapped)) = (out.as_object_mut(), mapped.as_object()) {
        out.extend(mapped.clone());
    }
    let Some(mut offer) = offer else {
        return Ok(out);
    };
    let mut read = PerOffer::default();
    let mut dropped = None;
    if let Some(saved) = saved {
        match super::testing::per_offer(&def.network, saved, offer.clone(), &mut read)? {
            Ok(enriched) => offer = enriched,
            Err(reason) => dropped = Some(reason),
        }
        // The fields as the offer holds them once its requests answered.
        let enriched = shown_offer(&offer);
        if let Some(fields) = out["fields"].as_array_mut() {
            for field in fields {
                let value = field["field"]
                    .as_str()
                    .and_then(|name| enriched.get(name))
                    .cloned()
                    .unwrap_or(Value::Null);
                field["value"] = value;
            }
        }
    }
    let per_offer = per_offer_report(def, saved, &read, &shown_offer(&offer));
    if !per_offer.is_empty() {
        out["per_offer"] = json!(per_offer);
    }
    if let Some(reason) = dropped {
        out["verdict"] = json!(format!("skipped: enrich_failed ({reason})"));
        return Ok(out);
    }
    out["warnings"] = json!(offer.warnings);
    let rules = Rules::new(def);
    let verdicts: Vec<Value> = rules
        .filter_verdicts(&offer)
        .into_iter()
        .map(|(filter, verdict)| match verdict {
            Ok(()) => json!({"filter": filter, "passes": true}),
            Err(skip) => json!({"filter": filter, "passes": false, "reason": skip.reason.to_string(), "detail": skip.detail}),
        })
        .collect();
    out["filters"] = json!(verdicts);
    let campaign = match rules.apply(offer) {
        Ok(c) => c,
        Err(skip) => {
            out["verdict"] = json!(format!("skipped: {} ({})", skip.reason, skip.detail));
            return Ok(out);
        }
    };
    out["payout"] = json!({
        "revenue": campaign.revenue.map(|d| d.to_string()),
        "ratio": def.payout.ratio.to_string(),
        "decimals": def.payout.decimals,
        "rounding": format!("{:?}", def.payout.rounding).to_lowercase(),
        "payout": campaign.payout.map(|d| d.to_string()),
        "kind": campaign.payout_kind.as_str(),
        "arithmetic": match (campaign.revenue, campaign.payout) {
            (Some(r), Some(p)) => {
                let kind = campaign.payout_kind;
                format!("{} × {} = {} (rounded {:?} to {} decimals)", kind.shown(r), def.payout.ratio, kind.shown(p), def.payout.rounding, def.payout.decimals).to_lowercase()
            }
            _ => "no revenue: no payout".to_string(),
        },
    });
    out["verdict"] = json!("imported");
    if let Some(store) = store {
        out["plan"] = plan(def, &campaign, store);
    }
    Ok(out)
}

/// Each per-offer request of the Network and what it gave this offer: the
/// saved response it read and the fields it set, or why it was not made.
fn per_offer_report(
    def: &IntegrationDef,
    saved: Option<&SavedResponses>,
    read: &PerOffer,
    offer: &Value,
) -> Vec<Value> {
    def.network
        .enrich
        .iter()
        .map(|e| {
            let file = read.files.iter().find(|(name, _, _)| *name == e.name);
            match (saved, file) {
                (_, Some((_, _, file))) => {
                    // What the request gives, as the offer now holds it.
                    let values: serde_json::Map<String, Value> = e
                        .fields
                        .iter()
                        .map(|f| {
                            let name = f.target.name();
                            let value = offer.get(name).cloned().unwrap_or(Value::Null);
                            (name.to_string(), value)
                        })
                        .collect();
                    json!({"request": e.name, "saved": file.display().to_string(), "fields": values})
                }
                (Some(_), None) if read.missing.contains_key(&e.name) => json!({"request": e.name, "saved": null, "note": "no saved response for this offer in the tests' per_offer: its fields are absent"}),
                (Some(_), None) => json!({"request": e.name, "saved": null, "note": "not made for this offer (its `when`)"}),
                (None, _) => json!({"request": e.name, "saved": null, "note": "not made by explain: its fields are absent"}),
            }
        })
        .collect()
}

/// What a sync would do to the offer's campaign and why, as the run decides
/// it (the same reconcile: desired row against the stored one), and which
/// differences the update policy holds back.
fn plan(
    def: &IntegrationDef,
    campaign: &crate::campaign::Campaign,
    store: &mut Box<dyn crate::store::Store>,
) -> Value {
    let (index, policy) = match store.integration_id(&def.name) {
        Ok(Some(id)) => match store
            .stored_index(id)
            .and_then(|index| Ok((index, store.applied_policy(id)?)))
        {
            Ok(read) => read,
            Err(e) => return json!({"error": e.to_string()}),
        },
        Ok(None) => return json!({"action": "create"}),
        Err(e) => return json!({"error": e.to_string()}),
    };
    let mut reconciler = crate::sync::reconciler_for(def, index, policy.as_deref());
    let mut plan = reconciler.plan_page(vec![Ok(campaign.clone())]);
    if !plan.create.is_empty() {
        return json!({"action": "create"});
    }
    // The stored row, read whether or not the plan needs it: what the
    // policy holds back is shown for an unchanged campaign too.
    let Some(id) = reconciler.stored(&campaign.external_id).map(|s| s.id) else {
        return json!({"action": "unchanged"});
    };
    let row = match store.stored_rows(&[id]) {
        Ok(mut rows) => rows.pop(),
        Err(e) => return json!({"error": e.to_string()}),
    };
    let held_back = row
        .as_ref()
        .map(|row| reconciler.held_back(row, campaign))
        .unwrap_or_default();
    if !plan.compare.is_empty() {
        reconciler.resolve(&mut plan, row.into_iter().collect());
    }
    match plan.update.pop() {
        Some(update) => {
            let mut changes = update.changes;
            changes.extend(update.held_back);
            json!({
                "action": if update.restore { "restore" } else { "update" },
                "why": update.cause,
                "changes": changes,
            })
        }
        None => json!({"action": "unchanged", "changes": held_back}),
    }
}

/// `offersync explain NAME --offer ID [--sample FILE...]`.
pub fn command(
    name: &str,
    offer: &str,
    samples: &[PathBuf],
    dir: &Path,
    database_url: Option<&str>,
    json_format: bool,
) -> ExitCode {
    let def = if samples.is_empty() {
        match super::runs::load_integration_with(dir, name, &manifest::process_env) {
            Ok(d) => d,
            Err(code) => return code,
        }
    } else {
        // Saved responses need no key: secrets are checked for form only.
        let mut loaded = manifest::load_dir_with(dir, manifest::Secrets::Offline);
        match loaded.catalog.integrations.remove(name) {
            Some(def) => Arc::new(def),
            None => {
                for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
                    errln!("{d}");
                }
                errln!(
                    "error: no valid Integration named `{name}` in {}",
                    dir.display()
                );
                return ExitCode::from(2);
            }
        }
    };
    let found = if samples.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(crate::sync::find_record(&def, offer))
    } else {
        from_samples(&def, samples, offer)
    };
    let mut store = match database_url {
        Some(url) => match super::runs::open_existing_store(url) {
            Ok(s) => Some(s),
            Err(code) => return code,
        },
        None => None,
    };
    let (record, key) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            let place = if samples.is_empty() {
                "feed"
            } else {
                "samples"
            };
            // Gone upstream but stored: that is the removal a sync would make.
            let stored = store
                .as_mut()
                .and_then(|s| s.campaigns(&def.name).ok())
                .and_then(|list| list.into_iter().find(|c| c.external_id == offer));
            match stored {
                Some(c) if c.removed_at.is_none() => outln!(
                    "offer {offer:?} is not in the {place} of {name}, but its campaign is stored: a sync would record it gone and {} it (on_removed)",
                    match def.on_removed {
                        manifest::raw::OnRemoved::Pause => "pause",
                        manifest::raw::OnRemoved::Keep => "keep",
                    }
                ),
                Some(_) => outln!(
                    "offer {offer:?} is not in the {place} of {name}; its campaign is stored and already marked gone"
                ),
                None => errln!("error: no offer {offer:?} in the {place} of {name}"),
            }
            return ExitCode::from(1);
        }
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let saved = (!samples.is_empty()).then(|| super::testing::all_per_offer(&def.network));
    let report = match report(
        &def,
        &record,
        key.as_deref(),
        saved.as_ref(),
        store.as_mut(),
    ) {
        Ok(report) => report,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if json_format {
        outln!("{report}");
    } else {
        for line in text_lines(&report) {
            outln!("{line}");
        }
    }
    ExitCode::SUCCESS
}

fn from_samples(
    def: &Arc<IntegrationDef>,
    samples: &[PathBuf],
    offer: &str,
) -> Result<Option<(Value, Option<String>)>, String> {
    let mapping = &def.network.mapping;
    let params = crate::sync::field_params(def);
    for sample in samples {
        let body =
            std::fs::read(sample).map_err(|e| format!("{}: cannot read: {e}", sample.display()))?;
        let mapped = mapping
            .map_page_using(&body, 1, &params)
            .map_err(|e| format!("{}: {e}", sample.display()))?;
        if let Some(found) = mapping.find_record(&body, &mapped, offer) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The report for reading: sections in pipeline order.
fn text_lines(report: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "offer in {} ({}):",
        report["integration"].as_str().unwrap_or_default(),
        report["network"].as_str().unwrap_or_default()
    )];
    lines.push("raw record:".into());
    let raw = serde_json::to_string_pretty(&report["raw"]).unwrap_or_default();
    lines.extend(
        raw.lines()
            .map(|l| format!("  {}", crate::fetch::escape_controls(l))),
    );
    lines.push("fields:".into());
    for f in report["fields"].as_array().into_iter().flatten() {
        let value = f["value"].to_string();
        lines.push(format!(
            "  {:<16} {}   ← {}",
            f["field"].as_str().unwrap_or_default(),
            crate::fetch::escape_controls(&value),
            f["rule"].as_str().unwrap_or_default()
        ));
        let alternatives = f["alternatives"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if alternatives.len() > 1 {
            for alt in alternatives {
                let mark = if alt["gave_value"] == json!(true) {
                    "gave a value"
                } else {
                    "gave nothing"
                };
                lines.push(format!(
                    "      {}: {mark}",
                    alt["rule"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    for p in report["per_offer"].as_array().into_iter().flatten() {
        let request = p["request"].as_str().unwrap_or_default();
        match (p["saved"].as_str(), p["note"].as_str()) {
            (Some(file), _) => {
                lines.push(format!(
                    "per-offer request {request}: saved response {file}"
                ));
                for (field, value) in p["fields"].as_object().into_iter().flatten() {
                    let value = crate::fetch::escape_controls(&value.to_string()).into_owned();
                    lines.push(format!("  {field:<16} {value}"));
                }
            }
            (None, note) => lines.push(format!(
                "per-offer request {request}: {}",
                note.unwrap_or_default()
            )),
        }
    }
    for w in report["warnings"].as_array().into_iter().flatten() {
        lines.push(format!("warning: {}", w.as_str().unwrap_or_default()));
    }
    if let Some(problem) = report["mapping_problem"].as_str() {
        lines.push(format!("mapping problem: {problem}"));
    }
    if let Some(filters) = report["filters"].as_array() {
        lines.push("filters:".into());
        for f in filters {
            let verdict = if f["passes"] == json!(true) {
                "passes".to_string()
            } else {
                format!(
                    "skips: {} ({})",
                    f["reason"].as_str().unwrap_or_default(),
                    f["detail"].as_str().unwrap_or_default()
                )
            };
            lines.push(format!(
                "  {:<30} {verdict}",
                f["filter"].as_str().unwrap_or_default()
            ));
        }
    }
    if let Some(arithmetic) = report["payout"]["arithmetic"].as_str() {
        lines.push(format!("payout: {arithmetic}"));
    }
    lines.push(format!(
        "verdict: {}",
        report["verdict"].as_str().unwrap_or_default()
    ));
    if let Some(action) = report["plan"]["action"].as_str() {
        match report["plan"]["why"].as_str() {
            Some(why) => lines.push(format!("plan: {action} ({why})")),
            None => lines.push(format!("plan: {action}")),
        }
        for c in report["plan"]["changes"].as_array().into_iter().flatten() {
            let held = if c["held_back_by_policy"] == json!(true) {
                "  (held back by update policy)"
            } else {
                ""
            };
            lines.push(format!(
                "  {}: {} → {}{held}",
                c["column"].as_str().unwrap_or_default(),
                c["old"].as_str().unwrap_or_default(),
                c["new"].as_str().unwrap_or_default()
            ));
        }
    }
    lines
}
