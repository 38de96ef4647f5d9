//! Support for tests of the `ao` binary: a project folder to run `ao` in with a clean
//! environment, and helpers to wait for and inspect what runs leave behind.

#![allow(dead_code)]

use ao_testkit::StubModel;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Variables `ao` reads from the environment; tests start without any of them, so the machine's
/// own settings never leak in.
const AO_VARS: &[&str] = &[
    "LEADER_MODEL_PROVIDER",
    "LEADER_MODEL_NAME",
    "LEADER_MODEL_BASE_URL",
    "LEADER_MODEL_API_KEY",
    "LEADER_MODEL_MAX_TOKENS",
    "LEADER_MODEL_TEMPERATURE",
    "LEADER_MODEL_FALLBACK",
    "LEADER_MODEL_MAX_RETRIES",
    "WORKER_MODEL_PROVIDER",
    "WORKER_MODEL_NAME",
    "WORKER_MODEL_BASE_URL",
    "WORKER_MODEL_API_KEY",
    "WORKER_MODEL_MAX_TOKENS",
    "WORKER_MODEL_TEMPERATURE",
    "WORKER_MODEL_FALLBACK",
    "WORKER_MODEL_MAX_RETRIES",
    "LITELLM_BASE_URL",
    "LITELLM_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "MCP_SERVER_NAME",
    "MCP_SERVER_VERSION",
    "LOG_LEVEL",
    "RUST_LOG",
    "AO_DRY_RUN",
    "AO_ALLOW_WRITE",
    "AO_ALLOWED_COMMANDS",
    "AO_STATE_DIR",
];

/// A project folder with its own state dir; every `ao` call runs in it with `env` set.
pub struct Project {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// Sets a variable for every later `ao` call.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// Stops setting a variable for later `ao` calls.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Points the leader at `stub` with `key` as its API key.
    pub fn with_leader(mut self, stub: &StubModel, key: &str) -> Self {
        self.set_env("LEADER_MODEL_PROVIDER", "openai-compatible");
        self.set_env("LEADER_MODEL_NAME", "stub-model");
        self.set_env("LEADER_MODEL_BASE_URL", &stub.base_url);
        self.set_env("LEADER_MODEL_API_KEY", key);
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn configure(&self, c: &mut std::process::Command) {
        c.current_dir(self.path()).env("NO_COLOR", "1");
        for var in AO_VARS {
            c.env_remove(var);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    /// An `ao` process to spawn (for runs that are killed or cancelled).
    pub fn spawn(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("ao"));
        self.configure(&mut c);
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.spawn(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let (code, stdout, stderr) = self.run(args);
        let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{stderr}")
        });
        (code, v)
    }

    pub fn events(&self, run_id: &str) -> Vec<Value> {
        let (code, stdout, stderr) = self.run(&["runs", "events", run_id, "--jsonl"]);
        assert_eq!(code, 0, "{stderr}");
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The newest run's id, once one exists.
    pub fn wait_for_run(&self) -> String {
        let mut id = String::new();
        wait_for("the run to start", Duration::from_secs(30), || {
            let (_, v) = self.json(&["runs", "list", "--json"]);
            match v["runs"][0]["run_id"].as_str() {
                Some(found) => {
                    id = found.to_string();
                    true
                }
                None => false,
            }
        });
        id
    }
}

pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file under `dir`, with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}
