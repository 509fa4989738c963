//! A run's history events, kept encoded.
//!
//! A decoded `HistoryEvent` is over a kilobyte whatever its type (its attributes are a
//! oneof as large as its largest variant), while most events encode to a few dozen bytes.
//! A parked run (started, waiting on a signal) has four events: kept decoded they were
//! most of its memory. Events are decoded when read, which is when they are sent: a
//! sticky worker's task reads only the events after its last task.

use std::{ops::Range, time::SystemTime};

use prost::Message as _;

use crate::proto::{
    self,
    enums::EventType,
    history::{history_event::Attributes, HistoryEvent},
};

/// A run's events in order, encoded back to back.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventLog {
    bytes: Vec<u8>,
    /// Where each event ends in `bytes`.
    ends: Vec<u32>,
}

impl EventLog {
    /// How many events there are.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The events' encoded size in bytes: what Temporal counts as a history's size.
    pub(crate) fn size(&self) -> usize {
        self.bytes.len()
    }

    /// Appends `event`.
    pub(crate) fn push(&mut self, event: &HistoryEvent) {
        event
            .encode(&mut self.bytes)
            .expect("a Vec grows to fit an encoded event");
        self.seal();
    }

    /// Appends an event given encoded (as read back from the durable store).
    pub(crate) fn push_encoded(&mut self, event: &[u8]) {
        self.bytes.extend_from_slice(event);
        self.seal();
    }

    fn seal(&mut self) {
        let end = u32::try_from(self.bytes.len())
            .expect("a run's history stays under 4 GiB (Temporal's limit is 50 MB)");
        self.ends.push(end);
    }

    /// Event `index` (0-based), encoded.
    pub(crate) fn encoded(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = index.checked_sub(1).map_or(0, |i| self.ends[i] as usize);
        Some(&self.bytes[start..end])
    }

    /// Event `index` (0-based).
    pub(crate) fn get(&self, index: usize) -> Option<HistoryEvent> {
        self.encoded(index).map(decode)
    }

    /// The last event.
    pub(crate) fn last(&self) -> Option<HistoryEvent> {
        self.get(self.len().checked_sub(1)?)
    }

    /// The last event's time, read without decoding its attributes (which may hold a
    /// large input): what a restart reads of every run.
    pub(crate) fn last_time(&self) -> Option<SystemTime> {
        /// The fields of a `HistoryEvent` before its attributes; the rest is skipped.
        #[derive(Clone, PartialEq, prost::Message)]
        struct EventTime {
            #[prost(message, optional, tag = "2")]
            event_time: Option<prost_wkt_types::Timestamp>,
        }
        let bytes = self.encoded(self.len().checked_sub(1)?)?;
        let time = EventTime::decode(bytes).ok()?.event_time;
        proto::system_time(time.as_ref())
    }

    /// The events at `range` (clamped to the events there are).
    pub(crate) fn range(&self, range: Range<usize>) -> Vec<HistoryEvent> {
        let end = range.end.min(self.len());
        (range.start.min(end)..end)
            .filter_map(|i| self.get(i))
            .collect()
    }

    /// Every event.
    pub(crate) fn to_vec(&self) -> Vec<HistoryEvent> {
        self.range(0..self.len())
    }

    /// Every event, decoded one at a time.
    pub(crate) fn iter(&self) -> impl Iterator<Item = HistoryEvent> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The first `len` events, as a log of their own (only their bytes are copied).
    pub(crate) fn prefix(&self, len: usize) -> Self {
        let len = len.min(self.len());
        let end = len
            .checked_sub(1)
            .map_or(0, |last| self.ends[last] as usize);
        Self {
            bytes: self.bytes[..end].to_vec(),
            ends: self.ends[..len].to_vec(),
        }
    }

    /// Keeps the first `len` events.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.ends.truncate(len);
            self.bytes
                .truncate(self.ends.last().map_or(0, |&end| end as usize));
        }
    }
}

macro_rules! event_types {
    ($($name:ident => $ty:ident),* $(,)?) => {
        /// The event type that goes with `a`.
        pub(crate) fn event_type(a: &Attributes) -> EventType {
            match a {
                $(Attributes::$name(_) => EventType::$ty,)*
                _ => EventType::Unspecified,
            }
        }
    };
}

