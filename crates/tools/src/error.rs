//! Errors of the tools crate. A policy *denial* is not an error (it is a normal
//! [`crate::ToolOutcome`]); these are for invalid configuration, invalid input and tools that
//! failed while doing allowed work.

use std::path::PathBuf;

use ao_core::redact::Redactor;

/// The policy could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// The `[policy]` table is invalid.
    #[error("invalid `{key}` in ao.toml: {message}")]
    InvalidConfig {
        /// Config key (`policy.writable`, …).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A glob in the policy does not parse.
    #[error("invalid glob `{pattern}` in `{key}`: {message}")]
    Glob {
        /// Config key.
        key: String,
        /// The pattern.
        pattern: String,
        /// Parser message.
        message: String,
    },
    /// The root cannot be used.
    #[error("project root {path} cannot be used: {message}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// An `ao apply` that a crash interrupted could not be finished or undone; nothing runs
    /// until it is, so no run reads a half-written tree.
    #[error("{message} (state dir {state_dir})")]
    InterruptedApply {
        /// The state dir holding the journal.
        state_dir: PathBuf,
        /// What failed and what to do.
        message: String,
    },
}

/// A tool call that did not produce a result (as opposed to a denial, which does).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error("unknown tool `{name}`; `ao tools list` shows the available tools")]
    UnknownTool {
        /// The name asked for.
        name: String,
    },
    /// The arguments do not match the tool's input schema.
    #[error("invalid arguments for `{tool}`: {}", errors.join("; "))]
    InvalidArgs {
        /// Tool name.
        tool: String,
        /// One message per schema violation, with its JSON path.
        errors: Vec<String>,
    },
    /// The tool was allowed but failed.
    #[error("`{tool}` failed{}: {message}", path.as_ref().map(|p| format!(" on `{p}`")).unwrap_or_default())]
    Failed {
        /// Tool name.
        tool: String,
        /// The path or argv concerned, if any.
        path: Option<String>,
        /// What failed and what to do.
        message: String,
    },
}

impl ToolError {
    pub(crate) fn failed(tool: &str, path: Option<&str>, message: impl Into<String>) -> Self {
        ToolError::Failed {
            tool: tool.to_string(),
            path: path.map(str::to_string),
            message: message.into(),
        }
    }

    /// The same error with every secret the redactor knows removed from its text.
    pub fn redacted(self, redactor: &Redactor) -> Self {
        match self {
            ToolError::UnknownTool { name } => ToolError::UnknownTool {
                name: redactor.redact_str(&name),
            },
            ToolError::InvalidArgs { tool, errors } => ToolError::InvalidArgs {
                tool,
                errors: errors.iter().map(|e| redactor.redact_str(e)).collect(),
            },
            ToolError::Failed {
                tool,
                path,
                message,
            } => ToolError::Failed {
                tool,
                path: path.map(|p| redactor.redact_str(&p)),
                message: redactor.redact_str(&message),
            },
        }
    }

    /// True when the caller's input was at fault (the CLI exits 2 for these).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            ToolError::UnknownTool { .. } | ToolError::InvalidArgs { .. }
        )
    }
}

/// Applying a changeset failed part-way through I/O (a refusal is a normal
/// [`crate::ApplyReport`], not this).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Writing a file failed; files already renamed into place were restored.
    #[error("applying the changeset failed at `{path}`: {message}; files written before it were restored{}", if rollback_failures.is_empty() { String::new() } else { format!(" except {} (restore them by hand)", rollback_failures.join(", ")) })]
    Io {
        /// The file concerned.
        path: String,
        /// The I/O error.
        message: String,
        /// Files that could not be restored.
        rollback_failures: Vec<String>,
    },
    /// The apply journal or lock could not be used (another apply is running, or the state
    /// dir is not writable); nothing was written.
    #[error("cannot apply the changeset: {0}")]
    Journal(String),
}
