//! The sandbox_lifecycle tests on PostgreSQL (see tests/common/mod.rs).
include!("sandbox_lifecycle.rs");
