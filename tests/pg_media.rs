//! The media tests on PostgreSQL (see tests/common/mod.rs).
include!("media.rs");
