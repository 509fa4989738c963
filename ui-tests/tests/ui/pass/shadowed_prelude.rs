//! The generated code uses absolute paths only: shadowing the prelude and `core` changes
//! nothing, at module scope or inside a function.
#![allow(dead_code, non_camel_case_types)]

type Option = ();
type Result = ();
struct String;
struct Vec;
struct Box;
trait Clone {}
trait Default {}
trait Into {}
trait From {}
mod core {}
mod std {}

#[capstan::activity]
pub async fn shout(text: ::std::string::String) -> ::std::result::Result<::std::string::String, capstan::ActivityError> {
    ::std::result::Result::Ok(text)
}

#[capstan::activity]
pub fn count(items: ::std::vec::Vec<u8>) -> ::std::result::Result<usize, capstan::ActivityError> {
    ::std::result::Result::Ok(items.len())
}

#[capstan::workflow]
#[derive(::std::default::Default)]
pub struct Shadowed {
    seen: u32,
}

#[capstan::workflow]
impl Shadowed {
    #[run]
    pub async fn run(
        ctx: capstan::WorkflowContext<Self>,
        text: ::std::string::String,
    ) -> capstan::WorkflowResult<::std::string::String> {
        let _ = ctx;
        ::std::result::Result::Ok(text)
    }

    #[signal]
    pub fn see(&mut self, n: u32) {
        self.seen += n;
    }

    #[query]
    pub fn seen(&self) -> u32 {
        self.seen
    }

    #[update(validator = check)]
    pub fn reset(&mut self, to: u32) -> ::std::result::Result<u32, capstan::UpdateError> {
        self.seen = to;
        ::std::result::Result::Ok(to)
    }

    fn check(&self, to: &u32) -> ::std::result::Result<(), capstan::UpdateError> {
        let _ = to;
        ::std::result::Result::Ok(())
    }
}

fn main() {
    #[capstan::activity]
    async fn local_activity(n: u32) -> ::std::result::Result<u32, capstan::ActivityError> {
        ::std::result::Result::Ok(n)
    }

    #[capstan::workflow]
    #[derive(::std::default::Default)]
    struct Local;

    #[capstan::workflow]
    impl Local {
        #[run]
        async fn run(_ctx: capstan::WorkflowContext<Self>) -> capstan::WorkflowResult<u32> {
            ::std::result::Result::Ok(1)
        }

        #[query]
        fn answer(&self) -> u32 {
            42
        }
    }

    let _ = local_activity;
    let _ = shout;
    let _ = count;
}
