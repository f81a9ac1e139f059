//! Keeping secrets out of logs and errors.

/// Replaces every secret value (as written, and URL-encoded) with `[redacted]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    needles: Vec<String>,
}

const MASK: &str = "[redacted]";

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
        Self { needles }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Redactor;

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
