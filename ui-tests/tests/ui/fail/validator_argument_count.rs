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

    #[update(validator = Self::check_add)]
    pub fn add(&mut self, n: u32, label: String) -> Result<u32, UpdateError> {
        Ok(n)
    }

    pub fn check_add(&self, n: &u32) -> Result<(), UpdateError> {
        Ok(())
    }
}

fn main() {}
