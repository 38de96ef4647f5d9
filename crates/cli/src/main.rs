//! `ao`: the command-line adapter. Parses arguments, calls `ao-orchestrator`'s [`Service`],
//! renders.
//!
//! Exit codes: 0 completed; 1 the run failed or was cancelled; 2 usage, configuration or
//! validation error (nothing ran); 3 the run is interrupted and waits for an answer.
//! With `--json`, stdout carries exactly one JSON document; logs and progress go to stderr.

mod graph_cmd;
mod input;
mod mcp_cmd;
mod models_cmd;
mod output;
mod progress;
mod run_cmd;
mod runs_cmd;
mod timeline;
mod tools_cmd;
mod worker_cmd;
mod workflow_cmd;

use ao_core::config::{Config, ConfigInputs, env_snapshot};
use ao_core::redact::Redactor;
use ao_orchestrator::{ErrorKind, Service};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "ao",
    version,
    about = "Agent-workflow orchestrator: explicit state graphs over leader/worker LLMs and policy-gated tools",
    after_long_help = HELP_EXAMPLES
)]
struct Cli {
    /// Project root (default: the current directory).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Configuration file (default: <root>/ao.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// State directory (default: <root>/.ao, or AO_STATE_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Machine output: exactly one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// More log output on stderr (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// No progress display on stderr.
    #[arg(long, global = true)]
    no_progress: bool,
    #[command(subcommand)]
    command: Command,
}

const HELP_EXAMPLES: &str = "\
Examples:
  ao run examples/hello-graph.yaml --input n=1     run a workflow file (dry-run: tools write nothing)
  ao runs resume RUN_ID --answer true               answer a run that waits (exit code 3)
  ao runs resume RUN_ID --reload                    continue a failed run with the fixed workflow
  ao runs show RUN_ID --patch | git apply --check   review what a dry-run proposes
  ao apply RUN_ID                                   write a finished run's changeset (all or nothing)
  ao runs events RUN_ID --follow                    watch a run from another terminal
  ao tools run fs.read --args '{\"path\": \"README.md\"}'
  ao models list --check                            one tiny call per configured model
  ao worker interview --provider ollama --model qwen2.5-coder:7b --save
                                                    measure a worker; routing obeys its profile
  ao doctor                                         every setting, its value and where it came from

Exit codes: 0 completed; 1 the run failed (130/143 when stopped by Ctrl-C/SIGTERM, resumable);
2 usage, configuration or validation error (nothing ran); 3 interrupted, waiting for an answer.
Dry-run is the default: writes go to the run's changeset, commands are simulated. --apply, or
AO_DRY_RUN=false with AO_ALLOW_WRITE=true, lets tools write and run allowed commands.";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a workflow (a path, a name in <root>/workflows/, or a built-in name).
    Run(run_cmd::RunArgs),
    /// Plan towards a goal: the leader reads the context files and a map of the repository and
    /// writes a plan with steps, workers, risks and validation commands.
    Plan(workflow_cmd::PlanArgs),
    /// Fix an error from its log: the leader finds the root cause, a worker patches it (into
    /// the run's changeset), validation runs in a sandbox, the leader approves or sends it back.
    Fix(workflow_cmd::FixArgs),
    /// Review a change (a git range, a diff, or files): workers review chunks in parallel, the
    /// leader merges their findings into one summary with a risk level.
    Review(workflow_cmd::ReviewArgs),
    /// Inspect, resume and cancel runs.
    #[command(subcommand)]
    Runs(runs_cmd::RunsCommand),
    /// List, render and validate workflows.
    #[command(subcommand)]
    Graph(graph_cmd::GraphCommand),
    /// The configured models (never their keys).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The deterministic tools, run under the policy gate.
    #[command(subcommand)]
    Tools(tools_cmd::ToolsCommand),
    /// Worker onboarding interviews and the capability profiles routing obeys.
    #[command(subcommand)]
    Worker(worker_cmd::WorkerCommand),
    /// Write a finished run's changeset to the working tree (all files or none).
    Apply {
        run_id: String,
        /// Only report what would happen; write nothing.
        #[arg(long)]
        check: bool,
        /// Apply a run made in another project to this one.
        #[arg(long)]
        other_root: bool,
    },
    /// The MCP server for coding agents (stdio), and the tools it offers.
    #[command(subcommand)]
    Mcp(mcp_cmd::McpCommand),
    /// The effective configuration and where each value came from; no model calls.
    Doctor,
    /// Print a JSON Schema: `workflow`, `config`, `run`, `cassette`, `interview-suite`, or an
    /// output type
    /// (`Plan`/`plan`, `LeaderWorkerReport`/`leader-worker`, `ReviewSummary`/`review`,
    /// `FixReport`/`fix-error`, `WorkerCapabilityProfile`/`profile`).
    Schema {
        /// What to print the schema of.
        name: String,
    },
    /// Print a shell completion script: `ao completions bash > ~/.local/share/bash-completion/completions/ao`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum ModelsCommand {
    /// The leader and workers, with provider, model, base URL and where they came from.
    List {
        /// Make one tiny call per model: latency, and whether structured output works.
        #[arg(long)]
        check: bool,
    },
    /// Forget the structured-output modes learned for the endpoints (of one role, or all), so
    /// the next call probes again from the strongest mode.
    Reset {
        /// Only this role's endpoints (`leader`, `worker`, a worker's name).
        role: Option<String>,
    },
}

