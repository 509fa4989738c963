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

    #[update(validator = check_ad)]
    pub fn add(&mut self, n: u32) -> Result<u32, UpdateError> {
        Ok(n)
    }

    pub fn check_add(&self, n: &u32) -> Result<(), UpdateError> {
        Ok(())
    }
}

fn main() {}
