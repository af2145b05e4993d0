//! Channel secrets at rest: sealed with ChaCha20-Poly1305 under a key from the configuration.
//!
//! A sealed value is `v1:<key id>:<base64 of nonce || ciphertext>`: a random 96-bit nonce per
//! value, and the channel id and column as associated data, so a sealed value moved to another
//! channel or column does not open. The key id is the first 8 hex digits of the key's SHA-256;
//! it names the key a value needs without revealing it. Old keys (rotation) still open what
//! they sealed; only the current key seals.
//!
//! Without a key values are stored as given (the demo, tests); a value that would read as
//! sealed is written `plain:<value>` so it reads back unchanged. Values written before
//! encryption was turned on read as they are and are sealed on their next write.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

const SEALED: &str = "v1:";
const PLAIN: &str = "plain:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a stored secret cannot be read. Never holds the value or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "it was encrypted with key {key_id}, which is not configured: set \
         PLANTILLA_ENCRYPTION_KEY to that key or add it to PLANTILLA_ENCRYPTION_OLD_KEYS"
    )]
    MissingKey { key_id: String },
    #[error(
        "it does not authenticate under key {key_id}: the stored value was altered or moved \
         from another channel or field"
    )]
    Unauthentic { key_id: String },
    #[error("it is not a well-formed encrypted value")]
    Malformed,
}

/// A key given in the configuration is not 32 bytes in hex or base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be 32 bytes written as 64 hex digits or as base64 (generate one with \
     `openssl rand -hex 32`)"
)]
pub struct BadKey;

struct SealingKey {
    id: String,
    aead: ChaCha20Poly1305,
}

/// Seals and opens channel secrets. Built once from the configuration and given to the store,
/// which seals on write and opens on read: services only ever see plain values.
pub struct Cipher {
    current: Option<SealingKey>,
    old: Vec<SealingKey>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("current", &self.current_key_id())
            .field(
                "old",
                &self.old.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Decodes a configured key: 64 hex digits or base64 (with or without padding) of 32 bytes.
pub fn decode_key(text: &str) -> Result<[u8; 32], BadKey> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|_| BadKey)?
    } else {
        let unpadded = text.trim_end_matches('=');
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(unpadded)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded))
            .map_err(|_| BadKey)?
    };
    bytes.try_into().map_err(|_| BadKey)
}

/// The public name of a key: the first 8 hex digits of its SHA-256.
pub fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// The key a stored value was sealed with, if it is sealed.
pub fn sealed_with(stored: &str) -> Option<&str> {
    stored
        .strip_prefix(SEALED)
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id)
}

impl SealingKey {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            id: key_id(key),
            aead: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }
}

impl Cipher {
    /// No key: values are stored as given.
    pub fn none() -> Self {
        Self {
            current: None,
            old: Vec::new(),
        }
    }

    /// A cipher sealing with `current` and also opening with `old` (keys as configured: hex
    /// or base64). Errors name which key is bad (`Err(None)`: the current one, `Err(Some(i))`:
    /// old key `i`, counting from 1), never its value.
    pub fn new(current: Option<&str>, old: &[&str]) -> Result<Self, (Option<usize>, BadKey)> {
        let current = current
            .map(|k| decode_key(k).map(|k| SealingKey::new(&k)))
            .transpose()
            .map_err(|e| (None, e))?;
        let mut olds: Vec<SealingKey> = Vec::new();
        for (i, text) in old.iter().enumerate() {
            let key = SealingKey::new(&decode_key(text).map_err(|e| (Some(i + 1), e))?);
            let known = current.iter().chain(olds.iter()).any(|k| k.id == key.id);
            if !known {
                olds.push(key);
            }
        }
        Ok(Self { current, old: olds })
    }

