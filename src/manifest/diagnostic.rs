//! Problems found in manifests, each pointing at a file, line, column and field.

use std::fmt;
use std::path::{Path, PathBuf};

use super::located::Located;

/// How bad a problem is: errors make a file invalid, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: u64,
    pub column: u64,
    /// The field path, e.g. `spec.filters.countries.allow[1]`.
    pub field: String,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The line of the file the problem is on, as written, to show it with a
    /// caret under the column (filled by the loader, which has the text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_line: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {severity}: ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(text) = &self.source_line {
            let number = self.line.to_string();
            let gutter = " ".repeat(number.len());
            let indent: String = text
                .chars()
                .take(self.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = token_width(text, self.column);
            write!(
                f,
                "\n {gutter} |\n {number} | {text}\n {gutter} | {indent}{}",
                "^".repeat(width)
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Where a document came from: its file and the line it starts on, so that
/// locations inside the document become locations in the file.
#[derive(Debug, Clone)]
pub struct DocSource {
    pub file: PathBuf,
    /// Lines before the document in its file.
    pub line_offset: u64,
}

impl DocSource {
    pub fn new(file: &Path, line_offset: u64) -> Self {
        Self {
            file: file.to_path_buf(),
            line_offset,
        }
    }

    /// An error at a position inside the document (1-based line within it).
    pub fn error_at(
        &self,
        line: u64,
        column: u64,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            line: if line == 0 {
                0
            } else {
                line + self.line_offset
            },
            column,
            field: field.into(),
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    /// An error about a located value.
    pub fn error<T>(
        &self,
        at: &Located<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.error_at(at.line(), at.column(), field, message)
    }

    /// The file line of a document line.
    pub fn file_line(&self, line: u64) -> u64 {
        if line == 0 {
            0
        } else {
            line + self.line_offset
        }
    }
}

/// `api_key: abc` → `api_key: [redacted]`, unless the value is a `${...}`
/// reference or a `{{ params... }}` template.
fn mask_secret_looking_values(line: &str) -> String {
    use std::sync::OnceLock;
    static SECRET_KEY: OnceLock<regex::Regex> = OnceLock::new();
    let pattern = SECRET_KEY.get_or_init(|| {
        regex::Regex::new(
            r#"(?i)\b([a-z0-9_-]*(?:key|token|secret|password|passwd)[a-z0-9_-]*)(\s*:\s*)("[^"]*"|'[^']*'|[^,}\]\s#][^,}\]#]*)"#,
        )
        .expect("a valid pattern")
    });
    pattern
        .replace_all(line, |c: &regex::Captures| {
            let value = c[3].trim_matches(['"', '\'']);
            if value.starts_with("${") || value.starts_with("{{") {
                c[0].to_string()
            } else {
                format!("{}{}[redacted]", &c[1], &c[2])
            }
        })
        .into_owned()
}

/// How many characters the caret marks: the value or key at `column` (a
/// quoted value whole), at least one.
fn token_width(line: &str, column: u64) -> usize {
    let rest: Vec<char> = line
        .chars()
        .skip(column.saturating_sub(1) as usize)
        .collect();
    let width = match rest.first() {
        None => 0,
        Some(&quote @ ('"' | '\'')) => rest[1..]
            .iter()
            .position(|&c| c == quote)
            .map_or(rest.len(), |i| i + 2),
        Some(_) => {
            let mut end = rest.len();
            for (i, c) in rest.iter().enumerate() {
                let key_end = *c == ':' && rest.get(i + 1).is_none_or(|n| n.is_whitespace());
                if key_end || c.is_whitespace() || matches!(c, ',' | '}' | ']' | '#') {
                    end = i;
                    break;
                }
            }
            end
        }
    };
    width.max(1)
}

impl Diagnostic {
    /// Attaches the text of the line the problem is on, from the file's text.
    /// A line of params is not shown (it may hold a key written by mistake,
    /// which is the problem reported), and values of keys named like secrets
    /// are masked on any line.
    pub fn with_source_line_from(mut self, text: &str) -> Self {
        if self.line > 0 && !self.field.starts_with("spec.params") {
            self.source_line = text
                .lines()
                .nth(self.line as usize - 1)
                .map(|l| mask_secret_looking_values(l.trim_end()))
                .filter(|l| !l.trim().is_empty());
        }
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_shown_on_its_line_with_a_caret_under_the_value() {
        let text = "spec:\n  payout:\n    ratio: \"90%\"  # ninety\n";
        let d = DocSource::new(Path::new("acme.yaml"), 0)
            .error_at(3, 12, "spec.payout.ratio", "\"90%\" is not a number")
            .with_hint("write 0.9 for 90 %")
            .with_source_line_from(text);
        assert_eq!(
            d.to_string(),
            "acme.yaml:3:12: error: spec.payout.ratio: \"90%\" is not a number\n   |\n 3 |     ratio: \"90%\"  # ninety\n   |            ^^^^^\n  hint: write 0.9 for 90 %"
        );
        assert_eq!(token_width("  alow: [US]", 3), 4);
        assert_eq!(
            mask_secret_looking_values(
                "spec: {api_key: s3cr3t, password: \"x y\", token: ${env:T}, n: 1}"
            ),
            "spec: {api_key: [redacted], password: [redacted], token: ${env:T}, n: 1}"
        );
        assert_eq!(token_width("x: https://a.b/c d", 4), 13);
    }
}
