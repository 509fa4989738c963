//! Task queues, task tokens and in-flight queries: how work reaches pollers.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::proto::{common::Payloads, query::WorkflowQuery};

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
    /// The queue, to read or take tasks from (add them with the `push_` methods, which
    /// wake its pollers).
    pub(crate) fn get_mut(&mut self, namespace: &str, name: &str) -> &mut QueueTasks {
        self.queues
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default()
    }

    /// Adds a workflow task (or query) to queue `name`.
    pub(crate) fn push_workflow(&mut self, namespace: &str, name: &str, task: WorkflowTaskRef) {
        self.get_mut(namespace, name).workflow.push_back(task);
        self.wake(namespace, name);
    }

    /// Adds an activity task to queue `name`.
    pub(crate) fn push_activity(&mut self, namespace: &str, name: &str, task: ActivityTaskRef) {
        self.get_mut(namespace, name).activity.push_back(task);
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

/// What a task token stands for. Tokens are opaque to workers; a stale or forged one is
/// answered `NotFound`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k")]
pub(crate) enum Token {
    #[serde(rename = "w")]
    Workflow {
        run: String,
        scheduled: i64,
        attempt: i32,
    },
    #[serde(rename = "q")]
    Query { id: String },
    #[serde(rename = "a")]
    Activity {
        run: String,
        scheduled: i64,
        attempt: i32,
    },
}

impl Token {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, tonic::Status> {
        serde_json::from_slice(bytes)
            .map_err(|_| tonic::Status::not_found("unknown or malformed task token"))
    }
}

/// What a worker answered to a query.
pub(crate) type QueryAnswer = Result<Option<Payloads>, String>;

/// A query waiting for a worker.
#[derive(Debug)]
pub(crate) struct PendingQuery {
    pub(crate) run_id: String,
    pub(crate) query: WorkflowQuery,
    pub(crate) reply: Option<oneshot::Sender<QueryAnswer>>,
}
