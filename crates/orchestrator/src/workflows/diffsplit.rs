//! Cuts a unified diff into per-file chunks of bounded size, for the `review` workflow's
//! workers: each chunk is one file's header and some of its hunks, small enough for one model
//! call, with the file's path, what happened to it, and the new-file lines it covers (so a
//! finding can be checked against them).
//!
//! Reads `git diff` output (renames, copies, mode changes, new and deleted files, binary files
//! with or without `--binary` data, `\ No newline at end of file`, C-quoted paths, mnemonic or
//! no prefixes) and plain `diff -u` output. A file larger than the bound is split at hunk
//! boundaries; a hunk larger than the bound is cut into consecutive hunks, each with a correct
//! `@@` header marked `[ao: hunk cut, part i of n]`; a line longer than the bound is cut with a
//! marker. Terminal colours (`git diff --color=always`) are removed first. So every chunk is at most [`DiffLimits::max_chunk_bytes`], and at most
//! [`DiffLimits::max_chunks`] chunks are made (files that would go beyond are listed in
//! [`DiffSplit::omitted_files`], never silently dropped).
//!
//! ```
//! use ao_orchestrator::workflows::diffsplit::{split_diff, DiffLimits, FileChange, LineRange};
//! let diff = "diff --git a/src/a.rs b/src/a.rs\nindex 1..2 100644\n--- a/src/a.rs\n+++ b/src/a.rs\n\
//!             @@ -1,2 +1,3 @@\n fn a() {}\n+fn b() {}\n fn c() {}\n";
//! let split = split_diff(diff, DiffLimits::default()).unwrap();
//! let chunk = &split.chunks[0];
//! assert_eq!((chunk.path.as_str(), chunk.change), ("src/a.rs", FileChange::Modified));
//! assert_eq!(chunk.new_ranges, vec![LineRange { start: 1, end: 3 }]);
//! ```

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The bounds of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffLimits {
    /// Bytes of one chunk's text, header included (at least 1024).
    pub max_chunk_bytes: usize,
    /// Chunks made; whole files beyond it are omitted.
    pub max_chunks: usize,
}

impl Default for DiffLimits {
    fn default() -> Self {
        DiffLimits {
            max_chunk_bytes: 16 * 1024,
            max_chunks: 64,
        }
    }
}

/// What the diff does to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileChange {
    Modified,
    Added,
    Deleted,
    Renamed,
    Copied,
}

/// Lines `start..=end` (1-based) of the new version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LineRange {
    pub start: u64,
    pub end: u64,
}

/// One piece of the diff to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiffChunk {
    /// The file's path in the new version; for a deleted file, its old path.
    pub path: String,
    /// The path before a rename or copy; null otherwise.
    pub old_path: Option<String>,
    pub change: FileChange,
    pub binary: bool,
    /// This chunk's number among the file's chunks (1-based), and how many there are.
    pub part: usize,
    pub parts: usize,
    /// The new-file lines this chunk's hunks span (context included), merged and ordered;
    /// empty for deletions, binary files and header-only changes.
    pub new_ranges: Vec<LineRange>,
    /// The file's diff header and this chunk's hunks, as unified diff text.
    pub text: String,
    /// True when a hunk in this chunk was cut or a line shortened to fit the bound.
    pub cut: bool,
}

/// The result of a split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiffSplit {
    pub chunks: Vec<DiffChunk>,
    /// Files in the diff.
    pub files: usize,
    /// Paths of the files left out because the chunk limit was reached (the first 100).
    pub omitted_files: Vec<String>,
    /// How many files were left out.
    pub omitted_count: usize,
}

/// Why a text could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("line {line} of the diff: {message}")]
    Malformed { line: usize, message: String },
    #[error(
        "the input is not a unified diff: it has no `diff --git` line and no `---`/`+++`/`@@` file header"
    )]
    NotADiff,
}

