//! Schedules: create, describe, update, patch (pause, trigger, backfill), delete, list,
//! count, and the times a schedule's spec matches.

use tonic::{Request, Status};

use super::Service;
use crate::{
    proto::{self, service::*},
    state::NewSchedule,
};

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
        self.store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                state.patch_schedule(
                    &(r.namespace, r.schedule_id),
                    r.patch.unwrap_or_default(),
                    &r.request_id,
                )
            })
            .await?;
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
        let times = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                state.schedule_matching_times(&(r.namespace, r.schedule_id), start, end)
            })
            .await?;
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
