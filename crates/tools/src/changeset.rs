//! Changesets: the writes of one run, as an overlay during the run and as a stored record after.
//!
//! During a run every write tool records into the run's [`Overlay`] (shared by all its tool
//! calls). In dry-run the overlay is what later reads see; in apply mode the disk is written
//! too and the overlay is only the record. [`Changeset`] is the serializable snapshot: per
//! file, the base content hash (or `None` for a new file) and the new content (or `None` for a
//! deletion). [`apply_changeset`] writes one to disk, all files or none, even across a crash
//! (see `journal.rs`).
//!
//! Only UTF-8 text files can be part of a changeset; the write tools refuse other files.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::beneath::{RootDir, Staged, TMP_PREFIX};
use crate::error::ApplyError;
use crate::journal::{self, Entry, Journal, Phase};
use crate::policy::{Policy, WriteCheck};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// One file of a changeset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path relative to the root, `/`-separated.
    pub path: String,
    /// SHA-256 (hex) of the file when the run first changed it; `None` if it did not exist.
    pub base_sha256: Option<String>,
    /// The content the hash is of, kept so the diff can be rendered later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_content: Option<String>,
    /// The new content; `None` means the file is deleted.
    pub new_content: Option<String>,
}

impl FileChange {
    /// What applying this change does.
    pub fn action(&self) -> FileAction {
        match (&self.base_sha256, &self.new_content) {
            (None, Some(_)) => FileAction::Create,
            (Some(_), None) => FileAction::Delete,
            (None, None) => FileAction::Unchanged,
            (Some(_), Some(new)) => {
                if self.base_content.as_deref() == Some(new.as_str()) {
                    FileAction::Unchanged
                } else {
                    FileAction::Modify
                }
            }
        }
    }
}

/// What a file change does on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// A new file.
    Create,
    /// New content for an existing file.
    Modify,
    /// The file is removed.
    Delete,
    /// Nothing to do (written back to its base content, or created then deleted).
    Unchanged,
}

/// The writes of one run. Serializable; stored with the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changeset {
    /// One entry per file, sorted by path.
    pub files: Vec<FileChange>,
}

