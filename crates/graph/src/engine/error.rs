//! The engine's errors: load errors (with file:line:col), and errors that stop a run before or
//! while it runs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One problem found while loading a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadIssue {
    /// The file (or `<name>` for a workflow given as text).
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    /// Where in the document: `nodes.fan.set.count`, `edges[2].to`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// A workflow that could not be loaded: every problem found, in document order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    pub issues: Vec<LoadIssue>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Why a run failed, as `--json` output and the run store give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    /// The node that failed, when one did.
    pub node: Option<String>,
    /// A stable word for the failure: `node`, `channel`, `conflict`, `max_steps`, `timeout`,
    /// `expression`, `not_available`, `store`.
    pub kind: String,
    pub message: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node `{node}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What stops the engine from starting or continuing a run (the run's own failures are a
/// [`RunError`] inside a completed call).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid input for workflow `{workflow}`:\n{}", .errors.join("\n"))]
    InvalidInput {
        workflow: String,
        errors: Vec<String>,
    },
    #[error("the answer does not match the schema of interrupt `{node}` (run {run_id}):\n{}", .errors.join("\n"))]
    InvalidAnswer {
        run_id: String,
        node: String,
        errors: Vec<String>,
    },
    #[error("run {run_id} is waiting for an answer to interrupt `{node}`")]
    AnswerRequired { run_id: String, node: String },
    #[error("run {run_id} {reason}")]
    NotResumable { run_id: String, reason: String },
    #[error("no run with id `{0}` in the store")]
    RunNotFound(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("run store: {0}")]
    Store(#[from] crate::engine::store::StoreError),
}
