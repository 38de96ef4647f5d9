//! `ao models list [--check]` and `ao doctor`: the effective model configuration, never a key.

use crate::output::print_json;
use crate::{CliError, Project, Ui};
use ao_orchestrator::models::list_models;
use serde_json::{Value, json};

pub async fn list(project: &Project, do_check: bool, ui: Ui) -> Result<u8, CliError> {
    // A model role that is configured but wrong is this command's business: say what to set.
    project.config.check_models().map_err(|e| CliError {
        code: 2,
        kind: "config",
        message: e.to_string(),
    })?;
    if do_check && project.config.model_roles().next().is_none() {
        return Err(CliError {
            code: 2,
            kind: "config",
            message: format!(
                "nothing to check: {}",
                ao_core::config::ConfigError::MissingLeader
            ),
        });
    }
    let rows = list_models(&project.config, &project.state_dir, do_check).await?;
    let failed = rows.iter().any(|r| r.check.as_ref().is_some_and(|c| !c.ok));
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
        for r in rows {
            let mut line = format!(
                "{:<10} {:<18} {:<28} {}  key {}",
                r.role, r.provider, r.model, r.base_url, r.api_key
            );
            if let Some(l) = &r.learned {
                line.push_str(&format!(
                    "  structured mode {}{} (learned {} UTC{})",
                    l.mode,
                    l.reason
                        .as_deref()
                        .map(|why| format!(" because: {why}"))
                        .unwrap_or_default(),
                    crate::output::format_time(l.learned_at * 1000),
                    if l.expired {
                        ", expired: probed again on next use".to_string()
                    } else {
                        format!(
                            ", until {} UTC",
                            crate::output::format_time(l.expires_at * 1000)
                        )
                    }
                ));
            }
            if let Some(c) = &r.check {
                if c.ok {
                    line.push_str(&format!(
                        "  ok {} ms, structured output {}",
                        c.latency_ms,
                        match &c.structured_mode {
                            Some(m) => format!("works ({m})"),
                            None => format!(
                                "fails: {}",
                                c.structured_error.as_deref().unwrap_or("no reason given")
                            ),
                        }
                    ));
                } else {
                    line.push_str(&format!("  FAILED: {}", c.error.as_deref().unwrap_or("")));
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

/// `ao models reset [ROLE]`: forget the learned structured-output modes.
pub fn reset(project: &Project, role: Option<&str>, ui: Ui) -> Result<u8, CliError> {
    let forgotten =
        ao_orchestrator::models::reset_learned_modes(&project.config, &project.state_dir, role)?;
    if ui.json {
        print_json(&json!({"forgotten": forgotten}));
    } else {
        println!(
            "forgot {forgotten} learned mode{}; the next call probes again from json_schema",
            if forgotten == 1 { "" } else { "s" }
        );
    }
    Ok(0)
}

pub fn doctor(project: &Project, ui: Ui) -> Result<u8, CliError> {
    let report = ao_orchestrator::doctor::doctor(
        &project.config,
        &project.env,
        &project.root,
        &project.state_dir,
        project.redactor(),
    );
    let rows = &report.settings;
    let warnings = &report.warnings;
    let errors = &report.errors;
    let policy = report
        .policy
        .as_ref()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null));
    if ui.json {
        let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
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
        for r in rows {
            println!(
                "{:<28} {:<40} {}",
                r.setting,
                r.value,
                r.source
                    .as_ref()
                    .map(|s| format!("({s})"))
                    .unwrap_or_default()
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
            let c = &p["confinement"];
            let abi = c["landlock_abi"].as_u64().unwrap_or(0);
            let yes = |k: &str| c[k].as_bool().unwrap_or(false);
            let mut enforced = Vec::new();
            if yes("filesystem") {
                enforced.push("files".to_string());
            }
            if yes("network_enforced") {
                enforced.push(format!("TCP {}", c["network"].as_str().unwrap_or("")));
            }
            if yes("scopes") {
                enforced.push("abstract sockets and signals scoped".to_string());
            }
            println!(
                "{:<28} Landlock ABI {abi}: {}{}",
                "confinement",
                if enforced.is_empty() {
                    "nothing enforced".to_string()
                } else {
                    format!("enforced: {}", enforced.join(", "))
                },
                if p["require_confinement"].as_bool().unwrap_or(false) {
                    " (required)"
                } else {
                    ""
                }
            );
            let l = &c["limits"];
            println!(
                "{:<28} CPU {} s, address space {} MiB, file size {} MiB, processes +{}{}",
                "confinement.limits",
                l["cpu_s"],
                l["address_space_mb"],
                l["file_size_mb"],
                l["processes"],
                if yes("processes_enforced") {
                    ""
                } else {
                    " (not enforced: running as root)"
                }
            );
            for n in c["not_enforced"].as_array().into_iter().flatten() {
                println!(
                    "{:<28} {}",
                    "confinement.not_enforced",
                    n.as_str().unwrap_or("")
                );
            }
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
        for w in warnings {
            println!("\nwarning: {}", project.redactor().redact_str(w));
        }
        for e in errors {
            println!("\nerror: {e}");
        }
    }
    Ok(if errors.is_empty() { 0 } else { 2 })
}
