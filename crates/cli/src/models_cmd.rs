//! `ao models list [--check]` and `ao doctor`: the effective model configuration, never a key.

use crate::output::print_json;
use crate::{CliError, Project, Ui};
use ao_core::config::ModelConfig;
use ao_models::{CompletionRequest, DiscardExchanges, Message, ModelClient, OutputSchema};
use serde_json::{Value, json};

fn model_json(m: &ModelConfig) -> Value {
    json!({
        "role": m.role,
        "provider": m.provider.value.as_str(),
        "model": m.model.value,
        "base_url": m.base_url.value,
        "api_key": if m.api_key.is_some() { "set" } else { "unset" },
        "fallback": m.fallback.value,
        "source": m.model.source.to_string(),
    })
}

/// One tiny call per model: a plain reply (latency) and a structured one (does JSON work, in
/// which mode).
async fn check(client: &ModelClient, role: &str) -> Value {
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
    json!({
        "ok": plain.is_ok(),
        "latency_ms": latency_ms,
        "error": plain.as_ref().err().map(|e| e.to_string()),
        "structured_output": structured.is_ok(),
        "structured_mode": structured.as_ref().ok().and_then(|c| c.structured_mode).map(|m| serde_json::to_value(m).unwrap_or(Value::Null)),
        "structured_error": structured.as_ref().err().map(|e| e.to_string()),
    })
}

pub async fn list(project: &Project, do_check: bool, ui: Ui) -> Result<u8, CliError> {
    let models: Vec<&ModelConfig> = project.config.model_roles().collect();
    let mut rows: Vec<Value> = models.iter().map(|m| model_json(m)).collect();
    let mut failed = false;
    if do_check && models.is_empty() {
        return Err(CliError {
            code: 2,
            kind: "config",
            message: format!(
                "nothing to check: {}",
                ao_core::config::ConfigError::MissingLeader
            ),
        });
    }
    if do_check {
        let client = ModelClient::new(&project.config).map_err(|e| CliError {
            code: 2,
            kind: "config",
            message: e.to_string(),
        })?;
        for (row, m) in rows.iter_mut().zip(&models) {
            let result = check(&client, &m.role).await;
            failed |= result["ok"] != true;
            row["check"] = result;
        }
    }
    let redactor = project.redactor();
    if ui.json {
        let mut doc =
            json!({"models": rows, "leader_configured": project.config.leader_config.is_some()});
        redactor.redact_value_in_place(&mut doc);
        print_json(&doc);
    } else if rows.is_empty() {
        println!(
            "no models configured.\n{}",
            ao_core::config::ConfigError::MissingLeader
        );
    } else {
        for r in &rows {
            let mut line = format!(
                "{:<10} {:<18} {:<28} {}  key {}",
                r["role"].as_str().unwrap_or(""),
                r["provider"].as_str().unwrap_or(""),
                r["model"].as_str().unwrap_or(""),
                r["base_url"].as_str().unwrap_or(""),
                r["api_key"].as_str().unwrap_or("")
            );
            if let Some(c) = r.get("check") {
                if c["ok"] == true {
                    line.push_str(&format!(
                        "  ok {} ms, structured output {}",
                        c["latency_ms"],
                        c["structured_mode"]
                            .as_str()
                            .map(|m| format!("works ({m})"))
                            .unwrap_or_else(|| "fails".into())
                    ));
                } else {
                    line.push_str(&format!("  FAILED: {}", c["error"].as_str().unwrap_or("")));
                }
            }
            println!("{}", redactor.redact_str(&line));
        }
        if project.config.leader_config.is_none() {
            println!(
                "\nwarning: no leader model configured; `llm` nodes with role leader cannot run."
            );
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn doctor(project: &Project, ui: Ui) -> Result<u8, CliError> {
    let rows = project.config.doctor_rows();
    let mut warnings: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if project.config.leader_config.is_none() {
        warnings.push("no leader model is configured: workflows with `llm` nodes cannot run (see `ao models list`)".into());
    }
    let policy = match project.runner(false) {
        Ok(service) => service.tools().map(|t| {
            let p = t.policy();
            warnings.extend(p.arbitrary_code_warnings());
            json!({
                "mode": serde_json::to_value(p.mode()).unwrap_or(Value::Null),
                "mode_source": p.mode_source(),
                "allowed_commands": p.allowed_commands().iter().map(|c| c.join(" ")).collect::<Vec<_>>(),
                "read_only_commands": p.read_only_commands().iter().map(|c| c.join(" ")).collect::<Vec<_>>(),
                "writable": p.writable_patterns(),
                "denied": p.denied_patterns(),
                "command_permits": p.command_permits(),
            })
        }),
        Err(e) => {
            errors.push(e.message);
            None
        }
    };
    if ui.json {
        let settings: Vec<Value> = rows
            .iter()
            .map(|r| json!({"setting": r.setting, "value": r.value, "source": r.source.map(|s| s.to_string())}))
            .collect();
        let mut doc = json!({
            "root": project.root.display().to_string(),
            "config_file": project.config.ao_toml_path.as_ref().map(|p| p.display().to_string()),
            "dotenv_file": project.config.dotenv_path.as_ref().map(|p| p.display().to_string()),
            "settings": settings,
            "policy": policy,
            "warnings": warnings,
            "errors": errors,
        });
        project.redactor().redact_value_in_place(&mut doc);
        print_json(&doc);
    } else {
        println!("root        {}", project.root.display());
        println!(
            "config file {}",
            project
                .config
                .ao_toml_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        );
        println!(
            ".env        {}",
            project
                .config
                .dotenv_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        );
        println!();
        for r in &rows {
            println!(
                "{:<28} {:<40} {}",
                r.setting,
                r.value,
                r.source.map(|s| format!("({s})")).unwrap_or_default()
            );
        }
        if let Some(p) = &policy {
            println!();
            println!(
                "{:<28} {:<40} ({})",
                "policy.mode",
                p["mode"].as_str().unwrap_or(""),
                p["mode_source"].as_str().unwrap_or("")
            );
            let list = |k: &str| {
                p[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            println!(
                "{:<28} {}",
                "policy.allowed_commands",
                if list("allowed_commands").is_empty() {
                    "none".into()
                } else {
                    list("allowed_commands")
                }
            );
            println!(
                "{:<28} {}",
                "policy.read_only_commands",
                list("read_only_commands")
            );
            println!(
                "{:<28} {}",
                "policy.writable",
                if p["writable"].is_null() {
                    "everything under the root that is not denied".into()
                } else {
                    list("writable")
                }
            );
            // What each allowed prefix still permits once ao has screened its options (the
            // read-only git commands are in the JSON form too).
            let allowed = p["allowed_commands"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for c in p["command_permits"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| allowed.contains(&c["prefix"]))
            {
                println!(
                    "\n{:<28} {}",
                    format!("`{}`", c["prefix"].as_str().unwrap_or("")),
                    project
                        .redactor()
                        .redact_str(c["permits"].as_str().unwrap_or(""))
                );
            }
        }
        for w in &warnings {
            println!("\nwarning: {}", project.redactor().redact_str(w));
        }
        for e in &errors {
            println!("\nerror: {e}");
        }
    }
    Ok(if errors.is_empty() { 0 } else { 2 })
}
