use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub fn run(_ctx: WorkflowContext<Self>) -> String {
        String::new()
    }
}

fn main() {}