const MAX_OMITTED_LISTED: usize = 100;
/// Bytes kept of one header line (a path can be 4096 bytes long).
const MAX_HEADER_LINE: usize = 512;
/// Room kept in a piece of a cut hunk for its `@@` line (four 20-digit numbers, the marker,
/// an 80-byte section) and a trailing `\ No newline` line (cut at 64 bytes).
const HUNK_HEADER_RESERVE: usize = 304;
/// Room for the marker of a cut line.
const LINE_MARKER_RESERVE: usize = 64;

static HUNK_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$").expect("a valid pattern")
});
static BINARY_FILES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Binary files (.+) and (.+) differ$").expect("a valid pattern"));

/// Splits `text` (a unified diff) into chunks.
pub fn split_diff(text: &str, limits: DiffLimits) -> Result<DiffSplit, DiffError> {
    let limits = DiffLimits {
        max_chunk_bytes: limits.max_chunk_bytes.max(1024),
        max_chunks: limits.max_chunks.max(1),
    };
    // `git diff --color=always` (or `color.ui = always`) output: the colours are not content.
    let text = &*super::ansi::strip_ansi(text);
    let files = parse(text)?;
    if files.is_empty() {
        return if text.trim().is_empty() {
            Ok(DiffSplit::default())
        } else {
            Err(DiffError::NotADiff)
        };
    }
    let mut out = DiffSplit {
        files: files.len(),
        ..DiffSplit::default()
    };
    for file in &files {
        let chunks = chunk_file(file, limits.max_chunk_bytes);
        if out.chunks.len() + chunks.len() > limits.max_chunks {
            out.omitted_count += 1;
            if out.omitted_files.len() < MAX_OMITTED_LISTED {
                out.omitted_files.push(file.path());
            }
            continue;
        }
        out.chunks.extend(chunks);
    }
    Ok(out)
}

// --- Parsing ---------------------------------------------------------------------------------

#[derive(Debug)]
struct FileDiff<'a> {
    /// The diff line where the file's header starts.
    line: usize,
    header: Vec<String>,
    old_path: Option<String>,
    new_path: Option<String>,
    change: FileChange,
    binary: bool,
    hunks: Vec<Hunk<'a>>,
}

impl FileDiff<'_> {
    fn path(&self) -> String {
        let path = if self.change == FileChange::Deleted {
            self.old_path.as_ref().or(self.new_path.as_ref())
        } else {
            self.new_path.as_ref().or(self.old_path.as_ref())
        };
        path.cloned().unwrap_or_default()
    }
}

#[derive(Debug)]
struct Hunk<'a> {
    old_start: u64,
    old_count: u64,
    new_start: u64,
    new_count: u64,
    section: &'a str,
    lines: Vec<&'a str>,
}

/// Path prefixes of a git diff (`a/`, `b/`; mnemonic `i/`, `w/`, `c/`, `o/`; none).
#[derive(Debug, Clone, Copy)]
struct Prefixes {
    old: Option<&'static str>,
    new: Option<&'static str>,
}

enum State {
    Outside,
    Header,
    AfterHunk,
}

