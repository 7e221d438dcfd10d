//! Stale presence: retained `poolgate/{pool}/peers/{peer}` topics left by a bridge that died
//! without clearing them (kill -9, power loss). On every connection the bridge subscribes to its
//! pool's peer topics; the broker replays the retained ones, and each that names a peer not in
//! the pool now is cleared. Pure: the caller subscribes and publishes.

use crate::route::presence;

/// What to do with a message on the presence subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerTopic<'a> {
    /// Not a peer topic of this pool: route it as usual.
    NotPresence,
    /// A peer topic to leave as it is (live, empty, or of a peer in the pool).
    Keep,
    /// A retained description of `peer`, who is not in the pool: clear the topic.
    Clear(&'a str),
}

/// The filter that replays the pool's retained peer topics.
pub fn filter(pool: &str) -> String {
    presence::peer_topic(pool, "+")
}

/// Decides about one incoming message. `retained`: the broker's retain flag, set only on the
/// replay of a retained message at subscription time (MQTT 3.1.1 §3.3.1.3), never on live
/// traffic, such as our own announcements coming back. `is_current`: whether a peer is in the
/// pool now.
pub fn classify<'a>(
    pool: &str,
    topic: &'a str,
    payload: &[u8],
    retained: bool,
    is_current: impl Fn(&str) -> bool,
) -> PeerTopic<'a> {
    let prefix = presence::peer_topic(pool, "");
    let Some(peer) = topic.strip_prefix(prefix.as_str()) else {
        return PeerTopic::NotPresence;
    };
    if peer.is_empty() || peer.contains('/') {
        return PeerTopic::NotPresence;
    }
    if !retained || payload.is_empty() || is_current(peer) {
        return PeerTopic::Keep;
    }
    PeerTopic::Clear(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here(peer: &str) -> bool {
        peer == "alive"
    }

    #[test]
    fn clears_only_retained_descriptions_of_absent_peers() {
        let c = |topic, payload: &[u8], retained| classify("p", topic, payload, retained, here);
        assert_eq!(
            c("poolgate/p/peers/gone", b"null", true),
            PeerTopic::Clear("gone")
        );
        assert_eq!(c("poolgate/p/peers/alive", b"null", true), PeerTopic::Keep);
        assert_eq!(
            c("poolgate/p/peers/gone", b"null", false),
            PeerTopic::Keep,
            "live traffic (our own announcement) is never cleared"
        );
        assert_eq!(
            c("poolgate/p/peers/gone", b"", true),
            PeerTopic::Keep,
            "already cleared"
        );
    }

    #[test]
    fn other_topics_are_not_presence() {
        let c = |topic| classify("p", topic, b"x", true, here);
        assert_eq!(c("poolgate/p/to/all/cmd"), PeerTopic::NotPresence);
        assert_eq!(c("poolgate/other/peers/gone"), PeerTopic::NotPresence);
        assert_eq!(c("poolgate/p/peers/a/b"), PeerTopic::NotPresence);
        assert_eq!(c("poolgate/p/peers/"), PeerTopic::NotPresence);
        assert_eq!(filter("p"), "poolgate/p/peers/+");
    }
}
