//! Runs that outlive their call: started in the background, long-polled, answered once per
//! request id, cancelled with a reason, stopped when the front end goes away; and the write
//! ceiling of a server.

use ao_core::config::{Config, ConfigInputs};
use ao_core::redact::Redactor;
use ao_core::run::RunStatus;
use ao_graph::{RunOptions, load_str};
use ao_orchestrator::{ErrorKind, Jobs, Modes, ResumeRequest, RootCheck, Service};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLEEPY: &str = "name: sleepy
input: {type: object, properties: {ms: {type: integer, minimum: 0}}, required: [ms]}
channels:
  slept: {}
nodes:
  nap: {kind: builtin, name: sleep, with: {ms: input.ms}, writes: slept}
edges:
  - {from: START, to: nap}
";

const ASKING: &str = "name: asking
channels:
  first: {}
  second: {}
nodes:
  one: {kind: interrupt, prompt: \"first?\", schema: {type: integer}, writes: first}
  two: {kind: interrupt, prompt: \"second?\", schema: {type: integer}, writes: second}
edges:
  - {from: START, to: one}
  - {from: one, to: two}
output:
  sum: state.first + state.second
";

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn service(dir: &Path) -> Service {
    let env = env(&[]);
    let config = Config::load(&ConfigInputs::new(dir).with_env(env.clone())).unwrap();
    let mut service = Service::open(dir, &dir.join(".ao")).unwrap();
    service
        .configure(
            &config,
            &env,
            false,
            Redactor::new(&env, Vec::<String>::new()),
        )
        .unwrap();
    service
}

fn wf(src: &str) -> Arc<ao_graph::Workflow> {
    Arc::new(load_str(src, "t.yaml").unwrap())
}

#[tokio::test]
async fn a_detached_run_is_stored_before_the_call_returns_and_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let run_id = service
        .start_detached(wf(SLEEPY), json!({"ms": 300}), RunOptions::default(), &jobs)
        .await
        .unwrap();
    // Visible at once, still running.
    assert_eq!(service.record(&run_id).unwrap().status, RunStatus::Running);
    assert_eq!(jobs.active(), vec![run_id.clone()]);
    // A short wait returns while it runs; a long one as soon as it ends.
    let short = service
        .wait_for_run(&run_id, Duration::from_millis(50), &jobs)
        .await
        .unwrap();
    assert_eq!(short.run.run.status, RunStatus::Running);
    assert!(!short.abandoned);
    let t = Instant::now();
    let done = service
        .wait_for_run(&run_id, Duration::from_secs(30), &jobs)
        .await
        .unwrap();
    assert_eq!(done.run.run.status, RunStatus::Completed);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(done.run.run.state["slept"], 300);
    assert!(jobs.active().is_empty());
}

#[tokio::test]
async fn a_bad_input_is_an_error_of_the_call_and_no_run_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let err = service
        .start_detached(
            wf(SLEEPY),
            json!({"ms": "soon"}),
            RunOptions::default(),
            &jobs,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(service.list(&Default::default()).unwrap().is_empty());
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_result_and_answers_once() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let run_id = service
        .start_detached(wf(ASKING), json!({}), RunOptions::default(), &jobs)
        .await
        .unwrap();
    let waited = service
        .wait_for_run(&run_id, Duration::from_secs(10), &jobs)
        .await
        .unwrap();
    assert_eq!(waited.run.run.status, RunStatus::Interrupted);
    let ask = |answer: i64, id: &'static str| {
        let service = service.clone();
        let jobs = jobs.clone();
        let run_id = run_id.clone();
        async move {
            service
                .resume_once(
                    ResumeRequest {
                        run_id: &run_id,
                        answer: Some(json!(answer)),
                        request_id: Some(id),
                        opts: RunOptions::default(),
                        root_check: RootCheck::SameRoot,
                        wait: Duration::from_secs(10),
                    },
                    &jobs,
                )
                .await
        }
    };
    let first = ask(1, "req-1").await.unwrap();
    assert!(!first.replayed);
    assert_eq!(first.run.run.status, RunStatus::Interrupted);
    assert_eq!(first.run.run.interrupt.as_ref().unwrap().node, "two");
    // The retry must not answer the second question with the first answer.
    let again = ask(1, "req-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.run, first.run);
    let now = service.view(&run_id).unwrap();
    assert_eq!(now.run.status, RunStatus::Interrupted);
    assert_eq!(now.run.interrupt.unwrap().node, "two");
    assert!(now.run.state["second"].is_null());
    // The same id with another answer is refused; a new id answers.
    let err = ask(5, "req-1").await.unwrap_err();
    assert!(err.to_string().contains("different answer"), "{err}");
    let second = ask(2, "req-2").await.unwrap();
    assert_eq!(second.run.run.status, RunStatus::Completed);
    assert_eq!(second.run.run.output, Some(json!({"sum": 3})));
}

#[tokio::test]
async fn a_request_id_whose_answer_was_refused_can_be_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let run_id = service
        .start_detached(wf(ASKING), json!({}), RunOptions::default(), &jobs)
        .await
        .unwrap();
    service
        .wait_for_run(&run_id, Duration::from_secs(10), &jobs)
        .await
        .unwrap();
    let request = |answer: serde_json::Value| ResumeRequest {
        run_id: &run_id,
        answer: Some(answer),
        request_id: Some("r"),
        opts: RunOptions::default(),
        root_check: RootCheck::SameRoot,
        wait: Duration::from_secs(10),
    };
    let err = service
        .resume_once(request(json!("one")), &jobs)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAnswer, "{err}");
    let ok = service.resume_once(request(json!(1)), &jobs).await.unwrap();
    assert!(!ok.replayed);
    assert_eq!(ok.run.run.interrupt.unwrap().node, "two");
}

