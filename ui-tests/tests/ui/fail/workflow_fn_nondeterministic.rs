use std::time::{Duration, SystemTime};

use capstan::prelude::*;

/// Workflow code outside the impl block: checked like a handler.
#[workflow_fn]
pub fn deadline(after: Duration) -> SystemTime {
    SystemTime::now() + after
}

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<u64> {
        let _ = deadline(Duration::from_secs(1));
        Ok(Self::pick())
    }

    /// A plain method marked as workflow code.
    #[workflow_fn]
    fn pick() -> u64 {
        let seed = std::env::var("SEED").unwrap_or_default();
        seed.len() as u64
    }
}

fn main() {}
