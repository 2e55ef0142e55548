use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use super::ImportKind;
use super::error::RowError;

/// What an import did. Counts are rows: a row whose key the store (or an earlier
/// row of the same file) already held counts as updated.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub kind: ImportKind,
    /// Data rows read (blank lines are not rows).
    pub rows: u64,
    /// New recipients / products / events.
    pub inserted: u64,
    /// Recipients and products that existed and were updated (always 0 for events).
    pub updated: u64,
    /// Events whose `event_id` was already stored ("already imported").
    pub skipped: u64,
    /// Rows rejected, in all.
    pub rejected: u64,
    /// The rejected rows with the lowest line numbers (at most
    /// [`ImportOptions::max_errors`](super::ImportOptions::max_errors)), by line.
    pub errors: Vec<RowError>,
    /// Batches written to the store.
    pub batches: u64,
    /// `--strict` found rejected rows, so nothing was written.
    pub aborted: bool,
    max_errors: usize,
}

impl ImportReport {
    pub(crate) fn new(kind: ImportKind, max_errors: usize) -> ImportReport {
        ImportReport {
            kind,
            rows: 0,
            inserted: 0,
            updated: 0,
            skipped: 0,
            rejected: 0,
            errors: Vec::new(),
            batches: 0,
            aborted: false,
            max_errors,
        }
    }

    /// Counts a rejected row, keeping the details of the first `max_errors` by line.
    pub(crate) fn reject(&mut self, error: RowError) {
        self.rejected += 1;
        let at = self.errors.partition_point(|e| e.line <= error.line);
        if at < self.max_errors {
            self.errors.insert(at, error);
            self.errors.truncate(self.max_errors);
        }
    }

    pub fn has_rejections(&self) -> bool {
        self.rejected > 0
    }

    /// `recipients: 1998 imported, 2 updated, 3 rejected`; events report
    /// `N skipped (already imported)` instead of updates.
    pub fn summary_line(&self) -> String {
        let mut line = format!("{}: {} imported, ", self.kind, self.inserted);
        let _ = match self.kind {
            ImportKind::Events => write!(line, "{} skipped (already imported)", self.skipped),
            _ => write!(line, "{} updated", self.updated),
        };
        let _ = write!(line, ", {} rejected", self.rejected);
        if self.aborted {
            line.push_str(" (--strict: nothing imported)");
        }
        line
    }

    /// One line per kept error, then `... and N more rejected rows` when some were
    /// left out.
    pub fn write_errors(&self, out: &mut impl Write) -> io::Result<()> {
        for error in &self.errors {
            writeln!(out, "{error}")?;
        }
        let more = self.rejected.saturating_sub(self.errors.len() as u64);
        if more > 0 {
            writeln!(out, "... and {more} more rejected rows")?;
        }
        Ok(())
    }

    /// 0, or 2 when rows were rejected.
    pub fn exit_code(&self) -> ExitCode {
        if self.has_rejections() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: u64) -> RowError {
        RowError {
            line,
            column: None,
            reason: "bad".into(),
        }
    }

    #[test]
    fn keeps_the_lowest_lines_and_counts_the_rest() {
        let mut report = ImportReport::new(ImportKind::Recipients, 3);
        for line in [9, 4, 7, 2, 8] {
            report.reject(error(line));
        }
        let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 4, 7]);
        let mut out = Vec::new();
        report.write_errors(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("line 7: bad\n... and 2 more rejected rows\n"),
            "{text}"
        );
    }

    #[test]
    fn summary_names_the_kind_and_every_count() {
        let mut report = ImportReport::new(ImportKind::Recipients, 50);
        (report.inserted, report.updated) = (1998, 2);
        report.reject(error(3));
        assert_eq!(
            report.summary_line(),
            "recipients: 1998 imported, 2 updated, 1 rejected"
        );
        report.kind = ImportKind::Events;
        report.skipped = 5;
        assert_eq!(
            report.summary_line(),
            "events: 1998 imported, 5 skipped (already imported), 1 rejected"
        );
    }
}
