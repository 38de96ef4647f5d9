//! Contracts shared by every `ao` crate.
//!
//! This crate holds what the other crates agree on and nothing that acts: identifiers
//! ([`ids`]), run statuses ([`run`]), configuration ([`config`]), secret redaction
//! ([`redact`]), the typed workflow results ([`types`]) and worker capability profiles
//! ([`profile`], dated with [`timestamp`]). It does no network I/O and starts no processes;
//! the only I/O it does is reading configuration files (`ao.toml`, `.env`) when asked to.
//!
//! ```
//! use ao_core::ids::RunId;
//! let id = RunId::new();
//! assert_eq!(id.as_str().len(), 26);
//! ```

pub mod config;
pub mod ids;
pub mod profile;
pub mod redact;
pub mod run;
pub mod timestamp;
pub mod types;
