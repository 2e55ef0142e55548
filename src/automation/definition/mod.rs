//! Automations (journeys such as an abandoned cart reminder, a birthday mail, a
//! welcome series or a win-back) as a marketer writes them: a TOML file.
//!
//! ```toml
//! name = "abandoned-cart"                # a-z, 0-9, -, _ and .
//! description = "Cart reminder"           # optional
//! from = { email = "shop@shop.example.com", name = "The Shop", reply_to = "help@shop.example.com" }
//! entry = "once per 7d"                   # "once" (default), "every time", "once per <duration>"
//! goal = { event = "purchase" }           # optional; reaching it ends the journey
//! trigger = { event = "cart_add", category = "shoes" }
//!
//! [[step]]
//! id = "wait-for-purchase"                # optional; needed only as a target
//! wait_for = { event = "purchase", timeout = "4h" }
//! on_event = "exit"                       # default: the next step
//! on_timeout = "reminder"
//!
//! [[step]]
//! id = "reminder"
//! send = { template = "abandoned-cart", kind = "marketing", topic = "promotions" }
//! ```
//!
//! Triggers: `event` (filters `sku`, `category`, `min_amount` in currency units),
//! `recipient_created = true`, `subscribed = "topic"`, `enters_segment = "…"` (segment
//! language), `date = "attr.birthday"` or `"created_at"` with `at = "09:00"` (each year
//! on that month and day, at that local time).
//!
//! Steps, one action each: `wait = "1d"`, `wait_until = "09:00"`,
//! `wait_for = { event, timeout, filters }` with `on_event` / `on_timeout`,
//! `if = '…'` (segment language) with `then` / `else`,
//! `split = [{ weight = 50, goto = "a" }, …]`, `send = { template, kind, topic, utm,
//! data }`, `update = { attribute = "a.b", value = … }` or `{ subscribe = "t" }` or
//! `{ unsubscribe = "t" }`, and `exit = true`. A step without branches may set `goto`
//! (a step id or `"exit"`); by default a step goes on to the next, the last one to
//! the exit. The steps may not form a cycle.
//!
//! Durations are digits and `min`, `h`, `d` or `w`; local times `HH:MM`, 24-hour.
//!
//! [`parse`] checks everything that needs no store and reports every problem it
//! finds; [`check`] then checks the names against what is stored ([`Known`]).

mod action;
mod check;
mod error;
mod graph;
mod parse;
mod raw;
mod steps;
mod suggest;
mod types;
pub(crate) mod units;

#[cfg(test)]
mod tests;

pub use check::{Known, check};
pub use error::{DefinitionError, DefinitionErrors};
pub use parse::parse;
pub use types::{
    Action, Change, DateField, Definition, EntryRule, EventMatch, LocalTime, Next, Sender, Step,
    Trigger,
};
