//! Stopping a run: a token the CLI (Ctrl-C), `ao runs cancel` (through the store) and the MCP
//! server trip; the engine stops at the next safe point and records who stopped it.
//!
//! Two ways to trip it: [`CancelToken::cancel`] ends the run for good (`cancelled`), while
//! [`CancelToken::stop`] only interrupts this process's work and leaves the run resumable
//! (`failed` with kind `stopped`), as a person pressing Ctrl-C expects. A cancel wins over a
//! stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Clone, Default, Debug)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default, Debug)]
struct Inner {
    flag: AtomicBool,
    /// Tripped by `cancel` (final) rather than only by `stop`.
    final_: AtomicBool,
    notify: Notify,
    by: Mutex<Option<String>>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the run for good; `by` says who (`ao runs cancel`, `mcp: reason`).
    pub fn cancel(&self, by: &str) {
        {
            let mut who = self.inner.by.lock().unwrap_or_else(|p| p.into_inner());
            // A cancel names who made the run final, even after a stop.
            if who.is_none() || !self.is_final() {
                *who = Some(by.to_string());
            }
        }
        self.inner.final_.store(true, Ordering::SeqCst);
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Stops this process's work on the run at the next safe point, leaving it resumable; `by`
    /// says who (`ctrl-c`, `SIGTERM`). The first caller wins.
    pub fn stop(&self, by: &str) {
        {
            let mut who = self.inner.by.lock().unwrap_or_else(|p| p.into_inner());
            if who.is_none() {
                *who = Some(by.to_string());
            }
        }
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether the run was cancelled for good (not only stopped).
    pub fn is_final(&self) -> bool {
        self.inner.final_.load(Ordering::SeqCst)
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    pub fn cancelled_by(&self) -> Option<String> {
        self.inner
            .by
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}
