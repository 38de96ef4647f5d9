//! `cmd.run`: allowlist by argv prefix, no shell, dry-run simulation, scrubbed environment,
//! timeouts and output caps.

mod common;

use std::time::{Duration, Instant};

use ao_tools::{Decision, Effect};
use common::{Project, call, context, env_with, snapshot};
use serde_json::json;

fn argv(v: &[&str]) -> serde_json::Value {
    json!(v)
}

#[tokio::test]
async fn a_command_not_on_the_allowlist_is_denied_and_does_not_run() {
    let p = Project::new();
    let before = snapshot(p.path());
    let env = env_with(&[("AO_ALLOWED_COMMANDS", "echo,cargo test")]);
    let (ctx, recorder) = context(p.path(), &env, None, true);
    for a in [
        argv(&["touch", "marker"]),
        argv(&["sh", "-c", "touch marker"]),
        argv(&["cargo", "publish"]),
        argv(&["/bin/echo", "hi"]),
        argv(&["echox", "hi"]),
    ] {
        let r = call(&ctx, "cmd.run", json!({"argv": a}))
            .await
            .expect("outcome");
        assert_eq!(r.decision, Decision::Denied, "{a}");
        assert!(
            r.reason
                .unwrap_or_default()
                .contains("allowed command prefix")
        );
    }
    assert!(!p.path().join("marker").exists());
    assert_eq!(snapshot(p.path()), before);
    let records = recorder.records();
    assert_eq!(records.len(), 5);
    assert_eq!(
        records[0].argv.as_deref(),
        Some(&["touch".to_string(), "marker".to_string()][..])
    );
    assert!(
        records
            .iter()
            .all(|r| r.effect == Effect::Exec && r.decision == Decision::Denied)
    );
}

#[tokio::test]
async fn shell_syntax_after_an_allowed_prefix_is_literal_text() {
    let p = Project::new();
    let before = snapshot(p.path());
    let env = env_with(&[]);
    let (ctx, _) = context(
        p.path(),
        &env,
        Some(json!({"allowed_commands": ["echo"]})),
        true,
    );
    let cases: Vec<Vec<&str>> = vec![
        vec!["echo", "hi", ";", "touch", "marker"],
        vec!["echo", "hi;", "touch", "marker"],
        vec!["echo", "hi; touch marker"],
        vec!["echo", "hi", "&&", "touch", "marker"],
        vec!["echo", "hi&&touch marker"],
        vec!["echo", "$(touch marker)"],
        vec!["echo", "`touch marker`"],
        vec!["echo", "hi", "|", "touch", "marker"],
        vec!["echo", "hi|touch marker"],
        vec!["echo", "hi", ">", "marker"],
        vec!["echo", "hi>marker"],
        vec!["echo", "hi", "||", "touch", "marker", "&"],
    ];
    for case in cases {
        let r = call(&ctx, "cmd.run", json!({"argv": case}))
            .await
            .expect("outcome");
        assert_eq!(r.decision, Decision::Allowed, "{case:?}");
        assert_eq!(r.output["exit_code"], 0);
        // echo printed its arguments verbatim: nothing was interpreted.
        assert_eq!(
            r.output["stdout"],
            format!("{}\n", case[1..].join(" ")),
            "{case:?}"
        );
        assert!(
            !p.path().join("marker").exists(),
            "{case:?} created the marker"
        );
    }
    assert_eq!(snapshot(p.path()), before);
}

#[tokio::test]
async fn dry_run_simulates_exec_with_the_exact_argv_but_runs_read_only_git() {
    let p = tempfile::tempdir().expect("tempdir");
    common::git(p.path(), &["init", "-q"]);
    common::write(p.path(), "a.txt", "a\n");
    let before = snapshot(p.path());
    let env = env_with(&[("AO_ALLOWED_COMMANDS", "touch")]);
    let (ctx, recorder) = context(p.path(), &env, None, false);
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["touch", "marker; rm -rf /"]}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Simulated);
    assert_eq!(r.output["argv"], json!(["touch", "marker; rm -rf /"]));
    assert_eq!(r.output["simulated"], true);
    assert!(
        r.reason
            .unwrap_or_default()
            .contains("touch 'marker; rm -rf /'")
    );
    assert!(!p.path().join("marker").exists());
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["git", "status", "--porcelain"]}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(r.output["stdout"], "?? a.txt\n");
    // Read-only git still cannot be turned into a write.
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["git", "diff", "--output=out.txt"]}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Denied);
    assert_eq!(snapshot(p.path()), before);
    let decisions: Vec<Decision> = recorder.records().iter().map(|r| r.decision).collect();
    assert_eq!(
        decisions,
        [Decision::Simulated, Decision::Allowed, Decision::Denied]
    );
}

