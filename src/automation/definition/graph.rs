//! The steps form a graph through their next steps, which must have no cycle.

use std::collections::BTreeSet;

use super::error::Problems;
use super::types::{Action, Next, Step};

/// Reports each step that leads back to itself or an earlier step from which it is
/// reached again. Steps that could not be read have no edges.
pub fn report_cycles(p: &mut Problems, steps: &[Option<Step>], ids: &[String]) {
    let edges: Vec<Vec<(&str, usize)>> = steps
        .iter()
        .map(|s| s.as_ref().map_or_else(Vec::new, |s| edges(&s.action)))
        .collect();
    for (from, out) in edges.iter().enumerate() {
        let back: BTreeSet<(&str, usize)> = out
            .iter()
            .copied()
            .filter(|&(_, to)| to <= from && reaches(&edges, to, from))
            .collect();
        for (field, to) in back {
            let message = format!("leads back to step {} (`{}`), a cycle", to + 1, ids[to]);
            p.add(Some(from), field, message);
        }
    }
}

/// The steps an action can lead to, with the key that says so. Only an earlier step
/// can close a cycle, and the next step by default is a later one.
fn edges(action: &Action) -> Vec<(&'static str, usize)> {
    let nexts = match action {
        Action::Wait { next, .. }
        | Action::WaitUntil { next, .. }
        | Action::Send { next, .. }
        | Action::Update { next, .. } => vec![("goto", *next)],
        Action::WaitFor {
            on_event,
            on_timeout,
            ..
        } => vec![("on_event", *on_event), ("on_timeout", *on_timeout)],
        Action::If {
            then, otherwise, ..
        } => vec![("then", *then), ("else", *otherwise)],
        Action::Split { branches } => branches.iter().map(|&(_, n)| ("split", n)).collect(),
        Action::Exit => Vec::new(),
    };
    nexts
        .into_iter()
        .filter_map(|(key, next)| match next {
            Next::Step(index) => Some((key, index)),
            Next::Exit => None,
        })
        .collect()
}

fn reaches(edges: &[Vec<(&str, usize)>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; edges.len()];
    let mut stack = vec![from];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        if !std::mem::replace(&mut seen[at], true) {
            stack.extend(edges[at].iter().map(|&(_, next)| next));
        }
    }
    false
}
