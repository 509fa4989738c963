//! The typed model of what the user wrote: attribute arguments (parsed with darling), the
//! workflow struct, the workflow impl block and its handlers, and activity functions.
//!
//! Parsing is lenient: it records what it finds and leaves the rules to `validate`, so
//! that one mistake does not hide the others.

use darling::{ast::NestedMeta, FromMeta};
use proc_macro2::{Span, TokenStream};
use quote::format_ident;
use syn::{
    visit_mut::VisitMut, Attribute, Block, Expr, FnArg, Ident, ImplItem, ImplItemFn, ItemFn,
    ItemImpl, ItemStruct, LitStr, Meta, Pat, PatType, Path, ReturnType, Signature, Type,
};

use crate::diagnostics::{did_you_mean, one_of, Errors};

/// Arguments of `#[workflow(...)]` and `#[activity(...)]`.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct ItemArgs {
    /// The workflow or activity type name; defaults to the Rust name.
    pub(crate) name: Option<LitStr>,
    /// The path of the `capstan` crate, for renamed dependencies.
    #[darling(rename = "crate")]
    pub(crate) krate: Option<Path>,
}

/// Arguments of `#[signal(...)]`, `#[query(...)]` and `#[update(...)]`.
#[derive(Debug, Default, FromMeta)]
pub(crate) struct HandlerArgs {
    /// The handler name callers use; defaults to the method name.
    pub(crate) name: Option<LitStr>,
    /// The method that validates an update's arguments before it is accepted.
    pub(crate) validator: Option<Path>,
}

/// Arguments of `#[allow_nondeterministic(...)]`.
#[derive(Clone, Debug, Default, FromMeta)]
pub(crate) struct OptOutArgs {
    /// Why the flagged code is safe to replay.
    pub(crate) reason: Option<LitStr>,
}

/// The attribute that exempts a function, statement or expression from the determinism
/// checks.
pub(crate) const OPT_OUT: &str = "allow_nondeterministic";

/// The attribute that marks a helper function as workflow code, to be checked like a
/// handler.
pub(crate) const WORKFLOW_FN: &str = "workflow_fn";

/// One `#[allow_nondeterministic(reason = "...")]`.
#[derive(Clone)]
pub(crate) struct OptOut {
    /// The attribute, for error spans.
    pub(crate) attr: Attribute,
    pub(crate) args: OptOutArgs,
}

/// The body of a function that is workflow code, as the determinism checks see it.
pub(crate) struct Body {
    /// The block as written: opt-out attributes still mark the code the checks skip.
    /// The item that is emitted has them removed.
    pub(crate) block: Block,
    /// `#[allow_nondeterministic]` on the function itself: nothing in it is checked.
    pub(crate) allowed: Option<OptOut>,
    /// Every opt-out of the function (its own and those inside), to check their reasons.
    pub(crate) opt_outs: Vec<OptOut>,
}

/// Whether an attribute is `#[name]`, `#[capstan::name]` or `#[krate::name]`.
pub(crate) fn attribute_is(attr: &Attribute, name: &str) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

