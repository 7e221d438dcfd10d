//! One test per rule of the negotiation machine, each named by the rule it proves. The
//! randomized two-machine and browser-model replays are in `negotiation_sim.rs`.

use super::*;
use crate::endpoint::sdp::DtlsSetup;

// ----- fixtures -----

/// A minimal BUNDLE description: one ICE session (`ufrag`), one certificate (`fingerprint`).
fn desc(ufrag: &str, fingerprint: &str, setup: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:pw\r\n\
         a=fingerprint:sha-256 {fingerprint}\r\na=setup:{setup}\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\na=ice-ufrag:{ufrag}\r\n\
         a=setup:{setup}\r\n"
    )
}

/// What webrtcbin creates for us: an offer is actpass, an answer active (always, which is the
/// measured bug the DTLS rule fixes).
fn our_offer() -> String {
    desc("ours", "OURS", "actpass")
}
fn our_answer() -> String {
    desc("ours", "OURS", "active")
}
fn their_offer() -> String {
    desc("theirs", "THEIRS", "actpass")
}
fn their_answer(setup: &str) -> String {
    desc("theirs", "THEIRS", setup)
}

fn remote(kind: SdpType, sdp: &str) -> Event {
    Event::RemoteSdp(SessionDescription {
        kind,
        sdp: sdp.to_owned(),
    })
}
fn offer_in(sdp: &str) -> Event {
    remote(SdpType::Offer, sdp)
}
fn answer_in(sdp: &str) -> Event {
    remote(SdpType::Answer, sdp)
}
fn created_offer(sdp: &str) -> Event {
    Event::OfferCreated {
        sdp: sdp.to_owned(),
    }
}
fn created_answer(sdp: &str) -> Event {
    Event::AnswerCreated {
        sdp: sdp.to_owned(),
    }
}

fn candidate(n: u32, ufrag: Option<&str>) -> Candidate {
    Some(IceCandidate {
        candidate: format!(
            "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host",
            5000 + n
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: ufrag.map(str::to_owned),
    })
}
fn cand(n: u32) -> Candidate {
    candidate(n, None)
}
fn remote_cand(n: u32) -> Event {
    Event::RemoteCandidate(cand(n))
}

fn description(kind: SdpType, sdp: &str) -> SessionDescription {
    SessionDescription {
        kind,
        sdp: sdp.to_owned(),
    }
}
fn set_local(kind: SdpType, sdp: &str) -> Action {
    Action::SetLocalDescription(description(kind, sdp))
}
fn set_remote(kind: SdpType, sdp: &str) -> Action {
    Action::SetRemoteDescription(description(kind, sdp))
}
fn send(kind: SdpType, sdp: &str) -> Action {
    Action::SendSdp(description(kind, sdp))
}
fn add(c: Candidate) -> Action {
    Action::AddRemoteCandidate(c)
}
fn rebuild(reason: RebuildReason) -> Action {
    Action::Rebuild { reason }
}

/// The actions without diagnostics.
fn ops(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| !matches!(a, Action::Diagnostic(_)))
        .cloned()
        .collect()
}
fn diagnostics(actions: &[Action]) -> Vec<Diagnostic> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Diagnostic(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}
fn on(m: &mut Machine, event: Event) -> Vec<Action> {
    ops(&m.on(event))
}

fn in_place() -> Options {
    Options {
        ice_restart_in_place: true,
        ..Options::default()
    }
}

// ----- flows that reach a given point -----

/// NegotiationNeeded in stable, through to our offer sent.
fn send_our_offer(m: &mut Machine, offer: &str) {
    assert_eq!(on(m, Event::NegotiationNeeded), [Action::CreateOffer]);
    let expected = sdp::enforce_dtls_role(offer, SdpType::Offer, m.dtls_role());
    assert_eq!(
        on(m, created_offer(offer)),
        [set_local(SdpType::Offer, &expected)]
    );
    assert_eq!(
        on(m, Event::LocalDescriptionSet),
        [send(SdpType::Offer, &expected)]
    );
    assert_eq!(m.phase(), Phase::HaveLocalOffer);
}

/// A whole exchange we offer; `answer` is the remote's.
fn exchange_as_offerer(m: &mut Machine, offer: &str, answer: &str) {
    send_our_offer(m, offer);
    assert_eq!(
        on(m, answer_in(answer)),
        [set_remote(SdpType::Answer, answer)]
    );
    assert_eq!(on(m, Event::RemoteDescriptionSet), []);
    assert!(m.is_settled());
}

/// A whole exchange the remote offers, from its offer to our answer sent.
fn exchange_as_answerer(m: &mut Machine, offer: &str, answer: &str) {
    assert_eq!(on(m, offer_in(offer)), [set_remote(SdpType::Offer, offer)]);
    assert_eq!(on(m, Event::RemoteDescriptionSet), [Action::CreateAnswer]);
    let expected = sdp::enforce_dtls_role(answer, SdpType::Answer, m.dtls_role());
    assert_eq!(
        on(m, created_answer(answer)),
        [set_local(SdpType::Answer, &expected)]
    );
    assert_eq!(
        on(m, Event::LocalDescriptionSet),
        [send(SdpType::Answer, &expected)]
    );
    assert!(m.is_settled());
}

/// Finishes answering a remote offer already applied (after `RemoteDescriptionSet`).
fn finish_answer(m: &mut Machine) -> Vec<Action> {
    let mut all = m.on(created_answer(&our_answer()));
    all.extend(m.on(Event::LocalDescriptionSet));
    all
}

// ===== the basic exchanges =====

#[test]
fn negotiation_needed_in_stable_creates_an_offer() {
    let mut m = Machine::new(false);
    assert_eq!(on(&mut m, Event::NegotiationNeeded), [Action::CreateOffer]);
    assert_eq!(m.phase(), Phase::CreatingOffer);
    assert!(!m.is_settled());
}

#[test]
fn our_offer_is_set_then_sent_unchanged_and_the_answer_completes_the_exchange() {
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    assert_eq!(m.completed_exchanges(), 1);
    assert_eq!(m.phase(), Phase::Stable);
}

#[test]
fn a_remote_offer_in_stable_is_applied_and_answered() {
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(m.completed_exchanges(), 1);
}

#[test]
fn only_one_operation_is_in_flight_and_negotiation_needed_is_coalesced() {
    let mut m = Machine::new(false);
    assert_eq!(on(&mut m, Event::NegotiationNeeded), [Action::CreateOffer]);
    // More changes while the offer is created: nothing new is started...
    assert_eq!(on(&mut m, Event::NegotiationNeeded), []);
    assert_eq!(on(&mut m, Event::NegotiationNeeded), []);
    on(&mut m, created_offer(&our_offer()));
    assert_eq!(on(&mut m, Event::NegotiationNeeded), []);
    on(&mut m, Event::LocalDescriptionSet);
    on(&mut m, answer_in(&their_answer("active")));
    // ...and exactly one new offer once back in stable.
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [Action::CreateOffer]
    );
}

/// `desc` without its data section (mid 1): what webrtcbin 1.22 offers right after the remote
/// added a data channel, before that channel has opened.
fn without_data_section(sdp: &str) -> String {
    sdp.split("m=application")
        .next()
        .unwrap()
        .replace(" 0 1\r\n", " 0\r\n")
}

#[test]
fn an_offer_missing_a_negotiated_section_is_dropped_and_retried_later() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(on(&mut m, Event::NegotiationNeeded), [Action::CreateOffer]);
    let all = m.on(created_offer(&without_data_section(&our_offer())));
    assert_eq!(ops(&all), [Action::RetryOfferLater(OFFER_RETRY_DELAY)]);
    assert_eq!(
        diagnostics(&all),
        [Diagnostic::OfferMissingSections {
            missing: vec!["1".into()]
        }]
    );
    assert_eq!(m.phase(), Phase::Stable);
    // Nothing is started until the retry time...
    assert_eq!(on(&mut m, Event::NegotiationNeeded), []);
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    // ...and a complete offer goes out as usual.
    let expected = sdp::enforce_dtls_role(&our_offer(), SdpType::Offer, m.dtls_role());
    assert_eq!(
        on(&mut m, created_offer(&our_offer())),
        [set_local(SdpType::Offer, &expected)]
    );
}

