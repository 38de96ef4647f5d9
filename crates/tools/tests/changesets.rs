//! Dry-run writes go to the run's changeset; the changeset renders as a patch `git apply`
//! accepts and applies all-or-nothing.

mod common;

use ao_tools::{Changeset, Decision, FileAction, FileChange, apply_changeset, sha256_hex};
use common::{Project, call, context, env_with, policy, snapshot};
use serde_json::json;

#[tokio::test]
async fn dry_run_writes_go_to_the_changeset_and_later_reads_see_them() {
    let p = Project::new();
    let before = snapshot(p.path());
    let env = env_with(&[]);
    let (ctx, recorder) = context(p.path(), &env, None, false);

    let r = call(
        &ctx,
        "fs.write",
        json!({"path": "src/new.rs", "content": "pub fn two() {}\n"}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Simulated);
    assert!(r.reason.as_deref().unwrap_or("").contains("changeset"));
    assert_eq!(
        r.output,
        json!({"path": "src/new.rs", "action": "create", "bytes": 16, "written": false})
    );
    let r = call(
        &ctx,
        "fs.edit",
        json!({"path": "src/lib.rs", "search": "    1\n", "replace": "    42\n"}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.decision, Decision::Simulated);
    let r = call(&ctx, "fs.delete", json!({"path": "README.md"}))
        .await
        .expect("outcome");
    assert_eq!(r.decision, Decision::Simulated);
    assert_eq!(snapshot(p.path()), before, "dry-run touched the disk");

    // Reads in the same run see the overlay.
    let r = call(&ctx, "fs.read", json!({"path": "src/new.rs"}))
        .await
        .expect("outcome");
    assert_eq!(r.output["content"], "pub fn two() {}\n");
    assert_eq!(r.output["source"], "changeset");
    let r = call(
        &ctx,
        "fs.read",
        json!({"path": "src/lib.rs", "offset": 1, "limit": 1}),
    )
    .await
    .expect("outcome");
    assert_eq!(r.output["content"], "    42\n");
    assert_eq!(r.output["total_lines"], 3);
    let e = call(&ctx, "fs.read", json!({"path": "README.md"}))
        .await
        .expect_err("deleted");
    assert!(e.to_string().contains("no such file"), "{e}");
    let r = call(&ctx, "fs.list", json!({"glob": "*.{rs,md}"}))
        .await
        .expect("outcome");
    let listed: Vec<&str> = r.output["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(listed, ["src/lib.rs", "src/new.rs"]);
    let r = call(&ctx, "fs.search", json!({"pattern": "fn (one|two)"}))
        .await
        .expect("outcome");
    assert_eq!(
        r.output["matches"],
        json!([
            {"path": "src/lib.rs", "line": 1, "text": "pub fn one() -> u32 {"},
            {"path": "src/new.rs", "line": 1, "text": "pub fn two() {}"}
        ])
    );
    // An edit on top of an edit builds on the overlay, and keeps the first base.
    call(
        &ctx,
        "fs.edit",
        json!({"path": "src/lib.rs", "search": "42", "replace": "43"}),
    )
    .await
    .expect("outcome");

    let cs = ctx.changeset();
    let by_path = |path: &str| {
        cs.files
            .iter()
            .find(|f| f.path == path)
            .cloned()
            .expect(path)
    };
    assert_eq!(cs.files.len(), 3);
    assert_eq!(by_path("src/new.rs").action(), FileAction::Create);
    let lib = by_path("src/lib.rs");
    assert_eq!(
        lib.base_sha256.as_deref(),
        Some(sha256_hex(b"pub fn one() -> u32 {\n    1\n}\n").as_str())
    );
    assert_eq!(
        lib.new_content.as_deref(),
        Some("pub fn one() -> u32 {\n    43\n}\n")
    );
    assert_eq!(by_path("README.md").new_content, None);
    // Serializable.
    let text = serde_json::to_string(&cs).expect("serialize");
    let back: Changeset = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, cs);
    assert_eq!(snapshot(p.path()), before);
    assert!(
        recorder
            .records()
            .iter()
            .filter(|r| r.decision == Decision::Simulated)
            .count()
            >= 4
    );
}

#[tokio::test]
async fn fs_edit_fails_clearly_when_the_text_is_absent_or_ambiguous() {
    let p = Project::new();
    common::write(p.path(), "dup.txt", "same\nsame\n");
    let before = snapshot(p.path());
    let env = env_with(&[]);
    for apply in [false, true] {
        let (ctx, _) = context(p.path(), &env, None, apply);
        let e = call(
            &ctx,
            "fs.edit",
            json!({"path": "README.md", "search": "not there", "replace": "x"}),
        )
        .await
        .expect_err("absent");
        let msg = e.to_string();
        assert!(
            msg.contains("fs.edit") && msg.contains("README.md") && msg.contains("does not occur"),
            "{msg}"
        );
        let e = call(
            &ctx,
            "fs.edit",
            json!({"path": "dup.txt", "search": "same", "replace": "x"}),
        )
        .await
        .expect_err("ambiguous");
        assert!(e.to_string().contains("occurs 2 times"), "{e}");
        let e = call(
            &ctx,
            "fs.edit",
            json!({"path": "missing.txt", "search": "a", "replace": "b"}),
        )
        .await
        .expect_err("missing");
        assert!(e.to_string().contains("no such file"), "{e}");
        assert!(ctx.changeset().files.is_empty());
    }
    assert_eq!(snapshot(p.path()), before);
}

async fn dry_run_changeset(p: &Project) -> Changeset {
    let env = env_with(&[]);
    let (ctx, _) = context(p.path(), &env, None, false);
    for (tool, args) in [
        (
            "fs.edit",
            json!({"path": "src/lib.rs", "search": "    1\n", "replace": "    2\n"}),
        ),
        (
            "fs.write",
            json!({"path": "docs/guide.md", "content": "# Guide\n"}),
        ),
    ] {
        let r = call(&ctx, tool, args).await.expect("outcome");
        assert_eq!(r.decision, Decision::Simulated);
    }
    ctx.changeset()
}

#[tokio::test]
async fn apply_refuses_when_a_file_changed_since_the_run_and_writes_nothing() {
    let p = Project::new();
    let cs = dry_run_changeset(&p).await;
    common::write(p.path(), "src/lib.rs", "pub fn one() -> u32 {\n    7\n}\n");
    let before = snapshot(p.path());
    let pol = policy(p.path(), &env_with(&[]), None, false).expect("policy");
    for check in [true, false] {
        let report = apply_changeset(&cs, &pol, check).expect("report");
        assert!(report.is_refused());
        assert!(!report.applied);
        let lib = report
            .files
            .iter()
            .find(|f| f.path == "src/lib.rs")
            .expect("lib");
        assert!(
            lib.problem
                .as_deref()
                .unwrap_or("")
                .contains("changed since the run"),
            "{lib:?}"
        );
        let guide = report
            .files
            .iter()
            .find(|f| f.path == "docs/guide.md")
            .expect("guide");
        assert_eq!(guide.problem, None);
        assert_eq!(snapshot(p.path()), before, "check={check}");
    }
    // A file created since the run is a conflict too.
    let p = Project::new();
    let cs = dry_run_changeset(&p).await;
    common::write(p.path(), "docs/guide.md", "someone else's\n");
    let before = snapshot(p.path());
    let report = apply_changeset(&cs, &pol_for(&p), false).expect("report");
    assert!(report.is_refused());
    assert_eq!(snapshot(p.path()), before);
}

fn pol_for(p: &Project) -> ao_tools::Policy {
    policy(p.path(), &env_with(&[]), None, false).expect("policy")
}

#[tokio::test]
async fn apply_check_reports_and_writes_nothing_then_apply_writes_everything() {
    let p = Project::new();
    let cs = dry_run_changeset(&p).await;
    let before = snapshot(p.path());
    let pol = pol_for(&p);
    let report = apply_changeset(&cs, &pol, true).expect("report");
    assert!(report.check && !report.applied && !report.is_refused());
    let actions: Vec<(String, FileAction)> = report
        .files
        .iter()
        .map(|f| (f.path.clone(), f.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("docs/guide.md".to_string(), FileAction::Create),
            ("src/lib.rs".to_string(), FileAction::Modify)
        ]
    );
    assert_eq!(snapshot(p.path()), before);

    let report = apply_changeset(&cs, &pol, false).expect("report");
    assert!(report.applied);
    assert_eq!(p.read("src/lib.rs"), "pub fn one() -> u32 {\n    2\n}\n");
    assert_eq!(p.read("docs/guide.md"), "# Guide\n");
    // Applying again: the bases no longer match.
    let again = apply_changeset(&cs, &pol, false).expect("report");
    assert!(again.is_refused());
}

#[tokio::test]
async fn apply_refuses_denied_unwritable_and_escaping_paths() {
    let p = Project::new();
    let before = snapshot(p.path());
    let good = FileChange {
        path: "src/ok.rs".into(),
        base_sha256: None,
        base_content: None,
        new_content: Some("ok\n".into()),
    };
    for bad_path in [
        ".env",
        "../escape.txt",
        "link_dir/x.txt",
        ".git/hooks/pre-commit",
        "README.md",
    ] {
        let bad = FileChange {
            path: bad_path.into(),
            base_sha256: None,
            base_content: None,
            new_content: Some("x\n".into()),
        };
        let cs = Changeset {
            files: vec![good.clone(), bad],
        };
        let pol = policy(
            p.path(),
            &env_with(&[]),
            Some(json!({"writable": ["src/**"]})),
            false,
        )
        .expect("policy");
        let report = apply_changeset(&cs, &pol, false).expect("report");
        assert!(report.is_refused(), "{bad_path}");
        assert!(!report.applied);
        assert_eq!(snapshot(p.path()), before, "{bad_path}");
    }
    assert_eq!(snapshot(p.outside.path()).len(), 1);
}

#[tokio::test]
async fn the_unified_diff_applies_with_git_apply() {
    let repo = tempfile::tempdir().expect("tempdir");
    let r = repo.path();
    common::git(r, &["init", "-q"]);
    common::write(
        r,
        "src/lib.rs",
        "fn a() {}\nfn b() {}\nfn c() {}\nfn d() {}\nfn e() {}\nfn f() {}\nfn g() {}\nfn h() {}\n",
    );
    common::write(r, "no_newline.txt", "one\ntwo");
    common::write(r, "gone.txt", "bye\n");
    common::write(r, "empty_gone.txt", "");
    common::write(r, "dir with space/file.txt", "x\n");
    common::git(r, &["add", "-A"]);
    common::git(r, &["commit", "-q", "-m", "base"]);
    let env = env_with(&[]);
    let (ctx, _) = context(r, &env, None, false);
    let edits = [
        (
            "fs.edit",
            json!({"path": "src/lib.rs", "search": "fn b() {}\n", "replace": "fn b() { todo!() }\n"}),
        ),
        (
            "fs.edit",
            json!({"path": "src/lib.rs", "search": "fn h() {}\n", "replace": "fn h() {}\nfn i() {}"}),
        ),
        (
            "fs.edit",
            json!({"path": "no_newline.txt", "search": "two", "replace": "two\nthree\n"}),
        ),
        (
            "fs.write",
            json!({"path": "new/file.txt", "content": "fresh\nno newline at end"}),
        ),
        ("fs.write", json!({"path": "new/empty.txt", "content": ""})),
        ("fs.delete", json!({"path": "gone.txt"})),
        ("fs.delete", json!({"path": "empty_gone.txt"})),
        (
            "fs.write",
            json!({"path": "dir with space/file.txt", "content": "y\n"}),
        ),
    ];
    for (tool, args) in edits {
        let out = call(&ctx, tool, args.clone()).await.expect("outcome");
        assert_eq!(out.decision, Decision::Simulated, "{tool} {args}");
    }
    let patch = ctx.changeset().to_unified_diff();
    let patch_file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(patch_file.path(), &patch).expect("write patch");
    let patch_path = patch_file.path().display().to_string();
    common::git(r, &["apply", "--check", &patch_path]);
    common::git(r, &["apply", &patch_path]);
    assert_eq!(
        std::fs::read_to_string(r.join("src/lib.rs")).expect("lib"),
        "fn a() {}\nfn b() { todo!() }\nfn c() {}\nfn d() {}\nfn e() {}\nfn f() {}\nfn g() {}\nfn h() {}\nfn i() {}"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("no_newline.txt")).expect("f"),
        "one\ntwo\nthree\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("new/file.txt")).expect("f"),
        "fresh\nno newline at end"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("new/empty.txt")).expect("f"),
        ""
    );
    assert_eq!(
        std::fs::read_to_string(r.join("dir with space/file.txt")).expect("f"),
        "y\n"
    );
    assert!(!r.join("gone.txt").exists());
    assert!(!r.join("empty_gone.txt").exists());
    // And git agrees it is the same change as applying the changeset ourselves.
    let status = common::git(r, &["status", "--porcelain", "--untracked-files=all"]);
    assert!(
        status.contains(" D gone.txt") && status.contains("?? new/file.txt"),
        "{status}"
    );
}
