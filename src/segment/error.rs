use std::fmt;

use crate::store::StoreError;

/// A position in the expression text: line and column, both from 1, columns counted
/// in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A syntax or type error at a position: `1:18: expected a duration like 30d after
/// 'within:'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

impl ParseError {
    pub fn new(pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError {
            pos,
            message: message.into(),
        }
    }

    /// The error with the offending line of `text` and a caret under the position.
    pub fn render(&self, text: &str) -> String {
        let line = text
            .lines()
            .nth(self.pos.line.saturating_sub(1) as usize)
            .unwrap_or("");
        let pad = " ".repeat(self.pos.col.saturating_sub(1) as usize);
        format!("{self}\n  {line}\n  {pad}^")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("no segment named \"{0}\"")]
    UnknownSegment(String),
    #[error("segment \"{name}\" refers to itself: {path}")]
    Cycle { name: String, path: String },
    #[error("in segment \"{name}\": {source}")]
    InSegment {
        name: String,
        source: Box<SegmentError>,
    },
    #[error("segments refer to segments more than {0} levels deep")]
    TooDeep(usize),
    #[error("the expression is too large once segments are inlined (more than {0} terms)")]
    TooLarge(usize),
    /// A tree built by hand that the parser would not have built.
    #[error("invalid segment expression: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
