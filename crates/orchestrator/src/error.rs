//! The errors of the orchestration layer, and the one mapping of every failure to a kind and
//! an exit code that both front ends use.
//!
//! Messages say what failed and where, in the library's terms; a front end adds how to fix it
//! in its own terms ([`Error::kind`] tells it which hint applies: a CLI flag, an MCP argument).

use ao_core::config::ConfigError;
use ao_graph::{EngineError, StoreError};
use ao_tools::{PolicyError, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A stable word for what went wrong. `--json` output and MCP results carry it; its exit code
/// is fixed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The command line or the call's arguments are wrong.
    Usage,
    /// The configuration (ao.toml, .env, environment, policy) is wrong or incomplete.
    Config,
    /// The run input does not match the workflow's input schema, or a tool's input its.
    InvalidInput,
    /// An interrupt's answer does not match its schema.
    InvalidAnswer,
    /// A workflow file does not load (with file:line:col).
    InvalidWorkflow,
    WorkflowNotFound,
    RunNotFound,
    /// The run cannot be resumed (finished, running elsewhere, mode changed, …).
    NotResumable,
    /// The run waits for an answer and none was given.
    AnswerRequired,
    /// A changeset cannot be shown or applied.
    Changeset,
    /// The run was made in another project.
    OtherRoot,
    /// A tool failed while doing allowed work.
    ToolFailed,
    /// The run store failed.
    Store,
    /// A replay cassette cannot be read or is malformed (with file:line:col).
    InvalidCassette,
    /// A cassette could not be written.
    CassetteNotWritten,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Config => "config",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::InvalidAnswer => "invalid_answer",
            ErrorKind::InvalidWorkflow => "invalid_workflow",
            ErrorKind::WorkflowNotFound => "workflow_not_found",
            ErrorKind::RunNotFound => "run_not_found",
            ErrorKind::NotResumable => "not_resumable",
            ErrorKind::AnswerRequired => "answer_required",
            ErrorKind::Changeset => "changeset",
            ErrorKind::OtherRoot => "other_root",
            ErrorKind::ToolFailed => "tool_failed",
            ErrorKind::Store => "store",
            ErrorKind::InvalidCassette => "invalid_cassette",
            ErrorKind::CassetteNotWritten => "cassette_not_written",
        }
    }

    /// `2` when nothing ran because the request was wrong (usage, configuration, validation);
    /// `1` when work was attempted and failed.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage
            | ErrorKind::Config
            | ErrorKind::InvalidInput
            | ErrorKind::InvalidAnswer
            | ErrorKind::InvalidWorkflow
            | ErrorKind::WorkflowNotFound
            | ErrorKind::RunNotFound
            | ErrorKind::NotResumable
            | ErrorKind::AnswerRequired
            | ErrorKind::OtherRoot
            | ErrorKind::InvalidCassette => 2,
            ErrorKind::Changeset
            | ErrorKind::ToolFailed
            | ErrorKind::Store
            | ErrorKind::CassetteNotWritten => 1,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("workflow `{name}` not found: {detail}")]
    WorkflowNotFound { name: String, detail: String },
    /// Something a command needs is not configured (a model for an `llm` node, the policy).
    #[error("{0}")]
    NotConfigured(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("run {run_id}: {message}")]
    Changeset { run_id: String, message: String },
    /// A run that wrote in one mode (dry-run or apply) cannot continue in the other: its
    /// changeset would be half proposed, half written.
    #[error("run {run_id} {}", if *.applied { "wrote its changes in apply mode; it must continue in apply mode" } else { "proposed its changes in dry-run; it must continue in dry-run, and its changeset be applied once it has finished" })]
    ModeChanged { run_id: String, applied: bool },
    /// The run belongs to another project (a state dir shared between projects).
    #[error("run {run_id} was made in the project at {recorded}, not in {here}")]
    OtherRoot {
        run_id: String,
        recorded: String,
        here: String,
    },
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The model layer refused its configuration (unknown provider, missing model, …).
    #[error(transparent)]
    Model(#[from] ao_models::ModelError),
    #[error("{0}")]
    Usage(String),
    /// A replay cassette that cannot be read, or is malformed.
    #[error("cassette {path}: {message}")]
    Cassette { path: String, message: String },
    /// A run's cassette could not be written (the run itself is stored).
    #[error("the cassette of run {run_id} could not be written to {path}: {message}")]
    CassetteNotWritten {
        run_id: String,
        path: String,
        message: String,
    },
    /// The saved worker profiles cannot be read or written.
    #[error(transparent)]
    Profiles(#[from] crate::interview::profiles::ProfileStoreError),
}

impl From<ao_graph::LoadError> for Error {
    fn from(e: ao_graph::LoadError) -> Self {
        Error::Engine(EngineError::Load(e))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Engine(EngineError::Store(e))
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Engine(e) => match e {
                EngineError::InvalidInput { .. } => ErrorKind::InvalidInput,
                EngineError::InvalidAnswer { .. } => ErrorKind::InvalidAnswer,
                EngineError::AnswerRequired { .. } => ErrorKind::AnswerRequired,
                EngineError::NotResumable { .. } => ErrorKind::NotResumable,
                EngineError::RunNotFound(_) => ErrorKind::RunNotFound,
                EngineError::Load(_) => ErrorKind::InvalidWorkflow,
                EngineError::Store(_) => ErrorKind::Store,
            },
            Error::WorkflowNotFound { .. } => ErrorKind::WorkflowNotFound,
            Error::NotConfigured(_) | Error::Config(_) | Error::Policy(_) => ErrorKind::Config,
            Error::Changeset { .. } => ErrorKind::Changeset,
            Error::OtherRoot { .. } => ErrorKind::OtherRoot,
            Error::ModeChanged { .. } => ErrorKind::NotResumable,
            Error::Tool(e) if e.is_invalid_input() => ErrorKind::InvalidInput,
            Error::Tool(_) => ErrorKind::ToolFailed,
            Error::Model(_) => ErrorKind::Config,
            Error::Usage(_) => ErrorKind::Usage,
            Error::Profiles(_) => ErrorKind::Store,
            Error::Cassette { .. } => ErrorKind::InvalidCassette,
            Error::CassetteNotWritten { .. } => ErrorKind::CassetteNotWritten,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_exit_2_and_failures_exit_1() {
        let not_found = Error::from(EngineError::RunNotFound("r".into()));
        assert_eq!(not_found.kind(), ErrorKind::RunNotFound);
        assert_eq!(not_found.exit_code(), 2);
        let changeset = Error::Changeset {
            run_id: "r".into(),
            message: "m".into(),
        };
        assert_eq!(changeset.exit_code(), 1);
        assert_eq!(ErrorKind::Store.exit_code(), 1);
        assert_eq!(
            serde_json::to_value(ErrorKind::AnswerRequired).unwrap(),
            "answer_required"
        );
        assert_eq!(ErrorKind::AnswerRequired.as_str(), "answer_required");
    }
}
