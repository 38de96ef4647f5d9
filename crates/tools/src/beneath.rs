//! Race-free access to files beneath the project root.
//!
//! The policy decides on a path: [`crate::ResolvedPath::rel`] is physical (symlinks resolved,
//! no `..`). This module then reaches exactly that path from a directory descriptor held on the
//! root, in one step: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (which implies
//! `RESOLVE_NO_MAGICLINKS`), or, where the kernel lacks `openat2`, a walk of
//! `openat(O_NOFOLLOW)` one component at a time from that descriptor. A directory swapped for a
//! symlink between the check and the open makes the open fail (`ELOOP`); it can never lead
//! outside the root. Writes create their temporary file beside the target through the same
//! directory descriptor and rename it into place with `renameat`, so a temporary file never
//! lands anywhere else either.
//!
//! What it is not: it does not decide what may be read or written (the policy does).

use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Prefix of every temporary file `ao` writes beside a target.
pub(crate) const TMP_PREFIX: &str = ".ao-tmp-";

/// A directory descriptor held on the project root. Cheap to clone.
#[derive(Clone)]
pub(crate) struct RootDir {
    fd: Arc<OwnedFd>,
}

impl std::fmt::Debug for RootDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootDir").finish_non_exhaustive()
    }
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// The components of a root-relative path, refusing anything that is not a plain name.
fn components(rel: &str) -> io::Result<Vec<&str>> {
    if rel.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0'))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{rel}` is not a plain relative path"),
        ));
    }
    Ok(parts)
}

/// Whether `openat2` is usable; cleared the first time the kernel says it is not.
static OPENAT2_USABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

