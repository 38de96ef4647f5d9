//! The `builtin` nodes the built-in workflows use (and any workflow may use): each wraps one of
//! the deterministic pieces of this module in the engine's node contract.
//!
//! | name | `with:` | writes |
//! |---|---|---|
//! | `repo_map` | `listing` (an `fs.list` result's `output`) | `{text, files, bytes, shown_files, truncated}` |
//! | `parse_log` | `log` (text), `scope` (optional path prefix), `max_files` (default 8) | `{locations, files, omitted, lines, out_of_scope}` |
//! | `split_diff` | `diff` (unified diff text) | `{chunks, files, omitted_files, omitted_count}` |
//! | `files_as_diff` | `files` (a list of `fs.read` results) | `{diff, skipped}`: the files as added files |
//! | `ready_steps` | `steps` (`[{id, depends_on?, …}]`), `done` (ids), `only` (ids, optional: the steps to run; the others count as done) | `{ready, waiting, done}` |
//! | `review_verdict` | `summary` (a `ReviewSummary`), `fail_on` (`low`/`medium`/`high`, optional) | `{fails, reasons, threshold}` |
//! | `assign_steps`, `leader_worker_report` | see [`super::leader_worker`] | |
//!
//! A node that cannot do its work with the values it was given fails permanently with a
//! message naming the value (the same values would fail again).

use super::diffsplit::{DiffLimits, split_diff};
use super::logparse::{Location, parse_log};
use super::repomap::{RepoMapLimits, entries_from_fs_list, repo_map};
use super::review_report::fail_on;
use ao_core::types::{ReviewSummary, RiskLevel};
use ao_graph::{BoxFuture, BuiltinNode, EventKind, Host, NodeCall, NodeFailure};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A builtin that computes its result from its `with:` values alone.
struct Pure(fn(&NodeCall<'_>, &Value) -> Result<Value, NodeFailure>);

impl BuiltinNode for Pure {
    fn call<'a>(
        &'a self,
        call: NodeCall<'a>,
        with: Value,
    ) -> BoxFuture<'a, Result<Value, NodeFailure>> {
        let result = (self.0)(&call, &with);
        Box::pin(async move { result })
    }
}

/// Adds this module's builtins to `host`.
pub fn register(host: Host) -> Host {
    let nodes: [(&str, Pure); 8] = [
        ("repo_map", Pure(repo_map_node)),
        ("parse_log", Pure(parse_log_node)),
        ("split_diff", Pure(split_diff_node)),
        ("files_as_diff", Pure(files_as_diff_node)),
        ("ready_steps", Pure(ready_steps_node)),
        ("review_verdict", Pure(review_verdict_node)),
        (
            "assign_steps",
            Pure(super::leader_worker::assign_steps_node),
        ),
        (
            "leader_worker_report",
            Pure(super::leader_worker::leader_worker_report_node),
        ),
    ];
    nodes.into_iter().fold(host, |host, (name, node)| {
        host.with_builtin(name, Arc::new(node))
    })
}

pub(super) fn bad(node: &str, what: impl std::fmt::Display) -> NodeFailure {
    NodeFailure::permanent(format!("builtin `{node}`: {what}"))
}

fn text<'a>(with: &'a Value, key: &str, node: &str) -> Result<&'a str, NodeFailure> {
    with.get(key).and_then(Value::as_str).ok_or_else(|| {
        bad(
            node,
            format!("`with.{key}` must be text, got {}", short(with.get(key))),
        )
    })
}

pub(super) fn short(v: Option<&Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 80 {
                format!("{}…", &s[..s.floor_char_boundary(80)])
            } else {
                s
            }
        }
    }
}

fn repo_map_node(_call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    let listing = with
        .get("listing")
        .ok_or_else(|| bad("repo_map", "`with.listing` (an fs.list output) is missing"))?;
    let (entries, truncated) = entries_from_fs_list(listing).map_err(|e| bad("repo_map", e))?;
    let map = repo_map(&entries, truncated, RepoMapLimits::default());
    Ok(json!({
        "text": map.text,
        "files": map.files,
        "bytes": map.bytes,
        "shown_files": map.shown_files,
        "truncated": truncated,
    }))
}

/// How many distinct files a `parse_log` node hands on to be read, by default.
const DEFAULT_LOG_FILES: usize = 8;