#[test]
fn a_direction_change_reaches_webrtcbin_pinned_and_the_wire_answer_follows_the_real_offer() {
    use sdp::Direction;
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    // The remote stops sending its video (recvonly): webrtcbin 1.22 cannot take that change.
    let second = their_offer()
        .replace("o=- 1 1", "o=- 1 2")
        .replace("a=mid:0\r\n", "a=mid:0\r\na=recvonly\r\n");
    let all = m.on(offer_in(&second));
    let pinned = sdp::with_directions(&second, &[("0".into(), Direction::SendRecv)]);
    assert_eq!(ops(&all), [set_remote(SdpType::Offer, &pinned)]);
    assert_eq!(
        diagnostics(&all),
        [Diagnostic::RemoteDirectionPinned {
            mid: "0".into(),
            wire: Direction::RecvOnly,
            pinned: Direction::SendRecv
        }]
    );
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [Action::CreateAnswer]
    );
    let local = sdp::enforce_dtls_role(&our_answer(), SdpType::Answer, m.dtls_role());
    assert_eq!(
        on(&mut m, created_answer(&our_answer())),
        [set_local(SdpType::Answer, &local)]
    );
    // webrtcbin answered sendrecv to what it saw; the remote gets sendonly, the only valid
    // answer to its recvonly offer.
    let wire = sdp::with_directions(&local, &[("0".into(), Direction::SendOnly)]);
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [send(SdpType::Answer, &wire)]
    );
}

/// `sdp` with section 0 (the video) given `direction`.
fn video_direction(sdp: &str, direction: sdp::Direction) -> String {
    sdp::with_directions(sdp, &[("0".into(), direction)])
}

#[test]
fn an_answer_that_keeps_the_settled_direction_reaches_webrtcbin_unchanged() {
    use sdp::Direction::{Inactive, RecvOnly};
    // Measured with Chromium: a fresh webrtcbin answered the page's recvonly offer with
    // inactive; its own next offer was recvonly and the page answered inactive. Pinning that
    // answer to the first-seen recvonly made webrtcbin refuse it (recvonly against recvonly).
    let mut m = Machine::new(true);
    exchange_as_answerer(
        &mut m,
        &video_direction(&their_offer(), RecvOnly),
        &video_direction(&our_answer(), Inactive),
    );
    let offer = video_direction(&our_offer(), RecvOnly);
    send_our_offer(&mut m, &offer);
    let answer = video_direction(&their_answer("passive"), Inactive);
    let all = m.on(answer_in(&answer));
    assert_eq!(ops(&all), [set_remote(SdpType::Answer, &answer)]);
    assert_eq!(diagnostics(&all), []);
}

#[test]
fn an_answer_that_would_move_the_settled_direction_is_pinned_to_one_that_keeps_it() {
    use sdp::Direction::{Inactive, RecvOnly, SendOnly};
    // The remote sent its video, then stops sending in its answer to our offer: webrtcbin
    // would have to go from recvonly to inactive for good, so it is told sendonly.
    let mut m = Machine::new(true);
    exchange_as_answerer(
        &mut m,
        &video_direction(&their_offer(), SendOnly),
        &video_direction(&our_answer(), RecvOnly),
    );
    let offer = video_direction(&our_offer(), RecvOnly);
    send_our_offer(&mut m, &offer);
    let answer = video_direction(&their_answer("passive"), Inactive);
    let all = m.on(answer_in(&answer));
    assert_eq!(
        ops(&all),
        [set_remote(
            SdpType::Answer,
            &video_direction(&answer, SendOnly)
        )]
    );
    assert_eq!(
        diagnostics(&all),
        [Diagnostic::RemoteDirectionPinned {
            mid: "0".into(),
            wire: Inactive,
            pinned: SendOnly
        }]
    );
}

#[test]
fn a_remote_offer_that_starts_sending_where_webrtcbin_settled_inactive_is_answered_on_a_fresh_one()
{
    use sdp::Direction::{Inactive, RecvOnly, SendRecv};
    // Measured with Chromium: the page's microphone was off when this webrtcbin first answered
    // (inactive, for good in webrtcbin 1.22); pinned, the page's next offer with its microphone
    // on was answered inactive and the page's audio never reached us.
    let mut m = Machine::new(true);
    exchange_as_answerer(
        &mut m,
        &video_direction(&their_offer(), RecvOnly),
        &video_direction(&our_answer(), Inactive),
    );
    let again = video_direction(&their_offer(), SendRecv).replace("o=- 1 1", "o=- 1 2");
    assert_eq!(
        on(&mut m, offer_in(&again)),
        [rebuild(RebuildReason::DirectionOpened)]
    );
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &again)]
    );
}

#[test]
fn webrtcbin_settles_directions_as_measured() {
    use sdp::Direction::{self, Inactive, RecvOnly, SendOnly, SendRecv};
    let settled = Direction::settled_by_webrtcbin;
    assert_eq!(settled(RecvOnly, RecvOnly), None);
    assert_eq!(settled(SendOnly, SendOnly), None);
    assert_eq!(settled(RecvOnly, Inactive), Some(Inactive));
    assert_eq!(settled(Inactive, SendRecv), Some(Inactive));
    assert_eq!(settled(RecvOnly, SendRecv), Some(RecvOnly));
    assert_eq!(settled(SendRecv, SendOnly), Some(RecvOnly));
    assert_eq!(settled(SendRecv, RecvOnly), Some(SendOnly));
    assert_eq!(settled(SendRecv, SendRecv), Some(SendRecv));
}

#[test]
fn a_remote_offer_during_the_retry_wait_is_answered_at_once() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, created_offer(&without_data_section(&our_offer())));
    let second = their_offer().replace("o=- 1 1", "o=- 1 2");
    assert_eq!(
        on(&mut m, offer_in(&second)),
        [set_remote(SdpType::Offer, &second)]
    );
}

#[test]
fn offers_missing_sections_for_too_long_end_in_a_rebuild() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, Event::NegotiationNeeded);
    for _ in 0..MAX_INCOMPLETE_OFFERS {
        assert_eq!(
            on(&mut m, created_offer(&without_data_section(&our_offer()))),
            [Action::RetryOfferLater(OFFER_RETRY_DELAY)]
        );
        assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    }
    assert_eq!(
        on(&mut m, created_offer(&without_data_section(&our_offer()))),
        [rebuild(RebuildReason::OperationFailed)]
    );
}

#[test]
fn a_remote_offer_arriving_while_our_answer_is_applied_is_answered_after_it() {
    // Perfect negotiation's isSettingRemoteAnswerPending: not a collision.
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, answer_in(&their_answer("active")));
    let second = desc("theirs", "THEIRS", "actpass").replace("o=- 1 1", "o=- 1 2");
    assert_eq!(on(&mut m, offer_in(&second)), []);
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [set_remote(SdpType::Offer, &second)]
    );
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [Action::CreateAnswer]
    );
}

#[test]
fn a_queued_remote_offer_goes_before_our_pending_offer() {
    // Both wait while an answer is being applied.
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, answer_in(&their_answer("active")));
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, offer_in(&their_offer()));
    // Back in stable: the remote offer first, our change after it.
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [set_remote(SdpType::Offer, &their_offer())]
    );
    on(&mut m, Event::RemoteDescriptionSet);
    let after = ops(&finish_answer(&mut m));
    assert_eq!(after.last(), Some(&Action::CreateOffer));
}

