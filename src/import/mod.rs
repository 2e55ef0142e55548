//! `mailcast import recipients|products|events FILE`: CSV or JSON Lines files
//! (FORMATS.md) streamed into the store in batches.
//!
//! - The format follows the extension: `.csv` (first line is the header), `.jsonl` or
//!   `.ndjson` (one object per line).
//! - Rows are read one at a time and written in batches of
//!   [`ImportOptions::batch_size`], so memory stays flat however long the file is.
//! - Recipients are upserted by email (every spelling of an address is one key:
//!   `EmailAddress::key`) and products by sku; a key that appears twice in a file is
//!   simply applied twice, so the later row wins
//!   (and, for recipients, fields it leaves empty keep the earlier values; attributes
//!   are merged key by key). Events are appended; an `event_id` already stored (or
//!   seen earlier in the file) is skipped and reported as "already imported".
//! - A row that cannot be imported (bad address, malformed number, time or JSON,
//!   wrong number of CSV fields, invalid UTF-8, a NUL character, unknown recipient or
//!   product) is rejected with its physical line number and the reason; the other
//!   rows import.
//!   With [`ImportOptions::strict`] the whole file is checked first and nothing is
//!   imported unless every row is valid. (Between the check and the import the store
//!   may change: an event whose recipient was deleted meanwhile is still rejected.)
//! - Blank values and JSON `null`s mean "not given": on update they leave what the
//!   store holds untouched. Extra recipient columns become attributes; products and
//!   events ignore columns they do not know.

mod error;
mod events;
mod fields;
mod pipeline;
mod products;
mod progress;
mod reader;
mod recipients;
mod report;

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

pub use error::{ImportError, RowError};
pub(crate) use fields::nul_path;
pub use report::ImportReport;

use crate::store::Store;
use reader::Input;

/// Which table a file feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ImportKind {
    Recipients,
    Products,
    Events,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Recipients => "recipients",
            ImportKind::Products => "products",
            ImportKind::Events => "events",
        }
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// All or nothing: import only when every row is valid.
    pub strict: bool,
    /// Rows per store transaction.
    pub batch_size: usize,
    /// Show a progress bar (only ever drawn when stderr is a terminal).
    pub progress: bool,
    /// Rejected rows whose details the report keeps; the rest are only counted.
    pub max_errors: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            strict: false,
            batch_size: 1000,
            progress: false,
            max_errors: 50,
        }
    }
}

/// Imports one file. Rejected rows are in the report; an `Err` means the file could
/// not be read at all, or the store failed ([`ImportError::Stopped`] when some
/// batches were already written).
pub async fn import_file(
    store: &Store,
    kind: ImportKind,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    import(store, kind, Input::File(path), options).await
}

/// Imports rows already parsed as JSON objects (the API's batches) by the same rules
/// and through the same store calls as a file; row `i` is reported as line `i + 1`.
pub async fn import_objects(
    store: &Store,
    kind: ImportKind,
    rows: &[Map<String, Value>],
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    import(store, kind, Input::Objects(rows), options).await
}

async fn import(
    store: &Store,
    kind: ImportKind,
    input: Input<'_>,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    use pipeline::{Events, Products, Recipients, import};
    match kind {
        ImportKind::Recipients => import::<Recipients>(store, kind, input, options).await,
        ImportKind::Products => import::<Products>(store, kind, input, options).await,
        ImportKind::Events => import::<Events>(store, kind, input, options).await,
    }
}
