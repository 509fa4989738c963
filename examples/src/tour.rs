//! The pattern tour: runs each pattern end to end and reports what it returned.
//!
//! Each pattern's module owns its driver (`tour`) and, when it runs on the shared worker,
//! its registrations (`register`); [`PATTERNS`] lists them. A new pattern is its module,
//! its `pub mod` line and its entry here.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use capstan::{client::history::HistoryEvent, Client, Worker};
use serde::Serialize;
use serde_json::{json, Value};

use crate::patterns::*;

/// What a driver returns: the pattern's result, once it has checked it.
pub type Drive<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Value>> + 'a>>;

/// One pattern of the tour.
pub struct Pattern {
    /// Kebab-case of the seed's title.
    pub name: &'static str,
    /// What it shows.
    pub summary: &'static str,
    /// Runs it against a worker polling the task queue (the second argument); the third
    /// keeps workflow ids unique between tours. Fails when the pattern did not do what
    /// the seed says.
    pub drive: for<'a> fn(&'a Client, &'a str, &'a str) -> Drive<'a>,
    /// Registers its workflows and activities on the shared worker; `None` for a pattern
    /// that runs a worker of its own.
    pub register: Option<fn(Worker) -> Worker>,
}

/// Every pattern, in the seed's order.
pub const PATTERNS: &[Pattern] = &[
    Pattern {
        name: "activity-choice",
        summary: "pick the activity from the input",
        drive: |client, queue, run| Box::pin(activity_choice::tour(client, queue, run)),
        register: Some(activity_choice::register),
    },
    Pattern {
        name: "parallel-activity",
        summary: "run activities concurrently and gather them",
        drive: |client, queue, run| Box::pin(parallel_activity::tour(client, queue, run)),
        register: Some(parallel_activity::register),
    },
    Pattern {
        name: "cancellation",
        summary: "a heartbeating activity learns of the cancel; cleanup still runs",
        drive: |client, queue, run| Box::pin(cancellation::tour(client, queue, run)),
        register: Some(cancellation::register),
    },
    Pattern {
        name: "continue-as-new",
        summary: "carry state into a fresh run with the same workflow id",
        drive: |client, queue, run| Box::pin(continue_as_new::tour(client, queue, run)),
        register: Some(continue_as_new::register),
    },
    Pattern {
        name: "long-running-entity",
        summary: "an account driven by updates and queries",
        drive: |client, queue, run| Box::pin(long_running_entity::tour(client, queue, run)),
        register: Some(long_running_entity::register),
    },
    Pattern {
        name: "concurrent-timers",
        summary: "three recurring timers raced (the seed's 3 months / 1 year / 2 years scaled \
                  to 1 s / 2.5 s / 4 s)",
        drive: |client, queue, run| Box::pin(concurrent_timers::tour(client, queue, run)),
        register: Some(concurrent_timers::register),
    },
    Pattern {
        name: "child-workflow",
        summary: "execute a child, and start one with a handle",
        drive: |client, queue, run| Box::pin(child_workflow::tour(client, queue, run)),
        register: Some(child_workflow::register),
    },
    Pattern {
        name: "exceptions",
        summary: "retries, then the full cause chain at the client",
        drive: |client, queue, run| Box::pin(exceptions::tour(client, queue, run)),
        register: Some(exceptions::register),
    },
    Pattern {
        name: "local-activity",
        summary: "short activities inside the worker",
        drive: |client, queue, run| Box::pin(local_activity::tour(client, queue, run)),
        register: Some(local_activity::register),
    },
    Pattern {
        name: "mtls",
        summary: "client and worker authenticate with certificates; others are refused",
        drive: |client, queue, run| Box::pin(mtls::tour(client, queue, run)),
        register: None,
    },
    Pattern {
        name: "custom-metrics",
        summary: "a Prometheus endpoint, an activity interceptor and workflow-side metrics",
        drive: |client, queue, run| Box::pin(custom_metrics::tour(client, queue, run)),
        register: None,
    },
    Pattern {
        name: "encryption",
        summary: "AES-GCM payloads: the server stores only ciphertext",
        drive: |client, queue, run| Box::pin(encryption::tour(client, queue, run)),
        register: None,
    },
    Pattern {
        name: "polling-frequent",
        summary: "poll in a heartbeating activity loop",
        drive: |client, queue, run| Box::pin(polling_frequent::tour(client, queue, run)),
        register: Some(polling_frequent::register),
    },
    Pattern {
        name: "polling-infrequent",
        summary: "poll by retrying a failing activity at a fixed interval",
        drive: |client, queue, run| Box::pin(polling_infrequent::tour(client, queue, run)),
        register: Some(polling_infrequent::register),
    },
    Pattern {
        name: "schedule",
        summary: "the server starts workflows every 2 minutes, on weekday mornings, on \
                  trigger and for a backfilled range",
        drive: |client, queue, run| Box::pin(schedule::tour(client, queue, run)),
        register: Some(schedule::register),
    },
    Pattern {
        name: "pydantic-converter",
        summary: "typed, validated payloads",
        drive: |client, queue, run| Box::pin(pydantic_converter::tour(client, queue, run)),
        register: Some(pydantic_converter::register),
    },
];

