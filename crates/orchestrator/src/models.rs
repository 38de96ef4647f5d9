//! The configured models as the front ends show them (never a key), and the check that makes
//! one tiny call per model.

use ao_core::config::ModelConfig;
use ao_models::{CompletionRequest, DiscardExchanges, Message, ModelClient, OutputSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One configured model role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    /// `leader`, `worker`, or a worker's name.
    pub role: String,
    pub provider: String,
    pub model: String,
    pub base_url: String,
    /// `set` or `unset`: never the key.
    pub api_key: String,
    pub fallback: Vec<String>,
    /// Where the model name came from (flag, environment, .env, ao.toml).
    pub source: String,
    /// The result of `--check`, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<ModelCheck>,
}

impl From<&ModelConfig> for ModelInfo {
    fn from(m: &ModelConfig) -> Self {
        ModelInfo {
            role: m.role.clone(),
            provider: m.provider.value.as_str().to_string(),
            model: m.model.value.clone(),
            base_url: m.base_url.value.clone(),
            api_key: if m.api_key.is_some() { "set" } else { "unset" }.into(),
            fallback: m.fallback.value.clone(),
            source: m.model.source.to_string(),
            check: None,
        }
    }
}

/// What one tiny call per model found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelCheck {
    /// A plain request was answered.
    pub ok: bool,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// A structured (JSON Schema) request was answered with valid JSON.
    pub structured_output: bool,
    /// How structured output was obtained (`json_schema`, `json_object`, `prompt_only`).
    pub structured_mode: Option<String>,
    /// Why structured output failed.
    pub structured_error: Option<String>,
}

/// One tiny call per model: a plain reply (latency) and a structured one (does JSON work, in
/// which mode).
pub async fn check_model(client: &ModelClient, role: &str) -> ModelCheck {
    let plain = CompletionRequest::new(vec![Message::user("Reply with the single word: ok")]);
    let started = std::time::Instant::now();
    let plain = client.complete(role, plain, &DiscardExchanges).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let schema = json!({"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}, "additionalProperties": false});
    let structured = CompletionRequest::new(vec![Message::user(
        "Answer with the JSON object {\"ok\": true}.",
    )])
    .with_schema(OutputSchema::new("check", schema));
    let structured = client.complete(role, structured, &DiscardExchanges).await;
    ModelCheck {
        ok: plain.is_ok(),
        latency_ms,
        error: plain.as_ref().err().map(|e| e.to_string()),
        structured_output: structured.is_ok(),
        structured_mode: structured
            .as_ref()
            .ok()
            .and_then(|c| c.structured_mode)
            .and_then(|m| serde_json::to_value(m).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        structured_error: structured.as_ref().err().map(|e| e.to_string()),
    }
}

/// The configured model roles, and with `check` the result of one tiny call to each.
pub async fn list_models(
    config: &ao_core::config::Config,
    check: bool,
) -> Result<Vec<ModelInfo>, crate::Error> {
    let mut rows: Vec<ModelInfo> = config.model_roles().map(ModelInfo::from).collect();
    if check {
        let client = ModelClient::new(config)?;
        for row in &mut rows {
            row.check = Some(check_model(&client, &row.role).await);
        }
    }
    Ok(rows)
}
