//! Which handed-over publishes the broker has confirmed. rumqttc numbers a publish when it writes
//! it (in the order we handed them over, after replaying the unacknowledged ones of a lost
//! connection first), so a packet id seen again is a replay, and a new one is the next message
//! we handed over. One exception: when a new publish gets the packet id of one still awaiting its
//! acknowledgement (a collision, after a reconnect), rumqttc holds it (`AwaitAck`) and writes it
//! just before it reports the acknowledgement of the old one.

use std::collections::{HashMap, VecDeque};

/// The outcome of rumqttc writing a publish.
#[derive(Debug, PartialEq, Eq)]
pub enum Written<T> {
    /// QoS 0: written is all the confirmation there is.
    Done(T),
    /// QoS 1 or 2: now waits for its acknowledgement.
    Awaiting,
    /// Sent again after a reconnect: the subscriber may get it twice.
    Replayed,
    /// Not one of ours (nothing was handed over).
    Unknown,
}

/// Publishes handed to rumqttc and not yet confirmed.
#[derive(Debug)]
pub struct Inflight<T> {
    unnumbered: VecDeque<(u8, T)>,
    numbered: HashMap<u16, T>,
    /// Held by rumqttc after a collision on this packet id.
    collided: Option<(u16, T)>,
    /// Written after a collision: owns the packet id once the old holder is acknowledged.
    successors: HashMap<u16, T>,
}

impl<T> Default for Inflight<T> {
    fn default() -> Self {
        Inflight {
            unnumbered: VecDeque::new(),
            numbered: HashMap::new(),
            collided: None,
            successors: HashMap::new(),
        }
    }
}

impl<T> Inflight<T> {
    /// A publish at `qos` was handed to rumqttc.
    pub fn handed(&mut self, qos: u8, item: T) {
        self.unnumbered.push_back((qos, item));
    }

    /// rumqttc wrote a publish with packet id `pkid` (0 for QoS 0).
    pub fn written(&mut self, pkid: u16) -> Written<T> {
        if pkid != 0 && self.numbered.contains_key(&pkid) {
            if self.collided.as_ref().is_some_and(|(p, _)| *p == pkid) {
                let (_, item) = self.collided.take().expect("checked");
                self.successors.insert(pkid, item);
                return Written::Awaiting;
            }
            return Written::Replayed;
        }
        match self.unnumbered.pop_front() {
            None => Written::Unknown,
            Some((0, item)) => Written::Done(item),
            Some((_, item)) => {
                self.numbered.insert(pkid, item);
                Written::Awaiting
            }
        }
    }

    /// rumqttc took the next publish but holds it: `pkid` is still awaiting its acknowledgement.
    pub fn collision(&mut self, pkid: u16) {
        if let Some((_, item)) = self.unnumbered.pop_front() {
            self.collided = Some((pkid, item));
        }
    }

    /// The broker acknowledged `pkid` (PUBACK at QoS 1, PUBCOMP at QoS 2).
    pub fn acknowledged(&mut self, pkid: u16) -> Option<T> {
        let done = self.numbered.remove(&pkid);
        if let Some(next) = self.successors.remove(&pkid) {
            self.numbered.insert(pkid, next);
        }
        done
    }

    /// Handed over and not confirmed.
    pub fn len(&self) -> usize {
        self.unnumbered.len()
            + self.numbered.len()
            + self.successors.len()
            + usize::from(self.collided.is_some())
    }

    /// Numbered and not acknowledged: what a reconnect replays.
    pub fn awaiting_ack(&self) -> usize {
        self.numbered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos0_is_done_when_written() {
        let mut f = Inflight::default();
        f.handed(0, "a");
        assert_eq!(f.written(0), Written::Done("a"));
        assert_eq!(f.written(0), Written::Unknown);
    }

    #[test]
    fn qos1_waits_for_its_ack_and_replays_are_told_apart() {
        let mut f = Inflight::default();
        f.handed(1, "a");
        f.handed(1, "b");
        assert_eq!(f.written(1), Written::Awaiting);
        assert_eq!(f.len(), 2);
        // The connection drops; rumqttc replays 1, then writes b for the first time.
        assert_eq!(f.written(1), Written::Replayed);
        assert_eq!(f.written(2), Written::Awaiting);
        assert_eq!(f.awaiting_ack(), 2);
        assert_eq!(f.acknowledged(1), Some("a"));
        assert_eq!(f.acknowledged(1), None);
        assert_eq!(f.acknowledged(2), Some("b"));
        assert!(f.is_empty());
    }

    #[test]
    fn a_collision_is_not_a_replay() {
        let mut f = Inflight::default();
        f.handed(1, "a");
        assert_eq!(f.written(1), Written::Awaiting);
        // Reconnected: a is replayed; b gets packet id 1 too and is held.
        f.handed(1, "b");
        assert_eq!(f.written(1), Written::Replayed);
        f.collision(1);
        // rumqttc writes b just before it reports a's acknowledgement.
        assert_eq!(f.written(1), Written::Awaiting);
        assert_eq!(f.len(), 2);
        assert_eq!(f.acknowledged(1), Some("a"));
        assert_eq!(f.acknowledged(1), Some("b"));
        assert!(f.is_empty());
    }
}
