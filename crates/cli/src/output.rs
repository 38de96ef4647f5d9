//! Rendering runs for people and for machines.

use ao_core::run::RunStatus;
use ao_orchestrator::{RunSummary, RunView};
use serde::Serialize;
use serde_json::Value;

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    );
}

/// Prints a typed value of the front-end contract as the one JSON document.
pub fn print_doc<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot render the result as JSON: {e}"),
    }
}

/// Human output for a run that stopped: what happened and what to do next.
pub fn print_outcome(o: &RunView) {
    match o.status {
        // A run that failed stopped inside the step after the last one it completed.
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Running => println!(
            "run {} ({}): {} in step {}",
            o.run_id,
            o.workflow,
            o.status,
            o.steps + 1
        ),
        RunStatus::Completed | RunStatus::Interrupted => println!(
            "run {} ({}): {} after {} step{}",
            o.run_id,
            o.workflow,
            o.status,
            o.steps,
            if o.steps == 1 { "" } else { "s" }
        ),
    }
    match o.status {
        RunStatus::Completed => {
            if let Some(out) = &o.output {
                println!("output:");
                println!(
                    "{}",
                    indent(&serde_json::to_string_pretty(out).unwrap_or_default())
                );
            }
        }
        RunStatus::Interrupted => {
            if let Some(i) = &o.interrupt {
                println!("waiting at `{}`: {}", i.node, i.prompt);
                println!("answer schema: {}", i.schema);
                println!("answer with: ao runs resume {} --answer JSON", o.run_id);
            }
        }
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Running => {
            if let Some(e) = &o.error {
                println!("error ({}): {}", e.kind, e);
            }
            let stopped = o.error.as_ref().is_some_and(|e| e.kind == "stopped");
            let replay_miss = o
                .error
                .as_ref()
                .is_some_and(|e| e.kind == ao_orchestrator::replay::REPLAY_MISMATCH);
            if replay_miss {
                println!(
                    "the workflow no longer makes the recorded call: record the cassette again (--record FILE), or send the calls it does not answer to the model (--replay-miss live)"
                );
            } else if stopped {
                println!("continue with: ao runs resume {}", o.run_id);
            } else if o.status == RunStatus::Failed {
                println!(
                    "completed tasks are kept; after fixing the cause: ao runs resume {} (add --reload if you changed the workflow file)",
                    o.run_id
                );
            }
        }
    }
}

/// One line of model usage: calls, tokens, cost when every call's model has a price.
pub fn usage_line(o: &RunView) -> Option<String> {
    let u = o.usage.as_ref()?;
    let mut line = format!(
        "usage: {} model call{}, {} tokens in, {} out{}",
        u.calls,
        if u.calls == 1 { "" } else { "s" },
        u.total.prompt_tokens,
        u.total.completion_tokens,
        if u.total.estimated {
            " (some estimated)"
        } else {
            ""
        }
    );
    if let Some(cost) = u.total.cost_usd {
        line.push_str(&format!(", ${cost:.4}"));
    }
    if u.replayed > 0 {
        line.push_str(&format!(
            "; {} call{} answered from the cassette (nothing sent)",
            u.replayed,
            if u.replayed == 1 { "" } else { "s" }
        ));
    }
    Some(line)
}

/// Model usage per node as a table (and per `for_each` task with `tasks`).
pub fn usage_table(o: &RunView, tasks: bool) -> Option<String> {
    let u = o.usage.as_ref()?;
    if u.by_node.is_empty() {
        return None;
    }
    let cost = |c: Option<f64>| c.map(|c| format!("${c:.4}")).unwrap_or_else(|| "-".into());
    let mut out = format!(
        "{:<28} {:>6} {:>10} {:>10} {:>10} {:>10}\n",
        "NODE", "CALLS", "TOKENS IN", "OUT", "COST", "LATENCY"
    );
    for (node, n) in &u.by_node {
        out.push_str(&format!(
            "{:<28} {:>6} {:>10} {:>10} {:>10} {:>8}ms\n",
            node,
            n.calls,
            n.prompt_tokens,
            n.completion_tokens,
            cost(n.cost_usd),
            n.latency_ms
        ));
        if tasks {
            for (i, t) in &n.tasks {
                out.push_str(&format!(
                    "{:<28} {:>6} {:>10} {:>10} {:>10} {:>8}ms\n",
                    format!("  [{i}]"),
                    t.calls,
                    t.prompt_tokens,
                    t.completion_tokens,
                    cost(t.cost_usd),
                    t.latency_ms
                ));
            }
        }
    }
    Some(out)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The header of `ao runs list`, aligned with [`run_line`].
pub fn run_header() -> String {
    format!(
        "{:<26}  {:<12} {:<24} {:<9} {}",
        "RUN", "STATUS", "WORKFLOW", "STEPS", "UPDATED (UTC)"
    )
}

/// One line per run for `ao runs list`.
pub fn run_line(r: &RunSummary) -> String {
    format!(
        "{:<26}  {:<12} {:<24} {:<9} {}",
        r.run_id,
        r.status.as_str(),
        r.workflow,
        r.steps,
        format_time(r.updated_ms)
    )
}

/// UTC time as `YYYY-MM-DD HH:MM:SS`, without a date library.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // The standard days-to-civil-date conversion, valid for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_time(1_795_000_000_000), "2026-11-18 11:06:40");
    }
}
