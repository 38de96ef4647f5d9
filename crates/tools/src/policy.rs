//! The one policy gate: mode (dry-run or apply), path containment, `denied` and `writable`
//! globs, the command allowlist, limits and the scrubbed child environment.
//!
//! A [`Policy`] is built once per process (or per MCP call, see [`Policy::with_dry_run`]) from
//! the root, the raw `[policy]` table of `ao.toml`, an environment snapshot and the `--apply`
//! flag. It decides; it does not act: the tools ask it and then do (or simulate) the work.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::PolicyError;

/// Whether writes and commands are real or recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reads are real; writes go to the run's changeset; `exec` is simulated except the
    /// read-only commands.
    DryRun,
    /// Writes hit the disk atomically; allowed commands run.
    Apply,
}

/// The `denied` defaults of the safety model, besides the state dir which is added from the input.
pub const DEFAULT_DENIED: [&str; 11] = [
    ".git/**",
    "**/.git/**",
    ".env",
    ".env.*",
    "**/*.pem",
    "**/*.key",
    "**/id_rsa*",
    "**/id_ed25519*",
    "**/.ssh/**",
    "**/.aws/**",
    "**/*.kdbx",
];

/// Commands that run even in dry-run (argv prefixes).
pub const DEFAULT_READ_ONLY_COMMANDS: [&str; 6] = [
    "git status",
    "git diff",
    "git log",
    "git show",
    "git rev-parse",
    "git ls-files",
];

/// Environment variables a child process may inherit besides `LC_*` and `env_passthrough`.
pub const CHILD_ENV_ALLOWED: [&str; 17] = [
    "PATH",
    "HOME",
    "LANG",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOCACHE",
    "GOMODCACHE",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "NVM_DIR",
    "PYENV_ROOT",
];

/// Default limits; each can be changed in `[policy]`.
pub const DEFAULT_COMMAND_TIMEOUT_S: u64 = 120;
/// Upper bound for a caller-requested `timeout_s`.
pub const DEFAULT_MAX_TIMEOUT_S: u64 = 1800;
/// Cap on each captured output (file content, command stdout, command stderr).
pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 256 * 1024;
/// Cap on the number of entries `fs.list` and matches `fs.search` return.
pub const DEFAULT_MAX_RESULTS: usize = 1000;

/// The `[policy]` table of `ao.toml`. Unknown keys are a configuration error: in a safety
/// setting, a misspelt `writeable` must not silently mean "everything is writable".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Argv prefixes `cmd.run` may start (`"cargo test"` allows `cargo test -p x`).
    /// `AO_ALLOWED_COMMANDS`, when set, replaces this list.
    pub allowed_commands: Option<Vec<String>>,
    /// Argv prefixes that run even in dry-run. Replaces the default read-only git commands.
    pub read_only_commands: Option<Vec<String>>,
    /// Globs (relative to the root) that writes may touch in apply mode. Default: everything
    /// that is not denied.
    pub writable: Option<Vec<String>>,
    /// Globs added to the default `denied` list.
    pub denied: Vec<String>,
    /// Default `denied` globs to remove, spelt exactly as in the defaults. The explicit
    /// override the safety model requires.
    pub override_denied: Vec<String>,
    /// Environment variable names passed to child processes besides the built-in ones.
    pub env_passthrough: Vec<String>,
    /// Default `cmd.run` timeout in seconds.
    pub command_timeout_s: Option<u64>,
    /// Largest `timeout_s` a caller may ask for.
    pub max_timeout_s: Option<u64>,
    /// Cap in bytes on each captured output.
    pub output_cap_bytes: Option<usize>,
    /// Cap on entries from `fs.list` and matches from `fs.search`.
    pub max_results: Option<usize>,
}

/// Limits applied by the tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Default timeout of a command.
    pub command_timeout: Duration,
    /// Largest timeout a caller may ask for.
    pub max_timeout: Duration,
    /// Cap on each captured output, in bytes.
    pub output_cap_bytes: usize,
    /// Cap on list entries and search matches.
    pub max_results: usize,
}

