//! Schedules: start workflows on intervals, cron expressions or calendars, managed by the
//! server (Temporal's, or the embedded engine's scheduler).
//!
//! ```no_run
//! # use std::time::Duration;
//! # use capstan::client::schedule::{ScheduleAction, ScheduleSpec};
//! # async fn demo(client: capstan::Client) -> Result<(), capstan::ClientError> {
//! let action = ScheduleAction::start_workflow_by_name("Report", "daily-report", (), "reports");
//! let schedule = client
//!     .create_schedule("daily-report", action, ScheduleSpec::cron("0 9 * * MON-FRI"))
//!     .await?;
//! schedule.pause("holiday").await?;
//! # Ok(()) }
//! ```

use std::time::{Duration, SystemTime};

use temporalio_common::protos::temporal::api::{
    common::v1::{Payloads, WorkflowType},
    enums::v1::ScheduleOverlapPolicy,
    schedule::v1::{
        self as proto, schedule_action::Action, BackfillRequest, CalendarSpec, IntervalSpec,
        SchedulePatch, ScheduleState, TriggerImmediatelyRequest,
    },
    taskqueue::v1::TaskQueue,
    workflow::v1::NewWorkflowExecutionInfo,
    workflowservice::v1::{
        CreateScheduleRequest, DeleteScheduleRequest, DescribeScheduleRequest,
        ListSchedulesRequest, PatchScheduleRequest, UpdateScheduleRequest,
    },
};

use super::{Client, ClientError};
use crate::{
    converter::{Args, PayloadError},
    definition::WorkflowDefinition,
};

/// When a schedule acts: intervals, cron expressions and calendars (any of them matching
/// triggers an action), optionally bounded and jittered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScheduleSpec(proto::ScheduleSpec);

impl ScheduleSpec {
    /// Every `every`, aligned to the Unix epoch.
    pub fn interval(every: Duration) -> Self {
        Self::default().and_interval(every, Duration::ZERO)
    }

    /// A cron expression, as Temporal reads them: `"0 9 * * MON-FRI"`, `"@hourly"`,
    /// optionally with `CRON_TZ=Zone` in front.
    pub fn cron(expression: impl Into<String>) -> Self {
        Self::default().and_cron(expression)
    }

    /// A calendar: fields as Temporal's calendar specs (`hour: "9"`, `day_of_week:
    /// "MON-FRI"`, ranges and lists allowed); empty fields mean their default (`*` for
    /// day, month, year and day of week; `0` for second, minute and hour).
    pub fn calendar(spec: Calendar) -> Self {
        Self::default().and_calendar(spec)
    }

    /// Also every `every`, shifted by `phase`.
    pub fn and_interval(mut self, every: Duration, phase: Duration) -> Self {
        self.0.interval.push(IntervalSpec {
            interval: every.try_into().ok(),
            phase: phase.try_into().ok(),
        });
        self
    }

    /// Also on a cron expression.
    pub fn and_cron(mut self, expression: impl Into<String>) -> Self {
        self.0.cron_string.push(expression.into());
        self
    }

    /// Also on a calendar.
    pub fn and_calendar(mut self, spec: Calendar) -> Self {
        self.0.calendar.push(spec.into_proto());
        self
    }

    /// No action before `at`.
    pub fn starting_at(mut self, at: SystemTime) -> Self {
        self.0.start_time = Some(at.into());
        self
    }

    /// No action after `at`.
    pub fn ending_at(mut self, at: SystemTime) -> Self {
        self.0.end_time = Some(at.into());
        self
    }

    /// Delays each action by a random amount up to `jitter`.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.0.jitter = jitter.try_into().ok();
        self
    }

    /// The time zone of cron expressions and calendars (an IANA name; default UTC).
    pub fn time_zone(mut self, name: impl Into<String>) -> Self {
        self.0.timezone_name = name.into();
        self
    }

    /// The intervals, as `(every, phase)`.
    pub fn intervals(&self) -> Vec<(Duration, Duration)> {
        self.0
            .interval
            .iter()
            .map(|i| (duration(i.interval), duration(i.phase)))
            .collect()
    }

    /// The proto, for fields this type does not wrap.
    pub fn as_proto(&self) -> &proto::ScheduleSpec {
        &self.0
    }
}

