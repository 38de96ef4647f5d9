//! `ao runs`: list, show, resume, cancel, events.

use crate::input::json_arg;
use crate::output::{
    format_time, print_doc, print_json, print_outcome, run_header, run_line, usage_line,
};
use crate::run_cmd::{drive, print_changeset_summary};
use crate::{CliError, Project, Ui};
use ao_core::run::RunStatus;
use ao_orchestrator::engine::RunFilter;
use ao_orchestrator::{CancelResult, RootCheck};
use std::time::Duration;

/// `--other-root`: act on a run made in another project (the run records its root).
pub fn root_check(other_root: bool) -> RootCheck {
    if other_root {
        RootCheck::AnyRoot
    } else {
        RootCheck::SameRoot
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List {
        /// Only runs with this status.
        #[arg(long, value_parser = ["running", "interrupted", "completed", "failed", "cancelled"])]
        status: Option<String>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Include sub-runs (the runs `workflow` nodes start).
        #[arg(long)]
        all: bool,
    },
    /// One run: status, state, output, interrupt, error.
    Show {
        run_id: String,
        /// Print only the run's changeset, as a unified diff `git apply` accepts.
        #[arg(long)]
        patch: bool,
        /// With --patch: show the changeset of a run made in another project.
        #[arg(long)]
        other_root: bool,
        /// Also show model usage per `for_each` task.
        #[arg(long)]
        tasks: bool,
        /// Print the run's model exchanges (every HTTP request and reply, secrets redacted).
        #[arg(long, conflicts_with = "patch")]
        exchanges: bool,
    },
    /// Continue an interrupted run (with --answer) or a failed/crashed one.
    Resume {
        run_id: String,
        /// The answer to the pending interrupt: JSON, or @FILE (@- for stdin).
        #[arg(long, value_name = "JSON|@FILE")]
        answer: Option<String>,
        /// Let tools write files and run commands from here on (default: dry-run).
        #[arg(long)]
        apply: bool,
        /// Resume a run made in another project, here.
        #[arg(long)]
        other_root: bool,
        /// Continue with the workflow's current definition (after fixing it), if it is
        /// compatible with what already ran; the default is the definition the run started with.
        #[arg(long)]
        reload: bool,
        /// Raise (or set) the run's budget from here on.
        #[command(flatten)]
        budget: crate::input::BudgetArgs,
        #[command(flatten)]
        replay: crate::input::ReplayArgs,
    },
    /// Write a stored run's model calls (its sub-runs' included) to a cassette, to answer them
    /// again with `--replay`.
    Export {
        run_id: String,
        /// The cassette file to write.
        #[arg(long, value_name = "FILE")]
        cassette: std::path::PathBuf,
    },
    /// Cancel a run (a running one stops at its next safe point).
    Cancel { run_id: String },
    /// Delete finished runs (completed, failed, cancelled) and their records, keeping the
    /// newest; never a running or interrupted run. Reclaims the space.
    Gc {
        /// Keep this many of the newest finished runs.
        #[arg(long, default_value_t = ao_orchestrator::GC_DEFAULT_KEEP)]
        keep: usize,
        /// Only delete runs last updated more than this many days ago.
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u64>,
    },
    /// The run's events: a readable timeline (default), one JSON document (--json), or JSON
    /// lines (--jsonl, one event per line, for streaming with --follow).
    Events {
        run_id: String,
        /// Keep printing new events until the run stops.
        #[arg(long)]
        follow: bool,
        /// One JSON object per line instead of the timeline.
        #[arg(long, conflicts_with = "json")]
        jsonl: bool,
    },
}

pub async fn dispatch(project: &Project, cmd: &RunsCommand, ui: Ui) -> Result<u8, CliError> {
    let service = project.service()?;
    match cmd {
        RunsCommand::List {
            status,
            workflow,
            limit,
            all,
        } => {
            let filter = RunFilter {
                status: status
                    .as_deref()
                    .map(|s| s.parse::<RunStatus>().map_err(CliError::usage))
                    .transpose()?,
                workflow: workflow.clone(),
                limit: Some(*limit),
                include_children: *all,
            };
            let runs = service.list(&filter)?;
            if ui.json {
                print_doc(&serde_json::json!({ "runs": runs }));
            } else if runs.is_empty() {
                println!("no runs yet in {}", project.state_dir.display());
            } else {
                println!("{}", run_header());
                for r in &runs {
                    println!("{}", run_line(r));
                }
            }
            Ok(0)
        }
        RunsCommand::Show {
            run_id,
            exchanges: true,
            ..
        } => {
            let exchanges = service.exchanges(run_id)?;
            if ui.json {
                print_doc(&serde_json::json!({"run_id": run_id, "exchanges": exchanges}));
            } else if exchanges.is_empty() {
                println!("run {run_id} made no model requests");
            } else {
                for x in &exchanges {
                    let d = &x["data"];
                    println!(
                        "--- step {} {}{} · {} {} · attempt {} ({}) · HTTP {} · {} ms",
                        x["step"],
                        x["node"].as_str().unwrap_or(""),
                        x["index"]
                            .as_u64()
                            .map(|i| format!("[{i}]"))
                            .unwrap_or_default(),
                        d["role"].as_str().unwrap_or(""),
                        d["model"].as_str().unwrap_or(""),
                        d["attempt"],
                        d["kind"].as_str().unwrap_or(""),
                        d["status"],
                        d["latency"].as_f64().map(|l| l.round() as u64).unwrap_or(0)
                    );
                    println!("request: {}", d["request"]);
                    match (d["response"].as_str(), d["error"].as_str()) {
                        (_, Some(e)) => println!("error: {e}"),
                        (Some(r), None) => println!("reply: {r}"),
                        _ => {}
                    }
                }
            }
            Ok(0)
        }
        RunsCommand::Show {
            run_id,
            patch: true,
            other_root,
            ..
        } => {
            let diff = service
                .changeset(run_id, root_check(*other_root))?
                .0
                .to_unified_diff();
            if ui.json {
                print_json(&serde_json::json!({"run_id": run_id, "patch": diff}));
            } else {
                print!("{diff}");
            }
            Ok(0)
        }
        RunsCommand::Show {
            run_id,
            patch: false,
            tasks,
            ..
        } => {
            let detail = service.view(run_id)?;
            if ui.json {
                print_doc(&detail);
            } else {
                print_outcome(&detail.run);
                if let Some(line) = usage_line(&detail.run) {
                    println!("{line}");
                }
                if let Some(table) = crate::output::usage_table(&detail.run, *tasks) {
                    print!("{table}");
                }
                print_changeset_summary(&service, run_id);
                println!(
                    "created {} UTC, updated {} UTC",
                    format_time(detail.created_ms),
                    format_time(detail.updated_ms)
                );
                println!("state:");
                for line in serde_json::to_string_pretty(&detail.run.state)
                    .unwrap_or_default()
                    .lines()
                {
                    println!("  {line}");
                }
            }
            Ok(0)
        }
        RunsCommand::Resume {
            run_id,
            answer,
            apply,
            other_root,
            reload,
            budget,
            replay,
        } => {
            let check = root_check(*other_root);
            let reload = if *reload {
                Some(service.current_workflow_of(run_id)?)
            } else {
                None
            };
            let service = replay.apply(project.runner(*apply)?.with_budget(budget.budget()?))?;
            let answer = answer
                .as_deref()
                .map(|a| json_arg("--answer", a))
                .transpose()?;
            let run_id = run_id.clone();
            drive(project.ui(ui), &service, |opts, sink| {
                let service = service.clone();
                let opts = ao_orchestrator::engine::RunOptions { reload, ..opts };
                async move { service.resume(&run_id, answer, opts, sink, check).await }
            })
            .await
        }
        RunsCommand::Export { run_id, cassette } => {
            // The project's redactor goes over what is written, on top of the store's.
            let service = project.runner(false)?;
            let calls = service.export_cassette(run_id, cassette)?;
            if ui.json {
                print_json(&serde_json::json!({
                    "run_id": run_id,
                    "cassette": cassette.display().to_string(),
                    "calls": calls,
                }));
            } else {
                println!(
                    "wrote {calls} model call{} of run {run_id} to {}",
                    if calls == 1 { "" } else { "s" },
                    cassette.display()
                );
            }
            Ok(0)
        }
        RunsCommand::Cancel { run_id } => {
            let result = service
                .cancel(run_id, "ao runs cancel", Duration::from_secs(10))
                .await?;
            let (word, text) = match result {
                CancelResult::Cancelled => ("cancelled", "cancelled"),
                CancelResult::Stopped => ("cancelled", "cancelled; its process stopped"),
                CancelResult::Requested => (
                    "requested",
                    "cancel requested; the run stops at its next safe point",
                ),
                CancelResult::AlreadyCancelled => ("cancelled", "already cancelled"),
            };
            if ui.json {
                print_json(&serde_json::json!({"run_id": run_id, "result": word}));
            } else {
                println!("run {run_id}: {text}");
            }
            Ok(0)
        }
        RunsCommand::Gc { keep, older_than } => {
            let report = service.gc(ao_orchestrator::GcPolicy {
                keep: *keep,
                older_than_days: *older_than,
            })?;
            if ui.json {
                print_doc(&report);
            } else {
                println!(
                    "deleted {} run{}; the store went from {} KiB to {} KiB",
                    report.deleted.len(),
                    if report.deleted.len() == 1 { "" } else { "s" },
                    report.bytes_before / 1024,
                    report.bytes_after / 1024
                );
            }
            Ok(0)
        }
        RunsCommand::Events {
            run_id,
            follow,
            jsonl,
        } => {
            let mut all = Vec::new();
            let mut t0: Option<u64> = None;
            let mut show = |events: Vec<ao_orchestrator::engine::Event>| {
                for e in events {
                    if *jsonl {
                        println!("{}", serde_json::to_string(&e).unwrap_or_default());
                    } else if ui.json {
                        all.push(e);
                    } else {
                        let start = *t0.get_or_insert(e.ts_ms);
                        println!("{}", crate::timeline::line(&e, start));
                    }
                }
            };
            if *follow {
                let mut follower = service.follow(run_id)?;
                while let Some(events) = follower.next().await? {
                    show(events);
                }
            } else {
                show(service.events(run_id, None)?);
            }
            if ui.json {
                print_doc(&serde_json::json!({"run_id": run_id, "events": all}));
            }
            Ok(0)
        }
    }
}
