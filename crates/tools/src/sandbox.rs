//! Validation sandboxes: a disposable copy of the project, at its current state with a run's
//! changeset applied, where validation commands run in dry-run without touching the working
//! tree.
//!
//! The copy is made under `<state dir>/sandboxes/` from what the project's policy may read: the
//! files a walk of the root finds (respecting `.gitignore`), never `.git/`, the state dir or a
//! denied path (a denied file's content never leaves the project, not even into the copy).
//! Each file is opened beneath the root's descriptor, as every tool does, so a path swapped for
//! a link while the copy is made cannot pull in anything from outside. The run's changeset is
//! then written over the copy.
//!
//! Commands run in the sandbox through the one gate, `cmd.run`, under a policy rooted at the
//! sandbox in apply mode with the project's rules (the allowlist — plus, if given, the user's
//! own validation command, which is recorded as such — no shell, the timeout, the output cap,
//! the scrubbed environment). Cargo's build directory is shared through `CARGO_TARGET_DIR`
//! pointing at `<state dir>/cache/cargo-target`, so a validation is not a cold build each time.
//! The sandbox is removed when it is dropped.

use crate::changeset::Changeset;
use crate::error::ToolError;
use crate::policy::Policy;
use std::path::{Path, PathBuf};

/// The folder under the state dir that holds sandboxes.
pub const SANDBOXES_DIR: &str = "sandboxes";

/// The build cache shared by sandboxes, under the state dir.
pub const CARGO_CACHE_DIR: &str = "cache/cargo-target";

/// Files larger than this are not copied into a sandbox (build inputs are not this large;
/// data files that are would make every validation slow).
pub const MAX_COPIED_FILE: u64 = 64 * 1024 * 1024;

/// A disposable copy of the project with a changeset applied; removed when dropped.
pub struct Sandbox {
    dir: PathBuf,
    policy: Policy,
    /// Files left out of the copy, with why (denied, too large, not a regular file).
    pub skipped: Vec<(String, String)>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("dir", &self.dir).finish()
    }
}

fn failed(message: impl Into<String>) -> ToolError {
    ToolError::failed("sandbox", None, message)
}

impl Sandbox {
    /// Copies the project `project` guards and applies `changeset`; `extra_command` is the
    /// user's own validation command, allowed in the sandbox even if the allowlist lacks it.
    pub fn create(
        project: &Policy,
        changeset: &Changeset,
        extra_command: Option<&[String]>,
    ) -> Result<Sandbox, ToolError> {
        let base = project.state_dir().join(SANDBOXES_DIR);
        private_dir(&base).map_err(|e| failed(format!("cannot create {}: {e}", base.display())))?;
        let dir = base.join(format!(
            "{}-{}",
            std::process::id(),
            crate::beneath::fresh_tmp_name()
        ));
        std::fs::create_dir(&dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        // From here on the directory is removed on every way out.
        let mut sandbox = Sandbox {
            policy: project.with_dry_run(),
            dir,
            skipped: Vec::new(),
        };
        sandbox.copy_project(project)?;
        sandbox.apply(changeset)?;
        let cache = project.state_dir().join(CARGO_CACHE_DIR);
        std::fs::create_dir_all(&cache)
            .map_err(|e| failed(format!("cannot create {}: {e}", cache.display())))?;
        sandbox.policy = project
            .sandboxed(&sandbox.dir, extra_command, &[("CARGO_TARGET_DIR", &cache)])
            .map_err(|e| failed(format!("cannot build the sandbox's policy: {e}")))?;
        Ok(sandbox)
    }

    /// The sandbox's root.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// The policy commands in the sandbox run under (rooted there, apply mode).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn copy_project(&mut self, project: &Policy) -> Result<(), ToolError> {
        let root = project.root().to_path_buf();
        let state = project.state_dir().to_path_buf();
        let walker = ignore::WalkBuilder::new(&root)
            .hidden(false)
            .git_ignore(true)
            .git_exclude(true)
            .parents(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(move |e| {
                let p = e.path();
                p.file_name().is_none_or(|n| n != ".git") && !p.starts_with(&state)
            })
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| failed(format!("cannot walk the project: {e}")))?;
            let Some(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel.is_empty() {
                continue;
            }
            if !kind.is_file() {
                self.skipped.push((rel, "not a regular file".into()));
                continue;
            }
            if let Some(pattern) = project.denied_match(&rel) {
                self.skipped.push((rel, format!("denied by `{pattern}`")));
                continue;
            }
            let file = match project.root_dir().open_read(&rel) {
                Ok(f) => f,
                Err(e) => {
                    self.skipped.push((rel, format!("cannot open it: {e}")));
                    continue;
                }
            };
            let bytes = match crate::beneath::read_regular(
                file,
                MAX_COPIED_FILE,
                project.allow_hardlinks(),
            ) {
                Ok(b) => b,
                Err(why) => {
                    self.skipped.push((rel, why));
                    continue;
                }
            };
            self.write(&rel, &bytes)?;
        }
        Ok(())
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), ToolError> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
    }

    fn apply(&self, changeset: &Changeset) -> Result<(), ToolError> {
        for f in &changeset.files {
            // Changeset paths were checked by the gate when they were written; a path that
            // would leave the sandbox is refused all the same.
            let clean = Path::new(&f.path)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !clean {
                return Err(failed(format!(
                    "the changeset holds a path that is not plainly relative: {}",
                    f.path
                )));
            }
            match &f.new_content {
                Some(content) => self.write(&f.path, content.as_bytes())?,
                None => match std::fs::remove_file(self.dir.join(&f.path)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(failed(format!("cannot delete {}: {e}", f.path))),
                },
            }
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