/// What the inputs to [`Policy::new`] are.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The project root; every path must resolve inside it.
    pub root: &'a Path,
    /// `ao`'s state dir (default `<root>/.ao`); denied to the tools.
    pub state_dir: Option<&'a Path>,
    /// The raw `[policy]` table of `ao.toml`, if any.
    pub config: Option<&'a Value>,
    /// Environment snapshot (`AO_DRY_RUN`, `AO_ALLOW_WRITE`, `AO_ALLOWED_COMMANDS`, and the
    /// variables a child may inherit).
    pub env: &'a BTreeMap<String, String>,
    /// `--apply` was given.
    pub apply_flag: bool,
}

/// How a write is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCheck {
    /// Containment and `denied` only (a dry-run write into the changeset).
    Denied,
    /// Also `writable` (a real write, or applying a changeset).
    DeniedAndWritable,
}

/// A path the policy accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    /// Absolute physical path (symlinks resolved).
    pub abs: PathBuf,
    /// Path relative to the root, `/`-separated; empty for the root itself.
    pub rel: String,
}

/// What a command request amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandVerdict {
    /// Run it (read-only, or allowed in apply mode).
    Run,
    /// Allowed, but dry-run: record it as simulated.
    Simulate,
    /// Not allowed, with the reason.
    Deny(String),
}

/// The policy gate. Cheap enough to clone; share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Policy {
    root: PathBuf,
    mode: Mode,
    mode_source: String,
    denied_patterns: Vec<String>,
    denied: GlobSet,
    denied_dirs: GlobSet,
    denied_dir_patterns: Vec<String>,
    writable_patterns: Option<Vec<String>>,
    writable: Option<GlobSet>,
    allowed_commands: Vec<Vec<String>>,
    read_only_commands: Vec<Vec<String>>,
    child_env: BTreeMap<String, String>,
    limits: Limits,
}

/// Parses a boolean environment value as the safety model says: `true`/`false`/`1`/`0`/`yes`/`no`,
/// case-insensitive; anything else is an error naming the variable and the value.
pub fn parse_env_bool(name: &str, value: &str) -> Result<bool, PolicyError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(PolicyError::InvalidEnv {
            name: name.to_string(),
            value: value.to_string(),
            expected: "true, false, 1, 0, yes or no",
        }),
    }
}

/// Splits a comma-separated `AO_ALLOWED_COMMANDS` into argv prefixes.
pub fn parse_allowed_commands_env(value: &str) -> Result<Vec<Vec<String>>, PolicyError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| split_command("AO_ALLOWED_COMMANDS", s))
        .collect()
}

fn split_command(key: &str, entry: &str) -> Result<Vec<String>, PolicyError> {
    let words = shell_words::split(entry).map_err(|e| PolicyError::InvalidConfig {
        key: key.to_string(),
        message: format!("cannot split `{entry}` into words: {e}"),
    })?;
    if words.is_empty() {
        return Err(PolicyError::InvalidConfig {
            key: key.to_string(),
            message: "empty command prefix; remove the entry".to_string(),
        });
    }
    Ok(words)
}

/// Turns a config glob into gitignore-like form: no `/` means "at any depth"; a leading `/`
/// anchors at the root; a trailing `/` means the directory and everything in it.
fn normalize_pattern(pattern: &str) -> Vec<String> {
    let p = pattern.trim();
    let (p, dir_only) = match p.strip_suffix('/') {
        Some(s) => (s, true),
        None => (p, false),
    };
    let anchored = p.starts_with('/') || p.contains('/');
    let p = p.trim_start_matches('/');
    let base = if anchored || p.starts_with("**") {
        p.to_string()
    } else {
        format!("**/{p}")
    };
    if dir_only {
        vec![format!("{base}/**")]
    } else {
        vec![base]
    }
}

