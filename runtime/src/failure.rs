//! Failures: what goes wrong in workflows and activities, on the wire and in Rust.
//!
//! Two types, one for each direction:
//! - [`Error`] is what user code *returns* (`Result<T, ActivityError>`, `WorkflowResult<T>`,
//!   `Result<T, UpdateError>`): any `std::error::Error` converts into it with `?`, and
//!   [`ApplicationError`] sets the type, non-retryable flag, details and next retry delay.
//! - [`Failure`] is what code *receives*: an activity's, child workflow's, update's or
//!   workflow's failure with its whole cause chain (workflow failure → activity or child
//!   error → application error), stack traces included. It is the Temporal `Failure`
//!   message itself, so the shapes are exactly those every Temporal SDK writes and reads.

use std::{error::Error as StdError, fmt, time::Duration};

use serde::Serialize;
use temporalio_common::protos::temporal::api::{
    common::v1::Payloads,
    enums::v1::TimeoutType,
    failure::v1::{
        failure::FailureInfo, ApplicationFailureInfo, CanceledFailureInfo, Failure as ProtoFailure,
    },
};

use crate::converter::{self, PayloadError};

/// The `source` Capstan writes into the failures it creates.
pub const FAILURE_SOURCE: &str = "CapstanRust";

/// A failure received from Temporal: an activity, child workflow, update or workflow that
/// failed, with its cause chain.
#[derive(Clone, PartialEq)]
pub struct Failure(Box<ProtoFailure>);

/// What kind of failure one link of the chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Raised by user code ([`ApplicationError`], or any error an activity returned).
    Application,
    /// An activity failed; the cause says why.
    Activity,
    /// A child workflow failed; the cause says why.
    ChildWorkflow,
    /// Cancelled.
    Cancelled,
    /// A timeout fired.
    Timeout,
    /// The workflow was terminated.
    Terminated,
    /// The server failed the operation.
    Server,
    /// Anything else (reset, Nexus).
    Other,
}

impl Failure {
    /// Wraps a failure message received from the server.
    pub fn from_proto(proto: ProtoFailure) -> Self {
        Self(Box::new(proto))
    }

    /// The failure message, ready to send.
    pub fn into_proto(self) -> ProtoFailure {
        *self.0
    }

    /// The failure message.
    pub fn as_proto(&self) -> &ProtoFailure {
        &self.0
    }

    /// This link's message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// This link's stack trace (empty when the failing side sent none).
    pub fn stack_trace(&self) -> &str {
        &self.0.stack_trace
    }

    /// The SDK that created this link (`CapstanRust`, `PythonSDK`, …).
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// What kind of failure this link is.
    pub fn kind(&self) -> FailureKind {
        match &self.0.failure_info {
            Some(FailureInfo::ApplicationFailureInfo(_)) => FailureKind::Application,
            Some(FailureInfo::ActivityFailureInfo(_)) => FailureKind::Activity,
            Some(FailureInfo::ChildWorkflowExecutionFailureInfo(_)) => FailureKind::ChildWorkflow,
            Some(FailureInfo::CanceledFailureInfo(_)) => FailureKind::Cancelled,
            Some(FailureInfo::TimeoutFailureInfo(_)) => FailureKind::Timeout,
            Some(FailureInfo::TerminatedFailureInfo(_)) => FailureKind::Terminated,
            Some(FailureInfo::ServerFailureInfo(_)) => FailureKind::Server,
            _ => FailureKind::Other,
        }
    }

    /// The next link of the chain: why this one happened.
    pub fn cause(&self) -> Option<Failure> {
        self.0.cause.as_deref().cloned().map(Failure::from_proto)
    }

