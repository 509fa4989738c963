//! A durable engine restarted at every kind of wait: the deadlines armed after the restart
//! are exactly those armed before it, and each fires at its original instant.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rusqlite::Connection;

use super::durable::{self, Db};
use crate::{
    clock::Clock,
    event_log::EventLog,
    matching::Token,
    proto::{
        self,
        command::{command::Attributes as Cmd, *},
        common::{ActivityType, RetryPolicy, WorkflowType},
        failure::{failure::FailureInfo, ApplicationFailureInfo, Failure},
        schedule::{schedule_action::Action, IntervalSpec, Schedule, ScheduleAction, ScheduleSpec},
        service::RespondWorkflowTaskCompletedRequest,
        taskqueue::TaskQueue,
        workflow::NewWorkflowExecutionInfo,
    },
    run::Config,
    schedules::Key,
    state::{Changes, NewSchedule, StartWorkflow, State},
    timers::{Deadline, RunTimer},
};

/// A state on a SQLite file, written after every transaction as the store writes it.
struct Durable {
    state: State,
    db: Db,
    conn: Connection,
}

impl Durable {
    /// Opens (or reopens) `path` on a clock that stands at `now`.
    fn open(path: &Path, now: SystemTime) -> Self {
        let mut state = State::new(
            &["default".to_owned()],
            Clock::Manual(now),
            Config::default(),
        );
        let (db, conn) = Db::open(path, &mut state).expect("the file opens");
        state.rebuild();
        let mut durable = Self { state, db, conn };
        durable.write();
        durable
    }

    fn write(&mut self) -> Changes {
        self.write_measured().0
    }

    /// [`Durable::write`], and how many bytes of rows it wrote.
    fn write_measured(&mut self) -> (Changes, usize) {
        let changes = self.state.finish();
        let mut bytes = 0;
        if let Some(batch) = self.db.stage(&self.state, &changes).unwrap() {
            bytes = batch.bytes();
            durable::write(&mut self.conn, [&batch]).unwrap();
        }
        (changes, bytes)
    }

    /// One transaction at the clock's reading.
    fn tx<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> (R, Changes) {
        self.state.begin();
        let out = f(&mut self.state);
        (out, self.write())
    }

    fn later(&mut self, by: Duration) {
        let to = self.state.clock.now() + by;
        self.state.clock.skip_to(to);
    }

    /// Every armed deadline: by run id, or `schedule:` and the schedule id.
    fn armed(&self) -> BTreeSet<(String, Deadline)> {
        let mut armed = BTreeSet::new();
        for run_id in self.state.runs.ids() {
            for deadline in self.state.wheel.of_run(&run_id) {
                armed.insert((run_id.clone(), deadline));
            }
        }
        for (namespace, id) in self.state.schedules.keys() {
            if let Some(at) = self.state.wheel.of_schedule(&namespace, &id) {
                let deadline = Deadline {
                    at,
                    timer: RunTimer::FirstWorkflowTask,
                };
                armed.insert((format!("schedule:{id}"), deadline));
            }
        }
        armed
    }

    fn start(
        &mut self,
        id: &str,
        attrs: proto::history::WorkflowExecutionStartedEventAttributes,
    ) -> String {
        self.tx(|state| {
            state.start_workflow(StartWorkflow {
                namespace: "default".into(),
                workflow_id: id.into(),
                attrs: proto::history::WorkflowExecutionStartedEventAttributes {
                    workflow_type: Some(WorkflowType { name: "W".into() }),
                    task_queue: Some(TaskQueue {
                        name: id.into(),
                        ..Default::default()
                    }),
                    ..attrs
                },
                ..Default::default()
            })
        })
        .0
        .unwrap()
        .0
    }

    /// Takes workflow `id`'s task (from its own queue) and completes it with `commands`.
    fn take_task(&mut self, id: &str) -> (String, i64) {
        let task = self
            .tx(|state| state.dispatch_workflow_task("default", id, "worker"))
            .0
            .expect("a workflow task");
        let Token::Workflow { run, scheduled, .. } =
            Token::decode(&task.task_token, "default").unwrap()
        else {
            panic!("not a workflow token");
        };
        (run, scheduled)
    }

    fn run_task(&mut self, id: &str, commands: Vec<Cmd>) {
        let (run_id, scheduled) = self.take_task(id);
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
        self.tx(|state| state.complete_workflow_task(&run_id, scheduled, request))
            .0
            .unwrap();
    }

