//! Configuration: environment, `<root>/.env`, `ao.toml`, with the documented precedence.
//!
//! Precedence, highest first: CLI flags > the real environment > `<root>/.env` > `ao.toml` >
//! defaults. The environment is *injected* as a snapshot ([`ConfigInputs::env`]), so loading
//! never reads or mutates the process environment by itself; [`env_snapshot`] takes the real one.
//! `.env` is parsed with `dotenvy` but never exported into the process. CLI flags are passed as
//! the env-var names they override (`--leader-model x` → `LEADER_MODEL_NAME=x`), so every
//! setting has one name across flags, env and `.env`.
//!
//! Per role, `{PREFIX}_PROVIDER`, `_NAME`, `_BASE_URL`, `_API_KEY` and the optional `_MAX_TOKENS`,
//! `_TEMPERATURE`, `_FALLBACK` (comma-separated), `_MAX_RETRIES` are read for the prefixes
//! `LEADER_MODEL` and `WORKER_MODEL` (the worker named `default`); timeouts and prices come from
//! ao.toml only.
//!
//! `LOG_LEVEL`/`RUST_LOG` are synonyms resolved layer by layer (flags, real environment, `.env`,
//! ao.toml), so a higher layer wins whichever name it uses. A role's `_BASE_URL`/`_API_KEY` come
//! from its own variable (any layer) or its ao.toml entry first; the provider's shared
//! `OPENAI_*` (provider `openai`) or `LITELLM_*` (provider `litellm`) are used only when the role
//! has none.
//!
//! Empty values count as unset, except that a policy variable (`AO_DRY_RUN`, `AO_ALLOW_WRITE`,
//! `AO_ALLOWED_COMMANDS`) present but empty in the flags or the real environment counts as set
//! to empty, so `.env` cannot override it: an empty `AO_DRY_RUN`/`AO_ALLOW_WRITE` is an error,
//! an empty `AO_ALLOWED_COMMANDS` leaves `[policy] allowed_commands` in force.
//!
//! The policy settings are typed here, once: the `[policy]` table is a [`PolicyConfig`] (an
//! unknown key or a wrong type is a [`ConfigError::Toml`] naming file, line and key), the
//! policy variables are a [`PolicyEnv`], and [`PolicyEnv::mode`] is the one place that decides
//! dry-run or apply. The tools crate gives them their effect (globs, the allowlist, the gate).
//!
//! Every effective value is a [`Sourced`] value that remembers where it came from, so `ao doctor`
//! can print it ([`Config::doctor_rows`]); API keys are [`Secret`]s and are never printed.
//!
//! What this module is not: it does not compile globs or judge commands (the tools crate does),
//! and it makes no network calls.
//!
//! ```
//! use ao_core::config::{Config, ConfigInputs};
//! use std::collections::BTreeMap;
//! let mut env = BTreeMap::new();
//! env.insert("LEADER_MODEL_PROVIDER".into(), "ollama".into());
//! env.insert("LEADER_MODEL_NAME".into(), "qwen2.5-coder:7b".into());
//! let dir = std::env::temp_dir().join("ao-config-doc-example-nonexistent");
//! let config = Config::load(&ConfigInputs::new(&dir).with_env(env)).unwrap();
//! let leader = config.leader().unwrap();
//! assert_eq!(leader.base_url.value, "http://localhost:11434/v1");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// File name of the project configuration, looked up in the project root.
pub const AO_TOML: &str = "ao.toml";
/// File name of the dotenv file, looked up in the project root.
pub const DOTENV: &str = ".env";
/// Name of the worker defined by the `WORKER_MODEL_*` variables.
pub const DEFAULT_WORKER: &str = "default";
/// Role name of the leader.
pub const LEADER: &str = "leader";

const DEFAULT_CONNECT_SECS: f64 = 10.0;
const DEFAULT_TOTAL_SECS: f64 = 300.0;
const DEFAULT_IDLE_SECS: f64 = 60.0;
const DEFAULT_OVERALL_SECS: f64 = 600.0;
const DEFAULT_MAX_RETRIES: u32 = 3;
/// The `max_tokens` sent on every call of a role that sets none. Without a limit some servers
/// (llama.cpp's among them) generate until the context is full. `max_tokens = 0` sends none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Takes a snapshot of the real process environment (the only place this module reads it).
pub fn env_snapshot() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// The real process environment.
    Env,
    /// `<root>/.env`.
    DotEnv,
    /// `<root>/ao.toml`.
    AoToml,
    /// Built into `ao`.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::DotEnv => ".env",
            Source::AoToml => "ao.toml",
            Source::Default => "default",
        })
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
    /// The variable or ao.toml key that supplied it (e.g. `LEADER_MODEL_NAME`,
    /// `leader.model`), for messages.
    pub origin: String,
}

impl<T> Sourced<T> {
    fn new(value: T, source: Source, origin: impl Into<String>) -> Self {
        Sourced {
            value,
            source,
            origin: origin.into(),
        }
    }

    fn default_value(value: T) -> Self {
        Sourced::new(value, Source::Default, "default")
    }
}

/// A secret (an API key). `Debug` and `Display` never show its value; use [`Secret::expose`]
/// only to put it on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the `Authorization` header and for redaction only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which kind of endpoint a role talks to. All speak OpenAI chat completions; the presets only
/// differ by their default base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "litellm")]
    LiteLlm,
    OpenaiCompatible,
    Ollama,
    Vllm,
    #[serde(rename = "lmstudio")]
    LmStudio,
    #[serde(rename = "llamacpp")]
    LlamaCpp,
}

impl Provider {
    /// Every accepted spelling, for messages.
    pub const NAMES: &'static [&'static str] = &[
        "openai",
        "litellm",
        "openai-compatible",
        "ollama",
        "vllm",
        "lmstudio",
        "llamacpp",
    ];

    /// Parses a provider name (case-insensitive, surrounding spaces ignored).
    pub fn parse(name: &str) -> Option<Provider> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "openai" => Provider::OpenAi,
            "litellm" => Provider::LiteLlm,
            "openai-compatible" => Provider::OpenaiCompatible,
            "ollama" => Provider::Ollama,
            "vllm" => Provider::Vllm,
            "lmstudio" => Provider::LmStudio,
            "llamacpp" => Provider::LlamaCpp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::LiteLlm => "litellm",
            Provider::OpenaiCompatible => "openai-compatible",
            Provider::Ollama => "ollama",
            Provider::Vllm => "vllm",
            Provider::LmStudio => "lmstudio",
            Provider::LlamaCpp => "llamacpp",
        }
    }

    /// The base URL a local-server preset uses when none is set.
    pub fn preset_base_url(self) -> Option<&'static str> {
        match self {
            Provider::Ollama => Some("http://localhost:11434/v1"),
            Provider::Vllm => Some("http://localhost:8000/v1"),
            Provider::LmStudio => Some("http://localhost:1234/v1"),
            Provider::LlamaCpp => Some("http://localhost:8080/v1"),
            Provider::OpenAi | Provider::LiteLlm | Provider::OpenaiCompatible => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Price of a model in US dollars per one million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Dollars per 1M prompt (input) tokens.
    pub input: f64,
    /// Dollars per 1M completion (output) tokens.
    pub output: f64,
}

/// Per-call time limits of a role.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Establishing the TCP/TLS connection.
    pub connect: Duration,
    /// One HTTP attempt, from sending the request to the end of the reply.
    pub total: Duration,
    /// Streaming only: the longest pause between two chunks.
    pub idle: Duration,
    /// One `complete` call as a whole: all attempts, back-off waits, fallbacks and repairs.
    pub overall: Duration,
}

/// The effective configuration of one model role (the leader or a named worker).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `leader` or the worker's name.
    pub role: String,
    pub provider: Sourced<Provider>,
    pub model: Sourced<String>,
    /// Endpoint base URL, without a trailing slash (`…/v1`).
    pub base_url: Sourced<String>,
    pub api_key: Option<Sourced<Secret>>,
    pub timeouts: Sourced<Timeouts>,
    /// The most tokens a reply may have, sent on every call ([`DEFAULT_MAX_TOKENS`] unless
    /// set); `0` sends no limit.
    pub max_tokens: Sourced<u32>,
    /// Kept as written (`0.2` goes out as `0.2`).
    pub temperature: Option<Sourced<f64>>,
    /// Model ids at the same endpoint, tried in order when the primary is rate-limited or down.
    pub fallback: Sourced<Vec<String>>,
    pub price: Option<Sourced<Price>>,
    /// The retry budget of one call: requests sent after a failed one (retries, fallbacks,
    /// structured-output step-downs), shared by every model the call tries.
    pub max_retries: Sourced<u32>,
    /// The env-var prefix of this role (`LEADER_MODEL`, `WORKER_MODEL`), or `None` for a
    /// worker only ao.toml defines. Used in messages that say what to set.
    pub env_prefix: Option<String>,
}

impl ModelConfig {
    /// The `max_tokens` to send, `None` when the role sends no limit (`max_tokens = 0`).
    pub fn max_tokens_limit(&self) -> Option<u32> {
        (self.max_tokens.value > 0).then_some(self.max_tokens.value)
    }

    /// What to set to change this role's `max_tokens`, for error messages.
    pub fn max_tokens_hint(&self) -> String {
        match &self.env_prefix {
            Some(p) => format!(
                "{p}_MAX_TOKENS (or `{}.max_tokens` in ao.toml)",
                self.toml_path()
            ),
            None => format!("`{}.max_tokens` in ao.toml", self.toml_path()),
        }
    }

    /// What to set to change this role's key, for error messages.
    pub fn api_key_hint(&self) -> String {
        match &self.env_prefix {
            Some(p) => format!("{p}_API_KEY (or `{}.api_key` in ao.toml)", self.toml_path()),
            None => format!("`{}.api_key` in ao.toml", self.toml_path()),
        }
    }

    /// What to set to change this role's model, for error messages.
    pub fn model_hint(&self) -> String {
        match &self.env_prefix {
            Some(p) => format!("{p}_NAME (or `{}.model` in ao.toml)", self.toml_path()),
            None => format!("`{}.model` in ao.toml", self.toml_path()),
        }
    }

    /// What to set to change this role's base URL, for error messages.
    pub fn base_url_hint(&self) -> String {
        match &self.env_prefix {
            Some(p) => format!(
                "{p}_BASE_URL (or `{}.base_url` in ao.toml)",
                self.toml_path()
            ),
            None => format!("`{}.base_url` in ao.toml", self.toml_path()),
        }
    }

