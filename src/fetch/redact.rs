//! Keeping secrets out of logs and errors, and upstream text from
//! repainting a terminal or faking a log line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Replaces every secret value (as written, and URL-encoded) with `[redacted]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    needles: Vec<String>,
    /// Secrets learnt while running (login and OAuth2 tokens), shared by
    /// every clone, so that what reports a run's errors hides them too.
    learnt: std::sync::Arc<std::sync::RwLock<Vec<String>>>,
}

pub(crate) const MASK: &str = "[redacted]";

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            needles.push(secret.to_string());
            let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            needles.push(encoded);
            let percent = secret
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            needles.push(percent);
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self {
            needles,
            learnt: Default::default(),
        }
    }

    /// Adds a secret learnt at run time (a token), in every clone.
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let added = Redactor::new([secret]).needles;
        let mut learnt = self.learnt.write().unwrap_or_else(|e| e.into_inner());
        for needle in added {
            if !learnt.contains(&needle) {
                learnt.push(needle);
            }
        }
        learnt.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let learnt = self.learnt.read().unwrap_or_else(|e| e.into_inner());
        for needle in learnt.iter().chain(&self.needles) {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }
}

/// Upstream text made safe to print or log: control characters (ANSI
/// escapes, carriage returns, newlines, bidi overrides) are written as
/// escapes, so a network's response can neither repaint the operator's
/// terminal nor fake a log line. Text without them is returned as it is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`escape_controls`], but keeps line breaks and tabs: for output that
/// is ours and laid out in lines, with upstream values already escaped.
pub fn escape_controls_keep_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// Serialized JSON made safe to print the same way, and still JSON: what
/// [`escape_controls`] escapes is written as a `\uXXXX` escape, which a
/// JSON reader decodes back to the exact value. (serde_json escapes C0
/// controls itself, but not DEL, C1 controls or bidi overrides.)
pub fn escape_controls_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| unsafe_char(c, false)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c, false) {
            // Every such character is in the Basic Multilingual Plane.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A character that may repaint a terminal or break a line: a control
/// (but line breaks and tabs when `keep_lines`) or a bidi control.
fn unsafe_char(c: char, keep_lines: bool) -> bool {
    let layout = keep_lines && (c == '\n' || c == '\t');
    !layout
        && (c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

fn escape(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| unsafe_char(c, keep_lines);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{Redactor, escape_controls, escape_controls_json, escape_controls_keep_lines};

    #[test]
    fn a_secret_learnt_later_is_hidden_by_every_clone() {
        let r = Redactor::new(["key-1"]);
        let clone = r.clone();
        r.add("tok en/2");
        for text in ["key-1 tok en/2", "t=tok+en%2F2", "t=tok%20en%2F2"] {
            let shown = clone.redact(text);
            assert!(
                !shown.contains("tok") && !shown.contains("key-1"),
                "{shown}"
            );
        }
        r.add("");
        assert_eq!(clone.redact("plain"), "plain");
    }

    #[test]
    fn control_characters_from_upstream_are_escaped() {
        let hostile = "\u{1b}[2J\u{1b}[31mFAKE: all offers synced OK\r\nnext";
        let shown = escape_controls(hostile);
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}[31mFAKE: all offers synced OK\\r\\nnext"
        );
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(escape_controls("plain – text"), "plain – text");
        assert_eq!(escape_controls("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(
            escape_controls_keep_lines("a\n\tb\u{1b}c\r"),
            "a\n\tb\\u{1b}c\\r"
        );
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_controls() {
        let value = serde_json::json!({"name": "a\u{1b}]0;t\u{7}\u{7f}\u{9b}2J\u{202e}b\r\n"});
        let text = value.to_string();
        let shown = escape_controls_json(&text);
        assert!(
            !shown.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{shown}"
        );
        assert!(shown.contains("\\u009b2J\\u202eb"), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
        assert!(matches!(
            escape_controls_json("{\"a\":1}"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn secrets_are_masked_as_written_and_url_encoded() {
        let r = Redactor::new(["k3y/with space+plus", "tok"]);
        assert_eq!(
            r.redact("https://x/?key=k3y%2Fwith+space%2Bplus&t=tok"),
            "https://x/?key=[redacted]&t=[redacted]"
        );
        assert_eq!(
            r.redact("https://x/k3y%2Fwith%20space%2Bplus"),
            "https://x/[redacted]"
        );
        assert_eq!(r.redact("raw k3y/with space+plus"), "raw [redacted]");
        assert_eq!(Redactor::new([""]).redact("nothing"), "nothing");
    }
}
