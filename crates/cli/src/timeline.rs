//! Events as a person reads them: one line per event (`ao runs events`, `-v` progress).

use ao_orchestrator::engine::{Event, EventKind};

/// One event as a short line of text (no time or step; the caller adds them).
pub fn describe(kind: &EventKind) -> String {
    let task = |node: &str, index: &Option<usize>| match index {
        Some(i) => format!("{node}[{i}]"),
        None => node.to_string(),
    };
    match kind {
        EventKind::RunStarted { workflow, .. } => format!("run started (workflow `{workflow}`)"),
        EventKind::RunResumed {
            workflow,
            from_step,
        } => format!("run resumed (workflow `{workflow}`) after step {from_step}"),
        EventKind::StepStarted { nodes, tasks } => format!(
            "step started: {} ({tasks} task{})",
            nodes.join(", "),
            if *tasks == 1 { "" } else { "s" }
        ),
        EventKind::TaskStarted {
            node,
            index,
            attempt,
        } => {
            if *attempt > 1 {
                format!("{} started (attempt {attempt})", task(node, index))
            } else {
                format!("{} started", task(node, index))
            }
        }
        EventKind::TaskFinished {
            node,
            index,
            duration_ms,
            channels,
            ..
        } => {
            let wrote = if channels.is_empty() {
                String::new()
            } else {
                format!(", wrote {}", channels.join(", "))
            };
            format!("{} finished in {duration_ms} ms{wrote}", task(node, index))
        }
        EventKind::TaskRetrying {
            node,
            index,
            attempt,
            delay_ms,
            error,
        } => format!(
            "{} attempt {attempt} failed, retrying in {delay_ms} ms: {error}",
            task(node, index)
        ),
        EventKind::TaskFailed {
            node,
            index,
            attempts,
            error,
        } => format!(
            "{} failed after {attempts} attempt{}: {error}",
            task(node, index),
            if *attempts == 1 { "" } else { "s" }
        ),
        EventKind::Interrupted { node, prompt } => format!("waiting at `{node}`: {prompt}"),
        EventKind::Answered { node, answer } => format!("answered `{node}`: {answer}"),
        EventKind::CheckpointSaved { next } => {
            if next.is_empty() {
                "checkpoint saved; nothing left to run".into()
            } else {
                format!("checkpoint saved; next: {}", next.join(", "))
            }
        }
        EventKind::LlmCall {
            node,
            role,
            model,
            input_tokens,
            output_tokens,
            latency_ms,
            cached,
            replayed,
            request,
            error,
        } => {
            let why = match request.as_deref() {
                None | Some("first") => String::new(),
                Some(kind) => format!(" ({})", kind.replace('_', "-")),
            };
            match (cached, error) {
                (true, _) => format!("{node}: stored {role} call reused (nothing sent)"),
                (false, _) if *replayed => {
                    format!("{node}: {role} call replayed from the cassette (nothing sent)")
                }
                (false, Some(e)) => format!(
                    "{node}: {role} model `{model}` request{why} failed after {latency_ms} ms: {e}"
                ),
                (false, None) => format!(
                    "{node}: {role} model `{model}` answered{why} in {latency_ms} ms ({input_tokens} tokens in, {output_tokens} out)"
                ),
            }
        }
        EventKind::ToolCall {
            node,
            tool,
            decision,
        } => format!("{node}: tool `{tool}` {decision}"),
        EventKind::Warning { node, message } => match node {
            Some(node) => format!("warning ({node}): {message}"),
            None => format!("warning: {message}"),
        },
        EventKind::RunFinished { status, error } => match error {
            Some(e) => format!("run {status}: {e}"),
            None => format!("run {status}"),
        },
    }
}

/// One event as a timeline line: time since `t0`, step, what happened.
pub fn line(event: &Event, t0_ms: u64) -> String {
    let at = event.ts_ms.saturating_sub(t0_ms) as f64 / 1000.0;
    format!(
        "{at:>9.3}s  step {:<4} {}",
        event.step,
        describe(&event.kind)
    )
}
