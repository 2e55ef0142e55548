//! mailcast: an email campaign rendering and dispatch worker.
//!
//! The modules follow the data flow in DESIGN.md: `import` and `fixtures` feed the
//! `store`; `dispatch` freezes a campaign's audience into the delivery ledger, renders
//! each message with `render` and hands it to a transport.

pub mod accounts;
pub mod automation;
pub mod bounce;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod experiment;
pub mod fixtures;
pub mod http;
pub mod import;
pub mod links;
pub mod recommend;
pub mod render;
pub mod schedule;
pub mod segment;
pub mod shutdown;
pub mod store;
pub mod time;