impl Changeset {
    /// True when applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.action() == FileAction::Unchanged)
    }

    /// A unified diff (`git diff` format) that `git apply` accepts, relative to the root.
    pub fn to_unified_diff(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let action = f.action();
            if action == FileAction::Unchanged {
                continue;
            }
            let old = f.base_content.as_deref().unwrap_or("");
            let new = f.new_content.as_deref().unwrap_or("");
            let (ap, bp) = (git_path("a/", &f.path), git_path("b/", &f.path));
            out.push_str(&format!("diff --git {ap} {bp}\n"));
            let (a, b) = match action {
                FileAction::Create => {
                    out.push_str("new file mode 100644\n");
                    ("/dev/null".to_string(), bp)
                }
                FileAction::Delete => {
                    out.push_str("deleted file mode 100644\n");
                    (ap, "/dev/null".to_string())
                }
                FileAction::Modify | FileAction::Unchanged => (ap, bp),
            };
            if old == new {
                // An empty file created or deleted: the header lines say it all.
                continue;
            }
            let diff = similar::TextDiff::from_lines(old, new);
            let rendered = diff
                .unified_diff()
                .context_radius(3)
                .missing_newline_hint(true)
                .header(&a, &b)
                .to_string();
            out.push_str(&rendered);
            if !rendered.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// A path as git writes it in a patch: C-style quoted when it holds a control character, a
/// double quote or a backslash (a tab in a name otherwise breaks `git apply`).
fn git_path(prefix: &str, path: &str) -> String {
    let full = format!("{prefix}{path}");
    if !full
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return full;
    }
    let mut q = String::from("\"");
    for c in full.chars() {
        match c {
            '\t' => q.push_str("\\t"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    q.push_str(&format!("\\{b:03o}"));
                }
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The run's changeset in progress, shared by all tool calls of one run. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    files: Arc<Mutex<BTreeMap<String, FileChange>>>,
}

impl Overlay {
    /// An empty overlay (a new run).
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes from a stored changeset (a run continued after a checkpoint).
    pub fn from_changeset(changeset: &Changeset) -> Self {
        let files = changeset
            .files
            .iter()
            .map(|f| (f.path.clone(), f.clone()))
            .collect();
        Overlay {
            files: Arc::new(Mutex::new(files)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, FileChange>> {
        // A panic in another holder cannot leave the map half-updated (each update is one
        // insert), so a poisoned lock is still usable.
        match self.files.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A snapshot of the changeset so far.
    pub fn changeset(&self) -> Changeset {
        Changeset {
            files: self.lock().values().cloned().collect(),
        }
    }

    /// The overlay's view of `rel`: `None` if the run did not touch it, `Some(None)` if the run
    /// deleted it, `Some(Some(content))` if the run wrote it.
    pub fn lookup(&self, rel: &str) -> Option<Option<String>> {
        self.lock().get(rel).map(|f| f.new_content.clone())
    }

    /// The change the run has made to `rel` so far, if any (what to store after one write).
    pub fn file(&self, rel: &str) -> Option<FileChange> {
        self.lock().get(rel).cloned()
    }

    /// Every path the run touched with its current overlay content.
    pub fn entries(&self) -> Vec<(String, Option<String>)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.new_content.clone()))
            .collect()
    }

    /// Records a write (`Some`) or deletion (`None`) of `rel`. `base` gives the file's content
    /// before the run touched it; it is only called on the first change of a path.
    pub(crate) fn record<E>(
        &self,
        rel: &str,
        new_content: Option<String>,
        base: impl FnOnce() -> Result<Option<String>, E>,
    ) -> Result<(), E> {
        let mut files = self.lock();
        if let Some(entry) = files.get_mut(rel) {
            entry.new_content = new_content;
            return Ok(());
        }
        let base = base()?;
        files.insert(
            rel.to_string(),
            FileChange {
                path: rel.to_string(),
                base_sha256: base.as_deref().map(|b| sha256_hex(b.as_bytes())),
                base_content: base,
                new_content,
            },
        );
        Ok(())
    }
}

/// The result of checking or applying one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileApplyStatus {
    /// Path relative to the root.
    pub path: String,
    /// What applying does to it.
    pub action: FileAction,
    /// Why it cannot be applied, if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The file already holds the change (the changeset was applied before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_applied: bool,
}

/// What [`apply_changeset`] did or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// `--check`: nothing was written.
    pub check: bool,
    /// The files were written.
    pub applied: bool,
    /// Per file, in path order.
    pub files: Vec<FileApplyStatus>,
}

impl ApplyReport {
    /// True when at least one file has a problem, so nothing was (or would be) written.
    pub fn is_refused(&self) -> bool {
        self.files.iter().any(|f| f.problem.is_some())
    }

    /// True when every file the changeset changes already holds its change: the changeset was
    /// applied before, and there is nothing left to do.
    pub fn is_already_applied(&self) -> bool {
        let changed: Vec<&FileApplyStatus> = self
            .files
            .iter()
            .filter(|f| f.action != FileAction::Unchanged)
            .collect();
        !changed.is_empty() && changed.iter().all(|f| f.already_applied)
    }
}

enum Current {
    Missing,
    File(Vec<u8>),
}

fn read_current(root: &RootDir, rel: &str) -> Result<Current, String> {
    let mut file = match root.open_read(rel) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Current::Missing),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect: {e}"))?;
    if meta.is_dir() {
        return Err("is a directory".to_string());
    }
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(Current::File(bytes))
}

/// The directories (root-relative, parents first) that writing `rel` would create.
fn missing_dirs(root: &RootDir, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = rel.split('/').collect();
    for i in 1..parts.len() {
        let dir = parts[..i].join("/");
        if !matches!(root.lstat(&dir), Ok(Some(_))) {
            out.push(dir);
        }
    }
    out
}