/// The attributes of an expression (syn has no accessor for them).
macro_rules! expr_attrs {
    ($expr:expr, $($mutability:ident)?) => {
        match $expr {
            Expr::Array(e) => Some(&$($mutability)? e.attrs),
            Expr::Assign(e) => Some(&$($mutability)? e.attrs),
            Expr::Async(e) => Some(&$($mutability)? e.attrs),
            Expr::Await(e) => Some(&$($mutability)? e.attrs),
            Expr::Binary(e) => Some(&$($mutability)? e.attrs),
            Expr::Block(e) => Some(&$($mutability)? e.attrs),
            Expr::Break(e) => Some(&$($mutability)? e.attrs),
            Expr::Call(e) => Some(&$($mutability)? e.attrs),
            Expr::Cast(e) => Some(&$($mutability)? e.attrs),
            Expr::Closure(e) => Some(&$($mutability)? e.attrs),
            Expr::Const(e) => Some(&$($mutability)? e.attrs),
            Expr::Continue(e) => Some(&$($mutability)? e.attrs),
            Expr::Field(e) => Some(&$($mutability)? e.attrs),
            Expr::ForLoop(e) => Some(&$($mutability)? e.attrs),
            Expr::Group(e) => Some(&$($mutability)? e.attrs),
            Expr::If(e) => Some(&$($mutability)? e.attrs),
            Expr::Index(e) => Some(&$($mutability)? e.attrs),
            Expr::Infer(e) => Some(&$($mutability)? e.attrs),
            Expr::Let(e) => Some(&$($mutability)? e.attrs),
            Expr::Lit(e) => Some(&$($mutability)? e.attrs),
            Expr::Loop(e) => Some(&$($mutability)? e.attrs),
            Expr::Macro(e) => Some(&$($mutability)? e.attrs),
            Expr::Match(e) => Some(&$($mutability)? e.attrs),
            Expr::MethodCall(e) => Some(&$($mutability)? e.attrs),
            Expr::Paren(e) => Some(&$($mutability)? e.attrs),
            Expr::Path(e) => Some(&$($mutability)? e.attrs),
            Expr::Range(e) => Some(&$($mutability)? e.attrs),
            Expr::RawAddr(e) => Some(&$($mutability)? e.attrs),
            Expr::Reference(e) => Some(&$($mutability)? e.attrs),
            Expr::Repeat(e) => Some(&$($mutability)? e.attrs),
            Expr::Return(e) => Some(&$($mutability)? e.attrs),
            Expr::Struct(e) => Some(&$($mutability)? e.attrs),
            Expr::Try(e) => Some(&$($mutability)? e.attrs),
            Expr::TryBlock(e) => Some(&$($mutability)? e.attrs),
            Expr::Tuple(e) => Some(&$($mutability)? e.attrs),
            Expr::Unary(e) => Some(&$($mutability)? e.attrs),
            Expr::Unsafe(e) => Some(&$($mutability)? e.attrs),
            Expr::While(e) => Some(&$($mutability)? e.attrs),
            Expr::Yield(e) => Some(&$($mutability)? e.attrs),
            _ => None,
        }
    };
}

/// The outer attributes of an expression.
pub(crate) fn expr_attributes(expr: &Expr) -> &[Attribute] {
    expr_attrs!(expr,).map_or(&[], Vec::as_slice)
}

/// Removes the opt-out attributes from a body (the compiler would reject attributes on
/// expressions, and knows no `allow_nondeterministic`) and returns them, parsed.
fn strip_opt_outs(block: &mut Block, errors: &mut Errors) -> Vec<OptOut> {
    struct Strip<'a> {
        found: Vec<OptOut>,
        errors: &'a mut Errors,
    }
    impl Strip<'_> {
        fn strip(&mut self, attrs: &mut Vec<Attribute>) {
            take_opt_outs(attrs, &mut self.found, self.errors);
        }
    }
    impl VisitMut for Strip<'_> {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            if let Some(attrs) = expr_attrs!(expr, mut) {
                self.strip(attrs);
            }
            syn::visit_mut::visit_expr_mut(self, expr);
        }
        fn visit_local_mut(&mut self, local: &mut syn::Local) {
            self.strip(&mut local.attrs);
            syn::visit_mut::visit_local_mut(self, local);
        }
        fn visit_stmt_macro_mut(&mut self, mac: &mut syn::StmtMacro) {
            self.strip(&mut mac.attrs);
            syn::visit_mut::visit_stmt_macro_mut(self, mac);
        }
        fn visit_item_fn_mut(&mut self, item: &mut ItemFn) {
            self.strip(&mut item.attrs);
            syn::visit_mut::visit_item_fn_mut(self, item);
        }
    }
    let mut strip = Strip {
        found: Vec::new(),
        errors,
    };
    strip.visit_block_mut(block);
    strip.found
}

