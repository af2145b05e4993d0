// The crash test (tests/crash_kill9.rs) on PostgreSQL: every restart on the same fresh database.
include!("crash_kill9.rs");