impl RootDir {
    /// Opens the root (which must be a directory; symlinks in `root` itself are followed:
    /// the root is the caller's choice).
    pub(crate) fn open(root: &Path) -> io::Result<RootDir> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(RootDir { fd: Arc::new(fd) })
    }

    /// Opens `rel` beneath the root with `flags`, never following a symlink in any component.
    fn resolve(&self, rel: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let parts = components(rel)?;
        let path = if parts.is_empty() { "." } else { rel };
        // `openat2` refuses O_PATH with other flags than these (`EINVAL`).
        let flags = if flags.contains(OFlags::PATH) {
            flags | OFlags::CLOEXEC
        } else {
            flags | OFlags::CLOEXEC | OFlags::NOCTTY
        };
        if OPENAT2_USABLE.load(Ordering::Relaxed) {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
            let mut tries = 0;
            loop {
                match rustix::fs::openat2(self.fd.as_fd(), path, flags, mode, resolve) {
                    Ok(fd) => return Ok(fd),
                    // Another rename on the system raced the lookup; the kernel asks to retry.
                    Err(Errno::AGAIN) if tries < 8 => tries += 1,
                    Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::INVAL)
                        if tries == 0 && !self.openat2_works() =>
                    {
                        OPENAT2_USABLE.store(false, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => return Err(errno(e)),
                }
            }
        }
        self.walk(&parts, flags, mode)
    }

    /// True when `openat2` works for a trivial lookup (so an error from it was about the path,
    /// not about the system call being unavailable or filtered).
    fn openat2_works(&self) -> bool {
        rustix::fs::openat2(
            self.fd.as_fd(),
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .is_ok()
    }

    /// The fallback: one `openat(O_NOFOLLOW)` per component from the held descriptor.
    fn walk(&self, parts: &[&str], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let Some((last, dirs)) = parts.split_last() else {
            return rustix::fs::openat(self.fd.as_fd(), ".", flags, mode).map_err(errno);
        };
        let dir = self.walk_dirs(dirs, false)?.0;
        let base = dir.as_ref().map(|d| d.as_fd()).unwrap_or(self.fd.as_fd());
        rustix::fs::openat(base, *last, flags | OFlags::NOFOLLOW, mode).map_err(errno)
    }

    /// Walks `dirs` from the root without following symlinks, creating missing directories
    /// when `create` (mode 0777 less the umask). Returns the last directory (`None` for the root
    /// itself) and how many of the components were created (always the last ones).
    fn walk_dirs(&self, dirs: &[&str], create: bool) -> io::Result<(Option<OwnedFd>, usize)> {
        let mut cur: Option<OwnedFd> = None;
        let mut created = 0;
        for name in dirs {
            let base = cur.as_ref().map(|d| d.as_fd()).unwrap_or(self.fd.as_fd());
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = match rustix::fs::openat(base, *name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(base, *name, Mode::from_raw_mode(0o777)) {
                        Ok(()) => created += 1,
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno(e)),
                    }
                    rustix::fs::openat(base, *name, flags, Mode::empty()).map_err(errno)?
                }
                Err(e) => return Err(errno(e)),
            };
            cur = Some(next);
        }
        Ok((cur, created))
    }

    /// The directory holding `rel` (opened for reading, so it can be synced) and `rel`'s
    /// last component. With `create`, missing directories are made; the returned count says
    /// how many trailing directories of the parent path were created.
    pub(crate) fn parent(&self, rel: &str, create: bool) -> io::Result<(Dir, String, usize)> {
        let parts = components(rel)?;
        let Some((name, dirs)) = parts.split_last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root itself has no parent",
            ));
        };
        let (dir, created) = if create {
            self.walk_dirs(dirs, true)?
        } else if dirs.is_empty() {
            (None, 0)
        } else {
            let fd = self.resolve(
                &dirs.join("/"),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )?;
            (Some(fd), 0)
        };
        let dir = match dir {
            Some(fd) => Dir(Arc::new(fd)),
            None => Dir(self.fd.clone()),
        };
        Ok((dir, (*name).to_string(), created))
    }

    /// Opens `rel` for reading. A FIFO does not block the open (`O_NONBLOCK`); the caller
    /// checks the file type on the descriptor.
    pub(crate) fn open_read(&self, rel: &str) -> io::Result<File> {
        let fd = self.resolve(
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    /// The metadata of `rel` without following a final symlink; `None` if it does not exist.
    pub(crate) fn lstat(&self, rel: &str) -> io::Result<Option<Metadata>> {
        match self.resolve(rel, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => File::from(fd).metadata().map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` to `rel` atomically (a temporary file beside it, then a rename), making
    /// missing parent directories. An existing file keeps its permission bits; a new one gets
    /// 0666 less the umask.
    pub(crate) fn write_atomic(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        self.stage(rel, bytes, None, true)?.commit()
    }

    /// Writes `bytes` to a temporary file beside `rel` (named `tmp_name`, or a fresh name),
    /// ready to be renamed over it by [`Staged::commit`]. Dropped uncommitted, it is removed.
    /// Without `sync` the caller flushes many such files at once ([`RootDir::sync_all`]).
    pub(crate) fn stage(
        &self,
        rel: &str,
        bytes: &[u8],
        tmp_name: Option<&str>,
        sync: bool,
    ) -> io::Result<Staged> {
        let (dir, name, _) = self.parent(rel, true)?;
        dir.stage(&name, bytes, tmp_name, sync)
    }

    /// Flushes every written file of the root's file system to disk (one `syncfs`, instead of
    /// one `fsync` per file of a large apply).
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        rustix::fs::syncfs(self.fd.as_fd()).map_err(errno)
    }

    /// Removes the file `rel` (not a directory).
    pub(crate) fn remove_file(&self, rel: &str) -> io::Result<()> {
        let (dir, name, _) = self.parent(rel, false)?;
        dir.remove(&name)
    }
}

/// An open directory beneath the root.
#[derive(Clone)]
pub(crate) struct Dir(Arc<OwnedFd>);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary file name (unique within this process; `O_EXCL` guards the rest).
pub(crate) fn fresh_tmp_name() -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TMP_PREFIX}{}-{nanos:x}-{n}", std::process::id())
}

impl Dir {
    /// The permission bits of the regular file `name` in this directory, if there is one.
    fn mode_of(&self, name: &str) -> io::Result<Option<u32>> {
        match rustix::fs::statat(self.0.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::RegularFile =>
            {
                Ok(Some(st.st_mode & 0o777))
            }
            Ok(_) => Ok(None),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    fn stage(
        &self,
        name: &str,
        bytes: &[u8],
        tmp_name: Option<&str>,
        sync: bool,
    ) -> io::Result<Staged> {
        let keep_mode = self.mode_of(name)?;
        let mut attempts = 0;
        let (tmp, fd) = loop {
            let tmp = match tmp_name {
                Some(t) => t.to_string(),
                None => fresh_tmp_name(),
            };
            // 0666 here: the kernel applies the umask, as for any new file.
            match rustix::fs::openat(
                self.0.as_fd(),
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            ) {
                Ok(fd) => break (tmp, fd),
                Err(Errno::EXIST) if tmp_name.is_none() && attempts < 16 => attempts += 1,
                Err(e) => return Err(errno(e)),
            }
        };
        let staged = Staged {
            dir: self.clone(),
            tmp,
            name: name.to_string(),
            committed: false,
        };
        let mut file = File::from(fd);
        if let Some(mode) = keep_mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        Ok(staged)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(self.0.as_fd(), name, AtFlags::empty()).map_err(errno)
    }

    /// Flushes the directory's entries (renames, removals) to disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(self.0.as_fd()).map_err(errno)
    }

    /// Removes the entry `name` if it is a file; a missing one is fine.
    pub(crate) fn remove_if_present(&self, name: &str) -> io::Result<()> {
        match self.remove(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Renames `from` over `to`, both in this directory.
    pub(crate) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rustix::fs::renameat(self.0.as_fd(), from, self.0.as_fd(), to).map_err(errno)
    }

    /// Removes the empty directory `name`; a missing or non-empty one is left alone.
    pub(crate) fn remove_empty_dir(&self, name: &str) -> io::Result<()> {
        match rustix::fs::unlinkat(self.0.as_fd(), name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) | Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Whether the entry `name` exists (without following a symlink).
    pub(crate) fn exists(&self, name: &str) -> io::Result<bool> {
        match rustix::fs::statat(self.0.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno(e)),
        }
    }
}

/// A temporary file written beside its target, not yet renamed over it.
pub(crate) struct Staged {
    dir: Dir,
    tmp: String,
    name: String,
    committed: bool,
}

impl Staged {
    /// Renames the temporary file over the target and syncs the directory.
    pub(crate) fn commit(mut self) -> io::Result<()> {
        self.dir.rename(&self.tmp, &self.name)?;
        self.committed = true;
        self.dir.sync()
    }

    /// Renames the temporary file over the target without syncing; returns the directory so
    /// the caller can sync it once for many files.
    pub(crate) fn rename_into_place(mut self) -> io::Result<Dir> {
        self.dir.rename(&self.tmp, &self.name)?;
        self.committed = true;
        Ok(self.dir.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.dir.remove_if_present(&self.tmp);
        }
    }
}

/// Reads a regular file from an open descriptor, refusing anything else and anything larger
/// than `max` bytes. `Err` carries the reason in words.
pub(crate) fn read_regular(
    mut file: File,
    max: u64,
    allow_hardlinks: bool,
) -> Result<Vec<u8>, String> {
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect: {e}"))?;
    check_regular(&meta, allow_hardlinks)?;
    if meta.len() > max {
        return Err(format!(
            "file is {} bytes, larger than the {max}-byte limit for reading whole",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    Read::by_ref(&mut file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "file grew past the {max}-byte limit while being read"
        ));
    }
    Ok(bytes)
}

/// The file behind `meta` may be read: a regular file, and with one link unless hard links
/// are allowed.
pub(crate) fn check_regular(meta: &Metadata, allow_hardlinks: bool) -> Result<(), String> {
    if meta.is_dir() {
        return Err("is a directory; use fs.list to see its files".to_string());
    }
    if !meta.is_file() {
        return Err(
            "is not a regular file (a pipe, socket or device); the fs tools handle regular files only"
                .to_string(),
        );
    }
    if meta.nlink() > 1 && !allow_hardlinks {
        return Err(hardlink_reason(meta.nlink()));
    }
    Ok(())
}

/// Why a file with several hard links is not read.
pub(crate) fn hardlink_reason(links: u64) -> String {
    format!(
        "the file has {links} hard links: it may be the same file as one outside the root or a denied one, so ao does not read it (`[policy] allow_hardlinks = true` allows it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_never_follows_a_symlink_and_stays_beneath() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("d"))?;
        std::fs::write(root.path().join("d/f"), "in")?;
        std::fs::write(outside.path().join("f"), "out")?;
        std::os::unix::fs::symlink(outside.path(), root.path().join("link"))?;
        std::os::unix::fs::symlink("d/f", root.path().join("flink"))?;
        let dir = RootDir::open(root.path())?;
        let read = |parts: &[&str]| -> io::Result<String> {
            let fd = dir.walk(parts, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
            std::io::read_to_string(File::from(fd))
        };
        assert_eq!(read(&["d", "f"])?, "in");
        assert!(read(&["link", "f"]).is_err());
        assert!(read(&["flink"]).is_err());
        // The openat2 path refuses the same.
        assert_eq!(std::io::read_to_string(dir.open_read("d/f")?)?, "in");
        assert!(dir.open_read("link/f").is_err());
        assert!(dir.open_read("flink").is_err());
        assert!(dir.open_read("d/../d/f").is_err());
        assert!(dir.open_read("/etc/passwd").is_err());
        // lstat sees a final symlink as a symlink, and refuses one on the way.
        assert!(dir.lstat("d/f")?.is_some_and(|m| m.is_file()));
        assert!(
            dir.lstat("flink")?
                .is_some_and(|m| m.file_type().is_symlink())
        );
        assert!(dir.lstat("missing")?.is_none());
        assert!(dir.lstat("link/f").is_err());
        Ok(())
    }

    #[test]
    fn writes_keep_the_replaced_mode_and_new_files_follow_the_umask() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let dir = RootDir::open(root.path())?;
        std::fs::write(root.path().join("script.sh"), "old")?;
        std::fs::set_permissions(
            root.path().join("script.sh"),
            std::fs::Permissions::from_mode(0o751),
        )?;
        dir.write_atomic("script.sh", b"new")?;
        let meta = std::fs::metadata(root.path().join("script.sh"))?;
        assert_eq!(meta.mode() & 0o777, 0o751);
        dir.write_atomic("deep/new/file.txt", b"x")?;
        // A new file gets what any other new file gets under this process's umask.
        std::fs::write(root.path().join("reference.txt"), "x")?;
        let expected = std::fs::metadata(root.path().join("reference.txt"))?.mode() & 0o777;
        let got = std::fs::metadata(root.path().join("deep/new/file.txt"))?.mode() & 0o777;
        assert_eq!(got, expected);
        let leftovers: Vec<_> = std::fs::read_dir(root.path())?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
        Ok(())
    }
}