fn parse(text: &str) -> Result<Vec<FileDiff<'_>>, DiffError> {
    let lines: Vec<&str> = text.split('\n').collect();
    // A final newline does not start an empty last line.
    let n = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut files: Vec<FileDiff<'_>> = Vec::new();
    let mut current: Option<FileDiff<'_>> = None;
    let mut prefixes = Prefixes {
        old: None,
        new: None,
    };
    let mut state = State::Outside;
    let mut i = 0;
    while i < n {
        let line = lines[i];
        let bare = line.strip_suffix('\r').unwrap_or(line);
        let at = i + 1;
        if let Some(rest) = bare.strip_prefix("diff --git ") {
            files.extend(current.take());
            let (old, new) = git_header_paths(rest);
            prefixes = detect_prefixes(old.as_deref(), new.as_deref());
            current = Some(FileDiff {
                line: at,
                header: vec![header_line(bare)],
                old_path: old.map(|p| strip(&p, prefixes.old)),
                new_path: new.map(|p| strip(&p, prefixes.new)),
                change: FileChange::Modified,
                binary: false,
                hunks: Vec::new(),
            });
            state = State::Header;
            i += 1;
            continue;
        }
        if bare.starts_with("diff --cc ") || bare.starts_with("diff --combined ") {
            return Err(DiffError::Malformed {
                line: at,
                message: "combined diffs of merge conflicts (`diff --cc`) are not supported; \
                          review the diff against one parent (`git diff HEAD`)"
                    .into(),
            });
        }
        if bare.starts_with("@@ ") {
            let Some(file) = current
                .as_mut()
                .filter(|_| !matches!(state, State::Outside))
            else {
                return Err(DiffError::Malformed {
                    line: at,
                    message:
                        "a hunk (`@@`) with no file header (`diff --git` or `---`/`+++`) before it"
                            .into(),
                });
            };
            let (hunk, next) = parse_hunk(&lines[..n], i)?;
            file.hunks.push(hunk);
            state = State::AfterHunk;
            i = next;
            continue;
        }
        match state {
            State::Header => {
                let file = current.as_mut().expect("a file in header state");
                if header_field(file, bare, prefixes) {
                    i += 1;
                    continue;
                }
                if bare == "GIT binary patch" {
                    file.binary = true;
                    let start = i + 1;
                    let mut j = start;
                    while j < n && !lines[j].starts_with("diff --git ") {
                        j += 1;
                    }
                    // Trailing text after the data (a format-patch signature) is not counted.
                    file.header.push("GIT binary patch".into());
                    file.header.push(format!(
                        "[ao: binary patch data omitted, {} lines]",
                        j - start
                    ));
                    state = State::Outside;
                    i = j;
                    continue;
                }
                // Anything else ends the header: the file has no hunks.
                state = State::Outside;
            }
            State::AfterHunk | State::Outside => {
                if let Some(file) = plain_file_at(&lines[..n], i, at) {
                    files.extend(current.take());
                    prefixes = Prefixes {
                        old: None,
                        new: None,
                    };
                    current = Some(file);
                    state = State::Header;
                    i += 2;
                    continue;
                }
                if let Some(c) = BINARY_FILES.captures(bare) {
                    // `diff -r` reporting a binary file, outside any git header.
                    files.extend(current.take());
                    let (old, new) = plain_prefixes(diff_path(&c[1]), diff_path(&c[2]));
                    let change = match (&old, &new) {
                        (None, _) => FileChange::Added,
                        (_, None) => FileChange::Deleted,
                        _ => FileChange::Modified,
                    };
                    current = Some(FileDiff {
                        line: at,
                        header: vec![header_line(bare)],
                        old_path: old,
                        new_path: new,
                        change,
                        binary: true,
                        hunks: Vec::new(),
                    });
                }
                state = State::Outside;
            }
        }
        i += 1;
    }
    files.extend(current);
    if let Some(f) = files.iter().find(|f| f.path().is_empty()) {
        return Err(DiffError::Malformed {
            line: f.line,
            message: "this file's diff header names no path".into(),
        });
    }
    Ok(files)
}