/// `case_insensitive` for `denied`: `SERVER.PEM` is as secret as `server.pem`, and on a
/// case-insensitive filesystem `.ENV` is `.env`.
fn build_globset(
    key: &str,
    patterns: &[String],
    case_insensitive: bool,
) -> Result<GlobSet, PolicyError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|e| PolicyError::Glob {
                key: key.to_string(),
                pattern: p.clone(),
                message: e.to_string(),
            })?;
        b.add(glob);
    }
    b.build().map_err(|e| PolicyError::Glob {
        key: key.to_string(),
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// Lexically normalizes a relative path ("a/./b/../c" → "a/c"); `None` if it climbs above.
fn lexical_rel(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Resolves `path` against `root` physically: `..` and symlinks as the OS would, and for parts
/// that do not exist yet, lexically from the deepest existing ancestor.
fn resolve_physical(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    let mut cur = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        root.to_path_buf()
    };
    // Work list in reverse so `pop` yields the next component.
    push_components(&mut pending, path);
    let mut links = 0usize;
    while let Some(part) = pending.pop() {
        if part == "/" {
            cur = PathBuf::from("/");
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err("too many levels of symbolic links".to_string());
                }
                let target = std::fs::read_link(&next)
                    .map_err(|e| format!("cannot read symlink {}: {e}", next.display()))?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => cur = next,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => cur = next,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => cur = next,
            Err(e) => return Err(format!("cannot inspect {}: {e}", next.display())),
        }
    }
    Ok(cur)
}

fn push_components(pending: &mut Vec<std::ffi::OsString>, path: &Path) {
    let parts: Vec<std::ffi::OsString> = path
        .components()
        .map(|c| match c {
            Component::RootDir => std::ffi::OsString::from("/"),
            Component::CurDir => std::ffi::OsString::from("."),
            Component::ParentDir => std::ffi::OsString::from(".."),
            Component::Normal(n) => n.to_os_string(),
            Component::Prefix(p) => p.as_os_str().to_os_string(),
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

impl Policy {
    /// Builds the policy. Errors name the variable or key and the offending value.
    pub fn new(input: PolicyInput<'_>) -> Result<Policy, PolicyError> {
        let root = input.root.canonicalize().map_err(|e| PolicyError::Root {
            path: input.root.to_path_buf(),
            message: e.to_string(),
        })?;
        if !root.is_dir() {
            return Err(PolicyError::Root {
                path: input.root.to_path_buf(),
                message: "not a directory".to_string(),
            });
        }

        let config: PolicyConfig = match input.config {
            None | Some(Value::Null) => PolicyConfig::default(),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| PolicyError::InvalidConfig {
                    key: "policy".to_string(),
                    message: e.to_string(),
                })?
            }
        };

        let (mode, mode_source) = Self::decide_mode(input.env, input.apply_flag)?;

        // denied: defaults minus explicit overrides, plus the state dir, plus config.
        for o in &config.override_denied {
            if !DEFAULT_DENIED.contains(&o.as_str()) {
                return Err(PolicyError::InvalidConfig {
                    key: "policy.override_denied".to_string(),
                    message: format!(
                        "`{o}` is not a default denied pattern; the defaults are: {}",
                        DEFAULT_DENIED.join(", ")
                    ),
                });
            }
        }
        let mut denied_raw: Vec<String> = DEFAULT_DENIED
            .iter()
            .filter(|d| !config.override_denied.iter().any(|o| o == *d))
            .map(|d| d.to_string())
            .collect();
        let state_dir = match input.state_dir {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => input.root.join(p),
            None => input.root.join(".ao"),
        };
        let state_abs = resolve_physical(&root, &state_dir).unwrap_or(state_dir);
        if let Ok(rel) = state_abs.strip_prefix(&root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !rel.is_empty() {
                denied_raw.push(format!("/{rel}/"));
            }
        }
        denied_raw.extend(config.denied.iter().cloned());
        let denied_patterns: Vec<String> = denied_raw
            .iter()
            .flat_map(|p| normalize_pattern(p))
            .collect();
        let denied = build_globset("policy.denied", &denied_patterns, true)?;
        let denied_dir_patterns: Vec<String> = denied_patterns
            .iter()
            .filter_map(|p| p.strip_suffix("/**").map(str::to_string))
            .collect();
        let denied_dirs = build_globset("policy.denied", &denied_dir_patterns, true)?;

        let writable_patterns: Option<Vec<String>> = config
            .writable
            .as_ref()
            .map(|w| w.iter().flat_map(|p| normalize_pattern(p)).collect());
        let writable = match &writable_patterns {
            Some(w) => Some(build_globset("policy.writable", w, false)?),
            None => None,
        };

        let allowed_commands = match input.env.get("AO_ALLOWED_COMMANDS") {
            Some(v) if !v.trim().is_empty() => parse_allowed_commands_env(v)?,
            _ => config
                .allowed_commands
                .iter()
                .flatten()
                .map(|c| split_command("policy.allowed_commands", c))
                .collect::<Result<_, _>>()?,
        };
        let read_only_commands = match &config.read_only_commands {
            Some(list) => list
                .iter()
                .map(|c| split_command("policy.read_only_commands", c))
                .collect::<Result<_, _>>()?,
            None => DEFAULT_READ_ONLY_COMMANDS
                .iter()
                .map(|c| split_command("read_only_commands", c))
                .collect::<Result<_, _>>()?,
        };

        let mut child_env: BTreeMap<String, String> = input
            .env
            .iter()
            .filter(|(k, _)| {
                CHILD_ENV_ALLOWED.contains(&k.as_str())
                    || k.starts_with("LC_")
                    || config.env_passthrough.iter().any(|p| p == *k)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // git must not climb out of the root to a repository around it: its paths, pathspec
        // exclusions and output would then be about files outside the root.
        if let Some(parent) = root.parent() {
            child_env.insert(
                "GIT_CEILING_DIRECTORIES".to_string(),
                parent.display().to_string(),
            );
        }

        let positive = |key: &str, v: Option<u64>, d: u64| -> Result<u64, PolicyError> {
            match v {
                Some(0) => Err(PolicyError::InvalidConfig {
                    key: key.to_string(),
                    message: "must be greater than 0".to_string(),
                }),
                Some(n) => Ok(n),
                None => Ok(d),
            }
        };
        let command_timeout_s = positive(
            "policy.command_timeout_s",
            config.command_timeout_s,
            DEFAULT_COMMAND_TIMEOUT_S,
        )?;
        let max_timeout_s = positive(
            "policy.max_timeout_s",
            config.max_timeout_s,
            DEFAULT_MAX_TIMEOUT_S.max(command_timeout_s),
        )?;
        let output_cap = positive(
            "policy.output_cap_bytes",
            config.output_cap_bytes.map(|n| n as u64),
            DEFAULT_OUTPUT_CAP_BYTES as u64,
        )?;
        let max_results = positive(
            "policy.max_results",
            config.max_results.map(|n| n as u64),
            DEFAULT_MAX_RESULTS as u64,
        )?;

        Ok(Policy {
            root,
            mode,
            mode_source,
            denied_patterns,
            denied,
            denied_dirs,
            denied_dir_patterns,
            writable_patterns,
            writable,
            allowed_commands,
            read_only_commands,
            child_env,
            limits: Limits {
                command_timeout: Duration::from_secs(command_timeout_s),
                max_timeout: Duration::from_secs(max_timeout_s),
                output_cap_bytes: usize::try_from(output_cap).unwrap_or(usize::MAX),
                max_results: usize::try_from(max_results).unwrap_or(usize::MAX),
            },
        })
    }

    fn decide_mode(
        env: &BTreeMap<String, String>,
        apply_flag: bool,
    ) -> Result<(Mode, String), PolicyError> {
        // Parse both even with --apply, so a typo is reported rather than ignored.
        let dry_run = env
            .get("AO_DRY_RUN")
            .map(|v| parse_env_bool("AO_DRY_RUN", v))
            .transpose()?;
        let allow_write = env
            .get("AO_ALLOW_WRITE")
            .map(|v| parse_env_bool("AO_ALLOW_WRITE", v))
            .transpose()?;
        Ok(if apply_flag {
            (Mode::Apply, "--apply".to_string())
        } else if dry_run == Some(false) && allow_write == Some(true) {
            (
                Mode::Apply,
                "AO_DRY_RUN=false and AO_ALLOW_WRITE=true".to_string(),
            )
        } else if dry_run == Some(false) {
            (
                Mode::DryRun,
                "AO_DRY_RUN=false without AO_ALLOW_WRITE=true stays dry-run".to_string(),
            )
        } else {
            (Mode::DryRun, "default".to_string())
        })
    }

    /// The same policy forced to dry-run (an MCP client asking for less than the server allows).
    pub fn with_dry_run(&self) -> Policy {
        let mut p = self.clone();
        if p.mode != Mode::DryRun {
            p.mode = Mode::DryRun;
            p.mode_source = "dry-run requested by the caller".to_string();
        }
        p
    }

    /// Canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Dry-run or apply.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Why the mode is what it is (for `ao doctor` and run records).
    pub fn mode_source(&self) -> &str {
        &self.mode_source
    }

    /// The effective `denied` globs (normalized).
    pub fn denied_patterns(&self) -> &[String] {
        &self.denied_patterns
    }

    /// The effective `writable` globs (normalized); `None` means everything not denied.
    pub fn writable_patterns(&self) -> Option<&[String]> {
        self.writable_patterns.as_deref()
    }

    /// The allowed argv prefixes.
    pub fn allowed_commands(&self) -> &[Vec<String>] {
        &self.allowed_commands
    }

    /// The argv prefixes that run even in dry-run.
    pub fn read_only_commands(&self) -> &[Vec<String>] {
        &self.read_only_commands
    }

    /// Limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The environment a child process gets (already scrubbed).
    pub fn child_env(&self) -> &BTreeMap<String, String> {
        &self.child_env
    }

    /// Resolves `input` (relative to the root, or absolute) and checks containment and
    /// `denied`. `Err` carries the denial reason.
    pub fn check_read(&self, input: &str) -> Result<ResolvedPath, String> {
        self.check(input)
    }

    /// Like [`Policy::check_read`], and with [`WriteCheck::DeniedAndWritable`] also `writable`.
    pub fn check_write(&self, input: &str, check: WriteCheck) -> Result<ResolvedPath, String> {
        let resolved = self.check(input)?;
        if resolved.rel.is_empty() {
            return Err("the root itself cannot be written".to_string());
        }
        if check == WriteCheck::DeniedAndWritable
            && let Some(w) = &self.writable
            && !w.is_match(&resolved.rel)
        {
            return Err(format!(
                "`{}` does not match any `writable` pattern ({})",
                resolved.rel,
                self.writable_patterns.as_deref().unwrap_or(&[]).join(", ")
            ));
        }
        Ok(resolved)
    }

    /// The write check a tool write needs in the current mode.
    pub fn tool_write_check(&self) -> WriteCheck {
        match self.mode {
            Mode::DryRun => WriteCheck::Denied,
            Mode::Apply => WriteCheck::DeniedAndWritable,
        }
    }

    fn check(&self, input: &str) -> Result<ResolvedPath, String> {
        if input.contains('\0') {
            return Err("path contains a NUL byte".to_string());
        }
        let path = Path::new(input);
        let abs = resolve_physical(&self.root, path)?;
        let rel = match abs.strip_prefix(&self.root) {
            Ok(r) => r.to_string_lossy().replace('\\', "/"),
            Err(_) => {
                return Err(format!(
                    "`{input}` resolves outside the project root (after `..` and symlink resolution)"
                ));
            }
        };
        if let Some(p) = self.denied_match(&rel) {
            return Err(format!("`{input}` matches the denied pattern `{p}`"));
        }
        // The name as written matters too: a symlink named `id_rsa` is denied even if it
        // points at an ordinary file.
        let lexical = if path.is_absolute() {
            path.strip_prefix(&self.root).ok().and_then(lexical_rel)
        } else {
            lexical_rel(path)
        };
        if let Some(lex) = lexical
            && let Some(p) = self.denied_match(&lex)
        {
            return Err(format!("`{input}` matches the denied pattern `{p}`"));
        }
        Ok(ResolvedPath { abs, rel })
    }

    /// The denied pattern `rel` (root-relative, `/`-separated) falls under, if any: the path
    /// itself, any ancestor, or a directory whose whole content is denied.
    pub fn denied_match(&self, rel: &str) -> Option<&str> {
        if rel.is_empty() {
            return None;
        }
        let mut candidate = rel;
        loop {
            if let Some(i) = self.denied.matches(candidate).first() {
                return Some(&self.denied_patterns[*i]);
            }
            if let Some(i) = self.denied_dirs.matches(candidate).first() {
                return Some(&self.denied_dir_patterns[*i]);
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return None,
            }
        }
    }

    /// Allowed prefixes that amount to arbitrary code execution (for `ao doctor` to warn
    /// about): interpreters, shells, package runners, and `cargo run`/`make` style entries
    /// that run whatever the project (which a model can edit) says.
    pub fn arbitrary_code_warnings(&self) -> Vec<String> {
        const PROGRAMS: [&str; 22] = [
            "sh", "bash", "zsh", "dash", "fish", "env", "xargs", "node", "deno", "bun", "python",
            "python3", "perl", "ruby", "php", "npx", "bunx", "docker", "sudo", "eval", "exec",
            "busybox",
        ];
        const PREFIXES: [&[&str]; 8] = [
            &["pnpm", "exec"],
            &["pnpm", "dlx"],
            &["npm", "exec"],
            &["npm", "run"],
            &["yarn", "dlx"],
            &["uv", "run"],
            &["cargo", "run"],
            &["make"],
        ];
        self.allowed_commands
            .iter()
            .filter(|argv| {
                let program = argv
                    .first()
                    .map(|p| p.rsplit('/').next().unwrap_or(p))
                    .unwrap_or("");
                PROGRAMS.contains(&program)
                    || PREFIXES.iter().any(|pre| {
                        // `cargo run --bin x` is narrower; only the bare prefix is arbitrary.
                        argv.len() == pre.len() && argv.iter().zip(pre.iter()).all(|(a, b)| a == b)
                    })
            })
            .map(|argv| {
                format!(
                    "allowed command `{}` amounts to arbitrary code execution",
                    shell_words::join(argv)
                )
            })
            .collect()
    }

    /// Decides what `cmd.run` may do with `argv`.
    pub fn check_command(&self, argv: &[String]) -> CommandVerdict {
        let Some(program) = argv.first() else {
            return CommandVerdict::Deny("empty argv".to_string());
        };
        if program.is_empty() {
            return CommandVerdict::Deny("empty program name".to_string());
        }
        let starts =
            |prefix: &Vec<String>| argv.len() >= prefix.len() && argv[..prefix.len()] == prefix[..];
        let read_only = self.read_only_commands.iter().any(starts);
        let allowed = self.allowed_commands.iter().any(starts);
        if !read_only && !allowed {
            let list: Vec<String> = self
                .read_only_commands
                .iter()
                .chain(&self.allowed_commands)
                .map(shell_words::join)
                .collect();
            return CommandVerdict::Deny(format!(
                "`{}` does not start with an allowed command prefix (allowed: {}); add a prefix to `AO_ALLOWED_COMMANDS` or `[policy] allowed_commands`",
                shell_words::join(argv),
                list.join(", ")
            ));
        }
        if program == "git" {
            if let Err(reason) = crate::git::screen_git_args(&argv[1..]) {
                return CommandVerdict::Deny(reason);
            }
            // `HEAD:.env` would show a denied file's content from history.
            for a in argv[1..].iter().filter(|a| !a.starts_with('-')) {
                if let Some((_, path)) = a.split_once(':') {
                    let lexical = lexical_rel(Path::new(path.trim_start_matches('/')));
                    if let Some(p) = lexical.as_deref().and_then(|l| self.denied_match(l)) {
                        return CommandVerdict::Deny(format!(
                            "git argument `{a}` names a path matching the denied pattern `{p}`"
                        ));
                    }
                }
            }
        }
        match (read_only, self.mode) {
            (true, _) | (false, Mode::Apply) => CommandVerdict::Run,
            (false, Mode::DryRun) => CommandVerdict::Simulate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn policy(
        root: &Path,
        config: Option<Value>,
        e: &[(&str, &str)],
        apply: bool,
    ) -> Result<Policy, PolicyError> {
        let env = env(e);
        Policy::new(PolicyInput {
            root,
            state_dir: None,
            config: config.as_ref(),
            env: &env,
            apply_flag: apply,
        })
    }

    #[test]
    fn mode_needs_both_env_vars_or_the_flag() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let r = dir.path();
        assert_eq!(policy(r, None, &[], false)?.mode(), Mode::DryRun);
        assert_eq!(
            policy(r, None, &[("AO_DRY_RUN", "false")], false)?.mode(),
            Mode::DryRun
        );
        assert_eq!(
            policy(r, None, &[("AO_ALLOW_WRITE", "true")], false)?.mode(),
            Mode::DryRun
        );
        assert_eq!(
            policy(
                r,
                None,
                &[("AO_DRY_RUN", "No"), ("AO_ALLOW_WRITE", "YES")],
                false
            )?
            .mode(),
            Mode::Apply
        );
        assert_eq!(
            policy(
                r,
                None,
                &[("AO_DRY_RUN", "0"), ("AO_ALLOW_WRITE", "1")],
                false
            )?
            .mode(),
            Mode::Apply
        );
        assert_eq!(policy(r, None, &[], true)?.mode(), Mode::Apply);
        assert_eq!(
            policy(r, None, &[], true)?.with_dry_run().mode(),
            Mode::DryRun
        );
        Ok(())
    }

    #[test]
    fn env_bool_parsing() {
        for (v, b) in [
            ("true", true),
            ("1", true),
            ("yes", true),
            ("TRUE", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("No", false),
        ] {
            assert_eq!(parse_env_bool("AO_DRY_RUN", v).ok(), Some(b), "{v}");
        }
        let err = parse_env_bool("AO_DRY_RUN", "maybe")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("AO_DRY_RUN") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn patterns_are_gitignore_like() {
        assert_eq!(normalize_pattern(".env"), vec!["**/.env"]);
        assert_eq!(normalize_pattern("/.ao/"), vec![".ao/**"]);
        assert_eq!(normalize_pattern("src/**"), vec!["src/**"]);
        assert_eq!(normalize_pattern("**/*.pem"), vec!["**/*.pem"]);
    }

    #[test]
    fn command_prefixes_match_whole_words() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let p = policy(
            dir.path(),
            None,
            &[("AO_ALLOWED_COMMANDS", "cargo test, echo")],
            true,
        )?;
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            p.check_command(&argv("cargo test -p x")),
            CommandVerdict::Run
        );
        assert!(matches!(
            p.check_command(&argv("cargo publish")),
            CommandVerdict::Deny(_)
        ));
        assert!(matches!(
            p.check_command(&argv("cargo testx")),
            CommandVerdict::Deny(_)
        ));
        assert_eq!(p.check_command(&argv("git status")), CommandVerdict::Run);
        assert!(matches!(
            p.check_command(&argv("git diff --output=x")),
            CommandVerdict::Deny(_)
        ));
        let dry = p.with_dry_run();
        assert_eq!(
            dry.check_command(&argv("echo hi")),
            CommandVerdict::Simulate
        );
        assert_eq!(dry.check_command(&argv("git log")), CommandVerdict::Run);
        Ok(())
    }

    #[test]
    fn arbitrary_code_prefixes_are_flagged() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let p = policy(
            dir.path(),
            None,
            &[(
                "AO_ALLOWED_COMMANDS",
                "cargo test,bash,/usr/bin/python3 -c,cargo run,cargo run --bin x,pnpm exec",
            )],
            false,
        )?;
        let w = p.arbitrary_code_warnings();
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w.iter().any(|m| m.contains("`bash`")));
        assert!(
            !w.iter()
                .any(|m| m.contains("cargo test") || m.contains("--bin"))
        );
        Ok(())
    }

    #[test]
    fn unknown_config_keys_and_bad_overrides_are_errors() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let e = policy(
            dir.path(),
            Some(serde_json::json!({"writeable": ["src/**"]})),
            &[],
            false,
        )
        .err();
        assert!(
            e.map(|e| e.to_string())
                .unwrap_or_default()
                .contains("writeable")
        );
        let e = policy(
            dir.path(),
            Some(serde_json::json!({"override_denied": ["nope"]})),
            &[],
            false,
        )
        .err();
        assert!(
            e.map(|e| e.to_string())
                .unwrap_or_default()
                .contains("nope")
        );
        let p = policy(
            dir.path(),
            Some(serde_json::json!({"override_denied": [".env.*"]})),
            &[],
            false,
        )?;
        assert!(p.check_read(".env.example").is_ok());
        assert!(p.check_read(".env").is_err());
        Ok(())
    }

    #[test]
    fn denied_covers_directories_and_nested_names() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let p = policy(
            dir.path(),
            Some(serde_json::json!({"denied": ["secrets"]})),
            &[],
            false,
        )?;
        for denied in [
            ".git",
            ".git/config",
            ".ao",
            ".ao/runs.db",
            "sub/.env",
            "a/b/c.pem",
            "x/.ssh",
            "secrets/a",
            "deep/secrets/b",
        ] {
            assert!(p.check_read(denied).is_err(), "{denied} should be denied");
        }
        for ok in ["", "src/main.rs", ".gitignore", "env", "a.pem.txt"] {
            assert!(p.check_read(ok).is_ok(), "{ok} should be readable");
        }
        Ok(())
    }
}
