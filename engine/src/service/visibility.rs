//! Listing and counting workflow executions with a visibility query.

use std::collections::BTreeMap;

use tonic::{Request, Status};

use super::Service;
use crate::{
    proto::{
        common::Payload,
        service::{count_workflow_executions_response::AggregationGroup, *},
    },
    visibility::Filter,
};

/// Executions per list page unless the client asks for fewer.
const PAGE_SIZE: usize = 1000;

impl Service {
    pub(super) async fn list(
        &self,
        request: Request<ListWorkflowExecutionsRequest>,
    ) -> Result<ListWorkflowExecutionsResponse, Status> {
        let r = request.into_inner();
        let mut filter = Filter::parse(&r.query)?;
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
                filter.resolve(&r.query, state.search_attributes(&r.namespace)?)?;
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
        let (mut filter, group) = Filter::parse_count(&r.query)?;
        let groups = self
            .store
            .transaction(|state| {
                filter.resolve(&r.query, state.search_attributes(&r.namespace)?)?;
                let mut groups: BTreeMap<&'static str, i64> = BTreeMap::new();
                for run in state.runs.values() {
                    let record = run.record();
                    if run.namespace == r.namespace && filter.matches(&record) {
                        let value = group.map_or("", |g| Filter::group_value(g, &record));
                        *groups.entry(value).or_default() += 1;
                    }
                }
                Ok::<_, Status>(groups)
            })
            .await?;
        Ok(CountWorkflowExecutionsResponse {
            count: groups.values().sum(),
            groups: match group {
                None => Vec::new(),
                Some(_) => groups
                    .into_iter()
                    .map(|(value, count)| AggregationGroup {
                        // Typed as a search attribute's value is, as on Temporal.
                        group_values: vec![Payload {
                            metadata: [
                                ("encoding".to_owned(), b"json/plain".to_vec()),
                                ("type".to_owned(), b"Keyword".to_vec()),
                            ]
                            .into(),
                            data: serde_json::to_vec(value).unwrap_or_default(),
                            ..Default::default()
                        }],
                        count,
                    })
                    .collect(),
            },
        })
    }
}
