//! Resetting a workflow across its runs: the new run rebuilt from the base run's history,
//! the workflow's open run terminated, what came after the reset point reapplied, and
//! the children the reset point knows handed to the new run.

use tonic::Status;

use super::State;
use crate::{
    proto::{common::WorkflowExecution, history::history_event::Attributes},
    run::{self, Reset, Run, RESETTER_IDENTITY},
};

impl State {
    /// Resets the workflow `execution` names in `namespace` to `reset.finish_event_id` of
    /// that run (the base); answers the new run's id. The workflow's open run (the base
    /// or a later one) is terminated with the reset's reason; the new run becomes current.
    ///
    /// The new run carries on with the children that were open at the reset point, as on
    /// Temporal: one still open reports to it when it closes (its parent is still named
    /// as the base run, which the reset links to the new one), and the outcome of one
    /// that has closed since is written into it at once.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an unknown run; `INVALID_ARGUMENT` for a reset point where no
    /// workflow task is pending (see [`Run::rebuilt`]).
    pub(crate) fn reset_workflow(
        &mut self,
        namespace: &str,
        execution: Option<&WorkflowExecution>,
        reset: Reset,
    ) -> Result<String, Status> {
        let base_id = self.resolve_run_id(namespace, execution)?;
        let new_id = run::new_run_id();
        let (mut new_run, task) = self.runs[&base_id].rebuilt(self.now, new_id.clone(), &reset)?;
        let key = (new_run.namespace.clone(), new_run.workflow_id.clone());
        if let Some(current) = self.current.get(&key).cloned() {
            if self.runs.get(&current).is_some_and(Run::is_open) {
                if let Some(run) = self.runs.get_mut(&current) {
                    run.reset_run_id = new_id.clone();
                    // Children the new run carries on with are not the closing run's to
                    // terminate.
                    if current == base_id {
                        run.children
                            .retain(|initiated, _| !new_run.children.contains_key(initiated));
                    }
                }
                self.terminate(&current, &reset.reason, RESETTER_IDENTITY);
            }
        }
        if let Some(base) = self.runs.get_mut(&base_id) {
            base.reset_run_id = new_id.clone();
        }
        let reapplied = self.reapplied(&base_id, &reset);
        let mut closed_children = Vec::new();
        for (&initiated, child) in &new_run.children {
            let latest = WorkflowExecution {
                workflow_id: child.execution.workflow_id.clone(),
                run_id: String::new(),
            };
            let Ok(child_run) = self.resolve_run_id(&child.namespace, Some(&latest)) else {
                continue;
            };
            let child_run = &self.runs[&child_run];
            if !child_run.is_open() {
                closed_children.push((initiated, child_run.as_closed_child()));
            }
        }
        let mut ctx = self.new_run_ctx();
        new_run.finish_reset(&mut ctx, &reset, task, &base_id, reapplied, closed_children);
        let effects = ctx.effects;
        self.set_current(key, Some(new_id.clone()));
        self.push_started(new_id.clone());
        self.runs.insert(new_run);
        self.apply_effects(&new_id, effects);
        Ok(new_id)
    }

    /// What a reset of run `base_id` reapplies: per `reset.reapply`, the signals and
    /// updates it received after the reset point, then those of the runs that continued
    /// it, in order.
    fn reapplied(&self, base_id: &str, reset: &Reset) -> Vec<Attributes> {
        let mut reapplied = Vec::new();
        let mut from = reset.finish_event_id as usize - 1;
        let mut run_id = base_id.to_owned();
        while let Some(run) = self.runs.get(&run_id) {
            let events = run
                .events
                .range(from.min(run.events.len())..run.events.len());
            reapplied.extend(
                events
                    .into_iter()
                    .filter_map(|e| e.attributes)
                    .filter_map(|a| reset.reapply.event_for(a)),
            );
            if run.new_run_id.is_empty() || run.new_run_id == run_id {
                break;
            }
            run_id = run.new_run_id.clone();
            from = 0;
        }
        reapplied
    }
}
