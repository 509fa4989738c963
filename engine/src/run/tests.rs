//! Tests of one run's state machine: a transition applied to a run gives these events,
//! these effects and these deadlines. No store, no queues: just the run and a [`Ctx`].

use std::time::{Duration, SystemTime};

use super::*;
use crate::{
    matching::StickyQueues,
    proto::{
        command::{command::Attributes as Cmd, *},
        common::{ActivityType, RetryPolicy, WorkflowType},
        enums::{CommandType, EventType as E, TimeoutType, WorkflowTaskFailedCause},
        failure::{failure::FailureInfo, ApplicationFailureInfo, Failure},
        service::RespondWorkflowTaskCompletedRequest,
    },
};

/// The engine around a run: its settings, a sticky view and the task id sequence.
struct World {
    config: Config,
    sticky: StickyQueues,
    seq: u64,
    now: SystemTime,
}

impl World {
    fn new() -> Self {
        Self {
            config: Config::default(),
            sticky: StickyQueues::default(),
            seq: 0,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx::new(self.now, &self.config, &self.sticky, &mut self.seq)
    }

    fn later(&mut self, by: Duration) {
        self.now += by;
    }

    /// Runs `f` on `run` now; answers its result and the effects it recorded.
    fn apply<R>(
        &mut self,
        run: &mut Run,
        f: impl FnOnce(&mut Run, &mut Ctx<'_>) -> R,
    ) -> (R, Vec<Effect>) {
        let mut ctx = self.ctx();
        let out = f(run, &mut ctx);
        (out, ctx.effects)
    }

    /// A run of `W` on queue `q` started now with `attrs` (type and queue filled in).
    fn start(&mut self, attrs: WorkflowExecutionStartedEventAttributes) -> (Run, Vec<Effect>) {
        let mut ctx = self.ctx();
        let run = Run::start(
            &mut ctx,
            StartRun {
                namespace: "default".into(),
                workflow_id: "wf".into(),
                request_id: "request".into(),
                attrs: WorkflowExecutionStartedEventAttributes {
                    workflow_type: Some(WorkflowType { name: "W".into() }),
                    task_queue: task_queue("q"),
                    ..attrs
                },
                user_metadata: None,
                parent: None,
            },
        );
        let effects = ctx.effects;
        (run, effects)
    }

    /// A started run whose first workflow task a worker holds.
    fn started_task(&mut self) -> Run {
        let (mut run, _) = self.start(Default::default());
        self.apply(&mut run, |run, ctx| {
            run.start_workflow_task(ctx, "worker", "q")
        })
        .0
        .expect("the first task starts");
        run
    }

    /// Completes the held task with `commands`.
    fn complete(
        &mut self,
        run: &mut Run,
        commands: Vec<Command>,
    ) -> (Result<workflow_task::Completed, tonic::Status>, Vec<Effect>) {
        let scheduled = run.wft.as_ref().expect("a task is held").scheduled_event_id;
        self.apply(run, |run, ctx| {
            run.complete_workflow_task(
                ctx,
                RespondWorkflowTaskCompletedRequest {
                    commands,
                    identity: "worker".into(),
                    ..Default::default()
                },
                scheduled,
            )
        })
    }
}

fn secs(n: u64) -> Option<prost_wkt_types::Duration> {
    Some(proto::proto_duration(Duration::from_secs(n)))
}

fn command(attributes: Cmd) -> Command {
    Command {
        attributes: Some(attributes),
        ..Default::default()
    }
}

fn types(run: &Run) -> Vec<E> {
    run.events.iter().map(|e| e.event_type()).collect()
}

/// The event types written after the first `skip`.
fn new_types(run: &Run, skip: usize) -> Vec<E> {
    types(run)[skip..].to_vec()
}

fn timers(run: &Run) -> Vec<RunTimer> {
    run.deadlines().into_iter().map(|d| d.timer).collect()
}

fn activity(id: &str) -> ScheduleActivityTaskCommandAttributes {
    ScheduleActivityTaskCommandAttributes {
        activity_id: id.into(),
        activity_type: Some(ActivityType { name: "a".into() }),
        start_to_close_timeout: secs(5),
        ..Default::default()
    }
}

#[test]
fn a_start_writes_the_started_event_and_queues_the_first_task() {
    let mut world = World::new();
    let (run, effects) = world.start(Default::default());
    assert_eq!(
        types(&run),
        [E::WorkflowExecutionStarted, E::WorkflowTaskScheduled]
    );
    assert_eq!(effects, [Effect::WorkflowTask { queue: "q".into() }]);
    assert_eq!(run.deadlines(), []);
}

#[test]
fn a_start_delay_holds_the_first_task_and_the_run_timeout_counts_from_its_end() {
    let mut world = World::new();
    let t0 = world.now;
    let (mut run, effects) = world.start(WorkflowExecutionStartedEventAttributes {
        first_workflow_task_backoff: secs(45),
        workflow_run_timeout: secs(60),
        ..Default::default()
    });
    assert_eq!(types(&run), [E::WorkflowExecutionStarted]);
    assert_eq!(effects, []);
    let deadlines = run.deadlines();
    assert_eq!(
        deadlines,
        [
            Deadline {
                at: t0 + Duration::from_secs(45),
                timer: RunTimer::FirstWorkflowTask
            },
            Deadline {
                at: t0 + Duration::from_secs(105),
                timer: RunTimer::RunTimeout
            },
        ]
    );
    // Too early: nothing.
    world.later(Duration::from_secs(44));
    let (_, effects) = world.apply(&mut run, |run, ctx| run.end_backoff(ctx));
    assert_eq!(effects, []);
    world.later(Duration::from_secs(1));
    let (_, effects) = world.apply(&mut run, |run, ctx| run.end_backoff(ctx));
    assert_eq!(effects, [Effect::WorkflowTask { queue: "q".into() }]);
    assert_eq!(timers(&run), [RunTimer::RunTimeout]);
    // The run timeout does nothing before its instant.
    world.later(Duration::from_secs(59));
    assert!(world
        .apply(&mut run, |run, ctx| run.time_out(ctx))
        .0
        .is_none());
    assert!(run.is_open());
    world.later(Duration::from_secs(1));
    world.apply(&mut run, |run, ctx| run.time_out(ctx));
    assert_eq!(run.status, WorkflowExecutionStatus::TimedOut);
    assert_eq!(run.deadlines(), []);
}

#[test]
fn a_started_task_times_out_at_its_start_plus_the_task_timeout() {
    let mut world = World::new();
    let started = world.now;
    let mut run = world.started_task();
    let scheduled = run.wft.as_ref().unwrap().scheduled_event_id;
    assert_eq!(
        run.deadlines(),
        [Deadline {
            at: started + Duration::from_secs(10),
            timer: RunTimer::WorkflowTaskTimeout {
                scheduled_event_id: scheduled
            }
        }]
    );
    world.later(Duration::from_secs(10));
    let (_, effects) = world.apply(&mut run, |run, ctx| {
        run.time_out_workflow_task(ctx, scheduled)
    });
    assert_eq!(
        new_types(&run, 3),
        [E::WorkflowTaskTimedOut],
        "the retry's events are transient"
    );
    assert_eq!(effects, [Effect::WorkflowTask { queue: "q".into() }]);
    let retry = run.wft.as_ref().unwrap();
    assert_eq!((retry.attempt, retry.transient), (2, true));
}

/// As on Temporal: a retry that waited while an event came in starts as a new task,
/// attempt 1, scheduled when it starts, so that event times never go back (found by the
/// simulator: the retry's scheduled event came after the signal yet bore an earlier time).
#[test]
fn a_retry_started_after_new_events_is_a_normal_task_scheduled_then() {
    let mut world = World::new();
    let mut run = world.started_task();
    let scheduled = run.wft.as_ref().unwrap().scheduled_event_id;
    world.later(Duration::from_secs(10));
    world.apply(&mut run, |run, ctx| {
        run.time_out_workflow_task(ctx, scheduled)
    });
    world.later(Duration::from_secs(1));
    let signaled_at = world.now;
    world.apply(&mut run, |run, ctx| run.signal(ctx, "", Default::default()));
    world.later(Duration::from_secs(1));
    let response = world
        .apply(&mut run, |run, ctx| {
            run.start_workflow_task(ctx, "worker", "q")
        })
        .0
        .unwrap();
    assert_eq!(
        new_types(&run, 3),
        [
            E::WorkflowTaskTimedOut,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted
        ],
        "written, not transient"
    );
    assert_eq!(response.attempt, 1);
    let events = response.history.unwrap().events;
    let times: Vec<_> = events
        .iter()
        .map(|e| proto::system_time(e.event_time.as_ref()).unwrap())
        .collect();
    assert!(times.windows(2).all(|t| t[0] <= t[1]), "{times:?}");
    assert!(proto::system_time(events[5].event_time.as_ref()) > Some(signaled_at));
}

/// A command, and the events after the task's completed event, the effects and the
/// deadlines it gives.
type Case = (&'static str, Cmd, Vec<E>, Vec<Effect>, Vec<Deadline>);

/// A held task completed with one command: the events after the task's completed event,
/// the effects, and the deadlines left.
#[test]
fn each_command_gives_its_events_effects_and_deadlines() {
    let now = World::new().now;
    let cases: Vec<Case> = vec![
        (
            "schedule activity",
            Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                schedule_to_close_timeout: secs(30),
                ..activity("1")
            }),
            vec![E::ActivityTaskScheduled],
            vec![Effect::ActivityTask {
                queue: "q".into(),
                task: ActivityTaskRef {
                    run_id: String::new(),
                    scheduled_event_id: 5,
                    attempt: 1,
                },
                eager: false,
            }],
            vec![Deadline {
                at: now + Duration::from_secs(30),
                timer: RunTimer::ActivityTimeout {
                    scheduled_event_id: 5,
                    attempt: None,
                    timeout: TimeoutType::ScheduleToClose,
                },
            }],
        ),
        (
            "start timer",
            Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: "t".into(),
                start_to_fire_timeout: secs(90),
            }),
            vec![E::TimerStarted],
            vec![],
            vec![Deadline {
                at: now + Duration::from_secs(90),
                timer: RunTimer::UserTimer {
                    timer_id: "t".into(),
                    started_event_id: 5,
                },
            }],
        ),
        (
            "record marker",
            Cmd::RecordMarkerCommandAttributes(RecordMarkerCommandAttributes {
                marker_name: "m".into(),
                ..Default::default()
            }),
            vec![E::MarkerRecorded],
            vec![],
            vec![],
        ),
        (
            "complete",
            Cmd::CompleteWorkflowExecutionCommandAttributes(Default::default()),
            vec![E::WorkflowExecutionCompleted],
            vec![],
            vec![],
        ),
        (
            "fail",
            Cmd::FailWorkflowExecutionCommandAttributes(Default::default()),
            vec![E::WorkflowExecutionFailed],
            vec![],
            vec![],
        ),
        (
            "cancel",
            Cmd::CancelWorkflowExecutionCommandAttributes(Default::default()),
            vec![E::WorkflowExecutionCanceled],
            vec![],
            vec![],
        ),
        (
            "continue as new",
            Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(Default::default()),
            vec![E::WorkflowExecutionContinuedAsNew],
            vec![],
            vec![],
        ),
        (
            "upsert search attributes",
            Cmd::UpsertWorkflowSearchAttributesCommandAttributes(Default::default()),
            vec![E::UpsertWorkflowSearchAttributes],
            vec![],
            vec![],
        ),
        (
            "modify properties",
            Cmd::ModifyWorkflowPropertiesCommandAttributes(Default::default()),
            vec![E::WorkflowPropertiesModified],
            vec![],
            vec![],
        ),
        (
            "start child",
            Cmd::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id: "child".into(),
                    workflow_type: Some(WorkflowType { name: "C".into() }),
                    ..Default::default()
                },
            ),
            vec![E::StartChildWorkflowExecutionInitiated],
            vec![],
            vec![],
        ),
        (
            "signal external",
            Cmd::SignalExternalWorkflowExecutionCommandAttributes(
                SignalExternalWorkflowExecutionCommandAttributes {
                    execution: Some(WorkflowExecution {
                        workflow_id: "other".into(),
                        run_id: String::new(),
                    }),
                    signal_name: "poke".into(),
                    ..Default::default()
                },
            ),
            vec![E::SignalExternalWorkflowExecutionInitiated],
            vec![],
            vec![],
        ),
        (
            "cancel external",
            Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(
                RequestCancelExternalWorkflowExecutionCommandAttributes {
                    workflow_id: "other".into(),
                    ..Default::default()
                },
            ),
            vec![E::RequestCancelExternalWorkflowExecutionInitiated],
            vec![],
            vec![],
        ),
    ];
    for (name, attributes, events, effects, deadlines) in cases {
        let mut world = World::new();
        let mut run = world.started_task();
        let (completed, recorded) = world.complete(&mut run, vec![command(attributes)]);
        completed.unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = vec![E::WorkflowTaskCompleted];
        expected.extend(events);
        assert_eq!(new_types(&run, 3), expected, "{name}: events");
        let recorded: Vec<Effect> = recorded
            .into_iter()
            .map(|e| match e {
                Effect::ActivityTask { queue, task, eager } => Effect::ActivityTask {
                    queue,
                    task: ActivityTaskRef {
                        run_id: String::new(),
                        ..task
                    },
                    eager,
                },
                e => e,
            })
            .collect();
        assert_eq!(recorded, effects, "{name}: effects");
        assert_eq!(run.deadlines(), deadlines, "{name}: deadlines");
    }
}

