//! AES-256-GCM encryption of payloads, with key ids for rotation.
//!
//! The encoded form is the Temporal samples' (and so the Python SDK's) encryption codec:
//! `encoding: binary/encrypted`, `encryption-key-id: <id>`, and data = 12-byte nonce
//! followed by the AES-GCM ciphertext of the whole original payload message (its metadata
//! included). Payloads that are not encrypted pass through decoding unchanged, so a codec
//! can be turned on for a namespace that already has plain histories.

use std::{collections::BTreeMap, path::Path};

use aes_gcm::{
    aead::{Aead, AeadCore, KeyInit, OsRng},
    Aes256Gcm, Key, Nonce,
};
use base64::Engine;
use prost::Message;

use crate::converter::{Payload, PayloadCodec, PayloadError, ENCODING_KEY};

const ENCRYPTED: &[u8] = b"binary/encrypted";
const KEY_ID: &str = "encryption-key-id";
const NONCE_LEN: usize = 12;

/// Why a key ring could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An environment variable is missing.
    #[error("the environment variable `{0}` is not set: it holds the encryption keys as `id=base64key[,id=base64key…]`, the first one current")]
    MissingVariable(String),
    /// The key file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A key is malformed.
    #[error("encryption key `{id}`: {problem}")]
    BadKey {
        /// The key's id.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// No key at all.
    #[error("no encryption key given: at least one `id=base64key` is needed")]
    Empty,
}

