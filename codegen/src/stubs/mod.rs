//! Foreign client stubs from a schema manifest (the JSON `capstan::schema::Manifest`
//! writes): typed models of every schema and one typed function per workflow, signal,
//! query and update, over the other language's Temporal SDK.
//!
//! Works from the manifest's JSON alone, so any program that can read the file (the
//! `capstan` CLI, a build script) can generate stubs without the worker's code.

mod python;
mod typescript;

use std::fmt;

use serde_json::{Map, Value};

/// The languages stubs can be generated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Language {
    /// Pydantic v2 models and async functions over `temporalio`.
    Python,
    /// Types and async functions over `@temporalio/client`.
    TypeScript,
}

impl std::str::FromStr for Language {
    type Err = StubError;

    fn from_str(name: &str) -> Result<Self, StubError> {
        match name {
            "python" | "py" => Ok(Language::Python),
            "typescript" | "ts" => Ok(Language::TypeScript),
            other => Err(StubError(format!(
                "unknown language `{other}`; expected `python` or `typescript`"
            ))),
        }
    }
}

/// Why stubs could not be generated: the manifest is not one this generator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubError(String);

impl fmt::Display for StubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StubError {}

/// The manifest versions this generator reads.
const SUPPORTED_VERSION: u64 = 1;

/// Generates the client module for `language` from a manifest.
pub fn generate(language: Language, manifest: &Value) -> Result<String, StubError> {
    let manifest = Manifest::read(manifest)?;
    Ok(match language {
        Language::Python => python::generate(&manifest),
        Language::TypeScript => typescript::generate(&manifest),
    })
}

/// The parts of a manifest the generators use.
struct Manifest<'a> {
    task_queue: &'a str,
    workflows: Vec<Workflow<'a>>,
    defs: &'a Map<String, Value>,
}

struct Workflow<'a> {
    name: &'a str,
    description: Option<&'a str>,
    /// `None` when the worker's definition describes no run function.
    run: Option<Handler<'a>>,
    signals: Vec<Handler<'a>>,
    queries: Vec<Handler<'a>>,
    updates: Vec<Handler<'a>>,
}

struct Handler<'a> {
    name: &'a str,
    description: Option<&'a str>,
    args: Vec<(&'a str, &'a Value)>,
    output: Option<&'a Value>,
    validator: bool,
}

fn error(message: impl Into<String>) -> StubError {
    StubError(message.into())
}

impl<'a> Manifest<'a> {
    fn read(value: &'a Value) -> Result<Self, StubError> {
        let version = value.get("version").and_then(Value::as_u64);
        if version != Some(SUPPORTED_VERSION) {
            return Err(error(format!(
                "not a Capstan manifest of version {SUPPORTED_VERSION} (found version {}); \
                 export it with a Capstan of the same release",
                value.get("version").unwrap_or(&Value::Null)
            )));
        }
        let task_queue = value
            .get("task_queue")
            .and_then(Value::as_str)
            .ok_or_else(|| error("the manifest has no `task_queue`"))?;
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let defs = match value.get("$defs") {
            Some(Value::Object(defs)) => defs,
            _ => EMPTY.get_or_init(Map::new),
        };
        let workflows = list(value, "workflows")?
            .iter()
            .map(Workflow::read)
            .collect::<Result<_, _>>()?;
        Ok(Manifest {
            task_queue,
            workflows,
            defs,
        })
    }
}

fn list<'a>(value: &'a Value, key: &str) -> Result<&'a [Value], StubError> {
    match value.get(key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(error(format!("`{key}` is not a list"))),
    }
}

fn string<'a>(value: &'a Value, key: &str) -> Result<&'a str, StubError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| error(format!("an entry has no `{key}`: {value}")))
}

