//! The workers as routing and the front ends see them: the configured workers with their ids,
//! and each one's saved profile with whether it is current.
//!
//! A worker's id is its name in `ao.toml` (`[workers.NAME]`). The worker the `WORKER_MODEL_*`
//! variables define (the configuration calls it `default`) is identified as `provider:model`,
//! the id an interview of that endpoint saves its profile under, so interviewing an endpoint
//! ad hoc and configuring it later meet on one profile.

use std::collections::BTreeSet;
use std::path::Path;

use ao_core::config::{Config, DEFAULT_WORKER, ModelConfig};
use ao_core::profile::WorkerCapabilityProfile;
use ao_core::timestamp::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::profiles::{ProfileStoreError, load_profiles};
use crate::routing::{ConfiguredWorker, ProfileState, profile_state};

/// The id of a configured worker: its name, or `provider:model` for the one the
/// `WORKER_MODEL_*` variables define.
pub fn worker_id(cfg: &ModelConfig) -> String {
    if cfg.role == DEFAULT_WORKER {
        format!("{}:{}", cfg.provider.value.as_str(), cfg.model.value)
    } else {
        cfg.role.clone()
    }
}

/// The configured worker a name or id stands for.
pub fn find_configured<'c>(config: &'c Config, name_or_id: &str) -> Option<&'c ModelConfig> {
    config
        .workers
        .get(name_or_id)
        .or_else(|| config.workers.values().find(|w| worker_id(w) == name_or_id))
}

/// The configured workers as routing takes them, each once. A worker's cost is its price per
/// million tokens, input plus output (unknown without a `price`).
pub fn configured_workers(config: &Config) -> Vec<ConfiguredWorker> {
    let mut seen = BTreeSet::new();
    config
        .workers
        .values()
        .filter_map(|w| {
            let id = worker_id(w);
            seen.insert(id.clone()).then(|| ConfiguredWorker {
                id,
                cost: w.price.as_ref().map(|p| p.value.input + p.value.output),
            })
        })
        .collect()
}

/// One line of `ao worker list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerEntry {
    pub worker_id: String,
    /// The worker is in the configuration (routing may give it work).
    pub configured: bool,
    /// `current`, `missing` (never interviewed), `expired`, or `other-suite` (interviewed with
    /// a suite other than the built-in one): routing interviews all but `current` first.
    pub profile_state: ProfileState,
    /// The saved profile, if any.
    pub profile: Option<WorkerCapabilityProfile>,
}

/// The saved profiles, in file order, then the configured workers that have none.
/// Blocking (the profile file's lock): call from a blocking context.
pub fn list_workers(
    config: Option<&Config>,
    state_dir: &Path,
    now: Timestamp,
    suite_sha256: &str,
) -> Result<Vec<WorkerEntry>, ProfileStoreError> {
    let configured: Vec<ConfiguredWorker> = config.map(configured_workers).unwrap_or_default();
    let is_configured = |id: &str| configured.iter().any(|w| w.id == id);
    let mut out: Vec<WorkerEntry> = load_profiles(state_dir)?
        .into_iter()
        .map(|p| WorkerEntry {
            worker_id: p.worker_id.clone(),
            configured: is_configured(&p.worker_id),
            profile_state: profile_state(Some(&p), now, suite_sha256),
            profile: Some(p),
        })
        .collect();
    for w in &configured {
        if !out.iter().any(|e| e.worker_id == w.id) {
            out.push(WorkerEntry {
                worker_id: w.id.clone(),
                configured: true,
                profile_state: ProfileState::Missing,
                profile: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ao_core::config::ConfigInputs;
    use std::collections::BTreeMap;

    fn config(toml: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ao.toml"), toml).unwrap();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cfg = Config::load(&ConfigInputs::new(dir.path()).with_env(env)).unwrap();
        (dir, cfg)
    }

    #[test]
    fn named_workers_go_by_name_and_the_env_worker_by_provider_and_model() {
        let (_dir, cfg) = config(
            "[workers.qwen]\nprovider = \"ollama\"\nmodel = \"qwen\"\n\
             price = {input = 1.0, output = 2.0}\n",
            &[
                ("WORKER_MODEL_PROVIDER", "litellm"),
                ("WORKER_MODEL_NAME", "qwen3-coder"),
                ("WORKER_MODEL_BASE_URL", "http://proxy:4000/v1"),
            ],
        );
        let workers = configured_workers(&cfg);
        let ids: Vec<&str> = workers.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["litellm:qwen3-coder", "qwen"]);
        assert_eq!(workers[1].cost, Some(3.0));
        assert_eq!(workers[0].cost, None);
        assert_eq!(find_configured(&cfg, "qwen").unwrap().role, "qwen");
        assert_eq!(
            find_configured(&cfg, "litellm:qwen3-coder").unwrap().role,
            DEFAULT_WORKER
        );
        assert_eq!(
            find_configured(&cfg, "default").unwrap().role,
            DEFAULT_WORKER
        );
        assert!(find_configured(&cfg, "nobody").is_none());
    }
}
