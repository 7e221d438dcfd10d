//! Loop prevention: a message the bridge published that comes back on one of its own
//! subscriptions is not sent into the pool again (MQTT 3.1.1 has no "no local" option).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::template::filter_matches;

/// How many of our recent publishes are remembered: enough for the round trip through a broker
/// at tens of thousands of messages per second.
const REMEMBERED: usize = 65_536;

/// Remembers what the bridge published on topics its own subscriptions cover.
#[derive(Debug)]
pub struct LoopGuard {
    filters: Vec<String>,
    order: VecDeque<u64>,
    counts: HashMap<u64, u32>,
}

fn key(topic: &str, payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    topic.hash(&mut h);
    payload.hash(&mut h);
    h.finish()
}

impl LoopGuard {
    /// `filters`: the bridge's subscriptions, `{pool}` already filled in.
    pub fn new(filters: Vec<String>) -> LoopGuard {
        LoopGuard {
            filters,
            order: VecDeque::new(),
            counts: HashMap::new(),
        }
    }

    /// Notes a publish; only topics a subscription covers can come back, so only they are kept.
    pub fn published(&mut self, topic: &str, payload: &[u8]) {
        if !self.filters.iter().any(|f| filter_matches(f, topic)) {
            return;
        }
        let k = key(topic, payload);
        *self.counts.entry(k).or_default() += 1;
        self.order.push_back(k);
        if self.order.len() > REMEMBERED {
            let old = self.order.pop_front().expect("not empty");
            self.forget(old);
        }
    }

    fn forget(&mut self, k: u64) {
        if let Some(n) = self.counts.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&k);
            }
        }
    }

    /// Whether an incoming message is one of ours coming back (then it is consumed: the same
    /// message published by someone else later still goes through).
    pub fn is_echo(&mut self, topic: &str, payload: &[u8]) -> bool {
        let k = key(topic, payload);
        if !self.counts.contains_key(&k) {
            return false;
        }
        self.forget(k);
        if let Some(i) = self.order.iter().position(|x| *x == k) {
            self.order.remove(i);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_message_comes_back_once() {
        let mut g = LoopGuard::new(vec!["poolgate/p/#".into()]);
        g.published("poolgate/p/a/chat", b"hi");
        g.published("elsewhere/x", b"hi");
        assert!(g.is_echo("poolgate/p/a/chat", b"hi"));
        assert!(!g.is_echo("poolgate/p/a/chat", b"hi"), "only once");
        assert!(
            !g.is_echo("elsewhere/x", b"hi"),
            "not subscribed: not remembered"
        );
        assert!(!g.is_echo("poolgate/p/a/chat", b"other"));
    }

    #[test]
    fn memory_is_bounded() {
        let mut g = LoopGuard::new(vec!["#".into()]);
        for i in 0..(REMEMBERED + 10) {
            g.published("t", &i.to_le_bytes());
        }
        assert_eq!(g.order.len(), REMEMBERED);
        assert!(!g.is_echo("t", &0usize.to_le_bytes()));
        assert!(g.is_echo("t", &(REMEMBERED + 9).to_le_bytes()));
    }
}
