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
///
/// # Compile-time checks
///
/// A workflow is replayed from its history, so its code must make the same decisions
/// every time it runs. `#[workflow]` checks the bodies of the `#[run]` function, the
/// `#[signal]`, `#[query]` and `#[update]` handlers, update validators and methods marked
/// [`#[workflow_fn]`](macro@workflow_fn); `#[workflow_fn]` checks free helper functions
/// the same way. Each finding is a compile error at the offending path:
///
/// > workflow code must be deterministic; found `std::time::SystemTime::now` in `#[run]`
/// > `run`: it reads the wall clock, so a replay sees another time — use `ctx.now()`
///
/// | Found (a path, as written) | It … | Fix |
/// |---|---|---|
/// | `SystemTime::now`, `Instant::now`, `Utc::now`, `Local::now` | reads the wall clock, so a replay sees another time | use `ctx.now()` |
/// | `rand::random`, `rand::rng`, `thread_rng` | draws new values on every replay | use `ctx.random()` (an `f64` in `[0, 1)`) or `ctx.random_u64()` |
/// | `Uuid::new_v4` (and `new_v7`, `now_v7`, `now_v6`, `now_v1`) | draws a new UUID on every replay | use `ctx.uuid4()` |
/// | `tokio::spawn`, `tokio::task::spawn_blocking`, `spawn_local` | runs code outside the workflow's deterministic executor | run concurrent work as futures of the context with `capstan::workflow::join` or `select` |
/// | `tokio::time::sleep`, `sleep_until`, `interval` | sets a timer that the workflow's history does not record | use `ctx.sleep(duration)`, a durable timer |
/// | `tokio::time::timeout`, `timeout_at` | sets a timer that the workflow's history does not record | race the work against `ctx.sleep(duration)` with `capstan::workflow::select`, or wait with `ctx.wait_condition_timeout(duration, ..)` |
/// | `std::thread::sleep` | blocks the worker and sets no timer in the workflow's history | use `ctx.sleep(duration)`, a durable timer |
/// | anything else in `std::thread` | uses the worker's threads, outside the workflow's deterministic executor | run concurrent work as futures of the context with `capstan::workflow::join` or `select` |
/// | `std::env::var`, `vars`, `var_os`, `vars_os` | reads the worker's environment, which may differ when the workflow is replayed on another worker | read configuration in an `#[activity]`, or pass it in the workflow's input |
/// | `std::fs`, `tokio::fs`, `File::open`, `create`, `create_new`, `options`, `OpenOptions` | touches files, which may differ when the workflow is replayed | do it in an `#[activity]` and pass the result to the workflow |
/// | `std::net`, `tokio::net` (address values such as `IpAddr` and `SocketAddr` excepted), `TcpStream`, `TcpListener`, `TcpSocket`, `UdpSocket`, `UnixStream`, `UnixListener`, `UnixDatagram`, `lookup_host` | does network I/O, whose results may differ when the workflow is replayed | do it in an `#[activity]` and pass the result to the workflow |
/// | `std::process::Command` | runs a process, whose output may differ when the workflow is replayed | do it in an `#[activity]` and pass the result to the workflow |
///
/// The state struct's fields may not use `HashMap` or `HashSet`, whose iteration order
/// changes from run to run: "`#[workflow]` state must iterate deterministically; found
/// `HashMap` — use `BTreeMap` (or `indexmap::IndexMap`)" (`BTreeSet` or
/// `indexmap::IndexSet` for `HashSet`).
///
/// Queries and update validators answer at once from the state, so on top of the rules
/// above:
///
/// | Rule | Message (for a query `q`; validators read alike) |
/// |---|---|
/// | no `WorkflowContext` parameter | "`#[query]` handlers take `&self`, not a `WorkflowContext`; found `ctx: WorkflowContext<Self>` — a query only reads the state and may not schedule activities, timers or other commands: remove the parameter and read the state through `&self`" |
/// | no `.await` | "`#[query]` `q` cannot `.await`: a query answers at once from the workflow's state — compute the answer from `&self` without waiting, or use an async `#[update]`" (validators: "do the waiting in the update handler, which runs once the update is accepted") |
/// | no context commands (matched by method name, whatever the receiver): `activity`, `local_activity`, `activity_by_name`, `child_workflow`, `child_workflow_by_name`, `external_workflow`, `external_workflow_of`, `continue_as_new`, `continue_as_new_with`, `upsert_search_attributes`, `upsert_memo`, `sleep`, `wait_condition`, `wait_condition_timeout`, `wait_all_handlers_finished`, `state_mut`, `random`, `random_u64`, `uuid4`, `patched`, `deprecate_patch` | "`#[query]` `q` cannot call `.sleep(..)`: it starts a durable timer, and a query only reads the workflow's state — do it in a `#[signal]` or `#[update]` handler" (validators: "do it in the update handler, which runs once the update is accepted") |
///
/// Queries must also take `&self` and not be `async`; validators must take `&self`, not be
/// `async`, take a reference to each of the update's arguments and return
/// `Result<(), E>`. Signal and update handlers are either sync and take `&mut self`, or
/// `async` and take `ctx: WorkflowContext<Self>` first (the runtime's
/// `Definition::signal_async` and `Definition::update_async`); an async signal returns
/// `()`.
///
/// ## What the checks do not see
///
/// The checks read paths as written. They do not follow imports (`use std::time::SystemTime
/// as Clock; Clock::now()` passes, and so does `Command::new` after `use
/// std::process::Command`), method calls on values (`socket.send(..)`), or functions that
/// workflow code calls unless those are marked `#[workflow_fn]`; in queries and
/// validators a method of your own named like a context command is flagged too (opt out
/// as below, or rename it). They look inside the
/// arguments of macros that take expressions (`println!`, `format!`, `assert!`). Replay
/// still catches what they miss, at run time, as a non-determinism error.
///
/// ## Opting out
///
/// For the rare deliberate case, `#[allow_nondeterministic(reason = "...")]` (also
/// `#[capstan::allow_nondeterministic(...)]`) on a statement, an expression, a local
/// function or a whole method or `#[workflow_fn]` function exempts that code from the
/// rules above; the reason is required and must not be empty, so that every exemption
/// can be found with `grep allow_nondeterministic` and explains itself. The macros remove
/// the attribute before the compiler sees it, so it works on statements and expressions
/// on stable Rust. It does not lift the signature rules. Anywhere else (on an item that
/// is not workflow code, or above `#[workflow_fn]`, which it would expand before) it is an
/// error.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use capstan::prelude::*;
///
/// /// Workflow code outside the impl block: checked like a handler.
/// #[workflow_fn]
/// fn expires_at(ctx: &WorkflowContext<Offer>, after: Duration) -> SystemTime {
///     ctx.now() + after
/// }
///
/// #[workflow]
/// #[derive(Default)]
/// pub struct Offer {
///     expires: Option<SystemTime>,
/// }
///
/// #[workflow]
/// impl Offer {
///     #[run]
///     pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
///         #[allow_nondeterministic(reason = "timing for a log line; never branched on")]
///         let started = Instant::now();
///         let expires = expires_at(&ctx, Duration::from_secs(3600));
///         ctx.state_mut(|offer| offer.expires = Some(expires));
///         ctx.logger().info(format!("set up in {:?}", started.elapsed()));
///         Ok(())
///     }
///
///     #[query]
///     pub fn expires(&self) -> Option<SystemTime> {
///         self.expires
///     }
/// }
/// ```
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

/// Marks a helper function as workflow code, so that its body gets the determinism checks
/// of a handler's (see [the checks](macro@workflow#compile-time-checks)). On a free
/// function or a method; inside a `#[workflow]` impl block it marks a plain method.
pub use capstan_macros::workflow_fn;

/// Exempts a statement, expression or function of workflow code from the determinism
/// checks, with a required reason: `#[allow_nondeterministic(reason = "...")]` (see
/// [the checks](macro@workflow#compile-time-checks)). `#[workflow]` and `#[workflow_fn]`
/// remove it before the compiler sees it, so it works on stable Rust on statements and
/// expressions; anywhere else it is an error.
pub use capstan_macros::allow_nondeterministic;

/// Everything a workflow module needs, in one `use`.
pub mod prelude {
    pub use crate::{
        activity, allow_nondeterministic, query, run, signal, update, workflow, workflow_fn,
        ActivityContext, ActivityError, ApplicationError, Client, Failure, RetryPolicy,
        UpdateError, Worker, WorkflowContext, WorkflowError, WorkflowResult,
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
            Client, ClientError, ExecuteWorkflow, StartWorkflow, UpdateCall, UpdateHandle,
            WorkflowHandle,
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
