//! The `git.*` tools, and how every git invocation `ao` makes is run.
//!
//! The tools are read-only git invocations with fixed argv shapes; they run in dry-run too
//! (effect `read`). Caller-supplied revisions and paths are screened so nothing can turn a read
//! into an execution or a write: no option-looking revisions, no `--output`, `--ext-diff`,
//! `-c`, `--upload-pack` and the like, no `rev:path` smuggling past the `denied` globs, and
//! denied paths are excluded from the output by pathspec (without regard to case, folders with
//! everything in them).
//!
//! Every git process — these tools, `cmd.run`'s git, the checks they make — goes through
//! [`GitPin`]: the repository is pinned to the root's own `.git` (`--git-dir`, `--work-tree`),
//! so no discovery happens and a folder laid out like a bare repository is not one; the system
//! and global configuration are not read; every configuration key that names a program
//! (`core.fsmonitor`, pagers, diff and merge drivers, textconv, filters, hooks, ssh, gpg,
//! credential helpers, …) is overridden with a value that runs nothing, and the diff family gets
//! `--no-ext-diff --no-textconv`. A repository configuration that includes a file ao may write
//! is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::decision::Decision;
use crate::error::ToolError;
use crate::policy::Policy;
use crate::registry::{Call, ToolOutcome};

/// Options that can execute programs, write files or escape the root, refused in any git
/// argv that comes from a caller (prefix match, so `--output=x` is caught too).
const FORBIDDEN_LONG: [&str; 25] = [
    "--output",
    "--ext-diff",
    "--textconv",
    "--config",
    "--exec",
    "--upload-pack",
    "--receive-pack",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--super-prefix",
    "--no-index",
    "--open-files-in-pager",
    "--paginate",
    "--run",
    "--attr-source",
    "--contents",
    "--bare",
    "--literal-pathspecs",
    "--glob-pathspecs",
    "--noglob-pathspecs",
    "--icase-pathspecs",
    "--filters",
    "--show-signature",
    "--pickaxe",
];
/// `-S`/`-G` (pickaxe) search content for a string or regex and answer yes/no per commit, over
/// text ao cannot redact first: refused like `fs.search` over unredacted secrets would be.
const FORBIDDEN_SHORT: [&str; 6] = ["-c", "-C", "-O", "-u", "-S", "-G"];

/// Long options that read a file given as their value.
const FILE_READING_LONG: [&str; 3] = ["--file", "--template", "--pathspec-from-file"];

/// Configuration that names programs, overridden for every git process whatever the
/// repository says. Keys found in the repository's configuration that name programs are added
/// to these (see [`names_a_program`]).
const NEUTRAL_CONFIG: [(&str, &str); 19] = [
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", ""),
    ("core.sshCommand", ""),
    ("core.askPass", ""),
    ("core.gitProxy", ""),
    ("diff.external", ""),
    ("sequence.editor", ""),
    ("credential.helper", ""),
    ("gpg.program", ""),
    ("gpg.openpgp.program", ""),
    ("gpg.x509.program", ""),
    ("gpg.ssh.program", ""),
    ("gpg.ssh.defaultKeyCommand", ""),
    ("log.showSignature", "false"),
    ("uploadpack.packObjectsHook", ""),
    ("protocol.ext.allow", "never"),
    ("submodule.recurse", "false"),
];

/// Variable names (the part after the last dot) that name a program to run.
const PROGRAM_VARIABLES: [&str; 22] = [
    "command",
    "textconv",
    "clean",
    "smudge",
    "process",
    "driver",
    "program",
    "helper",
    "sshcommand",
    "cmd",
    "path",
    "uploadpack",
    "receivepack",
    "proxy",
    "gitproxy",
    "askpass",
    "editor",
    "fsmonitor",
    "hookspath",
    "external",
    "packobjectshook",
    "defaultkeycommand",
];

/// Subcommands that print diffs, and so get `--no-ext-diff --no-textconv`.
const DIFF_FAMILY: [&str; 9] = [
    "diff",
    "log",
    "show",
    "whatchanged",
    "diff-tree",
    "diff-index",
    "diff-files",
    "format-patch",
    "reflog",
];

