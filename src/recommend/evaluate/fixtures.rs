//! Evaluating on a fixture directory: imported into a throw-away SQLite file.

use std::path::{Path, PathBuf};

use super::{Evaluation, evaluate};
use crate::import::{ImportKind, ImportOptions, import_file};
use crate::recommend::{RecommendError, RecommendOptions};
use crate::store::Store;

/// The fixture files, in import order (events refer to recipients and products).
const FILES: [(ImportKind, &str); 3] = [
    (ImportKind::Recipients, "recipients.csv"),
    (ImportKind::Products, "products.csv"),
    (ImportKind::Events, "events.jsonl"),
];

/// Imports `dir`'s recipients.csv, products.csv and events.jsonl into `store`.
/// Any rejected row is an error: an evaluation runs on the whole data set or not
/// at all.
pub async fn import_fixtures(store: &Store, dir: &Path) -> Result<(), RecommendError> {
    for (kind, name) in FILES {
        let path = dir.join(name);
        let failed = |reason: String| RecommendError::Import {
            path: path.clone(),
            reason,
        };
        let report = import_file(store, kind, &path, &ImportOptions::default())
            .await
            .map_err(|e| failed(e.to_string()))?;
        if report.has_rejections() {
            return Err(failed(report.summary_line()));
        }
    }
    Ok(())
}

/// Imports the fixtures in `dir` into a temporary SQLite database, evaluates, and
/// removes the database.
pub async fn evaluate_fixtures(
    dir: &Path,
    options: &RecommendOptions,
) -> Result<Evaluation, RecommendError> {
    let temp = TempDatabase::new()?;
    let store = Store::open(&temp.path.display().to_string()).await?;
    let result = match import_fixtures(&store, dir).await {
        Ok(()) => evaluate(&store, options).await,
        Err(error) => Err(error),
    };
    store.close().await;
    result
}

/// A SQLite file in the system temporary directory, deleted (with its WAL files)
/// on drop.
struct TempDatabase {
    path: PathBuf,
}

impl TempDatabase {
    fn new() -> Result<TempDatabase, RecommendError> {
        let dir = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "mailcast-evaluate-{}-{nanos}-{:08x}.db",
            std::process::id(),
            rand::random::<u32>()
        );
        let path = dir.join(name);
        std::fs::File::create_new(&path).map_err(|e| RecommendError::TempDatabase {
            dir: dir.clone(),
            reason: e.to_string(),
        })?;
        Ok(TempDatabase { path })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}
