use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf {
    total: u32,
}

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }

    #[update(validator = check_add)]
    pub fn add(&mut self, n: u32) -> Result<u32, UpdateError> {
        self.total += n;
        Ok(self.total)
    }

    fn check_add(&self, ctx: WorkflowContext<Self>, n: &u32) -> Result<(), UpdateError> {
        let _ = (ctx, n);
        Ok(())
    }
}

fn main() {}
