//! The per-run bookkeeping shared by the executor and the workflow's futures: the commands
//! produced by the current activation, the pending operations waiting for core to resolve
//! them, and the deterministic inputs (time, randomness, patches) of the run.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
    task::Waker,
    time::SystemTime,
};

use temporalio_common::protos::coresdk::{
    activity_result::ActivityResolution, child_workflow::ChildWorkflowResult,
    workflow_activation::resolve_child_workflow_execution_start,
    workflow_commands::workflow_command::Variant as Command,
};
use temporalio_common::protos::temporal::api::failure::v1::Failure as ProtoFailure;

use super::WorkflowInfo;
use crate::metrics::MetricMeter;
use std::sync::{atomic::AtomicBool, Arc};

/// A pending operation, named by its command kind and the sequence number core echoes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OpKey {
    Timer(u32),
    Activity(u32),
    LocalActivity(u32),
    ChildStart(u32),
    ChildResult(u32),
    SignalExternal(u32),
    CancelExternal(u32),
}

/// How core (or the workflow's own cancellation) resolved an operation.
#[derive(Debug)]
pub(crate) enum Resolution {
    TimerFired,
    Activity(ActivityResolution),
    ChildStart(resolve_child_workflow_execution_start::Status),
    ChildResult(ChildWorkflowResult),
    /// External signal or cancel request; `Some` when it failed.
    External(Option<ProtoFailure>),
    /// Cancelled by the workflow before core resolved it (timers).
    Cancelled(ProtoFailure),
}

#[derive(Default)]
struct Slot {
    resolution: Option<Resolution>,
    waker: Option<Waker>,
    /// Whether a workflow cancellation request should cancel this operation.
    cancellable: bool,
    /// Whether the run's main future started it (not a signal or update handler).
    main: bool,
}

/// Sequence counters, one per command family, as core expects.
#[derive(Default)]
struct Seqs {
    timer: u32,
    activity: u32,
    child: u32,
    signal_external: u32,
    cancel_external: u32,
}

pub(crate) struct RunState {
    pub(crate) info: WorkflowInfo,
    pub(crate) now: SystemTime,
    pub(crate) is_replaying: bool,
    pub(crate) history_length: u32,
    pub(crate) continue_as_new_suggested: bool,
    pub(crate) cancel_requested: Option<String>,
    /// Bumped by each cancellation request: waits started before it are cancelled.
    pub(crate) cancel_generation: u64,
    /// A cancellation request found the main future waiting on nothing it could cancel
    /// (between two waits): its next cancellable wait is cancelled instead.
    pub(crate) cancel_undelivered: bool,
    /// Set by the executor while it polls the main future.
    pub(crate) polling_main: bool,
    pub(crate) rng: SplitMix64,
    /// The run's meter, silent while `replaying_flag` is set.
    pub(crate) metrics: MetricMeter,
    pub(crate) replaying_flag: Arc<AtomicBool>,
    commands: Vec<Command>,
    seqs: Seqs,
    slots: BTreeMap<OpKey, Slot>,
    /// Tasks waiting on `wait_condition`, woken whenever state may have changed.
    condition_wakers: Vec<Waker>,
    /// Bumped whenever workflow state may have changed: conditions are re-checked when it
    /// moves.
    pub(crate) version: u64,
    /// Handlers (async signals and updates) still running.
    pub(crate) running_handlers: usize,
    patches_notified: BTreeSet<String>,
    patches_decided: BTreeMap<String, bool>,
}

pub(crate) type SharedRun = Rc<RefCell<RunState>>;

impl RunState {
    pub(crate) fn new(
        info: WorkflowInfo,
        seed: u64,
        metrics: MetricMeter,
        replaying_flag: Arc<AtomicBool>,
    ) -> Self {
        Self {
            info,
            now: SystemTime::UNIX_EPOCH,
            is_replaying: false,
            history_length: 0,
            continue_as_new_suggested: false,
            cancel_requested: None,
            cancel_generation: 0,
            cancel_undelivered: false,
            polling_main: false,
            rng: SplitMix64(seed),
            metrics,
            replaying_flag,
            commands: Vec::new(),
            seqs: Seqs::default(),
            slots: BTreeMap::new(),
            condition_wakers: Vec::new(),
            version: 0,
            running_handlers: 0,
            patches_notified: BTreeSet::new(),
            patches_decided: BTreeMap::new(),
        }
    }

    pub(crate) fn push_command(&mut self, command: Command) {
        self.commands.push(command);
    }

    pub(crate) fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    pub(crate) fn next_timer_seq(&mut self) -> u32 {
        self.seqs.timer += 1;
        self.seqs.timer
    }

    pub(crate) fn next_activity_seq(&mut self) -> u32 {
        self.seqs.activity += 1;
        self.seqs.activity
    }

    pub(crate) fn next_child_seq(&mut self) -> u32 {
        self.seqs.child += 1;
        self.seqs.child
    }