/// Moves the opt-out attributes out of `attrs` into `found`, parsing their arguments.
fn take_opt_outs(attrs: &mut Vec<Attribute>, found: &mut Vec<OptOut>, errors: &mut Errors) {
    let (opt_outs, kept): (Vec<Attribute>, Vec<Attribute>) = attrs
        .drain(..)
        .partition(|attr| attribute_is(attr, OPT_OUT));
    *attrs = kept;
    found.extend(opt_outs.into_iter().map(|attr| opt_out(attr, errors)));
}

/// Parses `#[allow_nondeterministic(reason = "...")]`; `validate` requires the reason.
pub(crate) fn opt_out(attr: Attribute, errors: &mut Errors) -> OptOut {
    let args = match &attr.meta {
        Meta::List(list) => parse_args(OPT_OUT, list.tokens.clone(), &["reason"], errors),
        Meta::Path(_) => OptOutArgs::default(),
        Meta::NameValue(name_value) => {
            errors.error(
                name_value,
                format!(
                    "`#[{OPT_OUT} = ...]` is not supported; write \
                     `#[{OPT_OUT}(reason = \"...\")]`"
                ),
            );
            OptOutArgs::default()
        }
    };
    OptOut { attr, args }
}

/// Splits a function's body into what the checks see and what is emitted: removes the
/// opt-outs from `attrs` (the function's own) and from `block`, and returns the body as
/// written.
pub(crate) fn body(attrs: &mut Vec<Attribute>, block: &mut Block, errors: &mut Errors) -> Body {
    let written = block.clone();
    let mut own = Vec::new();
    take_opt_outs(attrs, &mut own, errors);
    let mut opt_outs = strip_opt_outs(block, errors);
    let allowed = own.first().cloned();
    opt_outs.splice(0..0, own);
    Body {
        block: written,
        allowed,
        opt_outs,
    }
}

/// The kinds of handler methods in a `#[workflow]` impl block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    Run,
    Signal,
    Query,
    Update,
}

impl HandlerKind {
    pub(crate) const ALL: [HandlerKind; 4] = [Self::Run, Self::Signal, Self::Query, Self::Update];

    /// The attribute's name: `run`, `signal`, …
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Signal => "signal",
            Self::Query => "query",
            Self::Update => "update",
        }
    }

    /// The arguments the attribute accepts.
    fn arguments(self) -> &'static [&'static str] {
        match self {
            Self::Run => &[],
            Self::Signal | Self::Query => &["name"],
            Self::Update => &["name", "validator"],
        }
    }

    fn from_attribute(attr: &Attribute) -> Option<Self> {
        let ident = &attr.path().segments.last()?.ident;
        Self::ALL.into_iter().find(|kind| ident == kind.attribute())
    }
}

/// What `#[workflow]` was put on.
pub(crate) enum WorkflowInput {
    Struct(WorkflowStruct),
    Impl(WorkflowImpl),
}

/// `#[workflow]` on the state struct.
pub(crate) struct WorkflowStruct {
    pub(crate) args: ItemArgs,
    pub(crate) item: ItemStruct,
}

/// `#[workflow]` on the impl block.
pub(crate) struct WorkflowImpl {
    pub(crate) args: ItemArgs,
    /// The impl block with the handler attributes removed.
    pub(crate) item: ItemImpl,
    /// The last segment of the self type: `PurchaseFruitsWorkflow`.
    pub(crate) self_ident: Option<Ident>,
    pub(crate) handlers: Vec<Handler>,
    /// The body of every method, as the determinism checks see it.
    pub(crate) bodies: Vec<MethodBody>,
}

/// A method's body and whether it is marked `#[workflow_fn]`.
pub(crate) struct MethodBody {
    pub(crate) ident: Ident,
    pub(crate) body: Body,
    pub(crate) workflow_fn: bool,
}

