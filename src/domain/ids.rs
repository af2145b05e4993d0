//! Identifiers and secrets: opaque prefixed ids, public tokens and their hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new opaque id: a prefix naming the kind (`msg_`, `conv_`, …) and a time-ordered UUID.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// An id type: an opaque prefixed id (`msg_…`) that the API reads and writes as a string.
/// Each kind of id is its own type, so one cannot be passed where another is meant; the
/// OpenAPI document names it as a component.
macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident = $prefix:literal;)*) => {
        /// The schema of every id type, by name, for the OpenAPI document.
        pub fn schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)> {
            use utoipa::{PartialSchema, ToSchema};
            vec![$(($name::name().into_owned(), $name::schema())),*]
        }
        $(
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix of this kind's ids, without the `_`.
            pub const PREFIX: &'static str = $prefix;

            /// A new id of this kind.
            pub fn generate() -> Self {
                Self(new_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    )*};
}

id_type! {
    /// An account id (`acc_…`).
    AccountId = "acc";
    /// An account API key's id (`key_…`); not the key itself.
    ApiKeyId = "key";
    /// A batch id (`bat_…`).
    BatchId = "bat";
    /// A channel id (`ch_…`).
    ChannelId = "ch";
    /// A conversation id (`conv_…`).
    ConversationId = "conv";
    /// An event id (`evt_…`): the `webhook-id` of a callback delivery.
    EventId = "evt";
    /// A group id (`grp_…`).
    GroupId = "grp";
    /// An inbound message's id (`in_…`): what a customer wrote or clicked.
    InboundMessageId = "in";
    /// A message id (`msg_…`).
    MessageId = "msg";
    /// A template id (`tpl_…`).
    TemplateId = "tpl";
    /// A webhook endpoint id (`we_…`).
    WebhookEndpointId = "we";
}

/// A new random secret of 32 bytes, hex encoded, with a recognisable prefix.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// How tokens are stored: SHA-256, hex. Tokens are 256-bit random values, so a fast hash is
/// enough (no password stretching needed) and lookups stay an index probe.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_ordered() {
        let a = new_id("msg");
        let b = new_id("msg");
        assert!(a.starts_with("msg_"));
        assert_ne!(a, b);
        assert!(a < b, "v7 ids sort by creation time");
    }

    #[test]
    fn id_types_are_prefixed_and_read_and_written_as_strings() {
        let id = MessageId::generate();
        assert!(id.as_str().starts_with("msg_"), "{id}");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: MessageId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert_eq!(ChannelId::from("ch_1"), "ch_1");
    }

    #[test]
    fn token_hash_is_stable_and_not_the_token() {
        let t = new_secret("pk_");
        assert!(t.starts_with("pk_") && t.len() == 3 + 64);
        assert_eq!(hash_token(&t), hash_token(&t));
        assert_ne!(hash_token(&t), t);
        assert_ne!(hash_token("a"), hash_token("b"));
    }
}
