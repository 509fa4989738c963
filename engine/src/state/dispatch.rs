//! Dispatch: a poller takes the first queued entry that is still live. An entry only
//! names a run (or a query), so the run decides whether the task is still there; stale
//! entries are dropped without touching anything.
//!
//! It lives here, not in `matching`, because it pairs a queue entry with a run's state
//! machine: both are visible only at this level.

use tokio::sync::oneshot;

use super::State;
use crate::{
    matching::{PendingQuery, QueryAnswer, WorkflowTaskRef},
    proto::{
        query::WorkflowQuery,
        service::{PollActivityTaskQueueResponse, PollWorkflowTaskQueueResponse},
    },
};

impl State {
    /// Takes the first dispatchable workflow task or query of a queue for a poller.
    pub(crate) fn dispatch_workflow_task(
        &mut self,
        namespace: &str,
        queue: &str,
        identity: &str,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let task = self.first_workflow_task(namespace, queue, identity);
        self.queues.forget_if_empty(namespace, queue);
        task
    }

    fn first_workflow_task(
        &mut self,
        namespace: &str,
        queue: &str,
        identity: &str,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let mut index = 0;
        loop {
            let entries = &mut self.queues.get_mut(namespace, queue)?.workflow;
            let entry = entries.get(index).cloned()?;
            match entry {
                WorkflowTaskRef::Run(run_id) => {
                    entries.remove(index);
                    if !self
                        .runs
                        .get(&run_id)
                        .is_some_and(|r| r.has_task_for(queue))
                    {
                        continue;
                    }
                    let task = self.with_run(&run_id, |run, ctx| {
                        run.start_workflow_task(ctx, identity, queue)
                    });
                    if let Some(task) = task.flatten() {
                        return Some(task);
                    }
                }
                WorkflowTaskRef::Query(id) => {
                    let run = self.queries.get(&id).and_then(|q| self.runs.get(&q.run_id));
                    let Some(run) = run else {
                        // Answered, timed out, or its run was deleted.
                        entries.remove(index);
                        continue;
                    };
                    // A query waits for the first workflow task and for any task in flight.
                    if !run.ready_for_query() {
                        index += 1;
                        continue;
                    }
                    entries.remove(index);
                    let sticky = queue != run.task_queue;
                    if sticky && run.sticky_queue_name() != Some(queue) {
                        // The run lost its sticky worker meanwhile: any worker answers it.
                        let normal = run.task_queue.clone();
                        self.queues
                            .push_workflow(namespace, &normal, WorkflowTaskRef::Query(id));
                        continue;
                    }
                    let query = self.queries.get(&id)?.query.clone();
                    return Some(run.query_task(id, query, sticky));
                }
            }
        }
    }

    /// Starts the first workflow task of run `run_id`, just started, for the worker that
    /// started it (eager start); `None` if the task is not there to take (a cron or retry
    /// wait). Its queue entry goes stale and is skipped.
    pub(crate) fn start_eagerly(
        &mut self,
        run_id: &str,
        identity: &str,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let queue = self.runs.get(run_id)?.task_queue.clone();
        self.with_run(run_id, |run, ctx| {
            run.start_workflow_task(ctx, identity, &queue)
        })
        .flatten()
    }

    /// Takes the first activity attempt of a queue that is still queued, and starts it.
    pub(crate) fn dispatch_activity_task(
        &mut self,
        namespace: &str,
        queue: &str,
        identity: &str,
    ) -> Option<PollActivityTaskQueueResponse> {
        let task = self.first_activity_task(namespace, queue, identity);
        self.queues.forget_if_empty(namespace, queue);
        task
    }