#[tokio::test]
async fn the_child_environment_is_scrubbed() {
    let p = Project::new();
    let env = env_with(&[
        ("OPENAI_API_KEY", "sk-planted-test-key-123456"),
        ("SOME_OTHER_VAR", "other-value"),
        ("PASSED_VAR", "passed-value"),
        ("LC_ALL", "C"),
    ]);
    let (ctx, _) = context(
        p.path(),
        &env,
        Some(json!({"allowed_commands": ["env", "printenv"], "env_passthrough": ["PASSED_VAR"]})),
        true,
    );
    let r = call(&ctx, "cmd.run", json!({"argv": ["env"]}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    let out = r.output["stdout"].as_str().expect("stdout").to_string();
    assert!(!out.contains("OPENAI_API_KEY"), "{out}");
    assert!(!out.contains("sk-planted"), "{out}");
    assert!(!out.contains("SOME_OTHER_VAR"), "{out}");
    assert!(out.contains("PASSED_VAR=passed-value"), "{out}");
    assert!(out.contains("LC_ALL=C"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("PATH=")), "{out}");
    // Exactly the allowed names reach the child: nothing is inherited from this process
    // (cargo sets many CARGO_* variables for the test binary, so inheritance would show).
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort();
    let mut expected = vec![
        "GIT_CEILING_DIRECTORIES",
        "GIT_OPTIONAL_LOCKS",
        "GIT_PAGER",
        "GIT_TERMINAL_PROMPT",
        "LC_ALL",
        "PAGER",
        "PASSED_VAR",
        "PATH",
        // The command's private temporary directory.
        "TEMP",
        "TMP",
        "TMPDIR",
    ];
    if env.contains_key("HOME") {
        expected.push("HOME");
    }
    expected.sort();
    assert_eq!(names, expected, "{out}");
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["printenv", "OPENAI_API_KEY"]}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.output["exit_code"], 1);
    assert_eq!(r.output["stdout"], "");
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_with_its_children() {
    let p = Project::new();
    let env = env_with(&[]);
    let (ctx, _) = context(
        p.path(),
        &env,
        Some(json!({"allowed_commands": ["sleep", "sh -c"]})),
        true,
    );
    let started = Instant::now();
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["sleep", "30"], "timeout_s": 1}),
    )
    .await
    .expect("outcome");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(r.output["timed_out"], true);
    assert_eq!(r.output["exit_code"], serde_json::Value::Null);
    assert!(
        r.output["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("timeout")
    );

    // A grandchild holding the output pipe open is killed with the group.
    let started = Instant::now();
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["sh", "-c", "sleep 30 & echo started; sleep 30"], "timeout_s": 1}),
    )
    .await
    .expect("outcome");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.output["timed_out"], true);
    assert_eq!(r.output["stdout"], "started\n");
}

#[tokio::test]
async fn a_command_printing_100_mb_is_capped() {
    let p = Project::new();
    let env = env_with(&[]);
    let (ctx, _) = context(
        p.path(),
        &env,
        Some(json!({"allowed_commands": ["head -c", "yes"], "output_cap_bytes": 10000})),
        true,
    );
    let r = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["head", "-c", "100000000", "/dev/zero"]}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.output["exit_code"], 0);
    assert_eq!(r.output["stdout_bytes"], 100_000_000u64);
    assert_eq!(r.output["stdout_truncated"], true);
    let stdout = r.output["stdout"].as_str().expect("stdout");
    assert!(stdout.len() < 10_200, "{}", stdout.len());
    assert!(stdout.ends_with("[... output truncated by ao: 10000 of 100000000 bytes shown ...]"));

    // Endless output: capped and stopped at the timeout.
    let r = call(&ctx, "cmd.run", json!({"argv": ["yes"], "timeout_s": 1}))
        .await
        .expect("outcome");
    assert_eq!(r.output["timed_out"], true);
    assert_eq!(r.output["stdout_truncated"], true);
    assert!(r.output["stdout"].as_str().expect("stdout").len() < 10_200);
}

#[tokio::test]
async fn a_missing_program_is_a_tool_failure() {
    let p = Project::new();
    let env = env_with(&[("AO_ALLOWED_COMMANDS", "definitely-not-a-program-ao")]);
    let (ctx, _) = context(p.path(), &env, None, true);
    let e = call(
        &ctx,
        "cmd.run",
        json!({"argv": ["definitely-not-a-program-ao"]}),
    )
    .await
    .expect_err("fails");
    assert!(!e.is_invalid_input());
    assert!(e.to_string().contains("cannot start"), "{e}");
}
