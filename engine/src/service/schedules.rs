//! Schedules: create, describe, update, patch (pause, trigger, backfill), delete, list,
//! count, and the times a schedule's spec matches.
//!
//! Searching a spec's times can be long (a long range, a spec that matches rarely): it
//! runs outside the store's lock, on a blocking thread, between short transactions that
//! read the spec and apply what was found. A backfill is noted with the schedule in the
//! patch's transaction, then taken a chunk per transaction ([`take_backfills`]), so that
//! other calls interleave with a long one and a restarted engine finishes it.

use std::sync::Arc;

use tonic::{Request, Status};

use super::Service;
use crate::{
    proto::{self, service::*},
    schedules::{self, Key},
    state::NewSchedule,
    store::Store,
};

/// Takes the schedule's unfinished backfills, a chunk per transaction, each chunk found
/// outside the lock; returns when none is left (or the engine stops).
///
/// Runs as a task of its own: a caller that goes away does not leave a backfill half done
/// until the next restart. Two such tasks for one schedule are harmless: a chunk found
/// from a backfill that another task moved on since is not applied.
pub(crate) async fn take_backfills(store: Arc<Store>, key: Key) {
    while !store.is_closing() {
        let Some(read) = store
            .transaction(|state| state.pending_backfill(&key))
            .await
        else {
            return;
        };
        let (id, spec, backfill) = (key.1.clone(), read.0.clone(), read.1.clone());
        let found = tokio::task::spawn_blocking(move || {
            schedules::backfill_chunk(&id, spec.as_ref(), &backfill)
        })
        .await;
        let Ok(chunk) = found else {
            tracing::error!(schedule = %key.1, "finding a backfill's times failed");
            return;
        };
        store
            .transaction(|state| state.take_backfill_chunk(&key, &read, chunk))
            .await;
    }
}

/// [`take_backfills`] in a task of its own; waits for it.
async fn finish_backfills(store: &Arc<Store>, key: Key) -> Result<(), Status> {
    tokio::spawn(take_backfills(store.clone(), key))
        .await
        .map_err(|e| Status::internal(format!("the engine failed taking a backfill: {e}")))
}

/// Schedule listing takes no filter yet.
fn check_schedule_query(query: &str) -> Result<(), Status> {
    if query.trim().is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unsupported schedule query `{query}`: the engine lists all of a namespace's \
             schedules (send an empty query)"
        )))
    }
}

impl Service {
    pub(super) async fn create_schedule(
        &self,
        request: Request<CreateScheduleRequest>,
    ) -> Result<CreateScheduleResponse, Status> {
        let r = request.into_inner();
        let key = (r.namespace.clone(), r.schedule_id.clone());
        let conflict_token = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                state.create_schedule(NewSchedule {
                    namespace: r.namespace,
                    id: r.schedule_id,
                    schedule: r.schedule.unwrap_or_default(),
                    initial_patch: r.initial_patch,
                    memo: r.memo,
                    search_attributes: r.search_attributes,
                })
            })
            .await?;
        finish_backfills(&self.store, key).await?;
        Ok(CreateScheduleResponse { conflict_token })
    }

    pub(super) async fn describe_schedule(
        &self,
        request: Request<DescribeScheduleRequest>,
    ) -> Result<DescribeScheduleResponse, Status> {
        let r = request.into_inner();
        let described = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                state.describe_schedule(&(r.namespace, r.schedule_id))
            })
            .await?;
        Ok(described)
    }

    pub(super) async fn update_schedule(
        &self,
        request: Request<UpdateScheduleRequest>,
    ) -> Result<UpdateScheduleResponse, Status> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                state.update_schedule(
                    &(r.namespace, r.schedule_id),
                    r.schedule.unwrap_or_default(),
                    &r.conflict_token,
                    r.memo,
                    r.search_attributes,
                )
            })
            .await?;
        Ok(UpdateScheduleResponse {})
    }

    pub(super) async fn patch_schedule(
        &self,
        request: Request<PatchScheduleRequest>,
    ) -> Result<PatchScheduleResponse, Status> {
        let r = request.into_inner();
        let key = (r.namespace, r.schedule_id);
        self.store
            .transaction(|state| {
                state.check_namespace(&key.0)?;
                state.patch_schedule(&key, r.patch.unwrap_or_default(), &r.request_id)
            })
            .await?;
        // Answers once the backfills it asked for are taken (a retried patch, a no-op,
        // waits for them too).
        finish_backfills(&self.store, key).await?;
        Ok(PatchScheduleResponse {})
    }

    pub(super) async fn schedule_matching_times(
        &self,
        request: Request<ListScheduleMatchingTimesRequest>,
    ) -> Result<ListScheduleMatchingTimesResponse, Status> {
        let r = request.into_inner();
        let (Some(start), Some(end)) = (
            proto::system_time(r.start_time.as_ref()),
            proto::system_time(r.end_time.as_ref()),
        ) else {
            return Err(Status::invalid_argument(
                "matching times need a start time and an end time",
            ));
        };
        let key = (r.namespace, r.schedule_id);
        let spec = self
            .store
            .transaction(|state| {
                state.check_namespace(&key.0)?;
                state.schedule_spec(&key)
            })
            .await?;
        let times = tokio::task::spawn_blocking(move || {
            schedules::matching_times(&key.1, spec.as_ref(), start, end)
        })
        .await
        .map_err(|e| Status::internal(format!("the engine failed listing matching times: {e}")))?;
        Ok(ListScheduleMatchingTimesResponse {
            start_time: times.into_iter().map(proto::timestamp).collect(),
        })
    }

    pub(super) async fn delete_schedule(
        &self,
        request: Request<DeleteScheduleRequest>,
    ) -> Result<DeleteScheduleResponse, Status> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                state.delete_schedule(&(r.namespace, r.schedule_id))
            })
            .await?;
        Ok(DeleteScheduleResponse {})
    }

    pub(super) async fn count_schedules(
        &self,
        request: Request<CountSchedulesRequest>,
    ) -> Result<CountSchedulesResponse, Status> {
        let r = request.into_inner();
        check_schedule_query(&r.query)?;
        let count = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                Ok::<_, Status>(state.list_schedules(&r.namespace, "", usize::MAX).0.len())
            })
            .await?;
        Ok(CountSchedulesResponse {
            count: count as i64,
            ..Default::default()
        })
    }

    pub(super) async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Result<ListSchedulesResponse, Status> {
        let r = request.into_inner();
        check_schedule_query(&r.query)?;
        let after = String::from_utf8(r.next_page_token).unwrap_or_default();
        let page = usize::try_from(r.maximum_page_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(1000);
        let (schedules, next) = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                Ok::<_, Status>(state.list_schedules(&r.namespace, &after, page))
            })
            .await?;
        Ok(ListSchedulesResponse {
            schedules,
            next_page_token: next.map(String::into_bytes).unwrap_or_default(),
        })
    }
}
