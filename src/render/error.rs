use std::path::PathBuf;

/// Which part of a campaign template an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Subject,
    Preheader,
    Html,
    Text,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Preheader => "preheader",
            Part::Html => "html body",
            Part::Text => "text body",
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a Tera error points: 1-based line and column, and the template text there
/// (usually the variable or expression that failed, e.g. `recipient.attributes.tier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub snippet: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if !self.snippet.is_empty() {
            write!(f, ", at `{}`", self.snippet)?;
        }
        Ok(())
    }
}

fn at(location: &Option<Location>) -> String {
    location
        .as_ref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template does not compile: a campaign-level error.
    #[error("{part} template does not compile{}: {message}", at(.location))]
    Syntax {
        part: Part,
        location: Option<Location>,
        message: String,
    },
    /// The template compiled but failed for this recipient (undefined variable, bad filter
    /// argument …): fails this delivery only.
    #[error("{part} template failed to render{}: {message}", at(.location))]
    Render {
        part: Part,
        location: Option<Location>,
        message: String,
    },
    /// Rendering this message crossed a limit (output, time, loop elements): fails this
    /// delivery only, like any other render failure.
    #[error("{part} template stopped rendering: it crossed the {limit}")]
    Limit {
        part: Part,
        limit: super::limits::Limit,
    },
    /// A marketing campaign must let every recipient unsubscribe.
    #[error(
        "marketing template has no unsubscribe link in its {part}: add \
         <a href=\"{{{{ unsubscribe_url }}}}\">unsubscribe</a>"
    )]
    MissingUnsubscribe { part: Part },
    /// A header value would have contained a line break, i.e. a new header.
    #[error(
        "{field} contains a line break after rendering ({value:?}); refusing to build the message"
    )]
    HeaderInjection { field: &'static str, value: String },
    #[error("{field} address {value:?} is invalid: {reason}")]
    InvalidAddress {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("render settings are invalid: {0}")]
    Settings(String),
    #[error("MJML does not compile: {0}")]
    Mjml(String),
    #[error("CSS inlining failed: {0}")]
    Css(String),
    #[error("building the MIME message failed: {0}")]
    Mime(String),
    #[error("DKIM key is invalid: {0}")]
    Dkim(String),
    #[error("template directory {path}: {reason}")]
    TemplateDir { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RenderError {
    /// True when the error concerns the campaign as a whole (its template or settings)
    /// rather than one recipient's data.
    pub fn is_campaign_error(&self) -> bool {
        !matches!(
            self,
            RenderError::Render { .. }
                | RenderError::Limit { .. }
                | RenderError::HeaderInjection { .. }
                | RenderError::InvalidAddress { field: "To", .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RenderError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Turns a Tera error into ours, keeping line, column and the failing expression.
pub(crate) fn from_tera(
    part: Part,
    source: &str,
    error: &tera::Error,
    syntax: bool,
) -> RenderError {
    let (message, location) = describe(source, error);
    if syntax {
        RenderError::Syntax {
            part,
            location,
            message,
        }
    } else {
        RenderError::Render {
            part,
            location,
            message,
        }
    }
}

/// The expression starting at `start`, up to the end of its tag: Tera's spans often
/// cover only the first identifier, the reader wants `recipient.attributes.tier | upper`.
fn expression_at(source: &str, start: usize) -> String {
    let rest = source.get(start..).unwrap_or_default();
    let end = ["}}", "%}", "\n"]
        .iter()
        .filter_map(|closer| rest.find(closer))
        .min()
        .unwrap_or(rest.len());
    rest[..end].trim().chars().take(80).collect()
}

fn describe(source: &str, error: &tera::Error) -> (String, Option<Location>) {
    match error.kind() {
        tera::ErrorKind::SyntaxError(report) | tera::ErrorKind::RenderingError(report) => {
            let span = report.span();
            let snippet = expression_at(source, span.range.start);
            let location = Location {
                line: span.start_line,
                column: span.start_col + 1,
                snippet,
            };
            (report.message().to_string(), Some(location))
        }
        _ => (error.to_string(), None),
    }
}