    fn toml_path(&self) -> String {
        if self.role == LEADER {
            LEADER.to_string()
        } else {
            format!("workers.{}", self.role)
        }
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    /// The ao.toml that was read (`--config FILE`, else `<root>/ao.toml` if it exists).
    pub ao_toml_path: Option<PathBuf>,
    /// `<root>/.env` if it exists.
    pub dotenv_path: Option<PathBuf>,
    /// `None` when no layer configures a leader; [`Config::leader`] turns that into an error.
    pub leader_config: Option<ModelConfig>,
    /// Named workers; `WORKER_MODEL_*` define the one named [`DEFAULT_WORKER`].
    pub workers: BTreeMap<String, ModelConfig>,
    /// Model roles that are configured but wrong (half set, unknown provider, bad value), by
    /// role. Kept here instead of failing [`Config::load`], so commands that need no model
    /// still work; [`Config::check_models`] (and so building a model client) reports them.
    pub model_problems: BTreeMap<String, ConfigError>,
    pub state_dir: Sourced<PathBuf>,
    pub mcp_server_name: Sourced<String>,
    pub mcp_server_version: Sourced<String>,
    pub log_level: Option<Sourced<String>>,
    /// `AO_DRY_RUN`, `AO_ALLOW_WRITE`, `AO_ALLOWED_COMMANDS`, layered (flag > env > .env) and
    /// parsed.
    pub policy_env: PolicyEnv,
    /// The `[policy]` table of ao.toml (the default when absent).
    pub policy: PolicyConfig,
    /// The `[budget]` table of ao.toml: budget limits for runs whose workflow sets none.
    pub budget: BudgetConfig,
}

/// One line of `ao doctor`: a setting, its displayable value, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingRow {
    pub setting: String,
    /// The value, or for secrets `set (from X)` / `unset`.
    pub value: String,
    /// `None` when the setting is unset.
    pub source: Option<Source>,
}

/// What [`Config::load`] reads: the project root, an environment snapshot and CLI flags.
#[derive(Debug, Clone, Default)]
pub struct ConfigInputs {
    pub root: PathBuf,
    pub env: BTreeMap<String, String>,
    /// CLI flags keyed by the env-var name they override (e.g. `LEADER_MODEL_NAME`).
    pub flags: BTreeMap<String, String>,
    /// `--config FILE` (relative paths are taken from the root); default `<root>/ao.toml`.
    pub config_file: Option<PathBuf>,
}

impl ConfigInputs {
    /// Inputs for `root` with an empty environment and no flags.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ConfigInputs {
            root: root.into(),
            ..Default::default()
        }
    }

    /// Inputs for `root` with the real process environment.
    pub fn from_process_env(root: impl Into<PathBuf>) -> Self {
        ConfigInputs::new(root).with_env(env_snapshot())
    }

    pub fn with_env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }

    pub fn with_config_file(mut self, path: Option<PathBuf>) -> Self {
        self.config_file = path;
        self
    }

    pub fn with_flag(mut self, var: impl Into<String>, value: impl Into<String>) -> Self {
        self.flags.insert(var.into(), value.into());
        self
    }
}

/// A configuration problem, saying where and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: line {line}: cannot parse: {message}")]
    DotEnv {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "unknown model provider `{value}` in {origin}; use one of: {}",
        Provider::NAMES.join(", ")
    )]
    UnknownProvider { value: String, origin: String },
    #[error("invalid value `{value}` for {origin}: {reason}")]
    InvalidValue {
        value: String,
        origin: String,
        reason: String,
    },
    #[error("{role} model is incomplete: {missing} is not set; set {hint}")]
    Incomplete {
        role: String,
        missing: String,
        hint: String,
    },
    #[error(
        "no leader model is configured. Set LEADER_MODEL_PROVIDER and LEADER_MODEL_NAME \
         (and LEADER_MODEL_BASE_URL / LEADER_MODEL_API_KEY when needed) in the environment or \
         in <root>/.env, or a [leader] table in ao.toml. Any OpenAI-compatible endpoint works: \
         OpenAI (provider openai, OPENAI_API_KEY), a LiteLLM proxy (provider litellm, \
         LITELLM_BASE_URL), or a local server: Ollama (provider ollama), LM Studio (lmstudio), \
         llama.cpp server (llamacpp), vLLM (vllm). See .env.example."
    )]
    MissingLeader,
}

// ---------------------------------------------------------------------------------------------
// policy settings

/// Whether writes and commands are real or recorded. Decided in one place: [`PolicyEnv::mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reads are real; writes go to the run's changeset; `exec` is simulated except the
    /// read-only commands.
    DryRun,
    /// Writes hit the disk atomically; allowed commands run.
    Apply,
}

/// The `[policy]` table of `ao.toml`. Unknown keys are a configuration error: in a safety
/// setting, a misspelt `writeable` must not silently mean "everything is writable".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Argv prefixes `cmd.run` may start (`"cargo test"` allows `cargo test -p x`, not
    /// `cargo publish`). `AO_ALLOWED_COMMANDS`, when set and not empty, replaces this list.
    pub allowed_commands: Option<Vec<String>>,
    /// Argv prefixes that run even in dry-run. Replaces the default read-only git commands
    /// (`git status`, `git diff`, `git log`, `git show`, `git rev-parse`, `git ls-files`).
    pub read_only_commands: Option<Vec<String>>,
    /// Globs (relative to the root) that writes may touch in apply mode. Default: everything
    /// that is not denied.
    pub writable: Option<Vec<String>>,
    /// Globs added to the default `denied` list (matched without regard to letter case; a name
    /// without `/` matches at any depth, and a denied folder hides everything in it).
    pub denied: Vec<String>,
    /// Default `denied` globs to remove, spelt exactly as in the defaults. The explicit
    /// override the safety model requires.
    pub override_denied: Vec<String>,
    /// Environment variable names passed to child processes besides the built-in ones.
    pub env_passthrough: Vec<String>,
    /// Read files whose link count is above one. Off by default: a hard link inside the root
    /// may be the same file as one outside it or a denied one.
    pub allow_hardlinks: bool,
    /// Default `cmd.run` timeout in seconds (default 120).
    pub command_timeout_s: Option<NonZeroU64>,
    /// Largest `timeout_s` a caller may ask for (default 1800).
    pub max_timeout_s: Option<NonZeroU64>,
    /// Cap in bytes on each captured output (default 262144).
    pub output_cap_bytes: Option<NonZeroUsize>,
    /// Cap on entries from `fs.list` and matches from `fs.search` (default 1000).
    pub max_results: Option<NonZeroUsize>,
    /// TCP for the processes ao starts: `false` (default) denies every TCP connect and bind,
    /// `true` allows all, a list of port numbers allows connect and bind on those ports only.
    /// Enforced by the kernel (Landlock, ABI 4 and later).
    pub network: NetworkSetting,
    /// Refuse to start any process when the kernel cannot enforce the whole confinement
    /// (Landlock filesystem, TCP and scope rules). Default false: run with what is available.
    pub require_confinement: bool,
    /// Directories outside the root that commands may write (build caches such as
    /// `~/.cache/sccache`); `~/` is the home directory, a relative path is taken from the root.
    pub cache_dirs: Vec<String>,
    /// Directories outside the root that commands may read and execute from, besides the
    /// system's and the toolchain homes (`CARGO_HOME`, `RUSTUP_HOME`, ...); same spelling as
    /// `cache_dirs`.
    pub read_dirs: Vec<String>,
    /// CPU time limit of each process ao starts, in seconds (`RLIMIT_CPU`, default 3600).
    pub max_cpu_s: Option<NonZeroU64>,
    /// Address-space limit of each process ao starts, in MiB (`RLIMIT_AS`, default 16384).
    pub max_address_space_mb: Option<NonZeroU64>,
    /// How many processes and threads a command may add to those its user already runs
    /// (`RLIMIT_NPROC`, default 1024; not enforced by the kernel for root).
    pub max_processes: Option<NonZeroU64>,
    /// Largest file a process ao starts may write, in MiB (`RLIMIT_FSIZE`, default 8192).
    pub max_file_size_mb: Option<NonZeroU64>,
}

/// `[policy] network`: `true`, `false` or a list of TCP ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NetworkSetting {
    /// All TCP (`true`) or none (`false`).
    All(bool),
    /// Connect and bind on these TCP ports only.
    Ports(Vec<u16>),
}

impl Default for NetworkSetting {
    fn default() -> Self {
        NetworkSetting::All(false)
    }
}

/// The policy variables, layered (flags > real environment > `.env`) and parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyEnv {
    /// `AO_DRY_RUN`.
    pub dry_run: Option<Sourced<bool>>,
    /// `AO_ALLOW_WRITE`.
    pub allow_write: Option<Sourced<bool>>,
    /// `AO_ALLOWED_COMMANDS`, split at commas into argv prefixes (each still one string);
    /// `None` when unset or empty, so `[policy] allowed_commands` applies.
    pub allowed_commands: Option<Sourced<Vec<String>>>,
}

/// The names of the policy variables.
pub const POLICY_VARS: [&str; 3] = ["AO_DRY_RUN", "AO_ALLOW_WRITE", "AO_ALLOWED_COMMANDS"];

/// Parses a boolean policy variable: `true`/`false`/`1`/`0`/`yes`/`no`, case-insensitive;
/// anything else (an empty value too) is an error naming the variable and the value.
pub fn parse_bool_var(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::InvalidValue {
            value: value.to_string(),
            origin: name.to_string(),
            reason: "expected true, false, 1, 0, yes or no".to_string(),
        }),
    }
}