fn duration(d: Option<prost_wkt_types::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default()
}

fn time(t: Option<prost_wkt_types::Timestamp>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(t).ok())
}

/// A calendar for [`ScheduleSpec::calendar`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Seconds (`"0"` when empty).
    pub second: String,
    /// Minutes (`"0"` when empty).
    pub minute: String,
    /// Hours (`"0"` when empty).
    pub hour: String,
    /// Days of the month (`"*"` when empty).
    pub day_of_month: String,
    /// Months, `"1"`–`"12"` or `"JAN"`… (`"*"` when empty).
    pub month: String,
    /// Years (`"*"` when empty).
    pub year: String,
    /// Days of the week, `"0"`–`"6"` or `"MON-FRI"`… (`"*"` when empty).
    pub day_of_week: String,
}

impl Calendar {
    fn into_proto(self) -> CalendarSpec {
        CalendarSpec {
            second: self.second,
            minute: self.minute,
            hour: self.hour,
            day_of_month: self.day_of_month,
            month: self.month,
            year: self.year,
            day_of_week: self.day_of_week,
            comment: String::new(),
        }
    }
}

/// What happens when an action is due while the previous one still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// Skip the new action (the server's default).
    #[default]
    Skip,
    /// Start it once the running one ends; keep at most one waiting.
    BufferOne,
    /// Start them all, one after the other.
    BufferAll,
    /// Cancel the running workflow, then start.
    CancelOther,
    /// Terminate the running workflow, then start.
    TerminateOther,
    /// Start regardless: runs overlap.
    AllowAll,
}

impl OverlapPolicy {
    fn proto(self) -> i32 {
        (match self {
            Self::Skip => ScheduleOverlapPolicy::Skip,
            Self::BufferOne => ScheduleOverlapPolicy::BufferOne,
            Self::BufferAll => ScheduleOverlapPolicy::BufferAll,
            Self::CancelOther => ScheduleOverlapPolicy::CancelOther,
            Self::TerminateOther => ScheduleOverlapPolicy::TerminateOther,
            Self::AllowAll => ScheduleOverlapPolicy::AllowAll,
        }) as i32
    }
}

/// What a schedule does when it fires: start a workflow (its id gets the action's time
/// appended by the server).
#[derive(Clone, Debug)]
pub struct ScheduleAction {
    info: NewWorkflowExecutionInfo,
    args: Result<Vec<crate::converter::Payload>, String>,
}

impl ScheduleAction {
    /// Starts workflow `W` with `input` on `task_queue`.
    pub fn start_workflow<W: WorkflowDefinition>(
        workflow_id: impl Into<String>,
        input: W::Input,
        task_queue: impl Into<String>,
    ) -> Self {
        Self::start_workflow_by_name(W::NAME, workflow_id, W::into_args(input), task_queue)
    }

