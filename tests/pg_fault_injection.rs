// The fault test (tests/fault_injection.rs) on PostgreSQL, in a fresh database.
include!("fault_injection.rs");
