//! Finds the places an error log points at: `file:line(:col)` locations in the output of
//! rustc/cargo (and clippy), tsc, eslint (stylish, unix and compact formats), pytest (and any
//! Python traceback), jest (and Node stack frames) and go (`go build`, `go vet`, `go test`,
//! panics). The `fix-error` workflow reads the files these locations name.
//!
//! It is deterministic (no model involved) and bounded: the log is read line by line in one
//! pass; each line is looked at through its first [`LogLimits::max_line_bytes`] bytes; at most
//! [`LogLimits::max_locations`] distinct locations are kept (an error displaces the latest kept
//! warning or note once the cap is reached, so the errors of a long log are not crowded out by
//! its warnings); messages are cut at [`LogLimits::max_message_chars`]. Memory is therefore
//! bounded whatever the size of the log, and time is linear in it.
//!
//! What it is not: it does not decide whether a location is inside the project (see
//! [`resolve_file`]) nor read any file.
//!
//! ```
//! use ao_orchestrator::workflows::logparse::{parse_log, Severity, Toolchain};
//! let log = "error[E0308]: mismatched types\n --> src/main.rs:4:18\n  |\n";
//! let parsed = parse_log(log);
//! let first = &parsed.locations[0];
//! assert_eq!((first.file.as_str(), first.line, first.column), ("src/main.rs", 4, Some(18)));
//! assert_eq!(first.message, "mismatched types");
//! assert_eq!((first.severity, first.toolchain), (Severity::Error, Toolchain::Rust));
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ansi::strip_ansi;

/// How serious a location is. Ordered for ranking: errors first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Secondary places: notes and help of a diagnostic, stack frames inside dependencies or
    /// the toolchain, code that only logged something.
    Note,
}

/// The tool whose output format a location was recognised in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Toolchain {
    /// rustc, cargo, clippy, Rust panics.
    Rust,
    Tsc,
    Eslint,
    /// pytest and any Python traceback.
    Pytest,
    /// jest and any Node stack frame.
    Jest,
    Go,
    /// The common `file:line:col: error: message` shape of other compilers.
    Other,
}

/// One place the log points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    /// The path as the tool printed it, without a leading `./` (see [`resolve_file`]).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, when the tool gives one.
    pub column: Option<u64>,
    pub severity: Severity,
    /// What the tool says about the place (for a multi-line diagnostic, its heading).
    pub message: String,
    /// The diagnostic's code or rule (`E0308`, `TS2322`, `no-unused-vars`), when it has one.
    pub code: Option<String>,
    pub toolchain: Toolchain,
}

impl fmt::Display for Location {
    /// `file:line` or `file:line:col`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{}:{c}", self.file, self.line),
            None => write!(f, "{}:{}", self.file, self.line),
        }
    }
}

/// The bounds of one parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Distinct locations kept; further ones are counted in [`ParsedLog::omitted`].
    pub max_locations: usize,
    /// Bytes of each line looked at (a location is near the start of its line; a minified
    /// bundle's 2 MB line is not).
    pub max_line_bytes: usize,
    /// Characters of a message kept.
    pub max_message_chars: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_locations: 200,
            max_line_bytes: 4096,
            max_message_chars: 400,
        }
    }
}

/// The result of a parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ParsedLog {
    /// Distinct locations (same file, line and column), in order of first appearance.
    pub locations: Vec<Location>,
    /// Location lines not kept because of [`LogLimits::max_locations`] (repeats of a dropped
    /// location count each time).
    pub omitted: u64,
    /// Lines read.
    pub lines: u64,
}

impl ParsedLog {
    /// The locations in the order to read them: errors, then warnings, then notes, each in
    /// order of appearance.
    pub fn ranked(&self) -> Vec<&Location> {
        let mut out: Vec<&Location> = self.locations.iter().collect();
        out.sort_by_key(|l| l.severity);
        out
    }
}

/// Parses a whole log with the default limits.
pub fn parse_log(text: &str) -> ParsedLog {
    parse_log_with(text, LogLimits::default())
}

/// Parses a whole log.
pub fn parse_log_with(text: &str, limits: LogLimits) -> ParsedLog {
    let mut parser = LogParser::new(limits);
    for line in text.split('\n') {
        parser.push_line(line);
    }
    parser.finish()
}

// ---------------------------------------------------------------------------------------------
// Patterns. `P` is a path: it may hold spaces and a Windows drive, not `:` elsewhere nor the
// characters no tool prints in a path; `EXT` is the extension every path of these formats has.