/// Applies one extended header line of a git diff; false when it is not one.
fn header_field(file: &mut FileDiff<'_>, line: &str, prefixes: Prefixes) -> bool {
    let keep = |file: &mut FileDiff<'_>| file.header.push(header_line(line));
    if line.starts_with("old mode ")
        || line.starts_with("new mode ")
        || line.starts_with("index ")
        || line.starts_with("similarity index ")
        || line.starts_with("dissimilarity index ")
    {
        keep(file);
    } else if line.starts_with("new file mode ") {
        file.change = FileChange::Added;
        keep(file);
    } else if line.starts_with("deleted file mode ") {
        file.change = FileChange::Deleted;
        keep(file);
    } else if let Some(p) = line.strip_prefix("rename from ") {
        file.change = FileChange::Renamed;
        file.old_path = Some(unquote(p));
        keep(file);
    } else if let Some(p) = line.strip_prefix("rename to ") {
        file.change = FileChange::Renamed;
        file.new_path = Some(unquote(p));
        keep(file);
    } else if let Some(p) = line.strip_prefix("copy from ") {
        file.change = FileChange::Copied;
        file.old_path = Some(unquote(p));
        keep(file);
    } else if let Some(p) = line.strip_prefix("copy to ") {
        file.change = FileChange::Copied;
        file.new_path = Some(unquote(p));
        keep(file);
    } else if let Some(p) = line.strip_prefix("--- ") {
        match diff_path(p) {
            Some(p) => file.old_path = Some(strip(&p, prefixes.old)),
            None => file.change = FileChange::Added,
        }
        keep(file);
    } else if let Some(p) = line.strip_prefix("+++ ") {
        match diff_path(p) {
            Some(p) => file.new_path = Some(strip(&p, prefixes.new)),
            None => file.change = FileChange::Deleted,
        }
        keep(file);
    } else if BINARY_FILES.is_match(line) {
        file.binary = true;
        keep(file);
    } else {
        return false;
    }
    true
}

/// A plain `diff -u` file header: `--- old`, `+++ new`, then a hunk.
fn plain_file_at<'a>(lines: &[&'a str], i: usize, at: usize) -> Option<FileDiff<'a>> {
    let old = lines.get(i)?.strip_prefix("--- ")?;
    let new = lines.get(i + 1)?.strip_prefix("+++ ")?;
    if !lines.get(i + 2)?.starts_with("@@ ") {
        return None;
    }
    let (old, new) = (
        old.strip_suffix('\r').unwrap_or(old),
        new.strip_suffix('\r').unwrap_or(new),
    );
    let (old_path, new_path) = plain_prefixes(diff_path(old), diff_path(new));
    let change = match (&old_path, &new_path) {
        (None, _) => FileChange::Added,
        (_, None) => FileChange::Deleted,
        _ => FileChange::Modified,
    };
    Some(FileDiff {
        line: at,
        header: vec![
            header_line(&format!("--- {old}")),
            header_line(&format!("+++ {new}")),
        ],
        old_path,
        new_path,
        change,
        binary: false,
        hunks: Vec::new(),
    })
}

/// Reads the hunk whose `@@` line is `lines[i]`; returns it and the index after it.
fn parse_hunk<'a>(lines: &[&'a str], i: usize) -> Result<(Hunk<'a>, usize), DiffError> {
    let at = i + 1;
    let head = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
    let c = HUNK_HEADER
        .captures(head)
        .ok_or_else(|| DiffError::Malformed {
            line: at,
            message: format!(
                "a hunk header must read `@@ -START[,COUNT] +START[,COUNT] @@`, found `{}`",
                cut(head, 80)
            ),
        })?;
    let num = |k: usize| -> Result<u64, DiffError> {
        match c.get(k) {
            None => Ok(1),
            Some(m) => m.as_str().parse().map_err(|_| DiffError::Malformed {
                line: at,
                message: format!("number too large in the hunk header: {}", m.as_str()),
            }),
        }
    };
    let (old_start, old_count, new_start, new_count) = (num(1)?, num(2)?, num(3)?, num(4)?);
    let section = c.get(5).map_or("", |m| m.as_str());
    let (mut old_left, mut new_left) = (old_count, new_count);
    let mut j = i + 1;
    let mut body = Vec::new();
    while old_left > 0 || new_left > 0 {
        let Some(&line) = lines.get(j) else {
            return Err(DiffError::Malformed {
                line: at,
                message: format!(
                    "the hunk ends early: {old_left} old and {new_left} new lines of its header's counts are missing"
                ),
            });
        };
        let (old, new) = match line.as_bytes().first() {
            Some(b' ') | None => (1, 1),
            Some(b'\r') if line == "\r" => (1, 1),
            Some(b'-') => (1, 0),
            Some(b'+') => (0, 1),
            Some(b'\\') => (0, 0),
            _ => {
                return Err(DiffError::Malformed {
                    line: j + 1,
                    message: format!(
                        "a hunk line must start with ' ', '+', '-' or '\\', found `{}` ({old_left} old and {new_left} new lines of the hunk were still expected)",
                        cut(line, 40)
                    ),
                });
            }
        };
        if old > old_left || new > new_left {
            return Err(DiffError::Malformed {
                line: j + 1,
                message: format!(
                    "the hunk has more {} lines than its header (line {at}) says",
                    if old > old_left { "old" } else { "new" }
                ),
            });
        }
        old_left -= old;
        new_left -= new;
        body.push(line);
        j += 1;
    }
    if lines.get(j).is_some_and(|l| l.starts_with('\\')) {
        body.push(lines[j]);
        j += 1;
    }
    Ok((
        Hunk {
            old_start,
            old_count,
            new_start,
            new_count,
            section,
            lines: body,
        },
        j,
    ))
}

