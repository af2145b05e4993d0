// Issue 15, the way back: inbound messages and `message.received`, the suppression list and
// opt-outs with the 131049/131050 rules, template and number health with pricing and usage.
// Each test runs on SQLite and on PostgreSQL (`both_databases!`, see tests/it/common/mod.rs).

use crate::common;

mod health;
mod inbound;
mod suppressions;
