use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(name: String) -> WorkflowResult<String> {
        Ok(name)
    }
}

fn main() {}
