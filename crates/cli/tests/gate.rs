//! The holes an outside attack found in the policy gate, each closed, through the `ao` binary:
//! git running programs named by repository content, denied files visible through git output,
//! hard links, options smuggled after allowed prefixes, file modes, secrets probed through
//! `fs.search` or passed to children, `ao apply` across a crash, the missing default denials,
//! and `[policy]` typed once.

mod support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::Project;

const OPENAI_KEY: &str = "sk-planted-openai-key-4f1e9c2a7b";

// ---------------------------------------------------------------------------------------------
// Helpers

/// `ao tools run NAME --args ARGS [--apply] --json`, asserting exit 0.
fn tool(p: &Project, name: &str, args: Value, apply: bool) -> Value {
    let args_text = args.to_string();
    let mut argv = vec!["tools", "run", name, "--args", &args_text, "--json"];
    if apply {
        argv.push("--apply");
    }
    let (code, stdout, stderr) = p.run(&argv);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("`ao tools run {name}` printed no JSON document ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    assert_eq!(code, 0, "ao tools run {name} {args_text}: {v}\n{stderr}");
    v
}

/// `ao tools run NAME --args ARGS --json` for a call that may fail as a tool (git in a folder
/// that is not a repository): everything it printed.
fn tool_text(p: &Project, name: &str, args: &Value) -> String {
    let args_text = args.to_string();
    let (code, stdout, stderr) = p.run(&["tools", "run", name, "--args", &args_text, "--json"]);
    assert!(
        code == 0 || code == 1,
        "ao tools run {name} {args_text}: {stdout}{stderr}"
    );
    format!("{stdout}{stderr}")
}

/// Runs git for test setup with a fixed identity and no user configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "-c",
            "user.name=ao tests",
            "-c",
            "user.email=ao-tests@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An executable outside the project that leaves a marker file (named after how it was
/// called) in `dir` whenever anything runs it, and otherwise behaves like `cat`.
struct Tripwire {
    dir: tempfile::TempDir,
}

impl Tripwire {
    fn new() -> Tripwire {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tripwire");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntouch '{}/ran-'\"$$\"\nif [ -f \"$1\" ]; then cat \"$1\"; else cat; fi\nexit 0\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Tripwire { dir }
    }

    fn program(&self) -> String {
        self.dir.path().join("tripwire").display().to_string()
    }

    /// How many times it ran.
    fn runs(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("ran-"))
            .count()
    }
}

/// Every file under `dir` whose name starts with `.ao-tmp-` (names only, nothing read).
fn temp_litter(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temp_litter(&path));
        } else if e.file_name().to_string_lossy().starts_with(".ao-tmp-") {
            out.push(path);
        }
    }
    out
}

/// Writes `workflows/NAME.yaml` with one `tool` node.
fn one_tool_workflow(p: &Project, name: &str, tool: &str, args: Value, for_each: Option<&str>) {
    let mut node = json!({"kind": "tool", "tool": tool, "args": args, "writes": "out"});
    if let Some(e) = for_each {
        node["for_each"] = json!(e);
    }
    let wf = json!({
        "name": name,
        "input": {"type": "object"},
        "channels": {"out": {"reducer": "append"}},
        "nodes": {"step": node},
        "edges": [{"from": "START", "to": "step"}],
        "limits": {"concurrency": 16, "timeout_s": 3600},
    });
    p.write(
        &format!("workflows/{name}.yaml"),
        &serde_json::to_string_pretty(&wf).unwrap(),
    );
}

