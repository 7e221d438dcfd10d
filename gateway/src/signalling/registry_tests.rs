//! Unit and property tests of the registry: every protocol rule, without sockets.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;

fn id(n: u128) -> EndpointId {
    EndpointId(Uuid::from_u128(
        0x6f1c_2a4e_0000_4000_8000_0000_0000_0000 | n,
    ))
}

fn registry() -> Registry {
    Registry::new(PoolMode::Public, Limits::default())
}

fn frame(t: &str, data: Value) -> String {
    json!({"type": t, "data": data}).to_string()
}

fn join_frame(pool: &str) -> String {
    frame("rtc:join", json!({ "pool": pool }))
}

fn sdp_frame(to: EndpointId) -> String {
    frame(
        "rtc:sdp",
        json!({"to": to.to_string(), "description": {"type": "offer", "sdp": "v=0\r\n"}}),
    )
}

fn candidate_frame(to: EndpointId) -> String {
    frame(
        "rtc:candidate",
        json!({"for": to.to_string(), "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}),
    )
}

/// The messages in `out`, as (recipient, message).
fn sends(out: &[Output]) -> Vec<(EndpointId, ServerMessage)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

fn single_error(out: &[Output], to: EndpointId) -> (String, &'static str) {
    let s = sends(out);
    assert_eq!(s.len(), 1, "expected exactly one message, got {s:?}");
    match &s[0] {
        (t, ServerMessage::Error { message, code, .. }) if *t == to => (message.clone(), code),
        other => panic!("expected rtc:error to {to}, got {other:?}"),
    }
}

/// Connects and joins `n` into `pool`, returning the outputs of the join.
fn join(r: &mut Registry, n: u128, pool: &str) -> Vec<Output> {
    r.connect(id(n));
    r.receive_frame(id(n), &join_frame(pool))
}

#[test]
fn first_join_creates_the_pool_and_gets_no_peers() {
    let mut r = registry();
    let out = join(&mut r, 1, "room");
    let s = sends(&out);
    assert_eq!(s.len(), 1);
    let ServerMessage::Joined {
        client_id,
        pool,
        peers,
        descriptions,
    } = &s[0].1
    else {
        panic!("expected rtc:joined, got {s:?}")
    };
    assert_eq!(*client_id, id(1));
    assert_eq!(pool, "room");
    assert!(peers.is_empty());
    assert_eq!(
        descriptions.keys().copied().collect::<Vec<_>>(),
        vec![id(1)]
    );
    assert!(out.contains(&Output::Notice(Notice::PoolCreated {
        pool: "room".into(),
        origin: PoolOrigin::Joined
    })));
    assert_eq!(r.pool_count(), 1);
}

#[test]
fn later_joiner_gets_peers_and_descriptions_and_others_get_rtc_peer() {
    let mut r = registry();
    join(&mut r, 1, "room");
    r.set_description(id(1), Some(json!({"name": "camera"})))
        .unwrap();
    join(&mut r, 2, "room");
    let out = join(&mut r, 3, "room");
    let s = sends(&out);
    let ServerMessage::Joined {
        peers,
        descriptions,
        ..
    } = &s[0].1
    else {
        panic!("expected rtc:joined first, got {s:?}")
    };
    assert_eq!(peers, &vec![id(1), id(2)], "peers in join order");
    assert_eq!(descriptions[&id(1)], Some(json!({"name": "camera"})));
    assert_eq!(descriptions[&id(2)], None);
    assert_eq!(
        s[1..].to_vec(),
        vec![
            (id(1), ServerMessage::Peer { id: id(3) }),
            (id(2), ServerMessage::Peer { id: id(3) })
        ]
    );
}

#[test]
fn sdp_and_candidates_are_routed_with_the_true_sender() {
    let mut r = registry();
    join(&mut r, 1, "room");
    join(&mut r, 2, "room");
    let out = r.receive_frame(id(2), &sdp_frame(id(1)));
    assert_eq!(
        sends(&out),
        vec![(
            id(1),
            ServerMessage::Sdp {
                peer: id(2),
                description: SessionDescription {
                    kind: protocol::SdpType::Offer,
                    sdp: "v=0\r\n".into()
                }
            }
        )]
    );
    // The client's own `from` is ignored: the server knows who sent it.
    let forged = frame(
        "rtc:candidate",
        json!({"for": id(1).to_string(), "from": id(9).to_string(), "candidate": null}),
    );
    let out = r.receive_frame(id(2), &forged);
    assert_eq!(
        sends(&out),
        vec![(
            id(1),
            ServerMessage::Candidate {
                from: id(2),
                candidate: None
            }
        )]
    );
    let out = r.receive_frame(id(1), &candidate_frame(id(2)));
    assert!(
        matches!(&sends(&out)[..], [(to, ServerMessage::Candidate { from, candidate: Some(_) })] if *to == id(2) && *from == id(1))
    );
}

#[test]
fn nothing_is_routed_across_pools() {
    let mut r = registry();
    join(&mut r, 1, "a");
    join(&mut r, 2, "b");
    for f in [sdp_frame(id(2)), candidate_frame(id(2))] {
        let out = r.receive_frame(id(1), &f);
        let (message, code) = single_error(&out, id(1));
        assert_eq!(code, "unknown_target");
        assert!(message.contains("no endpoint"), "{message}");
        assert!(message.contains("pool \"a\""), "{message}");
    }
    // An id that exists nowhere gets the same answer.
    let out = r.receive_frame(id(1), &sdp_frame(id(77)));
    assert_eq!(single_error(&out, id(1)).1, "unknown_target");
}

#[test]
fn signalling_oneself_is_refused() {
    let mut r = registry();
    join(&mut r, 1, "a");
    let out = r.receive_frame(id(1), &sdp_frame(id(1)));
    assert_eq!(single_error(&out, id(1)).1, "self_target");
}

#[test]
fn disconnect_tells_the_rest_and_empty_pools_disappear() {
    let mut r = registry();
    join(&mut r, 1, "room");
    join(&mut r, 2, "room");
    let out = r.disconnect(id(1), LeaveReason::ClientClosed);
    assert_eq!(
        sends(&out),
        vec![(id(2), ServerMessage::Close { id: id(1) })]
    );
    assert!(out.contains(&Output::Notice(Notice::Left {
        endpoint: id(1),
        pool: "room".into(),
        reason: LeaveReason::ClientClosed
    })));
    assert_eq!(r.pool_count(), 1);
    let out = r.disconnect(id(2), LeaveReason::KeepaliveTimeout);
    assert!(sends(&out).is_empty());
    assert!(out.contains(&Output::Notice(Notice::PoolRemoved {
        pool: "room".into(),
        reason: PoolRemoval::Empty
    })));
    assert_eq!(r.pool_count(), 0);
    assert_eq!(r.endpoint_count(), 0);
    // Disconnecting twice is harmless.
    assert!(r.disconnect(id(2), LeaveReason::ClientClosed).is_empty());
}

#[test]
fn bad_input_gets_an_error_and_changes_nothing() {
    let mut r = registry();
    join(&mut r, 1, "room");
    join(&mut r, 2, "room");
    let before = r.pools();
    let bad = [
        "not json".to_string(),
        "42".to_string(),
        "{}".to_string(),
        r#"{"type": 1}"#.to_string(),
        r#"{"type": "rtc:sdp", "data": "x"}"#.to_string(),
        frame("rtc:sdp", json!({"to": id(1).to_string()})),
        frame("rtc:candidate", json!({"for": 5, "candidate": null})),
        frame("rtc:nope", json!({})),
        join_frame("again"),
        "x".repeat(Limits::default().max_message_bytes + 1),
    ];
    for f in &bad {
        let out = r.receive_frame(id(2), f);
        let (message, _) = single_error(&out, id(2));
        assert!(!message.is_empty());
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Notice(Notice::Refused { endpoint, .. }) if *endpoint == id(2))),
            "refusal is logged for {f:?}"
        );
    }
    assert_eq!(r.pools(), before);
}

