//! Ways around the gate that a review found, each closed: a repository around the root, tree
//! ids, git options that read files, pipes, letter case, secrets cut in half by a cap, files
//! that hold secrets, and paths git must quote.

mod common;

use ao_tools::Decision;
use common::{call, context, env_with, git, write};
use serde_json::json;

#[tokio::test]
async fn git_never_reaches_a_repository_around_the_root() {
    let outer = tempfile::tempdir().unwrap();
    git(outer.path(), &["init", "-q"]);
    write(outer.path(), "private.txt", "outer-private-content\n");
    git(outer.path(), &["add", "private.txt"]);
    git(outer.path(), &["commit", "-q", "-m", "outer"]);
    write(outer.path(), "private.txt", "outer-private-changed\n");
    let root = outer.path().join("inner");
    write(&root, "README.md", "# inner\n");
    let env = env_with(&[]);
    let (ctx, _) = context(&root, &env, None, false);
    for (tool, args) in [
        ("git.diff", json!({})),
        ("git.log", json!({})),
        ("git.status", json!({})),
        ("git.show", json!({"rev": "HEAD"})),
        ("cmd.run", json!({"argv": ["git", "log", "-p"]})),
        ("cmd.run", json!({"argv": ["git", "diff"]})),
    ] {
        let text = match call(&ctx, tool, args.clone()).await {
            Ok(outcome) => outcome.to_json().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            !text.contains("outer-private"),
            "{tool} {args} reached the outer repository: {text}"
        );
    }
}

#[tokio::test]
async fn tree_and_blob_ids_cannot_bypass_denied_paths() {
    let p = common::Project::new();
    let root = p.path();
    std::fs::remove_dir_all(root.join(".git")).unwrap();
    git(root, &["init", "-q"]);
    write(root, "config/keys/prod.txt", "KEYDATA-123\n");
    git(root, &["add", "-f", "config/keys/prod.txt", "README.md"]);
    git(root, &["commit", "-q", "-m", "c"]);
    let tree = git(root, &["rev-parse", "HEAD:config"]).trim().to_string();
    let blob = git(root, &["rev-parse", "HEAD:config/keys/prod.txt"])
        .trim()
        .to_string();
    let empty_tree = git(root, &["hash-object", "-t", "tree", "/dev/null"])
        .trim()
        .to_string();
    let env = env_with(&[]);
    let (ctx, _) = context(
        root,
        &env,
        Some(json!({"denied": ["config/keys/**"]})),
        false,
    );
    for (tool, args) in [
        (
            "cmd.run",
            json!({"argv": ["git", "diff", empty_tree, tree]}),
        ),
        ("cmd.run", json!({"argv": ["git", "show", tree]})),
        ("cmd.run", json!({"argv": ["git", "show", blob]})),
        ("git.show", json!({"rev": blob})),
        (
            "git.diff",
            json!({"range": format!("{empty_tree}..{tree}")}),
        ),
    ] {
        let r = call(&ctx, tool, args.clone())
            .await
            .expect("an outcome, not an error");
        assert_eq!(
            r.decision,
            Decision::Denied,
            "{tool} {args}: {}",
            r.to_json()
        );
        assert!(!r.to_json().to_string().contains("KEYDATA"));
    }
    // Commits still work.
    let r = call(&ctx, "git.show", json!({"rev": "HEAD"}))
        .await
        .unwrap();
    assert_eq!(r.decision, Decision::Allowed);
    assert!(
        !r.to_json().to_string().contains("KEYDATA"),
        "the denied file is excluded from the commit's diff"
    );
}

#[tokio::test]
async fn git_options_that_read_files_are_refused() {
    let p = common::Project::new();
    let root = p.path();
    std::fs::remove_dir_all(root.join(".git")).unwrap();
    git(root, &["init", "-q"]);
    let outside = p.outside.path().join("secret.txt").display().to_string();
    let env = env_with(&[]);
    let (ctx, _) = context(
        root,
        &env,
        Some(json!({"allowed_commands": ["git commit"]})),
        true,
    );
    for argv in [
        json!(["git", "commit", "--allow-empty", "-F", outside]),
        json!(["git", "commit", "--allow-empty", "--file=.env"]),
        json!([
            "git",
            "commit",
            "--allow-empty",
            "--template",
            outside,
            "-m",
            "x"
        ]),
    ] {
        let r = call(&ctx, "cmd.run", json!({"argv": argv})).await.unwrap();
        assert_eq!(r.decision, Decision::Denied, "{argv}: {}", r.to_json());
    }
    assert!(
        !root.join(".git/refs/heads/main").exists(),
        "nothing was committed"
    );
}