/// `ao run NAME --json`, asserting it completed; returns the run id.
fn run_completed(p: &Project, name: &str) -> String {
    let (code, v) = p.json(&["run", name, "--json"]);
    assert_eq!(code, 0, "ao run {name}: {v}");
    assert_eq!(v["status"], "completed", "{v}");
    v["run_id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. git runs no program named by repository content

/// The git invocations a model can make in dry-run with an empty allowlist.
fn read_only_git_calls() -> Vec<(&'static str, Value)> {
    vec![
        ("cmd.run", json!({"argv": ["git", "status"]})),
        ("cmd.run", json!({"argv": ["git", "diff"]})),
        ("cmd.run", json!({"argv": ["git", "diff", "HEAD"]})),
        ("cmd.run", json!({"argv": ["git", "log", "-p"]})),
        (
            "cmd.run",
            json!({"argv": ["git", "log", "--format=%H %G?"]}),
        ),
        ("cmd.run", json!({"argv": ["git", "show", "HEAD"]})),
        ("cmd.run", json!({"argv": ["git", "ls-files"]})),
        ("git.status", json!({})),
        ("git.diff", json!({})),
        ("git.diff", json!({"range": "HEAD~1..HEAD"})),
        ("git.log", json!({})),
        ("git.show", json!({"rev": "HEAD"})),
        ("git.show", json!({"rev": "HEAD", "path": "notes.txt"})),
    ]
}

#[test]
fn git_runs_no_program_named_by_the_repository_config_or_attributes() {
    let trip = Tripwire::new();
    let prog = trip.program();
    let p = Project::new();
    p.write("notes.txt", "first\n");
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "one"]);
    p.write("notes.txt", "second\n");
    git(p.path(), &["commit", "-q", "-am", "two"]);
    // Every kind of key that names a program, in the repository's own configuration (as a
    // downloaded project folder may carry), with attributes that route every file to them.
    let config = format!(
        "[core]\n\tfsmonitor = {prog}\n\tpager = {prog}\n\thooksPath = {hooks}\n\
         [pager]\n\tlog = {prog}\n\tdiff = {prog}\n\
         [diff]\n\texternal = {prog}\n\
         [diff \"trip\"]\n\ttextconv = {prog}\n\tcommand = {prog}\n\
         [filter \"trip\"]\n\tclean = {prog}\n\tsmudge = {prog}\n\tprocess = {prog}\n\
         [gpg]\n\tprogram = {prog}\n[log]\n\tshowSignature = true\n",
        hooks = trip.dir.path().display()
    );
    let mut text = std::fs::read_to_string(p.path().join(".git/config")).unwrap();
    text.push_str(&config);
    std::fs::write(p.path().join(".git/config"), text).unwrap();
    std::fs::write(
        trip.dir.path().join("post-index-change"),
        format!("#!/bin/sh\nexec {prog}\n"),
    )
    .unwrap();
    p.write(".gitattributes", "* diff=trip filter=trip\n");
    p.write("notes.txt", "third\n");

    for (name, args) in read_only_git_calls() {
        let v = tool(&p, name, args.clone(), false);
        assert_ne!(v["decision"], "denied", "{name} {args}: {v}");
        assert_eq!(trip.runs(), 0, "{name} {args} ran a program: {v}");
    }
    // git still works: the diff of the working tree is there, without the program's help.
    let v = tool(&p, "git.diff", json!({}), false);
    let text = v["output"]["text"].as_str().unwrap();
    assert!(text.contains("-second") && text.contains("+third"), "{v}");
    // An allowed git command that writes (apply mode) runs no hook or filter either.
    let mut p = p;
    p.set_env("AO_ALLOWED_COMMANDS", "git add,git commit");
    let v = tool(&p, "cmd.run", json!({"argv": ["git", "add", "-A"]}), true);
    assert_eq!(v["output"]["exit_code"], 0, "{v}");
    assert_eq!(trip.runs(), 0, "git add ran a program: {v}");
}

#[test]
fn a_folder_laid_out_as_a_bare_repository_is_not_a_repository_to_ao() {
    let trip = Tripwire::new();
    let prog = trip.program();
    // A real repository's git dir, copied to the top of the project folder (as a downloaded
    // archive might be), with attributes and configuration that run a program on every diff.
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("a.txt"), "one\n").unwrap();
    git(source.path(), &["init", "-q"]);
    git(source.path(), &["add", "-A"]);
    git(source.path(), &["commit", "-q", "-m", "one"]);
    std::fs::write(source.path().join("a.txt"), "two\n").unwrap();
    git(source.path(), &["commit", "-q", "-am", "two"]);
    let p = Project::new();
    let copy = std::process::Command::new("cp")
        .arg("-a")
        .arg(source.path().join(".git/."))
        .arg(p.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let mut config = std::fs::read_to_string(p.path().join("config")).unwrap();
    config.push_str(&format!(
        "[diff \"trip\"]\n\ttextconv = {prog}\n[diff]\n\texternal = {prog}\n"
    ));
    std::fs::write(p.path().join("config"), config).unwrap();
    p.write("info/attributes", "* diff=trip\n");

    for (name, args) in read_only_git_calls() {
        let text = tool_text(&p, name, &args);
        assert_eq!(trip.runs(), 0, "{name} {args} ran a program: {text}");
        assert!(
            !text.contains("+two"),
            "{name} {args} read the folder as a repository: {text}"
        );
    }
}

