//! Workflows across their runs: starting one under the workflow-id reuse and conflict
//! policies, closing runs from outside, and what a run's completion or close does to
//! other runs (children, parents, signals and cancels between workflows, the runs that
//! continue it).

// `TerminateIfRunning` is deprecated but still sent by older clients.
#![allow(deprecated)]

use crate::proto::sdk::UserMetadata;
use tonic::Status;

use super::State;
use crate::{
    errors,
    proto::{
        enums::{
            ParentClosePolicy, WorkflowExecutionStatus, WorkflowIdConflictPolicy,
            WorkflowIdReusePolicy,
        },
        history::{
            WorkflowExecutionCancelRequestedEventAttributes,
            WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
        },
        service::{RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskCompletedResponse},
    },
    run::{CrossRun, Effect, Run, StartRun, ENGINE_IDENTITY},
};

/// A client's request to start a workflow.
#[derive(Debug, Clone, Default)]
pub(crate) struct StartWorkflow {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) request_id: String,
    pub(crate) identity: String,
    pub(crate) reuse: WorkflowIdReusePolicy,
    pub(crate) conflict: WorkflowIdConflictPolicy,
    pub(crate) attrs: WorkflowExecutionStartedEventAttributes,
    /// The started event's summary and details.
    pub(crate) user_metadata: Option<UserMetadata>,
}

/// Who the engine says it is in events it writes on its own.
const ENGINE: &str = "capstan-engine";

/// Temporal's reason for terminating a run whose history is over the size limit.
pub(crate) const HISTORY_SIZE_EXCEEDED: &str = "Workflow history size exceeds limit.";

/// Temporal's reason for terminating a run whose history is over the count limit.
pub(crate) const HISTORY_COUNT_EXCEEDED: &str = "Workflow history count exceeds limit.";

impl State {
    /// Starts a workflow, unless its id is taken: answers the run id and whether it was
    /// started now (`false`: an earlier start with the same request id, or the running
    /// workflow under `UseExisting`).
    pub(crate) fn start_workflow(
        &mut self,
        start: StartWorkflow,
    ) -> Result<(String, bool), Status> {
        self.check_namespace(&start.namespace)?;
        self.check_search_attributes(&start.namespace, start.attrs.search_attributes.as_ref())?;
        let key = (start.namespace.clone(), start.workflow_id.clone());
        if let Some(damaged) = self.damaged.latest(&key.0, &key.1) {
            // Whether it is still open, and what its reuse policy allows, is unknown.
            return Err(damaged.status());
        }
        if let Some(existing) = self.current.get(&key).cloned() {
            let run = &self.runs[&existing];
            if !start.request_id.is_empty() && run.request_id == start.request_id {
                return Ok((existing, true));
            }
            let taken = || errors::already_started(&start.workflow_id, &existing, &run.request_id);
            if run.is_open() {
                match (start.conflict, start.reuse) {
                    (WorkflowIdConflictPolicy::UseExisting, _) => return Ok((existing, false)),
                    (WorkflowIdConflictPolicy::TerminateExisting, _)
                    | (_, WorkflowIdReusePolicy::TerminateIfRunning) => self.terminate(
                        &existing,
                        "terminated by a new start with the same workflow id",
                        &start.identity,
                    ),
                    _ => return Err(taken()),
                }
            } else {
                let reject = match start.reuse {
                    WorkflowIdReusePolicy::RejectDuplicate => true,
                    WorkflowIdReusePolicy::AllowDuplicateFailedOnly => {
                        run.status == WorkflowExecutionStatus::Completed
                    }
                    _ => false,
                };
                if reject {
                    return Err(taken());
                }
            }
        }
        let run_id = self.start_run(StartRun {
            namespace: start.namespace,
            workflow_id: start.workflow_id,
            request_id: start.request_id,
            attrs: start.attrs,
            user_metadata: start.user_metadata,
            parent: None,
        });
        Ok((run_id, true))
    }

