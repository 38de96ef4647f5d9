//! The engine: workflow definition, compiler, scheduler, channels, checkpoint store, events.
//!
//! It knows nothing about models or tools: `llm`, `tool` and `builtin` nodes are run by what
//! the host plugs in ([`host::Host`]).

pub mod cancel;
pub mod channel;
pub mod compile;
pub mod error;
pub mod events;
pub mod expr;
pub mod graph;
pub mod host;
pub mod locate;
pub mod render;
pub mod scheduler;
pub mod spec;
pub mod store;
