//! The events that arrive while a workflow task is started, written to the history once
//! it ends.
//!
//! Most changes append; the durable store writes only what was appended since it last
//! looked, and rewrites the whole buffer only when an entry went ([`EventBuffer::epoch`]).

use std::sync::Arc;

use crate::proto::history::history_event::Attributes;

/// A run's buffered events. Each is shared, so that a transaction's image of the run (to
/// put back on failure) costs a reference count per entry, not a copy of its payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EventBuffer {
    entries: Vec<Arc<Attributes>>,
    /// Bumped whenever an entry goes (taken, cleared, removed): the entries since are
    /// not an extension of those before.
    epoch: u64,
}

impl EventBuffer {
    /// A buffer holding `entries` (as read back from the durable store).
    pub(crate) fn from_entries(entries: Vec<Attributes>) -> Self {
        Self {
            entries: entries.into_iter().map(Arc::new).collect(),
            epoch: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Which generation of entries the buffer holds: while it stays the same, entries
    /// were only appended.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Attributes> {
        self.entries.iter().map(|a| &**a)
    }

    pub(super) fn push(&mut self, attrs: Attributes) {
        self.entries.push(Arc::new(attrs));
    }

    /// Every entry, in order, leaving the buffer empty.
    pub(super) fn take(&mut self) -> Vec<Attributes> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        self.epoch += 1;
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|a| Arc::try_unwrap(a).unwrap_or_else(|shared| (*shared).clone()))
            .collect()
    }

    pub(super) fn clear(&mut self) {
        self.take();
    }

    /// Removes entry `at`.
    pub(super) fn remove(&mut self, at: usize) -> Attributes {
        self.epoch += 1;
        let removed = self.entries.remove(at);
        Arc::try_unwrap(removed).unwrap_or_else(|shared| (*shared).clone())
    }
}
