//! Kernel confinement through the `ao` binary: an allowed command (through `ao tools run
//! cmd.run --apply` and through a workflow's validation) that tries to write outside the root,
//! read a planted `~/.ssh/id_rsa` or connect to a TCP listener gets a permission error and the
//! attempt has no effect, while its writes inside the root and reads of system libraries
//! succeed; `[policy] network` opens TCP; an endless loop, a runaway writer and a process flood
//! are stopped by the limits and reported; a real `cargo test` passes confined; `ao doctor`
//! reports what is enforced.
//!
//! These tests need a kernel with Landlock (ABI 6 or later for the scopes); `ao doctor` says
//! which ABI ao found, and each test stops early, saying so, on a kernel without it.

mod support;

use ao_testkit::{StubModel, completion, tool_calls};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::Project;

const SECRET_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY----- planted-test-key-7f3a";

/// A project with a test home directory holding a planted private key.
struct Setup {
    p: Project,
    home: tempfile::TempDir,
    outside: tempfile::TempDir,
}

fn setup(ao_toml: &str) -> Setup {
    let mut p = Project::new();
    p.write("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
    if !ao_toml.is_empty() {
        p.write("ao.toml", ao_toml);
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/id_rsa"), SECRET_KEY).unwrap();
    p.set_env("HOME", home.path().to_str().unwrap());
    p.set_env("AO_ALLOWED_COMMANDS", "bash,cat,head");
    Setup {
        p,
        home,
        outside: tempfile::tempdir().unwrap(),
    }
}

/// The kernel's Landlock ABI as `ao doctor` reports it.
fn landlock_abi(p: &Project) -> u64 {
    let (code, v) = p.json(&["doctor", "--json"]);
    assert_eq!(code, 0, "{v}");
    v["policy"]["confinement"]["landlock_abi"]
        .as_u64()
        .unwrap_or_else(|| panic!("no Landlock ABI in the doctor report: {v}"))
}

fn confined(p: &Project) -> bool {
    let abi = landlock_abi(p);
    if abi < 6 {
        eprintln!("skipped: the kernel's Landlock ABI is {abi}, these tests need 6 or later");
        return false;
    }
    true
}

/// `ao tools run cmd.run --apply --json` with `argv`.
fn run(p: &Project, argv: &[&str]) -> Value {
    let args = json!({ "argv": argv }).to_string();
    let (code, v) = p.json(&[
        "tools", "run", "cmd.run", "--args", &args, "--apply", "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["decision"], "allowed", "{v}");
    v["output"].clone()
}

/// The C library this test process has mapped (a system library every command reads).
fn libc_path() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so") || p.contains("/libc-"))
        .expect("a mapped libc")
        .to_string()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

/// A script that writes inside the root and reads a system library (both must work), then
/// tries to write `outside`, read the planted key and connect to `port`, printing a marker for
/// each attempt the kernel refused. It exits 0.
fn escape_script(outside: &Path, home: &Path, port: u16) -> String {
    format!(
        "echo inside > inside.txt && echo WROTE_INSIDE; \
         head -c 4 {libc} | tail -c 3; echo; \
         (echo escaped > {out}) || echo DENIED_OUTSIDE; \
         cat {home}/.ssh/id_rsa || echo DENIED_SSH; \
         (exec 3<>/dev/tcp/127.0.0.1/{port}) || echo DENIED_TCP; \
         exit 0",
        libc = libc_path(),
        out = outside.display(),
        home = home.display(),
    )
}

/// Every marker of a refused attempt, the system library read, the write inside.
fn assert_escapes_refused(stdout: &str, stderr: &str) {
    for marker in [
        "WROTE_INSIDE",
        "ELF",
        "DENIED_OUTSIDE",
        "DENIED_SSH",
        "DENIED_TCP",
    ] {
        assert!(
            stdout.contains(marker),
            "missing {marker}:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stdout.contains(SECRET_KEY) && !stderr.contains("planted-test-key"));
    assert!(
        stderr.matches("Permission denied").count() >= 3,
        "each refusal is a permission error:\n{stderr}"
    );
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn assert_no_connection(l: &TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the listener was reached: {other:?}"),
    }
}

fn assert_connected(l: &TcpListener) {
    let start = Instant::now();
    loop {
        match l.accept() {
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(start.elapsed() < Duration::from_secs(5), "no connection");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn cmd_run_cannot_write_outside_read_the_home_or_connect() {
    let s = setup("");
    if !confined(&s.p) {
        return;
    }
    let (l, port) = listener();
    let out_file = s.outside.path().join("escaped.txt");
    let script = escape_script(&out_file, s.home.path(), port);
    let o = run(&s.p, &["bash", "-c", &script]);
    assert_eq!(o["exit_code"], 0, "{o}");
    assert_escapes_refused(o["stdout"].as_str().unwrap(), o["stderr"].as_str().unwrap());
    assert!(!out_file.exists(), "the write outside had no effect");
    assert_no_connection(&l);
    assert_eq!(
        std::fs::read_to_string(s.p.path().join("inside.txt")).unwrap(),
        "inside\n"
    );
    // The key is still there and untouched; reading it directly is refused too.
    let o = run(
        &s.p,
        &["cat", s.home.path().join(".ssh/id_rsa").to_str().unwrap()],
    );
    assert_ne!(o["exit_code"], 0, "{o}");
    assert!(!o["stdout"].as_str().unwrap().contains("planted"));
    // The decision says which confinement applied.
    let c = &o["confinement"];
    assert_eq!(c["filesystem"], true, "{o}");
    assert_eq!(c["network"], "denied");
    assert_eq!(c["network_enforced"], true);
    assert_eq!(c["scopes"], true);
    assert_eq!(c["root_writable"], true);
}

#[test]
fn the_network_setting_opens_exactly_the_ports_it_lists() {
    let (allowed, allowed_port) = listener();
    let (other, other_port) = listener();
    let s = setup(&format!("[policy]\nnetwork = [{allowed_port}]\n"));
    if !confined(&s.p) {
        return;
    }
    let connect = |port: u16| {
        run(
            &s.p,
            &[
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED"),
            ],
        )
    };
    let o = connect(allowed_port);
    assert_eq!(o["stdout"], "CONNECTED\n", "{o}");
    assert_eq!(o["confinement"]["network"], format!("ports {allowed_port}"));
    assert_connected(&allowed);
    let o = connect(other_port);
    assert_ne!(o["exit_code"], 0, "{o}");
    assert_no_connection(&other);

    s.p.write("ao.toml", "[policy]\nnetwork = true\n");
    let o = connect(other_port);
    assert_eq!(o["stdout"], "CONNECTED\n", "{o}");
    assert_eq!(o["confinement"]["network"], "allowed");
    assert_connected(&other);
}

#[test]
fn an_endless_loop_and_a_runaway_writer_are_stopped_by_the_limits() {
    let s = setup("[policy]\nmax_cpu_s = 1\nmax_file_size_mb = 1\ncommand_timeout_s = 60\n");
    let started = Instant::now();
    let o = run(&s.p, &["bash", "-c", "while :; do :; done"]);
    assert_eq!(o["signal"], 24, "SIGXCPU: {o}");
    assert_eq!(o["limit_hit"], "cpu_time");
    assert_eq!(o["timed_out"], false);
    assert!(
        o["stderr"]
            .as_str()
            .unwrap()
            .contains("CPU time limit (1 s"),
        "{o}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(o["confinement"]["limits"]["cpu_s"], 1);

    let o = run(
        &s.p,
        &["bash", "-c", "head -c 3000000 /dev/zero > big.bin; echo $?"],
    );
    // The writer (head) is killed by SIGXFSZ; the file stops at the limit.
    let size = std::fs::metadata(s.p.path().join("big.bin")).unwrap().len();
    assert_eq!(size, 1024 * 1024, "{o}");
    assert_eq!(o["stdout"], format!("{}\n", 128 + 25), "{o}");
    let o = run(&s.p, &["head", "-c", "3000000", "/dev/zero"]);
    assert_eq!(
        o["limit_hit"],
        Value::Null,
        "stdout is a pipe, not a file: {o}"
    );
}

/// Live processes whose command line holds `marker`.
fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn a_process_flood_is_stopped_and_leaves_nothing_behind() {
    // Endless forking, bounded however it goes: the process limit (for a user other than
    // root) and the timeout, which kills the command's whole process group.
    let s = setup("[policy]\nmax_processes = 32\ncommand_timeout_s = 2\n");
    let marker = "4321.5";
    let o = run(
        &s.p,
        &["bash", "-c", &format!("while :; do sleep {marker} & done")],
    );
    assert_eq!(o["timed_out"], true, "{o}");
    assert!(
        o["stderr"]
            .as_str()
            .unwrap()
            .contains("killed after the 2 s timeout"),
        "{o}"
    );
    let root = running_as_root();
    assert_eq!(o["confinement"]["processes_enforced"], !root, "{o}");
    if root {
        assert!(
            o["confinement"]["not_enforced"]
                .to_string()
                .contains("RLIMIT_NPROC"),
            "{o}"
        );
    } else {
        assert!(
            o["stderr"]
                .as_str()
                .unwrap()
                .contains("Resource temporarily unavailable"),
            "the process limit held: {o}"
        );
    }
    support::wait_for(
        "the flood's processes to go",
        Duration::from_secs(10),
        || processes_with(marker) == 0,
    );
}

#[test]
fn ao_doctor_reports_the_landlock_abi_and_what_is_enforced() {
    let s = setup("[policy]\nrequire_confinement = true\nnetwork = [8443]\nmax_processes = 7\n");
    let (code, v) = s.p.json(&["doctor", "--json"]);
    assert_eq!(code, 0, "{v}");
    let c = &v["policy"]["confinement"];
    let abi = c["landlock_abi"].as_u64().unwrap();
    assert_eq!(c["filesystem"], abi >= 1, "{c}");
    assert_eq!(c["scopes"], abi >= 6, "{c}");
    assert_eq!(c["network"], "ports 8443");
    assert_eq!(c["limits"]["processes"], 7);
    assert_eq!(v["policy"]["require_confinement"], true);
    assert_eq!(c["processes_enforced"], !running_as_root());
    let (code, text, stderr) = s.p.run(&["doctor"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains(&format!("Landlock ABI {abi}")), "{text}");
    assert!(text.contains("confinement.limits"), "{text}");
    if abi >= 6 {
        assert!(
            text.contains("enforced: files, TCP ports 8443, abstract sockets and signals scoped"),
            "{text}"
        );
    }
}

/// A leader and worker that fix `src/lib.rs` and approve whatever validation says.
fn approving_fixer() -> StubModel {
    StubModel::start(move |req: &Value| {
        let system = req["messages"][0]["content"].as_str().unwrap_or_default();
        let reply = if system.contains("root cause") {
            json!({"root_cause": "a typo", "evidence": [{"file": "src/lib.rs", "line": 2, "detail": "answr"}], "fix_plan": ["rename"]})
        } else if system.contains("You fix code") {
            let told = req["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["role"] == "tool");
            if !told {
                return (
                    200,
                    tool_calls(&[(
                        "fs_write",
                        json!({"path": "src/lib.rs", "content": "pub fn get(answer: u32) -> u32 {\n    answer\n}\n"}),
                    )]),
                );
            }
            json!({"status": "done", "summary": "renamed", "files_touched": ["src/lib.rs"], "confidence": "high", "notes": []})
        } else {
            json!({"decision": "approve", "reason": "ok", "revisions": [], "question": null})
        };
        (200, completion(&reply.to_string()))
    })
}

#[test]
fn a_validation_command_in_its_sandbox_cannot_reach_the_project_the_home_or_the_network() {
    let stub = approving_fixer();
    let s = setup("");
    let mut p = s.p;
    p = p.with_leader(&stub, "sk-confine-test-0001");
    if !confined(&p) {
        return;
    }
    p.write(
        "src/lib.rs",
        "pub fn get(answer: u32) -> u32 {\n    answr\n}\n",
    );
    p.write(
        "build.log",
        "error[E0425]: cannot find value `answr`\n --> src/lib.rs:2:5\n",
    );
    let (l, port) = listener();
    // The project's own tree is outside the sandbox: a validation must not write there.
    let escaped = p.path().join("ESCAPED_FROM_SANDBOX");
    let script = escape_script(&escaped, s.home.path(), port);
    let tree = |p: &Project| -> Vec<(PathBuf, Vec<u8>)> {
        support::files_under(p.path())
            .into_iter()
            .filter(|(path, _)| !path.starts_with(p.path().join(".ao")))
            .collect()
    };
    let before = tree(&p);
    let (code, v) = p.json(&[
        "fix",
        "--error",
        "build.log",
        "--validate",
        &format!("bash -c '{script}'"),
        "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    let val = &v["output"]["validation"][0];
    assert_eq!(val["ran_in"], "sandbox", "{v}");
    assert_eq!(val["passed"], true, "{v}");
    assert_escapes_refused(
        val["stdout"].as_str().unwrap(),
        val["stderr"].as_str().unwrap(),
    );
    assert!(!escaped.exists());
    assert_no_connection(&l);
    assert_eq!(val["confinement"]["filesystem"], true, "{val}");
    assert_eq!(
        val["confinement"]["root_writable"], true,
        "the sandbox is writable"
    );
    assert!(tree(&p) == before, "the working tree is unchanged");
}

/// Slow: builds and tests a small crate with the real toolchain, confined. Runs when `cargo`
/// is on PATH.
#[test]
fn cargo_test_of_a_small_crate_passes_confined() {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("cargo").is_file()))
        .unwrap_or(false);
    if !on_path {
        eprintln!("skipped: cargo is not on PATH");
        return;
    }
    let mut p = Project::new();
    p.write(
        "Cargo.toml",
        "[package]\nname = \"confined\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    p.write(
        "src/lib.rs",
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n        assert!(std::fs::read_to_string(\"/etc/passwd\").is_ok());\n        assert!(std::fs::write(std::env::temp_dir().join(\"t\"), \"x\").is_ok());\n    }\n}\n",
    );
    p.write("ao.toml", "[policy]\ncommand_timeout_s = 900\n");
    p.set_env("AO_ALLOWED_COMMANDS", "cargo test");
    // The target directory inside the root (one inherited from this test run would be
    // outside it).
    let target = p.path().join("target");
    p.set_env("CARGO_TARGET_DIR", target.to_str().unwrap());
    let o = run(&p, &["cargo", "test", "--offline"]);
    assert_eq!(o["exit_code"], 0, "{o}");
    assert!(
        o["stdout"]
            .as_str()
            .unwrap()
            .contains("test tests::adds ... ok"),
        "{o}"
    );
    assert_eq!(o["confinement"]["filesystem"], landlock_abi(&p) >= 1);
}
