//! The endpoint under interview: which model is asked (a worker from the configuration, or an
//! endpoint named ad hoc), and [`EndpointModel`], the [`CaseModel`] that asks it through the
//! model layer.
//!
//! An interview measures one model as it answers, so [`EndpointModel`] asks each case once:
//! structured output in the mode the model layer uses for that endpoint (learned, and kept in
//! the state dir like any call's), no repair round (`max_repairs` 0), no fallback model. What
//! the model replied is handed back as it came, even when the model layer finds it malformed
//! (a schema violation, a reply cut off at `max_tokens`): judging it is the scorer's job.
//! Only failures of the harness — the endpoint down, a timeout, 5xx or 429 after the model
//! layer's retries, an endpoint that refuses the request (bad key, unknown model, wrong URL)
//! — are errors ([`HarnessError`]), which make a trial inconclusive. Reply text and messages
//! are redacted before they leave this module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ao_core::config::{AdHocModel, Config, ModelConfig, Provider};
use ao_core::redact::Redactor;
use ao_models::{
    CompletionRequest, Exchange, ExchangeRecorder, LearnedModes, Message as WireMessage,
    ModelClient, ModelError, OutputSchema, StructuredMode,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::runner::{BoxFuture, CaseModel, CaseRequest};
use super::score::{WorkerIdentity, parse_reply};
use super::suite::Role;
use super::trial::{HarnessError, HarnessErrorKind, ModelReply};
use super::workers::{find_configured, worker_id};
use crate::error::Error;
use crate::model_node::LEARNED_MODES_FILE;

/// Which model an interview asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Endpoint {
    /// A worker from the configuration, by name (or id): its own endpoint, key and settings.
    Configured(String),
    /// An endpoint named by the caller; its key is read from the variable it names when the
    /// interview asks, never carried in the run.
    AdHoc(AdHocModel),
}

