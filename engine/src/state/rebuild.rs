//! A state read from disk, made live: its queues refilled and its deadlines armed with
//! the same function the live path uses (`Run::deadlines`), so a restart changes no
//! deadline.

use std::time::SystemTime;

use super::State;
use crate::{
    matching::{ActivityTaskRef, WorkflowTaskRef},
    run::ActivityState,
};

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
        let mut workflow_tasks: Vec<(SystemTime, String, String, String)> = Vec::new();
        let mut activity_tasks: Vec<(SystemTime, String, String, ActivityTaskRef)> = Vec::new();
        for run in self.runs.values().filter(|r| r.is_open()) {
            if let Some(task) = run.wft.as_ref().filter(|t| t.started_event_id.is_none()) {
                workflow_tasks.push((
                    task.scheduled_time,
                    run.namespace.clone(),
                    run.task_queue.clone(),
                    run.run_id.clone(),
                ));
            }
            for (scheduled, activity) in &run.activities {
                if activity.state == ActivityState::Scheduled {
                    let queue = activity
                        .attrs
                        .task_queue
                        .as_ref()
                        .map(|q| q.name.clone())
                        .unwrap_or_default();
                    activity_tasks.push((
                        activity.attempt_scheduled_time,
                        run.namespace.clone(),
                        queue,
                        ActivityTaskRef {
                            run_id: run.run_id.clone(),
                            scheduled_event_id: *scheduled,
                            attempt: activity.attempt,
                        },
                    ));
                }
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
}
