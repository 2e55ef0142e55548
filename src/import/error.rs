use std::fmt;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

use super::report::ImportReport;

/// Why a whole import could not run (or stopped). Problems with single rows are
/// [`RowError`]s and never end an import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("file not found: {}", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot import {}: unknown file type; accepted extensions: .csv, .jsonl, .ndjson",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf },
    #[error("{}: line 1: {problem}", path.display())]
    Header { path: PathBuf, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fatal error after some batches were already written.
    #[error("{cause} (stopped after line {line}; {summary} before that)", summary = report.summary_line())]
    Stopped {
        line: u64,
        report: Box<ImportReport>,
        cause: Box<ImportError>,
    },
}

impl ImportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ImportError {
        if source.kind() == std::io::ErrorKind::NotFound {
            return ImportError::NotFound {
                path: path.to_path_buf(),
            };
        }
        ImportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn header(path: &Path, problem: impl Into<String>) -> ImportError {
        ImportError::Header {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// A rejected row: its physical line in the file (1-based; a CSV header is line 1),
/// the column at fault when there is one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}: {column}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// What is wrong with one cell (or a whole row, when `column` is None), before the
/// line number is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub column: Option<String>,
    pub reason: String,
}

impl FieldError {
    pub fn new(column: &str, reason: impl Into<String>) -> FieldError {
        FieldError {
            column: Some(column.to_string()),
            reason: reason.into(),
        }
    }

    pub fn at(self, line: u64) -> RowError {
        RowError {
            line,
            column: self.column,
            reason: self.reason,
        }
    }
}
