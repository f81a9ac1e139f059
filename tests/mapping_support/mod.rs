//! Networks written inline for mapping tests: records path, fields and extra
//! spec keys, loaded the way a Network file is.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use offersync::manifest::{self, NetworkDef};
use offersync::offer::Offer;

/// The two fields every test network maps.
pub const BASIC: &str = "external_id: $.id\nname: $.name";

/// A Network with `records`, `fields` and extra spec keys (before `fields`).
pub fn network(records: &str, fields: &str, extra: &str) -> Arc<NetworkDef> {
    try_network(records, fields, extra).unwrap_or_else(|d| panic!("{d}"))
}

/// Like [`network`], or the file and its diagnostics when it does not load.
pub fn try_network(records: &str, fields: &str, extra: &str) -> Result<Arc<NetworkDef>, String> {
    let fields = fields
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let yaml = format!(
        "apiVersion: offersync/v1\nkind: Network\nmetadata: {{name: case}}\nspec:\n  request: {{url: 'http://127.0.0.1/offers'}}\n  records: {records}\n{extra}  fields:\n{fields}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.yaml");
    std::fs::write(&file, &yaml).unwrap();
    manifest::load_network_file(&file).map_err(|d| format!("{yaml}\n{d:#?}"))
}

/// The offers of one page, which must have no record problem.
pub fn map(net: &NetworkDef, body: &str) -> Vec<Offer> {
    let page = net.mapping.map_page(body.as_bytes()).unwrap();
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    page.offers
}