    /// This link and every cause after it, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = Failure> {
        std::iter::successors(Some(self.clone()), Failure::cause)
    }

    /// The innermost link: usually the application error that started it all.
    pub fn root_cause(&self) -> Failure {
        self.chain().last().expect("a chain has at least one link")
    }

    /// The application error type of this link (`"RuntimeError"`, `"ValueError"`, …).
    pub fn error_type(&self) -> Option<&str> {
        match &self.0.failure_info {
            Some(FailureInfo::ApplicationFailureInfo(info)) => Some(&info.r#type),
            _ => None,
        }
    }

    /// Whether this link is an application error marked non-retryable.
    pub fn is_non_retryable(&self) -> bool {
        matches!(&self.0.failure_info,
            Some(FailureInfo::ApplicationFailureInfo(info)) if info.non_retryable)
    }

    /// Whether this failure is a cancellation, directly or as the cause of an activity or
    /// child workflow failure.
    pub fn is_cancelled(&self) -> bool {
        match self.kind() {
            FailureKind::Cancelled => true,
            FailureKind::Activity | FailureKind::ChildWorkflow => self
                .cause()
                .is_some_and(|c| c.kind() == FailureKind::Cancelled),
            _ => false,
        }
    }

    /// The timeout type of a timeout link (`"START_TO_CLOSE"`, `"HEARTBEAT"`, …).
    pub fn timeout_type(&self) -> Option<&'static str> {
        match &self.0.failure_info {
            Some(FailureInfo::TimeoutFailureInfo(info)) => Some(
                TimeoutType::try_from(info.timeout_type)
                    .unwrap_or(TimeoutType::Unspecified)
                    .as_str_name()
                    .trim_start_matches("TIMEOUT_TYPE_"),
            ),
            _ => None,
        }
    }

    /// The details attached to an application error or cancellation, decoded as `T`
    /// (a tuple for several details: `(String, u32)`).
    pub fn details<T: converter::Args>(&self) -> Result<T, PayloadError> {
        let details = match &self.0.failure_info {
            Some(FailureInfo::ApplicationFailureInfo(info)) => info.details.as_ref(),
            Some(FailureInfo::CanceledFailureInfo(info)) => info.details.as_ref(),
            Some(FailureInfo::TimeoutFailureInfo(info)) => info.last_heartbeat_details.as_ref(),
            _ => None,
        };
        T::from_payloads(details.map(|d| d.payloads.as_slice()).unwrap_or_default())
    }

    /// The message of every link, joined as `outer: inner: root`, each with its type.
    fn describe_chain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, link) in self.chain().enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            f.write_str(link.message())?;
            if let Some(ty) = link.error_type().filter(|t| !t.is_empty()) {
                write!(f, " ({ty})")?;
            }
            if let Some(ty) = link.timeout_type() {
                write!(f, " ({ty} timeout)")?;
            }
        }
        Ok(())
    }

    /// The whole chain with each link's stack trace, like Python's `append_temporal_stack`.
    pub fn display_with_stacks(&self) -> String {
        let mut out = String::new();
        for (i, link) in self.chain().enumerate() {
            if i > 0 {
                out.push_str("\ncaused by: ");
            }
            out.push_str(link.message());
            if let Some(ty) = link.error_type().filter(|t| !t.is_empty()) {
                out.push_str(&format!(" ({ty})"));
            }
            if !link.stack_trace().is_empty() {
                out.push_str("\nStack:\n");
                out.push_str(link.stack_trace().trim_end());
            }
        }
        out
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe_chain(f)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("kind", &self.kind())
            .field("message", &self.message())
            .field("error_type", &self.error_type())
            .field("cause", &self.cause())
            .finish()
    }
}

impl StdError for Failure {}

/// An error raised by user code with Temporal's application-error attributes: a type
/// (what Python calls the exception class), non-retryable, details and a next retry delay.
///
/// ```
/// use capstan::ApplicationError;
/// let err = ApplicationError::new("ValueError", "points must be an integer").non_retryable();
/// assert!(err.is_non_retryable());
/// ```
#[derive(Clone, Debug)]
pub struct ApplicationError {
    error_type: String,
    message: String,
    non_retryable: bool,
    details: Result<Payloads, String>,
    next_retry_delay: Option<Duration>,
    cause: Option<Box<ProtoFailure>>,
}