/// The pattern `name`, or an error that lists them all.
pub fn find(name: &str) -> anyhow::Result<&'static Pattern> {
    PATTERNS.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<_> = PATTERNS.iter().map(|p| p.name).collect();
        anyhow::anyhow!("unknown pattern `{name}`; patterns: {}", names.join(", "))
    })
}

/// The outcome of one pattern, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The pattern's name.
    pub pattern: &'static str,
    /// Whether it did what the seed says it does.
    pub ok: bool,
    /// What it returned (or the error).
    pub result: Value,
    /// Milliseconds it took.
    pub ms: u128,
}

/// Runs one pattern against a worker polling `task_queue`; `run_id` keeps workflow ids
/// unique between tours. An unknown name is a failed report that lists the patterns.
pub async fn run(client: &Client, task_queue: &str, name: &str, run_id: &str) -> Report {
    let started = Instant::now();
    let (pattern, outcome) = match find(name) {
        Ok(pattern) => (
            pattern.name,
            (pattern.drive)(client, task_queue, run_id).await,
        ),
        Err(unknown) => ("unknown", Err(unknown)),
    };
    let (ok, result) = match outcome {
        Ok(value) => (true, value),
        Err(e) => (false, json!({ "error": format!("{e:#}") })),
    };
    Report {
        pattern,
        ok,
        result,
        ms: started.elapsed().as_millis(),
    }
}

// Helpers for the drivers.

/// `{workflow}-{run_id}`: a workflow id of this tour run.
pub(crate) fn workflow_id(workflow: &str, run_id: &str) -> String {
    format!("{workflow}-{run_id}")
}

/// Polls `check` every 100 ms for up to 30 s.
pub(crate) async fn eventually<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> anyhow::Result<T> {
    for _ in 0..300 {
        if let Some(value) = check().await {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("not reached in 30 s: {what}")
}

/// The names of the events of a history, in order.
pub(crate) fn event_types(history: &[HistoryEvent]) -> Vec<&'static str> {
    history
        .iter()
        .map(|e| e.event_type().as_str_name())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_an_unknown_one_lists_them_all() {
        for (i, pattern) in PATTERNS.iter().enumerate() {
            assert!(
                PATTERNS[..i].iter().all(|p| p.name != pattern.name),
                "{} is listed twice",
                pattern.name
            );
            assert_eq!(find(pattern.name).unwrap().name, pattern.name);
        }
        let unknown = find("bogus").err().unwrap().to_string();
        assert!(unknown.starts_with("unknown pattern `bogus`; patterns: activity-choice, "));
        assert!(
            PATTERNS.iter().all(|p| unknown.contains(p.name)),
            "{unknown}"
        );
    }
}
