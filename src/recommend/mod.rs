//! Product recommendations from behaviour and the catalogue.
//!
//! At campaign start, [`Recommender::build`] reads every view, cart add and purchase
//! in one streaming query ordered by recipient (memory: the co-occurrence table, at
//! most products², plus one recipient's events) and learns:
//!
//! - item-to-item similarity: the cosine of two products' engagement vectors, where
//!   a recipient's engagement with a product is their strongest interaction
//!   (purchase 1, cart add 0.5, view 0.25) halved every `half_life_days` before
//!   `now`;
//! - popularity: the same engagement summed over recipients, overall and within
//!   each category.
//!
//! Per recipient ([`Recommender::for_recipient`], pure and `Send + Sync`), products
//! similar to what they engaged with score highest, blended with the popularity of
//! their categories (see `scoring.rs`); products they bought or that are out of
//! stock are never offered. When that yields fewer than N, the list is topped up
//! with what is popular in their favourite category, then with what is popular
//! overall, so everyone gets N. Every item carries a `reason` ("bought together
//! with …", "often viewed with …", "popular in shoes", "popular right now").
//!
//! ```no_run
//! # use mailcast::recommend::*;
//! # use mailcast::store::Store;
//! # async fn demo(store: &Store, batch: &[i64]) -> Result<(), RecommendError> {
//! let model = std::sync::Arc::new(Recommender::build(store, mailcast::time::now()).await?);
//! let histories = store.histories(batch).await?; // one query per batch
//! for (recipient_id, history) in &histories {
//!     let picks = model.for_recipient(history, model.options().count);
//!     let cart = model.cart(history);
//! #   let _ = (recipient_id, picks, cart);
//! }
//! # Ok(()) }
//! ```

mod build;
mod catalogue;
mod error;
mod evaluate;
mod index_hash;
mod model;
mod options;
mod scoring;
mod weights;

pub use crate::render::Recommendation;
pub use crate::store::{BehaviourKind, Interaction, RecipientHistory};
pub use error::RecommendError;
pub use evaluate::{Evaluation, evaluate, evaluate_fixtures, import_fixtures};
pub use model::Recommender;
pub use options::RecommendOptions;