/// Encrypts payloads with the current key and decrypts with any known key: rotate by
/// putting a new key first and keeping the old ones after it.
#[derive(Clone)]
pub struct AesGcmCodec {
    current: String,
    keys: BTreeMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for AesGcmCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesGcmCodec")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AesGcmCodec {
    /// A codec from `(id, 32-byte key)` pairs; the first is the current key.
    pub fn new<I, S>(keys: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = (S, Vec<u8>)>,
        S: Into<String>,
    {
        let mut current = None;
        let mut ring = BTreeMap::new();
        for (id, key) in keys {
            let id = id.into();
            if key.len() != 32 {
                return Err(KeyError::BadKey {
                    id,
                    problem: format!("AES-256 needs 32 bytes, found {}", key.len()),
                });
            }
            current.get_or_insert_with(|| id.clone());
            ring.insert(id, Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)));
        }
        Ok(Self {
            current: current.ok_or(KeyError::Empty)?,
            keys: ring,
        })
    }

    /// Keys from the text `id=base64key[,id=base64key…]` (commas or new lines between keys;
    /// the first is current).
    pub fn from_spec(spec: &str) -> Result<Self, KeyError> {
        let keys = spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty() && !entry.starts_with('#'))
            .map(|entry| {
                let (id, key) = entry.split_once('=').ok_or_else(|| KeyError::BadKey {
                    id: entry.chars().take(8).collect(),
                    problem: "expected `id=base64key`".to_owned(),
                })?;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(key.trim())
                    .map_err(|e| KeyError::BadKey {
                        id: id.trim().to_owned(),
                        problem: format!("not base64: {e}"),
                    })?;
                Ok((id.trim().to_owned(), key))
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        Self::new(keys)
    }

    /// Keys from an environment variable (see [`from_spec`](Self::from_spec)).
    pub fn from_env(variable: &str) -> Result<Self, KeyError> {
        let spec =
            std::env::var(variable).map_err(|_| KeyError::MissingVariable(variable.to_owned()))?;
        Self::from_spec(&spec)
    }

    /// Keys from a file, one `id=base64key` per line (see [`from_spec`](Self::from_spec)).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let spec = std::fs::read_to_string(path).map_err(|source| KeyError::File {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_spec(&spec)
    }

    /// The id of the key new payloads are encrypted with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    fn encrypt(&self, payload: Payload) -> Result<Payload, PayloadError> {
        let cipher = &self.keys[&self.current];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut data = nonce.to_vec();
        data.extend(
            cipher
                .encrypt(&nonce, payload.encode_to_vec().as_slice())
                .map_err(|e| PayloadError::Codec(format!("encryption failed: {e}")))?,
        );
        Ok(Payload {
            metadata: [
                (ENCODING_KEY.to_owned(), ENCRYPTED.to_vec()),
                (KEY_ID.to_owned(), self.current.as_bytes().to_vec()),
            ]
            .into(),
            data,
            ..Default::default()
        })
    }

    fn decrypt(&self, payload: Payload) -> Result<Payload, PayloadError> {
        if payload.metadata.get(ENCODING_KEY).map(Vec::as_slice) != Some(ENCRYPTED) {
            return Ok(payload);
        }
        let key_id = payload
            .metadata
            .get(KEY_ID)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .unwrap_or_default();
        let cipher = self.keys.get(&key_id).ok_or_else(|| {
            PayloadError::Codec(format!(
                "payload encrypted with key `{key_id}`, which this codec does not have (known \
                 keys: {})",
                self.keys.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if payload.data.len() < NONCE_LEN {
            return Err(PayloadError::Codec(
                "encrypted payload shorter than its nonce".to_owned(),
            ));
        }
        let (nonce, ciphertext) = payload.data.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                PayloadError::Codec(format!(
                    "payload does not decrypt with key `{key_id}`: wrong key or corrupted data"
                ))
            })?;
        Payload::decode(plain.as_slice())
            .map_err(|e| PayloadError::Codec(format!("decrypted payload is malformed: {e}")))
    }
}

impl PayloadCodec for AesGcmCodec {
    fn encode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        payloads.into_iter().map(|p| self.encrypt(p)).collect()
    }

    fn decode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        payloads.into_iter().map(|p| self.decrypt(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converter::{from_payload, to_payload};

    fn key(byte: u8) -> Vec<u8> {
        vec![byte; 32]
    }

    #[test]
    fn round_trip_hides_the_plaintext() {
        let codec = AesGcmCodec::new([("k1", key(1))]).unwrap();
        let plain = to_payload(&"top secret").unwrap();
        let encrypted = codec.encode(vec![plain.clone()]).unwrap();
        assert_eq!(encrypted[0].metadata[ENCODING_KEY], ENCRYPTED);
        assert_eq!(encrypted[0].metadata[KEY_ID], b"k1");
        assert!(!String::from_utf8_lossy(&encrypted[0].data).contains("secret"));
        let decrypted = codec.decode(encrypted).unwrap();
        assert_eq!(decrypted, vec![plain]);
        assert_eq!(from_payload::<String>(&decrypted[0]).unwrap(), "top secret");
    }

    #[test]
    fn rotation_decrypts_old_payloads_and_encrypts_with_the_new_key() {
        let old = AesGcmCodec::new([("k1", key(1))]).unwrap();
        let sealed = old.encode(vec![to_payload(&42u32).unwrap()]).unwrap();
        let rotated = AesGcmCodec::from_spec(&format!(
            "k2={},k1={}",
            base64::engine::general_purpose::STANDARD.encode(key(2)),
            base64::engine::general_purpose::STANDARD.encode(key(1))
        ))
        .unwrap();
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(
            from_payload::<u32>(&rotated.decode(sealed).unwrap()[0]).unwrap(),
            42
        );
        let fresh = rotated.encode(vec![to_payload(&1u8).unwrap()]).unwrap();
        assert_eq!(fresh[0].metadata[KEY_ID], b"k2");
    }

    #[test]
    fn plain_payloads_pass_through_and_unknown_keys_are_named() {
        let codec = AesGcmCodec::new([("k1", key(1))]).unwrap();
        let plain = to_payload(&"hello").unwrap();
        assert_eq!(codec.decode(vec![plain.clone()]).unwrap(), vec![plain]);
        let other = AesGcmCodec::new([("k9", key(9))]).unwrap();
        let sealed = other.encode(vec![to_payload(&"x").unwrap()]).unwrap();
        let err = codec.decode(sealed).unwrap_err().to_string();
        assert!(err.contains("`k9`") && err.contains("k1"), "{err}");
    }

    #[test]
    fn missing_configuration_is_named() {
        let err = AesGcmCodec::from_env("CAPSTAN_TEST_NO_SUCH_VARIABLE").unwrap_err();
        assert!(err.to_string().contains("CAPSTAN_TEST_NO_SUCH_VARIABLE"));
        let err = AesGcmCodec::from_file("/nonexistent/keys").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/keys"));
        let err = AesGcmCodec::from_spec("k1=AAAA").unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
}