#[test]
fn the_error_names_the_problem() {
    let mut r = registry();
    r.connect(id(1));
    let cases = [
        (sdp_frame(id(2)), "not_joined", "rtc:sdp before rtc:join"),
        (
            candidate_frame(id(2)),
            "not_joined",
            "rtc:candidate before rtc:join",
        ),
        ("{".to_string(), "malformed_frame", "not valid JSON"),
        (join_frame(""), "invalid_pool_name", "empty"),
        (join_frame(&"p".repeat(300)), "invalid_pool_name", "256"),
        (join_frame("a\u{7}b"), "invalid_pool_name", "control"),
    ];
    for (f, code, text) in cases {
        let out = r.receive_frame(id(1), &f);
        let (message, c) = single_error(&out, id(1));
        assert_eq!(c, code, "{f}");
        assert!(message.contains(text), "{message:?} lacks {text:?}");
    }
    let out = join(&mut r, 1, "room");
    assert!(matches!(sends(&out)[0].1, ServerMessage::Joined { .. }));
    let out = r.receive_frame(id(1), &join_frame("room"));
    assert_eq!(single_error(&out, id(1)).1, "already_joined");
}

#[test]
fn non_signalling_events_are_ignored() {
    let mut r = registry();
    join(&mut r, 1, "room");
    assert!(r
        .receive_frame(id(1), &frame("chat:message", json!("hi")))
        .is_empty());
    assert!(r
        .receive_event(id(1), "app-event", json!([1, 2]), 5)
        .is_empty());
}

