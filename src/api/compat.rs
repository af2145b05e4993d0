//! The AtomChat-compatible API's envelopes and send requests (wording dictated by the contract).

use utoipa::openapi::{RefOr, Schema};

/// This family's component schemas ([`super::schemas`]).
pub(super) fn schemas(_out: &mut Vec<(String, RefOr<Schema>)>) {}
