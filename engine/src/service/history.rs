//! History reads: forward in pages (waiting for new events or the close event when
//! asked), and backward from the last event.

use tonic::{Request, Status};

use super::{
    long_poll::{poll_deadline, Answer},
    Service,
};
use crate::{
    errors,
    event_log::EventLog,
    proto::{enums::HistoryEventFilterType, history::History, service::*},
    state::{State, Topic},
};

/// Events per history page unless the client asks for fewer.
const PAGE_SIZE: usize = 1000;

/// Room left in an answer for what is not events (the response's other fields and its
/// framing).
const ANSWER_MARGIN: usize = 64 * 1024;

/// The end of a page of `events` from `start`: at most `page` events whose encoded size
/// stays within `bytes` (but at least one event), so that no answer exceeds what a client
/// accepts; Temporal pages history by size too.
fn page_end(events: &EventLog, start: usize, page: usize, bytes: usize) -> usize {
    let last = start.saturating_add(page).min(events.len());
    let mut end = start;
    let mut size = 0;
    while end < last {
        size += events.encoded(end).map_or(0, <[u8]>::len);
        if size > bytes && end > start {
            break;
        }
        end += 1;
    }
    end
}

/// A page token: how many events were already returned.
fn page_start(token: &[u8]) -> Result<usize, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(token)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Status::invalid_argument("malformed next page token"))
}

/// A page size a client asked for (`0` or less: the default).
fn page_size(asked: i32) -> usize {
    usize::try_from(asked)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(PAGE_SIZE)
}

impl Service {
    pub(super) async fn history(
        &self,
        request: Request<GetWorkflowExecutionHistoryRequest>,
    ) -> Result<GetWorkflowExecutionHistoryResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let start = page_start(&r.next_page_token)?;
        let page = page_size(r.maximum_page_size);
        let close_only = r.history_event_filter_type == HistoryEventFilterType::CloseEvent as i32;
        let bytes = self
            .store
            .limits()
            .grpc_message_size
            .saturating_sub(ANSWER_MARGIN);
        let run_id = self
            .store
            .transaction(|state| state.resolve_run_id(&r.namespace, r.execution.as_ref()))
            .await?;
        let read =
            |state: &mut State| -> Result<Option<GetWorkflowExecutionHistoryResponse>, Status> {
                // Deleted while a read waited for it.
                let run = state
                    .runs
                    .get(&run_id)
                    .ok_or_else(|| errors::run_gone(&run_id))?;
                if close_only {
                    if run.is_open() {
                        return Ok(None);
                    }
                    return Ok(Some(GetWorkflowExecutionHistoryResponse {
                        history: Some(History {
                            events: run.events.last().into_iter().collect(),
                        }),
                        ..Default::default()
                    }));
                }
                if start >= run.events.len() && run.is_open() && r.wait_new_event {
                    return Ok(None);
                }
                let end = page_end(&run.events, start, page, bytes);
                let events = run.events.range(start..end);
                let more = end < run.events.len();
                Ok(Some(GetWorkflowExecutionHistoryResponse {
                    history: Some(History { events }),
                    next_page_token: if more {
                        end.to_string().into_bytes()
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }))
            };
        let response = if r.wait_new_event {
            self.wait_for(deadline, Topic::Run(run_id.clone()), Answer::Written, read)
                .await?
        } else {
            self.store.transaction(read).await?
        };
        Ok(
            response.unwrap_or_else(|| GetWorkflowExecutionHistoryResponse {
                history: Some(History::default()),
                next_page_token: if close_only || r.next_page_token.is_empty() {
                    Vec::new()
                } else {
                    r.next_page_token.clone()
                },
                ..Default::default()
            }),
        )
    }

    pub(super) async fn history_reverse(
        &self,
        request: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> Result<GetWorkflowExecutionHistoryReverseResponse, Status> {
        let r = request.into_inner();
        // The page token is the number of events already returned from the end.
        let skip = page_start(&r.next_page_token)?;
        let page = page_size(r.maximum_page_size);
        let bytes = self
            .store
            .limits()
            .grpc_message_size
            .saturating_sub(ANSWER_MARGIN);
        let (events, more) = self
            .store
            .transaction(|state| {
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                let events = &state.runs[&run_id].events;
                let end = events.len().saturating_sub(skip);
                // Backward from `end`, within `bytes` (at least one event).
                let mut start = end;
                let mut size = 0;
                while start > end.saturating_sub(page) {
                    size += events.encoded(start - 1).map_or(0, <[u8]>::len);
                    if size > bytes && start < end {
                        break;
                    }
                    start -= 1;
                }
                let mut page = events.range(start..end);
                page.reverse();
                Ok::<_, Status>((page, start > 0))
            })
            .await?;
        Ok(GetWorkflowExecutionHistoryReverseResponse {
            next_page_token: if more {
                (skip + events.len()).to_string().into_bytes()
            } else {
                Vec::new()
            },
            history: Some(History { events }),
        })
    }
}
