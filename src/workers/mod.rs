//! The background workers, each its own task beside the HTTP server (`server::start`):
//! - `dispatch`: moves queued messages to their provider (Meta's Cloud API or the sandbox),
//!   paced per channel, with retries;
//! - `callbacks`: delivers the outbox of events to integrators' webhook endpoints and
//!   messages' `callbackUrl` (the direction plantilla → integrator; Meta → plantilla is
//!   `http::inbound` and `service::inbound`);
//! - `template_sync`: reads each Cloud channel's templates from Meta periodically;
//! - `housekeeping`: deletes expired idempotency keys.

pub mod callbacks;
pub mod dispatch;
pub mod housekeeping;
pub mod template_sync;
