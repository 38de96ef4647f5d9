//! The engine: workflow definition, compiler, scheduler, channels, checkpoint store, events.
//!
//! It knows nothing about models or tools: `llm`, `tool` and `builtin` nodes are run by what
//! the host plugs in ([`host::Host`]).

pub(crate) mod cancel;
pub(crate) mod channel;
pub(crate) mod compile;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod expr;
pub(crate) mod graph;
pub(crate) mod host;
pub(crate) mod locate;
pub(crate) mod nesting;
pub(crate) mod render;
pub(crate) mod scheduler;
pub(crate) mod spec;
pub(crate) mod store;
pub(crate) mod wal;
