//! Snapshots of what the macros generate, pretty-printed.

use proc_macro2::TokenStream;
use quote::quote;

/// `assert_snapshot!` without the (long) input in the snapshot header.
macro_rules! snapshot {
    ($value:expr) => {{
        let value = $value;
        let mut settings = insta::Settings::clone_current();
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(value));
    }};
}

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

fn workflow(attr: TokenStream, item: TokenStream) -> String {
    pretty(capstan_codegen::workflow(attr, item))
}

fn activity(attr: TokenStream, item: TokenStream) -> String {
    pretty(capstan_codegen::activity(attr, item))
}

#[test]
fn workflow_struct() {
    snapshot!(workflow(
        quote!(),
        quote! {
            #[derive(Default)]
            pub struct PurchaseFruitsWorkflow {
                ordered: Vec<String>,
            }
        },
    ));
}

#[test]
fn workflow_struct_renamed_with_crate_path() {
    snapshot!(workflow(
        quote!(name = "purchase-fruits", crate = ::my_capstan),
        quote! {
            #[derive(Default)]
            pub(crate) struct PurchaseFruitsWorkflow;
        },
    ));
}

#[test]
fn workflow_impl_full() {
    snapshot!(workflow(
        quote!(),
        quote! {
            impl PurchaseFruitsWorkflow {
                /// Orders every item of the list.
                #[run]
                pub async fn run(ctx: WorkflowContext<Self>, list: ShoppingList) -> WorkflowResult<String> {
                    Ok(String::new())
                }

                /// Cancels the order.
                #[signal]
                pub fn cancel_order(&mut self, reason: String) {
                    self.cancelled = Some(reason);
                }

                #[signal(name = "note")]
                pub async fn notify(ctx: WorkflowContext<Self>, note: String) {}

                #[query]
                pub fn ordered(&self) -> Vec<String> {
                    self.ordered.clone()
                }

                #[update(validator = check_item)]
                pub fn add_item(&mut self, item: ShoppingItem) -> Result<usize, UpdateError> {
                    Ok(1)
                }

                pub fn check_item(&self, item: &ShoppingItem) -> Result<(), UpdateError> {
                    Ok(())
                }

                #[update(validator = Self::check_points)]
                pub async fn add_points(ctx: WorkflowContext<Self>, points: i64) -> Result<Status, UpdateError> {
                    Ok(Status::default())
                }

                fn check_points(&self, points: &i64) -> Result<(), UpdateError> {
                    Ok(())
                }

                fn helper(&self) {}
            }
        },
    ));
}

#[test]
fn workflow_impl_without_arguments() {
    snapshot!(workflow(
        quote!(),
        quote! {
            impl Greeter {
                #[run]
                async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
                    Ok(())
                }
            }
        },
    ));
}

#[test]
fn workflow_impl_with_several_arguments_and_patterns() {
    snapshot!(workflow(
        quote!(crate = ::my_capstan),
        quote! {
            impl wf::Transfer {
                #[run]
                pub async fn run(
                    ctx: WorkflowContext<Self>,
                    from: Account,
                    (to, amount): (Account, u64),
                    _: Note,
                ) -> Result<Receipt, Error> {
                    todo!()
                }

                #[signal]
                pub fn adjust(&mut self, mut delta: i64, _: String) {}

                #[query(name = "balance")]
                pub fn current_balance(&self, account: Account, at: u64) -> u64 {
                    0
                }

                #[update(validator = check_rate)]
                pub fn set_rate(&mut self, (num, den): (u32, u32), reason: String) -> Result<(), UpdateError> {
                    Ok(())
                }

                fn check_rate(&self, ratio: &(u32, u32), reason: &String) -> Result<(), UpdateError> {
                    Ok(())
                }

                #[signal]
                pub fn replace(&mut self, with: Self) {}
            }
        },
    ));
}

#[test]
fn activity_async() {
    snapshot!(activity(
        quote!(),
        quote! {
            /// Orders apples.
            #[inline]
            pub async fn order_apples(amount: u32) -> Result<String, ActivityError> {
                Ok(format!("Ordered {amount} Apples..."))
            }
        },
    ));
}

#[test]
fn activity_sync() {
    snapshot!(activity(
        quote!(name = "say-hello"),
        quote! {
            pub fn say_hello(name: String, (greeting, _): (String, u8)) -> Result<String, ActivityError> {
                Ok(format!("{greeting}, {name}!"))
            }
        },
    ));
}

#[test]
fn activity_with_context_and_no_arguments() {
    snapshot!(activity(
        quote!(),
        quote! {
            async fn heartbeat(ctx: ActivityContext) -> Result<(), ActivityError> {
                Ok(())
            }
        },
    ));
}

#[test]
fn activity_with_context_and_renamed_crate() {
    snapshot!(activity(
        quote!(crate = ::my_capstan),
        quote! {
            pub(crate) async fn poll(ctx: capstan::ActivityContext, n: u32, label: String) -> anyhow::Result<u32> {
                Ok(n)
            }
        },
    ));
}

#[test]
fn workflow_fn_without_its_opt_outs() {
    // `#[workflow_fn]` emits the function as written, minus the opt-out attributes the
    // compiler would reject on statements and expressions.
    snapshot!(pretty(capstan_codegen::workflow_fn(
        quote!(),
        quote! {
            /// When the offer expires.
            pub fn expires_at(ctx: &WorkflowContext<Offer>, after: Duration) -> SystemTime {
                #[allow_nondeterministic(reason = "only logged")]
                let wall = SystemTime::now();
                let logged = #[capstan::allow_nondeterministic(reason = "only logged")] Instant::now();
                ctx.now() + after
            }
        },
    )));
}

#[test]
fn workflow_impl_with_workflow_fn_and_opt_outs() {
    snapshot!(workflow(
        quote!(),
        quote! {
            impl Offer {
                #[run]
                #[allow_nondeterministic(reason = "a test hook")]
                async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
                    Ok(())
                }

                #[workflow_fn]
                fn pick(&self) -> u64 {
                    #[allow_nondeterministic(reason = "logged only")]
                    println!("{:?}", SystemTime::now());
                    1
                }
            }
        },
    ));
}