/// Splits a comma-separated `AO_ALLOWED_COMMANDS` into its entries (blank entries dropped).
pub fn split_allowed_commands(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl PolicyEnv {
    /// Parses the policy variables of a plain environment map (every value from
    /// [`Source::Env`]); [`Config::load`] layers flags and `.env` first.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<PolicyEnv, ConfigError> {
        let raw: BTreeMap<&str, Sourced<String>> = POLICY_VARS
            .iter()
            .filter_map(|v| {
                vars.get(*v)
                    .map(|value| (*v, Sourced::new(value.trim().to_string(), Source::Env, *v)))
            })
            .collect();
        PolicyEnv::parse(&raw)
    }

    fn parse(raw: &BTreeMap<&str, Sourced<String>>) -> Result<PolicyEnv, ConfigError> {
        let flag = |name: &str| -> Result<Option<Sourced<bool>>, ConfigError> {
            raw.get(name)
                .map(|s| {
                    parse_bool_var(&describe_origin(s), &s.value)
                        .map(|b| Sourced::new(b, s.source, s.origin.clone()))
                })
                .transpose()
        };
        Ok(PolicyEnv {
            dry_run: flag("AO_DRY_RUN")?,
            allow_write: flag("AO_ALLOW_WRITE")?,
            allowed_commands: raw.get("AO_ALLOWED_COMMANDS").and_then(|s| {
                let list = split_allowed_commands(&s.value);
                (!list.is_empty()).then(|| Sourced::new(list, s.source, s.origin.clone()))
            }),
        })
    }

    /// Decides the mode, and says why: `--apply` (the flag), or `AO_DRY_RUN=false` together
    /// with `AO_ALLOW_WRITE=true`; anything else is dry-run.
    pub fn mode(&self, apply_flag: bool) -> (Mode, String) {
        let dry_run = self.dry_run.as_ref().map(|s| s.value);
        let allow_write = self.allow_write.as_ref().map(|s| s.value);
        if apply_flag {
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
        }
    }

    /// The rows `ao doctor` shows for the variables that are set.
    fn rows(&self) -> Vec<SettingRow> {
        let mut rows = Vec::new();
        for (name, s) in [
            ("AO_DRY_RUN", &self.dry_run),
            ("AO_ALLOW_WRITE", &self.allow_write),
        ] {
            if let Some(s) = s {
                rows.push(SettingRow {
                    setting: name.to_string(),
                    value: s.value.to_string(),
                    source: Some(s.source),
                });
            }
        }
        if let Some(s) = &self.allowed_commands {
            rows.push(SettingRow {
                setting: "AO_ALLOWED_COMMANDS".to_string(),
                value: s.value.join(","),
                source: Some(s.source),
            });
        }
        rows
    }
}

// ---------------------------------------------------------------------------------------------
// ao.toml shape

/// The shape of `ao.toml`. Unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ao.toml")]
pub struct AoTomlFile {
    /// The leader model.
    #[serde(default)]
    pub leader: Option<RoleToml>,
    /// Named worker models (`[workers.NAME]`).
    #[serde(default)]
    pub workers: BTreeMap<String, RoleToml>,
    /// State directory (default `<root>/.ao`); `AO_STATE_DIR` overrides it.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// `error`/`warn`/`info`/`debug`/`trace`; `LOG_LEVEL` overrides it.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Identity reported by `ao mcp serve`.
    #[serde(default)]
    pub mcp_server: Option<McpServerToml>,
    /// The policy gate: allowed commands, writable and denied globs, limits.
    #[serde(default)]
    pub policy: Option<PolicyConfig>,
    /// Default budget limits of every run: each applies when the workflow's `limits` do not
    /// set it; `--max-tokens`, `--max-cost`, `--max-llm-calls` override both.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

/// The `[budget]` table of `ao.toml`: what a run (its sub-runs included) may spend on models
/// unless its workflow's `limits` say otherwise. Unknown keys are errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// The most model tokens (in + out) a run may spend.
    pub max_tokens: Option<NonZeroU64>,
    /// The most US dollars a run may spend on models (needs a `price` for every model).
    #[serde(deserialize_with = "positive_dollars")]
    pub max_cost_usd: Option<f64>,
    /// The most model requests a run may send.
    pub max_llm_calls: Option<NonZeroU64>,
}

impl BudgetConfig {
    pub fn is_empty(&self) -> bool {
        *self == BudgetConfig::default()
    }
}

/// A dollar amount that must be a positive, finite number.
fn positive_dollars<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 {
        Ok(Some(v))
    } else {
        Err(serde::de::Error::custom(format!(
            "max_cost_usd must be a positive number of dollars, got {v}"
        )))
    }
}

/// `[mcp_server]` in ao.toml.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerToml {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// `[leader]` or `[workers.NAME]` in ao.toml.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleToml {
    /// `openai`, `litellm`, `openai-compatible`, `ollama`, `vllm`, `lmstudio`, `llamacpp`.
    pub provider: Option<String>,
    /// Model id as the endpoint names it.
    pub model: Option<String>,
    /// Endpoint base URL (`…/v1`).
    pub base_url: Option<String>,
    /// API key. Prefer the environment or `.env` for keys.
    pub api_key: Option<String>,
    /// The most tokens a reply may have (default 4096; 0 sends no limit).
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Models at the same endpoint tried in order when the primary is rate-limited or down.
    pub fallback: Option<Vec<String>>,
    /// Retry budget of one call, shared by its fallback models (default 3).
    pub max_retries: Option<u32>,
    pub timeout: Option<TimeoutToml>,
    /// Dollars per 1M tokens.
    pub price: Option<Price>,
}

/// `timeout = { … }` of a role, in seconds.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutToml {
    /// Connect timeout (default 10).
    pub connect: Option<f64>,
    /// One HTTP attempt (default 300).
    pub total: Option<f64>,
    /// Streaming: longest pause between chunks (default 60).
    pub idle: Option<f64>,
    /// One call including retries, fallbacks and repairs (default 600).
    pub overall: Option<f64>,
}

/// The JSON Schema of `ao.toml` (`ao schema config`).
pub fn config_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(AoTomlFile)).unwrap_or(serde_json::Value::Null)
}

// ---------------------------------------------------------------------------------------------
// loading

/// Layered lookup of variables: flags > env > .env.
struct Vars<'a> {
    flags: &'a BTreeMap<String, String>,
    env: &'a BTreeMap<String, String>,
    dotenv: BTreeMap<String, String>,
}

impl Vars<'_> {
    fn layers(&self) -> [(&BTreeMap<String, String>, Source); 3] {
        [
            (self.flags, Source::Flag),
            (self.env, Source::Env),
            (&self.dotenv, Source::DotEnv),
        ]
    }

    /// One variable; see [`Vars::get_any`].
    fn get(&self, var: &str) -> Option<Sourced<String>> {
        self.get_any(&[var])
    }

    /// The first of `names` set, layer by layer: every name is looked up in the flags, then
    /// every name in the real environment, then in `.env`, so a higher layer always wins over
    /// a lower one whichever synonym each uses (a real-env `RUST_LOG` beats a `.env`
    /// `LOG_LEVEL`); within one layer the earlier name wins.
    ///
    /// Empty values count as unset in every layer, so a copied `.env.example` with blank lines
    /// sets nothing and an exported-but-empty model variable does not hide `.env`.
    fn get_any(&self, names: &[&str]) -> Option<Sourced<String>> {
        self.layers().into_iter().find_map(|(map, source)| {
            names.iter().find_map(|var| {
                map.get(*var)
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
                    .map(|v| Sourced::new(v.to_string(), source, *var))
            })
        })
    }

    /// A policy variable (`AO_DRY_RUN`, `AO_ALLOW_WRITE`, `AO_ALLOWED_COMMANDS`). Unlike the
    /// model variables, one *present* in the flags or the real environment counts even when
    /// empty: the real environment is never overridden by `.env` on a safety setting
    /// ([`PolicyEnv`] says what an empty value means). In `.env` an empty value is unset.
    fn get_policy(&self, var: &str) -> Option<Sourced<String>> {
        self.layers().into_iter().find_map(|(map, source)| {
            let v = map.get(var)?.trim();
            (source != Source::DotEnv || !v.is_empty())
                .then(|| Sourced::new(v.to_string(), source, var))
        })
    }
}

fn from_toml<T>(value: Option<T>, key: String) -> Option<Sourced<T>> {
    value.map(|v| Sourced::new(v, Source::AoToml, key))
}

