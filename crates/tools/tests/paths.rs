//! Containment, `denied` and `writable`: nothing outside the rules is read or written.

mod common;

use ao_tools::{Decision, Effect, Mode};
use common::{Project, call, context, env_with, snapshot};
use serde_json::json;

#[tokio::test]
async fn parent_and_absolute_paths_outside_the_root_are_denied() {
    let p = Project::new();
    let before = snapshot(p.path());
    let outside_before = snapshot(p.outside.path());
    let env = env_with(&[]);
    for apply in [false, true] {
        let (ctx, recorder) = context(p.path(), &env, None, apply);
        let outside_file = p.outside.path().join("secret.txt");
        let escapes = [
            "../x".to_string(),
            "src/../../x".to_string(),
            "/etc/passwd".to_string(),
            outside_file.display().to_string(),
            format!(
                "src/../../{}/secret.txt",
                p.outside
                    .path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        ];
        for path in &escapes {
            let r = call(&ctx, "fs.read", json!({"path": path}))
                .await
                .expect("outcome");
            assert_eq!(r.decision, Decision::Denied, "read {path}");
            assert!(
                r.reason
                    .as_deref()
                    .unwrap_or("")
                    .contains("outside the project root"),
                "{r:?}"
            );
            assert!(r.output.is_null());
            for (tool, args) in [
                ("fs.write", json!({"path": path, "content": "pwned"})),
                ("fs.delete", json!({"path": path})),
                (
                    "fs.edit",
                    json!({"path": path, "search": "outside", "replace": "x"}),
                ),
            ] {
                let r = call(&ctx, tool, args).await.expect("outcome");
                assert_eq!(r.decision, Decision::Denied, "{tool} {path}");
            }
            for tool in ["fs.list", "fs.search"] {
                let r = call(
                    &ctx,
                    tool,
                    json!({"path": path, "pattern": "secret"})
                        .as_object()
                        .map(|m| {
                            let mut m = m.clone();
                            if tool == "fs.list" {
                                m.remove("pattern");
                            }
                            serde_json::Value::Object(m)
                        })
                        .unwrap_or_default(),
                )
                .await
                .expect("outcome");
                assert_eq!(r.decision, Decision::Denied, "{tool} {path}");
            }
        }
        let records = recorder.records();
        assert_eq!(records.len(), escapes.len() * 6);
        assert!(
            records
                .iter()
                .all(|r| r.decision == Decision::Denied && r.reason.is_some())
        );
        assert_eq!(ctx.changeset().files.len(), 0);
    }
    assert_eq!(snapshot(p.path()), before);
    assert_eq!(snapshot(p.outside.path()), outside_before);
}

#[tokio::test]
async fn absolute_paths_inside_the_root_are_fine() {
    let p = Project::new();
    let env = env_with(&[]);
    let (ctx, _) = context(p.path(), &env, None, false);
    let abs = p.path().join("src/lib.rs").display().to_string();
    let r = call(&ctx, "fs.read", json!({"path": abs}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(r.output["path"], "src/lib.rs");
}

#[tokio::test]
async fn symlinks_pointing_outside_cannot_be_read_or_written() {
    let p = Project::new();
    let before = snapshot(p.path());
    let outside_before = snapshot(p.outside.path());
    let env = env_with(&[]);
    for apply in [false, true] {
        let (ctx, _) = context(p.path(), &env, None, apply);
        for path in [
            "link_file",
            "link_dir/secret.txt",
            "link_dir/new.txt",
            "./link_dir/../link_file",
        ] {
            let r = call(&ctx, "fs.read", json!({"path": path}))
                .await
                .expect("outcome");
            assert_eq!(r.decision, Decision::Denied, "read {path}");
            let r = call(&ctx, "fs.write", json!({"path": path, "content": "pwned"}))
                .await
                .expect("outcome");
            assert_eq!(r.decision, Decision::Denied, "write {path}");
        }
        // Listing the root shows the links as links but never follows them.
        let r = call(&ctx, "fs.list", json!({})).await.expect("outcome");
        let listed = r.output["entries"].to_string();
        assert!(!listed.contains("secret.txt"), "{listed}");
        let r = call(&ctx, "fs.search", json!({"pattern": "outside secret"}))
            .await
            .expect("outcome");
        assert_eq!(r.output["matches"], json!([]));
    }
    assert_eq!(snapshot(p.path()), before);
    assert_eq!(snapshot(p.outside.path()), outside_before);
}

#[tokio::test]
async fn denied_files_are_never_read_listed_or_searched() {
    let p = Project::new();
    let before = snapshot(p.path());
    let env = env_with(&[]);
    let (ctx, recorder) = context(p.path(), &env, None, false);
    for path in [
        ".env",
        ".git/config",
        "keys/server.pem",
        "sub/.env",
        ".git",
        "./keys/../.env",
    ] {
        let r = call(&ctx, "fs.read", json!({"path": path}))
            .await
            .expect("outcome");
        assert_eq!(r.decision, Decision::Denied, "{path}");
        let reason = r.reason.unwrap_or_default();
        assert!(reason.contains("denied pattern"), "{reason}");
        assert!(!r.output.to_string().contains("sk-from-dotenv"));
    }
    // A symlink inside the root that points at a denied file is denied too.
    std::os::unix::fs::symlink(".env", p.path().join("innocent.txt")).expect("symlink");
    let r = call(&ctx, "fs.read", json!({"path": "innocent.txt"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Denied);
    std::fs::remove_file(p.path().join("innocent.txt")).expect("rm");

    let r = call(&ctx, "fs.list", json!({})).await.expect("outcome");
    let listed: Vec<String> = r.output["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(listed.contains(&"src/lib.rs".to_string()), "{listed:?}");
    for hidden in [".env", ".git/config", "keys/server.pem", "sub/.env"] {
        assert!(
            !listed.contains(&hidden.to_string()),
            "{hidden} listed: {listed:?}"
        );
    }
    for pattern in [
        "sk-from-dotenv",
        "BEGIN PRIVATE KEY",
        "bare = false",
        "secret-nested",
    ] {
        let r = call(&ctx, "fs.search", json!({"pattern": pattern}))
            .await
            .expect("outcome");
        assert_eq!(r.output["matches"], json!([]), "{pattern}");
    }
    // Writes to denied paths are denied in both modes.
    for apply in [false, true] {
        let (ctx, _) = context(p.path(), &env, None, apply);
        for path in [
            ".env",
            ".git/hooks/pre-commit",
            "new.key",
            ".ao/runs.db",
            "home/.ssh/id_ed25519",
        ] {
            let r = call(&ctx, "fs.write", json!({"path": path, "content": "x"}))
                .await
                .expect("outcome");
            assert_eq!(r.decision, Decision::Denied, "{path}");
        }
    }
    assert!(
        recorder
            .records()
            .iter()
            .any(|r| r.effect == Effect::Read && r.decision == Decision::Allowed)
    );
    assert_eq!(snapshot(p.path()), before);
}

#[tokio::test]
async fn config_can_add_denied_globs_and_override_defaults_explicitly() {
    let p = Project::new();
    common::write(p.path(), "private/data.txt", "private data\n");
    common::write(p.path(), ".env.example", "OPENAI_API_KEY=\n");
    let env = env_with(&[]);
    let (ctx, _) = context(p.path(), &env, Some(json!({"denied": ["private/"]})), false);
    let r = call(&ctx, "fs.read", json!({"path": "private/data.txt"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Denied);
    let r = call(&ctx, "fs.read", json!({"path": ".env.example"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Denied);
    let (ctx, _) = context(
        p.path(),
        &env,
        Some(json!({"override_denied": [".env.*"]})),
        false,
    );
    let r = call(&ctx, "fs.read", json!({"path": ".env.example"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    let r = call(&ctx, "fs.read", json!({"path": ".env"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Denied);
}

#[tokio::test]
async fn apply_mode_writes_only_inside_writable() {
    let p = Project::new();
    let before = snapshot(p.path());
    let env = env_with(&[]);
    let (ctx, _) = context(p.path(), &env, Some(json!({"writable": ["src/**"]})), true);
    assert_eq!(ctx.policy().mode(), Mode::Apply);
    for (tool, args) in [
        (
            "fs.write",
            json!({"path": "README.md", "content": "changed"}),
        ),
        ("fs.write", json!({"path": "docs/new.md", "content": "new"})),
        (
            "fs.edit",
            json!({"path": "README.md", "search": "Demo", "replace": "X"}),
        ),
        ("fs.delete", json!({"path": "notes.txt"})),
    ] {
        let r = call(&ctx, tool, args).await.expect("outcome");
        assert_eq!(r.decision, Decision::Denied, "{tool}");
        assert!(r.reason.unwrap_or_default().contains("writable"));
    }
    assert_eq!(snapshot(p.path()), before);

    let r = call(
        &ctx,
        "fs.write",
        json!({"path": "src/new.rs", "content": "// new\n"}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(r.output["written"], true);
    let mut expected = before.clone();
    expected.insert(
        "src/new.rs".into(),
        common::Node::File(b"// new\n".to_vec()),
    );
    assert_eq!(snapshot(p.path()), expected);
    // The run's record still has it.
    let cs = ctx.changeset();
    assert_eq!(cs.files.len(), 1);
    assert_eq!(cs.files[0].path, "src/new.rs");
    assert_eq!(cs.files[0].base_sha256, None);
}

#[tokio::test]
async fn apply_mode_edit_and_delete_hit_the_disk() {
    let p = Project::new();
    let env = env_with(&[("AO_DRY_RUN", "false"), ("AO_ALLOW_WRITE", "true")]);
    let (ctx, _) = context(p.path(), &env, None, false);
    assert_eq!(ctx.policy().mode(), Mode::Apply);
    let r = call(
        &ctx,
        "fs.edit",
        json!({"path": "README.md", "search": "Some text.", "replace": "Other text."}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    assert_eq!(p.read("README.md"), "# Demo\n\nOther text.\n");
    let r = call(&ctx, "fs.delete", json!({"path": "notes.txt"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Allowed);
    assert!(!p.path().join("notes.txt").exists());
    let cs = ctx.changeset();
    assert_eq!(cs.files.len(), 2);
    assert_eq!(
        cs.files[0].base_content.as_deref(),
        Some("# Demo\n\nSome text.\n")
    );
}
