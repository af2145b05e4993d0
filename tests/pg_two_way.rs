// The two-way tests (inbound, opt-outs, health and usage) on PostgreSQL (see tests/common/mod.rs).
include!("two_way.rs");