#[test]
fn files_ao_writes_at_the_root_never_become_a_repository() {
    let trip = Tripwire::new();
    let prog = trip.program();
    let p = Project::new();
    p.write("README.md", "# demo\n");
    // What a model could write in apply mode: the files that make a folder a repository, with
    // a configuration naming a program.
    for (path, content) in [
        ("HEAD", "ref: refs/heads/main\n".to_string()),
        (
            "config",
            format!(
                "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n\tfsmonitor = {prog}\n\tpager = {prog}\n[diff]\n\texternal = {prog}\n"
            ),
        ),
        ("objects/info/README", "x\n".to_string()),
        ("refs/heads/README", "x\n".to_string()),
    ] {
        let v = tool(
            &p,
            "fs.write",
            json!({"path": path, "content": content}),
            true,
        );
        assert_eq!(v["decision"], "allowed", "{v}");
    }
    for (name, args) in read_only_git_calls() {
        let text = tool_text(&p, name, &args);
        assert_eq!(trip.runs(), 0, "{name} {args} ran a program: {text}");
    }
    // git is told which repository to use, and there is none.
    let v = tool(&p, "cmd.run", json!({"argv": ["git", "status"]}), false);
    assert_ne!(v["output"]["exit_code"], 0, "{v}");
    assert!(
        v["output"]["stderr"]
            .as_str()
            .unwrap()
            .contains("not a git repository"),
        "{v}"
    );
}

