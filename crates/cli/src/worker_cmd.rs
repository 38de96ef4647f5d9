//! `ao worker interview | list | profile`: onboarding interviews and the capability profiles
//! routing obeys.

use crate::output::{print_doc, usage_line};
use crate::run_cmd::{drive_with, print_run, print_warnings};
use crate::{CliError, Project, Ui};
use ao_core::profile::{WorkerCapabilityProfile, task_type_name};
use ao_core::run::RunStatus;
use ao_core::timestamp::Timestamp;
use ao_orchestrator::interview::nodes::{plan_interview, report_of};
use ao_orchestrator::interview::profiles::{find_profile, load_profiles, profiles_path};
use ao_orchestrator::interview::suite::Suite;
use ao_orchestrator::interview::workers::{WorkerEntry, list_workers};
use ao_orchestrator::routing::ProfileState;
use ao_orchestrator::{RunView, Service};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum WorkerCommand {
    /// Interview a worker on the onboarding suite and print its capability profile (a run:
    /// it is listed by `ao runs list` and resumable).
    Interview(InterviewArgs),
    /// The saved profiles and the configured workers: status, qualified task types, key
    /// scores, when evaluated and when the profile expires.
    List,
    /// One worker's saved profile.
    Profile {
        /// The worker's id (`provider:model`, or its name in ao.toml).
        id: String,
    },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["worker", "provider"])))]
pub struct InterviewArgs {
    /// A worker from ao.toml (`[workers.NAME]`), with its own endpoint, key and settings.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["provider", "model", "base_url", "api_key_env"])]
    pub worker: Option<String>,
    /// An endpoint's provider: openai, litellm, openai-compatible, ollama, vllm, lmstudio,
    /// llamacpp.
    #[arg(long, value_name = "P", requires = "model")]
    pub provider: Option<String>,
    /// The model as the endpoint names it.
    #[arg(long, value_name = "M", requires = "provider")]
    pub model: Option<String>,
    /// The endpoint's base URL (default: the provider's, or LITELLM_BASE_URL/OPENAI_BASE_URL).
    #[arg(long, value_name = "URL", requires = "provider")]
    pub base_url: Option<String>,
    /// The environment variable (or .env entry) holding the endpoint's API key; the key is
    /// read when the interview asks and never stored with the run.
    #[arg(long, value_name = "VAR", requires = "provider")]
    pub api_key_env: Option<String>,
    /// Keep the profile in <state dir>/worker-profiles.json, where routing reads it.
    #[arg(long)]
    pub save: bool,
    /// An interview suite file (`ao schema interview-suite`) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// Times every case is asked.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub trials: u32,
}

pub async fn dispatch(project: &Project, cmd: &WorkerCommand, ui: Ui) -> Result<u8, CliError> {
    match cmd {
        WorkerCommand::Interview(args) => interview(project, args, ui).await,
        WorkerCommand::List => list(project, ui),
        WorkerCommand::Profile { id } => profile(project, id, ui),
    }
}

/// The run input for the `worker-interview` workflow.
fn interview_input(args: &InterviewArgs) -> Result<Value, CliError> {
    let mut input = Map::new();
    let mut put = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            input.insert(key.into(), Value::String(v.clone()));
        }
    };
    put("worker", &args.worker);
    put("provider", &args.provider);
    put("model", &args.model);
    put("base_url", &args.base_url);
    put("api_key_env", &args.api_key_env);
    if let Some(suite) = &args.suite {
        // Taken from where the command runs, as paths on a command line are.
        let path = if suite.is_absolute() {
            suite.clone()
        } else {
            std::env::current_dir()
                .map_err(|e| CliError::usage(format!("cannot read the current directory: {e}")))?
                .join(suite)
        };
        input.insert("suite".into(), Value::String(path.display().to_string()));
    }
    input.insert("save".into(), Value::Bool(args.save));
    input.insert("trials".into(), json!(args.trials));
    Ok(Value::Object(input))
}

