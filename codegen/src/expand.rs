//! Code generation: the trait impls, client stubs and type assertions. Works from the
//! model only; with `valid == false` it emits a stub (the user's items and impls whose
//! shapes are known) so that one error does not cascade into many.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{parse_quote, spanned::Spanned, Attribute, Ident, LitStr, Path, ReturnType, Type};

use crate::{
    ast::{Activity, Handler, HandlerKind, ItemArgs, Param, WorkflowImpl, WorkflowStruct},
    validate::{is_unit, RESERVED_METHODS},
};

/// `::capstan::__private`, or `<crate = path>::__private`.
fn private(args: &ItemArgs) -> TokenStream {
    let krate: Path = args
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::capstan));
    quote!(#krate::__private)
}

fn doc_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("doc"))
}

/// `(A, B,)` or `()`.
fn tuple_type(params: &[Param]) -> TokenStream {
    let tys = params.iter().map(|p| &p.ty);
    quote!((#(#tys,)*))
}

/// `(a, b,)` or `()`: the pattern and the value of an argument tuple.
fn tuple_bindings(params: &[Param]) -> TokenStream {
    let bindings = params.iter().map(|p| &p.binding);
    quote!((#(#bindings,)*))
}

/// What callers pass: `()`, `A` or `(A, B)`.
fn input_type(params: &[Param]) -> TokenStream {
    match params {
        [one] => {
            let ty = &one.ty;
            quote!(#ty)
        }
        _ => tuple_type(params),
    }
}

/// `assert_payload::<T>()` at `T`'s span, so a type that is not a payload is reported
/// where the user wrote it.
fn assert_payload(private: &TokenStream, ty: &Type) -> TokenStream {
    quote_spanned! {ty.span()=> #private::assert_payload::<#ty>();}
}

fn assertions(checks: Vec<TokenStream>) -> TokenStream {
    if checks.is_empty() {
        return TokenStream::new();
    }
    quote! {
        const _: () = {
            #[allow(dead_code, clippy::all)]
            fn __capstan_assert() {
                #(#checks)*
            }
        };
    }
}

/// `Some("…")` with an item's doc comment, or `None`: its description in the manifest.
fn description(attrs: &[Attribute]) -> TokenStream {
    match crate::ast::doc_text(attrs) {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    }
}

/// `&[arg::<A>("a"), …]`: the arguments' names and schemas, each at its type's span so a
/// type without `JsonSchema` is reported where the user wrote it.
fn schema_args(private: &TokenStream, params: &[Param]) -> TokenStream {
    let args = params.iter().enumerate().map(|(i, p)| {
        let ty = &p.ty;
        let binding = p.binding.to_string();
        let name = if binding.starts_with("__capstan_") {
            format!("arg{i}")
        } else {
            binding
        };
        quote_spanned! {ty.span()=> #private::arg::<#ty>(#name)}
    });
    quote!(&[#(#args),*])
}

/// `output::<T>()`: how to emit a result's schema, at `T`'s span.
fn schema_output(private: &TokenStream, ty: &Type) -> TokenStream {
    quote_spanned! {ty.span()=> #private::output::<#ty>()}
}

/// `PurchaseFruitsWorkflowHandle`.
fn handle_ident(ident: &Ident) -> Ident {
    format_ident!("{}Handle", ident)
}

pub(crate) fn workflow_struct(input: &WorkflowStruct, valid: bool) -> TokenStream {
    let item = &input.item;
    if !valid && !item.generics.params.is_empty() {
        return quote!(#item);
    }
    let private = private(&input.args);
    let ident = &item.ident;
    let vis = &item.vis;
    let name = input
        .args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let handle = handle_ident(ident);
    let handle_name = handle.to_string();
    let description = description(&item.attrs);
    let doc = format!(
        " Handle of a running `{ident}`: typed signals, queries and updates; derefs to \
         `WorkflowHandle` for result, cancel, terminate and describe. Inside a workflow, \
         `ctx.external_workflow_of::<{ident}>(id)` gives one with the typed signals."
    );
    quote! {
        #item

        #[automatically_derived]
        impl #private::WorkflowType for #ident {
            const NAME: &'static str = #name;
            const DESCRIPTION: ::core::option::Option<&'static str> = #description;
        }

        #[doc = #doc]
        #vis struct #handle<__CapstanTarget = #private::WorkflowHandle<#ident>>(__CapstanTarget);

        #[automatically_derived]
        impl ::core::convert::From<#private::WorkflowHandle<#ident>> for #handle {
            fn from(handle: #private::WorkflowHandle<#ident>) -> Self {
                Self(handle)
            }
        }

        #[automatically_derived]
        impl ::core::convert::From<#private::ExternalWorkflowHandle>
            for #handle<#private::ExternalWorkflowHandle>
        {
            fn from(handle: #private::ExternalWorkflowHandle) -> Self {
                Self(handle)
            }
        }

        #[automatically_derived]
        impl<__CapstanTarget> ::core::ops::Deref for #handle<__CapstanTarget> {
            type Target = __CapstanTarget;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        #[automatically_derived]
        impl<__CapstanTarget: ::core::clone::Clone> ::core::clone::Clone for #handle<__CapstanTarget> {
            fn clone(&self) -> Self {
                Self(::core::clone::Clone::clone(&self.0))
            }
        }

        #[automatically_derived]
        impl<__CapstanTarget: ::core::fmt::Debug> ::core::fmt::Debug for #handle<__CapstanTarget> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_tuple(#handle_name).field(&self.0).finish()
            }
        }
    }
}

/// The wire name of a handler as a string literal at the name's span.
fn name_literal(handler: &Handler) -> LitStr {
    handler
        .args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&handler.ident().to_string(), handler.ident().span()))
}

/// Whether a type can be named outside the handler (for stubs built despite errors).
fn is_owned(ty: &Type) -> bool {
    !matches!(ty, Type::Reference(_) | Type::ImplTrait(_) | Type::Infer(_))
}

pub(crate) fn workflow_impl(input: &WorkflowImpl, valid: bool) -> TokenStream {
    let item = &input.item;
    let Some(self_ident) = &input.self_ident else {
        return quote!(#item);
    };
    if !item.generics.params.is_empty() || item.trait_.is_some() {
        return quote!(#item);
    }
    let private = private(&input.args);
    let self_ty = &item.self_ty;
    let handle = handle_path(self_ty, self_ident);

    let run = input
        .run()
        .filter(|run| run.inputs.params.iter().all(|p| is_owned(&p.ty)));
    let no_params = Vec::new();
    let run_params = run.map_or(&no_params, |run| &run.inputs.params);
    let args_ty = tuple_type(run_params);
    let input_ty = input_type(run_params);
    let into_args = match run_params.len() {
        1 => quote!((__capstan_input,)),
        _ => quote!(__capstan_input),
    };
    let output: Type = run
        .and_then(Handler::ok_type)
        .filter(|ty| is_owned(ty))
        .cloned()
        .unwrap_or_else(|| parse_quote!(()));

    let mut checks = Vec::new();
    let mut registrations = Vec::new();
    let mut descriptions = Vec::new();
    if valid {
        for handler in &input.handlers {
            registrations.push(register(handler));
            descriptions.push(describe(handler, &private));
            checks.extend(
                handler
                    .inputs
                    .params
                    .iter()
                    .map(|p| assert_payload(&private, &p.ty)),
            );
            if let Some(ty) = client_output(handler) {
                checks.push(assert_payload(&private, &ty));
            }
        }
    }
    let define_param = if valid {
        quote!(__capstan_def)
    } else {
        quote!(_)
    };

    let describe = if valid {
        quote! {
            fn describe(__capstan_describer: &mut #private::Describer<'_>) {
                #(#descriptions)*
            }
        }
    } else {
        TokenStream::new()
    };
    let checks = assertions(checks);
    let client_fns = client_functions(input, run, &private, &handle);
    let (signal_methods, handle_methods) = handle_methods(input, &private);

    quote! {
        #item

        #[automatically_derived]
        impl #private::WorkflowDefinition for #self_ty {
            type Args = #args_ty;
            type Input = #input_ty;
            type Output = #output;
            type Handle = #handle;
            type External = #handle<#private::ExternalWorkflowHandle>;

            fn into_args(__capstan_input: Self::Input) -> Self::Args {
                #into_args
            }

            fn define(#define_param: &mut #private::Definition<Self>) {
                #(#registrations)*
            }

            #describe
        }

        #client_fns

        #[automatically_derived]
        impl<__CapstanTarget: #private::SignalTarget> #handle<__CapstanTarget> {
            #(#signal_methods)*
        }

        #[automatically_derived]
        impl #handle {
            #(#handle_methods)*
        }

        #checks
    }
}

/// `PurchaseFruitsWorkflowHandle`, with the self type's module path if it has one.
fn handle_path(self_ty: &Type, self_ident: &Ident) -> Path {
    let mut path: Path = match self_ty {
        Type::Path(path) => path.path.clone(),
        _ => parse_quote!(#self_ident),
    };
    if let Some(last) = path.segments.last_mut() {
        last.ident = handle_ident(self_ident);
        last.arguments = syn::PathArguments::None;
    }
    path
}

/// One `__capstan_def.<kind>(…)` registration.
fn register(handler: &Handler) -> TokenStream {
    let ident = handler.ident();
    let name = name_literal(handler);
    let params = &handler.inputs.params;
    let pat = tuple_bindings(params);
    let ty = tuple_type(params);
    let bindings: Vec<&Ident> = params.iter().map(|p| &p.binding).collect();
    let is_async = handler.is_async();
    match handler.kind {
        HandlerKind::Run => quote! {
            __capstan_def.run(|__capstan_ctx, #pat: #ty| Self::#ident(__capstan_ctx, #(#bindings),*));
        },
        HandlerKind::Signal if is_async => quote! {
            __capstan_def.signal_async(#name, |__capstan_ctx, #pat: #ty| Self::#ident(__capstan_ctx, #(#bindings),*));
        },
        HandlerKind::Signal => quote! {
            __capstan_def.signal(#name, |__capstan_state: &mut Self, #pat: #ty| Self::#ident(__capstan_state, #(#bindings),*));
        },
        HandlerKind::Query => quote! {
            __capstan_def.query(#name, |__capstan_state: &Self, #pat: #ty| Self::#ident(__capstan_state, #(#bindings),*));
        },
        HandlerKind::Update => {
            let update = if is_async {
                quote! {
                    __capstan_def.update_async(#name, |__capstan_ctx, #pat: #ty| Self::#ident(__capstan_ctx, #(#bindings),*));
                }
            } else {
                quote! {
                    __capstan_def.update(#name, |__capstan_state: &mut Self, #pat: #ty| Self::#ident(__capstan_state, #(#bindings),*));
                }
            };
            let validator = handler.args.validator.as_ref().map(|path| {
                let validator = path.segments.last().map(|segment| &segment.ident);
                // Spanned at the `validator = …` argument: a signature mismatch the
                // syntactic checks missed is reported there.
                let call = quote_spanned! {path.span()=> Self::#validator(__capstan_state, #(#bindings),*)};
                quote! {
                    __capstan_def.validator(#name, |__capstan_state: &Self, #pat: &#ty| #call);
                }
            });
            quote!(#update #validator)
        }
    }
}

/// One `__capstan_describer.<kind>(…)` call: the handler's name, doc, argument and result
/// schemas for the manifest.
fn describe(handler: &Handler, private: &TokenStream) -> TokenStream {
    let name = name_literal(handler);
    let doc = description(&handler.method.attrs);
    let args = schema_args(private, &handler.inputs.params);
    let unit: Type = parse_quote!(());
    let output = client_output(handler).unwrap_or(unit);
    let output = schema_output(private, &output);
    match handler.kind {
        HandlerKind::Run => quote! {
            __capstan_describer.run(#doc, #args, #output);
        },
        HandlerKind::Signal => quote! {
            __capstan_describer.signal(#name, #doc, #args);
        },
        HandlerKind::Query => quote! {
            __capstan_describer.query(#name, #doc, #args, #output);
        },
        HandlerKind::Update => {
            let validator = handler.args.validator.is_some();
            quote! {
                __capstan_describer.update(#name, #doc, #args, #output, #validator);
            }
        }
    }
}

/// The type a client receives from a query or update.
fn client_output(handler: &Handler) -> Option<Type> {
    match handler.kind {
        HandlerKind::Run => handler.ok_type().cloned(),
        HandlerKind::Signal => None,
        HandlerKind::Query => match &handler.method.sig.output {
            ReturnType::Type(_, ty) if !is_unit(ty) => Some((**ty).clone()),
            _ => None,
        },
        HandlerKind::Update => handler.ok_type().cloned(),
    }
    .filter(is_owned)
}

/// Bindings for the run's arguments in `start`/`execute`, renamed where they would clash
/// with `client` and `workflow_id`.
fn client_bindings(params: &[Param]) -> Vec<Ident> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if p.binding == "client" || p.binding == "workflow_id" {
                format_ident!("__capstan_arg{}", i)
            } else {
                p.binding.clone()
            }
        })
        .collect()
}

/// `start`, `execute`, `handle` and the `update_<handler>` calls on the workflow type.
fn client_functions(
    input: &WorkflowImpl,
    run: Option<&Handler>,
    private: &TokenStream,
    handle: &Path,
) -> TokenStream {
    let Some(run) = run else {
        return TokenStream::new();
    };
    let self_ty = &input.item.self_ty;
    let workflow = crate::diagnostics::source(self_ty);
    let taken = |name: &str| input.methods().any(|m| m.sig.ident == name);
    if RESERVED_METHODS.iter().any(|name| taken(name)) {
        return TokenStream::new();
    }
    let vis = &run.method.vis;
    let params = &run.inputs.params;
    let bindings = client_bindings(params);
    let tys: Vec<&Type> = params.iter().map(|p| &*p.ty).collect();
    let start_doc = format!(
        " Starts a `{workflow}` workflow with the id `workflow_id`: await the returned builder \
         to get its handle."
    );
    let execute_doc = format!(
        " Starts a `{workflow}` workflow with the id `workflow_id` and waits for its result: \
         await the returned builder."
    );
    let handle_doc = format!(
        " The handle of the `{workflow}` workflow with the id `workflow_id`: its signals, \
         queries, updates and result."
    );
    let string = quote!(::core::convert::Into<::std::string::String>);
    let update_calls = update_calls(input, private, &taken);
    quote! {
        #[automatically_derived]
        impl #self_ty {
            #(#update_calls)*

            #[doc = #start_doc]
            #vis fn start(
                client: &#private::Client,
                workflow_id: impl #string,
                #(#bindings: #tys),*
            ) -> #private::StartWorkflow<Self> {
                #private::StartWorkflow::<Self>::new(
                    client,
                    ::core::convert::Into::into(workflow_id),
                    (#(#bindings,)*),
                )
            }

            #[doc = #execute_doc]
            #vis fn execute(
                client: &#private::Client,
                workflow_id: impl #string,
                #(#bindings: #tys),*
            ) -> #private::ExecuteWorkflow<Self> {
                #private::ExecuteWorkflow::<Self>::new(
                    client,
                    ::core::convert::Into::into(workflow_id),
                    (#(#bindings,)*),
                )
            }

            #[doc = #handle_doc]
            #vis fn handle(client: &#private::Client, workflow_id: impl #string) -> #handle {
                ::core::convert::From::from(#private::WorkflowHandle::<Self>::new(
                    client,
                    ::core::convert::Into::into(workflow_id),
                ))
            }
        }
    }
}

/// `update_<handler>` on the workflow type, one per update: the update with its
/// arguments, typed by the handler, for update-with-start (`StartWorkflow::with_update`).
/// None where the workflow has a method of that name.
fn update_calls(
    input: &WorkflowImpl,
    private: &TokenStream,
    taken: &dyn Fn(&str) -> bool,
) -> Vec<TokenStream> {
    let mut seen = std::collections::BTreeSet::new();
    let mut calls = Vec::new();
    for handler in &input.handlers {
        if handler.kind != HandlerKind::Update
            || !handler.inputs.params.iter().all(|p| is_owned(&p.ty))
        {
            continue;
        }
        let Some(output) = client_output(handler) else {
            continue;
        };
        let call = format_ident!("update_{}", handler.ident());
        if taken(&call.to_string()) || !seen.insert(call.to_string()) {
            continue;
        }
        let vis = &handler.method.vis;
        let name = name_literal(handler);
        let doc = format!(
            " The `{}` update with these arguments, to send with a start \
             (update-with-start): `start(...).with_update({call}(...))`.",
            name.value()
        );
        let params = &handler.inputs.params;
        let bindings: Vec<&Ident> = params.iter().map(|p| &p.binding).collect();
        let tys: Vec<&Type> = params.iter().map(|p| &*p.ty).collect();
        calls.push(quote! {
            #[doc = #doc]
            #vis fn #call(#(#bindings: #tys),*) -> #private::UpdateCall<Self, #output> {
                #private::UpdateCall::new(#name, (#(#bindings,)*))
            }
        });
    }
    calls
}

/// The typed methods of the handle: one per signal (for any `SignalTarget`: the client
/// or a workflow), and one per query and two per update (client only).
fn handle_methods(
    input: &WorkflowImpl,
    private: &TokenStream,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut signals = Vec::new();
    let mut methods = Vec::new();
    let client_error = quote!(#private::ClientError);
    for handler in &input.handlers {
        if handler.kind == HandlerKind::Run
            || !handler.inputs.params.iter().all(|p| is_owned(&p.ty))
            || !seen.insert(handler.ident().to_string())
        {
            continue;
        }
        let ident = handler.ident();
        let vis = &handler.method.vis;
        let name = name_literal(handler);
        let wire = name.value();
        let mut docs: Vec<TokenStream> = doc_attrs(&handler.method.attrs)
            .map(|a| quote!(#a))
            .collect();
        if !docs.is_empty() {
            // A blank line between the handler's docs and what the client method does.
            docs.push(quote!(#[doc = ""]));
        }
        let params = &handler.inputs.params;
        let bindings: Vec<&Ident> = params.iter().map(|p| &p.binding).collect();
        let tys: Vec<&Type> = params.iter().map(|p| &*p.ty).collect();
        match handler.kind {
            HandlerKind::Signal => {
                let doc = format!(" Sends the `{wire}` signal.");
                signals.push(quote! {
                    #(#docs)*
                    #[doc = #doc]
                    #vis async fn #ident(&self, #(#bindings: #tys),*) -> ::core::result::Result<(), __CapstanTarget::Error> {
                        #private::SignalTarget::send_signal(&self.0, #name, (#(#bindings,)*)).await
                    }
                });
            }
            HandlerKind::Query => {
                let Some(output) = client_output(handler) else {
                    continue;
                };
                let doc = format!(" Runs the `{wire}` query.");
                methods.push(quote! {
                    #(#docs)*
                    #[doc = #doc]
                    #vis async fn #ident(&self, #(#bindings: #tys),*) -> ::core::result::Result<#output, #client_error> {
                        self.0.query_with(#name, (#(#bindings,)*)).await
                    }
                });
            }
            HandlerKind::Update => {
                let Some(output) = client_output(handler) else {
                    continue;
                };
                let start = format_ident!("start_{}", ident);
                if !seen.insert(start.to_string()) {
                    continue;
                }
                let doc = format!(" Runs the `{wire}` update and waits for its result.");
                let start_doc = format!(
                    " Sends the `{wire}` update and returns once the workflow accepted it; await \
                     the returned handle for the result."
                );
                methods.push(quote! {
                    #(#docs)*
                    #[doc = #doc]
                    #vis async fn #ident(&self, #(#bindings: #tys),*) -> ::core::result::Result<#output, #client_error> {
                        self.0.update_with(#name, (#(#bindings,)*)).await
                    }

                    #[doc = #start_doc]
                    #vis async fn #start(&self, #(#bindings: #tys),*) -> ::core::result::Result<#private::UpdateHandle<#output>, #client_error> {
                        self.0.start_update_with(#name, (#(#bindings,)*)).await
                    }
                });
            }
            HandlerKind::Run => {}
        }
    }
    (signals, methods)
}

pub(crate) fn activity(input: &Activity, valid: bool) -> TokenStream {
    let item = &input.item;
    if !valid && (input.inputs.receiver.is_some() || !item.sig.generics.params.is_empty()) {
        return quote!(#item);
    }
    let private = private(&input.args);
    let ident = &item.sig.ident;
    let vis = &item.vis;
    let name = input
        .args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let docs: Vec<&Attribute> = doc_attrs(&item.attrs).collect();
    let mut run = item.clone();
    run.sig.ident = Ident::new("run", ident.span());
    let run_attrs = &run.attrs;
    let run_vis = &run.vis;
    let run_sig = &run.sig;
    let run_block = &run.block;

    let params = &input.inputs.params;
    let args_ty = tuple_type(params);
    let input_ty = input_type(params);
    let pat = tuple_bindings(params);
    let bindings: Vec<&Ident> = params.iter().map(|p| &p.binding).collect();
    let into_args = match params.len() {
        1 => quote!((__capstan_input,)),
        _ => quote!(__capstan_input),
    };
    let output: Type = crate::ast::ok_type(&item.sig.output)
        .filter(|ty| is_owned(ty))
        .cloned()
        .unwrap_or_else(|| parse_quote!(()));

    // A misplaced `ActivityContext` is reported by `validate`; an impl with it among the
    // payload arguments would only add trait errors.
    let owned = params
        .iter()
        .all(|p| is_owned(&p.ty) && !crate::ast::is_named(&p.ty, "ActivityContext"));
    let definition = if owned && (valid || crate::ast::ok_type(&item.sig.output).is_some()) {
        let (ctx_param, ctx_arg) = match &input.inputs.context {
            Some(_) => (quote!(__capstan_ctx), quote!(__capstan_ctx,)),
            None => (quote!(_), TokenStream::new()),
        };
        let call = quote!(#ident::run(#ctx_arg #(#bindings),*));
        let body = if item.sig.asyncness.is_some() {
            quote!(#call.await)
        } else {
            quote!(#private::run_blocking(move || #call).await)
        };
        let execute = if valid {
            quote! {
                ::std::boxed::Box::pin(async move {
                    #body.map_err(::core::convert::Into::into)
                })
            }
        } else {
            quote!(::core::unimplemented!())
        };
        let describe = if valid {
            let doc = description(&item.attrs);
            let args = schema_args(&private, params);
            let output = schema_output(&private, &output);
            quote! {
                fn describe(
                    __capstan_generator: &mut #private::SchemaGenerator,
                ) -> ::core::option::Option<#private::HandlerSchema> {
                    ::core::option::Option::Some(#private::HandlerSchema::describe(
                        __capstan_generator,
                        <Self as #private::ActivityDefinition>::NAME,
                        #doc,
                        #args,
                        ::core::option::Option::Some(#output),
                    ))
                }
            }
        } else {
            TokenStream::new()
        };
        quote! {
            #[automatically_derived]
            impl #private::ActivityDefinition for #ident {
                const NAME: &'static str = #name;
                type Args = #args_ty;
                type Input = #input_ty;
                type Output = #output;

                fn into_args(__capstan_input: Self::Input) -> Self::Args {
                    #into_args
                }

                fn execute(
                    &self,
                    #ctx_param: #private::ActivityContext,
                    #pat: #args_ty,
                ) -> #private::BoxFuture<::core::result::Result<Self::Output, #private::Error>> {
                    #execute
                }

                #describe
            }
        }
    } else {
        TokenStream::new()
    };

    let checks = if valid {
        params
            .iter()
            .map(|p| &*p.ty)
            .chain(crate::ast::ok_type(&item.sig.output))
            .map(|ty| assert_payload(&private, ty))
            .collect()
    } else {
        Vec::new()
    };
    let checks = assertions(checks);

    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(
            ::core::clone::Clone,
            ::core::marker::Copy,
            ::core::fmt::Debug,
            ::core::default::Default
        )]
        #vis struct #ident;

        impl #ident {
            #(#run_attrs)*
            #run_vis #run_sig #run_block
        }

        #definition

        #checks
    }
}
