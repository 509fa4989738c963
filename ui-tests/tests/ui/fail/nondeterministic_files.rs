use std::fs::File;

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        let config = File::open("config.toml");
        let log = std::fs::File::create("run.log");
        std::fs::write("out.txt", "done")?;
        drop((config, log));
        Ok(())
    }
}

fn main() {}
