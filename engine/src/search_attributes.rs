//! Search attributes: the ones every execution has, the custom ones a namespace
//! registers (OperatorService `AddSearchAttributes`, or `--search-attribute` at start),
//! and the check of the values a request or a command sets, in Temporal's words.
//!
//! As on Temporal, a custom search attribute must be registered before a run, a schedule
//! or a list query uses it, and its values must be of its type (JSON payloads: a string
//! for `Keyword` and `Text`, an integer for `Int`, a number for `Double`, `true` or
//! `false` for `Bool`, an RFC 3339 string for `Datetime`, a list of strings for
//! `KeywordList`; JSON `null` unsets it).

use std::collections::{BTreeMap, HashMap};

use crate::proto::common::{Payload, SearchAttributes};
pub(crate) use crate::proto::enums::IndexedValueType as Type;

/// The search attributes the engine keeps for every execution, by name and type; `true`:
/// a client or a workflow may set it (Temporal's predefined attributes), `false`: the
/// engine sets it from the run itself.
const SYSTEM: &[(&str, Type, bool)] = &[
    ("WorkflowType", Type::Keyword, false),
    ("WorkflowId", Type::Keyword, false),
    ("RunId", Type::Keyword, false),
    ("ExecutionStatus", Type::Keyword, false),
    ("TaskQueue", Type::Keyword, false),
    ("StartTime", Type::Datetime, false),
    ("CloseTime", Type::Datetime, false),
    ("ExecutionTime", Type::Datetime, false),
    ("HistoryLength", Type::Int, false),
    ("RootWorkflowId", Type::Keyword, false),
    ("RootRunId", Type::Keyword, false),
    ("ParentWorkflowId", Type::Keyword, false),
    ("ParentRunId", Type::Keyword, false),
    ("TemporalScheduledById", Type::Keyword, true),
    ("TemporalScheduledStartTime", Type::Datetime, true),
    ("TemporalSchedulePaused", Type::Bool, true),
    ("TemporalChangeVersion", Type::KeywordList, true),
    ("BinaryChecksums", Type::KeywordList, true),
    ("BuildIds", Type::KeywordList, true),
    ("BatcherNamespace", Type::Keyword, true),
    ("BatcherUser", Type::Keyword, true),
    ("TemporalNamespaceDivision", Type::Keyword, true),
    ("TemporalReportedProblems", Type::KeywordList, true),
];

/// How long a custom search attribute's name may be, in bytes.
pub(crate) const MAX_NAME: usize = 255;

/// The system search attributes, by name, with their types (as the API gives them).
pub(crate) fn system() -> HashMap<String, i32> {
    SYSTEM
        .iter()
        .map(|(name, kind, _)| ((*name).to_owned(), *kind as i32))
        .collect()
}

/// A system search attribute's type.
pub(crate) fn system_type(name: &str) -> Option<Type> {
    SYSTEM.iter().find(|(n, _, _)| *n == name).map(|s| s.1)
}

/// The name of a type as Temporal writes it (`Keyword`, `KeywordList`, …).
pub(crate) fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::Unspecified => "Unspecified",
        Type::Text => "Text",
        Type::Keyword => "Keyword",
        Type::Int => "Int",
        Type::Double => "Double",
        Type::Bool => "Bool",
        Type::Datetime => "Datetime",
        Type::KeywordList => "KeywordList",
    }
}

/// The type named `name` (case-insensitive, as `--search-attribute Name=Type` takes it).
pub(crate) fn parse_type(name: &str) -> Option<Type> {
    const TYPES: [Type; 7] = [
        Type::Text,
        Type::Keyword,
        Type::Int,
        Type::Double,
        Type::Bool,
        Type::Datetime,
        Type::KeywordList,
    ];
    TYPES
        .into_iter()
        .find(|t| type_name(*t).eq_ignore_ascii_case(name))
}

/// The custom search attributes of one namespace, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Custom(BTreeMap<String, Type>);

impl Custom {
    /// The custom attributes, by name, with their types (as the API gives them).
    pub(crate) fn types(&self) -> HashMap<String, i32> {
        self.0.iter().map(|(n, t)| (n.clone(), *t as i32)).collect()
    }

