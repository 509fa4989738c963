//! Tests of the state: what a transaction reports it changed, the deadlines it arms, and
//! transitions that cross runs.

use std::time::{Duration, SystemTime};

use super::*;
use crate::{
    matching::{ActivityTaskRef, Token},
    proto::{
        command::{command::Attributes as Cmd, *},
        common::{ActivityType, WorkflowType},
        enums::{EventType, WorkflowExecutionStatus},
        history::WorkflowExecutionStartedEventAttributes,
        service::RespondWorkflowTaskCompletedRequest,
        taskqueue::TaskQueue,
    },
    timers::{Deadline, RunTimer},
};

fn state() -> State {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    State::new(
        &["default".to_owned()],
        Clock::Manual(t0),
        Config::default(),
    )
}

/// One transaction: what `f` answers and what the state says it changed.
fn tx<R>(state: &mut State, f: impl FnOnce(&mut State) -> R) -> (R, Changes) {
    state.begin();
    let out = f(state);
    (out, state.finish())
}

fn start(state: &mut State, id: &str, parent_queue: &str) -> String {
    tx(state, |s| {
        s.start_workflow(StartWorkflow {
            namespace: "default".into(),
            workflow_id: id.into(),
            attrs: WorkflowExecutionStartedEventAttributes {
                workflow_type: Some(WorkflowType { name: "W".into() }),
                task_queue: Some(TaskQueue {
                    name: parent_queue.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        })
    })
    .0
    .unwrap()
    .0
}

/// Takes a task from queue `q` and completes it with `commands`.
fn run_task(state: &mut State, queue: &str, commands: Vec<Cmd>) -> (String, Changes) {
    let task = tx(state, |s| {
        s.dispatch_workflow_task("default", queue, "worker")
    })
    .0
    .expect("a task");
    let Token::Workflow { run, scheduled, .. } =
        Token::decode(&task.task_token, "default").unwrap()
    else {
        panic!("not a workflow token");
    };
    let request = RespondWorkflowTaskCompletedRequest {
        commands: commands
            .into_iter()
            .map(|attributes| Command {
                attributes: Some(attributes),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (answer, changes) = tx(state, |s| {
        s.complete_workflow_task(&run, scheduled, request)
    });
    answer.unwrap();
    (run, changes)
}

fn assert_nothing_changed(changes: &Changes, what: &str) {
    assert!(changes.runs.is_empty(), "{what} touched {:?}", changes.runs);
    assert!(changes.woken.is_empty(), "{what} woke {:?}", changes.woken);
    assert!(changes.schedules.is_empty(), "{what} changed schedules");
    assert!(!changes.progress, "{what} counted as progress");
}

#[test]
fn a_transition_that_changes_nothing_writes_and_wakes_nothing() {
    let mut state = state();
    let run_id = start(&mut state, "wf", "q");
    // An empty queue.
    let (task, changes) = tx(&mut state, |s| {
        s.dispatch_workflow_task("default", "other", "w")
    });
    assert!(task.is_none());
    assert_nothing_changed(&changes, "an empty poll");
    // A completion naming a task that is not started.
    let (answer, changes) = tx(&mut state, |s| {
        s.complete_workflow_task(&run_id, 99, Default::default())
    });
    assert_eq!(answer.unwrap_err().code(), tonic::Code::NotFound);
    assert_nothing_changed(&changes, "a stale completion");
    // A stale activity entry.
    state.queues.push_activity(
        "default",
        "q",
        ActivityTaskRef {
            run_id: run_id.clone(),
            scheduled_event_id: 42,
            attempt: 1,
        },
    );
    state.queues.take_woken();
    let (task, changes) = tx(&mut state, |s| {
        s.dispatch_activity_task("default", "q", "w")
    });
    assert!(task.is_none());
    assert_nothing_changed(&changes, "a stale activity");
    // Firing with nothing due.
    let (_, changes) = tx(&mut state, State::fire_due);
    assert_nothing_changed(&changes, "firing nothing");
}

#[test]
fn a_closed_runs_deadlines_are_disarmed_and_a_touched_runs_rearmed() {
    let mut state = state();
    start(&mut state, "wf", "q");
    let (task, changes) = tx(&mut state, |s| {
        s.dispatch_workflow_task("default", "q", "w")
    });
    assert!(
        changes.timers_moved,
        "the first deadline wakes the timer service"
    );
    let Token::Workflow {
        run: run_id,
        scheduled,
        ..
    } = Token::decode(&task.unwrap().task_token, "default").unwrap()
    else {
        panic!("not a workflow token");
    };
    let request = RespondWorkflowTaskCompletedRequest {
        commands: vec![Command {
            attributes: Some(Cmd::StartTimerCommandAttributes(
                StartTimerCommandAttributes {
                    timer_id: "t".into(),
                    start_to_fire_timeout: Some(crate::proto::proto_duration(Duration::from_secs(
                        60,
                    ))),
                },
            )),
            ..Default::default()
        }],
        ..Default::default()
    };
    let (answer, changes) = tx(&mut state, |s| {
        s.complete_workflow_task(&run_id, scheduled, request)
    });
    answer.unwrap();
    assert!(
        !changes.timers_moved,
        "a later deadline replaced an earlier one"
    );
    assert_eq!(changes.runs, std::slice::from_ref(&run_id));
    assert_eq!(changes.woken, [Topic::Run(run_id.clone())]);
    let armed = state.wheel.of_run(&run_id);
    assert!(matches!(
        armed[..],
        [Deadline {
            timer: RunTimer::UserTimer { .. },
            ..
        }]
    ));
    let (_, changes) = tx(&mut state, |s| s.terminate(&run_id, "test", "test"));
    assert!(!changes.timers_moved);
    assert_eq!(state.wheel.of_run(&run_id), []);
    assert_eq!(state.wheel.next(), None);
}

#[test]
fn a_grandchilds_root_is_the_run_at_the_top() {
    let mut state = state();
    let top = start(&mut state, "top", "p");
    let child = |id: &str, queue: &str| {
        Cmd::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                workflow_id: id.into(),
                workflow_type: Some(WorkflowType { name: "C".into() }),
                task_queue: Some(TaskQueue {
                    name: queue.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    };
    run_task(&mut state, "p", vec![child("child", "c")]);
    run_task(&mut state, "c", vec![child("grandchild", "g")]);
    let root = |id: &str| {
        let run = &state.current[&("default".to_owned(), id.to_owned())];
        state.runs[run].root_execution().run_id
    };
    assert_eq!(root("top"), top);
    assert_eq!(root("child"), top);
    assert_eq!(root("grandchild"), top, "the top run, not its parent");
}

#[test]
fn a_childs_close_reaches_its_parent_and_a_parents_close_terminates_its_child() {
    let mut state = state();
    start(&mut state, "parent", "p");
    let child = |id: &str| {
        Cmd::StartChildWorkflowExecutionCommandAttributes(
            StartChildWorkflowExecutionCommandAttributes {
                workflow_id: id.into(),
                workflow_type: Some(WorkflowType { name: "C".into() }),
                task_queue: Some(TaskQueue {
                    name: "c".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    };
    let (parent, _) = run_task(&mut state, "p", vec![child("done"), child("left")]);
    let types = |state: &State, run: &str| -> Vec<EventType> {
        state.runs[run]
            .events
            .iter()
            .map(|e| e.event_type())
            .collect()
    };
    assert!(types(&state, &parent).ends_with(&[
        EventType::StartChildWorkflowExecutionInitiated,
        EventType::StartChildWorkflowExecutionInitiated,
        EventType::ChildWorkflowExecutionStarted,
        EventType::WorkflowTaskScheduled,
        EventType::ChildWorkflowExecutionStarted,
    ]));
    // The child `done` completes: its parent hears of it.
    let (done, _) = run_task(
        &mut state,
        "c",
        vec![Cmd::CompleteWorkflowExecutionCommandAttributes(
            Default::default(),
        )],
    );
    assert_eq!(state.runs[&done].workflow_id, "done");
    assert_eq!(
        types(&state, &parent).last(),
        Some(&EventType::ChildWorkflowExecutionCompleted)
    );
    // The parent is terminated: so is its child `left` (the default parent close policy).
    run_task(&mut state, "p", vec![]);
    let (_, changes) = tx(&mut state, |s| s.terminate(&parent, "test", "test"));
    let left = state.current[&("default".to_owned(), "left".to_owned())].clone();
    assert_eq!(
        state.runs[&left].status,
        WorkflowExecutionStatus::Terminated
    );
    assert!(changes.runs.contains(&left));
}

#[test]
fn activities_asked_for_eagerly_come_back_started_and_others_are_queued() {
    let mut state = state();
    start(&mut state, "wf", "q");
    let schedule = |id: &str, eager: bool| {
        Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
            activity_id: id.into(),
            activity_type: Some(ActivityType { name: "a".into() }),
            start_to_close_timeout: Some(crate::proto::proto_duration(Duration::from_secs(5))),
            request_eager_execution: eager,
            ..Default::default()
        })
    };
    let task = tx(&mut state, |s| {
        s.dispatch_workflow_task("default", "q", "worker")
    })
    .0
    .unwrap();
    let Token::Workflow { run, scheduled, .. } =
        Token::decode(&task.task_token, "default").unwrap()
    else {
        panic!()
    };
    let request = RespondWorkflowTaskCompletedRequest {
        commands: [schedule("eager", true), schedule("queued", false)]
            .into_iter()
            .map(|attributes| Command {
                attributes: Some(attributes),
                ..Default::default()
            })
            .collect(),
        identity: "worker".into(),
        ..Default::default()
    };
    let (answer, changes) = tx(&mut state, |s| {
        s.complete_workflow_task(&run, scheduled, request)
    });
    let answer = answer.unwrap();
    assert_eq!(answer.activity_tasks.len(), 1);
    assert_eq!(answer.activity_tasks[0].activity_id, "eager");
    assert!(changes
        .woken
        .contains(&Topic::Queue("default".into(), "q".into())));
    let queued = tx(&mut state, |s| {
        s.dispatch_activity_task("default", "q", "w")
    })
    .0
    .unwrap();
    assert_eq!(queued.activity_id, "queued");
}

#[test]
fn a_closed_runs_queued_tasks_leave_the_queues() {
    let mut state = state();
    start(&mut state, "wf", "q");
    start(&mut state, "other", "q");
    let activity =
        Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
            activity_id: "a".into(),
            activity_type: Some(ActivityType { name: "a".into() }),
            task_queue: Some(TaskQueue {
                name: "activities".into(),
                ..Default::default()
            }),
            start_to_close_timeout: Some(crate::proto::proto_duration(Duration::from_secs(5))),
            ..Default::default()
        });
    let (run, _) = run_task(&mut state, "q", vec![activity]);
    // The first run's activity is queued on its own queue; the other run's first workflow
    // task waits on "q" behind nobody.
    assert_eq!(state.queues.len(), 2);
    tx(&mut state, |s| s.terminate(&run, "test", "test"));
    assert_eq!(
        state.queues.len(),
        1,
        "the activity's queue held only the closed run's task"
    );
    let other = tx(&mut state, |s| {
        s.dispatch_workflow_task("default", "q", "w")
    })
    .0
    .expect("the other run's task is still queued");
    assert_eq!(other.workflow_execution.unwrap().workflow_id, "other");
}

/// A query that ended before a worker took it (its caller gave up) leaves its queue: a
/// query waiting on the sticky queue of a worker that polls no more stayed there for good
/// (found by the simulator's memory census, soak seed 200084).
#[test]
fn a_query_that_ended_leaves_its_queue() {
    let mut state = state();
    start(&mut state, "wf", "q");
    let (run, _) = run_task(&mut state, "q", vec![]);
    // Only the query waits: the run's first task was taken above.
    assert_eq!(state.queues.len(), 0);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    tx(&mut state, |s| {
        s.enqueue_query(&run, "query-1".into(), Default::default(), reply)
    });
    assert_eq!(state.queues.len(), 1);
    tx(&mut state, |s| s.forget_query("query-1"));
    assert_eq!(
        state.queues.len(),
        0,
        "the ended query's entry stayed queued"
    );
    assert!(state.queries.is_empty());
}
