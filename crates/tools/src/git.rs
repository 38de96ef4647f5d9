//! The `git.*` tools: read-only git invocations with fixed argv shapes.
//!
//! They run in dry-run too (effect `read`). Caller-supplied revisions and paths are screened so
//! nothing can turn a read into an execution or a write: no option-looking revisions, no
//! `--output`, `--ext-diff`, `-c`, `--upload-pack` and the like, no `rev:path` smuggling past
//! the `denied` globs, and denied paths are excluded from diffs by pathspec.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::decision::Decision;
use crate::error::ToolError;
use crate::registry::{Call, ToolOutcome};

/// Options that can execute programs, write files or escape the root, refused in any git
/// argv that comes from a caller (prefix match, so `--output=x` is caught too).
const FORBIDDEN_LONG: [&str; 17] = [
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
];
const FORBIDDEN_SHORT: [&str; 4] = ["-c", "-C", "-O", "-u"];

/// Long options that read a file given as their value.
const FILE_READING_LONG: [&str; 3] = ["--file", "--template", "--pathspec-from-file"];

/// Fixed options every git tool passes before the subcommand.
const GIT_PREFIX: [&str; 3] = ["--no-pager", "-c", "core.fsmonitor=false"];

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

/// Pathspecs: the given (checked) paths or the whole tree, then one exclusion per denied glob.
/// Every entry carries explicit magic so no caller text is read as a pattern.
fn pathspecs(call: &Call<'_>, paths: &[String]) -> Vec<String> {
    let mut specs: Vec<String> = if paths.is_empty() {
        vec![":(top)".to_string()]
    } else {
        paths.iter().map(|p| format!(":(top,literal){p}")).collect()
    };
    specs.extend(
        call.policy()
            .denied_patterns()
            .iter()
            .map(|p| format!(":(top,exclude,glob){p}")),
    );
    specs
}

/// For a caller's `git diff|show|log …` run through `cmd.run`: the same argv with the denied
/// globs excluded by pathspec, so a read-only git command cannot print a denied file's diff.
pub(crate) fn with_denied_excluded(call: &Call<'_>, argv: &[String]) -> Vec<String> {
    let sub = argv.get(1).map(String::as_str);
    if argv.first().map(String::as_str) != Some("git")
        || !matches!(sub, Some("diff" | "show" | "log"))
    {
        return argv.to_vec();
    }
    let mut out = argv.to_vec();
    if !out.iter().any(|a| a == "--") {
        out.push("--".into());
        out.push(":(top)".into());
    }
    out.extend(
        call.policy()
            .denied_patterns()
            .iter()
            .map(|p| format!(":(top,exclude,glob){p}")),
    );
    out
}

/// The revisions of a `git diff|show|log …` argv run through `cmd.run`: its positional
/// arguments before `--` (options and pathspecs are not revisions).
pub(crate) fn positional_revs(argv: &[String]) -> Vec<String> {
    let sub = argv.get(1).map(String::as_str);
    if argv.first().map(String::as_str) != Some("git")
        || !matches!(sub, Some("diff" | "show" | "log"))
    {
        return Vec::new();
    }
    argv.iter()
        .skip(2)
        .take_while(|a| a.as_str() != "--")
        .filter(|a| !a.starts_with('-'))
        .cloned()
        .collect()
}

/// Denies revisions that name a file's content or a directory directly (a blob or tree id,
/// `HEAD^{tree}`, …): the denied-path exclusions only cover paths named from the root, so
/// `git show <blob-id>` of a committed `.env` would otherwise print it. Ranges are checked part
/// by part. Returns the denial reason.
pub(crate) async fn blob_reference(call: &Call<'_>, revs: &[String]) -> Option<String> {
    let policy = call.policy();
    for rev in revs {
        for part in rev.split("...").flat_map(|p| p.split("..")) {
            if part.is_empty() {
                continue;
            }
            let mut argv: Vec<String> = vec!["git".into()];
            argv.extend(GIT_PREFIX.iter().map(|s| s.to_string()));
            argv.extend(["cat-file".to_string(), "-t".to_string(), part.to_string()]);
            let out = crate::exec::run(
                &argv,
                policy.root(),
                policy.child_env(),
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
            Ok(vec![
                "status".into(),
                "--porcelain=v1".into(),
                "--branch".into(),
                "--untracked-files=all".into(),
            ])
        }
        "git.diff" => {
            let a: DiffArgs = parse(call, args)?;
            (|| {
                let mut argv: Vec<String> =
                    ["diff", "--no-ext-diff", "--no-textconv", "--no-color"]
                        .map(String::from)
                        .to_vec();
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
                let mut argv: Vec<String> =
                    ["show", "--no-ext-diff", "--no-textconv", "--no-color"]
                        .map(String::from)
                        .to_vec();
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
        Err(reason) => return Ok(call.deny(reason, None)),
    };
    let revs: Vec<String> = ["rev", "range"]
        .iter()
        .filter_map(|k| args.get(*k).and_then(Value::as_str).map(str::to_string))
        .collect();
    if let Some(reason) = blob_reference(call, &revs).await {
        return Ok(call.deny(reason, None));
    }
    let mut argv: Vec<String> = vec!["git".into()];
    argv.extend(GIT_PREFIX.iter().map(|s| s.to_string()));
    argv.extend(tail);
    call.allow(Some(&argv));
    let policy = call.policy();
    let limits = policy.limits();
    let out = crate::exec::run(
        &argv,
        policy.root(),
        policy.child_env(),
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
