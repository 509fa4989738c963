//! The rules of `#[workflow]` and `#[activity]`, each reported at the offending token.
//! Every rule runs even after another failed, so one compile shows every mistake.

use std::collections::{BTreeMap, BTreeSet};

use quote::ToTokens;
use syn::{FnArg, Ident, ImplItemFn, ReturnType, Type};

use crate::{
    ast::{
        is_named, last_segment, ok_type, type_arguments, Activity, Handler, HandlerKind, Inputs,
        ItemArgs, WorkflowFn, WorkflowImpl, WorkflowStruct, OPT_OUT, WORKFLOW_FN,
    },
    determinism,
    diagnostics::{did_you_mean, source, Errors},
};

/// Names of the functions `#[workflow]` adds to the workflow type.
pub(crate) const RESERVED_METHODS: [&str; 3] = ["start", "execute", "handle"];

/// Methods of `WorkflowHandle` that a client method of the same name would shadow.
const HANDLE_METHODS: [&str; 8] = [
    "result",
    "cancel",
    "terminate",
    "describe",
    "signal_with",
    "query_with",
    "update_with",
    "start_update_with",
];

const STATE_HINT: &str =
    "state lives in the struct: read and change it with `ctx.state(|s| …)` / `ctx.state_mut(|s| …)`";

pub(crate) fn workflow_struct(input: &WorkflowStruct, errors: &mut Errors) {
    check_name(&input.args, "workflow", errors);
    if has_generics(&input.item.generics) {
        errors.error(
            &input.item.generics,
            format!(
                "`#[workflow]` structs cannot be generic; found `{}` — a workflow type is \
                 registered under one name: use concrete types",
                source(&input.item.generics)
            ),
        );
    }
    for field in &input.item.fields {
        determinism::check_state_type(&field.ty, errors);
    }
}

pub(crate) fn workflow_impl(input: &WorkflowImpl, errors: &mut Errors) {
    let item = &input.item;
    if let Some(name) = &input.args.name {
        errors.error(
            name,
            "the workflow type's name goes on the struct: `#[workflow(name = \"...\")]`, not on \
             the impl block",
        );
    }
    if has_generics(&item.generics) {
        errors.error(
            &item.generics,
            format!(
                "`#[workflow]` impl blocks cannot be generic; found `{}`",
                source(&item.generics)
            ),
        );
    }
    if let Some((_, trait_path, _)) = &item.trait_ {
        errors.error(
            trait_path,
            format!(
                "`#[workflow]` goes on the workflow's own impl block; found an impl of `{}` — \
                 write `impl {} {{ … }}`",
                source(trait_path),
                source(&item.self_ty)
            ),
        );
    }
    if input.self_ident.is_none() {
        errors.error(
            &item.self_ty,
            format!(
                "`#[workflow]` impl blocks are for a workflow struct; found `{}`",
                source(&item.self_ty)
            ),
        );
    }

    // Exactly one `#[run]`.
    let runs: Vec<&Handler> = input
        .handlers
        .iter()
        .filter(|h| h.kind == HandlerKind::Run)
        .collect();
    match runs.as_slice() {
        [] => errors.error(
            &item.self_ty,
            format!(
                "`#[workflow]` impl block has no `#[run]` function; add one: \
                 `#[run] pub async fn run(ctx: WorkflowContext<Self>, …) -> WorkflowResult<T>` \
                 in `impl {}`",
                source(&item.self_ty)
            ),
        ),
        [_] => {}
        [first, rest @ ..] => {
            for extra in rest {
                errors.error(
                    &extra.attr,
                    format!(
                        "a workflow has one `#[run]` function; found a second one, `{}` (the \
                         first is `{}`) — make it a plain method or a handler",
                        extra.ident(),
                        first.ident()
                    ),
                );
            }
        }
    }

    // Each method's body is checked once, in the first role found for it.
    let mut checked = BTreeSet::new();
    let mut check = |ident: &Ident, what: String, read_only, errors: &mut Errors| {
        if let Some(body) = input
            .body(ident)
            .filter(|_| checked.insert(ident.to_string()))
        {
            let code = determinism::Code {
                what: &what,
                body,
                read_only,
            };
            determinism::check(&code, errors);
        }
    };
    for handler in &input.handlers {
        handler_signature(input, handler, errors);
        let what = format!("`#[{}]` `{}`", handler.kind.attribute(), handler.ident());
        let read_only = (handler.kind == HandlerKind::Query).then_some(&determinism::QUERY);
        check(handler.ident(), what, read_only, errors);
        if let Some(validator) = validator(input, handler, errors) {
            let what = format!(
                "validator `{}` of `#[update]` `{}`",
                validator.sig.ident,
                handler.ident()
            );
            check(
                &validator.sig.ident,
                what,
                Some(&determinism::VALIDATOR),
                errors,
            );
        }
    }
    for method in &input.bodies {
        if method.workflow_fn {
            let what = format!("`#[{WORKFLOW_FN}]` `{}`", method.ident);
            check(&method.ident, what, None, errors);
        }
        determinism::check_opt_outs(&method.body, errors);
    }

    duplicate_names(input, errors);
    reserved_names(input, errors);
}

