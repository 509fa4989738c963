//! The seed's workflow patterns written with Capstan, and the pattern tour that runs them
//! end to end.

pub mod patterns;
pub mod tour;

use capstan::{Client, Worker};

/// The task queue the examples use by default.
pub const TASK_QUEUE: &str = "capstan-examples";

/// A worker with every example workflow and activity registered: each tour pattern's
/// that runs on the shared worker, in the tour's order.
pub fn worker(client: &Client, task_queue: &str) -> Worker {
    tour::PATTERNS
        .iter()
        .filter_map(|pattern| pattern.register)
        .fold(Worker::new(client, task_queue), |worker, register| {
            register(worker)
        })
}
