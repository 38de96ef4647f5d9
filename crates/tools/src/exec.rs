//! Starting a process: argv only (no shell), in its own process group, with a scrubbed
//! environment, confined by the kernel (a Landlock ruleset and resource limits applied between
//! `fork` and `exec`, see `confine.rs`), a timeout that kills the whole group, and output caps
//! that hold however much the process prints (output is read incrementally; only the first
//! `cap` bytes are kept). This is the one place `ao` starts processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ao_core::redact::Redactor;

use crate::confine::Confine;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Variables every child gets on top of the scrubbed environment, so nothing waits on a
/// terminal or a pager.
const CHILD_FIXED_ENV: [(&str, &str); 4] = [
    ("GIT_PAGER", "cat"),
    ("PAGER", "cat"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_OPTIONAL_LOCKS", "0"),
];

/// What a finished (or killed) process left.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExecOutput {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// The resource limit that stopped the process, if a signal says so (`cpu_time`,
    /// `file_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_hit: Option<&'static str>,
    pub duration_ms: u64,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

struct Capture {
    buf: Vec<u8>,
    total: u64,
    cap: usize,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Capture {
            buf: Vec::new(),
            total: 0,
            cap,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        // A little more than the cap is kept, so that redaction sees a secret that straddles
        // the cut whole before the text is cut (see `text`).
        let room = (self.cap + REDACTION_SLACK).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    fn truncated(&self) -> bool {
        self.total > self.cap as u64
    }

    /// The output, redacted, then cut to the cap (with a marker when anything was cut).
    fn text(&self, redactor: Option<&Redactor>) -> String {
        let full = String::from_utf8_lossy(&self.buf);
        let mut s = match redactor {
            Some(r) => r.redact_str(&full),
            None => full.into_owned(),
        };
        if s.len() > self.cap || self.truncated() {
            let mut end = self.cap.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str(&truncation_marker(end as u64, self.total));
        }
        s
    }
}

/// Bytes kept beyond the cap for redaction to see whole (longer than any secret).
const REDACTION_SLACK: usize = 4096;

/// The marker appended to capped output.
pub(crate) fn truncation_marker(kept: u64, total: u64) -> String {
    format!("\n[... output truncated by ao: {kept} of {total} bytes shown ...]")
}

async fn drain<R: AsyncRead + Unpin>(reader: Option<R>, capture: &mut Capture) {
    let Some(mut reader) = reader else { return };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => capture.push(&chunk[..n]),
        }
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: `kill` has no memory-safety preconditions. The child was started with
        // `process_group(0)`, so its pgid equals its pid; a negative pid addresses the group.
        // If the group is already gone this fails with ESRCH, which is fine.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Runs `argv` in `cwd` with exactly `env` (plus pager/prompt suppressors and the private
/// temporary directory) under `confine`, killing the process group after `timeout`. `Err` only
/// when the process cannot be started (or its confinement cannot be set up).
pub(crate) async fn run(
    argv: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    confine: &Confine,
    timeout: Duration,
    cap: usize,
    redactor: Option<&Redactor>,
) -> Result<ExecOutput, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty argv".to_string());
    };
    let mut env = env.clone();
    // Kept until the child is gone: its temporary directory is removed on drop.
    let prepared = confine.prepare(&mut env)?;
    let setup = prepared.child_setup();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(&env)
        .envs(CHILD_FIXED_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: the closure only makes raw, async-signal-safe system calls on values computed
    // before the fork (see `ChildSetup::apply`).
    unsafe {
        cmd.pre_exec(move || setup.apply());
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "cannot start `{program}`: {e}; the confinement lets commands run programs from the system's directories, the toolchain homes, PATH and `[policy] read_dirs` only"
                )
            } else {
                format!("cannot start `{program}`: {e}; is it installed and on PATH?")
            }
        })?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut out = Capture::new(cap);
    let mut err = Capture::new(cap);
    let result = {
        let work = async {
            let (status, (), ()) = tokio::join!(
                async {
                    let status = child.wait().await;
                    // Descendants that kept the pipes open would otherwise hold us until the
                    // timeout.
                    kill_group(pid);
                    status
                },
                drain(stdout, &mut out),
                drain(stderr, &mut err),
            );
            status
        };
        tokio::time::timeout(timeout, work).await
    };
    let (status, timed_out) = match result {
        Ok(status) => (status.ok(), false),
        Err(_elapsed) => {
            kill_group(pid);
            let _ = child.start_kill();
            (child.wait().await.ok(), true)
        }
    };
    drop(prepared);
    use std::os::unix::process::ExitStatusExt;
    let signal = status.and_then(|s| s.signal());
    Ok(ExecOutput {
        exit_code: status.and_then(|s| s.code()),
        signal,
        timed_out,
        limit_hit: match signal {
            Some(libc::SIGXCPU) => Some("cpu_time"),
            Some(libc::SIGXFSZ) => Some("file_size"),
            _ => None,
        },
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        stdout: out.text(redactor),
        stderr: err.text(redactor),
        stdout_bytes: out.total,
        stderr_bytes: err.total,
        stdout_truncated: out.truncated(),
        stderr_truncated: err.truncated(),
    })
}
