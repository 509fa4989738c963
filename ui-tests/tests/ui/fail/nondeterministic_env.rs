use std::env;

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<String> {
        let region = std::env::var("REGION").unwrap_or_default();
        let count = env::vars().count();
        let home = env::var_os("HOME");
        Ok(format!("{region} {count} {home:?}"))
    }
}

fn main() {}