#[test]
fn unsupported_commands_fail_the_task_naming_the_command_and_apply_nothing() {
    let nexus = Command {
        command_type: CommandType::ScheduleNexusOperation as i32,
        attributes: Some(Cmd::ScheduleNexusOperationCommandAttributes(
            Default::default(),
        )),
        ..Default::default()
    };
    let empty = Command {
        command_type: CommandType::StartTimer as i32,
        attributes: None,
        ..Default::default()
    };
    for (bad, cause, named) in [
        (
            nexus,
            WorkflowTaskFailedCause::FeatureDisabled,
            "COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION",
        ),
        (
            empty,
            WorkflowTaskFailedCause::Unspecified,
            "COMMAND_TYPE_START_TIMER",
        ),
    ] {
        let mut world = World::new();
        let mut run = world.started_task();
        // A valid command before it is not applied either.
        let timer = command(Cmd::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: "t".into(),
                start_to_fire_timeout: secs(5),
            },
        ));
        let (completed, effects) = world.complete(&mut run, vec![timer, bad]);
        let status = completed.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(named), "{status:?}");
        assert_eq!(new_types(&run, 3), [E::WorkflowTaskFailed]);
        let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = run.last_event() else {
            panic!("no failed event");
        };
        assert_eq!(failed.cause, cause as i32);
        assert!(failed.failure.unwrap().message.contains(named));
        assert!(run.timers.is_empty(), "the timer was started");
        assert_eq!(effects, [Effect::WorkflowTask { queue: "q".into() }]);
        assert!(run.wft.as_ref().unwrap().transient);
    }
}

