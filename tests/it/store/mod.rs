//! The stores below the services: what every `Store` must do, checked on both databases
//! (`conformance`), and what one engine adds (`sqlite_engine`: the SQLite group commit;
//! `postgres_engine`: migrations, concurrency without a single writer, prepared statements;
//! `postgres_outcomes`, `postgres_sends` and `postgres_status_group`: PostgreSQL's group
//! commit of delivery outcomes, of sends and of a webhook's statuses); `cancel_batch`: the
//! set-based cancel of a batch against its messages cancelled one by one, on both.

mod cancel_batch;
mod conformance;
mod postgres_engine;
mod postgres_outcomes;
mod postgres_sends;
mod postgres_status_group;
mod sqlite_engine;
