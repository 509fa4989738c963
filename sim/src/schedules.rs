//! Schedules in the workload: a `Script::Schedule` workflow of a plan is a schedule (its
//! id is the workflow's id) that starts a `Timer { seconds: 1 }` workflow on the
//! simulated worker every `every_seconds`, at most `actions` times, overlapping freely.
//!
//! The plan's steps act on it as on any workflow: `start` and signal-with-start create
//! it, `cancel` pauses it, `terminate` deletes it; signals, updates and queries describe
//! it. The drain deletes every schedule first, so that the seed ends with no deadline
//! left. Then `Driver::check_schedule` holds the workflows it started to the model:
//! - each id is `<schedule id>-<nominal time>` (RFC 3339, as Temporal names them), the
//!   nominal time a multiple of the interval, later than the schedule's first creation
//!   attempt and no later than its last deletion;
//! - each started at or after its nominal time (never early), once (one run per id);
//! - each completed as a `Timer { seconds: 1 }` workflow, with a well-formed history;
//! - at most `actions` of them in each life (a creation that took or may have taken);
//!   and exactly as many as the nominal times between its creation and its deletion
//!   (capped by `actions`) when the schedule had one known life: created once
//!   (acknowledged), never paused, deleted only by the drain.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::Code;

use crate::{
    checks::{self, Violation, WorkflowSeen},
    driver::{Driver, TASK_QUEUE},
    plan::Script,
    proto::{self, schedule, service, ScheduleOverlapPolicy},
};

/// What the workflows a schedule starts do.
pub const ACTION: Script = Script::Timer { seconds: 1 };

/// What a client was told about one schedule, for the check.
#[derive(Debug, Clone, Default)]
pub struct ScheduleSeen {
    /// The engine's time at the first creation attempt.
    pub first_create: Option<SystemTime>,
    /// The engine's time at an acknowledged creation, when every creation attempt was
    /// either this one or answered "already exists" while it stood.
    pub created: Option<SystemTime>,
    /// A creation, pause or deletion whose outcome is unknown (answered `UNAVAILABLE`),
    /// or a pause or a deletion before the drain: the count is only bounded above.
    pub uncertain: bool,
    /// The engine's time at the last deletion attempt.
    pub last_delete: Option<SystemTime>,
    /// Creations that took or may have taken (each life has its own `actions`).
    pub lives: u32,
}

/// Seconds since the epoch, as a `SystemTime`.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// `2026-01-01T00:00:00Z`: how an action's workflow id names its nominal time.
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs(t) as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How many nominal times of an interval of `every` seconds lie in `(after, until]`.
fn nominal_times_between(every: u64, after: SystemTime, until: SystemTime) -> u64 {
    let (after, until) = (secs(after), secs(until));
    (until / every).saturating_sub(after / every)
}

impl Driver {
    fn schedule_of(&self, w: usize) -> (u32, u8) {
        match self.plan.workflows[w] {
            Script::Schedule {
                every_seconds,
                actions,
            } => (every_seconds, actions),
            other => unreachable!("w{w} is {other:?}, not a schedule"),
        }
    }

