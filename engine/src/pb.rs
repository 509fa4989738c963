//! Serde adapters that store protobuf messages as hex-encoded protobuf bytes inside the
//! JSON of a run's or a schedule's stored state: exact, and independent of the messages'
//! JSON mapping.

use prost::Message;
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// Lowercase hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The bytes that [`hex`] wrote.
pub(crate) fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd length".to_owned());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn decode<'de, M: Message + Default, D: Deserializer<'de>>(s: &str) -> Result<M, D::Error> {
    let bytes = unhex(s).map_err(D::Error::custom)?;
    M::decode(bytes.as_slice()).map_err(D::Error::custom)
}

/// A message.
pub(crate) mod message {
    use super::*;

    pub(crate) fn serialize<M: Message, S: Serializer>(m: &M, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&m.encode_to_vec()))
    }

    pub(crate) fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<M, D::Error> {
        let s = String::deserialize(d)?;
        decode::<M, D>(&s)
    }
}

/// An optional message.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<M: Message, S: Serializer>(
        m: &Option<M>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => s.serialize_some(&hex(&m.encode_to_vec())),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<M>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => decode::<M, D>(&s).map(Some),
            None => Ok(None),
        }
    }
}

/// A list of messages.
pub(crate) mod messages {
    use super::*;

    pub(crate) fn serialize<M: Message, S: Serializer>(v: &[M], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|m| hex(&m.encode_to_vec())))
    }

    pub(crate) fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<M>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| decode::<M, D>(s))
            .collect()
    }
}

/// A workflow execution status, as its number.
pub(crate) mod status {
    use super::*;
    use crate::proto::enums::WorkflowExecutionStatus;

    pub(crate) fn serialize<S: Serializer>(
        v: &WorkflowExecutionStatus,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*v as i32)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<WorkflowExecutionStatus, D::Error> {
        let n = i32::deserialize(d)?;
        WorkflowExecutionStatus::try_from(n).map_err(D::Error::custom)
    }
}