#[test]
fn a_repository_config_including_a_file_ao_may_write_is_refused() {
    let trip = Tripwire::new();
    let prog = trip.program();
    let p = Project::new();
    p.write("notes.txt", "first\n");
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "one"]);
    git(p.path(), &["config", "include.path", "../shared.gitconfig"]);
    // The included file is an ordinary project file: a write tool can change it.
    p.write(
        "shared.gitconfig",
        &format!("[diff]\n\texternal = {prog}\n"),
    );
    p.write("notes.txt", "second\n");
    for (name, args) in read_only_git_calls() {
        let v = tool(&p, name, args.clone(), false);
        assert_eq!(trip.runs(), 0, "{name} {args} ran a program: {v}");
        assert_eq!(v["decision"], "denied", "{name} {args}: {v}");
        assert!(
            v["reason"].as_str().unwrap().contains("shared.gitconfig"),
            "{v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. git shows exactly the files fs.read may read

fn shows(text: &str) -> Vec<&'static str> {
    [
        "planted-upper-pem",
        "planted-upper-ssh",
        "planted-upper-env",
        "planted-secrets-folder",
        "planted-deep-secrets",
    ]
    .into_iter()
    .filter(|m| text.contains(m))
    .collect()
}

#[test]
fn git_output_hides_denied_files_whatever_their_case_and_denied_folders_whole() {
    let p = Project::new();
    p.write("ao.toml", "[policy]\ndenied = [\"secrets\"]\n");
    p.write("README.md", "# demo\n");
    p.write("SERVER.PEM", "planted-upper-pem v1\n");
    p.write(".SSH/ID_RSA", "planted-upper-ssh v1\n");
    p.write(".ENV", "planted-upper-env v1\n");
    p.write("secrets/db.txt", "planted-secrets-folder v1\n");
    p.write("deep/Secrets/x.txt", "planted-deep-secrets v1\n");
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "one"]);
    for (f, m) in [
        ("SERVER.PEM", "planted-upper-pem"),
        (".SSH/ID_RSA", "planted-upper-ssh"),
        (".ENV", "planted-upper-env"),
        ("secrets/db.txt", "planted-secrets-folder"),
        ("deep/Secrets/x.txt", "planted-deep-secrets"),
    ] {
        p.write(f, &format!("{m} v2\n"));
        // fs.read refuses each of them: git must show no more.
        let v = tool(&p, "fs.read", json!({"path": f}), false);
        assert_eq!(v["decision"], "denied", "{f}: {v}");
    }
    p.write("README.md", "# demo, changed\n");
    git(p.path(), &["commit", "-q", "-am", "two"]);
    p.write("SERVER.PEM", "planted-upper-pem v3\n");

    for (name, args) in [
        ("git.show", json!({"rev": "HEAD"})),
        ("git.show", json!({"rev": "HEAD~1"})),
        ("git.diff", json!({})),
        ("git.diff", json!({"range": "HEAD~1..HEAD"})),
        ("git.status", json!({})),
        ("cmd.run", json!({"argv": ["git", "log", "-p"]})),
        ("cmd.run", json!({"argv": ["git", "log", "--stat"]})),
        ("cmd.run", json!({"argv": ["git", "show", "HEAD"]})),
        ("cmd.run", json!({"argv": ["git", "diff", "HEAD~1"]})),
        ("cmd.run", json!({"argv": ["git", "status", "--short"]})),
        ("cmd.run", json!({"argv": ["git", "ls-files"]})),
    ] {
        let v = tool(&p, name, args.clone(), false);
        let text = v.to_string();
        assert!(
            shows(&text).is_empty(),
            "{name} {args} showed {:?}: {v}",
            shows(&text)
        );
        for name_shown in ["SERVER.PEM", "ID_RSA", ".ENV", "secrets/db.txt", "x.txt"] {
            assert!(
                !text.contains(name_shown),
                "{name} {args} named {name_shown}: {v}"
            );
        }
    }
    // The allowed file is still there.
    let v = tool(&p, "cmd.run", json!({"argv": ["git", "log", "-p"]}), false);
    assert!(
        v["output"]["stdout"]
            .as_str()
            .unwrap()
            .contains("+# demo, changed"),
        "{v}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. hard links

#[test]
fn a_file_with_several_hard_links_is_not_read_unless_the_policy_allows_it() {
    let outside = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("secret.txt");
    std::fs::write(&outside_file, "planted-hardlinked-outside\n").unwrap();
    let p = Project::new();
    p.write(".env", "SECRET_LINE=planted-hardlinked-dotenv\n");
    p.write("README.md", "# demo\n");
    // Both in the temp dir's file system, so a hard link can be made.
    if std::fs::hard_link(&outside_file, p.path().join("notes.txt")).is_err() {
        eprintln!("skipped: the temp dirs are on different file systems");
        return;
    }
    std::fs::hard_link(p.path().join(".env"), p.path().join("env-copy.txt")).unwrap();
    for path in ["notes.txt", "env-copy.txt"] {
        let v = tool(&p, "fs.read", json!({"path": path}), false);
        assert_eq!(v["decision"], "denied", "{path}: {v}");
        assert!(v["reason"].as_str().unwrap().contains("hard link"), "{v}");
        for (name, args) in [
            (
                "fs.edit",
                json!({"path": path, "search": "planted", "replace": "x"}),
            ),
            ("fs.write", json!({"path": path, "content": "x"})),
        ] {
            let v = tool(&p, name, args, false);
            assert_eq!(v["decision"], "denied", "{name} {path}: {v}");
        }
    }
    let v = tool(
        &p,
        "fs.search",
        json!({"pattern": "planted-hardlinked"}),
        false,
    );
    assert_eq!(v["output"]["matches"], json!([]), "{v}");
    assert!(!v.to_string().contains("planted-hardlinked"), "{v}");
    assert_eq!(
        std::fs::read_to_string(&outside_file).unwrap(),
        "planted-hardlinked-outside\n"
    );

    // The documented setting allows them.
    p.write("ao.toml", "[policy]\nallow_hardlinks = true\n");
    let v = tool(&p, "fs.read", json!({"path": "notes.txt"}), false);
    assert_eq!(v["decision"], "allowed", "{v}");
    assert!(
        v["output"]["content"]
            .as_str()
            .unwrap()
            .contains("planted-hardlinked-outside")
    );
    let v = tool(&p, "fs.read", json!({"path": ".env"}), false);
    assert_eq!(v["decision"], "denied", "{v}");
}

// ---------------------------------------------------------------------------------------------
// 5. allowed prefixes cannot smuggle options; ao doctor explains each entry

#[test]
fn options_after_an_allowed_prefix_that_name_programs_or_outside_paths_are_denied() {
    let mut p = Project::new();
    p.write("README.md", "# demo\n");
    p.set_env(
        "AO_ALLOWED_COMMANDS",
        "cargo test,npm test,pnpm test,yarn test,go test,go build,pytest,git commit",
    );
    for (argv, needle) in [
        (
            json!([
                "cargo",
                "test",
                "--config",
                "target.x86_64-unknown-linux-gnu.runner=['sh','-c','touch pwned']"
            ]),
            "--config",
        ),
        (json!(["cargo", "test", "-Zunstable-options"]), "-Z"),
        (
            json!([
                "cargo",
                "test",
                "--manifest-path",
                "/tmp/elsewhere/Cargo.toml"
            ]),
            "--manifest-path",
        ),
        (
            json!(["npm", "test", "--prefix", "/tmp/elsewhere"]),
            "--prefix",
        ),
        (json!(["pnpm", "test", "--dir=/tmp/elsewhere"]), "--dir"),
        (json!(["yarn", "test", "--cwd", "/tmp/elsewhere"]), "--cwd"),
        (
            json!(["npm", "test", "--script-shell=/tmp/evil"]),
            "--script-shell",
        ),
        (
            json!(["go", "test", "-toolexec=/tmp/evil", "./..."]),
            "-toolexec",
        ),
        (
            json!(["go", "test", "-exec", "/tmp/evil", "./..."]),
            "-exec",
        ),
        (
            json!(["go", "build", "-ldflags=-extld=/tmp/evil", "./..."]),
            "-ldflags",
        ),
        (json!(["pytest", "-p", "evil_plugin"]), "-p"),
        (
            json!(["pytest", "--rootdir", "/tmp/elsewhere"]),
            "--rootdir",
        ),
        (json!(["git", "commit", "-c", "core.hooksPath=/tmp"]), "-c"),
        (json!(["git", "commit", "--exec-path=/tmp"]), "--exec-path"),
        (json!(["git", "commit", "--git-dir=/tmp/x"]), "--git-dir"),
        (
            json!(["git", "commit", "--work-tree=/tmp/x"]),
            "--work-tree",
        ),
        (
            json!(["git", "commit", "--config-env=core.pager=X"]),
            "--config-env",
        ),
    ] {
        // Dry-run: the old gate would only have simulated these; now they are refused.
        let v = tool(&p, "cmd.run", json!({"argv": argv}), false);
        assert_eq!(v["decision"], "denied", "{argv}: {v}");
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains(needle), "{argv}: {reason}");
    }
    // The ordinary forms are still allowed (simulated in dry-run).
    for argv in [
        json!(["cargo", "test", "-p", "core", "--", "--nocapture"]),
        json!(["npm", "test", "--silent"]),
        json!(["go", "test", "-run", "TestX", "./..."]),
        json!(["pytest", "-p", "no:cacheprovider", "-k", "slow"]),
    ] {
        let v = tool(&p, "cmd.run", json!({"argv": argv}), false);
        assert_eq!(v["decision"], "simulated", "{argv}: {v}");
    }
}

