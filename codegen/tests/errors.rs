//! The compile errors of the macros: every rule, its message and that errors accumulate.

use proc_macro2::TokenStream;
use quote::quote;

/// The messages of the `compile_error!`s in an expansion.
fn messages(tokens: TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as a file");
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(mac)
                if mac.mac.path.segments.last().unwrap().ident == "compile_error" =>
            {
                Some(mac.mac.parse_body::<syn::LitStr>().unwrap().value())
            }
            _ => None,
        })
        .collect()
}

fn workflow(attr: TokenStream, item: TokenStream) -> Vec<String> {
    messages(capstan_codegen::workflow(attr, item))
}

fn activity(attr: TokenStream, item: TokenStream) -> Vec<String> {
    messages(capstan_codegen::activity(attr, item))
}

/// A workflow impl with one run function plus `handlers`.
fn workflow_with(handlers: TokenStream) -> Vec<String> {
    workflow(
        quote!(),
        quote! {
            impl Wf {
                #[run]
                async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> { Ok(()) }
                #handlers
            }
        },
    )
}

#[track_caller]
fn assert_one(found: Vec<String>, expected: &str) {
    assert_eq!(
        found,
        vec![expected.to_owned()],
        "expected exactly one error"
    );
}

#[test]
fn valid_inputs_have_no_errors() {
    assert!(workflow(
        quote!(),
        quote!(
            struct Wf {
                items: std::collections::BTreeMap<u8, u8>,
            }
        )
    )
    .is_empty());
    assert!(workflow_with(quote! {
        #[signal] fn a(&mut self, x: u8) {}
        #[signal] async fn b(ctx: WorkflowContext<Self>) {}
        #[query] fn c(&self) -> u8 { 0 }
        #[update(validator = Self::check)] fn d(&mut self, x: u8) -> Result<(), E> { Ok(()) }
        fn check(&self, x: &u8) -> Result<(), E> { Ok(()) }
    })
    .is_empty());
    assert!(activity(
        quote!(),
        quote!(
            async fn a(ctx: ActivityContext, x: u8) -> Result<(), E> {
                Ok(())
            }
        )
    )
    .is_empty());
}

#[test]
fn workflow_struct_rules() {
    assert_one(
        workflow(quote!(), quote!(struct Wf<T> { t: T })),
        "`#[workflow]` structs cannot be generic; found `<T>` — a workflow type is registered under one name: use concrete types",
    );
    assert_eq!(
        workflow(quote!(), quote!(struct Wf { a: Vec<std::collections::HashMap<u8, u8>>, b: HashSet<u8> })),
        vec![
            "`#[workflow]` state must iterate deterministically; found `HashMap` — use `BTreeMap` (or `indexmap::IndexMap`)",
            "`#[workflow]` state must iterate deterministically; found `HashSet` — use `BTreeSet` (or `indexmap::IndexSet`)",
        ],
    );
    assert_one(
        workflow(
            quote!(),
            quote!(
                enum Wf {}
            ),
        ),
        "`#[workflow]` goes on a workflow's state struct or on its `impl` block; found an enum",
    );
    assert_one(
        workflow(
            quote!(nmae = "x"),
            quote!(
                struct Wf;
            ),
        ),
        "unknown argument `nmae` of `#[workflow]`; did you mean `name`?",
    );
    assert_one(
        workflow(
            quote!(timeout = 3),
            quote!(
                struct Wf;
            ),
        ),
        "unknown argument `timeout` of `#[workflow]`; expected `name` or `crate`",
    );
}

