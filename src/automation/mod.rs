//! Automations: journeys started by triggers (an event, a new recipient, a
//! subscription, entering a segment, a date coming round) that wait, branch and send.
//!
//! A run is a row in the store with a timer; the engine claims due runs with leases,
//! moves each on until it waits or ends, and puts every `send` step's message into
//! the delivery ledger of a campaign kept for that step and run ordinal, so the
//! ledger's (campaign, recipient) key is the run's (run, step) key: a crash or retry
//! cannot send a step twice, and the message gets the same consent re-check,
//! suppression, rendering, caps and transport as any campaign message.

pub mod definition;
mod describe;
mod engine;
mod error;
mod load;
mod local_time;
mod sends;
mod steps;
mod triggers;

pub use describe::{
    describe_entry, describe_step, describe_trigger, duration as duration_text, event_text,
};
pub use engine::{AutomationEngine, EngineSettings, EngineTask, TickReport};
pub use error::AutomationError;
pub use load::{LoadOutcome, known_names, load_automation};