const P: &str = r#"(?:[A-Za-z]:[\\/])?[^\s:"<>|*?][^:"<>|*?\t]*?"#;
const EXT: &str = r"[A-Za-z0-9_]{1,10}";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid built-in pattern")
}

static RUST_HEADING: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?P<sev>error|warning|note|help)(?:\[(?P<code>[A-Za-z]+\d+)\])?: (?P<msg>.+)$")
});
static RUST_ARROW: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?P<kind>-->|:::)\s+(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)\s*$"));
static RUST_PANIC: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*thread '[^']*'(?: \(\d+\))? panicked at (?:'(?P<msg>.*)', )?(?P<file>.+?):(?P<line>\d+):(?P<col>\d+):?\s*$",
    )
});
static TSC_PAREN: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*(?P<file>{P}\.{EXT})\((?P<line>\d+),(?P<col>\d+)\): (?P<sev>error|warning|message) (?P<code>TS\d+): (?P<msg>.*)$"
    ))
});
static TSC_PRETTY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*(?P<file>{P}\.{EXT}):(?P<line>\d+):(?P<col>\d+) - (?P<sev>error|warning|message) (?P<code>TS\d+): (?P<msg>.*)$"
    ))
});
static PY_FILE: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"(?:^|\s)File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?"#)
});
static JS_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*at (?:(?P<func>[^()]+?) \()?(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)\)?\s*$")
});
static BABEL: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*SyntaxError: (?P<file>{P}\.{EXT}): (?P<msg>.*?) \((?P<line>\d+):(?P<col>\d+)\)\s*$"
    ))
});
static ESLINT_UNIX: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*(?P<file>{P}\.{EXT}):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*?) \[(?P<sev>Error|Warning)(?:/(?P<code>[^\]]+))?\]\s*$"
    ))
});
static ESLINT_COMPACT: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*(?P<file>{P}\.{EXT}): line (?P<line>\d+), col (?P<col>\d+), (?P<sev>Error|Warning) - (?P<msg>.*?)(?: \((?P<code>[^()\s]+)\))?\s*$"
    ))
});
static ESLINT_STYLISH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s+(?P<line>\d+):(?P<col>\d+)\s+(?P<sev>error|warning)\s+(?P<msg>.+?)(?:\s{2,}(?P<code>\S+))?\s*$",
    )
});
static STYLISH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r#"^(?:(?:[A-Za-z]:[\\/]|/)[^:*?"<>|\t]*|[^\s:*?"<>|]+)\.{EXT}$"#
    ))
});
/// A `.py` line: `tests/test_x.py:12: AssertionError`, `…:12: in test_x`, `…:3: DeprecationWarning: …`.
static PYTEST_LINE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*(?P<file>{P}\.py):(?P<line>\d+):(?: (?P<msg>(?:\D.*)?))?$"
    ))
});
static GO_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s+(?P<file>{P}\.go):(?P<line>\d+)(?: \+0x[0-9a-fA-F]+)?\s*$"
    ))
});
/// `file:line(:col): message` — go, `cargo --message-format short`, gcc-like compilers.
static GENERIC: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^\s*(?:vet: )?(?P<file>{P}\.(?P<ext>{EXT})):(?P<line>\d+)(?::(?P<col>\d+))?:(?: (?P<msg>.*))?$"
    ))
});
static SEVERITY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?P<sev>error|warning|note|help)(?:\[(?P<code>[^\]]+)\])?: (?P<msg>.*)$")
});
static PY_EXC: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?P<exc>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Iteration|Failure|Failed))(?::(?: (?P<msg>.*))?)?$",
    )
});
/// Any exception a traceback ends with (`app.errors.ConfigMissing: settings.toml`).
static PY_EXC_ANY: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?P<exc>(?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?:: (?P<msg>.*))?$"));
static PYTEST_SECTION: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:_{2,} .* _{2,}|={3,}.*={3,})$"));
static JS_ERROR: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:Uncaught )?(?P<msg>(?:[A-Z][A-Za-z]*Error|Error)(?:: .*)?)$"));
static CODE_FRAME: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:>?\s*\d+\s*\||\|)"));
static JEST_END: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:(?:PASS|FAIL)\s+\S|(?:Test Suites|Tests|Snapshots|Time):)"));
static JEST_CONSOLE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*console\.(?:log|warn|error|info|debug|trace)\s*$"));

// ---------------------------------------------------------------------------------------------