#[test]
fn an_activity_attempt_has_its_timeouts_and_a_failure_waits_for_its_backoff() {
    let mut world = World::new();
    let mut run = world.started_task();
    let (completed, _) = world.complete(
        &mut run,
        vec![command(Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                heartbeat_timeout: secs(3),
                retry_policy: Some(RetryPolicy {
                    initial_interval: secs(20),
                    ..Default::default()
                }),
                ..activity("1")
            },
        ))],
    );
    completed.unwrap();
    let task = ActivityTaskRef {
        run_id: run.run_id.clone(),
        scheduled_event_id: 5,
        attempt: 1,
    };
    world.later(Duration::from_secs(1));
    let started = world.now;
    let (response, _) = world.apply(&mut run, |run, ctx| {
        run.start_activity(ctx, &task, "worker")
    });
    assert_eq!(response.unwrap().attempt, 1);
    assert!(!run.has_activity_task(&task), "started: no longer queued");
    let heartbeat = |at| Deadline {
        at,
        timer: RunTimer::ActivityTimeout {
            scheduled_event_id: 5,
            attempt: Some(1),
            timeout: TimeoutType::Heartbeat,
        },
    };
    let start_to_close = Deadline {
        at: started + Duration::from_secs(5),
        timer: RunTimer::ActivityTimeout {
            scheduled_event_id: 5,
            attempt: Some(1),
            timeout: TimeoutType::StartToClose,
        },
    };
    assert_eq!(
        run.deadlines(),
        [
            start_to_close.clone(),
            heartbeat(started + Duration::from_secs(3))
        ]
    );
    // A heartbeat moves its deadline.
    world.later(Duration::from_secs(2));
    world.apply(&mut run, |run, ctx| run.record_heartbeat(ctx, 5, None));
    assert_eq!(
        run.deadlines(),
        [
            start_to_close,
            heartbeat(world.now + Duration::from_secs(3))
        ]
    );
    // A failure waits 20 s, then the second attempt is queued.
    let failure = Failure {
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo::default(),
        )),
        ..Default::default()
    };
    world.apply(&mut run, |run, ctx| {
        run.fail_activity(ctx, 5, failure, None, "worker".into())
    });
    assert_eq!(
        run.deadlines(),
        [Deadline {
            at: world.now + Duration::from_secs(20),
            timer: RunTimer::ActivityRetry {
                scheduled_event_id: 5,
                attempt: 2
            }
        }]
    );
    assert_eq!(new_types(&run, 5), [], "a retried failure writes nothing");
    world.later(Duration::from_secs(20));
    let (_, effects) = world.apply(&mut run, |run, ctx| run.retry_activity(ctx, 5, 2));
    assert_eq!(
        effects,
        [Effect::ActivityTask {
            queue: "q".into(),
            task: ActivityTaskRef { attempt: 2, ..task },
            eager: false,
        }]
    );
}

