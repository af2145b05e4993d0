//! The sigterm tests on PostgreSQL (see tests/common/mod.rs).
include!("sigterm.rs");