event_types! {
    WorkflowExecutionStartedEventAttributes => WorkflowExecutionStarted,
    WorkflowExecutionCompletedEventAttributes => WorkflowExecutionCompleted,
    WorkflowExecutionFailedEventAttributes => WorkflowExecutionFailed,
    WorkflowExecutionTimedOutEventAttributes => WorkflowExecutionTimedOut,
    WorkflowTaskScheduledEventAttributes => WorkflowTaskScheduled,
    WorkflowTaskStartedEventAttributes => WorkflowTaskStarted,
    WorkflowTaskCompletedEventAttributes => WorkflowTaskCompleted,
    WorkflowTaskTimedOutEventAttributes => WorkflowTaskTimedOut,
    WorkflowTaskFailedEventAttributes => WorkflowTaskFailed,
    ActivityTaskScheduledEventAttributes => ActivityTaskScheduled,
    ActivityTaskStartedEventAttributes => ActivityTaskStarted,
    ActivityTaskCompletedEventAttributes => ActivityTaskCompleted,
    ActivityTaskFailedEventAttributes => ActivityTaskFailed,
    ActivityTaskTimedOutEventAttributes => ActivityTaskTimedOut,
    TimerStartedEventAttributes => TimerStarted,
    TimerFiredEventAttributes => TimerFired,
    ActivityTaskCancelRequestedEventAttributes => ActivityTaskCancelRequested,
    ActivityTaskCanceledEventAttributes => ActivityTaskCanceled,
    TimerCanceledEventAttributes => TimerCanceled,
    MarkerRecordedEventAttributes => MarkerRecorded,
    WorkflowExecutionSignaledEventAttributes => WorkflowExecutionSignaled,
    WorkflowExecutionTerminatedEventAttributes => WorkflowExecutionTerminated,
    WorkflowExecutionCancelRequestedEventAttributes => WorkflowExecutionCancelRequested,
    WorkflowExecutionCanceledEventAttributes => WorkflowExecutionCanceled,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes => RequestCancelExternalWorkflowExecutionInitiated,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes => RequestCancelExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionCancelRequestedEventAttributes => ExternalWorkflowExecutionCancelRequested,
    WorkflowExecutionContinuedAsNewEventAttributes => WorkflowExecutionContinuedAsNew,
    StartChildWorkflowExecutionInitiatedEventAttributes => StartChildWorkflowExecutionInitiated,
    StartChildWorkflowExecutionFailedEventAttributes => StartChildWorkflowExecutionFailed,
    ChildWorkflowExecutionStartedEventAttributes => ChildWorkflowExecutionStarted,
    ChildWorkflowExecutionCompletedEventAttributes => ChildWorkflowExecutionCompleted,
    ChildWorkflowExecutionFailedEventAttributes => ChildWorkflowExecutionFailed,
    ChildWorkflowExecutionCanceledEventAttributes => ChildWorkflowExecutionCanceled,
    ChildWorkflowExecutionTimedOutEventAttributes => ChildWorkflowExecutionTimedOut,
    ChildWorkflowExecutionTerminatedEventAttributes => ChildWorkflowExecutionTerminated,
    SignalExternalWorkflowExecutionInitiatedEventAttributes => SignalExternalWorkflowExecutionInitiated,
    SignalExternalWorkflowExecutionFailedEventAttributes => SignalExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionSignaledEventAttributes => ExternalWorkflowExecutionSignaled,
    UpsertWorkflowSearchAttributesEventAttributes => UpsertWorkflowSearchAttributes,
    WorkflowExecutionUpdateAdmittedEventAttributes => WorkflowExecutionUpdateAdmitted,
    WorkflowExecutionUpdateAcceptedEventAttributes => WorkflowExecutionUpdateAccepted,
    WorkflowExecutionUpdateCompletedEventAttributes => WorkflowExecutionUpdateCompleted,
    WorkflowPropertiesModifiedEventAttributes => WorkflowPropertiesModified,
}

/// Decodes an event this log encoded.
fn decode(bytes: &[u8]) -> HistoryEvent {
    HistoryEvent::decode(bytes).expect("the event log holds only events it encoded")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::history::{
        history_event::Attributes, SignalExternalWorkflowExecutionFailedEventAttributes,
    };

    fn event(id: i64) -> HistoryEvent {
        HistoryEvent {
            event_id: id,
            attributes: Some(
                Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
                    SignalExternalWorkflowExecutionFailedEventAttributes {
                        initiated_event_id: id * 10,
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn events_read_back_as_written_and_truncate_from_the_end() {
        let mut log = EventLog::default();
        for id in 1..=5 {
            log.push(&event(id));
        }
        log.push_encoded(&event(6).encode_to_vec());
        assert_eq!(log.len(), 6);
        let sizes: usize = (1..=6).map(|id| event(id).encode_to_vec().len()).sum();
        assert_eq!(log.size(), sizes);
        assert_eq!(log.get(0), Some(event(1)));
        assert_eq!(log.last(), Some(event(6)));
        assert_eq!(log.range(2..4), vec![event(3), event(4)]);
        assert_eq!(log.range(5..99), vec![event(6)]);
        assert_eq!(log.range(9..99), vec![]);
        assert_eq!(log.encoded(5), Some(&event(6).encode_to_vec()[..]));
        let prefix = log.prefix(3);
        assert_eq!(prefix.to_vec(), vec![event(1), event(2), event(3)]);
        assert_eq!(
            prefix.size(),
            (1..=3)
                .map(|id| event(id).encode_to_vec().len())
                .sum::<usize>()
        );
        assert_eq!(log.prefix(0).len(), 0);
        assert_eq!(log.prefix(99).len(), 6);
        log.truncate(2);
        assert_eq!(log.to_vec(), vec![event(1), event(2)]);
        log.push(&event(3));
        assert_eq!(
            log.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(log.get(3), None);
    }

    #[test]
    fn a_decoded_event_is_many_times_its_encoding() {
        // The reason for this module: if prost ever boxes large oneof variants, an
        // encoded log stops paying for itself.
        let encoded = event(1).encode_to_vec().len();
        assert!(
            size_of::<HistoryEvent>() > 10 * encoded,
            "{} bytes decoded vs {encoded} encoded",
            size_of::<HistoryEvent>()
        );
    }

    #[test]
    fn the_last_time_is_read_without_the_attributes() {
        let mut log = EventLog::default();
        assert_eq!(log.last_time(), None);
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_800_000_000, 5);
        for id in 1..=2 {
            log.push(&HistoryEvent {
                event_time: Some(proto::timestamp(
                    at + std::time::Duration::from_secs(id as u64),
                )),
                ..event(id)
            });
        }
        assert_eq!(
            log.last_time(),
            Some(at + std::time::Duration::from_secs(2))
        );
    }
}
