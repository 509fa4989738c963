use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(&mut self, name: String) -> WorkflowResult<String> {
        Ok(name)
    }
}

fn main() {}
