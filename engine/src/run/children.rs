//! Child workflows as their parent sees them: initiated by a command, started (or not) by
//! the state, and closed with an event that carries the child's outcome.

use crate::proto::sdk::UserMetadata;
use serde::{Deserialize, Serialize};

use super::{task_queue, CrossRun, Ctx, Run, StartRun};
use crate::{
    pb,
    proto::{
        command::StartChildWorkflowExecutionCommandAttributes,
        common::{WorkflowExecution, WorkflowType},
        enums::StartChildWorkflowExecutionFailedCause,
        history::{history_event::Attributes, *},
    },
};

/// A child the run started and that has not closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Child {
    #[serde(with = "pb::message")]
    pub(crate) execution: WorkflowExecution,
    pub(crate) workflow_type: String,
    pub(crate) namespace: String,
    pub(crate) started_event_id: i64,
    pub(crate) parent_close_policy: i32,
}

impl Child {
    /// The child initiated with `attrs`, started as `execution` (written at
    /// `started_event_id`; 0 while that event is buffered).
    pub(super) fn new(
        attrs: &StartChildWorkflowExecutionInitiatedEventAttributes,
        execution: WorkflowExecution,
        started_event_id: i64,
    ) -> Self {
        Self {
            execution,
            workflow_type: attrs
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            namespace: attrs.namespace.clone(),
            started_event_id,
            parent_close_policy: attrs.parent_close_policy,
        }
    }
}

/// The run that started this one as a child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ParentRef {
    pub(crate) namespace: String,
    #[serde(with = "pb::message")]
    pub(crate) execution: WorkflowExecution,
    pub(crate) initiated_event_id: i64,
}

/// A closed child run, as its parent hears of it.
#[derive(Debug)]
pub(crate) struct ClosedChild {
    namespace: String,
    execution: WorkflowExecution,
    workflow_type: Option<WorkflowType>,
    /// The child's close event.
    close: Option<Attributes>,
}

impl Run {
    /// `StartChildWorkflowExecution`: the initiated event; the state starts the child.
    pub(super) fn start_child_workflow_execution(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: StartChildWorkflowExecutionCommandAttributes,
        user_metadata: Option<UserMetadata>,
    ) -> CrossRun {
        let attrs = StartChildWorkflowExecutionInitiatedEventAttributes {
            namespace: if a.namespace.is_empty() {
                self.namespace.clone()
            } else {
                a.namespace
            },
            workflow_id: a.workflow_id,
            workflow_type: a.workflow_type,
            task_queue: a
                .task_queue
                .filter(|q| !q.name.is_empty())
                .or_else(|| task_queue(&self.task_queue)),
            input: a.input,
            workflow_execution_timeout: a.workflow_execution_timeout,
            workflow_run_timeout: a.workflow_run_timeout,
            workflow_task_timeout: a.workflow_task_timeout,
            parent_close_policy: a.parent_close_policy,
            control: a.control,
            workflow_task_completed_event_id: completed_id,
            workflow_id_reuse_policy: a.workflow_id_reuse_policy,
            retry_policy: a.retry_policy,
            cron_schedule: a.cron_schedule,
            header: a.header,
            memo: a.memo,
            search_attributes: a.search_attributes,
            priority: a.priority,
            ..Default::default()
        };
        let initiated = self.append_described(
            ctx,
            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(attrs.clone()),
            user_metadata,
        );
        CrossRun::StartChild(initiated, Box::new(attrs))
    }

    /// What starting the child initiated at `initiated` takes (the initiated event is
    /// written: its user metadata becomes the child's).
    pub(crate) fn child_start(
        &self,
        initiated: i64,
        attrs: &StartChildWorkflowExecutionInitiatedEventAttributes,
    ) -> StartRun {
        let parent = self.execution();
        let root = self.root_execution();
        StartRun {
            namespace: attrs.namespace.clone(),
            workflow_id: attrs.workflow_id.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            // The command's summary and details are the child's, as on Temporal.
            user_metadata: self
                .events
                .get(initiated as usize - 1)
                .and_then(|event| event.user_metadata),
            attrs: WorkflowExecutionStartedEventAttributes {
                workflow_type: attrs.workflow_type.clone(),
                parent_workflow_namespace: self.namespace.clone(),
                parent_workflow_execution: Some(parent.clone()),
                parent_initiated_event_id: initiated,
                task_queue: attrs.task_queue.clone(),
                input: attrs.input.clone(),
                workflow_execution_timeout: attrs.workflow_execution_timeout,
                workflow_run_timeout: attrs.workflow_run_timeout,
                workflow_task_timeout: attrs.workflow_task_timeout,
                retry_policy: attrs.retry_policy.clone(),
                cron_schedule: attrs.cron_schedule.clone(),
                header: attrs.header.clone(),
                memo: attrs.memo.clone(),
                priority: attrs.priority.clone(),
                search_attributes: attrs.search_attributes.clone(),
                root_workflow_execution: Some(root),
                ..Default::default()
            },
            parent: Some(ParentRef {
                namespace: self.namespace.clone(),
                execution: parent,
                initiated_event_id: initiated,
            }),
        }
    }

