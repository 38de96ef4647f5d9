//! Errors of the model layer. Each says what failed, for which role, model and endpoint, and
//! what to do about it. None ever contains an API key (messages pass through redaction).

use std::time::Duration;

use ao_core::config::ConfigError;

use crate::usage::Usage;

/// One schema violation: where in the reply, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIssue {
    /// JSON pointer into the reply (`""` for the whole value, `/steps/0/title`, …).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "at {path}: {}", self.message)
    }
}

/// The role, model and endpoint a failed call was talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub role: String,
    pub model: String,
    pub base_url: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "role {}, model `{}`", self.role, self.model)
    }
}

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Establishing the connection.
    Connect,
    /// One HTTP attempt as a whole.
    Total,
    /// The pause between two streamed chunks.
    Idle,
    /// The whole call, across retries, fallbacks and repairs.
    Overall,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Total => "total",
            TimeoutKind::Idle => "idle (between stream chunks)",
            TimeoutKind::Overall => "overall",
        })
    }
}

fn join_issues(issues: &[SchemaIssue]) -> String {
    issues
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A model call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("unknown model role `{role}`; configured roles: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownRole { role: String, known: Vec<String> },

    #[error(
        "bad API key for {} ({at}): the server answered {status}{}; check {hint}",
        at.base_url,
        detail_suffix(detail)
    )]
    BadApiKey {
        at: Box<Target>,
        status: u16,
        detail: String,
        hint: String,
    },

    #[error(
        "unknown model `{}` at {} (role {}){}; check {hint} against the models the endpoint \
         serves",
        at.model,
        at.base_url,
        at.role,
        detail_suffix(detail)
    )]
    UnknownModel {
        at: Box<Target>,
        detail: String,
        hint: String,
    },

    #[error(
        "wrong base URL: {url} answered 404 ({at}); the base URL usually ends in /v1 — check \
         {hint}"
    )]
    WrongBaseUrl {
        at: Box<Target>,
        url: String,
        hint: String,
    },

    #[error(
        "{} rejected the request with {status} ({at}){}; this is not retried",
        at.base_url,
        detail_suffix(detail)
    )]
    Rejected {
        at: Box<Target>,
        status: u16,
        detail: String,
    },

    #[error(
        "{} is rate-limiting model `{}` (role {}) after {attempts} attempt(s){}; wait, lower the \
         load, or configure `fallback` models",
        at.base_url,
        at.model,
        at.role,
        retry_after.map(|d| format!(", retry after {}s", d.as_secs_f64().ceil())).unwrap_or_default()
    )]
    RateLimited {
        at: Box<Target>,
        attempts: u32,
        retry_after: Option<Duration>,
    },

    #[error(
        "{} failed with {status} ({at}) after {attempts} attempt(s){}; the server is down or \
         overloaded",
        at.base_url,
        detail_suffix(detail)
    )]
    ServerError {
        at: Box<Target>,
        status: u16,
        attempts: u32,
        detail: String,
    },

    #[error(
        "cannot connect to {} ({at}) after {attempts} attempt(s): {detail}; is the server \
         running and the base URL right?",
        at.base_url
    )]
    Connect {
        at: Box<Target>,
        attempts: u32,
        detail: String,
    },

    #[error(
        "{kind} timeout of {}s reached calling {} ({at}) after {attempts} attempt(s); raise the \
         role's `timeout` in ao.toml or use a faster model",
        after.as_secs_f64(),
        at.base_url
    )]
    Timeout {
        at: Box<Target>,
        kind: TimeoutKind,
        after: Duration,
        attempts: u32,
    },

    #[error(
        "{} sent a reply that is not a chat completion ({at}): {detail}",
        at.base_url
    )]
    InvalidReply { at: Box<Target>, detail: String },

    #[error("the output schema `{name}` is not a valid JSON Schema: {detail}")]
    InvalidSchema { name: String, detail: String },

    #[error(
        "the reply of model `{}` (role {}, {}) was cut off (finish_reason `length`: {} \
         reached, or the server's context window full) before the {what} was complete; raise \
         {hint}, or the server's context size",
        at.model,
        at.role,
        at.base_url,
        max_tokens.map_or_else(|| "no max_tokens was sent; the server's limit".to_string(), |n| format!("max_tokens {n}")),
    )]
    CutOff {
        at: Box<Target>,
        /// The `max_tokens` the request sent.
        max_tokens: Option<u32>,
        /// `JSON` or `tool call`.
        what: &'static str,
        /// What to set to raise the limit.
        hint: String,
    },

    #[error(
        "the reply of model `{}` (role {}, {}) does not match schema `{schema}` after {repairs} \
         repair attempt(s): {}",
        at.model,
        at.role,
        at.base_url,
        join_issues(issues)
    )]
    SchemaViolation {
        at: Box<Target>,
        schema: String,
        repairs: u32,
        issues: Vec<SchemaIssue>,
        /// The last reply, redacted.
        last_reply: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl ModelError {
    /// Whether a fallback model could do better (the primary is rate-limited or down).
    pub fn is_fallback_worthy(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. }
                | ModelError::ServerError { .. }
                | ModelError::Connect { .. }
                | ModelError::Timeout { .. }
        )
    }

    /// The schema error paths, when the reply did not match the schema.
    pub fn schema_paths(&self) -> Vec<&str> {
        match self {
            ModelError::SchemaViolation { issues, .. } => {
                issues.iter().map(|i| i.path.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// A model call that failed, with what it cost: the error, the usage of every reply received
/// before it (tokens, and cost where priced), and how much of the call's retry budget it used.
///
/// The model layer is the one retry layer of a model call: it has already retried what was
/// worth retrying (within the role's `max_retries` budget and overall timeout), so a caller does
/// not call again for the same reason.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CallError {
    pub error: ModelError,
    /// Summed over every reply received (each HTTP request that got a 2xx body); zero when none
    /// did. Every request's own usage is also in its [`crate::Exchange`].
    pub usage: Usage,
    /// HTTP requests sent by the call.
    pub requests: u32,
    /// Retries (after a failed request) the call made, of the role's budget.
    pub retries: u32,
    /// Whether the call stopped because its retry budget or its overall time ran out (rather
    /// than on a failure not worth retrying).
    pub exhausted: bool,
}

impl CallError {
    /// An error before any request was sent.
    pub(crate) fn before_sending(error: impl Into<ModelError>) -> Self {
        CallError {
            error: error.into(),
            usage: Usage::default(),
            requests: 0,
            retries: 0,
            exhausted: false,
        }
    }

    /// Whether the model layer sent this call more than once (retries, fallbacks, step-downs,
    /// repairs).
    pub fn retried(&self) -> bool {
        self.requests > 1
    }
}

impl From<CallError> for ModelError {
    fn from(e: CallError) -> Self {
        e.error
    }
}
