//! The tool registry: names, schemas, effect classes, and the one `call` entry point that
//! validates input, runs the tool behind the policy gate, records the decision and redacts.

use std::sync::{Arc, LazyLock};

use ao_core::redact::Redactor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::changeset::{Changeset, Overlay};
use crate::confine::ConfinementSummary;
use crate::decision::{Decision, DecisionRecord, DecisionRecorder, Effect};
use crate::error::ToolError;
use crate::policy::Policy;
use crate::schemas;

/// Everything a tool call needs from its run: the policy, the run's overlay (changeset in
/// progress), the decision recorder and the redactor. Cheap to clone; one per run.
#[derive(Clone)]
pub struct ToolContext {
    policy: Arc<Policy>,
    overlay: Overlay,
    recorder: Arc<dyn DecisionRecorder>,
    redactor: Redactor,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("policy", &self.policy)
            .field("overlay", &self.overlay)
            .field("redactor", &self.redactor)
            .finish_non_exhaustive()
    }
}

impl ToolContext {
    /// A context for a new run (empty overlay).
    pub fn new(
        policy: Arc<Policy>,
        recorder: Arc<dyn DecisionRecorder>,
        redactor: Redactor,
    ) -> Self {
        ToolContext {
            policy,
            overlay: Overlay::new(),
            recorder,
            redactor,
        }
    }

    /// The same context with another overlay (e.g. a resumed run's).
    pub fn with_overlay(mut self, overlay: Overlay) -> Self {
        self.overlay = overlay;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The run's overlay.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// A snapshot of the run's changeset so far.
    pub fn changeset(&self) -> Changeset {
        self.overlay.changeset()
    }

    /// The redactor.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// The result of one tool call, as the caller (a node, a model, `ao tools run --json`) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutcome {
    /// Tool name.
    pub tool: String,
    /// Its effect class.
    pub effect: Effect,
    /// `allowed`, `simulated` or `denied`.
    pub decision: Decision,
    /// Why, unless allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The tool's output (see its output schema); `null` when denied.
    pub output: Value,
}

impl ToolOutcome {
    /// The outcome as a JSON object (what `--json` prints and a model reads).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }
}

/// A tool's description: name, effect class and schemas.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// Dotted name (`fs.read`).
    pub name: &'static str,
    /// One sentence for `ao tools list` and models.
    pub description: &'static str,
    /// Effect class.
    pub effect: Effect,
    /// JSON Schema of the arguments (`additionalProperties: false`).
    pub input_schema: Value,
    /// JSON Schema of `output` in an allowed or simulated [`ToolOutcome`].
    pub output_schema: Value,
}

impl ToolSpec {
    /// The name with `_` for `.` (`fs_read`), for model APIs that forbid dots in function
    /// names. [`ToolRegistry::get`] accepts both.
    pub fn function_name(&self) -> String {
        self.name.replace('.', "_")
    }
}

struct Entry {
    spec: ToolSpec,
    validator: jsonschema::Validator,
}

/// The tools, in a deterministic (alphabetical) order.
pub struct ToolRegistry {
    entries: Vec<Entry>,
}

static STANDARD: LazyLock<ToolRegistry> = LazyLock::new(ToolRegistry::build);

impl ToolRegistry {
    /// The standard registry (all tools of this crate).
    pub fn standard() -> &'static ToolRegistry {
        &STANDARD
    }

    fn build() -> ToolRegistry {
        let mut entries: Vec<Entry> = schemas::all()
            .into_iter()
            .map(|spec| {
                // The schemas are literals in this crate; a unit test compiles every one.
                let validator = jsonschema::validator_for(&spec.input_schema)
                    .unwrap_or_else(|e| panic!("input schema of {} is invalid: {e}", spec.name));
                Entry { spec, validator }
            })
            .collect();
        entries.sort_by(|a, b| a.spec.name.cmp(b.spec.name));
        ToolRegistry { entries }
    }

    /// Every tool, sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.entries.iter().map(|e| &e.spec)
    }

    /// A tool by dotted name (`fs.read`) or function name (`fs_read`).
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.entry(name).map(|e| &e.spec)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.spec.name == name || e.spec.function_name() == name)
    }

    /// Checks `args` against the tool's input schema.
    pub fn validate(&self, name: &str, args: &Value) -> Result<&ToolSpec, ToolError> {
        let entry = self.entry(name).ok_or_else(|| ToolError::UnknownTool {
            name: name.to_string(),
        })?;
        let errors: Vec<String> = entry
            .validator
            .iter_errors(args)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(&entry.spec)
        } else {
            Err(ToolError::InvalidArgs {
                tool: entry.spec.name.to_string(),
                errors,
            })
        }
    }

    /// Runs one tool call through the policy gate.
    ///
    /// A denial is `Ok` with `decision: denied`; `Err` means invalid input or a tool that
    /// failed while doing allowed work. Every decision goes to the context's recorder; the
    /// outcome and errors are redacted.
    pub async fn call(
        &self,
        name: &str,
        args: Value,
        ctx: &ToolContext,
    ) -> Result<ToolOutcome, ToolError> {
        let redactor = ctx.redactor.clone();
        let spec = self
            .validate(name, &args)
            .map_err(|e| e.redacted(&redactor))?;
        let (tool, effect) = (spec.name, spec.effect);
        let result = if tool.starts_with("fs.") {
            let ctx = ctx.clone();
            // Walking and reading files blocks; keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                let call = Call::new(tool, effect, &ctx, &args);
                crate::fs::run(&call, &args)
            })
            .await
            .unwrap_or_else(|e| {
                Err(ToolError::failed(
                    tool,
                    None,
                    format!("tool task failed: {e}"),
                ))
            })
        } else {
            let call = Call::new(tool, effect, ctx, &args);
            if tool.starts_with("git.") {
                crate::git::run(&call, &args).await
            } else {
                crate::cmd::run(&call, &args).await
            }
        };
        match result {
            Ok(mut outcome) => {
                redactor.redact_value_in_place(&mut outcome.output);
                outcome.reason = outcome.reason.map(|r| redactor.redact_str(&r));
                Ok(outcome)
            }
            Err(e) => Err(e.redacted(&redactor)),
        }
    }
}