/// Subcommands whose output names or shows working-tree files, and so get the denied paths
/// excluded by pathspec.
const PATHSPEC_FAMILY: [&str; 11] = [
    "diff",
    "log",
    "show",
    "whatchanged",
    "diff-tree",
    "diff-index",
    "diff-files",
    "status",
    "ls-files",
    "grep",
    "format-patch",
];

/// Subcommands that record an author, for which the user's own identity is passed on.
const AUTHORING: [&str; 8] = [
    "commit",
    "tag",
    "merge",
    "revert",
    "cherry-pick",
    "am",
    "rebase",
    "stash",
];

/// The user's global git configuration files (`~/.gitconfig`, `~/.config/git/config`).
fn global_config_files(policy: &Policy) -> Vec<PathBuf> {
    match policy.child_env().get("HOME") {
        Some(home) if Path::new(home).is_absolute() => vec![
            Path::new(home).join(".gitconfig"),
            Path::new(home).join(".config/git/config"),
        ],
        _ => Vec::new(),
    }
}

/// Whether the configuration key `name` (as `git config --list` prints it) names a program.
fn names_a_program(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let section = lower.split('.').next().unwrap_or_default();
    let variable = lower.rsplit('.').next().unwrap_or_default();
    if matches!(section, "include" | "includeif") {
        // Handled by refusing includes of files ao may write.
        return false;
    }
    section == "pager" || PROGRAM_VARIABLES.contains(&variable)
}

/// The neutral value for a key found in the repository's configuration.
fn neutral_value(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("pager.") || lower == "core.fsmonitor" {
        "false"
    } else if lower == "core.hookspath" {
        "/dev/null"
    } else {
        ""
    }
}

/// Where a subcommand is in git's arguments (after `git`): the first one that is not an option.
fn subcommand_index(args: &[String]) -> Option<usize> {
    args.iter().position(|a| !a.starts_with('-'))
}

/// How git is run for one policy: the pinned repository, the scrubbed environment with the
/// neutral configuration, and the per-subcommand flags. Prepared once per tool call.
#[derive(Debug, Clone)]
pub(crate) struct GitPin {
    git_dir: PathBuf,
    work_tree: PathBuf,
    env: BTreeMap<String, String>,
}

impl GitPin {
    /// Prepares git for `policy`: reads the repository's own configuration (only it: system and
    /// global are off) to find every key that names a program, and refuses a configuration that
    /// includes a file ao may write. `authoring` passes on the user's `user.name`/`user.email`
    /// from their global configuration (for `git commit` and the like).
    pub(crate) async fn prepare(policy: &Policy, authoring: bool) -> Result<GitPin, String> {
        let root = policy.root().to_path_buf();
        let git_dir = root.join(".git");
        let mut env: BTreeMap<String, String> = policy
            .child_env()
            .iter()
            .filter(|(k, _)| !k.starts_with("GIT_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(ceiling) = policy.child_env().get("GIT_CEILING_DIRECTORIES") {
            env.insert("GIT_CEILING_DIRECTORIES".into(), ceiling.clone());
        }
        for (k, v) in [
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_ATTR_NOSYSTEM", "1"),
            ("GIT_NO_REPLACE_OBJECTS", "1"),
            ("GIT_NO_LAZY_FETCH", "1"),
            ("GIT_PROTOCOL_FROM_USER", "0"),
        ] {
            env.insert(k.into(), v.into());
        }
        let mut config: Vec<(String, String)> = Vec::new();
        if authoring {
            // Read before the global configuration is switched off: the identity only.
            for key in ["user.name", "user.email"] {
                // Pinned too: no repository discovery even for this read.
                let argv = vec![
                    "git".to_string(),
                    format!("--git-dir={}", git_dir.display()),
                    "config".into(),
                    "--global".into(),
                    "--includes".into(),
                    "--get".into(),
                    key.into(),
                ];
                // The global configuration is outside what commands may read: this fixed
                // argv alone may read those two files.
                let confine = policy
                    .confine(false)
                    .with_read_files(global_config_files(policy));
                if let Ok(out) = crate::exec::run(
                    &argv,
                    &root,
                    &env,
                    &confine,
                    std::time::Duration::from_secs(10),
                    4096,
                    None,
                )
                .await
                    && out.exit_code == Some(0)
                {
                    config.push((key.to_string(), out.stdout.trim().to_string()));
                }
            }
        }
        env.insert("GIT_CONFIG_GLOBAL".into(), "/dev/null".into());
        config.extend(
            NEUTRAL_CONFIG
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut pin = GitPin {
            git_dir,
            work_tree: root,
            env,
        };
        pin.set_config(&config);
        // No `.git` at the root: git will say it is not a repository; there is nothing to read.
        if std::fs::symlink_metadata(&pin.git_dir).is_ok() {
            for name in pin.program_keys(policy).await? {
                if !config.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name)) {
                    let value = neutral_value(&name).to_string();
                    config.push((name, value));
                }
            }
            pin.set_config(&config);
        }
        Ok(pin)
    }

