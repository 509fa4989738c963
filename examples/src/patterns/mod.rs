//! The seed's patterns, one module each.

pub mod activity_choice;
pub mod cancellation;
pub mod child_workflow;
pub mod concurrent_timers;
pub mod continue_as_new;
pub mod custom_metrics;
pub mod encryption;
pub mod exceptions;
pub mod local_activity;
pub mod long_running_entity;
pub mod mtls;
pub mod parallel_activity;
pub mod polling_frequent;
pub mod polling_infrequent;
pub mod pydantic_converter;
pub mod schedule;
