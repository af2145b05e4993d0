//! The template authoring tests on PostgreSQL (see tests/common/mod.rs).
include!("template_authoring.rs");
