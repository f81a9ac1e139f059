//! The studio's script and style sheet, embedded in the binary (no CDN, no
//! build step: the files under `assets/` are served as written).

pub const SCRIPT: &str = include_str!("assets/studio.js");
pub const STYLE: &str = include_str!("assets/studio.css");