fn parse_log_node(_call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    let log = text(with, "log", "parse_log")?;
    let scope = with
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.trim_start_matches("./").trim_end_matches('/'))
        .filter(|s| !s.is_empty() && *s != ".");
    let max_files = with
        .get("max_files")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_LOG_FILES, |n| n as usize);
    let parsed = parse_log(log);
    let in_scope = |l: &&Location| {
        let file = l.file.trim_start_matches("./");
        scope.is_none_or(|s| file == s || file.starts_with(&format!("{s}/")))
    };
    let ranked = parsed.ranked();
    let (kept, out): (Vec<&Location>, Vec<&Location>) = ranked.into_iter().partition(in_scope);
    // The files to read, most important first, each with the lines the log points at.
    let mut files: Vec<(String, BTreeSet<u64>)> = Vec::new();
    for l in &kept {
        let file = l.file.trim_start_matches("./").to_string();
        if let Some((_, lines)) = files.iter_mut().find(|(f, _)| *f == file) {
            lines.insert(l.line);
        } else if files.len() < max_files {
            files.push((file, BTreeSet::from([l.line])));
        }
    }
    let files: Vec<Value> = files
        .into_iter()
        .map(|(file, lines)| {
            let first = lines.first().copied().unwrap_or(1);
            let last = lines.last().copied().unwrap_or(first);
            // The lines around every location: a window the file tool reads in one call.
            let offset = first.saturating_sub(21);
            let limit = (last + 20).saturating_sub(offset).clamp(1, 400);
            json!({"path": file, "lines": lines, "offset": offset, "limit": limit})
        })
        .collect();
    Ok(json!({
        "locations": kept,
        "files": files,
        "omitted": parsed.omitted,
        "lines": parsed.lines,
        "out_of_scope": out.len(),
    }))
}

fn split_diff_node(_call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    let diff = text(with, "diff", "split_diff")?;
    let split = split_diff(diff, DiffLimits::default()).map_err(|e| bad("split_diff", e))?;
    serde_json::to_value(split).map_err(|e| bad("split_diff", e))
}

/// Whole files as a diff that adds them, so `review --file` reviews them like a change.
fn files_as_diff_node(_call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    let files = with.get("files").and_then(Value::as_array).ok_or_else(|| {
        bad(
            "files_as_diff",
            "`with.files` must be a list of fs.read results",
        )
    })?;
    let mut diff = String::new();
    let mut skipped = Vec::new();
    for f in files {
        let output = &f["output"];
        let (Some(path), Some(content)) = (output["path"].as_str(), output["content"].as_str())
        else {
            // A denied or unreadable file: say so, review the rest.
            skipped.push(json!({
                "path": f["args"]["path"].clone(),
                "reason": f.get("reason").cloned().unwrap_or(Value::String(f["decision"].as_str().unwrap_or("unreadable").into())),
            }));
            continue;
        };
        let lines: Vec<&str> = content.lines().collect();
        diff.push_str(&format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
            lines.len()
        ));
        for line in &lines {
            diff.push('+');
            diff.push_str(line);
            diff.push('\n');
        }
        if !content.is_empty() && !content.ends_with('\n') {
            diff.push_str("\\ No newline at end of file\n");
        }
    }
    Ok(json!({"diff": diff, "skipped": skipped}))
}

