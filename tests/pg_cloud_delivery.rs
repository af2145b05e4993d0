//! The cloud_delivery tests on PostgreSQL (see tests/common/mod.rs).
include!("cloud_delivery.rs");
