//! YAML front end for the task spec. (Being written; see the module docs of `spec`.)

use super::Dag;
use std::fmt;

/// One problem in a spec, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file name as the user gave it.
    pub file: String,
    /// 1-based line and column; `None` when the problem has no single place (e.g. a cycle).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path such as `resources.accelerators` or `tasks[2].depends_on[0]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a spec (parsing goes on after the first, to report them all).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, error) in self.0.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Parses a task, DAG or pipeline file.
pub fn parse_dag(source: &str, file: &str) -> Result<Dag, SpecErrors> {
    let _ = source;
    Err(SpecErrors(vec![SpecError {
        file: file.to_owned(),
        line: None,
        column: None,
        path: String::new(),
        message: "spec parsing is not implemented yet".to_owned(),
    }]))
}