/// Runs `name` from the standard registry; see [`ToolRegistry::call`].
pub async fn call_tool(
    name: &str,
    args: Value,
    ctx: &ToolContext,
) -> Result<ToolOutcome, ToolError> {
    ToolRegistry::standard().call(name, args, ctx).await
}

/// One call in progress: records the decision once and builds the outcome.
pub(crate) struct Call<'a> {
    pub tool: &'static str,
    pub effect: Effect,
    pub ctx: &'a ToolContext,
    args: Value,
}

impl<'a> Call<'a> {
    fn new(tool: &'static str, effect: Effect, ctx: &'a ToolContext, args: &Value) -> Self {
        Call {
            tool,
            effect,
            ctx,
            args: ctx.redactor.redact_value(args),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.ctx.policy
    }

    /// Records the decision before anything is done; a decision that cannot be recorded stops
    /// the call (fail closed: nothing happens that the run's record does not show).
    fn record(
        &self,
        decision: Decision,
        reason: Option<&str>,
        argv: Option<&[String]>,
        confinement: Option<ConfinementSummary>,
    ) -> Result<(), ToolError> {
        let r = &self.ctx.redactor;
        self.ctx
            .recorder
            .record(&DecisionRecord {
                tool: self.tool.to_string(),
                effect: self.effect,
                mode: self.ctx.policy.mode(),
                decision,
                reason: reason.map(|s| r.redact_str(s)),
                argv: argv.map(|a| a.iter().map(|s| r.redact_str(s)).collect()),
                args: self.args.clone(),
                confinement,
            })
            .map_err(|why| {
                ToolError::failed(
                    self.tool,
                    None,
                    format!(
                        "the policy decision could not be recorded, so nothing was done: {why}"
                    ),
                )
            })
    }

    /// Records an `allowed` decision; the tool then does the work.
    pub fn allow(&self, argv: Option<&[String]>) -> Result<(), ToolError> {
        self.record(Decision::Allowed, None, argv, None)
    }

    /// Records an `allowed` decision for a process with the confinement it will run under.
    pub fn allow_confined(
        &self,
        argv: &[String],
        confinement: ConfinementSummary,
    ) -> Result<(), ToolError> {
        self.record(Decision::Allowed, None, Some(argv), Some(confinement))
    }

    /// Records a `simulated` decision.
    pub fn simulate(&self, reason: &str, argv: Option<&[String]>) -> Result<(), ToolError> {
        self.record(Decision::Simulated, Some(reason), argv, None)
    }

    /// Records a denial and returns it as the outcome.
    pub fn deny(&self, reason: String, argv: Option<&[String]>) -> Result<ToolOutcome, ToolError> {
        self.record(Decision::Denied, Some(&reason), argv, None)?;
        Ok(ToolOutcome {
            tool: self.tool.to_string(),
            effect: self.effect,
            decision: Decision::Denied,
            reason: Some(reason),
            output: Value::Null,
        })
    }

    pub fn outcome(
        &self,
        decision: Decision,
        reason: Option<String>,
        output: Value,
    ) -> ToolOutcome {
        ToolOutcome {
            tool: self.tool.to_string(),
            effect: self.effect,
            decision,
            reason,
            output,
        }
    }

    pub fn fail(&self, path: Option<&str>, message: impl Into<String>) -> ToolError {
        ToolError::failed(self.tool, path, message)
    }
}