    /// Signals the workflow's open run, or starts it (as [`State::start_workflow`]) and
    /// signals the new run, in one transition.
    pub(crate) fn signal_with_start(
        &mut self,
        start: StartWorkflow,
        signal: WorkflowExecutionSignaledEventAttributes,
    ) -> Result<(String, bool), Status> {
        self.check_namespace(&start.namespace)?;
        self.check_search_attributes(&start.namespace, start.attrs.search_attributes.as_ref())?;
        let key = (start.namespace.clone(), start.workflow_id.clone());
        let open = self
            .current
            .get(&key)
            .filter(|id| self.runs[*id].is_open())
            .cloned();
        let request_id = start.request_id.clone();
        let (run_id, started) = match open {
            Some(run_id) => (run_id, false),
            None => self.start_workflow(start)?,
        };
        if self.runs.get(&run_id).is_some_and(Run::is_open) {
            self.with_run(&run_id, |run, ctx| run.signal(ctx, &request_id, signal));
        }
        Ok((run_id, started))
    }

    /// Starts a run and its first workflow task; it becomes its workflow id's current run.
    pub(crate) fn start_run(&mut self, start: StartRun) -> String {
        let mut ctx = self.new_run_ctx();
        let run = Run::start(&mut ctx, start);
        let effects = ctx.effects;
        let run_id = run.run_id.clone();
        let key = (run.namespace.clone(), run.workflow_id.clone());
        self.set_current(key, Some(run_id.clone()));
        self.push_started(run_id.clone());
        self.runs.insert(run);
        self.apply_effects(&run_id, effects);
        run_id
    }

