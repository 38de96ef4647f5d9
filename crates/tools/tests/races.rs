//! Path checks cannot be raced: while another thread keeps swapping a directory inside the
//! root with a symlink to a directory outside it, no read, search, listing, write, removal or
//! apply ever reaches outside, and no temporary file lands there.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ao_tools::{Changeset, Decision, FileChange, apply_changeset};
use common::{call, context, env_with, write};
use serde_json::json;

const OUTSIDE: &str = "planted-outside-race-7c1d";
const RUN_FOR: Duration = Duration::from_secs(3);

/// A root with `d/` (a real directory) and `dlink` (a symlink to a directory outside), and a
/// thread that atomically exchanges the two names until dropped.
struct Swapper {
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    fn start() -> Swapper {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        write(root.path(), "d/f.txt", "inside\n");
        write(root.path(), "d/victim.txt", "inside victim\n");
        write(root.path(), "README.md", "# race\n");
        write(outside.path(), "f.txt", &format!("{OUTSIDE}\n"));
        write(outside.path(), "victim.txt", &format!("{OUTSIDE} victim\n"));
        write(outside.path(), "outside-only.txt", &format!("{OUTSIDE}\n"));
        std::os::unix::fs::symlink(outside.path(), root.path().join("dlink")).expect("symlink");
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let dir = root.path().to_path_buf();
        let (s, n) = (stop.clone(), swaps.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let r = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    dir.join("d"),
                    rustix::fs::CWD,
                    dir.join("dlink"),
                    rustix::fs::RenameFlags::EXCHANGE,
                );
                if r.is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Swapper {
            root,
            outside,
            stop,
            swaps,
            thread: Some(thread),
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// Every name in the outside directory, and its content.
    fn outside_state(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(self.outside.path())
            .expect("read_dir")
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_searches_and_listings_never_escape_while_a_directory_is_swapped() {
    let s = Swapper::start();
    let env = env_with(&[]);
    let (ctx, _) = context(s.root(), &env, None, false);
    let (mut calls, mut allowed, mut escapes) = (0u64, 0u64, Vec::new());
    let start = Instant::now();
    while start.elapsed() < RUN_FOR {
        for (tool, args) in [
            ("fs.read", json!({"path": "d/f.txt"})),
            (
                "fs.search",
                json!({"pattern": "planted|inside", "path": "d"}),
            ),
            ("fs.search", json!({"pattern": "planted|inside"})),
            ("fs.list", json!({"path": "d"})),
            ("fs.list", json!({})),
        ] {
            calls += 1;
            let text = match call(&ctx, tool, args.clone()).await {
                Ok(r) => {
                    if r.decision == Decision::Allowed {
                        allowed += 1;
                    }
                    r.to_json().to_string()
                }
                Err(e) => e.to_string(),
            };
            if text.contains(OUTSIDE) || text.contains("outside-only") {
                escapes.push(format!("{tool} {args}: {text}"));
            }
        }
    }
    let swaps = s.swaps.load(Ordering::Relaxed);
    eprintln!("{calls} calls ({allowed} allowed) during {swaps} swaps");
    assert!(swaps > 1000, "the directory was hardly swapped: {swaps}");
    assert!(allowed > 0, "no call got through at all");
    assert!(
        escapes.is_empty(),
        "{} escapes, e.g. {:?}",
        escapes.len(),
        escapes.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_removals_and_applies_never_escape_while_a_directory_is_swapped() {
    let s = Swapper::start();
    let before = s.outside_state();
    // The real directory, whatever name it has at the moment (opened before the first swap
    // could matter: `d/victim.txt` is only in the real one).
    let real_dir = loop {
        let fd = rustix::fs::open(
            s.root().join("d"),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW,
            rustix::fs::Mode::empty(),
        );
        if let Ok(fd) = fd
            && rustix::fs::statat(&fd, "outside-only.txt", rustix::fs::AtFlags::empty()).is_err()
        {
            break fd;
        }
    };
    let env = env_with(&[]);
    let (ctx, _) = context(s.root(), &env, None, true);
    let (mut calls, mut written) = (0u64, 0u64);
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < RUN_FOR {
        i += 1;
        for (tool, args) in [
            (
                "fs.write",
                json!({"path": format!("d/new-{i}.txt"), "content": "written\n"}),
            ),
            (
                "fs.edit",
                json!({"path": "d/f.txt", "search": "inside", "replace": "inside"}),
            ),
            ("fs.delete", json!({"path": "d/victim.txt"})),
        ] {
            calls += 1;
            if let Ok(r) = call(&ctx, tool, args).await
                && r.decision == Decision::Allowed
            {
                written += 1;
            }
        }
        // Put the victim back in the real directory, through a descriptor held on it (its
        // name keeps changing).
        if let Ok(fd) = rustix::fs::openat(
            &real_dir,
            "victim.txt",
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CREATE | rustix::fs::OFlags::TRUNC,
            rustix::fs::Mode::from_raw_mode(0o644),
        ) {
            let _ = std::io::Write::write_all(&mut std::fs::File::from(fd), b"inside victim\n");
        }
        // And an apply of a changeset under `d`.
        let changeset = Changeset {
            files: vec![FileChange {
                path: format!("d/applied-{i}.txt"),
                base_sha256: None,
                base_content: None,
                new_content: Some("applied\n".to_string()),
            }],
        };
        calls += 1;
        if let Ok(report) = apply_changeset(&changeset, ctx.policy(), false)
            && report.applied
        {
            written += 1;
        }
    }
    let swaps = s.swaps.load(Ordering::Relaxed);
    drop(ctx);
    let after = s.outside_state();
    eprintln!("{calls} calls ({written} wrote) during {swaps} swaps");
    assert!(swaps > 1000, "the directory was hardly swapped: {swaps}");
    assert!(written > 0, "no write got through at all");
    assert_eq!(
        before, after,
        "files outside the root were created, changed or removed"
    );
}
