//! A bounded map of a repository for a model's prompt: a compact tree of directories and files
//! with their sizes, at most [`RepoMapLimits::max_lines`] lines and
//! [`RepoMapLimits::max_bytes`] bytes whatever the size of the repository.
//!
//! The input is the list of files the `fs.list` tool returns (it walks the root respecting
//! `.gitignore` and `.git/info/exclude`, skips paths the policy denies — `.git/`, `.env`, keys,
//! the state dir — and stops at the policy's `max_results`); [`entries_from_fs_list`] reads its
//! output. The map is laid out breadth first: the top levels are shown before any deep
//! directory is opened; a directory that does not fit stays one summary line
//! (`src/ (42 files, 310 KiB)`), one with more entries than [`RepoMapLimits::max_per_dir`]
//! shows the first ones and a `… K more files` line; a directory holding only one directory is
//! shown as one line (`crates/core/src/`).
//!
//! ```
//! use ao_orchestrator::workflows::repomap::{repo_map, RepoEntry, RepoMapLimits};
//! let entries = vec![
//!     RepoEntry { path: "Cargo.toml".into(), size: 300 },
//!     RepoEntry { path: "src/main.rs".into(), size: 2048 },
//! ];
//! let map = repo_map(&entries, false, RepoMapLimits::default());
//! assert_eq!(map.text, "2 files, 2.3 KiB\nsrc/ (1 file, 2.0 KiB)\n  main.rs (2.0 KiB)\nCargo.toml (300 B)\n");
//! ```

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One file of the repository: its path relative to the root (`/`-separated) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoEntry {
    pub path: String,
    pub size: u64,
}

/// The bounds of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoMapLimits {
    /// Lines of the map, its first (summary) line included.
    pub max_lines: usize,
    /// Bytes of the map.
    pub max_bytes: usize,
    /// Entries shown for one directory before a `… K more files` line.
    pub max_per_dir: usize,
}

impl Default for RepoMapLimits {
    fn default() -> Self {
        RepoMapLimits {
            max_lines: 200,
            max_bytes: 8 * 1024,
            max_per_dir: 30,
        }
    }
}

/// A rendered map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoMap {
    pub text: String,
    /// Files in the input (after dropping duplicates and unusable paths).
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Files that have a line of their own in the map.
    pub shown_files: usize,
    /// Input paths dropped: empty, absolute, with `..`, or deeper than 128 directories.
    pub skipped: usize,
}

/// Reads the output of the `fs.list` tool (`{"entries": [{"path", "kind", "size"}],
/// "truncated"}`): the files and symlinks it lists, and whether it stopped at its limit.
pub fn entries_from_fs_list(output: &Value) -> Result<(Vec<RepoEntry>, bool), String> {
    let entries = output
        .get("entries")
        .and_then(Value::as_array)
        .ok_or("fs.list output has no `entries` list")?;
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let path = e
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("fs.list entry {i} has no `path` string"))?;
        let kind = e.get("kind").and_then(Value::as_str).unwrap_or("file");
        if kind != "file" && kind != "symlink" {
            continue;
        }
        let size = e.get("size").and_then(Value::as_u64).unwrap_or(0);
        out.push(RepoEntry {
            path: path.to_string(),
            size,
        });
    }
    let truncated = output
        .get("truncated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((out, truncated))
}

const MAX_DEPTH: usize = 128;
/// Characters of a name shown (a chain of single directories counts as one name).
const MAX_NAME_CHARS: usize = 100;
/// An upper bound of a `… K more files (size)` line without its indent.
const MARKER_BYTES: usize = 64;

#[derive(Default)]
struct Tree {
    dirs: BTreeMap<String, Tree>,
    files: BTreeMap<String, u64>,
    total_files: usize,
    total_bytes: u64,
}

impl Tree {
    /// Adds a file; false when it is already there (a duplicate entry, or a path that is
    /// also a directory).
    fn insert(&mut self, parts: &[&str], size: u64) -> bool {
        let added = match parts {
            [name] => {
                if self.files.contains_key(*name) || self.dirs.contains_key(*name) {
                    false
                } else {
                    self.files.insert((*name).to_string(), size);
                    true
                }
            }
            [dir, rest @ ..] => {
                if self.files.contains_key(*dir) {
                    false
                } else if let Some(child) = self.dirs.get_mut(*dir) {
                    child.insert(rest, size)
                } else {
                    let mut child = Tree::default();
                    let added = child.insert(rest, size);
                    self.dirs.insert((*dir).to_string(), child);
                    added
                }
            }
            [] => false,
        };
        if added {
            self.total_files += 1;
            self.total_bytes = self.total_bytes.saturating_add(size);
        }
        added
    }

    /// Merges each directory that holds exactly one directory and no file with that one.
    fn compress(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        for (mut name, mut child) in dirs {
            while child.files.is_empty() && child.dirs.len() == 1 {
                let Some((sub, grandchild)) = child.dirs.pop_first() else {
                    break;
                };
                name = format!("{name}/{sub}");
                child = grandchild;
            }
            child.compress();
            self.dirs.insert(name, child);
        }
    }
}

/// The tree as a flat arena, for the breadth-first layout.
struct Node {
    name: String,
    depth: usize,
    dirs: Vec<usize>,
    files: Vec<(String, u64)>,
    total_files: usize,
    total_bytes: u64,
    /// Children with a line of their own (dirs first, then files); `None` while collapsed.
    shown: Option<usize>,
}

