use std::time::SystemTime;

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        #[allow_nondeterministic]
        let started = SystemTime::now();
        #[allow_nondeterministic(reason = "")]
        let again = SystemTime::now();
        drop((started, again));
        Ok(())
    }
}

fn main() {}