/// A parser fed one line at a time, for logs read as a stream; [`parse_log`] feeds it a string.
#[derive(Debug)]
pub struct LogParser {
    limits: LogLimits,
    /// Kept locations by first appearance; `None` where one was displaced by a later error.
    slots: Vec<Option<Location>>,
    index: HashMap<(String, u64, Option<u64>), usize>,
    live: usize,
    live_non_errors: usize,
    omitted: u64,
    lines: u64,
    // Context carried between lines.
    rust_heading: Option<(Severity, String, Option<String>)>,
    /// Inside a Rust backtrace (`stack backtrace:`), whose `at file:line:col` frames look like
    /// Node's; and the message of the panic it belongs to.
    rust_backtrace: bool,
    rust_panic: Option<String>,
    rust_panic_pending: bool,
    /// Locations whose message is the next plain line (a panic's message, `go test`'s
    /// `t.Errorf` with an empty first line).
    next_line_message: Vec<usize>,
    /// Traceback frames waiting for the exception that ends them.
    py_frames: Vec<usize>,
    /// The function of a traceback frame (`in test_add`), kept as context for its message.
    frame_func: HashMap<usize, String>,
    /// pytest frames waiting for the `E` lines or the exception line of their failure.
    pytest_frames: Vec<usize>,
    /// The message of the current (or last) block of pytest `E` lines, and the frames it fills.
    e_message: Option<String>,
    e_frames: Vec<usize>,
    in_e_block: bool,
    eslint_file: Option<String>,
    jest_heading: Option<String>,
    jest_detail: Option<String>,
    jest_awaiting_detail: bool,
    jest_console: bool,
    js_error: Option<String>,
    go_panic: Option<String>,
}

enum Added {
    New(usize),
    Known,
    Dropped,
}

impl LogParser {
    pub fn new(limits: LogLimits) -> Self {
        LogParser {
            limits: LogLimits {
                max_locations: limits.max_locations.max(1),
                max_line_bytes: limits.max_line_bytes.max(256),
                max_message_chars: limits.max_message_chars.max(16),
            },
            slots: Vec::new(),
            index: HashMap::new(),
            live: 0,
            live_non_errors: 0,
            omitted: 0,
            lines: 0,
            rust_heading: None,
            rust_backtrace: false,
            rust_panic: None,
            rust_panic_pending: false,
            next_line_message: Vec::new(),
            py_frames: Vec::new(),
            frame_func: HashMap::new(),
            pytest_frames: Vec::new(),
            e_message: None,
            e_frames: Vec::new(),
            in_e_block: false,
            eslint_file: None,
            jest_heading: None,
            jest_detail: None,
            jest_awaiting_detail: false,
            jest_console: false,
            js_error: None,
            go_panic: None,
        }
    }

    /// Reads one line (a trailing `\n` or `\r\n` is ignored; for a line holding carriage
    /// returns, only what follows the last one counts, as a terminal would show it).
    pub fn push_line(&mut self, raw: &str) {
        self.lines += 1;
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let raw = match raw.rfind('\r') {
            Some(i) => &raw[i + 1..],
            None => raw,
        };
        let raw = cut(raw, self.limits.max_line_bytes);
        let line = strip_ansi(raw);
        let was_e = self.in_e_block;
        self.in_e_block = false;
        self.process(&line, was_e);
    }

    pub fn finish(self) -> ParsedLog {
        ParsedLog {
            locations: self.slots.into_iter().flatten().collect(),
            omitted: self.omitted,
            lines: self.lines,
        }
    }

    fn process(&mut self, line: &str, was_e: bool) {
        if line.trim().is_empty() {
            self.rust_heading = None;
            self.rust_backtrace = false;
            self.eslint_file = None;
            return;
        }
        if self.context(line, was_e) {
            return;
        }
        let located = self.rust(line)
            || self.tsc(line)
            || self.python_file(line)
            || self.js_frame(line)
            || self.babel(line)
            || self.eslint(line)
            || self.pytest(line)
            || self.go_frame(line)
            || self.generic(line)
            || self.eslint_stylish(line);
        if located {
            return;
        }
        self.plain(line);
    }

