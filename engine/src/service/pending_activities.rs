//! An operator's hand on a run's pending activities: pause, unpause, reset, and change
//! their options (`PauseActivity`, `UnpauseActivity`, `ResetActivity`,
//! `UpdateActivityOptions`). What each does is the run's (`run::activity_actions`).

use std::time::Duration;

use tonic::{Request, Status};

use super::Service;
use crate::{
    errors,
    proto::{common::WorkflowExecution, service::*},
    run::{Ctx, Restart, Run, Targets},
    validate,
};

/// How long a pause's identity and reason may be, in bytes.
const MAX_PAUSE_TEXT: usize = 1000;

/// The [`Targets`] of a request's `activity` oneof (`$kind`), whose variants are `Id`,
/// `Type` and, when named, the one meaning all (`UnpauseAll`, `MatchAll`).
macro_rules! targets {
    ($activity:expr, $kind:path $(, $all:ident)?) => {{
        use $kind as Activity;
        targets(match $activity {
            Some(Activity::Id(id)) => (Some(id), None, false),
            Some(Activity::Type(name)) => (None, Some(name), false),
            $(Some(Activity::$all(all)) => (None, None, all),)?
            None => (None, None, false),
        })
    }};
}

impl Service {
    pub(super) async fn pause_activity(
        &self,
        request: Request<PauseActivityRequest>,
    ) -> Result<PauseActivityResponse, Status> {
        let r = request.into_inner();
        let targets = targets!(r.activity, pause_activity_request::Activity)?;
        // Kept in the run's state, which every change of the run writes again.
        for (field, text) in [("identity", &r.identity), ("reason", &r.reason)] {
            if text.len() > MAX_PAUSE_TEXT {
                return Err(Status::invalid_argument(format!(
                    "PauseActivityRequest.{field} is {} bytes; at most {MAX_PAUSE_TEXT} are kept",
                    text.len()
                )));
            }
        }
        let (identity, reason) = (r.identity, r.reason);
        self.on_run(&r.namespace, r.execution, |run, ctx| {
            run.pause_activities(ctx, &targets, &identity, &reason)
        })
        .await?;
        Ok(PauseActivityResponse {})
    }

    pub(super) async fn unpause_activity(
        &self,
        request: Request<UnpauseActivityRequest>,
    ) -> Result<UnpauseActivityResponse, Status> {
        let r = request.into_inner();
        let targets = targets!(r.activity, unpause_activity_request::Activity, UnpauseAll)?;
        let restart = Restart {
            reset_attempts: r.reset_attempts,
            reset_heartbeat: r.reset_heartbeat,
            jitter: jitter(r.jitter.as_ref())?,
        };
        self.on_run(&r.namespace, r.execution, |run, ctx| {
            run.unpause_activities(ctx, &targets, restart)
        })
        .await?;
        Ok(UnpauseActivityResponse {})
    }

    pub(super) async fn reset_activity(
        &self,
        request: Request<ResetActivityRequest>,
    ) -> Result<ResetActivityResponse, Status> {
        let r = request.into_inner();
        let targets = targets!(r.activity, reset_activity_request::Activity, MatchAll)?;
        let restart = Restart {
            reset_attempts: true,
            reset_heartbeat: r.reset_heartbeat,
            jitter: jitter(r.jitter.as_ref())?,
        };
        let (keep_paused, restore) = (r.keep_paused, r.restore_original_options);
        self.on_run(&r.namespace, r.execution, |run, ctx| {
            run.reset_activities(ctx, &targets, restart, keep_paused, restore)
        })
        .await?;
        Ok(ResetActivityResponse {})
    }

    pub(super) async fn update_activity_options(
        &self,
        request: Request<UpdateActivityOptionsRequest>,
    ) -> Result<UpdateActivityOptionsResponse, Status> {
        let r = request.into_inner();
        let targets = targets!(
            r.activity,
            update_activity_options_request::Activity,
            MatchAll
        )?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let options = r.activity_options.unwrap_or_default();
        if r.restore_original && !mask.is_empty() {
            return Err(Status::invalid_argument(
                "restore_original cannot be combined with an update_mask: send one or the other",
            ));
        }
        if !r.restore_original && mask.is_empty() {
            return Err(Status::invalid_argument(
                "update_mask is not set: name the options to change, e.g. \
                 start_to_close_timeout",
            ));
        }
        let restore = r.restore_original;
        let options = self
            .on_run(&r.namespace, r.execution, |run, _ctx| {
                run.update_activity_options(&targets, &options, &mask, restore)
            })
            .await?;
        Ok(UpdateActivityOptionsResponse {
            activity_options: Some(options),
        })
    }

    /// Runs `f` on the open run `execution` names, in one transaction.
    async fn on_run<R>(
        &self,
        namespace: &str,
        execution: Option<WorkflowExecution>,
        f: impl FnOnce(&mut Run, &mut Ctx<'_>) -> Result<R, Status>,
    ) -> Result<R, Status> {
        if execution.as_ref().is_none_or(|e| e.workflow_id.is_empty()) {
            return Err(errors::missing("execution.workflow_id"));
        }
        self.store
            .transaction(|state| {
                let run_id = state.resolve_run_id(namespace, execution.as_ref())?;
                state
                    .with_run(&run_id, f)
                    .unwrap_or_else(|| Err(errors::run_gone(&run_id)))
            })
            .await
    }
}

/// The activities a request names: by id, by type, or all (Temporal's words when none).
fn targets((id, name, all): (Option<String>, Option<String>, bool)) -> Result<Targets, Status> {
    match (id, name, all) {
        (Some(id), _, _) if !id.is_empty() => Ok(Targets::Id(id)),
        (_, Some(name), _) if !name.is_empty() => Ok(Targets::Type(name)),
        (_, _, true) => Ok(Targets::All),
        _ => Err(Status::invalid_argument(
            "Either Activity.Id or Activity.Type should be set on request.",
        )),
    }
}

/// The jitter a request asks for, checked.
fn jitter(jitter: Option<&prost_wkt_types::Duration>) -> Result<Option<Duration>, Status> {
    validate::duration("jitter", jitter)
        .map(|d| d.filter(|d| !d.is_zero()))
        .map_err(Status::invalid_argument)
}
