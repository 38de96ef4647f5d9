//! Record and replay: `--record FILE` writes a run's model calls to a cassette, `--replay FILE`
//! answers them from it with no model (the stub is stopped), a changed prompt fails naming its
//! node, `--replay-miss live` sends only the calls the cassette does not answer, `ao runs
//! export` makes the same cassette from the store, and a bad or hostile cassette is a clear
//! error that can do no more than a model's reply.

mod support;

use ao_testkit::{StubModel, completion, tool_calls};
use serde_json::{Value, json};
use support::Project;

const KEY: &str = "sk-replay-test-key-0042";

/// Three calls: `facts`, then `summarise` (text, with a system prompt) and `title` (structured,
/// its prompt quoting the API key, which must be redacted everywhere) side by side.
fn digest() -> String {
    format!(
        "name: digest\nchannels:\n  facts: {{}}\n  summary: {{}}\n  title: {{}}\nnodes:\n  facts: {{kind: llm, prompt: \"List facts about {{{{ input.topic }}}}\", writes: facts}}\n  summarise: {{kind: llm, system: \"Be brief.\", prompt: \"Summarise: {{{{ state.facts }}}}\", writes: summary}}\n  title:\n    kind: llm\n    prompt: \"A title for {{{{ input.topic }}}} (ignore {KEY})\"\n    output: {{schema: {{type: object, required: [title], properties: {{title: {{type: string}}}}}}}}\n    writes: title\nedges:\n  - {{from: START, to: facts}}\n  - {{from: facts, to: summarise}}\n  - {{from: facts, to: title}}\noutput: {{summary: state.summary, title: state.title}}\n"
    )
}

/// Answers by what is asked: a JSON title, or the prompt echoed.
fn stub() -> StubModel {
    StubModel::start(|req: &Value| {
        let prompt = last_user(req);
        if prompt.starts_with("A title") {
            (200, completion("{\"title\": \"On tides\"}"))
        } else {
            (200, completion(&format!("answer to: {prompt}")))
        }
    })
}

fn last_user(req: &Value) -> String {
    req["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn project(stub: &StubModel) -> Project {
    let p = Project::new().with_leader(stub, KEY);
    p.write("workflows/digest.yaml", &digest());
    p
}

fn read_json(p: &Project, rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p.path().join(rel)).unwrap()).unwrap()
}

