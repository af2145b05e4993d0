//! Usage, suppressions, webhook endpoints and callback deliveries, media, provider errors.

use utoipa::openapi::{RefOr, Schema};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(_out: &mut Vec<(String, RefOr<Schema>)>) {}
