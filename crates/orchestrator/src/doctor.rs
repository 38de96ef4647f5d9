//! `doctor`: the effective configuration (every setting, its value and where it came from,
//! never a secret's value), the policy it makes, and what is wrong or risky in it. No model
//! calls. One typed report that `ao doctor` and the MCP server's `ao_doctor` both render.

use crate::service::Service;
use ao_core::config::Config;
use ao_core::redact::Redactor;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DoctorReport {
    /// The project root.
    pub root: String,
    /// The ao.toml that was read, if any.
    pub config_file: Option<String>,
    /// The .env that was read, if any.
    pub dotenv_file: Option<String>,
    pub settings: Vec<DoctorSetting>,
    /// The policy the configuration makes (null when it cannot be built: see `errors`).
    pub policy: Option<PolicyView>,
    pub warnings: Vec<String>,
    /// Problems that stop work (a model configured wrongly, a policy that cannot be built).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DoctorSetting {
    pub setting: String,
    /// The value, or for a secret `set (from X)` / `unset`.
    pub value: String,
    /// Where it came from: `flag`, `env`, `.env`, `ao.toml`, `default`.
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PolicyView {
    /// `dry_run` or `apply`.
    pub mode: Value,
    /// Why the mode is what it is.
    pub mode_source: String,
    pub allowed_commands: Vec<String>,
    pub read_only_commands: Vec<String>,
    /// Where writes may go in apply mode; null means everything under the root that is not
    /// denied.
    pub writable: Option<Vec<String>>,
    pub denied: Vec<String>,
    /// What each allowed (and read-only) command prefix still permits once ao has screened
    /// its options.
    pub command_permits: Vec<CommandPermitView>,
    /// How the kernel confines a command in apply mode on this machine: the Landlock ABI, what
    /// is enforced and what is not, the resource limits.
    pub confinement: ao_tools::ConfinementSummary,
    /// `[policy] require_confinement`: commands are refused unless all of it is enforced.
    pub require_confinement: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CommandPermitView {
    /// The entry, as words joined for a shell.
    pub prefix: String,
    /// The entry amounts to running any code (an interpreter, a shell, a task runner).
    pub arbitrary_code: bool,
    /// What the entry permits, and what ao refuses after it.
    pub permits: String,
}

/// Checks the configuration of the project at `root` (state under `state_dir`).
pub fn doctor(
    config: &Config,
    env: &BTreeMap<String, String>,
    root: &Path,
    state_dir: &Path,
    redactor: Redactor,
) -> DoctorReport {
    let mut warnings: Vec<String> = Vec::new();
    let mut errors: Vec<String> = config
        .model_problems
        .values()
        .map(|e| e.to_string())
        .collect();
    if config.leader_config.is_none() && config.model_problems.is_empty() {
        warnings.push("no leader model is configured: workflows with `llm` nodes cannot run (see `ao models list`)".into());
    }
    let configured = Service::open(root, state_dir).and_then(|mut service| {
        service.configure(config, env, false, redactor)?;
        Ok(service)
    });
    let policy = match configured {
        Ok(service) => service.tools().map(|t| {
            let p = t.policy();
            warnings.extend(p.arbitrary_code_warnings());
            let confinement = p.confinement_summary();
            if !confinement.complete() {
                let what = format!(
                    "the kernel (Landlock ABI {}) cannot confine commands fully: {}",
                    confinement.landlock_abi,
                    confinement.not_enforced.join("; ")
                );
                if p.require_confinement() {
                    errors.push(format!(
                        "{what}; `[policy] require_confinement = true`, so no command will start"
                    ));
                } else {
                    warnings.push(what);
                }
            }
            PolicyView {
                mode: serde_json::to_value(p.mode()).unwrap_or(Value::Null),
                mode_source: p.mode_source().to_string(),
                allowed_commands: p.allowed_commands().iter().map(|c| c.join(" ")).collect(),
                read_only_commands: p.read_only_commands().iter().map(|c| c.join(" ")).collect(),
                writable: p.writable_patterns().map(<[String]>::to_vec),
                denied: p.denied_patterns().to_vec(),
                command_permits: p
                    .command_permits()
                    .into_iter()
                    .map(|c| CommandPermitView {
                        prefix: c.prefix,
                        arbitrary_code: c.arbitrary_code,
                        permits: c.permits,
                    })
                    .collect(),
                confinement,
                require_confinement: p.require_confinement(),
            }
        }),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    DoctorReport {
        root: root.display().to_string(),
        config_file: config
            .ao_toml_path
            .as_ref()
            .map(|p| p.display().to_string()),
        dotenv_file: config.dotenv_path.as_ref().map(|p| p.display().to_string()),
        settings: config
            .doctor_rows()
            .into_iter()
            .map(|r| DoctorSetting {
                setting: r.setting,
                value: r.value,
                source: r.source.map(|s| s.to_string()),
            })
            .collect(),
        policy,
        warnings,
        errors,
    }
}
