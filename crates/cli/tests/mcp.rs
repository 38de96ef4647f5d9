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