#[test]
fn socketio_events_follow_the_same_rules() {
    let mut r = registry();
    r.connect(id(1));
    let out = r.receive_event(id(1), "rtc:join", json!({"pool": "x"}), 12);
    assert!(matches!(sends(&out)[0].1, ServerMessage::Joined { .. }));
    let out = r.receive_event(id(1), "rtc:sdp", json!(null), 4);
    assert_eq!(single_error(&out, id(1)).1, "invalid_field");
    let out = r.receive_event(id(1), "rtc:sdp", json!({}), 1_000_000);
    assert_eq!(single_error(&out, id(1)).1, "message_too_large");
}

#[test]
fn private_mode_only_admits_operator_pools() {
    let mut r = Registry::new(PoolMode::Private, Limits::default());
    let out = join(&mut r, 1, "nope");
    let (message, code) = single_error(&out, id(1));
    assert_eq!(code, "no_such_pool");
    assert!(message.contains("\"nope\""));
    assert_eq!(r.pool_count(), 0);

    r.create_pool("hall").unwrap();
    let out = r.receive_frame(id(1), &join_frame("hall"));
    assert!(matches!(sends(&out)[0].1, ServerMessage::Joined { .. }));
    // Operator pools outlive their members.
    r.disconnect(id(1), LeaveReason::ClientClosed);
    assert_eq!(r.pool("hall").unwrap().endpoints, vec![]);
    assert_eq!(
        r.create_pool("hall"),
        Err(OperatorError::PoolExists("hall".into()))
    );
}

#[test]
fn pool_size_and_pool_count_limits() {
    let limits = Limits {
        max_endpoints_per_pool: 2,
        max_pools: 2,
        ..Limits::default()
    };
    let mut r = Registry::new(PoolMode::Public, limits);
    join(&mut r, 1, "a");
    join(&mut r, 2, "a");
    let out = join(&mut r, 3, "a");
    let (message, code) = single_error(&out, id(3));
    assert_eq!(code, "pool_full");
    assert!(message.contains("full (2 endpoints)"));
    // The refused endpoint may still join elsewhere.
    let out = r.receive_frame(id(3), &join_frame("b"));
    assert!(matches!(sends(&out)[0].1, ServerMessage::Joined { .. }));
    let out = join(&mut r, 4, "c");
    assert_eq!(single_error(&out, id(4)).1, "too_many_pools");
    assert_eq!(
        r.create_pool("d"),
        Err(OperatorError::Refused(Refusal::TooManyPools { max: 2 }))
    );
    assert_eq!(r.pool_count(), 2);
}