async fn interview(project: &Project, args: &InterviewArgs, ui: Ui) -> Result<u8, CliError> {
    let input = interview_input(args)?;
    // Everything that can be wrong with the request is found before a run starts (exit 2).
    plan_interview(&project.config, &project.env, &input)?;
    let service = project.runner(false)?;
    let wf = service.resolve("worker-interview")?;
    let save = args.save;
    drive_with(
        project.ui(ui),
        &service,
        |opts, sink| {
            let service = service.clone();
            async move { service.start(wf, input, opts, sink).await }
        },
        move |service, outcome| print_interview(service, outcome, save),
        None,
    )
    .await
}

/// The human output of an interview run.
fn print_interview(service: &Service, outcome: &RunView, save: bool) {
    let report = report_of(&outcome.state);
    match (outcome.status, report) {
        (RunStatus::Completed, Some(report)) => {
            print_profile(&report.profile, Timestamp::now());
            println!();
            match outcome.state.get("saved").and_then(Value::as_str) {
                Some(file) => println!("saved to {file}"),
                None if save => println!("not saved"),
                None => println!(
                    "not saved: interview again with --save to keep the profile for routing"
                ),
            }
            println!("run {} (worker-interview)", outcome.run_id);
            if let Some(line) = usage_line(outcome) {
                println!("{line}");
            }
            print_warnings(service, &outcome.run_id);
        }
        (RunStatus::Failed, _) if outcome.error.as_ref().is_some_and(|e| e.kind == "endpoint") => {
            if let Some(e) = &outcome.error {
                println!("interview failed: {}", e.message);
            }
            println!("nothing was saved (run {})", outcome.run_id);
            if let Some(line) = usage_line(outcome) {
                println!("{line}");
            }
        }
        _ => print_run(service, outcome),
    }
}

fn yes_no(b: bool, yes: &str, no: &str) -> String {
    if b { yes.into() } else { no.into() }
}

fn ratio(v: f64) -> String {
    format!("{v:.2}")
}

