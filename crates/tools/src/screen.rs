//! Option screening for allowed command prefixes, and what an allowlist entry still permits.
//!
//! An allowed prefix (`cargo test`) lets any arguments follow it. Some options of the common
//! toolchains turn such a command into something else: they name a program to run
//! (`cargo --config target.x.runner=…`, `go -toolexec`, `npm --script-shell`), configuration
//! that can (`npm --userconfig`, `pytest -p plugin`), or a directory or file outside the root
//! (`npm --prefix /elsewhere`, `cargo --manifest-path /elsewhere/Cargo.toml`). [`screen`]
//! refuses those with a reason; [`explain`] says, for `ao doctor`, what an entry still allows.
//! Git's options are screened by [`crate::screen_git_args`].
//!
//! What it is not: a sandbox. A build or test command runs the project's own code (build
//! scripts, tests, package scripts), which the write tools can change in apply mode; the
//! explanations say so.

use serde::Serialize;

/// What an allowlist entry still permits, for `ao doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandPermit {
    /// The entry, as words joined for a shell.
    pub prefix: String,
    /// The entry amounts to running any code (an interpreter, a shell, a task runner).
    pub arbitrary_code: bool,
    /// What the entry permits, and what ao refuses after it.
    pub permits: String,
}

/// The program's name without its directory (`/usr/bin/cargo` → `cargo`).
pub(crate) fn program_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Which toolchain an argv belongs to, for screening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    Cargo,
    Node,
    Go,
    Pytest,
    Git,
    Other,
}

fn toolchain(argv: &[String]) -> (Toolchain, usize) {
    let Some(program) = argv.first() else {
        return (Toolchain::Other, 0);
    };
    match program_name(program) {
        "cargo" => (Toolchain::Cargo, 1),
        "npm" | "pnpm" | "yarn" => (Toolchain::Node, 1),
        "go" => (Toolchain::Go, 1),
        "pytest" | "py.test" => (Toolchain::Pytest, 1),
        "git" => (Toolchain::Git, 1),
        p if p.starts_with("python")
            && argv.get(1).map(String::as_str) == Some("-m")
            && argv.get(2).map(String::as_str) == Some("pytest") =>
        {
            (Toolchain::Pytest, 3)
        }
        _ => (Toolchain::Other, 1),
    }
}

/// One option's name and value as written: `--opt=value`, `--opt value`, `-Ovalue`.
struct Opt<'a> {
    written: &'a str,
    value: Option<&'a str>,
}

/// Finds `names` among `args`: each name matches `NAME`, `NAME=value` and, for a name given
/// with `attached`, `NAMEvalue` (short options such as `-Z` or `-p`). The value is the attached
/// text or the next argument.
fn find<'a>(args: &'a [String], names: &[&str], attached: bool) -> Vec<Opt<'a>> {
    let mut found = Vec::new();
    for (i, a) in args.iter().enumerate() {
        for n in names {
            let value = if a == n {
                Some(args.get(i + 1).map(String::as_str))
            } else if let Some(v) = a.strip_prefix(&format!("{n}=")) {
                Some(Some(v))
            } else if attached && a.len() > n.len() && a.starts_with(n) && !n.starts_with("--") {
                Some(Some(&a[n.len()..]))
            } else {
                None
            };
            if let Some(value) = value {
                found.push(Opt { written: a, value });
            }
        }
    }
    found
}

