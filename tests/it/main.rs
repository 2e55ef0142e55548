//! The integration tests: one binary (one link, one build of the support code), a
//! module per area. Each talks to real databases and real SMTP servers (tests/it/support).

mod support;

mod attribution;
mod automation_cli;
mod automations;
mod bounce_classify;
mod bounce_effects;
mod bounce_mailbox;
mod bounce_receiver;
mod bounce_webhooks;
mod campaign_lifecycle;
mod cli_errors;
mod crash_safety;
mod dashboard_browser;
mod dashboard_security;
mod delivery_outcomes;
mod demo;
mod dkim;
mod experiments;
mod http_api;
mod http_limits;
mod http_tracking;
mod http_unsubscribe;
mod import;
mod logging;
mod pipeline;
mod postfix_bounces;
mod recommend;
mod render;
mod render_failures;
mod return_path;
mod segments;
mod send_timing;
mod smtp_sessions;
mod store_conformance;
mod suppression_list;
mod triggered_send;
mod view_as_sent;