fn handler_signature(input: &WorkflowImpl, handler: &Handler, errors: &mut Errors) {
    let sig = &handler.method.sig;
    let attribute = handler.kind.attribute();
    let inputs = &handler.inputs;
    if has_generics(&sig.generics) {
        errors.error(
            &sig.generics,
            format!(
                "`#[{attribute}]` handlers cannot be generic; found `{}`",
                source(&sig.generics)
            ),
        );
    }
    if let Some(name) = &handler.args.name {
        if name.value().is_empty() {
            errors.error(name, format!("`#[{attribute}]` name must not be empty"));
        }
    }
    payload_params(
        inputs,
        &format!("`#[{attribute}]`"),
        "WorkflowContext<Self>",
        errors,
    );

    match handler.kind {
        HandlerKind::Run => {
            if sig.asyncness.is_none() {
                errors.error(
                    sig.fn_token,
                    "the `#[run]` function must be `async`; found a sync `fn` — write \
                     `async fn run(ctx: WorkflowContext<Self>, …)`",
                );
            }
            async_context(input, handler, errors);
            if handler.ok_type().is_none() {
                errors.error(
                    return_tokens(&sig.output, &sig.ident),
                    format!(
                        "the `#[run]` function returns `WorkflowResult<T>` (or `Result<T, \
                         Error>`); found {} — wrap the value: `Ok(value)`",
                        found_return(&sig.output)
                    ),
                );
            }
        }
        HandlerKind::Signal => {
            if sig.asyncness.is_some() {
                async_context(input, handler, errors);
            } else {
                sync_receiver(handler, "&mut self", errors);
            }
            if !returns_unit(&sig.output) {
                errors.error(
                    &sig.output,
                    format!(
                        "`#[signal]` handlers return `()`; found {} — a signal has no answer: \
                         use `#[update]` to return a value",
                        found_return(&sig.output)
                    ),
                );
            }
        }
        HandlerKind::Query => {
            if let Some(asyncness) = sig.asyncness {
                errors.error(
                    asyncness,
                    "`#[query]` handlers cannot be `async`: a query answers at once from the \
                     state — remove `async`, or use `#[update]`",
                );
            }
            sync_receiver(handler, "&self", errors);
            if returns_unit(&sig.output) {
                errors.error(
                    return_tokens(&sig.output, &sig.ident),
                    format!(
                        "`#[query]` handlers must return a value; found {} — return what the \
                         caller asks for",
                        found_return(&sig.output)
                    ),
                );
            }
        }
        HandlerKind::Update => {
            if sig.asyncness.is_some() {
                async_context(input, handler, errors);
            } else {
                sync_receiver(handler, "&mut self", errors);
            }
            if handler.ok_type().is_none() {
                errors.error(
                    return_tokens(&sig.output, &sig.ident),
                    format!(
                        "`#[update]` handlers return `Result<T, E>`; found {} — wrap the value: \
                         `Ok(value)`, and reject with `Err(…)`",
                        found_return(&sig.output)
                    ),
                );
            }
        }
    }
}

