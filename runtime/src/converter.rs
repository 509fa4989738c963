//! The data converter: Rust values to Temporal payloads and back.
//!
//! The encodings and bytes are those of the Python SDK's default converter, so a Python
//! program reads what Capstan writes and the other way round:
//!
//! | value | encoding | data |
//! |---|---|---|
//! | `()`, `None`, JSON `null` | `binary/null` | empty |
//! | [`Bytes`] | `binary/plain` | the bytes |
//! | anything else that serde serializes | `json/plain` | compact JSON, keys sorted, non-ASCII escaped |
//!
//! A [`PayloadCodec`] (compression, encryption) wraps the encoded payloads on the client and
//! the worker alike.

use std::{collections::HashMap, fmt, io, sync::Arc};

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};
use temporalio_common::{
    data_converters::PayloadConversionError,
    payload_visitor::{AsyncPayloadVisitor, PayloadField, PayloadFieldData, PayloadVisitable},
};

/// A Temporal payload: metadata (the `encoding` and codec-specific keys) and bytes.
pub use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The metadata key naming a payload's encoding.
pub const ENCODING_KEY: &str = "encoding";
/// `json/plain`: UTF-8 JSON.
pub const JSON_PLAIN: &str = "json/plain";
/// `binary/null`: no value (`None`, `()`).
pub const BINARY_NULL: &str = "binary/null";
/// `binary/plain`: raw bytes.
pub const BINARY_PLAIN: &str = "binary/plain";
/// `json/protobuf`: a protobuf message as protojson, its type in the `messageType`
/// metadata; read as the JSON it is.
pub const JSON_PROTOBUF: &str = "json/protobuf";

/// A value that travels as raw bytes (`binary/plain`), like Python's `bytes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

/// Described as what it is inside a JSON payload, an array of bytes; a top-level `Bytes`
/// travels as `binary/plain` instead, which JSON Schema has no word for.
impl schemars::JsonSchema for Bytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bytes".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<u8>>::json_schema(generator)
    }
}

// A top-level `Bytes` becomes `binary/plain` (the converter recognises the type); nested in
// a struct it is JSON, an array of numbers (Python's JSON encoder refuses bytes there too).
impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(Bytes)
    }
}

/// Why a payload could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The value could not be serialized.
    #[error("cannot serialize {type_name} to a payload: {source}")]
    Serialize {
        /// The Rust type.
        type_name: &'static str,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The payload's bytes do not fit the expected type.
    #[error("cannot read {type_name} from a `{encoding}` payload at `{path}`: {source}")]
    Deserialize {
        /// The Rust type.
        type_name: &'static str,
        /// The payload's encoding.
        encoding: String,
        /// Where in the value the problem is (`items[2].amount`; `.` for the whole value).
        path: String,
        /// What serde said (it names the field and position).
        source: serde_json::Error,
    },
    /// The payload has an encoding this converter does not know.
    #[error("cannot read {type_name} from a payload with encoding `{encoding}`: known encodings are json/plain, binary/null and binary/plain (is a payload codec missing?)")]
    UnknownEncoding {
        /// The Rust type.
        type_name: &'static str,
        /// The payload's encoding.
        encoding: String,
    },
    /// Fewer or more payloads than arguments.
    #[error("expected {expected} argument(s), got {found} payload(s)")]
    Arity {
        /// Arguments of the receiving function.
        expected: usize,
        /// Payloads received.
        found: usize,
    },
    /// A codec failed.
    #[error("payload codec failed: {0}")]
    Codec(String),
}

/// Converts one value to a payload.
pub fn to_payload<T: Serialize + 'static>(value: &T) -> Result<Payload, PayloadError> {
    let err = |source| PayloadError::Serialize {
        type_name: std::any::type_name::<T>(),
        source,
    };
    if let Some(Bytes(bytes)) = (value as &dyn std::any::Any).downcast_ref::<Bytes>() {
        return Ok(payload(BINARY_PLAIN, bytes.clone()));
    }
    let json = serde_json::to_value(value).map_err(err)?;
    if json.is_null() {
        return Ok(payload(BINARY_NULL, Vec::new()));
    }
    let mut data = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut data, PythonJson);
    json.serialize(&mut ser).map_err(err)?;
    Ok(payload(JSON_PLAIN, data))
}