#[test]
fn a_paused_activity_queues_nothing_and_a_reset_one_starts_again_at_attempt_1() {
    use super::{Restart, Targets};
    let mut world = World::new();
    let mut run = world.started_task();
    let (completed, _) = world.complete(
        &mut run,
        vec![command(Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                retry_policy: Some(RetryPolicy {
                    initial_interval: secs(20),
                    ..Default::default()
                }),
                ..activity("1")
            },
        ))],
    );
    completed.unwrap();
    let run_id = run.run_id.clone();
    let task = |attempt| ActivityTaskRef {
        run_id: run_id.clone(),
        scheduled_event_id: 5,
        attempt,
    };
    let failure = || Failure {
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo::default(),
        )),
        ..Default::default()
    };
    let one = Targets::Id("1".into());
    let first = task(1);
    world.apply(&mut run, |run, ctx| {
        run.start_activity(ctx, &first, "worker")
    });
    // Paused while running: the heartbeat says so, and the failure's retry waits.
    world
        .apply(&mut run, |run, ctx| {
            run.pause_activities(ctx, &one, "op", "why")
        })
        .0
        .unwrap();
    let (answer, _) = world.apply(&mut run, |run, ctx| run.record_heartbeat(ctx, 5, None));
    assert!(answer.paused && !answer.reset);
    world.apply(&mut run, |run, ctx| {
        run.fail_activity(ctx, 5, failure(), None, "worker".into())
    });
    assert_eq!(run.activities[&5].attempt, 2);
    assert_eq!(run.deadlines(), [], "a paused retry waits for nothing");

    assert!(!run.has_activity_task(&task(2)));
    // Unpaused within a jitter: queued by the retry deadline, within the jitter.
    let jittered = Restart {
        jitter: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let (unpaused, effects) = world.apply(&mut run, |run, ctx| {
        run.unpause_activities(ctx, &one, jittered)
    });
    unpaused.unwrap();
    assert_eq!(effects, []);
    let deadlines = run.deadlines();
    let [Deadline { at, timer }] = &deadlines[..] else {
        panic!("one deadline: {deadlines:?}");
    };
    let (at, timer) = (*at, timer.clone());
    assert!(
        at >= world.now && at < world.now + Duration::from_secs(10),
        "{at:?}"
    );
    assert_eq!(
        timer,
        RunTimer::ActivityRetry {
            scheduled_event_id: 5,
            attempt: 2
        }
    );
    // Reset while waiting: attempt 1, queued at once.
    let (reset, effects) = world.apply(&mut run, |run, ctx| {
        run.reset_activities(ctx, &one, Restart::default(), false, false)
    });
    reset.unwrap();
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert!(run.has_activity_task(&task(1)));
    assert!(!run.waits_only_on_timers(), "queued: it waits for a worker");
    // Paused while queued, it waits for an operator: a virtual clock may skip ahead.
    world
        .apply(&mut run, |run, ctx| {
            run.pause_activities(ctx, &one, "op", "")
        })
        .0
        .unwrap();
    assert!(run.waits_only_on_timers());
    assert!(!run.has_activity_task(&task(1)));
    world
        .apply(&mut run, |run, ctx| {
            run.unpause_activities(ctx, &one, Restart::default())
        })
        .0
        .unwrap();
    assert!(run.has_activity_task(&task(1)));
    // Reset while running: the failure starts attempt 1 again at once.
    let first = task(1);
    world.apply(&mut run, |run, ctx| {
        run.start_activity(ctx, &first, "worker")
    });
    world
        .apply(&mut run, |run, ctx| {
            run.reset_activities(ctx, &one, Restart::default(), false, false)
        })
        .0
        .unwrap();
    let (answer, _) = world.apply(&mut run, |run, ctx| run.record_heartbeat(ctx, 5, None));
    assert!(answer.reset && !answer.paused);
    let (_, effects) = world.apply(&mut run, |run, ctx| {
        run.fail_activity(ctx, 5, failure(), None, "worker".into())
    });
    assert_eq!(
        effects,
        [Effect::ActivityTask {
            queue: "q".into(),
            task: task(1),
            eager: false,
        }]
    );
    // New options, then the scheduled event's again.
    let options = proto::activity::ActivityOptions {
        start_to_close_timeout: secs(99),
        ..Default::default()
    };
    let mask = ["startToCloseTimeout".to_owned()];
    let changed = run
        .update_activity_options(&one, &options, &mask, false)
        .unwrap();
    assert_eq!(changed.start_to_close_timeout, secs(99));
    let bad = run.update_activity_options(&one, &options, &["input".to_owned()], false);
    assert!(bad
        .unwrap_err()
        .message()
        .contains("not an activity option"));
    let restored = run
        .update_activity_options(&one, &options, &[], true)
        .unwrap();
    assert_eq!(restored.start_to_close_timeout, secs(5));
    let none = run.pause_activities(&mut world.ctx(), &Targets::Type("B".into()), "op", "");
    assert_eq!(none.unwrap_err().code(), tonic::Code::NotFound);
}

