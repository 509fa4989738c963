use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<String> {
        let id = uuid::Uuid::new_v4();
        Ok(id.0)
    }
}

mod uuid {
    pub struct Uuid(pub String);
    impl Uuid {
        pub fn new_v4() -> Self {
            Uuid(String::new())
        }
    }
}

fn main() {}