    /// Starts a workflow by type name, for workflows written in any language.
    pub fn start_workflow_by_name<A: Args>(
        workflow_type: impl Into<String>,
        workflow_id: impl Into<String>,
        args: A,
        task_queue: impl Into<String>,
    ) -> Self {
        Self {
            info: NewWorkflowExecutionInfo {
                workflow_id: workflow_id.into(),
                workflow_type: Some(WorkflowType {
                    name: workflow_type.into(),
                }),
                task_queue: Some(TaskQueue {
                    name: task_queue.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            args: args.to_payloads().map_err(|e| e.to_string()),
        }
    }
}

/// Options of a new schedule beyond its action and spec.
#[derive(Clone, Debug, Default)]
pub struct ScheduleOptions {
    /// What to do when actions overlap.
    pub overlap: OverlapPolicy,
    /// How late a missed action (server down) may still run (server default: one year).
    pub catchup_window: Option<Duration>,
    /// Pause the schedule when a workflow it started fails.
    pub pause_on_failure: bool,
    /// Create it paused, with this note.
    pub paused: Option<String>,
    /// A note on an active schedule (ignored when `paused` is set).
    pub note: Option<String>,
    /// Run the action once right away.
    pub trigger_immediately: bool,
}

/// One action a schedule took.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleActionResult {
    /// When it was due.
    pub scheduled_at: Option<SystemTime>,
    /// When it happened.
    pub taken_at: Option<SystemTime>,
    /// The workflow it started.
    pub workflow_id: String,
    /// That workflow's run.
    pub run_id: String,
}

/// What [`ScheduleHandle::describe`] returns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScheduleDescription {
    /// When it acts.
    pub spec: ScheduleSpec,
    /// Whether it is paused.
    pub paused: bool,
    /// The note of the last pause or unpause.
    pub notes: String,
    /// Actions taken so far.
    pub action_count: i64,
    /// The latest actions, oldest first.
    pub recent_actions: Vec<ScheduleActionResult>,
    /// The next times it will act.
    pub next_action_times: Vec<SystemTime>,
    /// The overlap policy.
    pub overlap: i32,
    /// The workflows it started that are still running (their workflow ids).
    pub running_workflows: Vec<String>,
    /// Actions skipped because an earlier run was still open.
    pub overlap_skipped: i64,
    /// Actions waiting for the running workflows to close.
    pub buffer_size: i64,
    /// Actions dropped because the buffer was full (`BufferOne`).
    pub buffer_dropped: i64,
    /// Actions missed because they were older than the catch-up window.
    pub missed_catchup_window: i64,
    schedule: proto::Schedule,
    conflict_token: Vec<u8>,
}

/// A schedule on the server.
#[derive(Clone, Debug)]
pub struct ScheduleHandle {
    client: Client,
    schedule_id: String,
}

/// One schedule in [`Client::list_schedules`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScheduleSummary {
    /// Its id.
    pub schedule_id: String,
    /// The workflow type it starts.
    pub workflow_type: String,
    /// Whether it is paused.
    pub paused: bool,
}

impl Client {
    /// Creates a schedule that runs `action` on `spec`.
    pub async fn create_schedule(
        &self,
        schedule_id: impl Into<String>,
        action: ScheduleAction,
        spec: ScheduleSpec,
    ) -> Result<ScheduleHandle, ClientError> {
        self.create_schedule_with(schedule_id, action, spec, ScheduleOptions::default())
            .await
    }