    /// The cipher of the settings `encryption_key` and `encryption_old_keys` (a comma-separated
    /// list); errors name the setting.
    pub fn from_settings(
        encryption_key: Option<&str>,
        encryption_old_keys: Option<&str>,
    ) -> anyhow::Result<Self> {
        let old: Vec<&str> = encryption_old_keys
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !old.is_empty() && encryption_key.is_none() {
            anyhow::bail!(
                "encryption_old_keys is set without encryption_key: keep the key to encrypt \
                 with in encryption_key (PLANTILLA_ENCRYPTION_KEY)"
            );
        }
        Self::new(encryption_key, &old).map_err(|(which, e)| match which {
            None => anyhow::anyhow!("encryption_key {e}"),
            Some(i) => anyhow::anyhow!("encryption_old_keys: key {i} of {} {e}", old.len()),
        })
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    fn key(&self, id: &str) -> Option<&SealingKey> {
        self.current
            .iter()
            .chain(self.old.iter())
            .find(|k| k.id == id)
    }

    /// What to store for `value`; `context` names where it is stored (`<channel id>/<column>`)
    /// and must be given again to open it. Empty stays empty: there is nothing to hide.
    pub fn seal(&self, context: &str, value: &str) -> String {
        if value.is_empty() {
            return String::new();
        }
        let Some(key) = &self.current else {
            return if value.starts_with(SEALED) || value.starts_with(PLAIN) {
                format!("{PLAIN}{value}")
            } else {
                value.to_string()
            };
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = key
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        format!("{SEALED}{}:{}", key.id, BASE64.encode(blob))
    }

    /// The value stored as `stored` under `context` (see [`Cipher::seal`]).
    pub fn open(&self, context: &str, stored: &str) -> Result<String, SecretError> {
        if let Some(value) = stored.strip_prefix(PLAIN) {
            return Ok(value.to_string());
        }
        let Some(rest) = stored.strip_prefix(SEALED) else {
            // Stored before encryption was turned on, or without a key.
            return Ok(stored.to_string());
        };
        let (id, data) = rest.split_once(':').ok_or(SecretError::Malformed)?;
        let key = self.key(id).ok_or_else(|| SecretError::MissingKey {
            key_id: id.to_string(),
        })?;
        let blob = BASE64.decode(data).map_err(|_| SecretError::Malformed)?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plain = key
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unauthentic {
                key_id: id.to_string(),
            })?;
        String::from_utf8(plain).map_err(|_| SecretError::Malformed)
    }

    /// Whether `stored` is as [`Cipher::seal`] would write it now: sealed under the current
    /// key, or (without a key) not sealed. Values that are not need a rewrite.
    pub fn is_current(&self, stored: &str) -> bool {
        if stored.is_empty() {
            return true;
        }
        match (&self.current, sealed_with(stored)) {
            (Some(key), Some(id)) => key.id == id,
            (Some(_), None) => false,
            (None, sealed) => sealed.is_none(),
        }
    }

    /// Checks that every key the stored values need is configured, and says what is not
    /// under the current key yet (for a start-up warning).
    pub fn check(&self, census: &SealCensus) -> Result<Option<String>, SecretError> {
        if let Some(missing) = census.by_key.keys().find(|id| self.key(id).is_none()) {
            return Err(SecretError::MissingKey {
                key_id: missing.clone(),
            });
        }
        let Some(current) = self.current_key_id() else {
            return Ok(None);
        };
        let under_old: u64 = census
            .by_key
            .iter()
            .filter(|(id, _)| *id != current)
            .map(|(_, n)| n)
            .sum();
        Ok((census.unencrypted + under_old > 0).then(|| {
            format!(
                "{} channel secrets are not encrypted with the current key {current} \
                 ({} unencrypted, {under_old} under old keys); run \
                 `plantilla admin secrets reencrypt`",
                census.unencrypted + under_old,
                census.unencrypted
            )
        }))
    }
}

/// How the stored secrets are kept: how many are unencrypted and how many are sealed under
/// each key id (empty values are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SealCensus {
    pub unencrypted: u64,
    pub by_key: BTreeMap<String, u64>,
}

impl SealCensus {
    pub fn count(&mut self, stored: &str) {
        if stored.is_empty() {
            return;
        }
        match sealed_with(stored) {
            Some(id) => *self.by_key.entry(id.to_string()).or_default() += 1,
            None => self.unencrypted += 1,
        }
    }
}

