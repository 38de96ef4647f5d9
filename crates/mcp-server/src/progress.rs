//! Progress notifications from a run's event stream, for a request that carries a progress
//! token. Events are read from the store (so a run driven by another process reports too);
//! each one a person would follow becomes one notification, numbered from 1.

use ao_core::redact::Redactor;
use ao_orchestrator::Service;
use ao_orchestrator::engine::{Event, EventKind};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the store is read for new events (the engine writes them at least this often).
const PUMP_INTERVAL: Duration = Duration::from_millis(200);
/// How long the last read may take when the wait ends.
const FINISH_WITHIN: Duration = Duration::from_secs(2);

/// Sends a run's events as progress notifications until finished.
pub struct ProgressPump {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

pub struct PumpTarget {
    pub service: Service,
    pub run_id: String,
    /// Send only events after this one (`None`: from the run's start).
    pub after: Option<u64>,
    pub token: ProgressToken,
    pub peer: Peer<RoleServer>,
    pub redactor: Redactor,
}

impl ProgressPump {
    pub fn start(target: PumpTarget) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut pump = Pump {
                last: target.after,
                sent: 0,
                target,
                closed: false,
            };
            loop {
                pump.send_new().await;
                if pump.closed {
                    return;
                }
                tokio::select! {
                    _ = &mut stopped => {
                        pump.send_new().await;
                        return;
                    }
                    _ = tokio::time::sleep(PUMP_INTERVAL) => {}
                }
            }
        });
        ProgressPump { stop, task }
    }

    /// Sends what the run recorded since the last read, then stops (bounded: a slow client
    /// does not hold the response back for long).
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(FINISH_WITHIN, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Stops at once (the call was cancelled).
    pub fn abort(self) {
        self.task.abort();
    }
}

struct Pump {
    target: PumpTarget,
    last: Option<u64>,
    sent: u64,
    /// The client is gone: nothing more can be sent.
    closed: bool,
}

impl Pump {
    async fn send_new(&mut self) {
        let Ok(events) = self.target.service.events(&self.target.run_id, self.last) else {
            return;
        };
        for event in events {
            self.last = Some(event.seq);
            let Some(message) = describe(&event) else {
                continue;
            };
            self.sent += 1;
            let param = ProgressNotificationParam::new(self.target.token.clone(), self.sent as f64)
                .with_message(self.target.redactor.redact_str(&message));
            if self.target.peer.notify_progress(param).await.is_err() {
                self.closed = true;
                return;
            }
        }
    }
}

/// One line for an event a person would follow; `None` for bookkeeping events.
fn describe(event: &Event) -> Option<String> {
    let step = event.step;
    Some(match &event.kind {
        EventKind::RunStarted { workflow, .. } => {
            format!("run {} of `{workflow}` started", event.run_id)
        }
        EventKind::RunResumed { from_step, .. } => format!("resumed from step {from_step}"),
        EventKind::StepStarted { nodes, .. } => format!("step {step}: {}", nodes.join(", ")),
        EventKind::TaskStarted { node, index, .. } => format!("`{}` started", task(node, index)),
        EventKind::TaskFinished {
            node,
            index,
            duration_ms,
            ..
        } => format!("`{}` done in {duration_ms} ms", task(node, index)),
        EventKind::TaskRetrying {
            node,
            index,
            attempt,
            error,
            ..
        } => format!(
            "`{}` retrying (attempt {attempt}): {error}",
            task(node, index)
        ),
        EventKind::TaskFailed {
            node, index, error, ..
        } => format!("`{}` failed: {error}", task(node, index)),
        EventKind::LlmCall {
            node,
            role,
            input_tokens,
            output_tokens,
            cached,
            replayed,
            ..
        } => {
            if *cached {
                format!("`{node}`: stored {role} model reply reused")
            } else if *replayed {
                format!("`{node}`: {role} model reply replayed from the cassette")
            } else {
                format!(
                    "`{node}`: {role} model call, {input_tokens} tokens in, {output_tokens} out"
                )
            }
        }
        EventKind::ToolCall {
            node,
            tool,
            decision,
        } => format!("`{node}`: {tool} ({decision})"),
        EventKind::Interrupted { node, prompt } => {
            format!("waiting for an answer at `{node}`: {prompt}")
        }
        EventKind::Warning { node, message } => match node {
            Some(node) => format!("warning (`{node}`): {message}"),
            None => format!("warning: {message}"),
        },
        EventKind::RunFinished { status, .. } => format!("run {status}"),
        EventKind::Answered { .. } | EventKind::CheckpointSaved { .. } => return None,
    })
}

fn task(node: &str, index: &Option<usize>) -> String {
    match index {
        Some(i) => format!("{node}[{i}]"),
        None => node.to_string(),
    }
}
