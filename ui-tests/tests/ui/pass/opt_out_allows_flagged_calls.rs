//! `#[allow_nondeterministic(reason = "...")]` exempts a statement, an expression or a
//! whole function, and the compiler never sees it (attributes on expressions are unstable,
//! and the attribute is not a real one there): this compiles on stable Rust.
use std::time::{Duration, SystemTime};

use capstan::prelude::*;

/// Workflow code outside the impl block, with one exempt call.
#[workflow_fn]
pub fn expires_at(ctx: &WorkflowContext<Wf>, after: Duration) -> SystemTime {
    #[allow_nondeterministic(reason = "only compared in a debug assertion")]
    let wall = SystemTime::now();
    debug_assert!(wall >= SystemTime::UNIX_EPOCH);
    ctx.now() + after
}

/// A whole helper exempt: the attribute goes below `#[workflow_fn]`.
#[workflow_fn]
#[allow_nondeterministic(reason = "test-only hook, never called from a run")]
pub fn wall_clock_for_tests() -> SystemTime {
    SystemTime::now()
}

#[workflow]
#[derive(Default)]
pub struct Wf {
    started: Option<SystemTime>,
}

#[workflow]
impl Wf {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<u64> {
        #[capstan::allow_nondeterministic(reason = "metrics only: not part of the state")]
        let started = std::time::Instant::now();
        let deadline = expires_at(&ctx, Duration::from_secs(60));
        ctx.state_mut(|state| state.started = Some(deadline));
        let elapsed =
            #[allow_nondeterministic(reason = "metrics only")] std::time::Instant::now() - started;
        #[allow_nondeterministic(reason = "logged, never branched on")]
        println!("{:?} {elapsed:?}", SystemTime::now());
        Ok(helper())
    }

    #[signal]
    #[allow_nondeterministic(reason = "the whole handler is a test hook")]
    pub fn reset_clock(&mut self) {
        self.started = Some(SystemTime::now());
    }

    #[query]
    pub fn started(&self) -> Option<SystemTime> {
        self.started
    }
}

fn helper() -> u64 {
    #[workflow_fn]
    fn local(n: u64) -> u64 {
        #[allow_nondeterministic(reason = "read once; the value is never used")]
        let _ = std::env::var("UNUSED");
        n
    }
    local(1)
}

fn main() {
    let _ = wall_clock_for_tests;
}