// ===== collisions: impolite =====

#[test]
fn impolite_ignores_an_offer_colliding_with_its_sent_offer() {
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    let out = m.on(offer_in(&their_offer()));
    assert_eq!(ops(&out), []);
    assert!(diagnostics(&out).contains(&Diagnostic::RemoteOfferIgnored));
    assert_eq!(m.phase(), Phase::HaveLocalOffer);
    assert_eq!(m.rebuilds(), 0);
}

#[test]
fn impolite_ignores_an_offer_that_arrived_while_it_was_creating_its_own() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    assert_eq!(on(&mut m, offer_in(&their_offer())), []);
    // Our offer goes on: set, sent; then the queued remote offer is ignored.
    assert_eq!(
        on(&mut m, created_offer(&our_offer())),
        [set_local(SdpType::Offer, &our_offer())]
    );
    let out = m.on(Event::LocalDescriptionSet);
    assert_eq!(ops(&out), [send(SdpType::Offer, &our_offer())]);
    assert!(diagnostics(&out).contains(&Diagnostic::RemoteOfferIgnored));
}

#[test]
fn impolite_drops_the_candidates_of_an_ignored_offer_until_the_next_remote_description() {
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, offer_in(&their_offer()));
    let out = m.on(remote_cand(1));
    assert_eq!(ops(&out), []);
    assert_eq!(
        diagnostics(&out),
        [Diagnostic::RemoteCandidatesDropped {
            count: 1,
            reason: DropReason::IgnoredDescription
        }]
    );
    assert_eq!(on(&mut m, Event::RemoteCandidate(None)), []);
    // The polite remote rolled back and answers our offer: its candidates count again.
    let answer = desc("theirs2", "THEIRS", "active");
    assert_eq!(
        on(&mut m, answer_in(&answer)),
        [set_remote(SdpType::Answer, &answer)]
    );
    assert_eq!(on(&mut m, remote_cand(2)), []);
    assert_eq!(on(&mut m, Event::RemoteDescriptionSet), [add(cand(2))]);
    assert_eq!(on(&mut m, remote_cand(3)), [add(cand(3))]);
    assert!(m.is_settled());
}

#[test]
fn an_ignored_re_offer_of_the_live_ice_session_keeps_its_candidates() {
    // A re-offer without ICE restart shares the live ICE session: what follows it is still
    // good for the webrtcbin.
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    send_our_offer(&mut m, &our_offer());
    on(&mut m, offer_in(&their_offer()));
    assert_eq!(
        on(&mut m, Event::RemoteCandidate(None)),
        [add(None)],
        "end-of-candidates of the live session"
    );
    assert_eq!(
        on(&mut m, Event::RemoteCandidate(candidate(9, Some("theirs")))),
        [add(candidate(9, Some("theirs")))]
    );
}

// ===== collisions: polite, no rollback =====

#[test]
fn polite_drops_an_offer_still_being_created_and_answers_without_a_rebuild() {
    let mut m = Machine::new(true);
    on(&mut m, Event::NegotiationNeeded);
    assert_eq!(on(&mut m, offer_in(&their_offer())), []);
    let out = m.on(created_offer(&our_offer()));
    assert!(diagnostics(&out).contains(&Diagnostic::CreatedOfferDropped));
    // webrtcbin is still stable: the remote offer is applied on it directly.
    assert_eq!(ops(&out), [set_remote(SdpType::Offer, &their_offer())]);
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [Action::CreateAnswer]
    );
    let after = ops(&finish_answer(&mut m));
    // The change behind the dropped offer is offered again, once the remote had its turn.
    assert_eq!(
        after,
        [
            set_local(SdpType::Answer, &our_answer()),
            send(SdpType::Answer, &our_answer()),
            Action::RetryOfferLater(POLITE_TURN)
        ]
    );
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    assert_eq!(m.rebuilds(), 0);
}

#[test]
fn polite_does_not_send_an_offer_being_set_and_answers_on_a_fresh_webrtcbin() {
    let mut m = Machine::new(true);
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, created_offer(&our_offer()));
    assert_eq!(on(&mut m, offer_in(&their_offer())), []);
    let out = m.on(Event::LocalDescriptionSet);
    assert!(diagnostics(&out).contains(&Diagnostic::UnsentOfferAbandoned));
    assert_eq!(ops(&out), [rebuild(RebuildReason::OfferCollision)]);
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &their_offer())]
    );
}

#[test]
fn polite_rebuilds_on_a_collision_with_its_sent_offer_then_answers_and_offers_again() {
    let mut m = Machine::new(true);
    send_our_offer(&mut m, &our_offer());
    assert_eq!(
        on(&mut m, offer_in(&their_offer())),
        [rebuild(RebuildReason::OfferCollision)]
    );
    assert_eq!(m.phase(), Phase::Rebuilding);
    // Never a rollback: webrtcbin 1.22 refuses it in have-local-offer.
    assert_eq!(on(&mut m, Event::NegotiationNeeded), []);
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &their_offer())]
    );
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [Action::CreateAnswer]
    );
    let fresh_answer = desc("fresh", "FRESH", "active");
    assert_eq!(
        on(&mut m, created_answer(&fresh_answer)),
        [set_local(SdpType::Answer, &fresh_answer)]
    );
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [
            send(SdpType::Answer, &fresh_answer),
            Action::RetryOfferLater(POLITE_TURN)
        ],
        "our change behind the abandoned offer is not lost, only held for the remote's turn"
    );
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    assert_eq!(m.completed_exchanges(), 1);
    assert_eq!(m.rebuilds(), 1);
}

/// rtcpool's impolite side can still roll back: its `_onsdp` looks at signalingState when a
/// message arrives, while Chrome's operations chain may already hold the setLocalDescription()
/// that creates its offer. Then both sides give way; the remote's answer to the offer we
/// abandoned is how we learn it.
#[test]
fn when_the_remote_answers_our_abandoned_offer_its_own_offer_is_dropped_before_being_applied() {
    let mut m = Machine::new(true);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, remote_cand(1));
    let out = m.on(answer_in(&their_answer("active")));
    assert_eq!(ops(&out), []);
    assert!(diagnostics(&out).contains(&Diagnostic::RemoteAnsweredAbandonedOffer));
    assert!(diagnostics(&out).contains(&Diagnostic::ExchangeCompleted {
        offerer: Offerer::Local,
        total: 1,
        applied: false
    }));
    // The fresh webrtcbin does not apply the withdrawn offer: it offers.
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    assert_eq!(
        m.completed_exchanges(),
        1,
        "the remote counted that round too"
    );
}

#[test]
fn when_the_remote_answers_our_abandoned_offer_while_we_answer_its_offer_our_answer_is_never_sent()
{
    for answered_at in [
        Phase::SettingRemoteOffer,
        Phase::CreatingAnswer,
        Phase::SettingLocalAnswer,
    ] {
        let mut m = Machine::new(true);
        send_our_offer(&mut m, &our_offer());
        on(&mut m, offer_in(&their_offer()));
        on(&mut m, Event::Rebuilt);
        if answered_at != Phase::SettingRemoteOffer {
            on(&mut m, Event::RemoteDescriptionSet);
        }
        if answered_at == Phase::SettingLocalAnswer {
            on(&mut m, created_answer(&desc("fresh", "FRESH", "active")));
        }
        assert_eq!(m.phase(), answered_at);
        assert_eq!(on(&mut m, answer_in(&their_answer("active"))), []);
        // The next completion replaces the webrtcbin that holds the withdrawn offer.
        let completion = match answered_at {
            Phase::SettingRemoteOffer => Event::RemoteDescriptionSet,
            Phase::CreatingAnswer => created_answer(&desc("fresh", "FRESH", "active")),
            _ => Event::LocalDescriptionSet,
        };
        let out = on(&mut m, completion);
        assert_eq!(
            out,
            [rebuild(RebuildReason::RemoteOfferWithdrawn)],
            "{answered_at:?}"
        );
        assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    }
}

