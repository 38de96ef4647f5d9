//! Kernel confinement of every process `ao` starts: a Landlock ruleset and resource limits,
//! applied in the child between `fork` and `exec` (see `exec.rs`, the one place processes are
//! started).
//!
//! The gate decides whether a command may start; this module makes what it may then touch a
//! matter for the kernel. Landlock rules are an allow-list:
//!
//! - **write** (and read, execute) beneath the project root when the command may change the
//!   project (apply mode; a validation sandbox is a root in apply mode), beneath the command's
//!   private temporary directory (a fresh 0700 directory, `TMPDIR`), and beneath the build-cache
//!   directories the policy declares (`[policy] cache_dirs`, a sandbox's shared cargo target);
//! - **read and execute** beneath the root otherwise, the system's program and library
//!   directories, `/etc` less its secrets (shadow files, sudoers, SSH host keys, private TLS
//!   keys), `/proc` and `/sys`, the toolchain homes named by the environment (`CARGO_HOME`,
//!   `RUSTUP_HOME`, `GOPATH`, ... — each less any `credentials` file at its top), the
//!   directories on `PATH`, and `[policy] read_dirs`;
//! - never the home directory as such: a rule that would cover the home directory or `/`
//!   (a toolchain variable or `PATH` entry set to `~`, a symlink to `/`) is dropped, and the
//!   drop is reported;
//! - TCP connect and bind denied unless `[policy] network` allows them (all, or some ports);
//! - abstract unix sockets and signals scoped to the command's own domain.
//!
//! The ruleset is built in the parent (opening the allowed paths, creating the ruleset file
//! descriptor); the child only makes raw system calls: `setrlimit`, `prctl(NO_NEW_PRIVS)` and
//! `landlock_restrict_self`, which are async-signal-safe. A kernel without Landlock, or with an
//! older ABI, gets what it supports, and [`ConfinementSummary`] says exactly what is and is not
//! enforced; `[policy] require_confinement = true` refuses to start commands instead.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ao_core::config::{NetworkSetting, PolicyConfig};
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default `RLIMIT_CPU` of a child, in seconds.
pub const DEFAULT_MAX_CPU_S: u64 = 3600;
/// Default `RLIMIT_AS` of a child, in MiB.
pub const DEFAULT_MAX_ADDRESS_SPACE_MB: u64 = 16 * 1024;
/// Default number of processes and threads a command may add to its user's (`RLIMIT_NPROC`).
pub const DEFAULT_MAX_PROCESSES: u64 = 1024;
/// Default `RLIMIT_FSIZE` of a child, in MiB.
pub const DEFAULT_MAX_FILE_SIZE_MB: u64 = 8 * 1024;

/// Seconds between the CPU limit's `SIGXCPU` and the kernel's `SIGKILL`.
const CPU_HARD_SLACK_S: u64 = 2;

/// The system's program and library directories (read and execute), where they exist.
const SYSTEM_READ: [&str; 12] = [
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/nix/store",
    "/snap",
    "/proc",
    "/sys",
];

/// Device files every program may read and write.
const DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Entries of `/etc` left out: password hashes, sudo rules, and the folders whose secrets are
/// handled entry by entry below.
const ETC_SECRETS: [&str; 11] = [
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "sudoers.d",
    "security",
    "ssh",
    "ssl",
    "subuid-",
    "subgid-",
];

/// Toolchain homes taken from the child environment, with the default under the home
/// directory used when the variable is unset.
const TOOLCHAIN_HOMES: [(&str, Option<&str>); 9] = [
    ("CARGO_HOME", Some(".cargo")),
    ("RUSTUP_HOME", Some(".rustup")),
    ("GOPATH", None),
    ("GOROOT", None),
    ("GOMODCACHE", None),
    ("JAVA_HOME", None),
    ("VIRTUAL_ENV", None),
    ("NVM_DIR", None),
    ("PYENV_ROOT", None),
];

/// Top-level entries of a toolchain home that hold credentials (cargo's registry tokens and
/// the like), left out of its read rule.
const TOOLCHAIN_SECRETS: [&str; 4] = [
    "credentials",
    "credentials.toml",
    ".credentials",
    ".credentials.toml",
];

/// The Landlock ABI of the running kernel (0 when it has no Landlock), asked once.
pub fn landlock_abi() -> u8 {
    static ABI_VERSION: OnceLock<u8> = OnceLock::new();
    *ABI_VERSION.get_or_init(|| {
        // SAFETY: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)` reads no
        // memory and returns the ABI version or -1 with errno (ENOSYS, EOPNOTSUPP).
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                1u32,
            )
        };
        u8::try_from(r.max(0)).unwrap_or(u8::MAX)
    })
}

/// TCP for the children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Network {
    Denied,
    Allowed,
    Ports(Vec<u16>),
}

