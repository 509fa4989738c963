//! Procedural macros of Capstan. Use them through the `capstan` crate, which documents
//! them; each entry point hands its tokens to `capstan-codegen`.

use proc_macro::TokenStream;

/// Defines a workflow: on its state struct (the type name, the client handle) and on its
/// impl block (the `#[run]` function and the `#[signal]`, `#[query]` and `#[update]`
/// handlers).
#[proc_macro_attribute]
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::workflow(attr.into(), item.into()).into()
}

/// Defines an activity: a free function that the worker runs on a workflow's behalf.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::activity(attr.into(), item.into()).into()
}

/// Marks a workflow's run function inside a `#[workflow]` impl block.
#[proc_macro_attribute]
pub fn run(_attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::handler_outside_workflow("run", item.into()).into()
}

/// Marks a signal handler inside a `#[workflow]` impl block.
#[proc_macro_attribute]
pub fn signal(_attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::handler_outside_workflow("signal", item.into()).into()
}

/// Marks a query handler inside a `#[workflow]` impl block.
#[proc_macro_attribute]
pub fn query(_attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::handler_outside_workflow("query", item.into()).into()
}

/// Marks an update handler inside a `#[workflow]` impl block.
#[proc_macro_attribute]
pub fn update(_attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::handler_outside_workflow("update", item.into()).into()
}

/// Marks a helper function as workflow code: its body gets the same determinism checks as
/// a handler's.
#[proc_macro_attribute]
pub fn workflow_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::workflow_fn(attr.into(), item.into()).into()
}

/// Exempts a statement, expression or function of workflow code from the determinism
/// checks; `#[workflow]` and `#[workflow_fn]` consume it. Expanding on its own means it is
/// outside workflow code, which is an error.
#[proc_macro_attribute]
pub fn allow_nondeterministic(_attr: TokenStream, item: TokenStream) -> TokenStream {
    capstan_codegen::allow_nondeterministic_outside_workflow(item.into()).into()
}
