//! offersync imports advertisers' offers from affiliate network APIs into a
//! campaign table, driven by YAML manifests committed to git.
//!
//! Data flows one way: [`manifest`] (load and check the YAML) → fetch (HTTP)
//! → [`mapping`] (responses to [`offer::Offer`]s) → rules → reconcile → store.
//! [`cli`] owns the command line, exit codes and the rendering of errors.
//! See ARCHITECTURE.md for the map.

/// `offersync --version`: the release and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("OFFERSYNC_COMMIT"),
    ")"
);

pub mod address;
pub mod campaign;
pub mod cli;
pub mod daemon;
pub mod demo;
pub mod diagnosis;
pub mod fetch;
pub mod manifest;
pub mod mapping;
pub mod offer;
pub mod provenance;
pub mod reconcile;
pub mod rules;
pub mod store;
pub mod studio;
pub mod sync;
