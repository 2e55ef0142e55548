use std::path::PathBuf;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot import {}: {reason}", path.display())]
    Import { path: PathBuf, reason: String },
    #[error("cannot create a temporary database in {}: {reason}", dir.display())]
    TempDatabase { dir: PathBuf, reason: String },
    #[error(
        "nothing to evaluate: the store holds no purchase (import events, or pass --fixtures DIR)"
    )]
    NoPurchases,
    #[error("invalid option: {0}")]
    Options(String),
}
