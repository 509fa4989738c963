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

    #[update(validator = check_add)]
    pub fn add(&mut self, n: u32, label: String) -> Result<u32, UpdateError> {
        Ok(n)
    }

    pub fn check_add(&mut self, n: u32, label: &String) -> bool {
        true
    }
}

fn main() {}
