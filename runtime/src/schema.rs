//! The JSON Schema manifest: what a worker runs, with a JSON Schema (2020-12) of every
//! argument and result.
//!
//! `#[workflow]` and `#[activity]` describe their run function, signals, queries, updates
//! and activities through [`WorkflowDefinition::describe`] and
//! [`ActivityDefinition::describe`]; a [`Worker`](crate::Worker)'s registrations then give
//! one [`Manifest`] whose shared definitions sit, deduplicated, in one `$defs`. Payload
//! types derive [`JsonSchema`] (from the prelude); doc comments become descriptions.
//!
//! ```no_run
//! # async fn demo(client: capstan::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let worker = capstan::Worker::new(&client, "fruit-orders");
//!     // .register_workflow::<PurchaseFruitsWorkflow>() …
//! let manifest = capstan::schema::Manifest::from_worker(&worker);
//! std::fs::write("manifest.json", manifest.to_json_pretty())?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

pub use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::definition::{ActivityDefinition, WorkflowDefinition};

/// The manifest format's version: bumped when a reader of an older one would misread it.
pub const MANIFEST_VERSION: u32 = 1;

/// The JSON Schema dialect of every schema in a manifest.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// What a worker runs: its workflows and activities with the JSON Schema of every argument
/// and result. Schemas refer to shared definitions as `#/$defs/Name`, so the manifest
/// itself is the root document a `$ref` resolves against (see [`Manifest::standalone`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The JSON Schema dialect: [`DIALECT`].
    pub dialect: String,
    /// The task queue the worker polls: where clients start its workflows.
    pub task_queue: String,
    /// The registered workflow types, by name.
    pub workflows: Vec<WorkflowSchema>,
    /// The registered activities, by name.
    pub activities: Vec<HandlerSchema>,
    /// The shared definitions: every named type, once.
    #[serde(rename = "$defs", default)]
    pub defs: BTreeMap<String, Value>,
}

/// A workflow type in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowSchema {
    /// The workflow type name.
    pub name: String,
    /// The struct's doc comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The run function: its arguments and its result. `None` for a hand-written
    /// definition that describes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<HandlerSchema>,
    /// The signals (no result).
    #[serde(default)]
    pub signals: Vec<HandlerSchema>,
    /// The queries.
    #[serde(default)]
    pub queries: Vec<HandlerSchema>,
    /// The updates (with whether a validator runs first).
    #[serde(default)]
    pub updates: Vec<HandlerSchema>,
}

/// A run function, handler or activity: its name, arguments and result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HandlerSchema {
    /// The name callers use (`name = "..."` when the attribute overrides it).
    pub name: String,
    /// The doc comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The arguments in order; each travels as one payload.
    pub args: Vec<ArgSchema>,
    /// The result's schema; absent for signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// For updates: whether a validator can reject the update before it is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<bool>,
}

/// One argument: its Rust name and its schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArgSchema {
    /// The parameter's name (`arg0`, `arg1`, … for patterns).
    pub name: String,
    /// Its JSON Schema.
    pub schema: Value,
}

/// Emits the schema of `T` (a `$ref` for named types) into a generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A type the manifest can describe: every [`JsonSchema`] type. It exists for its compile
/// error, which says what a payload type lacks and what to derive.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no JSON Schema: workflow and activity payloads derive `JsonSchema`",
    label = "add `JsonSchema` to this type's derives (it is in `capstan::prelude`)",
    note = "the worker's manifest (`capstan::schema`) carries the JSON Schema of every argument \
            and result"
)]
pub trait PayloadSchema: JsonSchema {}

impl<T: JsonSchema + ?Sized> PayloadSchema for T {}

/// An argument as the macros describe it: its name and how to emit its schema.
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    name: &'static str,
    schema: SchemaFn,
}

/// The argument `name` of type `T`.
pub fn arg<T: PayloadSchema + ?Sized>(name: &'static str) -> Arg {
    Arg {
        name,
        schema: SchemaGenerator::subschema_for::<T>,
    }
}

/// How to emit the schema of a result of type `T`.
pub fn output<T: PayloadSchema + ?Sized>() -> SchemaFn {
    SchemaGenerator::subschema_for::<T>
}

impl HandlerSchema {
    /// Describes a handler with `generator`, which collects the named types' definitions.
    pub fn describe(
        generator: &mut SchemaGenerator,
        name: &str,
        description: Option<&str>,
        args: &[Arg],
        output: Option<SchemaFn>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            description: description.map(str::to_owned),
            args: args
                .iter()
                .map(|arg| ArgSchema {
                    name: arg.name.to_owned(),
                    schema: (arg.schema)(generator).to_value(),
                })
                .collect(),
            output: output.map(|schema| schema(generator).to_value()),
            validator: None,
        }
    }
}

