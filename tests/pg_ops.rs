//! The ops tests on PostgreSQL (see tests/common/mod.rs).
include!("ops.rs");
