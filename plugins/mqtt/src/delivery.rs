//! Messages from MQTT into the pool: which peers are there, which channels are open, and what
//! waits for a channel the bridge asked to open. Pure: the caller performs the [`Action`]s.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

use crate::message::Message;
use crate::route::Target;

/// Messages kept per (peer, channel) while the channel opens.
const WAITING_PER_CHANNEL: usize = 1000;

/// What the caller does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send on the open channel.
    Send {
        peer: String,
        label: String,
        message: Message,
    },
    /// Open channel `label` to every current and later peer.
    OpenToAll { label: String },
}

/// The pool as the bridge sees it.
#[derive(Debug, Default)]
pub struct PoolSide {
    /// Peer id -> its description.
    peers: HashMap<String, Option<Value>>,
    open: HashSet<(String, String)>,
    /// Labels the bridge opened to every peer.
    opened_to_all: HashSet<String>,
    waiting: HashMap<(String, String), VecDeque<Message>>,
    /// Messages for unknown peers, or dropped while a channel opened.
    pub undeliverable: u64,
}

impl PoolSide {
    /// Notes labels the bridge opened to every peer itself.
    pub fn opened(&mut self, label: &str) {
        self.opened_to_all.insert(label.to_string());
    }

    pub fn peer_joined(&mut self, id: &str, description: Option<Value>) {
        self.peers.insert(id.to_string(), description);
    }

    pub fn description_changed(&mut self, id: &str, description: Option<Value>) {
        if let Some(d) = self.peers.get_mut(id) {
            *d = description;
        }
    }

    pub fn peer_left(&mut self, id: &str) {
        self.peers.remove(id);
        self.open.retain(|(p, _)| p != id);
        let before: usize = self.waiting.values().map(|q| q.len()).sum();
        self.waiting.retain(|(p, _), _| p != id);
        let after: usize = self.waiting.values().map(|q| q.len()).sum();
        self.undeliverable += (before - after) as u64;
    }

    /// A new session (the endpoint joined again): every peer and channel is new.
    pub fn rejoined(&mut self) {
        let waiting: usize = self.waiting.values().map(|q| q.len()).sum();
        self.undeliverable += waiting as u64;
        self.peers.clear();
        self.open.clear();
        self.waiting.clear();
    }

    /// The peers in the pool now.
    pub fn peers(&self) -> Vec<String> {
        self.peers.keys().cloned().collect()
    }

    /// Whether peer `id` is in the pool now.
    pub fn has_peer(&self, id: &str) -> bool {
        self.peers.contains_key(id)
    }

    pub fn description(&self, id: &str) -> Option<&Value> {
        self.peers.get(id).and_then(|d| d.as_ref())
    }

    /// A channel opened: what waited for it is sent now, in order.
    pub fn channel_open(&mut self, peer: &str, label: &str) -> Vec<Action> {
        let key = (peer.to_string(), label.to_string());
        let waiting = self.waiting.remove(&key).unwrap_or_default();
        self.open.insert(key);
        waiting
            .into_iter()
            .map(|message| Action::Send {
                peer: peer.to_string(),
                label: label.to_string(),
                message,
            })
            .collect()
    }

    pub fn channel_closed(&mut self, peer: &str, label: &str) {
        self.open.remove(&(peer.to_string(), label.to_string()));
    }

    /// Where `message` goes for `target`.
    pub fn deliver(&mut self, target: Target, message: Message) -> Vec<Action> {
        let (peers, label) = match target {
            Target::All { label } => (self.peers.keys().cloned().collect::<Vec<_>>(), label),
            Target::Peer { peer, label } => {
                if !self.peers.contains_key(&peer) {
                    self.undeliverable += 1;
                    return Vec::new();
                }
                (vec![peer], label)
            }
        };
        let mut actions = Vec::new();
        if !self.opened_to_all.contains(&label) {
            self.opened_to_all.insert(label.clone());
            actions.push(Action::OpenToAll {
                label: label.clone(),
            });
        }
        for peer in peers {
            let key = (peer, label.clone());
            if self.open.contains(&key) {
                actions.push(Action::Send {
                    peer: key.0,
                    label: key.1,
                    message: message.clone(),
                });
                continue;
            }
            let queue = self.waiting.entry(key).or_default();
            if queue.len() >= WAITING_PER_CHANNEL {
                queue.pop_front();
                self.undeliverable += 1;
            }
            queue.push_back(message.clone());
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Message {
        Message::Text(t.into())
    }

    #[test]
    fn waits_for_the_channel_then_sends_in_order() {
        let mut s = PoolSide::default();
        s.peer_joined("a", None);
        let to_a = |label: &str| Target::Peer {
            peer: "a".into(),
            label: label.into(),
        };
        assert_eq!(
            s.deliver(to_a("cmd"), text("1")),
            [Action::OpenToAll {
                label: "cmd".into()
            }]
        );
        assert_eq!(s.deliver(to_a("cmd"), text("2")), []);
        let sent = s.channel_open("a", "cmd");
        assert_eq!(sent.len(), 2);
        assert!(matches!(&sent[0], Action::Send { message, .. } if *message == text("1")));
        assert_eq!(
            s.deliver(to_a("cmd"), text("3")),
            [Action::Send {
                peer: "a".into(),
                label: "cmd".into(),
                message: text("3")
            }]
        );
    }

    #[test]
    fn to_all_reaches_every_peer_and_unknown_peers_count() {
        let mut s = PoolSide::default();
        s.opened("cmd");
        s.peer_joined("a", None);
        s.peer_joined("b", None);
        s.channel_open("a", "cmd");
        s.channel_open("b", "cmd");
        let mut sent = s.deliver(
            Target::All {
                label: "cmd".into(),
            },
            text("x"),
        );
        sent.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(sent.len(), 2);
        assert_eq!(
            s.deliver(
                Target::Peer {
                    peer: "zz".into(),
                    label: "cmd".into()
                },
                text("x")
            ),
            []
        );
        assert_eq!(s.undeliverable, 1);
        s.channel_closed("b", "cmd");
        s.deliver(
            Target::Peer {
                peer: "b".into(),
                label: "cmd".into(),
            },
            text("y"),
        );
        s.peer_left("b");
        assert_eq!(s.undeliverable, 2);
    }
}
