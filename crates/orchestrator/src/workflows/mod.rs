//! The deterministic pieces of the built-in workflows: what they compute without a model.
//!
//! - [`logparse`] — the `file:line(:col)` locations an error log points at (`fix-error`);
//! - [`diffsplit`] — a unified diff cut into bounded per-file chunks (`review`);
//! - [`repomap`] — a bounded map of the repository from a file listing (`plan`, `leader-worker`);
//! - [`review_report`] — the `--fail-on` threshold and the text and Markdown renderings of a
//!   [`ReviewSummary`](ao_core::types::ReviewSummary) (`review`).
//!
//! Each is a pure function of its input: no I/O, no model, no clock. The workflows obtain their
//! input through the policy-gated tools and hand it to these functions.

mod ansi;
pub mod diffsplit;
pub mod leader_worker;
pub mod logparse;
pub mod nodes;
pub mod repomap;
pub mod review_report;
pub mod run_nodes;
pub mod validate;
