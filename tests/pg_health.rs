// The health and usage tests on PostgreSQL (see tests/common/mod.rs).
include!("health.rs");
