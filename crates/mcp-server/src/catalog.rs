//! The tools `ao mcp serve` offers, in the order `tools/list` gives them: name, title,
//! description, the four annotations, input and output schemas.

use crate::args::*;
use crate::outputs::*;
use crate::schema::{object_schema, schema_for};
use ao_orchestrator::doctor::DoctorReport;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// Which tool a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolId {
    Plan,
    RunWorkflow,
    GetRun,
    ListRuns,
    WaitForRun,
    ResumeRun,
    CancelRun,
    ReviewDiff,
    FixError,
    GetChangeset,
    ApplyChangeset,
    ListWorkflows,
    DescribeWorkflow,
    ListModels,
    InterviewWorker,
    ListWorkers,
    GetWorkerProfile,
    ListTools,
    Doctor,
}

/// One tool: its definition as listed, and its input validator, compiled on first use (the
/// first compile in a process costs milliseconds that `tools/list` should not wait for).
pub struct ToolDef {
    pub id: ToolId,
    pub tool: Tool,
    validator: OnceLock<Result<jsonschema::Validator, String>>,
}

impl ToolDef {
    pub fn name(&self) -> &str {
        &self.tool.name
    }

    pub fn is_read_only(&self) -> bool {
        self.tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            == Some(true)
    }

    /// The compiled input schema (a unit test compiles every one, so this never fails in a
    /// release).
    pub fn validator(&self) -> Result<&jsonschema::Validator, String> {
        self.validator
            .get_or_init(|| {
                jsonschema::validator_for(&Value::Object(self.tool.input_schema.as_ref().clone()))
                    .map_err(|e| {
                        format!(
                            "the input schema of `{}` does not compile: {e}",
                            self.tool.name
                        )
                    })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The four annotations, always all set (the protocol's defaults for a missing hint are
/// destructive and open-world, which is rarely what a tool here is).
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    /// Talks to something outside this machine's project and store (a model endpoint).
    open_world: bool,
}

const READ: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// Starts a run whose nodes may call models; writes only the run store (and the changeset).
const MODEL_RUN: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: true,
};

fn define<A: JsonSchema, O: JsonSchema>(
    id: ToolId,
    name: &'static str,
    title: &str,
    description: &'static str,
    hints: Hints,
) -> ToolDef {
    define_with_output::<A>(id, name, title, description, hints, schema_for::<O>(true))
}

fn define_with_output<A: JsonSchema>(
    id: ToolId,
    name: &'static str,
    title: &str,
    description: &'static str,
    hints: Hints,
    output: Arc<JsonObject>,
) -> ToolDef {
    let annotations = ToolAnnotations::with_title(title)
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent)
        .open_world(hints.open_world);
    let tool = Tool::new(name, description, schema_for::<A>(false))
        .with_title(title)
        .with_raw_output_schema(output)
        .with_annotations(annotations);
    ToolDef {
        id,
        tool,
        validator: OnceLock::new(),
    }
}

/// Every tool, in a fixed order. `writes_allowed` is the server's ceiling: `ao_run_workflow`
/// is destructive only where a caller can ask it to write.
pub fn catalog(writes_allowed: bool) -> Vec<ToolDef> {
    vec![
        define::<PlanArgs, RunResult>(
            ToolId::Plan,
            "ao_plan",
            "Plan",
            "Plan work towards a goal: starts the built-in `plan` workflow, which reads the context files and a map of the repository and asks the leader model for a plan (steps with acceptance checks, a worker proposed per step, risks, validation commands). Returns the run; its `output` is the Plan once completed.",
            MODEL_RUN,
        ),
        define::<RunWorkflowArgs, RunResult>(
            ToolId::RunWorkflow,
            "ao_run_workflow",
            "Run a workflow",
            "Start any workflow (a name from ao_list_workflows or a YAML file) on an input. Dry-run unless `apply` is true and the server allows writes: a dry-run's file edits become a changeset (ao_get_changeset). Returns the run as soon as it is no longer running, or when `wait_seconds` pass (0: at once, with its id). Sends progress notifications while it waits if the request has a progress token; cancelling the request cancels the run.",
            Hints {
                read_only: false,
                destructive: writes_allowed,
                idempotent: false,
                open_world: true,
            },
        ),
        define::<GetRunArgs, GetRunResult>(
            ToolId::GetRun,
            "ao_get_run",
            "Get a run",
            "One run: status, output, the question it waits on (interrupt, with the answer's schema), error, usage; with `detail: full` also its state.",
            READ,
        ),
        define::<ListRunsArgs, ListRunsResult>(
            ToolId::ListRuns,
            "ao_list_runs",
            "List runs",
            "Recent runs (started here, by the CLI or by other servers sharing the state directory), newest first, as {\"runs\": [...]}.",
            READ,
        ),
        define::<WaitForRunArgs, WaitResult>(
            ToolId::WaitForRun,
            "ao_wait_for_run",
            "Wait for a run",
            "Long-poll: returns the run as soon as it leaves `running` (completed, interrupted, failed, cancelled), or when `wait_seconds` pass. Works for runs driven by any process. Sends progress notifications while it waits if the request has a progress token.",
            READ,
        ),
        define::<ResumeRunArgs, ResumeResult>(
            ToolId::ResumeRun,
            "ao_resume_run",
            "Answer or resume a run",
            "Answer the question an interrupted run waits on (`answer`, checked against the question's schema), or continue a failed or stopped run (no answer). Give a `request_id`: a call repeated with the same id answers nothing and returns the first result. The run continues in the dry-run or apply mode it was started in.",
            Hints {
                read_only: false,
                destructive: false,
                idempotent: false,
                open_world: true,
            },
        ),
        define::<CancelRunArgs, CancelResult>(
            ToolId::CancelRun,
            "ao_cancel_run",
            "Cancel a run",
            "Cancel a run for good (a running one stops at its next safe point); records that an MCP client cancelled it and why. A cancelled run cannot be resumed. Cancelling twice is not an error.",
            Hints {
                read_only: false,
                destructive: true,
                idempotent: true,
                open_world: false,
            },
        ),
        define::<ReviewDiffArgs, ReviewResult>(
            ToolId::ReviewDiff,
            "ao_review_diff",
            "Review a diff",
            "Review changes: starts the built-in `review` workflow on a git range, a diff given as text, or files. Workers review chunks in parallel, the leader merges them into a ReviewSummary (must-fix and should-fix findings, missing tests, risk level). With `fail_on`, `verdict` says whether the review reaches that level.",
            MODEL_RUN,
        ),
        define::<FixErrorArgs, RunResult>(
            ToolId::FixError,
            "ao_fix_error",
            "Fix an error",
            "Fix a build or test failure: starts the built-in `fix-error` workflow on an error log. It finds the file:line locations, reads them, has the leader find the root cause and a worker propose a patch, and re-runs the validation command in a sandbox. Always a dry-run: the fix is a changeset (ao_get_changeset, ao_apply_changeset).",
            MODEL_RUN,
        ),
        define::<RunIdArgs, ChangesetResult>(
            ToolId::GetChangeset,
            "ao_get_changeset",
            "Get a run's changeset",
            "The file changes a run proposes (or, for a run in apply mode, made), as a unified diff and a list of files.",
            READ,
        ),
        define::<ApplyChangesetArgs, ApplyResult>(
            ToolId::ApplyChangeset,
            "ao_apply_changeset",
            "Apply a run's changeset",
            "Write a finished run's changeset to the working tree: all files or none (refused when a file changed since the run read it, or a path is not writable). Only on a server whose policy allows writes; `check: true` reports what would happen and writes nothing.",
            Hints {
                read_only: false,
                destructive: true,
                idempotent: false,
                open_world: false,
            },
        ),
        define::<NoArgs, ListWorkflowsResult>(
            ToolId::ListWorkflows,
            "ao_list_workflows",
            "List workflows",
            "The workflows that can be run by name: the project's (workflows/*.yaml) and the built-in ones, with their descriptions.",
            READ,
        ),
        define_with_output::<DescribeWorkflowArgs>(
            ToolId::DescribeWorkflow,
            "ao_describe_workflow",
            "Describe a workflow",
            "A workflow's input schema, channels, nodes, edges and limits, and its graph as Mermaid.",
            READ,
            describe_output_schema(),
        ),
        define::<NoArgs, ListModelsResult>(
            ToolId::ListModels,
            "ao_list_models",
            "List models",
            "The configured leader and workers (provider, model, base URL, where each came from, the structured-output mode learned for it); never a key.",
            READ,
        ),
        define::<InterviewWorkerArgs, RunResult>(
            ToolId::InterviewWorker,
            "ao_interview_worker",
            "Interview a worker",
            "Measure a worker model on the interview suite before it gets work: starts the built-in `worker-interview` workflow; its output is the WorkerCapabilityProfile (with `save: true` also saved to the worker profiles).",
            MODEL_RUN,
        ),
        define::<NoArgs, ListWorkersResult>(
            ToolId::ListWorkers,
            "ao_list_workers",
            "List worker profiles",
            "The saved worker capability profiles (from interviews).",
            READ,
        ),
        define::<WorkerProfileArgs, WorkerProfileResult>(
            ToolId::GetWorkerProfile,
            "ao_get_worker_profile",
            "Get a worker profile",
            "One saved worker capability profile: status, scores, what it qualifies for, routing policy.",
            READ,
        ),
        define::<NoArgs, ListToolsResult>(
            ToolId::ListTools,
            "ao_list_tools",
            "List deterministic tools",
            "The deterministic tools workflows use (fs.*, git.*, cmd.run), with their effect classes (read, write, exec) and schemas; every call goes through the policy gate.",
            READ,
        ),
        define::<NoArgs, DoctorReport>(
            ToolId::Doctor,
            "ao_doctor",
            "Diagnose the configuration",
            "Every setting with its effective value and where it came from (never a secret's value), the policy it makes (mode, allowed commands, writable and denied paths), warnings and errors. Makes no model calls.",
            READ,
        ),
    ]
}

/// `ao_describe_workflow` returns the engine's rendering of a workflow (untyped JSON) plus
/// its Mermaid graph: its schema is written here.
fn describe_output_schema() -> Arc<JsonObject> {
    let any_list = json!({"type": "array", "items": {"type": "object"}});
    Arc::new(object_schema(json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "origin": {"type": "string", "description": "The file, or `builtin:NAME`."},
            "input_schema": {"description": "The JSON Schema of the run input (null: any object)."},
            "channels": any_list,
            "nodes": any_list,
            "edges": any_list,
            "limits": {"type": "object"},
            "mermaid": {"type": "string", "description": "The graph as a Mermaid flowchart."}
        },
        "required": ["name", "origin", "channels", "nodes", "edges", "mermaid"]
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_complete_and_its_schemas_compile() {
        for writes in [false, true] {
            let tools = catalog(writes);
            assert_eq!(tools.len(), 19);
            for def in &tools {
                let t = &def.tool;
                let a = t.annotations.as_ref().expect("annotations");
                assert!(a.read_only_hint.is_some() && a.destructive_hint.is_some());
                assert!(a.idempotent_hint.is_some() && a.open_world_hint.is_some());
                assert!(t.title.is_some() && t.description.is_some(), "{}", t.name);
                assert_eq!(
                    t.input_schema.get("additionalProperties"),
                    Some(&Value::Bool(false)),
                    "{}",
                    t.name
                );
                assert_eq!(
                    t.input_schema.get("type"),
                    Some(&json!("object")),
                    "{}",
                    t.name
                );
                let out = t.output_schema.as_ref().expect("output schema");
                assert_eq!(out.get("type"), Some(&json!("object")), "{}", t.name);
                def.validator().expect("input schema compiles");
                jsonschema::validator_for(&Value::Object(out.as_ref().clone()))
                    .unwrap_or_else(|e| panic!("{}: output schema: {e}", t.name));
                let text = serde_json::to_string(t).unwrap();
                assert!(!text.contains("$ref"), "{}: {text}", t.name);
            }
        }
    }

    #[test]
    fn run_workflow_is_destructive_only_where_writes_are_allowed() {
        let hint = |writes| {
            catalog(writes)
                .into_iter()
                .find(|d| d.id == ToolId::RunWorkflow)
                .and_then(|d| d.tool.annotations)
                .and_then(|a| a.destructive_hint)
        };
        assert_eq!(hint(false), Some(false));
        assert_eq!(hint(true), Some(true));
    }
}