#[tokio::test]
async fn cancel_run_records_who_and_why_and_stops_a_background_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let run_id = service
        .start_detached(
            wf(SLEEPY),
            json!({"ms": 60_000}),
            RunOptions::default(),
            &jobs,
        )
        .await
        .unwrap();
    let t = Instant::now();
    service
        .cancel_run(
            &run_id,
            "mcp client",
            Some("wrong goal"),
            Duration::from_secs(10),
            &jobs,
        )
        .await
        .unwrap();
    let run = service
        .wait_for_run(&run_id, Duration::from_secs(10), &jobs)
        .await
        .unwrap()
        .run
        .run;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(
        run.error.unwrap().message,
        "cancelled by mcp client: wrong goal"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn stop_all_leaves_background_runs_resumable_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let run_id = service
        .start_detached(
            wf(SLEEPY),
            json!({"ms": 60_000}),
            RunOptions::default(),
            &jobs,
        )
        .await
        .unwrap();
    let stopped = jobs
        .stop_all("mcp client disconnected", Duration::from_secs(10))
        .await;
    assert_eq!(stopped, vec![run_id.clone()]);
    let record = service.record(&run_id).unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    let error = record.error.unwrap();
    assert_eq!(error.kind, "stopped");
    assert!(
        error.message.contains("mcp client disconnected"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn the_write_ceiling_is_the_servers_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let base = Service::open(dir.path(), &dir.path().join(".ao")).unwrap();
    let redactor = || Redactor::new(&BTreeMap::new(), Vec::<String>::new());
    // Default: dry-run; a caller asking for writes is told how the operator allows them.
    let none = env(&[]);
    let config = Config::load(&ConfigInputs::new(dir.path()).with_env(none.clone())).unwrap();
    let modes = Modes::configure(&base, &config, &none, false, redactor()).unwrap();
    assert!(!modes.writes_allowed());
    let err = modes.for_call(true).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string()
            .contains("AO_DRY_RUN=false and AO_ALLOW_WRITE=true"),
        "{err}"
    );
    let mode = |s: &Service| serde_json::to_value(s.tools().unwrap().policy().mode()).unwrap();
    assert_eq!(mode(modes.for_call(false).unwrap()), "dry_run");
    // Allowed by the environment: apply on request, dry-run otherwise.
    let both = env(&[("AO_DRY_RUN", "false"), ("AO_ALLOW_WRITE", "true")]);
    let config = Config::load(&ConfigInputs::new(dir.path()).with_env(both.clone())).unwrap();
    let modes = Modes::configure(&base, &config, &both, false, redactor()).unwrap();
    assert!(modes.writes_allowed());
    assert_eq!(mode(modes.for_call(true).unwrap()), "apply");
    assert_eq!(mode(modes.for_call(false).unwrap()), "dry_run");
    // Allowed by the server's own flag.
    let config = Config::load(&ConfigInputs::new(dir.path()).with_env(none.clone())).unwrap();
    let modes = Modes::configure(&base, &config, &none, true, redactor()).unwrap();
    assert!(modes.writes_allowed());
    assert_eq!(mode(modes.for_call(true).unwrap()), "apply");
    assert_eq!(mode(modes.for_call(false).unwrap()), "dry_run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_just_started_is_never_taken_for_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    for _ in 0..40 {
        let run_id = service
            .start_detached(wf(SLEEPY), json!({"ms": 100}), RunOptions::default(), &jobs)
            .await
            .unwrap();
        let waited = service
            .wait_for_run(&run_id, Duration::ZERO, &jobs)
            .await
            .unwrap();
        assert!(!waited.abandoned, "run {run_id} taken for abandoned");
    }
    jobs.stop_all("test over", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_running_run_whose_process_died_is_returned_at_once_as_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path());
    let jobs = Jobs::new();
    let run_id = service
        .start_detached(
            wf(SLEEPY),
            json!({"ms": 60_000}),
            RunOptions::default(),
            &jobs,
        )
        .await
        .unwrap();
    jobs.stop_all("test", Duration::from_secs(10)).await;
    // What a crash leaves: `running`, owned by a process that no longer exists.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let db = rusqlite::Connection::open(service.store().path()).unwrap();
    db.execute(
        "UPDATE runs SET status = 'running', owner_pid = ?2 WHERE id = ?1",
        rusqlite::params![run_id, dead],
    )
    .unwrap();
    let t = Instant::now();
    let waited = service
        .wait_for_run(&run_id, Duration::from_secs(30), &jobs)
        .await
        .unwrap();
    assert!(waited.abandoned);
    assert_eq!(waited.run.run.status, RunStatus::Running);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
