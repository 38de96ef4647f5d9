//! Worker onboarding interviews.
pub mod checks;
pub mod code;
pub mod score;
pub mod suite;
pub mod trial;
