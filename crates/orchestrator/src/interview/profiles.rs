//! The saved capability profiles: `<state dir>/worker-profiles.json`, a JSON array of
//! [`WorkerCapabilityProfile`]s, one per `worker_id`.
//!
//! Saving merges by `worker_id` (a profile replaces the one with its id in place, new ids are
//! appended, the others are kept as they are) and is safe when several `ao` processes save at
//! once: the read-merge-write runs under an exclusive advisory lock
//! (`worker-profiles.json.lock`, `flock`), and the new content is written to a temporary file
//! in the same directory, flushed, and renamed over the old one, so a reader sees either the
//! old file or the new one, never half of one. Files are created with mode 0600. A file that
//! does not parse is reported (with line and column) and never overwritten. Symbolic links
//! are not followed. The functions block (file locks); call them from a blocking context.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use ao_core::profile::WorkerCapabilityProfile;

pub const PROFILES_FILE: &str = "worker-profiles.json";
const LOCK_FILE: &str = "worker-profiles.json.lock";
/// A profile is a few kilobytes; a file far larger than any plausible set is refused.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why the saved profiles could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileStoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}:{line}:{col}: not a list of worker profiles: {message}; fix the file or remove it \
         (interviews with --save write it again)",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}: worker `{worker_id}` appears more than once; remove all but one", path.display())]
    Duplicate { path: PathBuf, worker_id: String },
    #[error("{} is not a regular file of at most {MAX_FILE_BYTES} bytes; refusing to read it", path.display())]
    NotAProfileFile { path: PathBuf },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ProfileStoreError {
    let path = path.to_path_buf();
    move |source| ProfileStoreError::Io {
        action,
        path,
        source,
    }
}

/// Where the profiles of a state directory live.
pub fn profiles_path(state_dir: &Path) -> PathBuf {
    state_dir.join(PROFILES_FILE)
}

/// All saved profiles, in file order; none when the file does not exist.
pub fn load_profiles(state_dir: &Path) -> Result<Vec<WorkerCapabilityProfile>, ProfileStoreError> {
    let path = profiles_path(state_dir);
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    let meta = file.metadata().map_err(io_err("inspect", &path))?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return Err(ProfileStoreError::NotAProfileFile { path });
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io_err("read", &path))?;
    let profiles: Vec<WorkerCapabilityProfile> =
        serde_json::from_str(&text).map_err(|e| ProfileStoreError::Corrupt {
            path: path.clone(),
            line: e.line(),
            col: e.column(),
            message: e.to_string(),
        })?;
    let mut seen = std::collections::HashSet::new();
    for p in &profiles {
        if !seen.insert(p.worker_id.as_str()) {
            return Err(ProfileStoreError::Duplicate {
                path,
                worker_id: p.worker_id.clone(),
            });
        }
    }
    Ok(profiles)
}

/// The saved profile of one worker.
pub fn find_profile(
    state_dir: &Path,
    worker_id: &str,
) -> Result<Option<WorkerCapabilityProfile>, ProfileStoreError> {
    Ok(load_profiles(state_dir)?
        .into_iter()
        .find(|p| p.worker_id == worker_id))
}

/// Saves one profile (see [`save_profiles`]).
pub fn save_profile(
    state_dir: &Path,
    profile: &WorkerCapabilityProfile,
) -> Result<(), ProfileStoreError> {
    save_profiles(state_dir, std::slice::from_ref(profile))
}

/// Merges `profiles` into the saved ones by `worker_id`, atomically and under the lock.
pub fn save_profiles(
    state_dir: &Path,
    profiles: &[WorkerCapabilityProfile],
) -> Result<(), ProfileStoreError> {
    fs::create_dir_all(state_dir).map_err(io_err("create", state_dir))?;
    let _lock = Lock::acquire(&state_dir.join(LOCK_FILE))?;
    let mut saved = load_profiles(state_dir)?;
    for p in profiles {
        match saved.iter_mut().find(|s| s.worker_id == p.worker_id) {
            Some(slot) => *slot = p.clone(),
            None => saved.push(p.clone()),
        }
    }
    let path = profiles_path(state_dir);
    let mut text = serde_json::to_vec_pretty(&saved).map_err(|e| ProfileStoreError::Io {
        action: "serialise profiles for",
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    text.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".worker-profiles.")
        .suffix(".tmp")
        .tempfile_in(state_dir)
        .map_err(io_err("create a temporary file in", state_dir))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))
        .map_err(io_err("set permissions of", tmp.path()))?;
    tmp.write_all(&text).map_err(io_err("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("flush", tmp.path()))?;
    tmp.persist(&path)
        .map_err(|e| io_err("replace", &path)(e.error))?;
    // The rename is durable once the directory entry is.
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("flush", state_dir))?;
    Ok(())
}

/// An exclusive `flock` on the lock file, released when dropped (the descriptor closes).
struct Lock {
    _file: File,
}

