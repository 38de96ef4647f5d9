//! Identifiers: run ids are ULIDs, so they sort by creation time.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of one run: a ULID in its 26-character Crockford base32 form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A fresh id, sortable by creation time.
    pub fn new() -> Self {
        RunId(ulid::Ulid::generate().to_string())
    }

    /// Wraps an id read back from storage or given by a user; no validation beyond that.
    pub fn from_string(id: impl Into<String>) -> Self {
        RunId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