#[test]
fn ao_doctor_explains_what_each_allowed_command_still_permits() {
    let mut p = Project::new();
    p.set_env("AO_ALLOWED_COMMANDS", "cargo test,bash,mytool check");
    let (code, doc) = p.json(&["doctor", "--json"]);
    assert_eq!(code, 0, "{doc}");
    let permits = doc["policy"]["command_permits"].as_array().unwrap();
    let find = |prefix: &str| {
        permits
            .iter()
            .find(|c| c["prefix"] == prefix)
            .unwrap_or_else(|| panic!("no entry for {prefix}: {doc}"))
    };
    let cargo = find("cargo test");
    assert_eq!(cargo["arbitrary_code"], false);
    assert!(
        cargo["permits"].as_str().unwrap().contains("build scripts"),
        "{cargo}"
    );
    assert!(
        cargo["permits"].as_str().unwrap().contains("--config"),
        "{cargo}"
    );
    assert_eq!(find("bash")["arbitrary_code"], true);
    assert!(
        find("mytool check")["permits"]
            .as_str()
            .unwrap()
            .contains("knows nothing")
    );
    assert!(
        find("git diff")["permits"]
            .as_str()
            .unwrap()
            .contains("neutralised")
    );
    let (code, stdout, _) = p.run(&["doctor"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("`cargo test`") && stdout.contains("build scripts"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. file modes

/// Runs `ao ARGS` under `umask`.
fn run_with_umask(p: &Project, umask: &str, args: &[&str]) -> (i32, String) {
    let inner = p.spawn(args);
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(inner.get_program())
        .args(inner.get_args());
    if let Some(dir) = inner.get_current_dir() {
        c.current_dir(dir);
    }
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode_of(p: &Project, rel: &str) -> u32 {
    std::fs::metadata(p.path().join(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_written_file_keeps_the_mode_it_replaces_and_a_new_one_follows_the_umask() {
    let p = Project::new();
    p.write("run.sh", "#!/bin/sh\necho old\n");
    std::fs::set_permissions(
        p.path().join("run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    p.write("private.txt", "old\n");
    std::fs::set_permissions(
        p.path().join("private.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for (path, content) in [
        ("run.sh", "#!/bin/sh\necho new\n"),
        ("private.txt", "new\n"),
        ("fresh.txt", "new file\n"),
        ("new/dir/fresh.txt", "new file\n"),
    ] {
        let args = json!({"path": path, "content": content}).to_string();
        let (code, out) = run_with_umask(
            &p,
            "027",
            &[
                "tools", "run", "fs.write", "--args", &args, "--apply", "--json",
            ],
        );
        assert_eq!(code, 0, "{out}");
    }
    assert_eq!(mode_of(&p, "run.sh"), 0o750);
    assert_eq!(mode_of(&p, "private.txt"), 0o600);
    assert_eq!(mode_of(&p, "fresh.txt"), 0o640);
    assert_eq!(mode_of(&p, "new/dir/fresh.txt"), 0o640);

    // `ao apply` the same way.
    one_tool_workflow(
        &p,
        "make",
        "fs.write",
        json!({"path": "made-{{ item }}.txt", "content": "made\n"}),
        Some("range(2)"),
    );
    let id = run_completed(&p, "make");
    let (code, out) = run_with_umask(&p, "077", &["apply", &id]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(mode_of(&p, "made-0.txt"), 0o600);
}

// ---------------------------------------------------------------------------------------------
// 7. secrets: no search oracle, no secret-named locale variables, redacted errors

#[test]
fn fs_search_cannot_tell_whether_a_pattern_matches_inside_a_secret() {
    let mut p = Project::new();
    p.set_env("OPENAI_API_KEY", OPENAI_KEY);
    p.write("config.txt", &format!("name = demo\nkey = {OPENAI_KEY}\n"));
    // A prefix of the secret, then a wrong next character: a yes/no oracle would answer
    // differently; here neither matches, because the search sees `[REDACTED]`.
    for pattern in [
        "sk-planted-openai-key-4f1e",
        "sk-planted-openai-key-4f1f",
        "4f1e9c2a7b$",
        "key-4f",
    ] {
        let v = tool(&p, "fs.search", json!({"pattern": pattern}), false);
        assert_eq!(v["output"]["matches"], json!([]), "{pattern}: {v}");
    }
    let v = tool(
        &p,
        "fs.search",
        json!({"pattern": "key = \\[REDACTED\\]"}),
        false,
    );
    assert_eq!(v["output"]["matches"][0]["path"], "config.txt", "{v}");
    let v = tool(&p, "fs.search", json!({"pattern": "name = demo"}), false);
    assert_eq!(v["output"]["matches"][0]["line"], 1, "{v}");
}

#[test]
fn a_locale_variable_with_a_secret_name_does_not_reach_a_child() {
    let mut p = Project::new();
    p.set_env("AO_ALLOWED_COMMANDS", "env");
    p.set_env("LC_ALL", "C");
    p.set_env("LC_API_TOKEN", "planted-locale-token-93bd1");
    p.set_env("LC_SECRET", "planted-locale-secret-93bd1");
    let v = tool(&p, "cmd.run", json!({"argv": ["env"]}), true);
    let stdout = v["output"]["stdout"].as_str().unwrap();
    assert!(stdout.contains("LC_ALL=C"), "{stdout}");
    assert!(
        !stdout.contains("LC_API_TOKEN") && !stdout.contains("LC_SECRET"),
        "{stdout}"
    );
}

#[test]
fn tool_errors_that_echo_an_argument_are_redacted() {
    let mut p = Project::new();
    p.set_env("OPENAI_API_KEY", OPENAI_KEY);
    p.set_env("AO_ALLOWED_COMMANDS", OPENAI_KEY);
    for (name, args) in [
        ("fs.read", json!({"path": format!("{OPENAI_KEY}.txt")})),
        (
            "fs.edit",
            json!({"path": format!("{OPENAI_KEY}.txt"), "search": "a", "replace": "b"}),
        ),
        ("cmd.run", json!({"argv": [OPENAI_KEY]})),
    ] {
        let args_text = args.to_string();
        let (code, stdout, stderr) = p.run(&[
            "tools", "run", name, "--args", &args_text, "--apply", "--json",
        ]);
        let all = format!("{stdout}{stderr}");
        assert_ne!(code, 0, "{name}: {all}");
        assert!(!all.contains(OPENAI_KEY), "{name} leaked the key: {all}");
        assert!(all.contains("[REDACTED]"), "{name}: {all}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. `ao apply` is all-or-nothing across a crash

const CRASH_FILES: usize = 2000;

fn old_content(i: usize) -> String {
    format!("old content of file {i}\n")
}

/// What the workflow's template renders (a template keeps its trailing newline).
fn new_content(i: usize) -> String {
    format!("new content of file {i}\n")
}

/// `all-old`, `all-new`, or a description of the mix.
fn tree_state(p: &Project) -> String {
    let (mut old, mut new, mut other) = (0, 0, Vec::new());
    for i in 0..CRASH_FILES {
        let rel = format!("gen/f{i}.txt");
        match std::fs::read_to_string(p.path().join(&rel)) {
            Ok(t) if t == old_content(i) => old += 1,
            Ok(t) if t == new_content(i) => new += 1,
            Ok(_) => other.push(format!("{rel}: other content")),
            Err(e) => other.push(format!("{rel}: {e}")),
        }
    }
    match (old, new, other.len()) {
        (o, 0, 0) if o == CRASH_FILES => "all-old".into(),
        (0, n, 0) if n == CRASH_FILES => "all-new".into(),
        _ => format!(
            "{old} old, {new} new, {} other: {:?}",
            other.len(),
            &other[..other.len().min(3)]
        ),
    }
}

fn reset_tree(p: &Project) {
    for i in 0..CRASH_FILES {
        std::fs::write(p.path().join(format!("gen/f{i}.txt")), old_content(i)).unwrap();
    }
}

#[test]
fn a_killed_ao_apply_is_finished_or_undone_by_the_next_command_and_leaves_no_litter() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("gen")).unwrap();
    reset_tree(&p);
    one_tool_workflow(
        &p,
        "rewrite",
        "fs.write",
        json!({
            "path": "gen/f{{ item }}.txt",
            "content": "new content of file {{ item }}\n",
        }),
        Some(&format!("range({CRASH_FILES})")),
    );
    let started = Instant::now();
    let id = run_completed(&p, "rewrite");
    eprintln!(
        "the {CRASH_FILES}-file dry run took {:?}",
        started.elapsed()
    );
    assert_eq!(tree_state(&p), "all-old");
    let journal = p.path().join(".ao/apply-journal.json");

    // Kill points: as soon as the journal exists (staging), once temporary files are being
    // written, and once renames have begun (committing).
    type Point = Box<dyn Fn(&Project) -> bool>;
    let points: Vec<(&str, Point)> = vec![
        (
            "journal written",
            Box::new(move |_p: &Project| journal.exists()),
        ),
        (
            "temporary files written",
            Box::new(|p: &Project| temp_litter(&p.path().join("gen")).len() >= 200),
        ),
        (
            "files renamed",
            Box::new(|p: &Project| {
                (0..CRASH_FILES).step_by(50).any(|i| {
                    std::fs::read_to_string(p.path().join(format!("gen/f{i}.txt")))
                        .is_ok_and(|t| t.starts_with("new content"))
                })
            }),
        ),
    ];
    let mut interrupted = Vec::new();
    for (i, (what, reached)) in points.iter().enumerate() {
        reset_tree(&p);
        let mut child = p
            .spawn(&["apply", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut killed = false;
        while Instant::now() < deadline {
            if reached(&p) {
                child.kill().unwrap(); // SIGKILL
                killed = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = child.wait().unwrap();
        let mid = tree_state(&p);
        eprintln!("kill at `{what}`: killed {killed}, exit {status:?}, tree {mid}");
        if killed && !status.success() {
            interrupted.push(what.to_string());
        }
        // The next command that builds the policy finishes or undoes it: `ao doctor`, then
        // `ao apply --check`, then `ao apply` itself.
        let next: &[&str] = match i {
            0 => &["doctor"],
            1 => &["apply", &id, "--check"],
            _ => &["apply", &id],
        };
        let (_, stdout, stderr) = p.run(next);
        let after = tree_state(&p);
        assert!(
            after == "all-old" || after == "all-new",
            "after a kill at `{what}` and `ao {next:?}`: {after}\n{stdout}{stderr}"
        );
        assert_eq!(
            temp_litter(p.path()),
            Vec::<PathBuf>::new(),
            "litter after `{what}`"
        );
        assert!(!p.path().join(".ao/apply-journal.json").exists());
        // And applying again works from whichever state it is in.
        if after == "all-old" {
            let (code, stdout, stderr) = p.run(&["apply", &id]);
            assert_eq!(code, 0, "re-apply after `{what}`: {stdout}{stderr}");
            assert_eq!(tree_state(&p), "all-new");
        }
    }
    assert!(
        interrupted.len() >= 2,
        "the kills should land in the middle of the apply at least twice: {interrupted:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. the missing default denials

#[test]
fn credentials_of_common_tools_are_denied_by_default_and_one_can_be_allowed() {
    let p = Project::new();
    let files = [
        ".ssh2/id_ecdsa",
        "keys/id_dsa",
        "certs/client.p12",
        "certs/client.pfx",
        ".npmrc",
        ".netrc",
        ".git-credentials",
        ".pgpass",
        ".docker/config.json",
        ".kube/config",
        ".gnupg/private-keys-v1.d/key",
        "credentials.json",
        "infra/terraform.tfstate",
    ];
    for f in files {
        p.write(f, "planted-credential-0d41\n");
    }
    for f in files {
        let v = tool(&p, "fs.read", json!({"path": f}), false);
        assert_eq!(v["decision"], "denied", "{f}: {v}");
    }
    let v = tool(
        &p,
        "fs.search",
        json!({"pattern": "planted-credential"}),
        false,
    );
    assert_eq!(v["output"]["matches"], json!([]), "{v}");
    let v = tool(&p, "fs.list", json!({}), false);
    assert!(!v.to_string().contains("tfstate"), "{v}");

    p.write(
        "ao.toml",
        "[policy]\noverride_denied = [\"**/*.tfstate\"]\n",
    );
    let v = tool(
        &p,
        "fs.read",
        json!({"path": "infra/terraform.tfstate"}),
        false,
    );
    assert_eq!(v["decision"], "allowed", "{v}");
    let v = tool(&p, "fs.read", json!({"path": ".npmrc"}), false);
    assert_eq!(v["decision"], "denied", "{v}");
}

// ---------------------------------------------------------------------------------------------
// [policy] typed once

#[test]
fn a_policy_typo_or_wrong_type_is_exit_2_naming_file_line_and_key_for_every_command() {
    let p = Project::new();
    for (text, line, key) in [
        (
            "[policy]\nwriteable = [\"src/**\"]\n",
            2,
            "policy.writeable",
        ),
        (
            "# x\n[policy]\nallowed_commands = \"cargo test\"\n",
            3,
            "policy.allowed_commands",
        ),
        (
            "[policy]\nallow_hardlinks = \"yes\"\n",
            2,
            "policy.allow_hardlinks",
        ),
    ] {
        p.write("ao.toml", text);
        for argv in [
            &["runs", "list"][..],
            &["doctor"],
            &["graph", "list"],
            &[
                "tools",
                "run",
                "fs.read",
                "--args",
                "{\"path\": \"ao.toml\"}",
            ],
            &["run", "anything"],
            &["apply", "RUN"],
            &["models", "list"],
        ] {
            let (code, stdout, stderr) = p.run(argv);
            assert_eq!(code, 2, "ao {argv:?} with {text:?}:\n{stdout}{stderr}");
            assert!(
                stderr.contains(&format!("ao.toml:{line}:"))
                    && stderr.contains(&format!("`{key}`")),
                "ao {argv:?} should name the file, line {line} and `{key}`:\n{stderr}"
            );
        }
    }
}

#[test]
fn ao_schema_config_describes_the_policy_keys_with_their_types() {
    let p = Project::new();
    let (code, schema) = p.json(&["schema", "config"]);
    assert_eq!(code, 0);
    let policy = &schema["$defs"]["PolicyConfig"];
    assert_eq!(policy["additionalProperties"], false, "{schema}");
    for (key, ty) in [
        ("allowed_commands", "array"),
        ("writable", "array"),
        ("denied", "array"),
        ("env_passthrough", "array"),
        ("override_denied", "array"),
        ("allow_hardlinks", "boolean"),
    ] {
        let prop = &policy["properties"][key];
        assert!(
            prop.to_string().contains(&format!("\"{ty}\"")),
            "{key}: {prop}"
        );
        assert!(
            prop["description"].is_string(),
            "{key} is undocumented: {prop}"
        );
    }
}
