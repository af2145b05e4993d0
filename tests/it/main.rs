//! The product's integration tests, one binary (one link of the product instead of one per
//! file). Each module is a former test file; the database is a parameter of each test (see
//! `common`): `cargo test --test it -- postgres` runs the PostgreSQL cases, `-- sqlite` the
//! SQLite ones, `-- console` one module. tests/secrets_never_leak.rs is the only other binary:
//! it owns the process's tracing subscriber.

#[macro_use]
mod common;
mod chaos;

mod admin_api;
mod callbacks;
mod campaigns;
mod cli_send;
mod cloud_delivery;
mod compat_list;
mod compat_race;
mod compat_send;
mod connection_loss;
mod connections;
mod console;
mod crash_kill9;
mod demo;
mod edge_errors;
mod fault_injection;
mod logging;
mod media;
mod multi_instance;
mod native_api;
mod openapi;
mod openapi_conformance;
mod ops;
mod restart;
mod rich_templates;
mod sandbox_lifecycle;
mod sigterm;
mod store;
mod template_authoring;
mod tenant_isolation;
mod two_way;
