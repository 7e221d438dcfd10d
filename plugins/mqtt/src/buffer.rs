//! The bounded, in-order buffer of messages waiting for the broker.

use std::collections::VecDeque;

use crate::config::DropPolicy;

/// What [`Outbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Queued, nothing dropped.
    Queued,
    /// Queued; the oldest message was dropped to make room (returned).
    DroppedOldest(T),
    /// The buffer is full and the policy keeps the old ones: the new message was dropped.
    DroppedNewest(T),
}

/// A FIFO of at most `capacity` messages; when full, `policy` says which one is dropped.
#[derive(Debug)]
pub struct Outbox<T> {
    queue: VecDeque<T>,
    capacity: usize,
    policy: DropPolicy,
    dropped: u64,
}

impl<T> Outbox<T> {
    /// An empty buffer (`capacity` at least 1).
    pub fn new(capacity: usize, policy: DropPolicy) -> Outbox<T> {
        Outbox {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            policy,
            dropped: 0,
        }
    }

    /// Queues `item` at the back, dropping by the policy when full.
    pub fn push(&mut self, item: T) -> Pushed<T> {
        if self.queue.len() < self.capacity {
            self.queue.push_back(item);
            return Pushed::Queued;
        }
        self.dropped += 1;
        match self.policy {
            DropPolicy::Newest => Pushed::DroppedNewest(item),
            DropPolicy::Oldest => {
                let old = self.queue.pop_front().expect("a full buffer has a front");
                self.queue.push_back(item);
                Pushed::DroppedOldest(old)
            }
        }
    }

    /// Takes the oldest message.
    pub fn pop(&mut self) -> Option<T> {
        self.queue.pop_front()
    }

    /// Puts a message taken by [`Outbox::pop`] back at the front (it could not be sent yet).
    /// It may exceed the capacity by this one message, which is never dropped for it.
    pub fn unpop(&mut self, item: T) {
        self.queue.push_front(item);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the next push drops a message.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    /// Messages dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_below_capacity() {
        let mut b = Outbox::new(3, DropPolicy::Oldest);
        for i in 0..3 {
            assert_eq!(b.push(i), Pushed::Queued);
        }
        assert!(b.is_full());
        assert_eq!(
            (b.pop(), b.pop(), b.pop(), b.pop()),
            (Some(0), Some(1), Some(2), None)
        );
        assert_eq!(b.dropped(), 0);
    }

    #[test]
    fn drops_the_oldest() {
        let mut b = Outbox::new(2, DropPolicy::Oldest);
        b.push(1);
        b.push(2);
        assert_eq!(b.push(3), Pushed::DroppedOldest(1));
        assert_eq!(b.dropped(), 1);
        assert_eq!((b.pop(), b.pop()), (Some(2), Some(3)));
    }

    #[test]
    fn drops_the_newest() {
        let mut b = Outbox::new(2, DropPolicy::Newest);
        b.push(1);
        b.push(2);
        assert_eq!(b.push(3), Pushed::DroppedNewest(3));
        assert_eq!((b.pop(), b.pop()), (Some(1), Some(2)));
        assert_eq!(b.dropped(), 1);
    }

    #[test]
    fn unpop_goes_first() {
        let mut b = Outbox::new(2, DropPolicy::Oldest);
        b.push(1);
        b.push(2);
        let first = b.pop().unwrap();
        b.unpop(first);
        assert_eq!(b.len(), 2);
        assert_eq!(b.pop(), Some(1));
    }
}