/// Checks the options of an argv an allowed prefix accepted. `inside` checks that a path
/// (relative to the root, or absolute) resolves inside the root and is not denied; `Err` is the
/// denial reason.
pub(crate) fn screen(
    argv: &[String],
    inside: &dyn Fn(&str) -> Result<(), String>,
) -> Result<(), String> {
    let (kind, start) = toolchain(argv);
    let args = argv.get(start..).unwrap_or_default();
    let refuse = |opt: &Opt<'_>, why: &str| -> Result<(), String> {
        Err(format!("option `{}` is not allowed: {why}", opt.written))
    };
    let path_inside = |opts: Vec<Opt<'_>>, what: &str| -> Result<(), String> {
        for o in opts {
            let Some(v) = o.value else {
                return Err(format!("option `{}` needs a value", o.written));
            };
            if let Err(reason) = inside(v) {
                return Err(format!(
                    "option `{}` names {what} ao may not use: {reason}",
                    o.written
                ));
            }
        }
        Ok(())
    };
    match kind {
        Toolchain::Cargo => {
            if let Some(o) = find(args, &["--config"], false).first() {
                return refuse(
                    o,
                    "it sets cargo configuration, which can name programs to run (target runners, rustc wrappers, linkers)",
                );
            }
            if let Some(o) = find(args, &["-Z"], true).first() {
                return refuse(
                    o,
                    "unstable `-Z` flags change what cargo runs and where it reads configuration",
                );
            }
            if let Some(a) = args
                .first()
                .filter(|a| a.starts_with('+') && a.contains('/'))
            {
                return Err(format!(
                    "`{a}` is not allowed: a toolchain given by path runs the programs in that directory"
                ));
            }
            path_inside(
                find(args, &["--manifest-path", "--lockfile-path"], false),
                "a manifest",
            )?;
            path_inside(
                find(
                    args,
                    &["--target-dir", "--artifact-dir", "--out-dir", "-C"],
                    false,
                ),
                "a directory",
            )?;
            path_inside(find(args, &["--logfile"], false), "a file")?;
        }
        Toolchain::Node => {
            for (names, why) in [
                (
                    &[
                        "--script-shell",
                        "--shell",
                        "--node-options",
                        "--editor",
                        "--browser",
                        "--viewer",
                        "--git",
                    ][..],
                    "it names a program (or options of node) that the package manager would run",
                ),
                (
                    &["--userconfig", "--globalconfig", "--npmrc"][..],
                    "it names a configuration file, which can set the script shell and node options",
                ),
                (
                    &["-g", "--global", "--location"][..],
                    "it acts on the global installation, outside the project",
                ),
            ] {
                if let Some(o) = find(args, names, false).first() {
                    return refuse(o, why);
                }
            }
            path_inside(
                find(
                    args,
                    &["--prefix", "--dir", "-C", "--cwd", "--cache"],
                    false,
                ),
                "a directory (another package's scripts would run)",
            )?;
        }
        Toolchain::Go => {
            let dashed = |names: &[&str]| -> Vec<String> {
                names
                    .iter()
                    .flat_map(|n| [format!("-{n}"), format!("--{n}")])
                    .collect()
            };
            let names = dashed(&["toolexec", "exec"]);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if let Some(o) = find(args, &names, false).first() {
                return refuse(
                    o,
                    "it names a program go would run for every tool or test binary",
                );
            }
            let flags = dashed(&["ldflags", "gccgoflags"]);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            for o in find(args, &flags, false) {
                if o.value
                    .is_some_and(|v| v.contains("extld") || v.contains("extar"))
                {
                    return refuse(
                        &o,
                        "`-extld`/`-extar` name a program the linker step would run",
                    );
                }
            }
            let paths = dashed(&[
                "C",
                "o",
                "modfile",
                "overlay",
                "pkgdir",
                "outputdir",
                "coverprofile",
                "cpuprofile",
                "memprofile",
                "blockprofile",
                "mutexprofile",
                "trace",
            ]);
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            path_inside(find(args, &paths, false), "a file or directory")?;
        }
        Toolchain::Pytest => {
            for o in find(args, &["-p"], true) {
                if !o.value.is_some_and(|v| v.starts_with("no:")) {
                    return refuse(
                        &o,
                        "it loads a plugin module, code from anywhere on the import path (`-p no:NAME` to disable one is allowed)",
                    );
                }
            }
            if let Some(o) = find(args, &["--pdbcls"], false).first() {
                return refuse(o, "it names a class to import and run");
            }
            for o in find(args, &["-o", "--override-ini"], true) {
                let key = o
                    .value
                    .unwrap_or_default()
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .trim();
                if matches!(
                    key,
                    "addopts" | "pythonpath" | "required_plugins" | "python_files" | "cache_dir"
                ) {
                    return refuse(
                        &o,
                        "overriding this ini key can load code or options from elsewhere",
                    );
                }
            }
            path_inside(
                find(
                    args,
                    &[
                        "--rootdir",
                        "--basetemp",
                        "--confcutdir",
                        "-c",
                        "--config-file",
                        "--junitxml",
                        "--junit-xml",
                    ],
                    false,
                ),
                "a file or directory",
            )?;
        }
        Toolchain::Git => crate::git::screen_git_args(args)?,
        Toolchain::Other => {}
    }
    Ok(())
}

