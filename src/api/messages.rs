//! Messages, batches, conversations and their threads; what a send takes.

use utoipa::openapi::{RefOr, Schema};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(_out: &mut Vec<(String, RefOr<Schema>)>) {}
