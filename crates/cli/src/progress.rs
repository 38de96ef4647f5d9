//! Progress and logs on stderr, from the run's event stream.
//!
//! A terminal gets one line rewritten in place (step, nodes, tasks, elapsed); `-v` prints each
//! event as a log line instead. `--json`, `-q` and a non-terminal stderr print no progress.

use crate::Ui;
use ao_orchestrator::engine::{Event, EventKind, EventSink, SharedSink};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct Progress {
    started: Instant,
    live: bool,
    verbose: bool,
    state: Mutex<Line>,
}

#[derive(Default)]
struct Line {
    step: u64,
    nodes: String,
    tasks: usize,
    done: usize,
    shown: bool,
}

impl Progress {
    /// The sink for this invocation, or none when nothing is to be shown.
    pub fn for_ui(ui: Ui) -> Option<Arc<Progress>> {
        let verbose = ui.verbose > 0 && !ui.quiet;
        if !ui.progress && !verbose {
            return None;
        }
        Some(Arc::new(Progress {
            started: Instant::now(),
            live: ui.progress && !verbose,
            verbose,
            state: Mutex::new(Line::default()),
        }))
    }

    pub fn sink(self: &Arc<Self>) -> SharedSink {
        self.clone()
    }

    /// Clears the live line before the final output.
    pub fn finish(&self) {
        let line = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.live && line.shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    fn redraw(&self, line: &mut Line) {
        let elapsed = self.started.elapsed().as_secs_f64();
        eprint!(
            "\r\x1b[2K  step {} · {} · {}/{} task{} · {:.1}s",
            line.step,
            line.nodes,
            line.done,
            line.tasks,
            if line.tasks == 1 { "" } else { "s" },
            elapsed
        );
        let _ = std::io::stderr().flush();
        line.shown = true;
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
        let mut line = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &event.kind {
            EventKind::StepStarted { nodes, tasks } => {
                line.step = event.step;
                line.nodes = nodes.join(", ");
                line.tasks = *tasks;
                line.done = 0;
            }
            EventKind::TaskFinished { .. } => line.done += 1,
            _ => return,
        }
        self.redraw(&mut line);
    }
}
