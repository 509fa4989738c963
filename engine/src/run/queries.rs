//! Query-only workflow tasks: a query answered by a worker from the run's state.

use super::Run;
use crate::{
    matching::Token,
    proto::{history::History, query::WorkflowQuery, service::PollWorkflowTaskQueueResponse},
};

impl Run {
    /// Whether a query may be handed to a worker now: after the first workflow task, and
    /// not while one is scheduled or running (a closed run is answered from history).
    pub(crate) fn ready_for_query(&self) -> bool {
        !self.is_open() || (self.wft.is_none() && self.previous_started_event_id > 0)
    }

    /// The workflow task that carries query `id`; a worker polling the run's sticky queue
    /// has it cached and gets no history.
    pub(crate) fn query_task(
        &self,
        id: String,
        query: WorkflowQuery,
        sticky: bool,
    ) -> PollWorkflowTaskQueueResponse {
        PollWorkflowTaskQueueResponse {
            task_token: Token::Query {
                ns: self.namespace.clone(),
                id,
            }
            .encode(),
            workflow_execution: Some(self.execution()),
            workflow_type: self.started.workflow_type.clone(),
            previous_started_event_id: self.previous_started_event_id,
            attempt: 1,
            history: Some(History {
                events: if sticky {
                    Vec::new()
                } else {
                    self.events.to_vec()
                },
            }),
            query: Some(query),
            workflow_execution_task_queue: self.started.task_queue.clone(),
            ..Default::default()
        }
    }

    /// The sticky queue a query should go to: the worker's that has the run cached.
    pub(crate) fn sticky_queue_name(&self) -> Option<&str> {
        self.sticky.as_ref().map(|s| s.name.as_str())
    }
}