/// The two paths of `diff --git A B`, each still with its prefix. Quoted names are unquoted;
/// unquoted names with spaces are split where both halves name the same file, which is always
/// the case unless the file was renamed or copied (then `rename from`/`to` give the paths).
fn git_header_paths(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('"') {
        let (old, after) = take_quoted(rest);
        let after = after.trim_start();
        let new = if after.starts_with('"') {
            take_quoted(after).0
        } else {
            after.to_string()
        };
        return (Some(old), Some(new));
    }
    if let Some(pos) = rest.find(" \"") {
        let (old, new) = (&rest[..pos], &rest[pos + 1..]);
        return (Some(old.to_string()), Some(take_quoted(new).0));
    }
    let bytes = rest.as_bytes();
    if rest.len() % 2 == 1 {
        let mid = rest.len() / 2;
        if bytes[mid] == b' ' {
            let (a, b) = (&rest[..mid], &rest[mid + 1..]);
            let same = match (a.find('/'), b.find('/')) {
                (Some(x), Some(y)) if x <= 1 && y <= 1 => a[x..] == b[y..],
                _ => a == b,
            };
            if same {
                return (Some(a.to_string()), Some(b.to_string()));
            }
        }
    }
    match rest.find(" b/") {
        Some(pos) => (
            Some(rest[..pos].to_string()),
            Some(rest[pos + 1..].to_string()),
        ),
        None => (None, None),
    }
}

fn detect_prefixes(old: Option<&str>, new: Option<&str>) -> Prefixes {
    const PAIRS: [(&str, &str); 7] = [
        ("a/", "b/"),
        ("c/", "w/"),
        ("c/", "i/"),
        ("i/", "w/"),
        ("o/", "w/"),
        ("w/", "i/"),
        ("1/", "2/"),
    ];
    if let (Some(o), Some(n)) = (old, new) {
        for (po, pn) in PAIRS {
            if o.starts_with(po) && n.starts_with(pn) {
                return Prefixes {
                    old: Some(po),
                    new: Some(pn),
                };
            }
        }
    }
    Prefixes {
        old: None,
        new: None,
    }
}

/// `diff -ru a/ b/` style prefixes are dropped when both sides have them.
fn plain_prefixes(old: Option<String>, new: Option<String>) -> (Option<String>, Option<String>) {
    match (&old, &new) {
        (Some(o), Some(n)) if o.starts_with("a/") && n.starts_with("b/") => {
            (Some(o[2..].to_string()), Some(n[2..].to_string()))
        }
        _ => (old, new),
    }
}

fn strip(path: &str, prefix: Option<&str>) -> String {
    match prefix.and_then(|p| path.strip_prefix(p)) {
        Some(rest) => rest.to_string(),
        None => path.to_string(),
    }
}

