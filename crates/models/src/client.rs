//! [`ModelClient`]: roles → endpoints, and the call loop (structured-output modes, repairs,
//! fallback models, retries, one HTTP attempt).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime};

use ao_core::config::{Config, DEFAULT_WORKER, LEADER, ModelConfig, Provider};
use futures_util::StreamExt;
use serde::Serialize;

use crate::error::{CallError, ModelError, SchemaIssue, Target, TimeoutKind};
use crate::exchange::{AttemptKind, DiscardExchanges, Exchange, ExchangeRecorder, Redactor};
use crate::request::{Completion, CompletionRequest, FallbackNote, Message, StreamEvent};
use crate::retry::{MAX_RETRY_AFTER, RetryTiming, is_retryable_status, parse_retry_after};
use crate::structured::{
    LEARNED_MODE_LIFETIME, LearnedMode, LearnedModes, StructuredMode, endpoint_key,
    extract_json_prepared, repair_prompt, unix_secs, validate,
};
use crate::usage::{Usage, estimate_tokens};
use crate::wire::{
    BodyParams, Reply, SseSplitter, StreamAssembler, WireReply, error_message, parse_reply,
    request_body, shorten,
};

/// How many schema issues are reported and sent back in a repair prompt.
const MAX_ISSUES: usize = 8;

/// The largest reply body read (a whole reply, or a whole stream); beyond it the reply is
/// invalid. Bodies are read incrementally, so memory stays bounded whatever the server sends.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// The most of an error body (non-2xx) that is read and kept; the rest is dropped.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// The most of an oversized reply kept in the exchange record.
const OVERSIZE_KEPT_BYTES: usize = 64 * 1024;

/// How reading a body ended.
enum BodyEnd {
    Complete,
    /// More than the cap was sent; the bytes read stop at the cap.
    TooLarge,
    Broken(reqwest::Error),
}

/// Reads a body chunk by chunk, at most `cap` bytes.
async fn read_body(response: &mut reqwest::Response, cap: usize) -> (Vec<u8>, BodyEnd) {
    let mut buf = Vec::new();
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return (buf, BodyEnd::TooLarge);
    }
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                let room = cap - buf.len();
                if bytes.len() > room {
                    buf.extend_from_slice(&bytes[..room]);
                    return (buf, BodyEnd::TooLarge);
                }
                buf.extend_from_slice(&bytes);
            }
            Ok(None) => return (buf, BodyEnd::Complete),
            Err(e) => return (buf, BodyEnd::Broken(e)),
        }
    }
}

/// The start of an oversized body, for the exchange record.
fn oversize_excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(OVERSIZE_KEPT_BYTES)];
    format!(
        "{}… [cut: over {} MiB]",
        String::from_utf8_lossy(cut),
        MAX_REPLY_BYTES >> 20
    )
}

fn too_large(what: &str) -> Failure {
    Failure::Invalid(format!(
        "{what} is larger than {} MiB, the most ao reads; the server sent more than a chat \
         completion",
        MAX_REPLY_BYTES >> 20
    ))
}

/// A deadline beyond any real call (ten years), used when a configured one overflows.
const FAR_FUTURE: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// A client for every configured model role. Cheap to share behind an `Arc`; calls may run
/// concurrently.
pub struct ModelClient {
    roles: BTreeMap<String, RoleEndpoint>,
    modes: Mutex<LearnedModes>,
    mode_lifetime: Duration,
    /// Rate-limited models (by endpoint key) and when they may be tried again.
    cooldowns: Mutex<HashMap<String, Instant>>,
    timing: RetryTiming,
    redactor: Arc<Redactor>,
}

struct RoleEndpoint {
    config: ModelConfig,
    http: reqwest::Client,
}