    /// Starts the first activity attempt queued on workflow `id`'s queue.
    fn take_activity(&mut self, id: &str) -> Token {
        let task = self
            .tx(|state| state.dispatch_activity_task("default", id, "worker"))
            .0
            .expect("an activity task");
        Token::decode(&task.task_token, "default").unwrap()
    }
}

fn secs(n: u64) -> Option<prost_wkt_types::Duration> {
    Some(proto::proto_duration(Duration::from_secs(n)))
}

fn temp_db(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("capstan-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm", "-lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn event_time(events: &EventLog) -> Option<SystemTime> {
    proto::system_time(events.last()?.event_time.as_ref())
}

/// One workflow (or schedule) waiting in each way a run can wait.
fn every_kind_of_wait(engine: &mut Durable) {
    let activity = |id: &str| ScheduleActivityTaskCommandAttributes {
        activity_id: id.into(),
        activity_type: Some(ActivityType { name: "a".into() }),
        start_to_close_timeout: secs(60),
        ..Default::default()
    };
    // A start delay, with a run timeout that counts from its end.
    engine.start(
        "delayed",
        proto::history::WorkflowExecutionStartedEventAttributes {
            first_workflow_task_backoff: secs(45),
            workflow_run_timeout: secs(60),
            ..Default::default()
        },
    );
    // A cron wait.
    engine.start(
        "cron",
        proto::history::WorkflowExecutionStartedEventAttributes {
            cron_schedule: "*/5 * * * *".into(),
            ..Default::default()
        },
    );
    engine.later(Duration::from_secs(1));
    // A failed run waiting for its retry, whose run timeout counts from the retry.
    engine.start(
        "retried",
        proto::history::WorkflowExecutionStartedEventAttributes {
            retry_policy: Some(RetryPolicy {
                initial_interval: secs(30),
                maximum_attempts: 3,
                ..Default::default()
            }),
            workflow_run_timeout: secs(100),
            ..Default::default()
        },
    );
    engine.run_task(
        "retried",
        vec![Cmd::FailWorkflowExecutionCommandAttributes(
            FailWorkflowExecutionCommandAttributes {
                failure: Some(Failure {
                    message: "boom".into(),
                    ..Default::default()
                }),
            },
        )],
    );
    engine.later(Duration::from_secs(1));
    // A workflow task a worker holds.
    engine.start("held", Default::default());
    engine.take_task("held");
    engine.later(Duration::from_secs(1));
    // A user timer.
    engine.start("timer", Default::default());
    engine.run_task(
        "timer",
        vec![Cmd::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: "t".into(),
                start_to_fire_timeout: secs(90),
            },
        )],
    );
    // A running activity with a heartbeat timeout, one heartbeat in.
    engine.start("heartbeat", Default::default());
    engine.run_task(
        "heartbeat",
        vec![Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                heartbeat_timeout: secs(10),
                schedule_to_close_timeout: secs(120),
                retry_policy: Some(RetryPolicy {
                    maximum_attempts: 1,
                    ..Default::default()
                }),
                ..activity("beating")
            },
        )],
    );
    let token = engine.take_activity("heartbeat");
    engine.later(Duration::from_secs(2));
    let Token::Activity { run, scheduled, .. } = token else {
        panic!("not an activity token")
    };
    engine.tx(|state| state.with_run(&run, |run, ctx| run.record_heartbeat(ctx, scheduled, None)));
    engine.later(Duration::from_secs(1));
    // An activity waiting for its retry.
    engine.start("backoff", Default::default());
    engine.run_task(
        "backoff",
        vec![Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                retry_policy: Some(RetryPolicy {
                    initial_interval: secs(20),
                    ..Default::default()
                }),
                ..activity("failing")
            },
        )],
    );
    let Token::Activity { run, scheduled, .. } = engine.take_activity("backoff") else {
        panic!("not an activity token")
    };
    let failure = Failure {
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo::default(),
        )),
        ..Default::default()
    };
    engine.tx(|state| {
        state.with_run(&run, |run, ctx| {
            run.fail_activity(ctx, scheduled, failure, None, "worker".into())
        })
    });
    // An activity no worker takes, waiting for its schedule-to-start timeout.
    engine.start("unpolled", Default::default());
    engine.run_task(
        "unpolled",
        vec![Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                schedule_to_start_timeout: secs(40),
                ..activity("waiting")
            },
        )],
    );
    // A schedule's next action.
    engine
        .tx(|state| {
            state.create_schedule(NewSchedule {
                namespace: "default".into(),
                id: "hourly".into(),
                schedule: Schedule {
                    spec: Some(ScheduleSpec {
                        interval: vec![IntervalSpec {
                            interval: secs(3600),
                            phase: None,
                        }],
                        ..Default::default()
                    }),
                    action: Some(ScheduleAction {
                        action: Some(Action::StartWorkflow(NewWorkflowExecutionInfo {
                            workflow_id: "scheduled".into(),
                            workflow_type: Some(WorkflowType { name: "W".into() }),
                            task_queue: Some(TaskQueue {
                                name: "scheduled".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                },
                initial_patch: None,
                memo: None,
                search_attributes: None,
            })
        })
        .0
        .unwrap();
}

#[test]
fn a_restart_arms_the_same_deadlines_and_each_fires_at_its_instant() {
    let path = temp_db("deadlines");
    // Not on a five-minute boundary, so that the cron wait is a wait.
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_150);
    let mut engine = Durable::open(&path, t0);
    every_kind_of_wait(&mut engine);
    let before = engine.armed();
    let now = engine.state.clock.now();
    drop(engine);

    let mut engine = Durable::open(&path, now);
    let after = engine.armed();
    assert_eq!(before, after, "a restart changed the deadlines");
    let kinds: BTreeSet<String> = before
        .iter()
        .map(
            |(owner, d)| match (owner.strip_prefix("schedule:"), &d.timer) {
                (Some(_), _) => "Schedule".to_owned(),
                (None, RunTimer::ActivityTimeout { timeout, .. }) => format!("Activity{timeout:?}"),
                (None, timer) => format!("{timer:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_owned(),
            },
        )
        .collect();
    for kind in [
        "FirstWorkflowTask",
        "RunTimeout",
        "WorkflowTaskTimeout",
        "UserTimer",
        "ActivityHeartbeat",
        "ActivityStartToClose",
        "ActivityScheduleToStart",
        "ActivityScheduleToClose",
        "ActivityRetry",
        "Schedule",
    ] {
        assert!(kinds.contains(kind), "no {kind} deadline among {kinds:?}");
    }
    // The run timeout of a delayed start counts from the end of its delay.
    let delayed = engine.state.current[&("default".to_owned(), "delayed".to_owned())].clone();
    assert!(before.contains(&(
        delayed,
        Deadline {
            at: t0 + Duration::from_secs(105),
            timer: RunTimer::RunTimeout
        }
    )));

    let mut in_time_order: Vec<_> = before.iter().collect();
    in_time_order.sort_by_key(|(_, d)| d.at);
    let mut fired = 0;
    for (owner, deadline) in in_time_order {
        let schedule: Option<Key> = owner
            .strip_prefix("schedule:")
            .map(|id| ("default".to_owned(), id.to_owned()));
        // Another deadline that fired first may have made this one moot (a timed-out
        // activity has no start-to-close timeout left).
        if !engine.armed().contains(&(owner.clone(), deadline.clone())) {
            continue;
        }
        let touched = |changes: &Changes| match &schedule {
            Some(key) => changes.schedules.contains(key),
            None => changes.runs.contains(owner),
        };
        engine
            .state
            .clock
            .skip_to(deadline.at - Duration::from_millis(1));
        let (_, early) = engine.tx(State::fire_due);
        assert!(!touched(&early), "{owner} {deadline:?} fired early");
        let written = schedule
            .is_none()
            .then(|| engine.state.runs[owner].events.len());
        engine.state.clock.skip_to(deadline.at);
        let (_, on_time) = engine.tx(State::fire_due);
        assert!(touched(&on_time), "{owner} {deadline:?} did not fire");
        if let Some(written) = written {
            // What firing wrote is stamped with the deadline's instant.
            let run = &engine.state.runs[owner];
            let writes = !matches!(deadline.timer, RunTimer::ActivityRetry { .. });
            assert_eq!(run.events.len() > written, writes, "{owner} {deadline:?}");
            if writes {
                assert_eq!(
                    event_time(&run.events),
                    Some(deadline.at),
                    "{owner} {deadline:?}"
                );
            }
        }
        fired += 1;
    }
    assert!(fired >= 9, "only {fired} deadlines fired");
    drop(engine);
    for suffix in ["", "-wal", "-shm", "-lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A store in memory on a clock that stands at a fixed instant.
fn memory_store() -> std::sync::Arc<super::Store> {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    std::sync::Arc::new(
        super::Store::open(
            &["default".to_owned()],
            Clock::Manual(t0),
            Config::default(),
            None,
        )
        .unwrap(),
    )
}

/// Starts workflow `id` on queue `id` and completes its first task with a 60 s timer.
async fn start_with_timer(store: &super::Store, id: &str) -> String {
    store
        .transaction(|state| {
            state
                .start_workflow(StartWorkflow {
                    namespace: "default".into(),
                    workflow_id: id.into(),
                    attrs: proto::history::WorkflowExecutionStartedEventAttributes {
                        workflow_type: Some(WorkflowType { name: "W".into() }),
                        task_queue: Some(TaskQueue {
                            name: id.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .unwrap();
            let task = state
                .dispatch_workflow_task("default", id, "worker")
                .unwrap();
            let Token::Workflow { run, scheduled, .. } =
                Token::decode(&task.task_token, "default").unwrap()
            else {
                panic!("not a workflow token");
            };
            let timer = Command {
                attributes: Some(Cmd::StartTimerCommandAttributes(
                    StartTimerCommandAttributes {
                        timer_id: "t".into(),
                        start_to_fire_timeout: secs(60),
                    },
                )),
                ..Default::default()
            };
            let request = RespondWorkflowTaskCompletedRequest {
                commands: vec![timer],
                ..Default::default()
            };
            state
                .complete_workflow_task(&run, scheduled, request)
                .unwrap();
            run
        })
        .await
}

#[tokio::test]
async fn a_failed_transaction_leaves_nothing_behind() {
    let store = memory_store();
    store
        .transaction(|state| {
            state.start_workflow(StartWorkflow {
                namespace: "default".into(),
                workflow_id: "kept".into(),
                attrs: proto::history::WorkflowExecutionStartedEventAttributes {
                    workflow_type: Some(WorkflowType { name: "W".into() }),
                    task_queue: Some(TaskQueue {
                        name: "q".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            })
        })
        .await
        .unwrap();
    let before = store
        .transaction(|state| {
            let run = &state.runs[&state.current[&("default".to_owned(), "kept".to_owned())]];
            (
                run.events.len(),
                state.started.len(),
                state.runs.ids().len(),
            )
        })
        .await;
    // A transaction that takes the task, starts another workflow, signals, registers a
    // namespace, then fails.
    let failed = store
        .try_transaction(|state| {
            let task = state.dispatch_workflow_task("default", "q", "worker");
            assert!(task.is_some());
            let kept = state.current[&("default".to_owned(), "kept".to_owned())].clone();
            state.with_run(&kept, |run, ctx| run.signal(ctx, "", Default::default()));
            state.start_run(crate::run::StartRun {
                namespace: "default".into(),
                workflow_id: "ghost".into(),
                ..Default::default()
            });
            state.register_namespace("ghost-namespace");
            panic!("a bug");
        })
        .await;
    assert_eq!(failed.err().map(|f| f.message), Some("a bug".to_owned()));
    let after = store
        .transaction(|state| {
            let run = &state.runs[&state.current[&("default".to_owned(), "kept".to_owned())]];
            assert!(
                run.wft.as_ref().unwrap().started_event_id.is_none(),
                "the task is started"
            );
            assert!(!state
                .current
                .contains_key(&("default".to_owned(), "ghost".to_owned())));
            assert!(!state.namespaces.contains_key("ghost-namespace"));
            (
                run.events.len(),
                state.started.len(),
                state.runs.ids().len(),
            )
        })
        .await;
    assert_eq!(before, after);
    // The task it took is queued again.
    let task = store
        .transaction(|state| state.dispatch_workflow_task("default", "q", "worker"))
        .await;
    assert!(task.is_some());
}

#[tokio::test]
async fn a_deadline_whose_firing_fails_is_set_aside_and_the_others_fire() {
    let store = memory_store();
    let bad = start_with_timer(&store, "bad").await;
    let good = start_with_timer(&store, "good").await;
    store
        .transaction(|state| {
            state.fail_firing = Some(bad.clone());
            let later = state.clock.now() + Duration::from_secs(61);
            state.clock.skip_to(later);
        })
        .await;
    let service = tokio::spawn(crate::timer_service::run(store.clone()));
    let fired = |run: String| {
        let store = store.clone();
        async move {
            store
                .transaction(|state| state.runs[&run].last_event())
                .await
                .map(|a| crate::event_log::event_type(&a))
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fired(good.clone()).await != Some(proto::enums::EventType::WorkflowTaskScheduled) {
        assert!(
            std::time::Instant::now() < deadline,
            "the good timer never fired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, reason) = store
        .transaction(|state| {
            let run = &state.runs[&bad];
            let reason = match run.last_event() {
                Some(proto::history::history_event::Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => a.reason,
                other => format!("{other:?}"),
            };
            (run.status, reason)
        })
        .await;
    assert_eq!(status, proto::enums::WorkflowExecutionStatus::Terminated);
    assert!(reason.contains("injected fault"), "{reason}");
    // The service goes on: a later timer fires.
    let later = start_with_timer(&store, "later").await;
    store
        .transaction(|state| {
            let later = state.clock.now() + Duration::from_secs(61);
            state.clock.skip_to(later);
        })
        .await;
    store.timer_wake().notify_one();
    while fired(later.clone()).await != Some(proto::enums::EventType::WorkflowTaskScheduled) {
        assert!(
            std::time::Instant::now() < deadline,
            "the timer service stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.close();
    service.await.unwrap();
}

/// A durable store on `path`, or why it did not open.
fn open_store(path: &Path) -> Result<super::Store, String> {
    super::Store::open(
        &["default".to_owned()],
        Clock::Manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        Config::default(),
        Some(path),
    )
    .map_err(|e| e.to_string())
}

/// The value of integer pragma `name` in the file at `path`.
fn pragma(path: &Path, name: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, name, |r| r.get(0))
        .unwrap()
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn a_second_store_on_one_file_is_refused_until_the_first_is_gone() {
    let path = temp_db("owned");
    let first = open_store(&path).unwrap();
    let refused = open_store(&path).err().expect("a second store is refused");
    assert!(
        refused.contains(&format!("{}-lock", path.display())),
        "names the file: {refused}"
    );
    assert!(
        refused.contains(&format!("pid {}", std::process::id())),
        "names the holder: {refused}"
    );
    assert!(refused.contains("another engine has it open"), "{refused}");

    // Closed (as the engine shuts down): the file is free, though the store lives on.
    first.close_db();
    let second = open_store(&path).unwrap();
    drop(first);
    // Dropped: free as well.
    drop(second);
    let third = open_store(&path).unwrap();
    drop(third);

    // A lock file left by a process that died (its lock died with it) blocks nobody.
    std::fs::write(
        format!("{}-lock", path.display()),
        "pid=999999\nhost=elsewhere\nsince=2001-01-01T00:00:00Z\n",
    )
    .unwrap();
    drop(open_store(&path).unwrap());
    remove_db(&path);
}

#[test]
fn a_sqlite_file_of_another_application_is_refused_and_left_unchanged() {
    let path = temp_db("foreign");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (x); CREATE TABLE events (y); CREATE TABLE invoices (z);
             INSERT INTO invoices VALUES (1);",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let refused = open_store(&path).err().expect("refused");
    assert!(
        refused.contains("not a Capstan engine database")
            && refused.contains("`invoices`")
            && refused.contains("left unchanged"),
        "{refused}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    assert!(
        !Path::new(&format!("{}-lock", path.display())).exists(),
        "a lock file was left beside someone else's database"
    );

    // Another application's id, even without tables.
    remove_db(&path);
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA application_id = 1234; CREATE TABLE t (x);")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let refused = open_store(&path).err().expect("refused");
    assert!(
        refused.contains("not a Capstan engine database")
            && refused.contains("application id is 0x000004d2"),
        "{refused}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");

    // Not SQLite at all.
    remove_db(&path);
    std::fs::write(&path, "name,amount\nrent,1200\n").unwrap();
    let refused = open_store(&path).err().expect("refused");
    assert!(refused.contains("not a SQLite database"), "{refused}");
    assert_eq!(std::fs::read(&path).unwrap(), b"name,amount\nrent,1200\n");
    remove_db(&path);

    // An empty file is a new database.
    std::fs::write(&path, "").unwrap();
    drop(open_store(&path).unwrap());
    assert_eq!(
        pragma(&path, "application_id"),
        i64::from(durable::APPLICATION_ID)
    );
    assert_eq!(pragma(&path, "user_version"), 5);
    remove_db(&path);
}

#[test]
fn a_file_of_schema_version_2_without_application_id_opens_and_is_stamped() {
    let path = temp_db("legacy");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut engine = Durable::open(&path, t0);
    let run_id = engine.start("old", Default::default());
    let history = engine.state.runs[&run_id].events.to_vec();
    drop(engine);
    // As version 2 wrote it: no application id.
    downgrade_to_version_2(&path);

    let engine = Durable::open(&path, t0);
    assert_eq!(engine.state.runs[&run_id].events.to_vec(), history);
    drop(engine);
    assert_eq!(
        pragma(&path, "application_id"),
        i64::from(durable::APPLICATION_ID)
    );
    assert_eq!(pragma(&path, "user_version"), 5);
    remove_db(&path);
}

#[test]
fn custom_search_attributes_are_written_and_an_undone_change_is_not() {
    use crate::search_attributes::Type;
    let path = temp_db("search-attributes");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut engine = Durable::open(&path, t0);
    let added = [("Color", Type::Keyword), ("Size", Type::Int)]
        .map(|(name, kind)| (name.to_owned(), kind as i32))
        .into();
    let (added, changes) = engine
        .tx(|state| state.change_search_attributes("default", |custom| custom.add(&added, 10)));
    added.unwrap();
    assert_eq!(
        changes.search_attributes,
        BTreeSet::from(["default".to_owned()])
    );
    let (removed, _) = engine.tx(|state| {
        state.change_search_attributes("default", |custom| custom.remove(&["Size".to_owned()]))
    });
    removed.unwrap();
    // A transaction that fails after changing them changes nothing.
    engine.state.begin();
    let extra = [("Extra".to_owned(), Type::Bool as i32)].into();
    engine
        .state
        .change_search_attributes("default", |custom| custom.add(&extra, 10))
        .unwrap();
    engine.state.roll_back();
    let changes = engine.write();
    assert!(changes.search_attributes.is_empty());
    drop(engine);

    let engine = Durable::open(&path, t0);
    let types = engine.state.namespaces["default"].search_attributes.types();
    assert_eq!(
        types,
        [("Color".to_owned(), Type::Keyword as i32)].into(),
        "what the file holds"
    );
    drop(engine);
    remove_db(&path);
}

/// A payload of `n` bytes.
fn payload(n: usize) -> Option<proto::common::Payloads> {
    Some(proto::common::Payloads {
        payloads: vec![proto::common::Payload {
            data: vec![7; n],
            ..Default::default()
        }],
    })
}

/// Signals run `run_id` in a transaction of its own; returns the bytes that it wrote.
fn signal(engine: &mut Durable, run_id: &str, name: &str) -> usize {
    engine.state.begin();
    engine.state.with_run(run_id, |run, ctx| {
        run.signal(
            ctx,
            "",
            proto::history::WorkflowExecutionSignaledEventAttributes {
                signal_name: name.to_owned(),
                input: payload(100),
                ..Default::default()
            },
        )
    });
    engine.write_measured().1
}

#[test]
fn a_signal_writes_what_changed_whatever_the_input_and_the_buffer_hold() {
    let path = temp_db("incremental");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut engine = Durable::open(&path, t0);
    let run_id = engine.start(
        "big",
        proto::history::WorkflowExecutionStartedEventAttributes {
            input: payload(1 << 20),
            ..Default::default()
        },
    );
    let idle = signal(&mut engine, &run_id, "first");
    assert!(
        idle < 8 * 1024,
        "a signal to a run with a 1 MiB input wrote {idle} bytes"
    );

    // A task started: signals are buffered, and each writes only itself.
    engine.take_task("big");
    let first = signal(&mut engine, &run_id, "buffered");
    assert!(
        first < 8 * 1024,
        "the 1st buffered signal wrote {first} bytes"
    );
    for _ in 0..300 {
        signal(&mut engine, &run_id, "buffered");
    }
    let last = signal(&mut engine, &run_id, "buffered");
    assert_eq!(engine.state.runs[&run_id].buffered.len(), 302);
    assert!(
        last <= first + 16,
        "the 302nd buffered signal wrote {last} bytes, the 1st {first}"
    );
    drop(engine);
    remove_db(&path);
}

/// What of a run and its queue a restart must restore.
fn snapshot(engine: &mut Durable, run_id: &str, queue: &str) -> String {
    let tasks = engine
        .state
        .queues
        .get_mut("default", queue)
        .map(|q| q.workflow.clone())
        .unwrap_or_default();
    let run = &engine.state.runs[run_id];
    // Maps encode in no fixed order: compared sorted.
    let mut state: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&serde_json::to_string(run).unwrap()).unwrap();
    state.remove("memo");
    state.remove("search_attributes");
    let memo: Option<std::collections::BTreeMap<_, _>> =
        run.memo.as_ref().map(|m| m.fields.iter().collect());
    let search: Option<std::collections::BTreeMap<_, _>> = run
        .search_attributes
        .as_ref()
        .map(|s| s.indexed_fields.iter().collect());
    format!(
        "state {state:?}\nmemo {memo:?}\nsearch {search:?}\nstarted {:?}\nbuffered {:?}\nevents {:?}\ntasks {tasks:?}\narmed {:?}",
        run.started,
        run.buffered.entries().collect::<Vec<_>>(),
        run.events.to_vec(),
        engine.armed(),
    )
}

/// Rewrites a version 4 file as version 2 wrote it: each run's started attributes and
/// buffered events inside its state, no `buffered` table, no checksums, no application id.
fn downgrade_to_version_2(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let runs: Vec<(String, String, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT r.run_id, r.state, e.event FROM runs r JOIN events e ON e.run_id = r.run_id AND e.event_id = 1")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for (run_id, json, first) in runs {
        let mut state: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&json).unwrap();
        let Some(
            proto::history::history_event::Attributes::WorkflowExecutionStartedEventAttributes(
                mut started,
            ),
        ) = <proto::history::HistoryEvent as prost::Message>::decode(first.as_slice())
            .unwrap()
            .attributes
        else {
            panic!("event 1 is not a started event");
        };
        let memo = state.remove("memo").unwrap();
        let search = state.remove("search_attributes").unwrap();
        let decode = |v: serde_json::Value| v.as_str().map(|hex| crate::pb::unhex(hex).unwrap());
        started.memo = decode(memo)
            .map(|b| <proto::common::Memo as prost::Message>::decode(b.as_slice()).unwrap());
        started.search_attributes = decode(search).map(|b| {
            <proto::common::SearchAttributes as prost::Message>::decode(b.as_slice()).unwrap()
        });
        state.insert(
            "started".into(),
            crate::pb::hex(&prost::Message::encode_to_vec(&started)).into(),
        );
        let buffered: Vec<serde_json::Value> = {
            let mut stmt = conn
                .prepare("SELECT event FROM buffered WHERE run_id = ?1 ORDER BY seq")
                .unwrap();
            let rows = stmt
                .query_map([&run_id], |r| r.get::<_, Vec<u8>>(0))
                .unwrap();
            rows.map(|b| crate::pb::hex(&b.unwrap()).into()).collect()
        };
        state.insert("buffered".into(), buffered.into());
        conn.execute(
            "UPDATE runs SET state = ?2 WHERE run_id = ?1",
            rusqlite::params![run_id, serde_json::to_string(&state).unwrap()],
        )
        .unwrap();
    }
    conn.execute_batch(
        "DROP TABLE buffered; DROP TABLE search_attributes; ALTER TABLE runs DROP COLUMN crc; ALTER TABLE events DROP COLUMN crc;
         PRAGMA user_version = 2; PRAGMA application_id = 0;",
    )
    .unwrap();
}

#[test]
fn a_restart_with_buffered_signals_and_a_large_input_restores_the_same_run() {
    let path = temp_db("buffered-restart");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut engine = Durable::open(&path, t0);
    let run_id = engine.start(
        "big",
        proto::history::WorkflowExecutionStartedEventAttributes {
            input: payload(4 << 20),
            memo: Some(proto::common::Memo {
                fields: [("origin".to_owned(), proto::common::Payload::default())].into(),
            }),
            ..Default::default()
        },
    );
    // The workflow changes its memo: the run's memo is no longer the started event's.
    engine.run_task(
        "big",
        vec![Cmd::ModifyWorkflowPropertiesCommandAttributes(
            ModifyWorkflowPropertiesCommandAttributes {
                upserted_memo: Some(proto::common::Memo {
                    fields: [("stage".to_owned(), proto::common::Payload::default())].into(),
                }),
            },
        )],
    );
    signal(&mut engine, &run_id, "wake");
    let (_, scheduled) = engine.take_task("big");
    for i in 0..20 {
        signal(&mut engine, &run_id, &format!("buffered-{i}"));
    }
    let before = snapshot(&mut engine, &run_id, "big");
    assert!(before.contains("buffered-19"));
    drop(engine);

    let mut engine = Durable::open(&path, t0);
    assert_eq!(snapshot(&mut engine, &run_id, "big"), before);
    drop(engine);

    // The same file as version 2 wrote it is migrated to the same run.
    downgrade_to_version_2(&path);
    let mut engine = Durable::open(&path, t0);
    assert_eq!(snapshot(&mut engine, &run_id, "big"), before);

    // The task completes: the buffered signals reach the history, and leave the buffer
    // on disk too.
    engine
        .tx(|state| state.complete_workflow_task(&run_id, scheduled, Default::default()))
        .0
        .unwrap();
    let after = snapshot(&mut engine, &run_id, "big");
    assert!(engine.state.runs[&run_id].buffered.is_empty());
    drop(engine);
    let mut engine = Durable::open(&path, t0);
    assert_eq!(snapshot(&mut engine, &run_id, "big"), after);
    let buffered_rows: i64 = engine
        .conn
        .query_row("SELECT count(*) FROM buffered", [], |r| r.get(0))
        .unwrap();
    assert_eq!(buffered_rows, 0);
    drop(engine);
    remove_db(&path);
}

#[test]
fn a_run_whose_state_does_not_decode_is_set_aside_and_the_others_load() {
    let path = temp_db("undecodable");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut engine = Durable::open(&path, t0);
    let broken = engine.start("broken", Default::default());
    let kept = engine.start("kept", Default::default());
    drop(engine);
    // A row of a file written before checksums (none to check), then truncated.
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE runs SET state = '{\"status\":', crc = NULL WHERE run_id = ?1",
        [&broken],
    )
    .unwrap();
    drop(conn);

    let engine = Durable::open(&path, t0);
    assert!(engine.state.runs.get(&kept).is_some());
    assert!(engine.state.runs.get(&broken).is_none());
    let damaged = engine.state.damaged.run(&broken).expect("set aside");
    assert!(damaged.what.starts_with("its state "), "{}", damaged.what);
    assert_eq!(
        engine
            .state
            .damaged
            .latest("default", "broken")
            .map(|d| &d.run_id),
        Some(&broken)
    );
    drop(engine);
    remove_db(&path);
}

#[test]
fn a_clock_that_reads_earlier_holds_time_still_until_it_catches_up() {
    let path = temp_db("clock-back");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let hour = Duration::from_secs(3600);
    let mut engine = Durable::open(&path, t0);
    let run_id = engine.start("w", Default::default());
    signal(&mut engine, &run_id, "at-t0");
    // The wall clock steps back an hour while the engine runs...
    engine.state.clock = Clock::Manual(t0 - hour);
    signal(&mut engine, &run_id, "stepped-back");
    assert_eq!(event_time(&engine.state.runs[&run_id].events), Some(t0));
    drop(engine);
    // ... and reads earlier still when it restarts.
    let mut engine = Durable::open(&path, t0 - 2 * hour);
    signal(&mut engine, &run_id, "after-restart");
    assert_eq!(event_time(&engine.state.runs[&run_id].events), Some(t0));
    // Once the clock has caught up, time flows again.
    engine.state.clock = Clock::Manual(t0 + Duration::from_secs(5));
    signal(&mut engine, &run_id, "caught-up");
    assert_eq!(
        event_time(&engine.state.runs[&run_id].events),
        Some(t0 + Duration::from_secs(5))
    );
    drop(engine);
    remove_db(&path);
}

#[test]
fn a_reset_run_and_the_run_it_replaced_are_restored_after_a_restart() {
    let path = temp_db("reset-restart");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut engine = Durable::open(&path, t0);
    let base = engine.start("reset", Default::default());
    // 1-6: a timer and an activity; 7-10: a signal and its task; then another signal.
    engine.run_task(
        "reset",
        vec![
            Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: "t".into(),
                start_to_fire_timeout: secs(600),
            }),
            Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                activity_id: "a".into(),
                activity_type: Some(ActivityType { name: "a".into() }),
                start_to_close_timeout: secs(60),
                ..Default::default()
            }),
        ],
    );
    signal(&mut engine, &base, "first");
    engine.later(Duration::from_secs(5));
    engine.run_task("reset", Vec::new());
    signal(&mut engine, &base, "second");
    engine.later(Duration::from_secs(5));
    let reset = crate::run::Reset {
        reason: "because".into(),
        request_id: "reset".into(),
        finish_event_id: 10,
        reapply: crate::run::Reapply::from_request(0, &[]),
    };
    let execution = proto::common::WorkflowExecution {
        workflow_id: "reset".into(),
        run_id: base.clone(),
    };
    let (new, _) = engine.tx(|state| state.reset_workflow("default", Some(&execution), reset));
    let new = new.expect("the reset is taken");
    let before = (
        snapshot(&mut engine, &base, "reset"),
        snapshot(&mut engine, &new, "reset"),
    );
    assert!(
        before.0.contains(&new),
        "the base names the run that reset it"
    );
    drop(engine);

    let mut engine = Durable::open(&path, t0 + Duration::from_secs(10));
    let after = (
        snapshot(&mut engine, &base, "reset"),
        snapshot(&mut engine, &new, "reset"),
    );
    assert_eq!(after, before);
    assert_eq!(
        engine.state.current[&("default".into(), "reset".into())],
        new
    );
    drop(engine);
    remove_db(&path);
}
