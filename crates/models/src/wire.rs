//! The chat-completions wire format: request bodies built with `async-openai`'s request types,
//! replies parsed into lenient types of our own.
//!
//! Every reply field is optional or defaulted and unknown fields are ignored, because real
//! servers differ: `finish_reason` may be `"eos"` or `""`, `id`/`created` may be missing,
//! `created` may be a float, tool calls may lack `type`, arguments may be an object instead of
//! a JSON string, `content` may be an array of parts.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CreateChatCompletionRequest, FunctionCall, FunctionObject, ResponseFormat,
    ResponseFormatJsonSchema,
};
use serde::Deserialize;
use serde_json::Value;

use crate::request::{Message, OutputSchema, ToolCall, ToolSpec};
use crate::structured::{StructuredMode, schema_instruction};

/// Everything one request body depends on.
pub(crate) struct BodyParams<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    pub schema: Option<(&'a OutputSchema, StructuredMode)>,
    /// The strict form of the schema ([`crate::strict::to_strict`]), when it has one: sent
    /// with `strict: true` in `json_schema` mode; without it the schema goes as it is, unstrict.
    pub strict_schema: Option<&'a Value>,
    pub tools: &'a [ToolSpec],
    pub max_tokens: Option<u32>,
    /// Send the limit as `max_completion_tokens` (OpenAI, whose reasoning models refuse
    /// `max_tokens`) rather than `max_tokens` (what every other server understands).
    pub max_completion_tokens: bool,
    pub temperature: Option<f64>,
    pub stream: bool,
}

/// Builds the JSON request body.
pub(crate) fn request_body(p: &BodyParams<'_>) -> Value {
    let mut messages: Vec<ChatCompletionRequestMessage> =
        p.messages.iter().map(to_wire_message).collect();
    let mut response_format = None;
    if let Some((schema, mode)) = p.schema {
        if mode.schema_in_prompt() {
            let instruction = schema_instruction(&schema.schema);
            // Appended to the first system message, or a new one at the front.
            match messages.iter_mut().find_map(|m| match m {
                ChatCompletionRequestMessage::System(s) => Some(s),
                _ => None,
            }) {
                Some(system) => {
                    if let ChatCompletionRequestSystemMessageContent::Text(t) = &mut system.content
                    {
                        t.push_str("\n\n");
                        t.push_str(&instruction);
                    }
                }
                None => messages.insert(
                    0,
                    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                        content: ChatCompletionRequestSystemMessageContent::Text(instruction),
                        name: None,
                    }),
                ),
            }
        }
        response_format = match mode {
            StructuredMode::JsonSchema => Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: schema.wire_name(),
                    schema: p.strict_schema.unwrap_or(&schema.schema).clone(),
                    strict: Some(p.strict_schema.is_some()),
                },
            }),
            StructuredMode::JsonObjectSchema | StructuredMode::JsonObject => {
                Some(ResponseFormat::JsonObject)
            }
            StructuredMode::PromptOnly => None,
        };
    }
    let tools: Vec<ChatCompletionTools> = p
        .tools
        .iter()
        .map(|t| {
            ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: Some(t.parameters.clone()),
                    strict: None,
                },
            })
        })
        .collect();
    // `max_tokens` is deprecated by OpenAI in favour of `max_completion_tokens`, but it is the
    // one every OpenAI-compatible local server understands.
    #[allow(deprecated)]
    let request = CreateChatCompletionRequest {
        model: p.model.to_string(),
        messages,
        max_tokens: p.max_tokens.filter(|_| !p.max_completion_tokens),
        max_completion_tokens: p.max_tokens.filter(|_| p.max_completion_tokens),
        response_format,
        tools: (!tools.is_empty()).then_some(tools),
        stream: p.stream.then_some(true),
        stream_options: p.stream.then_some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        }),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&request).unwrap_or(Value::Null);
    // Set here rather than through the request type, whose `f32` would send 0.2 as
    // 0.20000000298023224.
    if let (Some(t), Value::Object(map)) = (p.temperature, &mut body) {
        map.insert("temperature".into(), Value::from(t));
    }
    // The schema rides along with `json_object` (an extension llama.cpp and others read to
    // constrain the output; the one OpenAI's type has no field for).
    if let (Some((schema, StructuredMode::JsonObjectSchema)), Some(format)) = (
        p.schema,
        body.get_mut("response_format")
            .and_then(Value::as_object_mut),
    ) {
        format.insert("schema".into(), schema.schema.clone());
    }
    body
}

