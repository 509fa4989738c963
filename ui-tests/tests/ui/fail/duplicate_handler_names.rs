use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }

    #[signal]
    pub fn poke(&mut self) {}

    #[signal(name = "poke")]
    pub fn prod(&mut self) {}

    #[query(name = "n")]
    pub fn count(&self) -> u32 {
        0
    }

    #[query(name = "n")]
    pub fn total(&self) -> u32 {
        0
    }
}

fn main() {}
