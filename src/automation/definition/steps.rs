//! The `[[step]]` tables: one action each, and where to go next.

use std::collections::BTreeMap;

use toml::Value;

use super::action::Cx;
use super::error::Problems;
use super::graph;
use super::raw::{self, RawStep};
use super::types::Step;

/// The steps, or `None` when one of them has a problem (all are reported).
pub fn read(p: &mut Problems, tables: Vec<Value>) -> Option<Vec<Step>> {
    let given: Vec<Option<String>> = tables
        .iter()
        .map(|t| t.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let targets = targets(p, &given);
    let ids: Vec<String> = given
        .iter()
        .enumerate()
        .map(|(i, id)| id.clone().unwrap_or_else(|| generated_id(i)))
        .collect();
    let mut steps = Vec::with_capacity(tables.len());
    for (index, table) in tables.into_iter().enumerate() {
        let raw: Option<RawStep> = p.take(Some(index), "", raw::table(table));
        let mut cx = Cx::new(index, ids.len(), &targets, p);
        let action = raw.and_then(|raw| cx.action(raw));
        steps.push(action.map(|action| Step {
            id: ids[index].clone(),
            action,
        }));
    }
    graph::report_cycles(p, &steps, &ids);
    steps.into_iter().collect()
}

fn generated_id(index: usize) -> String {
    format!("step-{}", index + 1)
}

/// The ids given, as goto targets. Reports empty, reserved and repeated ids.
fn targets(p: &mut Problems, given: &[Option<String>]) -> BTreeMap<String, usize> {
    let mut targets = BTreeMap::new();
    for (index, id) in given.iter().enumerate() {
        let Some(id) = id else { continue };
        let problem = match targets.get(id) {
            Some(&first) => Some(format!("`{id}` is already the id of step {}", first + 1)),
            None => id_problem(id, index, given),
        };
        match problem {
            Some(message) => p.add(Some(index), "id", message),
            None => {
                targets.insert(id.clone(), index);
            }
        }
    }
    targets
}

fn id_problem(id: &str, index: usize, given: &[Option<String>]) -> Option<String> {
    if id.trim().is_empty() {
        return Some("is empty".into());
    }
    if id == "exit" {
        return Some("`exit` is reserved: `goto = \"exit\"` ends the automation".into());
    }
    let other =
        (0..given.len()).find(|&i| i != index && given[i].is_none() && generated_id(i) == id);
    other.map(|i| {
        format!(
            "`{id}` is the id step {} has without one; choose another",
            i + 1
        )
    })
}