impl Network {
    fn describe(&self) -> String {
        match self {
            Network::Denied => "denied".into(),
            Network::Allowed => "allowed".into(),
            Network::Ports(p) => format!(
                "ports {}",
                p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Resource limits of every child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceLimits {
    /// `RLIMIT_CPU`, seconds of CPU time per process.
    pub cpu_s: u64,
    /// `RLIMIT_AS`, MiB of address space per process.
    pub address_space_mb: u64,
    /// Processes and threads a command may add to those its user already runs
    /// (`RLIMIT_NPROC` is set to the user's count plus this).
    pub processes: u64,
    /// `RLIMIT_FSIZE`, MiB per file written.
    pub file_size_mb: u64,
}

/// The confinement settings of a policy, from `[policy]` and the environment snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    network: Network,
    require: bool,
    /// Declared writable directories (absolute, not yet resolved).
    cache_dirs: Vec<PathBuf>,
    /// Declared readable directories, toolchain homes and `PATH` entries.
    read_dirs: Vec<PathBuf>,
    /// Toolchain homes, read less their top-level credentials.
    toolchain_homes: Vec<PathBuf>,
    home: Option<PathBuf>,
    /// Where the private temporary directories are made.
    tmp_base: PathBuf,
    limits: ResourceLimits,
    /// The kernel's Landlock ABI as used (tests lower it to check the degraded paths).
    abi: u8,
}

/// Expands `~/` with `home` and takes a relative path from `root`.
fn spelt_path(spelling: &str, home: Option<&Path>, root: &Path) -> Result<PathBuf, String> {
    if spelling == "~" || spelling.starts_with("~/") {
        let Some(home) = home else {
            return Err(format!(
                "`{spelling}` names the home directory, but HOME is not set"
            ));
        };
        return Ok(home.join(spelling.trim_start_matches('~').trim_start_matches('/')));
    }
    let p = Path::new(spelling);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    })
}

impl Settings {
    /// Reads the confinement keys of `[policy]`; `env` is the children's environment (already
    /// scrubbed: `HOME`, `PATH`, `TMPDIR` and the toolchain variables come from it), `root` is
    /// where relative paths are taken from. `Err` names the key and what is wrong.
    pub(crate) fn new(
        config: &PolicyConfig,
        env: &BTreeMap<String, String>,
        root: &Path,
    ) -> Result<Settings, (String, String)> {
        let home = env
            .get("HOME")
            .filter(|h| Path::new(h).is_absolute())
            .map(PathBuf::from);
        let network = match &config.network {
            NetworkSetting::All(true) => Network::Allowed,
            NetworkSetting::All(false) => Network::Denied,
            NetworkSetting::Ports(p) if p.is_empty() => Network::Denied,
            NetworkSetting::Ports(p) => {
                let mut p = p.clone();
                p.sort_unstable();
                p.dedup();
                Network::Ports(p)
            }
        };
        let spelt = |key: &str, list: &[String]| -> Result<Vec<PathBuf>, (String, String)> {
            list.iter()
                .map(|s| spelt_path(s, home.as_deref(), root).map_err(|m| (key.to_string(), m)))
                .collect()
        };
        let cache_dirs = spelt("policy.cache_dirs", &config.cache_dirs)?;
        let mut read_dirs = spelt("policy.read_dirs", &config.read_dirs)?;
        if let Some(path) = env.get("PATH") {
            read_dirs.extend(
                std::env::split_paths(path)
                    .filter(|p| p.is_absolute())
                    .collect::<Vec<_>>(),
            );
        }
        let mut toolchain_homes = Vec::new();
        for (var, default) in TOOLCHAIN_HOMES {
            match (env.get(var), default, &home) {
                (Some(v), _, _) if Path::new(v).is_absolute() => {
                    toolchain_homes.push(PathBuf::from(v))
                }
                (None, Some(d), Some(h)) => toolchain_homes.push(h.join(d)),
                _ => {}
            }
        }
        let tmp_base = env
            .get("TMPDIR")
            .filter(|t| Path::new(t).is_absolute())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let mb = |v: Option<std::num::NonZeroU64>, d: u64| v.map_or(d, |n| n.get());
        Ok(Settings {
            network,
            require: config.require_confinement,
            cache_dirs,
            read_dirs,
            toolchain_homes,
            home,
            tmp_base,
            limits: ResourceLimits {
                cpu_s: mb(config.max_cpu_s, DEFAULT_MAX_CPU_S),
                address_space_mb: mb(config.max_address_space_mb, DEFAULT_MAX_ADDRESS_SPACE_MB),
                processes: mb(config.max_processes, DEFAULT_MAX_PROCESSES),
                file_size_mb: mb(config.max_file_size_mb, DEFAULT_MAX_FILE_SIZE_MB),
            },
            abi: landlock_abi(),
        })
    }

    pub(crate) fn limits(&self) -> ResourceLimits {
        self.limits
    }

    pub(crate) fn required(&self) -> bool {
        self.require
    }

    #[cfg(test)]
    pub(crate) fn set_abi(&mut self, abi: u8) {
        self.abi = abi;
    }
}

/// What confinement applied (or would apply) to a command: recorded with its decision and
/// shown by `ao doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfinementSummary {
    /// The kernel's Landlock ABI; 0 when it has no Landlock.
    pub landlock_abi: u8,
    /// Reads and writes are confined to the allowed directories.
    pub filesystem: bool,
    /// `denied`, `allowed` or `ports 80, 443`.
    pub network: String,
    /// The TCP setting holds (true when all TCP is allowed: nothing to enforce).
    pub network_enforced: bool,
    /// Abstract unix sockets and signals are scoped to the command's own processes.
    pub scopes: bool,
    /// The project root is writable for the command.
    pub root_writable: bool,
    /// The resource limits set.
    pub limits: ResourceLimits,
    /// The process limit holds (the kernel does not apply it to root).
    pub processes_enforced: bool,
    /// What is not enforced, one sentence each.
    pub not_enforced: Vec<String>,
}

impl ConfinementSummary {
    /// Everything ao asks of Landlock is enforced.
    pub fn complete(&self) -> bool {
        self.filesystem && self.network_enforced && self.scopes
    }
}

/// The confinement of one process: the policy's settings, the root and what it may write.
#[derive(Debug, Clone)]
pub(crate) struct Confine {
    settings: Settings,
    root: PathBuf,
    root_writable: bool,
    extra_write: Vec<PathBuf>,
    extra_read_files: Vec<PathBuf>,
}