impl Lock {
    fn acquire(path: &Path) -> Result<Lock, ProfileStoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err("open the lock file", path))?;
        loop {
            // SAFETY: flock on a descriptor this function owns for the call's duration.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(io_err("lock", path)(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ao_core::profile::{ProfileMetrics, RoutingPolicy, SuiteRef, TaskComplexity, WorkerStatus};
    use ao_core::timestamp::Timestamp;
    use std::collections::BTreeMap;

    fn profile(id: &str, status: WorkerStatus) -> WorkerCapabilityProfile {
        WorkerCapabilityProfile {
            worker_id: id.into(),
            provider: "litellm".into(),
            model: id.into(),
            base_url_host: None,
            status,
            capabilities: BTreeMap::new(),
            metrics: ProfileMetrics {
                validity: 1.0,
                schema_compliance: 1.0,
                correctness: 1.0,
                brier: Some(0.01),
                latency_p50_ms: 1,
                latency_p95_ms: 2,
                tokens: None,
            },
            qualified_task_types: Vec::new(),
            routing_policy: RoutingPolicy {
                requires_leader_review: false,
                max_task_complexity: TaskComplexity::High,
                allow_codegen: true,
                allow_patch: true,
            },
            reasons: Vec::new(),
            recommended_actions: Vec::new(),
            suite: SuiteRef {
                name: "s".into(),
                version: "1".into(),
                sha256: "0".repeat(64),
            },
            evaluated_at: Timestamp::from_unix_seconds(0),
            expires_at: Timestamp::from_unix_seconds(1),
            inconclusive: 0,
        }
    }

    fn ids(dir: &Path) -> Vec<String> {
        load_profiles(dir)
            .unwrap()
            .into_iter()
            .map(|p| p.worker_id)
            .collect()
    }

    #[test]
    fn saving_merges_by_worker_id_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(
            load_profiles(&state).unwrap().is_empty(),
            "no file, no profiles"
        );
        save_profile(&state, &profile("a", WorkerStatus::Active)).unwrap();
        save_profiles(
            &state,
            &[
                profile("b", WorkerStatus::Limited),
                profile("c", WorkerStatus::Blocked),
            ],
        )
        .unwrap();
        save_profile(&state, &profile("b", WorkerStatus::Active)).unwrap();
        assert_eq!(ids(&state), vec!["a", "b", "c"]);
        assert_eq!(
            find_profile(&state, "b").unwrap().unwrap().status,
            WorkerStatus::Active
        );
        assert!(find_profile(&state, "z").unwrap().is_none());
        let mode = fs::metadata(profiles_path(&state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let lock_mode = fs::metadata(state.join(LOCK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(lock_mode & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&state)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[test]
    fn a_corrupt_file_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = profiles_path(dir.path());
        fs::write(&path, "[\n  {\"worker_id\": \"a\",\n  oops\n]").unwrap();
        let e = save_profile(dir.path(), &profile("b", WorkerStatus::Active)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("worker-profiles.json:3:"), "{msg}");
        assert!(msg.contains("fix the file or remove it"), "{msg}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[\n  {\"worker_id\": \"a\",\n  oops\n]"
        );
        let mut two = serde_json::to_value(vec![profile("a", WorkerStatus::Active)]).unwrap();
        let first = two[0].clone();
        two.as_array_mut().unwrap().push(first);
        fs::write(&path, two.to_string()).unwrap();
        let e = load_profiles(dir.path()).unwrap_err().to_string();
        assert!(e.contains("worker `a` appears more than once"), "{e}");
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.json");
        fs::write(&target, "[]").unwrap();
        std::os::unix::fs::symlink(&target, profiles_path(dir.path())).unwrap();
        assert!(load_profiles(dir.path()).is_err());
        assert!(save_profile(dir.path(), &profile("a", WorkerStatus::Active)).is_err());
        assert_eq!(
            fs::read_to_string(&target).unwrap(),
            "[]",
            "the target is untouched"
        );
    }

    #[test]
    fn concurrent_writers_in_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_path_buf();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let state = state.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        save_profile(&state, &profile(&format!("t{t}-{i}"), WorkerStatus::Active))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(load_profiles(&state).unwrap().len(), 80);
    }

    const CHILD_DIR: &str = "AO_PROFILES_TEST_CHILD_DIR";
    const CHILD_NAME: &str = "AO_PROFILES_TEST_CHILD_NAME";

    /// Run as a child process by the test below; does nothing in a normal test run.
    #[test]
    fn child_process_saver() {
        let (Ok(dir), Ok(name)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_NAME)) else {
            return;
        };
        for i in 0..25 {
            save_profile(
                Path::new(&dir),
                &profile(&format!("{name}-{i}"), WorkerStatus::Limited),
            )
            .unwrap();
        }
    }

    #[test]
    fn two_processes_saving_at_once_both_end_up_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        save_profile(dir.path(), &profile("kept", WorkerStatus::Active)).unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = ["first", "second"]
            .iter()
            .map(|name| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "interview::profiles::tests::child_process_saver",
                        "--test-threads=1",
                    ])
                    .env(CHILD_DIR, dir.path())
                    .env(CHILD_NAME, name)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let all = ids(dir.path());
        assert_eq!(all.len(), 51, "{all:?}");
        assert_eq!(all[0], "kept");
        assert!(all.contains(&"first-24".to_string()));
        assert!(all.contains(&"second-24".to_string()));
    }
}
