//! Compile-time determinism checks: workflow code is replayed from history, so it must
//! not read clocks, randomness, threads or files directly, and its state must iterate in
//! a stable order. These are syntactic checks over paths; replay catches the rest.

use syn::{
    punctuated::Punctuated,
    visit::{self, Visit},
    Expr, Path, Token, Type,
};

use crate::diagnostics::Errors;

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

const CLOCK: &str = "reads the wall clock, so a replay sees another time";
const RANDOM: &str = "draws new values on every replay";
const TASKS: &str = "runs code outside the workflow's deterministic executor";

const RULES: &[Rule] = &[
    Rule {
        matches: |s| ends_with(s, &["SystemTime", "now"]),
        why: CLOCK,
        fix: "use `ctx.now()`",
    },
    Rule {
        matches: |s| ends_with(s, &["Instant", "now"]),
        why: CLOCK,
        fix: "use `ctx.now()`",
    },
    Rule {
        matches: |s| ends_with(s, &["Utc", "now"]),
        why: CLOCK,
        fix: "use `ctx.now()`",
    },
    Rule {
        matches: |s| ends_with(s, &["Local", "now"]),
        why: CLOCK,
        fix: "use `ctx.now()`",
    },
    Rule {
        matches: |s| ends_with(s, &["thread_rng"]),
        why: RANDOM,
        fix: "use `ctx.random()`",
    },
    Rule {
        matches: |s| ends_with(s, &["rand", "random"]) || ends_with(s, &["rand", "rng"]),
        why: RANDOM,
        fix: "use `ctx.random()`",
    },
    Rule {
        matches: |s| {
            s.first().is_some_and(|f| f == "tokio")
                && s.last()
                    .is_some_and(|l| l == "spawn" || l == "spawn_blocking" || l == "spawn_local")
        },
        why: TASKS,
        fix: "use `ctx.spawn`-free structure: `join`/`select` from `capstan::workflow`",
    },
    Rule {
        matches: |s| {
            s.first().is_some_and(|f| f == "tokio")
                && s.last().is_some_and(|l| {
                    l == "sleep" || l == "sleep_until" || l == "timeout" || l == "interval"
                })
        },
        why: "sets a timer that the workflow's history does not record",
        fix: "use `ctx.sleep(..)`",
    },
    Rule {
        matches: |s| ends_with(s, &["thread", "spawn"]),
        why: TASKS,
        fix: "use `ctx.spawn`-free structure: `join`/`select` from `capstan::workflow`",
    },
    Rule {
        matches: |s| ends_with(s, &["thread", "sleep"]),
        why: "blocks the worker and sets no timer in the workflow's history",
        fix: "use `ctx.sleep(..)`",
    },
    Rule {
        matches: |s| {
            contains(s, &["std", "fs"])
                || contains(s, &["tokio", "fs"])
                || (s.len() > 1 && s[0] == "fs")
        },
        why: "touches files, which may differ when the workflow is replayed",
        fix: "do file access in an `#[activity]`",
    },
];

/// Reports every forbidden call in a workflow method's body.
pub(crate) fn check_body(block: &syn::Block, context: &str, errors: &mut Errors) {
    let mut visitor = BodyVisitor { context, errors };
    visitor.visit_block(block);
}

struct BodyVisitor<'a> {
    context: &'a str,
    errors: &'a mut Errors,
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
                    self.context, rule.why, rule.fix
                ),
            );
        }
    }
}

impl<'ast> Visit<'ast> for BodyVisitor<'_> {
    fn visit_expr_path(&mut self, expr: &'ast syn::ExprPath) {
        self.check_path(&expr.path);
        visit::visit_expr_path(self, expr);
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