/// Prefixes (and programs) that amount to arbitrary code execution: interpreters, shells,
/// package runners, and entries that run whatever the project (which a model can edit) says.
pub(crate) fn is_arbitrary(prefix: &[String]) -> bool {
    const PROGRAMS: [&str; 22] = [
        "sh", "bash", "zsh", "dash", "fish", "env", "xargs", "node", "deno", "bun", "python",
        "python3", "perl", "ruby", "php", "npx", "bunx", "docker", "sudo", "eval", "exec",
        "busybox",
    ];
    const PREFIXES: [&[&str]; 10] = [
        &["pnpm", "exec"],
        &["pnpm", "dlx"],
        &["npm", "exec"],
        &["npm", "run"],
        &["yarn", "dlx"],
        &["uv", "run"],
        &["cargo", "run"],
        &["go", "run"],
        &["go", "generate"],
        &["make"],
    ];
    let program = prefix.first().map(|p| program_name(p)).unwrap_or("");
    PROGRAMS.contains(&program)
        || PREFIXES.iter().any(|pre| {
            // `cargo run --bin x` is narrower; only the bare prefix is arbitrary.
            prefix.len() == pre.len()
                && prefix
                    .iter()
                    .zip(pre.iter())
                    .enumerate()
                    .all(|(i, (a, b))| {
                        if i == 0 {
                            program_name(a) == *b
                        } else {
                            a == b
                        }
                    })
        })
}