#[test]
fn description_is_broadcast_to_the_others_and_kept_for_later_joiners() {
    let mut r = registry();
    join(&mut r, 1, "room");
    join(&mut r, 2, "room");
    join(&mut r, 3, "room");
    let desc = json!({"role": "camera", "name": "door"});
    let out = r.set_description(id(2), Some(desc.clone())).unwrap();
    let expected = ServerMessage::Describe {
        id: id(2),
        description: Some(desc.clone()),
    };
    assert_eq!(
        sends(&out),
        vec![(id(1), expected.clone()), (id(3), expected)]
    );
    let out = join(&mut r, 4, "room");
    let ServerMessage::Joined { descriptions, .. } = &sends(&out)[0].1 else {
        panic!()
    };
    assert_eq!(descriptions[&id(2)], Some(desc));
    assert_eq!(
        r.set_description(id(2), Some(json!([1]))),
        Err(OperatorError::DescriptionNotObject)
    );
    assert_eq!(
        r.set_description(id(99), None),
        Err(OperatorError::UnknownEndpoint(id(99)))
    );
    // Clearing broadcasts null.
    let out = r.set_description(id(2), None).unwrap();
    assert_eq!(sends(&out).len(), 3);
    assert_eq!(r.endpoint(id(2)).unwrap().description, None);
}

#[test]
fn force_close_stops_and_closes_every_member() {
    let mut r = registry();
    join(&mut r, 1, "room");
    join(&mut r, 2, "room");
    join(&mut r, 3, "other");
    let out = r.close_pool("room").unwrap();
    assert_eq!(
        sends(&out),
        vec![(id(1), ServerMessage::Stop), (id(2), ServerMessage::Stop)]
    );
    let closed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Close { endpoint } => Some(*endpoint),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![id(1), id(2)]);
    assert!(r.pool("room").is_none());
    assert!(r.pool("other").is_some());
    // Late frames and the disconnects from closed sockets change nothing.
    assert!(r.receive_frame(id(1), &sdp_frame(id(2))).is_empty());
    assert!(r.disconnect(id(1), LeaveReason::PoolClosed).is_empty());
    assert_eq!(
        r.close_pool("room"),
        Err(OperatorError::UnknownPool("room".into()))
    );
}

#[test]
fn rtc_stop_is_sent_before_the_close() {
    let mut r = registry();
    join(&mut r, 1, "room");
    let out = r.close_pool("room").unwrap();
    let stop = out
        .iter()
        .position(|o| {
            matches!(
                o,
                Output::Send {
                    message: ServerMessage::Stop,
                    ..
                }
            )
        })
        .unwrap();
    let close = out
        .iter()
        .position(|o| matches!(o, Output::Close { .. }))
        .unwrap();
    assert!(stop < close);
}

// ----- property test ---------------------------------------------------------------------

/// What a test drives the registry with.
#[derive(Clone, Debug)]
enum Op {
    Connect(u8),
    Disconnect(u8),
    Join(u8, u8),
    Sdp(u8, u8),
    Candidate(u8, u8),
    Garbage(u8, String),
    Describe(u8, bool),
    CreatePool(u8),
    ClosePool(u8),
}

const SLOTS: u8 = 6;
const POOLS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let pool = 0..POOLS.len() as u8;
    prop_oneof![
        slot.clone().prop_map(Op::Connect),
        slot.clone().prop_map(Op::Disconnect),
        (slot.clone(), pool.clone()).prop_map(|(s, p)| Op::Join(s, p)),
        // Targets include one slot past the last: an id that never connects.
        (slot.clone(), 0..SLOTS + 1).prop_map(|(s, t)| Op::Sdp(s, t)),
        (slot.clone(), 0..SLOTS + 1).prop_map(|(s, t)| Op::Candidate(s, t)),
        (slot.clone(), any::<String>()).prop_map(|(s, g)| Op::Garbage(s, g)),
        (
            slot.clone(),
            "\\{\"type\":\"rtc:(join|sdp|candidate)\",\"data\":.{0,20}\\}"
        )
            .prop_map(|(s, g)| Op::Garbage(s, g)),
        (slot.clone(), any::<bool>()).prop_map(|(s, d)| Op::Describe(s, d)),
        pool.clone().prop_map(Op::CreatePool),
        pool.prop_map(Op::ClosePool),
    ]
}

/// A model of what each client has been told: the peers it knows.
#[derive(Default)]
struct Clients {
    known: HashMap<EndpointId, BTreeSet<EndpointId>>,
}