#[test]
fn a_recorded_run_replays_with_the_model_stopped() {
    let stub = stub();
    let p = project(&stub);
    let (code, recorded) = p.json(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--record",
        "digest.cassette.json",
        "--json",
    ]);
    assert_eq!(code, 0, "{recorded}");
    assert_eq!(stub.count(), 3);
    assert_eq!(recorded["output"]["title"], json!({"title": "On tides"}));

    let text = std::fs::read_to_string(p.path().join("digest.cassette.json")).unwrap();
    assert!(!text.contains(KEY), "the API key reached the cassette");
    assert!(
        !text.to_ascii_lowercase().contains("bearer") && !text.contains("uthorization"),
        "no header is recorded"
    );
    let cassette: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cassette["ao_cassette"], 1);
    let mut nodes: Vec<&str> = cassette["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["facts", "summarise", "title"]);
    assert!(
        cassette["calls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["request_sha256"].as_str().unwrap().len() == 64
                && c["exchanges"].as_array().unwrap().len() == 1),
        "{cassette}"
    );

    stub.stop();
    let (code, replayed) = p.json(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--replay",
        "digest.cassette.json",
        // A replayed call spends nothing: a budget of one request does not stop three.
        "--max-llm-calls",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{replayed}");
    assert_eq!(replayed["output"], recorded["output"]);
    assert_eq!(stub.count(), 3, "nothing was sent");
    assert_eq!(replayed["usage"]["replayed"], 3, "{replayed}");
    assert_eq!(
        replayed["usage"]["calls"], 0,
        "a replayed call spends nothing"
    );
    assert_eq!(replayed["usage"]["by_node"]["title"]["replayed"], 1);
    let id = replayed["run_id"].as_str().unwrap();
    let marked = p
        .events(id)
        .iter()
        .filter(|e| e["type"] == "llm_call" && e["replayed"] == true)
        .count();
    assert_eq!(marked, 3, "each replayed call is marked in the events");
    // Recorded like a live one: its exchanges are kept with the run, marked.
    let (code, v) = p.json(&["runs", "show", id, "--exchanges", "--json"]);
    assert_eq!(code, 0);
    let exchanges = v["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 3);
    assert!(
        exchanges.iter().all(|e| e["data"]["replayed"] == true),
        "{v}"
    );
    let (code, human, _) = p.run(&["runs", "show", id]);
    assert_eq!(code, 0);
    assert!(
        human.contains("3 calls answered from the cassette"),
        "{human}"
    );
}

#[test]
fn a_changed_prompt_fails_naming_its_node_and_live_misses_send_only_that_call() {
    let recording = stub();
    let mut p = project(&recording);
    let (code, recorded) = p.json(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--record",
        "c.json",
        "--json",
    ]);
    assert_eq!(code, 0, "{recorded}");
    recording.stop();
    p.write(
        "workflows/digest.yaml",
        &digest().replace("Summarise: ", "Summarise in one line: "),
    );
    let (code, v) = p.json(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--replay",
        "c.json",
        "--json",
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "replay_mismatch", "{v}");
    assert_eq!(v["error"]["node"], "summarise", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the prompt changed (message 2 differs")
            && message.contains("in one line")
            && message.contains("c.json"),
        "{message}"
    );
    let (code, human, _) = p.run(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--replay",
        "c.json",
    ]);
    assert_eq!(code, 1);
    assert!(
        human.contains("node `summarise`: the prompt changed")
            && human.contains("--replay-miss live"),
        "{human}"
    );

    // Misses go live: only the changed node's call reaches the (new) model.
    let live = stub();
    p.set_env("LEADER_MODEL_BASE_URL", &live.base_url);
    let (code, v) = p.json(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--replay",
        "c.json",
        "--replay-miss",
        "live",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(live.count(), 1, "only the changed call was sent");
    assert!(last_user(&live.requests()[0]).starts_with("Summarise in one line: "));
    assert_eq!(v["output"]["title"], recorded["output"]["title"]);
    assert_eq!(v["usage"]["calls"], 1);
    assert_eq!(v["usage"]["replayed"], 2);
    let id = v["run_id"].as_str().unwrap();
    let warned: Vec<String> = p
        .events(id)
        .iter()
        .filter(|e| e["type"] == "warning" && e["node"] == "summarise")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        warned.len() == 1
            && warned[0].contains("does not answer this call")
            && warned[0].contains("sent to the model"),
        "{warned:?}"
    );
}

/// A fan-out of three `llm` tasks and a node that reads a file through a tool call, then
/// answers.
const AGENT: &str = "name: agent\nchannels:\n  items: {reducer: append}\n  answer: {}\nnodes:\n  each: {kind: llm, for_each: \"range(3)\", prompt: \"item {{ item }}\", writes: items}\n  reader:\n    kind: llm\n    prompt: \"What do the notes say?\"\n    tools: [fs.read]\n    writes: answer\nedges:\n  - {from: START, to: each}\n  - {from: START, to: reader}\noutput: {items: state.items, answer: state.answer}\n";

fn agent_stub() -> StubModel {
    StubModel::start(|req: &Value| {
        let messages = req["messages"].as_array().cloned().unwrap_or_default();
        let tool_result = messages
            .iter()
            .find(|m| m["role"] == "tool")
            .and_then(|m| m["content"].as_str())
            .map(str::to_string);
        match (req["tools"].is_array(), tool_result) {
            (_, Some(result)) => (200, completion(&format!("the tool said {result}"))),
            (true, None) => (
                200,
                tool_calls(&[("fs_read", json!({"path": "notes.txt"}))]),
            ),
            (false, None) => (200, completion(&format!("answer to: {}", last_user(req)))),
        }
    })
}

#[test]
fn fan_out_and_tool_rounds_replay_by_node_task_and_round() {
    let stub = agent_stub();
    let p = Project::new().with_leader(&stub, KEY);
    p.write("workflows/agent.yaml", AGENT);
    p.write("notes.txt", "tides follow the moon\n");
    let (code, recorded) = p.json(&["run", "agent", "--record", "a.json", "--json"]);
    assert_eq!(code, 0, "{recorded}");
    assert_eq!(stub.count(), 5, "three tasks, two rounds of the reader");
    assert!(
        recorded["output"]["answer"]
            .as_str()
            .unwrap()
            .contains("tides follow the moon"),
        "{recorded}"
    );
    let cassette = read_json(&p, "a.json");
    let keys: Vec<(String, Value, u64)> = cassette["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["node"].as_str().unwrap().to_string(),
                c["index"].clone(),
                c["round"].as_u64().unwrap(),
            )
        })
        .collect();
    for i in 0..3 {
        assert!(keys.contains(&("each".into(), json!(i), 0)), "{keys:?}");
    }
    assert!(
        keys.contains(&("reader".into(), Value::Null, 0)),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("reader".into(), Value::Null, 1)),
        "{keys:?}"
    );

    stub.stop();
    let (code, replayed) = p.json(&["run", "agent", "--replay", "a.json", "--json"]);
    assert_eq!(code, 0, "{replayed}");
    assert_eq!(replayed["output"], recorded["output"]);
    assert_eq!(replayed["usage"]["replayed"], 5);
    // The recorded tool call ran again, through the policy gate.
    let id = replayed["run_id"].as_str().unwrap();
    let decisions: Vec<Value> = p
        .events(id)
        .into_iter()
        .filter(|e| e["type"] == "tool_call")
        .collect();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["tool"], "fs.read");
    assert_eq!(decisions[0]["decision"], "allowed");

    // The file changed: the tool's result differs from the recorded one, so the second round
    // of the reader is not the recorded call.
    p.write("notes.txt", "tides are slow\n");
    let (code, v) = p.json(&["run", "agent", "--replay", "a.json", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "replay_mismatch");
    assert_eq!(v["error"]["node"], "reader");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a tool result changed (message 3 differs") && message.contains("round 1"),
        "{message}"
    );
}

