//! A new run: its started event and its first workflow task (at once, or after a start
//! delay, a retry's backoff or a cron wait).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use super::{task_queue, Ctx, EventBuffer, ParentRef, Run};
use crate::{
    event_log::EventLog,
    proto::{
        self,
        enums::WorkflowExecutionStatus,
        history::{history_event::Attributes, WorkflowExecutionStartedEventAttributes},
        sdk::UserMetadata,
    },
};

/// The default workflow task timeout, as Temporal's.
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(10);

/// What starting a run needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct StartRun {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) request_id: String,
    /// The started event's attributes; a run id may be chosen in advance as its
    /// `original_execution_run_id`.
    pub(crate) attrs: WorkflowExecutionStartedEventAttributes,
    /// The started event's summary and details.
    pub(crate) user_metadata: Option<UserMetadata>,
    pub(crate) parent: Option<ParentRef>,
}

impl Run {
    /// A run started now: its started event written and its first workflow task
    /// scheduled, or waiting for its backoff.
    pub(crate) fn start(ctx: &mut Ctx<'_>, start: StartRun) -> Self {
        let mut attrs = start.attrs;
        if attrs.original_execution_run_id.is_empty() {
            attrs.original_execution_run_id = super::new_run_id();
        }
        let run_id = attrs.original_execution_run_id.clone();
        if attrs.first_execution_run_id.is_empty() {
            attrs.first_execution_run_id = run_id.clone();
        }
        attrs.attempt = attrs.attempt.max(1);
        attrs.workflow_id = start.workflow_id.clone();
        let task_timeout =
            proto::duration(attrs.workflow_task_timeout.as_ref()).unwrap_or(DEFAULT_TASK_TIMEOUT);
        attrs.workflow_task_timeout = Some(proto::proto_duration(task_timeout));
        let queue = attrs
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        attrs.task_queue = task_queue(&queue);
        let now = ctx.now;
        // The first run of a cron workflow waits for the schedule's first time.
        if attrs.first_workflow_task_backoff.is_none()
            && attrs.continued_execution_run_id.is_empty()
        {
            if let Some(first) = super::close::cron_next(&attrs.cron_schedule, now) {
                attrs.first_workflow_task_backoff = Some(proto::proto_duration(
                    first.duration_since(now).unwrap_or_default(),
                ));
            }
        }
        let backoff =
            proto::duration(attrs.first_workflow_task_backoff.as_ref()).filter(|b| !b.is_zero());
        let mut run = Self {
            namespace: start.namespace,
            workflow_id: start.workflow_id,
            run_id,
            workflow_type: attrs
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            task_queue: queue,
            started: Arc::new(attrs.clone()),
            memo: attrs.memo.clone(),
            search_attributes: attrs.search_attributes.clone(),
            request_id: start.request_id,
            status: WorkflowExecutionStatus::Running,
            events: EventLog::default(),
            buffered: EventBuffer::default(),
            wft: None,
            previous_started_event_id: 0,
            sticky: None,
            task_timeout,
            start_time: now,
            close_time: None,
            activities: BTreeMap::new(),
            timers: HashMap::new(),
            children: BTreeMap::new(),
            updates: Vec::new(),
            parent: start.parent,
            new_run_id: String::new(),
            backoff_until: backoff.map(|b| crate::clock::after(now, b)),
            in_completion: false,
            needs_task: false,
            signal_request_ids: Default::default(),
            reset_run_id: String::new(),
            original_start_time: None,
        };
        run.append_described(
            ctx,
            Attributes::WorkflowExecutionStartedEventAttributes(attrs),
            start.user_metadata,
        );
        run.schedule_workflow_task(ctx);
        run
    }

    /// The run's start delay or backoff is over: its first workflow task is scheduled.
    pub(crate) fn end_backoff(&mut self, ctx: &mut Ctx<'_>) {
        if self.backoff_until.is_some_and(|t| t <= ctx.now) {
            self.backoff_until = None;
            self.schedule_workflow_task(ctx);
        }
    }
}
