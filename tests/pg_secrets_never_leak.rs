//! The secrets_never_leak tests on PostgreSQL (see tests/common/mod.rs).
include!("secrets_never_leak.rs");
