//! `offersync scaffold`: a first Network file proposed from one saved
//! response. It guesses where the records are and which key holds each
//! offer field from key names and value shapes, marks with `TODO` what it
//! is unsure of, and adds a `tests:` entry over the sample, so that `map`
//! and `test` show the result at once.

use std::fmt::Write;

use serde_json::{Map, Value};

/// A proposed Network file.
pub struct Proposal {
    pub yaml: String,
    /// The records path chosen, and how many records it selects.
    pub records: String,
    pub record_count: usize,
    /// Offer fields found, and those left as TODO.
    pub found: Vec<&'static str>,
    pub unsure: Vec<&'static str>,
}

/// What each offer field is usually called, best first, and the shape its
/// value must have.
const FIELDS: &[(&str, &[&str], Shape)] = &[
    (
        "external_id",
        &[
            "id",
            "offer_id",
            "offerid",
            "network_offer_id",
            "display_id",
            "campaign_id",
            "campaignid",
            "program_id",
            "advertiser_id",
            "_id",
        ],
        Shape::Id,
    ),
    (
        "name",
        &[
            "name",
            "title",
            "offer_name",
            "offername",
            "campaign_name",
            "campaignname",
            "program_name",
            "advertiser_name",
        ],
        Shape::Text,
    ),
    (
        "status",
        &["status", "offer_status", "state", "account_status"],
        Shape::Word,
    ),
    (
        "payout",
        &[
            "payout",
            "payout_amount",
            "default_payout",
            "revenue",
            "rate",
            "commission",
            "payment_size",
            "amount",
            "price",
        ],
        Shape::Number,
    ),
    (
        "currency",
        &[
            "currency",
            "currency_id",
            "currency_code",
            "currencycode",
            "default_currency",
        ],
        Shape::Currency,
    ),
    (
        "model",
        &[
            "model",
            "payout_type",
            "payout_model",
            "goal_type",
            "type",
            "commission_type",
        ],
        Shape::Word,
    ),
    (
        "countries",
        &[
            "countries",
            "country",
            "country_code",
            "geo",
            "geos",
            "regions",
            "region",
            "geo_targets",
        ],
        Shape::Countries,
    ),
    (
        "preview_url",
        &[
            "preview_url",
            "preview",
            "previewurl",
            "landing_page",
            "site_url",
            "program_url",
            "destination_url",
            "displayurl",
        ],
        Shape::Url,
    ),
    (
        "tracking_url",
        &[
            "tracking_url",
            "tracking_link",
            "trackinglink",
            "click_url",
            "clickthroughurl",
            "link",
            "gotolink",
        ],
        Shape::Url,
    ),
    (
        "thumbnail_url",
        &[
            "thumbnail_url",
            "thumbnail",
            "image",
            "icon",
            "logo",
            "logo_url",
            "logourl",
            "image_url",
        ],
        Shape::Url,
    ),
    (
        "category",
        &["category", "categories", "vertical", "vertical_name"],
        Shape::Text,
    ),
    (
        "description",
        &["description", "html_description", "desc", "details"],
        Shape::Text,
    ),
    (
        "expires_at",
        &[
            "expires_at",
            "expiration_date",
            "end_date",
            "expiry",
            "stop_at",
            "date_live_until",
        ],
        Shape::Text,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Id,
    Text,
    Word,
    Number,
    Currency,
    Countries,
    Url,
}

/// Proposes a Network named `name` for the `sample` response (JSON, or XML
/// already turned into a tree), whose file is `sample_path` relative to it.
pub fn propose(name: &str, sample: &Value, sample_path: &str, xml: bool) -> Option<Proposal> {
    let (records_path, records) = find_records(sample, "$")?;
    let records: Vec<&Value> = records;
    let mut leaves: Vec<(String, String, &Value)> = Vec::new();
    for record in &records {
        walk(record, "$", 0, &mut leaves);
    }
    let mut found = Vec::new();
    let mut unsure = Vec::new();
    let mut lines = Vec::new();
    for (field, names, shape) in FIELDS {
        match best(&leaves, records.len(), names, *shape) {
            Some((path, sure)) if *shape == Shape::Countries && !path.contains("[0]") => {
                found.push(*field);
                let texts: Vec<&str> = leaves
                    .iter()
                    .filter(|(p, _, _)| *p == path)
                    .filter_map(|(_, _, v)| v.as_str())
                    .collect();
                if texts.is_empty() {
                    let path = yaml_path(&path, *shape, true);
                    if sure {
                        lines.push(format!("    {field}: {path}"));
                    } else {
                        unsure.push(*field);
                        lines.push(format!(
                            "    {field}: {path}  # TODO: a guess; check it in `offersync map`"
                        ));
                    }
                } else {
                    unsure.push(*field);
                    lines.push(format!("    {field}: {}", countries_rule(&path, &texts)));
                }
            }
            Some((path, sure)) => {
                found.push(*field);
                let is_list = leaves.iter().any(|(p, _, v)| *p == path && v.is_array());
                let path = yaml_path(&path, *shape, is_list);
                if sure {
                    lines.push(format!("    {field}: {path}"));
                } else {
                    unsure.push(*field);
                    lines.push(format!(
                        "    {field}: {path}  # TODO: a guess; check it in `offersync map`"
                    ));
                }
            }
            None if *field == "external_id" || *field == "name" => {
                unsure.push(*field);
                lines.push(format!(
                    "    {field}: $.TODO  # TODO: no key looks like it; required"
                ));
            }
            None => {}
        }
    }
    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# yaml-language-server: $schema=../.schemas/network.schema.json"
    );
    let _ = writeln!(
        yaml,
        "# Proposed by `offersync scaffold` from {sample_path}. Fill in the TODOs,"
    );
    let _ = writeln!(
        yaml,
        "# then check with `offersync map` and `offersync test`."
    );
    let _ = writeln!(
        yaml,
        "apiVersion: offersync/v1\nkind: Network\nmetadata:\n  name: {name}\nspec:"
    );
    let _ = writeln!(
        yaml,
        "  params:\n    api_key:\n      secret: true\n      description: TODO where the user finds the key\n    base_url:\n      description: TODO the API host, e.g. https://api.example.com"
    );
    let _ = writeln!(
        yaml,
        "  request:\n    url: \"{{{{ params.base_url }}}}/TODO/offers\""
    );
    // A response never shows how its request was authenticated: the auth
    // is a placeholder, said to be one where it stands and in the summary.
    let _ = writeln!(
        yaml,
        "  # TODO: how the key is sent, from the API's docs (query, header, basic, bearer,\n  # oauth2, login). The line below is a guess: a response cannot show it.\n  auth: {{kind: header, name: X-Api-Key, value: \"{{{{ params.api_key }}}}\"}}  # TODO: a guess"
    );
    unsure.push("auth (a guess)");
    let _ = writeln!(
        yaml,
        "  # TODO: how pages are walked (page, offset, cursor, next_url); one request until then.\n  pagination: {{kind: none}}"
    );
    if xml {
        let _ = writeln!(yaml, "  format: xml");
    }
    let _ = writeln!(yaml, "  records: '{records_path}'\n  fields:");
    for line in &lines {
        let _ = writeln!(yaml, "{line}");
    }
    let _ = writeln!(
        yaml,
        "  tests:\n    - name: the saved sample\n      samples: [{sample_path}]\n      count: {{offers: {}, problems: 0}}",
        records.len()
    );
    Some(Proposal {
        yaml,
        records: records_path,
        record_count: records.len(),
        found,
        unsure,
    })
}

