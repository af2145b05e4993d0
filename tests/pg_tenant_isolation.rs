//! The tenant_isolation tests on PostgreSQL (see tests/common/mod.rs).
include!("tenant_isolation.rs");