    /// Lines that only change the context; true when the line is used up.
    fn context(&mut self, line: &str, was_e: bool) -> bool {
        // Cheap tests first: most lines of a long log are none of these.
        let first = line
            .trim_start()
            .as_bytes()
            .first()
            .copied()
            .unwrap_or(b' ');
        if matches!(first, b'P' | b'F' | b'T' | b'S') && JEST_END.is_match(line) {
            self.jest_heading = None;
            self.jest_detail = None;
            self.jest_awaiting_detail = false;
            self.jest_console = false;
            return true;
        }
        if let Some(title) = line.trim_start().strip_prefix("● ") {
            self.jest_heading = Some(self.cap(title));
            self.jest_detail = None;
            self.jest_awaiting_detail = true;
            self.jest_console = false;
            return true;
        }
        if line.trim() == "stack backtrace:" {
            self.rust_backtrace = true;
            return true;
        }
        if line.contains("console.") && JEST_CONSOLE.is_match(line) {
            self.jest_console = true;
            return true;
        }
        if matches!(line.as_bytes().first(), Some(b'_' | b'=')) && PYTEST_SECTION.is_match(line) {
            self.pytest_frames.clear();
            self.py_frames.clear();
            self.e_message = None;
            self.e_frames.clear();
            return true;
        }
        if matches!(line.as_bytes().first(), Some(b'e' | b'w' | b'n' | b'h'))
            && let Some(c) = RUST_HEADING.captures(line)
        {
            let sev = severity_word(&c["sev"]);
            let code = c.name("code").map(|m| m.as_str().to_string());
            self.rust_heading = Some((sev, self.cap(&c["msg"]), code));
            self.rust_backtrace = false;
            return true;
        }
        if let Some(rest) = line.strip_prefix('E')
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
            && !PY_FILE.is_match(line)
        {
            self.pytest_e_line(rest.trim(), was_e);
            return true;
        }
        false
    }

    fn rust(&mut self, line: &str) -> bool {
        if (line.contains("--> ") || line.contains("::: "))
            && let Some(c) = RUST_ARROW.captures(line)
        {
            let secondary = &c["kind"] == ":::";
            let (sev, msg, code) = match &self.rust_heading {
                Some((sev, msg, code)) => (*sev, msg.clone(), code.clone()),
                None => (Severity::Error, String::new(), None),
            };
            let sev = if secondary { Severity::Note } else { sev };
            self.add_caps(&c, sev, msg, code, Toolchain::Rust);
            return true;
        }
        if line.contains("panicked at")
            && let Some(c) = RUST_PANIC.captures(line)
        {
            match c.name("msg") {
                Some(m) => {
                    let msg = self.cap(&format!("panicked: {}", m.as_str()));
                    self.rust_panic = Some(msg.clone());
                    self.add_caps(&c, Severity::Error, msg, None, Toolchain::Rust);
                }
                None => {
                    if let Added::New(i) = self.add_caps(
                        &c,
                        Severity::Error,
                        "panicked".into(),
                        None,
                        Toolchain::Rust,
                    ) {
                        self.next_line_message.push(i);
                    }
                    self.rust_panic = Some("panicked".into());
                    self.rust_panic_pending = true;
                }
            }
            return true;
        }
        false
    }

    fn tsc(&mut self, line: &str) -> bool {
        if !line.contains(" TS") {
            return false;
        }
        let Some(c) = TSC_PAREN
            .captures(line)
            .or_else(|| TSC_PRETTY.captures(line))
        else {
            return false;
        };
        let sev = severity_word(&c["sev"]);
        let code = Some(c["code"].to_string());
        self.add_caps(&c, sev, c["msg"].to_string(), code, Toolchain::Tsc);
        true
    }

    fn python_file(&mut self, line: &str) -> bool {
        if !line.contains("File \"") {
            return false;
        }
        let Some(c) = PY_FILE.captures(line) else {
            return false;
        };
        let file = &c["file"];
        if file.starts_with('<') {
            return true; // `<frozen importlib._bootstrap>`, `<string>`: not files
        }
        let sev = frame_severity(file);
        let msg = c
            .name("func")
            .map(|f| format!("in {}", f.as_str().trim()))
            .unwrap_or_default();
        if let Added::New(i) = self.add_frame(&c, sev, msg, Toolchain::Pytest) {
            self.py_frames.push(i);
            if let Some(func) = c.name("func") {
                self.frame_func.insert(i, func.as_str().trim().to_string());
            }
        }
        true
    }

