//! The apply journal: what makes `ao apply` all-or-nothing across a crash.
//!
//! Before it touches the tree, an apply takes an exclusive lock (`apply.lock` in the state dir,
//! held by `flock`, so a killed process releases it) and writes the journal
//! (`apply-journal.json`): every file, the temporary file its new content goes to, the hash of
//! its old and new content, and the directories it creates. The journal is `staging` while the
//! temporary files are written and `committing` once they all are (synced), just before the
//! first rename. After a crash, [`recover`] (run whenever a policy is built, so by any `ao`
//! command in that state dir) rolls a `staging` apply back (removes its temporary files and the
//! directories it made) and rolls a `committing` one forward (renames what is left into place,
//! removes what is left to remove), then deletes the journal. Either way no `.ao-tmp-*` file is
//! left and the tree is all old or all new. A file changed by someone else in between is left
//! as they made it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use crate::beneath::RootDir;
use crate::changeset::sha256_hex;

const LOCK_FILE: &str = "apply.lock";
const JOURNAL_FILE: &str = "apply-journal.json";

/// Where an apply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Temporary files are being written; nothing is renamed yet. Recovery rolls back.
    Staging,
    /// Every temporary file is written; renames may have begun. Recovery rolls forward.
    Committing,
}

/// One file of an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Root-relative path.
    pub path: String,
    /// Name of the temporary file beside it holding the new content; `None` for a deletion.
    pub tmp: Option<String>,
    /// SHA-256 of the content before the apply (`None`: the file did not exist).
    pub base_sha256: Option<String>,
    /// SHA-256 of the new content (`None`: the file is deleted).
    pub new_sha256: Option<String>,
}

/// The journal of one apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Journal {
    pub version: u32,
    /// The project root (physical).
    pub root: PathBuf,
    pub phase: Phase,
    /// Directories the apply creates for new files (root-relative), parents first.
    pub created_dirs: Vec<String>,
    pub entries: Vec<Entry>,
}

/// The exclusive right to apply in one state dir, held until dropped.
pub(crate) struct ApplyLock {
    state_dir: PathBuf,
    _file: File,
}

fn open_lock(state_dir: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(state_dir.join(LOCK_FILE))
}

fn try_lock(file: &File) -> io::Result<bool> {
    match rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(io::Error::from_raw_os_error(e.raw_os_error())),
    }
}

/// Takes the apply lock of `state_dir` (created if needed), first finishing an apply a crash
/// left behind. `Err` when another apply holds it or the journal cannot be recovered.
pub(crate) fn lock(state_dir: &Path) -> Result<ApplyLock, String> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("cannot create the state dir {}: {e}", state_dir.display()))?;
    let file = open_lock(state_dir)
        .map_err(|e| format!("cannot open {}: {e}", state_dir.join(LOCK_FILE).display()))?;
    if !try_lock(&file).map_err(|e| format!("cannot lock {LOCK_FILE}: {e}"))? {
        return Err(format!(
            "another `ao apply` is writing in this project now (it holds {}); wait for it to finish",
            state_dir.join(LOCK_FILE).display()
        ));
    }
    let held = ApplyLock {
        state_dir: state_dir.to_path_buf(),
        _file: file,
    };
    if let Some(journal) = held.read()? {
        finish(&journal)?;
        held.clear()
            .map_err(|e| format!("cannot remove the finished apply journal: {e}"))?;
    }
    Ok(held)
}

impl ApplyLock {
    fn journal_path(&self) -> PathBuf {
        self.state_dir.join(JOURNAL_FILE)
    }

