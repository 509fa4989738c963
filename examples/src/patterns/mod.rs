//! The seed's patterns, one module each.

pub mod activity_choice;
pub mod child_workflow;
pub mod exceptions;
pub mod local_activity;
pub mod parallel_activity;
pub mod pydantic_converter;