    /// The context of a run not yet in the state (one being started or reset).
    pub(super) fn new_run_ctx(&mut self) -> crate::run::Ctx<'_> {
        crate::run::Ctx::new(self.now, &self.config, &self.sticky, &mut self.seq)
    }

    /// Terminates every open run the transaction touched whose history grew past
    /// [`Limits::history_size_error`](crate::limits::Limits::history_size_error) or
    /// [`Limits::history_count_error`](crate::limits::Limits::history_count_error), as
    /// Temporal does, with its reason and identity: the history stays readable, and no
    /// worker can grow it further. Histories past the warning limits are logged once.
    pub(super) fn enforce_history_limits(&mut self) {
        let limits = &self.config.limits;
        let mut over = Vec::new();
        for run_id in self.runs.touched() {
            let Some(run) = self.runs.get(run_id).filter(|r| r.is_open()) else {
                continue;
            };
            let (count, size) = (run.events.len(), run.events.size());
            if size > limits.history_size_error {
                over.push((run_id.clone(), HISTORY_SIZE_EXCEEDED, count, size));
            } else if count > limits.history_count_error {
                over.push((run_id.clone(), HISTORY_COUNT_EXCEEDED, count, size));
            } else if (count > limits.history_count_warn || size > limits.history_size_warn)
                && self.history_warned.insert(run_id.clone())
            {
                tracing::warn!(
                    "capstan-engine: the history of workflow `{}` run `{run_id}` has {count} \
                     events and {size} bytes, past the warning limits ({} events, {} bytes); \
                     it is terminated past {} events or {} bytes: continue as new",
                    run.workflow_id,
                    limits.history_count_warn,
                    limits.history_size_warn,
                    limits.history_count_error,
                    limits.history_size_error,
                );
            }
        }
        for (run_id, reason, count, size) in over {
            tracing::warn!(
                "capstan-engine: run `{run_id}` terminated: {reason} ({count} events, {size} \
                 bytes)"
            );
            self.history_warned.remove(&run_id);
            self.terminate(&run_id, reason, ENGINE_IDENTITY);
        }
    }

    /// Terminates the open run `run_id`.
    pub(crate) fn terminate(&mut self, run_id: &str, reason: &str, identity: &str) {
        self.terminate_with_details(run_id, reason, None, identity);
    }

    /// Terminates the open run `run_id`, its termination event keeping `details`.
    pub(crate) fn terminate_with_details(
        &mut self,
        run_id: &str,
        reason: &str,
        details: Option<crate::proto::common::Payloads>,
        identity: &str,
    ) {
        if !self.runs.get(run_id).is_some_and(Run::is_open) {
            return;
        }
        self.with_run(run_id, |run, ctx| {
            run.terminate(ctx, reason, details, identity)
        });
        self.after_close(run_id);
    }

    /// The run's timeout passed: it closes, and a retry or its next cron run may follow.
    pub(crate) fn time_out_run(&mut self, run_id: &str) {
        let Some(next) = self.with_run(run_id, |run, ctx| run.time_out(ctx)) else {
            return;
        };
        if self.runs.get(run_id).is_some_and(Run::is_open) {
            return;
        }
        self.after_close(run_id);
        if let Some(next) = next {
            self.start_run(next);
        }
    }

    /// Asks the open run `run_id` to cancel, unless it was asked already.
    pub(crate) fn request_cancel(
        &mut self,
        run_id: &str,
        attrs: WorkflowExecutionCancelRequestedEventAttributes,
    ) {
        let asked = self
            .runs
            .get(run_id)
            .is_none_or(|run| !run.is_open() || run.cancel_requested());
        if !asked {
            self.with_run(run_id, |run, ctx| run.request_cancel(ctx, attrs));
        }
    }

    /// Forgets a run: its history, its listing, and (if it is the latest run of its
    /// workflow id) the id's current run. An open run is terminated first, as on
    /// Temporal.
    pub(crate) fn delete_run(&mut self, run_id: &str) {
        self.terminate(run_id, "deleted", ENGINE);
        let Some(run) = self.runs.remove(run_id) else {
            return;
        };
        let key = (run.namespace, run.workflow_id);
        if self.current.get(&key).is_some_and(|id| id == run_id) {
            self.set_current(key, None);
        }
        self.remove_started(run_id);
    }

    /// Completes run `run_id`'s started workflow task: its commands, then what they ask
    /// of other runs, then (if it closed) its parent, children and schedule. Activities
    /// asked for eagerly come back started, in the answer.
    pub(crate) fn complete_workflow_task(
        &mut self,
        run_id: &str,
        scheduled: i64,
        request: RespondWorkflowTaskCompletedRequest,
    ) -> Result<RespondWorkflowTaskCompletedResponse, Status> {
        if self.runs.get(run_id).is_none() {
            return Err(errors::run_gone(run_id));
        }
        self.runs[run_id].started_task(scheduled)?;
        let identity = request.identity.clone();
        let (completed, effects) = self
            .with_run_effects(run_id, |run, ctx| {
                run.complete_workflow_task(ctx, request, scheduled)
            })
            .ok_or_else(|| errors::run_gone(run_id))?;
        let (eager, queued): (Vec<Effect>, Vec<Effect>) = effects
            .into_iter()
            .partition(|e| matches!(e, Effect::ActivityTask { eager: true, .. }));
        self.apply_effects(run_id, queued);
        let completed = match completed {
            Ok(completed) => completed,
            Err(status) => {
                // A rejected completion may have terminated the run (a payload over the
                // blob limit).
                if !self.runs[run_id].is_open() {
                    self.after_close(run_id);
                }
                return Err(status);
            }
        };
        let mut activity_tasks = Vec::new();
        for effect in eager {
            if let Effect::ActivityTask { task, .. } = effect {
                let started =
                    self.with_run(run_id, |run, ctx| run.start_activity(ctx, &task, &identity));
                activity_tasks.extend(started.flatten());
            }
        }
        if let Some(reset_to) = completed.reset_to {
            return Ok(RespondWorkflowTaskCompletedResponse {
                reset_history_event_id: reset_to,
                ..Default::default()
            });
        }
        let closed = !self.runs[run_id].is_open();
        for effect in completed.cross_run {
            self.apply_cross_run(run_id, effect);
        }
        if closed {
            self.after_close(run_id);
        }
        Ok(RespondWorkflowTaskCompletedResponse {
            activity_tasks,
            ..Default::default()
        })
    }

    /// What run `run_id`'s completion asked of another run.
    fn apply_cross_run(&mut self, run_id: &str, effect: CrossRun) {
        let sender = self.runs[run_id].execution();
        match effect {
            CrossRun::ContinueAsNew(start) => {
                self.start_run(*start);
            }
            // A run that the same task closed starts, signals and cancels nothing: its
            // history ends with its close event (Temporal drops these for a closed run too).
            CrossRun::StartChild(..) | CrossRun::Signal(..) | CrossRun::Cancel(..)
                if !self.runs[run_id].is_open() => {}
            CrossRun::StartChild(initiated, attrs) => {
                let taken = self
                    .current
                    .get(&(attrs.namespace.clone(), attrs.workflow_id.clone()))
                    .is_some_and(|id| self.runs[id].is_open());
                if taken {
                    self.with_run(run_id, |run, ctx| {
                        run.child_start_failed(ctx, initiated, *attrs)
                    });
                    return;
                }
                let start = self.runs[run_id].child_start(initiated, &attrs);
                let child = self.start_run(start);
                self.with_run(run_id, |run, ctx| {
                    run.child_started(ctx, initiated, *attrs, child)
                });
            }
            CrossRun::Signal(initiated, attrs) => {
                let target = self
                    .resolve_run_id(&attrs.namespace, attrs.workflow_execution.as_ref())
                    .ok()
                    .filter(|id| self.runs[id].is_open());
                if let Some(target) = &target {
                    let signal = WorkflowExecutionSignaledEventAttributes {
                        signal_name: attrs.signal_name.clone(),
                        input: attrs.input.clone(),
                        identity: format!("workflow {}", sender.workflow_id),
                        header: attrs.header.clone(),
                        external_workflow_execution: Some(sender.clone()),
                        ..Default::default()
                    };
                    self.with_run(target, |run, ctx| run.signal(ctx, "", signal));
                }
                let delivered = target.is_some();
                self.with_run(run_id, |run, ctx| {
                    run.external_signal_outcome(ctx, initiated, attrs, delivered)
                });
            }
            CrossRun::Cancel(initiated, attrs) => {
                let target = self
                    .resolve_run_id(&attrs.namespace, attrs.workflow_execution.as_ref())
                    .ok()
                    .filter(|id| self.runs[id].is_open());
                if let Some(target) = &target {
                    let cancel = WorkflowExecutionCancelRequestedEventAttributes {
                        cause: attrs.reason.clone(),
                        external_initiated_event_id: initiated,
                        external_workflow_execution: Some(sender.clone()),
                        identity: format!("workflow {}", sender.workflow_id),
                    };
                    self.with_run(target, |run, ctx| run.request_cancel(ctx, cancel));
                }
                let delivered = target.is_some();
                self.with_run(run_id, |run, ctx| {
                    run.external_cancel_outcome(ctx, initiated, attrs, delivered)
                });
            }
        }
    }

    /// After a run closed: its children get their parent close policy, its schedule
    /// hears of it, and its parent gets the child's outcome (unless another run of the
    /// workflow continues it).
    fn after_close(&mut self, run_id: &str) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        let children: Vec<_> = run.children.values().cloned().collect();
        // A run a reset replaced is continued by the reset's run.
        let continued = run.status == WorkflowExecutionStatus::ContinuedAsNew
            || !run.new_run_id.is_empty()
            || !run.reset_run_id.is_empty();
        let parent = run.parent.clone();
        let closed = run.as_closed_child();
        let namespace = run.namespace.clone();
        self.queues.forget_run(&namespace, run_id);
        for child in children {
            let policy = ParentClosePolicy::try_from(child.parent_close_policy)
                .unwrap_or(ParentClosePolicy::Terminate);
            let latest = crate::proto::common::WorkflowExecution {
                workflow_id: child.execution.workflow_id.clone(),
                run_id: String::new(),
            };
            let Ok(child_run) = self.resolve_run_id(&child.namespace, Some(&latest)) else {
                continue;
            };
            match policy {
                ParentClosePolicy::Abandon => {}
                ParentClosePolicy::RequestCancel => self.request_cancel(
                    &child_run,
                    WorkflowExecutionCancelRequestedEventAttributes {
                        cause: "parent closed".to_owned(),
                        identity: ENGINE.to_owned(),
                        ..Default::default()
                    },
                ),
                _ => self.terminate(&child_run, "parent closed", ENGINE),
            }
        }
        self.schedule_run_closed(run_id);
        // A run continued by another (continue-as-new, retry, cron, reset) is not the end of
        // the workflow: the parent hears of the last run only.
        if continued {
            return;
        }
        let Some(parent) = parent else { return };
        let Ok(mut parent_run) = self.resolve_run_id(&parent.namespace, Some(&parent.execution))
        else {
            return;
        };
        // A parent that was reset hears through the run that reset it.
        while let Some(reset) = self
            .runs
            .get(&parent_run)
            .map(|p| p.reset_run_id.clone())
            .filter(|id| !id.is_empty() && self.runs.get(id).is_some())
        {
            parent_run = reset;
        }
        // The parent waits for this child: the same initiated event names the same
        // workflow id (after a reset, the new run's own children may reuse event ids).
        let workflow_id = &self.runs[run_id].workflow_id;
        let waits = self.runs.get(&parent_run).is_some_and(|p| {
            p.is_open()
                && p.children
                    .get(&parent.initiated_event_id)
                    .is_some_and(|c| c.execution.workflow_id == *workflow_id)
        });
        if waits {
            self.with_run(&parent_run, |p, ctx| {
                p.child_closed(ctx, parent.initiated_event_id, closed)
            });
        }
    }
}