    /// Creates a schedule with options (overlap policy, catch-up window, paused).
    pub async fn create_schedule_with(
        &self,
        schedule_id: impl Into<String>,
        action: ScheduleAction,
        spec: ScheduleSpec,
        options: ScheduleOptions,
    ) -> Result<ScheduleHandle, ClientError> {
        let schedule_id = schedule_id.into();
        let ScheduleAction { mut info, args } = action;
        let args = args.map_err(PayloadError::Codec)?;
        info.input = Some(Payloads {
            payloads: self.codecs().encode(args)?,
        });
        let schedule = proto::Schedule {
            spec: Some(spec.0),
            action: Some(proto::ScheduleAction {
                action: Some(Action::StartWorkflow(info)),
            }),
            policies: Some(proto::SchedulePolicies {
                overlap_policy: options.overlap.proto(),
                catchup_window: options.catchup_window.and_then(|d| d.try_into().ok()),
                pause_on_failure: options.pause_on_failure,
                keep_original_workflow_id: false,
            }),
            state: Some(ScheduleState {
                notes: options
                    .paused
                    .clone()
                    .or_else(|| options.note.clone())
                    .unwrap_or_default(),
                paused: options.paused.is_some(),
                ..Default::default()
            }),
        };
        let initial_patch = options.trigger_immediately.then(|| SchedulePatch {
            trigger_immediately: Some(TriggerImmediatelyRequest {
                overlap_policy: options.overlap.proto(),
                scheduled_time: None,
            }),
            ..Default::default()
        });
        let request = CreateScheduleRequest {
            namespace: self.namespace().to_owned(),
            schedule_id: schedule_id.clone(),
            schedule: Some(schedule),
            initial_patch,
            identity: self.identity().to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        self.call_retrying(|mut service| {
            let request = request.clone();
            async move { service.create_schedule(tonic::Request::new(request)).await }
        })
        .await
        .map_err(|s| ClientError::rpc("create schedule", &schedule_id, s))?;
        Ok(self.schedule_handle(schedule_id))
    }

    /// A handle to an existing schedule.
    pub fn schedule_handle(&self, schedule_id: impl Into<String>) -> ScheduleHandle {
        ScheduleHandle {
            client: self.clone(),
            schedule_id: schedule_id.into(),
        }
    }

    /// Every schedule of the namespace.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleSummary>, ClientError> {
        let mut out = Vec::new();
        let mut next_page_token = Vec::new();
        loop {
            let request = ListSchedulesRequest {
                namespace: self.namespace().to_owned(),
                maximum_page_size: 1000,
                next_page_token,
                query: String::new(),
            };
            let response = self
                .call_retrying(|mut service| {
                    let request = request.clone();
                    async move { service.list_schedules(tonic::Request::new(request)).await }
                })
                .await
                .map_err(|s| ClientError::rpc("list schedules", "", s))?;
            out.extend(response.schedules.into_iter().map(|entry| {
                let info = entry.info.unwrap_or_default();
                ScheduleSummary {
                    schedule_id: entry.schedule_id,
                    workflow_type: info.workflow_type.map(|t| t.name).unwrap_or_default(),
                    paused: info.paused,
                }
            }));
            if response.next_page_token.is_empty() {
                return Ok(out);
            }
            next_page_token = response.next_page_token;
        }
    }
}

impl ScheduleHandle {
    /// The schedule's id.
    pub fn schedule_id(&self) -> &str {
        &self.schedule_id
    }

    /// Its spec, state and recent and next actions.
    pub async fn describe(&self) -> Result<ScheduleDescription, ClientError> {
        let request = DescribeScheduleRequest {
            namespace: self.client.namespace().to_owned(),
            schedule_id: self.schedule_id.clone(),
        };
        let response = self
            .client
            .call_retrying(|mut service| {
                let request = request.clone();
                async move {
                    service
                        .describe_schedule(tonic::Request::new(request))
                        .await
                }
            })
            .await
            .map_err(|s| ClientError::rpc("describe schedule", &self.schedule_id, s))?;
        let schedule = response.schedule.unwrap_or_default();
        let info = response.info.unwrap_or_default();
        let state = schedule.state.clone().unwrap_or_default();
        Ok(ScheduleDescription {
            spec: ScheduleSpec(schedule.spec.clone().unwrap_or_default()),
            paused: state.paused,
            notes: state.notes,
            action_count: info.action_count,
            recent_actions: info
                .recent_actions
                .into_iter()
                .map(|a| {
                    let execution = a.start_workflow_result.unwrap_or_default();
                    ScheduleActionResult {
                        scheduled_at: time(a.schedule_time),
                        taken_at: time(a.actual_time),
                        workflow_id: execution.workflow_id,
                        run_id: execution.run_id,
                    }
                })
                .collect(),
            next_action_times: info
                .future_action_times
                .into_iter()
                .filter_map(|t| time(Some(t)))
                .collect(),
            overlap: schedule
                .policies
                .as_ref()
                .map(|p| p.overlap_policy)
                .unwrap_or_default(),
            running_workflows: info
                .running_workflows
                .into_iter()
                .map(|w| w.workflow_id)
                .collect(),
            overlap_skipped: info.overlap_skipped,
            buffer_size: info.buffer_size,
            buffer_dropped: info.buffer_dropped,
            missed_catchup_window: info.missed_catchup_window,
            schedule,
            conflict_token: response.conflict_token,
        })
    }

