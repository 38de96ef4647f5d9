//! Changesets: the writes of one run, as an overlay during the run and as a stored record after.
//!
//! During a run every write tool records into the run's [`Overlay`] (shared by all its tool
//! calls). In dry-run the overlay is what later reads see; in apply mode the disk is written
//! too and the overlay is only the record. [`Changeset`] is the serializable snapshot: per
//! file, the base content hash (or `None` for a new file) and the new content (or `None` for a
//! deletion). [`apply_changeset`] writes one to disk, all files or none.
//!
//! Only UTF-8 text files can be part of a changeset; the write tools refuse other files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApplyError;
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
}

enum Current {
    Missing,
    File(Vec<u8>),
}

fn read_current(path: &Path) -> Result<Current, String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Current::Missing),
        Err(e) => Err(format!("cannot inspect: {e}")),
        Ok(m) if m.is_dir() => Err("is a directory".to_string()),
        Ok(_) => std::fs::read(path)
            .map(Current::File)
            .map_err(|e| format!("cannot read: {e}")),
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, then a rename.
/// Keeps the permissions of an existing file.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = stage(path, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn stage(path: &Path, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let parent = path.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no parent")
    })?;
    std::fs::create_dir_all(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".ao-tmp-")
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let perms = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        }
    };
    std::fs::set_permissions(tmp.path(), perms)?;
    Ok(tmp)
}

/// Applies `changeset` under `policy`: all files or none.
///
/// Refuses (writing nothing, `report.is_refused()`) when a file's current content differs
/// from its base hash, or a path is outside the root, denied or not `writable` (the
/// `writable` globs are checked whatever the policy's mode: the caller of this function is
/// the explicit opt-in). With `check`, reports and writes nothing.
pub fn apply_changeset(
    changeset: &Changeset,
    policy: &Policy,
    check: bool,
) -> Result<ApplyReport, ApplyError> {
    struct Planned {
        abs: std::path::PathBuf,
        rel: String,
        new: Option<String>,
        original: Option<Vec<u8>>,
    }
    let mut statuses = Vec::new();
    let mut planned = Vec::new();
    let mut files: Vec<&FileChange> = changeset.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in files {
        let action = f.action();
        let mut status = FileApplyStatus {
            path: f.path.clone(),
            action,
            problem: None,
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
        match read_current(&resolved.abs) {
            Err(e) => status.problem = Some(e),
            Ok(current) => {
                let (found, original) = match current {
                    Current::Missing => (None, None),
                    Current::File(bytes) => (Some(sha256_hex(&bytes)), Some(bytes)),
                };
                if found != f.base_sha256 {
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
                } else {
                    planned.push(Planned {
                        abs: resolved.abs,
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

    // Stage every new content first, so most failures happen before anything is renamed.
    let mut staged = Vec::new();
    for p in &planned {
        let tmp = match &p.new {
            Some(content) => {
                Some(
                    stage(&p.abs, content.as_bytes()).map_err(|e| ApplyError::Io {
                        path: p.rel.clone(),
                        message: e.to_string(),
                        rollback_failures: Vec::new(),
                    })?,
                )
            }
            None => None,
        };
        staged.push(tmp);
    }
    let mut done: Vec<&Planned> = Vec::new();
    for (p, tmp) in planned.iter().zip(staged) {
        let result = match tmp {
            Some(t) => t.persist(&p.abs).map(|_| ()).map_err(|e| e.error),
            None => std::fs::remove_file(&p.abs),
        };
        if let Err(e) = result {
            let mut rollback_failures = Vec::new();
            for d in done.iter().rev() {
                let r = match &d.original {
                    Some(bytes) => atomic_write(&d.abs, bytes),
                    None => std::fs::remove_file(&d.abs),
                };
                if r.is_err() {
                    rollback_failures.push(d.rel.clone());
                }
            }
            return Err(ApplyError::Io {
                path: p.rel.clone(),
                message: e.to_string(),
                rollback_failures,
            });
        }
        done.push(p);
    }
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