    /// `CreateSchedule` for workflow `w`.
    pub(crate) async fn create_schedule(&mut self, w: usize) -> Result<(), Violation> {
        let (every_seconds, actions) = self.schedule_of(w);
        let now = self.engine().now();
        let request = service::CreateScheduleRequest {
            namespace: proto::NAMESPACE.to_owned(),
            schedule_id: self.workflow_id(w),
            schedule: Some(schedule::Schedule {
                spec: Some(schedule::ScheduleSpec {
                    interval: vec![schedule::IntervalSpec {
                        interval: proto::seconds(u64::from(every_seconds)),
                        phase: None,
                    }],
                    ..Default::default()
                }),
                action: Some(schedule::ScheduleAction {
                    action: Some(schedule::schedule_action::Action::StartWorkflow(
                        proto::NewWorkflowExecutionInfo {
                            workflow_id: self.workflow_id(w),
                            workflow_type: Some(proto::WorkflowType {
                                name: proto::WORKFLOW_TYPE.to_owned(),
                            }),
                            task_queue: proto::task_queue(TASK_QUEUE),
                            input: proto::payloads(&ACTION),
                            ..Default::default()
                        },
                    )),
                }),
                policies: Some(schedule::SchedulePolicies {
                    overlap_policy: ScheduleOverlapPolicy::AllowAll as i32,
                    ..Default::default()
                }),
                state: Some(schedule::ScheduleState {
                    limited_actions: true,
                    remaining_actions: i64::from(actions),
                    ..Default::default()
                }),
            }),
            identity: "sim-client".to_owned(),
            request_id: format!("create-{w}"),
            ..Default::default()
        };
        let mut client = self.client.clone();
        let answer = self
            .call("CreateSchedule", client.create_schedule(request))
            .await?;
        let seen = &mut self.observed.schedules[w];
        seen.first_create.get_or_insert(now);
        match answer {
            Ok(_) => {
                seen.lives += 1;
                // A second life after a deletion has its own nominal times.
                if seen.created.is_some() || seen.last_delete.is_some() {
                    seen.uncertain = true;
                }
                seen.created = Some(now);
                Ok(())
            }
            Err(status) if status.code() == Code::AlreadyExists => Ok(()),
            Err(status) => {
                seen.lives += 1;
                seen.uncertain = true;
                crate::driver::expect_codes("CreateSchedule", &status, &[Code::Unavailable])
            }
        }
    }

    /// `PatchSchedule` pausing workflow `w`'s schedule.
    pub(crate) async fn pause_schedule(&mut self, w: usize) -> Result<(), Violation> {
        let request = service::PatchScheduleRequest {
            namespace: proto::NAMESPACE.to_owned(),
            schedule_id: self.workflow_id(w),
            patch: Some(schedule::SchedulePatch {
                pause: "the simulator pauses it".to_owned(),
                ..Default::default()
            }),
            identity: "sim-client".to_owned(),
            request_id: format!("pause-{w}"),
        };
        let mut client = self.client.clone();
        self.send(
            "PatchSchedule",
            client.patch_schedule(request),
            &[Code::NotFound, Code::Unavailable],
        )
        .await?;
        self.observed.schedules[w].uncertain = true;
        Ok(())
    }

    /// `DeleteSchedule` for workflow `w`; `drain`: the last one, which must take.
    pub(crate) async fn delete_schedule(&mut self, w: usize, drain: bool) -> Result<(), Violation> {
        let now = self.engine().now();
        let request = service::DeleteScheduleRequest {
            namespace: proto::NAMESPACE.to_owned(),
            schedule_id: self.workflow_id(w),
            identity: "sim-client".to_owned(),
        };
        let mut client = self.client.clone();
        let allowed: &[Code] = if drain {
            &[Code::NotFound]
        } else {
            &[Code::NotFound, Code::Unavailable]
        };
        let deleted = self
            .send("DeleteSchedule", client.delete_schedule(request), allowed)
            .await?
            .is_some();
        let seen = &mut self.observed.schedules[w];
        seen.last_delete = Some(now);
        if !drain && (deleted || seen.created.is_some()) {
            seen.uncertain = true;
        }
        Ok(())
    }

    /// `DescribeSchedule` for workflow `w`: it answers, or says it has no such schedule.
    pub(crate) async fn describe_schedule(&mut self, w: usize) -> Result<(), Violation> {
        let (_, actions) = self.schedule_of(w);
        let request = service::DescribeScheduleRequest {
            namespace: proto::NAMESPACE.to_owned(),
            schedule_id: self.workflow_id(w),
        };
        let mut client = self.client.clone();
        let Some(described) = self
            .send(
                "DescribeSchedule",
                client.describe_schedule(request),
                &[Code::NotFound, Code::Unavailable],
            )
            .await?
        else {
            return Ok(());
        };
        self.counts.checks += 1;
        let state = described.schedule.and_then(|s| s.state).unwrap_or_default();
        let taken = described.info.map_or(0, |i| i.action_count);
        if taken + state.remaining_actions != i64::from(actions) || state.remaining_actions < 0 {
            return Err(Violation::new(format!(
                "w{w}'s schedule took {taken} action(s) and has {} left, of {actions}",
                state.remaining_actions
            )));
        }
        Ok(())
    }