    /// Read-modify-write: `change` gets the current spec and returns the new one; the write
    /// fails if someone else changed the schedule in between (the conflict token).
    pub async fn update(
        &self,
        change: impl FnOnce(ScheduleSpec) -> ScheduleSpec,
    ) -> Result<(), ClientError> {
        let current = self.describe().await?;
        let mut schedule = current.schedule;
        schedule.spec = Some(change(current.spec).0);
        let request = UpdateScheduleRequest {
            namespace: self.client.namespace().to_owned(),
            schedule_id: self.schedule_id.clone(),
            schedule: Some(schedule),
            conflict_token: current.conflict_token,
            identity: self.client.identity().to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        self.client
            .call_retrying(|mut service| {
                let request = request.clone();
                async move { service.update_schedule(tonic::Request::new(request)).await }
            })
            .await
            .map_err(|s| ClientError::rpc("update schedule", &self.schedule_id, s))?;
        Ok(())
    }

    async fn patch(&self, patch: SchedulePatch, what: &'static str) -> Result<(), ClientError> {
        let request = PatchScheduleRequest {
            namespace: self.client.namespace().to_owned(),
            schedule_id: self.schedule_id.clone(),
            patch: Some(patch),
            identity: self.client.identity().to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        self.client
            .call_retrying(|mut service| {
                let request = request.clone();
                async move { service.patch_schedule(tonic::Request::new(request)).await }
            })
            .await
            .map_err(|s| ClientError::rpc(what, &self.schedule_id, s))?;
        Ok(())
    }

    /// Pauses the schedule, with a note saying why.
    pub async fn pause(&self, note: impl Into<String>) -> Result<(), ClientError> {
        let patch = SchedulePatch {
            pause: note.into(),
            ..Default::default()
        };
        self.patch(patch, "pause schedule").await
    }

    /// Unpauses the schedule, with a note.
    pub async fn unpause(&self, note: impl Into<String>) -> Result<(), ClientError> {
        let patch = SchedulePatch {
            unpause: note.into(),
            ..Default::default()
        };
        self.patch(patch, "unpause schedule").await
    }

    /// Takes the action now, once.
    pub async fn trigger(&self, overlap: OverlapPolicy) -> Result<(), ClientError> {
        let patch = SchedulePatch {
            trigger_immediately: Some(TriggerImmediatelyRequest {
                overlap_policy: overlap.proto(),
                scheduled_time: None,
            }),
            ..Default::default()
        };
        self.patch(patch, "trigger schedule").await
    }

    /// Takes every action the spec would have taken between `start` and `end`.
    pub async fn backfill(
        &self,
        start: SystemTime,
        end: SystemTime,
        overlap: OverlapPolicy,
    ) -> Result<(), ClientError> {
        let patch = SchedulePatch {
            backfill_request: vec![BackfillRequest {
                start_time: Some(start.into()),
                end_time: Some(end.into()),
                overlap_policy: overlap.proto(),
            }],
            ..Default::default()
        };
        self.patch(patch, "backfill schedule").await
    }

    /// Deletes the schedule (workflows it started go on).
    pub async fn delete(&self) -> Result<(), ClientError> {
        let request = DeleteScheduleRequest {
            namespace: self.client.namespace().to_owned(),
            schedule_id: self.schedule_id.clone(),
            identity: self.client.identity().to_owned(),
        };
        self.client
            .call_retrying(|mut service| {
                let request = request.clone();
                async move { service.delete_schedule(tonic::Request::new(request)).await }
            })
            .await
            .map_err(|s| ClientError::rpc("delete schedule", &self.schedule_id, s))?;
        Ok(())
    }
}
