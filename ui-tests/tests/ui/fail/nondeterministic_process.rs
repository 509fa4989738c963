use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        let status = std::process::Command::new("git").arg("status").status();
        drop(status);
        Ok(())
    }
}

fn main() {}