/// `#[run]` and async signals and updates: `ctx: WorkflowContext<Self>` first, no receiver.
fn async_context(input: &WorkflowImpl, handler: &Handler, errors: &mut Errors) {
    let sig = &handler.method.sig;
    let attribute = handler.kind.attribute();
    let what = match handler.kind {
        HandlerKind::Run => "the `#[run]` function takes".to_owned(),
        _ => format!("async `#[{attribute}]` handlers take"),
    };
    if let Some(receiver) = &handler.inputs.receiver {
        errors.error(
            receiver,
            format!(
                "{what} `ctx: WorkflowContext<Self>`, not `{}`; {STATE_HINT}",
                source(receiver)
            ),
        );
        return;
    }
    let Some(context) = &handler.inputs.context else {
        let found = match sig.inputs.first() {
            Some(first) => format!("`{}`", source(first)),
            None => "no parameters".to_owned(),
        };
        let at = match sig.inputs.first() {
            Some(first) => first.to_token_stream(),
            None => sig.ident.to_token_stream(),
        };
        errors.error(
            at,
            format!("{what} `ctx: WorkflowContext<Self>` as the first parameter; found {found}"),
        );
        return;
    };
    let argument = type_arguments(&context.ty).into_iter().next();
    let is_self = argument.is_some_and(|ty| {
        last_segment(ty).is_some_and(|segment| {
            segment.ident == "Self"
                || input
                    .self_ident
                    .as_ref()
                    .is_some_and(|ident| segment.ident == *ident)
        })
    });
    if !is_self {
        errors.error(
            &context.ty,
            format!(
                "{what} `ctx: WorkflowContext<Self>`; found `{}`",
                source(&context.ty)
            ),
        );
    }
}

/// Sync signals, updates and queries: the right receiver and no context.
fn sync_receiver(handler: &Handler, expected: &str, errors: &mut Errors) {
    let sig = &handler.method.sig;
    let attribute = handler.kind.attribute();
    let fix = match handler.kind {
        HandlerKind::Query => " — queries may not change workflow state, use `#[update]`",
        HandlerKind::Signal if expected == "&mut self" => {
            " — signals exist to change workflow state"
        }
        HandlerKind::Update => " — an update that only reads is a `#[query]`",
        _ => "",
    };
    if let Some(context) = &handler.inputs.context {
        let message = match handler.kind {
            HandlerKind::Query => format!(
                "`#[query]` handlers take `&self`, not a `WorkflowContext`; found `{}` — a query \
                 only reads the state and may not schedule activities, timers or other \
                 commands: remove the parameter and read the state through `&self`",
                source(context)
            ),
            _ => format!(
                "sync `#[{attribute}]` handlers take `{expected}`, not a `WorkflowContext`, or \
                 make the handler `async` to take `ctx: WorkflowContext<Self>`"
            ),
        };
        errors.error(context, message);
        return;
    }
    let found = match &handler.inputs.receiver {
        None => {
            let hint = match handler.kind {
                HandlerKind::Query => String::new(),
                _ => {
                    ", or make the handler `async` to take `ctx: WorkflowContext<Self>`".to_owned()
                }
            };
            errors.error(
                &sig.ident,
                format!(
                    "`#[{attribute}]` handlers must take `{expected}`; found no receiver — add \
                     `{expected}`{hint}"
                ),
            );
            return;
        }
        Some(receiver) => receiver,
    };
    let actual = if found.colon_token.is_some() {
        source(found)
    } else {
        match (&found.reference, &found.mutability) {
            (Some(_), Some(_)) => "&mut self".to_owned(),
            (Some(_), None) => "&self".to_owned(),
            (None, _) => "self".to_owned(),
        }
    };
    if actual != expected {
        errors.error(
            found,
            format!("`#[{attribute}]` handlers must take `{expected}`; found `{actual}`{fix}"),
        );
    }
}

