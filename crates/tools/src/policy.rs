//! The one policy gate: mode (dry-run or apply), path containment, `denied` and `writable`
//! globs, hard links, the command allowlist with option screening, limits and the scrubbed
//! child environment.
//!
//! A [`Policy`] is built once per process (or per MCP call, see [`Policy::with_dry_run`]) from
//! the root, the typed `[policy]` table ([`PolicyConfig`]) and policy variables ([`PolicyEnv`])
//! of the configuration, an environment snapshot for the children and the `--apply` flag. It
//! decides; the tools then act, reaching the paths it accepted through a directory descriptor
//! held on the root (see `beneath.rs`), so what they touch is what it checked. Building it also
//! finishes (or rolls back) an `ao apply` that a crash interrupted in this root.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub use ao_core::config::{Mode, PolicyConfig, PolicyEnv};
use ao_core::redact::is_secret_name;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::beneath::RootDir;
use crate::error::PolicyError;
pub use crate::screen::CommandPermit;

/// The `denied` defaults of the safety model, besides the state dir which is added from the
/// input. `[policy] override_denied` removes one, spelt exactly as here.
pub const DEFAULT_DENIED: [&str; 24] = [
    ".git/**",
    "**/.git/**",
    ".env",
    ".env.*",
    "**/*.pem",
    "**/*.key",
    "**/id_rsa*",
    "**/id_ed25519*",
    "**/id_ecdsa*",
    "**/id_dsa*",
    "**/.ssh/**",
    "**/.aws/**",
    "**/*.kdbx",
    "**/*.p12",
    "**/*.pfx",
    "**/.npmrc",
    "**/.netrc",
    "**/.git-credentials",
    "**/.pgpass",
    "**/.docker/config.json",
    "**/.kube/config",
    "**/.gnupg/**",
    "**/credentials.json",
    "**/*.tfstate",
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

/// Environment variables a child process may inherit besides `LC_*` (whose names do not
/// mark a secret) and `env_passthrough`.
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
    /// `ao`'s state dir (default `<root>/.ao`); denied to the tools, and where `ao apply`
    /// keeps its journal.
    pub state_dir: Option<&'a Path>,
    /// The `[policy]` table of `ao.toml`.
    pub config: &'a PolicyConfig,
    /// The policy variables (`AO_DRY_RUN`, `AO_ALLOW_WRITE`, `AO_ALLOWED_COMMANDS`), parsed.
    pub policy_env: &'a PolicyEnv,
    /// Environment snapshot the child processes' variables are taken from.
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
    root_dir: RootDir,
    state_dir: PathBuf,
    allow_hardlinks: bool,
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
    confinement: crate::confine::Settings,
    /// Directories outside the root commands may write besides `[policy] cache_dirs` (a
    /// sandbox's shared build cache).
    extra_write_dirs: Vec<PathBuf>,
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

        let root_dir = RootDir::open(&root).map_err(|e| PolicyError::Root {
            path: input.root.to_path_buf(),
            message: e.to_string(),
        })?;
        let config = input.config;
        let (mode, mode_source) = input.policy_env.mode(input.apply_flag);

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
        let state_dir = state_abs.clone();
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

        let allowed_commands = match &input.policy_env.allowed_commands {
            Some(list) => list
                .value
                .iter()
                .map(|c| split_command("AO_ALLOWED_COMMANDS", c))
                .collect::<Result<_, _>>()?,
            None => config
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
                    // A locale variable is passed on by its prefix; one whose name marks a
                    // secret (`LC_API_KEY`) is not a locale setting and stays behind.
                    || (k.starts_with("LC_") && !is_secret_name(k))
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

        let command_timeout_s = config
            .command_timeout_s
            .map_or(DEFAULT_COMMAND_TIMEOUT_S, |n| n.get());
        let max_timeout_s = config
            .max_timeout_s
            .map_or(DEFAULT_MAX_TIMEOUT_S.max(command_timeout_s), |n| n.get());
        let output_cap_bytes = config
            .output_cap_bytes
            .map_or(DEFAULT_OUTPUT_CAP_BYTES, |n| n.get());
        let max_results = config.max_results.map_or(DEFAULT_MAX_RESULTS, |n| n.get());
        let confinement = crate::confine::Settings::new(config, &child_env, &root)
            .map_err(|(key, message)| PolicyError::InvalidConfig { key, message })?;

        // An apply that a crash interrupted is finished (or rolled back) before anything reads
        // the tree, so no run ever sees it half-written.
        crate::journal::recover(&state_dir).map_err(|message| PolicyError::InterruptedApply {
            state_dir: state_dir.clone(),
            message,
        })?;

        Ok(Policy {
            root,
            root_dir,
            state_dir,
            allow_hardlinks: config.allow_hardlinks,
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
                output_cap_bytes,
                max_results,
            },
            confinement,
            extra_write_dirs: Vec::new(),
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

    /// The same rules rooted at a validation sandbox (see [`crate::sandbox`]): commands run
    /// there for real (apply mode — the sandbox is a disposable copy), with `extra_command`
    /// allowed besides the allowlist (the user's own validation command) and `extra_env` set
    /// for the children. The directories `extra_env` names (build caches) are writable for the
    /// commands besides the sandbox.
    pub fn sandboxed(
        &self,
        root: &Path,
        extra_command: Option<&[String]>,
        extra_env: &[(&str, &Path)],
    ) -> Result<Policy, PolicyError> {
        let canonical = root.canonicalize().map_err(|e| PolicyError::Root {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
        let root_dir = RootDir::open(&canonical).map_err(|e| PolicyError::Root {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut p = self.clone();
        p.root = canonical;
        p.root_dir = root_dir;
        p.mode = Mode::Apply;
        p.mode_source = "a validation sandbox (a disposable copy of the project)".to_string();
        if let Some(argv) = extra_command
            && !argv.is_empty()
            && !p.allowed_commands.iter().any(|a| a.as_slice() == argv)
        {
            p.allowed_commands.push(argv.to_vec());
        }
        for (k, v) in extra_env {
            p.child_env
                .insert((*k).to_string(), v.display().to_string());
            p.extra_write_dirs.push(v.to_path_buf());
        }
        Ok(p)
    }

    /// Canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The descriptor held on the root, through which every file operation goes.
    pub(crate) fn root_dir(&self) -> &RootDir {
        &self.root_dir
    }

    /// The state dir (physical path), where `ao apply` keeps its journal.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether files with several hard links may be read (`[policy] allow_hardlinks`).
    pub fn allow_hardlinks(&self) -> bool {
        self.allow_hardlinks
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

    /// The kernel confinement of a process started for this policy: the root is writable when
    /// `root_writable` (a command in apply mode), read-only otherwise.
    pub(crate) fn confine(&self, root_writable: bool) -> crate::confine::Confine {
        crate::confine::Confine::new(&self.confinement, &self.root, root_writable)
            .with_write_dirs(&self.extra_write_dirs)
    }

    /// The confinement of a `cmd.run` command: the root is writable in apply mode only.
    pub(crate) fn command_confine(&self) -> crate::confine::Confine {
        self.confine(self.mode == Mode::Apply)
    }

    /// What confinement a command in apply mode gets on this machine (for `ao doctor`).
    pub fn confinement_summary(&self) -> crate::confine::ConfinementSummary {
        self.confine(true).summary()
    }

    /// `[policy] require_confinement`: commands are refused when the kernel cannot enforce
    /// the whole confinement.
    pub fn require_confinement(&self) -> bool {
        self.confinement.required()
    }

    /// The resource limits every child gets.
    pub fn resource_limits(&self) -> crate::confine::ResourceLimits {
        self.confinement.limits()
    }

    #[cfg(test)]
    pub(crate) fn set_landlock_abi(&mut self, abi: u8) {
        self.confinement.set_abi(abi);
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
        // A second name for a file may be a name for one outside the root or a denied one;
        // the tools check again on the descriptor they open, so a link made later is caught.
        if !self.allow_hardlinks
            && let Ok(meta) = std::fs::symlink_metadata(&abs)
            && meta.is_file()
            && meta.nlink() > 1
        {
            return Err(format!(
                "`{input}`: {}",
                crate::beneath::hardlink_reason(meta.nlink())
            ));
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

    /// The git pathspecs that hide every denied path from git output: for each denied pattern
    /// (braces expanded), the pattern and everything under it, matched without regard to case,
    /// so git shows exactly the files `fs.read` may read.
    pub fn git_exclusions(&self) -> Vec<String> {
        let mut specs: Vec<String> = Vec::new();
        for p in self.denied_patterns.iter().chain(&self.denied_dir_patterns) {
            for q in expand_braces(p) {
                let mut forms = vec![q.clone()];
                if !q.ends_with("/**") {
                    forms.push(format!("{q}/**"));
                }
                for f in forms {
                    let spec = format!(":(top,exclude,glob,icase){f}");
                    if !specs.contains(&spec) {
                        specs.push(spec);
                    }
                }
            }
        }
        specs
    }

    /// Allowed prefixes that amount to arbitrary code execution (for `ao doctor` to warn
    /// about): interpreters, shells, package runners, and `cargo run`/`make` style entries
    /// that run whatever the project (which a model can edit) says.
    pub fn arbitrary_code_warnings(&self) -> Vec<String> {
        self.allowed_commands
            .iter()
            .filter(|argv| crate::screen::is_arbitrary(argv))
            .map(|argv| {
                format!(
                    "allowed command `{}` amounts to arbitrary code execution",
                    shell_words::join(argv)
                )
            })
            .collect()
    }

    /// For each allowed and read-only prefix, what it still permits after ao's screening (for
    /// `ao doctor`).
    pub fn command_permits(&self) -> Vec<CommandPermit> {
        self.read_only_commands
            .iter()
            .chain(&self.allowed_commands)
            .map(|p| crate::screen::explain(p))
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
        let inside = |p: &str| self.check(p).map(|_| ());
        if let Err(reason) = crate::screen::screen(argv, &inside) {
            return CommandVerdict::Deny(reason);
        }
        if crate::screen::program_name(program) == "git" {
            // `HEAD:.env` would show a denied file's content from history, and `git blame .env`
            // the file itself: a positional argument that names a denied path is refused.
            for a in argv[1..].iter().filter(|a| !a.starts_with('-')) {
                let path = a.split_once(':').map_or(a.as_str(), |(_, p)| p);
                let lexical = lexical_rel(Path::new(path.trim_start_matches('/')));
                if let Some(p) = lexical.as_deref().and_then(|l| self.denied_match(l)) {
                    return CommandVerdict::Deny(format!(
                        "git argument `{a}` names a path matching the denied pattern `{p}`"
                    ));
                }
            }
        }
        match (read_only, self.mode) {
            (true, _) | (false, Mode::Apply) => CommandVerdict::Run,
            (false, Mode::DryRun) => CommandVerdict::Simulate,
        }
    }
}

/// Expands `{a,b}` alternatives (nested too) into one pattern per choice, as git's pathspec
/// globs have no braces.
fn expand_braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0
                    && let Some(o) = open
                {
                    let (head, inner, tail) =
                        (&pattern[..o], &pattern[o + 1..i], &pattern[i + 1..]);
                    let mut out = Vec::new();
                    for choice in split_top_level(inner) {
                        for rest in expand_braces(&format!("{choice}{tail}")) {
                            out.push(format!("{head}{rest}"));
                        }
                    }
                    return out;
                }
            }
            _ => {}
        }
    }
    vec![pattern.to_string()]
}

/// Splits a brace body at its top-level commas.
fn split_top_level(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut escaped = false;
    for (i, b) in inner.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
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
        config: Option<serde_json::Value>,
        e: &[(&str, &str)],
        apply: bool,
    ) -> Result<Policy, PolicyError> {
        let env = env(e);
        let config: PolicyConfig = config
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| PolicyError::InvalidConfig {
                key: "policy".into(),
                message: e.to_string(),
            })?
            .unwrap_or_default();
        let policy_env = PolicyEnv::from_vars(&env).map_err(|e| PolicyError::InvalidConfig {
            key: "env".into(),
            message: e.to_string(),
        })?;
        Policy::new(PolicyInput {
            root,
            state_dir: None,
            config: &config,
            policy_env: &policy_env,
            env: &env,
            apply_flag: apply,
        })
    }

    #[test]
    fn a_sandbox_allows_the_users_own_command_once_and_keeps_the_settings() {
        let dir = tempfile::tempdir().expect("tmp");
        let sandbox = tempfile::tempdir().expect("tmp");
        let base = policy(
            dir.path(),
            Some(serde_json::json!({"allowed_commands": ["cargo test"], "require_confinement": true})),
            &[],
            false,
        )
        .expect("policy");
        assert!(base.require_confinement());
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let grep = argv("grep -q x f");
        let p = base
            .sandboxed(sandbox.path(), Some(&grep), &[])
            .expect("sandbox");
        assert_eq!(p.allowed_commands(), &[argv("cargo test"), grep.clone()]);
        assert_eq!(p.mode(), Mode::Apply);
        assert!(p.require_confinement(), "the sandbox keeps [policy]");
        // An empty command adds nothing; an allowed one is not added twice.
        let p = base
            .sandboxed(sandbox.path(), Some(&[]), &[])
            .expect("sandbox");
        assert_eq!(p.allowed_commands(), &[argv("cargo test")]);
        let p = base
            .sandboxed(sandbox.path(), Some(&argv("cargo test")), &[])
            .expect("sandbox");
        assert_eq!(p.allowed_commands(), &[argv("cargo test")]);
        let off = policy(dir.path(), None, &[], false).expect("policy");
        assert!(!off.require_confinement());
    }

    #[test]
    fn dot_components_resolve_to_the_same_file() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("src/lib.rs"), "").expect("write");
        let p = policy(dir.path(), None, &[], false).expect("policy");
        for path in ["src/./lib.rs", "./src//lib.rs", "src/lib.rs"] {
            assert_eq!(p.check_read(path).expect(path).rel, "src/lib.rs", "{path}");
        }
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
    fn bad_overrides_are_errors_and_a_good_one_removes_a_default() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
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
            Some(serde_json::json!({"override_denied": [".env.*", "**/*.tfstate"]})),
            &[],
            false,
        )?;
        assert!(p.check_read(".env.example").is_ok());
        assert!(p.check_read(".env").is_err());
        assert!(p.check_read("infra/prod.tfstate").is_ok());
        Ok(())
    }

    #[test]
    fn the_new_default_denied_entries_cover_credentials() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let p = policy(dir.path(), None, &[], false)?;
        for denied in [
            "id_ecdsa",
            "home/.ssh2/id_ecdsa.pub",
            "id_dsa",
            "certs/client.p12",
            "CERTS/CLIENT.PFX",
            ".npmrc",
            "web/.npmrc",
            ".netrc",
            ".git-credentials",
            ".pgpass",
            ".docker/config.json",
            "ops/.kube/config",
            ".gnupg/pubring.kbx",
            "credentials.json",
            "infra/terraform.tfstate",
        ] {
            assert!(p.check_read(denied).is_err(), "{denied} should be denied");
        }
        for ok in [
            "docker/config.json",
            "kube/config",
            "credentials.json.md",
            "gnupg.txt",
        ] {
            assert!(p.check_read(ok).is_ok(), "{ok} should be readable");
        }
        Ok(())
    }

    #[test]
    fn git_exclusions_ignore_case_and_cover_a_folder_named_without_a_slash()
    -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let p = policy(
            dir.path(),
            Some(serde_json::json!({"denied": ["secrets", "conf/{a,b}.txt"]})),
            &[],
            false,
        )?;
        let x = p.git_exclusions();
        for want in [
            ":(top,exclude,glob,icase)**/secrets",
            ":(top,exclude,glob,icase)**/secrets/**",
            ":(top,exclude,glob,icase)**/.env",
            ":(top,exclude,glob,icase)**/.env/**",
            ":(top,exclude,glob,icase).git/**",
            ":(top,exclude,glob,icase)conf/a.txt",
            ":(top,exclude,glob,icase)conf/b.txt",
        ] {
            assert!(x.iter().any(|s| s == want), "missing {want} in {x:?}");
        }
        assert_eq!(expand_braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(expand_braces("a\\{b,c}"), ["a\\{b,c}"]);
        Ok(())
    }

    #[test]
    fn locale_variables_with_secret_names_do_not_reach_children() -> Result<(), PolicyError> {
        let dir = tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        let p = policy(
            dir.path(),
            None,
            &[
                ("LC_ALL", "C.UTF-8"),
                ("LC_API_KEY", "sk-secret-value"),
                ("LC_TOKEN", "t0ken-value"),
                ("LC_DB_PASSWORD", "hunter22"),
            ],
            false,
        )?;
        let env = p.child_env();
        assert_eq!(env.get("LC_ALL").map(String::as_str), Some("C.UTF-8"));
        for k in ["LC_API_KEY", "LC_TOKEN", "LC_DB_PASSWORD"] {
            assert!(!env.contains_key(k), "{k} reached the child environment");
        }
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

    fn tmp() -> Result<tempfile::TempDir, PolicyError> {
        tempfile::tempdir().map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })
    }

    #[test]
    fn default_and_configured_limits() -> Result<(), PolicyError> {
        let dir = tmp()?;
        let p = policy(dir.path(), None, &[], false)?;
        assert_eq!(
            p.limits(),
            Limits {
                command_timeout: Duration::from_secs(120),
                max_timeout: Duration::from_secs(1800),
                output_cap_bytes: 262_144,
                max_results: 1000,
            }
        );
        let p = policy(
            dir.path(),
            Some(
                serde_json::json!({"command_timeout_s": 5, "max_timeout_s": 9, "output_cap_bytes": 10, "max_results": 3}),
            ),
            &[],
            false,
        )?;
        assert_eq!(
            p.limits(),
            Limits {
                command_timeout: Duration::from_secs(5),
                max_timeout: Duration::from_secs(9),
                output_cap_bytes: 10,
                max_results: 3,
            }
        );
        Ok(())
    }

    #[test]
    fn the_name_as_written_is_checked_too() -> Result<(), PolicyError> {
        let dir = tmp()?;
        let r = dir.path();
        std::fs::write(r.join("README.md"), "x").map_err(|e| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        })?;
        std::os::unix::fs::symlink("README.md", r.join("id_rsa")).map_err(|e| {
            PolicyError::InvalidConfig {
                key: "t".into(),
                message: e.to_string(),
            }
        })?;
        let p = policy(r, None, &[], false)?;
        assert!(p.check_read("id_rsa").is_err());
        assert!(p.check_read("./sub/../id_rsa").is_err());
        assert!(
            p.check_read(&format!("{}/id_rsa", p.root().display()))
                .is_err()
        );
        assert!(p.check_read("README.md").is_ok());
        // A name the file system cannot even look up is refused, not taken as missing.
        let e = p.check_read(&"n".repeat(300)).err().unwrap_or_default();
        assert!(e.contains("cannot inspect"), "{e}");
        // A path through a regular file still resolves inside (the tool then fails on it).
        assert_eq!(
            p.check_read("README.md/x").map(|r| r.rel).ok(),
            Some("README.md/x".into())
        );
        Ok(())
    }

    #[test]
    fn symlink_loops_and_chains_are_bounded() -> Result<(), PolicyError> {
        let dir = tmp()?;
        let r = dir.path();
        let io = |e: std::io::Error| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        };
        std::os::unix::fs::symlink("loop-b", r.join("loop-a")).map_err(io)?;
        std::os::unix::fs::symlink("loop-a", r.join("loop-b")).map_err(io)?;
        std::fs::write(r.join("target.txt"), "x").map_err(io)?;
        // l0 -> l1 -> ... -> l39 -> target.txt: forty links, as many as the kernel follows.
        for i in 0..40 {
            let to = if i == 39 {
                "target.txt".to_string()
            } else {
                format!("l{}", i + 1)
            };
            std::os::unix::fs::symlink(to, r.join(format!("l{i}"))).map_err(io)?;
        }
        std::os::unix::fs::symlink("l0", r.join("m")).map_err(io)?;
        let p = policy(r, None, &[], false)?;
        let e = p.check_read("loop-a").err().unwrap_or_default();
        assert!(e.contains("too many levels"), "{e}");
        assert_eq!(
            p.check_read("l0").map(|x| x.rel).ok(),
            Some("target.txt".into())
        );
        assert!(p.check_read("m").is_err(), "41 links");
        Ok(())
    }

    #[test]
    fn accessors_report_the_effective_policy() -> Result<(), PolicyError> {
        let dir = tmp()?;
        let p = policy(
            dir.path(),
            Some(serde_json::json!({"writable": ["src/"], "read_only_commands": ["git status"]})),
            &[("AO_ALLOWED_COMMANDS", "cargo test, make")],
            false,
        )?;
        assert_eq!(p.mode_source(), "default");
        assert!(p.denied_patterns().iter().any(|d| d == "**/.env"));
        assert_eq!(p.writable_patterns(), Some(&["**/src/**".to_string()][..]));
        assert_eq!(
            p.allowed_commands(),
            &[
                vec!["cargo".to_string(), "test".to_string()],
                vec!["make".to_string()]
            ]
        );
        assert_eq!(
            p.read_only_commands(),
            &[vec!["git".to_string(), "status".to_string()]]
        );
        let permits = p.command_permits();
        let prefixes: Vec<&str> = permits.iter().map(|c| c.prefix.as_str()).collect();
        assert_eq!(prefixes, ["git status", "cargo test", "make"]);
        assert!(permits[2].arbitrary_code);
        assert!(!p.allow_hardlinks());
        let p = policy(dir.path(), None, &[], false)?;
        assert_eq!(p.writable_patterns(), None);
        Ok(())
    }

    #[test]
    fn hard_links_are_denied_unless_allowed() -> Result<(), PolicyError> {
        let dir = tmp()?;
        let r = dir.path();
        let io = |e: std::io::Error| PolicyError::InvalidConfig {
            key: "t".into(),
            message: e.to_string(),
        };
        std::fs::write(r.join("a.txt"), "x").map_err(io)?;
        std::fs::hard_link(r.join("a.txt"), r.join("b.txt")).map_err(io)?;
        std::fs::write(r.join("single.txt"), "x").map_err(io)?;
        let p = policy(r, None, &[], false)?;
        let e = p.check_read("b.txt").err().unwrap_or_default();
        assert!(e.contains("hard links"), "{e}");
        assert!(
            p.check_write("a.txt", WriteCheck::DeniedAndWritable)
                .is_err()
        );
        assert!(p.check_read("single.txt").is_ok());
        let p = policy(
            r,
            Some(serde_json::json!({"allow_hardlinks": true})),
            &[],
            false,
        )?;
        assert!(p.allow_hardlinks());
        assert!(p.check_read("b.txt").is_ok());
        Ok(())
    }

    #[test]
    fn git_arguments_naming_denied_paths_are_refused() -> Result<(), PolicyError> {
        let dir = tmp()?;
        let p = policy(
            dir.path(),
            None,
            &[("AO_ALLOWED_COMMANDS", "git blame")],
            true,
        )?;
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        for bad in [
            "git show HEAD:.env",
            "git show HEAD:keys/a.pem",
            "git blame .env",
            "git log -Ssecret",
        ] {
            assert!(
                matches!(p.check_command(&argv(bad)), CommandVerdict::Deny(_)),
                "{bad}"
            );
        }
        for ok in [
            "git log --stat",
            "git show HEAD:README.md",
            "git blame src/lib.rs",
        ] {
            assert_eq!(p.check_command(&argv(ok)), CommandVerdict::Run, "{ok}");
        }
        // Only git's arguments are read as paths.
        let p = policy(dir.path(), None, &[("AO_ALLOWED_COMMANDS", "echo")], true)?;
        assert_eq!(p.check_command(&argv("echo .env")), CommandVerdict::Run);
        Ok(())
    }

    #[test]
    fn braces_expand_with_nesting_and_escapes() {
        assert_eq!(expand_braces("{a{b,c},d}"), ["ab", "ac", "d"]);
        assert_eq!(expand_braces("{a\\,b,c}"), ["a\\,b", "c"]);
        assert_eq!(expand_braces("plain"), ["plain"]);
    }
}
