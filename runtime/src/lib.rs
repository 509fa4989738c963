//! # Capstan: durable workflows in plain Rust
//!
//! Annotate structs and functions with [`workflow`](macro@workflow), [`activity`](macro@activity), [`signal`](macro@signal),
//! [`query`](macro@query) and [`update`](macro@update); Capstan turns them into deterministic
//! workflow state machines and typed client stubs, and runs them over Temporal's worker
//! protocol against a Temporal server.
//!
//! ```no_run
//! use std::time::Duration;
//! use capstan::prelude::*;
//!
//! #[activity]
//! pub async fn compose_greeting(name: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! #[workflow]
//! #[derive(Default)]
//! pub struct GreetingWorkflow;
//!
//! #[workflow]
//! impl GreetingWorkflow {
//!     #[run]
//!     pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
//!         let greeting = ctx
//!             .activity(compose_greeting, name)
//!             .start_to_close_timeout(Duration::from_secs(10))
//!             .await?;
//!         Ok(greeting)
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:7233").await?;
//! let greeting = Worker::new(&client, "greetings")
//!     .register_workflow::<GreetingWorkflow>()
//!     .register_activity(compose_greeting)
//!     .run_until(async {
//!         GreetingWorkflow::execute(&client, "greeting-1", "World".to_owned())
//!             .task_queue("greetings")
//!             .await
//!     })
//!     .await??;
//! assert_eq!(greeting, "Hello, World!");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod activity;
pub mod client;
#[cfg(feature = "encryption")]
pub mod codec;
pub mod converter;
pub mod definition;
pub mod failure;
pub mod interceptor;
pub mod metrics;
pub mod options;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worker;
pub mod workflow;

pub use activity::{ActivityContext, ActivityInfo, CancelReason};
pub use client::{Client, ClientError, TlsConfig, UpdateHandle, WorkflowHandle};
pub use converter::{Bytes, PayloadCodec, PayloadError};
pub use failure::{
    ActivityError, ApplicationError, Error, Failure, FailureKind, UpdateError, WorkflowError,
    WorkflowResult,
};
pub use options::RetryPolicy;
pub use worker::{Worker, WorkerError};
pub use workflow::{WorkflowContext, WorkflowInfo};

/// Marks a workflow: on its state struct (the name and the client handle type) and on its
/// impl block (the `#[run]` function and the `#[signal]`, `#[query]` and `#[update]`
/// handlers). See the crate documentation for an example.
pub use capstan_macros::workflow;

/// Marks an activity function: the function becomes a value (`order_apples`) that workflows
/// pass to [`WorkflowContext::activity`], and its body stays callable as
/// `order_apples::run(..)`.
pub use capstan_macros::activity;

/// Marks a query handler of a `#[workflow]` impl block.
pub use capstan_macros::query;
/// Marks the run function of a `#[workflow]` impl block.
pub use capstan_macros::run;
/// Marks a signal handler of a `#[workflow]` impl block.
pub use capstan_macros::signal;
/// Marks an update handler of a `#[workflow]` impl block.
pub use capstan_macros::update;

/// Everything a workflow module needs, in one `use`.
pub mod prelude {
    pub use crate::{
        activity, query, run, signal, update, workflow, ActivityContext, ActivityError,
        ApplicationError, Client, Failure, RetryPolicy, UpdateError, Worker, WorkflowContext,
        WorkflowError, WorkflowResult,
    };
    // `schemars` too: `#[derive(JsonSchema)]` expands to `schemars::…` paths, which this
    // glob import resolves without a `schemars` dependency in the user's crate.
    pub use schemars::{self, JsonSchema};
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::client::history::Attributes as HistoryAttributes;
    pub use crate::{
        activity::ActivityContext,
        client::{
            Client, ClientError, ExecuteWorkflow, StartWorkflow, UpdateHandle, WorkflowHandle,
        },
        converter::Args,
        definition::{
            ActivityDefinition, BoxFuture, Definition, SignalTarget, WorkflowDefinition,
            WorkflowType,
        },
        failure::Error,
        schema::{arg, output, Describer, HandlerSchema, SchemaGenerator},
        workflow::ExternalWorkflowHandle,
        workflow::WorkflowContext,
    };
    pub use schemars;
    pub use serde;

    /// Runs synchronous activity code on the blocking pool.
    pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        match tokio::task::spawn_blocking(f).await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Asserts at the user's span that a type can travel as a payload.
    pub fn assert_payload<T: serde::Serialize + serde::de::DeserializeOwned>() {}

    /// Asserts at the user's span that a type can be sent as a payload.
    pub fn assert_serialize<T: serde::Serialize>() {}
}

/// The README's examples, compiled as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
