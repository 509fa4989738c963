//! The timer service: one task that sleeps until the earliest armed deadline, fires what
//! is due in one transaction, and sleeps again; woken early when an earlier deadline is
//! armed. What a deadline does is the state's business (`state/fire.rs`).

use std::{sync::Arc, time::Duration};

use crate::store::Store;

/// How long to sleep when no deadline is armed (a wake comes with the first one).
const IDLE: Duration = Duration::from_secs(3600);

/// Runs until the engine closes.
///
/// With a virtual clock the service also wakes on every transaction that progressed,
/// since any of them may leave the engine idle; when it is, the clock jumps to the
/// earliest deadline.
pub(crate) async fn run(store: Arc<Store>) {
    let mut changes = store.subscribe();
    loop {
        if store.is_closing() {
            return;
        }
        let (wait, is_virtual) = store
            .transaction(|state| {
                state.fire_due();
                let wait = state.wheel.next().map(|at| state.clock.real_wait(at));
                (wait, state.clock.is_virtual())
            })
            .await;
        tokio::select! {
            _ = tokio::time::sleep(wait.unwrap_or(IDLE)) => {}
            _ = store.timer_wake().notified() => {}
            changed = changes.changed(), if is_virtual => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
