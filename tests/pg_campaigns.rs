// The campaign tests on PostgreSQL (see tests/common/mod.rs).
include!("campaigns.rs");