/// The fields of the `worker-interview` workflow's input that say who is interviewed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EndpointFields {
    #[serde(default)]
    pub worker: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Endpoint {
    /// The endpoint the input names: `worker`, or `provider` and `model` (with optional
    /// `base_url` and `api_key_env`), not both.
    pub fn from_fields(f: &EndpointFields) -> Result<Endpoint, Error> {
        let ad_hoc_parts = [
            ("provider", given(&f.provider)),
            ("model", given(&f.model)),
            ("base_url", given(&f.base_url)),
            ("api_key_env", given(&f.api_key_env)),
        ];
        match given(&f.worker) {
            Some(worker) => {
                let extra: Vec<&str> = ad_hoc_parts
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| *k)
                    .collect();
                if !extra.is_empty() {
                    return Err(Error::Usage(format!(
                        "name either a configured worker or an endpoint, not both: `worker` \
                         ({worker}) comes with its own endpoint, so {} cannot be given with it",
                        extra.join(", ")
                    )));
                }
                Ok(Endpoint::Configured(worker.to_string()))
            }
            None => match (given(&f.provider), given(&f.model)) {
                (Some(provider), Some(model)) => Ok(Endpoint::AdHoc(AdHocModel {
                    provider: provider.to_string(),
                    model: model.to_string(),
                    base_url: given(&f.base_url).map(String::from),
                    api_key_env: given(&f.api_key_env).map(String::from),
                })),
                (None, None) => Err(Error::Usage(
                    "name the worker to interview: a configured worker (`worker`), or an \
                     endpoint (`provider` and `model`)"
                        .into(),
                )),
                (Some(_), None) => Err(Error::Usage(
                    "an endpoint needs a `model` as well as its `provider`".into(),
                )),
                (None, Some(_)) => Err(Error::Usage(format!(
                    "an endpoint needs a `provider` as well as its `model` (one of: {})",
                    Provider::NAMES.join(", ")
                ))),
            },
        }
    }

    /// The model configuration and identity of the endpoint, from `config` and `env` as
    /// they are now (a key variable is read here).
    pub fn resolve(
        &self,
        config: &Config,
        env: &BTreeMap<String, String>,
    ) -> Result<ResolvedEndpoint, Error> {
        let (model, worker_id) = match self {
            Endpoint::Configured(name) => {
                if let Some(problem) = config.model_problems.get(name) {
                    return Err(Error::Config(problem.clone()));
                }
                let Some(cfg) = find_configured(config, name) else {
                    let known: Vec<String> = config.workers.values().map(worker_id).collect();
                    return Err(Error::NotConfigured(format!(
                        "no worker `{name}` is configured (configured workers: {}); add a \
                         [workers.{name}] table to ao.toml, or name an endpoint instead",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                };
                (cfg.clone(), worker_id(cfg))
            }
            Endpoint::AdHoc(spec) => {
                let provider = Provider::parse(&spec.provider).map(Provider::as_str);
                let id = format!(
                    "{}:{}",
                    provider.unwrap_or(spec.provider.trim()),
                    spec.model.trim()
                );
                (config.ad_hoc_model(&id, spec, env)?, id)
            }
        };
        let mut model = model;
        // The interview measures this model, not whichever answers for it.
        model.fallback.value.clear();
        Ok(ResolvedEndpoint {
            identity: WorkerIdentity {
                worker_id,
                provider: model.provider.value.as_str().to_string(),
                model: model.model.value.clone(),
                base_url: Some(without_credentials(&model.base_url.value)),
            },
            model,
        })
    }
}

/// A URL without the `user:password@` part an authority may carry.
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// An endpoint ready to be asked.
#[derive(Debug, Clone)]
pub struct ResolvedEndpoint {
    pub identity: WorkerIdentity,
    pub model: ModelConfig,
}

/// Asks one endpoint the interview's cases through the model layer.
pub struct EndpointModel {
    client: ModelClient,
    role: String,
    redactor: Redactor,
    modes_file: Option<PathBuf>,
    saved_modes: Mutex<LearnedModes>,
}

impl EndpointModel {
    /// A client for `endpoint` alone. The structured-output modes learned for endpoints are
    /// read from `state_dir` and what this client learns is kept there.
    pub fn new(
        endpoint: &ResolvedEndpoint,
        redactor: &Redactor,
        state_dir: Option<&Path>,
    ) -> Result<Self, Error> {
        let client = ModelClient::from_roles([endpoint.model.clone()])?;
        let modes_file = state_dir.map(|d| d.join(LEARNED_MODES_FILE));
        let saved = modes_file
            .as_deref()
            .and_then(read_modes)
            .unwrap_or_default();
        client.import_learned_modes(saved.clone());
        let key = endpoint.model.api_key.as_ref().map(|k| k.value.expose());
        Ok(EndpointModel {
            client,
            role: endpoint.model.role.clone(),
            redactor: redactor.with_secrets(key),
            modes_file,
            saved_modes: Mutex::new(saved),
        })
    }

    /// Replaces the client's back-off timing (tests use short waits).
    pub fn with_retry_timing(mut self, timing: ao_models::RetryTiming) -> Self {
        self.client = self.client.with_retry_timing(timing);
        self
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Asks one case once; every HTTP attempt goes to `recorder` as well.
    pub async fn ask_recorded(
        &self,
        request: CaseRequest<'_>,
        recorder: &dyn ExchangeRecorder,
    ) -> Result<ModelReply, HarnessError> {
        let messages = request
            .messages
            .iter()
            .map(|m| match m.role {
                Role::System => WireMessage::system(m.content.clone()),
                Role::User => WireMessage::user(m.content.clone()),
                Role::Assistant => WireMessage::assistant(m.content.clone()),
            })
            .collect();
        let completion_request = CompletionRequest::new(messages)
            .with_schema(OutputSchema::new(
                request.case_id,
                request.output_schema.clone(),
            ))
            .with_max_repairs(0);
        let last = LastReply::new(recorder);
        let started = Instant::now();
        let done = self
            .client
            .complete(&self.role, completion_request, &last)
            .await;
        self.save_learned_modes();
        let latency_ms = started.elapsed().as_millis() as u64;
        let (text, mode, usage) = match done {
            Ok(c) => {
                // The layer's parsed value is the reply mapped back from the strict form of
                // the schema; the raw text decides validity.
                let text = match (parse_reply(&c.text), c.json) {
                    (Some(_), Some(json)) => json.to_string(),
                    _ => c.text,
                };
                (text, None, c.usage)
            }
            Err(e) => match &e.error {
                // A reply that came and is malformed is the measurement.
                ModelError::SchemaViolation { last_reply, .. } => {
                    let (text, mode) = last.take().unwrap_or((last_reply.clone(), None));
                    (text, mode, e.usage)
                }
                ModelError::CutOff { .. } => match last.take() {
                    Some((text, mode)) => (text, mode, e.usage),
                    None => return Err(self.harness(HarnessErrorKind::Internal, &e.error)),
                },
                other => return Err(self.harness(harness_kind(other), other)),
            },
        };
        let text = match mode {
            Some(StructuredMode::JsonSchema) => restore_strict(&text, request.output_schema),
            _ => text,
        };
        Ok(ModelReply {
            text: self.redactor.redact_str(&text),
            latency_ms,
            tokens: (!usage.estimated).then(|| usage.total_tokens()),
        })
    }

    fn harness(&self, kind: HarnessErrorKind, error: &ModelError) -> HarnessError {
        HarnessError::new(kind, self.redactor.redact_str(&error.to_string()))
    }

    /// Keeps what the client learned about the endpoint (a cache: a lost write is learned
    /// again), merged with what other processes saved meanwhile.
    fn save_learned_modes(&self) {
        let Some(file) = &self.modes_file else { return };
        let current = self.client.learned_modes();
        let mut saved = self.saved_modes.lock().unwrap_or_else(|p| p.into_inner());
        if *saved == current {
            return;
        }
        let mut merged = read_modes(file).unwrap_or_default();
        merged.merge(current.clone());
        if crate::files::write_private_json(file, &merged).is_ok() {
            *saved = current;
        }
    }
}

impl CaseModel for EndpointModel {
    fn ask<'a>(
        &'a self,
        request: CaseRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, HarnessError>> {
        Box::pin(self.ask_recorded(request, &ao_models::DiscardExchanges))
    }
}

fn read_modes(file: &Path) -> Option<LearnedModes> {
    std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Which harness failure a failed call is.
fn harness_kind(e: &ModelError) -> HarnessErrorKind {
    match e {
        ModelError::Connect { .. } => HarnessErrorKind::Connect,
        ModelError::Timeout { .. } => HarnessErrorKind::Timeout,
        ModelError::ServerError { .. } => HarnessErrorKind::ServerError,
        ModelError::RateLimited { .. } => HarnessErrorKind::RateLimited,
        ModelError::BadApiKey { .. }
        | ModelError::UnknownModel { .. }
        | ModelError::WrongBaseUrl { .. }
        | ModelError::Rejected { .. }
        | ModelError::InvalidReply { .. } => HarnessErrorKind::Endpoint,
        _ => HarnessErrorKind::Internal,
    }
}

/// A reply in the strict form of a schema (optional properties sent as `null`), mapped back
/// to the schema as the model layer does; text that is not JSON stays as it is.
fn restore_strict(text: &str, schema: &Value) -> String {
    if ao_models::strict::to_strict(schema).is_none() {
        return text.to_string();
    }
    match parse_reply(text) {
        Some(mut value) => {
            ao_models::strict::restore(&mut value, schema);
            value.to_string()
        }
        None => text.to_string(),
    }
}

/// Passes every exchange on and keeps the text of the last reply that came (with the
/// structured-output mode it was asked in), so a reply the model layer rejects can still be
/// judged whole.
struct LastReply<'a> {
    inner: &'a dyn ExchangeRecorder,
    last: Mutex<Option<(String, Option<StructuredMode>)>>,
}

impl<'a> LastReply<'a> {
    fn new(inner: &'a dyn ExchangeRecorder) -> Self {
        LastReply {
            inner,
            last: Mutex::new(None),
        }
    }

    fn take(&self) -> Option<(String, Option<StructuredMode>)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl ExchangeRecorder for LastReply<'_> {
    fn record(&self, exchange: Exchange) {
        if exchange.status.is_some_and(|s| (200..300).contains(&s))
            && let Some(body) = &exchange.response
            && let Ok(reply) = ao_models::wire::parse_reply(body)
        {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((reply.text, exchange.structured_mode));
        }
        self.inner.record(exchange);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> EndpointFields {
        let v: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        serde_json::from_value(Value::Object(v)).unwrap()
    }

    #[test]
    fn the_input_names_a_worker_or_an_endpoint_never_both() {
        assert_eq!(
            Endpoint::from_fields(&fields(&[("worker", "qwen")])).unwrap(),
            Endpoint::Configured("qwen".into())
        );
        let e = Endpoint::from_fields(&fields(&[("provider", "ollama"), ("model", "m")])).unwrap();
        assert!(matches!(e, Endpoint::AdHoc(ref m) if m.provider == "ollama" && m.model == "m"));
        let both = Endpoint::from_fields(&fields(&[("worker", "qwen"), ("base_url", "http://x")]))
            .unwrap_err()
            .to_string();
        assert!(
            both.contains("not both") && both.contains("base_url"),
            "{both}"
        );
        let none = Endpoint::from_fields(&fields(&[])).unwrap_err().to_string();
        assert!(none.contains("name the worker"), "{none}");
        let half = Endpoint::from_fields(&fields(&[("model", "m")]))
            .unwrap_err()
            .to_string();
        assert!(half.contains("needs a `provider`"), "{half}");
    }

    #[test]
    fn credentials_never_stay_in_a_base_url() {
        assert_eq!(
            without_credentials("http://user:s3cret@host:4000/v1"),
            "http://host:4000/v1"
        );
        assert_eq!(
            without_credentials("http://host/v1?a=b@c"),
            "http://host/v1?a=b@c"
        );
    }

    #[test]
    fn harness_failures_are_told_apart_from_replies() {
        let at = || {
            Box::new(ao_models::Target {
                role: "w".into(),
                model: "m".into(),
                base_url: "http://h/v1".into(),
            })
        };
        assert_eq!(
            harness_kind(&ModelError::Connect {
                at: at(),
                attempts: 4,
                detail: "refused".into()
            }),
            HarnessErrorKind::Connect
        );
        assert_eq!(
            harness_kind(&ModelError::ServerError {
                at: at(),
                status: 500,
                attempts: 4,
                detail: String::new()
            }),
            HarnessErrorKind::ServerError
        );
        assert_eq!(
            harness_kind(&ModelError::BadApiKey {
                at: at(),
                status: 401,
                detail: String::new(),
                hint: String::new()
            }),
            HarnessErrorKind::Endpoint
        );
    }
}