impl ApplicationError {
    /// An error of type `error_type` (shown to every SDK, and matched by retry policies'
    /// `non_retryable_error_types`).
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            non_retryable: false,
            details: Ok(Payloads::default()),
            next_retry_delay: None,
            cause: None,
        }
    }

    /// Marks the error non-retryable: the activity is not retried, whatever its policy.
    pub fn non_retryable(mut self) -> Self {
        self.non_retryable = true;
        self
    }

    /// Adds a detail value (readable with [`Failure::details`]).
    pub fn with_detail<T: Serialize + 'static>(mut self, detail: &T) -> Self {
        if let Ok(details) = &mut self.details {
            match converter::to_payload(detail) {
                Ok(p) => details.payloads.push(p),
                Err(e) => self.details = Err(e.to_string()),
            }
        }
        self
    }

    /// Overrides the retry policy's next backoff interval.
    pub fn next_retry_delay(mut self, delay: Duration) -> Self {
        self.next_retry_delay = Some(delay);
        self
    }

    /// Sets the cause of this error.
    pub fn with_cause(mut self, cause: Failure) -> Self {
        self.cause = Some(Box::new(cause.into_proto()));
        self
    }

    /// Whether the error is marked non-retryable.
    pub fn is_non_retryable(&self) -> bool {
        self.non_retryable
    }

    fn into_proto(self) -> ProtoFailure {
        let (details, message) = match self.details {
            Ok(details) => (details, self.message),
            Err(e) => (
                Payloads::default(),
                format!("{} (its details could not be encoded: {e})", self.message),
            ),
        };
        ProtoFailure {
            message,
            source: FAILURE_SOURCE.to_owned(),
            stack_trace: stack_trace(),
            cause: self.cause,
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: self.error_type,
                    non_retryable: self.non_retryable,
                    details: (!details.payloads.is_empty()).then_some(details),
                    next_retry_delay: self.next_retry_delay.and_then(|d| d.try_into().ok()),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }
}

impl fmt::Display for ApplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.error_type)
    }
}

impl StdError for ApplicationError {}

/// What workflow, activity and handler code returns on failure. Any `std::error::Error`
/// converts into it with `?`; [`ApplicationError`] and [`Failure`] keep their attributes.
///
/// The aliases [`ActivityError`], [`WorkflowError`] and [`UpdateError`] name the same type
/// where it is returned.
pub struct Error(Box<Repr>);

enum Repr {
    Failure(ProtoFailure),
    ContinueAsNew(crate::workflow::ContinueAsNew),
}

/// The error type of activity functions.
pub type ActivityError = Error;
/// The error type of workflow run functions.
pub type WorkflowError = Error;
/// The error type of update handlers and validators.
pub type UpdateError = Error;
/// What a workflow's run function returns.
pub type WorkflowResult<T> = Result<T, WorkflowError>;

impl Error {
    /// An application error of type `error_type`.
    pub fn application(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ApplicationError::new(error_type, message).into()
    }

    /// A cancellation: returned by an activity that stops because it was cancelled, or by a
    /// workflow that ends as cancelled.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::from_failure_proto(ProtoFailure {
            message: message.into(),
            source: FAILURE_SOURCE.to_owned(),
            failure_info: Some(FailureInfo::CanceledFailureInfo(
                CanceledFailureInfo::default(),
            )),
            ..Default::default()
        })
    }

    pub(crate) fn from_failure_proto(proto: ProtoFailure) -> Self {
        Self(Box::new(Repr::Failure(proto)))
    }

    pub(crate) fn continue_as_new(command: crate::workflow::ContinueAsNew) -> Self {
        Self(Box::new(Repr::ContinueAsNew(command)))
    }

    /// The failure this error sends to the server; `None` for a continue-as-new request.
    pub fn as_failure(&self) -> Option<Failure> {
        match &*self.0 {
            Repr::Failure(f) => Some(Failure::from_proto(f.clone())),
            Repr::ContinueAsNew(_) => None,
        }
    }

    /// Whether this error is a cancellation (directly, or an activity or child workflow
    /// failure caused by one).
    pub fn is_cancelled(&self) -> bool {
        self.as_failure().is_some_and(|f| f.is_cancelled())
    }

    pub(crate) fn into_outcome(self) -> ErrorOutcome {
        match *self.0 {
            Repr::Failure(f) => ErrorOutcome::Failure(f),
            Repr::ContinueAsNew(c) => ErrorOutcome::ContinueAsNew(c),
        }
    }
}

pub(crate) enum ErrorOutcome {
    Failure(ProtoFailure),
    ContinueAsNew(crate::workflow::ContinueAsNew),
}

/// An error and its sources as one line, `outer: inner: …`, skipping a source whose text
/// the message already holds (many errors print their source, `{source}`).
pub(crate) fn error_chain(err: &dyn StdError) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

impl<E: StdError + Send + Sync + 'static> From<E> for Error {
    fn from(err: E) -> Self {
        let any: &dyn std::any::Any = &err;
        if let Some(app) = any.downcast_ref::<ApplicationError>() {
            return Self::from_failure_proto(app.clone().into_proto());
        }
        if let Some(failure) = any.downcast_ref::<Failure>() {
            return Self::from_failure_proto((*failure.0).clone());
        }
        let message = error_chain(&err);
        let error_type = short_type_name(std::any::type_name::<E>());
        ApplicationError::new(error_type, message).into_error()
    }
}

