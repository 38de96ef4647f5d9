//! Secret redaction, in one place for logs, events, stored exchanges, tool results and errors.
//! (Filled in by the tools/policy work.)
