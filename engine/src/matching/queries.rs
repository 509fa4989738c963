//! Queries in flight: each waits in a workflow task queue until a worker answers it.

use std::collections::HashMap;

use tokio::sync::oneshot;

use crate::proto::{common::Payloads, query::WorkflowQuery};

/// What a worker answered to a query.
pub(crate) type QueryAnswer = Result<Option<Payloads>, String>;

/// A query waiting for a worker.
#[derive(Debug)]
pub(crate) struct PendingQuery {
    pub(crate) run_id: String,
    pub(crate) query: WorkflowQuery,
    pub(crate) reply: Option<oneshot::Sender<QueryAnswer>>,
}

/// The queries in flight, by query id. Adding or removing one is progress (a virtual
/// clock must not skip ahead while a query waits): the map notes it itself.
#[derive(Debug, Default)]
pub(crate) struct Queries {
    map: HashMap<String, PendingQuery>,
    changed: bool,
    /// Queries added by the current transaction (removed again if it fails).
    added: Vec<String>,
}

impl Queries {
    pub(crate) fn insert(&mut self, id: String, query: PendingQuery) {
        self.added.push(id.clone());
        self.map.insert(id, query);
        self.changed = true;
    }

    /// The transaction failed: the queries it added are dropped (their callers get an
    /// error as the reply channel closes).
    pub(crate) fn roll_back(&mut self) {
        for id in std::mem::take(&mut self.added) {
            self.map.remove(&id);
        }
        self.changed = false;
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<PendingQuery> {
        let removed = self.map.remove(id);
        self.changed |= removed.is_some();
        removed
    }

    pub(crate) fn get(&self, id: &str) -> Option<&PendingQuery> {
        self.map.get(id)
    }

    /// The reply channel of query `id`, taken (a query is answered once).
    pub(crate) fn take_reply(&mut self, id: &str) -> Option<oneshot::Sender<QueryAnswer>> {
        self.map.get_mut(id)?.reply.take()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many queries are in flight.
    #[cfg(any(test, feature = "simulation"))]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether a query of run `run_id` waits.
    pub(crate) fn any_of_run(&self, run_id: &str) -> bool {
        self.map.values().any(|q| q.run_id == run_id)
    }

    /// Whether queries were added or removed since the last call; the transaction is
    /// kept.
    pub(crate) fn take_changed(&mut self) -> bool {
        self.added.clear();
        std::mem::take(&mut self.changed)
    }
}