impl<'a> Workflow<'a> {
    fn read(value: &'a Value) -> Result<Self, StubError> {
        let handlers = |key: &str| -> Result<Vec<Handler<'a>>, StubError> {
            list(value, key)?.iter().map(Handler::read).collect()
        };
        Ok(Workflow {
            name: string(value, "name")?,
            description: value.get("description").and_then(Value::as_str),
            run: value.get("run").map(Handler::read).transpose()?,
            signals: handlers("signals")?,
            queries: handlers("queries")?,
            updates: handlers("updates")?,
        })
    }
}

impl<'a> Handler<'a> {
    fn read(value: &'a Value) -> Result<Self, StubError> {
        let args = list(value, "args")?
            .iter()
            .map(|arg| {
                Ok((
                    string(arg, "name")?,
                    arg.get("schema").unwrap_or(&Value::Null),
                ))
            })
            .collect::<Result<_, StubError>>()?;
        Ok(Handler {
            name: string(value, "name")?,
            description: value.get("description").and_then(Value::as_str),
            args,
            output: value.get("output"),
            validator: value.get("validator").and_then(Value::as_bool) == Some(true),
        })
    }
}

/// What a handler of a workflow is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Signal,
    Query,
    Update,
}

impl<'a> Workflow<'a> {
    /// The signals, queries and updates, in that order.
    fn handlers(&self) -> impl Iterator<Item = (Kind, &Handler<'a>)> {
        let signals = self.signals.iter().map(|h| (Kind::Signal, h));
        let queries = self.queries.iter().map(|h| (Kind::Query, h));
        let updates = self.updates.iter().map(|h| (Kind::Update, h));
        signals.chain(queries).chain(updates)
    }
}

impl Handler<'_> {
    /// The client method's documentation: the handler's own, then what the method does.
    fn doc(&self, kind: Kind) -> String {
        let mut text = self.description.unwrap_or_default().to_owned();
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        let name = self.name;
        text.push_str(&match kind {
            Kind::Signal => format!("Sends the `{name}` signal."),
            Kind::Query => format!("Runs the `{name}` query."),
            Kind::Update if self.validator => format!(
                "Runs the `{name}` update and waits for its result; a validator may reject it."
            ),
            Kind::Update => format!("Runs the `{name}` update and waits for its result."),
        });
        text
    }
}

/// A schema as the generators see it: each language writes each shape its own way.
enum Shape<'a> {
    /// `{"$ref": "#/$defs/Name"}`.
    Ref(&'a str),
    /// `{"enum": [...]}` or `{"const": ...}`.
    Literals(Vec<&'a Value>),
    /// `{"anyOf": [...]}` or `{"oneOf": [...]}`.
    Union(&'a [Value]),
    /// `{"type": "..."}` or `{"type": ["...", "null"]}`: the names, and the whole schema
    /// for `items`, `properties`, bounds.
    Types(Vec<&'a str>, &'a Value),
    /// Anything else, `true` included.
    Any,
}

fn shape(schema: &Value) -> Shape<'_> {
    let Value::Object(object) = schema else {
        return Shape::Any;
    };
    if let Some(name) = object
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        return Shape::Ref(name);
    }
    if let Some(Value::Array(values)) = object.get("enum") {
        return Shape::Literals(values.iter().collect());
    }
    if let Some(value) = object.get("const") {
        return Shape::Literals(vec![value]);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(variants)) = object.get(key) {
            return Shape::Union(variants);
        }
    }
    match object.get("type") {
        Some(Value::String(ty)) => Shape::Types(vec![ty.as_str()], schema),
        Some(Value::Array(types)) => {
            Shape::Types(types.iter().filter_map(Value::as_str).collect(), schema)
        }
        _ => Shape::Any,
    }
}

/// Whether a definition is an object with named properties (a class or interface).
fn has_properties(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
        && schema.get("properties").is_some()
}

/// An object schema's properties: name, schema, and whether it is required.
fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value, bool)> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(move |(name, property)| (name, property, required.contains(&name.as_str())))
}

fn description(schema: &Value) -> Option<&str> {
    schema.get("description").and_then(Value::as_str)
}

/// A string literal, in Python and TypeScript alike (JSON's escapes are theirs).
fn string_literal(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}
