//! One step's action and where it goes next.

use std::collections::BTreeMap;

use toml::Value;

use super::error::{Place, Problems};
use super::parse::{condition, event_match, non_empty};
use super::raw::{self, RawBranch, RawEvent, RawSend, RawStep, RawUpdate, RawWaitFor};
use super::types::{Action, Change, Next};
use super::{suggest, units};
use crate::domain::CampaignKind;

const ACTIONS: &str = "`wait`, `wait_until`, `wait_for`, `if`, `split`, `send`, `update` or `exit`";

/// The keys that say where a step goes next.
struct Routes {
    goto: Option<Value>,
    then: Option<Value>,
    otherwise: Option<Value>,
    on_event: Option<Value>,
    on_timeout: Option<Value>,
}

/// Reading one step.
pub struct Cx<'a> {
    index: usize,
    count: usize,
    targets: &'a BTreeMap<String, usize>,
    p: &'a mut Problems,
}

impl<'a> Cx<'a> {
    /// The step at `index` of `count`, with the ids that can be gone to.
    pub fn new(
        index: usize,
        count: usize,
        targets: &'a BTreeMap<String, usize>,
        p: &'a mut Problems,
    ) -> Cx<'a> {
        Cx {
            index,
            count,
            targets,
            p,
        }
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.p.add(Some(self.index), field, message);
    }

    fn take<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        self.p.take(Some(self.index), field, result)
    }

    fn place(&self, table: &'static str) -> Place<'static> {
        Place {
            step: Some(self.index),
            table,
        }
    }

    pub fn action(&mut self, raw: RawStep) -> Option<Action> {
        if let Some(id) = raw.id {
            self.take("id", raw::value::<String>(id));
        }
        let actions = [
            ("wait", raw.wait),
            ("wait_until", raw.wait_until),
            ("wait_for", raw.wait_for),
            ("if", raw.condition),
            ("split", raw.split),
            ("send", raw.send),
            ("update", raw.update),
            ("exit", raw.exit),
        ];
        let mut given: Vec<(&str, Value)> = actions
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect();
        let routes = Routes {
            goto: raw.goto,
            then: raw.then,
            otherwise: raw.otherwise,
            on_event: raw.on_event,
            on_timeout: raw.on_timeout,
        };
        if given.len() != 1 {
            let names: Vec<String> = given.iter().map(|(key, _)| format!("`{key}`")).collect();
            self.fail("", one_action(&names));
            return None;
        }
        let (kind, value) = given.remove(0);
        self.unused_routes(kind, &routes);
        self.convert(kind, value, routes)
    }

    fn convert(&mut self, kind: &str, value: Value, routes: Routes) -> Option<Action> {
        match kind {
            "wait" => self.wait(value, routes),
            "wait_until" => self.wait_until(value, routes),
            "wait_for" => self.wait_for(value, routes),
            "if" => self.branch(value, routes),
            "split" => self.split(value),
            "send" => self.send(value, routes),
            "update" => self.update(value, routes),
            _ => self.exit(value),
        }
    }

    /// Reports the routing keys that do not apply to a step of `kind`.
    fn unused_routes(&mut self, kind: &str, routes: &Routes) {
        let (allowed, hint): (&[&str], &str) = match kind {
            "wait_for" => (
                &["on_event", "on_timeout"],
                "; it goes on by `on_event` and `on_timeout`",
            ),
            "if" => (&["then", "else"], "; it goes on by `then` and `else`"),
            "split" => (&[], "; each branch has its own `goto`"),
            "exit" => (&[], "; it ends the automation"),
            _ => (&["goto"], ""),
        };
        let keys = [
            ("goto", &routes.goto),
            ("then", &routes.then),
            ("else", &routes.otherwise),
            ("on_event", &routes.on_event),
            ("on_timeout", &routes.on_timeout),
        ];
        for (key, value) in keys {
            if value.is_some() && !allowed.contains(&key) {
                self.fail(key, format!("not for a `{kind}` step{hint}"));
            }
        }
    }

    /// Where `key` leads: the next step when it is not given, the last step's being
    /// the exit.
    fn next(&mut self, key: &str, value: Option<Value>) -> Option<Next> {
        let Some(value) = value else {
            return Some(match self.index + 1 {
                next if next < self.count => Next::Step(next),
                _ => Next::Exit,
            });
        };
        let target = self.take(key, raw::value::<String>(value))?;
        let next = self.resolve(&target);
        self.take(key, next)
    }

    fn resolve(&self, target: &str) -> Result<Next, String> {
        if target == "exit" {
            return Ok(Next::Exit);
        }
        match self.targets.get(target) {
            Some(&index) => Ok(Next::Step(index)),
            None => Err(format!(
                "unknown step `{target}`{}",
                suggest::hint(target, self.targets.keys())
            )),
        }
    }

    fn wait(&mut self, value: Value, routes: Routes) -> Option<Action> {
        let seconds = self.take("wait", string_with(value, units::duration));
        let next = self.next("goto", routes.goto);
        Some(Action::Wait {
            seconds: seconds?,
            next: next?,
        })
    }

    fn wait_until(&mut self, value: Value, routes: Routes) -> Option<Action> {
        let at = self.take("wait_until", string_with(value, units::local_time));
        let next = self.next("goto", routes.goto);
        Some(Action::WaitUntil {
            at: at?,
            next: next?,
        })
    }

    fn wait_for(&mut self, value: Value, routes: Routes) -> Option<Action> {
        let raw: Option<RawWaitFor> = self.take("wait_for", raw::table(value));
        let place = self.place("wait_for");
        let (event, timeout) = match raw {
            Some(raw) => {
                let timeout = place.take(self.p, "timeout", units::duration(&raw.timeout));
                let event = RawEvent {
                    event: raw.event,
                    sku: raw.sku,
                    category: raw.category,
                    min_amount: raw.min_amount,
                };
                (event_match(self.p, place, event), timeout)
            }
            None => (None, None),
        };
        let on_event = self.next("on_event", routes.on_event);
        let on_timeout = self.next("on_timeout", routes.on_timeout);
        Some(Action::WaitFor {
            event: event?,
            timeout_seconds: timeout?,
            on_event: on_event?,
            on_timeout: on_timeout?,
        })
    }

    fn branch(&mut self, value: Value, routes: Routes) -> Option<Action> {
        let text = raw::value::<String>(value);
        let condition = self.take("if", text.and_then(|t| condition(&t).map(|_| t)));
        let then = self.next("then", routes.then);
        let otherwise = self.next("else", routes.otherwise);
        Some(Action::If {
            condition: condition?,
            then: then?,
            otherwise: otherwise?,
        })
    }

    fn split(&mut self, value: Value) -> Option<Action> {
        let raw: Vec<RawBranch> = self.take("split", raw::tables(value))?;
        if raw.len() < 2 {
            self.fail("split", "needs at least two branches");
        }
        let mut branches = Vec::with_capacity(raw.len());
        for (number, branch) in (1..).zip(raw) {
            let weight = u32::try_from(branch.weight).ok().filter(|&w| w > 0);
            if weight.is_none() {
                let weight = branch.weight;
                let message =
                    format!("branch {number}: weight {weight} is not a positive whole number");
                self.fail("split", message);
            }
            let next = self.resolve(&branch.goto);
            let next = self.take("split", next.map_err(|m| format!("branch {number}: {m}")));
            branches.extend(weight.zip(next));
        }
        Some(Action::Split { branches })
    }

    fn send(&mut self, value: Value, routes: Routes) -> Option<Action> {
        let raw: Option<RawSend> = self.take("send", raw::table(value));
        let next = self.next("goto", routes.goto);
        let raw = raw?;
        let place = self.place("send");
        let template = place.take(self.p, "template", non_empty(raw.template));
        let kind = match raw.kind {
            Some(kind) => place.take(self.p, "kind", campaign_kind(&kind)),
            None => Some(CampaignKind::Marketing),
        };
        let topic = raw.topic.map(|t| place.take(self.p, "topic", non_empty(t)));
        let data = place.take(self.p, "data", raw::json_object(raw.data));
        Some(Action::Send {
            template: template?,
            kind: kind?,
            topic: match topic {
                Some(None) => return None,
                other => other.flatten(),
            },
            utm: raw.utm,
            data: data?,
            next: next?,
        })
    }

    fn update(&mut self, value: Value, routes: Routes) -> Option<Action> {
        let raw: Option<RawUpdate> = self.take("update", raw::table(value));
        let next = self.next("goto", routes.goto);
        let change = self.change(raw?);
        Some(Action::Update {
            change: change?,
            next: next?,
        })
    }

    fn change(&mut self, raw: RawUpdate) -> Option<Change> {
        let place = self.place("update");
        if raw.attribute.is_none() && raw.value.is_some() {
            place.add(self.p, "value", "goes with `attribute` only");
        }
        match (raw.attribute, raw.subscribe, raw.unsubscribe) {
            (Some(path), None, None) => {
                let path = place.take(self.p, "attribute", units::attribute_path(&path));
                let value = match raw.value {
                    Some(value) => place.take(self.p, "value", raw::json(value)),
                    None => place.take(self.p, "value", Err("missing: the value to set".into())),
                };
                Some(Change::Attribute {
                    path: path?,
                    value: value?,
                })
            }
            (None, Some(topic), None) => place
                .take(self.p, "subscribe", non_empty(topic))
                .map(Change::Subscribe),
            (None, None, Some(topic)) => place
                .take(self.p, "unsubscribe", non_empty(topic))
                .map(Change::Unsubscribe),
            _ => {
                let message =
                    "needs exactly one of `attribute` (with `value`), `subscribe` or `unsubscribe`";
                self.fail("update", message);
                None
            }
        }
    }

    fn exit(&mut self, value: Value) -> Option<Action> {
        let exit = self.take("exit", raw::value::<bool>(value))?;
        if !exit {
            self.fail("exit", "can only be true");
        }
        Some(Action::Exit)
    }
}

fn one_action(names: &[String]) -> String {
    if names.is_empty() {
        format!("no action: a step needs one of {ACTIONS}")
    } else {
        format!(
            "{} in one step: a step has exactly one action; give each its own [[step]]",
            names.join(" and ")
        )
    }
}

fn string_with<T>(value: Value, read: fn(&str) -> Result<T, String>) -> Result<T, String> {
    raw::value::<String>(value).and_then(|text| read(&text))
}

fn campaign_kind(text: &str) -> Result<CampaignKind, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not a kind of mail: write \"marketing\" or \"transactional\"")
    })
}