impl Clients {
    fn deliver(&mut self, r: &Registry, out: &[Output]) {
        for o in out {
            match o {
                Output::Send { to, message } => {
                    let known = self.known.entry(*to).or_default();
                    match message {
                        ServerMessage::Joined { peers, .. } => known.extend(peers.iter().copied()),
                        ServerMessage::Peer { id } => {
                            known.insert(*id);
                        }
                        ServerMessage::Close { id } => {
                            known.remove(id);
                        }
                        ServerMessage::Stop => known.clear(),
                        ServerMessage::Sdp { peer: from, .. }
                        | ServerMessage::Candidate { from, .. } => {
                            // Routed only between members of one pool, both still in it.
                            let to_pool = r.endpoint(*to).and_then(|e| e.pool);
                            let from_pool = r.endpoint(*from).and_then(|e| e.pool);
                            assert!(to_pool.is_some(), "routed to an endpoint in no pool");
                            assert_eq!(to_pool, from_pool, "routed across pools");
                            assert!(
                                known.contains(from),
                                "routed from a peer it was not told of"
                            );
                        }
                        ServerMessage::Describe { id, .. } => {
                            assert!(known.contains(id), "described an unknown peer");
                        }
                        ServerMessage::Error { .. } => {}
                    }
                }
                Output::Close { endpoint } => {
                    self.known.remove(endpoint);
                }
                Output::Notice(_) => {}
            }
        }
    }

    /// Every member of a pool knows exactly the other members.
    fn check(&self, r: &Registry) {
        for pool in r.pools() {
            let members: BTreeSet<_> = pool.endpoints.iter().map(|e| e.id).collect();
            for m in &members {
                let mut expected = members.clone();
                expected.remove(m);
                let known = self.known.get(m).cloned().unwrap_or_default();
                assert_eq!(known, expected, "member {m} of pool {}", pool.name);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_event_sequences_keep_the_invariants(
        private in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mode = if private { PoolMode::Private } else { PoolMode::Public };
        let limits = Limits { max_endpoints_per_pool: 4, max_pools: 2, ..Limits::default() };
        let mut r = Registry::new(mode, limits);
        let mut clients = Clients::default();
        let mut connected = BTreeSet::new();
        for op in ops {
            let out = match op {
                Op::Connect(s) => {
                    // A slot reconnects as a new endpoint only after it disconnected.
                    if connected.insert(s) { r.connect(id(s as u128)); }
                    Vec::new()
                }
                Op::Disconnect(s) => {
                    connected.remove(&s);
                    clients.known.remove(&id(s as u128));
                    r.disconnect(id(s as u128), LeaveReason::ClientClosed)
                }
                Op::Join(s, p) => r.receive_frame(id(s as u128), &join_frame(POOLS[p as usize])),
                Op::Sdp(s, t) => r.receive_frame(id(s as u128), &sdp_frame(id(t as u128))),
                Op::Candidate(s, t) => r.receive_frame(id(s as u128), &candidate_frame(id(t as u128))),
                Op::Garbage(s, g) => r.receive_frame(id(s as u128), &g),
                Op::Describe(s, d) => r
                    .set_description(id(s as u128), d.then(|| json!({"n": s})))
                    .unwrap_or_default(),
                Op::CreatePool(p) => r.create_pool(POOLS[p as usize]).unwrap_or_default(),
                Op::ClosePool(p) => {
                    let out = r.close_pool(POOLS[p as usize]).unwrap_or_default();
                    for o in &out {
                        if let Output::Close { endpoint } = o {
                            connected.retain(|s| id(*s as u128) != *endpoint);
                        }
                    }
                    out
                }
            };
            // Nothing is ever sent to an endpoint the registry does not know, except the
            // rtc:stop that precedes closing a force-closed pool's members.
            for o in &out {
                if let Output::Send { to, message } = o {
                    prop_assert!(
                        r.endpoint(*to).is_some() || *message == ServerMessage::Stop,
                        "sent {message:?} to unknown {to}"
                    );
                }
            }
            clients.deliver(&r, &out);
            clients.check(&r);
            for pool in r.pools() {
                prop_assert!(pool.endpoints.len() <= 4);
                prop_assert!(pool.origin == PoolOrigin::Operator || !pool.endpoints.is_empty());
                for e in &pool.endpoints {
                    prop_assert_eq!(e.pool.as_deref(), Some(pool.name.as_str()));
                }
            }
            prop_assert!(r.pool_count() <= 2);
        }
    }
}
