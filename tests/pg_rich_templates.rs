//! The rich_templates tests on PostgreSQL (see tests/common/mod.rs).
include!("rich_templates.rs");
