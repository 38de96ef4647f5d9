//! [`ModelClient`]: roles → endpoints, and the call loop (structured-output modes, repairs,
//! fallback models, retries, one HTTP attempt).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant, SystemTime};

use ao_core::config::{Config, DEFAULT_WORKER, LEADER, ModelConfig};
use futures_util::StreamExt;

use crate::error::{ModelError, SchemaIssue, Target, TimeoutKind};
use crate::exchange::{Exchange, ExchangeRecorder, Redactor};
use crate::request::{Completion, CompletionRequest, Message};
use crate::retry::{MAX_RETRY_AFTER, RetryTiming, is_retryable_status, parse_retry_after};
use crate::structured::{
    LearnedModes, StructuredMode, endpoint_key, extract_json_matching, repair_prompt, validate,
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
    on_delta: Option<&'a (dyn Fn(&str) + Send + Sync)>,
    deadline: Instant,
    attempts: u32,
}

impl Call<'_> {
    fn cfg(&self) -> &ModelConfig {
        &self.endpoint.config
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// One successful round trip.
struct RoundTrip {
    reply: Reply,
    model: String,
    mode: Option<StructuredMode>,
    usage: Usage,
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl ModelClient {
    /// A client for every model role in `config` (the leader, if configured, and the workers).
    /// A missing leader is reported when the leader is called.
    pub fn new(config: &Config) -> Result<Self, ModelError> {
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

    /// The configured role names: `leader` (if configured) and the worker names.
    pub fn roles(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// The structured-output mode learned per endpoint so far, to persist.
    pub fn learned_modes(&self) -> LearnedModes {
        lock(&self.modes).clone()
    }

    /// Adds previously learned modes (entries already learned in this process win).
    pub fn import_learned_modes(&self, modes: LearnedModes) {
        let mut current = lock(&self.modes);
        for (k, v) in modes {
            current.entry(k).or_insert(v);
        }
    }

    /// Calls the model of `role` (`leader`, a worker name, or `worker` for the default worker).
    pub async fn complete(
        &self,
        role: &str,
        request: CompletionRequest,
        recorder: &dyn ExchangeRecorder,
    ) -> Result<Completion, ModelError> {
        self.run(role, request, recorder, None).await
    }

    /// Like [`ModelClient::complete`], streaming: `on_delta` gets each piece of text as it
    /// arrives; the result is assembled exactly as a non-streaming call's.
    pub async fn complete_streaming(
        &self,
        role: &str,
        request: CompletionRequest,
        recorder: &dyn ExchangeRecorder,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Completion, ModelError> {
        self.run(role, request, recorder, Some(on_delta)).await
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
        on_delta: Option<&(dyn Fn(&str) + Send + Sync)>,
    ) -> Result<Completion, ModelError> {
        let endpoint = self.endpoint(role)?;
        let started = Instant::now();
        let mut call = Call {
            endpoint,
            recorder,
            on_delta,
            // Checked: an absurd configured timeout must not overflow `Instant`.
            deadline: started
                .checked_add(endpoint.config.timeouts.value.overall)
                .or_else(|| started.checked_add(FAR_FUTURE))
                .unwrap_or(started),
            attempts: 0,
        };
        let validator = match &request.schema {
            Some(s) => Some(jsonschema::validator_for(&s.schema).map_err(|e| {
                ModelError::InvalidSchema {
                    name: s.name.clone(),
                    detail: e.to_string(),
                }
            })?),
            None => None,
        };
        let mut messages = request.messages.clone();
        let mut usage: Option<Usage> = None;
        let mut repairs = 0;
        loop {
            let trip = self.with_fallback(&mut call, &messages, &request).await?;
            match &mut usage {
                Some(u) => u.add(&trip.usage),
                None => usage = Some(trip.usage),
            }
            // A turn that calls tools is not the answer yet: the schema applies to the reply
            // that follows the tool results.
            let calls_tools = !trip.reply.tool_calls.is_empty();
            let (json, issues) = match (&request.schema, &validator) {
                (Some(_), Some(v)) if !calls_tools => {
                    match extract_json_matching(&trip.reply.text, v) {
                        Some(value) => {
                            let issues = validate(v, &value, MAX_ISSUES);
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
                    base_url: endpoint.config.base_url.value.clone(),
                    text: trip.reply.text,
                    json,
                    tool_calls: trip.reply.tool_calls,
                    finish_reason: trip.reply.finish_reason,
                    usage: usage.unwrap_or_default(),
                    latency: started.elapsed(),
                    attempts: call.attempts,
                    repairs,
                    structured_mode: trip.mode,
                });
            }
            if repairs >= request.max_repairs || call.remaining().is_zero() {
                return Err(ModelError::SchemaViolation {
                    at: Box::new(Target {
                        role: role.to_string(),
                        model: trip.model,
                        base_url: endpoint.config.base_url.value.clone(),
                    }),
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
                });
            }
            repairs += 1;
            messages.push(Message::assistant(trip.reply.text));
            messages.push(Message::user(repair_prompt(&issues)));
        }
    }

    /// The primary model, then the fallbacks in order when it is rate-limited or down.
    async fn with_fallback(
        &self,
        call: &mut Call<'_>,
        messages: &[Message],
        request: &CompletionRequest,
    ) -> Result<RoundTrip, ModelError> {
        let cfg = call.cfg().clone();
        let candidates: Vec<&String> = std::iter::once(&cfg.model.value)
            .chain(cfg.fallback.value.iter())
            .collect();
        let mut last_error = None;
        for (i, model) in candidates.iter().enumerate() {
            let has_next = i + 1 < candidates.len();
            let key = endpoint_key(&cfg.base_url.value, model);
            if let Some(until) = self.cooling_until(&key) {
                if has_next {
                    continue;
                }
                let wait = until.saturating_duration_since(Instant::now());
                if wait >= call.remaining() {
                    return Err(last_error.unwrap_or(ModelError::RateLimited {
                        at: Box::new(Target {
                            role: cfg.role.clone(),
                            model: model.to_string(),
                            base_url: cfg.base_url.value.clone(),
                        }),
                        attempts: call.attempts,
                        retry_after: Some(wait),
                    }));
                }
                tokio::time::sleep(wait).await;
            }
            match self
                .with_retries(call, model, has_next, messages, request)
                .await
            {
                Ok(trip) => return Ok(trip),
                Err(e) if has_next && e.is_fallback_worthy() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ModelError::UnknownRole {
            role: cfg.role.clone(),
            known: self.roles(),
        }))
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

    fn cool_down(&self, key: String, wait: Duration) {
        let now = Instant::now();
        let until = now.checked_add(wait.min(MAX_RETRY_AFTER)).unwrap_or(now);
        lock(&self.cooldowns).insert(key, until);
    }

    /// One model: structured-mode probing, then retries with back-off.
    async fn with_retries(
        &self,
        call: &mut Call<'_>,
        model: &str,
        has_fallback: bool,
        messages: &[Message],
        request: &CompletionRequest,
    ) -> Result<RoundTrip, ModelError> {
        let cfg = call.cfg().clone();
        let key = endpoint_key(&cfg.base_url.value, model);
        let learned = lock(&self.modes).get(&key).copied();
        let mut mode = request
            .schema
            .as_ref()
            .map(|_| learned.unwrap_or(StructuredMode::JsonSchema));
        let mut retries = 0u32;
        let mut mode_failed_once = false;
        loop {
            let body = request_body(&BodyParams {
                model,
                messages,
                schema: request.schema.as_ref().zip(mode),
                tools: &request.tools,
                max_tokens: request
                    .max_tokens
                    .or(cfg.max_tokens.as_ref().map(|m| m.value)),
                temperature: request
                    .temperature
                    .or(cfg.temperature.as_ref().map(|t| t.value)),
                stream: call.on_delta.is_some(),
            });
            let failure = match self.attempt(call, model, &body, mode).await {
                Ok(reply) => {
                    if let Some(m) = mode {
                        lock(&self.modes).insert(key.clone(), m);
                    }
                    let usage = self.usage_of(&reply, messages, request, &cfg, model);
                    return Ok(RoundTrip {
                        reply,
                        model: model.to_string(),
                        mode,
                        usage,
                    });
                }
                Err(f) => f,
            };
            // An endpoint that has not shown which structured mode it supports and rejects
            // this one (llama.cpp answers `json_schema` with a 500, others with a 400): try
            // the next mode. A 400/422 moves on at once when its message concerns the response
            // format (any other 400, e.g. a context too long, fails at once: 400s are not
            // retried); a 5xx only when it repeats, so that one transient server error does not
            // teach a weaker mode for good.
            if learned.is_none()
                && let (Some(current), Failure::Status { status, body, .. }) = (mode, &failure)
                && !mentions_unknown_model(body)
                && let Some(next) = current.next()
            {
                let rejected = match status {
                    400 | 422 => mentions_response_format(body),
                    500 | 501 => std::mem::replace(&mut mode_failed_once, true),
                    _ => false,
                };
                if rejected {
                    mode = Some(next);
                    mode_failed_once = false;
                    continue;
                }
            }
            if failure.is_rate_limit() {
                self.cool_down(
                    key.clone(),
                    failure
                        .retry_after()
                        .unwrap_or(self.timing.default_cooldown),
                );
                if has_fallback {
                    return Err(self.to_error(call, model, failure));
                }
            }
            if !failure.retryable() || retries >= cfg.max_retries.value {
                return Err(self.to_error(call, model, failure));
            }
            let delay = self.timing.delay(retries, failure.retry_after());
            if delay >= call.remaining() {
                return Err(self.to_error(call, model, failure));
            }
            tokio::time::sleep(delay).await;
            retries += 1;
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
        let attempts = call.attempts;
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

    /// One HTTP attempt, recorded.
    async fn attempt(
        &self,
        call: &mut Call<'_>,
        model: &str,
        body: &serde_json::Value,
        mode: Option<StructuredMode>,
    ) -> Result<Reply, Failure> {
        call.attempts += 1;
        let cfg = call.cfg();
        let started_at = SystemTime::now();
        let started = Instant::now();
        let streamed = call.on_delta.is_some();
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
        let cfg = call.cfg();
        call.recorder.record(Exchange {
            role: cfg.role.clone(),
            model: model.to_string(),
            base_url: cfg.base_url.value.clone(),
            attempt: call.attempts,
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
        if !streamed {
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
            return parse_reply(&text).map_err(Failure::Invalid);
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
                    && let Some(cb) = call.on_delta
                {
                    cb(&text);
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
