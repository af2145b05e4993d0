//! The domain: pure rules with no I/O. Phone numbers, templates and their placeholders, the
//! message and conversation state machines, Meta's error classes and the retry schedule.

pub mod ids;
pub mod meta_error;
pub mod phone;
mod phone_data;
pub mod rate_limit;
pub mod retry;
pub mod status;
pub mod template;