#[test]
fn events_that_arrive_while_a_task_is_held_wait_for_it_to_end() {
    let mut world = World::new();
    let mut run = world.started_task();
    let (_, effects) = world.apply(&mut run, |run, ctx| {
        run.signal(ctx, "", Default::default());
    });
    assert_eq!(effects, []);
    assert_eq!(types(&run).len(), 3, "buffered, not written");
    let (completed, effects) = world.complete(&mut run, vec![]);
    completed.unwrap();
    assert_eq!(
        new_types(&run, 3),
        [
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled
        ]
    );
    assert_eq!(effects, [Effect::WorkflowTask { queue: "q".into() }]);
    // A run may not close while a signal waits unseen: the task fails, afresh.
    world
        .apply(&mut run, |run, ctx| {
            run.start_workflow_task(ctx, "worker", "q")
        })
        .0
        .unwrap();
    world.apply(&mut run, |run, ctx| run.signal(ctx, "", Default::default()));
    let (completed, _) = world.complete(
        &mut run,
        vec![command(Cmd::CompleteWorkflowExecutionCommandAttributes(
            Default::default(),
        ))],
    );
    // Answered as Temporal does, so that the worker evicts the run and replays it.
    let refused = completed.expect_err("the completion is refused");
    assert_eq!(
        (refused.code(), refused.message()),
        (tonic::Code::InvalidArgument, "UnhandledCommand")
    );
    assert!(run.is_open());
    assert_eq!(
        new_types(&run, 7),
        [
            E::WorkflowTaskFailed,
            E::WorkflowExecutionSignaled,
            E::WorkflowTaskScheduled
        ]
    );
}

