//! Listing and counting workflow executions with a visibility query.

use tonic::{Request, Status};

use super::Service;
use crate::{proto::service::*, visibility::Filter};

/// Executions per list page unless the client asks for fewer.
const PAGE_SIZE: usize = 1000;

impl Service {
    pub(super) async fn list(
        &self,
        request: Request<ListWorkflowExecutionsRequest>,
    ) -> Result<ListWorkflowExecutionsResponse, Status> {
        let r = request.into_inner();
        let filter = Filter::parse(&r.query)?;
        let skip: usize = std::str::from_utf8(&r.next_page_token)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page = usize::try_from(r.page_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(PAGE_SIZE);
        let (executions, more) = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                let mut matching = state.started.iter().rev().filter_map(|id| {
                    let run = &state.runs[id];
                    (run.namespace == r.namespace && filter.matches(&run.record())).then_some(run)
                });
                let executions: Vec<_> = matching
                    .by_ref()
                    .skip(skip)
                    .take(page)
                    .map(|run| run.execution_info())
                    .collect();
                let more = matching.next().is_some();
                Ok::<_, Status>((executions, more))
            })
            .await?;
        Ok(ListWorkflowExecutionsResponse {
            executions,
            next_page_token: if more {
                (skip + page).to_string().into_bytes()
            } else {
                Vec::new()
            },
        })
    }

    pub(super) async fn count(
        &self,
        request: Request<CountWorkflowExecutionsRequest>,
    ) -> Result<CountWorkflowExecutionsResponse, Status> {
        let r = request.into_inner();
        let filter = Filter::parse(&r.query)?;
        let count = self
            .store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                Ok::<_, Status>(
                    state
                        .runs
                        .values()
                        .filter(|run| run.namespace == r.namespace && filter.matches(&run.record()))
                        .count(),
                )
            })
            .await?;
        Ok(CountWorkflowExecutionsResponse {
            count: count as i64,
            ..Default::default()
        })
    }
}