#[test]
fn an_answer_is_taken_for_our_new_offer_once_it_is_sent() {
    // After we offer again, an answer is the answer to that offer (answers carry no id).
    let mut m = Machine::new(true);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, Event::Rebuilt);
    on(&mut m, Event::RemoteDescriptionSet);
    let fresh = desc("fresh", "FRESH", "active");
    on(&mut m, created_answer(&fresh));
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [
            send(SdpType::Answer, &fresh),
            Action::RetryOfferLater(POLITE_TURN)
        ]
    );
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    on(&mut m, created_offer(&desc("fresh", "FRESH", "actpass")));
    on(&mut m, Event::LocalDescriptionSet);
    let answer = their_answer("passive");
    assert_eq!(
        on(&mut m, answer_in(&answer)),
        [set_remote(SdpType::Answer, &answer)]
    );
}

#[test]
fn polite_applies_the_candidates_of_the_colliding_offer_after_it_on_the_fresh_webrtcbin() {
    let mut m = Machine::new(true);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, offer_in(&their_offer()));
    // Trickled with the offer: before, during and after the rebuild. None is lost.
    assert_eq!(on(&mut m, remote_cand(1)), []);
    assert_eq!(on(&mut m, Event::Rebuilt).len(), 1);
    assert_eq!(on(&mut m, remote_cand(2)), []);
    assert_eq!(on(&mut m, Event::RemoteCandidate(None)), []);
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [add(cand(1)), add(cand(2)), add(None), Action::CreateAnswer]
    );
}

#[test]
fn polite_drops_local_candidates_of_the_webrtcbin_it_replaces() {
    let mut m = Machine::new(true);
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, created_offer(&our_offer()));
    // Gathered for an offer that will never be sent: held, then dropped with the webrtcbin.
    assert_eq!(on(&mut m, Event::LocalCandidate(cand(1))), []);
    on(&mut m, offer_in(&their_offer()));
    let out = m.on(Event::LocalDescriptionSet);
    assert!(diagnostics(&out).contains(&Diagnostic::LocalCandidatesDropped { count: 1 }));
    assert!(!out.iter().any(|a| matches!(a, Action::SendCandidate(_))));
    // A late event of the old webrtcbin while rebuilding: dropped as well.
    let out = m.on(Event::LocalCandidate(cand(2)));
    assert_eq!(ops(&out), []);
}

#[test]
fn a_collision_rebuild_replays_the_live_sessions_candidates_when_the_offer_continues_it() {
    // Mid-session: the remote's ICE session "theirs" and its candidates are on the old
    // webrtcbin. Its re-offer keeps the ufrag and trickles nothing new, so the fresh webrtcbin
    // needs them replayed.
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(on(&mut m, remote_cand(1)), [add(cand(1))]);
    assert_eq!(on(&mut m, Event::RemoteCandidate(None)), [add(None)]);
    send_our_offer(&mut m, &desc("ours", "OURS", "actpass"));
    let re_offer = desc("theirs", "THEIRS", "actpass").replace("o=- 1 1", "o=- 1 2");
    assert_eq!(
        on(&mut m, offer_in(&re_offer)),
        [rebuild(RebuildReason::OfferCollision)]
    );
    on(&mut m, Event::Rebuilt);
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [add(cand(1)), add(None), Action::CreateAnswer]
    );
}

#[test]
fn a_rebuild_does_not_replay_candidates_of_an_ended_ice_session() {
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, remote_cand(1));
    send_our_offer(&mut m, &our_offer());
    // The remote restarted ICE (new ufrag) in its colliding offer.
    let restart = desc("theirs2", "THEIRS", "actpass");
    on(&mut m, offer_in(&restart));
    on(&mut m, Event::Rebuilt);
    on(&mut m, remote_cand(2));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [add(cand(2)), Action::CreateAnswer]
    );
}

// ===== candidates =====

#[test]
fn candidates_before_their_description_is_set_are_buffered_then_added_in_order() {
    let mut m = Machine::new(false);
    on(&mut m, offer_in(&their_offer()));
    for n in 1..=3 {
        assert_eq!(on(&mut m, remote_cand(n)), []);
    }
    assert_eq!(on(&mut m, Event::RemoteCandidate(None)), []);
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [
            add(cand(1)),
            add(cand(2)),
            add(cand(3)),
            add(None),
            Action::CreateAnswer
        ]
    );
}

#[test]
fn candidates_after_their_description_is_set_are_added_at_once() {
    let mut m = Machine::new(false);
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, Event::RemoteDescriptionSet);
    assert_eq!(on(&mut m, remote_cand(1)), [add(cand(1))]);
    on(&mut m, created_answer(&our_answer()));
    assert_eq!(on(&mut m, remote_cand(2)), [add(cand(2))]);
}

#[test]
fn candidates_before_any_description_belong_to_the_first_one() {
    let mut m = Machine::new(false);
    assert_eq!(on(&mut m, remote_cand(1)), []);
    on(&mut m, offer_in(&their_offer()));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [add(cand(1)), Action::CreateAnswer]
    );
}

#[test]
fn candidates_queued_behind_a_description_wait_for_that_one() {
    // Candidates of the remote's second description wait in the queue with it, not with the
    // first one.
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, answer_in(&their_answer("active")));
    on(&mut m, remote_cand(1));
    on(
        &mut m,
        offer_in(&their_offer().replace("o=- 1 1", "o=- 1 2")),
    );
    on(&mut m, remote_cand(2));
    assert_eq!(
        ops(&m.on(Event::RemoteDescriptionSet))[0],
        add(cand(1)),
        "only the first description's candidate"
    );
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [add(cand(2)), Action::CreateAnswer]
    );
}

#[test]
fn a_candidate_stating_an_ended_ice_session_is_dropped() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    let out = m.on(Event::RemoteCandidate(candidate(1, Some("long-gone"))));
    assert_eq!(ops(&out), []);
    assert_eq!(
        diagnostics(&out),
        [Diagnostic::RemoteCandidatesDropped {
            count: 1,
            reason: DropReason::OtherIceSession
        }]
    );
}

#[test]
fn a_late_candidate_of_the_live_session_is_routed_by_its_ufrag() {
    // A restart offer is queued behind our offer in flight; a late candidate that states the
    // live ufrag is still good for the webrtcbin now.
    let mut m = Machine::with_options(false, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, offer_in(&desc("theirs2", "THEIRS", "actpass")));
    let late = candidate(1, Some("theirs"));
    assert_eq!(
        on(&mut m, Event::RemoteCandidate(late.clone())),
        [add(late)]
    );
}

#[test]
fn live_session_candidates_held_during_a_restart_description_are_dropped_after_it() {
    let mut m = Machine::with_options(false, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    let restart = desc("theirs2", "THEIRS", "actpass");
    on(&mut m, offer_in(&restart));
    assert_eq!(m.phase(), Phase::SettingRemoteOffer);
    // Adding it now would reach webrtcbin after the new description: it is held...
    assert_eq!(
        on(&mut m, Event::RemoteCandidate(candidate(1, Some("theirs")))),
        []
    );
    // ...and dropped, since the new description ends that session.
    let out = m.on(Event::RemoteDescriptionSet);
    assert_eq!(ops(&out), [Action::CreateAnswer]);
    assert!(
        diagnostics(&out).contains(&Diagnostic::RemoteCandidatesDropped {
            count: 1,
            reason: DropReason::OtherIceSession
        })
    );
}

#[test]
fn local_candidates_are_held_until_their_description_is_sent() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, created_offer(&our_offer()));
    assert_eq!(on(&mut m, Event::LocalCandidate(cand(1))), []);
    assert_eq!(on(&mut m, Event::LocalCandidate(None)), []);
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [
            send(SdpType::Offer, &our_offer()),
            Action::SendCandidate(cand(1)),
            Action::SendCandidate(None)
        ]
    );
    assert_eq!(
        on(&mut m, Event::LocalCandidate(cand(2))),
        [Action::SendCandidate(cand(2))]
    );
}

