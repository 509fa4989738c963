use std::time::Duration;

use capstan::prelude::*;

/// A workflow that keeps its context in its state (possible, but queries still only read).
#[workflow]
#[derive(Default)]
pub struct Wf {
    ctx: Option<WorkflowContext<Wf>>,
}

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }

    #[query]
    pub fn lucky_number(&self) -> u64 {
        match &self.ctx {
            Some(ctx) => {
                let _timer = ctx.sleep(Duration::from_secs(1));
                ctx.random_u64()
            }
            None => 7,
        }
    }
}

fn main() {}