/// Collects a workflow type's run function and handlers; [`WorkflowDefinition::describe`]
/// fills it.
pub struct Describer<'a> {
    generator: &'a mut SchemaGenerator,
    schema: WorkflowSchema,
}

impl Describer<'_> {
    /// Describes the run function.
    pub fn run(&mut self, description: Option<&str>, args: &[Arg], output: SchemaFn) {
        let name = self.schema.name.clone();
        let description = description.or(self.schema.description.as_deref());
        let run = HandlerSchema::describe(self.generator, &name, description, args, Some(output));
        self.schema.run = Some(run);
    }

    /// Describes a signal.
    pub fn signal(&mut self, name: &str, description: Option<&str>, args: &[Arg]) {
        let signal = HandlerSchema::describe(self.generator, name, description, args, None);
        self.schema.signals.push(signal);
    }

    /// Describes a query.
    pub fn query(&mut self, name: &str, description: Option<&str>, args: &[Arg], output: SchemaFn) {
        let query = HandlerSchema::describe(self.generator, name, description, args, Some(output));
        self.schema.queries.push(query);
    }

    /// Describes an update, and whether a validator runs before it is accepted.
    pub fn update(
        &mut self,
        name: &str,
        description: Option<&str>,
        args: &[Arg],
        output: SchemaFn,
        validator: bool,
    ) {
        let mut update =
            HandlerSchema::describe(self.generator, name, description, args, Some(output));
        update.validator = Some(validator);
        self.schema.updates.push(update);
    }
}

/// The schema of the workflow type `W`.
pub(crate) fn workflow_schema<W: WorkflowDefinition>(
    generator: &mut SchemaGenerator,
) -> WorkflowSchema {
    let mut describer = Describer {
        generator,
        schema: WorkflowSchema {
            name: W::NAME.to_owned(),
            description: W::DESCRIPTION.map(str::to_owned),
            run: None,
            signals: Vec::new(),
            queries: Vec::new(),
            updates: Vec::new(),
        },
    };
    W::describe(&mut describer);
    let mut schema = describer.schema;
    for handlers in [
        &mut schema.signals,
        &mut schema.queries,
        &mut schema.updates,
    ] {
        handlers.sort_by(|a, b| a.name.cmp(&b.name));
    }
    schema
}

/// The schema of the activity `A`: as it describes itself, or with its name alone.
pub(crate) fn activity_schema<A: ActivityDefinition>(
    generator: &mut SchemaGenerator,
) -> HandlerSchema {
    A::describe(generator).unwrap_or_else(|| HandlerSchema {
        name: A::NAME.to_owned(),
        description: None,
        args: Vec::new(),
        output: None,
        validator: None,
    })
}

/// A generator for manifests: JSON Schema 2020-12, definitions under `#/$defs/`.
pub(crate) fn generator() -> SchemaGenerator {
    SchemaGenerator::new(schemars::generate::SchemaSettings::draft2020_12())
}

impl Manifest {
    /// The manifest of everything registered on `worker`.
    pub fn from_worker(worker: &crate::Worker) -> Manifest {
        worker.manifest()
    }

    /// Assembles a manifest from described items and the generator that collected their
    /// definitions.
    pub(crate) fn assemble(
        task_queue: &str,
        mut workflows: Vec<WorkflowSchema>,
        mut activities: Vec<HandlerSchema>,
        mut generator: SchemaGenerator,
    ) -> Manifest {
        workflows.sort_by(|a, b| a.name.cmp(&b.name));
        activities.sort_by(|a, b| a.name.cmp(&b.name));
        Manifest {
            version: MANIFEST_VERSION,
            dialect: DIALECT.to_owned(),
            task_queue: task_queue.to_owned(),
            workflows,
            activities,
            defs: generator.take_definitions(true).into_iter().collect(),
        }
    }

    /// The manifest as pretty-printed JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serializes")
    }

    /// The workflow type `name`.
    pub fn workflow(&self, name: &str) -> Option<&WorkflowSchema> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The activity `name`.
    pub fn activity(&self, name: &str) -> Option<&HandlerSchema> {
        self.activities.iter().find(|a| a.name == name)
    }

    /// A standalone JSON Schema for `schema` (one of this manifest's argument or result
    /// schemas): `schema` with the dialect and the manifest's `$defs`, ready for any JSON
    /// Schema validator.
    pub fn standalone(&self, schema: &Value) -> Value {
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            // `true`/`false` schemas.
            other => {
                let mut map = serde_json::Map::new();
                if other == &Value::Bool(false) {
                    map.insert("not".to_owned(), Value::Object(Default::default()));
                }
                map
            }
        };
        root.insert("$schema".to_owned(), Value::String(self.dialect.clone()));
        root.insert(
            "$defs".to_owned(),
            serde_json::to_value(&self.defs).expect("definitions serialize"),
        );
        Value::Object(root)
    }
}
