//! `ao worker interview | list | profile` through the binary, against scripted stub endpoints
//! that look each case up by the prompt they receive and answer from its reference reply.

mod support;

use ao_orchestrator::interview::suite::Suite;
use ao_testkit::{StubModel, completion};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Project, wait_for};

/// What a scripted endpoint knows about the request it answers.
struct Ask<'a> {
    /// The case's id and its reference reply, found by the request's last user message.
    case: &'a str,
    reference: &'a Value,
    answerable: bool,
    output_schema: &'a Value,
    /// How many times this case was asked before (0 for the first ask).
    nth: usize,
}

type Script = dyn Fn(&Ask<'_>) -> String + Send + Sync;

struct Case {
    id: String,
    reference: Value,
    answerable: bool,
    output_schema: Value,
}

/// An endpoint answering every case of `suite` with `script`, after `delay`.
fn scripted(
    suite: &Suite,
    delay: Duration,
    script: impl Fn(&Ask<'_>) -> String + Send + Sync + 'static,
) -> StubModel {
    let mut by_prompt: HashMap<String, Case> = HashMap::new();
    for c in suite.cases() {
        let prompt = c
            .messages()
            .iter()
            .rev()
            .find(|m| m.role.as_str() == "user")
            .map(|m| m.content.clone())
            .unwrap();
        by_prompt.insert(
            prompt,
            Case {
                id: c.id().to_string(),
                reference: c.reference().cloned().unwrap_or(Value::Null),
                answerable: c.answerable(),
                output_schema: c.output_schema().clone(),
            },
        );
    }
    let asked: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let script: Arc<Script> = Arc::new(script);
    StubModel::start(move |req| {
        std::thread::sleep(delay);
        let prompt = req["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default();
        let Some(case) = by_prompt.get(prompt) else {
            return (200, completion("I do not know this question."));
        };
        let nth = {
            let mut asked = asked.lock().unwrap();
            let n = asked.entry(case.id.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let text = script(&Ask {
            case: &case.id,
            reference: &case.reference,
            answerable: case.answerable,
            output_schema: &case.output_schema,
            nth,
        });
        (200, completion(&text))
    })
}

fn builtin() -> Suite {
    Suite::builtin().unwrap()
}

fn correct(a: &Ask<'_>) -> String {
    a.reference.to_string()
}

/// `ao worker interview --provider openai-compatible --model MODEL --base-url STUB ARGS…`
fn interview(p: &Project, stub: &StubModel, model: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![
        "worker",
        "interview",
        "--provider",
        "openai-compatible",
        "--model",
        model,
        "--base-url",
        &stub.base_url,
    ];
    all.extend_from_slice(args);
    p.run(&all)
}

fn interview_json(p: &Project, stub: &StubModel, model: &str, args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = interview(p, stub, model, &[args, &["--json"]].concat());
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (code, v)
}

fn profiles_file(p: &Project) -> std::path::PathBuf {
    p.path().join(".ao/worker-profiles.json")
}

fn saved_ids(p: &Project) -> Vec<String> {
    let text = std::fs::read_to_string(profiles_file(p)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["worker_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_model_that_answers_every_case_correctly_is_active_saved_listed_and_shown() {
    let p = Project::new();
    let stub = scripted(&builtin(), Duration::ZERO, correct);
    let (code, run) = interview_json(&p, &stub, "good-model", &["--save"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["workflow"], "worker-interview");
    assert_eq!(run["status"], "completed");
    let profile = &run["output"];
    assert_eq!(profile["worker_id"], "openai-compatible:good-model");
    assert_eq!(profile["status"], "active", "{}", profile["reasons"]);
    assert_eq!(profile["metrics"]["correctness"], 1.0);
    assert_eq!(profile["routing_policy"]["allow_codegen"], true);
    assert_eq!(profile["suite"]["name"], "worker-interview");
    let host = stub
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    assert_eq!(profile["base_url_host"], host);
    // 29 cases × 3 trials, each asked once, and counted as the run's model calls.
    assert_eq!(stub.count(), 87);
    assert_eq!(run["usage"]["calls"], 87);
    assert_eq!(saved_ids(&p), ["openai-compatible:good-model"]);

    // An ordinary run: listed with the others.
    let (_, runs) = p.json(&["runs", "list", "--json"]);
    assert_eq!(runs["runs"][0]["workflow"], "worker-interview");
    assert_eq!(runs["runs"][0]["run_id"], run["run_id"]);

    // Listed and shown as saved.
    let (code, list) = p.json(&["worker", "list", "--json"]);
    assert_eq!(code, 0);
    let entry = &list["workers"][0];
    assert_eq!(entry["worker_id"], "openai-compatible:good-model");
    assert_eq!(entry["profile_state"], "current");
    assert_eq!(entry["configured"], false);
    assert_eq!(&entry["profile"], profile);
    let (code, shown) = p.json(&[
        "worker",
        "profile",
        "openai-compatible:good-model",
        "--json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(&shown, profile);

    let (code, text, _) = p.run(&["worker", "list"]);
    assert_eq!(code, 0);
    let line = text
        .lines()
        .find(|l| l.starts_with("openai-compatible:good-model"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("active") && line.contains("codegen"),
        "{line}"
    );
    let (code, text, _) = p.run(&["worker", "profile", "openai-compatible:good-model"]);
    assert_eq!(code, 0);
    assert!(
        text.starts_with("Worker openai-compatible:good-model: active\n"),
        "{text}"
    );
    assert!(!text.contains("failed onboarding evaluation"), "{text}");

    let (code, _, err) = p.run(&["worker", "profile", "nobody"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no saved profile for worker `nobody` (saved: openai-compatible:good-model)"),
        "{err}"
    );
}

#[test]
fn a_model_that_answers_in_prose_is_blocked_and_the_warning_block_is_printed() {
    let p = Project::new();
    let stub = scripted(&builtin(), Duration::ZERO, |a| {
        format!("Sure! For {} I think the answer is fine.", a.case)
    });
    let (code, out, err) = interview(&p, &stub, "chatty", &["--trials", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Worker openai-compatible:chatty: blocked"),
        "{out}"
    );
    assert!(
        out.contains("Worker openai-compatible:chatty failed onboarding evaluation.\n\nStatus: blocked\n\nReasons:\n"),
        "{out}"
    );
    assert!(
        out.contains("- structured-output: 3/3 replies were not valid JSON"),
        "{out}"
    );
    assert!(
        out.contains("Recommended action:\n- Do not assign tasks to this worker."),
        "{out}"
    );
    assert!(
        out.contains("not saved: interview again with --save"),
        "{out}"
    );
    assert!(!profiles_file(&p).exists());
}

/// The smallest instance of a schema: first enum value, empty lists, zeros, required keys.
fn minimal(schema: &Value) -> Value {
    if let Some(e) = schema.get("enum") {
        return e[0].clone();
    }
    if let Some(branches) = schema.get("anyOf") {
        return minimal(&branches[0]);
    }
    let ty = match schema.get("type") {
        Some(Value::Array(types)) => types[0].as_str().unwrap_or("null"),
        Some(Value::String(t)) => t.as_str(),
        _ => "null",
    };
    match ty {
        "object" => {
            let mut out = serde_json::Map::new();
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                out.insert(key.into(), minimal(&schema["properties"][key]));
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "string" if schema.get("pattern").is_some() => json!("2000-01-01"),
        "string" => json!("n/a"),
        "integer" | "number" => json!(0),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

#[test]
fn schema_valid_json_with_wrong_content_is_not_active() {
    let p = Project::new();
    let stub = scripted(&builtin(), Duration::ZERO, |a| {
        let mut v = minimal(a.output_schema);
        v["confidence"] = json!(0.9);
        v.to_string()
    });
    let (code, run) = interview_json(&p, &stub, "wrong", &["--trials", "1"]);
    assert_eq!(code, 0, "{run}");
    let profile = &run["output"];
    assert_eq!(profile["metrics"]["validity"], 1.0);
    assert_eq!(
        profile["metrics"]["schema_compliance"], 1.0,
        "{}",
        profile["reasons"]
    );
    assert!(profile["metrics"]["correctness"].as_f64().unwrap() < 0.4);
    assert_ne!(profile["status"], "active");
    assert_eq!(profile["routing_policy"]["allow_codegen"], false);
}

/// Correct, except that the first ask of the TypeScript type-guard case rewrites its code.
fn type_guard_rewritten(rewrite: fn(&str) -> String) -> impl Fn(&Ask<'_>) -> String {
    move |a| {
        let mut v = a.reference.clone();
        if a.case == "cg-ts-type-guard" && a.nth == 0 {
            let code = v["code"].as_str().unwrap().to_string();
            v["code"] = json!(rewrite(&code));
        }
        v.to_string()
    }
}

#[test]
fn typescript_using_any_as_a_type_is_denied_codegen_and_the_word_company_is_not() {
    let p = Project::new();
    let any = scripted(
        &builtin(),
        Duration::ZERO,
        type_guard_rewritten(|code| code.replace("(value: unknown)", "(value: any)")),
    );
    let (code, run) = interview_json(&p, &any, "any-user", &[]);
    assert_eq!(code, 0, "{run}");
    let profile = &run["output"];
    assert_eq!(profile["routing_policy"]["allow_codegen"], false);
    assert_eq!(profile["routing_policy"]["allow_patch"], false);
    let qualified = profile["qualified_task_types"].as_array().unwrap();
    assert!(!qualified.contains(&json!("codegen")), "{qualified:?}");
    assert!(qualified.contains(&json!("summarization")), "{qualified:?}");
    let reasons = profile["reasons"].to_string();
    assert!(
        reasons.contains("codegen: Generated code uses any as a type. (1/12 replies)"),
        "{reasons}"
    );

    let company = scripted(
        &builtin(),
        Duration::ZERO,
        type_guard_rewritten(|code| {
            format!(
                "// Works for any company: any team, any user.\n\
                 const company: string = \"any\";\n{code}"
            )
        }),
    );
    let (code, run) = interview_json(&p, &company, "company-user", &[]);
    assert_eq!(code, 0, "{run}");
    let profile = &run["output"];
    assert_eq!(profile["status"], "active", "{}", profile["reasons"]);
    assert_eq!(profile["routing_policy"]["allow_codegen"], true);
    assert!(
        profile["qualified_task_types"]
            .as_array()
            .unwrap()
            .contains(&json!("codegen"))
    );
}

#[test]
fn confidence_on_unanswerable_cases_is_named_and_scores_a_worse_brier_than_calibration() {
    let p = Project::new();
    let overconfident = scripted(&builtin(), Duration::ZERO, |a| {
        if a.answerable {
            a.reference.to_string()
        } else {
            json!({"answerable": true, "answer": "2023-06-01", "confidence": 0.95}).to_string()
        }
    });
    let calibrated = scripted(&builtin(), Duration::ZERO, correct);
    let (code, guess) = interview_json(&p, &overconfident, "guesser", &["--trials", "1"]);
    assert_eq!(code, 0, "{guess}");
    let (code, good) = interview_json(&p, &calibrated, "calibrated", &["--trials", "1"]);
    assert_eq!(code, 0, "{good}");
    let brier = |run: &Value| run["output"]["metrics"]["brier"].as_f64().unwrap();
    assert!(
        brier(&guess) > brier(&good),
        "{} vs {}",
        brier(&guess),
        brier(&good)
    );
    assert_ne!(guess["output"]["status"], "active");
    let reasons = guess["output"]["reasons"].to_string();
    assert!(
        reasons.contains(
            "confidence-calibration: Worker reported high confidence on an ambiguous task"
        ),
        "{reasons}"
    );
    assert!(
        !good["output"]["reasons"]
            .to_string()
            .contains("high confidence")
    );
}

/// A nine-case suite (one case per capability, two for calibration) whose answer is 42.
fn edge_suite() -> String {
    let mut s = String::from("name: edge\nversion: \"1\"\ncases:\n");
    let caps = [
        ("instruction-following", true),
        ("structured-output", true),
        ("summarization", true),
        ("log-analysis", true),
        ("code-understanding", true),
        ("codegen", true),
        ("review", true),
        ("confidence-calibration", true),
        ("confidence-calibration", false),
    ];
    for (i, (cap, answerable)) in caps.iter().enumerate() {
        s.push_str(&format!(
            "  - id: c{i}\n    capability: {cap}\n    answerable: {answerable}\n    messages:\n      \
             - {{role: user, content: 'Case {i}: reply {{\"answer\": 42, \"confidence\": 0.9}}.'}}\n    \
             output_schema:\n      type: object\n      required: [answer, confidence]\n      \
             properties:\n        answer: {{type: integer}}\n        confidence: {{type: number, \
             minimum: 0, maximum: 1}}\n    checks:\n      - {{at: /answer, equals: 42}}\n    \
             reference: {{answer: 42, confidence: 0.9}}\n"
        ));
    }
    s
}

/// The status of an interview on the edge suite, 10 trials (90 replies), with `prose` replies
/// in prose: all ten of case c0's first, then case c2's.
fn edge_status(p: &Project, suite_file: &std::path::Path, prose: usize) -> Value {
    let suite = Suite::from_file(suite_file).unwrap();
    let stub = scripted(&suite, Duration::ZERO, move |a| {
        // Cases c0 (instruction-following) and c2 (summarization): no structured output.
        let slot = ["c0", "c2"].iter().position(|c| *c == a.case);
        if slot.is_some_and(|s| s * 10 + a.nth < prose) {
            "forty-two".to_string()
        } else {
            a.reference.to_string()
        }
    });
    let (code, run) = interview_json(
        p,
        &stub,
        &format!("edge-{prose}"),
        &["--suite", suite_file.to_str().unwrap(), "--trials", "10"],
    );
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["output"]["suite"]["name"], "edge");
    run["output"].clone()
}

#[test]
fn the_validity_threshold_holds_at_its_edge_through_the_binary() {
    let p = Project::new();
    let file = p.write("edge-suite.yaml", &edge_suite());
    // 18 of 90 replies in prose: validity exactly 0.80, limited (not blocked).
    let at = edge_status(&p, &file, 18);
    assert_eq!(at["metrics"]["validity"], 0.8);
    assert_eq!(at["status"], "limited", "{}", at["reasons"]);
    // One more: 71/90, blocked.
    let below = edge_status(&p, &file, 19);
    assert_eq!(below["status"], "blocked", "{}", below["reasons"]);
    assert!(
        below["reasons"]
            .to_string()
            .contains("status blocked: validity 0.79 is below 0.80 (blocked)"),
        "{}",
        below["reasons"]
    );
}

#[test]
fn an_endpoint_that_is_down_exits_1_naming_it_and_saves_nothing() {
    let p = Project::new();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.write(
        "ao.toml",
        &format!(
            "[workers.down]\nprovider = \"openai-compatible\"\nmodel = \"m\"\n\
             base_url = \"http://127.0.0.1:{port}/v1\"\nmax_retries = 1\n"
        ),
    );
    let (code, out, err) = p.run(&[
        "worker",
        "interview",
        "--worker",
        "down",
        "--save",
        "--trials",
        "1",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let endpoint = format!("127.0.0.1:{port}");
    assert!(
        out.contains(&format!("interview failed: the endpoint {endpoint} failed 29 of 29 interview calls for worker down")),
        "{out}"
    );
    assert!(
        out.contains("this measures the endpoint, not the model"),
        "{out}"
    );
    assert!(out.contains("nothing was saved"), "{out}");
    assert!(!profiles_file(&p).exists());

    let (code, run) = p.json(&[
        "worker",
        "interview",
        "--worker",
        "down",
        "--save",
        "--trials",
        "1",
        "--json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["kind"], "endpoint");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&endpoint)
    );
    assert_eq!(run["output"], Value::Null);
    assert!(!profiles_file(&p).exists());
}

#[test]
fn an_endpoint_answering_500_to_everything_exits_1_after_the_retries_and_saves_nothing() {
    let p = Project::new();
    let stub = StubModel::start(|_| (500, json!({"error": {"message": "internal error"}})));
    let (code, out, err) = interview(&p, &stub, "broken", &["--save", "--trials", "1"]);
    assert_eq!(code, 1, "{out}{err}");
    let host = stub
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    assert!(
        out.contains(&format!("the endpoint {host} failed 29 of 29")),
        "{out}"
    );
    assert!(out.contains("server-error ×29"), "{out}");
    // Each case was asked once and retried by the model layer (3 retries by default).
    assert_eq!(stub.count(), 29 * 4);
    assert!(!profiles_file(&p).exists());
}

#[test]
fn two_concurrent_saves_both_end_up_in_the_file() {
    let p = Project::new();
    let stub = scripted(&builtin(), Duration::from_millis(20), correct);
    let spawn = |model: &str| {
        p.spawn(&[
            "worker",
            "interview",
            "--provider",
            "openai-compatible",
            "--model",
            model,
            "--base-url",
            &stub.base_url,
            "--save",
            "--trials",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let a = spawn("first");
    let b = spawn("second");
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let mut ids = saved_ids(&p);
    ids.sort();
    assert_eq!(ids, ["openai-compatible:first", "openai-compatible:second"]);
    let (_, list) = p.json(&["worker", "list", "--json"]);
    assert_eq!(list["workers"].as_array().unwrap().len(), 2);
}

#[test]
fn a_killed_interview_resumes_without_asking_finished_cases_again() {
    let p = Project::new();
    let stub = scripted(&builtin(), Duration::from_millis(300), correct);
    let mut child = p
        .spawn(&[
            "worker",
            "interview",
            "--provider",
            "openai-compatible",
            "--model",
            "slow",
            "--base-url",
            &stub.base_url,
            "--trials",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first round of eight has been answered and the second asked.
    wait_for("a round of answers", Duration::from_secs(30), || {
        stub.count() >= 12
    });
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let asked_before = stub.count();
    let run_id = p.wait_for_run();
    let finished = p
        .events(&run_id)
        .iter()
        .filter(|e| e["type"] == "task_finished" && e["node"] == "ask")
        .count();
    assert!((8..29).contains(&finished), "{finished} asks had finished");

    let (code, run) = p.json(&["runs", "resume", &run_id, "--json"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["state"]["records"].as_array().unwrap().len(), 29);
    assert_eq!(
        run["output"]["status"], "active",
        "{}",
        run["output"]["reasons"]
    );
    let asked_again = stub.count() - asked_before;
    assert!(
        asked_again <= 29 - finished,
        "{asked_again} asks after the resume, but only {} cases were unfinished",
        29 - finished
    );
    assert!(asked_again > 0);
}

#[test]
fn a_bad_request_exits_2_before_any_run_and_the_key_never_reaches_the_store() {
    let mut p = Project::new();
    let stub = scripted(&builtin(), Duration::ZERO, correct);
    let (code, _, err) = p.run(&["worker", "interview", "--provider", "ollama"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = p.run(&[
        "worker",
        "interview",
        "--worker",
        "w",
        "--provider",
        "ollama",
        "--model",
        "m",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = p.run(&["worker", "interview", "--worker", "nobody"]);
    assert_eq!(code, 2);
    assert!(err.contains("no worker `nobody` is configured"), "{err}");
    let (code, _, err) = interview(&p, &stub, "m", &["--api-key-env", "NOT_SET_ANYWHERE"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("NOT_SET_ANYWHERE") && err.contains("no such variable"),
        "{err}"
    );
    let (code, _, err) = interview(&p, &stub, "m", &["--trials", "0"]);
    assert_eq!(code, 2, "{err}");
    let bad = p.write(
        "bad-suite.yaml",
        "name: x\nversion: \"1\"\ncases: []\nextra: 1\n",
    );
    let (code, _, err) = interview(&p, &stub, "m", &["--suite", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad-suite.yaml:"), "{err}");
    let (_, runs) = p.json(&["runs", "list", "--json"]);
    assert_eq!(runs["runs"], json!([]), "nothing ran");
    assert_eq!(stub.count(), 0);

    // A key named by its variable (a name no redaction rule knows) is sent, and is nowhere
    // in the state dir.
    let secret = "sk-interview-secret-0123456789";
    p.set_env("ENDPOINT_CREDENTIAL", secret);
    let (code, run) = interview_json(
        &p,
        &stub,
        "keyed",
        &[
            "--api-key-env",
            "ENDPOINT_CREDENTIAL",
            "--trials",
            "1",
            "--save",
        ],
    );
    assert_eq!(code, 0, "{run}");
    let bearer = format!("Bearer {secret}");
    assert!(
        stub.authorizations()
            .iter()
            .all(|a| a.as_deref() == Some(bearer.as_str()))
    );
    assert!(!run.to_string().contains(secret));
    assert_eq!(
        run["state"]["plan"]["endpoint"]["ad_hoc"]["api_key_env"],
        "ENDPOINT_CREDENTIAL"
    );
    for (path, bytes) in support::files_under(&p.path().join(".ao")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "the key is in {}",
            path.display()
        );
    }
}