impl WorkflowImpl {
    /// The body of the method `ident`.
    pub(crate) fn body(&self, ident: &Ident) -> Option<&Body> {
        self.bodies
            .iter()
            .find(|method| method.ident == *ident)
            .map(|method| &method.body)
    }

    /// The methods of the impl block.
    pub(crate) fn methods(&self) -> impl Iterator<Item = &ImplItemFn> {
        self.item.items.iter().filter_map(|item| match item {
            ImplItem::Fn(method) => Some(method),
            _ => None,
        })
    }

    /// The `#[run]` handler (the first, if there are several).
    pub(crate) fn run(&self) -> Option<&Handler> {
        self.handlers
            .iter()
            .find(|handler| handler.kind == HandlerKind::Run)
    }
}

/// A method of the impl block marked `#[run]`, `#[signal]`, `#[query]` or `#[update]`.
pub(crate) struct Handler {
    pub(crate) kind: HandlerKind,
    /// The handler attribute, for error spans.
    pub(crate) attr: Attribute,
    pub(crate) args: HandlerArgs,
    /// The method as written (attributes included, handler attribute removed).
    pub(crate) method: ImplItemFn,
    pub(crate) inputs: Inputs,
}

impl Handler {
    pub(crate) fn ident(&self) -> &Ident {
        &self.method.sig.ident
    }

    /// The name callers use: `name = "..."` or the method's name.
    pub(crate) fn name(&self) -> String {
        match &self.args.name {
            Some(name) => name.value(),
            None => self.ident().to_string(),
        }
    }

    /// The token to point at when the name is wrong.
    pub(crate) fn name_span(&self) -> Span {
        match &self.args.name {
            Some(name) => name.span(),
            None => self.ident().span(),
        }
    }

    pub(crate) fn is_async(&self) -> bool {
        self.method.sig.asyncness.is_some()
    }

    /// The success type of a `Result<T, E>` (or `WorkflowResult<T>`) return type.
    pub(crate) fn ok_type(&self) -> Option<&Type> {
        ok_type(&self.method.sig.output)
    }
}

/// The parameters of a handler or activity, split by role.
pub(crate) struct Inputs {
    /// `self`, `&self`, `&mut self`, …
    pub(crate) receiver: Option<syn::Receiver>,
    /// The first parameter when its type is the context (`WorkflowContext<Self>`,
    /// `ActivityContext`).
    pub(crate) context: Option<PatType>,
    /// The other parameters: the payload arguments.
    pub(crate) params: Vec<Param>,
}

/// One payload argument.
pub(crate) struct Param {
    /// The type, with `Self` replaced by the impl's self type so that it can be used
    /// outside the impl block.
    pub(crate) ty: Box<Type>,
    /// The name to bind it to in generated code: the parameter's own name when it is a
    /// plain identifier, else `__capstan_argN`.
    pub(crate) binding: Ident,
}

impl Inputs {
    fn parse(sig: &Signature, context: &str, self_ty: Option<&Type>) -> Self {
        let mut receiver = None;
        let mut context_param = None;
        let mut params = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r.clone()),
                FnArg::Typed(typed) => {
                    if context_param.is_none() && params.is_empty() && is_named(&typed.ty, context)
                    {
                        context_param = Some(typed.clone());
                        continue;
                    }
                    let mut ty = typed.ty.clone();
                    if let Some(self_ty) = self_ty {
                        ReplaceSelf(self_ty).visit_type_mut(&mut ty);
                    }
                    let binding = match &*typed.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                            p.ident.clone()
                        }
                        _ => format_ident!("__capstan_arg{}", params.len()),
                    };
                    params.push(Param { ty, binding });
                }
            }
        }
        Self {
            receiver,
            context: context_param,
            params,
        }
    }
}

