//! The console tests on PostgreSQL (see tests/common/mod.rs).
include!("console.rs");
