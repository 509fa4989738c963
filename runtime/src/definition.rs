//! What the macros generate: the definitions of workflows and activities.
//!
//! `#[workflow]` implements [`WorkflowDefinition`] and `#[activity]` implements
//! [`ActivityDefinition`]; the worker registers them, the client and the workflow context
//! call them with typed arguments. Everything here can be written by hand too, for a
//! workflow whose shape is only known at run time.

use std::{collections::BTreeMap, future::Future, pin::Pin, rc::Rc, sync::Arc};

use serde::{de::DeserializeOwned, Serialize};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::{
    activity::ActivityContext,
    converter::{self, Args, PayloadError},
    failure::Error,
    schema::{Describer, HandlerSchema, SchemaGenerator},
    workflow::WorkflowContext,
};

/// A boxed future that may move between threads (activities).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A boxed future that stays on the workflow's thread (workflow code).
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// The name of a workflow type, set by `#[workflow]` on the state struct.
pub trait WorkflowType: 'static {
    /// The workflow type name (the struct's name unless `name = "..."` overrides it).
    const NAME: &'static str;
    /// The struct's doc comment, for the schema manifest.
    const DESCRIPTION: Option<&'static str> = None;
}

/// A workflow: its state, its run function and its handlers. Implemented by `#[workflow]`
/// on the impl block.
pub trait WorkflowDefinition: WorkflowType + Default + Sized {
    /// The run function's arguments as a tuple: `()`, `(A,)`, `(A, B)`.
    type Args: Args;
    /// What callers pass: nothing (`()`), the single argument, or the tuple.
    type Input;
    /// The run function's result.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The client-side handle with a typed method per signal, query and update.
    type Handle: From<crate::client::WorkflowHandle<Self>> + Send;
    /// The workflow-side handle of another execution of this type, with a typed method per
    /// signal.
    type External: From<crate::workflow::ExternalWorkflowHandle>;

    /// Turns what callers pass into the argument tuple.
    fn into_args(input: Self::Input) -> Self::Args;

    /// Registers the run function and handlers.
    fn define(definition: &mut Definition<Self>);

    /// Describes the run function and handlers for the [schema manifest](crate::schema).
    /// `#[workflow]` implements it; a hand-written definition that keeps the default is
    /// listed by name alone.
    fn describe(describer: &mut Describer<'_>) {
        let _ = describer;
    }
}

/// Something a signal can be sent to: a client's [`WorkflowHandle`](crate::WorkflowHandle),
/// or a workflow's [`ExternalWorkflowHandle`](crate::workflow::ExternalWorkflowHandle).
/// Generated handles offer their typed signal methods on every target.
pub trait SignalTarget {
    /// What a failed signal returns.
    type Error;
    /// Sends the signal `signal_name` with `args`.
    fn send_signal<A: Args>(
        &self,
        signal_name: &'static str,
        args: A,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// An activity: a function the worker runs on the workflow's behalf. Implemented by
/// `#[activity]` on a marker type named after the function.
pub trait ActivityDefinition: Send + Sync + 'static {
    /// The activity type name (the function's name unless `name = "..."` overrides it).
    const NAME: &'static str;
    /// The arguments as a tuple: `()`, `(A,)`, `(A, B)`.
    type Args: Args;
    /// What callers pass: nothing (`()`), the single argument, or the tuple.
    type Input;
    /// The activity's result.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Turns what callers pass into the argument tuple.
    fn into_args(input: Self::Input) -> Self::Args;

    /// Runs the activity.
    fn execute(
        &self,
        ctx: ActivityContext,
        args: Self::Args,
    ) -> BoxFuture<Result<Self::Output, Error>>;

    /// Describes the arguments and result for the [schema manifest](crate::schema).
    /// `#[activity]` implements it; a hand-written definition that keeps the default is
    /// listed by name alone.
    fn describe(generator: &mut SchemaGenerator) -> Option<HandlerSchema> {
        let _ = generator;
        None
    }
}

/// The run function and handlers of a workflow type, as registered by
/// [`WorkflowDefinition::define`].
pub struct Definition<W> {
    pub(crate) run: Option<RunFn<W>>,
    pub(crate) signals: BTreeMap<&'static str, SignalFn<W>>,
    pub(crate) queries: BTreeMap<&'static str, QueryFn<W>>,
    pub(crate) updates: BTreeMap<&'static str, UpdateDef<W>>,
}

/// Decodes the arguments and starts a future on the workflow's context.
pub(crate) type StartFn<W, T> = Box<
    dyn Fn(
        WorkflowContext<W>,
        &[Payload],
    ) -> Result<LocalBoxFuture<Result<T, Error>>, PayloadError>,
>;

pub(crate) type RunFn<W> = StartFn<W, Payload>;

pub(crate) enum SignalFn<W> {
    Sync(SyncSignalFn<W>),
    Async(StartFn<W, ()>),
}

pub(crate) type SyncSignalFn<W> = Box<dyn Fn(&mut W, &[Payload]) -> Result<(), PayloadError>>;

pub(crate) type DecodeUpdateFn<W> = Box<dyn Fn(&[Payload]) -> Result<UpdateThunk<W>, PayloadError>>;

pub(crate) type QueryFn<W> = Box<dyn Fn(&W, &[Payload]) -> Result<Payload, Error>>;

pub(crate) type ValidatorFn<W> = Box<dyn Fn(&W, &[Payload]) -> Result<(), Error>>;

/// A decoded synchronous update, ready to run once accepted.
pub(crate) type UpdateThunk<W> = Box<dyn FnOnce(&mut W) -> Result<Payload, Error>>;

pub(crate) enum UpdateFn<W> {
    Sync(DecodeUpdateFn<W>),
    Async(StartFn<W, Payload>),
}

pub(crate) struct UpdateDef<W> {
    pub(crate) handler: UpdateFn<W>,
    pub(crate) validator: Option<ValidatorFn<W>>,
}

impl<W: 'static> Default for Definition<W> {
    fn default() -> Self {
        Self {
            run: None,
            signals: BTreeMap::new(),
            queries: BTreeMap::new(),
            updates: BTreeMap::new(),
        }
    }
}