/// A run closed from outside under a started task (a worker holding it, or gone): the
/// task is failed first, as Temporal does, so that nothing but its outcome follows its
/// started event (sdk-core refuses to replay such a history otherwise).
#[test]
fn a_buffered_event_keeps_the_time_it_happened() {
    let mut world = World::new();
    let mut run = world.started_task();
    let start = world.now;
    world.later(Duration::from_secs(2));
    world.apply(&mut run, |run, ctx| run.signal(ctx, "", Default::default()));
    world.later(Duration::from_secs(8));
    let (completed, _) = world.complete(&mut run, vec![]);
    completed.unwrap();
    let times: Vec<_> = run.events.to_vec()[3..]
        .iter()
        .map(|e| (E::try_from(e.event_type).unwrap(), e.event_time.unwrap()))
        .collect();
    let at = |secs| proto::timestamp(start + Duration::from_secs(secs));
    assert_eq!(
        times,
        [
            (E::WorkflowTaskCompleted, at(10)),
            (E::WorkflowExecutionSignaled, at(2)),
            (E::WorkflowTaskScheduled, at(10)),
        ],
        "written when the task ended, stamped when it came in (as on Temporal)"
    );
}

#[test]
fn a_run_closed_from_outside_fails_its_started_task_first() {
    let mut world = World::new();
    let mut run = world.started_task();
    world.apply(&mut run, |run, ctx| run.signal(ctx, "", Default::default()));
    world.apply(&mut run, |run, ctx| {
        run.terminate(ctx, "test", None, "test")
    });
    assert_eq!(
        new_types(&run, 3),
        [
            E::WorkflowTaskFailed,
            E::WorkflowExecutionSignaled,
            E::WorkflowExecutionTerminated
        ]
    );
    let failed = run.events.get(3).unwrap();
    let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = failed.attributes else {
        panic!("the fourth event is {failed:?}");
    };
    assert_eq!((failed.scheduled_event_id, failed.started_event_id), (2, 3));
    assert_eq!(
        failed.cause,
        WorkflowTaskFailedCause::ForceCloseCommand as i32
    );
    assert_eq!(failed.identity, ENGINE_IDENTITY);

    // The same at the run's timeout.
    let mut timed_out = world.start(WorkflowExecutionStartedEventAttributes {
        workflow_run_timeout: secs(60),
        ..Default::default()
    });
    world
        .apply(&mut timed_out.0, |run, ctx| {
            run.start_workflow_task(ctx, "worker", "q")
        })
        .0
        .unwrap();
    world.later(Duration::from_secs(60));
    world.apply(&mut timed_out.0, |run, ctx| run.time_out(ctx));
    assert_eq!(
        new_types(&timed_out.0, 3),
        [E::WorkflowTaskFailed, E::WorkflowExecutionTimedOut]
    );
}

#[test]
fn a_closed_run_needs_no_deadline() {
    let mut world = World::new();
    let mut run = world.started_task();
    let (completed, _) = world.complete(
        &mut run,
        vec![
            command(Cmd::StartTimerCommandAttributes(
                StartTimerCommandAttributes {
                    timer_id: "t".into(),
                    start_to_fire_timeout: secs(5),
                },
            )),
            command(Cmd::ScheduleActivityTaskCommandAttributes(activity("1"))),
        ],
    );
    completed.unwrap();
    assert_eq!(timers(&run).len(), 1);
    world.apply(&mut run, |run, ctx| {
        run.terminate(ctx, "test", None, "test")
    });
    assert_eq!(run.deadlines(), []);
    assert_eq!(
        run.last_event().map(|a| event_type(&a)),
        Some(E::WorkflowExecutionTerminated)
    );
}