    fn first_activity_task(
        &mut self,
        namespace: &str,
        queue: &str,
        identity: &str,
    ) -> Option<PollActivityTaskQueueResponse> {
        loop {
            let task = self
                .queues
                .get_mut(namespace, queue)?
                .activity
                .pop_front()?;
            if !self
                .runs
                .get(&task.run_id)
                .is_some_and(|r| r.has_activity_task(&task))
            {
                continue;
            }
            let started = self.with_run(&task.run_id, |run, ctx| {
                run.start_activity(ctx, &task, identity)
            });
            if let Some(response) = started.flatten() {
                return Some(response);
            }
        }
    }

    /// Queues query `id` of run `run_id`: on the sticky queue of the worker that has the
    /// run cached (it answers from its cache), else on the run's normal queue.
    pub(crate) fn enqueue_query(
        &mut self,
        run_id: &str,
        id: String,
        query: WorkflowQuery,
        reply: oneshot::Sender<QueryAnswer>,
    ) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        let queue = match run.sticky_queue_name() {
            Some(name) if self.sticky.worker_polls(name, self.now) => name.to_owned(),
            _ => run.task_queue.clone(),
        };
        let namespace = run.namespace.clone();
        self.queries.insert(
            id.clone(),
            PendingQuery {
                run_id: run_id.to_owned(),
                query,
                reply: Some(reply),
            },
        );
        self.queues
            .push_workflow(&namespace, &queue, WorkflowTaskRef::Query(id));
    }

    /// Query `id` ended (answered, timed out, or its caller gone): it and its queue
    /// entry go. An answered query was taken from its queue: only one that ended
    /// unanswered costs a look through the queues.
    pub(crate) fn forget_query(&mut self, id: &str) {
        let Some(query) = self.queries.remove(id) else {
            return;
        };
        if query.reply.is_none() {
            return;
        }
        // A run deleted meanwhile no longer says its namespace: every queue is looked at.
        let namespace = self.runs.get(&query.run_id).map(|r| r.namespace.clone());
        self.queues.forget_query(namespace.as_deref(), id);
    }

    /// A sticky queue's worker shut down: its held polls answer empty, and the tasks and
    /// queries waiting on it move to their normal queues now. Entries that are not there
    /// for this sticky worker stay (a buggy worker may name a normal queue as its sticky
    /// one: that queue's tasks are not its to move).
    pub(crate) fn close_sticky_queue(&mut self, namespace: &str, name: &str) {
        self.sticky.close(name, self.now);
        self.queues.wake(namespace, name);
        let Some(queue) = self.queues.get_mut(namespace, name) else {
            return;
        };
        let waiting = std::mem::take(&mut queue.workflow);
        let mut kept = std::collections::VecDeque::new();
        for entry in waiting {
            match &entry {
                WorkflowTaskRef::Run(run_id) => {
                    let run = self.runs.get(run_id);
                    let scheduled = run
                        .and_then(|r| r.wft.as_ref())
                        .filter(|t| t.sticky_queue.as_deref() == Some(name))
                        .map(|t| t.scheduled_event_id);
                    match scheduled {
                        Some(scheduled) => {
                            self.with_run(run_id, |run, ctx| {
                                run.unstick_workflow_task(ctx, scheduled)
                            });
                        }
                        None if run.is_some_and(|r| r.has_task_for(name)) => kept.push_back(entry),
                        None => {}
                    }
                }
                WorkflowTaskRef::Query(id) => {
                    let queue = self
                        .queries
                        .get(id)
                        .and_then(|q| self.runs.get(&q.run_id))
                        .map(|r| r.task_queue.clone());
                    match queue {
                        Some(queue) if queue == name => kept.push_back(entry),
                        Some(queue) => self.queues.push_workflow(
                            namespace,
                            &queue,
                            WorkflowTaskRef::Query(id.clone()),
                        ),
                        None => {}
                    }
                }
            }
        }
        // The queue is still there (only `forget_if_empty` removes one); entries moved
        // onto it meanwhile go after the kept ones.
        if let Some(queue) = self.queues.get_mut(namespace, name) {
            kept.append(&mut queue.workflow);
            queue.workflow = kept;
        }
        self.queues.forget_if_empty(namespace, name);
    }
}
