use capstan::prelude::*;

/// A workflow that keeps its context in its state (possible, but validators still only
/// read).
#[workflow]
#[derive(Default)]
pub struct Wf {
    total: u32,
    ctx: Option<WorkflowContext<Wf>>,
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

    fn check_add(&self, n: &u32) -> Result<(), UpdateError> {
        if let Some(ctx) = &self.ctx {
            ctx.state_mut(|state| state.total = *n);
        }
        Ok(())
    }
}

fn main() {}