/// What Temporal rejects in a completion: the task fails with this cause, naming this.
#[test]
fn commands_temporal_rejects_fail_the_task_with_its_cause() {
    let timer = |id: &str, secs_: u64| {
        Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: id.into(),
            start_to_fire_timeout: secs(secs_),
        })
    };
    let cases: Vec<(&str, Vec<Cmd>, WorkflowTaskFailedCause, &str)> = vec![
        (
            "duplicate timer",
            vec![timer("t", 5), timer("t", 5)],
            WorkflowTaskFailedCause::StartTimerDuplicateId,
            "`t` is already in use",
        ),
        (
            "zero timer",
            vec![timer("t", 0)],
            WorkflowTaskFailedCause::BadStartTimerAttributes,
            "must be positive",
        ),
        (
            "duplicate activity",
            vec![
                Cmd::ScheduleActivityTaskCommandAttributes(activity("1")),
                Cmd::ScheduleActivityTaskCommandAttributes(activity("1")),
            ],
            WorkflowTaskFailedCause::ScheduleActivityDuplicateId,
            "`1` is already in use",
        ),
        (
            "activity without a type",
            vec![Cmd::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    activity_type: None,
                    ..activity("1")
                },
            )],
            WorkflowTaskFailedCause::BadScheduleActivityAttributes,
            "activity_type is not set",
        ),
        (
            "activity without timeouts",
            vec![Cmd::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    start_to_close_timeout: None,
                    ..activity("1")
                },
            )],
            WorkflowTaskFailedCause::BadScheduleActivityAttributes,
            "schedule_to_close_timeout or start_to_close_timeout",
        ),
        (
            "cancel of an unknown timer",
            vec![Cmd::CancelTimerCommandAttributes(
                CancelTimerCommandAttributes {
                    timer_id: "nope".into(),
                },
            )],
            WorkflowTaskFailedCause::BadCancelTimerAttributes,
            "no timer `nope`",
        ),
        (
            "cancel of an unknown activity",
            vec![Cmd::RequestCancelActivityTaskCommandAttributes(
                RequestCancelActivityTaskCommandAttributes {
                    scheduled_event_id: 2,
                },
            )],
            WorkflowTaskFailedCause::BadRequestCancelActivityAttributes,
            "scheduled at event 2",
        ),
        (
            "child without an id",
            vec![Cmd::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_type: Some(WorkflowType { name: "C".into() }),
                    ..Default::default()
                },
            )],
            WorkflowTaskFailedCause::BadStartChildExecutionAttributes,
            "workflow_id is not set",
        ),
        (
            "signal without a name",
            vec![Cmd::SignalExternalWorkflowExecutionCommandAttributes(
                SignalExternalWorkflowExecutionCommandAttributes {
                    execution: Some(WorkflowExecution {
                        workflow_id: "other".into(),
                        run_id: String::new(),
                    }),
                    ..Default::default()
                },
            )],
            WorkflowTaskFailedCause::BadSignalWorkflowExecutionAttributes,
            "signal_name is not set",
        ),
    ];
    for (name, commands, cause, named) in cases {
        let mut world = World::new();
        let mut run = world.started_task();
        let (completed, _) = world.complete(&mut run, commands.into_iter().map(command).collect());
        let status = completed.unwrap_err();
        assert!(status.message().contains(named), "{name}: {status:?}");
        let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = run.last_event() else {
            panic!("{name}: no failed event");
        };
        assert_eq!(failed.cause, cause as i32, "{name}");
        assert!(
            run.timers.is_empty() && run.activities.is_empty(),
            "{name}: applied"
        );
    }
    // A timer started and cancelled in one completion is fine.
    let mut world = World::new();
    let mut run = world.started_task();
    let cancel = Cmd::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
        timer_id: "t".into(),
    });
    let (completed, _) = world.complete(&mut run, vec![command(timer("t", 5)), command(cancel)]);
    completed.unwrap();
}

#[test]
fn a_timer_that_fired_while_the_task_ran_can_still_be_cancelled() {
    let mut world = World::new();
    let mut run = world.started_task();
    let (completed, _) = world.complete(
        &mut run,
        vec![command(Cmd::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: "t".into(),
                start_to_fire_timeout: secs(5),
            },
        ))],
    );
    completed.unwrap();
    world.apply(&mut run, |run, ctx| run.signal(ctx, "", Default::default()));
    world
        .apply(&mut run, |run, ctx| {
            run.start_workflow_task(ctx, "worker", "q")
        })
        .0
        .unwrap();
    world.later(Duration::from_secs(5));
    world.apply(&mut run, |run, ctx| run.fire_timer(ctx, "t", 5));
    let before = run.events.len();
    let cancel = Cmd::CancelTimerCommandAttributes(CancelTimerCommandAttributes {
        timer_id: "t".into(),
    });
    let (completed, _) = world.complete(&mut run, vec![command(cancel)]);
    completed.unwrap();
    assert_eq!(
        new_types(&run, before),
        [E::WorkflowTaskCompleted, E::TimerCanceled],
        "the buffered fired event is dropped"
    );
}

