use std::time::Duration;

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        let waited = tokio::time::timeout(Duration::from_secs(5), ctx.sleep(Duration::from_secs(1)));
        Ok(waited)
    }
}

mod tokio {
    pub mod time {
        pub fn timeout<F>(_: std::time::Duration, _: F) {}
    }
}

fn main() {}
