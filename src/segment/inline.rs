//! `segment("name")` references are replaced by the stored segment's expression
//! before compiling or evaluating, so the SQL holds no reference and a change to a
//! stored segment applies from the next compile on.

use std::collections::HashMap;

use super::ast::Expr;
use super::error::SegmentError;
use super::parser::parse;

/// The most terms an expression may have once every reference is inlined.
pub const MAX_TERMS: usize = 5_000;
/// How deeply segments may refer to segments.
pub const MAX_SEGMENT_DEPTH: usize = 16;

/// Looks up a stored segment's expression text by name.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolves nothing: for expressions without references.
pub fn no_segments(_: &str) -> Option<String> {
    None
}

/// `expr` with every `segment("name")` replaced by that segment's expression.
/// Unknown names, references in a cycle and stored expressions that no longer parse
/// are errors.
pub fn inline(expr: &Expr, resolve: Resolve<'_>) -> Result<Expr, SegmentError> {
    let mut inliner = Inliner {
        resolve,
        stack: Vec::new(),
        done: HashMap::new(),
        terms: 0,
    };
    inliner.expr(expr)
}

struct Inliner<'a> {
    resolve: Resolve<'a>,
    /// The segments being inlined, outermost first.
    stack: Vec<String>,
    done: HashMap<String, Expr>,
    terms: usize,
}

impl Inliner<'_> {
    fn count(&mut self, terms: usize) -> Result<(), SegmentError> {
        self.terms += terms;
        if self.terms > MAX_TERMS {
            return Err(SegmentError::TooLarge(MAX_TERMS));
        }
        Ok(())
    }

    fn expr(&mut self, expr: &Expr) -> Result<Expr, SegmentError> {
        self.count(1)?;
        Ok(match expr {
            Expr::Segment(name) => self.segment(name)?,
            Expr::Not(inner) => Expr::Not(Box::new(self.expr(inner)?)),
            Expr::And(terms) => Expr::And(self.all(terms)?),
            Expr::Or(terms) => Expr::Or(self.all(terms)?),
            leaf => leaf.clone(),
        })
    }

    fn all(&mut self, terms: &[Expr]) -> Result<Vec<Expr>, SegmentError> {
        terms.iter().map(|t| self.expr(t)).collect()
    }

    fn segment(&mut self, name: &str) -> Result<Expr, SegmentError> {
        if let Some(start) = self.stack.iter().position(|n| n == name) {
            let mut path = self.stack[start..].to_vec();
            path.push(name.to_string());
            return Err(SegmentError::Cycle {
                name: name.to_string(),
                path: path.join(" → "),
            });
        }
        if let Some(done) = self.done.get(name) {
            let done = done.clone();
            self.count(size(&done))?;
            return Ok(done);
        }
        if self.stack.len() >= MAX_SEGMENT_DEPTH {
            let message =
                format!("segments refer to segments more than {MAX_SEGMENT_DEPTH} levels deep");
            return Err(SegmentError::Invalid(message));
        }
        let parsed = self.load(name)?;
        self.stack.push(name.to_string());
        let inlined = self.expr(&parsed);
        self.stack.pop();
        let inlined = inlined?;
        self.done.insert(name.to_string(), inlined.clone());
        Ok(inlined)
    }

    fn load(&self, name: &str) -> Result<Expr, SegmentError> {
        let Some(text) = (self.resolve)(name) else {
            let unknown = SegmentError::UnknownSegment(name.to_string());
            return Err(match self.stack.last() {
                Some(user) => SegmentError::InSegment {
                    name: user.clone(),
                    source: Box::new(unknown),
                },
                None => unknown,
            });
        };
        parse(&text).map_err(|e| SegmentError::InSegment {
            name: name.to_string(),
            source: Box::new(e.into()),
        })
    }
}

/// Terms in a tree, as [`inline`] counts them.
fn size(expr: &Expr) -> usize {
    match expr {
        Expr::Not(inner) => 1 + size(inner),
        Expr::And(terms) | Expr::Or(terms) => 1 + terms.iter().map(size).sum::<usize>(),
        _ => 1,
    }
}

/// The names of the segments `expr` refers to directly.
pub fn references(expr: &Expr) -> Vec<String> {
    let mut names = Vec::new();
    collect(expr, &mut names);
    names
}

fn collect(expr: &Expr, names: &mut Vec<String>) {
    match expr {
        Expr::Segment(name) if !names.contains(name) => names.push(name.clone()),
        Expr::Not(inner) => collect(inner, names),
        Expr::And(terms) | Expr::Or(terms) => terms.iter().for_each(|t| collect(t, names)),
        _ => {}
    }
}