    /// Every custom attribute, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, Type)> {
        self.0.iter().map(|(n, t)| (n.as_str(), *t))
    }

    /// Puts back an attribute read from the database.
    pub(crate) fn restore(&mut self, name: String, kind: Type) {
        self.0.insert(name, kind);
    }

    /// The type of the search attribute `name`, system or custom.
    pub(crate) fn type_of(&self, name: &str) -> Option<Type> {
        system_type(name).or_else(|| self.0.get(name).copied())
    }

    /// Registers `added` (name to type, as the API sends them), at most `limit` in all.
    /// An attribute already registered with the same type is left as it is. Nothing is
    /// registered unless all can be.
    pub(crate) fn add(&mut self, added: &HashMap<String, i32>, limit: usize) -> Result<(), String> {
        if added.is_empty() {
            return Err("SearchAttributes are not set on request.".to_owned());
        }
        let mut names: Vec<&String> = added.keys().collect();
        names.sort();
        let mut new = self.0.clone();
        for name in names {
            let raw = added[name];
            if system_type(name).is_some() || name.starts_with("Temporal") {
                return Err(format!("Search attribute {name} is reserved by system."));
            }
            if name.is_empty() || name.len() > MAX_NAME {
                return Err(format!(
                    "Search attribute name must be 1 to {MAX_NAME} bytes long; `{}` is {} bytes.",
                    name.chars().take(40).collect::<String>(),
                    name.len()
                ));
            }
            let kind = match Type::try_from(raw) {
                Ok(Type::Unspecified) => {
                    return Err(format!(
                        "Search attribute {name} has no type: give it one of Keyword, Text, Int, \
                         Double, Bool, Datetime or KeywordList."
                    ))
                }
                Ok(kind) => kind,
                Err(_) => return Err(format!("Unknown search attribute type: {raw}.")),
            };
            match new.get(name) {
                Some(existing) if *existing == kind => {}
                Some(existing) => {
                    return Err(format!(
                        "Search attribute {name} already exists, of type {}: remove it first to \
                         register it as {}.",
                        type_name(*existing),
                        type_name(kind)
                    ))
                }
                None => {
                    new.insert(name.clone(), kind);
                }
            }
        }
        if new.len() > limit {
            return Err(format!(
                "Unable to create search attributes: a namespace can have at most {limit} \
                 custom search attributes, and this one has {}.",
                self.0.len()
            ));
        }
        self.0 = new;
        Ok(())
    }

    /// Removes the custom attributes `names`; a name that is not registered is ignored,
    /// as on Temporal. Nothing is removed unless all can be.
    pub(crate) fn remove(&mut self, names: &[String]) -> Result<(), String> {
        if names.is_empty() {
            return Err("SearchAttributes are not set on request.".to_owned());
        }
        let system: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| system_type(n).is_some())
            .collect();
        if !system.is_empty() {
            return Err(format!(
                "Unable to remove non-custom search attributes: {}.",
                system.join(", ")
            ));
        }
        for name in names {
            self.0.remove(name);
        }
        Ok(())
    }

    /// Checks the search attributes a request or command sets in `namespace`: each is
    /// registered, may be set, and holds a value of its type.
    pub(crate) fn check(
        &self,
        namespace: &str,
        attributes: Option<&SearchAttributes>,
    ) -> Result<(), String> {
        let Some(attributes) = attributes else {
            return Ok(());
        };
        let mut names: Vec<&String> = attributes.indexed_fields.keys().collect();
        names.sort();
        for name in names {
            let kind = match SYSTEM.iter().find(|(n, _, _)| n == name) {
                Some((_, _, false)) => {
                    return Err(format!("{name} attribute can't be set in SearchAttributes"))
                }
                Some((_, kind, true)) => *kind,
                None => self.0.get(name).copied().ok_or_else(|| {
                    format!(
                        "Namespace {namespace} has no mapping defined for search attribute {name}"
                    )
                })?,
            };
            let payload = &attributes.indexed_fields[name];
            if let Err(shown) = Value::decode(payload, kind) {
                return Err(format!(
                    "invalid value for search attribute {name} of type {}: {shown}",
                    type_name(kind)
                ));
            }
        }
        Ok(())
    }
}

/// A search attribute's value, decoded as its type says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Text(String),
    Number(f64),
    Bool(bool),
    Time(std::time::SystemTime),
    List(Vec<String>),
}

impl Value {
    /// Decodes `payload` as a value of type `kind`; a value that is not of it is answered
    /// as the text to show in the refusal.
    pub(crate) fn decode(payload: &Payload, kind: Type) -> Result<Self, String> {
        let encoding = payload.metadata.get("encoding").map(Vec::as_slice);
        if encoding == Some(b"binary/null") {
            return Ok(Self::Null);
        }
        if encoding != Some(b"json/plain") {
            return Err(format!(
                "a payload encoded as `{}` (search attributes are JSON: `json/plain`)",
                String::from_utf8_lossy(encoding.unwrap_or(b"")),
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(&payload.data)
            .map_err(|_| String::from_utf8_lossy(&payload.data).into_owned())?;
        let shown = || go_text(&json);
        use serde_json::Value as J;
        match (kind, &json) {
            (_, J::Null) => Ok(Self::Null),
            (Type::Keyword | Type::Text, J::String(s)) => Ok(Self::Text(s.clone())),
            (Type::Int, J::Number(n)) if n.is_i64() || n.is_u64() => {
                Ok(Self::Number(n.as_f64().unwrap_or_default()))
            }
            (Type::Double, J::Number(n)) => Ok(Self::Number(n.as_f64().unwrap_or_default())),
            (Type::Bool, J::Bool(b)) => Ok(Self::Bool(*b)),
            (Type::Datetime, J::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Self::Time(t.into()))
                .map_err(|_| s.clone()),
            (Type::KeywordList, J::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Self::List)
                .ok_or_else(shown),
            _ => Err(shown()),
        }
    }
}

/// A JSON value as Temporal's messages show it (Go's `%v`): strings bare, lists as
/// `[a b]`.
fn go_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: serde_json::Value) -> Payload {
        Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(&value).unwrap(),
            ..Default::default()
        }
    }

