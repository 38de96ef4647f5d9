//! A planted secret never appears in a tool result, a decision record or an error; the git
//! tools are read-only and keep denied paths out.

mod common;

use ao_tools::Decision;
use common::{call, context, env_with, snapshot};
use serde_json::json;

const PLANTED: &str = "planted-secret-value-8c1e7f";

#[tokio::test]
async fn a_planted_secret_never_appears_in_results_records_or_errors() {
    let p = common::Project::new();
    common::write(
        p.path(),
        "config/app.txt",
        &format!("token = {PLANTED}\nheader = Authorization: Bearer abcdefghijkl\n"),
    );
    let env = env_with(&[("SERVICE_TOKEN", PLANTED)]);
    let (ctx, recorder) = context(
        p.path(),
        &env,
        Some(
            json!({"allowed_commands": ["echo", "printenv"], "env_passthrough": ["SERVICE_TOKEN"]}),
        ),
        true,
    );
    let mut seen = Vec::new();
    for (tool, args) in [
        ("fs.read", json!({"path": "config/app.txt"})),
        ("fs.search", json!({"pattern": "token"})),
        ("fs.list", json!({})),
        ("cmd.run", json!({"argv": ["echo", PLANTED]})),
        ("cmd.run", json!({"argv": ["printenv", "SERVICE_TOKEN"]})),
        ("cmd.run", json!({"argv": ["not-allowed", PLANTED]})),
        (
            "fs.write",
            json!({"path": format!("../{PLANTED}"), "content": "x"}),
        ),
    ] {
        let r = call(&ctx, tool, args).await.expect("outcome");
        seen.push(r.to_json().to_string());
    }
    for (tool, args) in [
        ("fs.read", json!({"path": format!("{PLANTED}.txt")})),
        (
            "fs.read",
            json!({"path": "config/app.txt", "bogus": PLANTED}),
        ),
        (
            "fs.edit",
            json!({"path": "config/app.txt", "search": format!("{PLANTED}-absent"), "replace": "x"}),
        ),
    ] {
        let e = call(&ctx, tool, args).await.expect_err("error");
        seen.push(e.to_string());
        seen.push(format!("{e:?}"));
    }
    seen.extend(
        recorder
            .records()
            .iter()
            .map(|r| serde_json::to_string(r).expect("json")),
    );
    let all = seen.join("\n");
    assert!(!all.contains(PLANTED), "secret leaked:\n{all}");
    assert!(!all.contains("abcdefghijkl"), "bearer token leaked:\n{all}");
    assert!(all.contains("[REDACTED]"));
    // The redacted read still shows the structure around the secret.
    assert!(seen[0].contains("token = [REDACTED]"), "{}", seen[0]);
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    common::git(r, &["init", "-q"]);
    common::write(r, "src/main.rs", "fn main() {}\n");
    common::write(r, ".env", "API_KEY=committed-by-mistake\n");
    common::write(r, "certs/site.pem", "PEM v1\n");
    common::git(r, &["add", "-A"]);
    common::git(r, &["commit", "-q", "-m", "first"]);
    common::write(r, "src/main.rs", "fn main() { println!(\"hi\"); }\n");
    common::write(r, ".env", "API_KEY=changed-also-secret\n");
    common::write(r, "certs/site.pem", "PEM v2\n");
    dir
}

#[tokio::test]
async fn git_tools_run_in_dry_run_and_exclude_denied_paths() {
    let dir = repo();
    let r = dir.path();
    let before = snapshot(r);
    let env = env_with(&[]);
    let (ctx, _) = context(r, &env, None, false);

    let d = call(&ctx, "git.diff", json!({})).await.expect("outcome");
    assert_eq!(d.decision, Decision::Allowed);
    let text = d.output["text"].as_str().expect("text");
    assert!(text.contains("println!"), "{text}");
    assert!(
        !text.contains("API_KEY") && !text.contains("PEM v"),
        "{text}"
    );

    let d = call(&ctx, "git.diff", json!({"paths": ["src"]}))
        .await
        .expect("outcome");
    assert!(d.output["text"].as_str().unwrap_or("").contains("println!"));
    let d = call(&ctx, "git.diff", json!({"paths": [".env"]}))
        .await
        .expect("outcome");
    assert_eq!(d.decision, Decision::Denied);

    let s = call(&ctx, "git.status", json!({})).await.expect("outcome");
    assert!(
        s.output["text"]
            .as_str()
            .unwrap_or("")
            .contains(" M src/main.rs"),
        "{s:?}"
    );

    let l = call(&ctx, "git.log", json!({"max": 5}))
        .await
        .expect("outcome");
    assert!(
        l.output["text"].as_str().unwrap_or("").contains("first"),
        "{l:?}"
    );

    let show = call(
        &ctx,
        "git.show",
        json!({"rev": "HEAD", "path": "src/main.rs"}),
    )
    .await
    .expect("outcome");
    assert_eq!(show.output["text"], "fn main() {}\n");
    let show = call(&ctx, "git.show", json!({"rev": "HEAD"}))
        .await
        .expect("outcome");
    let text = show.output["text"].as_str().unwrap_or("");
    assert!(
        text.contains("src/main.rs")
            && !text.contains("committed-by-mistake")
            && !text.contains("PEM v1"),
        "{text}"
    );

    for (tool, args) in [
        ("git.show", json!({"rev": "HEAD", "path": ".env"})),
        ("git.show", json!({"rev": "HEAD:.env"})),
        ("git.show", json!({"rev": "--output=leak.txt"})),
        ("git.diff", json!({"range": "--output=leak.txt"})),
        ("git.diff", json!({"range": "HEAD --ext-diff"})),
        ("git.log", json!({"range": "--exec-path=/tmp"})),
        ("git.diff", json!({"paths": ["../outside"]})),
    ] {
        let out = call(&ctx, tool, args.clone()).await.expect("outcome");
        assert_eq!(out.decision, Decision::Denied, "{tool} {args}");
    }
    // The read-only git prefixes through cmd.run keep denied content out as well.
    for a in [
        json!(["git", "diff"]),
        json!(["git", "diff", "HEAD", "--", "."]),
        json!(["git", "log", "-p"]),
        json!(["git", "show", "HEAD"]),
    ] {
        let out = call(&ctx, "cmd.run", json!({"argv": a}))
            .await
            .expect("outcome");
        assert_eq!(out.decision, Decision::Allowed, "{a}");
        let text = out.output["stdout"].as_str().unwrap_or("");
        assert!(text.contains("main.rs"), "{a}: {text}");
        assert!(
            !text.contains("API_KEY") && !text.contains("PEM v"),
            "{a}: {text}"
        );
    }
    for a in [
        json!(["git", "show", "HEAD:.env"]),
        json!(["git", "show", "HEAD:./certs/site.pem"]),
    ] {
        let out = call(&ctx, "cmd.run", json!({"argv": a}))
            .await
            .expect("outcome");
        assert_eq!(out.decision, Decision::Denied, "{a}");
    }
    assert_eq!(snapshot(r), before);
}

#[tokio::test]
async fn git_failures_are_tool_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ctx, _) = context(dir.path(), &env_with(&[]), None, false);
    let e = call(&ctx, "git.log", json!({"range": "no-such-rev"}))
        .await
        .expect_err("fails");
    assert!(e.to_string().contains("git exited"), "{e}");
}