/// Replaces `Self` in a type by the impl's self type, keeping the user's spans.
pub(crate) struct ReplaceSelf<'a>(pub(crate) &'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(path) = ty {
            let starts_with_self = path.qself.is_none()
                && path.path.leading_colon.is_none()
                && path
                    .path
                    .segments
                    .first()
                    .is_some_and(|s| s.ident == "Self");
            if starts_with_self {
                if path.path.segments.len() == 1 {
                    *ty = self.0.clone();
                    return;
                }
                if let Type::Path(self_path) = self.0 {
                    let rest = path.path.segments.iter().skip(1).cloned();
                    let mut segments = self_path.path.segments.clone();
                    segments.extend(rest);
                    path.path.segments = segments;
                    path.path.leading_colon = self_path.path.leading_colon;
                }
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// The last path segment of a type, looking through parentheses and groups.
pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Paren(inner) => last_segment(&inner.elem),
        Type::Group(inner) => last_segment(&inner.elem),
        _ => None,
    }
}

/// Whether a type's last path segment is `name`: `ActivityContext`,
/// `capstan::WorkflowContext<Self>`.
pub(crate) fn is_named(ty: &Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|segment| segment.ident == name)
}

/// The type arguments of a type's last path segment.
pub(crate) fn type_arguments(ty: &Type) -> Vec<&Type> {
    match last_segment(ty).map(|segment| &segment.arguments) {
        Some(syn::PathArguments::AngleBracketed(args)) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The `T` of a `Result<T, E>`-like return type: any type whose name ends in `Result`
/// (`Result`, `WorkflowResult`, `anyhow::Result`) with `T` as its first type argument.
pub(crate) fn ok_type(output: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let segment = last_segment(ty)?;
    if !segment.ident.to_string().ends_with("Result") {
        return None;
    }
    type_arguments(ty).into_iter().next()
}

/// The text of an item's doc comments (`///` lines and `#[doc = "..."]`), one leading
/// space stripped from each line, or `None` when it has none.
pub(crate) fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(syn::MetaNameValue {
                value:
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value()),
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Parses the arguments of `#[workflow(...)]` or `#[activity(...)]`.
pub(crate) fn item_args(attribute: &str, args: TokenStream, errors: &mut Errors) -> ItemArgs {
    parse_args(attribute, args, &["name", "crate"], errors)
}

/// Parses `key = value` attribute arguments: unknown keys get a did-you-mean, the known
/// ones go to darling.
fn parse_args<T: FromMeta + Default>(
    attribute: &str,
    args: TokenStream,
    known: &[&str],
    errors: &mut Errors,
) -> T {
    let metas = match NestedMeta::parse_meta_list(args) {
        Ok(metas) => metas,
        Err(error) => {
            errors.push(error);
            return T::default();
        }
    };
    let mut kept = Vec::new();
    for meta in metas {
        let NestedMeta::Meta(inner) = &meta else {
            errors.error(
                &meta,
                format!(
                    "`#[{attribute}]` takes `key = value` arguments; found a bare literal — \
                     expected {}",
                    one_of(known)
                ),
            );
            continue;
        };
        let path = inner.path();
        let key = path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_else(|| crate::diagnostics::source(path));
        if known.contains(&key.as_str()) {
            kept.push(meta);
            continue;
        }
        let message = if known.is_empty() {
            format!("`#[{attribute}]` takes no arguments; found `{key}`")
        } else if let Some(close) = did_you_mean(&key, known) {
            format!("unknown argument `{key}` of `#[{attribute}]`; did you mean `{close}`?")
        } else {
            format!(
                "unknown argument `{key}` of `#[{attribute}]`; expected {}",
                one_of(known)
            )
        };
        errors.error(path, message);
    }
    T::from_list(&kept).unwrap_or_else(|error| {
        errors.push(error);
        T::default()
    })
}

/// Parses the item under `#[workflow]`.
pub(crate) fn workflow(
    args: ItemArgs,
    item: TokenStream,
    errors: &mut Errors,
) -> Option<WorkflowInput> {
    let item = parse_item(item, errors)?;
    match item {
        syn::Item::Struct(item) => Some(WorkflowInput::Struct(WorkflowStruct { args, item })),
        syn::Item::Impl(item) => Some(WorkflowInput::Impl(workflow_impl(args, item, errors))),
        other => wrong_item(
            &other,
            "`#[workflow]` goes on a workflow's state struct or on its `impl` block",
            errors,
        ),
    }
}

fn workflow_impl(args: ItemArgs, mut item: ItemImpl, errors: &mut Errors) -> WorkflowImpl {
    let self_ident = last_segment(&item.self_ty).map(|segment| segment.ident.clone());
    let self_ty = (*item.self_ty).clone();
    let mut handlers = Vec::new();
    let mut bodies = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut found: Option<(HandlerKind, Attribute)> = None;
        let mut kept_attrs = Vec::new();
        for attr in method.attrs.drain(..) {
            let Some(kind) = HandlerKind::from_attribute(&attr) else {
                kept_attrs.push(attr);
                continue;
            };
            if let Some((first, _)) = &found {
                errors.error(
                    &attr,
                    format!(
                        "a method can be only one handler; found `#[{}]` and `#[{}]` on `{}`",
                        first.attribute(),
                        kind.attribute(),
                        method.sig.ident
                    ),
                );
                continue;
            }
            found = Some((kind, attr));
        }
        let workflow_fn = take_workflow_fn(&mut kept_attrs, errors);
        method.attrs = kept_attrs;
        bodies.push(MethodBody {
            ident: method.sig.ident.clone(),
            body: body(&mut method.attrs, &mut method.block, errors),
            workflow_fn,
        });
        let Some((kind, attr)) = found else { continue };
        let args = handler_args(kind, &attr, errors);
        // Sync handlers take no context either; `validate` reports one found there.
        let inputs = Inputs::parse(&method.sig, "WorkflowContext", Some(&self_ty));
        handlers.push(Handler {
            kind,
            attr,
            args,
            method: method.clone(),
            inputs,
        });
    }
    WorkflowImpl {
        args,
        item,
        self_ident,
        handlers,
        bodies,
    }
}

/// Removes `#[workflow_fn]` from a method's attributes; whether it was there.
fn take_workflow_fn(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> bool {
    let before = attrs.len();
    attrs.retain(|attr| {
        if !attribute_is(attr, WORKFLOW_FN) {
            return true;
        }
        if !matches!(attr.meta, Meta::Path(_)) {
            errors.error(
                &attr.meta,
                format!("`#[{WORKFLOW_FN}]` takes no arguments; write `#[{WORKFLOW_FN}]`"),
            );
        }
        false
    });
    attrs.len() != before
}

/// A free function (or a method outside a `#[workflow]` impl block) marked
/// `#[workflow_fn]`.
pub(crate) struct WorkflowFn {
    /// The function with the opt-out attributes removed.
    pub(crate) item: ItemFn,
    pub(crate) body: Body,
}

/// Parses the item under `#[workflow_fn]`.
pub(crate) fn workflow_fn(
    args: TokenStream,
    item: TokenStream,
    errors: &mut Errors,
) -> Option<WorkflowFn> {
    if !args.is_empty() {
        errors.error(
            &args,
            format!("`#[{WORKFLOW_FN}]` takes no arguments; write `#[{WORKFLOW_FN}]`"),
        );
    }
    let item = parse_item(item, errors)?;
    match item {
        syn::Item::Fn(mut item) => {
            let body = body(&mut item.attrs, &mut item.block, errors);
            Some(WorkflowFn { item, body })
        }
        other => wrong_item(
            &other,
            &format!("`#[{WORKFLOW_FN}]` goes on a function that workflow code calls"),
            errors,
        ),
    }
}

fn handler_args(kind: HandlerKind, attr: &Attribute, errors: &mut Errors) -> HandlerArgs {
    let attribute = kind.attribute();
    match &attr.meta {
        Meta::Path(_) => HandlerArgs::default(),
        Meta::List(list) => {
            let args: HandlerArgs =
                parse_args(attribute, list.tokens.clone(), kind.arguments(), errors);
            if kind == HandlerKind::Run && !list.tokens.is_empty() {
                // `parse_args` said "takes no arguments"; say where the name goes.
                errors.error(
                    &list.tokens,
                    "the workflow type's name goes on the struct: `#[workflow(name = \"...\")]`",
                );
            }
            args
        }
        Meta::NameValue(name_value) => {
            errors.error(
                name_value,
                format!(
                    "`#[{attribute} = ...]` is not supported; write `#[{attribute}]` or \
                     `#[{attribute}(name = \"...\")]`"
                ),
            );
            HandlerArgs::default()
        }
    }
}

/// An `#[activity]` function.
pub(crate) struct Activity {
    pub(crate) args: ItemArgs,
    pub(crate) item: ItemFn,
    pub(crate) inputs: Inputs,
}

/// Parses the item under `#[activity]`.
pub(crate) fn activity(args: ItemArgs, item: TokenStream, errors: &mut Errors) -> Option<Activity> {
    let item = parse_item(item, errors)?;
    match item {
        syn::Item::Fn(item) => {
            let inputs = Inputs::parse(&item.sig, "ActivityContext", None);
            Some(Activity { args, item, inputs })
        }
        syn::Item::Impl(item) => {
            errors.error(
                item.impl_token,
                "`#[activity]` goes on functions, not impl blocks: to share a connection pool or \
                 client with activities, add it with `Worker::resource(value)` and read it with \
                 `ctx.resource::<T>()` in an activity that takes `ctx: ActivityContext`",
            );
            None
        }
        other => wrong_item(&other, "`#[activity]` goes on a free function", errors),
    }
}

/// The item under an attribute; a syntax error is reported.
fn parse_item(item: TokenStream, errors: &mut Errors) -> Option<syn::Item> {
    syn::parse2(item).map_err(|error| errors.push(error)).ok()
}

/// Reports an attribute on the wrong kind of item: "{expected}; found an enum".
fn wrong_item<T>(item: &syn::Item, expected: &str, errors: &mut Errors) -> Option<T> {
    errors.error(
        item_keyword(item),
        format!("{expected}; found {}", item_kind(item)),
    );
    None
}

/// "a struct", "an enum", … for messages.
fn item_kind(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Const(_) => "a `const`",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Fn(_) => "a function",
        syn::Item::Impl(_) => "an impl block",
        syn::Item::Mod(_) => "a module",
        syn::Item::Static(_) => "a `static`",
        syn::Item::Struct(_) => "a struct",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Union(_) => "a union",
        syn::Item::Use(_) => "a `use` declaration",
        _ => "another kind of item",
    }
}

/// The item's keyword and name, where an error about the item's kind points.
fn item_keyword(item: &syn::Item) -> TokenStream {
    use quote::{quote, ToTokens};
    match item {
        syn::Item::Enum(item) => {
            let (keyword, ident) = (&item.enum_token, &item.ident);
            quote!(#keyword #ident)
        }
        syn::Item::Fn(item) => {
            let (keyword, ident) = (&item.sig.fn_token, &item.sig.ident);
            quote!(#keyword #ident)
        }
        syn::Item::Trait(item) => {
            let (keyword, ident) = (&item.trait_token, &item.ident);
            quote!(#keyword #ident)
        }
        syn::Item::Mod(item) => {
            let (keyword, ident) = (&item.mod_token, &item.ident);
            quote!(#keyword #ident)
        }
        syn::Item::Type(item) => {
            let (keyword, ident) = (&item.type_token, &item.ident);
            quote!(#keyword #ident)
        }
        syn::Item::Union(item) => {
            let (keyword, ident) = (&item.union_token, &item.ident);
            quote!(#keyword #ident)
        }
        other => other.to_token_stream(),
    }
}
