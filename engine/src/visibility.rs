//! Visibility queries: the common filters of Temporal's list query language
//! (`WorkflowType`, `WorkflowId`, `ExecutionStatus`, `TaskQueue` compared with `=` or `!=`,
//! joined by `AND`). An empty query matches every execution.

use tonic::Status;

use crate::{history::Run, proto::enums::WorkflowExecutionStatus};

/// A parsed list query.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Debug)]
struct Clause {
    field: Field,
    equal: bool,
    value: String,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    WorkflowType,
    WorkflowId,
    ExecutionStatus,
    TaskQueue,
}

impl Filter {
    pub(crate) fn parse(query: &str) -> Result<Self, Status> {
        let mut clauses = Vec::new();
        let query = query.trim();
        if query.is_empty() {
            return Ok(Self::default());
        }
        for part in split_and(query) {
            let part = part
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(unsupported(query));
            };
            let field = match field.trim() {
                "WorkflowType" => Field::WorkflowType,
                "WorkflowId" => Field::WorkflowId,
                "ExecutionStatus" => Field::ExecutionStatus,
                "TaskQueue" => Field::TaskQueue,
                _ => return Err(unsupported(query)),
            };
            let value = value.trim();
            let value = value
                .strip_prefix(['\'', '"'])
                .and_then(|v| v.strip_suffix(['\'', '"']))
                .unwrap_or(value)
                .to_owned();
            clauses.push(Clause {
                field,
                equal,
                value,
            });
        }
        Ok(Self { clauses })
    }

    pub(crate) fn matches(&self, run: &Run) -> bool {
        self.clauses.iter().all(|c| {
            let actual = match c.field {
                Field::WorkflowType => run.workflow_type.clone(),
                Field::WorkflowId => run.workflow_id.clone(),
                Field::TaskQueue => run.task_queue.clone(),
                Field::ExecutionStatus => status_name(run.status).to_owned(),
            };
            (actual == c.value) == c.equal
        })
    }
}

fn split_and(query: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = query;
    while let Some(i) = rest.to_ascii_uppercase().find(" AND ") {
        parts.push(&rest[..i]);
        rest = &rest[i + 5..];
    }
    parts.push(rest);
    parts
}

fn status_name(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Running => "Running",
        WorkflowExecutionStatus::Completed => "Completed",
        WorkflowExecutionStatus::Failed => "Failed",
        WorkflowExecutionStatus::Canceled => "Canceled",
        WorkflowExecutionStatus::Terminated => "Terminated",
        WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
        WorkflowExecutionStatus::TimedOut => "TimedOut",
        _ => "Unspecified",
    }
}

fn unsupported(query: &str) -> Status {
    Status::invalid_argument(format!(
        "unsupported list query `{query}`: the engine understands `Field = 'value'` and \
         `Field != 'value'` clauses on WorkflowType, WorkflowId, ExecutionStatus and \
         TaskQueue, joined by AND"
    ))
}
