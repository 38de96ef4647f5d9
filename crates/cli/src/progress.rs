//! Progress and logs on stderr, from the run's event stream.
//!
//! A terminal gets one live line that ticks on its own (spinner, elapsed time, the step and its
//! running nodes, tasks done, model calls and tokens so far), so a person can tell `ao` is
//! alive during a long model call; `-v` prints each event as a log line instead. `--json`, `-q`,
//! `--no-progress` and a non-terminal stderr print no progress.

use crate::Ui;
use ao_orchestrator::engine::{Event, EventKind, EventSink, SharedSink};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Progress {
    started: Instant,
    /// The live line (a terminal without `-v`).
    bar: Option<ProgressBar>,
    verbose: bool,
    state: Mutex<Line>,
}

#[derive(Default)]
struct Line {
    step: u64,
    /// Tasks running now, by node (with how many of that node).
    running: std::collections::BTreeMap<String, usize>,
    tasks: usize,
    done: usize,
    llm_calls: u64,
    tokens: u64,
    /// The tail of the reply a running `llm` node is streaming: (node, text).
    streaming: Option<(String, String)>,
}

/// How much of a streaming reply the live line shows (its last characters).
const STREAM_TAIL: usize = 48;

impl Line {
    fn message(&self) -> String {
        let running: Vec<String> = self
            .running
            .iter()
            .map(|(n, c)| {
                if *c > 1 {
                    format!("{n}×{c}")
                } else {
                    n.clone()
                }
            })
            .collect();
        let mut msg = format!("step {}", self.step);
        if !running.is_empty() {
            msg.push_str(&format!(" · running {}", running.join(", ")));
        }
        msg.push_str(&format!(
            " · {}/{} task{}",
            self.done,
            self.tasks,
            if self.tasks == 1 { "" } else { "s" }
        ));
        if let Some((node, text)) = &self.streaming {
            let flat: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let tail: String = {
                let chars: Vec<char> = flat.chars().collect();
                chars[chars.len().saturating_sub(STREAM_TAIL)..]
                    .iter()
                    .collect()
            };
            msg.push_str(&format!(" · {node}: …{tail}"));
        }
        if self.llm_calls > 0 {
            msg.push_str(&format!(
                " · {} LLM call{}, {} tokens",
                self.llm_calls,
                if self.llm_calls == 1 { "" } else { "s" },
                self.tokens
            ));
        }
        msg
    }
}

impl ao_orchestrator::model_node::TokenSink for Progress {
    fn text(&self, node: &str, text: &str) {
        let Some(bar) = &self.bar else { return };
        let mut line = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &mut line.streaming {
            Some((n, buf)) if n == node => {
                buf.push_str(text);
                // Only the tail is ever shown.
                if buf.len() > STREAM_TAIL * 8 {
                    let keep = buf.len() - STREAM_TAIL * 4;
                    let cut = (keep..buf.len())
                        .find(|i| buf.is_char_boundary(*i))
                        .unwrap_or(0);
                    buf.drain(..cut);
                }
            }
            _ => line.streaming = Some((node.to_string(), text.to_string())),
        }
        bar.set_message(line.message());
    }

    fn restart(&self, node: &str) {
        let mut line = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if line.streaming.as_ref().is_some_and(|(n, _)| n == node) {
            line.streaming = None;
        }
    }
}

impl Progress {
    /// Whether a live line is drawn (streamed text is worth sending to it).
    pub fn is_live(&self) -> bool {
        self.bar.is_some()
    }
}

/// How often the live line redraws by itself (the elapsed time keeps moving between events).
const TICK: Duration = Duration::from_millis(100);

impl Progress {
    /// The sink for this invocation, or none when nothing is to be shown.
    pub fn for_ui(ui: Ui) -> Option<Arc<Progress>> {
        let verbose = ui.verbose > 0 && !ui.quiet;
        if !ui.progress && !verbose {
            return None;
        }
        let bar = (ui.progress && !verbose).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {secs} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .with_key(
                    "secs",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
                    },
                );
            bar.set_style(style);
            bar.set_message("starting");
            bar.enable_steady_tick(TICK);
            bar
        });
        Some(Arc::new(Progress {
            started: Instant::now(),
            bar,
            verbose,
            state: Mutex::new(Line::default()),
        }))
    }

    pub fn sink(self: &Arc<Self>) -> SharedSink {
        self.clone()
    }

    /// Clears the live line before the final output.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: &Event) {
        if self.verbose {
            let kind = serde_json::to_string(&event.kind).unwrap_or_default();
            eprintln!(
                "[{:>7.3}s] step {} {}",
                self.started.elapsed().as_secs_f64(),
                event.step,
                kind
            );
            return;
        }
        let Some(bar) = &self.bar else { return };
        let mut line = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &event.kind {
            EventKind::StepStarted { tasks, .. } => {
                line.step = event.step;
                line.tasks = *tasks;
                line.done = 0;
                line.running.clear();
            }
            EventKind::TaskStarted { node, .. } => {
                *line.running.entry(node.clone()).or_default() += 1;
            }
            EventKind::TaskFinished { node, .. } | EventKind::TaskFailed { node, .. } => {
                if line.streaming.as_ref().is_some_and(|(n, _)| n == node) {
                    line.streaming = None;
                }
                if let Some(n) = line.running.get_mut(node) {
                    *n -= 1;
                    if *n == 0 {
                        line.running.remove(node);
                    }
                }
                if matches!(event.kind, EventKind::TaskFinished { .. }) {
                    line.done += 1;
                }
            }
            EventKind::LlmCall {
                input_tokens,
                output_tokens,
                cached: false,
                replayed: false,
                ..
            } => {
                line.llm_calls += 1;
                line.tokens += input_tokens + output_tokens;
            }
            EventKind::Warning { node, message } => {
                bar.suspend(|| match node {
                    Some(node) => eprintln!("warning ({node}): {message}"),
                    None => eprintln!("warning: {message}"),
                });
            }
            _ => return,
        }
        bar.set_message(line.message());
    }
}
