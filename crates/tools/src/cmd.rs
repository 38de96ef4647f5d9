//! The `cmd.run` tool: an argv list, never a shell string, behind the command allowlist and
//! the option screening of its toolchain. Git runs pinned like every git process of `ao`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::decision::Decision;
use crate::error::ToolError;
use crate::git::GitPin;
use crate::policy::CommandVerdict;
use crate::registry::{Call, ToolOutcome};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunArgs {
    argv: Vec<String>,
    timeout_s: Option<u64>,
}

pub(crate) async fn run(call: &Call<'_>, args: &Value) -> Result<ToolOutcome, ToolError> {
    let a: RunArgs = serde_json::from_value(args.clone()).map_err(|e| ToolError::InvalidArgs {
        tool: call.tool.to_string(),
        errors: vec![e.to_string()],
    })?;
    let policy = call.policy();
    match policy.check_command(&a.argv) {
        CommandVerdict::Deny(reason) => call.deny(reason, Some(&a.argv)),
        CommandVerdict::Simulate => {
            let reason = format!(
                "dry-run: not started; in apply mode this argv would run: {}",
                shell_words::join(&a.argv)
            );
            call.simulate(&reason, Some(&a.argv))?;
            Ok(call.outcome(
                Decision::Simulated,
                Some(reason),
                json!({"argv": a.argv, "simulated": true}),
            ))
        }
        CommandVerdict::Run => {
            // Every git process runs pinned to the root's repository with program-naming
            // configuration neutralised (see `git.rs`).
            let git = if crate::screen::program_name(&a.argv[0]) == "git" {
                let args = &a.argv[1..];
                let pin = match GitPin::prepare(policy, crate::git::is_authoring(args)).await {
                    Ok(pin) => pin,
                    Err(reason) => return call.deny(reason, Some(&a.argv)),
                };
                let revs = crate::git::positional_revs(args);
                if let Some(reason) = crate::git::blob_reference(&pin, policy, &revs).await {
                    return call.deny(reason, Some(&a.argv));
                }
                Some(pin)
            } else {
                None
            };
            // The kernel confinement it will run under; a policy that requires confinement
            // the kernel cannot give refuses the command.
            let confine = policy.command_confine();
            if let Some(reason) = confine.refusal() {
                return call.deny(reason, Some(&a.argv));
            }
            let summary = confine.summary();
            call.allow_confined(&a.argv, summary.clone())?;
            let (argv, env) = match &git {
                Some(pin) => (
                    pin.argv(&crate::git::with_denied_excluded(policy, &a.argv[1..])),
                    pin.env(),
                ),
                None => (a.argv.clone(), policy.child_env()),
            };
            let limits = policy.limits();
            let timeout = a
                .timeout_s
                .map(Duration::from_secs)
                .unwrap_or(limits.command_timeout)
                .min(limits.max_timeout);
            let out = crate::exec::run(
                &argv,
                policy.root(),
                env,
                &confine,
                timeout,
                limits.output_cap_bytes,
                Some(call.ctx.redactor()),
            )
            .await
            .map_err(|e| call.fail(Some(&shell_words::join(&a.argv)), e))?;
            let mut output = serde_json::to_value(&out)
                .map_err(|e| call.fail(None, format!("cannot encode the output: {e}")))?;
            if let Value::Object(map) = &mut output {
                map.insert("argv".into(), json!(argv));
                map.insert("simulated".into(), json!(false));
                map.insert("confinement".into(), json!(summary));
                if let Some(limit) = out.limit_hit {
                    let what = match limit {
                        "cpu_time" => format!(
                            "the CPU time limit ({} s, `[policy] max_cpu_s`)",
                            summary.limits.cpu_s
                        ),
                        _ => format!(
                            "the file size limit ({} MiB, `[policy] max_file_size_mb`)",
                            summary.limits.file_size_mb
                        ),
                    };
                    map.insert(
                        "stderr".into(),
                        json!(format!("{}\n[ao: killed by {what}]", out.stderr)),
                    );
                }
                if out.timed_out {
                    map.insert(
                        "stderr".into(),
                        json!(format!(
                            "{}\n[ao: killed after the {} s timeout]",
                            out.stderr,
                            timeout.as_secs()
                        )),
                    );
                }
            }
            Ok(call.outcome(Decision::Allowed, None, output))
        }
    }
}