    fn js_frame(&mut self, line: &str) -> bool {
        if !line.trim_start().starts_with("at ") {
            return false;
        }
        let Some(c) = JS_FRAME.captures(line) else {
            return false;
        };
        let file = &c["file"];
        if file.starts_with("node:") || file.starts_with("internal/") || file.starts_with('<') {
            return true;
        }
        if self.rust_backtrace {
            let msg = self.rust_panic.clone().unwrap_or_default();
            self.add_frame(&c, frame_severity(file), msg, Toolchain::Rust);
            return true;
        }
        let (sev, msg) = if self.jest_console {
            (Severity::Note, "console output".to_string())
        } else {
            let msg = match (&self.jest_heading, &self.jest_detail) {
                (Some(h), Some(d)) => format!("{h}: {d}"),
                (Some(h), None) => h.clone(),
                (None, _) => self.js_error.clone().unwrap_or_default(),
            };
            (frame_severity(file), msg)
        };
        self.add_frame(&c, sev, msg, Toolchain::Jest);
        true
    }

    fn babel(&mut self, line: &str) -> bool {
        if !line.contains("SyntaxError: ") {
            return false;
        }
        let Some(c) = BABEL.captures(line) else {
            return false;
        };
        let msg = format!("SyntaxError: {}", &c["msg"]);
        self.add_caps(&c, Severity::Error, msg, None, Toolchain::Jest);
        true
    }

    fn eslint(&mut self, line: &str) -> bool {
        let c = if line.ends_with(']') {
            ESLINT_UNIX.captures(line)
        } else if line.contains(": line ") {
            ESLINT_COMPACT.captures(line)
        } else {
            None
        };
        let Some(c) = c else {
            return false;
        };
        let sev = severity_word(&c["sev"]);
        let code = c.name("code").map(|m| m.as_str().to_string());
        self.add_caps(&c, sev, c["msg"].to_string(), code, Toolchain::Eslint);
        true
    }

    fn pytest(&mut self, line: &str) -> bool {
        if !line.contains(".py:") {
            return false;
        }
        let Some(c) = PYTEST_LINE.captures(line) else {
            return false;
        };
        let msg = c.name("msg").map_or("", |m| m.as_str()).trim();
        if let Some(s) = SEVERITY_PREFIX.captures(msg) {
            // mypy and friends: `src/a.py:3: error: Incompatible types …  [assignment]`.
            let code = s.name("code").map(|m| m.as_str().to_string());
            self.add_caps(
                &c,
                severity_word(&s["sev"]),
                s["msg"].to_string(),
                code,
                Toolchain::Other,
            );
            return true;
        }
        if msg.is_empty() || msg.starts_with("in ") {
            // A traceback frame; its message comes with the failure's `E` lines.
            let sev = frame_severity(&c["file"]);
            if let Added::New(i) = self.add_frame(&c, sev, msg.to_string(), Toolchain::Pytest) {
                self.pytest_frames.push(i);
                if let Some(func) = msg.strip_prefix("in ") {
                    self.frame_func.insert(i, func.trim().to_string());
                }
            }
            return true;
        }
        let exc = msg.split(':').next().unwrap_or(msg);
        if exc.ends_with("Warning") {
            self.add_caps(
                &c,
                Severity::Warning,
                msg.to_string(),
                None,
                Toolchain::Pytest,
            );
            return true;
        }
        // The last frame of a failure: `tests/test_x.py:12: AssertionError`; the `E` lines
        // above it say what failed.
        let message = match self.e_message.take() {
            Some(e) if e.starts_with(exc) => e,
            Some(e) => format!("{exc}: {e}"),
            None => msg.to_string(),
        };
        let message = self.cap(&message);
        self.add_caps(
            &c,
            Severity::Error,
            message.clone(),
            None,
            Toolchain::Pytest,
        );
        let frames = std::mem::take(&mut self.pytest_frames);
        self.fill(&frames, &message);
        self.e_frames.clear();
        true
    }

    fn go_frame(&mut self, line: &str) -> bool {
        if !line.contains(".go:") {
            return false;
        }
        let Some(c) = GO_FRAME.captures(line) else {
            return false;
        };
        let sev = frame_severity(&c["file"]);
        let msg = self.go_panic.clone().unwrap_or_default();
        self.add_frame(&c, sev, msg, Toolchain::Go);
        true
    }

