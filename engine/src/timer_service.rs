//! The timer service: one task that sleeps until the earliest armed deadline, fires what
//! is due in one transaction, and sleeps again; woken early when an earlier deadline is
//! armed. What a deadline does is the state's business (`state/fire.rs`).
//!
//! A deadline whose firing fails (a bug) does not stop the service: the failed
//! transaction is undone, the due deadlines are fired one at a time, and the one that
//! fails is set aside (its run terminated, or its schedule paused, saying why).

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
        let fired = store
            .try_transaction(|state| {
                state.fire_due();
                let wait = state.wheel.next().map(|at| state.clock.real_wait(at));
                (wait, state.clock.is_virtual())
            })
            .await;
        let Ok((wait, is_virtual)) = fired else {
            fire_one_at_a_time(&store).await;
            continue;
        };
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

/// Fires the due deadlines one per transaction, setting aside each one whose firing
/// fails.
async fn fire_one_at_a_time(store: &Store) {
    loop {
        match store.try_transaction(|state| state.fire_next_due()).await {
            Ok(true) => continue,
            Ok(false) => return,
            Err(failed) => {
                // Terminating the run may fail as firing did: then the deadline is only
                // dropped.
                let set_aside = match store
                    .try_transaction(|state| state.set_aside_next_due(&failed.message, true))
                    .await
                {
                    Ok(set_aside) => set_aside,
                    Err(_) => {
                        store
                            .transaction(|state| state.set_aside_next_due(&failed.message, false))
                            .await
                    }
                };
                if let Some(what) = set_aside {
                    tracing::error!(
                        "capstan-engine: firing {what} failed ({}); it is set aside",
                        failed.message
                    );
                }
            }
        }
    }
}
