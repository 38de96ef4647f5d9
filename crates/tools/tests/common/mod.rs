//! Shared fixtures for the integration tests: a temp project, a context builder, and a
//! byte-for-byte snapshot of a directory tree.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ao_core::redact::Redactor;
use ao_tools::{
    MemoryRecorder, Policy, PolicyConfig, PolicyEnv, PolicyInput, ToolContext, ToolError,
    ToolOutcome, ToolRegistry,
};
use serde_json::Value;

/// What a path in a tree is, with its bytes for files and its target for symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
}

/// Every path under `dir` (not following symlinks) with its content.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(base).expect("under base").to_path_buf();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    Node::Symlink(std::fs::read_link(&p).expect("read_link")),
                );
            } else if meta.is_dir() {
                out.insert(rel, Node::Dir);
                walk(base, &p, out);
            } else {
                out.insert(rel, Node::File(std::fs::read(&p).expect("read")));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// A project in a temp dir plus a sibling temp dir that stands for "outside the root".
pub struct Project {
    pub root: tempfile::TempDir,
    pub outside: tempfile::TempDir,
}

impl Project {
    /// src/lib.rs, README.md, notes.txt (no trailing newline), .env, keys/server.pem,
    /// sub/.env, .git/config, a symlink to a file outside and one to a directory outside.
    pub fn new() -> Project {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        write(r, "src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n");
        write(r, "README.md", "# Demo\n\nSome text.\n");
        write(r, "notes.txt", "first line\nlast line without newline");
        write(r, ".env", "OPENAI_API_KEY=sk-from-dotenv-file-0000\n");
        write(r, "sub/.env", "NESTED=secret-nested\n");
        write(r, "keys/server.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
        write(r, ".git/config", "[core]\n\tbare = false\n");
        write(outside.path(), "secret.txt", "outside secret\n");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), r.join("link_file"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), r.join("link_dir")).expect("symlink");
        Project { root, outside }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).expect("read file")
    }
}

pub fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

/// PATH and HOME from the test process plus `pairs`.
pub fn env_with(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for k in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(k) {
            env.insert(k.to_string(), v);
        }
    }
    for (k, v) in pairs {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// The policy for `root`: `config` is the `[policy]` table as JSON, `env` supplies both the
/// policy variables and the children's environment.
pub fn policy(
    root: &Path,
    env: &BTreeMap<String, String>,
    config: Option<Value>,
    apply: bool,
) -> Result<Policy, ao_tools::PolicyError> {
    let config: PolicyConfig = config
        .map(|c| serde_json::from_value(c).expect("a valid [policy] table"))
        .unwrap_or_default();
    let policy_env = PolicyEnv::from_vars(env).expect("valid policy variables");
    Policy::new(PolicyInput {
        root,
        state_dir: None,
        config: &config,
        policy_env: &policy_env,
        env,
        apply_flag: apply,
    })
}

/// A run context over `root` with a memory recorder and a redactor built from `env`.
pub fn context(
    root: &Path,
    env: &BTreeMap<String, String>,
    config: Option<Value>,
    apply: bool,
) -> (ToolContext, Arc<MemoryRecorder>) {
    let policy = policy(root, env, config, apply).expect("policy");
    let recorder = Arc::new(MemoryRecorder::new());
    let redactor = Redactor::new(env, Vec::<String>::new());
    (
        ToolContext::new(Arc::new(policy), recorder.clone(), redactor),
        recorder,
    )
}

pub async fn call(ctx: &ToolContext, name: &str, args: Value) -> Result<ToolOutcome, ToolError> {
    ToolRegistry::standard().call(name, args, ctx).await
}

/// Runs git in `dir` for test setup, with a fixed identity.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
