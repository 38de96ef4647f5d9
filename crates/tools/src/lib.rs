//! Deterministic tools behind the one policy gate, and changesets.
//!
//! This crate is the only place in `ao` that reads project files for a model, writes project
//! files or starts processes. Every call goes through [`ToolRegistry::call`], which validates
//! the arguments against the tool's JSON Schema, asks the [`Policy`] (containment in the root,
//! `denied`/`writable` globs, the command allowlist, dry-run or apply), records the
//! [`Decision`] with the run through a [`DecisionRecorder`], does (or simulates) the work and
//! redacts secrets from the result. A denial is a normal [`ToolOutcome`] a model can read, not
//! an error.
//!
//! Tools: `fs.read`, `fs.list`, `fs.search`, `fs.write`, `fs.edit`, `fs.delete`, `git.diff`,
//! `git.status`, `git.log`, `git.show`, `cmd.run` (see [`ToolRegistry::specs`] for their
//! schemas and effect classes). In dry-run, writes go to the run's [`Overlay`] and later reads
//! see them; [`Changeset::to_unified_diff`] renders the result for `git apply`, and
//! [`apply_changeset`] writes it, all files or none.
//!
//! Paths the policy accepts are then reached through a directory descriptor held on the root
//! (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or an `O_NOFOLLOW` walk), so a
//! symlink swapped in after the check cannot lead outside; every git process is pinned to the
//! root's own repository with configuration that names programs neutralised; allowed commands
//! have the options of their toolchain screened; `ao apply` is journaled so a crash leaves the
//! tree all old or all new.
//!
//! What it is not: it knows nothing about models, workflows or the run store. It never uses a
//! shell. It does not load configuration: the caller passes the typed `[policy]` table and
//! policy variables (from `ao_core::config`) and an environment snapshot.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{collections::BTreeMap, sync::Arc};
//! use ao_core::redact::Redactor;
//! use ao_tools::{
//!     MemoryRecorder, Policy, PolicyConfig, PolicyEnv, PolicyInput, ToolContext, ToolRegistry,
//! };
//!
//! let env: BTreeMap<String, String> = std::env::vars().collect();
//! let policy = Policy::new(PolicyInput {
//!     root: std::path::Path::new("."),
//!     state_dir: None,
//!     config: &PolicyConfig::default(),
//!     policy_env: &PolicyEnv::from_vars(&env)?,
//!     env: &env,
//!     apply_flag: false,
//! })?;
//! let recorder = Arc::new(MemoryRecorder::new());
//! let ctx = ToolContext::new(Arc::new(policy), recorder.clone(), Redactor::new(&env, [""; 0]));
//!
//! let outcome = ToolRegistry::standard()
//!     .call("fs.write", serde_json::json!({"path": "notes.txt", "content": "hi\n"}), &ctx)
//!     .await?;
//! assert_eq!(outcome.decision.as_str(), "simulated"); // dry-run by default
//! println!("{}", ctx.changeset().to_unified_diff());
//! # Ok(()) }
//! ```

mod beneath;
mod changeset;
mod cmd;
mod confine;
mod decision;
mod error;
mod exec;
mod fs;
mod git;
mod journal;
mod policy;
mod registry;
pub mod sandbox;
mod schemas;
mod screen;

pub use changeset::{
    ApplyReport, Changeset, FileAction, FileApplyStatus, FileChange, Overlay, apply_changeset,
    sha256_hex,
};
pub use confine::{
    ConfinementSummary, DEFAULT_MAX_ADDRESS_SPACE_MB, DEFAULT_MAX_CPU_S, DEFAULT_MAX_FILE_SIZE_MB,
    DEFAULT_MAX_PROCESSES, ResourceLimits, landlock_abi,
};
pub use decision::{
    Decision, DecisionRecord, DecisionRecorder, Effect, MemoryRecorder, NoopRecorder,
};
pub use error::{ApplyError, PolicyError, ToolError};
pub use git::screen_git_args;
pub use policy::{
    CHILD_ENV_ALLOWED, CommandPermit, CommandVerdict, DEFAULT_DENIED, DEFAULT_READ_ONLY_COMMANDS,
    Limits, Mode, Policy, PolicyConfig, PolicyEnv, PolicyInput, ResolvedPath, WriteCheck,
};
pub use registry::{ToolContext, ToolOutcome, ToolRegistry, ToolSpec, call_tool};
