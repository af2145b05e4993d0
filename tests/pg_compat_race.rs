//! The compat_race tests on PostgreSQL (see tests/common/mod.rs).
include!("compat_race.rs");
