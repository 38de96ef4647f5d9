//! A run belongs to the project it was made in: with a state dir shared between projects,
//! `ao apply`, `ao runs show --patch` and `ao runs resume` refuse a run of another root
//! unless told explicitly (`--other-root`).

mod support;

use support::Project;

const WRITE: &str = "name: write\nchannels:\n  w: {}\n  ok: {}\nnodes:\n  put: {kind: tool, tool: fs.write, args: {path: note.txt, content: \"from A\\n\"}, writes: w}\n  ask: {kind: interrupt, prompt: \"go on?\", schema: {type: boolean}, writes: ok}\nedges:\n  - {from: START, to: put}\n  - {from: put, to: ask}\n";

#[test]
fn a_run_of_another_project_is_refused_unless_asked_for() {
    let shared = tempfile::tempdir().unwrap();
    let mut a = Project::new();
    a.set_env("AO_STATE_DIR", shared.path().to_str().unwrap());
    let mut b = Project::new();
    b.set_env("AO_STATE_DIR", shared.path().to_str().unwrap());
    a.write("workflows/write.yaml", WRITE);

    let (code, v) = a.json(&["run", "write", "--json"]);
    assert_eq!(code, 3, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();

    // From B, the run is visible (one store) but not B's to resume, show as a patch or apply.
    let (code, _, stderr) = b.run(&["runs", "resume", &id, "--answer", "true"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("was made in the project at"), "{stderr}");
    assert!(stderr.contains("--other-root"), "{stderr}");
    let (code, v) = b.json(&["runs", "show", &id, "--patch", "--json"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "other_root");

    let (code, _, stderr) = a.run(&["runs", "resume", &id, "--answer", "true"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, v) = b.json(&["apply", &id, "--json"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "other_root");
    assert!(
        !b.path().join("note.txt").exists(),
        "nothing written into B"
    );

    // Said explicitly, the changes go where they were asked to.
    let (code, _, stderr) = b.run(&["apply", &id, "--other-root"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(b.path().join("note.txt")).unwrap(),
        "from A\n"
    );
    // In its own project, the run applies without being told anything.
    let (code, _, stderr) = a.run(&["apply", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(a.path().join("note.txt").exists());
}