fn to_wire_message(m: &Message) -> ChatCompletionRequestMessage {
    match m {
        Message::System { content } => {
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: ChatCompletionRequestSystemMessageContent::Text(content.clone()),
                name: None,
            })
        }
        Message::User { content } => {
            ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                content: ChatCompletionRequestUserMessageContent::Text(content.clone()),
                name: None,
            })
        }
        Message::Assistant {
            content,
            tool_calls,
        } => {
            let calls: Vec<ChatCompletionMessageToolCalls> = tool_calls
                .iter()
                .map(|c| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: c.id.clone(),
                        function: FunctionCall {
                            name: c.name.clone(),
                            arguments: c.arguments.clone(),
                        },
                    })
                })
                .collect();
            #[allow(deprecated)]
            let msg = ChatCompletionRequestAssistantMessage {
                content: content
                    .clone()
                    .map(ChatCompletionRequestAssistantMessageContent::Text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Default::default()
            };
            ChatCompletionRequestMessage::Assistant(msg)
        }
        Message::Tool {
            tool_call_id,
            content,
        } => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(content.clone()),
            tool_call_id: tool_call_id.clone(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// lenient reply types

/// A chat-completion reply or stream chunk, leniently.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireReply {
    pub id: Option<String>,
    /// Integer or float seconds; kept raw.
    pub created: Option<Value>,
    pub model: Option<String>,
    pub choices: Vec<WireChoice>,
    pub usage: Option<WireUsage>,
    /// Some proxies send `{"error": …}` with a 200.
    pub error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireChoice {
    pub index: Option<Value>,
    pub message: Option<WireMessage>,
    /// Streaming chunks carry `delta` instead of `message`.
    pub delta: Option<WireMessage>,
    /// Any string, kept as sent.
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireMessage {
    pub role: Option<String>,
    /// A string, `null`, or an array of content parts.
    pub content: Option<Value>,
    pub tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireToolCall {
    pub index: Option<Value>,
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: Option<WireFunction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireFunction {
    pub name: Option<String>,
    /// A JSON string normally; some servers send an object.
    pub arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WireUsage {
    pub prompt_tokens: Option<Value>,
    pub completion_tokens: Option<Value>,
}

fn as_count(v: &Option<Value>) -> Option<u64> {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

impl WireUsage {
    /// (prompt, completion) when both counts are present.
    pub fn counts(&self) -> Option<(u64, u64)> {
        Some((
            as_count(&self.prompt_tokens)?,
            as_count(&self.completion_tokens)?,
        ))
    }
}

fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("text").and_then(Value::as_str).map(String::from),
                _ => None,
            })
            .collect(),
        _ => String::new(),
    }
}

fn arguments_text(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The parts of a reply the client uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    /// (prompt, completion) as the server counted them.
    pub usage: Option<(u64, u64)>,
    pub served_model: Option<String>,
}

/// Parses a non-streaming reply body.
pub fn parse_reply(body: &str) -> Result<Reply, String> {
    let wire: WireReply = serde_json::from_str(body).map_err(|e| {
        format!(
            "not JSON ({e}); body starts with {:?}",
            body.chars().take(200).collect::<String>()
        )
    })?;
    if wire.choices.is_empty() {
        return Err(match &wire.error {
            Some(err) => format!("error object: {}", error_message(err)),
            None => "no `choices` in the reply".into(),
        });
    }
    let mut assembler = StreamAssembler {
        served_model: wire.model.clone(),
        usage: wire.usage.as_ref().and_then(WireUsage::counts),
        ..Default::default()
    };
    // Only the first choice is used (we never ask for n > 1).
    let choice = &wire.choices[0];
    if let Some(m) = choice.message.as_ref().or(choice.delta.as_ref()) {
        assembler.add_message(m)?;
    }
    assembler.finish_reason = choice.finish_reason.clone();
    Ok(assembler.finish())
}

/// The `message` of an error body (`{"error": {"message": …}}`, `{"error": "…"}`,
/// `{"message": …}`, `{"detail": …}`), or the body itself, shortened.
pub fn error_message(v: &Value) -> String {
    let pick = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("message")
                .or_else(|| o.get("detail"))
                .or_else(|| o.get("error"))
                .and_then(|m| match m {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(inner) => inner
                        .get("message")
                        .and_then(Value::as_str)
                        .map(String::from),
                    _ => None,
                }),
            _ => None,
        }
    };
    let text = pick(v).unwrap_or_else(|| v.to_string());
    shorten(&text, 300)
}

/// Shortens text to `max` characters, marking the cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// The most tool calls one reply may carry; a tool-call `index` at or above it is an invalid
/// reply (a server-sent index must never size an allocation).
pub(crate) const MAX_TOOL_CALLS: usize = 128;

/// Assembles streamed deltas (and, reused, a whole message) into a [`Reply`].
#[derive(Debug, Default)]
pub(crate) struct StreamAssembler {
    text: String,
    /// (id, name, arguments) by tool-call index.
    tools: Vec<(Option<String>, String, String)>,
    pub finish_reason: Option<String>,
    pub usage: Option<(u64, u64)>,
    pub served_model: Option<String>,
    pub chunks: usize,
}