#[test]
fn export_makes_the_recorded_cassette_from_any_stored_run() {
    let stub = agent_stub();
    let p = Project::new().with_leader(&stub, KEY);
    p.write("workflows/agent.yaml", AGENT);
    p.write("notes.txt", "tides follow the moon\n");
    let (code, v) = p.json(&["run", "agent", "--record", "rec.json", "--json"]);
    assert_eq!(code, 0, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let (code, out, err) = p.run(&["runs", "export", &id, "--cassette", "exp.json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote 5 model calls"), "{out}");
    assert_eq!(read_json(&p, "exp.json"), read_json(&p, "rec.json"));

    // A replayed run exports the same calls: it was recorded like a live one.
    stub.stop();
    let (code, v) = p.json(&["run", "agent", "--replay", "exp.json", "--json"]);
    assert_eq!(code, 0, "{v}");
    let replayed = v["run_id"].as_str().unwrap().to_string();
    let (code, _, err) = p.run(&["runs", "export", &replayed, "--cassette", "again.json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        read_json(&p, "again.json")["calls"],
        read_json(&p, "rec.json")["calls"]
    );

    let (code, v) = p.json(&["schema", "cassette"]);
    assert_eq!(code, 0);
    assert!(
        v["properties"]["calls"].is_object() && v["$defs"]["CallRequest"].is_object(),
        "{v}"
    );
    let (code, _, err) = p.run(&["runs", "export", "nope", "--cassette", "x.json"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_bad_or_hostile_cassette_is_a_clear_error_and_does_no_more_than_a_model() {
    let stub = stub();
    let p = project(&stub);
    let (code, v) = p.json(&[
        "run",
        "digest",
        "--input",
        "topic=tides",
        "--record",
        "good.json",
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    stub.stop();
    let run = |file: &str| {
        p.json(&[
            "run",
            "digest",
            "--input",
            "topic=tides",
            "--replay",
            file,
            "--json",
        ])
    };

    // Not JSON: the file and the position, nothing runs.
    p.write(
        "broken.json",
        "{\n  \"ao_cassette\": 1,\n  \"calls\": [oops]\n}\n",
    );
    let (code, v) = run("broken.json");
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "invalid_cassette");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("broken.json: 3:"), "{message}");
    p.write("future.json", "{\"ao_cassette\": 7, \"calls\": []}");
    let (code, v) = run("future.json");
    assert_eq!(code, 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 7"),
        "{v}"
    );
    let (code, v) = run("missing.json");
    assert_eq!(code, 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.json"),
        "{v}"
    );

    // An answer that breaks the node's output schema is refused like a model's would be.
    let mut cassette = read_json(&p, "good.json");
    let title = cassette["calls"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["node"] == "title")
        .unwrap();
    title["reply"] = json!({"answer": {"title": 42}});
    p.write("bad-answer.json", &cassette.to_string());
    let (code, v) = run("bad-answer.json");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "invalid_cassette", "{v}");
    assert_eq!(v["error"]["node"], "title");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match the node's output schema"),
        "{v}"
    );

    // Tool calls for a node that offers no tools are refused: no tool runs.
    let mut cassette = read_json(&p, "good.json");
    let facts = cassette["calls"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["node"] == "facts")
        .unwrap();
    facts["reply"] = json!({"tool_calls": {"calls": [{"id": "x", "name": "cmd_run", "arguments": "{\"argv\": [\"touch\", \"pwned\"]}"}]}});
    p.write("tools.json", &cassette.to_string());
    let (code, v) = run("tools.json");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "invalid_cassette", "{v}");
    assert!(!p.path().join("pwned").exists());
    let id = v["run_id"].as_str().unwrap();
    assert!(
        !p.events(id).iter().any(|e| e["type"] == "tool_call"),
        "no tool was called"
    );

    // An edited request no longer matches its hash: refused before anything runs.
    let text = std::fs::read_to_string(p.path().join("good.json")).unwrap();
    p.write(
        "edited.json",
        &text.replace("List facts about", "List lies about"),
    );
    let (code, v) = run("edited.json");
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("edited"),
        "{v}"
    );
}

/// A call, a question to a person, another call.
const ASK: &str = "name: ask\nchannels:\n  draft: {}\n  ok: {}\n  final: {}\nnodes:\n  draft: {kind: llm, prompt: \"draft\", writes: draft}\n  confirm: {kind: interrupt, prompt: \"keep it?\", schema: {type: boolean}, writes: ok}\n  final: {kind: llm, prompt: \"final after {{ state.ok }}\", writes: final}\nedges:\n  - {from: START, to: draft}\n  - {from: draft, to: confirm}\n  - {from: confirm, to: final}\noutput: {final: state.final}\n";

#[test]
fn a_resumed_run_records_and_replays_across_its_processes() {
    let stub =
        StubModel::start(|req: &Value| (200, completion(&format!("re: {}", last_user(req)))));
    let p = Project::new().with_leader(&stub, KEY);
    p.write("workflows/ask.yaml", ASK);
    let (code, v) = p.json(&["run", "ask", "--record", "ask.json", "--json"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(
        read_json(&p, "ask.json")["calls"].as_array().unwrap().len(),
        1
    );
    let id = v["run_id"].as_str().unwrap().to_string();
    let (code, recorded) = p.json(&[
        "runs", "resume", &id, "--answer", "true", "--record", "ask.json", "--json",
    ]);
    assert_eq!(code, 0, "{recorded}");
    assert_eq!(
        read_json(&p, "ask.json")["calls"].as_array().unwrap().len(),
        2
    );

    stub.stop();
    let (code, v) = p.json(&["run", "ask", "--replay", "ask.json", "--json"]);
    assert_eq!(code, 3, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let (code, v) = p.json(&[
        "runs", "resume", &id, "--answer", "true", "--replay", "ask.json", "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"], recorded["output"]);
    assert_eq!(stub.count(), 2);
}

#[test]
fn sub_runs_of_a_fan_out_replay_under_their_parent_task() {
    let stub =
        StubModel::start(|req: &Value| (200, completion(&format!("re: {}", last_user(req)))));
    let p = Project::new().with_leader(&stub, KEY);
    p.write(
        "workflows/outer.yaml",
        "name: outer\nchannels:\n  c: {reducer: append}\nnodes:\n  sub: {kind: workflow, workflow: child, for_each: \"range(2)\", input: {n: item}, writes: c}\nedges:\n  - {from: START, to: sub}\noutput: {c: state.c}\n",
    );
    p.write(
        "workflows/child.yaml",
        "name: child\ninput: {type: object, properties: {n: {}}}\nchannels:\n  x: {}\nnodes:\n  inner: {kind: llm, prompt: \"inner {{ input.n }}\", writes: x}\nedges:\n  - {from: START, to: inner}\noutput: state.x\n",
    );
    let (code, recorded) = p.json(&["run", "outer", "--record", "o.json", "--json"]);
    assert_eq!(code, 0, "{recorded}");
    let nodes: Vec<String> = read_json(&p, "o.json")["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes, ["sub[0]/inner", "sub[1]/inner"]);
    stub.stop();
    let (code, v) = p.json(&["run", "outer", "--replay", "o.json", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["output"], recorded["output"]);
    assert_eq!(v["usage"]["replayed"], 2, "{v}");
}