/// A rule: a path and whether it is writable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    path: PathBuf,
    write: bool,
}

fn running_as_root() -> bool {
    // SAFETY: getuid/geteuid cannot fail and touch no memory.
    unsafe { libc::getuid() == 0 || libc::geteuid() == 0 }
}

impl Confine {
    pub(crate) fn new(settings: &Settings, root: &Path, root_writable: bool) -> Confine {
        Confine {
            settings: settings.clone(),
            root: root.to_path_buf(),
            root_writable,
            extra_write: Vec::new(),
            extra_read_files: Vec::new(),
        }
    }

    /// Adds directories the command may write (a sandbox's build cache).
    pub(crate) fn with_write_dirs(mut self, dirs: &[PathBuf]) -> Confine {
        self.extra_write.extend(dirs.iter().cloned());
        self
    }

    /// Adds single files the command may read (git's global configuration, for the identity).
    pub(crate) fn with_read_files(mut self, files: Vec<PathBuf>) -> Confine {
        self.extra_read_files.extend(files);
        self
    }

    /// What applies, given the kernel's ABI.
    pub(crate) fn summary(&self) -> ConfinementSummary {
        let abi = self.settings.abi;
        let mut not = Vec::new();
        let filesystem = abi >= 1;
        if !filesystem {
            not.push("the kernel has no Landlock: files, TCP, abstract sockets and signals are not confined (only the resource limits apply)".to_string());
        } else {
            if abi < 3 {
                not.push(format!(
                    "truncating files outside the allowed directories (needs Landlock ABI 3, the kernel has {abi})"
                ));
            }
            if abi < 5 {
                not.push(format!(
                    "ioctl on device files (needs Landlock ABI 5, the kernel has {abi})"
                ));
            }
            if abi < 9 {
                not.push(format!(
                    "connecting to named unix sockets outside the allowed directories (needs Landlock ABI 9, the kernel has {abi})"
                ));
            }
        }
        let network_enforced = match self.settings.network {
            Network::Allowed => true,
            _ => abi >= 4,
        };
        if !network_enforced {
            not.push(format!(
                "TCP connect and bind (needs Landlock ABI 4, the kernel has {abi})"
            ));
        }
        if self.settings.network != Network::Allowed {
            not.push("UDP and other non-TCP protocols: Landlock confines TCP only".to_string());
        }
        let scopes = abi >= 6;
        if !scopes {
            not.push(format!(
                "scoping of abstract unix sockets and signals (needs Landlock ABI 6, the kernel has {abi})"
            ));
        }
        let processes_enforced = !running_as_root();
        if !processes_enforced {
            not.push("the process limit: the kernel does not apply RLIMIT_NPROC to root (the timeout still kills the command's process group)".to_string());
        }
        if let Some(home) = &self.settings.home
            && filesystem
            && covers(&canonical(&self.root), &canonical(home))
        {
            not.push(format!(
                "keeping the home directory unreadable: the project root {} contains it",
                self.root.display()
            ));
        }
        ConfinementSummary {
            landlock_abi: abi,
            filesystem,
            network: self.settings.network.describe(),
            network_enforced,
            scopes,
            root_writable: self.root_writable,
            limits: self.settings.limits,
            processes_enforced,
            not_enforced: not,
        }
    }

    /// Why the command may not start: `[policy] require_confinement` and a kernel that cannot
    /// enforce all of it.
    pub(crate) fn refusal(&self) -> Option<String> {
        if !self.settings.require {
            return None;
        }
        let s = self.summary();
        if s.complete() {
            return None;
        }
        let mut missing = Vec::new();
        if !s.filesystem {
            missing.push("filesystem rules");
        }
        if !s.network_enforced {
            missing.push("TCP rules");
        }
        if !s.scopes {
            missing.push("socket and signal scopes");
        }
        Some(format!(
            "`[policy] require_confinement = true` and the kernel cannot enforce {} (Landlock ABI {}): the command is not started",
            missing.join(", "),
            s.landlock_abi
        ))
    }

