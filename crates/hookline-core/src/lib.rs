//! Hookline's pure domain: typed ids, topics, the delivery body, signing set-up and the retry policy.
//!
//! Architecture invariant: this crate does no I/O (no files, no sockets, no database); it only reads the clock
//! and the random number generator.

pub mod attempt;
pub mod body;
pub mod chat;
pub mod clock;
pub mod duration;
pub mod headers;
pub mod health;
pub mod id;
pub mod json;
pub mod portal;
pub mod retry;
pub mod secret;
pub mod svg;
pub mod target;
pub mod time;
pub mod topic;

pub use hookline_verify::Scheme;