fn encode<O: Serialize + 'static>(value: Result<O, Error>) -> Result<Payload, Error> {
    converter::to_payload(&value?).map_err(Error::from)
}

impl<W: 'static> Definition<W> {
    /// Registers the run function: `async fn run(ctx: WorkflowContext<Self>, args…) ->
    /// WorkflowResult<O>`.
    pub fn run<A, O, F, Fut>(&mut self, run: F)
    where
        A: Args,
        O: Serialize + 'static,
        F: Fn(WorkflowContext<W>, A) -> Fut + 'static,
        Fut: Future<Output = Result<O, Error>> + 'static,
    {
        self.run = Some(Box::new(move |ctx, payloads| {
            let args = A::from_payloads(payloads)?;
            let fut = run(ctx, args);
            Ok(Box::pin(async move { encode(fut.await) }) as LocalBoxFuture<_>)
        }));
    }

    /// Registers a synchronous signal handler: `fn name(&mut self, args…)`.
    pub fn signal<A, F>(&mut self, name: &'static str, handler: F)
    where
        A: Args,
        F: Fn(&mut W, A) + 'static,
    {
        self.signals.insert(
            name,
            SignalFn::Sync(Box::new(move |state, payloads| {
                handler(state, A::from_payloads(payloads)?);
                Ok(())
            })),
        );
    }

    /// Registers an asynchronous signal handler:
    /// `async fn name(ctx: WorkflowContext<Self>, args…)`.
    pub fn signal_async<A, F, Fut>(&mut self, name: &'static str, handler: F)
    where
        A: Args,
        F: Fn(WorkflowContext<W>, A) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.signals.insert(
            name,
            SignalFn::Async(Box::new(move |ctx, payloads| {
                let fut = handler(ctx, A::from_payloads(payloads)?);
                Ok(Box::pin(async move {
                    fut.await;
                    Ok(())
                }) as LocalBoxFuture<_>)
            })),
        );
    }

    /// Registers a query handler: `fn name(&self, args…) -> O`.
    pub fn query<A, O, F>(&mut self, name: &'static str, handler: F)
    where
        A: Args,
        O: Serialize + 'static,
        F: Fn(&W, A) -> O + 'static,
    {
        self.queries.insert(
            name,
            Box::new(move |state, payloads| {
                let args = A::from_payloads(payloads)?;
                encode(Ok(handler(state, args)))
            }),
        );
    }

    /// Registers a synchronous update handler:
    /// `fn name(&mut self, args…) -> Result<O, UpdateError>`.
    pub fn update<A, O, E, F>(&mut self, name: &'static str, handler: F)
    where
        A: Args,
        O: Serialize + 'static,
        E: Into<Error>,
        F: Fn(&mut W, A) -> Result<O, E> + 'static,
    {
        let handler = Rc::new(handler);
        let handler = UpdateFn::Sync(Box::new(move |payloads| {
            let args = A::from_payloads(payloads)?;
            let handler = handler.clone();
            Ok(
                Box::new(move |state: &mut W| encode(handler(state, args).map_err(Into::into)))
                    as UpdateThunk<W>,
            )
        }));
        self.updates.insert(
            name,
            UpdateDef {
                handler,
                validator: None,
            },
        );
    }

    /// Registers an asynchronous update handler:
    /// `async fn name(ctx: WorkflowContext<Self>, args…) -> Result<O, UpdateError>`.
    pub fn update_async<A, O, E, F, Fut>(&mut self, name: &'static str, handler: F)
    where
        A: Args,
        O: Serialize + 'static,
        E: Into<Error>,
        F: Fn(WorkflowContext<W>, A) -> Fut + 'static,
        Fut: Future<Output = Result<O, E>> + 'static,
    {
        let handler = UpdateFn::Async(Box::new(move |ctx, payloads| {
            let fut = handler(ctx, A::from_payloads(payloads)?);
            Ok(Box::pin(async move { encode(fut.await.map_err(Into::into)) }) as LocalBoxFuture<_>)
        }));
        self.updates.insert(
            name,
            UpdateDef {
                handler,
                validator: None,
            },
        );
    }

    /// Registers the validator of the update `name` (registered before):
    /// `fn check(&self, args: &…) -> Result<(), UpdateError>`. A validator that fails
    /// rejects the update: it leaves no trace in the history.
    ///
    /// # Panics
    /// If no update `name` was registered (generated code registers the update first).
    pub fn validator<A, E, F>(&mut self, name: &'static str, validator: F)
    where
        A: Args,
        E: Into<Error>,
        F: Fn(&W, &A) -> Result<(), E> + 'static,
    {
        let update = self
            .updates
            .get_mut(name)
            .unwrap_or_else(|| panic!("validator for unknown update `{name}`"));
        update.validator = Some(Box::new(move |state, payloads| {
            let args = A::from_payloads(payloads)?;
            validator(state, &args).map_err(Into::into)
        }));
    }

    /// The names of the registered signals, queries and updates (for error messages).
    pub(crate) fn handler_names(&self) -> HandlerNames {
        HandlerNames {
            signals: self.signals.keys().copied().collect(),
            queries: self.queries.keys().copied().collect(),
            updates: self.updates.keys().copied().collect(),
        }
    }
}

/// The handler names of a workflow type.
#[derive(Clone, Debug, Default)]
pub(crate) struct HandlerNames {
    pub(crate) signals: Vec<&'static str>,
    pub(crate) queries: Vec<&'static str>,
    pub(crate) updates: Vec<&'static str>,
}

/// An activity registered on a worker, with its types erased.
pub(crate) trait ErasedActivity: Send + Sync {
    fn execute(
        &self,
        ctx: ActivityContext,
        payloads: Vec<Payload>,
    ) -> BoxFuture<Result<Payload, Error>>;

    fn describe(&self, generator: &mut SchemaGenerator) -> HandlerSchema;
}

impl<A: ActivityDefinition> ErasedActivity for A {
    fn execute(
        &self,
        ctx: ActivityContext,
        payloads: Vec<Payload>,
    ) -> BoxFuture<Result<Payload, Error>> {
        match A::Args::from_payloads(&payloads) {
            Ok(args) => {
                let fut = ActivityDefinition::execute(self, ctx, args);
                Box::pin(async move { encode(fut.await) })
            }
            Err(e) => {
                let message = format!("activity `{}`: {e}", A::NAME);
                Box::pin(async move { Err(Error::application("PayloadError", message)) })
            }
        }
    }

    fn describe(&self, generator: &mut SchemaGenerator) -> HandlerSchema {
        crate::schema::activity_schema::<A>(generator)
    }
}

pub(crate) type ActivityRegistry = BTreeMap<String, Arc<dyn ErasedActivity>>;
