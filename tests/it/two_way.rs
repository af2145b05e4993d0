// Issue 15, the way back, in one test crate (each crate links the whole product, so fewer
// crates build faster): inbound messages and `message.received`, the suppression list and
// opt-outs with the 131049/131050 rules, template and number health with pricing and usage.
// `tests/pg_two_way.rs` runs the same tests on PostgreSQL (see tests/common/mod.rs).

mod common;

#[path = "two_way/health.rs"]
mod health;
#[path = "two_way/inbound.rs"]
mod inbound;
#[path = "two_way/suppressions.rs"]
mod suppressions;
