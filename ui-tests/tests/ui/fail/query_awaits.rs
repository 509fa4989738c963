use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf {
    count: u32,
}

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }

    #[query]
    pub fn count(&self) -> u32 {
        let later = async { std::future::ready(self.count).await };
        drop(later);
        self.count
    }
}

fn main() {}
