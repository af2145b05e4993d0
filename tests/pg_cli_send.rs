// `plantilla send` against a server on PostgreSQL (see tests/common/mod.rs).
include!("cli_send.rs");