impl StreamAssembler {
    /// Adds one message or delta; returns the new text, if any. Fails on a tool-call index
    /// out of range (at most [`MAX_TOOL_CALLS`] calls).
    pub fn add_message(&mut self, m: &WireMessage) -> Result<Option<String>, String> {
        let new_text = m
            .content
            .as_ref()
            .map(content_text)
            .filter(|t| !t.is_empty());
        if let Some(t) = &new_text {
            self.text.push_str(t);
        }
        for (pos, call) in m.tool_calls.iter().flatten().enumerate() {
            // An index that is not a count (missing, `null`, a word) means "in order".
            let index = as_count(&call.index)
                .map_or(Some(pos), |i| usize::try_from(i).ok())
                .filter(|i| *i < MAX_TOOL_CALLS)
                .ok_or_else(|| {
                    format!(
                        "tool call index {} is out of range (at most {MAX_TOOL_CALLS} tool calls)",
                        shorten(
                            &call
                                .index
                                .as_ref()
                                .map_or(pos.to_string(), Value::to_string),
                            40
                        )
                    )
                })?;
            if self.tools.len() <= index {
                self.tools
                    .resize_with(index + 1, || (None, String::new(), String::new()));
            }
            let slot = &mut self.tools[index];
            if let Some(id) = &call.id
                && !id.is_empty()
            {
                slot.0 = Some(id.clone());
            }
            if let Some(f) = &call.function {
                if let Some(n) = &f.name {
                    slot.1.push_str(n);
                }
                slot.2.push_str(&arguments_text(&f.arguments));
            }
        }
        Ok(new_text)
    }

