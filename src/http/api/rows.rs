//! Rows from the API go through the importer, so that a recipient, product or event is
//! checked by exactly the same rules, and stored by the same batch calls, whether it
//! arrives in a file or over HTTP. The rows are imported with `strict`: all or
//! nothing, every rejected row named.

use serde_json::{Map, Value};

use crate::http::error::{FieldErrors, HttpError};
use crate::import::{ImportError, ImportKind, ImportOptions, ImportReport, import_objects};
use crate::store::Store;

pub(crate) type Row = Map<String, Value>;

/// How rejected rows are named in the 422 answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Naming {
    /// One object: fields by their own name (`email`).
    Single,
    /// A list under this key: `recipients[2].email`.
    List(&'static str),
}

impl Naming {
    pub fn field(self, index: usize, column: Option<&str>) -> String {
        match (self, column) {
            (Naming::Single, Some(column)) => column.to_string(),
            (Naming::Single, None) => "body".to_string(),
            (Naming::List(list), Some(column)) => format!("{list}[{index}].{column}"),
            (Naming::List(list), None) => format!("{list}[{index}]"),
        }
    }
}

pub(crate) async fn import_rows(
    store: &Store,
    kind: ImportKind,
    rows: &[Row],
    naming: Naming,
) -> Result<ImportReport, HttpError> {
    let options = ImportOptions {
        strict: true,
        batch_size: 1000,
        progress: false,
        max_errors: rows.len().max(1),
    };
    let report =
        import_objects(store, kind, rows, &options)
            .await
            .map_err(|error| match error {
                ImportError::Store(error) => HttpError::Store(error),
                other => HttpError::Internal(format!("import of API rows: {other}")),
            })?;
    if report.has_rejections() {
        return Err(HttpError::invalid(rejections(&report, naming)));
    }
    Ok(report)
}

/// Line N is row N−1 of the request.
fn rejections(report: &ImportReport, naming: Naming) -> FieldErrors {
    let mut fields = FieldErrors::new();
    for error in &report.errors {
        let index = error.line.saturating_sub(1) as usize;
        let field = naming.field(index, error.column.as_deref());
        fields.entry(field).or_default().push(error.reason.clone());
    }
    fields
}
