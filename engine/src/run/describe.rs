//! What describe and list report of a run.

use super::{ActivityState, Run};
use crate::proto::{
    self,
    common::WorkflowExecution,
    enums::PendingActivityState,
    workflow::{
        pending_activity_info::{
            pause_info::{self, PausedBy},
            PauseInfo,
        },
        PendingActivityInfo, PendingChildExecutionInfo, WorkflowExecutionConfig,
        WorkflowExecutionExtendedInfo, WorkflowExecutionInfo,
    },
};

impl Run {
    /// The run at the root of its tree of children: its started event names it (a
    /// child's, as on Temporal), else the run is its own root.
    pub(crate) fn root_execution(&self) -> WorkflowExecution {
        self.started
            .root_workflow_execution
            .clone()
            .unwrap_or_else(|| self.execution())
    }

    /// The run as describe and list report it.
    pub(crate) fn execution_info(&self) -> WorkflowExecutionInfo {
        WorkflowExecutionInfo {
            execution: Some(self.execution()),
            r#type: self.started.workflow_type.clone(),
            start_time: Some(proto::timestamp(self.start_time)),
            close_time: self.close_time.map(proto::timestamp),
            status: self.status as i32,
            history_length: self.events.len() as i64,
            history_size_bytes: i64::try_from(self.events.size()).unwrap_or(i64::MAX),
            parent_execution: self.parent.as_ref().map(|p| p.execution.clone()),
            execution_time: Some(proto::timestamp(self.execution_time())),
            memo: self.memo.clone(),
            search_attributes: self.search_attributes.clone(),
            task_queue: self.task_queue.clone(),
            first_run_id: self.started.first_execution_run_id.clone(),
            root_execution: Some(self.root_execution()),
            priority: self.started.priority.clone(),
            ..Default::default()
        }
    }

    /// What describe adds of the run's resets: the run that reset it, when the first run
    /// it was reset from started (its own start, if none), and when it was reset.
    pub(crate) fn extended_info(&self) -> WorkflowExecutionExtendedInfo {
        WorkflowExecutionExtendedInfo {
            reset_run_id: self.reset_run_id.clone(),
            original_start_time: Some(proto::timestamp(
                self.original_start_time.unwrap_or(self.start_time),
            )),
            last_reset_time: self
                .original_start_time
                .map(|_| proto::timestamp(self.start_time)),
            ..Default::default()
        }
    }

    /// The options the run was started with.
    pub(crate) fn execution_config(&self) -> WorkflowExecutionConfig {
        WorkflowExecutionConfig {
            task_queue: self.started.task_queue.clone(),
            workflow_execution_timeout: self.started.workflow_execution_timeout,
            workflow_run_timeout: self.started.workflow_run_timeout,
            default_workflow_task_timeout: self.started.workflow_task_timeout,
            user_metadata: self.events.get(0).and_then(|started| started.user_metadata),
        }
    }

    /// The activities not yet closed.
    pub(crate) fn pending_activities(&self) -> Vec<PendingActivityInfo> {
        self.activities
            .iter()
            .map(|(scheduled, a)| {
                let (identity, started, heartbeat) = match &a.state {
                    ActivityState::Started {
                        identity,
                        started_time,
                        last_heartbeat,
                    } => (
                        identity.clone(),
                        Some(proto::timestamp(*started_time)),
                        Some(proto::timestamp(*last_heartbeat)),
                    ),
                    _ => (String::new(), None, None),
                };
                let state = match (&a.state, &a.paused) {
                    (ActivityState::Started { .. }, Some(_)) => {
                        PendingActivityState::PauseRequested
                    }
                    (ActivityState::Started { .. }, None) => PendingActivityState::Started,
                    (_, Some(_)) => PendingActivityState::Paused,
                    (_, None) => PendingActivityState::Scheduled,
                };
                PendingActivityInfo {
                    activity_id: a.attrs.activity_id.clone(),
                    activity_type: a.attrs.activity_type.clone(),
                    state: state as i32,
                    heartbeat_details: a.heartbeat_details.clone(),
                    last_heartbeat_time: heartbeat,
                    last_started_time: started,
                    last_worker_identity: identity,
                    attempt: a.attempt,
                    maximum_attempts: a
                        .attrs
                        .retry_policy
                        .as_ref()
                        .map_or(0, |p| p.maximum_attempts),
                    scheduled_time: Some(proto::timestamp(a.attempt_scheduled_time)),
                    last_failure: a.last_failure.clone(),
                    paused: a.paused.is_some(),
                    pause_info: a.paused.as_ref().map(|p| PauseInfo {
                        pause_time: Some(proto::timestamp(p.time)),
                        paused_by: Some(PausedBy::Manual(pause_info::Manual {
                            identity: p.identity.clone(),
                            reason: p.reason.clone(),
                        })),
                    }),
                    activity_options: Some(self.activity_options(*scheduled)),
                    ..Default::default()
                }
            })
            .collect()
    }

    /// The children started and not yet closed.
    pub(crate) fn pending_children(&self) -> Vec<PendingChildExecutionInfo> {
        self.children
            .iter()
            .map(|(initiated, c)| PendingChildExecutionInfo {
                workflow_id: c.execution.workflow_id.clone(),
                run_id: c.execution.run_id.clone(),
                workflow_type_name: c.workflow_type.clone(),
                initiated_id: *initiated,
                parent_close_policy: c.parent_close_policy,
            })
            .collect()
    }
}