// ===== stale answers, rollback, pranswer =====

#[test]
fn an_answer_in_stable_is_stale_and_ignored_with_its_candidates() {
    let mut m = Machine::new(false);
    let out = m.on(answer_in(&their_answer("active")));
    assert_eq!(ops(&out), []);
    assert!(diagnostics(&out).contains(&Diagnostic::StaleAnswerIgnored));
    assert_eq!(on(&mut m, remote_cand(1)), []);
    assert!(m.is_settled());
}

#[test]
fn an_answer_arriving_before_our_offer_was_sent_is_stale() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, answer_in(&their_answer("active")));
    on(&mut m, created_offer(&our_offer()));
    let out = m.on(Event::LocalDescriptionSet);
    assert!(diagnostics(&out).contains(&Diagnostic::StaleAnswerIgnored));
    assert_eq!(m.phase(), Phase::HaveLocalOffer);
}

#[test]
fn a_remote_rollback_withdraws_a_queued_offer() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, remote_cand(1));
    let out = m.on(remote(SdpType::Rollback, ""));
    assert!(diagnostics(&out).contains(&Diagnostic::RemoteOfferWithdrawn));
    on(&mut m, created_offer(&our_offer()));
    let out = m.on(Event::LocalDescriptionSet);
    assert!(!diagnostics(&out).contains(&Diagnostic::RemoteOfferIgnored));
}

#[test]
fn a_remote_rollback_of_the_offer_being_answered_stops_our_answer() {
    let mut m = Machine::new(false);
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, Event::RemoteDescriptionSet);
    let out = m.on(remote(SdpType::Rollback, ""));
    assert_eq!(ops(&out), []);
    assert!(diagnostics(&out).contains(&Diagnostic::RemoteOfferWithdrawn));
    // webrtcbin holds the withdrawn offer and cannot roll back: replaced, answer never sent.
    assert_eq!(
        on(&mut m, created_answer(&our_answer())),
        [rebuild(RebuildReason::RemoteOfferWithdrawn)]
    );
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn a_failure_after_the_remote_withdrew_its_offer_does_not_retry_that_offer() {
    let mut m = Machine::new(false);
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, Event::RemoteDescriptionSet);
    on(&mut m, remote(SdpType::Rollback, ""));
    assert_eq!(
        on(&mut m, Event::AnswerFailed { error: "x".into() }),
        [rebuild(RebuildReason::OperationFailed)]
    );
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [Action::CreateOffer],
        "offers instead of applying the withdrawn offer again"
    );
}

#[test]
fn a_remote_rollback_with_nothing_to_withdraw_is_ignored() {
    let mut m = Machine::new(true);
    let out = m.on(remote(SdpType::Rollback, ""));
    assert_eq!(ops(&out), []);
    assert_eq!(diagnostics(&out), [Diagnostic::RemoteRollbackIgnored]);
}

#[test]
fn a_pranswer_is_applied_and_the_final_answer_completes_the_exchange_once() {
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    let pr = their_answer("active");
    assert_eq!(
        on(&mut m, remote(SdpType::Pranswer, &pr)),
        [set_remote(SdpType::Pranswer, &pr)]
    );
    on(&mut m, Event::RemoteDescriptionSet);
    assert_eq!(m.phase(), Phase::HaveLocalOffer);
    assert_eq!(m.completed_exchanges(), 0);
    on(&mut m, answer_in(&pr));
    on(&mut m, Event::RemoteDescriptionSet);
    assert_eq!(m.completed_exchanges(), 1);
    assert!(m.is_settled());
}

// ===== transport changes (webrtcbin 1.22 cannot follow them) =====

#[test]
fn a_remote_offer_with_new_ice_credentials_is_applied_on_a_fresh_webrtcbin() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    let restart = desc("theirs2", "THEIRS", "actpass");
    assert_eq!(
        on(&mut m, offer_in(&restart)),
        [rebuild(RebuildReason::RemoteTransportChange)]
    );
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &restart)]
    );
    on(&mut m, Event::RemoteDescriptionSet);
    on(&mut m, created_answer(&desc("fresh", "FRESH", "active")));
    // The answer from the fresh webrtcbin is all the remote needs: no extra offer.
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet).len(),
        1,
        "just the answer"
    );
    assert!(m.is_settled());
}

#[test]
fn with_in_place_ice_restart_new_ice_credentials_are_applied_in_place() {
    let mut m = Machine::with_options(false, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    let restart = desc("theirs2", "THEIRS", "actpass");
    assert_eq!(
        on(&mut m, offer_in(&restart)),
        [set_remote(SdpType::Offer, &restart)]
    );
}

#[test]
fn a_new_dtls_fingerprint_needs_a_fresh_webrtcbin_even_with_in_place_ice_restart() {
    let mut m = Machine::with_options(false, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(
        on(&mut m, offer_in(&desc("theirs2", "REBUILT", "actpass"))),
        [rebuild(RebuildReason::RemoteTransportChange)]
    );
}

#[test]
fn a_remote_answer_from_a_new_transport_completes_the_exchange_then_we_rebuild_and_offer() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    send_our_offer(&mut m, &our_offer());
    // The polite poolgate rebuilt to answer us.
    let rebuilt = desc("theirs2", "REBUILT", "passive");
    on(&mut m, answer_in(&rebuilt));
    let out = m.on(Event::RemoteDescriptionSet);
    assert_eq!(ops(&out), [rebuild(RebuildReason::RemoteTransportChange)]);
    assert_eq!(m.completed_exchanges(), 2);
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn the_first_remote_description_on_a_fresh_webrtcbin_is_never_a_transport_change() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    on(
        &mut m,
        Event::OfferFailed {
            error: "boom".into(),
        },
    );
    on(&mut m, Event::Rebuilt);
    on(&mut m, created_offer(&our_offer()));
    on(&mut m, Event::LocalDescriptionSet);
    let answer = desc("whatever", "ANY", "active");
    assert_eq!(
        on(&mut m, answer_in(&answer)),
        [set_remote(SdpType::Answer, &answer)]
    );
    assert_eq!(on(&mut m, Event::RemoteDescriptionSet), []);
}

#[test]
fn a_rebuild_owes_the_remote_a_description_from_the_fresh_webrtcbin() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, Event::IceFailed);
    assert!(!m.is_settled());
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    assert!(!m.is_settled());
}

// ===== ICE failure =====

#[test]
fn impolite_restarts_ice_by_rebuilding_then_offering_from_the_fresh_webrtcbin() {
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    assert_eq!(
        on(&mut m, Event::IceFailed),
        [rebuild(RebuildReason::IceRestart)]
    );
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    let fresh = desc("fresh", "FRESH", "actpass");
    on(&mut m, created_offer(&fresh));
    on(&mut m, Event::LocalDescriptionSet);
    let answer = desc("theirs2", "THEIRS", "active");
    on(&mut m, answer_in(&answer));
    on(&mut m, Event::RemoteDescriptionSet);
    assert!(
        m.is_settled(),
        "a description with new credentials was sent"
    );
}

#[test]
fn impolite_defers_an_ice_restart_until_stable() {
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    send_our_offer(&mut m, &our_offer());
    assert_eq!(on(&mut m, Event::IceFailed), []);
    on(&mut m, answer_in(&their_answer("active")));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [rebuild(RebuildReason::IceRestart)]
    );
}

#[test]
fn a_stable_side_restarts_ice_at_once_polite_or_not() {
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(
        on(&mut m, Event::IceFailed),
        [rebuild(RebuildReason::IceRestart)]
    );
}