    fn set_config(&mut self, config: &[(String, String)]) {
        self.env
            .insert("GIT_CONFIG_COUNT".into(), config.len().to_string());
        for (i, (k, v)) in config.iter().enumerate() {
            self.env.insert(format!("GIT_CONFIG_KEY_{i}"), k.clone());
            self.env.insert(format!("GIT_CONFIG_VALUE_{i}"), v.clone());
        }
    }

    /// The keys of the repository's configuration that name programs. `Err` when the
    /// configuration cannot be read or includes a file ao may write.
    async fn program_keys(&self, policy: &Policy) -> Result<Vec<String>, String> {
        let argv = self.argv(&[
            "config".to_string(),
            "--list".into(),
            "--name-only".into(),
            "--show-origin".into(),
            "--includes".into(),
            "-z".into(),
        ]);
        let out = crate::exec::run(
            &argv,
            &self.work_tree,
            &self.env,
            &policy.confine(false),
            std::time::Duration::from_secs(10),
            4 * 1024 * 1024,
            None,
        )
        .await?;
        if out.exit_code != Some(0) || out.stdout_truncated {
            return Err(format!(
                "cannot read the repository's git configuration (exit {}): {}",
                out.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "by a signal".into()),
                out.stderr.trim()
            ));
        }
        let fields: Vec<&str> = out.stdout.split('\0').collect();
        let mut keys = Vec::new();
        for pair in fields.chunks(2) {
            let [origin, name] = pair else { continue };
            if let Some(file) = origin.strip_prefix("file:") {
                self.check_origin(policy, Path::new(file))?;
            }
            if names_a_program(name) && !keys.iter().any(|k: &String| k == name) {
                keys.push((*name).to_string());
            }
        }
        Ok(keys)
    }

    /// A configuration file inside the working tree that ao may write would let a tool call
    /// add program-naming keys between this check and git's own read: refused.
    fn check_origin(&self, policy: &Policy, file: &Path) -> Result<(), String> {
        let file = if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.work_tree.join(file)
        };
        let physical = file.canonicalize().unwrap_or(file);
        let Ok(rel) = physical.strip_prefix(&self.work_tree) else {
            return Ok(());
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if physical.starts_with(&self.git_dir) || policy.denied_match(&rel).is_some() {
            return Ok(());
        }
        Err(format!(
            "the repository's git configuration includes `{rel}` from the working tree, which ao's write tools may change; ao does not run git with it (deny that file in `[policy] denied` or remove the include)"
        ))
    }

    /// The full argv for git `args` (everything after `git`): the pinned repository first,
    /// then `args` with `--no-ext-diff --no-textconv` after a diff-family subcommand.
    pub(crate) fn argv(&self, args: &[String]) -> Vec<String> {
        let mut argv = vec![
            "git".to_string(),
            "--no-pager".to_string(),
            format!("--git-dir={}", self.git_dir.display()),
            format!("--work-tree={}", self.work_tree.display()),
        ];
        let mut args = args.to_vec();
        if let Some(i) = subcommand_index(&args) {
            let sub = args[i].as_str();
            let at = if sub == "stash" && args.get(i + 1).map(String::as_str) == Some("show") {
                Some((i + 2, &["--no-ext-diff", "--no-textconv"][..]))
            } else if DIFF_FAMILY.contains(&sub) {
                Some((i + 1, &["--no-ext-diff", "--no-textconv"][..]))
            } else if matches!(sub, "grep" | "blame" | "annotate") {
                Some((i + 1, &["--no-textconv"][..]))
            } else {
                None
            };
            if let Some((at, flags)) = at {
                for (n, f) in flags.iter().enumerate() {
                    args.insert(at + n, f.to_string());
                }
            }
        }
        argv.extend(args);
        argv
    }

    /// The environment every git process of this pin runs with.
    pub(crate) fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }
}

