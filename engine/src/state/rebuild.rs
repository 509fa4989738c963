//! A state read from disk (or put back after a failed transaction), made live: its queues
//! refilled and its deadlines armed with the same function the live path uses
//! (`Run::deadlines`), so a restart changes no deadline.

use std::time::SystemTime;

use super::State;
use crate::{
    matching::{ActivityTaskRef, WorkflowTaskRef},
    run::{ActivityState, Run},
};

/// What a run waits for in task queues: its workflow task, if scheduled and not started
/// (the queue and when it was scheduled), and its queued activity attempts.
struct Queued {
    workflow: Option<(String, SystemTime)>,
    activities: Vec<(String, SystemTime, ActivityTaskRef)>,
}

fn queued(run: &Run) -> Queued {
    if !run.is_open() {
        return Queued {
            workflow: None,
            activities: Vec::new(),
        };
    }
    let workflow = run
        .wft
        .as_ref()
        .filter(|t| t.started_event_id.is_none())
        .map(|t| {
            let queue = t
                .sticky_queue
                .clone()
                .unwrap_or_else(|| run.task_queue.clone());
            (queue, t.scheduled_time)
        });
    let activities = run
        .activities
        .iter()
        .filter(|(_, a)| a.state == ActivityState::Scheduled)
        .map(|(scheduled, a)| {
            let queue = a
                .attrs
                .task_queue
                .as_ref()
                .map(|q| q.name.clone())
                .unwrap_or_default();
            let task = ActivityTaskRef {
                run_id: run.run_id.clone(),
                scheduled_event_id: *scheduled,
                attempt: a.attempt,
            };
            (queue, a.attempt_scheduled_time, task)
        })
        .collect();
    Queued {
        workflow,
        activities,
    }
}

impl State {
    /// Rebuilds what is not stored: no sticky worker polls a fresh engine (tasks waiting
    /// on sticky queues go to their normal queues), queued workflow and activity tasks are
    /// queued again in the order they were scheduled, every run's and schedule's deadlines
    /// are armed, and the actions schedules missed while the engine was down are taken
    /// now (within each schedule's catch-up window).
    ///
    /// A task that a worker held when the engine stopped stays started until its timeout
    /// fires (as on Temporal: that worker may still complete it), and is then retried.
    pub(crate) fn rebuild(&mut self) {
        // Time resumes no earlier than the latest the file records: a clock that reads
        // earlier after a restart holds still until it catches up (see `State::begin`).
        self.now = self
            .runs
            .values()
            .fold(self.now, |now, run| now.max(run.latest_time()));
        let sticky: Vec<String> = self
            .runs
            .values()
            .filter(|r| r.is_open() && r.sticky.is_some())
            .map(|r| r.run_id.clone())
            .collect();
        for run_id in sticky {
            if let Some(run) = self.runs.get_mut(&run_id) {
                run.forget_sticky_worker();
            }
        }
        let mut workflow_tasks = Vec::new();
        let mut activity_tasks = Vec::new();
        for run in self.runs.values() {
            let queued = queued(run);
            if let Some((queue, at)) = queued.workflow {
                workflow_tasks.push((at, run.namespace.clone(), queue, run.run_id.clone()));
            }
            for (queue, at, task) in queued.activities {
                activity_tasks.push((at, run.namespace.clone(), queue, task));
            }
        }
        workflow_tasks.sort_by_key(|t| t.0);
        for (_, namespace, queue, run_id) in workflow_tasks {
            self.queues
                .push_workflow(&namespace, &queue, WorkflowTaskRef::Run(run_id));
        }
        activity_tasks.sort_by_key(|t| t.0);
        for (_, namespace, queue, task) in activity_tasks {
            self.queues.push_activity(&namespace, &queue, task);
        }
        for run_id in self.runs.ids() {
            let deadlines = self.runs[&run_id].deadlines();
            self.wheel.set_run(&run_id, deadlines);
        }
        for key in self.schedules.keys() {
            if let Some(s) = self.schedules.get_mut(&key) {
                s.armed = None;
            }
            self.tick_schedule(&key);
        }
    }

    /// Queues again what run `run_id` waits for (after a failed transaction took it off
    /// its queue); an entry queued twice is skipped the second time.
    pub(super) fn requeue(&mut self, run_id: &str) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        let namespace = run.namespace.clone();
        let queued = queued(run);
        if let Some((queue, _)) = queued.workflow {
            self.queues
                .push_workflow(&namespace, &queue, WorkflowTaskRef::Run(run_id.to_owned()));
        }
        for (queue, _, task) in queued.activities {
            self.queues.push_activity(&namespace, &queue, task);
        }
    }
}
