//! Code generation behind Capstan's macros: `#[workflow]` and `#[activity]`; and the
//! foreign client stubs generated from a schema manifest ([`stubs`]).
//!
//! Semver-exempt: use the macros through the `capstan` crate. Each entry point runs one
//! pipeline, `ast` (parse) → `validate` (every rule, errors collected) → `expand`
//! (quote), and takes and returns `proc_macro2` token streams so that it can be tested
//! without a compiler in the loop.

mod ast;
mod determinism;
mod diagnostics;
mod expand;
pub mod stubs;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::{ast::WorkflowInput, diagnostics::Errors};

/// `#[workflow]` on a workflow's state struct or on its impl block.
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = ast::item_args("workflow", attr, &mut errors);
    let expansion = match ast::workflow(args, item.clone(), &mut errors) {
        Some(WorkflowInput::Struct(input)) => {
            validate::workflow_struct(&input, &mut errors);
            expand::workflow_struct(&input, errors.is_empty())
        }
        Some(WorkflowInput::Impl(input)) => {
            validate::workflow_impl(&input, &mut errors);
            expand::workflow_impl(&input, errors.is_empty())
        }
        None => item,
    };
    with_errors(expansion, errors)
}

/// `#[activity]` on a free function.
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = ast::item_args("activity", attr, &mut errors);
    let expansion = match ast::activity(args, item.clone(), &mut errors) {
        Some(input) => {
            validate::activity(&input, &mut errors);
            expand::activity(&input, errors.is_empty())
        }
        None => item,
    };
    with_errors(expansion, errors)
}

/// `#[workflow_fn]` on a helper function that workflow code calls: its body gets the
/// determinism checks of a handler's.
pub fn workflow_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let expansion = match ast::workflow_fn(attr, item.clone(), &mut errors) {
        Some(input) => {
            validate::workflow_fn(&input, &mut errors);
            let item = &input.item;
            quote!(#item)
        }
        None => item,
    };
    with_errors(expansion, errors)
}

/// `#[allow_nondeterministic]` where no `#[workflow]` or `#[workflow_fn]` consumed it:
/// it would exempt nothing, so say where it belongs.
pub fn allow_nondeterministic_outside_workflow(item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    validate::misplaced_opt_out(&item, &mut errors);
    with_errors(item, errors)
}

/// `#[run]`, `#[signal]`, `#[query]` or `#[update]` outside a `#[workflow]` impl block
/// (inside one, `#[workflow]` consumes them before they expand).
pub fn handler_outside_workflow(attribute: &str, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let at = syn::parse2::<syn::ImplItemFn>(item.clone())
        .map(|method| {
            let (fn_token, ident) = (method.sig.fn_token, method.sig.ident);
            quote!(#fn_token #ident)
        })
        .unwrap_or_else(|_| item.clone());
    errors.error(
        at,
        format!(
            "`#[{attribute}]` marks a method of a `#[workflow]` impl block; add `#[workflow]` \
             to the impl block"
        ),
    );
    with_errors(item, errors)
}

fn with_errors(expansion: TokenStream, errors: Errors) -> TokenStream {
    let errors = errors.into_compile_errors();
    quote!(#expansion #errors)
}
