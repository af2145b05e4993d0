// The inbound message tests on PostgreSQL (see tests/common/mod.rs).
include!("inbound.rs");