impl Config {
    /// Loads the effective configuration. Fails on unreadable or malformed files and unknown
    /// keys. A model role that is wrong (half set, unknown provider, bad value) does not fail
    /// the load: it is kept in [`Config::model_problems`] and reported by [`Config::leader`] /
    /// [`Config::check_models`], like a *missing* leader, so commands that need no model still
    /// work.
    pub fn load(inputs: &ConfigInputs) -> Result<Config, ConfigError> {
        let root = inputs.root.clone();
        // `--config FILE` must exist; the default `<root>/ao.toml` is optional.
        let (toml_path, required) = match &inputs.config_file {
            Some(p) if p.is_absolute() => (p.clone(), true),
            Some(p) => (root.join(p), true),
            None => (root.join(AO_TOML), false),
        };
        let (ao_toml_path, file) = match std::fs::read_to_string(&toml_path) {
            Ok(text) => (Some(toml_path.clone()), parse_ao_toml(&text, &toml_path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                (None, AoTomlFile::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: toml_path,
                    source: Arc::new(source),
                });
            }
        };
        let dotenv_file = root.join(DOTENV);
        let (dotenv_path, dotenv) = match std::fs::read(&dotenv_file) {
            Ok(bytes) => (
                Some(dotenv_file.clone()),
                parse_dotenv(&bytes, &dotenv_file)?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, BTreeMap::new()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: dotenv_file,
                    source: Arc::new(source),
                });
            }
        };
        let vars = Vars {
            flags: &inputs.flags,
            env: &inputs.env,
            dotenv,
        };

        let mut model_problems = BTreeMap::new();
        let leader_config =
            match resolve_role(LEADER, Some("LEADER_MODEL"), file.leader.as_ref(), &vars) {
                Ok(cfg) => cfg,
                Err(e) => {
                    model_problems.insert(LEADER.to_string(), e);
                    None
                }
            };
        let mut workers = BTreeMap::new();
        let mut names: Vec<&String> = file.workers.keys().collect();
        let default_name = DEFAULT_WORKER.to_string();
        if !names.contains(&&default_name) {
            names.push(&default_name);
        }
        for name in names {
            let prefix = (name == DEFAULT_WORKER).then_some("WORKER_MODEL");
            match resolve_role(name, prefix, file.workers.get(name), &vars) {
                Ok(Some(cfg)) => {
                    workers.insert(name.clone(), cfg);
                }
                Ok(None) => {}
                Err(e) => {
                    model_problems.insert(name.clone(), e);
                }
            }
        }

        let state_dir = vars
            .get("AO_STATE_DIR")
            .or_else(|| from_toml(file.state_dir.clone(), "state_dir".into()))
            .map(|s| {
                let p = PathBuf::from(&s.value);
                let p = if p.is_absolute() { p } else { root.join(p) };
                Sourced::new(p, s.source, s.origin)
            })
            .unwrap_or_else(|| Sourced::default_value(root.join(".ao")));
        let mcp = file.mcp_server.clone().unwrap_or_default();
        let mcp_server_name = vars
            .get("MCP_SERVER_NAME")
            .or_else(|| from_toml(mcp.name, "mcp_server.name".into()))
            .unwrap_or_else(|| Sourced::default_value("ao".to_string()));
        let mcp_server_version = vars
            .get("MCP_SERVER_VERSION")
            .or_else(|| from_toml(mcp.version, "mcp_server.version".into()))
            .unwrap_or_else(|| Sourced::default_value(env!("CARGO_PKG_VERSION").to_string()));
        let log_level = vars
            .get_any(&["LOG_LEVEL", "RUST_LOG"])
            .or_else(|| from_toml(file.log_level.clone(), "log_level".into()));
        let raw_policy_env: BTreeMap<&str, Sourced<String>> = POLICY_VARS
            .into_iter()
            .filter_map(|v| vars.get_policy(v).map(|s| (v, s)))
            .collect();
        let policy_env = PolicyEnv::parse(&raw_policy_env)?;

        Ok(Config {
            root,
            ao_toml_path,
            dotenv_path,
            leader_config,
            workers,
            model_problems,
            state_dir,
            mcp_server_name,
            mcp_server_version,
            log_level,
            policy_env,
            policy: file.policy.unwrap_or_default(),
            budget: file.budget.unwrap_or_default(),
        })
    }

    /// The leader's configuration, or an error naming what to set (what is wrong with it, when
    /// it is configured but wrong).
    pub fn leader(&self) -> Result<&ModelConfig, ConfigError> {
        if let Some(problem) = self.model_problems.get(LEADER) {
            return Err(problem.clone());
        }
        self.leader_config
            .as_ref()
            .ok_or(ConfigError::MissingLeader)
    }

    /// The first problem of a configured model role, if any: what building a model client,
    /// `ao models list` and the preflight of a workflow with `llm` nodes report.
    pub fn check_models(&self) -> Result<(), ConfigError> {
        match self.model_problems.values().next() {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
    }

    /// Every configured model role: the leader first (if configured), then the workers by name.
    pub fn model_roles(&self) -> impl Iterator<Item = &ModelConfig> {
        self.leader_config.iter().chain(self.workers.values())
    }

    /// The effective value of every setting and where it came from, secrets never shown.
    pub fn doctor_rows(&self) -> Vec<SettingRow> {
        fn row(setting: String, value: String, source: Option<Source>) -> SettingRow {
            SettingRow {
                setting,
                value,
                source,
            }
        }
        let mut rows = Vec::new();
        match (&self.leader_config, self.model_problems.get(LEADER)) {
            (Some(cfg), _) => model_rows(cfg, "leader", &mut rows),
            (None, Some(_)) => rows.push(row("leader".into(), "invalid".into(), None)),
            (None, None) => rows.push(row("leader".into(), "unset".into(), None)),
        }
        for name in self.model_problems.keys().filter(|r| *r != LEADER) {
            rows.push(row(format!("workers.{name}"), "invalid".into(), None));
        }
        for (name, cfg) in &self.workers {
            model_rows(cfg, &format!("workers.{name}"), &mut rows);
        }
        let s = &self.state_dir;
        rows.push(row(
            "state_dir".into(),
            s.value.display().to_string(),
            Some(s.source),
        ));
        for (k, s) in [
            ("mcp_server.name", &self.mcp_server_name),
            ("mcp_server.version", &self.mcp_server_version),
        ] {
            rows.push(row(k.into(), s.value.clone(), Some(s.source)));
        }
        match &self.log_level {
            Some(s) => rows.push(row("log_level".into(), s.value.clone(), Some(s.source))),
            None => rows.push(row("log_level".into(), "unset".into(), None)),
        }
        rows.extend(self.policy_env.rows());
        let policy = if self.policy == PolicyConfig::default() {
            row("policy".into(), "unset".into(), None)
        } else {
            row(
                "policy".into(),
                serde_json::to_value(&self.policy)
                    .map(|v| without_nulls(&v).to_string())
                    .unwrap_or_default(),
                Some(Source::AoToml),
            )
        };
        rows.push(policy);
        rows.push(if self.budget.is_empty() {
            row("budget".into(), "unset".into(), None)
        } else {
            row(
                "budget".into(),
                serde_json::to_value(self.budget)
                    .map(|v| without_nulls(&v).to_string())
                    .unwrap_or_default(),
                Some(Source::AoToml),
            )
        });
        rows
    }
}

/// `value` without the object members that are `null` (unset options), for display.
fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn model_rows(cfg: &ModelConfig, prefix: &str, rows: &mut Vec<SettingRow>) {
    let mut push = |name: &str, value: String, source: Option<Source>| {
        rows.push(SettingRow {
            setting: format!("{prefix}.{name}"),
            value,
            source,
        })
    };
    push(
        "provider",
        cfg.provider.value.to_string(),
        Some(cfg.provider.source),
    );
    push("model", cfg.model.value.clone(), Some(cfg.model.source));
    push(
        "base_url",
        cfg.base_url.value.clone(),
        Some(cfg.base_url.source),
    );
    match &cfg.api_key {
        Some(k) => push(
            "api_key",
            format!("set (from {})", k.source),
            Some(k.source),
        ),
        None => push("api_key", "unset".into(), None),
    }
    let t = &cfg.timeouts;
    push(
        "timeout",
        format!(
            "connect {}s, total {}s, idle {}s, overall {}s",
            t.value.connect.as_secs_f64(),
            t.value.total.as_secs_f64(),
            t.value.idle.as_secs_f64(),
            t.value.overall.as_secs_f64()
        ),
        Some(t.source),
    );
    push(
        "max_tokens",
        match cfg.max_tokens.value {
            0 => "no limit".into(),
            n => n.to_string(),
        },
        Some(cfg.max_tokens.source),
    );
    match &cfg.temperature {
        Some(v) => push("temperature", v.value.to_string(), Some(v.source)),
        None => push("temperature", "unset".into(), None),
    }
    push(
        "fallback",
        if cfg.fallback.value.is_empty() {
            "none".into()
        } else {
            cfg.fallback.value.join(", ")
        },
        Some(cfg.fallback.source),
    );
    push(
        "max_retries",
        cfg.max_retries.value.to_string(),
        Some(cfg.max_retries.source),
    );
    match &cfg.price {
        Some(p) => push(
            "price",
            format!(
                "${} in / ${} out per 1M tokens",
                p.value.input, p.value.output
            ),
            Some(p.source),
        ),
        None => push("price", "unset".into(), None),
    }
}

