//! Who waits for what: a long poll waits on one topic, a run (its history, its updates)
//! or a task queue, and a transaction wakes only the topics it touched.
//!
//! Waking every held poll on every change made each change cost as many transactions as
//! there were polls: with a hundred result long-polls open, that was most of the
//! engine's work.

use std::{collections::HashMap, sync::Mutex};

use tokio::sync::watch;

use crate::state::Topic;

/// The topics someone waits on, each with the channel that wakes them.
#[derive(Default)]
pub(crate) struct Waiters {
    topics: Mutex<HashMap<Topic, watch::Sender<u64>>>,
}

impl Waiters {
    /// Starts waiting on `topic`: every wake of it from now on is seen.
    pub(crate) fn subscribe(&self, topic: Topic) -> Subscription<'_> {
        let receiver = self
            .lock()
            .entry(topic.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            waiters: self,
            topic,
            receiver: Some(receiver),
        }
    }

    /// Wakes whoever waits on `topics`.
    pub(crate) fn wake(&self, topics: impl IntoIterator<Item = Topic>) {
        let mut topics = topics.into_iter().peekable();
        if topics.peek().is_none() {
            return;
        }
        let senders = self.lock();
        for topic in topics {
            if let Some(sender) = senders.get(&topic) {
                bump(sender);
            }
        }
    }

    /// Wakes every waiter (the engine is stopping).
    pub(crate) fn wake_all(&self) {
        self.lock().values().for_each(bump);
    }

    /// How many topics someone waits on.
    #[cfg(any(test, feature = "simulation"))]
    pub(crate) fn topics(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, watch::Sender<u64>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|v| *v = v.wrapping_add(1));
}

/// A wait on one topic; the topic is forgotten when its last waiter goes.
pub(crate) struct Subscription<'a> {
    waiters: &'a Waiters,
    topic: Topic,
    receiver: Option<watch::Receiver<u64>>,
}

impl Subscription<'_> {
    /// Returns at the next wake of the topic (at once if one came since the last call).
    pub(crate) async fn woken(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            // The sender lives as long as this receiver does: no error to see.
            let _ = receiver.changed().await;
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut senders = self.waiters.lock();
        drop(self.receiver.take());
        if senders
            .get(&self.topic)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            senders.remove(&self.topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(id: &str) -> Topic {
        Topic::Run(id.to_owned())
    }

    async fn woken_soon(subscription: &mut Subscription<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), subscription.woken())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_wake_reaches_only_its_topic_and_is_kept_until_seen() {
        let waiters = Waiters::default();
        let mut a = waiters.subscribe(run("a"));
        let mut b = waiters.subscribe(run("b"));
        let mut queue = waiters.subscribe(Topic::Queue("ns".into(), "q".into()));
        // Woken before anyone awaits: not lost.
        waiters.wake([run("a")]);
        assert!(woken_soon(&mut a).await);
        assert!(!woken_soon(&mut a).await, "one wake is seen once");
        assert!(!woken_soon(&mut b).await);
        assert!(!woken_soon(&mut queue).await);
        waiters.wake([Topic::Queue("ns".into(), "q".into())]);
        assert!(woken_soon(&mut queue).await);
        waiters.wake_all();
        assert!(woken_soon(&mut b).await);
    }

    #[tokio::test]
    async fn a_topic_is_forgotten_with_its_last_waiter() {
        let waiters = Waiters::default();
        let first = waiters.subscribe(run("a"));
        let second = waiters.subscribe(run("a"));
        assert_eq!(waiters.topics(), 1);
        drop(first);
        assert_eq!(waiters.topics(), 1);
        drop(second);
        assert_eq!(waiters.topics(), 0);
    }
}