/// Whether git `args` (after `git`) record an author.
pub(crate) fn is_authoring(args: &[String]) -> bool {
    subcommand_index(args).is_some_and(|i| AUTHORING.contains(&args[i].as_str()))
}

/// Checks caller-supplied git arguments (after `git`). `Err` is the denial reason.
pub fn screen_git_args(args: &[String]) -> Result<(), String> {
    let sub = args.first().map(String::as_str).unwrap_or_default();
    for a in args {
        // Options that make git read a file named by the caller (a message or a template from
        // outside the root, or from a denied path).
        let reads_file = FILE_READING_LONG
            .iter()
            .any(|f| a == f || a.starts_with(&format!("{f}=")))
            || (matches!(sub, "commit" | "tag" | "notes" | "merge") && a.starts_with("-F"));
        if reads_file {
            return Err(format!(
                "git argument `{a}` is not allowed: it makes git read a file that the policy has not checked"
            ));
        }
        let lower = a.to_ascii_lowercase();
        if FORBIDDEN_LONG.iter().any(|f| lower.starts_with(f)) {
            return Err(format!(
                "git argument `{a}` is not allowed: it can run programs, write files or leave the root"
            ));
        }
        if !a.starts_with("--") && (a.starts_with("-S") || a.starts_with("-G")) {
            return Err(format!(
                "git argument `{a}` is not allowed: the pickaxe searches file content, secrets included, before ao can redact it"
            ));
        }
        // `-c`, `-C`, `-O` and `-u` alone or with an attached value (`-cfoo=bar`).
        if !a.starts_with("--") && FORBIDDEN_SHORT.iter().any(|f| a.starts_with(f)) {
            return Err(format!(
                "git argument `{a}` is not allowed: it can change configuration, directory or run programs"
            ));
        }
    }
    Ok(())
}

/// A revision or range from a caller: not option-like, no whitespace, no `rev:path`.
fn check_rev(what: &str, rev: &str) -> Result<(), String> {
    if rev.starts_with('-') {
        return Err(format!(
            "{what} `{rev}` looks like an option; give a revision such as `HEAD~1`"
        ));
    }
    if rev.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} `{rev}` contains whitespace"));
    }
    if rev.contains(':') {
        return Err(format!(
            "{what} `{rev}` contains `:`; to see a file at a revision use git.show with `path`"
        ));
    }
    Ok(())
}

