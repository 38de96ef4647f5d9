//! Dry-run is the default; apply needs `--apply` or both environment variables.

mod common;

use ao_tools::{Decision, Mode, PolicyEnv};
use common::{Project, call, context, env_with, policy, snapshot};
use serde_json::json;

#[tokio::test]
async fn ao_dry_run_false_alone_stays_dry_run() {
    let p = Project::new();
    let before = snapshot(p.path());
    let env = env_with(&[("AO_DRY_RUN", "false")]);
    let (ctx, _) = context(p.path(), &env, None, false);
    assert_eq!(ctx.policy().mode(), Mode::DryRun);
    let r = call(
        &ctx,
        "fs.write",
        json!({"path": "README.md", "content": "changed"}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Simulated);
    assert_eq!(snapshot(p.path()), before);

    let env = env_with(&[("AO_ALLOW_WRITE", "true")]);
    let (ctx, _) = context(p.path(), &env, None, false);
    assert_eq!(ctx.policy().mode(), Mode::DryRun);
    let r = call(&ctx, "fs.delete", json!({"path": "README.md"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Simulated);
    assert_eq!(snapshot(p.path()), before);
}

#[test]
fn ao_dry_run_values_are_parsed_or_rejected() {
    let p = Project::new();
    let mode = |dry: &str, allow: Option<&str>| {
        let mut pairs = vec![("AO_DRY_RUN", dry)];
        if let Some(a) = allow {
            pairs.push(("AO_ALLOW_WRITE", a));
        }
        policy(p.path(), &env_with(&pairs), None, false).map(|p| p.mode())
    };
    assert_eq!(mode("1", Some("true")).ok(), Some(Mode::DryRun));
    assert_eq!(mode("yes", Some("true")).ok(), Some(Mode::DryRun));
    assert_eq!(mode("TRUE", Some("true")).ok(), Some(Mode::DryRun));
    assert_eq!(mode("no", Some("true")).ok(), Some(Mode::Apply));
    assert_eq!(mode("0", Some("1")).ok(), Some(Mode::Apply));
    assert_eq!(mode("no", None).ok(), Some(Mode::DryRun));
    assert_eq!(mode("false", Some("false")).ok(), Some(Mode::DryRun));
    // The variables are parsed once, with the configuration; garbage never reaches a policy.
    for garbage in ["maybe", "", "2", "dry"] {
        let vars = env_with(&[("AO_DRY_RUN", garbage), ("AO_ALLOW_WRITE", "true")]);
        let msg = PolicyEnv::from_vars(&vars)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("AO_DRY_RUN") && msg.contains(&format!("`{garbage}`")),
            "{garbage:?} gave {msg}"
        );
    }
    let msg = PolicyEnv::from_vars(&env_with(&[("AO_ALLOW_WRITE", "sure")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("AO_ALLOW_WRITE"), "{msg}");
}

#[tokio::test]
async fn apply_flag_alone_is_enough() {
    let p = Project::new();
    let (ctx, _) = context(p.path(), &env_with(&[]), None, true);
    assert_eq!(ctx.policy().mode(), Mode::Apply);
    // A caller may always ask for less.
    assert_eq!(ctx.policy().with_dry_run().mode(), Mode::DryRun);
}

#[tokio::test]
async fn invalid_input_is_an_error_not_a_decision() {
    let p = Project::new();
    let (ctx, recorder) = context(p.path(), &env_with(&[]), None, false);
    for (tool, args) in [
        ("fs.read", json!({"path": "README.md", "extra": 1})),
        ("fs.read", json!({})),
        ("cmd.run", json!({"argv": "echo hi"})),
        ("cmd.run", json!({"argv": []})),
        ("git.status", json!({"x": true})),
        ("fs.read", json!({"path": "README.md", "offset": -1})),
    ] {
        let e = call(&ctx, tool, args.clone()).await.expect_err("invalid");
        assert!(e.is_invalid_input(), "{tool} {args}: {e}");
        assert!(e.to_string().contains(tool), "{e}");
    }
    let e = call(&ctx, "fs.nope", json!({})).await.expect_err("unknown");
    assert!(e.is_invalid_input());
    assert!(recorder.records().is_empty());
}

#[test]
fn registry_lists_tools_in_a_deterministic_order_with_strict_schemas() {
    let names: Vec<&str> = ao_tools::ToolRegistry::standard()
        .specs()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "cmd.run",
            "fs.delete",
            "fs.edit",
            "fs.list",
            "fs.read",
            "fs.search",
            "fs.write",
            "git.diff",
            "git.log",
            "git.show",
            "git.status"
        ]
    );
    for s in ao_tools::ToolRegistry::standard().specs() {
        assert_eq!(s.input_schema["additionalProperties"], false, "{}", s.name);
        assert_eq!(s.output_schema["type"], "object");
    }
    assert_eq!(
        ao_tools::ToolRegistry::standard()
            .get("fs_read")
            .map(|s| s.name),
        Some("fs.read")
    );
}
