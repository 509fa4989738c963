//! Compile-time determinism checks: workflow code is replayed from history, so it must
//! not read clocks, randomness, the environment, threads, files, the network or
//! processes directly, and its state must iterate in a stable order. Queries and update
//! validators are also checked for `.await` and for context methods that schedule
//! commands or change the run.
//!
//! Every rule, its message and its fix are documented for users on the `workflow` macro
//! in the `capstan` crate ("Compile-time checks"); the unit tests in `tests/errors.rs`
//! pin the exact messages. The checks are syntactic: they match paths as written (last
//! segments, so `SystemTime::now` and `std::time::SystemTime::now` both match), do not
//! follow `use` renames, method calls on values or called functions (unless those are
//! `#[workflow_fn]`), and skip code under `#[allow_nondeterministic(reason = "...")]`,
//! which `ast` strips from the emitted code. Replay catches the rest at run time.

use syn::{
    punctuated::Punctuated,
    visit::{self, Visit},
    Attribute, Expr, Path, Token, Type,
};

use crate::{
    ast::{attribute_is, expr_attributes, Body, OPT_OUT},
    diagnostics::Errors,
};

/// A forbidden call and its fix.
struct Rule {
    /// Matches the path's segments (as written, so `SystemTime::now` and
    /// `std::time::SystemTime::now` both match).
    matches: fn(&[String]) -> bool,
    why: &'static str,
    fix: &'static str,
}

fn ends_with(segments: &[String], tail: &[&str]) -> bool {
    segments.len() >= tail.len()
        && segments[segments.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(a, b)| a == b)
}

fn contains(segments: &[String], part: &[&str]) -> bool {
    segments
        .windows(part.len())
        .any(|window| window.iter().zip(part).all(|(a, b)| a == b))
}

/// Whether the path goes through the module `module` of `std` or `tokio` (`std::fs::read`,
/// `tokio::fs::File`), or starts with it (`fs::read`, after `use std::fs`).
fn in_module(segments: &[String], module: &str) -> bool {
    contains(segments, &["std", module])
        || contains(segments, &["tokio", module])
        || (segments.len() > 1 && segments[0] == module)
}

/// The segment after `module` in a path through it: `IpAddr` in `std::net::IpAddr::from`.
fn after_module<'a>(segments: &'a [String], module: &str) -> Option<&'a str> {
    let at = segments.iter().position(|segment| segment == module)?;
    segments.get(at + 1).map(String::as_str)
}

fn any_segment(segments: &[String], names: &[&str]) -> bool {
    segments
        .iter()
        .any(|segment| names.contains(&segment.as_str()))
}

/// Address types of `std::net`: plain values, no I/O.
const NET_VALUES: &[&str] = &[
    "IpAddr",
    "Ipv4Addr",
    "Ipv6Addr",
    "SocketAddr",
    "SocketAddrV4",
    "SocketAddrV6",
    "AddrParseError",
    "Shutdown",
];

const CLOCK: &str = "reads the wall clock, so a replay sees another time";
const RANDOM: &str = "draws new values on every replay";
const TASKS: &str = "runs code outside the workflow's deterministic executor";
const CONCURRENCY: &str =
    "run concurrent work as futures of the context with `capstan::workflow::join` or `select`";
const FILES: &str = "touches files, which may differ when the workflow is replayed";
const IN_ACTIVITY: &str = "do it in an `#[activity]` and pass the result to the workflow";

