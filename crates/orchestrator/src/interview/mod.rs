//! Worker onboarding interviews.
pub mod checks;
pub mod code;
pub mod suite;