/// Reads one value from a payload.
pub fn from_payload<T: DeserializeOwned>(payload: &Payload) -> Result<T, PayloadError> {
    let type_name = std::any::type_name::<T>();
    let encoding = encoding_of(payload);
    let de_err = |err: serde_path_to_error::Error<serde_json::Error>| PayloadError::Deserialize {
        type_name,
        encoding: encoding.to_owned(),
        path: err.path().to_string(),
        source: err.into_inner(),
    };
    match encoding {
        // A protobuf message as protojson (what Temporal's SDKs send for one) reads as the
        // JSON it is.
        JSON_PLAIN | JSON_PROTOBUF => {
            let mut de = serde_json::Deserializer::from_slice(&payload.data);
            let value = serde_path_to_error::deserialize(&mut de).map_err(de_err)?;
            de.end().map_err(|source| PayloadError::Deserialize {
                type_name,
                encoding: encoding.to_owned(),
                path: ".".to_owned(),
                source,
            })?;
            Ok(value)
        }
        BINARY_NULL => serde_path_to_error::deserialize(serde_json::Value::Null).map_err(de_err),
        BINARY_PLAIN => {
            let bytes =
                serde_json::Value::Array(payload.data.iter().map(|b| (*b).into()).collect());
            serde_path_to_error::deserialize(bytes).map_err(de_err)
        }
        other => Err(PayloadError::UnknownEncoding {
            type_name,
            encoding: other.to_owned(),
        }),
    }
}

/// The encoding named in a payload's metadata (empty when missing).
pub fn encoding_of(payload: &Payload) -> &str {
    payload
        .metadata
        .get(ENCODING_KEY)
        .and_then(|e| std::str::from_utf8(e).ok())
        .unwrap_or("")
}

/// A protobuf message as Temporal's `json/protobuf` payload: its protojson text `json`,
/// named by its full type name (`temporal.api.sdk.v1.WorkflowMetadata`).
pub(crate) fn proto_json_payload(message_type: &str, json: &serde_json::Value) -> Payload {
    let mut payload = payload(JSON_PROTOBUF, json.to_string().into_bytes());
    payload
        .metadata
        .insert("messageType".to_owned(), message_type.as_bytes().to_vec());
    payload
}

fn payload(encoding: &str, data: Vec<u8>) -> Payload {
    Payload {
        metadata: HashMap::from([(ENCODING_KEY.to_owned(), encoding.as_bytes().to_vec())]),
        data,
        ..Default::default()
    }
}

/// Reads a payload as JSON for display (logs, the tour, errors); never fails.
pub fn display_payload(payload: &Payload) -> String {
    match encoding_of(payload) {
        JSON_PLAIN | JSON_PROTOBUF => String::from_utf8_lossy(&payload.data).into_owned(),
        BINARY_NULL => "null".to_owned(),
        other => format!("<{} bytes of {other}>", payload.data.len()),
    }
}

/// Python's `json.dumps(separators=(",", ":"), sort_keys=True)`: compact, and every
/// non-ASCII character escaped as `\uXXXX` (surrogate pairs above the BMP). Keys come sorted
/// because `serde_json::Map` is a `BTreeMap`.
struct PythonJson;

impl serde_json::ser::Formatter for PythonJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// The arguments of a workflow, activity or handler: a tuple whose elements travel as one
/// payload each, the way the Python SDK passes positional arguments.
pub trait Args: Sized + Send + 'static {
    /// How many payloads the arguments take.
    const ARITY: usize;
    /// Encodes the arguments, one payload each.
    fn to_payloads(&self) -> Result<Vec<Payload>, PayloadError>;
    /// Decodes the arguments. Missing trailing payloads read as `null`, as Python fills
    /// defaulted parameters; extra payloads are an error.
    fn from_payloads(payloads: &[Payload]) -> Result<Self, PayloadError>;
}

