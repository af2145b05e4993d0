// The opt-out tests on PostgreSQL (see tests/common/mod.rs).
include!("suppressions.rs");