#[test]
fn a_busy_side_drops_its_ice_restart_when_the_remote_restarts_first() {
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    let restart = desc("theirs2", "THEIRS", "actpass");
    on(&mut m, offer_in(&restart)); // the remote's restart: a rebuild here (1.22)
    let out = m.on(Event::IceFailed);
    assert_eq!(
        diagnostics(&out),
        [Diagnostic::IceFailedIgnored],
        "while rebuilding"
    );
    let mut m = Machine::with_options(true, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, offer_in(&restart));
    let out = m.on(Event::IceFailed);
    assert_eq!(diagnostics(&out), [Diagnostic::IceRestartDeferred]);
    on(&mut m, Event::RemoteDescriptionSet);
    let out = finish_answer(&mut m);
    assert!(!ops(&out).iter().any(|a| matches!(a, Action::RestartIce)));
    assert!(m.is_settled());
}

#[test]
fn a_busy_side_restarts_ice_after_an_exchange_that_renewed_nothing() {
    // A failure only this side saw must not be left to the remote forever.
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(
        &mut m,
        offer_in(&their_offer().replace("o=- 1 1", "o=- 1 2")),
    );
    let out = m.on(Event::IceFailed);
    assert_eq!(diagnostics(&out), [Diagnostic::IceRestartDeferred]);
    on(&mut m, Event::RemoteDescriptionSet);
    let out = ops(&finish_answer(&mut m));
    assert_eq!(out.last(), Some(&rebuild(RebuildReason::IceRestart)));
}

#[test]
fn an_ice_failure_without_a_remote_description_is_ignored() {
    let mut m = Machine::new(false);
    let out = m.on(Event::IceFailed);
    assert_eq!(ops(&out), []);
    assert_eq!(diagnostics(&out), [Diagnostic::IceFailedIgnored]);
    assert!(m.is_settled());
}

#[test]
fn with_in_place_ice_restart_an_ice_failure_creates_a_restart_offer() {
    let mut m = Machine::with_options(false, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(on(&mut m, Event::IceFailed), [Action::RestartIce]);
    let restart = desc("ours2", "OURS", "actpass");
    on(&mut m, created_offer(&restart));
    on(&mut m, Event::LocalDescriptionSet);
    on(&mut m, answer_in(&desc("theirs2", "THEIRS", "passive")));
    on(&mut m, Event::RemoteDescriptionSet);
    assert!(m.is_settled());
    assert_eq!(m.rebuilds(), 0);
}

#[test]
fn an_ice_restart_offer_with_the_old_credentials_falls_back_to_a_rebuild() {
    // GStreamer up to at least 1.24 ignores the ice-restart option of create-offer: asking
    // again would loop for ever.
    let mut m = Machine::with_options(false, in_place());
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(on(&mut m, Event::IceFailed), [Action::RestartIce]);
    let out = m.on(created_offer(&our_offer()));
    assert_eq!(ops(&out), [rebuild(RebuildReason::IceRestart)]);
    assert!(diagnostics(&out).contains(&Diagnostic::IceRestartIgnoredByWebrtcbin));
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn a_remote_restart_answered_from_a_fresh_webrtcbin_settles_our_own_restart() {
    // Both sides restart at once: ours is a rebuild; the remote's restart offer, answered from
    // the fresh webrtcbin, carries our new credentials, so no extra offer is owed.
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(
        on(&mut m, Event::IceFailed),
        [rebuild(RebuildReason::IceRestart)]
    );
    let restart = desc("theirs2", "THEIRS", "actpass");
    assert_eq!(on(&mut m, offer_in(&restart)), []);
    // The fresh webrtcbin was built to offer (with the session's sections), so one built to
    // answer takes the remote's offer.
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [rebuild(RebuildReason::RemoteOfferBeforeOurs)]
    );
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &restart)]
    );
    on(&mut m, Event::RemoteDescriptionSet);
    on(&mut m, created_answer(&desc("fresh", "FRESH", "active")));
    assert_eq!(on(&mut m, Event::LocalDescriptionSet).len(), 1);
    assert!(m.is_settled());
}

#[test]
fn ice_failures_are_coalesced_and_ignored_while_rebuilding() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    send_our_offer(&mut m, &our_offer());
    on(&mut m, Event::IceFailed);
    assert_eq!(on(&mut m, Event::IceFailed), []);
    on(&mut m, answer_in(&their_answer("passive")));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [rebuild(RebuildReason::IceRestart)]
    );
    let out = m.on(Event::IceFailed);
    assert_eq!(diagnostics(&out), [Diagnostic::IceFailedIgnored]);
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

// ===== DTLS role =====

#[test]
fn our_first_answer_fixes_our_dtls_role() {
    let mut m = Machine::new(true);
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, Event::RemoteDescriptionSet);
    let out = finish_answer(&mut m);
    assert!(diagnostics(&out).contains(&Diagnostic::DtlsRoleFixed(DtlsRole::Client)));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Client));
}

#[test]
fn our_first_offer_takes_the_role_the_answer_leaves_us() {
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Server));
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("passive"));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Client));
}

#[test]
fn the_initial_offer_stays_actpass() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    let out = on(&mut m, created_offer(&our_offer()));
    let [Action::SetLocalDescription(d)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(sdp::dtls_setup(&d.sdp), Some(DtlsSetup::Actpass));
}

#[test]
fn after_being_the_dtls_server_our_answers_say_passive() {
    // The measured bug: webrtcbin answered active in a renegotiation after it had been the
    // server, and Chrome rejected it ("Failed to set SSL role for the transport").
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Server));
    on(
        &mut m,
        offer_in(&their_offer().replace("o=- 1 1", "o=- 1 2")),
    );
    on(&mut m, Event::RemoteDescriptionSet);
    let out = on(&mut m, created_answer(&our_answer()));
    let [Action::SetLocalDescription(set)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(sdp::dtls_setup(&set.sdp), Some(DtlsSetup::Passive));
    assert!(!set.sdp.contains("a=setup:active"));
    let out = on(&mut m, Event::LocalDescriptionSet);
    assert_eq!(out, [Action::SendSdp(set.clone())], "sent as set");
}

#[test]
fn after_the_role_is_fixed_our_offers_state_it_instead_of_actpass() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    assert_eq!(m.dtls_role(), Some(DtlsRole::Client));
    on(&mut m, Event::NegotiationNeeded);
    let out = on(&mut m, created_offer(&our_offer()));
    let [Action::SetLocalDescription(set)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(sdp::dtls_setup(&set.sdp), Some(DtlsSetup::Active));
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [Action::SendSdp(set.clone())]
    );
}

#[test]
fn the_dtls_role_survives_a_rebuild() {
    let mut m = Machine::new(true);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Server));
    send_our_offer(&mut m, &our_offer());
    on(
        &mut m,
        offer_in(&their_offer().replace("o=- 1 1", "o=- 1 2")),
    );
    on(&mut m, Event::Rebuilt);
    on(&mut m, Event::RemoteDescriptionSet);
    // The fresh webrtcbin answers active, as always; we still say passive.
    let out = on(&mut m, created_answer(&desc("fresh", "FRESH", "active")));
    let [Action::SetLocalDescription(set)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(sdp::dtls_setup(&set.sdp), Some(DtlsSetup::Passive));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Server));
}

#[test]
fn a_remote_that_contradicts_the_fixed_role_is_reported() {
    let mut m = Machine::new(false);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    send_our_offer(&mut m, &our_offer());
    // We offered passive (our fixed role); an answer of passive is illegal.
    on(&mut m, answer_in(&their_answer("passive")));
    let out = m.on(Event::RemoteDescriptionSet);
    assert!(diagnostics(&out).contains(&Diagnostic::DtlsRoleConflict {
        fixed: Some(DtlsRole::Server),
        local: Some(DtlsSetup::Passive),
        remote: Some(DtlsSetup::Passive),
    }));
    assert_eq!(m.dtls_role(), Some(DtlsRole::Server), "never changes");
}