    fn read(&self) -> Result<Option<Journal>, String> {
        let path = self.journal_path();
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut f) => f
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            format!(
                "the journal of an interrupted `ao apply` ({}) is unreadable: {e}; check the files it names and remove it",
                path.display()
            )
        })
    }

    /// Writes the journal durably: a temporary file, synced, renamed over, the dir synced.
    pub(crate) fn write(&self, journal: &Journal) -> io::Result<()> {
        let path = self.journal_path();
        let tmp = self.state_dir.join(format!("{JOURNAL_FILE}.tmp"));
        let text = serde_json::to_vec(journal).map_err(io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        File::open(&self.state_dir)?.sync_all()
    }

    /// Deletes the journal (the apply is finished or undone).
    pub(crate) fn clear(&self) -> io::Result<()> {
        match std::fs::remove_file(self.journal_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        File::open(&self.state_dir)?.sync_all()
    }
}

/// Finishes an apply a crash interrupted in `state_dir`, if there is one and no live process
/// holds the lock. Fast when there is no journal (one `stat`).
pub(crate) fn recover(state_dir: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(state_dir.join(JOURNAL_FILE)).is_err() {
        return Ok(());
    }
    let file = open_lock(state_dir)
        .map_err(|e| format!("cannot open {}: {e}", state_dir.join(LOCK_FILE).display()))?;
    if !try_lock(&file).map_err(|e| format!("cannot lock {LOCK_FILE}: {e}"))? {
        // A live apply holds it: it is in progress, not interrupted.
        return Ok(());
    }
    let held = ApplyLock {
        state_dir: state_dir.to_path_buf(),
        _file: file,
    };
    if let Some(journal) = held.read()? {
        finish(&journal)?;
        held.clear()
            .map_err(|e| format!("cannot remove the finished apply journal: {e}"))?;
    }
    Ok(())
}

/// The SHA-256 of `rel`'s content beneath `root` (`None`: it does not exist).
fn current_hash(root: &RootDir, rel: &str) -> io::Result<Option<String>> {
    match root.open_read(rel) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok(Some(sha256_hex(&bytes)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Rolls `journal` back (staging) or forward (committing).
fn finish(journal: &Journal) -> Result<(), String> {
    let root = RootDir::open(&journal.root).map_err(|e| {
        format!(
            "an interrupted `ao apply` in {} cannot be finished: {e}",
            journal.root.display()
        )
    })?;
    let fail = |what: &str, path: &str, e: io::Error| {
        format!(
            "finishing an interrupted `ao apply` in {}: cannot {what} `{path}`: {e}",
            journal.root.display()
        )
    };
    match journal.phase {
        Phase::Staging => {
            for entry in &journal.entries {
                let Some(tmp) = &entry.tmp else { continue };
                match root.parent(&entry.path, false) {
                    Ok((dir, _, _)) => dir
                        .remove_if_present(tmp)
                        .map_err(|e| fail("remove the temporary file of", &entry.path, e))?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fail("reach", &entry.path, e)),
                }
            }
            remove_created_dirs(&root, &journal.created_dirs)
                .map_err(|e| fail("remove a directory made for", "a new file", e))?;
        }
        Phase::Committing => {
            for entry in &journal.entries {
                let current =
                    current_hash(&root, &entry.path).map_err(|e| fail("read", &entry.path, e))?;
                match &entry.tmp {
                    Some(tmp) => {
                        let (dir, name, _) = root
                            .parent(&entry.path, false)
                            .map_err(|e| fail("reach", &entry.path, e))?;
                        if !dir
                            .exists(tmp)
                            .map_err(|e| fail("inspect", &entry.path, e))?
                        {
                            continue;
                        }
                        if current == entry.base_sha256 {
                            dir.rename(tmp, &name)
                                .map_err(|e| fail("write", &entry.path, e))?;
                        } else {
                            // Already new, or changed by someone since: keep what is there.
                            dir.remove_if_present(tmp).map_err(|e| {
                                fail("remove the temporary file of", &entry.path, e)
                            })?;
                        }
                        dir.sync()
                            .map_err(|e| fail("sync the directory of", &entry.path, e))?;
                    }
                    None => {
                        if current.is_some() && current == entry.base_sha256 {
                            root.remove_file(&entry.path)
                                .map_err(|e| fail("remove", &entry.path, e))?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Removes the directories an apply made (children first) where they are empty.
pub(crate) fn remove_created_dirs(root: &RootDir, dirs: &[String]) -> io::Result<()> {
    for d in dirs.iter().rev() {
        match root.parent(d, false) {
            Ok((parent, name, _)) => parent.remove_empty_dir(&name)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
