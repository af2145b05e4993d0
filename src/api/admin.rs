//! The admin API's types: accounts, API keys, channels, groups.

use utoipa::openapi::{RefOr, Schema};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(_out: &mut Vec<(String, RefOr<Schema>)>) {}