/// What an allowlist entry still permits once ao has screened its options.
pub(crate) fn explain(prefix: &[String]) -> CommandPermit {
    let joined = shell_words::join(prefix);
    let arbitrary = is_arbitrary(prefix);
    let sub = prefix.get(1).map(String::as_str).unwrap_or("");
    let (kind, _) = toolchain(prefix);
    let permits = if arbitrary {
        format!(
            "any program or script: `{joined}` runs whatever its arguments or the project's files say, so it amounts to arbitrary code execution"
        )
    } else {
        match kind {
            Toolchain::Cargo => match sub {
                "fmt" => {
                    "runs rustfmt over the project (it reads rustfmt.toml); no project code runs"
                        .to_string()
                }
                _ => format!(
                    "`{joined}` with any further arguments: it compiles the project, running its build scripts and procedural macros{}; that code is the project's, which the write tools can change in apply mode, and `.cargo/config.toml` in the project can still name runners and wrappers. ao refuses `--config`, `-Z`, a toolchain given by path, and `--manifest-path`, `--target-dir` and similar outside the root",
                    if matches!(sub, "test" | "bench" | "nextest") {
                        ", then the tests themselves"
                    } else {
                        ""
                    }
                ),
            },
            Toolchain::Node => format!(
                "`{joined}` with any further arguments: it runs the scripts package.json defines (shell command lines, which the write tools can change in apply mode) and the packages they call. ao refuses `--script-shell`, `--node-options`, configuration files, global installs, and `--prefix`, `--dir`, `-C` outside the root"
            ),
            Toolchain::Go => format!(
                "`{joined}` with any further arguments: it compiles the project (cgo directives in its source can pass flags to the C compiler){}. ao refuses `-toolexec`, `-exec`, `-ldflags` naming a linker program, and `-C`, `-o`, `-modfile`, `-overlay` outside the root",
                if sub == "test" {
                    " and runs its tests"
                } else {
                    ""
                }
            ),
            Toolchain::Pytest => format!(
                "`{joined}` with any further arguments: it imports and runs the project's tests and conftest.py files (project code). ao refuses `-p` plugins, `--pdbcls`, `-o addopts`/`pythonpath`, and `--rootdir`, `--basetemp`, `-c` outside the root"
            ),
            Toolchain::Git => format!(
                "`{joined}` with any further arguments, run on the root's own repository only (`--git-dir`/`--work-tree` pinned), with configuration that names programs neutralised and without the system or global git configuration. ao refuses `-c`, `-C`, `--git-dir`, `--work-tree`, `--exec-path`, `--config-env`, `--output` and other options that run programs, write files or leave the root; denied files are excluded from its output"
            ),
            Toolchain::Other => format!(
                "`{joined}` with any further arguments: ao checks only the prefix and knows nothing of this program's options, so any option it has that names a program, a configuration file or a path outside the root is passed through"
            ),
        }
    };
    CommandPermit {
        prefix: joined,
        arbitrary_code: arbitrary,
        permits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn inside(p: &str) -> Result<(), String> {
        if p.starts_with('/') || p.starts_with("..") {
            Err("outside the project root".to_string())
        } else {
            Ok(())
        }
    }

    #[test]
    fn options_that_name_programs_config_or_outside_paths_are_refused() {
        for bad in [
            "cargo test --config target.x86_64-unknown-linux-gnu.runner=['sh']",
            "cargo test --config=build.rustc-wrapper='/tmp/x'",
            "cargo test -Zunstable-options",
            "cargo test -Z build-std",
            "cargo +/tmp/toolchain test",
            "cargo test --manifest-path /elsewhere/Cargo.toml",
            "cargo test --manifest-path=../x/Cargo.toml",
            "cargo build --target-dir /tmp/t",
            "cargo test -- --logfile /tmp/log",
            "/usr/bin/cargo test --config x=1",
            "npm test --prefix /elsewhere",
            "npm test --prefix=/elsewhere",
            "pnpm test --dir ../other",
            "pnpm -C /other test",
            "yarn test --cwd /x",
            "npm test --script-shell=/bin/evil",
            "npm test --node-options=--require=/tmp/x.js",
            "npm test --userconfig /tmp/npmrc",
            "npm test -g",
            "go test -toolexec=/tmp/x ./...",
            "go test --exec /tmp/x ./...",
            "go test -exec=sh ./...",
            "go build -ldflags=-extld=/tmp/cc ./...",
            "go build -o /tmp/bin ./...",
            "go test -C /elsewhere ./...",
            "pytest -p evil_plugin",
            "pytest -pevil",
            "pytest --rootdir /elsewhere",
            "pytest --rootdir=/elsewhere",
            "pytest --basetemp ../x",
            "pytest -c /tmp/pytest.ini",
            "pytest -o addopts=-pevil",
            "pytest --pdbcls=evil:Debugger",
            "python3 -m pytest -p evil",
            "git diff -c core.pager=sh",
            "git log --exec-path=/x",
            "git -C /x status",
            "git status --git-dir=/x",
            "git status --work-tree=/x",
            "git log --config-env=core.pager=X",
        ] {
            let r = screen(&argv(bad), &inside);
            assert!(r.is_err(), "{bad} should be refused");
            let reason = r.err().unwrap_or_default();
            assert!(!reason.is_empty(), "{bad}");
        }
        for ok in [
            "cargo test -p core --release",
            "cargo test --manifest-path crates/x/Cargo.toml",
            "cargo test -- --nocapture",
            "npm test --prefix packages/a",
            "npm test --silent",
            "go test -run TestX ./...",
            "go build -ldflags=-s ./...",
            "go build -o bin/x ./...",
            "pytest -p no:cacheprovider -k slow",
            "pytest --rootdir . tests",
            "pytest -o log_cli=true",
            "make test",
            "git log --oneline -5",
        ] {
            assert!(screen(&argv(ok), &inside).is_ok(), "{ok} should pass");
        }
    }

    #[test]
    fn explanations_say_what_each_entry_permits() {
        let e = explain(&argv("cargo test"));
        assert!(!e.arbitrary_code);
        assert!(
            e.permits.contains("build scripts") && e.permits.contains("--config"),
            "{e:?}"
        );
        let e = explain(&argv("bash"));
        assert!(e.arbitrary_code && e.permits.contains("arbitrary"), "{e:?}");
        let e = explain(&argv("npm test"));
        assert!(
            e.permits.contains("package.json") && e.permits.contains("--prefix"),
            "{e:?}"
        );
        let e = explain(&argv("mytool check"));
        assert!(e.permits.contains("knows nothing"), "{e:?}");
        assert!(explain(&argv("go run")).arbitrary_code);
        assert!(!explain(&argv("cargo run --bin x")).arbitrary_code);
        assert!(explain(&argv("/usr/bin/python3 -c")).arbitrary_code);
    }
}
