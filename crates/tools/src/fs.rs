//! The `fs.*` tools. Synchronous: the registry runs them on the blocking pool.
//!
//! In dry-run, writes go to the run's overlay and reads look there first; in apply mode the
//! disk is written (atomically) and the overlay only records the change. Every read, write,
//! listing check and removal reaches the path the policy accepted through the descriptor held
//! on the root, never by its absolute name (see `beneath.rs`). `fs.search` searches the text
//! with secrets already redacted, so a pattern can never probe a secret's value.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use globset::GlobMatcher;
use grep_regex::RegexMatcher;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, sinks::Lossy};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::beneath::{check_regular, read_regular};
use crate::decision::Decision;
use crate::error::ToolError;
use crate::exec::truncation_marker;
use crate::policy::{Mode, ResolvedPath};
use crate::registry::{Call, ToolOutcome};

/// Files larger than this are not read whole (fs.read, fs.edit); searching streams them.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Longest line text returned by fs.search.
const MAX_MATCH_LINE_CHARS: usize = 500;
/// Larger files are searched in pieces of about this size, cut at line ends.
const SEARCH_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// A piece is extended to the next line end by at most this much; a file with a longer line is
/// not searched past it (redaction needs whole lines).
const MAX_SEARCH_LINE_BYTES: usize = 1024 * 1024;

const SIMULATED_WRITE: &str = "dry-run: recorded in the run's changeset, not written; `ao apply RUN_ID` (or running with --apply) writes it";

fn parse<T: for<'de> Deserialize<'de>>(call: &Call<'_>, args: &Value) -> Result<T, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::InvalidArgs {
        tool: call.tool.to_string(),
        errors: vec![e.to_string()],
    })
}

pub(crate) fn run(call: &Call<'_>, args: &Value) -> Result<ToolOutcome, ToolError> {
    match call.tool {
        "fs.read" => read(call, parse(call, args)?),
        "fs.list" => list(call, parse(call, args)?),
        "fs.search" => search(call, parse(call, args)?),
        "fs.write" => write(call, parse(call, args)?),
        "fs.edit" => edit(call, parse(call, args)?),
        "fs.delete" => delete(call, parse(call, args)?),
        other => Err(ToolError::UnknownTool {
            name: other.to_string(),
        }),
    }
}

/// The content of a file as this run sees it.
enum View {
    Missing,
    Text(String, &'static str),
}

fn view(call: &Call<'_>, path: &ResolvedPath) -> Result<View, ToolError> {
    if call.policy().mode() == Mode::DryRun {
        match call.ctx.overlay().lookup(&path.rel) {
            Some(None) => return Ok(View::Missing),
            Some(Some(c)) => return Ok(View::Text(c, "changeset")),
            None => {}
        }
    }
    Ok(match disk_text(call, path)? {
        Some(t) => View::Text(t, "disk"),
        None => View::Missing,
    })
}

/// Words for an error from opening a path beneath the root.
fn open_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EXDEV) => format!(
            "a part of the path is a symbolic link or leaves the root now (it changed after the policy check); nothing was done ({e})"
        ),
        _ => e.to_string(),
    }
}

/// The file's text on disk; `None` if it does not exist.
fn disk_text(call: &Call<'_>, path: &ResolvedPath) -> Result<Option<String>, ToolError> {
    let policy = call.policy();
    let file = match policy.root_dir().open_read(&path.rel) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(call.fail(Some(&path.rel), format!("cannot open: {}", open_error(&e))));
        }
    };
    let bytes = read_regular(file, MAX_FILE_BYTES, policy.allow_hardlinks())
        .map_err(|m| call.fail(Some(&path.rel), m))?;
    String::from_utf8(bytes).map(Some).map_err(|_| {
        call.fail(
            Some(&path.rel),
            "not a UTF-8 text file; the fs tools handle text only",
        )
    })
}

