//! The request ids a run or a schedule saw last: a retried request (the same id) is
//! applied once. Bounded, because the owner's stored state is written at every change and
//! a client retries within moments, not thousands of requests later.

use std::collections::VecDeque;

/// Notes `request_id` in `recent` (keeping the latest `capacity`); false if it was there
/// (a retry). An empty id is never a retry and is not kept.
pub(crate) fn remember(recent: &mut VecDeque<String>, request_id: &str, capacity: usize) -> bool {
    if request_id.is_empty() {
        return true;
    }
    if recent.iter().any(|id| id == request_id) {
        return false;
    }
    if recent.len() >= capacity {
        recent.pop_front();
    }
    recent.push_back(request_id.to_owned());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_seen_and_the_oldest_id_is_let_go() {
        let mut recent = VecDeque::new();
        assert!(remember(&mut recent, "a", 2));
        assert!(!remember(&mut recent, "a", 2));
        assert!(remember(&mut recent, "b", 2));
        assert!(remember(&mut recent, "c", 2));
        assert!(remember(&mut recent, "a", 2), "a was let go");
        assert!(remember(&mut recent, "", 2) && remember(&mut recent, "", 2));
        assert_eq!(recent, ["c", "a"]);
    }
}