    fn generic(&mut self, line: &str) -> bool {
        if !has_colon_digit(line) {
            return false;
        }
        let Some(c) = GENERIC.captures(line) else {
            return false;
        };
        let ext = &c["ext"];
        let msg = c.name("msg").map_or("", |m| m.as_str()).trim();
        if let Some(s) = SEVERITY_PREFIX.captures(msg) {
            let toolchain = match ext {
                "rs" => Toolchain::Rust,
                "go" => Toolchain::Go,
                _ => Toolchain::Other,
            };
            let code = s.name("code").map(|m| m.as_str().to_string());
            self.add_caps(
                &c,
                severity_word(&s["sev"]),
                s["msg"].to_string(),
                code,
                toolchain,
            );
            return true;
        }
        if ext != "go" {
            return false;
        }
        // go build / vet / test: `./main.go:3:2: "os" imported and not used`,
        // `    main_test.go:12: got 5, want 4`.
        if let Added::New(i) =
            self.add_caps(&c, Severity::Error, msg.to_string(), None, Toolchain::Go)
            && msg.is_empty()
        {
            self.next_line_message.push(i);
        }
        true
    }

    fn eslint_stylish(&mut self, line: &str) -> bool {
        let Some(file) = self.eslint_file.clone() else {
            return false;
        };
        let Some(c) = ESLINT_STYLISH.captures(line) else {
            return false;
        };
        let (Some(line_no), Some(col)) = (number(&c, "line"), number(&c, "col")) else {
            return true;
        };
        let loc = Location {
            file: normalize_file(&file),
            line: line_no,
            column: Some(col),
            severity: severity_word(&c["sev"]),
            message: self.cap(&c["msg"]),
            code: c.name("code").map(|m| m.as_str().to_string()),
            toolchain: Toolchain::Eslint,
        };
        self.add(loc, true);
        true
    }

    /// A line that holds no location: an exception, a panic message, a header.
    fn plain(&mut self, line: &str) {
        let trimmed = line.trim();
        let unindented = !line.starts_with(char::is_whitespace);
        if !self.py_frames.is_empty()
            && unindented
            && (PY_EXC.is_match(trimmed) || PY_EXC_ANY.is_match(trimmed))
        {
            let frames = std::mem::take(&mut self.py_frames);
            let msg = self.cap(trimmed);
            self.fill(&frames, &msg);
            return;
        }
        if let Some(msg) = trimmed
            .strip_prefix("panic: ")
            .or_else(|| trimmed.strip_prefix("fatal error: "))
        {
            self.go_panic = Some(self.cap(&format!("panic: {msg}")));
            return;
        }
        if line.contains("Error")
            && let Some(c) = JS_ERROR.captures(line)
        {
            self.js_error = Some(self.cap(&c["msg"]));
        }
        if self.jest_awaiting_detail && !CODE_FRAME.is_match(line) {
            self.jest_detail = Some(self.cap(trimmed));
            self.jest_awaiting_detail = false;
        }
        if !self.next_line_message.is_empty() && !trimmed.starts_with("Error Trace:") {
            let targets = std::mem::take(&mut self.next_line_message);
            let msg = self.cap(trimmed);
            if std::mem::take(&mut self.rust_panic_pending) {
                self.rust_panic = Some(self.cap(&format!("panicked: {msg}")));
            }
            let max = self.limits.max_message_chars;
            for i in targets {
                if let Some(Some(loc)) = self.slots.get_mut(i) {
                    loc.message = if loc.message.is_empty() {
                        msg.clone()
                    } else {
                        cap_chars(&format!("{}: {msg}", loc.message), max)
                    };
                }
            }
        }
        if unindented && looks_like_file(trimmed) && STYLISH_HEADER.is_match(trimmed) {
            self.eslint_file = Some(trimmed.to_string());
        }
    }

    /// One pytest `E` line: the first line of a block (or its first exception line) says what
    /// failed, for the frames above it and the exception line below it.
    fn pytest_e_line(&mut self, content: &str, was_e: bool) {
        self.in_e_block = true;
        if !was_e {
            self.e_frames = std::mem::take(&mut self.pytest_frames);
            self.e_message = None;
        }
        let is_exception = PY_EXC.is_match(content);
        if !self.py_frames.is_empty() && is_exception {
            let frames = std::mem::take(&mut self.py_frames);
            let msg = self.cap(content);
            self.fill(&frames, &msg);
        }
        let better = match &self.e_message {
            None => !content.is_empty(),
            Some(current) => is_exception && !PY_EXC.is_match(current),
        };
        if better {
            let msg = self.cap(content);
            self.e_message = Some(msg.clone());
            let frames = self.e_frames.clone();
            self.fill(&frames, &msg);
        }
    }

    /// Sets the message of frames that wait for one, keeping their `in func` as context.
    fn fill(&mut self, frames: &[usize], msg: &str) {
        for &i in frames {
            if let Some(Some(loc)) = self.slots.get_mut(i) {
                loc.message = match self.frame_func.get(&i) {
                    Some(func) => format!("{msg} (in {func})"),
                    None => msg.to_string(),
                };
            }
        }
    }