    /// The rules for one command, `tmp` being its private temporary directory.
    fn rules(&self, tmp: Option<&Path>) -> (Vec<Rule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut dropped = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        let home = self.settings.home.as_deref().map(canonical);
        let mut add = |path: &Path, write: bool, rules: &mut Vec<Rule>| {
            let Ok(real) = path.canonicalize() else {
                return;
            };
            // A rule on `/` or on the home directory (or above it) would open the home; one on
            // (or above) a place in the home that holds secrets or runs at login would open
            // those, whatever path (a symlink, a toolchain home, a configured directory) led
            // there.
            let opens_secrets = home.as_deref().is_some_and(|h| {
                covers(&real, h)
                    || (real.starts_with(h)
                        && HOME_SECRETS.iter().any(|s| {
                            let secret = h.join(s);
                            covers(&real, &secret) || real.starts_with(&secret)
                        })
                        && !HOME_READABLE.iter().any(|ok| !write && real == h.join(ok)))
            });
            if real == Path::new("/") || opens_secrets {
                dropped.push(path.display().to_string());
                return;
            }
            rules.push(Rule { path: real, write });
        };
        // The root itself is always allowed, even when it contains the home directory (the
        // summary says so).
        if let Ok(root) = self.root.canonicalize() {
            rules.push(Rule {
                path: root.clone(),
                write: self.root_writable,
            });
            for git in git_dirs(&root) {
                add(&git, self.root_writable, &mut rules);
            }
        }
        if let Some(tmp) = tmp {
            add(tmp, true, &mut rules);
        }
        for d in &self.settings.cache_dirs {
            add(d, true, &mut rules);
        }
        // Directories `ao` derives (a sandbox's build cache under the state dir) are taken only
        // where they lexically are: one that is a symlink (a repository can ship
        // `.ao/cache/cargo-target -> ~/somewhere`) is not followed.
        for d in &self.extra_write {
            if through_symlink(d) {
                skipped.push(d.display().to_string());
            } else {
                add(d, true, &mut rules);
            }
        }
        for d in SYSTEM_READ {
            add(Path::new(d), false, &mut rules);
        }
        for d in DEVICES {
            add(Path::new(d), true, &mut rules);
        }
        for e in children_except(Path::new("/etc"), &ETC_SECRETS) {
            add(&e, false, &mut rules);
        }
        for e in children_except(Path::new("/etc/ssh"), &[]) {
            let private_host_key = e
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("_key"));
            if !private_host_key {
                add(&e, false, &mut rules);
            }
        }
        for e in children_except(Path::new("/etc/ssl"), &["private"]) {
            add(&e, false, &mut rules);
        }
        for h in &self.settings.toolchain_homes {
            // A toolchain home that is the home directory (`GOPATH=$HOME`) lists nothing: its
            // entries would be the home's own.
            if home
                .as_deref()
                .is_some_and(|home| covers(&canonical(h), home))
            {
                skipped.push(h.display().to_string());
                continue;
            }
            for e in children_except(h, &TOOLCHAIN_SECRETS) {
                add(&e, false, &mut rules);
            }
        }
        for d in self.settings.read_dirs.iter().chain(&self.extra_read_files) {
            add(d, false, &mut rules);
        }
        dropped.extend(skipped);
        (rules, dropped)
    }

    /// Builds in the parent what the child applies: the private temporary directory (set as
    /// `TMPDIR`, `TMP`, `TEMP` in `env`), the Landlock ruleset and the resource limits.
    pub(crate) fn prepare(&self, env: &mut BTreeMap<String, String>) -> Result<Prepared, String> {
        if let Some(reason) = self.refusal() {
            return Err(reason);
        }
        let tmp = tempfile::Builder::new()
            .prefix("ao-cmd-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&self.settings.tmp_base)
            .map_err(|e| {
                format!(
                    "cannot create a private temporary directory in {}: {e}",
                    self.settings.tmp_base.display()
                )
            })?;
        for var in ["TMPDIR", "TMP", "TEMP"] {
            env.insert(var.to_string(), tmp.path().display().to_string());
        }
        let ruleset = if self.settings.abi >= 1 {
            let (rules, _dropped) = self.rules(Some(tmp.path()));
            Some(self.ruleset(&rules)?)
        } else {
            None
        };
        Ok(Prepared {
            _tmp: Some(tmp),
            raw: ChildSetup {
                ruleset_fd: ruleset.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                limits: self.rlimits(),
            },
            _ruleset: ruleset,
        })
    }

    fn ruleset(&self, rules: &[Rule]) -> Result<OwnedFd, String> {
        let abi = ABI::from(i32::from(self.settings.abi));
        let fail = |e: &dyn std::fmt::Display| format!("cannot build the Landlock ruleset: {e}");
        let mut ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))
            .map_err(|e| fail(&e))?;
        if self.settings.network != Network::Allowed && self.settings.abi >= 4 {
            ruleset = ruleset
                .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
                .map_err(|e| fail(&e))?;
        }
        if self.settings.abi >= 6 {
            ruleset = ruleset
                .scope(Scope::AbstractUnixSocket | Scope::Signal)
                .map_err(|e| fail(&e))?;
        }
        let mut created = ruleset.create().map_err(|e| fail(&e))?;
        let read: BitFlags<AccessFs> = AccessFs::from_read(abi);
        let all: BitFlags<AccessFs> = AccessFs::from_all(abi);
        let file_rights: BitFlags<AccessFs> = AccessFs::from_file(abi);
        for rule in rules {
            let fd = match PathFd::new(&rule.path) {
                Ok(fd) => fd,
                // Gone since it was resolved: nothing to allow.
                Err(_) => continue,
            };
            let mut access = if rule.write { all } else { read };
            if !rule.path.is_dir() {
                access &= file_rights;
            }
            created = created
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| fail(&format!("{}: {e}", rule.path.display())))?;
        }
        if let Network::Ports(ports) = &self.settings.network
            && self.settings.abi >= 4
        {
            for port in ports {
                created = created
                    .add_rule(NetPort::new(
                        *port,
                        AccessNet::BindTcp | AccessNet::ConnectTcp,
                    ))
                    .map_err(|e| fail(&e))?;
            }
        }
        let fd: Option<OwnedFd> = created.into();
        fd.ok_or_else(|| fail(&"the kernel returned no ruleset"))
    }

    fn rlimits(&self) -> ChildLimits {
        let l = self.settings.limits;
        const MIB: u64 = 1024 * 1024;
        let processes = if running_as_root() {
            // Not applied by the kernel to root; set anyway so a child that drops privileges
            // keeps it.
            l.processes
        } else {
            count_user_tasks().saturating_add(l.processes)
        };
        ChildLimits {
            cpu: capped(libc::RLIMIT_CPU, l.cpu_s, CPU_HARD_SLACK_S),
            address_space: capped(libc::RLIMIT_AS, l.address_space_mb.saturating_mul(MIB), 0),
            processes: capped(libc::RLIMIT_NPROC, processes, 0),
            file_size: capped(libc::RLIMIT_FSIZE, l.file_size_mb.saturating_mul(MIB), 0),
        }
    }
}