/// The largest list of objects in the tree (or an object keyed by id whose
/// values are all objects): its path and its records.
fn find_records<'a>(value: &'a Value, at: &str) -> Option<(String, Vec<&'a Value>)> {
    let mut best: Option<(String, Vec<&'a Value>)> = None;
    let mut consider = |path: String, items: Vec<&'a Value>| {
        let weight = |items: &[&Value]| {
            items.len()
                * items
                    .iter()
                    .map(|i| i.as_object().map_or(0, Map::len))
                    .max()
                    .unwrap_or(0)
        };
        if !items.is_empty()
            && best
                .as_ref()
                .is_none_or(|(_, b)| weight(&items) > weight(b))
        {
            best = Some((path, items));
        }
    };
    match value {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            consider(format!("{at}[*]"), items.iter().collect());
        }
        Value::Object(map)
            if map.len() >= 2
                && map.values().all(Value::is_object)
                && map.keys().all(|k| k.chars().all(|c| c.is_ascii_digit())) =>
        {
            consider(format!("{at}.*"), map.values().collect());
        }
        _ => {}
    }
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (child(at, k), v)).collect(),
        _ => Vec::new(),
    };
    for (path, v) in children {
        if let Some((p, items)) = find_records(v, &path) {
            consider(p, items);
        }
    }
    best
}

