//! The streaming loop: read a row, parse it, collect a batch, hand the batch to the
//! store. Only the current batch and the kept errors are in memory.

use super::error::{FieldError, ImportError};
use super::fields::{self, FieldResult};
use super::progress::Progress;
use super::reader::{Input, Record, Rows, Step};
use super::report::ImportReport;
use super::{ImportKind, ImportOptions, events, products, recipients};
use crate::store::{NewProduct, NewRecipient, Store, StoreError};

/// What one kind of file parses into and how a batch of it is stored.
pub(crate) trait Kind {
    type Row;
    const REQUIRED: &'static [&'static str];

    fn parse(record: &Record<'_>) -> FieldResult<Self::Row>;

    /// Stores a batch, or with `write == false` only checks what needs the store.
    async fn flush(
        store: &Store,
        batch: Vec<Self::Row>,
        write: bool,
        report: &mut ImportReport,
    ) -> Result<(), StoreError>;
}

pub(crate) struct Recipients;
pub(crate) struct Products;
pub(crate) struct Events;

impl Kind for Recipients {
    type Row = NewRecipient;
    const REQUIRED: &'static [&'static str] = recipients::REQUIRED;

    fn parse(record: &Record<'_>) -> FieldResult<NewRecipient> {
        recipients::parse(record)
    }

    async fn flush(
        store: &Store,
        batch: Vec<NewRecipient>,
        write: bool,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        if write {
            let counts = store.upsert_recipients(&batch).await?;
            report.inserted += counts.inserted;
            report.updated += counts.updated;
            report.batches += 1;
        }
        Ok(())
    }
}

impl Kind for Products {
    type Row = NewProduct;
    const REQUIRED: &'static [&'static str] = products::REQUIRED;

    fn parse(record: &Record<'_>) -> FieldResult<NewProduct> {
        products::parse(record)
    }

    async fn flush(
        store: &Store,
        batch: Vec<NewProduct>,
        write: bool,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        if write {
            let counts = store.upsert_products(&batch).await?;
            report.inserted += counts.inserted;
            report.updated += counts.updated;
            report.batches += 1;
        }
        Ok(())
    }
}

impl Kind for Events {
    type Row = events::PendingEvent;
    const REQUIRED: &'static [&'static str] = events::REQUIRED;

    fn parse(record: &Record<'_>) -> FieldResult<events::PendingEvent> {
        events::parse(record)
    }

    async fn flush(
        store: &Store,
        batch: Vec<events::PendingEvent>,
        write: bool,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        let (resolved, rejected) = events::resolve(store, batch).await?;
        rejected.into_iter().for_each(|e| report.reject(e));
        if write && !resolved.is_empty() {
            let inserted = store.insert_events(&resolved).await?;
            report.inserted += inserted;
            report.skipped += resolved.len() as u64 - inserted;
            report.batches += 1;
        }
        Ok(())
    }
}

/// Imports a file or batch; with `--strict` a first pass checks every row and the
/// second (writing) pass only runs when the first rejected nothing.
pub(crate) async fn import<K: Kind>(
    store: &Store,
    kind: ImportKind,
    input: Input<'_>,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    if options.strict {
        let mut check = run_pass::<K>(store, kind, input, options, false).await?;
        if check.has_rejections() {
            check.aborted = true;
            return Ok(check);
        }
    }
    run_pass::<K>(store, kind, input, options, true).await
}

async fn run_pass<K: Kind>(
    store: &Store,
    kind: ImportKind,
    input: Input<'_>,
    options: &ImportOptions,
    write: bool,
) -> Result<ImportReport, ImportError> {
    let mut rows = Rows::of(input)?;
    rows.require_columns(K::REQUIRED)?;
    let label = if write { "importing" } else { "checking" };
    let progress = Progress::start(options.progress, rows.total_bytes(), label);
    let mut report = ImportReport::new(kind, options.max_errors);
    let result = stream::<K>(store, &mut rows, options, write, &mut report, &progress).await;
    progress.finish();
    match result {
        Ok(()) => Ok(report),
        Err(cause) if report.batches > 0 => Err(ImportError::Stopped {
            line: rows.line(),
            report: Box::new(report),
            cause: Box::new(cause),
        }),
        Err(cause) => Err(cause),
    }
}

async fn stream<K: Kind>(
    store: &Store,
    rows: &mut Rows<'_>,
    options: &ImportOptions,
    write: bool,
    report: &mut ImportReport,
    progress: &Progress,
) -> Result<(), ImportError> {
    let batch_size = options.batch_size.max(1);
    let mut batch = Vec::with_capacity(batch_size);
    while let Some(step) = rows.next()? {
        report.rows += 1;
        match step {
            Step::Bad(error) => report.reject(error),
            Step::Row(record) => match fields::refuse_nul(&record).and_then(|()| K::parse(&record))
            {
                Ok(row) => batch.push(row),
                Err(error) => report.reject(FieldError::at(error, record.line)),
            },
        }
        if batch.len() >= batch_size {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            K::flush(store, full, write, report).await?;
            progress.set(rows.bytes_read());
        } else if report.rows.is_multiple_of(4096) {
            progress.set(rows.bytes_read());
        }
    }
    if !batch.is_empty() {
        K::flush(store, batch, write, report).await?;
    }
    progress.set(rows.bytes_read());
    Ok(())
}