    pub(crate) fn next_signal_external_seq(&mut self) -> u32 {
        self.seqs.signal_external += 1;
        self.seqs.signal_external
    }

    pub(crate) fn next_cancel_external_seq(&mut self) -> u32 {
        self.seqs.cancel_external += 1;
        self.seqs.cancel_external
    }

    /// Registers an operation whose command was just pushed.
    pub(crate) fn open(&mut self, key: OpKey, cancellable: bool) {
        self.slots.insert(
            key,
            Slot {
                cancellable,
                main: self.polling_main,
                ..Slot::default()
            },
        );
    }

    /// Delivers a resolution; unknown keys (operations dropped by the workflow) are ignored.
    pub(crate) fn resolve(&mut self, key: OpKey, resolution: Resolution) {
        if let Some(slot) = self.slots.get_mut(&key) {
            slot.resolution = Some(resolution);
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    /// Takes the resolution if there is one, else remembers who to wake.
    pub(crate) fn poll_slot(&mut self, key: OpKey, waker: &Waker) -> Option<Resolution> {
        let slot = self.slots.get_mut(&key)?;
        match slot.resolution.take() {
            Some(r) => {
                self.slots.remove(&key);
                Some(r)
            }
            None => {
                slot.waker = Some(waker.clone());
                None
            }
        }
    }

    /// Forgets an operation whose future was dropped; true if it was still pending.
    pub(crate) fn close(&mut self, key: OpKey) -> bool {
        self.slots
            .remove(&key)
            .is_some_and(|slot| slot.resolution.is_none())
    }

    pub(crate) fn is_pending(&self, key: OpKey) -> bool {
        self.slots.get(&key).is_some_and(|s| s.resolution.is_none())
    }

    /// The operations a workflow cancellation request cancels.
    pub(crate) fn cancellable_pending(&self) -> Vec<OpKey> {
        self.slots
            .iter()
            .filter(|(_, s)| s.cancellable && s.resolution.is_none())
            .map(|(k, _)| *k)
            .collect()
    }

    /// Records a workflow cancellation request and returns the pending operations it
    /// cancels (the caller sends their cancel commands).
    ///
    /// The request reaches every cancellable operation whose outcome the workflow has not
    /// seen yet: those still pending, and those resolved but not yet polled, typically in
    /// this same activation (their outcome is replaced by the cancellation, as Python's
    /// `CancelledError` replaces the result of the await it is thrown into). When none of
    /// them belongs to the main future, its next cancellable wait is cancelled instead, so
    /// a request that arrives between two waits is never lost.
    pub(crate) fn request_cancel(&mut self, reason: String) -> Vec<OpKey> {
        self.cancel_requested = Some(reason);
        self.cancel_generation += 1;
        self.version += 1;
        let mut reaches_main = false;
        let mut pending = Vec::new();
        for (key, slot) in self.slots.iter_mut().filter(|(_, s)| s.cancellable) {
            reaches_main |= slot.main;
            match &slot.resolution {
                None => pending.push(*key),
                Some(Resolution::Cancelled(_)) => {}
                Some(_) => {
                    slot.resolution = Some(Resolution::Cancelled(super::cancelled_failure(
                        "workflow cancelled before it saw this operation's outcome",
                    )));
                }
            }
        }
        self.cancel_undelivered = !reaches_main;
        pending
    }

    /// Whether a wait of the main future starting now must be cancelled at once (a
    /// request no wait has seen); true at most once per request.
    pub(crate) fn take_undelivered_cancel(&mut self) -> bool {
        let take = self.polling_main && self.cancel_undelivered;
        if take {
            self.cancel_undelivered = false;
        }
        take
    }

    pub(crate) fn wait_for_change(&mut self, waker: &Waker) {
        self.condition_wakers.push(waker.clone());
    }

    /// Wakes every condition waiter; returns whether there were any.
    pub(crate) fn wake_conditions(&mut self) -> bool {
        let wakers = std::mem::take(&mut self.condition_wakers);
        let any = !wakers.is_empty();
        wakers.into_iter().for_each(Waker::wake);
        any
    }

    pub(crate) fn notify_patch(&mut self, id: String) {
        self.patches_notified.insert(id);
    }

    /// `patched` semantics shared by every Temporal SDK: new code paths run on fresh
    /// executions and on replays whose history recorded the marker.
    pub(crate) fn patched(&mut self, id: &str, deprecated: bool) -> bool {
        if let Some(decided) = self.patches_decided.get(id) {
            return *decided;
        }
        let decided = !self.is_replaying || self.patches_notified.contains(id);
        if decided {
            self.push_command(Command::SetPatchMarker(
                temporalio_common::protos::coresdk::workflow_commands::SetPatchMarker {
                    patch_id: id.to_owned(),
                    deprecated,
                },
            ));
        }
        self.patches_decided.insert(id.to_owned(), decided);
        decided
    }
}

/// SplitMix64: tiny, fast and fully determined by the seed core sends, so replays draw the
/// same numbers.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
