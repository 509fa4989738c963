//! Matching: how work reaches pollers. Task queues hold references to scheduled workflow
//! tasks, activity attempts and queries; tokens name a handed-out task; sticky queues
//! know whether their worker is still there; pollers are who polled each queue lately.
//!
//! Matching holds no run state: a queue entry only names a run, and dispatching it (the
//! state's `dispatch`) asks the run whether the task is still there to start.

mod pollers;
mod queries;
mod sticky;
mod token;

use std::collections::{HashMap, VecDeque};

pub(crate) use pollers::{PollerKind, Pollers};
pub(crate) use queries::{PendingQuery, Queries, QueryAnswer};
pub(crate) use sticky::StickyQueues;
pub(crate) use token::Token;

/// A workflow task queue entry: a run with a scheduled workflow task, or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkflowTaskRef {
    Run(String),
    Query(String),
}

/// An activity task queue entry; stale entries are skipped when polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActivityTaskRef {
    pub(crate) run_id: String,
    pub(crate) scheduled_event_id: i64,
    pub(crate) attempt: i32,
}

/// The pending tasks of one task queue.
#[derive(Debug, Default)]
pub(crate) struct QueueTasks {
    pub(crate) workflow: VecDeque<WorkflowTaskRef>,
    pub(crate) activity: VecDeque<ActivityTaskRef>,
}

/// Task queues by `(namespace, name)`.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    queues: HashMap<(String, String), QueueTasks>,
    /// Queues whose pollers the current transaction wakes: given a task, or closed.
    woken: Vec<(String, String)>,
}

impl Queues {
    /// The queue, if it holds anything.
    pub(crate) fn get_mut(&mut self, namespace: &str, name: &str) -> Option<&mut QueueTasks> {
        self.queues
            .get_mut(&(namespace.to_owned(), name.to_owned()))
    }

    fn entry(&mut self, namespace: &str, name: &str) -> &mut QueueTasks {
        self.queues
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default()
    }

    /// Forgets queue `name` if it holds nothing: a queue costs memory only while it has
    /// tasks (a worker's sticky queue is named once and never again).
    pub(crate) fn forget_if_empty(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        if self
            .queues
            .get(&key)
            .is_some_and(|q| q.workflow.is_empty() && q.activity.is_empty())
        {
            self.queues.remove(&key);
        }
    }

    /// Drops the entries naming a closed run from every queue of its namespace, and the
    /// queues that leaves empty: a closed run's tasks are never dispatched, and without
    /// this they stayed in memory until some worker polled their queue again. Linear in
    /// the namespace's backlog, which workers that keep up keep short.
    pub(crate) fn forget_run(&mut self, namespace: &str, run_id: &str) {
        self.forget(
            Some(namespace),
            |t| matches!(t, WorkflowTaskRef::Run(id) if id == run_id),
            |t| t.run_id == run_id,
        );
    }

    /// Drops the entry of a query that ended before a worker took it (timed out, or its
    /// caller gone) from the queues of `namespace` (every queue when `None`): without
    /// this, a query that waited on the sticky queue of a worker that no longer polls it
    /// stayed there for good.
    pub(crate) fn forget_query(&mut self, namespace: Option<&str>, query_id: &str) {
        self.forget(
            namespace,
            |t| matches!(t, WorkflowTaskRef::Query(id) if id == query_id),
            |_| false,
        );
    }

    /// Drops the entries `workflow` and `activity` pick from the queues of `namespace`
    /// (every queue when `None`), and the queues that leaves empty, in one pass.
    fn forget(
        &mut self,
        namespace: Option<&str>,
        workflow: impl Fn(&WorkflowTaskRef) -> bool,
        activity: impl Fn(&ActivityTaskRef) -> bool,
    ) {
        self.queues.retain(|(ns, _), tasks| {
            if namespace.is_none_or(|n| n == ns) {
                tasks.workflow.retain(|t| !workflow(t));
                tasks.activity.retain(|t| !activity(t));
            }
            !(tasks.workflow.is_empty() && tasks.activity.is_empty())
        });
    }

    /// How many queues hold tasks.
    #[cfg(any(test, feature = "simulation"))]
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }

    /// How many workflow tasks (and queries) and activity tasks all queues hold, stale
    /// entries included.
    #[cfg(any(test, feature = "simulation"))]
    pub(crate) fn tasks(&self) -> (usize, usize) {
        self.queues.values().fold((0, 0), |(w, a), q| {
            (w + q.workflow.len(), a + q.activity.len())
        })
    }

    /// How many workflow tasks (and queries) and activity tasks wait in queue `name`
    /// (approximately: entries gone stale are counted until a poller skips them).
    pub(crate) fn backlog(&self, namespace: &str, name: &str) -> (usize, usize) {
        self.queues
            .get(&(namespace.to_owned(), name.to_owned()))
            .map_or((0, 0), |q| (q.workflow.len(), q.activity.len()))
    }

    /// Adds a workflow task (or query) to queue `name`.
    pub(crate) fn push_workflow(&mut self, namespace: &str, name: &str, task: WorkflowTaskRef) {
        self.entry(namespace, name).workflow.push_back(task);
        self.wake(namespace, name);
    }

    /// Adds an activity task to queue `name`.
    pub(crate) fn push_activity(&mut self, namespace: &str, name: &str, task: ActivityTaskRef) {
        self.entry(namespace, name).activity.push_back(task);
        self.wake(namespace, name);
    }

    /// Wakes the polls held on queue `name` when the current transaction commits.
    pub(crate) fn wake(&mut self, namespace: &str, name: &str) {
        self.woken.push((namespace.to_owned(), name.to_owned()));
    }

    /// The queues to wake, since the last call.
    pub(crate) fn take_woken(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.woken)
    }
}