#[test]
fn a_reset_run_is_rebuilt_from_the_prefix_with_the_deadlines_the_live_run_had() {
    let mut world = World::new();
    let mut base = world.started_task();
    let timer = StartTimerCommandAttributes {
        timer_id: "t".into(),
        start_to_fire_timeout: secs(90),
    };
    let commands = vec![
        command(Cmd::ScheduleActivityTaskCommandAttributes(activity("a"))),
        command(Cmd::StartTimerCommandAttributes(timer)),
    ];
    world.complete(&mut base, commands).0.expect("completed");
    let live_timer = base
        .deadlines()
        .into_iter()
        .find(|d| matches!(&d.timer, RunTimer::UserTimer { timer_id, .. } if timer_id == "t"));
    // 7-10: a signal, and its task.
    world.later(Duration::from_secs(10));
    world.apply(&mut base, |run, ctx| {
        run.signal(ctx, "", Default::default())
    });
    world
        .apply(&mut base, |run, ctx| {
            run.start_workflow_task(ctx, "worker", "q")
        })
        .0
        .expect("the task starts");
    world.complete(&mut base, Vec::new()).0.expect("completed");
    world.later(Duration::from_secs(10));
    let reset = |finish_event_id| Reset {
        reason: "because".into(),
        request_id: "reset".into(),
        finish_event_id,
        reapply: Reapply::from_request(0, &[]),
    };
    for refused in [0, 1, 5, 7, 11] {
        let answer = base.rebuilt(world.now, "new".into(), &reset(refused));
        assert_eq!(
            answer.map(|_| ()).map_err(|s| s.code()),
            Err(tonic::Code::InvalidArgument),
            "no reset to {refused}"
        );
    }

    let (mut new, task) = base
        .rebuilt(world.now, "new".into(), &reset(10))
        .expect("a task is pending at 10");
    assert_eq!(new.events.len(), 9, "the prefix is kept");
    let ((), effects) = world.apply(&mut new, |run, ctx| {
        run.finish_reset(ctx, &reset(10), task, "base", Vec::new(), Vec::new())
    });
    assert_eq!(
        new_types(&new, 9),
        [E::WorkflowTaskFailed, E::WorkflowTaskScheduled]
    );
    assert_eq!(
        new.previous_started_event_id, 3,
        "the last completed task's"
    );
    // The timer keeps its deadline; the activity is queued again at its first attempt.
    let rebuilt_timer = new
        .deadlines()
        .into_iter()
        .find(|d| matches!(&d.timer, RunTimer::UserTimer { timer_id, .. } if timer_id == "t"));
    assert!(live_timer.is_some());
    assert_eq!(rebuilt_timer, live_timer);
    assert!(effects.contains(&Effect::ActivityTask {
        queue: "q".into(),
        task: ActivityTaskRef {
            run_id: "new".into(),
            scheduled_event_id: 5,
            attempt: 1,
        },
        eager: false,
    }));
    assert_eq!(new.activities[&5].scheduled_time, world.now);
}

#[test]
fn a_reset_reapplies_what_the_request_does_not_exclude() {
    use crate::proto::enums::{ResetReapplyExcludeType as X, ResetReapplyType as T};
    let all = Reapply {
        signals: true,
        updates: true,
    };
    let cases = [
        (T::Unspecified, vec![], all),
        (T::AllEligible, vec![], all),
        (
            T::Signal,
            vec![],
            Reapply {
                updates: false,
                ..all
            },
        ),
        (
            T::None,
            vec![],
            Reapply {
                signals: false,
                updates: false,
            },
        ),
        (
            T::Unspecified,
            vec![X::Signal],
            Reapply {
                signals: false,
                ..all
            },
        ),
        (
            T::AllEligible,
            vec![X::Update, X::Nexus],
            Reapply {
                updates: false,
                ..all
            },
        ),
    ];
    for (reapply_type, exclude, expected) in cases {
        let exclude: Vec<i32> = exclude.into_iter().map(|x| x as i32).collect();
        assert_eq!(
            Reapply::from_request(reapply_type as i32, &exclude),
            expected,
            "{reapply_type:?} excluding {exclude:?}"
        );
    }
}