/// Payload arguments: owned types (they are deserialized), and the context only first.
fn payload_params(inputs: &Inputs, what: &str, context: &str, errors: &mut Errors) {
    let context_name = context.split('<').next().unwrap_or(context);
    for param in &inputs.params {
        if is_named(&param.ty, context_name) {
            errors.error(
                &param.ty,
                format!("`{context}` must be the first parameter of {what} functions"),
            );
            continue;
        }
        if matches!(
            *param.ty,
            Type::Reference(_) | Type::ImplTrait(_) | Type::Infer(_)
        ) {
            errors.error(
                &param.ty,
                format!(
                    "{what} arguments arrive as payloads and must be owned types; found `{}` — \
                     take an owned type such as `String` or `Vec<T>`",
                    source(&param.ty)
                ),
            );
        }
    }
}

/// Finds and checks an update's validator; returns it when it exists.
fn validator<'a>(
    input: &'a WorkflowImpl,
    handler: &Handler,
    errors: &mut Errors,
) -> Option<&'a ImplItemFn> {
    let path = handler.args.validator.as_ref()?;
    if handler.kind != HandlerKind::Update {
        return None;
    }
    let ident: Option<&Ident> = match path.segments.len() {
        1 if path.leading_colon.is_none() => Some(&path.segments[0].ident),
        2 if path.segments[0].ident == "Self" => Some(&path.segments[1].ident),
        _ => None,
    };
    let Some(ident) = ident else {
        errors.error(
            path,
            format!(
                "the validator of `#[update]` `{}` must be a method of this impl block; found \
                 `{}` — write `validator = check_{}`",
                handler.ident(),
                source(path),
                handler.ident()
            ),
        );
        return None;
    };
    let Some(method) = input.methods().find(|method| method.sig.ident == *ident) else {
        let names: Vec<String> = input.methods().map(|m| m.sig.ident.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = match did_you_mean(&ident.to_string(), &names) {
            Some(close) => format!("; did you mean `{close}`?"),
            None => format!(
                " — add `fn {ident}(&self, …) -> Result<(), UpdateError>` to this impl block"
            ),
        };
        errors.error(
            path,
            format!(
                "no method `{ident}` in this impl block for the validator of `#[update]` `{}`{hint}",
                handler.ident()
            ),
        );
        return None;
    };
    let sig = &method.sig;
    let update = handler.ident();
    let expected: Vec<String> = handler
        .inputs
        .params
        .iter()
        .map(|param| format!("&{}", source(&param.ty)))
        .collect();
    let expected_list = expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(asyncness) = sig.asyncness {
        errors.error(
            asyncness,
            format!("validator `{ident}` of `#[update]` `{update}` cannot be `async`"),
        );
    }
    match method.sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) if receiver.reference.is_some() && receiver.mutability.is_none() && receiver.colon_token.is_none() => {}
        Some(FnArg::Receiver(receiver)) => errors.error(
            receiver,
            format!(
                "validator `{ident}` of `#[update]` `{update}` must take `&self`; found `{}` — \
                 a validator may not change workflow state",
                source(receiver)
            ),
        ),
        _ => errors.error(
            &sig.ident,
            format!("validator `{ident}` of `#[update]` `{update}` must take `&self`; found no receiver"),
        ),
    }
    let params: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let context = params
        .iter()
        .find(|param| is_named(&param.ty, "WorkflowContext"));
    if let Some(context) = context {
        errors.error(
            context,
            format!(
                "validator `{ident}` of `#[update]` `{update}` cannot take a `WorkflowContext`; \
                 found `{}` — a validator only reads the state: remove the parameter and read \
                 the state through `&self`",
                source(*context)
            ),
        );
    } else if params.len() != expected.len() {
        errors.error(
            &sig.inputs,
            format!(
                "validator `{ident}` of `#[update]` `{update}` takes {} argument(s) but the update \
                 takes {}; a validator takes a reference to each of the update's arguments{}",
                params.len(),
                expected.len(),
                if expected.is_empty() { String::new() } else { format!(": {expected_list}") }
            ),
        );
    } else {
        for (param, expected) in params.iter().zip(&expected) {
            let mut ty = (*param.ty).clone();
            syn::visit_mut::VisitMut::visit_type_mut(
                &mut crate::ast::ReplaceSelf(&input.item.self_ty),
                &mut ty,
            );
            let found = source(&ty);
            if &found != expected {
                errors.error(
                    &param.ty,
                    format!(
                        "validator `{ident}` of `#[update]` `{update}` takes `{expected}` here (a \
                         reference to the update's argument); found `{found}`"
                    ),
                );
            }
        }
    }
    let returns_unit_result = ok_type(&sig.output).is_some_and(is_unit);
    if !returns_unit_result {
        errors.error(
            return_tokens(&sig.output, &sig.ident),
            format!(
                "validator `{ident}` of `#[update]` `{update}` returns `Result<(), E>`; found {} \
                 — accept with `Ok(())`, reject with `Err(…)`",
                found_return(&sig.output)
            ),
        );
    }
    Some(method)
}

