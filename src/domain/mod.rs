//! The domain: pure rules with no I/O. Phone numbers, templates and their placeholders, the
//! message and conversation state machines, Meta's error classes, the retry schedule and
//! status callbacks' events and signatures.

pub mod callback;
pub mod ids;
pub mod inbound;
pub mod media;
pub mod meta_error;
pub mod opt_out;
pub mod phone;
mod phone_data;
pub mod quiet_hours;
pub mod rate_limit;
pub mod retry;
pub mod status;
pub mod template;
pub mod template_send;
mod time_zone_data;
pub mod usage;