#[test]
fn run_rules() {
    assert_one(
        workflow(quote!(), quote!(impl Wf { #[signal] fn s(&mut self) {} })),
        "`#[workflow]` impl block has no `#[run]` function; add one: `#[run] pub async fn run(ctx: WorkflowContext<Self>, …) -> WorkflowResult<T>` in `impl Wf`",
    );
    assert_one(
        workflow_with(quote!(#[run] async fn again(ctx: WorkflowContext<Self>) -> WorkflowResult<()> { Ok(()) })),
        "a workflow has one `#[run]` function; found a second one, `again` (the first is `run`) — make it a plain method or a handler",
    );
    let item = quote!(impl Wf { #[run] async fn run(&mut self) -> WorkflowResult<()> { Ok(()) } });
    assert_one(
        workflow(quote!(), item),
        "the `#[run]` function takes `ctx: WorkflowContext<Self>`, not `&mut self`; state lives in the struct: read and change it with `ctx.state(|s| …)` / `ctx.state_mut(|s| …)`",
    );
    let item = quote!(impl Wf { #[run] fn run(ctx: WorkflowContext<Self>) -> String { todo!() } });
    assert_eq!(
        workflow(quote!(), item),
        vec![
            "the `#[run]` function must be `async`; found a sync `fn` — write `async fn run(ctx: WorkflowContext<Self>, …)`",
            "the `#[run]` function returns `WorkflowResult<T>` (or `Result<T, Error>`); found `String` — wrap the value: `Ok(value)`",
        ],
    );
    let item = quote!(impl Wf { #[run] async fn run(x: u8) -> WorkflowResult<()> { Ok(()) } });
    assert_one(
        workflow(quote!(), item),
        "the `#[run]` function takes `ctx: WorkflowContext<Self>` as the first parameter; found `x: u8`",
    );
    let item = quote!(impl Wf { #[run(name = "x")] async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> { Ok(()) } });
    assert_eq!(
        workflow(quote!(), item),
        vec![
            "`#[run]` takes no arguments; found `name`",
            "the workflow type's name goes on the struct: `#[workflow(name = \"...\")]`",
        ],
    );
}

#[test]
fn query_rules() {
    assert_one(
        workflow_with(quote!(#[query] fn q(&mut self) -> u8 { 0 })),
        "`#[query]` handlers must take `&self`; found `&mut self` — queries may not change workflow state, use `#[update]`",
    );
    assert_one(
        workflow_with(quote!(
            #[query]
            fn q(&self) {}
        )),
        "`#[query]` handlers must return a value; found nothing — return what the caller asks for",
    );
    assert_one(
        workflow_with(quote!(#[query] async fn q(&self) -> u8 { 0 })),
        "`#[query]` handlers cannot be `async`: a query answers at once from the state — remove `async`, or use `#[update]`",
    );
}

#[test]
fn signal_rules() {
    assert_one(
        workflow_with(quote!(#[signal] fn s(&mut self) -> bool { true })),
        "`#[signal]` handlers return `()`; found `bool` — a signal has no answer: use `#[update]` to return a value",
    );
    assert_one(
        workflow_with(quote!(#[signal] fn s(&self) {})),
        "`#[signal]` handlers must take `&mut self`; found `&self` — signals exist to change workflow state",
    );
    assert_one(
        workflow_with(quote!(#[signal] async fn s(&mut self) {})),
        "async `#[signal]` handlers take `ctx: WorkflowContext<Self>`, not `&mut self`; state lives in the struct: read and change it with `ctx.state(|s| …)` / `ctx.state_mut(|s| …)`",
    );
    assert_one(
        workflow_with(quote!(#[signal] fn s(&mut self, x: &str) {})),
        "`#[signal]` arguments arrive as payloads and must be owned types; found `&str` — take an owned type such as `String` or `Vec<T>`",
    );
}

#[test]
fn update_rules() {
    assert_one(
        workflow_with(quote!(#[update] fn u(&mut self) -> u8 { 0 })),
        "`#[update]` handlers return `Result<T, E>`; found `u8` — wrap the value: `Ok(value)`, and reject with `Err(…)`",
    );
    assert_one(
        workflow_with(quote!(
            #[update(validater = check)]
            fn u(&mut self) -> Result<(), E> {
                Ok(())
            }
        )),
        "unknown argument `validater` of `#[update]`; did you mean `validator`?",
    );
    assert_one(
        workflow_with(quote!(#[update(validator = chek)] fn u(&mut self) -> Result<(), E> { Ok(()) } fn check(&self) -> Result<(), E> { Ok(()) })),
        "no method `chek` in this impl block for the validator of `#[update]` `u`; did you mean `check`?",
    );
    assert_one(
        workflow_with(quote! {
            #[update(validator = check)] fn u(&mut self, x: u8, y: String) -> Result<(), E> { Ok(()) }
            fn check(&self, x: &u8) -> Result<(), E> { Ok(()) }
        }),
        "validator `check` of `#[update]` `u` takes 1 argument(s) but the update takes 2; a validator takes a reference to each of the update's arguments: `&u8`, `&String`",
    );
    assert_eq!(
        workflow_with(quote! {
            #[update(validator = check)] fn u(&mut self, x: u8) -> Result<(), E> { Ok(()) }
            fn check(&mut self, x: u8) -> bool { true }
        }),
        vec![
            "validator `check` of `#[update]` `u` must take `&self`; found `&mut self` — a validator may not change workflow state",
            "validator `check` of `#[update]` `u` takes `&u8` here (a reference to the update's argument); found `u8`",
            "validator `check` of `#[update]` `u` returns `Result<(), E>`; found `bool` — accept with `Ok(())`, reject with `Err(…)`",
        ],
    );
}

#[test]
fn names_must_be_unique_and_free() {
    assert_one(
        workflow_with(quote! {
            #[signal] fn x(&mut self) {}
            #[signal(name = "x")] fn y(&mut self) {}
        }),
        "duplicate signal name `x`: also used by `x` — give one of them another name with `#[signal(name = \"...\")]`",
    );
    assert_one(
        workflow_with(quote!(fn start(&self) {})),
        "method name `start` is reserved: `#[workflow]` generates `Wf::start` for clients — rename the method (a handler keeps `start` as its name with `name = \"start\"`)",
    );
    assert_one(
        workflow_with(quote!(#[query] fn result(&self) -> u8 { 0 })),
        "`#[query]` `result` would generate `WfHandle::result`, which shadows `WorkflowHandle::result` — rename the method (the handler keeps its name with `name = \"result\"`)",
    );
}

#[test]
fn determinism_rules() {
    let errors = workflow(
        quote!(),
        quote! {
            impl Wf {
                #[run]
                async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
                    let now = std::time::SystemTime::now();
                    let n: u8 = rand::random();
                    tokio::spawn(async {});
                    tokio::time::sleep(d).await;
                    println!("{:?}", Instant::now());
                    std::fs::read("x");
                    Ok(())
                }
                #[signal]
                fn s(&mut self) { std::thread::sleep(d); let r = thread_rng(); let t = Utc::now(); }
            }
        },
    );
    assert_eq!(
        errors,
        vec![
            "workflow code must be deterministic; found `std::time::SystemTime::now` in `#[run]` `run`: it reads the wall clock, so a replay sees another time — use `ctx.now()`",
            "workflow code must be deterministic; found `rand::random` in `#[run]` `run`: it draws new values on every replay — use `ctx.random()` (an `f64` in `[0, 1)`) or `ctx.random_u64()`",
            "workflow code must be deterministic; found `tokio::spawn` in `#[run]` `run`: it runs code outside the workflow's deterministic executor — run concurrent work as futures of the context with `capstan::workflow::join` or `select`",
            "workflow code must be deterministic; found `tokio::time::sleep` in `#[run]` `run`: it sets a timer that the workflow's history does not record — use `ctx.sleep(duration)`, a durable timer",
            "workflow code must be deterministic; found `Instant::now` in `#[run]` `run`: it reads the wall clock, so a replay sees another time — use `ctx.now()`",
            "workflow code must be deterministic; found `std::fs::read` in `#[run]` `run`: it touches files, which may differ when the workflow is replayed — do it in an `#[activity]` and pass the result to the workflow",
            "workflow code must be deterministic; found `std::thread::sleep` in `#[signal]` `s`: it blocks the worker and sets no timer in the workflow's history — use `ctx.sleep(duration)`, a durable timer",
            "workflow code must be deterministic; found `thread_rng` in `#[signal]` `s`: it draws new values on every replay — use `ctx.random()` (an `f64` in `[0, 1)`) or `ctx.random_u64()`",
            "workflow code must be deterministic; found `Utc::now` in `#[signal]` `s`: it reads the wall clock, so a replay sees another time — use `ctx.now()`",
        ],
    );
}

/// The errors of a `#[run]` function with `body`.
fn run_body_errors(body: TokenStream) -> Vec<String> {
    workflow(
        quote!(),
        quote! {
            impl Wf {
                #[run]
                async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> { #body Ok(()) }
            }
        },
    )
}

fn in_run(found: &str, why_and_fix: &str) -> String {
    format!("workflow code must be deterministic; found `{found}` in `#[run]` `run`: {why_and_fix}")
}

#[test]
fn determinism_rules_for_ids_timers_threads_environment_and_io() {
    const UUID: &str = "it draws a new UUID on every replay — use `ctx.uuid4()`";
    const THREAD: &str = "it uses the worker's threads, outside the workflow's deterministic executor — run concurrent work as futures of the context with `capstan::workflow::join` or `select`";
    const ENV: &str = "it reads the worker's environment, which may differ when the workflow is replayed on another worker — read configuration in an `#[activity]`, or pass it in the workflow's input";
    const FILES: &str = "it touches files, which may differ when the workflow is replayed — do it in an `#[activity]` and pass the result to the workflow";
    const NET: &str = "it does network I/O, whose results may differ when the workflow is replayed — do it in an `#[activity]` and pass the result to the workflow";
    const PROCESS: &str = "it runs a process, whose output may differ when the workflow is replayed — do it in an `#[activity]` and pass the result to the workflow";
    let errors = run_body_errors(quote! {
        let a = uuid::Uuid::new_v4();
        let b = Uuid::now_v7();
        let c = tokio::time::timeout(d, f).await;
        let e = std::thread::current();
        thread::scope(|s| {});
        let f = std::env::var("X");
        let g = env::vars();
        let h = std::env::var_os("X");
        let i = File::open("x");
        let j = tokio::fs::File::create("x").await;
        let k = std::net::TcpStream::connect("x");
        let l = UdpSocket::bind("x");
        let m = tokio::net::lookup_host("x").await;
        let n = std::process::Command::new("ls");
        // Plain values and look-alikes pass.
        let o = std::net::Ipv4Addr::new(127, 0, 0, 1);
        let p = std::net::SocketAddr::from(o);
        let q = ctx.uuid4();
        let r = my::thread_pool_size();
    });
    let expected = [
        ("uuid::Uuid::new_v4", UUID),
        ("Uuid::now_v7", UUID),
        ("tokio::time::timeout", "it sets a timer that the workflow's history does not record — race the work against `ctx.sleep(duration)` with `capstan::workflow::select`, or wait with `ctx.wait_condition_timeout(duration, ..)`"),
        ("std::thread::current", THREAD),
        ("thread::scope", THREAD),
        ("std::env::var", ENV),
        ("env::vars", ENV),
        ("std::env::var_os", ENV),
        ("File::open", FILES),
        ("tokio::fs::File::create", FILES),
        ("std::net::TcpStream::connect", NET),
        ("UdpSocket::bind", NET),
        ("tokio::net::lookup_host", NET),
        ("std::process::Command::new", PROCESS),
    ];
    let expected: Vec<String> = expected
        .iter()
        .map(|(found, why_and_fix)| in_run(found, why_and_fix))
        .collect();
    assert_eq!(errors, expected);
}

#[test]
fn workflow_fn_helpers_are_checked() {
    let errors = messages(capstan_codegen::workflow_fn(
        quote!(),
        quote!(
            fn deadline(ctx: &WorkflowContext<Wf>) -> SystemTime {
                SystemTime::now()
            }
        ),
    ));
    assert_eq!(
        errors,
        ["workflow code must be deterministic; found `SystemTime::now` in `#[workflow_fn]` `deadline`: it reads the wall clock, so a replay sees another time — use `ctx.now()`"]
    );
    // Methods of a `#[workflow]` impl block: only those marked are checked.
    assert_one(
        workflow_with(quote! {
            #[workflow_fn]
            fn marked(&self) -> u64 { rand::random() }
            fn unmarked(&self) -> u64 { rand::random() }
        }),
        "workflow code must be deterministic; found `rand::random` in `#[workflow_fn]` `marked`: it draws new values on every replay — use `ctx.random()` (an `f64` in `[0, 1)`) or `ctx.random_u64()`",
    );
    assert_one(
        messages(capstan_codegen::workflow_fn(
            quote!(),
            quote!(
                struct S;
            ),
        )),
        "`#[workflow_fn]` goes on a function that workflow code calls; found a struct",
    );
    assert_one(
        messages(capstan_codegen::workflow_fn(
            quote!(strict),
            quote!(
                fn f() {}
            ),
        )),
        "`#[workflow_fn]` takes no arguments; write `#[workflow_fn]`",
    );
}

#[test]
fn opt_outs_exempt_code_and_need_a_reason() {
    let item = quote! {
        impl Wf {
            #[run]
            async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
                #[allow_nondeterministic(reason = "only logged")]
                let started = SystemTime::now();
                let t = #[capstan::allow_nondeterministic(reason = "only logged")] Instant::now();
                #[allow_nondeterministic(reason = "only logged")]
                println!("{:?}", SystemTime::now());
                Ok(())
            }
            #[signal]
            #[allow_nondeterministic(reason = "test hook")]
            fn poke(&mut self) { std::thread::sleep(d); }
        }
    };
    let tokens = capstan_codegen::workflow(quote!(), item);
    assert_eq!(messages(tokens.clone()), Vec::<String>::new());
    // The compiler never sees the attribute: it is unknown, and unstable on expressions.
    let text = tokens.to_string();
    assert!(!text.contains("allow_nondeterministic"), "{text}");
    assert!(text.contains("SystemTime :: now"), "{text}");

    let errors = run_body_errors(quote! {
        #[allow_nondeterministic]
        let a = 1;
        #[allow_nondeterministic(reason = "  ")]
        let b = 2;
        #[allow_nondeterministic(because = "x")]
        let c = 3;
    });
    assert_eq!(
        errors,
        [
            "unknown argument `because` of `#[allow_nondeterministic]`; expected `reason`",
            "`#[allow_nondeterministic]` needs a reason; found no reason — say why replaying this code is safe: `#[allow_nondeterministic(reason = \"...\")]`",
            "`#[allow_nondeterministic]` needs a reason; found an empty reason — say why replaying this code is safe: `#[allow_nondeterministic(reason = \"...\")]`",
            "`#[allow_nondeterministic]` needs a reason; found no reason — say why replaying this code is safe: `#[allow_nondeterministic(reason = \"...\")]`",
        ]
    );
    assert_one(
        messages(capstan_codegen::allow_nondeterministic_outside_workflow(
            quote!(fn f() {}),
        )),
        "`#[allow_nondeterministic]` exempts workflow code from the determinism checks; found it outside workflow code — put it on a statement, expression or method inside a `#[workflow]` impl block or a `#[workflow_fn]` function, or remove it",
    );
    assert_one(
        messages(capstan_codegen::allow_nondeterministic_outside_workflow(
            quote!(#[workflow_fn] fn f() {}),
        )),
        "`#[allow_nondeterministic]` above `#[workflow_fn]` runs first and exempts nothing — put it below: `#[workflow_fn] #[allow_nondeterministic(reason = \"...\")] fn …`",
    );
}

#[test]
fn queries_and_validators_only_read() {
    assert_one(
        workflow_with(quote!(#[query] fn q(&self, ctx: WorkflowContext<Self>) -> u8 { 0 })),
        "`#[query]` handlers take `&self`, not a `WorkflowContext`; found `ctx: WorkflowContext<Self>` — a query only reads the state and may not schedule activities, timers or other commands: remove the parameter and read the state through `&self`",
    );
    assert_eq!(
        workflow_with(quote! {
            #[query]
            fn q(&self) -> u8 {
                self.ctx.activity(a, 1);
                let n = self.ctx.random_u64();
                block_on(async { self.ctx.sleep(d).await });
                0
            }
        }),
        [
            "`#[query]` `q` cannot call `.activity(..)`: it schedules a command in the workflow's history, and a query only reads the workflow's state — do it in a `#[signal]` or `#[update]` handler",
            "`#[query]` `q` cannot call `.random_u64(..)`: it advances the workflow's random generator, and a query only reads the workflow's state — do it in a `#[signal]` or `#[update]` handler",
            "`#[query]` `q` cannot `.await`: a query answers at once from the workflow's state — compute the answer from `&self` without waiting, or use an async `#[update]`",
            "`#[query]` `q` cannot call `.sleep(..)`: it starts a durable timer, and a query only reads the workflow's state — do it in a `#[signal]` or `#[update]` handler",
        ]
    );
    assert_eq!(
        workflow_with(quote! {
            #[update(validator = check)]
            fn u(&mut self, x: u8) -> Result<u8, E> { Ok(x) }
            fn check(&self, x: &u8) -> Result<(), E> {
                self.ctx.state_mut(|s| s.n = 1);
                block_on(async { self.ready.await });
                Ok(())
            }
        }),
        [
            "validator `check` of `#[update]` `u` cannot call `.state_mut(..)`: it changes the workflow's state, and a validator only reads the workflow's state — do it in the update handler, which runs once the update is accepted",
            "validator `check` of `#[update]` `u` cannot `.await`: a validator answers at once from the workflow's state — do the waiting in the update handler, which runs once the update is accepted",
        ]
    );
    assert_one(
        workflow_with(quote! {
            #[update(validator = check)]
            fn u(&mut self, x: u8) -> Result<u8, E> { Ok(x) }
            fn check(&self, ctx: WorkflowContext<Self>, x: &u8) -> Result<(), E> { Ok(()) }
        }),
        "validator `check` of `#[update]` `u` cannot take a `WorkflowContext`; found `ctx: WorkflowContext<Self>` — a validator only reads the state: remove the parameter and read the state through `&self`",
    );
    // Signals and updates may do all of that.
    assert!(workflow_with(quote! {
        #[signal]
        async fn s(ctx: WorkflowContext<Self>) { ctx.sleep(d).await; }
        #[update]
        async fn u(ctx: WorkflowContext<Self>) -> Result<u8, E> { ctx.activity(a, 1).await }
    })
    .is_empty());
}

#[test]
fn activity_rules() {
    assert_one(
        activity(quote!(), quote!(fn a() -> String { todo!() })),
        "`#[activity]` functions return `Result<T, ActivityError>`; found `String` — wrap the value: `Ok(value)`",
    );
    assert_one(
        activity(quote!(), quote!(fn a<T>(t: T) -> Result<(), E> { todo!() })),
        "`#[activity]` functions cannot be generic; found `<T>` — an activity is registered under one name: use concrete types",
    );
    assert_one(
        activity(quote!(), quote!(fn a(&self) -> Result<(), E> { todo!() })),
        "`#[activity]` goes on free functions; found `&self` — move the function out of the impl block",
    );
    assert_one(
        activity(
            quote!(),
            quote!(
                fn a(x: u8, ctx: ActivityContext) -> Result<(), E> {
                    todo!()
                }
            ),
        ),
        "`ActivityContext` must be the first parameter of `#[activity]` functions",
    );
    assert_one(
        activity(quote!(), quote!(impl A {})),
        "`#[activity]` goes on functions, not impl blocks: to share a connection pool or client with activities, add it with `Worker::resource(value)` and read it with `ctx.resource::<T>()` in an activity that takes `ctx: ActivityContext`",
    );
    assert_one(
        activity(
            quote!(nam = "x"),
            quote!(
                fn a() -> Result<(), E> {
                    todo!()
                }
            ),
        ),
        "unknown argument `nam` of `#[activity]`; did you mean `name`?",
    );
}

#[test]
fn errors_come_with_a_stub() {
    // The impl block is still emitted (without the handler attributes) so that code using
    // its methods keeps compiling.
    let tokens = capstan_codegen::workflow(
        quote!(),
        quote!(impl Wf { #[query] fn q(&mut self) -> u8 { 0 } }),
    );
    let text = tokens.to_string();
    assert!(text.contains("fn q (& mut self)"), "{text}");
    assert!(!text.contains("# [query]"), "{text}");
    assert!(text.contains("WorkflowDefinition for Wf"), "{text}");
}