/// How the command should print.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub json: bool,
    pub verbose: u8,
    pub quiet: bool,
    pub progress: bool,
}

/// An error at the command-line edge: a message and the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub kind: &'static str,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            kind: "usage",
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            kind: "failed",
            message: message.into(),
        }
    }
}

impl From<ao_orchestrator::Error> for CliError {
    fn from(e: ao_orchestrator::Error) -> Self {
        let kind = e.kind();
        // The library says what failed; the command line adds how to fix it with its flags.
        let hint = match (&e, kind) {
            (ao_orchestrator::Error::ModeChanged { applied: true, .. }, _) => {
                ": resume it with --apply".to_string()
            }
            (ao_orchestrator::Error::ModeChanged { run_id, .. }, _) => format!(
                ": resume it without --apply, then review with `ao runs show {run_id} --patch` and write with `ao apply {run_id}`"
            ),
            (_, ErrorKind::AnswerRequired) => "; pass --answer JSON".to_string(),
            (_, ErrorKind::OtherRoot) => {
                "; run ao from that project (--root), or pass --other-root if its changes belong here".to_string()
            }
            _ => String::new(),
        };
        CliError {
            code: kind.exit_code(),
            kind: kind.as_str(),
            message: format!("{e}{hint}"),
        }
    }
}

/// The project: its root, its effective configuration, and the environment it was read from.
pub struct Project {
    pub root: PathBuf,
    pub state_dir: PathBuf,
    pub config: Config,
    pub env: BTreeMap<String, String>,
}

impl Project {
    fn locate(cli: &Cli) -> Result<Self, CliError> {
        let root = match &cli.root {
            Some(r) => r.clone(),
            None => std::env::current_dir()
                .map_err(|e| CliError::usage(format!("cannot read the current directory: {e}")))?,
        };
        if !root.is_dir() {
            return Err(CliError::usage(format!(
                "--root {}: not a directory",
                root.display()
            )));
        }
        let env = env_snapshot();
        let mut inputs = ConfigInputs::new(&root)
            .with_env(env.clone())
            .with_config_file(cli.config.clone());
        if let Some(dir) = &cli.state_dir {
            inputs = inputs.with_flag("AO_STATE_DIR", dir.display().to_string());
        }
        let config = Config::load(&inputs).map_err(|e| CliError {
            code: 2,
            kind: "config",
            message: e.to_string(),
        })?;
        let project = Project {
            state_dir: config.state_dir.value.clone(),
            root,
            config,
            env,
        };
        let _ = ERROR_REDACTOR.set(project.redactor());
        Ok(project)
    }

    /// The output settings with the configured log level applied (`-v`/`-q` win over it):
    /// `debug`/`trace` print every run event on stderr, `error` prints only errors.
    pub fn ui(&self, ui: Ui) -> Ui {
        if ui.verbose > 0 || ui.quiet {
            return ui;
        }
        match self
            .config
            .log_level
            .as_ref()
            .map(|l| l.value.to_ascii_lowercase())
        {
            Some(l) if l.contains("debug") || l.contains("trace") => Ui {
                verbose: 1,
                progress: false,
                ..ui
            },
            Some(l) if l == "error" => Ui {
                quiet: true,
                progress: false,
                ..ui
            },
            _ => ui,
        }
    }

    /// Redacts the environment's secrets and every configured API key.
    pub fn redactor(&self) -> Redactor {
        let keys: Vec<String> = self
            .config
            .model_roles()
            .filter_map(|m| m.api_key.as_ref().map(|k| k.value.expose().to_string()))
            .collect();
        Redactor::new(&self.env, keys)
    }

    /// The service over this project's store (enough to inspect runs and workflows).
    pub fn service(&self) -> Result<Service, CliError> {
        Ok(Service::open(&self.root, &self.state_dir)?)
    }

