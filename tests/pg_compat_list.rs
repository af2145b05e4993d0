//! The compat_list tests on PostgreSQL (see tests/common/mod.rs).
include!("compat_list.rs");