    fn attrs(fields: &[(&str, serde_json::Value)]) -> SearchAttributes {
        SearchAttributes {
            indexed_fields: fields
                .iter()
                .map(|(n, v)| ((*n).to_owned(), json(v.clone())))
                .collect(),
        }
    }

    #[test]
    fn values_are_checked_against_their_registered_type() {
        let mut custom = Custom::default();
        let added = [
            ("Color", Type::Keyword),
            ("Size", Type::Int),
            ("Ok", Type::Bool),
            ("When", Type::Datetime),
            ("Tags", Type::KeywordList),
            ("Score", Type::Double),
        ]
        .map(|(n, t)| (n.to_owned(), t as i32))
        .into();
        custom.add(&added, 100).unwrap();
        use serde_json::json as j;
        let good = attrs(&[
            ("Color", j!("red")),
            ("Size", j!(7)),
            ("Ok", j!(true)),
            ("When", j!("2026-01-02T03:04:05Z")),
            ("Tags", j!(["a", "b"])),
            ("Score", j!(2.5)),
            ("TemporalChangeVersion", j!(["v1"])),
        ]);
        assert_eq!(custom.check("default", Some(&good)), Ok(()));
        for (name, value, message) in [
            (
                "Nope",
                j!("x"),
                "Namespace default has no mapping defined for search attribute Nope",
            ),
            (
                "Size",
                j!("7"),
                "invalid value for search attribute Size of type Int: 7",
            ),
            (
                "Size",
                j!(1.5),
                "invalid value for search attribute Size of type Int: 1.5",
            ),
            (
                "Ok",
                j!(1),
                "invalid value for search attribute Ok of type Bool: 1",
            ),
            (
                "When",
                j!("yesterday"),
                "invalid value for search attribute When of type Datetime: yesterday",
            ),
            (
                "Tags",
                j!("a"),
                "invalid value for search attribute Tags of type KeywordList: a",
            ),
            (
                "Color",
                j!(5),
                "invalid value for search attribute Color of type Keyword: 5",
            ),
            (
                "Color",
                j!(["a", "b"]),
                "invalid value for search attribute Color of type Keyword: [a b]",
            ),
            (
                "WorkflowId",
                j!("x"),
                "WorkflowId attribute can't be set in SearchAttributes",
            ),
        ] {
            let bad = attrs(&[(name, value)]);
            assert_eq!(custom.check("default", Some(&bad)), Err(message.to_owned()));
        }
        assert_eq!(
            custom.check("default", Some(&attrs(&[("Size", j!(null))]))),
            Ok(())
        );
    }

    #[test]
    fn adding_and_removing_keeps_every_rule_or_changes_nothing() {
        let mut custom = Custom::default();
        let add = |pairs: &[(&str, i32)]| -> HashMap<String, i32> {
            pairs.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect()
        };
        custom.add(&add(&[("A", Type::Int as i32)]), 2).unwrap();
        // The same again: nothing to do.
        custom.add(&add(&[("A", Type::Int as i32)]), 2).unwrap();
        for (pairs, message) in [
            (add(&[]), "SearchAttributes are not set on request."),
            (add(&[("WorkflowId", 2)]), "Search attribute WorkflowId is reserved by system."),
            (add(&[("TemporalFoo", 2)]), "Search attribute TemporalFoo is reserved by system."),
            (add(&[("X", 99)]), "Unknown search attribute type: 99."),
            (add(&[("A", 2)]), "Search attribute A already exists, of type Int: remove it first to register it as Keyword."),
            (add(&[("B", 2), ("C", 2)]), "Unable to create search attributes: a namespace can have at most 2 custom search attributes, and this one has 1."),
        ] {
            assert_eq!(custom.add(&pairs, 2), Err(message.to_owned()));
        }
        assert!(custom
            .add(&add(&[("", 2)]), 2)
            .unwrap_err()
            .contains("1 to 255 bytes"));
        assert_eq!(custom.types(), add(&[("A", Type::Int as i32)]));
        assert_eq!(
            custom.remove(&["A".to_owned(), "RunId".to_owned()]),
            Err("Unable to remove non-custom search attributes: RunId.".to_owned())
        );
        custom
            .remove(&["A".to_owned(), "Unknown".to_owned()])
            .unwrap();
        assert!(custom.types().is_empty());
    }
}
