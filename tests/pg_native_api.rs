// The native API tests on PostgreSQL (see tests/common/mod.rs).
include!("native_api.rs");