fn flatten(tree: Tree, name: String, depth: usize, arena: &mut Vec<Node>) -> usize {
    let id = arena.len();
    arena.push(Node {
        name,
        depth,
        dirs: Vec::new(),
        files: tree.files.into_iter().collect(),
        total_files: tree.total_files,
        total_bytes: tree.total_bytes,
        shown: None,
    });
    let mut dirs = Vec::with_capacity(tree.dirs.len());
    for (child_name, child) in tree.dirs {
        dirs.push(flatten(child, child_name, depth + 1, arena));
    }
    arena[id].dirs = dirs;
    id
}

/// Renders the map of `entries`; `listing_truncated` says the listing itself was cut (the
/// map then says so).
pub fn repo_map(entries: &[RepoEntry], listing_truncated: bool, limits: RepoMapLimits) -> RepoMap {
    let limits = RepoMapLimits {
        max_lines: limits.max_lines.max(1),
        max_bytes: limits.max_bytes.max(128),
        max_per_dir: limits.max_per_dir.max(1),
    };
    let mut tree = Tree::default();
    let mut skipped = 0;
    for e in entries {
        match clean_parts(&e.path) {
            Some(parts) => {
                tree.insert(&parts, e.size);
            }
            None => skipped += 1,
        }
    }
    tree.compress();
    let (files, bytes) = (tree.total_files, tree.total_bytes);
    let mut arena = Vec::new();
    flatten(tree, String::new(), 0, &mut arena);

    let mut header = format!(
        "{files} {}, {}",
        plural(files, "file", "files"),
        human_size(bytes)
    );
    if listing_truncated {
        header.push_str(" (the listing stopped at its limit: more files exist)");
    }
    header.push('\n');
    layout(&mut arena, &limits, header.len());
    let mut text = header;
    let mut shown_files = 0;
    render(&arena, 0, &mut text, &mut shown_files);
    RepoMap {
        text,
        files,
        bytes,
        shown_files,
        skipped,
    }
}

/// Decides, breadth first, which directories are opened and how many of their entries shown.
fn layout(arena: &mut [Node], limits: &RepoMapLimits, header_bytes: usize) {
    let mut lines = 1;
    let mut bytes = header_bytes;
    let mut queue = VecDeque::from([0usize]);
    while let Some(id) = queue.pop_front() {
        let node = &arena[id];
        let total = node.dirs.len() + node.files.len();
        if total == 0 {
            continue;
        }
        let indent = 2 * node.depth;
        let mut shown = 0;
        let mut cost = 0;
        for k in 0..total.min(limits.max_per_dir) {
            let len = if k < node.dirs.len() {
                dir_line(&arena[node.dirs[k]], indent).len()
            } else {
                let (name, size) = &node.files[k - node.dirs.len()];
                file_line(name, *size, indent).len()
            };
            let rest = k + 1 < total;
            let (marker_lines, marker_bytes) = if rest {
                (1, indent + MARKER_BYTES)
            } else {
                (0, 0)
            };
            if lines + shown + 1 + marker_lines > limits.max_lines
                || bytes + cost + len + marker_bytes > limits.max_bytes
            {
                break;
            }
            shown += 1;
            cost += len;
        }
        if shown == 0 {
            continue;
        }
        lines += shown;
        bytes += cost;
        if shown < total {
            lines += 1;
            bytes += marker_line(arena, id, shown, indent).len();
        }
        let opened: Vec<usize> = arena[id].dirs.iter().take(shown).copied().collect();
        arena[id].shown = Some(shown);
        queue.extend(opened);
    }
}

fn render(arena: &[Node], id: usize, out: &mut String, shown_files: &mut usize) {
    let node = &arena[id];
    let Some(shown) = node.shown else {
        return;
    };
    let indent = 2 * node.depth;
    for k in 0..shown {
        if k < node.dirs.len() {
            let child = node.dirs[k];
            out.push_str(&dir_line(&arena[child], indent));
            render(arena, child, out, shown_files);
        } else {
            let (name, size) = &node.files[k - node.dirs.len()];
            out.push_str(&file_line(name, *size, indent));
            *shown_files += 1;
        }
    }
    if shown < node.dirs.len() + node.files.len() {
        out.push_str(&marker_line(arena, id, shown, indent));
    }
}

fn dir_line(node: &Node, indent: usize) -> String {
    format!(
        "{:indent$}{}/ ({} {}, {})\n",
        "",
        display_name(&node.name),
        node.total_files,
        plural(node.total_files, "file", "files"),
        human_size(node.total_bytes)
    )
}

fn file_line(name: &str, size: u64, indent: usize) -> String {
    format!(
        "{:indent$}{} ({})\n",
        "",
        display_name(name),
        human_size(size)
    )
}

/// `… K more files (size)` for the entries of directory `id` after its first `shown`.
fn marker_line(arena: &[Node], id: usize, shown: usize, indent: usize) -> String {
    let node = &arena[id];
    let mut files = 0usize;
    let mut bytes = 0u64;
    for &d in node.dirs.iter().skip(shown) {
        files += arena[d].total_files;
        bytes = bytes.saturating_add(arena[d].total_bytes);
    }
    for (_, size) in node
        .files
        .iter()
        .skip(shown.saturating_sub(node.dirs.len()))
    {
        files += 1;
        bytes = bytes.saturating_add(*size);
    }
    format!(
        "{:indent$}… {files} more {} ({})\n",
        "",
        plural(files, "file", "files"),
        human_size(bytes)
    )
}

/// The path's components, or `None` when it cannot name a file under the root.
fn clean_parts(path: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let absolute = path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":");
    if parts.is_empty() || absolute || parts.contains(&"..") || parts.len() > MAX_DEPTH {
        return None;
    }
    Some(parts)
}

/// A name as shown: control characters (a newline in a file name would forge map lines)
/// become `?`; long names are cut.
fn display_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_NAME_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        out.push('…');
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `300 B`, `2.0 KiB`, `1.5 MiB`, `3.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
#[path = "repomap_tests.rs"]
mod tests;