/// The rules in the order they are tried: the first match reports.
const RULES: &[Rule] = &[
    Rule {
        matches: |s| {
            ["SystemTime", "Instant", "Utc", "Local"]
                .iter()
                .any(|clock| ends_with(s, &[clock, "now"]))
        },
        why: CLOCK,
        fix: "use `ctx.now()`",
    },
    Rule {
        matches: |s| {
            ends_with(s, &["thread_rng"])
                || ends_with(s, &["rand", "random"])
                || ends_with(s, &["rand", "rng"])
        },
        why: RANDOM,
        fix: "use `ctx.random()` (an `f64` in `[0, 1)`) or `ctx.random_u64()`",
    },
    Rule {
        matches: |s| {
            ["new_v4", "new_v7", "now_v7", "now_v6", "now_v1"]
                .iter()
                .any(|new| ends_with(s, &["Uuid", new]))
        },
        why: "draws a new UUID on every replay",
        fix: "use `ctx.uuid4()`",
    },
    Rule {
        matches: |s| {
            s.first().is_some_and(|f| f == "tokio")
                && s.last()
                    .is_some_and(|l| l == "spawn" || l == "spawn_blocking" || l == "spawn_local")
        },
        why: TASKS,
        fix: CONCURRENCY,
    },
    Rule {
        matches: |s| {
            s.first().is_some_and(|f| f == "tokio")
                && s.last()
                    .is_some_and(|l| l == "sleep" || l == "sleep_until" || l == "interval")
        },
        why: "sets a timer that the workflow's history does not record",
        fix: "use `ctx.sleep(duration)`, a durable timer",
    },
    Rule {
        matches: |s| {
            s.first().is_some_and(|f| f == "tokio")
                && s.last()
                    .is_some_and(|l| l == "timeout" || l == "timeout_at")
        },
        why: "sets a timer that the workflow's history does not record",
        fix: "race the work against `ctx.sleep(duration)` with `capstan::workflow::select`, or \
              wait with `ctx.wait_condition_timeout(duration, ..)`",
    },
    Rule {
        matches: |s| ends_with(s, &["thread", "sleep"]),
        why: "blocks the worker and sets no timer in the workflow's history",
        fix: "use `ctx.sleep(duration)`, a durable timer",
    },
    Rule {
        matches: |s| in_module(s, "thread"),
        why: "uses the worker's threads, outside the workflow's deterministic executor",
        fix: CONCURRENCY,
    },
    Rule {
        matches: |s| {
            ["var", "vars", "var_os", "vars_os"]
                .iter()
                .any(|read| ends_with(s, &["env", read]))
        },
        why: "reads the worker's environment, which may differ when the workflow is replayed \
              on another worker",
        fix: "read configuration in an `#[activity]`, or pass it in the workflow's input",
    },
    Rule {
        matches: |s| {
            in_module(s, "fs")
                || ["open", "create", "create_new", "options"]
                    .iter()
                    .any(|open| ends_with(s, &["File", open]))
                || any_segment(s, &["OpenOptions"])
        },
        why: FILES,
        fix: IN_ACTIVITY,
    },
    Rule {
        matches: |s| {
            (in_module(s, "net")
                && after_module(s, "net").is_some_and(|next| !NET_VALUES.contains(&next)))
                || any_segment(
                    s,
                    &[
                        "TcpStream",
                        "TcpListener",
                        "TcpSocket",
                        "UdpSocket",
                        "UnixStream",
                        "UnixListener",
                        "UnixDatagram",
                        "lookup_host",
                    ],
                )
        },
        why: "does network I/O, whose results may differ when the workflow is replayed",
        fix: IN_ACTIVITY,
    },
    Rule {
        matches: |s| contains(s, &["process", "Command"]),
        why: "runs a process, whose output may differ when the workflow is replayed",
        fix: IN_ACTIVITY,
    },
];

/// What a read-only handler (a query or an update's validator) may not call: the context
/// methods that schedule commands, wait, or change the run, with what they do.
const CONTEXT_COMMANDS: &[(&[&str], &str)] = &[
    (
        &[
            "activity",
            "local_activity",
            "activity_by_name",
            "child_workflow",
            "child_workflow_by_name",
            "external_workflow",
            "external_workflow_of",
            "continue_as_new",
            "continue_as_new_with",
            "upsert_search_attributes",
            "upsert_memo",
        ],
        "schedules a command in the workflow's history",
    ),
    (&["sleep"], "starts a durable timer"),
    (
        &[
            "wait_condition",
            "wait_condition_timeout",
            "wait_all_handlers_finished",
        ],
        "waits for the workflow's state to change",
    ),
    (&["state_mut"], "changes the workflow's state"),
    (
        &["random", "random_u64", "uuid4"],
        "advances the workflow's random generator",
    ),
    (
        &["patched", "deprecate_patch"],
        "records a patch marker in the history",
    ),
];

/// A function of workflow code to check.
pub(crate) struct Code<'a> {
    /// What messages call it: "`#[run]` `run`", "validator `check`".
    pub(crate) what: &'a str,
    pub(crate) body: &'a Body,
    /// Queries and validators, which answer at once from the state, are also checked for
    /// `.await` and context commands.
    pub(crate) read_only: Option<&'a ReadOnly>,
}

/// A kind of handler that only reads the workflow's state.
pub(crate) struct ReadOnly {
    /// "a query"
    role: &'static str,
    /// The fix for an `.await`.
    await_fix: &'static str,
    /// The fix for a context command.
    command_fix: &'static str,
}

pub(crate) const QUERY: ReadOnly = ReadOnly {
    role: "a query",
    await_fix: "compute the answer from `&self` without waiting, or use an async `#[update]`",
    command_fix: "do it in a `#[signal]` or `#[update]` handler",
};

pub(crate) const VALIDATOR: ReadOnly = ReadOnly {
    role: "a validator",
    await_fix: "do the waiting in the update handler, which runs once the update is accepted",
    command_fix: "do it in the update handler, which runs once the update is accepted",
};

