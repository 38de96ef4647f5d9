//! Worker onboarding interviews: measure a model endpoint on a fixed suite before it gets
//! work, and turn the measurement into a [`WorkerCapabilityProfile`] that routing obeys.
//!
//! The parts, each with one concern:
//! - [`suite`] — the suite format (YAML, versioned, hashed), loading and validation, and the
//!   built-in suite;
//! - [`checks`] and [`code`] — deterministic checks on a parsed reply, including code rules
//!   that read tokens rather than substrings;
//! - [`trial`] — what one ask produced: a reply or a harness failure (inconclusive);
//! - [`runner`] — asks every case × trial through a [`runner::CaseModel`], concurrently and
//!   bounded;
//! - [`score`] — judges the records: validity, schema compliance, correctness, calibration,
//!   status, qualification, routing policy, reasons; or the harness-failure verdict;
//! - [`profiles`] — the saved profiles (`<state dir>/worker-profiles.json`);
//! - [`endpoint`] — who is interviewed (a configured worker or an endpoint named ad hoc) and
//!   the [`runner::CaseModel`] that asks it through the model layer;
//! - [`workers`] — configured workers, their ids, and their profiles as listed;
//! - [`nodes`] — the builtin nodes of the `worker-interview` workflow and `route_steps`.
//!
//! ```no_run
//! # async fn demo(model: std::sync::Arc<dyn ao_orchestrator::interview::runner::CaseModel>) {
//! use std::sync::Arc;
//! use ao_orchestrator::interview::{runner, score, suite::Suite};
//! let suite = Arc::new(Suite::builtin().expect("the built-in suite loads"));
//! let worker = score::WorkerIdentity {
//!     worker_id: "litellm:qwen3-coder".into(),
//!     provider: "litellm".into(),
//!     model: "qwen3-coder".into(),
//!     base_url: Some("http://localhost:4000/v1".into()),
//! };
//! let now = ao_core::timestamp::Timestamp::now();
//! match runner::interview(suite, model, &worker, &runner::RunOptions::default(), now).await {
//!     score::InterviewOutcome::Profiled(report) => println!("{}", report.profile.status),
//!     score::InterviewOutcome::HarnessFailure(failure) => eprintln!("{failure}"),
//! }
//! # }
//! ```
//!
//! [`WorkerCapabilityProfile`]: ao_core::profile::WorkerCapabilityProfile

pub mod checks;
pub mod code;
pub mod endpoint;
pub mod nodes;
pub mod profiles;
pub mod runner;
pub mod score;
pub mod suite;
pub mod trial;
pub mod workers;
