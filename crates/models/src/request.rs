//! What a caller asks for ([`CompletionRequest`]) and gets back ([`Completion`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::structured::StructuredMode;
use crate::usage::Usage;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    /// A previous model turn: text and/or tool calls.
    Assistant {
        content: Option<String>,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of a tool call, sent back to the model.
    Tool {
        tool_call_id: String,
        content: String,
    },
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message::System {
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::User {
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message::Assistant {
            content: Some(content.into()),
            tool_calls: Vec::new(),
        }
    }

    /// The assistant turn that made `tool_calls`, to put before their results, with the text
    /// the model wrote alongside them (empty text is sent as none).
    pub fn assistant_tool_calls(content: Option<String>, tool_calls: Vec<ToolCall>) -> Message {
        Message::Assistant {
            content: content.filter(|c| !c.is_empty()),
            tool_calls,
        }
    }

    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message::Tool {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
        }
    }

    /// Characters of text this message carries, for usage estimates.
    pub(crate) fn chars(&self) -> usize {
        match self {
            Message::System { content } | Message::User { content } => content.chars().count(),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                content.as_deref().map_or(0, |c| c.chars().count())
                    + tool_calls
                        .iter()
                        .map(|t| t.name.len() + t.arguments.len())
                        .sum::<usize>()
            }
            Message::Tool { content, .. } => content.chars().count(),
        }
    }
}

/// A tool the model may call: a function name, a description and a JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    pub parameters: serde_json::Value,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id to answer with in [`Message::Tool`] (generated when the server sent none).
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: a JSON text, not validated here.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed as JSON, leniently (fences, prose).
    pub fn arguments_json(&self) -> Option<serde_json::Value> {
        crate::structured::extract_json(&self.arguments)
    }
}

/// A JSON Schema the reply must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// Name sent as `json_schema.name` (letters, digits, `_`, `-`; others are replaced).
    pub name: String,
    pub schema: serde_json::Value,
    /// Rules the schema cannot say, checked on a reply that matches it; a broken rule is
    /// treated like a schema issue (the model is asked to repair its reply).
    #[serde(skip)]
    pub check: Option<ReplyCheck>,
}

/// The function a [`ReplyCheck`] runs.
pub type CheckFn = dyn Fn(&serde_json::Value) -> Result<(), String> + Send + Sync;

/// A check of a reply beyond its schema: `Err` says which rule it breaks.
#[derive(Clone)]
pub struct ReplyCheck(pub std::sync::Arc<CheckFn>);

impl std::fmt::Debug for ReplyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyCheck")
    }
}

impl PartialEq for ReplyCheck {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl OutputSchema {
    pub fn new(name: impl Into<String>, schema: serde_json::Value) -> Self {
        OutputSchema {
            name: name.into(),
            schema,
            check: None,
        }
    }

    /// Adds rules the schema cannot express (see [`OutputSchema::check`]).
    pub fn with_check(
        mut self,
        check: impl Fn(&serde_json::Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(ReplyCheck(std::sync::Arc::new(check)));
        self
    }

    pub(crate) fn wire_name(&self) -> String {
        let cleaned: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        if cleaned.is_empty() {
            "output".into()
        } else {
            cleaned
        }
    }
}

/// One model call.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub messages: Vec<Message>,
    /// Ask for JSON matching this schema; the reply is validated and repaired.
    pub schema: Option<OutputSchema>,
    /// Repair rounds after the first reply when it does not match the schema (default
    /// [`DEFAULT_MAX_REPAIRS`]). Bounded apart from the retry budget: a repair is a new question,
    /// not a resend.
    pub max_repairs: u32,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Overrides the role's `max_tokens` (`Some(0)` sends no limit).
    pub max_tokens: Option<u32>,
    /// Overrides the role's `temperature`.
    pub temperature: Option<f64>,
    /// The most HTTP requests this call may send (retries, fallbacks, step-downs and repairs
    /// included), e.g. what is left of a run's budget; unbounded beyond the role's own limits
    /// when `None`. At least one request is always sent.
    pub max_requests: Option<u32>,
}

/// Repair rounds of a structured call unless the request says otherwise.
pub const DEFAULT_MAX_REPAIRS: u32 = 2;

impl CompletionRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        CompletionRequest {
            messages,
            schema: None,
            max_repairs: DEFAULT_MAX_REPAIRS,
            tools: Vec::new(),
            max_tokens: None,
            temperature: None,
            max_requests: None,
        }
    }

    /// Caps the HTTP requests of this call (see [`CompletionRequest::max_requests`]).
    pub fn with_max_requests(mut self, max_requests: u32) -> Self {
        self.max_requests = Some(max_requests);
        self
    }

    pub fn with_schema(mut self, schema: OutputSchema) -> Self {
        self.schema = Some(schema);
        self
    }

    pub fn with_max_repairs(mut self, max_repairs: u32) -> Self {
        self.max_repairs = max_repairs;
        self
    }

    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }

    /// Overrides the role's `max_tokens` for this call (`0` sends no limit).
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }
}

/// What a streaming call reports as it goes ([`crate::ModelClient::complete_streaming`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// New reply text, in order.
    Text(&'a str),
    /// Another HTTP request of the same call starts (a retry, a fallback model, a weaker
    /// structured-output mode, or a repair round): text shown so far belongs to an earlier
    /// reply.
    Restart {
        /// The 1-based number of the request that starts.
        attempt: u32,
    },
}

/// The primary model of a role failed and a fallback model answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackNote {
    /// The model that was tried first (the role's primary).
    pub from: String,
    /// Why it was left: its last error.
    pub reason: String,
}

/// The result of a successful call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub role: String,
    /// The configured model id that answered (the primary or a fallback).
    pub model: String,
    /// The model name the server reported, if any.
    pub served_model: Option<String>,
    pub base_url: String,
    /// The reply text (empty when the model only called tools).
    pub text: String,
    /// The parsed, validated JSON, when a schema was asked for.
    pub json: Option<serde_json::Value>,
    pub tool_calls: Vec<ToolCall>,
    /// As the server sent it (`stop`, `length`, `tool_calls`, `eos`, …).
    pub finish_reason: Option<String>,
    /// The text reply was cut off at the token limit (`finish_reason: length`); the caller
    /// should warn (a structured or tool-call reply cut off is an error instead).
    pub truncated: bool,
    /// Set when a fallback model answered instead of the role's primary.
    pub fallback: Option<FallbackNote>,
    /// Summed over every successful round trip of this call (repairs included).
    pub usage: Usage,
    /// Wall time of the whole call.
    #[serde(serialize_with = "duration_ms")]
    pub latency: Duration,
    /// HTTP requests sent (retries, fallbacks, step-downs and repairs included).
    pub attempts: u32,
    /// Of which retries after a failed request (the role's `max_retries` budget).
    pub retries: u32,
    /// Repair rounds used.
    pub repairs: u32,
    pub structured_mode: Option<StructuredMode>,
}

fn duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}
