//! The admin_api tests on PostgreSQL (see tests/common/mod.rs).
include!("admin_api.rs");
