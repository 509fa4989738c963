//! The events that arrive while a workflow task is started, written to the history once
//! it ends. Each keeps the time it happened, as on Temporal: a timer that fired on time
//! behind a long task says so, although its event is written when the task ends.
//!
//! Most changes append; the durable store writes only what was appended since it last
//! looked, and rewrites the whole buffer only when an entry went ([`EventBuffer::epoch`]).

use std::{sync::Arc, time::SystemTime};

use crate::proto::history::history_event::Attributes;

/// An event waiting in the buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buffered {
    /// When it happened: its time in the history. `None` for one stored by a version
    /// that kept no time (it takes the time it is written).
    pub(crate) at: Option<SystemTime>,
    pub(crate) attrs: Attributes,
}

/// A run's buffered events. Each is shared, so that a transaction's image of the run (to
/// put back on failure) costs a reference count per entry, not a copy of its payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EventBuffer {
    entries: Vec<Arc<Buffered>>,
    /// Bumped whenever an entry goes (taken, cleared, removed): the entries since are
    /// not an extension of those before.
    epoch: u64,
}

impl EventBuffer {
    /// A buffer holding `entries` (as read back from the durable store).
    pub(crate) fn from_entries(entries: Vec<Buffered>) -> Self {
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
        self.entries.iter().map(|b| &b.attrs)
    }

    /// Every entry with its time.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Buffered> {
        self.entries.iter().map(|b| &**b)
    }

    /// Adds an event that happened `at`.
    pub(super) fn push(&mut self, at: SystemTime, attrs: Attributes) {
        self.entries.push(Arc::new(Buffered {
            at: Some(at),
            attrs,
        }));
    }

    /// Every entry, in order, leaving the buffer empty.
    pub(super) fn take(&mut self) -> Vec<Buffered> {
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
        Arc::try_unwrap(removed)
            .unwrap_or_else(|shared| (*shared).clone())
            .attrs
    }
}
