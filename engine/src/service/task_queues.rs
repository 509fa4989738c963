//! `DescribeTaskQueue`: who polls a task queue lately, and what waits in it.

use tonic::{Request, Status};

use super::Service;
use crate::{
    errors,
    matching::PollerKind,
    proto::{
        self,
        enums::TaskQueueType,
        service::{DescribeTaskQueueRequest, DescribeTaskQueueResponse},
        taskqueue::{PollerInfo, TaskQueueStats, TaskQueueStatus},
    },
};

impl Service {
    // `include_task_queue_status` is deprecated, and still asked for by older clients.
    #[allow(deprecated)]
    pub(super) async fn describe_task_queue(
        &self,
        request: Request<DescribeTaskQueueRequest>,
    ) -> Result<DescribeTaskQueueResponse, Status> {
        let r = request.into_inner();
        let queue = r
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| errors::missing("task queue"))?;
        let kind = match TaskQueueType::try_from(r.task_queue_type) {
            Ok(TaskQueueType::Activity) => PollerKind::Activity,
            Ok(TaskQueueType::Workflow | TaskQueueType::Unspecified) => PollerKind::Workflow,
            _ => {
                return Err(Status::invalid_argument(
                    "DescribeTaskQueue: the engine has workflow and activity task queues only",
                ))
            }
        };
        let (pollers, backlog) = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                let pollers = state.pollers.of(&r.namespace, &queue, kind, state.now);
                let backlog = state.queues.backlog(&r.namespace, &queue);
                Ok::<_, Status>((pollers, backlog))
            })
            .await?;
        let backlog = i64::try_from(match kind {
            PollerKind::Workflow => backlog.0,
            PollerKind::Activity => backlog.1,
        })
        .unwrap_or(i64::MAX);
        Ok(DescribeTaskQueueResponse {
            pollers: pollers
                .into_iter()
                .map(|(identity, last)| PollerInfo {
                    last_access_time: Some(proto::timestamp(last)),
                    identity,
                    ..Default::default()
                })
                .collect(),
            stats: r.report_stats.then(|| TaskQueueStats {
                approximate_backlog_count: backlog,
                ..Default::default()
            }),
            task_queue_status: r.include_task_queue_status.then(|| TaskQueueStatus {
                backlog_count_hint: backlog,
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}
