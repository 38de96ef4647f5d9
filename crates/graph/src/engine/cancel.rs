//! Cancellation: a token the CLI (Ctrl-C), `ao runs cancel` (through the store) and the MCP
//! server trip; the engine stops at the next safe point and records who cancelled.

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
    notify: Notify,
    by: Mutex<Option<String>>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels; `by` says who (`ctrl-c`, `ao runs cancel`, `mcp: reason`). The first caller wins.
    pub fn cancel(&self, by: &str) {
        {
            let mut who = self.inner.by.lock().unwrap_or_else(|p| p.into_inner());
            if who.is_none() {
                *who = Some(by.to_string());
            }
        }
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
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
