//! Experiments on campaigns: variants assigned once per recipient, a test judged by a
//! rule with a stated false-winner rate, the winner sent to the rest, and a holdout
//! that is never mailed.

pub mod assign;
pub mod design;
pub mod judge;
pub mod simulate;
pub mod uplift;

pub use design::{Arm, Experiment, ExperimentInput, FieldProblem, Variant, VariantInput};
