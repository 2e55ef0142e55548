use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem in a definition, where it is: a step (0-based) and the key in it, or a
/// top-level key, dotted for a key in a table (`trigger.event`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionError {
    pub step: Option<usize>,
    pub field: String,
    pub message: String,
}

/// Every problem found, in the order of the file: top-level keys first, then steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionErrors(pub Vec<DefinitionError>);

/// `step 3 `wait_for`: …`, `trigger `event`: …`, `name: …`; a syntax error has no
/// field and its message gives the line and column.
impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field.as_str();
        match (self.step, field.split_once('.')) {
            (Some(step), _) if field.is_empty() => write!(f, "step {}", step + 1)?,
            (Some(step), _) => write!(f, "step {} `{field}`", step + 1)?,
            (None, _) if field.is_empty() => return f.write_str(&self.message),
            (None, Some((table, key))) => write!(f, "{table} `{key}`")?,
            (None, None) => f.write_str(field)?,
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DefinitionError {}
impl std::error::Error for DefinitionErrors {}

/// Collects problems while a definition is read.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<DefinitionError>);

impl Problems {
    pub fn add(&mut self, step: Option<usize>, field: &str, message: impl Into<String>) {
        self.0.push(DefinitionError {
            step,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// The value, or `None` with the problem recorded.
    pub fn take<T>(
        &mut self,
        step: Option<usize>,
        field: &str,
        result: Result<T, String>,
    ) -> Option<T> {
        result.map_err(|m| self.add(step, field, m)).ok()
    }

    /// The value when nothing was found, else every problem, top level first and then
    /// by step.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, DefinitionErrors> {
        let mut list = self.0;
        match value {
            Some(value) if list.is_empty() => return Ok(value),
            None if list.is_empty() => list.push(DefinitionError {
                step: None,
                field: String::new(),
                message: "the definition could not be read".into(),
            }),
            _ => {}
        }
        list.sort_by_key(|e| e.step.map_or(0, |s| s + 1));
        Err(DefinitionErrors(list))
    }
}

/// A table whose keys are read one by one: a top-level table (`trigger`), whose keys
/// are reported as `trigger.at`, or a step's action table (`wait_for`), reported under
/// the step's key with the inner key leading the message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Place<'a> {
    pub step: Option<usize>,
    pub table: &'a str,
}

impl Place<'_> {
    pub fn add(&self, p: &mut Problems, key: &str, message: impl Into<String>) {
        let message = message.into();
        match self.step {
            None => p.add(None, &format!("{}.{key}", self.table), message),
            Some(_) => p.add(self.step, self.table, format!("{key} {message}")),
        }
    }

    pub fn take<T>(&self, p: &mut Problems, key: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|m| self.add(p, key, m)).ok()
    }
}
