//! Temporal's payload shorthand in the HTTP API's JSON.
//!
//! A payload the shorthand can show is written as its value: `json/plain` data as the
//! JSON it holds, `json/protobuf` data as its object with a `_protoMessageType` key,
//! `binary/null` as an object of its encoding alone; a list of payloads all of which it
//! can show, as an array of them. Any other payload (encrypted, binary) keeps protojson's
//! `{"metadata": {…}, "data": "…"}`, and so does every payload of a list holding one.
//! Requests may use either form: an object of exactly `metadata` (with an `encoding`) and
//! base64 `data` is a payload in full; any other value is shorthand.

use base64::Engine as _;
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value};

const PAYLOAD: &str = "temporal.api.common.v1.Payload";
const PAYLOADS: &str = "temporal.api.common.v1.Payloads";
const MESSAGE_TYPE: &str = "_protoMessageType";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes from protojson's base64 (standard or URL-safe, padded or not).
pub(super) fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
}

/// Rewrites the payloads in `json` (a message `desc` as protojson) in shorthand.
pub(crate) fn shorten(json: &mut Value, desc: &MessageDescriptor) {
    match desc.full_name() {
        PAYLOAD => {
            if let Some(short) = short_payload(json) {
                *json = short;
            }
        }
        PAYLOADS => {
            let Some(Value::Array(items)) = json.get("payloads") else {
                return;
            };
            match items.iter().map(short_payload).collect::<Option<Vec<_>>>() {
                Some(shorts) => *json = Value::Array(shorts),
                // Not as a list, but each payload that can be, is.
                None => {
                    if let Some(Value::Array(items)) = json.get_mut("payloads") {
                        for item in items {
                            if let Some(short) = short_payload(item) {
                                *item = short;
                            }
                        }
                    }
                }
            }
        }
        _ => walk(json, desc, &mut shorten),
    }
}

/// Rewrites the shorthand payloads in `json` (a request's message `desc`) in full, so that
/// protojson reads them.
pub(crate) fn expand(json: &mut Value, desc: &MessageDescriptor) {
    match desc.full_name() {
        PAYLOAD => *json = full_payload(std::mem::take(json)),
        PAYLOADS => match json {
            Value::Array(items) => {
                let items = std::mem::take(items)
                    .into_iter()
                    .map(full_payload)
                    .collect();
                *json = Value::Object(Map::from_iter([(
                    "payloads".to_owned(),
                    Value::Array(items),
                )]));
            }
            Value::Object(fields) => {
                if let Some(Value::Array(items)) = fields.get_mut("payloads") {
                    for item in items {
                        *item = full_payload(std::mem::take(item));
                    }
                }
            }
            _ => {}
        },
        _ => walk(json, desc, &mut expand),
    }
}

/// Calls `f` on every message-typed value of `json`, a message `desc` as protojson
/// (singular fields, list items and map values, by JSON or proto name, and an `Any`'s
/// content when its type is known).
fn walk(
    json: &mut Value,
    desc: &MessageDescriptor,
    f: &mut impl FnMut(&mut Value, &MessageDescriptor),
) {
    let Value::Object(fields) = json else {
        return;
    };
    if desc.full_name() == "google.protobuf.Any" {
        let known = fields
            .get("@type")
            .and_then(Value::as_str)
            .and_then(|url| url.rsplit('/').next())
            .and_then(|name| desc.parent_pool().get_message_by_name(name));
        if let Some(inner) = known {
            walk(json, &inner, f);
        }
        return;
    }
    for field in desc.fields() {
        let key = if fields.contains_key(field.json_name()) {
            field.json_name()
        } else {
            field.name()
        };
        let Some(value) = fields.get_mut(key) else {
            continue;
        };
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let Kind::Message(inner) = entry.map_entry_value_field().kind() else {
                continue;
            };
            if let Value::Object(entries) = value {
                for item in entries.values_mut() {
                    f(item, &inner);
                }
            }
            continue;
        }
        let Kind::Message(inner) = field.kind() else {
            continue;
        };
        if inner.full_name().starts_with("google.protobuf.")
            && inner.full_name() != "google.protobuf.Any"
        {
            continue;
        }
        match value {
            Value::Array(items) if field.is_list() => {
                for item in items {
                    f(item, &inner);
                }
            }
            _ => f(value, &inner),
        }
    }
}

/// A payload's shorthand, if it has one.
fn short_payload(full: &Value) -> Option<Value> {
    let metadata = full.get("metadata")?.as_object()?;
    let meta = |key: &str| -> Option<String> {
        String::from_utf8(unb64(metadata.get(key)?.as_str()?)?).ok()
    };
    let data = || unb64(full.get("data").and_then(Value::as_str).unwrap_or(""));
    match meta("encoding")?.as_str() {
        "binary/null" => {
            Some(serde_json::json!({ "metadata": { "encoding": b64(b"binary/null") } }))
        }
        "json/plain" if metadata.len() == 1 => serde_json::from_slice(&data()?).ok(),
        "json/protobuf" if metadata.len() == 2 => {
            let message_type = meta("messageType").filter(|t| !t.is_empty())?;
            let mut object: Map<String, Value> = serde_json::from_slice(&data()?).ok()?;
            object.insert(MESSAGE_TYPE.to_owned(), Value::String(message_type));
            Some(Value::Object(object))
        }
        _ => None,
    }
}

/// A payload in full from either form.
fn full_payload(value: Value) -> Value {
    if is_full_payload(&value) {
        return value;
    }
    let (metadata, data) = match value {
        Value::Null => {
            return serde_json::json!({ "metadata": { "encoding": b64(b"binary/null") } })
        }
        Value::Object(mut object) if object.get(MESSAGE_TYPE).is_some_and(Value::is_string) => {
            let message_type = object
                .remove(MESSAGE_TYPE)
                .and_then(|t| t.as_str().map(str::to_owned));
            (
                serde_json::json!({
                    "encoding": b64(b"json/protobuf"),
                    "messageType": b64(message_type.unwrap_or_default().as_bytes()),
                }),
                serde_json::to_vec(&object).unwrap_or_default(),
            )
        }
        other => (
            serde_json::json!({ "encoding": b64(b"json/plain") }),
            serde_json::to_vec(&other).unwrap_or_default(),
        ),
    };
    serde_json::json!({ "metadata": metadata, "data": b64(&data) })
}

/// Whether `value` is a payload in protojson's form: `metadata` with an `encoding` and
/// base64 values, and base64 `data` (which `binary/null` may lack), and nothing else.
fn is_full_payload(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let Some(metadata) = object.get("metadata").and_then(Value::as_object) else {
        return false;
    };
    let Some(encoding) = metadata.get("encoding") else {
        return false;
    };
    if object.len() == 1 {
        return encoding.as_str() == Some(&b64(b"binary/null"));
    }
    object.len() == 2
        && object
            .get("data")
            .and_then(Value::as_str)
            .is_some_and(|d| unb64(d).is_some())
        && metadata
            .values()
            .all(|v| v.as_str().is_some_and(|s| unb64(s).is_some()))
}