#[tokio::test]
async fn a_pipe_is_refused_instead_of_hanging() {
    let p = common::Project::new();
    let fifo = p.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let env = env_with(&[]);
    let (ctx, _) = context(p.path(), &env, None, false);
    for (tool, args) in [
        ("fs.read", json!({"path": "pipe"})),
        (
            "fs.edit",
            json!({"path": "pipe", "search": "a", "replace": "b"}),
        ),
        ("fs.write", json!({"path": "pipe", "content": "x"})),
    ] {
        let started = std::time::Instant::now();
        let result =
            tokio::time::timeout(std::time::Duration::from_secs(10), call(&ctx, tool, args)).await;
        let err = result
            .expect("returns instead of blocking")
            .expect_err("a pipe is not a regular file");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

#[tokio::test]
async fn denied_patterns_ignore_letter_case() {
    let p = common::Project::new();
    write(
        p.path(),
        "SERVER.PEM",
        "-----BEGIN PRIVATE KEY-----\nBBBB\n",
    );
    write(p.path(), "config/.ENV", "X=1\n");
    let env = env_with(&[]);
    let (ctx, _) = context(p.path(), &env, None, false);
    for path in ["SERVER.PEM", "config/.ENV"] {
        let r = call(&ctx, "fs.read", json!({"path": path})).await.unwrap();
        assert_eq!(r.decision, Decision::Denied, "{path}");
    }
}

#[tokio::test]
async fn a_cap_never_leaves_part_of_a_secret() {
    let p = common::Project::new();
    let secret = "sk-planted-secret-9876";
    write(p.path(), "settings.txt", &format!("token: {secret}\n"));
    let env = env_with(&[("MY_API_KEY", secret)]);
    let (ctx, _) = context(
        p.path(),
        &env,
        Some(json!({"output_cap_bytes": 20, "allowed_commands": ["echo"]})),
        true,
    );
    let r = call(&ctx, "fs.read", json!({"path": "settings.txt"}))
        .await
        .unwrap();
    let text = r.to_json().to_string();
    assert!(!text.contains("sk-planted"), "{text}");
    let r = call(&ctx, "fs.search", json!({"pattern": "token"}))
        .await
        .unwrap();
    assert!(!r.to_json().to_string().contains("sk-planted"));
}

#[tokio::test]
async fn a_file_holding_a_secret_is_not_edited_so_no_changeset_stores_it() {
    let p = common::Project::new();
    let secret = "sk-planted-secret-4242";
    write(
        p.path(),
        "settings.toml",
        &format!("name = \"demo\"\napi_key = \"{secret}\"\n"),
    );
    let env = env_with(&[("MY_API_KEY", secret)]);
    for apply in [false, true] {
        let (ctx, _) = context(p.path(), &env, None, apply);
        let err = call(
            &ctx,
            "fs.edit",
            json!({"path": "settings.toml", "search": "demo", "replace": "other"}),
        )
        .await
        .expect_err("refused");
        assert!(
            err.to_string().contains("holds the value of a secret"),
            "{err}"
        );
        assert!(ctx.changeset().is_empty());
        let err = call(
            &ctx,
            "fs.write",
            json!({"path": "new.txt", "content": format!("key={secret}")}),
        )
        .await
        .expect_err("refused");
        assert!(!err.to_string().contains(secret));
    }
    assert!(p.read("settings.toml").contains("demo"));
    assert!(!p.path().join("new.txt").exists());
}

#[tokio::test]
async fn a_patch_with_a_tab_in_a_file_name_applies_with_git() {
    let p = common::Project::new();
    let root = p.path();
    std::fs::remove_dir_all(root.join(".git")).unwrap();
    git(root, &["init", "-q"]);
    write(root, "tab\there.txt", "one\n");
    git(root, &["add", "tab\there.txt"]);
    git(root, &["commit", "-q", "-m", "c"]);
    let env = env_with(&[]);
    let (ctx, _) = context(root, &env, None, false);
    call(
        &ctx,
        "fs.write",
        json!({"path": "tab\there.txt", "content": "two\n"}),
    )
    .await
    .unwrap();
    call(
        &ctx,
        "fs.write",
        json!({"path": "new\"quote.txt", "content": "q\n"}),
    )
    .await
    .unwrap();
    let patch = ctx.changeset().to_unified_diff();
    let patch_file = p.outside.path().join("change.patch");
    std::fs::write(&patch_file, &patch).unwrap();
    let out = std::process::Command::new("git")
        .args(["apply", patch_file.to_str().unwrap()])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git apply: {}\n{patch}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("tab\there.txt")).unwrap(),
        "two\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("new\"quote.txt")).unwrap(),
        "q\n"
    );
}
