//! Templates as shown, created, updated, submitted and previewed.

use utoipa::openapi::{RefOr, Schema};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(_out: &mut Vec<(String, RefOr<Schema>)>) {}