    /// The workflows workflow `w`'s schedule started end as the model says (see the
    /// module's doc).
    pub(crate) async fn check_schedule(&mut self, w: usize) -> Result<u64, Violation> {
        let (every, actions) = self.schedule_of(w);
        let every = u64::from(every);
        let seen = self.observed.schedules[w].clone();
        let prefix = format!("{}-", self.workflow_id(w));
        let runs = self
            .listed(&format!("WorkflowId STARTS_WITH '{prefix}'"))
            .await?;
        let mut checks = 1;
        let fail = |what: String| Err(Violation::new(format!("w{w}'s schedule: {what}")));
        let most = u64::from(actions) * u64::from(seen.lives);
        if runs.len() as u64 > most {
            return fail(format!(
                "it started {} workflows, more than its {actions} actions in each of {} lives",
                runs.len(),
                seen.lives
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (workflow_id, run_id) in &runs {
            checks += 1;
            if !ids.insert(workflow_id.clone()) {
                return fail(format!("{workflow_id} was started more than once"));
            }
            let Some(nominal) = workflow_id
                .strip_prefix(&prefix)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| u64::try_from(t.timestamp()).ok())
            else {
                return fail(format!("{workflow_id} names no nominal time"));
            };
            if rfc3339(at(nominal)) != workflow_id[prefix.len()..] {
                return fail(format!(
                    "{workflow_id} does not name its time as Temporal does"
                ));
            }
            let (Some(created), Some(deleted)) = (seen.first_create, seen.last_delete) else {
                return fail(format!(
                    "it started {workflow_id}, yet it was never both created and deleted"
                ));
            };
            if nominal % every != 0 || at(nominal) <= created || at(nominal) > deleted {
                return fail(format!(
                    "{workflow_id}: its nominal time is not a multiple of {every} s after {} and until {}",
                    rfc3339(created),
                    rfc3339(deleted)
                ));
            }
            let chain = self.chain(workflow_id, run_id).await?;
            let (_, events) = &chain[0];
            let started = events.first().map_or(UNIX_EPOCH, proto::time_of);
            if started < at(nominal) {
                return fail(format!(
                    "{workflow_id} started at {}, before its nominal time",
                    rfc3339(started)
                ));
            }
            for (run_id, events) in &chain {
                checks += checks::well_formed(workflow_id, run_id, events, &self.reopened)?;
            }
            checks += checks::chain_ends_as_modelled(w, ACTION, &WorkflowSeen::default(), &chain)?;
        }
        if let (Some(created), Some(deleted), false) =
            (seen.created, seen.last_delete, seen.uncertain)
        {
            checks += 1;
            let due = nominal_times_between(every, created, deleted).min(u64::from(actions));
            if runs.len() as u64 != due {
                return fail(format!(
                    "created at {} and deleted at {}, it started {} workflows; {due} were due",
                    rfc3339(created),
                    rfc3339(deleted),
                    runs.len()
                ));
            }
        }
        Ok(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_times_are_counted_after_the_start_and_up_to_the_end() {
        let day = 86_400;
        let midnight = at(1_767_225_600);
        assert_eq!(nominal_times_between(day, midnight, midnight), 0);
        assert_eq!(
            nominal_times_between(day, midnight, midnight + Duration::from_secs(day)),
            1
        );
        assert_eq!(
            nominal_times_between(
                60,
                midnight + Duration::from_secs(30),
                midnight + Duration::from_secs(150)
            ),
            2
        );
        assert_eq!(rfc3339(midnight), "2026-01-01T00:00:00Z");
    }
}