// ===== failures =====

#[test]
fn a_failed_local_offer_is_offered_again_from_a_fresh_webrtcbin() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    on(&mut m, created_offer(&our_offer()));
    let out = m.on(Event::LocalDescriptionFailed {
        error: "bad sdp".into(),
    });
    assert_eq!(ops(&out), [rebuild(RebuildReason::OperationFailed)]);
    assert!(diagnostics(&out).contains(&Diagnostic::OperationFailed {
        step: Step::SetLocalOffer,
        error: "bad sdp".into()
    }));
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn a_failed_remote_answer_is_followed_by_a_new_offer_from_a_fresh_webrtcbin() {
    let mut m = Machine::new(false);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, answer_in(&their_answer("active")));
    on(&mut m, remote_cand(1));
    let out = m.on(Event::RemoteDescriptionFailed { error: "x".into() });
    assert_eq!(ops(&out), [rebuild(RebuildReason::OperationFailed)]);
    assert_eq!(on(&mut m, remote_cand(2)), [], "follows the failed answer");
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn a_remote_offer_that_failed_to_apply_is_retried_on_a_fresh_webrtcbin() {
    let mut m = Machine::new(false);
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, remote_cand(1));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionFailed { error: "x".into() }),
        [rebuild(RebuildReason::OperationFailed)]
    );
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &their_offer())]
    );
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [add(cand(1)), Action::CreateAnswer]
    );
}

#[test]
fn a_failed_answer_is_retried_on_a_fresh_webrtcbin_with_the_candidates_replayed() {
    for fail_at_creation in [true, false] {
        let mut m = Machine::new(false);
        on(&mut m, offer_in(&their_offer()));
        on(&mut m, remote_cand(1));
        on(&mut m, Event::RemoteDescriptionSet);
        let failure = if fail_at_creation {
            Event::AnswerFailed { error: "x".into() }
        } else {
            on(&mut m, created_answer(&our_answer()));
            Event::LocalDescriptionFailed { error: "x".into() }
        };
        assert_eq!(
            on(&mut m, failure),
            [rebuild(RebuildReason::OperationFailed)]
        );
        assert_eq!(
            on(&mut m, Event::Rebuilt),
            [set_remote(SdpType::Offer, &their_offer())]
        );
        assert_eq!(
            on(&mut m, Event::RemoteDescriptionSet),
            [add(cand(1)), Action::CreateAnswer]
        );
        on(&mut m, created_answer(&our_answer()));
        assert_eq!(
            on(&mut m, Event::LocalDescriptionSet),
            [send(SdpType::Answer, &our_answer())]
        );
        assert!(m.is_settled());
        assert_eq!(m.completed_exchanges(), 1);
    }
}

#[test]
fn a_failure_on_the_collision_path_still_converges() {
    let mut m = Machine::new(true);
    send_our_offer(&mut m, &our_offer());
    on(&mut m, offer_in(&their_offer()));
    on(&mut m, Event::Rebuilt);
    // The remote offer fails on the fresh webrtcbin too: another rebuild, another try.
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionFailed { error: "x".into() }),
        [rebuild(RebuildReason::OperationFailed)]
    );
    on(&mut m, Event::Rebuilt);
    on(&mut m, Event::RemoteDescriptionSet);
    let out = ops(&finish_answer(&mut m));
    assert_eq!(out.last(), Some(&Action::RetryOfferLater(POLITE_TURN)));
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    assert_eq!(m.completed_exchanges(), 1);
}

#[test]
fn too_many_failures_in_a_row_give_up_and_then_nothing_happens() {
    let mut m = Machine::new(false);
    on(&mut m, Event::NegotiationNeeded);
    for _ in 0..Options::default().max_consecutive_failures {
        on(&mut m, Event::OfferFailed { error: "x".into() });
        assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    }
    let out = on(&mut m, Event::OfferFailed { error: "x".into() });
    assert!(matches!(&out[..], [Action::Failed { .. }]), "{out:?}");
    assert_eq!(m.phase(), Phase::Failed);
    assert_eq!(m.on(offer_in(&their_offer())), []);
    assert_eq!(m.on(Event::NegotiationNeeded), []);
}

#[test]
fn a_completed_exchange_resets_the_failure_count() {
    let mut m = Machine::new(false);
    for _ in 0..5 {
        on(&mut m, Event::NegotiationNeeded);
        on(&mut m, Event::OfferFailed { error: "x".into() });
        on(&mut m, Event::Rebuilt);
        on(&mut m, created_offer(&our_offer()));
        on(&mut m, Event::LocalDescriptionSet);
        on(&mut m, answer_in(&their_answer("active")));
        on(&mut m, Event::RemoteDescriptionSet);
    }
    assert_ne!(m.phase(), Phase::Failed);
}

#[test]
fn an_event_that_does_not_fit_is_reported_and_changes_nothing() {
    let mut m = Machine::new(false);
    for event in [
        Event::LocalDescriptionSet,
        Event::RemoteDescriptionSet,
        created_answer(&our_answer()),
        created_offer(&our_offer()),
        Event::Rebuilt,
        Event::AnswerFailed { error: "x".into() },
    ] {
        let out = m.on(event);
        assert_eq!(ops(&out), []);
        assert!(matches!(
            &diagnostics(&out)[..],
            [Diagnostic::UnexpectedEvent {
                phase: Phase::Stable,
                ..
            }]
        ));
    }
    assert!(m.is_settled());
}

#[test]
fn no_rollback_is_ever_asked_of_webrtcbin() {
    // Exercise every collision path on both sides; no SetLocalDescription(rollback) may appear.
    for polite in [false, true] {
        let mut m = Machine::new(polite);
        let mut all = Vec::new();
        all.extend(m.on(Event::NegotiationNeeded));
        all.extend(m.on(offer_in(&their_offer())));
        all.extend(m.on(created_offer(&our_offer())));
        all.extend(m.on(Event::LocalDescriptionSet));
        all.extend(m.on(Event::Rebuilt));
        all.extend(m.on(Event::RemoteDescriptionSet));
        assert!(!all.iter().any(|a| matches!(
            a,
            Action::SetLocalDescription(d) | Action::SetRemoteDescription(d)
                if d.kind == SdpType::Rollback
        )));
    }
}

// ===== a rebuilt webrtcbin that offers =====

