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

impl Diagnostic {
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