fn parse<T: for<'de> Deserialize<'de>>(call: &Call<'_>, args: &Value) -> Result<T, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::InvalidArgs {
        tool: call.tool.to_string(),
        errors: vec![e.to_string()],
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffArgs {
    range: Option<String>,
    paths: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogArgs {
    range: Option<String>,
    max: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowArgs {
    rev: String,
    path: Option<String>,
}

/// Pathspecs: the given (checked) paths or the whole tree, then the exclusions of every denied
/// path. Every entry carries explicit magic so no caller text is read as a pattern.
fn pathspecs(call: &Call<'_>, paths: &[String]) -> Vec<String> {
    let mut specs: Vec<String> = if paths.is_empty() {
        vec![":(top)".to_string()]
    } else {
        paths.iter().map(|p| format!(":(top,literal){p}")).collect()
    };
    specs.extend(call.policy().git_exclusions());
    specs
}

/// For a caller's git argv run through `cmd.run` (everything after `git`): the same arguments
/// with the denied paths excluded by pathspec when the subcommand's output names or shows
/// working-tree files, so a git command cannot print a denied file.
pub(crate) fn with_denied_excluded(policy: &Policy, args: &[String]) -> Vec<String> {
    let Some(i) = subcommand_index(args) else {
        return args.to_vec();
    };
    if !PATHSPEC_FAMILY.contains(&args[i].as_str()) {
        return args.to_vec();
    }
    let mut out = args.to_vec();
    if !out.iter().any(|a| a == "--") {
        out.push("--".into());
        out.push(":(top)".into());
    }
    out.extend(policy.git_exclusions());
    out
}

/// The revisions of a git argv run through `cmd.run` (everything after `git`) whose
/// subcommand shows objects: its positional arguments after the subcommand and before `--`.
pub(crate) fn positional_revs(args: &[String]) -> Vec<String> {
    let Some(i) = subcommand_index(args) else {
        return Vec::new();
    };
    if !matches!(
        args[i].as_str(),
        "diff" | "show" | "log" | "whatchanged" | "diff-tree" | "format-patch" | "grep"
    ) {
        return Vec::new();
    }
    args.iter()
        .skip(i + 1)
        .take_while(|a| a.as_str() != "--")
        .filter(|a| !a.starts_with('-'))
        .cloned()
        .collect()
}

/// Denies revisions that name a file's content or a directory directly (a blob or tree id,
/// `HEAD^{tree}`, …): the denied-path exclusions only cover paths named from the root, so
/// `git show <blob-id>` of a committed `.env` would otherwise print it. Ranges are checked part
/// by part. Returns the denial reason.
pub(crate) async fn blob_reference(
    pin: &GitPin,
    policy: &Policy,
    revs: &[String],
) -> Option<String> {
    for rev in revs {
        for part in rev.split("...").flat_map(|p| p.split("..")) {
            if part.is_empty() {
                continue;
            }
            let argv = pin.argv(&["cat-file".to_string(), "-t".to_string(), part.to_string()]);
            let out = crate::exec::run(
                &argv,
                policy.root(),
                pin.env(),
                &policy.confine(false),
                std::time::Duration::from_secs(10),
                1024,
                None,
            )
            .await;
            // Trees count too: in a diff of two trees, paths are relative to those trees and the
            // denied-path exclusions (relative to the root) no longer match.
            if let Ok(out) = out
                && out.exit_code == Some(0)
                && matches!(out.stdout.trim(), "blob" | "tree")
            {
                return Some(format!(
                    "`{part}` names a {} directly, which would bypass the denied paths; name a commit, and use git.show with `path` for a file",
                    out.stdout.trim()
                ));
            }
        }
    }
    None
}

pub(crate) async fn run(call: &Call<'_>, args: &Value) -> Result<ToolOutcome, ToolError> {
    // Build the argv (after the fixed prefix) or deny.
    let built: Result<Vec<String>, String> = match call.tool {
        "git.status" => {
            let _: StatusArgs = parse(call, args)?;
            let mut argv: Vec<String> = vec![
                "status".into(),
                "--porcelain=v1".into(),
                "--branch".into(),
                "--untracked-files=all".into(),
                "--".into(),
            ];
            argv.extend(pathspecs(call, &[]));
            Ok(argv)
        }
        "git.diff" => {
            let a: DiffArgs = parse(call, args)?;
            (|| {
                let mut argv: Vec<String> = ["diff", "--no-color"].map(String::from).to_vec();
                if let Some(r) = &a.range {
                    check_rev("range", r)?;
                    argv.push(r.clone());
                }
                let mut rels = Vec::new();
                for p in a.paths.iter().flatten() {
                    rels.push(call.policy().check_read(p)?.rel);
                }
                argv.push("--".into());
                argv.extend(pathspecs(call, &rels));
                Ok(argv)
            })()
        }
        "git.log" => {
            let a: LogArgs = parse(call, args)?;
            (|| {
                let mut argv: Vec<String> = vec![
                    "log".into(),
                    "--no-color".into(),
                    "--date=short".into(),
                    "--format=%H %ad %an%n    %s".into(),
                    format!("--max-count={}", a.max.unwrap_or(20)),
                ];
                if let Some(r) = &a.range {
                    check_rev("range", r)?;
                    argv.push(r.clone());
                }
                argv.push("--".into());
                Ok(argv)
            })()
        }
        "git.show" => {
            let a: ShowArgs = parse(call, args)?;
            (|| {
                check_rev("rev", &a.rev)?;
                let mut argv: Vec<String> = ["show", "--no-color"].map(String::from).to_vec();
                match &a.path {
                    Some(p) => {
                        let rel = call.policy().check_read(p)?.rel;
                        if rel.is_empty() {
                            return Err("`path` must name a file".to_string());
                        }
                        // `rev:./path` is relative to the working directory (the root).
                        argv.push(format!("{}:./{rel}", a.rev));
                    }
                    None => {
                        argv.push(a.rev.clone());
                        argv.push("--".into());
                        argv.extend(pathspecs(call, &[]));
                    }
                }
                Ok(argv)
            })()
        }
        other => {
            return Err(ToolError::UnknownTool {
                name: other.to_string(),
            });
        }
    };
    let tail = match built {
        Ok(t) => t,
        Err(reason) => return call.deny(reason, None),
    };
    let policy = call.policy();
    let pin = match GitPin::prepare(policy, false).await {
        Ok(pin) => pin,
        Err(reason) => return call.deny(reason, None),
    };
    let revs: Vec<String> = ["rev", "range"]
        .iter()
        .filter_map(|k| args.get(*k).and_then(Value::as_str).map(str::to_string))
        .collect();
    if let Some(reason) = blob_reference(&pin, policy, &revs).await {
        return call.deny(reason, None);
    }
    let argv = pin.argv(&tail);
    // The git tools only read: the root is read-only for them.
    let confine = policy.confine(false);
    if let Some(reason) = confine.refusal() {
        return call.deny(reason, Some(&argv));
    }
    call.allow_confined(&argv, confine.summary())?;
    let limits = policy.limits();
    let out = crate::exec::run(
        &argv,
        policy.root(),
        pin.env(),
        &confine,
        limits.command_timeout,
        limits.output_cap_bytes,
        Some(call.ctx.redactor()),
    )
    .await
    .map_err(|e| call.fail(None, e))?;
    if out.timed_out {
        return Err(call.fail(
            None,
            format!("git timed out after {} ms and was killed", out.duration_ms),
        ));
    }
    if out.exit_code != Some(0) {
        return Err(call.fail(
            None,
            format!(
                "git exited with {}: {}",
                out.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "a signal".to_string()),
                out.stderr.trim()
            ),
        ));
    }
    Ok(call.outcome(
        Decision::Allowed,
        None,
        json!({"argv": argv, "text": out.stdout, "truncated": out.stdout_truncated}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn screening_refuses_executing_options() {
        for bad in [
            "--output=/tmp/x",
            "--ext-diff",
            "-c",
            "-ccore.pager=sh",
            "--upload-pack=evil",
            "--no-index",
            "-C",
            "--exec-path=/x",
            "--git-dir=/x",
            "-O/tmp/f",
            "-Ssk-secret-prefix",
            "-G",
            "--pickaxe-regex",
        ] {
            assert!(screen_git_args(&s(&["diff", bad])).is_err(), "{bad}");
        }
        assert!(screen_git_args(&s(&["diff", "--stat", "HEAD~1", "-p", "--", "src"])).is_ok());
        for bad in [
            &["commit", "-F", "/etc/passwd"][..],
            &["commit", "-F/x"],
            &["commit", "--file=.env"],
            &["commit", "--template", "x"],
            &["add", "--pathspec-from-file=/x"],
        ] {
            assert!(screen_git_args(&s(bad)).is_err(), "{bad:?}");
        }
        assert!(
            screen_git_args(&s(&["log", "-F", "--grep", "a.b"])).is_ok(),
            "log -F is fixed-strings, not a file"
        );
    }

    #[test]
    fn revisions_cannot_smuggle_options_or_paths() {
        assert!(check_rev("rev", "--output=x").is_err());
        assert!(check_rev("rev", "HEAD:.env").is_err());
        assert!(check_rev("rev", "HEAD foo").is_err());
        assert!(check_rev("rev", "main...HEAD").is_ok());
    }
}