impl ApplicationError {
    fn into_error(self) -> Error {
        Error::from_failure_proto(self.into_proto())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Repr::Failure(p) => fmt::Debug::fmt(&Failure::from_proto(p.clone()), f),
            Repr::ContinueAsNew(c) => write!(f, "ContinueAsNew({})", c.workflow_type()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Repr::Failure(p) => fmt::Display::fmt(&Failure::from_proto(p.clone()), f),
            Repr::ContinueAsNew(c) => write!(f, "continue as new ({})", c.workflow_type()),
        }
    }
}

/// `my_crate::errors::ParseError<T>` → `ParseError`.
fn short_type_name(full: &str) -> String {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// The current stack, trimmed to the frames that say where the error came from: the
/// runtime's own frames and those of std, tokio and futures are left out.
fn stack_trace() -> String {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    let noise = [
        "std::",
        "core::",
        "alloc::",
        "tokio::",
        "futures",
        "__rust",
        "test::",
        "<fn(",
        "capstan::failure::stack_trace",
        "capstan::failure::ApplicationError",
        "capstan::failure::Error",
        "<capstan::failure::Error as",
        "<core::",
        "<alloc::",
        "<std::",
        "<tokio::",
        "<futures",
        "<F as ",
        "<T as ",
    ];
    let mut frames = Vec::new();
    let mut lines = trace.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((_, function)) = line.trim_start().split_once(": ") else {
            continue;
        };
        let location = lines
            .next_if(|l| l.trim_start().starts_with("at "))
            .map(|l| l.trim().to_owned());
        if noise.iter().any(|n| function.starts_with(n)) {
            continue;
        }
        frames.push(match location {
            Some(at) => format!("{function}\n    {at}"),
            None => function.to_owned(),
        });
        if frames.len() == 30 {
            break;
        }
    }
    let mut trace = frames.join("\n");
    // A failure must stay small: the server refuses oversized ones.
    if trace.len() > 4096 {
        let cut = (0..=4096)
            .rev()
            .find(|i| trace.is_char_boundary(*i))
            .unwrap_or(0);
        trace.truncate(cut);
        trace.push_str("\n…");
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[test]
    fn std_errors_become_application_errors_named_by_type() {
        let err: Error = DiskFull.into();
        let f = err.as_failure().unwrap();
        assert_eq!(f.kind(), FailureKind::Application);
        assert_eq!(f.error_type(), Some("DiskFull"));
        assert_eq!(f.message(), "disk full");
        assert!(!f.is_non_retryable());
        assert_eq!(f.source(), FAILURE_SOURCE);
    }

    #[test]
    fn application_error_keeps_its_attributes() {
        let err: Error = ApplicationError::new("ValueError", "bad")
            .non_retryable()
            .with_detail(&42u32)
            .next_retry_delay(Duration::from_secs(3))
            .into();
        let f = err.as_failure().unwrap();
        assert!(f.is_non_retryable());
        assert_eq!(f.error_type(), Some("ValueError"));
        assert_eq!(f.details::<(u32,)>().unwrap(), (42,));
        assert_eq!(f.to_string(), "bad (ValueError)");
        assert!(
            f.stack_trace()
                .contains("application_error_keeps_its_attributes"),
            "the stack names where the error was made: {}",
            f.stack_trace()
        );
    }

    #[test]
    fn failures_pass_through_question_mark_unchanged() {
        let inner: Error = ApplicationError::new("X", "inner").into();
        let failure = inner.as_failure().unwrap();
        let again: Error = failure.clone().into();
        assert_eq!(again.as_failure().unwrap(), failure);
    }

    #[test]
    fn cancellation_is_recognised_through_activity_failures() {
        let cancelled = Error::cancelled("stop").as_failure().unwrap();
        assert!(cancelled.is_cancelled());
        let activity = Failure::from_proto(ProtoFailure {
            message: "Activity task cancelled".into(),
            cause: Some(Box::new(cancelled.into_proto())),
            failure_info: Some(FailureInfo::ActivityFailureInfo(Default::default())),
            ..Default::default()
        });
        assert!(activity.is_cancelled());
        assert_eq!(activity.chain().count(), 2);
        assert_eq!(activity.root_cause().kind(), FailureKind::Cancelled);
    }
}
