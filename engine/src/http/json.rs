//! Protojson, as Temporal's HTTP API speaks it: request messages from a JSON body, path
//! bindings and query parameters; answers and errors as JSON. Field names are camelCase
//! (snake_case is accepted), 64-bit integers strings, enums names, times RFC 3339, bytes
//! base64; payloads take the shorthand of [`super::payloads`].

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    ReflectMessage as _, SerializeOptions, Value,
};

use super::{
    payloads,
    routes::{Body, Route},
};

/// Why a request could not become its message: an `INVALID_ARGUMENT` message.
pub(crate) type Invalid = String;

/// The request message of `route`'s RPC: from the body (as the binding takes it, payloads
/// in shorthand if `shorthand`), then the path's `bound` fields, then, for a binding
/// without a whole-message body, the `query`'s parameters that name a field (others are
/// ignored, as on Temporal).
pub(crate) fn request(
    route: &Route,
    bound: &[(String, String)],
    query: &[(String, String)],
    body: &[u8],
    shorthand: bool,
) -> Result<DynamicMessage, Invalid> {
    let desc = route.method.input();
    let mut message = match &route.body {
        Body::None => DynamicMessage::new(desc.clone()),
        _ if body.iter().all(u8::is_ascii_whitespace) => DynamicMessage::new(desc.clone()),
        Body::Whole | Body::Field(_) => {
            // The first JSON value; what follows it is ignored, as on Temporal.
            let value: serde_json::Value = serde_json::Deserializer::from_slice(body)
                .into_iter()
                .next()
                .unwrap_or(Ok(serde_json::Value::Null))
                .map_err(|e| format!("the request body is not JSON: {e}"))?;
            let mut json = match &route.body {
                Body::Field(field) => {
                    serde_json::Value::Object(serde_json::Map::from_iter([(field.clone(), value)]))
                }
                _ => value,
            };
            if shorthand {
                payloads::expand(&mut json, &desc);
            }
            from_json(&desc, json)?
        }
    };
    for (path, text) in bound {
        if !set_from_text(&mut message, path, text)? {
            return Err(format!("{} has no field {path}", desc.full_name()));
        }
    }
    if route.body != Body::Whole {
        for (path, text) in query {
            set_from_text(&mut message, path, text)?;
        }
    }
    Ok(message)
}

/// `json` as the message `desc`.
fn from_json(desc: &MessageDescriptor, json: serde_json::Value) -> Result<DynamicMessage, Invalid> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(desc.clone(), json, &options)
        .map_err(|e| format!("the request body is not a {}: {e}", desc.full_name()))
}

/// Sets the field at the dotted `path` (proto or JSON names) of `message` from `text`, as
/// a path variable or query parameter gives it: a repeated field gains an element.
/// Answers whether `message` has that field.
fn set_from_text(message: &mut DynamicMessage, path: &str, text: &str) -> Result<bool, Invalid> {
    let desc = message.descriptor();
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let Some(field) = desc
        .get_field_by_name(head)
        .or_else(|| desc.get_field_by_json_name(head))
    else {
        return Ok(false);
    };
    match rest {
        Some(rest) => {
            if field.is_list() || field.is_map() {
                return Err(format!(
                    "{path}: {head} is a repeated field, which a query parameter cannot reach into"
                ));
            }
            match message.get_field_mut(&field) {
                Value::Message(inner) => set_from_text(inner, rest, text),
                _ => Ok(false),
            }
        }
        None if field.is_map() => Err(format!(
            "{path} is a map, which a query parameter cannot set"
        )),
        None => {
            let value = parse(&field, text).map_err(|why| format!("{path}: {why}"))?;
            if field.is_list() {
                if let Value::List(items) = message.get_field_mut(&field) {
                    items.push(value);
                }
            } else {
                message.set_field(&field, value);
            }
            Ok(true)
        }
    }
}

/// A field's value from its text in a path or query.
fn parse(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    fn number<T: std::str::FromStr>(text: &str, kind: &str) -> Result<T, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a valid {kind}"))
    }
    Ok(match field.kind() {
        Kind::Double => Value::F64(number(text, "number")?),
        Kind::Float => Value::F32(number(text, "number")?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(text, "32-bit integer")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(text, "64-bit integer")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(text, "unsigned 32-bit integer")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(text, "unsigned 64-bit integer")?),
        Kind::Bool => Value::Bool(match text {
            "true" | "True" | "TRUE" | "t" | "T" | "1" => true,
            "false" | "False" | "FALSE" | "f" | "F" | "0" => false,
            _ => return Err(format!("`{text}` is not a boolean (true or false)")),
        }),
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(
            payloads::unb64(text)
                .ok_or_else(|| format!("`{text}` is not base64"))?
                .into(),
        ),
        Kind::Enum(e) => match e.get_value_by_name(text) {
            Some(v) => Value::EnumNumber(v.number()),
            None => Value::EnumNumber(
                text.parse()
                    .map_err(|_| format!("`{text}` is not a value of {}", e.full_name()))?,
            ),
        },
        // Times, durations, field masks, wrappers: their JSON form is a string.
        Kind::Message(m) => Value::Message(
            from_json(&m, serde_json::Value::String(text.to_owned()))
                .map_err(|_| format!("`{text}` is not a valid {}", m.full_name()))?,
        ),
    })
}

/// The encoded message `desc` as JSON, payloads in shorthand if `shorthand`.
pub(crate) fn to_json(
    desc: &MessageDescriptor,
    encoded: &[u8],
    shorthand: bool,
) -> Result<serde_json::Value, String> {
    let message = DynamicMessage::decode(desc.clone(), encoded)
        .map_err(|e| format!("cannot read the answer as a {}: {e}", desc.full_name()))?;
    let options = SerializeOptions::new().skip_default_fields(true);
    let mut json = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("cannot write the answer as JSON: {e}"))?;
    if shorthand {
        payloads::shorten(&mut json, desc);
    }
    Ok(json)
}
