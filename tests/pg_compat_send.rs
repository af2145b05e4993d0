//! The compat_send tests on PostgreSQL (see tests/common/mod.rs).
include!("compat_send.rs");