macro_rules! tuple_args {
    ($n:expr; $($t:ident $i:tt),*) => {
        impl<$($t: Serialize + DeserializeOwned + Send + 'static),*> Args for ($($t,)*) {
            const ARITY: usize = $n;
            fn to_payloads(&self) -> Result<Vec<Payload>, PayloadError> {
                Ok(vec![$(to_payload(&self.$i)?),*])
            }
            #[allow(unused_variables)]
            fn from_payloads(payloads: &[Payload]) -> Result<Self, PayloadError> {
                if payloads.len() > $n {
                    return Err(PayloadError::Arity { expected: $n, found: payloads.len() });
                }
                let null = payload(BINARY_NULL, Vec::new());
                Ok(($(
                    match payloads.get($i) {
                        Some(p) => from_payload::<$t>(p),
                        None => from_payload::<$t>(&null).map_err(|_| PayloadError::Arity {
                            expected: $n,
                            found: payloads.len(),
                        }),
                    }?,
                )*))
            }
        }
    };
}
tuple_args!(0;);
tuple_args!(1; A 0);
tuple_args!(2; A 0, B 1);
tuple_args!(3; A 0, B 1, C 2);
tuple_args!(4; A 0, B 1, C 2, D 3);
tuple_args!(5; A 0, B 1, C 2, D 3, E 4);
tuple_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);

/// Transforms encoded payloads on their way to and from the server: compression,
/// encryption. Applied by the client and the worker alike, to every payload the server
/// stores (arguments, results, heartbeat details, failure details, memos).
pub trait PayloadCodec: Send + Sync + 'static {
    /// Encodes payloads about to leave the process.
    fn encode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError>;
    /// Decodes payloads that arrived from the server.
    fn decode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError>;
}

/// The codecs in force for a client or worker, applied in order on encode and in reverse
/// order on decode.
#[derive(Clone, Default)]
pub struct Codecs(Vec<Arc<dyn PayloadCodec>>);

impl fmt::Debug for Codecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Codecs({})", self.0.len())
    }
}

impl Codecs {
    /// Adds a codec, applied after the ones already present when encoding.
    pub fn push(&mut self, codec: Arc<dyn PayloadCodec>) {
        self.0.push(codec);
    }

    /// Whether no codec is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Encodes payloads about to leave the process.
    pub fn encode(&self, mut payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        for codec in &self.0 {
            payloads = codec.encode(payloads)?;
        }
        Ok(payloads)
    }

    /// Decodes payloads that arrived from the server.
    pub fn decode(&self, mut payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        for codec in self.0.iter().rev() {
            payloads = codec.decode(payloads)?;
        }
        Ok(payloads)
    }

    /// Encodes one payload.
    pub fn encode_one(&self, payload: Payload) -> Result<Payload, PayloadError> {
        single(self.encode(vec![payload])?)
    }

    /// Decodes one payload.
    pub fn decode_one(&self, payload: Payload) -> Result<Payload, PayloadError> {
        single(self.decode(vec![payload])?)
    }
}

fn single(mut payloads: Vec<Payload>) -> Result<Payload, PayloadError> {
    match payloads.len() {
        1 => Ok(payloads.pop().expect("one payload")),
        n => Err(PayloadError::Codec(format!(
            "a codec turned one payload into {n}"
        ))),
    }
}

/// Applies the codecs to every payload of a core message (activations, completions,
/// activity tasks), except search attributes, which the server must be able to read.
pub(crate) async fn transcode<M: PayloadVisitable>(
    codecs: &Codecs,
    message: &mut M,
    direction: Direction,
) -> Result<(), PayloadError> {
    if codecs.is_empty() {
        return Ok(());
    }
    let mut visitor = CodecVisitor { codecs, direction };
    message
        .visit_payloads_mut(&mut visitor)
        .await
        .map_err(|e| PayloadError::Codec(e.to_string()))
}

/// Which way [`transcode`] goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    /// Payloads about to leave the process.
    Encode,
    /// Payloads that arrived.
    Decode,
}

struct CodecVisitor<'a> {
    codecs: &'a Codecs,
    direction: Direction,
}

impl CodecVisitor<'_> {
    fn apply(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        match self.direction {
            Direction::Encode => self.codecs.encode(payloads),
            Direction::Decode => self.codecs.decode(payloads),
        }
    }
}