#[test]
fn an_operator_restart_is_handled_like_an_ice_failure() {
    let mut m = Machine::new(true);
    // Before any exchange ICE never ran: nothing to restart.
    assert_eq!(on(&mut m, Event::IceRestartRequested), []);
    exchange_as_offerer(&mut m, &our_offer(), &their_answer("active"));
    assert_eq!(
        on(&mut m, Event::IceRestartRequested),
        [rebuild(RebuildReason::IceRestart)]
    );
    assert!(m.rebuilding_to_offer());
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn the_last_exchange_is_kept_as_the_session_a_fresh_offerer_continues() {
    let mut m = Machine::new(false);
    assert_eq!(m.negotiated_session(), None);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    let (local, remote) = m.negotiated_session().expect("an exchange completed");
    assert_eq!(sdp::ice_ufrag(local), Some("ours"));
    assert_eq!(remote, their_offer());
    // A rebuild that answers a remote offer is not one that offers.
    on(&mut m, offer_in(&desc("theirs2", "THEIRS2", "actpass")));
    assert_eq!(m.phase(), Phase::Rebuilding);
    assert!(!m.rebuilding_to_offer());
}

#[test]
fn a_fresh_offerer_s_offer_without_every_session_section_is_retried() {
    let mut m = Machine::new(false);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    on(&mut m, Event::IceFailed);
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    // The fresh webrtcbin knows nothing of the data section yet: not sent, asked again.
    let fresh = desc("fresh", "FRESH", "actpass");
    let all = m.on(created_offer(&without_data_section(&fresh)));
    assert_eq!(ops(&all), [Action::RetryOfferLater(OFFER_RETRY_DELAY)]);
    assert_eq!(
        diagnostics(&all),
        [Diagnostic::OfferMissingSections {
            missing: vec!["1".into()]
        }]
    );
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    let expected = sdp::enforce_dtls_role(&fresh, SdpType::Offer, m.dtls_role());
    assert_eq!(
        on(&mut m, created_offer(&fresh)),
        [set_local(SdpType::Offer, &expected)]
    );
}

// ===== taking turns after an exchange =====

/// Applies their offer and creates our answer: `LocalDescriptionSet` completes the exchange.
fn setting_our_answer(m: &mut Machine) {
    on(m, offer_in(&their_offer()));
    on(m, Event::RemoteDescriptionSet);
    on(m, created_answer(&our_answer()));
}

#[test]
fn polite_leaves_the_remote_its_turn_and_applies_its_offer_without_a_rebuild() {
    // The loop this breaks: both sides offer what they kept the moment an exchange completes,
    // collide, and the polite side rebuilds, round after round.
    let mut m = Machine::new(true);
    setting_our_answer(&mut m);
    // A change of ours while the exchange was under way.
    assert_eq!(on(&mut m, Event::NegotiationNeeded), []);
    let out = m.on(Event::LocalDescriptionSet);
    assert!(diagnostics(&out).contains(&Diagnostic::OfferDeferredToRemote));
    assert_eq!(
        ops(&out),
        [
            send(SdpType::Answer, &our_answer()),
            Action::RetryOfferLater(POLITE_TURN)
        ]
    );
    // The remote takes its turn: applied from stable, no rebuild.
    let again = desc("theirs", "THEIRS", "actpass");
    assert_eq!(
        on(&mut m, offer_in(&again)),
        [set_remote(SdpType::Offer, &again)]
    );
    on(&mut m, Event::RemoteDescriptionSet);
    on(&mut m, created_answer(&our_answer()));
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [send(SdpType::Answer, &our_answer())],
        "still within the turn: nothing offered yet"
    );
    // Then our change.
    assert_eq!(on(&mut m, Event::RetryOffer), [Action::CreateOffer]);
    assert_eq!(m.rebuilds(), 0);
    assert_eq!(m.completed_exchanges(), 2);
}

#[test]
fn the_turn_holds_only_changes_that_waited_for_an_exchange() {
    let mut m = Machine::new(true);
    setting_our_answer(&mut m);
    // Nothing of ours was pending when the exchange completed.
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [send(SdpType::Answer, &our_answer())]
    );
    // A change at rest is offered at once.
    assert_eq!(on(&mut m, Event::NegotiationNeeded), [Action::CreateOffer]);
}

#[test]
fn the_impolite_side_offers_at_once_after_an_exchange() {
    let mut m = Machine::new(false);
    setting_our_answer(&mut m);
    on(&mut m, Event::NegotiationNeeded);
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [send(SdpType::Answer, &our_answer()), Action::CreateOffer]
    );
}

#[test]
fn a_fresh_webrtcbin_that_must_announce_itself_is_not_held_back() {
    // The impolite remote answered from a new transport: we rebuild and offer from the fresh
    // webrtcbin at once, turn or not.
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    send_our_offer(&mut m, &our_offer());
    let answer = desc("moved", "MOVED", "passive");
    on(&mut m, answer_in(&answer));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [rebuild(RebuildReason::RemoteTransportChange)]
    );
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
}

#[test]
fn a_zero_turn_offers_at_once() {
    let mut m = Machine::with_options(
        true,
        Options {
            polite_turn: std::time::Duration::ZERO,
            ..Options::default()
        },
    );
    setting_our_answer(&mut m);
    on(&mut m, Event::NegotiationNeeded);
    assert_eq!(
        on(&mut m, Event::LocalDescriptionSet),
        [send(SdpType::Answer, &our_answer()), Action::CreateOffer]
    );
}

// ===== a remote offer before a rebuilt offerer's first offer =====

/// A polite machine whose webrtcbin was just rebuilt to offer (the remote answered from a new
/// transport), its offer being created.
fn rebuilt_to_offer() -> Machine {
    let mut m = Machine::new(true);
    exchange_as_answerer(&mut m, &their_offer(), &our_answer());
    send_our_offer(&mut m, &our_offer());
    on(&mut m, answer_in(&desc("theirs2", "REBUILT", "passive")));
    assert_eq!(
        on(&mut m, Event::RemoteDescriptionSet),
        [rebuild(RebuildReason::RemoteTransportChange)]
    );
    assert!(m.rebuilding_to_offer());
    assert_eq!(on(&mut m, Event::Rebuilt), [Action::CreateOffer]);
    m
}

#[test]
fn a_remote_offer_before_a_rebuilt_offerer_has_offered_is_answered_by_a_fresh_webrtcbin() {
    let mut m = rebuilt_to_offer();
    let offer = desc("theirs2", "REBUILT", "actpass");
    assert_eq!(on(&mut m, offer_in(&offer)), []);
    let out = m.on(created_offer(&desc("fresh", "FRESH", "actpass")));
    assert!(diagnostics(&out).contains(&Diagnostic::CreatedOfferDropped));
    assert_eq!(ops(&out), [rebuild(RebuildReason::RemoteOfferBeforeOurs)]);
    // A webrtcbin built to answer, not given the session's sections.
    assert!(!m.rebuilding_to_offer());
    assert_eq!(
        on(&mut m, Event::Rebuilt),
        [set_remote(SdpType::Offer, &offer)]
    );
}

#[test]
fn once_the_rebuilt_offerer_has_offered_remote_offers_apply_on_it() {
    let mut m = rebuilt_to_offer();
    let fresh = desc("fresh", "FRESH", "actpass");
    on(&mut m, created_offer(&fresh));
    on(&mut m, Event::LocalDescriptionSet);
    let answer = desc("theirs2", "REBUILT", "passive");
    on(&mut m, answer_in(&answer));
    on(&mut m, Event::RemoteDescriptionSet);
    let offer = desc("theirs2", "REBUILT", "actpass");
    assert_eq!(
        on(&mut m, offer_in(&offer)),
        [set_remote(SdpType::Offer, &offer)]
    );
    assert_eq!(m.rebuilds(), 1);
}

// ----- a sending branch's caps arriving -----

#[test]
fn caps_for_media_already_sending_ask_for_nothing() {
    assert_eq!(Phase::Stable.on_sending_caps(true), CapsStep::Nothing);
}

#[test]
fn caps_before_the_media_is_negotiated_ask_for_an_offer() {
    assert_eq!(Phase::Stable.on_sending_caps(false), CapsStep::Offer);
}

#[test]
fn caps_during_an_exchange_wait_for_its_end_to_tell() {
    for phase in [
        Phase::CreatingOffer,
        Phase::SettingLocalOffer,
        Phase::HaveLocalOffer,
        Phase::SettingRemoteAnswer,
        Phase::SettingRemoteOffer,
        Phase::CreatingAnswer,
        Phase::SettingLocalAnswer,
    ] {
        for negotiated in [false, true] {
            assert_eq!(
                phase.on_sending_caps(negotiated),
                CapsStep::DecideAfterExchange,
                "{phase:?}"
            );
        }
    }
}

#[test]
fn caps_during_a_rebuild_or_after_failure_ask_for_an_offer_the_machine_handles() {
    for phase in [Phase::Rebuilding, Phase::Failed] {
        for negotiated in [false, true] {
            assert_eq!(
                phase.on_sending_caps(negotiated),
                CapsStep::Offer,
                "{phase:?}"
            );
        }
    }
}
