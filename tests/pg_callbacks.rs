// The status callback tests on PostgreSQL (see tests/common/mod.rs).
include!("callbacks.rs");