/// The associated data of a channel's secret: which channel and which column.
pub fn channel_context(channel_id: &str, column: &str) -> String {
    format!("channel/{channel_id}/{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    const CTX: &str = "channel/ch_1/access_token";

    fn id(k: &str) -> String {
        key_id(&decode_key(k).unwrap())
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let c = Cipher::new(Some(K1), &[]).unwrap();
        let a = c.seal(CTX, "EAAG-secret-token");
        let b = c.seal(CTX, "EAAG-secret-token");
        assert_ne!(a, b, "a random nonce per value");
        assert!(a.starts_with(&format!("v1:{}:", id(K1))), "{a}");
        assert!(!a.contains("EAAG"));
        assert_eq!(c.open(CTX, &a).unwrap(), "EAAG-secret-token");
        assert_eq!(c.open(CTX, &b).unwrap(), "EAAG-secret-token");
        assert_eq!(c.seal(CTX, ""), "");
        assert_eq!(c.open(CTX, "").unwrap(), "");
        let unicode = c.seal(CTX, "contraseña ✓");
        assert_eq!(c.open(CTX, &unicode).unwrap(), "contraseña ✓");
    }

    #[test]
    fn tampering_is_detected() {
        let c = Cipher::new(Some(K1), &[]).unwrap();
        let sealed = c.seal(CTX, "EAAG-secret-token");
        let (head, data) = sealed.rsplit_once(':').unwrap();
        let mut blob = BASE64.decode(data).unwrap();
        for i in [0, NONCE_LEN, blob.len() - 1] {
            blob[i] ^= 1;
            let altered = format!("{head}:{}", BASE64.encode(&blob));
            assert_eq!(
                c.open(CTX, &altered),
                Err(SecretError::Unauthentic { key_id: id(K1) }),
                "byte {i}"
            );
            blob[i] ^= 1;
        }
        // Moved to another channel or another column: it does not open.
        for other in ["channel/ch_2/access_token", "channel/ch_1/app_secret"] {
            assert!(matches!(
                c.open(other, &sealed),
                Err(SecretError::Unauthentic { .. })
            ));
        }
        let truncated = format!("{head}:{}", BASE64.encode(&blob[..20]));
        assert_eq!(c.open(CTX, &truncated), Err(SecretError::Malformed));
        assert_eq!(
            c.open(CTX, &format!("{head}:not base64!")),
            Err(SecretError::Malformed)
        );
        assert_eq!(c.open(CTX, "v1:nocolon"), Err(SecretError::Malformed));
    }

    #[test]
    fn a_wrong_key_names_the_key_needed() {
        let sealed = Cipher::new(Some(K1), &[]).unwrap().seal(CTX, "s3cret");
        for c in [Cipher::new(Some(K2), &[]).unwrap(), Cipher::none()] {
            let err = c.open(CTX, &sealed).unwrap_err();
            assert_eq!(err, SecretError::MissingKey { key_id: id(K1) });
            let text = err.to_string();
            assert!(text.contains(&id(K1)), "{text}");
            assert!(text.contains("PLANTILLA_ENCRYPTION_OLD_KEYS"), "{text}");
        }
        // A different key that claims the same id (a forged or corrupted id) fails
        // authentication rather than producing garbage.
        let forged = sealed.replace(&id(K1), &id(K2));
        assert_eq!(
            Cipher::new(Some(K2), &[]).unwrap().open(CTX, &forged),
            Err(SecretError::Unauthentic { key_id: id(K2) })
        );
    }

    #[test]
    fn old_keys_open_and_only_the_current_key_seals() {
        let sealed_k1 = Cipher::new(Some(K1), &[]).unwrap().seal(CTX, "old");
        let rotated = Cipher::new(Some(K2), &[K1]).unwrap();
        assert_eq!(rotated.open(CTX, &sealed_k1).unwrap(), "old");
        assert!(!rotated.is_current(&sealed_k1));
        let resealed = rotated.seal(CTX, "old");
        assert!(resealed.starts_with(&format!("v1:{}:", id(K2))));
        assert!(rotated.is_current(&resealed));
        assert!(!rotated.is_current("plaintext"));
        assert!(rotated.is_current(""));
        // The old key alone can no longer read what the new key sealed.
        assert!(
            Cipher::new(Some(K1), &[])
                .unwrap()
                .open(CTX, &resealed)
                .is_err()
        );
        // The current key repeated among the old ones is harmless.
        assert_eq!(Cipher::new(Some(K2), &[K2, K1, K1]).unwrap().old.len(), 1);
    }

    #[test]
    fn key_ids_and_key_formats() {
        let bytes = decode_key(K1).unwrap();
        assert_eq!(bytes[31], 0x1f);
        // SHA-256 of the bytes 0..=31, first 4 bytes.
        assert_eq!(key_id(&bytes), "630dcd29");
        assert_eq!(id(K1).len(), 8);
        assert_ne!(id(K1), id(K2));
        let b64 = BASE64.encode(bytes);
        assert_eq!(decode_key(&b64).unwrap(), bytes);
        assert_eq!(decode_key(b64.trim_end_matches('=')).unwrap(), bytes);
        assert_eq!(decode_key(&K1.to_uppercase()).unwrap(), bytes);
        assert_eq!(decode_key(&format!(" {K1}\n")).unwrap(), bytes);
        for bad in [
            "",
            "abcd",
            &K1[..62],
            &BASE64.encode([0u8; 16]),
            "not a key at all",
        ] {
            assert_eq!(decode_key(bad), Err(BadKey), "{bad}");
        }
        assert!(matches!(Cipher::new(Some("short"), &[]), Err((None, _))));
        assert!(matches!(
            Cipher::new(Some(K1), &[K2, "short"]),
            Err((Some(2), _))
        ));
        assert_eq!(sealed_with("v1:abcd1234:xyz"), Some("abcd1234"));
        assert_eq!(sealed_with("EAAG"), None);
    }

    #[test]
    fn without_a_key_values_are_kept_as_given() {
        let c = Cipher::none();
        assert_eq!(c.current_key_id(), None);
        assert_eq!(c.seal(CTX, "EAAG-token"), "EAAG-token");
        assert_eq!(c.open(CTX, "EAAG-token").unwrap(), "EAAG-token");
        // A value that would read as sealed is escaped, and reads back unchanged.
        for tricky in ["v1:abc:def", "plain:x"] {
            let stored = c.seal(CTX, tricky);
            assert_eq!(stored, format!("plain:{tricky}"));
            assert_eq!(c.open(CTX, &stored).unwrap(), tricky);
            assert!(c.is_current(&stored));
            // A keyed cipher reads it too.
            assert_eq!(
                Cipher::new(Some(K1), &[])
                    .unwrap()
                    .open(CTX, &stored)
                    .unwrap(),
                tricky
            );
        }
    }

    #[test]
    fn census_check_names_missing_keys_and_counts_stale_values() {
        let k1 = Cipher::new(Some(K1), &[]).unwrap();
        let mut census = SealCensus::default();
        for v in ["", "plain-old", &k1.seal(CTX, "a"), &k1.seal(CTX, "b")] {
            census.count(v);
        }
        assert_eq!(census.unencrypted, 1);
        assert_eq!(census.by_key.get(&id(K1)), Some(&2));
        assert_eq!(
            Cipher::new(Some(K2), &[]).unwrap().check(&census),
            Err(SecretError::MissingKey { key_id: id(K1) })
        );
        assert!(Cipher::none().check(&census).is_err());
        let stale = Cipher::new(Some(K2), &[K1])
            .unwrap()
            .check(&census)
            .unwrap();
        assert!(stale.unwrap().contains("3 channel secrets"));
        census.unencrypted = 0;
        assert_eq!(k1.check(&census), Ok(None));
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let c = Cipher::new(Some(K1), &[K2]).unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains(&id(K1)) && shown.contains(&id(K2)),
            "{shown}"
        );
        assert!(!shown.contains(K1) && !shown.contains(&K1[..16]), "{shown}");
    }
}
