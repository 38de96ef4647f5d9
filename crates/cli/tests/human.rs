//! What a person reads: the event timeline, usage in `runs show`, tool arguments, a file read
//! as text, the step a run failed in. Pinned with insta (ids, times and durations redacted).

mod support;

use ao_testkit::StubModel;
use support::Project;

macro_rules! snap {
    ($name:expr, $value:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "[RUN_ID]");
        settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[TIME]");
        settings.add_filter(r"(?m)^ *\d+\.\d{3}s", "[T]");
        settings.add_filter(r"in \d+ ms", "in [N] ms");
        settings.add_filter(r"/tmp/[^\s:]+/", "[DIR]/");
        settings.bind(|| insta::assert_snapshot!($name, $value));
    }};
}

const ASK: &str = "name: ask\nchannels:\n  answer: {}\n  ok: {}\nnodes:\n  think: {kind: llm, prompt: \"Say hi.\", writes: answer}\n  confirm: {kind: interrupt, prompt: \"Keep {{ state.answer }}?\", schema: {type: boolean}, writes: ok}\nedges:\n  - {from: START, to: think}\n  - {from: think, to: confirm}\n";

#[test]
fn the_event_timeline_and_usage_read_as_text() {
    let stub = StubModel::replying("hi there");
    let p = Project::new().with_leader(&stub, "sk-human-test-0001");
    p.write("workflows/ask.yaml", ASK);
    let (code, v) = p.json(&["run", "ask", "--json"]);
    assert_eq!(code, 3, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let (code, _, stderr) = p.run(&["runs", "resume", &id, "--answer", "true"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, timeline, _) = p.run(&["runs", "events", &id]);
    assert_eq!(code, 0);
    snap!("events_timeline", timeline);

    // `--json` is one document; `--jsonl` one event per line.
    let (code, doc) = p.json(&["runs", "events", &id, "--json"]);
    assert_eq!(code, 0);
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events.first().unwrap()["type"], "run_started");
    let (_, lines, _) = p.run(&["runs", "events", &id, "--jsonl"]);
    assert_eq!(lines.lines().count(), events.len());

    let (code, shown, _) = p.run(&["runs", "show", &id]);
    assert_eq!(code, 0);
    assert!(
        shown.contains("usage: 1 model call, 11 tokens in, 7 out"),
        "{shown}"
    );
}

#[test]
fn tools_list_names_the_arguments_and_a_read_prints_the_file() {
    let p = Project::new();
    let (code, list, _) = p.run(&["tools", "list"]);
    assert_eq!(code, 0);
    snap!("tools_list", list);
    p.write("notes.md", "# Notes\nline two\n");
    let (code, out, _) = p.run(&[
        "tools",
        "run",
        "fs.read",
        "--args",
        "{\"path\": \"notes.md\"}",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("# Notes\nline two\n"),
        "the text itself: {out}"
    );
    assert!(!out.contains("\\n"), "not a JSON string: {out}");
}

#[test]
fn a_run_that_fails_says_in_which_step() {
    let p = Project::new();
    p.write(
        "workflows/bad.yaml",
        "name: bad\nchannels:\n  a: {}\nnodes:\n  first: {kind: transform, set: {a: \"1 // 0\"}}\nedges:\n  - {from: START, to: first}\n",
    );
    let (code, out, _) = p.run(&["run", "bad"]);
    assert_eq!(code, 1);
    assert!(out.contains("failed in step 1"), "{out}");
    assert!(!out.contains("after 0 steps"), "{out}");
}
