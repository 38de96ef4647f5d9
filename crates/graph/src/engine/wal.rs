//! Checkpoints the run store's write-ahead log on a thread of its own.
//!
//! SQLite copies the WAL back into the database (a checkpoint, two `fsync`s) in the connection
//! that commits when the log passes its threshold, so every few hundred steps one step of a run
//! waited for the disk. Here the committing connection only counts its commits; every
//! [`COMMITS_PER_CHECKPOINT`] of them this thread, with a connection of its own, runs a passive
//! checkpoint (it never blocks a writer, and gives up when another process is checkpointing).
//! The run's connection keeps SQLite's own checkpoint ([`FALLBACK_PAGES`], SQLite's default), so
//! the log stays bounded if this thread falls behind or cannot start; it then finds most of the
//! log already copied and mostly waits for the two `fsync`s.

use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Commits between two background checkpoints (a chain step writes about 3.7 WAL pages, so
/// about 240 pages a checkpoint; SQLite's default threshold is 1 000).
const COMMITS_PER_CHECKPOINT: u32 = 64;

/// The WAL size (pages) at which the committing connection checkpoints by itself. (4 000 was
/// measured too: no faster, and a log four times the size.)
pub(crate) const FALLBACK_PAGES: u32 = 1000;

#[derive(Default)]
struct State {
    /// Commits since the last request.
    commits: u32,
    /// A checkpoint is asked for and not started yet.
    requested: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The store's checkpointing thread, started at the first checkpoint it is asked for (a process
/// that only reads the store starts none) and stopped when dropped.
pub(crate) struct Checkpointer {
    db: PathBuf,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub(crate) fn new(db: PathBuf) -> Self {
        Checkpointer {
            db,
            shared: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Counts a commit; every [`COMMITS_PER_CHECKPOINT`] asks the thread for a checkpoint.
    pub(crate) fn committed(&self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.commits += 1;
        if state.commits < COMMITS_PER_CHECKPOINT || state.stop {
            return;
        }
        state.commits = 0;
        state.requested = true;
        drop(state);
        self.shared.wake.notify_one();
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_none() {
            let (db, shared) = (self.db.clone(), self.shared.clone());
            // Without the thread, the connection's own checkpoint keeps the log bounded.
            *thread = std::thread::Builder::new()
                .name("ao-store-checkpoint".into())
                .spawn(move || run(&db, &shared))
                .ok();
        }
    }
}

fn run(db: &std::path::Path, shared: &Shared) {
    // Never creates the database: if it was removed meanwhile, there is nothing to checkpoint
    // (and a file made here would skip the store's private permissions).
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(db, flags) else {
        return;
    };
    loop {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        while !state.requested && !state.stop {
            state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.stop {
            return;
        }
        state.requested = false;
        drop(state);
        // Busy (another connection is checkpointing) or failed: the next request, or the
        // committing connection's own checkpoint, does it.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.shared.wake.notify_one();
        // Joined before the store's own connection closes, so that one, closing last, folds
        // the log into the database and removes it.
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}