    /// The service with the tools (under the policy, `apply` from `--apply`) and the models
    /// plugged in: what running a workflow needs.
    pub fn runner(&self, apply: bool) -> Result<Service, CliError> {
        let mut service = self.service()?;
        service.configure(&self.config, &self.env, apply, self.redactor())?;
        Ok(service)
    }
}

/// The redactor for error messages: the project's once its configuration is loaded (it knows
/// the configured keys), else one over the environment.
static ERROR_REDACTOR: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`ao runs events RUN | head`) instead of failing on the next write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let ui = Ui {
        json: cli.json,
        verbose: cli.verbose,
        quiet: cli.quiet,
        progress: !cli.no_progress
            && !cli.json
            && !cli.quiet
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    // A run is one future whose tasks are polled together (the engine spawns none), so its
    // concurrency is I/O, which one thread serves without a hand-off between threads per model
    // call (a multi-threaded runtime cost about 0.1–0.2 ms per call in wake-ups). The MCP
    // server keeps a multi-threaded runtime: it serves requests while jobs run.
    let mut builder = match &cli.command {
        Command::Mcp(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(&cli, ui)) {
        Ok(code) => ExitCode::from(code),
        Err(mut e) => {
            // An error may quote an argument or a value; a secret in it goes no further.
            e.message = ERROR_REDACTOR
                .get_or_init(|| Redactor::new(&env_snapshot(), Vec::<String>::new()))
                .redact_str(&e.message);
            if ui.json {
                output::print_json(
                    &serde_json::json!({"error": {"kind": e.kind, "message": e.message}}),
                );
            }
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

async fn dispatch(cli: &Cli, ui: Ui) -> Result<u8, CliError> {
    match &cli.command {
        Command::Run(args) => run_cmd::run(&Project::locate(cli)?, args, ui).await,
        Command::Plan(args) => workflow_cmd::plan(&Project::locate(cli)?, args, ui).await,
        Command::Fix(args) => workflow_cmd::fix(&Project::locate(cli)?, args, ui).await,
        Command::Review(args) => workflow_cmd::review(&Project::locate(cli)?, args, ui).await,
        Command::Runs(cmd) => runs_cmd::dispatch(&Project::locate(cli)?, cmd, ui).await,
        Command::Graph(cmd) => graph_cmd::dispatch(&Project::locate(cli)?, cmd, ui),
        Command::Models(ModelsCommand::List { check }) => {
            models_cmd::list(&Project::locate(cli)?, *check, ui).await
        }
        Command::Models(ModelsCommand::Reset { role }) => {
            models_cmd::reset(&Project::locate(cli)?, role.as_deref(), ui)
        }
        Command::Doctor => models_cmd::doctor(&Project::locate(cli)?, ui),
        Command::Mcp(cmd) => mcp_cmd::dispatch(&Project::locate(cli)?, cmd, ui).await,
        Command::Tools(cmd) => tools_cmd::dispatch(&Project::locate(cli)?, cmd, ui).await,
        Command::Worker(cmd) => worker_cmd::dispatch(&Project::locate(cli)?, cmd, ui).await,
        Command::Apply {
            run_id,
            check,
            other_root,
        } => tools_cmd::apply(&Project::locate(cli)?, run_id, *check, *other_root, ui),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "ao", &mut std::io::stdout());
            Ok(0)
        }
        Command::Schema { name } => {
            let schema = match name.as_str() {
                "workflow" => Some(ao_orchestrator::engine::workflow_schema()),
                "config" => Some(ao_core::config::config_schema()),
                "plan" => ao_core::types::type_schema("Plan"),
                "review" => ao_core::types::type_schema("ReviewSummary"),
                "fix-error" => ao_core::types::type_schema("FixReport"),
                "profile" => ao_core::types::type_schema("WorkerCapabilityProfile"),
                "interview-suite" => Some(ao_orchestrator::interview::suite::suite_schema()),
                "run" => Some(ao_orchestrator::run_view_schema()),
                "cassette" => Some(ao_orchestrator::cassette::cassette_schema()),
                other => ao_core::types::type_schema(other),
            };
            match schema {
                Some(s) => {
                    output::print_json(&s);
                    Ok(0)
                }
                None => Err(CliError::usage(format!(
                    "no schema named `{name}` (available: workflow, config, run, cassette, plan, leader-worker, review, fix-error, \
                     profile, interview-suite, {})",
                    ao_core::types::TYPE_NAMES.join(", ")
                ))),
            }
        }
    }
}
