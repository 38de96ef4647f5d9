//! `ao mcp serve` driven by a real MCP client that this project did not write: the official
//! Python SDK (`mcp`, installed by `.ci/install-mcp-sdk`, part of `.ci/run`), in the legacy
//! handshake mode and in the 2026-07-28 mode. The client script (`tests/mcp_client.py`) checks
//! the protocol side; this test then checks with the `ao` CLI that what it did is in the store.

mod support;

use ao_testkit::StubModel;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{Project, wait_for};

const STUBBED: &str = "name: stubbed
description: One leader call, then a transform of its reply.
input: {type: object, properties: {topic: {type: string}}}
channels:
  reply: {}
  shout: {}
nodes:
  ask: {kind: llm, role: leader, prompt: \"Say hello about {{ input.topic }}\", writes: reply}
  loud: {kind: transform, set: {shout: \"state.reply | upper\"}}
edges:
  - {from: START, to: ask}
  - {from: ask, to: loud}
output:
  reply: state.reply
  shout: state.shout
";

const PLAIN: &str = "name: plain
description: Doubles a number; no model.
input: {type: object, required: [n], properties: {n: {type: integer}}}
channels:
  doubled: {}
nodes:
  double: {kind: transform, set: {doubled: \"input.n * 2\"}}
edges:
  - {from: START, to: double}
output:
  doubled: state.doubled
";

const ASKING: &str = "name: asking
description: Asks two questions and adds the answers.
channels:
  first: {}
  second: {}
nodes:
  first: {kind: interrupt, prompt: \"First number?\", schema: {type: integer}, writes: first}
  second: {kind: interrupt, prompt: \"Second number?\", schema: {type: integer}, writes: second}
edges:
  - {from: START, to: first}
  - {from: first, to: second}
output:
  sum: state.first + state.second
";

const SLEEPY: &str = "name: sleepy
description: Sleeps for `ms` milliseconds.
input: {type: object, required: [ms], properties: {ms: {type: integer, minimum: 0}}}
channels:
  slept: {}
nodes:
  nap: {kind: builtin, name: sleep, with: {ms: input.ms}, writes: slept}
edges:
  - {from: START, to: nap}
";

/// The venv `.ci/install-mcp-sdk` makes (or `AO_MCP_VENV`).
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("AO_MCP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcp-venv"));
    venv.join("bin/python")
}

fn python3_present() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn project(stub: &StubModel) -> Project {
    let mut p = Project::new().with_leader(stub, "sk-mcp-test-key-0001");
    p.set_env("MCP_SERVER_NAME", "ao-under-test");
    p.set_env("MCP_SERVER_VERSION", "9.8.7");
    let state = p.path().join(".ao").display().to_string();
    p.set_env("AO_STATE_DIR", &state);
    p.write("workflows/stubbed.yaml", STUBBED);
    p.write("workflows/plain.yaml", PLAIN);
    p.write("workflows/asking.yaml", ASKING);
    p.write("workflows/sleepy.yaml", SLEEPY);
    p
}

/// Runs the client script in `mode`; returns the summary it prints last.
fn drive(p: &Project, mode: &str) -> Value {
    let python = venv_python();
    assert!(
        python.exists(),
        "the Python MCP SDK is not installed at {}: run `.ci/install-mcp-sdk` (part of `.ci/run`) first",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    // The script passes the variables `ao` needs to the server it spawns.
    let mut cmd = p.spawn(&[]);
    let ao = cmd.get_program().to_owned();
    cmd = {
        let mut c = Command::new(&python);
        c.arg(&script).arg(&ao).arg(p.path()).arg(mode);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.current_dir(p.path());
        c
    };
    let out = cmd.output().expect("run the MCP client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the MCP client ({mode}) failed:\n{stdout}\nstderr:\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no summary line ({e}): {last}"))
}

fn run_status(p: &Project, run_id: &str) -> Value {
    let (code, v) = p.json(&["runs", "show", run_id, "--json"]);
    assert_eq!(code, 0, "{v}");
    v
}

fn check_with_the_cli(p: &Project, summary: &Value) {
    let id = |k: &str| {
        summary[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {summary}"))
            .to_string()
    };
    // Runs started over MCP are in the same store as the CLI's.
    let (code, listed) = p.json(&["runs", "list", "--json", "--limit", "100"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    for k in [
        "completed",
        "plain",
        "answered",
        "cancelled_by_request",
        "cancelled",
    ] {
        assert!(
            ids.contains(&id(k).as_str()),
            "{k} missing from `ao runs list`: {listed}"
        );
    }
    assert_eq!(run_status(p, &id("completed"))["status"], "completed");
    assert_eq!(run_status(p, &id("answered"))["output"]["sum"], 3);
    // The run cancelled through the protocol shows as cancelled, by the MCP client.
    let cancelled = run_status(p, &id("cancelled_by_request"));
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let message = cancelled["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cancelled by mcp client"), "{message}");
    // The run left going when the client disconnected was stopped, and can be resumed.
    let left = id("left_running");
    wait_for(
        "the disconnected run to stop",
        Duration::from_secs(20),
        || run_status(p, &left)["status"] != "running",
    );
    let stopped = run_status(p, &left);
    assert_eq!(stopped["status"], "failed", "{stopped}");
    assert_eq!(stopped["error"]["kind"], "stopped", "{stopped}");
    let message = stopped["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("mcp client disconnected"), "{message}");
}

fn mcp_client_test(mode: &str) {
    if !python3_present() {
        eprintln!("SKIPPED: python3 is not installed, so the MCP client tests cannot run");
        return;
    }
    let stub = StubModel::replying("stub says hello");
    let p = project(&stub);
    let summary = drive(&p, mode);
    check_with_the_cli(&p, &summary);
    assert!(
        stub.count() >= 1,
        "the model workflow called the stub model"
    );
}

#[test]
fn a_real_mcp_client_in_legacy_mode() {
    mcp_client_test("legacy");
}

#[test]
fn a_real_mcp_client_in_2026_07_28_mode() {
    mcp_client_test("2026-07-28");
}

#[test]
fn list_tools_names_titles_and_annotations() {
    let p = Project::new();
    let (code, out, err) = p.run(&["mcp", "list-tools"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TOOL"), "{out}");
    assert_eq!(lines.len(), 20, "{out}");
    assert!(
        lines[2].starts_with("ao_run_workflow")
            && lines[2].contains("Run a workflow")
            && lines[2].ends_with("yes"),
        "{}",
        lines[2]
    );
    let (code, all) = p.json(&["mcp", "list-tools", "--json"]);
    assert_eq!(code, 0);
    let tools = all["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 19);
    for t in tools {
        assert!(t["inputSchema"]["properties"].is_object() || t["inputSchema"]["type"] == "object");
        assert!(t["outputSchema"].is_object(), "{t}");
        assert!(t["annotations"]["readOnlyHint"].is_boolean(), "{t}");
    }
    // Read-only: only the tools that change nothing.
    let (_, ro) = p.json(&["mcp", "list-tools", "--json", "--read-only"]);
    let ro = ro["tools"].as_array().unwrap();
    assert_eq!(ro.len(), 11);
    assert!(ro.iter().all(|t| t["annotations"]["readOnlyHint"] == true));
    // The write ceiling shows in ao_run_workflow's destructiveHint.
    let destructive = |args: &[&str]| {
        let (_, v) = p.json(args);
        v["tools"][1]["annotations"]["destructiveHint"].clone()
    };
    assert_eq!(destructive(&["mcp", "list-tools", "--json"]), false);
    assert_eq!(
        destructive(&["mcp", "list-tools", "--json", "--allow-apply"]),
        true
    );
}

#[test]
fn a_bad_read_only_flag_stops_the_server_with_a_configuration_error() {
    let mut p = Project::new();
    p.set_env("AO_MCP_READ_ONLY", "maybe");
    let (code, _, err) = p.run(&["mcp", "serve"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AO_MCP_READ_ONLY=maybe"), "{err}");
}

/// Raw JSON-RPC over the server's stdin/stdout, for what needs no client library.
struct Wire {
    child: std::process::Child,
    out: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Wire {
    fn start(p: &Project) -> Wire {
        let mut child = p
            .spawn(&["mcp", "serve"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let mut wire = Wire { child, out };
        wire.send(&serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "wire", "version": "0"}}}));
        wire.answer(0);
        wire.send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        wire
    }

    fn send(&mut self, msg: &Value) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// The response to request `id` (every line on stdout must be a JSON-RPC message).
    fn answer(&mut self, id: u64) -> Value {
        loop {
            let line = self.out.next().expect("a response").unwrap();
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout holds only protocol messages ({e}): {line}"));
            assert_eq!(msg["jsonrpc"], "2.0", "{line}");
            if msg["id"] == id {
                return msg;
            }
        }
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.send(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": args}}),
        );
        self.answer(id)
    }
}

#[test]
fn sigterm_stops_the_runs_still_going_and_leaves_them_resumable() {
    let p = Project::new();
    p.write("workflows/sleepy.yaml", SLEEPY);
    let mut wire = Wire::start(&p);
    let started = wire.call(
        1,
        "ao_run_workflow",
        serde_json::json!({"workflow": "sleepy", "input": {"ms": 60000}}),
    );
    let run = &started["result"]["structuredContent"]["run"];
    assert_eq!(run["status"], "running", "{started}");
    let run_id = run["run_id"].as_str().unwrap().to_string();
    // SAFETY: sending a signal to our own child process by its pid.
    unsafe {
        libc::kill(wire.child.id() as i32, libc::SIGTERM);
    }
    // `wait` would close the server's stdin first, racing the signal with an end of input:
    // keep it open until the server has exited.
    let _stdin = wire.child.stdin.take();
    let status = wire.child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut wire.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("stopped run {run_id}")),
        "{stderr}"
    );
    let shown = run_status(&p, &run_id);
    assert_eq!(shown["status"], "failed", "{shown}");
    assert_eq!(shown["error"]["kind"], "stopped", "{shown}");
    assert!(
        shown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SIGTERM"),
        "{shown}"
    );
    // Not final: it could be resumed; here it is cancelled, which a stopped run allows.
    let (code, _, err) = p.run(&["runs", "cancel", &run_id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(run_status(&p, &run_id)["status"], "cancelled");
}

/// The built-in workflow tools do the workflows' real work: what the caller gives reaches the
/// model, the model's answer is the typed output, and a dry-run fix is a changeset that
/// `ao_get_changeset` shows while the tree stays as it was.
#[test]
fn the_builtin_workflow_tools_do_the_real_work() {
    use ao_testkit::{completion, tool_calls};
    use serde_json::json;
    let stub = StubModel::start(|req: &Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let all = req.to_string();
        let told = req["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool");
        let reply = if system.contains("careful code reviewer") || system.contains("merge reviews")
        {
            let risk = if all.contains("DIFF_MARKER_RISKY") || all.contains("reviewed (high)") {
                "high"
            } else {
                "low"
            };
            json!({"summary": format!("reviewed ({risk})"), "architecture_impact": "none", "must_fix": [], "should_fix": [], "missing_tests": [], "risk_level": risk})
        } else if system.contains("break a goal into small steps") {
            json!({"summary": format!("PLAN for {}", if all.contains("GOAL_MARKER") { "the goal" } else { "?" }), "steps": [
                {"id": "s1", "title": "do it", "description": "d", "task_type": "codegen", "depends_on": [], "acceptance_checks": []}], "risks": [], "validation": []})
        } else if system.contains("root cause") {
            json!({"root_cause": if all.contains("LOG_MARKER") { "the log says so" } else { "?" }, "evidence": [], "fix_plan": ["edit"]})
        } else if system.contains("You fix code") {
            if !told {
                return (
                    200,
                    tool_calls(&[(
                        "fs_write",
                        json!({"path": "src/x.rs", "content": "fixed\n"}),
                    )]),
                );
            }
            json!({"status": "done", "summary": "fixed", "files_touched": ["src/x.rs"], "confidence": "high", "notes": []})
        } else {
            json!({"decision": "approve", "reason": "ok", "revisions": [], "question": null})
        };
        (200, completion(&reply.to_string()))
    });
    let p = Project::new().with_leader(&stub, "sk-mcp-test-key-0002");
    p.write("src/x.rs", "broken\n");
    let mut wire = Wire::start(&p);
    let diff = "--- a/src/x.rs\n+++ b/src/x.rs\n@@ -1 +1 @@\n-broken\n+DIFF_MARKER_RISKY\n";
    let r = wire.call(
        1,
        "ao_review_diff",
        json!({"diff": diff, "fail_on": "high", "wait_seconds": 60}),
    );
    let out = &r["result"]["structuredContent"];
    assert_eq!(out["run"]["status"], "completed", "{r}");
    assert_eq!(out["run"]["output"]["risk_level"], "high", "{r}");
    assert_eq!(out["verdict"]["fails"], true, "{r}");

    let r = wire.call(
        2,
        "ao_plan",
        json!({"goal": "GOAL_MARKER", "wait_seconds": 60}),
    );
    let plan = &r["result"]["structuredContent"]["run"]["output"];
    assert_eq!(plan["summary"], "PLAN for the goal", "{r}");
    assert_eq!(plan["assignments"][0]["step_id"], "s1", "{r}");

    let r = wire.call(
        3,
        "ao_fix_error",
        json!({"log": "error: LOG_MARKER\n --> src/x.rs:1:1\n", "wait_seconds": 60}),
    );
    let run = &r["result"]["structuredContent"]["run"];
    assert_eq!(run["status"], "completed", "{r}");
    assert_eq!(run["output"]["root_cause"], "the log says so", "{r}");
    let id = run["run_id"].as_str().unwrap();
    let r = wire.call(4, "ao_get_changeset", json!({"run_id": id}));
    let text = r["result"]["structuredContent"].to_string();
    assert!(text.contains("+fixed"), "{r}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("src/x.rs")).unwrap(),
        "broken\n"
    );
}

/// A caller can cap what a run started over MCP may spend, like `--max-llm-calls` does.
#[test]
fn a_run_started_over_mcp_stops_at_the_budget_the_call_gave() {
    use serde_json::json;
    let stub = StubModel::replying("hello");
    let p = Project::new().with_leader(&stub, "sk-mcp-test-key-0003");
    p.write(
        "workflows/twice.yaml",
        "name: twice\nchannels:\n  a: {}\n  b: {}\nnodes:\n  one: {kind: llm, prompt: \"first\", writes: a}\n  two: {kind: llm, prompt: \"second\", writes: b}\nedges:\n  - {from: START, to: one}\n  - {from: one, to: two}\n",
    );
    let mut wire = Wire::start(&p);
    let r = wire.call(
        1,
        "ao_run_workflow",
        json!({"workflow": "twice", "max_llm_calls": 1, "wait_seconds": 60}),
    );
    let run = &r["result"]["structuredContent"]["run"];
    assert_eq!(run["status"], "failed", "{r}");
    assert_eq!(run["error"]["kind"], "budget_exceeded", "{r}");
    assert_eq!(stub.count(), 1, "the second call was never sent");
    // The caller raises its own cap on resume: the run finishes.
    let id = run["run_id"].as_str().unwrap().to_string();
    let r = wire.call(
        2,
        "ao_resume_run",
        json!({"run_id": id, "max_llm_calls": 5, "wait_seconds": 60}),
    );
    assert_eq!(
        r["result"]["structuredContent"]["run"]["status"], "completed",
        "{r}"
    );
    assert_eq!(stub.count(), 2);

    // The project's own limit is a ceiling a caller cannot raise, at start or on resume.
    p.write(
        "workflows/capped.yaml",
        "name: capped\nchannels:\n  a: {}\n  b: {}\nnodes:\n  one: {kind: llm, prompt: \"first\", writes: a}\n  two: {kind: llm, prompt: \"second\", writes: b}\nedges:\n  - {from: START, to: one}\n  - {from: one, to: two}\nlimits: {max_llm_calls: 1}\n",
    );
    let r = wire.call(
        3,
        "ao_run_workflow",
        json!({"workflow": "capped", "max_llm_calls": 100, "wait_seconds": 60}),
    );
    let run = &r["result"]["structuredContent"]["run"];
    assert_eq!(run["error"]["kind"], "budget_exceeded", "{r}");
    let id = run["run_id"].as_str().unwrap().to_string();
    let r = wire.call(
        4,
        "ao_resume_run",
        json!({"run_id": id, "max_llm_calls": 100, "wait_seconds": 60}),
    );
    let run = &r["result"]["structuredContent"]["run"];
    assert_eq!(run["error"]["kind"], "budget_exceeded", "{r}");
    assert_eq!(
        stub.count(),
        3,
        "one call for the capped run, never a second"
    );

    for (id, args) in [
        (5, json!({"goal": "g", "max_cost_usd": 0})),
        (6, json!({"goal": "g", "max_tokens": 0})),
    ] {
        let r = wire.call(id, "ao_plan", args);
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert!(r.to_string().contains("argument `max_"), "{r}");
    }
}