    /// Adds one parsed stream chunk; returns the new text, if any. Fails like
    /// [`StreamAssembler::add_message`].
    pub fn add_chunk(&mut self, chunk: &WireReply) -> Result<Option<String>, String> {
        self.chunks += 1;
        if self.served_model.is_none() {
            self.served_model = chunk.model.clone();
        }
        if let Some(u) = chunk.usage.as_ref().and_then(WireUsage::counts) {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.first() else {
            return Ok(None);
        };
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        match choice.delta.as_ref().or(choice.message.as_ref()) {
            Some(d) => self.add_message(d),
            None => Ok(None),
        }
    }

    pub fn finish(self) -> Reply {
        Reply {
            text: self.text,
            tool_calls: self
                .tools
                .into_iter()
                .enumerate()
                .filter(|(_, (_, name, _))| !name.is_empty())
                .map(|(i, (id, name, arguments))| ToolCall {
                    id: id.unwrap_or_else(|| format!("call_{i}")),
                    name,
                    arguments,
                })
                .collect(),
            finish_reason: self.finish_reason,
            usage: self.usage,
            served_model: self.served_model,
        }
    }
}

/// Splits a server-sent-event byte stream into `data:` payloads.
#[derive(Debug, Default)]
pub(crate) struct SseSplitter {
    buffer: Vec<u8>,
}

impl SseSplitter {
    /// Feeds bytes; returns the complete `data:` payloads now available.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(data) = line.strip_prefix("data:") {
                out.push(data.trim_start().to_string());
            }
        }
        out
    }

    /// Whatever is left when the stream ends without a final newline.
    pub fn finish(&mut self) -> Vec<String> {
        let rest = std::mem::take(&mut self.buffer);
        let line = String::from_utf8_lossy(&rest);
        line.trim_end_matches(['\n', '\r'])
            .strip_prefix("data:")
            .map(|d| vec![d.trim_start().to_string()])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_quirky_replies() {
        let body = json!({
            "created": 1.7e9, "extra": {"x": 1},
            "choices": [{"message": {"content": "hi", "tool_calls": [
                {"function": {"name": "read", "arguments": {"path": "a"}}}
            ]}, "finish_reason": "eos", "logprobs": null}],
            "usage": {"prompt_tokens": 3.0, "completion_tokens": 2}
        })
        .to_string();
        let r = parse_reply(&body).expect("reply");
        assert_eq!(r.text, "hi");
        assert_eq!(r.finish_reason.as_deref(), Some("eos"));
        assert_eq!(r.usage, Some((3, 2)));
        assert_eq!(r.tool_calls[0].id, "call_0");
        assert_eq!(r.tool_calls[0].arguments, "{\"path\":\"a\"}");
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type":"text","text":"b"}]}}]});
        assert_eq!(parse_reply(&parts.to_string()).expect("reply").text, "ab");
        let err =
            parse_reply(&json!({"error": {"message": "boom"}}).to_string()).expect_err("error");
        assert!(err.contains("boom"), "{err}");
        assert!(parse_reply("<html>").is_err());
    }

    #[test]
    fn huge_or_out_of_range_tool_call_indexes_are_invalid_not_a_panic() {
        for index in [
            json!(1e300),
            json!(u64::MAX),
            json!(128),
            json!(1_000_000_000u64),
        ] {
            let body = json!({"choices": [{"message": {"tool_calls": [
                {"index": index, "function": {"name": "read", "arguments": "{}"}}
            ]}}]})
            .to_string();
            let err = parse_reply(&body).expect_err("out of range");
            assert!(err.contains("out of range"), "{err}");
            let chunk: WireReply = serde_json::from_str(&body).expect("chunk");
            let mut a = StreamAssembler::default();
            assert!(a.add_chunk(&chunk).is_err());
        }
        // In range, sparse, or not a number: accepted.
        let body = json!({"choices": [{"message": {"tool_calls": [
            {"index": 127, "function": {"name": "a"}},
            {"index": "x", "function": {"name": "b"}},
            {"index": -1, "function": {"name": "c"}}
        ]}}]})
        .to_string();
        let r = parse_reply(&body).expect("reply");
        let names: Vec<_> = r.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
    }

    #[test]
    fn sse_splitter_handles_split_lines_and_crlf() {
        let mut s = SseSplitter::default();
        assert!(s.feed(b"data: {\"a\"").is_empty());
        assert_eq!(
            s.feed(b":1}\r\n\r\n: comment\ndata:[DONE]\n"),
            vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]
        );
        assert!(s.feed(b"data: x").is_empty());
        assert_eq!(s.finish(), vec!["x".to_string()]);
    }

    #[test]
    fn request_body_per_mode() {
        let schema = OutputSchema::new(
            "my plan!",
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        );
        let strict = crate::strict::to_strict(&schema.schema).expect("strict");
        let messages = [Message::system("sys"), Message::user("u")];
        let mut p = BodyParams {
            model: "m",
            messages: &messages,
            schema: Some((&schema, StructuredMode::JsonSchema)),
            strict_schema: Some(&strict),
            tools: &[],
            max_tokens: Some(10),
            max_completion_tokens: false,
            temperature: Some(0.2),
            stream: false,
        };
        let b = request_body(&p);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "my_plan_");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            b["response_format"]["json_schema"]["schema"]["required"],
            json!(["a"])
        );
        assert_eq!(b["max_tokens"], 10);
        assert!(b.get("max_completion_tokens").is_none());
        // As written: not 0.20000000298023224.
        assert_eq!(b["temperature"].to_string(), "0.2");
        assert_eq!(b["messages"][0]["content"], "sys");
        assert!(b.get("stream").is_none());
        // No strict form: the schema as it is, not strict.
        p.strict_schema = None;
        p.max_completion_tokens = true;
        let b = request_body(&p);
        assert_eq!(b["response_format"]["json_schema"]["strict"], false);
        assert_eq!(b["response_format"]["json_schema"]["schema"], schema.schema);
        assert_eq!(b["max_completion_tokens"], 10);
        assert!(b.get("max_tokens").is_none());
        p.schema = Some((&schema, StructuredMode::JsonObjectSchema));
        let b = request_body(&p);
        assert_eq!(
            b["response_format"],
            json!({"type": "json_object", "schema": schema.schema})
        );
        let sys = b["messages"][0]["content"].as_str().unwrap_or_default();
        assert!(sys.starts_with("sys\n\nReply with one JSON value"), "{sys}");
        p.schema = Some((&schema, StructuredMode::JsonObject));
        let b = request_body(&p);
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        p.schema = Some((&schema, StructuredMode::PromptOnly));
        p.stream = true;
        p.max_tokens = None;
        p.temperature = None;
        let b = request_body(&p);
        assert!(b.get("response_format").is_none());
        assert!(b.get("max_completion_tokens").is_none());
        assert!(b.get("temperature").is_none());
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn an_assistant_turn_with_tool_calls_keeps_its_text() {
        let call = ToolCall {
            id: "c1".into(),
            name: "grep".into(),
            arguments: "{}".into(),
        };
        let messages = [Message::assistant_tool_calls(
            Some("Let me look.".into()),
            vec![call.clone()],
        )];
        let b = request_body(&BodyParams {
            model: "m",
            messages: &messages,
            schema: None,
            strict_schema: None,
            tools: &[],
            max_tokens: None,
            max_completion_tokens: false,
            temperature: None,
            stream: false,
        });
        assert_eq!(b["messages"][0]["content"], "Let me look.");
        assert_eq!(b["messages"][0]["tool_calls"][0]["id"], "c1");
        let empty = Message::assistant_tool_calls(Some(String::new()), vec![call]);
        assert!(matches!(empty, Message::Assistant { content: None, .. }));
    }
}
