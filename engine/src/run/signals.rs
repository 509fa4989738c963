//! Signals and cancel requests: received from clients or other workflows, and sent to
//! other workflows by commands (whose outcome the state reports back).

use super::{CrossRun, Ctx, Run};
use crate::proto::{
    command::{
        RequestCancelExternalWorkflowExecutionCommandAttributes,
        SignalExternalWorkflowExecutionCommandAttributes,
    },
    common::WorkflowExecution,
    enums::{
        CancelExternalWorkflowExecutionFailedCause, SignalExternalWorkflowExecutionFailedCause,
    },
    history::{history_event::Attributes, *},
};

/// How many of a run's latest client signal request ids it remembers.
pub(crate) const RECENT_SIGNAL_REQUEST_IDS: usize = 64;

impl Run {
    /// A signal from a client or another workflow. A client's signal with a request id
    /// the run has seen is a retry: applied once, as on Temporal.
    pub(crate) fn signal(
        &mut self,
        ctx: &mut Ctx<'_>,
        request_id: &str,
        attrs: WorkflowExecutionSignaledEventAttributes,
    ) {
        if !self.remember_signal_request(request_id) {
            return;
        }
        self.add_new_event(
            ctx,
            Attributes::WorkflowExecutionSignaledEventAttributes(attrs),
        );
    }

    /// Notes a client signal's request id; false if the run has seen it (a retry). An
    /// empty id is never a retry.
    pub(super) fn remember_signal_request(&mut self, request_id: &str) -> bool {
        crate::recent_requests::remember(
            &mut self.signal_request_ids,
            request_id,
            RECENT_SIGNAL_REQUEST_IDS,
        )
    }

    /// A request to cancel the run, from a client, its parent or its schedule.
    pub(crate) fn request_cancel(
        &mut self,
        ctx: &mut Ctx<'_>,
        attrs: WorkflowExecutionCancelRequestedEventAttributes,
    ) {
        self.add_new_event(
            ctx,
            Attributes::WorkflowExecutionCancelRequestedEventAttributes(attrs),
        );
    }

    /// The namespace a command names, or the run's own.
    fn namespace_or_own(&self, namespace: String) -> String {
        if namespace.is_empty() {
            self.namespace.clone()
        } else {
            namespace
        }
    }

    /// `SignalExternalWorkflowExecution`: the initiated event; the state delivers it.
    pub(super) fn signal_external_workflow_execution(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: SignalExternalWorkflowExecutionCommandAttributes,
    ) -> CrossRun {
        let attrs = SignalExternalWorkflowExecutionInitiatedEventAttributes {
            workflow_task_completed_event_id: completed_id,
            namespace: self.namespace_or_own(a.namespace),
            workflow_execution: a.execution,
            signal_name: a.signal_name,
            input: a.input,
            control: a.control,
            child_workflow_only: a.child_workflow_only,
            header: a.header,
            ..Default::default()
        };
        let initiated = self.append(
            ctx,
            Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(attrs.clone()),
        );
        CrossRun::Signal(initiated, attrs)
    }

    /// `RequestCancelExternalWorkflowExecution`: the initiated event; the state delivers
    /// it.
    pub(super) fn request_cancel_external_workflow_execution(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: RequestCancelExternalWorkflowExecutionCommandAttributes,
    ) -> CrossRun {
        let attrs = RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
            workflow_task_completed_event_id: completed_id,
            namespace: self.namespace_or_own(a.namespace),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: a.workflow_id,
                run_id: a.run_id,
            }),
            control: a.control,
            child_workflow_only: a.child_workflow_only,
            reason: a.reason,
            ..Default::default()
        };
        let initiated = self.append(
            ctx,
            Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                attrs.clone(),
            ),
        );
        CrossRun::Cancel(initiated, attrs)
    }

    /// The outcome of a signal this run sent: delivered, or no such open workflow.
    pub(crate) fn external_signal_outcome(
        &mut self,
        ctx: &mut Ctx<'_>,
        initiated: i64,
        attrs: SignalExternalWorkflowExecutionInitiatedEventAttributes,
        delivered: bool,
    ) {
        let outcome = if delivered {
            Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
                ExternalWorkflowExecutionSignaledEventAttributes {
                    initiated_event_id: initiated,
                    namespace: attrs.namespace,
                    workflow_execution: attrs.workflow_execution,
                    control: attrs.control,
                    ..Default::default()
                },
            )
        } else {
            Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
                SignalExternalWorkflowExecutionFailedEventAttributes {
                    cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                        as i32,
                    workflow_task_completed_event_id: attrs.workflow_task_completed_event_id,
                    namespace: attrs.namespace,
                    workflow_execution: attrs.workflow_execution,
                    initiated_event_id: initiated,
                    control: attrs.control,
                    ..Default::default()
                },
            )
        };
        self.add_new_event(ctx, outcome);
    }

    /// The outcome of a cancel request this run sent: delivered, or no such open
    /// workflow.
    pub(crate) fn external_cancel_outcome(
        &mut self,
        ctx: &mut Ctx<'_>,
        initiated: i64,
        attrs: RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
        delivered: bool,
    ) {
        let outcome = if delivered {
            Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                ExternalWorkflowExecutionCancelRequestedEventAttributes {
                    initiated_event_id: initiated,
                    namespace: attrs.namespace,
                    workflow_execution: attrs.workflow_execution,
                    ..Default::default()
                },
            )
        } else {
            Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                    cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                        as i32,
                    workflow_task_completed_event_id: attrs.workflow_task_completed_event_id,
                    namespace: attrs.namespace,
                    workflow_execution: attrs.workflow_execution,
                    initiated_event_id: initiated,
                    control: attrs.control,
                    ..Default::default()
                },
            )
        };
        self.add_new_event(ctx, outcome);
    }
}
