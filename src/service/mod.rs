//! Use cases. Every adapter (compatible API, admin API, command line, dispatcher) goes
//! through these; they hold the rules, the adapters only map shapes.

pub mod access;
pub mod admin;
pub mod authoring;
pub mod batch;
pub mod callbacks;
pub mod console;
pub mod inbound;
pub mod input;
pub mod media;
pub mod ops;
pub mod send;
pub mod suppressions;
pub mod templates;
pub mod usage;
pub mod views;