    /// The child initiated at `initiated` could not start: its workflow id is taken.
    pub(crate) fn child_start_failed(
        &mut self,
        ctx: &mut Ctx<'_>,
        initiated: i64,
        attrs: StartChildWorkflowExecutionInitiatedEventAttributes,
    ) {
        self.add_new_event(
            ctx,
            Attributes::StartChildWorkflowExecutionFailedEventAttributes(
                StartChildWorkflowExecutionFailedEventAttributes {
                    namespace: attrs.namespace,
                    workflow_id: attrs.workflow_id,
                    workflow_type: attrs.workflow_type,
                    cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32,
                    control: attrs.control,
                    initiated_event_id: initiated,
                    workflow_task_completed_event_id: attrs.workflow_task_completed_event_id,
                    ..Default::default()
                },
            ),
        );
    }

    /// The child initiated at `initiated` started as run `child_run_id`.
    pub(crate) fn child_started(
        &mut self,
        ctx: &mut Ctx<'_>,
        initiated: i64,
        attrs: StartChildWorkflowExecutionInitiatedEventAttributes,
        child_run_id: String,
    ) {
        let execution = WorkflowExecution {
            workflow_id: attrs.workflow_id.clone(),
            run_id: child_run_id,
        };
        self.add_new_event(
            ctx,
            Attributes::ChildWorkflowExecutionStartedEventAttributes(
                ChildWorkflowExecutionStartedEventAttributes {
                    namespace: attrs.namespace.clone(),
                    initiated_event_id: initiated,
                    workflow_execution: Some(execution.clone()),
                    workflow_type: attrs.workflow_type.clone(),
                    header: attrs.header.clone(),
                    ..Default::default()
                },
            ),
        );
        // Buffered (a task is started): its id is not known yet.
        let started_event_id = if self.buffered.is_empty() {
            self.events.len() as i64
        } else {
            0
        };
        self.children
            .insert(initiated, Child::new(&attrs, execution, started_event_id));
    }

    /// What its parent hears of this run, which just closed.
    pub(crate) fn as_closed_child(&self) -> ClosedChild {
        ClosedChild {
            namespace: self.namespace.clone(),
            execution: self.execution(),
            workflow_type: self.started.workflow_type.clone(),
            close: self.last_event(),
        }
    }

    /// The child initiated at `initiated_event_id` closed; the matching child event is
    /// written.
    pub(crate) fn child_closed(
        &mut self,
        ctx: &mut Ctx<'_>,
        initiated_event_id: i64,
        child: ClosedChild,
    ) {
        let Some(record) = self.children.remove(&initiated_event_id) else {
            return;
        };
        let started_event_id = record.started_event_id;
        let namespace = child.namespace;
        let workflow_execution = Some(child.execution);
        let workflow_type = child.workflow_type;
        let event = match child.close {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                    ChildWorkflowExecutionCompletedEventAttributes {
                        result: a.result,
                        namespace,
                        workflow_execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionFailedEventAttributes(
                    ChildWorkflowExecutionFailedEventAttributes {
                        failure: a.failure,
                        namespace,
                        workflow_execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: a.retry_state,
                        ..Default::default()
                    },
                )
            }
            Some(Attributes::WorkflowExecutionCanceledEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionCanceledEventAttributes(
                    ChildWorkflowExecutionCanceledEventAttributes {
                        details: a.details,
                        namespace,
                        workflow_execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionTimedOutEventAttributes(
                    ChildWorkflowExecutionTimedOutEventAttributes {
                        namespace,
                        workflow_execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: a.retry_state,
                        ..Default::default()
                    },
                )
            }
            _ => Attributes::ChildWorkflowExecutionTerminatedEventAttributes(
                ChildWorkflowExecutionTerminatedEventAttributes {
                    namespace,
                    workflow_execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            ),
        };
        self.add_new_event(ctx, event);
    }
}