fn child(at: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_') {
        format!("{at}.{key}")
    } else {
        format!("{at}['{key}']")
    }
}

/// Every value in a record down to three levels: (path, last key, value).
/// Lists of scalars are one leaf (`[*]` added later where a field wants many).
fn walk<'a>(value: &'a Value, at: &str, depth: usize, out: &mut Vec<(String, String, &'a Value)>) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        let path = child(at, key);
        out.push((path.clone(), key.to_lowercase(), v));
        if depth < 2 {
            match v {
                Value::Object(_) => walk(v, &path, depth + 1, out),
                Value::Array(items) => {
                    if let Some(first) = items.first().filter(|f| f.is_object()) {
                        walk(first, &format!("{path}[0]"), depth + 1, out);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The best path for a field: by where its name comes in `names` (an exact
/// key beats one that contains it), then by how many records have a value
/// of the right shape there. Sure when the key is exact and every record has it.
fn best(
    leaves: &[(String, String, &Value)],
    records: usize,
    names: &[&str],
    shape: Shape,
) -> Option<(String, bool)> {
    let mut scores: std::collections::BTreeMap<&str, (usize, usize, bool)> = Default::default();
    for (path, key, value) in leaves {
        let key_flat = key.replace(['-', ' '], "_");
        let rank = names
            .iter()
            .position(|n| key_flat == *n)
            .map(|r| (r, true))
            .or_else(|| {
                names
                    .iter()
                    .position(|n| n.len() > 3 && key_flat.contains(n))
                    .map(|r| (r + names.len(), false))
            });
        let Some((rank, exact)) = rank else { continue };
        if !fits(value, shape) {
            continue;
        }
        let entry = scores.entry(path.as_str()).or_insert((rank, 0, exact));
        entry.1 += 1;
    }
    scores
        .into_iter()
        .min_by_key(|(path, (rank, hits, _))| (*rank, usize::MAX - hits, path.len()))
        .map(|(path, (_, hits, exact))| (path.to_string(), exact && hits == records))
}

fn fits(value: &Value, shape: Shape) -> bool {
    let text = match value {
        Value::String(s) => Some(s.trim()),
        _ => None,
    };
    match shape {
        Shape::Id => value.is_number() || text.is_some_and(|t| !t.is_empty() && t.len() < 64),
        Shape::Text => {
            text.is_some_and(|t| !t.is_empty())
                || value
                    .as_array()
                    .is_some_and(|a| a.iter().any(Value::is_string))
        }
        Shape::Word => text.is_some_and(|t| !t.is_empty() && t.len() < 40),
        Shape::Number => {
            value.is_number()
                || text.is_some_and(|t| t.chars().any(|c| c.is_ascii_digit()) && t.len() < 24)
        }
        Shape::Currency => {
            text.is_some_and(|t| t.len() == 3 && t.chars().all(|c| c.is_ascii_alphabetic()))
        }
        Shape::Countries => match value {
            Value::Array(items) => {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|s| s.len() <= 3))
            }
            Value::String(s) => countries_text(s).is_some(),
            _ => false,
        },
        Shape::Url => text.is_some_and(|t| {
            t.starts_with("http://") || t.starts_with("https://") || t.starts_with("//")
        }),
    }
}

/// Where a text of countries is split (`"US,CA"`, `"US | CA"`,
/// `"United States; Canada"`): `Some(None)` for one country, `Some(Some(sep))`
/// for several between `sep`; `None` when a part is no country.
fn countries_text(text: &str) -> Option<Option<char>> {
    // A short code the table does not know (admitad's "01") still looks
    // like a code: the mapping then names it, rather than scaffold hiding it.
    let is_country = |part: &str| {
        crate::offer::normalize_country(part).is_ok()
            || (part.len() <= 3 && part.chars().all(|c| c.is_ascii_alphanumeric()))
    };
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    for sep in [',', ';', '|', '/'] {
        if text.contains(sep) {
            let parts: Vec<&str> = text
                .split(sep)
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            return (!parts.is_empty() && parts.iter().all(|p| is_country(p))).then_some(Some(sep));
        }
    }
    if is_country(text) {
        return Some(None);
    }
    // Codes between spaces ("US CA GB"); a name with a space is one country.
    let parts: Vec<&str> = text.split_whitespace().collect();
    (parts.iter().all(|p| p.len() <= 3 && is_country(p))).then_some(Some(' '))
}

/// The rule for countries sent as one text: split at the separator the
/// sample shows, with a TODO that says so (or, when every record in the
/// sample names one country, which separator to set when one names more).
fn countries_rule(path: &str, texts: &[&str]) -> String {
    let mut seps: Vec<(char, usize)> = Vec::new();
    let mut example = None;
    for text in texts {
        if let Some(Some(sep)) = countries_text(text) {
            match seps.iter_mut().find(|(s, _)| *s == sep) {
                Some((_, n)) => *n += 1,
                None => seps.push((sep, 1)),
            }
            example.get_or_insert(*text);
        }
    }
    seps.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    match (seps.first(), example) {
        (Some((sep, _)), Some(example)) => {
            // The example is the sample's text: one line, quotes escaped,
            // kept short, inside a YAML comment.
            let shown: String = crate::fetch::escape_controls(example)
                .chars()
                .take(40)
                .collect();
            format!(
                "{{path: '{path}', split: '{sep}'}}  # TODO: countries come as one text ({shown:?}): split at '{sep}' into one country each; check in `offersync map`"
            )
        }
        _ => format!(
            "{{path: '{path}', split: ','}}  # TODO: countries come as text, one per record in the sample; if a record can name several, set split to the character between them"
        ),
    }
}

/// The path as a field rule, quoted: countries read every value (`[*]`,
/// also for a value found in the first entry of a list of objects).
fn yaml_path(path: &str, shape: Shape, is_list: bool) -> String {
    match shape {
        Shape::Countries if is_list => format!("'{path}[*]'"),
        Shape::Countries => format!("'{}'", path.replace("[0]", "[*]")),
        Shape::Text if is_list => format!("'{path}[0]'"),
        _ => format!("'{path}'"),
    }
}

/// The largest sample `scaffold` reads unless told otherwise: the default
/// `limits.max_response_bytes`, the most a sync reads of one response.
pub const DEFAULT_MAX_SAMPLE_BYTES: u64 = 64 * 1024 * 1024;

/// `offersync scaffold --sample FILE [--name NAME] [--out FILE]
/// [--max-sample-bytes N]`.
pub fn command(
    sample: &std::path::Path,
    name: &str,
    out: Option<&std::path::Path>,
    max_sample_bytes: u64,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    // The output first: a refusal must not wait for (or pay for) the sample.
    let file = out
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from(format!("{name}.yaml")));
    if file.exists() {
        errln!(
            "error: {} exists; choose another --out or --name",
            file.display()
        );
        return ExitCode::from(2);
    }
    let too_large = || {
        format!(
            "the sample is larger than {max_sample_bytes} bytes, the most scaffold reads (it holds the whole response in memory); one page of the offer list is enough: save a smaller one, or raise the limit with --max-sample-bytes"
        )
    };
    let body = match super::testing::read_sample(sample, max_sample_bytes, too_large) {
        Ok(b) => b,
        Err(e) => {
            errln!("error: {}: {e}", sample.display());
            return ExitCode::from(2);
        }
    };
    let xml = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    let tree = if xml {
        crate::mapping::xml::xml_to_value(&body, &[]).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
    };
    let tree = match tree {
        Ok(t) => t,
        Err(e) => {
            errln!(
                "error: {}: not JSON or XML: {}",
                sample.display(),
                crate::fetch::escape_controls(&e)
            );
            return ExitCode::from(2);
        }
    };
    let sample_from_file = relative(sample, file.parent().unwrap_or(std::path::Path::new(".")));
    let Some(proposal) = propose(name, &tree, &sample_from_file, xml) else {
        errln!(
            "error: {}: no list of records found (an array of objects, or an object keyed by id)",
            sample.display()
        );
        return ExitCode::from(2);
    };
    // Written only if still absent: the sample took a while to read.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, proposal.yaml.as_bytes()));
    if let Err(e) = written {
        errln!("error: {}: cannot write: {e}", file.display());
        return ExitCode::from(2);
    }
    // The records path is made of the sample's keys: escaped as one line.
    outln!(
        "wrote {}: records at {} ({} in the sample); fields found: {}",
        file.display(),
        crate::fetch::escape_controls(&proposal.records),
        proposal.record_count,
        proposal.found.join(", ")
    );
    if !proposal.unsure.is_empty() {
        outln!("check (marked TODO): {}", proposal.unsure.join(", "));
    }
    outln!(
        "next: offersync map --network {} --sample {}",
        file.display(),
        sample.display()
    );
    ExitCode::SUCCESS
}

/// `target` as seen from the directory `from` (both taken from the working
/// directory; `from` may be empty, the parent of a bare file name).
pub fn relative(target: &std::path::Path, from: &std::path::Path) -> String {
    use std::path::{Component, Path, PathBuf};
    // Both exist (the sample was read, the file's directory is written
    // to), so they resolve to real paths without `.`, `..` or symlinks; a
    // `..` compared as a name would make the path wrong.
    let resolve = |p: &Path| -> PathBuf {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let (target, from) = (resolve(target), resolve(from));
    fn named(p: &Path) -> Vec<Component<'_>> {
        p.components()
            .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
            .collect()
    }
    let (t, f) = (named(&target), named(&from));
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_and_fields_are_found_by_names_and_shapes() {
        let sample = json!({"meta": {"total": 2}, "data": {"offers": [
            {"offer_id": 7, "title": "A", "payout": "2.50", "currency": "USD", "countries": ["US"], "preview_url": "https://a", "tracking_link": "https://t/7"},
            {"offer_id": 8, "title": "B", "payout": 3, "currency": "EUR", "countries": ["DE"], "preview_url": "https://b", "tracking_link": "https://t/8"}
        ]}});
        let p = propose("acme", &sample, "sample.json", false).unwrap();
        assert_eq!(
            (p.records.as_str(), p.record_count),
            ("$.data.offers[*]", 2)
        );
        assert!(
            p.yaml.contains("    external_id: '$.offer_id'\n"),
            "{}",
            p.yaml
        );
        assert!(p.yaml.contains("    name: '$.title'\n"), "{}", p.yaml);
        assert!(
            p.yaml.contains("    countries: '$.countries[*]'\n"),
            "{}",
            p.yaml
        );
        assert!(
            p.yaml.contains("    tracking_url: '$.tracking_link'\n"),
            "{}",
            p.yaml
        );
        // A response cannot show the auth: only it is a guess here.
        assert_eq!(p.unsure, ["auth (a guess)"]);
        assert!(
            p.yaml.contains("auth: {kind: header, name: X-Api-Key, value: \"{{ params.api_key }}\"}  # TODO: a guess\n"),
            "{}",
            p.yaml
        );
    }

    /// Issue 26.7: countries as one text were not proposed at all, so every
    /// offer mapped worldwide with no TODO.
    #[test]
    fn countries_as_one_text_are_split_with_a_todo() {
        let sample = json!({"offers": [
            {"id": 1, "name": "A", "geo": "US|CA|GB"},
            {"id": 2, "name": "B", "geo": "DE | AT"},
            {"id": 3, "name": "C", "geo": "FR"}
        ]});
        let p = propose("acme", &sample, "sample.json", false).unwrap();
        assert!(
            p.yaml.contains("    countries: {path: '$.geo', split: '|'}  # TODO: countries come as one text (\"US|CA|GB\"): split at '|'"),
            "{}",
            p.yaml
        );
        assert!(p.unsure.contains(&"countries"), "{:?}", p.unsure);
        // Names between commas; one name with a space is one country.
        let sample = json!({"offers": [
            {"id": 1, "name": "A", "countries": "United States, Canada"},
            {"id": 2, "name": "B", "countries": "United Kingdom"}
        ]});
        let p = propose("acme", &sample, "sample.json", false).unwrap();
        assert!(
            p.yaml.contains("    countries: {path: '$.countries', split: ','}  # TODO: countries come as one text"),
            "{}",
            p.yaml
        );
        // One code per record: still a TODO, saying which separator to set.
        let sample = json!({"offers": [{"id": 1, "name": "A", "country": "US"}, {"id": 2, "name": "B", "country": "CA"}]});
        let p = propose("acme", &sample, "sample.json", false).unwrap();
        assert!(
            p.yaml.contains("    countries: {path: '$.country', split: ','}  # TODO: countries come as text, one per record in the sample; if a record can name several, set split"),
            "{}",
            p.yaml
        );
        // A text that is no country list is not proposed as countries.
        let sample = json!({"offers": [{"id": 1, "name": "A", "geo": "see terms"}]});
        let p = propose("acme", &sample, "sample.json", false).unwrap();
        assert!(!p.yaml.contains("countries:"), "{}", p.yaml);
    }
}