impl AsyncPayloadVisitor for CodecVisitor<'_> {
    fn visit<'a>(
        &'a mut self,
        field: PayloadField<'a>,
    ) -> futures::future::BoxFuture<'a, Result<(), PayloadConversionError>> {
        let result = if field.path.contains("SearchAttributes.indexed_fields") {
            Ok(())
        } else {
            match field.data {
                PayloadFieldData::Single(p) => self
                    .apply(vec![std::mem::take(p)])
                    .and_then(single)
                    .map(|out| *p = out),
                PayloadFieldData::Repeated(ps) => {
                    self.apply(std::mem::take(ps)).map(|out| *ps = out)
                }
                PayloadFieldData::Payloads(ps) => self
                    .apply(std::mem::take(&mut ps.payloads))
                    .map(|out| ps.payloads = out),
            }
        };
        Box::pin(std::future::ready(
            result.map_err(|e| PayloadConversionError::EncodingError(Box::new(e))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Item {
        name: String,
        amount: u32,
        tags: Option<Vec<String>>,
    }

    fn text(p: &Payload) -> (&str, &str) {
        (encoding_of(p), std::str::from_utf8(&p.data).unwrap())
    }

    #[test]
    fn json_is_compact_sorted_and_ascii_like_python() {
        let p = to_payload(&Item {
            name: "Grüße 🍎".into(),
            amount: 3,
            tags: None,
        })
        .unwrap();
        // json.dumps({"name": "Grüße 🍎", "amount": 3, "tags": None},
        //            separators=(",", ":"), sort_keys=True)
        assert_eq!(
            text(&p),
            (
                JSON_PLAIN,
                r#"{"amount":3,"name":"Gr\u00fc\u00dfe \ud83c\udf4e","tags":null}"#
            )
        );
        assert_eq!(
            from_payload::<Item>(&p).unwrap(),
            Item {
                name: "Grüße 🍎".into(),
                amount: 3,
                tags: None
            }
        );
    }

    #[test]
    fn unit_and_none_are_binary_null() {
        assert_eq!(text(&to_payload(&()).unwrap()), (BINARY_NULL, ""));
        assert_eq!(text(&to_payload(&None::<u8>).unwrap()), (BINARY_NULL, ""));
        let null = to_payload(&()).unwrap();
        assert_eq!(from_payload::<Option<u8>>(&null).unwrap(), None);
        from_payload::<()>(&null).unwrap();
    }

    #[test]
    fn bytes_are_binary_plain_at_top_level() {
        let p = to_payload(&Bytes(vec![0, 159, 255])).unwrap();
        assert_eq!(encoding_of(&p), BINARY_PLAIN);
        assert_eq!(p.data, vec![0, 159, 255]);
        assert_eq!(from_payload::<Bytes>(&p).unwrap(), Bytes(vec![0, 159, 255]));
    }

    #[test]
    fn bad_payload_names_the_field() {
        let p = payload(JSON_PLAIN, br#"{"name":"x","amount":"three"}"#.to_vec());
        let err = from_payload::<Item>(&p).unwrap_err().to_string();
        assert!(err.contains("Item"), "{err}");
        assert!(err.contains("at `amount`"), "{err}");
    }

    #[test]
    fn args_roundtrip_and_arity() {
        let payloads = ("a".to_owned(), 2u8).to_payloads().unwrap();
        assert_eq!(payloads.len(), 2);
        assert_eq!(
            <(String, u8)>::from_payloads(&payloads).unwrap(),
            ("a".into(), 2)
        );
        let err = <(String,)>::from_payloads(&payloads).unwrap_err();
        assert!(matches!(
            err,
            PayloadError::Arity {
                expected: 1,
                found: 2
            }
        ));
        assert_eq!(<(Option<u8>,)>::from_payloads(&[]).unwrap(), (None,));
        assert!(<(u8,)>::from_payloads(&[]).is_err());
    }

    #[test]
    fn unknown_encoding_is_named() {
        let p = payload("binary/encrypted", vec![1]);
        let err = from_payload::<u8>(&p).unwrap_err().to_string();
        assert!(err.contains("binary/encrypted"), "{err}");
    }
}
