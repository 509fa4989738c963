use std::thread;

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<String> {
        let name = std::thread::current().name().map(str::to_owned);
        thread::scope(|_| {});
        Ok(name.unwrap_or_default())
    }
}

fn main() {}