fn cap_text(text: &str, cap: usize) -> (String, bool) {
    if text.len() <= cap {
        return (text.to_string(), false);
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = text[..end].to_string();
    s.push_str(&truncation_marker(end as u64, text.len() as u64));
    (s, true)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

fn read(call: &Call<'_>, a: ReadArgs) -> Result<ToolOutcome, ToolError> {
    let path = match call.policy().check_read(&a.path) {
        Ok(p) => p,
        Err(reason) => return call.deny(reason, None),
    };
    call.allow(None)?;
    let (text, source) = match view(call, &path)? {
        View::Missing => {
            return Err(call.fail(
                Some(&a.path),
                "no such file; use fs.list to see what exists",
            ));
        }
        View::Text(t, s) => (t, s),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let total = lines.len();
    let start = a.offset.min(total);
    let end = match a.limit {
        Some(l) => start.saturating_add(l).min(total),
        None => total,
    };
    let selected: String = lines[start..end].concat();
    // Redact before cutting, so a cut can never leave part of a secret behind.
    let selected = call.ctx.redactor().redact_str(&selected);
    let (content, truncated) = cap_text(&selected, call.policy().limits().output_cap_bytes);
    Ok(call.outcome(
        Decision::Allowed,
        None,
        json!({
            "path": path.rel,
            "content": content,
            "offset": start,
            "lines": end - start,
            "total_lines": total,
            "truncated": truncated,
            "source": source,
        }),
    ))
}

fn build_glob(call: &Call<'_>, glob: Option<&str>) -> Result<Option<GlobMatcher>, ToolError> {
    let Some(g) = glob else { return Ok(None) };
    let g = g.trim_start_matches("./");
    let pattern = if g.contains('/') {
        g.trim_start_matches('/').to_string()
    } else {
        format!("**/{g}")
    };
    globset::GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
        .map(|g| Some(g.compile_matcher()))
        .map_err(|e| ToolError::InvalidArgs {
            tool: call.tool.to_string(),
            errors: vec![format!("invalid glob `{pattern}`: {e}")],
        })
}

/// One file found under a directory: root-relative path, kind, size.
struct Found {
    rel: String,
    kind: &'static str,
    size: u64,
}

/// Walks `dir` respecting .gitignore, skipping denied paths, yielding files and symlinks.
/// Each entry is then looked up again beneath the root without following symlinks, and its
/// kind and size come from that lookup: a directory swapped for a symlink during the walk can
/// make the walker read a listing outside the root, but none of its entries survives the
/// lookup (they do not exist beneath the root).
fn walk(call: &Call<'_>, dir: &ResolvedPath, glob: Option<&GlobMatcher>) -> Vec<Found> {
    let policy = call.ctx.policy().clone();
    let root = policy.root().to_path_buf();
    let rel_of = move |p: &Path| -> Option<String> {
        p.strip_prefix(&root)
            .ok()
            .map(|r| r.to_string_lossy().replace('\\', "/"))
    };
    let filter_rel = rel_of.clone();
    let mut builder = ignore::WalkBuilder::new(&dir.abs);
    builder
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| match filter_rel(e.path()) {
            Some(rel) => policy.denied_match(&rel).is_none(),
            None => false,
        });
    let mut found = Vec::new();
    for entry in builder.build().flatten() {
        let Some(ft) = entry.file_type() else {
            continue;
        };
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else {
            continue;
        };
        let Some(rel) = rel_of(entry.path()) else {
            continue;
        };
        if glob.is_some_and(|g| !g.is_match(&rel)) {
            continue;
        }
        let Ok(Some(meta)) = call.policy().root_dir().lstat(&rel) else {
            continue;
        };
        let kind = if meta.file_type().is_symlink() {
            "symlink"
        } else if meta.is_file() {
            kind
        } else {
            continue;
        };
        found.push(Found {
            rel,
            kind,
            size: meta.len(),
        });
    }
    found
}

fn under(dir_rel: &str, rel: &str) -> bool {
    dir_rel.is_empty() || rel == dir_rel || rel.starts_with(&format!("{dir_rel}/"))
}

/// Merges the overlay into a disk listing (dry-run): drops deleted files, adds new ones.
fn merge_overlay(
    call: &Call<'_>,
    dir: &ResolvedPath,
    glob: Option<&GlobMatcher>,
    found: &mut Vec<Found>,
) {
    if call.policy().mode() != Mode::DryRun {
        return;
    }
    for (rel, content) in call.ctx.overlay().entries() {
        if !under(&dir.rel, &rel) {
            continue;
        }
        let existing = found.iter().position(|f| f.rel == rel);
        match (content, existing) {
            (None, Some(i)) => {
                found.remove(i);
            }
            (Some(c), Some(i)) => found[i].size = c.len() as u64,
            (Some(c), None) => {
                if glob.is_none_or(|g| g.is_match(&rel)) {
                    found.push(Found {
                        rel,
                        kind: "file",
                        size: c.len() as u64,
                    });
                }
            }
            (None, None) => {}
        }
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    path: Option<String>,
    glob: Option<String>,
}

fn list(call: &Call<'_>, a: ListArgs) -> Result<ToolOutcome, ToolError> {
    let input = a.path.as_deref().unwrap_or(".");
    let dir = match call.policy().check_read(input) {
        Ok(p) => p,
        Err(reason) => return call.deny(reason, None),
    };
    let glob = build_glob(call, a.glob.as_deref())?;
    call.allow(None)?;
    let mut found = walk(call, &dir, glob.as_ref());
    merge_overlay(call, &dir, glob.as_ref(), &mut found);
    let max = call.policy().limits().max_results;
    let truncated = found.len() > max;
    let entries: Vec<Value> = found
        .iter()
        .take(max)
        .map(|f| json!({"path": f.rel, "kind": f.kind, "size": f.size}))
        .collect();
    Ok(call.outcome(
        Decision::Allowed,
        None,
        json!({"entries": entries, "truncated": truncated}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
}

fn search(call: &Call<'_>, a: SearchArgs) -> Result<ToolOutcome, ToolError> {
    let input = a.path.as_deref().unwrap_or(".");
    let dir = match call.policy().check_read(input) {
        Ok(p) => p,
        Err(reason) => return call.deny(reason, None),
    };
    let matcher = RegexMatcher::new(&a.pattern).map_err(|e| ToolError::InvalidArgs {
        tool: call.tool.to_string(),
        errors: vec![format!("invalid regular expression: {e}")],
    })?;
    let glob = build_glob(call, a.glob.as_deref())?;
    call.allow(None)?;
    let mut found = walk(call, &dir, glob.as_ref());
    merge_overlay(call, &dir, glob.as_ref(), &mut found);
    let max = call.policy().limits().max_results;
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(b'\x00'))
        .build();
    let mut hits = Hits {
        matches: Vec::new(),
        truncated: false,
        max,
    };
    let mut files_searched = 0u64;
    for f in found.iter().filter(|f| f.kind == "file") {
        if hits.full() {
            hits.truncated = true;
            break;
        }
        let overlay = if call.policy().mode() == Mode::DryRun {
            call.ctx.overlay().lookup(&f.rel)
        } else {
            None
        };
        match overlay {
            Some(Some(content)) => {
                files_searched += 1;
                let text = call.ctx.redactor().redact_str(&content);
                hits.search(&mut searcher, &matcher, &f.rel, &text, 0);
            }
            Some(None) => {}
            // Unreadable files (and files with several hard links, unless allowed) are skipped,
            // as ripgrep skips what it cannot read; the search as a whole still answers.
            None => {
                if search_disk_file(call, &mut searcher, &matcher, &f.rel, &mut hits) {
                    files_searched += 1;
                }
            }
        }
    }
    Ok(call.outcome(
        Decision::Allowed,
        None,
        json!({"matches": hits.matches, "files_searched": files_searched, "truncated": hits.truncated}),
    ))
}

/// The matches of one `fs.search`, capped.
struct Hits {
    matches: Vec<Value>,
    truncated: bool,
    max: usize,
}

impl Hits {
    fn full(&self) -> bool {
        self.matches.len() >= self.max
    }

    /// Searches `text` (already redacted) as lines `first_line + 1 …` of `rel`.
    fn search(
        &mut self,
        searcher: &mut Searcher,
        matcher: &RegexMatcher,
        rel: &str,
        text: &str,
        first_line: u64,
    ) {
        let sink = Lossy(|line: u64, found: &str| {
            if self.matches.len() >= self.max {
                self.truncated = true;
                return Ok(false);
            }
            let found = found.trim_end_matches(['\n', '\r']);
            let found: String = if found.chars().count() > MAX_MATCH_LINE_CHARS {
                let mut t: String = found.chars().take(MAX_MATCH_LINE_CHARS).collect();
                t.push_str(" [...]");
                t
            } else {
                found.to_string()
            };
            self.matches
                .push(json!({"path": rel, "line": first_line + line, "text": found}));
            Ok(true)
        });
        let _ = searcher.search_slice(matcher, text.as_bytes(), sink);
    }
}

/// Searches the file `rel` from disk, its text redacted before the pattern sees it. Returns
/// whether the file was searched.
fn search_disk_file(
    call: &Call<'_>,
    searcher: &mut Searcher,
    matcher: &RegexMatcher,
    rel: &str,
    hits: &mut Hits,
) -> bool {
    let policy = call.policy();
    let Ok(file) = policy.root_dir().open_read(rel) else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if check_regular(&meta, policy.allow_hardlinks()).is_err() {
        return false;
    }
    let redactor = call.ctx.redactor();
    if meta.len() <= MAX_FILE_BYTES {
        let mut bytes = Vec::new();
        if file.take(MAX_FILE_BYTES).read_to_end(&mut bytes).is_err() {
            return false;
        }
        let text = redactor.redact_str(&String::from_utf8_lossy(&bytes));
        hits.search(searcher, matcher, rel, &text, 0);
        return true;
    }
    // A large file, in pieces cut at line ends, each redacted whole.
    let mut reader = BufReader::new(file);
    let mut first_line = 0u64;
    loop {
        let mut piece = Vec::with_capacity(SEARCH_CHUNK_BYTES);
        let Ok(n) = reader
            .by_ref()
            .take(SEARCH_CHUNK_BYTES as u64)
            .read_to_end(&mut piece)
        else {
            return true;
        };
        if n == 0 {
            return true;
        }
        if !piece.ends_with(b"\n") {
            let mut rest = Vec::new();
            if reader
                .by_ref()
                .take(MAX_SEARCH_LINE_BYTES as u64)
                .read_until(b'\n', &mut rest)
                .is_err()
            {
                return true;
            }
            let complete = rest.ends_with(b"\n") || rest.len() < MAX_SEARCH_LINE_BYTES;
            piece.extend_from_slice(&rest);
            if !complete {
                // A line too long to redact whole: the file is not searched past it.
                return true;
            }
        }
        if piece.contains(&0) {
            return true;
        }
        let text = redactor.redact_str(&String::from_utf8_lossy(&piece));
        hits.search(searcher, matcher, rel, &text, first_line);
        if hits.full() {
            return true;
        }
        first_line += piece.iter().filter(|b| **b == b'\n').count() as u64;
    }
}

/// Common tail of the write tools: record in the overlay, and in apply mode write the disk.
fn commit(
    call: &Call<'_>,
    path: &ResolvedPath,
    before: &View,
    new_content: Option<String>,
) -> Result<ToolOutcome, ToolError> {
    let action = match (&new_content, before) {
        (None, _) => "delete",
        (Some(_), View::Missing) => "create",
        (Some(_), View::Text(..)) => "modify",
    };
    let bytes = new_content.as_ref().map(|c| c.len()).unwrap_or(0);
    // The changeset keeps the old and new content with the run; a file that holds a secret
    // would put that secret in the run store and in every patch, so it is not edited here.
    let holds_secret = |t: &str| call.ctx.redactor().redact_str(t) != t;
    let old_secret = matches!(before, View::Text(t, _) if holds_secret(t));
    if old_secret || new_content.as_deref().is_some_and(holds_secret) {
        return Err(call.fail(
            Some(&path.rel),
            "the file holds the value of a secret (an API key or a *KEY/*TOKEN/*SECRET/*PASSWORD variable); \
             ao does not change such files, because the run's changeset would store the secret; edit it by hand",
        ));
    }
    let dry = call.policy().mode() == Mode::DryRun;
    let base = || disk_text(call, path);
    if dry {
        call.ctx.overlay().record(&path.rel, new_content, base)?;
    } else {
        // Read the base before touching the disk, so the record holds the old content.
        let base_now = base()?;
        let root_dir = call.policy().root_dir();
        let result = match &new_content {
            Some(c) => root_dir.write_atomic(&path.rel, c.as_bytes()),
            None => root_dir.remove_file(&path.rel),
        };
        result
            .map_err(|e| call.fail(Some(&path.rel), format!("cannot write: {}", open_error(&e))))?;
        call.ctx
            .overlay()
            .record::<ToolError>(&path.rel, new_content, || Ok(base_now))?;
    }
    let output = json!({"path": path.rel, "action": action, "bytes": bytes, "written": !dry});
    Ok(if dry {
        call.outcome(
            Decision::Simulated,
            Some(SIMULATED_WRITE.to_string()),
            output,
        )
    } else {
        call.outcome(Decision::Allowed, None, output)
    })
}

/// The gate for the write tools: containment, `denied`, and in apply mode `writable`. Records
/// the decision (denied, simulated in dry-run, allowed in apply mode): `Ok(Err(denial))` is a
/// denial to return, `Err` a decision that could not be recorded.
fn check_write(
    call: &Call<'_>,
    input: &str,
) -> Result<Result<ResolvedPath, ToolOutcome>, ToolError> {
    let policy = call.policy();
    match policy.check_write(input, policy.tool_write_check()) {
        Err(reason) => Ok(Err(call.deny(reason, None)?)),
        Ok(p) => {
            if policy.mode() == Mode::DryRun {
                call.simulate(SIMULATED_WRITE, None)?;
            } else {
                call.allow(None)?;
            }
            Ok(Ok(p))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    content: String,
}

fn write(call: &Call<'_>, a: WriteArgs) -> Result<ToolOutcome, ToolError> {
    let path = match check_write(call, &a.path)? {
        Ok(p) => p,
        Err(denied) => return Ok(denied),
    };
    let before = view(call, &path)?;
    commit(call, &path, &before, Some(a.content))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    path: String,
    search: String,
    replace: String,
}

fn edit(call: &Call<'_>, a: EditArgs) -> Result<ToolOutcome, ToolError> {
    let path = match check_write(call, &a.path)? {
        Ok(p) => p,
        Err(denied) => return Ok(denied),
    };
    let before = view(call, &path)?;
    let View::Text(text, _) = &before else {
        return Err(call.fail(Some(&path.rel), "no such file; use fs.write to create it"));
    };
    if a.search.is_empty() {
        return Err(call.fail(
            Some(&path.rel),
            "`search` is empty; give the exact text to replace",
        ));
    }
    let count = text.matches(a.search.as_str()).count();
    if count == 0 {
        return Err(call.fail(
            Some(&path.rel),
            "the search text does not occur in the file; read the file and copy the exact text, including whitespace and line breaks",
        ));
    }
    if count > 1 {
        return Err(call.fail(
            Some(&path.rel),
            format!("the search text occurs {count} times; include more surrounding lines so it occurs exactly once"),
        ));
    }
    let new = text.replacen(a.search.as_str(), &a.replace, 1);
    commit(call, &path, &before, Some(new))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteArgs {
    path: String,
}

fn delete(call: &Call<'_>, a: DeleteArgs) -> Result<ToolOutcome, ToolError> {
    let path = match check_write(call, &a.path)? {
        Ok(p) => p,
        Err(denied) => return Ok(denied),
    };
    let before = view(call, &path)?;
    if matches!(before, View::Missing) {
        return Err(call.fail(Some(&path.rel), "no such file"));
    }
    commit(call, &path, &before, None)
}