    /// Adds a diagnostic: another diagnostic at the same place adds its message.
    fn add_caps(
        &mut self,
        c: &Captures<'_>,
        severity: Severity,
        message: String,
        code: Option<String>,
        toolchain: Toolchain,
    ) -> Added {
        self.add_from(c, severity, message, code, toolchain, true)
    }

    /// Adds a stack or traceback frame: the first sighting's message stays.
    fn add_frame(
        &mut self,
        c: &Captures<'_>,
        severity: Severity,
        message: String,
        toolchain: Toolchain,
    ) -> Added {
        self.add_from(c, severity, message, None, toolchain, false)
    }

    fn add_from(
        &mut self,
        c: &Captures<'_>,
        severity: Severity,
        message: String,
        code: Option<String>,
        toolchain: Toolchain,
        merge: bool,
    ) -> Added {
        let Some(line) = number(c, "line") else {
            return Added::Dropped;
        };
        let column = match c.name("col") {
            Some(m) => match m.as_str().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => return Added::Dropped,
            },
            None => None,
        };
        let loc = Location {
            file: normalize_file(&c["file"]),
            line,
            column,
            severity,
            message: self.cap(message.trim()),
            code,
            toolchain,
        };
        self.add(loc, merge)
    }

    fn add(&mut self, loc: Location, merge: bool) -> Added {
        if loc.line == 0 || loc.file.is_empty() || loc.file.len() > 4096 {
            return Added::Dropped;
        }
        let key = (loc.file.clone(), loc.line, loc.column);
        if let Some(&i) = self.index.get(&key) {
            if let Some(Some(known)) = self.slots.get_mut(i) {
                if loc.severity < known.severity {
                    if known.severity != Severity::Error && loc.severity == Severity::Error {
                        self.live_non_errors -= 1;
                    }
                    known.severity = loc.severity;
                    known.message = loc.message;
                    known.code = loc.code;
                    known.toolchain = loc.toolchain;
                } else if known.message.is_empty() {
                    known.message = loc.message;
                } else if merge && !loc.message.is_empty() && !known.message.contains(&loc.message)
                {
                    // eslint: `'console' is not defined` and `Unexpected console statement`.
                    known.message = cap_chars(
                        &format!("{}; {}", known.message, loc.message),
                        self.limits.max_message_chars,
                    );
                }
            }
            return Added::Known;
        }
        if self.live >= self.limits.max_locations {
            // Full: an error displaces the latest kept warning or note; anything else is dropped.
            let victim = (loc.severity == Severity::Error && self.live_non_errors > 0)
                .then(|| {
                    self.slots
                        .iter()
                        .rposition(|s| s.as_ref().is_some_and(|l| l.severity != Severity::Error))
                })
                .flatten();
            self.omitted += 1;
            let Some(v) = victim else {
                return Added::Dropped;
            };
            if let Some(old) = self.slots[v].take() {
                self.index.remove(&(old.file, old.line, old.column));
                self.live -= 1;
                self.live_non_errors -= 1;
            }
        }
        if loc.severity != Severity::Error {
            self.live_non_errors += 1;
        }
        self.live += 1;
        self.slots.push(Some(loc));
        let i = self.slots.len() - 1;
        self.index.insert(key, i);
        Added::New(i)
    }

    fn cap(&self, s: &str) -> String {
        cap_chars(s, self.limits.max_message_chars)
    }
}

/// `s` trimmed and cut at `max` characters (an ellipsis marks the cut).
fn cap_chars(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Whether `line` holds `:` followed by a digit, as every `file:line` does.
fn has_colon_digit(line: &str) -> bool {
    line.as_bytes()
        .windows(2)
        .any(|w| w[0] == b':' && w[1].is_ascii_digit())
}

/// Whether `line` ends with a short extension (`.jsx`), as a file name does.
fn looks_like_file(line: &str) -> bool {
    line.rfind('.')
        .is_some_and(|dot| line.len() - dot <= 11 && line.len() - dot > 1)
}

fn number(c: &Captures<'_>, name: &str) -> Option<u64> {
    c.name(name)?.as_str().parse().ok()
}

fn severity_word(word: &str) -> Severity {
    match word.to_ascii_lowercase().as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        _ => Severity::Note,
    }
}