/// `soft` (and `soft + slack` as the hard limit), never above the current hard limit: a limit
/// is only ever lowered.
fn capped(
    #[cfg(target_env = "gnu")] resource: libc::__rlimit_resource_t,
    #[cfg(not(target_env = "gnu"))] resource: libc::c_int,
    soft: u64,
    slack: u64,
) -> libc::rlimit {
    let mut cur = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `cur` is a valid, writable rlimit.
    unsafe {
        libc::getrlimit(resource, &mut cur);
    }
    let hard = soft.saturating_add(slack).min(cur.rlim_max);
    libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    }
}

/// Tasks (processes and threads) of the real user, as `RLIMIT_NPROC` counts them.
fn count_user_tasks() -> u64 {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0u64;
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            total += field("Threads:").unwrap_or(1);
        }
    }
    total
}

/// `a` is `b` or an ancestor of it.
fn covers(a: &Path, b: &Path) -> bool {
    b.starts_with(a)
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// The entries of `dir` whose names are not in `except` (none when it cannot be listed).
fn children_except(dir: &Path, except: &[&str]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            !except.iter().any(|x| name.as_os_str() == *x)
        })
        .map(|e| e.path())
        .collect()
}

/// Places in the home directory that hold secrets or run code at login: no rule may open them
/// (or a directory above them), whatever path leads there.
const HOME_SECRETS: [&str; 22] = [
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".password-store",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".local/share/keyrings",
    ".cargo/credentials",
    ".cargo/credentials.toml",
];

/// Files under [`HOME_SECRETS`] that may still be read (git's own identity configuration).
const HOME_READABLE: [&str; 1] = [".config/git/config"];

/// True when a component of `p` (as written, made absolute) is a symlink.
fn through_symlink(p: &Path) -> bool {
    let mut at = PathBuf::new();
    for c in p.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return true;
        }
    }
    false
}

/// The git directories outside the root a linked worktree's `.git` file points at (`gitdir:`
/// and the `commondir` it names), so git works in a linked worktree. Only a real linked
/// worktree counts: the `gitdir` must be `<common>/worktrees/<name>` and its own `gitdir` file
/// must point back at this root's `.git` — a `.git` file that a command (or a repository)
/// wrote to point at another directory grants nothing.
fn git_dirs(root: &Path) -> Vec<PathBuf> {
    let dot_git = root.join(".git");
    let Ok(meta) = std::fs::symlink_metadata(&dot_git) else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(&dot_git) else {
        return Vec::new();
    };
    let Some(dir) = text.lines().find_map(|l| l.strip_prefix("gitdir:")) else {
        return Vec::new();
    };
    let Ok(dir) = root.join(dir.trim()).canonicalize() else {
        return Vec::new();
    };
    let back = std::fs::read_to_string(dir.join("gitdir"))
        .ok()
        .and_then(|t| Path::new(t.trim()).canonicalize().ok());
    let in_worktrees = dir
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "worktrees");
    if !in_worktrees || back != Some(dot_git.canonicalize().unwrap_or(dot_git)) {
        return Vec::new();
    }
    let common = dir.parent().and_then(Path::parent).map(Path::to_path_buf);
    let named = std::fs::read_to_string(dir.join("commondir"))
        .ok()
        .and_then(|c| dir.join(c.trim()).canonicalize().ok());
    let mut out = vec![dir];
    // The common dir is the one the worktree lives in, whatever `commondir` claims.
    if let Some(common) = common.filter(|c| named.as_ref().is_none_or(|n| n == c)) {
        out.push(common);
    }
    out
}

/// The limits the child sets, computed in the parent.
#[derive(Debug, Clone, Copy)]
struct ChildLimits {
    cpu: libc::rlimit,
    address_space: libc::rlimit,
    processes: libc::rlimit,
    file_size: libc::rlimit,
}

/// What the child does before `exec`, as plain values (no allocation in the child).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSetup {
    ruleset_fd: libc::c_int,
    limits: ChildLimits,
}