/// A failed HTTP attempt, before it becomes a [`ModelError`].
#[derive(Debug)]
enum Failure {
    Status {
        status: u16,
        url: String,
        body: String,
        retry_after: Option<Duration>,
    },
    Connect(String),
    Timeout(TimeoutKind, Duration),
    /// The body broke off or could not be read.
    Transport(String),
    /// A 2xx whose body is not a chat completion.
    Invalid(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => is_retryable_status(*status),
            Failure::Connect(_) | Failure::Timeout(..) | Failure::Transport(_) => true,
            Failure::Invalid(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn is_rate_limit(&self) -> bool {
        matches!(self, Failure::Status { status: 429, .. })
    }

    fn describe(&self) -> String {
        match self {
            Failure::Status { status, body, .. } => format!("HTTP {status}: {}", body_detail(body)),
            Failure::Connect(e) => format!("connect: {e}"),
            Failure::Timeout(kind, after) => format!("{kind} timeout after {after:?}"),
            Failure::Transport(e) => format!("transport: {e}"),
            Failure::Invalid(e) => format!("invalid reply: {e}"),
        }
    }
}

/// The server's error message from a body, shortened.
fn body_detail(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => error_message(&v),
        Err(_) => shorten(body.trim(), 300),
    }
}

/// Whether an error body says the model does not exist.
fn mentions_unknown_model(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    lower.contains("model_not_found")
        || (lower.contains("model")
            && (lower.contains("not found")
                || lower.contains("does not exist")
                || lower.contains("invalid model")
                || lower.contains("unknown model")
                || lower.contains("no such model")
                || lower.contains("not exist")))
}

/// Why a failed request was a rejection of its structured-output mode `mode`, if it was: a
/// 400/422 or a 5xx whose body concerns the response format (llama.cpp's server answers
/// `json_schema` with a 500 naming `response_format`). A body that says nothing about it (a
/// transient 500, an overloaded 503, a context too long) is not.
fn format_rejection(failure: &Failure, mode: StructuredMode) -> Option<String> {
    if !mode.sends_response_format() {
        return None;
    }
    match failure {
        Failure::Status { status, body, .. }
            if matches!(status, 400 | 422 | 500..=599)
                && !mentions_unknown_model(body)
                && mentions_response_format(body) =>
        {
            Some(format!("HTTP {status}: {}", body_detail(body)))
        }
        _ => None,
    }
}

/// Whether an error body plausibly concerns the structured-output request (`response_format`,
/// a JSON schema, guided decoding / grammars), so a weaker mode may work.
fn mentions_response_format(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    [
        "response_format",
        "response format",
        "json_schema",
        "json_object",
        "json schema",
        "schema",
        "structured",
        "guided",
        "grammar",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Per-call state shared by the layers of the call loop.
struct Call<'a> {
    endpoint: &'a RoleEndpoint,
    recorder: &'a dyn ExchangeRecorder,
    on_event: Option<&'a (dyn Fn(StreamEvent<'_>) + Send + Sync)>,
    deadline: Instant,
    /// HTTP requests sent.
    requests: u32,
    /// The most requests the caller lets the call send (its budget), whatever the role's
    /// retry and repair bounds.
    max_requests: u32,
    /// Requests sent after a failed one (the role's `max_retries` budget).
    retries: u32,
    /// Usage of every reply received so far (`None` before the first).
    usage: Option<Usage>,
    /// The `max_tokens` every request of the call sends.
    max_tokens: Option<u32>,
    /// The strict form of the request's schema, when it has one.
    strict_schema: Option<serde_json::Value>,
}

impl Call<'_> {
    fn cfg(&self) -> &ModelConfig {
        &self.endpoint.config
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn budget_left(&self) -> bool {
        self.retries < self.cfg().max_retries.value && self.requests < self.max_requests
    }

    /// The call's error, with what it cost.
    fn fail(&self, error: ModelError, exhausted: bool) -> CallError {
        CallError {
            error,
            usage: self.usage.unwrap_or_default(),
            requests: self.requests,
            retries: self.retries,
            exhausted,
        }
    }
}

/// One successful round trip.
struct RoundTrip {
    reply: Reply,
    model: String,
    mode: Option<StructuredMode>,
    fallback: Option<FallbackNote>,
}

/// A round that failed: the error, and whether the retry budget or the overall time ran out.
type RoundFailure = (ModelError, bool);

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `max_tokens` of the plain probe call of [`ModelClient::probe`].
pub const PROBE_MAX_TOKENS: u32 = 16;
/// `max_tokens` of the structured probe call of [`ModelClient::probe`] (room for `{"ok": true}`
/// and a little prose or a fence around it).
pub const PROBE_STRUCTURED_MAX_TOKENS: u32 = 64;

/// What [`ModelClient::probe`] found out about one role: what `ao models list --check` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub role: String,
    pub model: String,
    pub base_url: String,
    /// Whether the plain call got a reply.
    pub ok: bool,
    /// Wall time of the plain call.
    #[serde(serialize_with = "duration_ms")]
    pub latency: Duration,
    /// Why the plain call failed.
    pub error: Option<String>,
    /// The mode structured output worked in (what runs use), when it worked.
    pub structured_mode: Option<StructuredMode>,
    /// Why structured output failed, when it did.
    pub structured_error: Option<String>,
    /// What was learned about the role's primary endpoint after the probe (mode, when, why),
    /// with whether it has expired.
    pub learned: Option<LearnedMode>,
}