/// Reports every forbidden call in a function of workflow code, skipping what
/// `#[allow_nondeterministic]` exempts.
pub(crate) fn check(code: &Code<'_>, errors: &mut Errors) {
    if code.body.allowed.is_some() {
        return;
    }
    let mut visitor = BodyVisitor { code, errors };
    visitor.visit_block(&code.body.block);
}

/// Every opt-out needs a reason: it is what a reviewer greps for.
pub(crate) fn check_opt_outs(body: &Body, errors: &mut Errors) {
    for opt_out in &body.opt_outs {
        let reason = opt_out.args.reason.as_ref();
        if reason.is_some_and(|reason| !reason.value().trim().is_empty()) {
            continue;
        }
        let found = match reason {
            Some(_) => "an empty reason",
            None => "no reason",
        };
        errors.error(
            &opt_out.attr,
            format!(
                "`#[{OPT_OUT}]` needs a reason; found {found} — say why replaying this code is \
                 safe: `#[{OPT_OUT}(reason = \"...\")]`"
            ),
        );
    }
}

struct BodyVisitor<'a> {
    code: &'a Code<'a>,
    errors: &'a mut Errors,
}

fn opted_out(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| attribute_is(attr, OPT_OUT))
}

impl BodyVisitor<'_> {
    fn check_path(&mut self, path: &Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(rule) = RULES.iter().find(|rule| (rule.matches)(&segments)) {
            let found = crate::diagnostics::source(path);
            self.errors.error(
                path,
                format!(
                    "workflow code must be deterministic; found `{found}` in {}: it {} — {}",
                    self.code.what, rule.why, rule.fix
                ),
            );
        }
    }
}

impl<'ast> Visit<'ast> for BodyVisitor<'_> {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        if !opted_out(expr_attributes(expr)) {
            visit::visit_expr(self, expr);
        }
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if !opted_out(&local.attrs) {
            visit::visit_local(self, local);
        }
    }

    fn visit_stmt_macro(&mut self, mac: &'ast syn::StmtMacro) {
        if !opted_out(&mac.attrs) {
            visit::visit_stmt_macro(self, mac);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !opted_out(&item.attrs) {
            visit::visit_item_fn(self, item);
        }
    }

    fn visit_expr_path(&mut self, expr: &'ast syn::ExprPath) {
        self.check_path(&expr.path);
        visit::visit_expr_path(self, expr);
    }

    fn visit_expr_await(&mut self, expr: &'ast syn::ExprAwait) {
        if let Some(read_only) = self.code.read_only {
            let (dot, await_token) = (&expr.dot_token, &expr.await_token);
            self.errors.error(
                quote::quote!(#dot #await_token),
                format!(
                    "{} cannot `.await`: {} answers at once from the workflow's state — {}",
                    self.code.what, read_only.role, read_only.await_fix
                ),
            );
        }
        visit::visit_expr_await(self, expr);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if let Some(read_only) = self.code.read_only {
            let method = &call.method;
            let command = CONTEXT_COMMANDS
                .iter()
                .find(|(names, _)| names.iter().any(|name| method == name));
            if let Some((_, does)) = command {
                self.errors.error(
                    method,
                    format!(
                        "{} cannot call `.{method}(..)`: it {does}, and {} only reads the \
                         workflow's state — {}",
                        self.code.what, read_only.role, read_only.command_fix
                    ),
                );
            }
        }
        visit::visit_expr_method_call(self, call);
    }

    // Macro arguments are opaque to syn; most macros in function bodies (`format!`,
    // `vec!`, `assert!`, …) take expressions, so look inside those.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if let Ok(exprs) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for expr in &exprs {
                self.visit_expr(expr);
            }
        }
        visit::visit_macro(self, mac);
    }
}

/// Reports `HashMap`/`HashSet` anywhere in a workflow state field's type.
pub(crate) fn check_state_type(ty: &Type, errors: &mut Errors) {
    struct TypeVisitor<'a>(&'a mut Errors);
    impl<'ast> Visit<'ast> for TypeVisitor<'_> {
        fn visit_type_path(&mut self, ty: &'ast syn::TypePath) {
            if let Some(last) = ty.path.segments.last() {
                let fix = if last.ident == "HashMap" {
                    Some("use `BTreeMap` (or `indexmap::IndexMap`)")
                } else if last.ident == "HashSet" {
                    Some("use `BTreeSet` (or `indexmap::IndexSet`)")
                } else {
                    None
                };
                if let Some(fix) = fix {
                    self.0.error(
                        &last.ident,
                        format!(
                            "`#[workflow]` state must iterate deterministically; found `{}` — {fix}",
                            last.ident
                        ),
                    );
                }
            }
            visit::visit_type_path(self, ty);
        }
    }
    TypeVisitor(errors).visit_type(ty);
}
