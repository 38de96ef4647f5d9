//! Contracts shared by every `ao` crate.
//!
//! This crate holds what the other crates agree on and nothing that acts: identifiers
//! ([`ids`]), run statuses ([`run`]), configuration ([`config`]), secret redaction
//! ([`redact`]) and the typed results of the built-in workflows with their schemas
//! ([`types`]). It does no network I/O and starts no processes; the only I/O it does is reading
//! configuration files (`ao.toml`, `.env`) when asked to.
//!
//! ```
//! use ao_core::ids::RunId;
//! let id = RunId::new();
//! assert_eq!(id.as_str().len(), 26);
//! ```

pub mod config;
pub mod ids;
pub mod redact;
pub mod run;
pub mod types;
