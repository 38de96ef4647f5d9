//! Policy decisions, effect classes and the recorder that stores decisions with the run.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::confine::ConfinementSummary;
use crate::policy::Mode;

/// What the gate decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The call ran for real (or read real data).
    Allowed,
    /// The call was recorded, not performed (dry-run write into the changeset, or an `exec`
    /// that would run in apply mode).
    Simulated,
    /// The call was refused; `reason` says why.
    Denied,
}

impl Decision {
    /// `allowed`, `simulated` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Simulated => "simulated",
            Decision::Denied => "denied",
        }
    }
}

/// The effect class of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads the project (files or git); never changes it.
    Read,
    /// Changes project files.
    Write,
    /// Starts a process.
    Exec,
}

impl Effect {
    /// `read`, `write` or `exec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Exec => "exec",
        }
    }
}

/// One decision, as stored with the run. Arguments are already redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Tool name.
    pub tool: String,
    /// Its effect class.
    pub effect: Effect,
    /// Mode the policy was in.
    pub mode: Mode,
    /// The decision.
    pub decision: Decision,
    /// Why, unless allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The exact argv of a command (run, simulated or denied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The call's arguments (redacted).
    pub args: Value,
    /// For a process that was started: the kernel confinement it ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<ConfinementSummary>,
}

/// Receives every decision; the engine stores them with the run.
pub trait DecisionRecorder: Send + Sync {
    /// Called once per tool call that passed input validation, before the work is done. An
    /// error stops the call before it does anything: a decision that cannot be recorded is not
    /// acted on (the message says why it could not be kept).
    fn record(&self, record: &DecisionRecord) -> Result<(), String>;
}

/// Drops decisions (for callers that really have no run, e.g. a schema listing).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopRecorder;

impl DecisionRecorder for NoopRecorder {
    fn record(&self, _record: &DecisionRecord) -> Result<(), String> {
        Ok(())
    }
}

/// Keeps decisions in memory (tests, `ao tools run`).
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    records: Mutex<Vec<DecisionRecord>>,
}

impl MemoryRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the decisions recorded so far, in order.
    pub fn records(&self) -> Vec<DecisionRecord> {
        match self.records.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl DecisionRecorder for MemoryRecorder {
    fn record(&self, record: &DecisionRecord) -> Result<(), String> {
        match self.records.lock() {
            Ok(mut r) => r.push(record.clone()),
            Err(poisoned) => poisoned.into_inner().push(record.clone()),
        }
        Ok(())
    }
}