impl ChildSetup {
    /// Runs in the child between `fork` and `exec`: raw system calls only.
    pub(crate) fn apply(&self) -> std::io::Result<()> {
        let l = &self.limits;
        // SAFETY: setrlimit, prctl and the Landlock system call are async-signal-safe, take
        // plain values or pointers to the rlimits owned by `self`, and allocate nothing.
        unsafe {
            for (resource, limit) in [
                (libc::RLIMIT_CPU, &l.cpu),
                (libc::RLIMIT_AS, &l.address_space),
                (libc::RLIMIT_NPROC, &l.processes),
                (libc::RLIMIT_FSIZE, &l.file_size),
            ] {
                if libc::setrlimit(resource, limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if self.ruleset_fd >= 0
                && libc::syscall(libc::SYS_landlock_restrict_self, self.ruleset_fd, 0u32) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Everything built for one child; keep it alive until the child has finished (the private
/// temporary directory is removed when this is dropped).
#[derive(Debug)]
pub(crate) struct Prepared {
    _tmp: Option<tempfile::TempDir>,
    _ruleset: Option<OwnedFd>,
    raw: ChildSetup,
}

impl Prepared {
    pub(crate) fn child_setup(&self) -> ChildSetup {
        self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, PolicyEnv, PolicyInput};
    use crate::registry::{ToolContext, ToolRegistry};
    use crate::{Decision, MemoryRecorder};
    use ao_core::redact::Redactor;
    use std::sync::Arc;

    fn config(json: serde_json::Value) -> PolicyConfig {
        serde_json::from_value(json).expect("a valid [policy] table")
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(json: serde_json::Value, e: &[(&str, &str)], root: &Path, abi: u8) -> Settings {
        let mut s = Settings::new(&config(json), &env(e), root).expect("settings");
        s.set_abi(abi);
        s
    }

    #[test]
    fn the_summary_says_what_each_abi_enforces() {
        let dir = tempfile::tempdir().expect("tmp");
        let at = |abi: u8, net: serde_json::Value| {
            Confine::new(
                &settings(serde_json::json!({"network": net}), &[], dir.path(), abi),
                dir.path(),
                true,
            )
            .summary()
        };
        let none = at(0, false.into());
        assert!(!none.filesystem && !none.network_enforced && !none.scopes);
        assert!(!none.complete());
        assert!(none.not_enforced[0].contains("no Landlock"), "{none:?}");
        let v3 = at(3, false.into());
        assert!(v3.filesystem && !v3.network_enforced && !v3.scopes);
        assert!(v3.not_enforced.iter().any(|n| n.contains("TCP connect")));
        assert!(!v3.not_enforced.iter().any(|n| n.contains("truncating")));
        assert!(
            at(2, false.into())
                .not_enforced
                .iter()
                .any(|n| n.contains("truncating"))
        );
        // All TCP allowed: nothing to enforce, and no UDP caveat.
        let open = at(3, true.into());
        assert!(open.network_enforced);
        assert_eq!(open.network, "allowed");
        assert!(!open.not_enforced.iter().any(|n| n.contains("UDP")));
        let v5 = at(5, serde_json::json!([443, 80, 443]));
        assert!(v5.network_enforced && !v5.scopes);
        assert_eq!(v5.network, "ports 80, 443");
        assert!(!v5.not_enforced.iter().any(|n| n.contains("ioctl")));
        assert!(
            at(4, false.into())
                .not_enforced
                .iter()
                .any(|n| n.contains("ioctl"))
        );
        let v7 = at(7, serde_json::json!([]));
        assert!(v7.complete());
        assert_eq!(v7.network, "denied");
        assert_eq!(v7.processes_enforced, !running_as_root());
        assert_eq!(
            v7.not_enforced.iter().any(|n| n.contains("RLIMIT_NPROC")),
            running_as_root()
        );
    }

    #[test]
    fn require_confinement_refuses_only_what_the_kernel_cannot_enforce() {
        let dir = tempfile::tempdir().expect("tmp");
        let refusal = |require: bool, abi: u8| {
            Confine::new(
                &settings(
                    serde_json::json!({"require_confinement": require}),
                    &[],
                    dir.path(),
                    abi,
                ),
                dir.path(),
                false,
            )
            .refusal()
        };
        assert_eq!(refusal(false, 0), None);
        assert_eq!(refusal(true, 7), None);
        assert_eq!(refusal(true, 6), None);
        let r = refusal(true, 5).unwrap_or_default();
        assert!(
            r.contains("socket and signal scopes") && !r.contains("TCP"),
            "{r}"
        );
        let r = refusal(true, 3).unwrap_or_default();
        assert!(r.contains("TCP rules"), "{r}");
        let r = refusal(true, 0).unwrap_or_default();
        assert!(r.contains("filesystem rules") && r.contains("ABI 0"), "{r}");
        // prepare() refuses too, so no path can start the process.
        let c = Confine::new(
            &settings(
                serde_json::json!({"require_confinement": true}),
                &[],
                dir.path(),
                0,
            ),
            dir.path(),
            false,
        );
        assert!(c.prepare(&mut BTreeMap::new()).is_err());
    }

    #[test]
    fn rules_allow_the_root_and_toolchains_but_never_the_home_or_secrets() {
        let base = tempfile::tempdir().expect("tmp");
        let home = base.path().join("home");
        let root = home.join("work/project");
        let cargo = home.join(".cargo");
        let cache = home.join(".cache/sccache");
        for d in [&root, &cargo.join("bin"), &cargo.join("registry"), &cache] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(cargo.join("credentials.toml"), "token").expect("write");
        std::fs::write(cargo.join("config.toml"), "").expect("write");
        std::os::unix::fs::symlink("/", base.path().join("slash")).expect("symlink");
        let home_s = home.display().to_string();
        let path = format!("/usr/bin:{home_s}:{}", base.path().join("slash").display());
        let s = settings(
            serde_json::json!({"cache_dirs": ["~/.cache/sccache"], "read_dirs": ["~", "/"]}),
            &[("HOME", &home_s), ("PATH", &path)],
            &root,
            7,
        );
        let c = Confine::new(&s, &root, true);
        let (rules, dropped) = c.rules(None);
        let has = |p: &Path, write: bool| {
            let p = p.canonicalize().expect("canonical");
            rules.iter().any(|r| r.path == p && r.write == write)
        };
        assert!(has(&root, true));
        assert!(has(&cache, true));
        assert!(has(&cargo.join("bin"), false));
        assert!(has(&cargo.join("config.toml"), false));
        assert!(has(Path::new("/usr/bin"), false));
        assert!(!rules.iter().any(|r| r.path.ends_with("credentials.toml")));
        let home_real = home.canonicalize().expect("canonical");
        assert!(
            !rules.iter().any(|r| home_real.starts_with(&r.path)),
            "a rule covers the home directory: {rules:?}"
        );
        // `~`, `/`, the `PATH` entry for the home and the link to `/` were all dropped.
        assert_eq!(dropped.len(), 4, "{dropped:?}");
        assert!(!rules.iter().any(|r| r.path.ends_with("shadow")));
        assert!(!rules.iter().any(|r| r.path.ends_with("sudoers")));
        assert!(!rules.iter().any(|r| r.path.starts_with("/etc/ssl/private")));
        assert!(
            !rules
                .iter()
                .any(|r| r.path.starts_with("/etc/ssh")
                    && r.path.to_string_lossy().ends_with("_key"))
        );
        // /etc/ld.so.cache and the like stay readable.
        if Path::new("/etc/passwd").exists() {
            assert!(has(Path::new("/etc/passwd"), false));
        }
        // Dry-run: the root is read-only.
        let (rules, _) = Confine::new(&s, &root, false).rules(None);
        let real_root = root.canonicalize().expect("canonical");
        assert!(rules.iter().any(|r| r.path == real_root && !r.write));
        // A root that contains the home directory is said not to keep it unreadable.
        let summary = Confine::new(&s, &home, true).summary();
        assert!(
            summary
                .not_enforced
                .iter()
                .any(|n| n.contains("contains it")),
            "{summary:?}"
        );
        assert!(
            !Confine::new(&s, &root, true)
                .summary()
                .not_enforced
                .iter()
                .any(|n| n.contains("contains it"))
        );
    }

    #[test]
    fn a_linked_worktree_reaches_its_git_directory() {
        let base = tempfile::tempdir().expect("tmp");
        let main_git = base.path().join("main/.git");
        let wt_git = main_git.join("worktrees/wt");
        std::fs::create_dir_all(&wt_git).expect("mkdir");
        std::fs::write(wt_git.join("commondir"), "../..\n").expect("write");
        let root = base.path().join("wt");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(root.join(".git"), format!("gitdir: {}\n", wt_git.display()))
            .expect("write");
        // Without git's back-pointer it is not a worktree of this root: nothing is granted.
        assert!(git_dirs(&root).is_empty());
        std::fs::write(
            wt_git.join("gitdir"),
            format!("{}\n", root.join(".git").display()),
        )
        .expect("write");
        let dirs = git_dirs(&root);
        assert_eq!(dirs.len(), 2);
        assert_eq!(
            dirs[1].canonicalize().expect("canonical"),
            main_git.canonicalize().expect("canonical")
        );
        assert!(git_dirs(base.path()).is_empty());

        // A `.git` file that a command or a repository wrote to point anywhere else (the home's
        // `.ssh`, with a forged back-pointer and a `commondir` elsewhere) grants nothing.
        let ssh = base.path().join("home/.ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir");
        std::fs::write(
            ssh.join("gitdir"),
            format!("{}\n", root.join(".git").display()),
        )
        .expect("write");
        std::fs::write(root.join(".git"), format!("gitdir: {}\n", ssh.display())).expect("write");
        assert!(git_dirs(&root).is_empty());
        std::fs::write(wt_git.join("commondir"), "../../../../home\n").expect("write");
        std::fs::write(root.join(".git"), format!("gitdir: {}\n", wt_git.display()))
            .expect("write");
        assert_eq!(
            git_dirs(&root).len(),
            1,
            "the forged commondir is not followed"
        );
    }

    #[test]
    fn no_path_opens_the_homes_secrets_whatever_leads_there() {
        let base = tempfile::tempdir().expect("tmp");
        let home = base.path().join("home");
        let root = base.path().join("project");
        for d in [
            &home.join(".ssh"),
            &home.join(".config/git"),
            &home.join("go/bin"),
            &root,
        ] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(home.join(".bashrc"), "").expect("write");
        std::fs::write(home.join(".config/git/config"), "").expect("write");
        // A repository ships its state dir with the build cache linked to the home's keys.
        std::fs::create_dir_all(root.join(".ao/cache")).expect("mkdir");
        std::os::unix::fs::symlink(home.join(".ssh"), root.join(".ao/cache/cargo-target"))
            .expect("symlink");
        let home_s = home.display().to_string();
        let s = settings(
            serde_json::json!({"cache_dirs": ["~/.ssh", "~/.bashrc", "~/.config"], "read_dirs": ["~/.ssh/id_rsa"]}),
            &[("HOME", &home_s), ("GOPATH", &home_s), ("PATH", "/usr/bin")],
            &root,
            7,
        );
        let c = Confine::new(&s, &root, true)
            .with_write_dirs(&[root.join(".ao/cache/cargo-target")])
            .with_read_files(vec![home.join(".config/git/config")]);
        let (rules, dropped) = c.rules(None);
        let home_real = home.canonicalize().expect("canonical");
        for secret in [".ssh", ".bashrc", ".config"] {
            let secret = home_real.join(secret);
            assert!(
                !rules.iter().any(|r| r.path.starts_with(&secret)
                    && !r.path.ends_with(".config/git/config")
                    || secret.starts_with(&r.path)),
                "{secret:?} is reachable: {rules:?}"
            );
        }
        assert!(
            rules
                .iter()
                .any(|r| r.path == home_real.join(".config/git/config") && !r.write),
            "git's identity stays readable"
        );
        assert!(
            !rules
                .iter()
                .any(|r| r.path.starts_with(home_real.join("go"))),
            "GOPATH=$HOME lists nothing: {rules:?}"
        );
        assert_eq!(dropped.len(), 5, "{dropped:?}");
    }

    #[test]
    fn paths_are_spelt_from_home_or_root() {
        let root = Path::new("/r");
        let home = Some(Path::new("/h"));
        assert_eq!(
            spelt_path("~/.cache", home, root),
            Ok(PathBuf::from("/h/.cache"))
        );
        assert_eq!(spelt_path("~", home, root), Ok(PathBuf::from("/h")));
        assert_eq!(
            spelt_path("cache", home, root),
            Ok(PathBuf::from("/r/cache"))
        );
        assert_eq!(spelt_path("/abs", home, root), Ok(PathBuf::from("/abs")));
        assert!(spelt_path("~/x", None, root).is_err());
        let dir = tempfile::tempdir().expect("tmp");
        let err = Settings::new(
            &config(serde_json::json!({"cache_dirs": ["~/x"]})),
            &BTreeMap::new(),
            dir.path(),
        )
        .err();
        assert_eq!(err.map(|(k, _)| k), Some("policy.cache_dirs".to_string()));
    }

    #[test]
    fn limits_are_never_raised_above_the_current_hard_limit() {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `cur` is a valid, writable rlimit.
        unsafe {
            libc::getrlimit(libc::RLIMIT_FSIZE, &mut cur);
        }
        let l = capped(libc::RLIMIT_FSIZE, 1000, 5);
        assert_eq!(l.rlim_max, 1005.min(cur.rlim_max));
        assert_eq!(l.rlim_cur, 1000.min(l.rlim_max));
        let l = capped(libc::RLIMIT_FSIZE, u64::MAX, 0);
        assert_eq!(l.rlim_max, cur.rlim_max);
        let dir = tempfile::tempdir().expect("tmp");
        let s = settings(
            serde_json::json!({"max_cpu_s": 7, "max_address_space_mb": 2, "max_file_size_mb": 3, "max_processes": 9}),
            &[],
            dir.path(),
            7,
        );
        assert_eq!(
            s.limits(),
            ResourceLimits {
                cpu_s: 7,
                address_space_mb: 2,
                processes: 9,
                file_size_mb: 3
            }
        );
        let r = Confine::new(&s, dir.path(), false).rlimits();
        assert_eq!(r.cpu.rlim_cur, 7);
        assert_eq!(r.cpu.rlim_max, (7 + CPU_HARD_SLACK_S).min(r.cpu.rlim_max));
        assert_eq!(r.address_space.rlim_cur, 2 * 1024 * 1024);
        assert_eq!(r.file_size.rlim_cur, 3 * 1024 * 1024);
        if running_as_root() {
            assert_eq!(r.processes.rlim_cur, 9);
        } else {
            assert!(r.processes.rlim_cur > 9, "the user's own tasks are counted");
        }
        let d = settings(serde_json::json!({}), &[], dir.path(), 7).limits();
        assert_eq!(
            d,
            ResourceLimits {
                cpu_s: DEFAULT_MAX_CPU_S,
                address_space_mb: DEFAULT_MAX_ADDRESS_SPACE_MB,
                processes: DEFAULT_MAX_PROCESSES,
                file_size_mb: DEFAULT_MAX_FILE_SIZE_MB
            }
        );
    }

    fn context(
        root: &Path,
        json: serde_json::Value,
        abi: u8,
    ) -> (ToolContext, Arc<MemoryRecorder>) {
        let vars = env(&[("PATH", "/usr/bin:/bin"), ("AO_ALLOWED_COMMANDS", "sh")]);
        let mut policy = Policy::new(PolicyInput {
            root,
            state_dir: None,
            config: &config(json),
            policy_env: &PolicyEnv::from_vars(&vars).expect("vars"),
            env: &vars,
            apply_flag: true,
        })
        .expect("policy");
        policy.set_landlock_abi(abi);
        let recorder = Arc::new(MemoryRecorder::new());
        let ctx = ToolContext::new(
            Arc::new(policy),
            recorder.clone(),
            Redactor::new(&vars, [""; 0]),
        );
        (ctx, recorder)
    }

    #[tokio::test]
    async fn a_kernel_without_landlock_runs_the_command_unless_confinement_is_required() {
        if landlock_abi() == 0 {
            return;
        }
        let base = tempfile::tempdir().expect("tmp");
        let root = base.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        let outside = base.path().join("outside.txt");
        let argv = serde_json::json!(["sh", "-c", format!("echo x > {}", outside.display())]);
        // Degraded kernel, confinement not required: it runs, unconfined, and says so.
        let (ctx, rec) = context(&root, serde_json::json!({}), 0);
        let out = ToolRegistry::standard()
            .call("cmd.run", serde_json::json!({"argv": argv}), &ctx)
            .await
            .expect("outcome");
        assert_eq!(out.decision, Decision::Allowed);
        assert!(outside.exists(), "{:?}", out.output);
        let record = rec.records().pop().and_then(|r| r.confinement);
        assert_eq!(record.map(|c| c.filesystem), Some(false));
        std::fs::remove_file(&outside).expect("rm");
        // Confinement required: refused, recorded as denied, nothing started.
        let (ctx, rec) = context(&root, serde_json::json!({"require_confinement": true}), 3);
        let out = ToolRegistry::standard()
            .call("cmd.run", serde_json::json!({"argv": argv}), &ctx)
            .await
            .expect("outcome");
        assert_eq!(out.decision, Decision::Denied);
        assert!(
            out.reason
                .as_deref()
                .unwrap_or_default()
                .contains("require_confinement"),
            "{out:?}"
        );
        assert_eq!(
            rec.records().pop().map(|r| r.decision),
            Some(Decision::Denied)
        );
        assert!(!outside.exists());
        // The kernel's own ABI: enforced, the write outside fails.
        if landlock_abi() < 6 {
            return;
        }
        let (ctx, rec) = context(
            &root,
            serde_json::json!({"require_confinement": true}),
            landlock_abi(),
        );
        let out = ToolRegistry::standard()
            .call("cmd.run", serde_json::json!({"argv": argv}), &ctx)
            .await
            .expect("outcome");
        assert_eq!(out.decision, Decision::Allowed);
        assert_ne!(out.output["exit_code"], 0, "{:?}", out.output);
        assert!(!outside.exists());
        let record = rec.records().pop().and_then(|r| r.confinement);
        assert_eq!(record.map(|c| c.filesystem), Some(true));
    }
}