/// The path of a `---`/`+++`/`Binary files` side: unquoted, without a trailing tab and what
/// follows it (git adds a tab after names with spaces, `diff -u` a timestamp); `None` for
/// `/dev/null`.
fn diff_path(side: &str) -> Option<String> {
    let side = side.strip_suffix('\r').unwrap_or(side);
    let path = if side.starts_with('"') {
        take_quoted(side).0
    } else {
        side.split('\t').next().unwrap_or(side).to_string()
    };
    (path != "/dev/null").then_some(path)
}

/// Reads a C-quoted string at the start of `s` (`"a\tb\303\251"`); returns it and the rest.
fn take_quoted(s: &str) -> (String, &str) {
    let bytes = s.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut k = 1;
    while k < bytes.len() {
        match bytes[k] {
            b'"' => {
                return (String::from_utf8_lossy(&out).into_owned(), &s[k + 1..]);
            }
            b'\\' if k + 1 < bytes.len() => {
                let e = bytes[k + 1];
                k += 2;
                match e {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'v' => out.push(11),
                    b'f' => out.push(12),
                    b'r' => out.push(b'\r'),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        let mut digits = 1;
                        while digits < 3 && k < bytes.len() && (b'0'..=b'7').contains(&bytes[k]) {
                            v = v * 8 + u32::from(bytes[k] - b'0');
                            k += 1;
                            digits += 1;
                        }
                        out.push((v & 0xff) as u8);
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                k += 1;
            }
        }
    }
    // No closing quote: take it all.
    (String::from_utf8_lossy(&out).into_owned(), "")
}

fn unquote(s: &str) -> String {
    let s = s.strip_suffix('\r').unwrap_or(s);
    if s.starts_with('"') {
        take_quoted(s).0
    } else {
        s.to_string()
    }
}

fn header_line(line: &str) -> String {
    if line.len() <= MAX_HEADER_LINE {
        return line.to_string();
    }
    format!(
        "{}[ao: {} bytes cut]",
        cut(line, MAX_HEADER_LINE),
        line.len() - cut(line, MAX_HEADER_LINE).len()
    )
}

/// The first `max` bytes of `s`, at a character boundary.
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

// --- Chunking --------------------------------------------------------------------------------

/// A hunk, or one piece of a cut hunk, ready to be placed in a chunk.
struct Unit {
    text: String,
    new_range: Option<LineRange>,
    cut: bool,
}

fn chunk_file(file: &FileDiff<'_>, max: usize) -> Vec<DiffChunk> {
    let mut header = String::new();
    for line in &file.header {
        header.push_str(line);
        header.push('\n');
    }
    // A header is a few lines; an absurd one is cut so hunks keep most of the room.
    let header_max = max / 4;
    if header.len() > header_max {
        let marker = "[ao: header cut]\n";
        let keep = cut(&header, header_max - marker.len()).to_string();
        header = format!("{keep}\n{marker}");
        if header.len() > header_max {
            header = cut(&header, header_max).to_string();
        }
    }
    let budget = max - header.len();
    let mut units: Vec<Unit> = Vec::new();
    for hunk in &file.hunks {
        units.extend(hunk_units(hunk, budget));
    }
    // Pack units into parts, in order.
    let mut parts: Vec<Vec<Unit>> = vec![Vec::new()];
    let mut used = 0;
    for unit in units {
        let last = parts.last_mut().expect("one part at least");
        if !last.is_empty() && used + unit.text.len() > budget {
            parts.push(Vec::new());
            used = 0;
        }
        used += unit.text.len();
        parts.last_mut().expect("one part at least").push(unit);
    }
    let count = parts.len();
    let path = file.path();
    let old_path = match file.change {
        FileChange::Renamed | FileChange::Copied => file.old_path.clone(),
        _ => None,
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(k, units)| {
            let mut text = header.clone();
            let mut ranges: Vec<LineRange> = Vec::new();
            let mut was_cut = false;
            for u in units {
                text.push_str(&u.text);
                was_cut |= u.cut;
                if let Some(r) = u.new_range {
                    match ranges.last_mut() {
                        Some(last) if r.start <= last.end + 1 => last.end = last.end.max(r.end),
                        _ => ranges.push(r),
                    }
                }
            }
            DiffChunk {
                path: path.clone(),
                old_path: old_path.clone(),
                change: file.change,
                binary: file.binary,
                part: k + 1,
                parts: count,
                new_ranges: ranges,
                text,
                cut: was_cut,
            }
        })
        .collect()
}

fn range_of(start: u64, count: u64) -> Option<LineRange> {
    (count > 0).then(|| LineRange {
        start,
        end: start + count - 1,
    })
}

fn hunk_header(
    old_start: u64,
    old_count: u64,
    new_start: u64,
    new_count: u64,
    tail: &str,
) -> String {
    format!("@@ -{old_start},{old_count} +{new_start},{new_count} @@{tail}\n")
}

/// One hunk as units of at most `budget` bytes: itself when it fits, else consecutive pieces
/// with recomputed headers.
fn hunk_units(hunk: &Hunk<'_>, budget: usize) -> Vec<Unit> {
    let section = cut(hunk.section, 80);
    let whole_len = hunk_header(
        hunk.old_start,
        hunk.old_count,
        hunk.new_start,
        hunk.new_count,
        section,
    )
    .len()
        + hunk.lines.iter().map(|l| l.len() + 1).sum::<usize>();
    if whole_len <= budget {
        let mut text = hunk_header(
            hunk.old_start,
            hunk.old_count,
            hunk.new_start,
            hunk.new_count,
            section,
        );
        for l in &hunk.lines {
            text.push_str(l);
            text.push('\n');
        }
        return vec![Unit {
            text,
            new_range: range_of(hunk.new_start, hunk.new_count),
            cut: false,
        }];
    }
    // Cut at line boundaries; a `\ No newline` line stays with the line before it.
    let room = budget.saturating_sub(HUNK_HEADER_RESERVE).max(64);
    let mut pieces: Vec<Vec<String>> = vec![Vec::new()];
    let mut used = 0;
    for l in &hunk.lines {
        let attach = l.starts_with('\\');
        let line = if attach {
            cut(l, 64).to_string()
        } else if l.len() + 1 > room {
            let kept = cut(l, room - LINE_MARKER_RESERVE);
            format!(
                "{kept}[ao: line cut, {} bytes omitted]",
                l.len() - kept.len()
            )
        } else {
            l.to_string()
        };
        let last = pieces.last_mut().expect("one piece at least");
        if !attach && !last.is_empty() && used + line.len() + 1 > room {
            pieces.push(Vec::new());
            used = 0;
        }
        used += line.len() + 1;
        pieces.last_mut().expect("one piece at least").push(line);
    }
    let n = pieces.len();
    // Line numbers where the next piece starts, in the old and new file.
    let mut old_next = if hunk.old_count == 0 {
        hunk.old_start + 1
    } else {
        hunk.old_start
    };
    let mut new_next = if hunk.new_count == 0 {
        hunk.new_start + 1
    } else {
        hunk.new_start
    };
    let mut units = Vec::with_capacity(n);
    for (k, piece) in pieces.into_iter().enumerate() {
        let (mut oc, mut nc) = (0u64, 0u64);
        for l in &piece {
            match l.as_bytes().first() {
                Some(b'-') => oc += 1,
                Some(b'+') => nc += 1,
                Some(b'\\') => {}
                _ => {
                    oc += 1;
                    nc += 1;
                }
            }
        }
        let os = if oc == 0 { old_next - 1 } else { old_next };
        let ns = if nc == 0 { new_next - 1 } else { new_next };
        let tail = format!(" [ao: hunk cut, part {} of {n}]{section}", k + 1);
        let mut text = hunk_header(os, oc, ns, nc, &tail);
        for l in &piece {
            text.push_str(l);
            text.push('\n');
        }
        units.push(Unit {
            text,
            new_range: range_of(new_next, nc),
            cut: true,
        });
        old_next += oc;
        new_next += nc;
    }
    units
}

#[cfg(test)]
#[path = "diffsplit_tests.rs"]
mod tests;