/// The steps whose dependencies are all done: the next wave a workflow runs in parallel.
///
/// A dependency on an id the plan does not have is ignored (it can never be waited for), with
/// a warning; when steps remain but none can start (a cycle), they are released together in
/// plan order, with a warning, rather than waiting forever.
fn ready_steps_node(call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    let steps = with.get("steps").and_then(Value::as_array).ok_or_else(|| {
        bad(
            "ready_steps",
            "`with.steps` must be a list of steps with an `id`",
        )
    })?;
    let mut done: BTreeSet<&str> = with
        .get("done")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // `only`: the steps to run (e.g. those sent back for revision); the rest count as done.
    let only: Option<BTreeSet<&str>> = match with.get("only") {
        None | Some(Value::Null) => None,
        Some(Value::Array(ids)) => Some(ids.iter().filter_map(Value::as_str).collect()),
        Some(other) => {
            return Err(bad(
                "ready_steps",
                format!(
                    "`with.only` must be a list of step ids, got {}",
                    short(Some(other))
                ),
            ));
        }
    };
    let mut ids: BTreeMap<&str, &Value> = BTreeMap::new();
    for s in steps {
        let id = s.get("id").and_then(Value::as_str).ok_or_else(|| {
            bad(
                "ready_steps",
                format!("a step has no `id`: {}", short(Some(s))),
            )
        })?;
        if ids.insert(id, s).is_some() {
            return Err(bad("ready_steps", format!("two steps have the id `{id}`")));
        }
    }
    if let Some(only) = &only {
        let unknown: Vec<&str> = only
            .iter()
            .filter(|id| !ids.contains_key(*id))
            .copied()
            .collect();
        if !unknown.is_empty() && call.attempt == 1 {
            call.events.emit(EventKind::Warning {
                node: Some(call.node.to_string()),
                message: format!(
                    "{} named to run, but the plan has no such step",
                    unknown.join(", ")
                ),
            });
        }
        done.extend(ids.keys().filter(|id| !only.contains(*id)));
    }
    let deps = |s: &Value| -> Vec<String> {
        s.get("depends_on")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let pending: Vec<&Value> = steps
        .iter()
        .filter(|s| !done.contains(s["id"].as_str().unwrap_or_default()))
        .collect();
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for s in &pending {
        let id = s["id"].as_str().unwrap_or_default();
        let unknown: Vec<String> = deps(s)
            .into_iter()
            .filter(|d| !ids.contains_key(d.as_str()))
            .collect();
        if !unknown.is_empty() && call.attempt == 1 {
            call.events.emit(EventKind::Warning {
                node: Some(call.node.to_string()),
                message: format!(
                    "step `{id}` depends on {}, which the plan does not have; not waiting for it",
                    unknown.join(", ")
                ),
            });
        }
        let blocked = deps(s)
            .iter()
            .any(|d| ids.contains_key(d.as_str()) && !done.contains(d.as_str()));
        if blocked {
            waiting.push((*s).clone());
        } else {
            ready.push((*s).clone());
        }
    }
    if ready.is_empty() && !waiting.is_empty() {
        let names: Vec<&str> = waiting.iter().filter_map(|s| s["id"].as_str()).collect();
        call.events.emit(EventKind::Warning {
            node: Some(call.node.to_string()),
            message: format!(
                "steps {} wait on each other (a cycle in depends_on); they run together",
                names.join(", ")
            ),
        });
        ready = std::mem::take(&mut waiting);
    }
    Ok(json!({"ready": ready, "waiting": waiting.len(), "done": done.len()}))
}

fn review_verdict_node(_call: &NodeCall<'_>, with: &Value) -> Result<Value, NodeFailure> {
    let summary: ReviewSummary =
        serde_json::from_value(with.get("summary").cloned().unwrap_or_default()).map_err(|e| {
            bad(
                "review_verdict",
                format!("`with.summary` is not a ReviewSummary: {e}"),
            )
        })?;
    let threshold = match with.get("fail_on") {
        None | Some(Value::Null) => {
            return Ok(json!({"fails": false, "reasons": [], "threshold": null}));
        }
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse::<RiskLevel>().ok())
            .ok_or_else(|| {
                bad(
                    "review_verdict",
                    format!("`with.fail_on` must be low, medium or high, got {v}"),
                )
            })?,
    };
    let verdict = fail_on(&summary, threshold);
    Ok(json!({
        "fails": verdict.fails,
        "reasons": verdict.reasons,
        "threshold": threshold.as_str(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoEvents(std::sync::Mutex<Vec<String>>);

    impl ao_graph::EventEmitter for NoEvents {
        fn emit(&self, kind: EventKind) {
            if let EventKind::Warning { message, .. } = kind {
                self.0.lock().unwrap().push(message);
            }
        }
    }

    fn call_with(
        f: fn(&NodeCall<'_>, &Value) -> Result<Value, NodeFailure>,
        with: Value,
    ) -> (Result<Value, NodeFailure>, Vec<String>) {
        let events = NoEvents(std::sync::Mutex::new(Vec::new()));
        let call = NodeCall {
            run_id: "r",
            step: 1,
            node: "n",
            index: None,
            attempt: 1,
            events: &events,
        };
        let out = f(&call, &with);
        (out, events.0.into_inner().unwrap())
    }

    #[test]
    fn ready_steps_runs_waves_by_depends_on() {
        let steps = json!([
            {"id": "a"}, {"id": "b"}, {"id": "c", "depends_on": ["a", "b"]}, {"id": "d", "depends_on": ["c"]}
        ]);
        let wave = |done: Value| {
            let (out, warnings) =
                call_with(ready_steps_node, json!({"steps": steps, "done": done}));
            assert!(warnings.is_empty(), "{warnings:?}");
            out.unwrap()["ready"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(wave(json!([])), ["a", "b"]);
        assert_eq!(wave(json!(["a"])), ["b"]);
        assert_eq!(wave(json!(["a", "b"])), ["c"]);
        assert_eq!(wave(json!(["a", "b", "c"])), ["d"]);
        assert!(wave(json!(["a", "b", "c", "d"])).is_empty());
    }

    #[test]
    fn ready_steps_never_waits_forever() {
        let (out, warnings) = call_with(
            ready_steps_node,
            json!({"steps": [{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["zzz"]}], "done": []}),
        );
        let ready: Vec<&str> = out.as_ref().unwrap()["ready"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ready, ["c"], "an unknown dependency does not block");
        assert!(warnings.iter().any(|w| w.contains("zzz")), "{warnings:?}");
        let (out, warnings) = call_with(
            ready_steps_node,
            json!({"steps": [{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}], "done": []}),
        );
        assert_eq!(
            out.unwrap()["ready"].as_array().unwrap().len(),
            2,
            "a cycle is released"
        );
        assert!(warnings.iter().any(|w| w.contains("cycle")), "{warnings:?}");
        let (out, _) = call_with(
            ready_steps_node,
            json!({"steps": [{"id": "a"}, {"id": "a"}]}),
        );
        assert!(
            out.unwrap_err()
                .message
                .contains("two steps have the id `a`")
        );
    }

    #[test]
    fn parse_log_keeps_the_scope_and_windows_the_lines() {
        let log = "error[E0308]: mismatched types\n --> src/main.rs:40:5\n\nerror: cannot find value\n --> vendor/x.rs:3:1\n";
        let (out, _) = call_with(parse_log_node, json!({"log": log, "scope": "src"}));
        let out = out.unwrap();
        assert_eq!(
            out["files"],
            json!([{"path": "src/main.rs", "lines": [40], "offset": 19, "limit": 41}])
        );
        assert_eq!(out["out_of_scope"], 1);
        let (out, _) = call_with(parse_log_node, json!({"log": 3}));
        assert!(out.unwrap_err().message.contains("`with.log` must be text"));
    }

    #[test]
    fn files_become_a_diff_that_adds_them_and_denied_ones_are_listed() {
        let (out, _) = call_with(
            files_as_diff_node,
            json!({"files": [
                {"decision": "allowed", "output": {"path": "a.txt", "content": "one\ntwo"}},
                {"decision": "denied", "reason": "`.env` is denied", "args": {"path": ".env"}, "output": null}
            ]}),
        );
        let out = out.unwrap();
        let diff = out["diff"].as_str().unwrap();
        assert!(
            diff.contains("+++ b/a.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n\\ No newline"),
            "{diff}"
        );
        assert_eq!(out["skipped"][0]["reason"], "`.env` is denied");
        let split = split_diff(diff, DiffLimits::default()).unwrap();
        assert_eq!(split.chunks[0].path, "a.txt");
    }

    #[test]
    fn the_review_verdict_follows_the_threshold() {
        let summary = json!({"summary": "s", "architecture_impact": "none", "must_fix": [], "should_fix": [], "missing_tests": [], "risk_level": "high"});
        let (out, _) = call_with(
            review_verdict_node,
            json!({"summary": summary, "fail_on": "high"}),
        );
        assert_eq!(out.unwrap()["fails"], true);
        let (out, _) = call_with(review_verdict_node, json!({"summary": summary}));
        assert_eq!(out.unwrap()["fails"], false);
        let (out, _) = call_with(
            review_verdict_node,
            json!({"summary": summary, "fail_on": "severe"}),
        );
        assert!(out.unwrap_err().message.contains("low, medium or high"));
    }
}
