//! Every value that leaves the process or enters the store passes the one redactor: a secret
//! assembled by expressions, given as an answer, or quoted in an error never appears in clear.

mod support;

use support::Project;

const SECRET: &str = "sk-assembled-0123456789";

fn store_bytes(p: &Project) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["runs.db", "runs.db-wal"] {
        if let Ok(bytes) = std::fs::read(p.path().join(".ao").join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_secret_assembled_by_an_expression_is_stored_and_shown_redacted() {
    let mut p = Project::new();
    p.set_env("DEPLOY_TOKEN", SECRET);
    p.write(
        "workflows/leak.yaml",
        "name: leak\nchannels:\n  c: {}\n  ok: {}\nnodes:\n  build: {kind: transform, set: {c: \"'sk-assem' ~ 'bled-0123456789'\"}}\n  ask: {kind: interrupt, prompt: \"{{ state.c }}?\", schema: {type: string}, writes: ok}\nedges:\n  - {from: START, to: build}\n  - {from: build, to: ask}\n",
    );
    let (code, stdout, stderr) = p.run(&["run", "leak", "--json"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(stdout.contains("[REDACTED]"), "{stdout}");
    let id = serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // An answer holding the secret is redacted too, and the answer is in the events.
    let answer = format!("\"{SECRET}\"");
    let (code, stdout, stderr) = p.run(&["runs", "resume", &id, "--answer", &answer, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    let events = p.events(&id);
    let answered: Vec<_> = events.iter().filter(|e| e["type"] == "answered").collect();
    assert_eq!(answered.len(), 1, "{events:?}");
    assert_eq!(answered[0]["answer"], "[REDACTED]");
    let (_, shown, _) = p.run(&["runs", "show", &id]);
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        !contains(&store_bytes(&p), SECRET),
        "the run store never holds the secret"
    );
}

#[test]
fn an_error_never_echoes_a_secret_argument() {
    let mut p = Project::new();
    p.set_env("DEPLOY_TOKEN", SECRET);
    let (code, stdout, stderr) = p.run(&["run", SECRET, "--json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(!stdout.contains(SECRET), "{stdout}");
}
