//! Identifiers and secrets: opaque prefixed ids, public tokens and their hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new opaque id: a prefix naming the kind (`msg_`, `conv_`, …) and a time-ordered UUID.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
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
    fn token_hash_is_stable_and_not_the_token() {
        let t = new_secret("pk_");
        assert!(t.starts_with("pk_") && t.len() == 3 + 64);
        assert_eq!(hash_token(&t), hash_token(&t));
        assert_ne!(hash_token(&t), t);
        assert_ne!(hash_token("a"), hash_token("b"));
    }
}
