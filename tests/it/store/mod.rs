//! The stores below the services: what every `Store` must do, checked on both databases
//! (`conformance`), and what one engine adds (`sqlite_engine`: the SQLite group commit;
//! `postgres_engine`: migrations, concurrency without a single writer, prepared statements;
//! `postgres_outcomes`: the PostgreSQL group commit of delivery outcomes).

mod conformance;
mod postgres_engine;
mod postgres_outcomes;
mod sqlite_engine;
