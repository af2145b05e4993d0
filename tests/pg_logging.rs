//! The logging tests on PostgreSQL (see tests/common/mod.rs).
include!("logging.rs");