/// Applies `changeset` under `policy`: all files or none.
///
/// Refuses (writing nothing, `report.is_refused()`) when a file's current content differs
/// from its base hash, or a path is outside the root, denied, not `writable` or a file with
/// several hard links (the `writable` globs are checked whatever the policy's mode: the caller
/// of this function is the explicit opt-in). With `check`, reports and writes nothing.
///
/// The write is journaled under the policy's state dir: a crash part-way is finished or undone
/// by the next policy built for that state dir, and an I/O error part-way restores the files
/// already written. Only one apply runs at a time per state dir.
pub fn apply_changeset(
    changeset: &Changeset,
    policy: &Policy,
    check: bool,
) -> Result<ApplyReport, ApplyError> {
    struct Planned {
        rel: String,
        new: Option<String>,
        original: Option<Vec<u8>>,
    }
    let root = policy.root_dir();
    let mut statuses = Vec::new();
    let mut planned = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut files: Vec<&FileChange> = changeset.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in files {
        let action = f.action();
        let mut status = FileApplyStatus {
            path: f.path.clone(),
            action,
            problem: None,
            already_applied: false,
        };
        if action == FileAction::Unchanged {
            statuses.push(status);
            continue;
        }
        let resolved = match policy.check_write(&f.path, WriteCheck::DeniedAndWritable) {
            Ok(r) => r,
            Err(reason) => {
                status.problem = Some(reason);
                statuses.push(status);
                continue;
            }
        };
        match read_current(root, &resolved.rel) {
            Err(e) => status.problem = Some(e),
            Ok(current) => {
                let (found, original) = match current {
                    Current::Missing => (None, None),
                    Current::File(bytes) => (Some(sha256_hex(&bytes)), Some(bytes)),
                };
                let wanted = f.new_content.as_ref().map(|c| sha256_hex(c.as_bytes()));
                if found != f.base_sha256 && found == wanted {
                    status.already_applied = true;
                    status.problem =
                        Some("already applied: the file already holds the run's change".into());
                } else if found != f.base_sha256 {
                    status.problem = Some(match (&f.base_sha256, &found) {
                        (None, Some(_)) => {
                            "the file was created since the run; re-run the workflow".to_string()
                        }
                        (Some(_), None) => {
                            "the file was deleted since the run read it; re-run the workflow"
                                .to_string()
                        }
                        _ => "the file changed since the run read it (hash mismatch); re-run the workflow".to_string(),
                    });
                } else if !seen.insert(resolved.rel.clone()) {
                    status.problem = Some(format!(
                        "another path of the changeset is the same file (`{}`)",
                        resolved.rel
                    ));
                } else {
                    planned.push(Planned {
                        rel: resolved.rel,
                        new: f.new_content.clone(),
                        original,
                    });
                }
            }
        }
        statuses.push(status);
    }
    let mut report = ApplyReport {
        check,
        applied: false,
        files: statuses,
    };
    if check || report.is_refused() {
        return Ok(report);
    }

    let io_error = |path: &str, message: String| ApplyError::Io {
        path: path.to_string(),
        message,
        rollback_failures: Vec::new(),
    };
    let lock = journal::lock(policy.state_dir()).map_err(ApplyError::Journal)?;

    // The journal first, naming every temporary file before it exists.
    let tag = crate::beneath::fresh_tmp_name();
    let tag = tag.trim_start_matches(TMP_PREFIX);
    let mut created_dirs: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        if p.new.is_some() {
            for d in missing_dirs(root, &p.rel) {
                if !created_dirs.contains(&d) {
                    created_dirs.push(d);
                }
            }
        }
        entries.push(Entry {
            path: p.rel.clone(),
            tmp: p.new.as_ref().map(|_| format!("{TMP_PREFIX}{tag}-{i}")),
            base_sha256: p.original.as_deref().map(sha256_hex),
            new_sha256: p.new.as_deref().map(|c| sha256_hex(c.as_bytes())),
        });
    }
    created_dirs.sort_by_key(|d| d.matches('/').count());
    let mut record = Journal {
        version: 1,
        root: policy.root().to_path_buf(),
        phase: Phase::Staging,
        created_dirs,
        entries,
    };
    let undo_staging = |record: &Journal| {
        let _ = journal::remove_created_dirs(root, &record.created_dirs);
        let _ = lock.clear();
    };
    lock.write(&record)
        .map_err(|e| ApplyError::Journal(format!("cannot write the apply journal: {e}")))?;

    // Stage every new content, so most failures happen before anything is renamed. A staged
    // file that is dropped (on an error here) is removed.
    let mut staged: Vec<Option<Staged>> = Vec::new();
    for (p, e) in planned.iter().zip(&record.entries) {
        let tmp = match (&p.new, &e.tmp) {
            (Some(content), Some(tmp)) => {
                match root.stage(&p.rel, content.as_bytes(), Some(tmp), false) {
                    Ok(s) => Some(s),
                    Err(err) => {
                        drop(staged);
                        undo_staging(&record);
                        return Err(io_error(&p.rel, err.to_string()));
                    }
                }
            }
            _ => None,
        };
        staged.push(tmp);
    }
    // Every new content is on disk before the journal says the apply may roll forward.
    if let Err(e) = root.sync_all() {
        drop(staged);
        undo_staging(&record);
        return Err(io_error(
            "(the project's file system)",
            format!("cannot sync: {e}"),
        ));
    }
    record.phase = Phase::Committing;
    if let Err(e) = lock.write(&record) {
        drop(staged);
        undo_staging(&record);
        return Err(ApplyError::Journal(format!(
            "cannot write the apply journal: {e}"
        )));
    }

    let mut done: Vec<&Planned> = Vec::new();
    // One sync per directory at the end, not one per file.
    let mut dirs_to_sync: BTreeMap<String, crate::beneath::Dir> = BTreeMap::new();
    let mut staged = staged.into_iter();
    for p in &planned {
        let result = match staged.next().flatten() {
            Some(t) => t.rename_into_place().map(|dir| {
                let parent = p.rel.rsplit_once('/').map_or("", |(d, _)| d);
                dirs_to_sync.entry(parent.to_string()).or_insert(dir);
            }),
            None => root.remove_file(&p.rel),
        };
        if let Err(e) = result {
            let mut rollback_failures = Vec::new();
            for d in done.iter().rev() {
                let r = match &d.original {
                    Some(bytes) => root.write_atomic(&d.rel, bytes),
                    None => root.remove_file(&d.rel),
                };
                if r.is_err() {
                    rollback_failures.push(d.rel.clone());
                }
            }
            // The staged files not yet renamed are removed as they drop here.
            drop(staged);
            undo_staging(&record);
            return Err(ApplyError::Io {
                path: p.rel.clone(),
                message: e.to_string(),
                rollback_failures,
            });
        }
        done.push(p);
    }
    for dir in dirs_to_sync.into_values() {
        let _ = dir.sync();
    }
    lock.clear()
        .map_err(|e| ApplyError::Journal(format!("cannot remove the apply journal: {e}")))?;
    report.applied = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_known_value() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn overlay_keeps_the_first_base() {
        let o = Overlay::new();
        o.record::<()>("a.txt", Some("one".into()), || Ok(Some("base".into())))
            .ok();
        o.record::<()>("a.txt", Some("two".into()), || Ok(Some("other".into())))
            .ok();
        let cs = o.changeset();
        assert_eq!(cs.files.len(), 1);
        assert_eq!(cs.files[0].base_content.as_deref(), Some("base"));
        assert_eq!(cs.files[0].new_content.as_deref(), Some("two"));
        assert_eq!(o.lookup("a.txt"), Some(Some("two".to_string())));
        assert_eq!(o.lookup("b.txt"), None);
    }

    #[test]
    fn diff_marks_new_deleted_and_missing_newline() {
        let cs = Changeset {
            files: vec![
                FileChange {
                    path: "gone.txt".into(),
                    base_sha256: Some(sha256_hex(b"x\n")),
                    base_content: Some("x\n".into()),
                    new_content: None,
                },
                FileChange {
                    path: "new.txt".into(),
                    base_sha256: None,
                    base_content: None,
                    new_content: Some("a\nb".into()),
                },
            ],
        };
        let d = cs.to_unified_diff();
        assert!(
            d.contains(
                "deleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
            ),
            "{d}"
        );
        assert!(d.contains("new file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n\\ No newline at end of file\n"), "{d}");
    }
}