/// Places inside dependencies or the toolchain: frames there are context, not the fix site.
const LIBRARY_MARKERS: &[&str] = &[
    "node_modules/",
    "node_modules\\",
    "site-packages/",
    "site-packages\\",
    "dist-packages/",
    "/lib/python",
    "/.cargo/registry/",
    "/.rustup/",
    "/rustc/",
    "/go/pkg/mod/",
    "/usr/local/go/src/",
    "/usr/lib/go",
    "/pkg/mod/",
];

fn frame_severity(file: &str) -> Severity {
    if LIBRARY_MARKERS.iter().any(|m| file.contains(m)) {
        Severity::Note
    } else {
        Severity::Error
    }
}

/// The path as printed, without URL schemes bundlers add and without leading `./`.
fn normalize_file(file: &str) -> String {
    let mut f = file.trim();
    for scheme in ["file://", "webpack:///", "webpack://"] {
        if let Some(rest) = f.strip_prefix(scheme) {
            f = rest;
        }
    }
    while let Some(rest) = f.strip_prefix("./").or_else(|| f.strip_prefix(".\\")) {
        f = rest;
    }
    f.to_string()
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Where a path printed in a log is in the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "match", content = "paths", rename_all = "lowercase")]
pub enum FileMatch {
    /// The path names this project file (relative to the root).
    Exact(String),
    /// The path's tail names exactly one project file (a log from another machine, a path
    /// relative to a package directory as `go test` prints it).
    Suffix(String),
    /// Several project files end with the path; the first 10, sorted.
    Ambiguous(Vec<String>),
    /// No project file matches.
    NotFound,
}

/// Maps a path printed in a log onto the project's files: `root` is the project root as an
/// absolute path, `known_files` the project's files relative to it (as `fs.list` gives them).
///
/// An absolute path under the root is that file or nothing. Another absolute path (a log from
/// another machine) matches by its longest tail that is a project file. A relative path is the
/// project file of that name, else the one project file ending with it (tools print paths
/// relative to where they ran: a package directory, a workspace member). Backslashes count as
/// separators; `..` never leads out of the project.
pub fn resolve_file(file: &str, root: &str, known_files: &[&str]) -> FileMatch {
    let known: HashSet<&str> = known_files.iter().copied().collect();
    let file = normalize_file(file).replace('\\', "/");
    let root = root.replace('\\', "/");
    let root = root.trim_end_matches('/');
    let drive = has_drive(&file);
    let parts: Vec<&str> = file
        .split('/')
        .skip(usize::from(drive))
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if file.starts_with('/') || drive {
        if let Some(rel) = file.strip_prefix(root).filter(|r| r.starts_with('/')) {
            let rel: Vec<&str> = rel
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            let joined = rel.join("/");
            return if !rel.contains(&"..") && known.contains(joined.as_str()) {
                FileMatch::Exact(joined)
            } else {
                FileMatch::NotFound
            };
        }
        let after_up = parts.iter().rposition(|c| *c == "..").map_or(0, |i| i + 1);
        for k in after_up..parts.len().saturating_sub(1) {
            let joined = parts[k..].join("/");
            if known.contains(joined.as_str()) {
                return FileMatch::Suffix(joined);
            }
        }
        return match parts.last() {
            Some(name) if after_up < parts.len() => ending_with(known_files, name),
            _ => FileMatch::NotFound,
        };
    }
    let after_up = parts.iter().rposition(|c| *c == "..").map_or(0, |i| i + 1);
    let tail = parts[after_up.min(parts.len())..].join("/");
    if tail.is_empty() {
        return FileMatch::NotFound;
    }
    if after_up == 0 && known.contains(tail.as_str()) {
        return FileMatch::Exact(tail);
    }
    ending_with(known_files, &tail)
}

/// The project files that are `tail` or end with `/tail`.
fn ending_with(known_files: &[&str], tail: &str) -> FileMatch {
    let suffix = format!("/{tail}");
    let mut hits: Vec<String> = known_files
        .iter()
        .filter(|k| **k == tail || k.ends_with(&suffix))
        .map(|k| k.to_string())
        .collect();
    hits.sort();
    hits.dedup();
    match hits.len() {
        0 => FileMatch::NotFound,
        1 => FileMatch::Suffix(hits.remove(0)),
        _ => {
            hits.truncate(10);
            FileMatch::Ambiguous(hits)
        }
    }
}

fn has_drive(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/'
}

#[cfg(test)]
#[path = "logparse_tests.rs"]
mod tests;
