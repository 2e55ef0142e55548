//! mailcast: an email campaign rendering and dispatch worker.
//!
//! The modules follow the data flow in DESIGN.md: `import` and `fixtures` feed the
//! `store`; `dispatch` freezes a campaign's audience into the delivery ledger, renders
//! each message with `render` and hands it to a transport.

pub mod config;
pub mod domain;
pub mod fixtures;
pub mod store;
pub mod time;
