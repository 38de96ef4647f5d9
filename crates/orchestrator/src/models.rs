//! The configured models as the front ends show them (never a key), the check that makes two
//! tiny calls per model, and the structured-output modes learned per endpoint: shown with when
//! they expire, shared by checks and runs, and resettable.

use crate::model_node::LEARNED_MODES_FILE;
use ao_core::config::{Config, ModelConfig};
use ao_models::{LEARNED_MODE_LIFETIME, LearnedMode, LearnedModes, ModelClient};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use ao_models::PROBE_MAX_TOKENS;

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
    /// The structured-output mode runs use with this endpoint, once learned.
    pub learned: Option<LearnedModeView>,
    /// The result of `--check`, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<ModelCheck>,
}

/// What `ao` learned about an endpoint's structured output, and until when it trusts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LearnedModeView {
    /// `json_schema`, `json_object_schema`, `json_object` or `prompt_only`.
    pub mode: String,
    /// Unix time (seconds) it was learned.
    pub learned_at: u64,
    /// Unix time (seconds) after which the endpoint is probed again.
    pub expires_at: u64,
    pub expired: bool,
    /// Why a weaker mode than the first was learned (the endpoint's rejection).
    pub reason: Option<String>,
}

impl LearnedModeView {
    fn new(m: &LearnedMode) -> Self {
        let expires_at = m.expires_at(LEARNED_MODE_LIFETIME);
        LearnedModeView {
            mode: m.mode.as_str().to_string(),
            learned_at: m.learned_at,
            expires_at,
            expired: ao_graph::now_ms() / 1000 >= expires_at,
            reason: m.reason.clone(),
        }
    }
}

impl ModelInfo {
    fn new(m: &ModelConfig, learned: &LearnedModes) -> Self {
        ModelInfo {
            role: m.role.clone(),
            provider: m.provider.value.as_str().to_string(),
            model: m.model.value.clone(),
            base_url: m.base_url.value.clone(),
            api_key: if m.api_key.is_some() { "set" } else { "unset" }.into(),
            fallback: m.fallback.value.clone(),
            source: m.model.source.to_string(),
            learned: learned
                .get(&m.base_url.value, &m.model.value)
                .map(LearnedModeView::new),
            check: None,
        }
    }
}

/// What the two tiny calls found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelCheck {
    /// A plain request was answered.
    pub ok: bool,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// A structured (JSON Schema) request was answered with valid JSON.
    pub structured_output: bool,
    /// How structured output was obtained (the mode runs use).
    pub structured_mode: Option<String>,
    /// Why structured output failed.
    pub structured_error: Option<String>,
}

/// The modes learned so far, from the state dir (none when the file is missing or unreadable:
/// it is a cache, learned again).
pub fn load_learned_modes(state_dir: &Path) -> LearnedModes {
    std::fs::read(state_dir.join(LEARNED_MODES_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save_learned_modes(state_dir: &Path, modes: &LearnedModes) -> Result<(), crate::Error> {
    let file = state_dir.join(LEARNED_MODES_FILE);
    crate::files::write_private_json(&file, modes).map_err(|e| {
        crate::Error::Usage(format!(
            "cannot save the learned modes to {}: {e}",
            file.display()
        ))
    })
}

/// The configured model roles with what was learned about their endpoints, and with `check`
/// the result of two tiny calls to each (made with, and saving, the same learned modes runs
/// use, so the check says what a run would see).
pub async fn list_models(
    config: &Config,
    state_dir: &Path,
    check: bool,
) -> Result<Vec<ModelInfo>, crate::Error> {
    let mut learned = load_learned_modes(state_dir);
    let mut rows: Vec<ModelInfo> = config
        .model_roles()
        .map(|m| ModelInfo::new(m, &learned))
        .collect();
    if check {
        let client = ModelClient::new(config)?;
        client.import_learned_modes(learned);
        for row in &mut rows {
            let report = client.probe(&row.role).await?;
            row.check = Some(ModelCheck {
                ok: report.ok,
                latency_ms: report.latency.as_millis() as u64,
                error: report.error,
                structured_output: report.structured_mode.is_some(),
                structured_mode: report.structured_mode.map(|m| m.as_str().to_string()),
                structured_error: report.structured_error,
            });
        }
        learned = client.learned_modes();
        save_learned_modes(state_dir, &learned)?;
        for (row, m) in rows.iter_mut().zip(config.model_roles()) {
            row.learned = learned
                .get(&m.base_url.value, &m.model.value)
                .map(LearnedModeView::new);
        }
    }
    Ok(rows)
}

/// Forgets the modes learned for `role`'s endpoints (its model and fallbacks), or for every
/// endpoint; the next call probes again from the strongest mode. Returns how many were
/// forgotten.
pub fn reset_learned_modes(
    config: &Config,
    state_dir: &Path,
    role: Option<&str>,
) -> Result<usize, crate::Error> {
    let client = ModelClient::new(config)?;
    client.import_learned_modes(load_learned_modes(state_dir));
    if let Some(role) = role
        && !client.roles().iter().any(|r| r == role)
    {
        return Err(crate::Error::Usage(format!(
            "no model role `{role}` is configured (roles: {})",
            client.roles().join(", ")
        )));
    }
    let forgotten = client.forget_learned_modes(role);
    save_learned_modes(state_dir, &client.learned_modes())?;
    Ok(forgotten)
}
