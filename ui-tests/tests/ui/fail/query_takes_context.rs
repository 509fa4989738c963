use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf {
    count: u32,
}

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }

    #[query]
    pub fn count(&self, ctx: WorkflowContext<Self>) -> u32 {
        let _ = ctx;
        self.count
    }
}

fn main() {}