/// A capability profile for people, with the warning block when the worker is not active.
fn print_profile(p: &WorkerCapabilityProfile, now: Timestamp) {
    println!("Worker {}: {}", p.worker_id, p.status);
    let endpoint = p.base_url_host.as_deref().unwrap_or("default endpoint");
    println!(
        "  endpoint   {endpoint} ({}, model {})",
        p.provider, p.model
    );
    println!(
        "  suite      {} {} (sha256 {}…)",
        p.suite.name,
        p.suite.version,
        p.suite.sha256.get(..12).unwrap_or(&p.suite.sha256)
    );
    println!(
        "  evaluated  {}, expires {}{}",
        p.evaluated_at,
        p.expires_at,
        if p.is_expired(now) { " (expired)" } else { "" }
    );
    let m = &p.metrics;
    println!(
        "  validity {}  schema compliance {}  correctness {}  Brier {}",
        ratio(m.validity),
        ratio(m.schema_compliance),
        ratio(m.correctness),
        m.brier.map_or("n/a".into(), |b| format!("{b:.3}"))
    );
    println!(
        "  latency p50 {} ms, p95 {} ms  tokens per reply {}  inconclusive calls {}",
        m.latency_p50_ms,
        m.latency_p95_ms,
        m.tokens.map_or("n/a".into(), |t| t.to_string()),
        p.inconclusive
    );
    println!();
    println!(
        "  {:<24} {:>6} {:>10} {:>12} {:>7}",
        "capability", "score", "pass rate", "consistency", "trials"
    );
    for (cap, s) in &p.capabilities {
        println!(
            "  {:<24} {:>6} {:>10} {:>12} {:>7}",
            cap.as_str(),
            ratio(s.score),
            ratio(s.pass_rate),
            ratio(s.consistency),
            s.trials
        );
    }
    println!();
    let qualified: Vec<&str> = p
        .qualified_task_types
        .iter()
        .map(|t| task_type_name(*t))
        .collect();
    println!(
        "  qualified for   {}",
        if qualified.is_empty() {
            "nothing".to_string()
        } else {
            qualified.join(", ")
        }
    );
    let r = &p.routing_policy;
    println!(
        "  routing policy  leader review {}; max complexity {}; codegen {}; patch {}",
        yes_no(r.requires_leader_review, "required", "not required"),
        serde_json::to_value(r.max_task_complexity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        yes_no(r.allow_codegen, "allowed", "denied"),
        yes_no(r.allow_patch, "allowed", "denied"),
    );
    if let Some(warning) = p.warning() {
        println!();
        print!("{warning}");
    }
}

fn short_time(t: &Timestamp) -> String {
    let s = t.to_string();
    s.get(..16).map_or(s.clone(), |d| d.replace('T', " "))
}

fn list(project: &Project, ui: Ui) -> Result<u8, CliError> {
    let suite = Suite::builtin().map_err(|e| CliError::failed(e.to_string()))?;
    let entries = list_workers(
        Some(&project.config),
        &project.state_dir,
        Timestamp::now(),
        suite.sha256(),
    )
    .map_err(ao_orchestrator::Error::from)?;
    if ui.json {
        print_doc(&json!({ "workers": entries }));
        return Ok(0);
    }
    if entries.is_empty() {
        println!(
            "no workers: none is configured and no profile is saved in {}",
            profiles_path(&project.state_dir).display()
        );
        println!("interview one: ao worker interview --provider P --model M --save");
        return Ok(0);
    }
    println!(
        "{:<28} {:<8} {:<40} {:>5} {:>6} {:>7} {:>6}  {:<16}  {:<16}  NOTE",
        "WORKER",
        "STATUS",
        "QUALIFIED",
        "VALID",
        "SCHEMA",
        "CORRECT",
        "BRIER",
        "EVALUATED (UTC)",
        "EXPIRES (UTC)"
    );
    for e in &entries {
        println!("{}", list_line(e));
    }
    Ok(0)
}

fn list_line(e: &WorkerEntry) -> String {
    let mut notes = Vec::new();
    match e.profile_state {
        ProfileState::Current => {}
        ProfileState::Missing => notes.push("not interviewed"),
        ProfileState::Expired => notes.push("expired: interview again"),
        ProfileState::OtherSuite => notes.push("made with another suite: interview again"),
    }
    if !e.configured {
        notes.push("not configured");
    }
    let note = notes.join("; ");
    let Some(p) = &e.profile else {
        return format!(
            "{:<28} {:<8} {:<40} {:>5} {:>6} {:>7} {:>6}  {:<16}  {:<16}  {note}",
            e.worker_id, "-", "-", "-", "-", "-", "-", "-", "-"
        );
    };
    let qualified: Vec<&str> = p
        .qualified_task_types
        .iter()
        .map(|t| task_type_name(*t))
        .collect();
    let qualified = if qualified.is_empty() {
        "-".to_string()
    } else {
        qualified.join(",")
    };
    format!(
        "{:<28} {:<8} {:<40} {:>5} {:>6} {:>7} {:>6}  {:<16}  {:<16}  {note}",
        p.worker_id,
        p.status.as_str(),
        qualified,
        ratio(p.metrics.validity),
        ratio(p.metrics.schema_compliance),
        ratio(p.metrics.correctness),
        p.metrics.brier.map_or("-".into(), |b| format!("{b:.2}")),
        short_time(&p.evaluated_at),
        short_time(&p.expires_at),
    )
}

fn profile(project: &Project, id: &str, ui: Ui) -> Result<u8, CliError> {
    let Some(p) = find_profile(&project.state_dir, id).map_err(ao_orchestrator::Error::from)?
    else {
        let saved: Vec<String> = load_profiles(&project.state_dir)
            .map_err(ao_orchestrator::Error::from)?
            .into_iter()
            .map(|p| p.worker_id)
            .collect();
        return Err(CliError::usage(format!(
            "no saved profile for worker `{id}` (saved: {}); interview it with `ao worker interview --worker NAME --save` or `--provider P --model M --save`",
            if saved.is_empty() {
                "none".to_string()
            } else {
                saved.join(", ")
            }
        )));
    };
    if ui.json {
        print_doc(&p);
    } else {
        print_profile(&p, Timestamp::now());
    }
    Ok(0)
}