/// Parses ao.toml, turning error spans into line and column and naming the key at fault.
pub fn parse_ao_toml(text: &str, path: &Path) -> Result<AoTomlFile, ConfigError> {
    toml::from_str::<AoTomlFile>(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((1, 1));
        let mut message = e.message().trim().to_string();
        if let Some(key) = e.span().and_then(|span| key_at(text, span.start)) {
            message.push_str(&format!(" (key `{key}`)"));
        }
        ConfigError::Toml {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// The dotted key (`policy.writable`) whose line holds byte `offset` of an ao.toml text: the
/// key before `=` on that line, or on the nearest line above it (a multi-line array), prefixed
/// with the enclosing `[table]`. `None` when no key can be told.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_index = text[..offset].matches('\n').count();
    let lines: Vec<&str> = text.lines().collect();
    let mut key = None;
    let mut table = None;
    for l in lines.iter().take(line_index + 1).rev() {
        let t = l.trim();
        if t.starts_with('[') {
            let name = t.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or_default().trim();
            table = Some(name.to_string());
            break;
        }
        if key.is_none()
            && let Some((k, _)) = t.split_once('=')
        {
            let k = k.trim();
            if !k.is_empty() && !k.starts_with('#') {
                key = Some(k.to_string());
            }
        }
    }
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// Parses a `.env` file without touching the process environment.
fn parse_dotenv(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in dotenvy::from_read_iter(bytes) {
        match item {
            Ok((k, v)) => {
                out.insert(k, v);
            }
            Err(dotenvy::Error::LineParse(line_text, _)) => {
                // Never echo the line: it may hold a secret (`OPENAI_API_KEY="sk-…` with an
                // unclosed quote swallows the rest of the file). Only the line number and,
                // when it can be told, the variable name are reported.
                let first = line_text.lines().next().unwrap_or_default().trim();
                let text = String::from_utf8_lossy(bytes);
                let line = (!first.is_empty())
                    .then(|| {
                        text.lines()
                            .position(|l| l.trim() == first)
                            .or_else(|| text.lines().position(|l| l.contains(first)))
                    })
                    .flatten()
                    .map_or(0, |i| i + 1);
                let message = match dotenv_var_name(first) {
                    Some(name) => format!(
                        "the value of {name} is malformed (an unclosed quote or a stray \
                         character?); the value is not shown"
                    ),
                    None => "expected NAME=value (the line is not shown)".to_string(),
                };
                return Err(ConfigError::DotEnv {
                    path: path.to_path_buf(),
                    line,
                    message,
                });
            }
            Err(e) => {
                return Err(ConfigError::DotEnv {
                    path: path.to_path_buf(),
                    line: 0,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// The variable a `.env` line assigns (`NAME=…` or `export NAME=…`), if it looks like one.
fn dotenv_var_name(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (starts_well && rest.trim_start().starts_with('=')).then_some(name)
}

fn parse_secs(value: f64, origin: &str) -> Result<Duration, ConfigError> {
    if value <= 0.0 {
        return Err(ConfigError::InvalidValue {
            value: value.to_string(),
            origin: origin.to_string(),
            reason: "a timeout must be a positive number of seconds".into(),
        });
    }
    Duration::try_from_secs_f64(value).map_err(|e| ConfigError::InvalidValue {
        value: value.to_string(),
        origin: origin.to_string(),
        reason: e.to_string(),
    })
}

fn parse_env_number<T: std::str::FromStr>(
    s: Sourced<String>,
    what: &str,
) -> Result<Sourced<T>, ConfigError> {
    match s.value.parse::<T>() {
        Ok(v) => Ok(Sourced::new(v, s.source, s.origin)),
        Err(_) => Err(ConfigError::InvalidValue {
            reason: format!("expected {what}"),
            value: s.value,
            origin: s.origin,
        }),
    }
}

/// Resolves one role from env vars (when it has a prefix) over its ao.toml table. `None` when
/// no layer says anything about the role's provider or model.
fn resolve_role(
    role: &str,
    prefix: Option<&str>,
    table: Option<&RoleToml>,
    vars: &Vars<'_>,
) -> Result<Option<ModelConfig>, ConfigError> {
    let empty = RoleToml::default();
    let t = table.unwrap_or(&empty);
    let key_path = if role == LEADER {
        LEADER.to_string()
    } else {
        format!("workers.{role}")
    };
    let var = |suffix: &str| prefix.and_then(|p| vars.get(&format!("{p}_{suffix}")));
    let tkey = |k: &str| format!("{}:{key_path}.{k}", AO_TOML);

    let provider_raw = var("PROVIDER").or_else(|| from_toml(t.provider.clone(), tkey("provider")));
    let model = var("NAME").or_else(|| from_toml(t.model.clone(), tkey("model")));
    let env_hint = |suffix: &str| match prefix {
        Some(p) => format!(
            "{p}_{suffix} or `{key_path}.{}` in ao.toml",
            suffix.to_lowercase()
        ),
        None => format!("`{key_path}.{}` in ao.toml", suffix.to_lowercase()),
    };
    if provider_raw.is_none() && model.is_none() && table.is_none() {
        return Ok(None);
    }
    let provider_raw = provider_raw.ok_or_else(|| ConfigError::Incomplete {
        role: role.to_string(),
        missing: "the provider".into(),
        hint: format!(
            "{} (one of: {})",
            env_hint("PROVIDER"),
            Provider::NAMES.join(", ")
        ),
    })?;
    let provider =
        Provider::parse(&provider_raw.value).ok_or_else(|| ConfigError::UnknownProvider {
            value: provider_raw.value.clone(),
            origin: describe_origin(&provider_raw),
        })?;
    let provider = Sourced::new(provider, provider_raw.source, provider_raw.origin);
    let model = model.ok_or_else(|| ConfigError::Incomplete {
        role: role.to_string(),
        missing: "the model name".into(),
        hint: env_hint("NAME").replace(".name`", ".model`"),
    })?;

    // The role's own setting (its variable, in any layer, then its ao.toml key) comes first;
    // the provider's shared variable (OPENAI_*, LITELLM_*) is used only when the role has none,
    // as documented.
    let (shared_url, shared_key) = match provider.value {
        Provider::OpenAi => (Some("OPENAI_BASE_URL"), Some("OPENAI_API_KEY")),
        Provider::LiteLlm => (Some("LITELLM_BASE_URL"), Some("LITELLM_API_KEY")),
        _ => (None, None),
    };
    let own = |suffix: &str| -> Option<Sourced<String>> {
        prefix.and_then(|p| vars.get_any(&[format!("{p}_{suffix}").as_str()]))
    };
    let shared =
        |name: Option<&str>| -> Option<Sourced<String>> { name.and_then(|n| vars.get_any(&[n])) };
    let base_url = own("BASE_URL")
        .or_else(|| from_toml(t.base_url.clone(), tkey("base_url")))
        .or_else(|| shared(shared_url))
        .or_else(|| match provider.value {
            Provider::OpenAi => Some(Sourced::default_value(OPENAI_BASE_URL.to_string())),
            p => p
                .preset_base_url()
                .map(|u| Sourced::default_value(u.to_string())),
        })
        .ok_or_else(|| ConfigError::Incomplete {
            role: role.to_string(),
            missing: "the base URL".into(),
            hint: match provider.value {
                Provider::LiteLlm => format!("{} (or LITELLM_BASE_URL)", env_hint("BASE_URL")),
                _ => env_hint("BASE_URL"),
            },
        })?;
    let base_url = Sourced::new(
        base_url.value.trim_end_matches('/').to_string(),
        base_url.source,
        base_url.origin,
    );
    if !(base_url.value.starts_with("http://") || base_url.value.starts_with("https://")) {
        return Err(ConfigError::InvalidValue {
            value: base_url.value.clone(),
            origin: describe_origin(&base_url),
            reason: "a base URL starts with http:// or https://, e.g. http://localhost:11434/v1"
                .into(),
        });
    }
    let api_key = own("API_KEY")
        .or_else(|| from_toml(t.api_key.clone(), tkey("api_key")))
        .or_else(|| shared(shared_key))
        .map(|s| Sourced::new(Secret::new(s.value), s.source, s.origin));

    let max_tokens = match var("MAX_TOKENS") {
        Some(s) => parse_env_number::<u32>(s, "a whole number of tokens (0: no limit)")?,
        None => from_toml(t.max_tokens, tkey("max_tokens"))
            .unwrap_or_else(|| Sourced::default_value(DEFAULT_MAX_TOKENS)),
    };
    let temperature = match var("TEMPERATURE") {
        Some(s) => Some(parse_env_number::<f64>(s, "a number such as 0.2")?),
        None => from_toml(t.temperature, tkey("temperature")),
    };
    if let Some(t) = &temperature
        && !(t.value.is_finite() && t.value >= 0.0)
    {
        return Err(ConfigError::InvalidValue {
            value: t.value.to_string(),
            origin: describe_origin(t),
            reason: "a temperature is a number of at least 0, such as 0.2".into(),
        });
    }
    let fallback = match var("FALLBACK") {
        Some(s) => Sourced::new(
            s.value
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect(),
            s.source,
            s.origin,
        ),
        None => from_toml(t.fallback.clone(), tkey("fallback"))
            .unwrap_or_else(|| Sourced::default_value(Vec::new())),
    };
    let max_retries = match var("MAX_RETRIES") {
        Some(s) => parse_env_number::<u32>(s, "a whole number")?,
        None => from_toml(t.max_retries, tkey("max_retries"))
            .unwrap_or_else(|| Sourced::default_value(DEFAULT_MAX_RETRIES)),
    };
    let timeouts = {
        let tt = t.timeout.clone().unwrap_or_default();
        let origin = tkey("timeout");
        let get = |v: Option<f64>, default: f64, k: &str| {
            parse_secs(v.unwrap_or(default), &format!("{origin}.{k}"))
        };
        let value = Timeouts {
            connect: get(tt.connect, DEFAULT_CONNECT_SECS, "connect")?,
            total: get(tt.total, DEFAULT_TOTAL_SECS, "total")?,
            idle: get(tt.idle, DEFAULT_IDLE_SECS, "idle")?,
            overall: get(tt.overall, DEFAULT_OVERALL_SECS, "overall")?,
        };
        match t.timeout {
            Some(_) => Sourced::new(value, Source::AoToml, origin),
            None => Sourced::default_value(value),
        }
    };
    let price = from_toml(t.price, tkey("price"));
    if let Some(p) = &price
        && (p.value.input < 0.0 || p.value.output < 0.0)
    {
        return Err(ConfigError::InvalidValue {
            value: format!(
                "{{ input = {}, output = {} }}",
                p.value.input, p.value.output
            ),
            origin: p.origin.clone(),
            reason: "prices are non-negative dollars per 1M tokens".into(),
        });
    }

    Ok(Some(ModelConfig {
        role: role.to_string(),
        provider,
        model,
        base_url,
        api_key,
        timeouts,
        max_tokens,
        temperature,
        fallback,
        price,
        max_retries,
        env_prefix: prefix.map(String::from),
    }))
}

/// A model endpoint no configuration layer defines, named by the caller instead: a provider and
/// a model, optionally a base URL and the name of the variable that holds its key (the key itself
/// never travels with the request). Used to interview an endpoint before it is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdHocModel {
    pub provider: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The variable holding the API key, looked up in the environment, then in `.env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// Whether `name` can be an environment variable's name (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Config {
    /// The effective configuration of an [`AdHocModel`] under the role name `role`.
    ///
    /// What the caller names wins; what it leaves out is resolved as for a configured role:
    /// the provider's shared variables (`OPENAI_BASE_URL`/`OPENAI_API_KEY`,
    /// `LITELLM_BASE_URL`/`LITELLM_API_KEY`) from `env`, then `.env`, then the presets' base
    /// URLs. Every other setting (timeouts, retries, `max_tokens`) has its default, and there
    /// are no fallback models. A key variable that is named but not set is an error, never a
    /// call without a key.
    pub fn ad_hoc_model(
        &self,
        role: &str,
        spec: &AdHocModel,
        env: &BTreeMap<String, String>,
    ) -> Result<ModelConfig, ConfigError> {
        let origin = |what: &str| format!("the requested endpoint's {what}");
        let provider =
            Provider::parse(&spec.provider).ok_or_else(|| ConfigError::UnknownProvider {
                value: spec.provider.clone(),
                origin: origin("provider"),
            })?;
        let model = spec.model.trim();
        if model.is_empty() {
            return Err(ConfigError::InvalidValue {
                value: spec.model.clone(),
                origin: origin("model"),
                reason: "the model name is empty".into(),
            });
        }
        let dotenv = match &self.dotenv_path {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => parse_dotenv(&bytes, path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.clone(),
                        source: Arc::new(source),
                    });
                }
            },
            None => BTreeMap::new(),
        };
        let flags = BTreeMap::new();
        let vars = Vars {
            flags: &flags,
            env,
            dotenv,
        };
        let (shared_url, shared_key) = match provider {
            Provider::OpenAi => (Some("OPENAI_BASE_URL"), Some("OPENAI_API_KEY")),
            Provider::LiteLlm => (Some("LITELLM_BASE_URL"), Some("LITELLM_API_KEY")),
            _ => (None, None),
        };
        let base_url = spec
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| Sourced::new(u.to_string(), Source::Flag, "base_url"))
            .or_else(|| shared_url.and_then(|n| vars.get(n)))
            .or_else(|| match provider {
                Provider::OpenAi => Some(Sourced::default_value(OPENAI_BASE_URL.to_string())),
                p => p
                    .preset_base_url()
                    .map(|u| Sourced::default_value(u.to_string())),
            })
            .ok_or_else(|| ConfigError::Incomplete {
                role: role.to_string(),
                missing: "the base URL".into(),
                hint: match shared_url {
                    Some(var) => format!("a base URL for it (or {var})"),
                    None => "a base URL for it".into(),
                },
            })?;
        let base_url = Sourced::new(
            base_url.value.trim_end_matches('/').to_string(),
            base_url.source,
            base_url.origin,
        );
        if !(base_url.value.starts_with("http://") || base_url.value.starts_with("https://")) {
            return Err(ConfigError::InvalidValue {
                value: base_url.value.clone(),
                origin: origin("base URL"),
                reason:
                    "a base URL starts with http:// or https://, e.g. http://localhost:11434/v1"
                        .into(),
            });
        }
        let api_key = match spec.api_key_env.as_deref() {
            Some(name) if !is_var_name(name) => {
                return Err(ConfigError::InvalidValue {
                    value: name.to_string(),
                    origin: origin("API key variable"),
                    reason: "a variable name is letters, digits and `_`, not starting with a digit"
                        .into(),
                });
            }
            Some(name) => Some(vars.get(name).ok_or_else(|| ConfigError::InvalidValue {
                value: name.to_string(),
                origin: origin("API key variable"),
                reason: "no such variable is set (in the environment or in .env)".into(),
            })?),
            None => shared_key.and_then(|n| vars.get(n)),
        }
        .map(|s| Sourced::new(Secret::new(s.value), s.source, s.origin));
        let timeouts = Timeouts {
            connect: Duration::from_secs_f64(DEFAULT_CONNECT_SECS),
            total: Duration::from_secs_f64(DEFAULT_TOTAL_SECS),
            idle: Duration::from_secs_f64(DEFAULT_IDLE_SECS),
            overall: Duration::from_secs_f64(DEFAULT_OVERALL_SECS),
        };
        Ok(ModelConfig {
            role: role.to_string(),
            provider: Sourced::new(provider, Source::Flag, "provider"),
            model: Sourced::new(model.to_string(), Source::Flag, "model"),
            base_url,
            api_key,
            timeouts: Sourced::default_value(timeouts),
            max_tokens: Sourced::default_value(DEFAULT_MAX_TOKENS),
            temperature: None,
            fallback: Sourced::default_value(Vec::new()),
            price: None,
            max_retries: Sourced::default_value(DEFAULT_MAX_RETRIES),
            env_prefix: None,
        })
    }
}

/// `LEADER_MODEL_PROVIDER (env)` or `ao.toml:leader.provider`.
fn describe_origin<T>(s: &Sourced<T>) -> String {
    match s.source {
        Source::AoToml => s.origin.clone(),
        Source::Default => "the built-in default".into(),
        other => format!("{} (from {other})", s.origin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "ao-config-test-{tag}-{}-{}",
                std::process::id(),
                ulid::Ulid::generate()
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempRoot(dir)
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).expect("write file");
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_is_flag_over_env_over_dotenv_over_toml() {
        let root = TempRoot::new("precedence");
        root.write(
            "ao.toml",
            "[leader]\nprovider = \"ollama\"\nmodel = \"from-toml\"\ntemperature = 0.5\n\
             base_url = \"http://toml:1/v1\"\nmax_tokens = 100\n",
        );
        root.write(
            ".env",
            "LEADER_MODEL_NAME=from-dotenv\nLEADER_MODEL_BASE_URL=http://dotenv:2/v1\n\
             LEADER_MODEL_MAX_TOKENS=200\n",
        );
        let inputs = ConfigInputs::new(&root.0).with_env(env(&[
            ("LEADER_MODEL_NAME", "from-env"),
            ("LEADER_MODEL_MAX_TOKENS", "300"),
        ]));
        let cfg = Config::load(&inputs).expect("load");
        let leader = cfg.leader().expect("leader");
        assert_eq!(leader.model.value, "from-env");
        assert_eq!(leader.model.source, Source::Env);
        assert_eq!(leader.base_url.value, "http://dotenv:2/v1");
        assert_eq!(leader.base_url.source, Source::DotEnv);
        assert_eq!(leader.temperature.as_ref().map(|t| t.value), Some(0.5));
        assert_eq!(
            leader.temperature.as_ref().map(|t| t.source),
            Some(Source::AoToml)
        );
        assert_eq!(leader.max_tokens.value, 300);
        assert_eq!(leader.provider.value, Provider::Ollama);
        assert_eq!(leader.timeouts.source, Source::Default);

        let inputs = inputs.with_flag("LEADER_MODEL_NAME", "from-flag");
        let cfg = Config::load(&inputs).expect("load");
        let leader = cfg.leader().expect("leader");
        assert_eq!(leader.model.value, "from-flag");
        assert_eq!(leader.model.source, Source::Flag);
    }

    #[test]
    fn an_ad_hoc_model_resolves_like_a_configured_role_and_reads_its_key_variable() {
        let root = TempRoot::new("adhoc");
        root.write(
            ".env",
            "LITELLM_BASE_URL=http://proxy:4000/v1/\nMY_DOTENV_KEY=sk-from-dotenv\n",
        );
        root.write(
            "ao.toml",
            "[workers.default]\nprovider = \"ollama\"\nmodel = \"m\"\nfallback = [\"x\"]\n",
        );
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        let vars = env(&[("MY_ENV_KEY", "sk-from-env"), ("LITELLM_API_KEY", "shared")]);
        let spec = |provider: &str, base: Option<&str>, key: Option<&str>| AdHocModel {
            provider: provider.into(),
            model: "qwen3-coder".into(),
            base_url: base.map(String::from),
            api_key_env: key.map(String::from),
        };

        // The shared LiteLLM variables fill what is not given; nothing of [workers.default].
        let m = cfg
            .ad_hoc_model("litellm:qwen3-coder", &spec("litellm", None, None), &vars)
            .unwrap();
        assert_eq!(m.role, "litellm:qwen3-coder");
        assert_eq!(m.base_url.value, "http://proxy:4000/v1");
        assert_eq!(m.base_url.source, Source::DotEnv);
        assert_eq!(m.api_key.as_ref().unwrap().value.expose(), "shared");
        assert!(m.fallback.value.is_empty());
        assert_eq!(m.max_tokens.value, DEFAULT_MAX_TOKENS);

        // A named variable wins, from the environment or from .env.
        let m = cfg
            .ad_hoc_model(
                "x",
                &spec("litellm", Some("http://h:1/v1/"), Some("MY_ENV_KEY")),
                &vars,
            )
            .unwrap();
        assert_eq!(m.base_url.value, "http://h:1/v1");
        assert_eq!(m.api_key.as_ref().unwrap().value.expose(), "sk-from-env");
        let m = cfg
            .ad_hoc_model("x", &spec("ollama", None, Some("MY_DOTENV_KEY")), &vars)
            .unwrap();
        assert_eq!(m.base_url.value, "http://localhost:11434/v1");
        assert_eq!(m.api_key.as_ref().unwrap().value.expose(), "sk-from-dotenv");

        // Named but unset, or not a variable name: an error, never a call without a key.
        let e = cfg
            .ad_hoc_model("x", &spec("ollama", None, Some("NOPE_KEY")), &vars)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NOPE_KEY") && e.contains("no such variable"),
            "{e}"
        );
        let e = cfg
            .ad_hoc_model("x", &spec("ollama", None, Some("A-B")), &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("variable name"), "{e}");
        let e = cfg
            .ad_hoc_model("x", &spec("gemini", None, None), &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown model provider `gemini`"), "{e}");
        let e = cfg
            .ad_hoc_model("x", &spec("openai-compatible", None, None), &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the base URL is not set"), "{e}");
        let e = cfg
            .ad_hoc_model("x", &spec("ollama", Some("localhost:1"), None), &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("http://"), "{e}");
    }

    #[test]
    fn dotenv_never_touches_process_env() {
        let root = TempRoot::new("noexport");
        let var = format!("AO_TEST_DOTENV_{}", ulid::Ulid::generate());
        root.write(".env", &format!("{var}=x\nLOG_LEVEL=debug\n"));
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        assert!(std::env::var(&var).is_err());
        let level = cfg.log_level.expect("log level");
        assert_eq!(
            (level.value.as_str(), level.source),
            ("debug", Source::DotEnv)
        );
    }

    #[test]
    fn presets_and_shared_fallback_variables() {
        let root = TempRoot::new("presets");
        for (name, url) in [
            ("ollama", "http://localhost:11434/v1"),
            ("vllm", "http://localhost:8000/v1"),
            ("lmstudio", "http://localhost:1234/v1"),
            ("llamacpp", "http://localhost:8080/v1"),
        ] {
            let e = env(&[("LEADER_MODEL_PROVIDER", name), ("LEADER_MODEL_NAME", "m")]);
            let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("load");
            let leader = cfg.leader().expect("leader");
            assert_eq!(leader.base_url.value, url);
            assert_eq!(leader.base_url.source, Source::Default);
            assert!(leader.api_key.is_none());
        }
        let e = env(&[
            ("LEADER_MODEL_PROVIDER", "litellm"),
            ("LEADER_MODEL_NAME", "m"),
            ("LITELLM_BASE_URL", "http://proxy:4000/v1/"),
            ("LITELLM_API_KEY", "sk-lite"),
            ("WORKER_MODEL_PROVIDER", "openai"),
            ("WORKER_MODEL_NAME", "gpt"),
            ("OPENAI_API_KEY", "sk-open"),
        ]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("load");
        let leader = cfg.leader().expect("leader");
        assert_eq!(leader.base_url.value, "http://proxy:4000/v1");
        assert_eq!(leader.base_url.origin, "LITELLM_BASE_URL");
        assert_eq!(
            leader.api_key.as_ref().map(|k| k.value.expose()),
            Some("sk-lite")
        );
        let worker = &cfg.workers[DEFAULT_WORKER];
        assert_eq!(worker.base_url.value, "https://api.openai.com/v1");
        assert_eq!(
            worker.api_key.as_ref().map(|k| k.value.expose()),
            Some("sk-open")
        );
    }

    #[test]
    fn unknown_provider_names_the_variable_or_file() {
        let root = TempRoot::new("unknown");
        let e = env(&[
            ("LEADER_MODEL_PROVIDER", "mock"),
            ("LEADER_MODEL_NAME", "m"),
        ]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("loads");
        let msg = cfg.leader().expect_err("error").to_string();
        assert!(msg.contains("`mock`"), "{msg}");
        assert!(msg.contains("LEADER_MODEL_PROVIDER"), "{msg}");
        assert!(msg.contains("ollama"), "{msg}");

        root.write(
            "ao.toml",
            "[workers.w]\nprovider = \"nope\"\nmodel = \"m\"\n",
        );
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("loads");
        let msg = cfg.check_models().expect_err("error").to_string();
        assert!(msg.contains("ao.toml:workers.w.provider"), "{msg}");
        assert!(cfg.workers.is_empty());
        assert!(cfg.leader().is_err());
    }

    #[test]
    fn missing_leader_names_variables_and_local_servers() {
        let root = TempRoot::new("missing");
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        let msg = cfg.leader().expect_err("missing").to_string();
        for needle in [
            "LEADER_MODEL_PROVIDER",
            "LEADER_MODEL_NAME",
            "Ollama",
            "LM Studio",
            "llama.cpp",
            "vLLM",
            "LiteLLM",
        ] {
            assert!(msg.contains(needle), "{needle} missing from: {msg}");
        }
    }

    #[test]
    fn incomplete_role_says_what_to_set() {
        let root = TempRoot::new("incomplete");
        let e = env(&[
            ("LEADER_MODEL_PROVIDER", "openai-compatible"),
            ("LEADER_MODEL_NAME", "m"),
        ]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("loads");
        let msg = cfg.leader().expect_err("error").to_string();
        assert!(msg.contains("LEADER_MODEL_BASE_URL"), "{msg}");
        let e = env(&[("LEADER_MODEL_PROVIDER", "ollama")]);
        // A half-set role does not fail the load (commands without a model still work); it is
        // reported when a model is needed, with what to set.
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("loads");
        assert!(cfg.leader_config.is_none());
        let msg = cfg.leader().expect_err("error").to_string();
        assert!(msg.contains("LEADER_MODEL_NAME"), "{msg}");
        let msg = cfg.check_models().expect_err("error").to_string();
        assert!(msg.contains("LEADER_MODEL_NAME"), "{msg}");
        assert!(
            cfg.doctor_rows()
                .iter()
                .any(|r| r.setting == "leader" && r.value == "invalid")
        );
    }

    #[test]
    fn max_tokens_defaults_and_temperature_keeps_its_digits() {
        let root = TempRoot::new("maxtokens");
        let e = env(&[
            ("LEADER_MODEL_PROVIDER", "ollama"),
            ("LEADER_MODEL_NAME", "m"),
            ("LEADER_MODEL_TEMPERATURE", "0.2"),
        ]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("loads");
        let leader = cfg.leader().expect("leader");
        assert_eq!(leader.max_tokens.value, DEFAULT_MAX_TOKENS);
        assert_eq!(leader.max_tokens.source, Source::Default);
        assert_eq!(leader.max_tokens_limit(), Some(DEFAULT_MAX_TOKENS));
        assert_eq!(leader.temperature.as_ref().map(|t| t.value), Some(0.2));
        assert!(leader.max_tokens_hint().contains("LEADER_MODEL_MAX_TOKENS"));
        root.write(
            "ao.toml",
            "[workers.w]\nprovider = \"ollama\"\nmodel = \"m\"\nmax_tokens = 0\n",
        );
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("loads");
        assert_eq!(cfg.workers["w"].max_tokens_limit(), None);
        let e = env(&[
            ("LEADER_MODEL_PROVIDER", "ollama"),
            ("LEADER_MODEL_NAME", "m"),
            ("LEADER_MODEL_TEMPERATURE", "-1"),
        ]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("loads");
        let msg = cfg.leader().expect_err("bad temperature").to_string();
        assert!(msg.contains("LEADER_MODEL_TEMPERATURE"), "{msg}");
    }

    #[test]
    fn unknown_toml_key_reports_line_and_column() {
        let root = TempRoot::new("unknownkey");
        root.write(
            "ao.toml",
            "[leader]\nprovider = \"ollama\"\nmodel = \"m\"\n  temprature = 0.2\n",
        );
        let err = Config::load(&ConfigInputs::new(&root.0)).expect_err("error");
        match &err {
            ConfigError::Toml { line, column, .. } => {
                assert_eq!((*line, *column), (4, 3), "{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("ao.toml:4:3"), "{msg}");
        assert!(msg.contains("temprature"), "{msg}");
    }

    #[test]
    fn workers_policy_and_doctor_rows_hide_secrets() {
        let root = TempRoot::new("doctor");
        root.write(
            "ao.toml",
            "[leader]\nprovider = \"litellm\"\nmodel = \"claude\"\nfallback = [\"gpt-4.1\"]\n\
             base_url = \"http://proxy/v1\"\nprice = { input = 3.0, output = 15.0 }\n\
             timeout = { connect = 2, total = 30.5 }\n\
             [workers.local]\nprovider = \"ollama\"\nmodel = \"qwen\"\n\
             [policy]\nallowed_commands = [\"cargo test\"]\nwritable = [\"src/**\"]\n",
        );
        let planted = "sk-planted-doctor-0123456789";
        let e = env(&[
            ("LEADER_MODEL_API_KEY", planted),
            ("AO_DRY_RUN", "false"),
            ("AO_STATE_DIR", "state"),
        ]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("load");
        let leader = cfg.leader().expect("leader");
        assert_eq!(leader.fallback.value, vec!["gpt-4.1".to_string()]);
        assert_eq!(leader.timeouts.value.connect, Duration::from_secs(2));
        assert_eq!(leader.timeouts.value.total, Duration::from_millis(30_500));
        assert_eq!(
            cfg.workers["local"].base_url.value,
            "http://localhost:11434/v1"
        );
        assert_eq!(cfg.policy.writable, Some(vec!["src/**".to_string()]));
        assert_eq!(
            cfg.policy_env.dry_run.as_ref().map(|s| s.value),
            Some(false)
        );
        assert_eq!(cfg.state_dir.value, root.0.join("state"));

        let rows = cfg.doctor_rows();
        let text = format!("{rows:?} {:?}", cfg);
        assert!(!text.contains(planted), "secret leaked: {text}");
        let key = rows
            .iter()
            .find(|r| r.setting == "leader.api_key")
            .expect("row");
        assert_eq!(key.value, "set (from env)");
        let wkey = rows
            .iter()
            .find(|r| r.setting == "workers.local.api_key")
            .expect("row");
        assert_eq!(wkey.value, "unset");
        let fallback = rows
            .iter()
            .find(|r| r.setting == "leader.fallback")
            .expect("row");
        assert_eq!(
            (fallback.value.as_str(), fallback.source),
            ("gpt-4.1", Some(Source::AoToml))
        );
    }

    #[test]
    fn schema_describes_roles_and_rejects_nothing_valid() {
        let schema = config_schema();
        let text = schema.to_string();
        assert!(text.contains("workers"), "{text}");
        assert!(text.contains("fallback"), "{text}");
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false)
        );
    }

    #[test]
    fn synonyms_resolve_layer_by_layer() {
        let root = TempRoot::new("synonyms");
        root.write(
            ".env",
            "LOG_LEVEL=debug\nLEADER_MODEL_API_KEY=sk-dotenv\nLEADER_MODEL_BASE_URL=http://dotenv/v1\n\
             WORKER_MODEL_PROVIDER=litellm\nWORKER_MODEL_NAME=w\nLITELLM_BASE_URL=http://dotenv-proxy/v1\n",
        );
        root.write(
            "ao.toml",
            "[leader]\nprovider = \"openai\"\nmodel = \"gpt\"\n\
             [workers.default]\napi_key = \"sk-toml\"\n",
        );
        let e = env(&[
            ("RUST_LOG", "warn"),
            ("OPENAI_API_KEY", "sk-env"),
            ("OPENAI_BASE_URL", "http://env/v1"),
            ("LITELLM_API_KEY", "sk-env-lite"),
            ("WORKER_MODEL_BASE_URL", "http://env-worker/v1"),
        ]);
        let inputs = ConfigInputs::new(&root.0).with_env(e);
        let cfg = Config::load(&inputs).expect("load");
        let level = cfg.log_level.clone().expect("level");
        assert_eq!(
            (level.value.as_str(), level.source, level.origin.as_str()),
            ("warn", Source::Env, "RUST_LOG")
        );
        // A role's own key and URL, in any layer, come before the shared OPENAI_*/LITELLM_*
        // variables (those are used only when the role's own is unset).
        let leader = cfg.leader().expect("leader");
        let key = leader.api_key.as_ref().expect("key");
        assert_eq!(
            (key.value.expose(), key.source, key.origin.as_str()),
            ("sk-dotenv", Source::DotEnv, "LEADER_MODEL_API_KEY")
        );
        assert_eq!(
            (leader.base_url.value.as_str(), leader.base_url.source),
            ("http://dotenv/v1", Source::DotEnv)
        );
        let worker = &cfg.workers[DEFAULT_WORKER];
        assert_eq!(worker.base_url.value, "http://env-worker/v1");
        let key = worker.api_key.as_ref().expect("key");
        assert_eq!(
            (key.value.expose(), key.source),
            ("sk-toml", Source::AoToml)
        );

        // Within one layer the role's own variable wins; a flag beats everything.
        let e = env(&[
            ("LOG_LEVEL", "error"),
            ("RUST_LOG", "warn"),
            ("OPENAI_API_KEY", "sk-env"),
            ("LEADER_MODEL_API_KEY", "sk-env-own"),
        ]);
        let inputs = ConfigInputs::new(&root.0)
            .with_env(e)
            .with_flag("RUST_LOG", "trace");
        let cfg = Config::load(&inputs).expect("load");
        assert_eq!(
            cfg.log_level.as_ref().map(|l| l.value.as_str()),
            Some("trace")
        );
        let key = cfg.leader().expect("leader").api_key.clone().expect("key");
        assert_eq!(key.value.expose(), "sk-env-own");

        // Nothing in the environment: .env, then ao.toml.
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        let level = cfg.log_level.clone().expect("level");
        assert_eq!(
            (level.value.as_str(), level.source),
            ("debug", Source::DotEnv)
        );
        let leader = cfg.leader().expect("leader");
        assert_eq!(
            leader
                .api_key
                .as_ref()
                .map(|k| (k.value.expose(), k.source)),
            Some(("sk-dotenv", Source::DotEnv))
        );
        let worker = &cfg.workers[DEFAULT_WORKER];
        assert_eq!(worker.base_url.value, "http://dotenv-proxy/v1");
        assert_eq!(
            worker
                .api_key
                .as_ref()
                .map(|k| (k.value.expose(), k.source)),
            Some(("sk-toml", Source::AoToml))
        );
    }

    #[test]
    fn empty_policy_variable_in_the_environment_is_not_overridden_by_dotenv() {
        let root = TempRoot::new("policy-empty");
        root.write(
            ".env",
            "AO_DRY_RUN=false\nAO_ALLOW_WRITE=true\nAO_ALLOWED_COMMANDS=rm\n\
             LEADER_MODEL_PROVIDER=ollama\nLEADER_MODEL_NAME=from-dotenv\n",
        );
        // An empty AO_DRY_RUN in the real environment is not replaced by the `.env` value: it
        // is read, and it is not a boolean.
        let e = env(&[("AO_DRY_RUN", ""), ("LEADER_MODEL_NAME", "")]);
        let err = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect_err("empty");
        let msg = err.to_string();
        assert!(
            msg.contains("AO_DRY_RUN") && msg.contains("from env"),
            "{msg}"
        );
        // An empty AO_ALLOWED_COMMANDS in the environment hides the `.env` list and leaves
        // `[policy] allowed_commands` in force.
        let e = env(&[("AO_ALLOWED_COMMANDS", " "), ("LEADER_MODEL_NAME", "")]);
        let cfg = Config::load(&ConfigInputs::new(&root.0).with_env(e)).expect("load");
        assert_eq!(cfg.policy_env.allowed_commands, None);
        // Absent from the environment: .env applies.
        let dry = cfg.policy_env.dry_run.as_ref().expect("dry");
        assert_eq!((dry.value, dry.source), (false, Source::DotEnv));
        let write = cfg.policy_env.allow_write.as_ref().expect("write");
        assert_eq!((write.value, write.source), (true, Source::DotEnv));
        assert_eq!(cfg.policy_env.mode(false).0, Mode::Apply);
        // Model variables keep empty-as-unset.
        let leader = cfg.leader().expect("leader");
        assert_eq!(
            (leader.model.value.as_str(), leader.model.source),
            ("from-dotenv", Source::DotEnv)
        );
        // An empty .env value is unset.
        root.write(".env", "AO_DRY_RUN=\n");
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        assert_eq!(cfg.policy_env, PolicyEnv::default());
        assert_eq!(cfg.policy_env.mode(false).0, Mode::DryRun);
    }

    #[test]
    fn policy_variables_are_parsed_once_at_load_and_garbage_names_the_variable() {
        let root = TempRoot::new("policy-vars");
        for (value, parsed) in [
            ("1", true),
            ("YES", true),
            ("true", true),
            ("No", false),
            ("0", false),
        ] {
            let cfg =
                Config::load(&ConfigInputs::new(&root.0).with_env(env(&[("AO_DRY_RUN", value)])))
                    .expect("load");
            assert_eq!(
                cfg.policy_env.dry_run.map(|s| s.value),
                Some(parsed),
                "{value}"
            );
        }
        root.write(".env", "AO_ALLOW_WRITE=maybe\n");
        let msg = Config::load(&ConfigInputs::new(&root.0))
            .expect_err("garbage")
            .to_string();
        assert!(
            msg.contains("AO_ALLOW_WRITE") && msg.contains("maybe") && msg.contains(".env"),
            "{msg}"
        );
        let cfg = Config::load(
            &ConfigInputs::new(&root.0)
                .with_env(env(&[("AO_ALLOW_WRITE", "1")]))
                .with_flag("AO_ALLOWED_COMMANDS", "cargo test, ,git diff"),
        )
        .expect("load");
        let cmds = cfg.policy_env.allowed_commands.expect("commands");
        assert_eq!(cmds.value, ["cargo test", "git diff"]);
        assert_eq!(cmds.source, Source::Flag);
    }

    #[test]
    fn mode_needs_the_flag_or_both_variables() {
        let with = |pairs: &[(&str, &str)]| PolicyEnv::from_vars(&env(pairs)).expect("parse");
        assert_eq!(with(&[]).mode(false).0, Mode::DryRun);
        assert_eq!(with(&[]).mode(true), (Mode::Apply, "--apply".to_string()));
        assert_eq!(with(&[("AO_DRY_RUN", "false")]).mode(false).0, Mode::DryRun);
        assert!(
            with(&[("AO_DRY_RUN", "false")])
                .mode(false)
                .1
                .contains("AO_ALLOW_WRITE")
        );
        assert_eq!(
            with(&[("AO_ALLOW_WRITE", "true")]).mode(false).0,
            Mode::DryRun
        );
        assert_eq!(
            with(&[("AO_DRY_RUN", "no"), ("AO_ALLOW_WRITE", "yes")])
                .mode(false)
                .0,
            Mode::Apply
        );
        assert_eq!(
            with(&[("AO_DRY_RUN", "true"), ("AO_ALLOW_WRITE", "true")])
                .mode(false)
                .0,
            Mode::DryRun
        );
        assert!(PolicyEnv::from_vars(&env(&[("AO_DRY_RUN", "maybe")])).is_err());
    }

    #[test]
    fn budget_table_sets_defaults_and_bad_values_name_file_line_and_key() {
        let root = TempRoot::new("budget-table");
        root.write(
            "ao.toml",
            "[budget]\nmax_llm_calls = 20\nmax_cost_usd = 1.5\n",
        );
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        assert_eq!(cfg.budget.max_llm_calls.map(|n| n.get()), Some(20));
        assert_eq!(cfg.budget.max_cost_usd, Some(1.5));
        assert_eq!(cfg.budget.max_tokens, None);
        let row = cfg
            .doctor_rows()
            .into_iter()
            .find(|r| r.setting == "budget")
            .expect("a budget row");
        assert!(row.value.contains("\"max_llm_calls\":20"), "{}", row.value);
        for (text, key) in [
            ("[budget]\nmax_cost_usd = -2.0\n", "budget.max_cost_usd"),
            ("[budget]\nmax_cost_usd = 0\n", "budget.max_cost_usd"),
            ("[budget]\nmax_llm_calls = 0\n", "budget.max_llm_calls"),
            ("[budget]\nmax_calls = 3\n", "budget.max_calls"),
        ] {
            root.write("ao.toml", text);
            let msg = Config::load(&ConfigInputs::new(&root.0))
                .expect_err(text)
                .to_string();
            assert!(
                msg.contains("ao.toml:2:") && msg.contains(&format!("`{key}`")),
                "{text:?}: {msg}"
            );
        }
    }

    #[test]
    fn policy_table_is_typed_and_a_typo_or_wrong_type_names_file_line_and_key() {
        let root = TempRoot::new("policy-typed");
        root.write(
            "ao.toml",
            "[policy]\nallowed_commands = [\"cargo test\"]\nallow_hardlinks = true\n\
             denied = [\"secrets\"]\ncommand_timeout_s = 30\n",
        );
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        assert_eq!(
            cfg.policy.allowed_commands,
            Some(vec!["cargo test".to_string()])
        );
        assert!(cfg.policy.allow_hardlinks);
        assert_eq!(cfg.policy.denied, ["secrets"]);
        assert_eq!(cfg.policy.command_timeout_s.map(|n| n.get()), Some(30));
        assert_eq!(cfg.policy.network, NetworkSetting::All(false));
        root.write(
            "ao.toml",
            "[policy]\nnetwork = [443, 8080]\nrequire_confinement = true\n",
        );
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        assert_eq!(cfg.policy.network, NetworkSetting::Ports(vec![443, 8080]));
        assert!(cfg.policy.require_confinement);
        root.write("ao.toml", "[policy]\nnetwork = true\n");
        let cfg = Config::load(&ConfigInputs::new(&root.0)).expect("load");
        assert_eq!(cfg.policy.network, NetworkSetting::All(true));
        for (text, line, key) in [
            (
                "[policy]\nwriteable = [\"src/**\"]\n",
                2,
                "policy.writeable",
            ),
            (
                "[policy]\nallowed_commands = \"cargo test\"\n",
                2,
                "policy.allowed_commands",
            ),
            (
                "[policy]\ndenied = [\n  \"a\",\n  3,\n]\n",
                4,
                "policy.denied",
            ),
            (
                "[policy]\nallow_hardlinks = \"yes\"\n",
                2,
                "policy.allow_hardlinks",
            ),
            (
                "[policy]\ncommand_timeout_s = 0\n",
                2,
                "policy.command_timeout_s",
            ),
            ("[policy]\nnetwork = \"yes\"\n", 2, "policy.network"),
            ("[policy]\nnetwork = [80, 70000]\n", 2, "policy.network"),
            ("[policy]\nmax_processes = 0\n", 2, "policy.max_processes"),
        ] {
            root.write("ao.toml", text);
            let err = Config::load(&ConfigInputs::new(&root.0)).expect_err(text);
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("ao.toml:{line}:")) && msg.contains(&format!("`{key}`")),
                "{text:?}: {msg}"
            );
        }
    }

    #[test]
    fn the_config_schema_describes_every_policy_key_with_its_type() {
        let schema = config_schema();
        let text = schema.to_string();
        let policy = &schema["$defs"]["PolicyConfig"];
        assert_eq!(policy["additionalProperties"], false, "{text}");
        for (key, ty) in [
            ("allowed_commands", "array"),
            ("read_only_commands", "array"),
            ("writable", "array"),
            ("denied", "array"),
            ("override_denied", "array"),
            ("env_passthrough", "array"),
            ("allow_hardlinks", "boolean"),
            ("command_timeout_s", "integer"),
            ("max_timeout_s", "integer"),
            ("output_cap_bytes", "integer"),
            ("max_results", "integer"),
            ("require_confinement", "boolean"),
            ("cache_dirs", "array"),
            ("read_dirs", "array"),
            ("max_cpu_s", "integer"),
            ("max_address_space_mb", "integer"),
            ("max_processes", "integer"),
            ("max_file_size_mb", "integer"),
        ] {
            let prop = &policy["properties"][key];
            assert!(
                prop.to_string().contains(&format!("\"{ty}\"")),
                "{key}: {prop}"
            );
        }
    }

    #[test]
    fn dotenv_parse_errors_never_show_the_value() {
        let root = TempRoot::new("dotenv-secret");
        let secret = "sk-planted-dotenv-secret-9f8e7d";
        for (text, line, name) in [
            (
                format!("A=1\n# comment\nOPENAI_API_KEY=\"{secret}\nB=2\n"),
                3,
                Some("OPENAI_API_KEY"),
            ),
            (
                format!("A=1\nexport LEADER_MODEL_API_KEY='{secret}\n"),
                2,
                Some("LEADER_MODEL_API_KEY"),
            ),
            (format!("A=1\n\n{secret}\n"), 3, None),
            (
                format!("A=1\nLEADER_MODEL_API_KEY={secret} \"x\n"),
                2,
                Some("LEADER_MODEL_API_KEY"),
            ),
        ] {
            root.write(".env", &text);
            let err = Config::load(&ConfigInputs::new(&root.0)).expect_err("malformed");
            let msg = err.to_string();
            assert!(!msg.contains(secret), "secret leaked: {msg}");
            assert!(
                !format!("{err:?}").contains(secret),
                "secret leaked: {err:?}"
            );
            assert!(msg.contains(".env: line "), "{msg}");
            match &err {
                ConfigError::DotEnv { line: l, .. } => assert_eq!(*l, line, "{msg}"),
                other => panic!("unexpected {other:?}"),
            }
            if let Some(name) = name {
                assert!(msg.contains(name), "{msg}");
            }
        }
        assert_eq!(dotenv_var_name("  export A_B.c = 1"), Some("A_B.c"));
        assert_eq!(dotenv_var_name("skABC123"), None);
        assert_eq!(dotenv_var_name("1A=2"), None);
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }
}
