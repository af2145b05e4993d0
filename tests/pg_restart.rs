//! The restart tests on PostgreSQL (see tests/common/mod.rs).
include!("restart.rs");
