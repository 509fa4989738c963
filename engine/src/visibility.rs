//! Visibility queries: the common filters of Temporal's list query language
//! (`WorkflowType`, `WorkflowId`, `ExecutionStatus`, `TaskQueue`, or any keyword search
//! attribute such as `TemporalScheduledById`, compared with `=` or `!=`, joined by `AND`).
//! An empty query matches every execution.

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

#[derive(Debug, Clone)]
enum Field {
    WorkflowType,
    WorkflowId,
    ExecutionStatus,
    TaskQueue,
    /// A search attribute the run was started with, compared as a string.
    SearchAttribute(String),
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
                name if is_identifier(name) => Field::SearchAttribute(name.to_owned()),
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
            let actual = match &c.field {
                Field::WorkflowType => Some(run.workflow_type.clone()),
                Field::WorkflowId => Some(run.workflow_id.clone()),
                Field::TaskQueue => Some(run.task_queue.clone()),
                Field::ExecutionStatus => Some(status_name(run.status).to_owned()),
                Field::SearchAttribute(name) => search_attribute(run, name),
            };
            (actual.as_deref() == Some(c.value.as_str())) == c.equal
        })
    }
}

fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The run's search attribute `name` as text (a JSON string payload's string).
fn search_attribute(run: &Run, name: &str) -> Option<String> {
    let payload = run
        .started
        .search_attributes
        .as_ref()?
        .indexed_fields
        .get(name)?;
    match serde_json::from_slice(&payload.data).ok()? {
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
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
         `Field != 'value'` clauses on WorkflowType, WorkflowId, ExecutionStatus, TaskQueue \
         and search attributes, joined by AND"
    ))
}