/// Handler names are unique within signals, within queries and within updates.
fn duplicate_names(input: &WorkflowImpl, errors: &mut Errors) {
    for kind in [HandlerKind::Signal, HandlerKind::Query, HandlerKind::Update] {
        let mut seen: BTreeMap<String, &Ident> = BTreeMap::new();
        for handler in input.handlers.iter().filter(|h| h.kind == kind) {
            let name = handler.name();
            if let Some(first) = seen.get(&name) {
                errors.push(syn::Error::new(
                    handler.name_span(),
                    format!(
                        "duplicate {} name `{name}`: also used by `{first}` — give one of them \
                         another name with `#[{}(name = \"...\")]`",
                        kind.attribute(),
                        kind.attribute()
                    ),
                ));
            } else {
                seen.insert(name, handler.ident());
            }
        }
    }
}

/// The functions the expansion adds must not clash with the user's.
fn reserved_names(input: &WorkflowImpl, errors: &mut Errors) {
    let self_ty = source(&input.item.self_ty);
    for method in input.methods() {
        let ident = &method.sig.ident;
        if RESERVED_METHODS.iter().any(|reserved| ident == reserved) {
            errors.error(
                ident,
                format!(
                    "method name `{ident}` is reserved: `#[workflow]` generates \
                     `{self_ty}::{ident}` for clients — rename the method (a handler keeps \
                     `{ident}` as its name with `name = \"{ident}\"`)"
                ),
            );
        }
    }
    let handle = format!("{self_ty}Handle");
    let mut client_methods: BTreeMap<String, &Handler> = BTreeMap::new();
    for handler in input.handlers.iter().filter(|h| h.kind != HandlerKind::Run) {
        let ident = handler.ident();
        let mut names = vec![ident.to_string()];
        if handler.kind == HandlerKind::Update {
            names.push(format!("start_{ident}"));
        }
        for name in names {
            if HANDLE_METHODS.contains(&name.as_str()) {
                errors.error(
                    ident,
                    format!(
                        "`#[{}]` `{ident}` would generate `{handle}::{name}`, which shadows \
                         `WorkflowHandle::{name}` — rename the method (the handler keeps its \
                         name with `name = \"{}\"`)",
                        handler.kind.attribute(),
                        handler.name()
                    ),
                );
            } else if let Some(first) = client_methods.get(&name) {
                errors.error(
                    ident,
                    format!(
                        "`#[{}]` `{ident}` and `#[{}]` `{}` both generate the client method \
                         `{handle}::{name}` — rename one of them",
                        handler.kind.attribute(),
                        first.kind.attribute(),
                        first.ident()
                    ),
                );
            } else {
                client_methods.insert(name, handler);
            }
        }
    }
}

/// A free `#[workflow_fn]` function: checked like a handler's body.
pub(crate) fn workflow_fn(input: &WorkflowFn, errors: &mut Errors) {
    let what = format!("`#[{WORKFLOW_FN}]` `{}`", input.item.sig.ident);
    let code = determinism::Code {
        what: &what,
        body: &input.body,
        read_only: None,
    };
    determinism::check(&code, errors);
    determinism::check_opt_outs(&input.body, errors);
}