fn duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl ModelClient {
    /// A client for every model role in `config` (the leader, if configured, and the workers).
    /// A missing leader is reported when the leader is called; a model role that is configured
    /// but wrong ([`Config::model_problems`]) fails here, saying what to set.
    pub fn new(config: &Config) -> Result<Self, ModelError> {
        config.check_models()?;
        Self::from_roles(config.model_roles().cloned())
    }

    /// A client for the given roles.
    pub fn from_roles(roles: impl IntoIterator<Item = ModelConfig>) -> Result<Self, ModelError> {
        install_crypto_provider();
        let mut map = BTreeMap::new();
        let mut secrets = Vec::new();
        for config in roles {
            let http = reqwest::Client::builder()
                .connect_timeout(config.timeouts.value.connect)
                .user_agent(concat!("ao/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ModelError::Connect {
                    at: Box::new(Target {
                        role: config.role.clone(),
                        model: config.model.value.clone(),
                        base_url: config.base_url.value.clone(),
                    }),
                    attempts: 0,
                    detail: format!("cannot build the HTTP client: {e}"),
                })?;
            if let Some(k) = &config.api_key {
                secrets.push(k.value.expose().to_string());
            }
            map.insert(config.role.clone(), RoleEndpoint { config, http });
        }
        Ok(ModelClient {
            roles: map,
            modes: Mutex::new(LearnedModes::new()),
            mode_lifetime: LEARNED_MODE_LIFETIME,
            cooldowns: Mutex::new(HashMap::new()),
            timing: RetryTiming::default(),
            redactor: Arc::new(Redactor::new(secrets)),
        })
    }

    /// Replaces the back-off timing (tests use short waits).
    pub fn with_retry_timing(mut self, timing: RetryTiming) -> Self {
        self.timing = timing;
        self
    }

    /// Replaces how long a learned structured-output mode is trusted
    /// ([`LEARNED_MODE_LIFETIME`] by default); after it the endpoint is probed again from the
    /// first mode.
    pub fn with_learned_mode_lifetime(mut self, lifetime: Duration) -> Self {
        self.mode_lifetime = lifetime;
        self
    }

    /// How long a learned mode is trusted.
    pub fn learned_mode_lifetime(&self) -> Duration {
        self.mode_lifetime
    }

    /// The configured role names: `leader` (if configured) and the worker names.
    pub fn roles(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// The configuration of a role (`worker` names the default worker).
    pub fn role_config(&self, role: &str) -> Option<&ModelConfig> {
        self.endpoint(role).ok().map(|e| &e.config)
    }

    /// The structured-output modes learned per endpoint so far (expired ones included, with
    /// when they were learned), to persist or show.
    pub fn learned_modes(&self) -> LearnedModes {
        lock(&self.modes).clone()
    }

    /// Adds previously learned modes; for an endpoint known to both, the more recently learned
    /// entry wins.
    pub fn import_learned_modes(&self, modes: LearnedModes) {
        lock(&self.modes).merge(modes);
    }

    /// Forgets the learned modes of `role`'s endpoints (its primary and fallback models), or of
    /// every endpoint when `role` is `None`, so the next call probes again from the first
    /// mode. Returns how many were forgotten.
    pub fn forget_learned_modes(&self, role: Option<&str>) -> usize {
        let mut modes = lock(&self.modes);
        match role.map(|r| self.endpoint(r)) {
            None => modes.retain(|_| false),
            Some(Err(_)) => 0,
            Some(Ok(endpoint)) => {
                let cfg = &endpoint.config;
                modes.retain(|m| {
                    !(m.base_url == cfg.base_url.value
                        && (m.model == cfg.model.value || cfg.fallback.value.contains(&m.model)))
                })
            }
        }
    }

    /// Calls the model of `role` (`leader`, a worker name, or `worker` for the default worker).
    pub async fn complete(
        &self,
        role: &str,
        request: CompletionRequest,
        recorder: &dyn ExchangeRecorder,
    ) -> Result<Completion, CallError> {
        self.run(role, request, recorder, None).await
    }

    /// Like [`ModelClient::complete`], streaming: `on_event` gets each piece of text as it
    /// arrives ([`StreamEvent::Text`]) and a [`StreamEvent::Restart`] before every request
    /// after the first (a retry, fallback or repair: the text so far belongs to an earlier
    /// reply). The role's idle timeout bounds every pause between two chunks. The result is
    /// assembled exactly as a non-streaming call's.
    pub async fn complete_streaming(
        &self,
        role: &str,
        request: CompletionRequest,
        recorder: &dyn ExchangeRecorder,
        on_event: &(dyn Fn(StreamEvent<'_>) + Send + Sync),
    ) -> Result<Completion, CallError> {
        self.run(role, request, recorder, Some(on_event)).await
    }

    /// Two tiny calls to `role`, as `ao models list --check` makes them: a plain one (is the
    /// model there, how fast does it answer; at most [`PROBE_MAX_TOKENS`] tokens) and a
    /// structured one (does structured output work, in which mode; at most
    /// [`PROBE_STRUCTURED_MAX_TOKENS`] tokens, no repair). Both go through the same path as
    /// every call, learned modes, retries and cool-downs included, so the report says what a
    /// run would see. Fails only for a role that is not configured.
    pub async fn probe(&self, role: &str) -> Result<ProbeReport, ModelError> {
        let cfg = self.endpoint(role)?.config.clone();
        let plain = CompletionRequest::new(vec![Message::user("Reply with the single word: ok")])
            .with_max_tokens(PROBE_MAX_TOKENS);
        let started = Instant::now();
        let plain = self.complete(role, plain, &DiscardExchanges).await;
        let latency = started.elapsed();
        let schema = serde_json::json!({"type": "object", "required": ["ok"],
            "properties": {"ok": {"type": "boolean"}}, "additionalProperties": false});
        let structured = CompletionRequest::new(vec![Message::user(
            "Answer with the JSON object {\"ok\": true}.",
        )])
        .with_schema(crate::request::OutputSchema::new("check", schema))
        .with_max_repairs(0)
        .with_max_tokens(PROBE_STRUCTURED_MAX_TOKENS);
        let structured = self.complete(role, structured, &DiscardExchanges).await;
        let learned = lock(&self.modes)
            .get(&cfg.base_url.value, &cfg.model.value)
            .cloned();
        Ok(ProbeReport {
            role: cfg.role.clone(),
            model: cfg.model.value.clone(),
            base_url: cfg.base_url.value.clone(),
            ok: plain.is_ok(),
            latency,
            error: plain.as_ref().err().map(|e| e.to_string()),
            structured_mode: structured.as_ref().ok().and_then(|c| c.structured_mode),
            structured_error: structured.as_ref().err().map(|e| e.to_string()),
            learned,
        })
    }

    fn endpoint(&self, role: &str) -> Result<&RoleEndpoint, ModelError> {
        let found = self.roles.get(role).or_else(|| {
            (role == "worker")
                .then(|| self.roles.get(DEFAULT_WORKER))
                .flatten()
        });
        match found {
            Some(e) => Ok(e),
            None if role == LEADER => Err(ao_core::config::ConfigError::MissingLeader.into()),
            None => Err(ModelError::UnknownRole {
                role: role.to_string(),
                known: self.roles(),
            }),
        }
    }

    async fn run(
        &self,
        role: &str,
        request: CompletionRequest,
        recorder: &dyn ExchangeRecorder,
        on_event: Option<&(dyn Fn(StreamEvent<'_>) + Send + Sync)>,
    ) -> Result<Completion, CallError> {
        let endpoint = self.endpoint(role).map_err(CallError::before_sending)?;
        let validator = match &request.schema {
            Some(s) => Some(jsonschema::validator_for(&s.schema).map_err(|e| {
                CallError::before_sending(ModelError::InvalidSchema {
                    name: s.name.clone(),
                    detail: e.to_string(),
                })
            })?),
            None => None,
        };
        let started = Instant::now();
        let cfg = &endpoint.config;
        let mut call = Call {
            endpoint,
            recorder,
            on_event,
            // Checked: an absurd configured timeout must not overflow `Instant`.
            deadline: started
                .checked_add(cfg.timeouts.value.overall)
                .or_else(|| started.checked_add(FAR_FUTURE))
                .unwrap_or(started),
            requests: 0,
            max_requests: request.max_requests.unwrap_or(u32::MAX).max(1),
            retries: 0,
            usage: None,
            max_tokens: match request.max_tokens {
                Some(0) => None,
                Some(n) => Some(n),
                None => cfg.max_tokens_limit(),
            },
            strict_schema: request
                .schema
                .as_ref()
                .and_then(|s| crate::strict::to_strict(&s.schema)),
        };
        let mut messages = request.messages.clone();
        let mut repairs = 0;
        let mut kind = AttemptKind::First;
        loop {
            let trip = self
                .round(&mut call, &messages, &request, kind)
                .await
                .map_err(|(error, exhausted)| call.fail(error, exhausted))?;
            let target = || {
                Box::new(Target {
                    role: role.to_string(),
                    model: trip.model.clone(),
                    base_url: cfg.base_url.value.clone(),
                })
            };
            // A turn that calls tools is not the answer yet: the schema applies to the reply
            // that follows the tool results.
            let calls_tools = !trip.reply.tool_calls.is_empty();
            let cut_off = trip.reply.finish_reason.as_deref() == Some("length");
            // Cut off JSON or tool arguments are not worth repairing: the repair would be as
            // long and overflow as well. A cut-off text is returned, flagged.
            if cut_off && (calls_tools || request.schema.is_some()) {
                return Err(call.fail(
                    ModelError::CutOff {
                        at: target(),
                        max_tokens: call.max_tokens,
                        what: if calls_tools { "tool call" } else { "JSON" },
                        hint: cfg.max_tokens_hint(),
                    },
                    false,
                ));
            }
            let (json, issues) = match (&request.schema, &validator) {
                (Some(schema), Some(v)) if !calls_tools => {
                    let restore = |value: &mut serde_json::Value| {
                        crate::strict::restore(value, &schema.schema)
                    };
                    match extract_json_prepared(&trip.reply.text, v, &restore) {
                        Some(value) => {
                            let mut issues = validate(v, &value, MAX_ISSUES);
                            if issues.is_empty()
                                && let Some(check) = &schema.check
                                && let Err(rule) = (check.0)(&value)
                            {
                                issues.push(SchemaIssue {
                                    path: String::new(),
                                    message: rule,
                                });
                            }
                            (Some(value), issues)
                        }
                        None => (
                            None,
                            vec![SchemaIssue {
                                path: String::new(),
                                message: "the reply contains no JSON value".into(),
                            }],
                        ),
                    }
                }
                _ => (None, Vec::new()),
            };
            if issues.is_empty() {
                return Ok(Completion {
                    role: role.to_string(),
                    model: trip.model,
                    served_model: trip.reply.served_model,
                    base_url: cfg.base_url.value.clone(),
                    text: trip.reply.text,
                    json,
                    tool_calls: trip.reply.tool_calls,
                    finish_reason: trip.reply.finish_reason,
                    truncated: cut_off,
                    fallback: trip.fallback,
                    usage: call.usage.unwrap_or_default(),
                    latency: started.elapsed(),
                    attempts: call.requests,
                    retries: call.retries,
                    repairs,
                    structured_mode: trip.mode,
                });
            }
            if repairs >= request.max_repairs
                || call.requests >= call.max_requests
                || call.remaining().is_zero()
            {
                let error = ModelError::SchemaViolation {
                    at: target(),
                    schema: request
                        .schema
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    repairs,
                    issues: issues
                        .into_iter()
                        .map(|i| SchemaIssue {
                            path: i.path,
                            message: self.redactor.redact(&i.message),
                        })
                        .collect(),
                    last_reply: self.redactor.redact(&shorten(&trip.reply.text, 2000)),
                };
                return Err(call.fail(error, false));
            }
            repairs += 1;
            kind = AttemptKind::Repair;
            messages.push(Message::assistant(trip.reply.text));
            messages.push(Message::user(repair_prompt(&issues)));
        }
    }

    /// The mode a structured request starts in against `model`: the one learned for the
    /// endpoint while it has not expired, else the provider's first.
    fn starting_mode(&self, cfg: &ModelConfig, model: &str) -> StructuredMode {
        let now = SystemTime::now();
        lock(&self.modes)
            .get(&cfg.base_url.value, model)
            .filter(|l| !l.is_expired(now, self.mode_lifetime))
            .map(|l| l.mode)
            .unwrap_or_else(|| StructuredMode::first_for(cfg.provider.value))
    }

    /// Remembers the mode that worked; a mode already known (and fresh) keeps its timestamp, so
    /// a weaker mode is probed again once its lifetime is over.
    fn learn(&self, cfg: &ModelConfig, model: &str, mode: StructuredMode, reason: Option<String>) {
        let now = SystemTime::now();
        let mut modes = lock(&self.modes);
        let fresh = modes
            .get(&cfg.base_url.value, model)
            .is_some_and(|l| l.mode == mode && !l.is_expired(now, self.mode_lifetime));
        if !fresh {
            modes.insert(LearnedMode {
                base_url: cfg.base_url.value.clone(),
                model: model.to_string(),
                mode,
                learned_at: unix_secs(now),
                reason: (mode != StructuredMode::first_for(cfg.provider.value))
                    .then_some(reason)
                    .flatten(),
            });
        }
    }

    /// One question to the role: the primary model, then the fallbacks when it is
    /// rate-limited or down, every failure retried within the call's budget, and weaker
    /// structured-output modes when an endpoint rejects one. Cool-downs hold for every
    /// request.
    async fn round(
        &self,
        call: &mut Call<'_>,
        messages: &[Message],
        request: &CompletionRequest,
        mut kind: AttemptKind,
    ) -> Result<RoundTrip, RoundFailure> {
        let cfg = call.cfg().clone();
        let models: Vec<&String> = std::iter::once(&cfg.model.value)
            .chain(cfg.fallback.value.iter())
            .collect();
        let keys: Vec<String> = models
            .iter()
            .map(|m| endpoint_key(&cfg.base_url.value, m))
            .collect();
        let n = models.len();
        let mut current = 0usize;
        let mut modes: HashMap<usize, StructuredMode> = HashMap::new();
        let mut step_reasons: HashMap<usize, String> = HashMap::new();
        let mut failed = vec![false; n];
        let mut last_error: Option<ModelError> = None;
        let mut primary_left: Option<String> = None;
        loop {
            // A model cooling down is not sent to: another one that is free is, else the call
            // waits for the first to be free again.
            if self.cooling_until(&keys[current]).is_some() {
                let free = (1..n)
                    .map(|d| (current + d) % n)
                    .find(|&i| self.cooling_until(&keys[i]).is_none());
                match free {
                    Some(i) => {
                        if current == 0 && primary_left.is_none() {
                            primary_left = Some(format!(
                                "model `{}` is cooling down after a rate limit",
                                models[0]
                            ));
                        }
                        current = i;
                    }
                    None => {
                        let (i, until) = (0..n)
                            .filter_map(|i| self.cooling_until(&keys[i]).map(|u| (i, u)))
                            .min_by_key(|(_, u)| *u)
                            .unwrap_or((current, Instant::now()));
                        let wait = until.saturating_duration_since(Instant::now());
                        if wait >= call.remaining() {
                            let error = last_error.unwrap_or_else(|| ModelError::RateLimited {
                                at: Box::new(Target {
                                    role: cfg.role.clone(),
                                    model: models[i].to_string(),
                                    base_url: cfg.base_url.value.clone(),
                                }),
                                attempts: call.requests,
                                retry_after: Some(wait),
                            });
                            return Err((error, true));
                        }
                        tokio::time::sleep(wait).await;
                        current = i;
                    }
                }
            }
            let model = models[current].as_str();
            let mode = request.schema.as_ref().map(|_| {
                *modes
                    .entry(current)
                    .or_insert_with(|| self.starting_mode(&cfg, model))
            });
            let body = request_body(&BodyParams {
                model,
                messages,
                schema: request.schema.as_ref().zip(mode),
                strict_schema: call.strict_schema.as_ref(),
                tools: &request.tools,
                max_tokens: call.max_tokens,
                max_completion_tokens: cfg.provider.value == Provider::OpenAi,
                temperature: request
                    .temperature
                    .or(cfg.temperature.as_ref().map(|t| t.value)),
                stream: call.on_event.is_some(),
            });
            let failure = match self
                .attempt(call, model, &body, mode, kind, messages, request)
                .await
            {
                Ok(reply) => {
                    if let Some(m) = mode {
                        self.learn(&cfg, model, m, step_reasons.remove(&current));
                    }
                    let fallback = (current != 0).then(|| FallbackNote {
                        from: cfg.model.value.clone(),
                        reason: primary_left.unwrap_or_default(),
                    });
                    return Ok(RoundTrip {
                        reply,
                        model: model.to_string(),
                        mode,
                        fallback,
                    });
                }
                Err(f) => f,
            };
            // The endpoint rejected the structured-output mode (a 400 about the response
            // format, llama.cpp's 500 on `json_schema`): the next mode, at once. Nothing else
            // lowers the mode: a 5xx burst, a 429 or a timeout is retried in the same mode.
            if let Some(current_mode) = mode
                && let Some(next) = current_mode.next()
                && let Some(reason) = format_rejection(&failure, current_mode)
            {
                if call.budget_left() && !call.remaining().is_zero() {
                    call.retries += 1;
                    modes.insert(current, next);
                    step_reasons.insert(
                        current,
                        self.redactor
                            .redact(&format!("{current_mode} rejected: {reason}")),
                    );
                    kind = AttemptKind::StepDown;
                    continue;
                }
                return Err((self.to_error(call, model, failure), true));
            }
            let retry_after = failure.retry_after();
            if let Some(wait) = retry_after.or_else(|| {
                failure
                    .is_rate_limit()
                    .then_some(self.timing.default_cooldown)
            }) {
                self.cool_down(keys[current].clone(), wait);
            }
            let retryable = failure.retryable();
            let error = self.to_error(call, model, failure);
            if !retryable {
                return Err((error, false));
            }
            if !call.budget_left() {
                return Err((error, true));
            }
            failed[current] = true;
            if current == 0 {
                primary_left = Some(error.to_string());
            }
            // A model that is rate-limited or down hands over to a fallback that has not failed
            // yet, at once; otherwise the same model (or, all having failed, the next in turn)
            // after a back-off.
            let fresh = (1..n).map(|d| (current + d) % n).find(|&i| !failed[i]);
            let (target, delay) = match fresh {
                Some(i) if error.is_fallback_worthy() => (i, Duration::ZERO),
                _ => {
                    let next = if n > 1 && error.is_fallback_worthy() {
                        (current + 1) % n
                    } else {
                        current
                    };
                    (next, self.timing.delay(call.retries, retry_after))
                }
            };
            if delay >= call.remaining() {
                return Err((error, true));
            }
            tokio::time::sleep(delay).await;
            call.retries += 1;
            kind = if target == current {
                AttemptKind::Retry
            } else {
                AttemptKind::Fallback
            };
            current = target;
            last_error = Some(error);
        }
    }

    fn cooling_until(&self, key: &str) -> Option<Instant> {
        let mut map = lock(&self.cooldowns);
        match map.get(key) {
            Some(until) if *until > Instant::now() => Some(*until),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// A model is not sent to for `wait`; a cool-down already longer is kept.
    fn cool_down(&self, key: String, wait: Duration) {
        let now = Instant::now();
        let until = now.checked_add(wait.min(MAX_RETRY_AFTER)).unwrap_or(now);
        let mut map = lock(&self.cooldowns);
        let entry = map.entry(key).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    fn usage_of(
        &self,
        reply: &Reply,
        messages: &[Message],
        request: &CompletionRequest,
        cfg: &ModelConfig,
        model: &str,
    ) -> Usage {
        let usage = match reply.usage {
            Some((prompt, completion)) => Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                estimated: false,
                cost_usd: None,
            },
            None => {
                let prompt_chars = messages.iter().map(Message::chars).sum::<usize>()
                    + request
                        .schema
                        .as_ref()
                        .map_or(0, |s| s.schema.to_string().len())
                    + request
                        .tools
                        .iter()
                        .map(|t| t.name.len() + t.parameters.to_string().len())
                        .sum::<usize>();
                let completion_chars = reply.text.chars().count()
                    + reply
                        .tool_calls
                        .iter()
                        .map(|t| t.name.len() + t.arguments.len())
                        .sum::<usize>();
                Usage {
                    prompt_tokens: estimate_tokens(prompt_chars),
                    completion_tokens: estimate_tokens(completion_chars),
                    estimated: true,
                    cost_usd: None,
                }
            }
        };
        // A role's price is for its primary model; fallback models are not priced.
        let price = (model == cfg.model.value)
            .then_some(cfg.price.as_ref().map(|p| &p.value))
            .flatten();
        usage.priced(price)
    }

    fn to_error(&self, call: &Call<'_>, model: &str, failure: Failure) -> ModelError {
        let cfg = call.cfg();
        let at = Box::new(Target {
            role: cfg.role.clone(),
            model: model.to_string(),
            base_url: cfg.base_url.value.clone(),
        });
        let attempts = call.requests;
        let r = |s: String| self.redactor.redact(&s);
        match failure {
            Failure::Status {
                status,
                url,
                body,
                retry_after,
            } => {
                let detail = r(body_detail(&body));
                match status {
                    401 | 403 => ModelError::BadApiKey {
                        at,
                        status,
                        detail,
                        hint: cfg.api_key_hint(),
                    },
                    404 if mentions_unknown_model(&body) => ModelError::UnknownModel {
                        at,
                        detail,
                        hint: cfg.model_hint(),
                    },
                    404 => ModelError::WrongBaseUrl {
                        at,
                        url: r(url),
                        hint: cfg.base_url_hint(),
                    },
                    400 if mentions_unknown_model(&body) => ModelError::UnknownModel {
                        at,
                        detail,
                        hint: cfg.model_hint(),
                    },
                    429 => ModelError::RateLimited {
                        at,
                        attempts,
                        retry_after,
                    },
                    s if is_retryable_status(s) => ModelError::ServerError {
                        at,
                        status,
                        attempts,
                        detail,
                    },
                    _ => ModelError::Rejected { at, status, detail },
                }
            }
            Failure::Connect(detail) => ModelError::Connect {
                at,
                attempts,
                detail: r(detail),
            },
            Failure::Timeout(kind, after) => ModelError::Timeout {
                at,
                kind,
                after,
                attempts,
            },
            Failure::Transport(detail) => ModelError::Connect {
                at,
                attempts,
                detail: r(detail),
            },
            Failure::Invalid(detail) => ModelError::InvalidReply {
                at,
                detail: r(detail),
            },
        }
    }

    /// One HTTP attempt, recorded with its usage.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        call: &mut Call<'_>,
        model: &str,
        body: &serde_json::Value,
        mode: Option<StructuredMode>,
        kind: AttemptKind,
        messages: &[Message],
        request: &CompletionRequest,
    ) -> Result<Reply, Failure> {
        call.requests += 1;
        if call.requests > 1
            && let Some(on_event) = call.on_event
        {
            on_event(StreamEvent::Restart {
                attempt: call.requests,
            });
        }
        let cfg = call.cfg();
        let started_at = SystemTime::now();
        let started = Instant::now();
        let streamed = call.on_event.is_some();
        let (limit, limit_kind) = if call.remaining() < cfg.timeouts.value.total {
            (call.remaining(), TimeoutKind::Overall)
        } else {
            (cfg.timeouts.value.total, TimeoutKind::Total)
        };
        let mut raw: Option<String> = None;
        let mut status: Option<u16> = None;
        let result = tokio::time::timeout(
            limit,
            self.send(call, body, &mut raw, &mut status, streamed),
        )
        .await
        .unwrap_or(Err(Failure::Timeout(limit_kind, limit)));
        let usage = result
            .as_ref()
            .ok()
            .map(|reply| self.usage_of(reply, messages, request, call.cfg(), model));
        if let Some(u) = &usage {
            match &mut call.usage {
                Some(total) => total.add(u),
                None => call.usage = Some(*u),
            }
        }
        let cfg = call.cfg();
        call.recorder.record(Exchange {
            role: cfg.role.clone(),
            model: model.to_string(),
            base_url: cfg.base_url.value.clone(),
            attempt: call.requests,
            kind,
            started_at,
            request: self.redactor.redact_json(body),
            status,
            response: raw.map(|r| self.redactor.redact(&r)),
            error: result
                .as_ref()
                .err()
                .map(|f| self.redactor.redact(&f.describe())),
            latency: started.elapsed(),
            streamed,
            structured_mode: mode,
            usage,
            finish_reason: result.as_ref().ok().and_then(|r| r.finish_reason.clone()),
        });
        result
    }

    async fn send(
        &self,
        call: &Call<'_>,
        body: &serde_json::Value,
        raw: &mut Option<String>,
        status_out: &mut Option<u16>,
        streamed: bool,
    ) -> Result<Reply, Failure> {
        let cfg = call.cfg();
        let url = format!("{}/chat/completions", cfg.base_url.value);
        let bytes = serde_json::to_vec(body).map_err(|e| Failure::Invalid(e.to_string()))?;
        let mut req = call
            .endpoint
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        if let Some(key) = &cfg.api_key {
            req = req.bearer_auth(key.value.expose());
        }
        let mut response = req.send().await.map_err(|e| {
            if e.is_connect() {
                if e.is_timeout() {
                    Failure::Timeout(TimeoutKind::Connect, cfg.timeouts.value.connect)
                } else {
                    Failure::Connect(error_chain(&e))
                }
            } else if e.is_timeout() {
                Failure::Timeout(TimeoutKind::Total, cfg.timeouts.value.total)
            } else {
                Failure::Transport(error_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        *status_out = Some(status);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if !response.status().is_success() {
            // Only the start of an error body matters (its message); a broken body still
            // leaves the status to act on.
            let (bytes, end) = read_body(&mut response, MAX_ERROR_BODY_BYTES).await;
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if matches!(end, BodyEnd::TooLarge) {
                text.push_str("… [cut]");
            }
            *raw = Some(text.clone());
            return Err(Failure::Status {
                status,
                url,
                body: text,
                retry_after,
            });
        }
        // A server that ignores `stream: true` answers with one JSON body: read as such.
        let is_event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"));
        if !streamed || !is_event_stream {
            let (bytes, end) = read_body(&mut response, MAX_REPLY_BYTES).await;
            match end {
                BodyEnd::Complete => {}
                BodyEnd::TooLarge => {
                    *raw = Some(oversize_excerpt(&bytes));
                    return Err(too_large("the reply body"));
                }
                BodyEnd::Broken(e) => {
                    *raw = Some(String::from_utf8_lossy(&bytes).into_owned());
                    return Err(Failure::Transport(error_chain(&e)));
                }
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            drop(bytes);
            *raw = Some(text.clone());
            let reply = parse_reply(&text).map_err(Failure::Invalid)?;
            if let Some(on_event) = call.on_event
                && !reply.text.is_empty()
            {
                on_event(StreamEvent::Text(&reply.text));
            }
            return Ok(reply);
        }
        // Streaming: server-sent events, each chunk within the idle timeout.
        let idle = cfg.timeouts.value.idle;
        let mut stream = response.bytes_stream();
        let mut splitter = SseSplitter::default();
        let mut assembler = StreamAssembler::default();
        let mut transcript = String::new();
        let mut done = false;
        while !done {
            let next = match tokio::time::timeout(idle, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    *raw = Some(transcript);
                    return Err(Failure::Timeout(TimeoutKind::Idle, idle));
                }
            };
            let payloads = match next {
                Some(Ok(bytes)) => {
                    if transcript.len() + bytes.len() > MAX_REPLY_BYTES {
                        *raw = Some(oversize_excerpt(transcript.as_bytes()));
                        return Err(too_large("the streamed reply"));
                    }
                    transcript.push_str(&String::from_utf8_lossy(&bytes));
                    splitter.feed(&bytes)
                }
                Some(Err(e)) => {
                    *raw = Some(transcript);
                    return Err(Failure::Transport(error_chain(&e)));
                }
                None => {
                    done = true;
                    splitter.finish()
                }
            };
            for payload in payloads {
                if payload == "[DONE]" {
                    done = true;
                    break;
                }
                let chunk: WireReply = match serde_json::from_str(&payload) {
                    Ok(c) => c,
                    Err(e) => {
                        *raw = Some(transcript);
                        return Err(Failure::Invalid(format!(
                            "stream chunk is not JSON: {}",
                            shorten(&e.to_string(), 300)
                        )));
                    }
                };
                if let Some(err) = &chunk.error {
                    *raw = Some(transcript);
                    return Err(Failure::Invalid(format!(
                        "error in stream: {}",
                        error_message(err)
                    )));
                }
                let text = match assembler.add_chunk(&chunk) {
                    Ok(text) => text,
                    Err(e) => {
                        *raw = Some(transcript);
                        return Err(Failure::Invalid(e));
                    }
                };
                if let Some(text) = text
                    && let Some(on_event) = call.on_event
                {
                    on_event(StreamEvent::Text(&text));
                }
            }
        }
        *raw = Some(transcript);
        if assembler.chunks == 0 {
            return Err(Failure::Invalid(
                "the stream ended without any chunk".into(),
            ));
        }
        Ok(assembler.finish())
    }
}

/// An error and its sources, one line (reqwest's top-level message alone is vague).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_shareable() {
        fn is<T: Send + Sync>() {}
        is::<ModelClient>();
    }

    #[test]
    fn unknown_model_detection() {
        assert!(mentions_unknown_model(
            r#"{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}"#
        ));
        assert!(mentions_unknown_model(
            r#"{"error":"model \"x\" not found, try pulling it first"}"#
        ));
        assert!(!mentions_unknown_model("404 page not found"));
    }

    #[test]
    fn response_format_detection() {
        for body in [
            r#"{"error":{"message":"response_format json_schema is not supported"}}"#,
            r#"{"error":{"message":"Invalid schema for response_format 'plan'"}}"#,
            r#"{"detail":"Structured outputs are not supported by this model"}"#,
            "unknown field `json_object`",
            "failed to compile grammar",
        ] {
            assert!(mentions_response_format(body), "{body}");
        }
        for body in [
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#,
            "",
            "Bad Request",
        ] {
            assert!(!mentions_response_format(body), "{body}");
        }
    }
}