/// `#[allow_nondeterministic]` that expanded on its own, outside workflow code.
pub(crate) fn misplaced_opt_out(item: &proc_macro2::TokenStream, errors: &mut Errors) {
    let parsed = syn::parse2::<syn::Item>(item.clone()).ok();
    let under_workflow_fn = match &parsed {
        Some(syn::Item::Fn(function)) => function
            .attrs
            .iter()
            .any(|attr| crate::ast::attribute_is(attr, WORKFLOW_FN)),
        _ => false,
    };
    let message = if under_workflow_fn {
        format!(
            "`#[{OPT_OUT}]` above `#[{WORKFLOW_FN}]` runs first and exempts nothing — put it \
             below: `#[{WORKFLOW_FN}] #[{OPT_OUT}(reason = \"...\")] fn …`"
        )
    } else {
        format!(
            "`#[{OPT_OUT}]` exempts workflow code from the determinism checks; found it outside \
             workflow code — put it on a statement, expression or method inside a \
             `#[workflow]` impl block or a `#[{WORKFLOW_FN}]` function, or remove it"
        )
    };
    // The call site of an attribute macro is the attribute itself.
    errors.push(syn::Error::new(proc_macro2::Span::call_site(), message));
}

pub(crate) fn activity(input: &Activity, errors: &mut Errors) {
    let sig = &input.item.sig;
    check_name(&input.args, "activity", errors);
    if has_generics(&sig.generics) {
        errors.error(
            &sig.generics,
            format!(
                "`#[activity]` functions cannot be generic; found `{}` — an activity is \
                 registered under one name: use concrete types",
                source(&sig.generics)
            ),
        );
    }
    if let Some(receiver) = &input.inputs.receiver {
        errors.error(
            receiver,
            format!(
                "`#[activity]` goes on free functions; found `{}` — move the function out of \
                 the impl block",
                source(receiver)
            ),
        );
    }
    for (token, what) in [
        (sig.constness.map(|t| t.to_token_stream()), "const"),
        (sig.unsafety.map(|t| t.to_token_stream()), "unsafe"),
        (sig.abi.as_ref().map(|t| t.to_token_stream()), "extern"),
    ] {
        if let Some(token) = token {
            errors.error(token, format!("`#[activity]` functions cannot be `{what}`"));
        }
    }
    payload_params(&input.inputs, "`#[activity]`", "ActivityContext", errors);
    if ok_type(&sig.output).is_none() {
        let fix = match &sig.output {
            ReturnType::Default => "return `Result<(), ActivityError>` and end with `Ok(())`",
            ReturnType::Type(..) => "wrap the value: `Ok(value)`",
        };
        errors.error(
            return_tokens(&sig.output, &sig.ident),
            format!(
                "`#[activity]` functions return `Result<T, ActivityError>`; found {} — {fix}",
                found_return(&sig.output)
            ),
        );
    }
}

fn check_name(args: &ItemArgs, attribute: &str, errors: &mut Errors) {
    if let Some(name) = &args.name {
        if name.value().is_empty() {
            errors.error(name, format!("`#[{attribute}]` name must not be empty"));
        }
    }
}

fn has_generics(generics: &syn::Generics) -> bool {
    !generics.params.is_empty() || generics.where_clause.is_some()
}

pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
}

fn returns_unit(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => true,
        ReturnType::Type(_, ty) => is_unit(ty),
    }
}

/// "`String`" or "nothing", for messages about return types.
fn found_return(output: &ReturnType) -> String {
    match output {
        ReturnType::Default => "nothing".to_owned(),
        ReturnType::Type(_, ty) => format!("`{}`", source(ty)),
    }
}

/// Where an error about a return type points: the type, or the name when there is none.
fn return_tokens(output: &ReturnType, ident: &Ident) -> proc_macro2::TokenStream {
    match output {
        ReturnType::Default => ident.to_token_stream(),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    }
}
