//! Perfect negotiation with one remote peer, as a sans-IO state machine.
//!
//! poolgate's endpoint keeps one `webrtcbin` per remote peer. Its adapter (`peer.rs`) feeds a
//! [`Machine`] the [`Event`]s of that webrtcbin and of signalling, and performs the [`Action`]s
//! it returns. webrtcbin's operations are asynchronous: each *operation* action (create offer or
//! answer, set a description, rebuild) is answered later by exactly one completion event. The
//! machine never has more than one operation in flight: remote descriptions and candidates that
//! arrive meanwhile are queued in arrival order, negotiation-needed and ICE failures are
//! coalesced into flags, and all of it is acted on once the operation completes.
//!
//! It interoperates with the rtcpool 3.0.2 browser client (ssp v2) and with another poolgate
//! endpoint running this machine. Politeness is per peer: the endpoint that joined later is
//! polite. Offers come from negotiation-needed, either side may offer at any time, the impolite
//! side ignores a colliding offer, the polite side gives way.
//!
//! # States and transitions
//!
//! "Queued" below means the remote description waits in the inbox until the machine is at rest
//! (`Stable` or `HaveLocalOffer`); the inbox is always worked off before the machine offers.
//!
//! | from | on | to | actions |
//! |---|---|---|---|
//! | Stable | remote offer | SettingRemoteOffer | SetRemoteDescription(offer) |
//! | Stable | remote offer that changes ICE credentials or DTLS fingerprint | Rebuilding(offer) | Rebuild |
//! | Stable | remote offer before a webrtcbin rebuilt to offer has offered | Rebuilding(offer) | Rebuild |
//! | Stable | remote answer/pranswer | Stable | none: stale, ignored with its candidates |
//! | Stable | NegotiationNeeded, or a fresh webrtcbin to announce | CreatingOffer | CreateOffer |
//! | any → Stable | exchange completed, polite, a change of ours pending | Stable | RetryOfferLater(POLITE_TURN), then CreateOffer |
//! | Stable | ICE restart due | CreatingOffer / Rebuilding | RestartIce (in-place option) / Rebuild |
//! | CreatingOffer | OfferCreated, polite, remote offer queued | Stable, then SettingRemoteOffer | offer dropped unset; SetRemoteDescription(remote offer) |
//! | CreatingOffer | OfferCreated | SettingLocalOffer | SetLocalDescription(offer with our DTLS role) |
//! | SettingLocalOffer | LocalDescriptionSet, polite, remote offer queued | Rebuilding(remote offer) | Rebuild; our offer is never sent |
//! | SettingLocalOffer | LocalDescriptionSet | HaveLocalOffer | SendSdp(offer), held local candidates |
//! | HaveLocalOffer | remote answer (or pranswer) | SettingRemoteAnswer | SetRemoteDescription(answer) |
//! | HaveLocalOffer | remote offer, impolite | HaveLocalOffer | none: ignored with its candidates |
//! | HaveLocalOffer | remote offer, polite | Rebuilding(remote offer) | Rebuild |
//! | SettingRemoteAnswer | RemoteDescriptionSet | Stable (HaveLocalOffer after a pranswer) | buffered candidates; Rebuild if the answer changed the transport |
//! | SettingRemoteOffer | RemoteDescriptionSet | CreatingAnswer | buffered candidates, CreateAnswer |
//! | CreatingAnswer | AnswerCreated | SettingLocalAnswer | SetLocalDescription(answer with our DTLS role) |
//! | SettingLocalAnswer | LocalDescriptionSet | Stable | SendSdp(answer), held local candidates |
//! | Rebuilding(x) | Rebuilt | SettingRemoteOffer(x), or Stable | SetRemoteDescription(x) |
//! | Rebuilding(x) | x withdrawn (see below) | Rebuilding | none: x dropped, the fresh webrtcbin offers |
//! | SettingRemoteOffer(x) … SettingLocalAnswer(x) | x withdrawn | same, until its completion | then Rebuild; our answer is never sent |
//! | any operation | its failure event | Rebuilding | Rebuild, keeping the intent (see below) |
//! | any operation | the Nth failure in a row | Failed | Failed |
//!
//! "x withdrawn": the remote rolled back the offer we are answering, which we learn from a
//! `rollback` (rtcpool never sends one) or from the answer to an offer we abandoned for x.
//!
//! # Collisions without rollback
//!
//! webrtcbin 1.22 refuses a rollback from have-local-offer, so the polite side cannot give way
//! the browser's way. What it does instead depends on how far its own offer got:
//! - **still being created**: create-offer does not change webrtcbin's signalling state. The
//!   machine waits for `OfferCreated`, drops that offer without setting it, and applies the
//!   remote offer on the same webrtcbin. No rebuild.
//! - **being set, or set and sent**: webrtcbin is (or is about to be) in have-local-offer and can
//!   neither roll back nor accept the remote offer. The machine emits `Rebuild`: the adapter
//!   tears that peer's webrtcbin down and builds a fresh one with the same published media and
//!   data channels (measured: ICE connected ~30 ms later), then reports `Rebuilt`, and the
//!   machine applies the stored remote offer on it and answers. An offer still being set when
//!   the remote one arrived is never sent: the impolite side would ignore it anyway.
//!
//! Our own change that caused the dropped offer is not lost: the **machine remembers it**
//! (negotiation-needed is set again) and offers once back in stable, rather than trusting
//! webrtcbin to fire negotiation-needed again. That may cost one redundant exchange, which is
//! cheap; a lost change is not. The same holds for every rebuild: a fresh webrtcbin has new ICE
//! credentials and a new certificate, and the machine owes the remote an offer (or answer)
//! from it before it is settled.
//!
//! The impolite side ignores a colliding offer and the candidates that follow it, until the
//! next remote description; the polite side will answer our offer.
//!
//! ## Taking turns after an exchange
//!
//! A collision costs the polite side a rebuild, and between two poolgate endpoints more: the
//! polite side's answer then comes from a new transport, so the impolite side rebuilds and
//! offers from its fresh webrtcbin, which the polite side's webrtcbin cannot follow either.
//! Both sides come out of such a round with a change remembered (the dropped offer's, the
//! fresh webrtcbin's negotiation-needed), and if both offer it the moment the exchange
//! completes, they collide again, round after round (measured: 44 rebuilds in 4 s between a
//! recorder and a sender adding tracks). So right after an exchange the polite side gives
//! the remote the first turn: a change of ours that waited for the exchange is offered only
//! after [`Options::polite_turn`] ([`POLITE_TURN`]); an offer arriving meanwhile is applied from stable, without a
//! rebuild, and ours follows. The impolite side, which wins collisions anyway, offers at once.
//! A fresh webrtcbin that must announce its transport is not held back, and neither is a
//! change that arrives while the machine is at rest.
//!
//! ## rtcpool's impolite side can give way too
//!
//! rtcpool's `_onsdp` decides whether to ignore an offer from `signalingState` when the message
//! arrives, but Chrome's operations chain may already hold a `setLocalDescription()` that will
//! create an offer (when `_negotiate`'s own call answered our previous offer first, `_onsdp`'s
//! call makes an offer). Then the "impolite" browser sends offer X, later applies our offer,
//! rolling X back inside `setRemoteDescription`, and answers ours, while we, polite, gave way
//! to X. The browser-model replay found this. The answer to the offer we abandoned is how we
//! learn it: X is withdrawn (table above), so our answer to X never reaches a browser that
//! expects none (rejected) or that waits for the answer to a newer offer (and would take ours
//! for it). If that answer arrives only after we sent our next offer, it cannot be told from
//! the answer to that one (answers carry no id) and is taken for it; the transport-change and
//! ICE-failure paths then repair the session. Our rebuild plus webrtcbin's ~200 ms
//! set-remote-description make that ordering unlikely.
//!
//! ## Counting exchanges
//!
//! [`Machine::completed_exchanges`] counts offer/answer rounds as both ends see them: our
//! answer sent, or the answer to our offer received, whether or not the current webrtcbin
//! holds the result (it does not when the answer was for an abandoned offer, or could not be
//! applied). Two ends that agree on the rounds agree on this count.
//!
//! ## A rebuilt webrtcbin that offers
//!
//! Some rebuilds leave the fresh webrtcbin to *offer* (an ICE restart, a failed local offer or
//! remote answer, a remote answer from a new transport, a withdrawn remote offer). A subsequent
//! offer must keep every m-line of the session, in order, with the same mids, and a fresh
//! webrtcbin knows none of them: it would list only its own transceivers, in its own order,
//! under its own mids, which Chromium refuses. So the machine keeps the last completed
//! exchange as it went on the wire ([`Machine::negotiated_session`]); the adapter gives the
//! fresh webrtcbin a transceiver for each of its sections (receive-only, with the remote's
//! codec, for those only the remote sends on; a negotiated data channel for the data section)
//! and translates every description and candidate between the webrtcbin's numbering and the
//! session's (`super::sdp_map`). The machine sees the session's numbering only. An offer from
//! the fresh webrtcbin that still lacks a session section (a sending branch whose caps have
//! not reached it yet) is dropped and asked again like any incomplete offer (below): after
//! such a rebuild the session's mids count as negotiated. A remote offer that comes before the
//! fresh webrtcbin has sent its offer is answered by yet another fresh webrtcbin, one built to
//! answer: the sections it was given are mapped to the session's only by its own offer.
//!
//! webrtcbin 1.22 cannot change ICE credentials or DTLS transport in a renegotiation either. A
//! remote *offer* whose ICE ufrag or fingerprint differs from what the current webrtcbin has
//! (the remote restarted ICE or rebuilt its own webrtcbin) is therefore applied on a fresh
//! webrtcbin. A remote *answer* that does so (a polite poolgate rebuilt to answer our offer) is
//! applied, which completes the exchange on both sides, and is followed by a rebuild and a
//! fresh offer. [`Options::ice_restart_in_place`] lifts the ICE half of this for a GStreamer
//! that can restart ICE.
//!
//! # Candidates
//!
//! Signalling is in order, and an endpoint sends its candidates after the description they
//! belong to. So a remote candidate belongs to the last remote description received before it:
//! - that description still queued, being applied or waiting for a rebuild: the candidate is
//!   buffered with it, and added in order right after `RemoteDescriptionSet` (end-of-candidates
//!   too). This is what keeps the candidates of an offer a polite machine applies on a rebuilt
//!   webrtcbin: they are not dropped by the rebuild, they are applied after the offer on the
//!   fresh one;
//! - applied: added at once (held while another set-remote-description is in flight);
//! - ignored (impolite collision, stale answer): dropped quietly, unless it is of the live ICE
//!   session (same ufrag), which an ignored re-offer without ICE restart shares;
//! - before any remote description: buffered for the first one.
//!
//! A candidate that states its ufrag (browsers do) and names another ICE session than that
//! description is routed by the ufrag instead: to the live session, or dropped as stale.
//! Every candidate of the live remote ICE session is kept, and replayed after a rebuild when
//! the description applied on the fresh webrtcbin continues that session (same ufrag): a
//! renegotiation without ICE restart does not trickle them again.
//!
//! Local candidates go through the machine too ([`Event::LocalCandidate`]): they are held until
//! the description they belong to has been sent, so the remote never receives a candidate
//! before its description, and dropped with a webrtcbin being torn down.
//!
//! # ICE failure
//!
//! `IceFailed` makes the machine owe an ICE restart. It performs it as soon as it is at rest
//! in stable, unless by then a description with new ICE credentials has gone either way: the
//! remote's own restart (rtcpool browsers call `restartIce()` on failure, a poolgate peer does
//! this), or an exchange that renewed ours. So a side that is stable restarts at once, the
//! impolite side included; a side busy with an exchange waits for it, which is often the
//! remote's restart and makes its own unnecessary. The polite side does not leave the restart
//! to the remote outright: a failure seen by one side only would then never be repaired. Both
//! sides restarting at once is an ordinary collision. With GStreamer 1.22 (ICE restart is a
//! FIXME) a restart is a rebuild followed by an offer from the fresh webrtcbin; with
//! [`Options::ice_restart_in_place`] it is [`Action::RestartIce`]. An `IceFailed` during a
//! rebuild, or from a webrtcbin not yet given both descriptions (ICE never ran), is ignored.
//! [`Event::IceRestartRequested`] (an operator's `restart_ice`) is handled the same way; the
//! fresh webrtcbin's offer keeps the session's sections (see "A rebuilt webrtcbin that
//! offers").
//!
//! # DTLS role
//!
//! The first completed exchange fixes our DTLS role ([`Machine::dtls_role`]); from then on every
//! description we generate states it, offers included (see [`super::sdp`] for the reasoning).
//! The rewrite happens before `SetLocalDescription`, and `SendSdp` sends the same text. The
//! role outlives rebuilds: the remote keeps its own role across our rebuild (libwebrtc answers
//! with its current role, poolgate with its fixed one).
//!
//! # Failures
//!
//! A failed operation is answered with a rebuild that keeps the intent: a failed local offer
//! or remote answer is offered again from the fresh webrtcbin; a remote offer that failed to be
//! applied or answered is applied again on it (the remote waits for our answer and, if
//! impolite, ignores our offers until it gets one). After
//! [`Options::max_consecutive_failures`] failures without a completed exchange in between the
//! machine gives up with [`Action::Failed`]; the adapter closes the peer.
//!
//! # What the adapter guarantees
//!
//! - Exactly one completion event per operation action, from the webrtcbin that performed it.
//! - On `Rebuild`: disconnect the old webrtcbin's signals before tearing it down, so none of
//!   its events reach the machine afterwards; build the fresh one with the same published media
//!   and data channels; then report `Rebuilt`.
//! - Local candidates are passed in as [`Event::LocalCandidate`] and sent only as
//!   [`Action::SendCandidate`].
//! - `IceFailed` once per failure of the current webrtcbin (ice-connection-state failed).
//! - `SendSdp`, `SendCandidate` and `AddRemoteCandidate` are performed in the order given.

use std::collections::VecDeque;
use std::mem;

use super::sdp::{self, DtlsRole, DtlsSetup};
use crate::signalling::protocol::{IceCandidate, SdpType, SessionDescription};

/// A trickled ICE candidate; `None` is the end-of-candidates marker (as on the ssp wire).
pub type Candidate = Option<IceCandidate>;

/// What the machine is told: webrtcbin completions, signalling input, webrtcbin notifications.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// webrtcbin's `on-negotiation-needed` (or any local media change needing an offer).
    NegotiationNeeded,
    /// The `create-offer` (or ICE-restart offer) promise resolved.
    OfferCreated {
        /// The offer webrtcbin created.
        sdp: String,
    },
    /// The `create-offer` promise failed.
    OfferFailed {
        /// webrtcbin's error text.
        error: String,
    },
    /// The `create-answer` promise resolved.
    AnswerCreated {
        /// The answer webrtcbin created.
        sdp: String,
    },
    /// The `create-answer` promise failed.
    AnswerFailed {
        /// webrtcbin's error text.
        error: String,
    },
    /// `set-local-description` completed.
    LocalDescriptionSet,
    /// `set-local-description` failed.
    LocalDescriptionFailed {
        /// webrtcbin's error text.
        error: String,
    },
    /// `set-remote-description` completed.
    RemoteDescriptionSet,
    /// `set-remote-description` failed.
    RemoteDescriptionFailed {
        /// webrtcbin's error text.
        error: String,
    },
    /// `rtc:sdp` from the peer: an offer, answer, pranswer or rollback.
    RemoteSdp(SessionDescription),
    /// `rtc:candidate` from the peer (`None`: end of candidates).
    RemoteCandidate(Candidate),
    /// webrtcbin's `on-ice-candidate` (`None`: gathering complete).
    LocalCandidate(Candidate),
    /// ICE connection state went to failed.
    IceFailed,
    /// The operator asked for an ICE restart (`EndpointHandle::restart_ice`): handled exactly
    /// like [`Event::IceFailed`].
    IceRestartRequested,
    /// The adapter finished replacing the webrtcbin after [`Action::Rebuild`].
    Rebuilt,
    /// The wait asked for by [`Action::RetryOfferLater`] is over.
    RetryOffer,
}

/// What the adapter is asked to do. Operations (marked) complete later with one event.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// Operation: `create-offer`; completes with `OfferCreated` or `OfferFailed`.
    CreateOffer,
    /// Operation: `create-offer` with ICE restart (only with
    /// [`Options::ice_restart_in_place`]); completes like `CreateOffer`.
    RestartIce,
    /// Operation: `create-answer`; completes with `AnswerCreated` or `AnswerFailed`.
    CreateAnswer,
    /// Operation: `set-local-description`; completes with `LocalDescriptionSet` or
    /// `LocalDescriptionFailed`. The SDP is already rewritten for our DTLS role.
    SetLocalDescription(SessionDescription),
    /// Operation: `set-remote-description`; completes with `RemoteDescriptionSet` or
    /// `RemoteDescriptionFailed`.
    SetRemoteDescription(SessionDescription),
    /// Operation: tear this peer's webrtcbin down and build a fresh one with the same published
    /// media and data channels; completes with `Rebuilt`.
    Rebuild {
        /// Why the webrtcbin is replaced.
        reason: RebuildReason,
    },
    /// Send `rtc:sdp` to the peer.
    SendSdp(SessionDescription),
    /// `add-ice-candidate` on the webrtcbin (`None`: end of candidates).
    AddRemoteCandidate(Candidate),
    /// Send `rtc:candidate` to the peer.
    SendCandidate(Candidate),
    /// The machine gave up on this peer (too many failures in a row): close it.
    Failed {
        /// Why, for the log.
        reason: String,
    },
    /// Send [`Event::RetryOffer`] after this long (no operation is in flight meanwhile).
    RetryOfferLater(std::time::Duration),
    /// Nothing to perform: for logs and metrics.
    Diagnostic(Diagnostic),
}

/// Why a webrtcbin is rebuilt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RebuildReason {
    /// Polite side: a remote offer collided with an offer webrtcbin holds or is setting, and
    /// webrtcbin 1.22 cannot roll back.
    OfferCollision,
    /// A remote description changes the ICE credentials or DTLS fingerprint the current
    /// webrtcbin uses, which webrtcbin 1.22 cannot follow in a renegotiation.
    RemoteTransportChange,
    /// ICE failed and webrtcbin 1.22 cannot restart ICE in place.
    IceRestart,
    /// An operation failed; the fresh webrtcbin retries its intent.
    OperationFailed,
    /// Polite side: the remote rolled back the colliding offer we were answering (it answered
    /// the offer we had abandoned instead), and webrtcbin already holds that remote offer.
    RemoteOfferWithdrawn,
    /// A remote offer opens a direction the current webrtcbin settled without (the remote now
    /// sends where it had not, or now receives what we have to send), and webrtcbin 1.22 never
    /// reopens a settled direction: a fresh webrtcbin answers it.
    DirectionOpened,
    /// A remote offer arrived for a webrtcbin rebuilt to offer (given the session's sections)
    /// before it offered: its sections are not mapped to the session's yet, so a fresh
    /// webrtcbin without them answers the offer instead.
    RemoteOfferBeforeOurs,
}

/// One asynchronous webrtcbin step, for failure reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// `create-offer`.
    CreateOffer,
    /// `set-local-description` with our offer.
    SetLocalOffer,
    /// `set-remote-description` with the remote's answer.
    SetRemoteAnswer,
    /// `set-remote-description` with the remote's offer.
    SetRemoteOffer,
    /// `create-answer`.
    CreateAnswer,
    /// `set-local-description` with our answer.
    SetLocalAnswer,
}

/// Who made the offer of an exchange.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Offerer {
    /// We offered.
    Local,
    /// The remote offered.
    Remote,
}

/// Why remote candidates were dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// They follow a remote description that was ignored (collision, stale answer, withdrawn).
    IgnoredDescription,
    /// They name an ICE session (ufrag) that is no longer, or never was, in use.
    OtherIceSession,
}

/// Observations worth logging. They never require anything of the adapter.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Diagnostic {
    /// Impolite: a remote offer collided with ours and was ignored.
    RemoteOfferIgnored,
    /// Polite: a change of ours waited out an exchange; the remote gets
    /// [`Options::polite_turn`] to offer what it has pending before we offer it.
    OfferDeferredToRemote,
    /// A remote description changed a section's direction; webrtcbin was given the direction
    /// it first saw instead (see `Machine::pinned_directions`).
    RemoteDirectionPinned {
        /// The section.
        mid: String,
        /// The direction the remote sent.
        wire: sdp::Direction,
        /// The direction webrtcbin was given.
        pinned: sdp::Direction,
    },
    /// webrtcbin created an offer without a section already negotiated (a data section the
    /// remote just added, whose channel it has not registered yet): dropped, retried later.
    OfferMissingSections {
        /// The mids left out.
        missing: Vec<String>,
    },
    /// Polite: a remote offer arrived while webrtcbin was creating ours; ours was dropped
    /// before being set, and the remote one is applied without a rebuild.
    CreatedOfferDropped,
    /// Polite: an offer of ours being set when a remote offer arrived is not sent.
    UnsentOfferAbandoned,
    /// An answer or pranswer that matches no offer of ours outstanding.
    StaleAnswerIgnored,
    /// A remote rollback withdrew a remote offer not yet acted on.
    RemoteOfferWithdrawn,
    /// Both sides gave way in one collision: the remote answered the offer we abandoned, so
    /// the remote offer we were answering is void (see "rtcpool's impolite side").
    RemoteAnsweredAbandonedOffer,
    /// A remote rollback with nothing to withdraw.
    RemoteRollbackIgnored,
    /// A remote description changes the transport the current webrtcbin uses.
    RemoteTransportChanged,
    /// Remote candidates dropped.
    RemoteCandidatesDropped {
        /// How many.
        count: usize,
        /// Why.
        reason: DropReason,
    },
    /// Local candidates of a webrtcbin being replaced, or of an offer never sent.
    LocalCandidatesDropped {
        /// How many.
        count: usize,
    },
    /// ICE failed while an exchange is in progress: restart once at rest, unless that
    /// exchange or the remote renews the ICE credentials first.
    IceRestartDeferred,
    /// An ICE-restart offer came back with the old credentials (the option was ignored):
    /// restarting by a rebuild instead.
    IceRestartIgnoredByWebrtcbin,
    /// ICE failure of a webrtcbin being replaced (the fresh one restarts ICE anyway), or of
    /// one without both descriptions (ICE never ran on it): nothing to do.
    IceFailedIgnored,
    /// A webrtcbin operation failed.
    OperationFailed {
        /// The operation.
        step: Step,
        /// webrtcbin's error text.
        error: String,
    },
    /// An event that does not fit the current phase (an adapter bug, or a late event of a
    /// replaced webrtcbin); ignored.
    UnexpectedEvent {
        /// The event's name.
        event: &'static str,
        /// Where the machine was.
        phase: Phase,
    },
    /// The first completed exchange fixed our DTLS role.
    DtlsRoleFixed(DtlsRole),
    /// A completed exchange does not give the fixed role (the remote broke the rule), or gives
    /// none at all (illegal `a=setup:` pair).
    DtlsRoleConflict {
        /// The role fixed by the first exchange.
        fixed: Option<DtlsRole>,
        /// Our description's `a=setup`.
        local: Option<DtlsSetup>,
        /// The remote's `a=setup`.
        remote: Option<DtlsSetup>,
    },
    /// An offer/answer round completed in signalling: our answer was sent, or the answer to
    /// our offer arrived. `applied`: the current webrtcbin holds the result (false when the
    /// answer came for an offer we had abandoned, or could not be applied). `total` counts
    /// the rounds with this peer, as the peer counts them too.
    ExchangeCompleted {
        /// Who offered.
        offerer: Offerer,
        /// Exchanges completed so far, this one included.
        total: u64,
        /// Whether the remote description was applied (false: a stale answer ignored).
        applied: bool,
    },
}

/// Where the machine is, without the data (for logs and tests).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Nothing under way.
    Stable,
    /// webrtcbin is creating our offer.
    CreatingOffer,
    /// Our offer is being set locally.
    SettingLocalOffer,
    /// Our offer is sent; waiting for the answer.
    HaveLocalOffer,
    /// The remote's answer is being set.
    SettingRemoteAnswer,
    /// The remote's offer is being set.
    SettingRemoteOffer,
    /// webrtcbin is creating our answer.
    CreatingAnswer,
    /// Our answer is being set locally.
    SettingLocalAnswer,
    /// The webrtcbin is being replaced.
    Rebuilding,
    /// The machine gave up on this peer.
    Failed,
}

/// What a sending branch's caps reaching webrtcbin calls for. webrtcbin builds a branch's
/// m-line from its caps, so an offer made before they came may have left it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsStep {
    /// Nothing: an exchange already made every published source send (and carried our
    /// channels' data section). An offer would change nothing, and a needless offer toward a
    /// newcomer crosses the browser's next one.
    Nothing,
    /// An exchange is under way: its end tells whether it carried the media (an offer created
    /// before the caps came may have left it out; an answer may have carried it).
    DecideAfterExchange,
    /// Ask for an offer.
    Offer,
}

impl Phase {
    /// What to do when a sending branch's caps arrive in this phase; `negotiated`: the session
    /// already carries everything we send (every published source, sending, and the data
    /// section our channels need).
    pub fn on_sending_caps(self, negotiated: bool) -> CapsStep {
        match self {
            Phase::Stable if negotiated => CapsStep::Nothing,
            Phase::Stable | Phase::Rebuilding | Phase::Failed => CapsStep::Offer,
            Phase::CreatingOffer
            | Phase::SettingLocalOffer
            | Phase::HaveLocalOffer
            | Phase::SettingRemoteAnswer
            | Phase::SettingRemoteOffer
            | Phase::CreatingAnswer
            | Phase::SettingLocalAnswer => CapsStep::DecideAfterExchange,
        }
    }
}

/// How long to wait before asking webrtcbin again for an offer it created incomplete.
pub const OFFER_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(200);
/// Incomplete offers retried in a row before the webrtcbin is rebuilt.
pub const MAX_INCOMPLETE_OFFERS: u32 = 25;
/// How long the polite side, right after an exchange, leaves the remote to offer first before
/// it offers a change of its own that was waiting (see "Taking turns after an exchange").
pub const POLITE_TURN: std::time::Duration = std::time::Duration::from_millis(500);

/// What the machine may assume of the media stack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Options {
    /// webrtcbin can restart ICE in place: create an ICE-restart offer, and accept remote
    /// descriptions with new ICE credentials. False for GStreamer 1.22, where ICE restart is a
    /// FIXME: a restart is then a rebuild. If set but webrtcbin ignores the option (the offer
    /// keeps the old credentials), the machine falls back to a rebuild.
    pub ice_restart_in_place: bool,
    /// Failed operations tolerated in a row (each answered by a rebuild) before giving up.
    pub max_consecutive_failures: u32,
    /// Polite side: how long a change of ours that waited for an exchange waits on, so that
    /// the remote offers first (see "Taking turns after an exchange"). Zero: offer at once.
    pub polite_turn: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ice_restart_in_place: false,
            max_consecutive_failures: 3,
            polite_turn: POLITE_TURN,
        }
    }
}

/// The ICE session and DTLS transport a description names.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Transport {
    ufrag: Option<String>,
    fingerprint: Option<String>,
}

impl Transport {
    fn of(sdp: &str) -> Self {
        Transport {
            ufrag: sdp::ice_ufrag(sdp).map(str::to_owned),
            fingerprint: sdp::fingerprint(sdp).map(str::to_owned),
        }
    }
}

/// A remote description not yet applied, with the candidates that arrived after it.
#[derive(Clone, Debug)]
struct RemoteEntry {
    /// Arrival number, to tell one remote offer from another.
    seq: u64,
    /// Offer, Answer or Pranswer (a rollback never becomes an entry).
    kind: SdpType,
    sdp: String,
    transport: Transport,
    /// An answer that arrived with no offer of ours outstanding.
    stale: bool,
    candidates: Vec<Candidate>,
}

impl RemoteEntry {
    fn description(&self) -> SessionDescription {
        SessionDescription {
            kind: self.kind,
            sdp: self.sdp.clone(),
        }
    }
}

#[derive(Debug)]
enum State {
    Stable,
    CreatingOffer {
        ice_restart: bool,
    },
    SettingLocalOffer {
        offer: String,
    },
    HaveLocalOffer {
        offer: String,
    },
    SettingRemoteAnswer {
        offer: String,
        answer: RemoteEntry,
    },
    SettingRemoteOffer {
        offer: RemoteEntry,
    },
    /// The remote offer is kept (its candidates already applied) to retry after a failure.
    CreatingAnswer {
        offer: RemoteEntry,
    },
    SettingLocalAnswer {
        offer: RemoteEntry,
        answer: String,
    },
    /// `apply`: a remote offer to apply on the fresh webrtcbin.
    Rebuilding {
        apply: Option<RemoteEntry>,
    },
    Failed,
}

/// What became of the last remote description received, once it left the queue.
#[derive(Debug)]
enum Fate {
    NoneYet,
    Applied,
    Ignored { ufrag: Option<String> },
}

/// The remote ICE session (one ufrag) our peer connection talks to.
#[derive(Debug)]
struct RemoteSession {
    ufrag: Option<String>,
    /// Every candidate of this session received so far: added to the current webrtcbin, or to
    /// be replayed when this session is applied on a fresh one.
    candidates: Vec<Candidate>,
    /// Arrived while a set-remote-description was in flight; added after it if it continues
    /// this session, dropped otherwise.
    held: Vec<Candidate>,
}

/// An ICE restart we owe: satisfied once a description with new ICE credentials went either
/// way (we sent one with another ufrag, or the remote's applied one has another ufrag).
#[derive(Debug)]
struct IceRestart {
    stale_local: Option<String>,
    stale_remote: Option<String>,
    /// The webrtcbin was rebuilt since: its credentials are new already.
    rebuilt: bool,
}

/// The negotiation state of one remote peer. See the module documentation.
#[derive(Debug)]
pub struct Machine {
    polite: bool,
    options: Options,
    state: State,
    /// Remote descriptions not yet acted on, in arrival order.
    inbox: VecDeque<RemoteEntry>,
    /// A local change not yet covered by an offer we started.
    negotiation_needed: bool,
    /// The current webrtcbin is fresh and the remote has not seen its transport yet.
    announce_transport: bool,
    ice_restart: Option<IceRestart>,
    /// We sent an offer and have not received its final answer.
    offer_outstanding: bool,
    /// We abandoned a sent offer for the remote offer with this arrival number; an answer to
    /// our offer may still come (then the remote rolled that offer back).
    abandoned_for: Option<u64>,
    /// The remote offer being applied or answered was withdrawn by the remote: stop at the
    /// next completion.
    answer_withdrawn: bool,
    /// Remote descriptions received so far.
    received: u64,
    fate: Fate,
    /// Remote candidates that arrived before any remote description.
    orphans: Vec<Candidate>,
    session: Option<RemoteSession>,
    /// The transport of the remote description applied on the current webrtcbin.
    bin_remote: Option<Transport>,
    /// The current webrtcbin's latest local description has been sent.
    local_sent: bool,
    /// The ufrag of the local description given to the current webrtcbin (set or being set):
    /// the credentials its ICE agent uses.
    bin_local_ufrag: Option<String>,
    /// Local candidates waiting for their description to be sent.
    held_local: Vec<Candidate>,
    dtls_role: Option<DtlsRole>,
    /// The media sections (mids) the current webrtcbin has negotiated, in order; after a
    /// rebuild whose fresh webrtcbin offers, the session's (its offer must keep them all).
    negotiated_mids: Vec<String>,
    /// Our description and the remote's of the last completed exchange, as on the wire: the
    /// session a rebuilt webrtcbin that offers must continue (see [`Machine::negotiated_session`]).
    negotiated: Option<(String, String)>,
    /// Per mid, the remote direction the current webrtcbin was first given. webrtcbin 1.22
    /// fails any renegotiation that changes a section's direction ("transceiver direction
    /// changes are not implemented"), so remote descriptions reach it with these directions;
    /// our answers on the wire carry the true ones.
    pinned_directions: Vec<(String, sdp::Direction)>,
    /// Per mid, the direction the current webrtcbin's transceiver settled on in the last
    /// exchange. webrtcbin 1.22 lets it change only to inactive; an answer to our offer reaches
    /// webrtcbin with a direction that keeps it (see `Machine::answer_for_webrtcbin`).
    settled_directions: Vec<(String, sdp::Direction)>,
    /// The section directions of the remote description last given to webrtcbin.
    given_directions: Vec<(String, sdp::Direction)>,
    /// The mids we have sent on in some exchange (on any webrtcbin): sections with our media.
    sending_mids: Vec<String>,
    /// Offers webrtcbin created without a negotiated section, in a row.
    incomplete_offers: u32,
    /// Waiting for [`Event::RetryOffer`]: no offer is started before it.
    offer_retry_pending: bool,
    /// Polite, an exchange just completed: a change of ours pending now waits [`POLITE_TURN`].
    remote_turn: bool,
    /// The current webrtcbin was rebuilt to offer, given the session's sections, and has not
    /// sent its offer yet (its sections are mapped to the session's only then).
    continues_session: bool,
    failures: u32,
    exchanges: u64,
    rebuilds: u64,
    out: Vec<Action>,
}

impl Machine {
    /// A machine for a peer we are `polite` toward (we joined the pool after it).
    pub fn new(polite: bool) -> Self {
        Self::with_options(polite, Options::default())
    }

    /// A machine with explicit assumptions about the media stack.
    pub fn with_options(polite: bool, options: Options) -> Self {
        Machine {
            polite,
            options,
            state: State::Stable,
            inbox: VecDeque::new(),
            negotiation_needed: false,
            announce_transport: false,
            ice_restart: None,
            offer_outstanding: false,
            abandoned_for: None,
            answer_withdrawn: false,
            received: 0,
            fate: Fate::NoneYet,
            orphans: Vec::new(),
            session: None,
            bin_remote: None,
            local_sent: false,
            bin_local_ufrag: None,
            held_local: Vec::new(),
            dtls_role: None,
            negotiated_mids: Vec::new(),
            negotiated: None,
            pinned_directions: Vec::new(),
            settled_directions: Vec::new(),
            given_directions: Vec::new(),
            sending_mids: Vec::new(),
            incomplete_offers: 0,
            offer_retry_pending: false,
            remote_turn: false,
            continues_session: false,
            failures: 0,
            exchanges: 0,
            rebuilds: 0,
            out: Vec::new(),
        }
    }

    /// Whether we are the polite side toward this peer.
    pub fn polite(&self) -> bool {
        self.polite
    }

    /// Where the machine is now.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Stable => Phase::Stable,
            State::CreatingOffer { .. } => Phase::CreatingOffer,
            State::SettingLocalOffer { .. } => Phase::SettingLocalOffer,
            State::HaveLocalOffer { .. } => Phase::HaveLocalOffer,
            State::SettingRemoteAnswer { .. } => Phase::SettingRemoteAnswer,
            State::SettingRemoteOffer { .. } => Phase::SettingRemoteOffer,
            State::CreatingAnswer { .. } => Phase::CreatingAnswer,
            State::SettingLocalAnswer { .. } => Phase::SettingLocalAnswer,
            State::Rebuilding { .. } => Phase::Rebuilding,
            State::Failed => Phase::Failed,
        }
    }

    /// Stable, nothing in flight, nothing queued, nothing owed to the remote.
    pub fn is_settled(&self) -> bool {
        matches!(self.state, State::Stable)
            && self.inbox.is_empty()
            && !self.negotiation_needed
            && !self.announce_transport
            && self.ice_restart.is_none()
    }

    /// Our DTLS role, once the first exchange completed.
    pub fn dtls_role(&self) -> Option<DtlsRole> {
        self.dtls_role
    }

    /// Offer/answer rounds completed with this peer, as it counts them too (see
    /// [`Diagnostic::ExchangeCompleted`]).
    pub fn completed_exchanges(&self) -> u64 {
        self.exchanges
    }

    /// Rebuilds requested so far.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// Our description and the remote's of the last completed exchange, as they went on the
    /// wire (on any webrtcbin). A rebuilt webrtcbin that offers must keep its sections.
    pub fn negotiated_session(&self) -> Option<(&str, &str)> {
        self.negotiated
            .as_ref()
            .map(|(l, r)| (l.as_str(), r.as_str()))
    }

    /// Whether a rebuild is under way whose fresh webrtcbin will offer (rather than answer a
    /// remote offer): then it must be given the session's sections first.
    pub fn rebuilding_to_offer(&self) -> bool {
        matches!(self.state, State::Rebuilding { apply: None })
    }

    /// Feed one event; returns what to do, in order.
    pub fn on(&mut self, event: Event) -> Vec<Action> {
        if matches!(self.state, State::Failed) {
            return Vec::new();
        }
        match event {
            Event::NegotiationNeeded => self.negotiation_needed = true,
            Event::OfferCreated { sdp } => self.on_offer_created(sdp),
            Event::AnswerCreated { sdp } => self.on_answer_created(sdp),
            Event::LocalDescriptionSet => self.on_local_description_set(),
            Event::RemoteDescriptionSet => self.on_remote_description_set(),
            Event::OfferFailed { error } => self.on_failure(Step::CreateOffer, error),
            Event::AnswerFailed { error } => self.on_failure(Step::CreateAnswer, error),
            Event::LocalDescriptionFailed { error } => {
                let step = match self.state {
                    State::SettingLocalAnswer { .. } => Step::SetLocalAnswer,
                    _ => Step::SetLocalOffer,
                };
                self.on_failure(step, error)
            }
            Event::RemoteDescriptionFailed { error } => {
                let step = match self.state {
                    State::SettingRemoteAnswer { .. } => Step::SetRemoteAnswer,
                    _ => Step::SetRemoteOffer,
                };
                self.on_failure(step, error)
            }
            Event::RemoteSdp(description) => self.on_remote_sdp(description),
            Event::RemoteCandidate(candidate) => self.route_remote_candidate(candidate),
            Event::LocalCandidate(candidate) => self.on_local_candidate(candidate),
            Event::IceFailed | Event::IceRestartRequested => self.on_ice_failed(),
            Event::Rebuilt => self.on_rebuilt(),
            Event::RetryOffer => self.offer_retry_pending = false,
        }
        self.drive();
        mem::take(&mut self.out)
    }

    // ----- output helpers -----

    fn emit(&mut self, action: Action) {
        self.out.push(action);
    }

    fn note(&mut self, diagnostic: Diagnostic) {
        self.out.push(Action::Diagnostic(diagnostic));
    }

    fn unexpected(&mut self, event: &'static str) {
        let phase = self.phase();
        self.note(Diagnostic::UnexpectedEvent { event, phase });
    }

    fn take_state(&mut self) -> State {
        mem::replace(&mut self.state, State::Stable)
    }

    // ----- the queue: act on what waits, whenever the machine is at rest -----

    fn drive(&mut self) {
        loop {
            match self.state {
                State::Stable => {
                    if let Some(entry) = self.inbox.pop_front() {
                        self.remote_in_stable(entry);
                        continue;
                    }
                    if self.start_ice_restart_if_due() {
                        return;
                    }
                    if (self.negotiation_needed || self.announce_transport)
                        && !self.offer_retry_pending
                    {
                        if mem::take(&mut self.remote_turn)
                            && !self.announce_transport
                            && !self.options.polite_turn.is_zero()
                        {
                            self.note(Diagnostic::OfferDeferredToRemote);
                            self.offer_retry_pending = true;
                            self.emit(Action::RetryOfferLater(self.options.polite_turn));
                            return;
                        }
                        self.start_offer(false);
                    }
                    // The turn is only for changes that waited for the exchange.
                    self.remote_turn = false;
                    return;
                }
                State::HaveLocalOffer { .. } => {
                    let Some(entry) = self.inbox.pop_front() else {
                        return;
                    };
                    self.remote_in_have_local_offer(entry);
                }
                _ => return,
            }
        }
    }

    fn remote_in_stable(&mut self, entry: RemoteEntry) {
        match entry.kind {
            SdpType::Offer if self.changes_transport(&entry.transport) => {
                self.note(Diagnostic::RemoteTransportChanged);
                self.rebuild(RebuildReason::RemoteTransportChange, Some(entry));
            }
            SdpType::Offer if self.opens_settled_direction(&entry.sdp) => {
                self.rebuild(RebuildReason::DirectionOpened, Some(entry));
            }
            SdpType::Offer if self.continues_session => {
                self.rebuild(RebuildReason::RemoteOfferBeforeOurs, Some(entry));
            }
            SdpType::Offer => {
                let description = self.for_webrtcbin(&entry);
                self.emit(Action::SetRemoteDescription(description));
                self.state = State::SettingRemoteOffer { offer: entry };
            }
            _ => {
                self.note(Diagnostic::StaleAnswerIgnored);
                self.ignore(entry);
            }
        }
    }

    fn remote_in_have_local_offer(&mut self, entry: RemoteEntry) {
        let State::HaveLocalOffer { offer } = self.take_state() else {
            unreachable!("called in HaveLocalOffer only");
        };
        match entry.kind {
            SdpType::Answer | SdpType::Pranswer if !entry.stale => {
                let description = self.answer_for_webrtcbin(&entry, &offer);
                self.emit(Action::SetRemoteDescription(description));
                self.state = State::SettingRemoteAnswer {
                    offer,
                    answer: entry,
                };
            }
            SdpType::Offer if self.polite => {
                // Glare, and we must give way, but webrtcbin 1.22 cannot roll back: answer on a
                // fresh webrtcbin. Our offer is abandoned; its change is offered again later.
                self.negotiation_needed = true;
                self.abandoned_for = Some(entry.seq);
                self.rebuild(RebuildReason::OfferCollision, Some(entry));
            }
            SdpType::Offer => {
                self.state = State::HaveLocalOffer { offer };
                self.note(Diagnostic::RemoteOfferIgnored);
                self.ignore(entry);
            }
            _ => {
                self.state = State::HaveLocalOffer { offer };
                self.note(Diagnostic::StaleAnswerIgnored);
                self.ignore(entry);
            }
        }
    }

    /// Starts an ICE restart if one is owed and the webrtcbin still has the old credentials.
    fn start_ice_restart_if_due(&mut self) -> bool {
        let Some(restart) = &self.ice_restart else {
            return false;
        };
        if restart.rebuilt {
            // A fresh webrtcbin: any description it sends restarts ICE (announce_transport).
            return false;
        }
        if self.options.ice_restart_in_place {
            self.start_offer(true);
        } else {
            self.rebuild(RebuildReason::IceRestart, None);
        }
        true
    }

    fn start_offer(&mut self, ice_restart: bool) {
        // The offer covers every change so far; a later NegotiationNeeded sets the flag again.
        self.negotiation_needed = false;
        self.emit(if ice_restart {
            Action::RestartIce
        } else {
            Action::CreateOffer
        });
        self.state = State::CreatingOffer { ice_restart };
    }

    fn inbox_has_offer(&self) -> bool {
        self.inbox.iter().any(|e| e.kind == SdpType::Offer)
    }

    /// Removes the first queued offer; stale answers queued before it are ignored first, so
    /// that candidate fates stay in arrival order.
    fn take_first_queued_offer(&mut self) -> RemoteEntry {
        loop {
            let entry = self.inbox.pop_front().expect("a queued offer");
            if entry.kind == SdpType::Offer {
                return entry;
            }
            self.note(Diagnostic::StaleAnswerIgnored);
            self.ignore(entry);
        }
    }

    // ----- webrtcbin completions -----

    fn on_offer_created(&mut self, sdp: String) {
        let State::CreatingOffer { ice_restart } = self.state else {
            return self.unexpected("OfferCreated");
        };
        if self.polite && self.inbox_has_offer() {
            // webrtcbin is still stable: drop our offer unset and take the remote one, no
            // rebuild needed. Our change is offered again afterwards.
            self.note(Diagnostic::CreatedOfferDropped);
            self.negotiation_needed = true;
            self.state = State::Stable;
            return;
        }
        let same_credentials = self
            .ice_restart
            .as_ref()
            .is_some_and(|r| r.stale_local.as_deref() == sdp::ice_ufrag(&sdp));
        if ice_restart && same_credentials {
            // webrtcbin ignored the ice-restart option (GStreamer's own source says "FIXME:
            // deal with ICE restarts"): asking again would loop. Restart by a rebuild instead.
            self.note(Diagnostic::IceRestartIgnoredByWebrtcbin);
            self.negotiation_needed = true;
            self.rebuild(RebuildReason::IceRestart, None);
            return;
        }
        let missing: Vec<String> = self
            .negotiated_mids
            .iter()
            .filter(|mid| !sdp::mids(&sdp).any(|m| m == mid.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() && !ice_restart {
            // webrtcbin 1.22 leaves a data section out of its offer until the remote's data
            // channel has opened; setting that offer fails ("m=lines removed"). Wait for it.
            self.note(Diagnostic::OfferMissingSections { missing });
            self.negotiation_needed = true;
            self.state = State::Stable;
            self.incomplete_offers += 1;
            if self.incomplete_offers > MAX_INCOMPLETE_OFFERS {
                self.incomplete_offers = 0;
                self.rebuild(RebuildReason::OperationFailed, None);
            } else {
                self.offer_retry_pending = true;
                self.emit(Action::RetryOfferLater(OFFER_RETRY_DELAY));
            }
            return;
        }
        self.incomplete_offers = 0;
        let offer = sdp::enforce_dtls_role(&sdp, SdpType::Offer, self.dtls_role);
        self.local_sent = false;
        self.bin_local_ufrag = sdp::ice_ufrag(&offer).map(str::to_owned);
        self.emit(Action::SetLocalDescription(SessionDescription {
            kind: SdpType::Offer,
            sdp: offer.clone(),
        }));
        self.state = State::SettingLocalOffer { offer };
    }

    fn on_answer_created(&mut self, sdp: String) {
        if !matches!(self.state, State::CreatingAnswer { .. }) {
            return self.unexpected("AnswerCreated");
        }
        if self.stop_withdrawn_answer() {
            return;
        }
        let State::CreatingAnswer { offer } = self.take_state() else {
            unreachable!("checked above");
        };
        let answer = sdp::enforce_dtls_role(&sdp, SdpType::Answer, self.dtls_role);
        self.local_sent = false;
        self.bin_local_ufrag = sdp::ice_ufrag(&answer).map(str::to_owned);
        self.emit(Action::SetLocalDescription(SessionDescription {
            kind: SdpType::Answer,
            sdp: answer.clone(),
        }));
        self.state = State::SettingLocalAnswer { offer, answer };
    }

    fn on_local_description_set(&mut self) {
        if matches!(self.state, State::SettingLocalAnswer { .. }) && self.stop_withdrawn_answer() {
            return;
        }
        match self.take_state() {
            State::SettingLocalOffer { offer } => {
                if self.polite && self.inbox_has_offer() {
                    // webrtcbin now holds an offer the impolite remote will ignore, and cannot
                    // roll it back: do not send it, answer on a fresh webrtcbin instead.
                    self.note(Diagnostic::UnsentOfferAbandoned);
                    self.negotiation_needed = true;
                    let remote = self.take_first_queued_offer();
                    self.rebuild(RebuildReason::OfferCollision, Some(remote));
                } else {
                    self.send_local(SdpType::Offer, offer.clone());
                    self.offer_outstanding = true;
                    self.state = State::HaveLocalOffer { offer };
                }
            }
            State::SettingLocalAnswer { offer, answer } => {
                let wire = answer_for_wire(&answer, &offer.sdp);
                self.send_local(SdpType::Answer, wire);
                self.exchange_completed(Offerer::Remote, &answer, &offer.sdp);
            }
            other => {
                self.state = other;
                self.unexpected("LocalDescriptionSet");
            }
        }
    }

    fn on_remote_description_set(&mut self) {
        if matches!(self.state, State::SettingRemoteOffer { .. }) && self.stop_withdrawn_answer() {
            return;
        }
        match self.take_state() {
            State::SettingRemoteOffer { mut offer } => {
                self.remote_applied(&mut offer);
                self.emit(Action::CreateAnswer);
                self.state = State::CreatingAnswer { offer };
            }
            State::SettingRemoteAnswer { offer, mut answer } => {
                let changed = self.changes_transport(&answer.transport);
                self.remote_applied(&mut answer);
                if answer.kind == SdpType::Pranswer {
                    self.state = State::HaveLocalOffer { offer };
                    return;
                }
                self.exchange_completed(Offerer::Local, &offer, &answer.sdp);
                if changed {
                    // The remote answered from a new transport (a polite poolgate rebuilt to
                    // answer us). The exchange is complete on both sides, but this webrtcbin
                    // cannot follow: offer again from a fresh one.
                    self.note(Diagnostic::RemoteTransportChanged);
                    self.rebuild(RebuildReason::RemoteTransportChange, None);
                }
            }
            other => {
                self.state = other;
                self.unexpected("RemoteDescriptionSet");
            }
        }
    }

    fn on_rebuilt(&mut self) {
        if !matches!(self.state, State::Rebuilding { .. }) {
            return self.unexpected("Rebuilt");
        }
        let State::Rebuilding { apply } = self.take_state() else {
            unreachable!("checked above");
        };
        // A fresh webrtcbin: new ICE credentials and certificate, which the remote has to learn.
        self.announce_transport = true;
        if let Some(restart) = &mut self.ice_restart {
            restart.rebuilt = true;
        }
        match apply {
            Some(offer) => {
                let description = self.for_webrtcbin(&offer);
                self.emit(Action::SetRemoteDescription(description));
                self.state = State::SettingRemoteOffer { offer };
            }
            None => {
                // The fresh webrtcbin offers: a subsequent offer must keep every section of
                // the session, so one without them all is retried like any incomplete offer.
                if let Some((local, _)) = &self.negotiated {
                    self.negotiated_mids = sdp::mids(local).map(str::to_owned).collect();
                    self.continues_session = true;
                }
                self.state = State::Stable
            }
        }
    }

    fn on_failure(&mut self, step: Step, error: String) {
        let matches_step = matches!(
            (&self.state, step),
            (State::CreatingOffer { .. }, Step::CreateOffer)
                | (State::SettingLocalOffer { .. }, Step::SetLocalOffer)
                | (State::SettingRemoteAnswer { .. }, Step::SetRemoteAnswer)
                | (State::SettingRemoteOffer { .. }, Step::SetRemoteOffer)
                | (State::CreatingAnswer { .. }, Step::CreateAnswer)
                | (State::SettingLocalAnswer { .. }, Step::SetLocalAnswer)
        );
        if !matches_step {
            return self.unexpected(match step {
                Step::CreateOffer => "OfferFailed",
                Step::CreateAnswer => "AnswerFailed",
                Step::SetLocalOffer | Step::SetLocalAnswer => "LocalDescriptionFailed",
                Step::SetRemoteAnswer | Step::SetRemoteOffer => "RemoteDescriptionFailed",
            });
        }
        self.failures += 1;
        self.note(Diagnostic::OperationFailed {
            step,
            error: error.clone(),
        });
        if self.failures > self.options.max_consecutive_failures {
            self.state = State::Failed;
            self.emit(Action::Failed {
                reason: format!(
                    "{} failed operations in a row, the last one {step:?}: {error}",
                    self.failures
                ),
            });
            return;
        }
        match self.take_state() {
            State::CreatingOffer { .. } | State::SettingLocalOffer { .. } => {
                // Offer again from a fresh webrtcbin.
                self.negotiation_needed = true;
                self.rebuild(RebuildReason::OperationFailed, None);
            }
            State::SettingRemoteAnswer { answer, .. } => {
                // The remote believes the exchange done (and so does this count); a fresh
                // webrtcbin offers again.
                self.count_exchange(Offerer::Local, false);
                self.drop_remote(answer.candidates.len(), DropReason::IgnoredDescription);
                self.fate = Fate::Ignored {
                    ufrag: answer.transport.ufrag,
                };
                self.negotiation_needed = true;
                self.rebuild(RebuildReason::OperationFailed, None);
            }
            State::SettingRemoteOffer { offer }
            | State::CreatingAnswer { offer }
            | State::SettingLocalAnswer { offer, .. } => {
                // The remote waits for our answer: apply its offer again on a fresh webrtcbin
                // (candidates already applied are replayed from the session log), unless the
                // remote withdrew it meanwhile.
                let retry = if self.answer_withdrawn {
                    self.ignore(offer);
                    None
                } else {
                    Some(offer)
                };
                self.rebuild(RebuildReason::OperationFailed, retry);
            }
            State::Stable | State::HaveLocalOffer { .. } | State::Rebuilding { .. } => {
                unreachable!("matched a step in flight above")
            }
            State::Failed => unreachable!("Failed handled in on()"),
        }
    }

    // ----- signalling input -----

    fn on_remote_sdp(&mut self, description: SessionDescription) {
        let SessionDescription { kind, sdp } = description;
        if kind == SdpType::Rollback {
            return self.on_remote_rollback();
        }
        let stale = kind != SdpType::Offer && !self.offer_outstanding;
        if kind == SdpType::Answer && !stale {
            self.offer_outstanding = false;
        }
        if kind == SdpType::Answer && stale {
            if let Some(withdrawn) = self.abandoned_for.take() {
                // Both sides gave way: the round of our abandoned offer did complete, on the
                // remote's side, and the remote rolled back the offer we gave way to.
                self.note(Diagnostic::RemoteAnsweredAbandonedOffer);
                self.count_exchange(Offerer::Local, false);
                self.withdraw_remote_offer(withdrawn);
            }
        }
        self.received += 1;
        let entry = RemoteEntry {
            seq: self.received,
            kind,
            transport: Transport::of(&sdp),
            sdp,
            stale,
            // Candidates that came before any description belong to the first one.
            candidates: mem::take(&mut self.orphans),
        };
        self.inbox.push_back(entry);
    }

    /// rtcpool never sends one (its rollbacks are implicit). The remote withdraws its last
    /// offer: dropped if still queued, else handled like an offer the remote rolled back while
    /// we answer it. Anything else would need a rollback webrtcbin 1.22 cannot do.
    fn on_remote_rollback(&mut self) {
        if self.inbox.back().map(|e| e.kind) == Some(SdpType::Offer) {
            let withdrawn = self.inbox.pop_back().expect("checked above");
            self.note(Diagnostic::RemoteOfferWithdrawn);
            // Later candidates follow the description the remote went back to, which is again
            // the last one received before them: routing needs no change.
            self.drop_remote(withdrawn.candidates.len(), DropReason::IgnoredDescription);
        } else if let Some(seq) = self
            .offer_being_answered()
            .filter(|_| self.inbox.is_empty())
        {
            self.note(Diagnostic::RemoteOfferWithdrawn);
            self.withdraw_remote_offer(seq);
        } else {
            self.note(Diagnostic::RemoteRollbackIgnored);
        }
    }

    /// The arrival number of the remote offer we are applying or answering, if any.
    fn offer_being_answered(&self) -> Option<u64> {
        match &self.state {
            State::Rebuilding { apply: Some(offer) }
            | State::SettingRemoteOffer { offer }
            | State::CreatingAnswer { offer }
            | State::SettingLocalAnswer { offer, .. } => Some(offer.seq),
            _ => None,
        }
    }

    /// The remote withdrew offer `seq` (rolled it back). If we are still on the way to
    /// answering it, we stop: an answer now would reach the remote when it expects none, or
    /// worse, when it waits for the answer to a newer offer, and be taken for that one. Not
    /// applied yet: dropped. Held by webrtcbin: the webrtcbin is replaced at the next
    /// completion, and our answer is never sent. Either way the fresh webrtcbin offers.
    /// Already answered: nothing left to stop; the offer we owe repairs the rest.
    fn withdraw_remote_offer(&mut self, seq: u64) {
        if self.offer_being_answered() != Some(seq) {
            return;
        }
        if let State::Rebuilding { apply } = &mut self.state {
            let withdrawn = apply.take().expect("offer_being_answered checked it");
            self.ignore(withdrawn);
        } else {
            self.answer_withdrawn = true;
        }
    }

    /// At a completion on the way to answering a withdrawn remote offer: replace the
    /// webrtcbin that holds it instead of going on.
    fn stop_withdrawn_answer(&mut self) -> bool {
        if !self.answer_withdrawn {
            return false;
        }
        self.answer_withdrawn = false;
        match self.take_state() {
            State::SettingRemoteOffer { offer } => self.ignore(offer),
            State::CreatingAnswer { .. } | State::SettingLocalAnswer { .. } => {}
            other => unreachable!("answer_withdrawn is set while answering only, not {other:?}"),
        }
        self.rebuild(RebuildReason::RemoteOfferWithdrawn, None);
        true
    }

    fn on_ice_failed(&mut self) {
        let ice_ran = self.bin_remote.is_some() && self.bin_local_ufrag.is_some();
        if matches!(self.state, State::Rebuilding { .. }) || !ice_ran {
            return self.note(Diagnostic::IceFailedIgnored);
        }
        if self.ice_restart.is_some() {
            return; // already owed
        }
        self.ice_restart = Some(IceRestart {
            stale_local: self.bin_local_ufrag.clone(),
            stale_remote: self.bin_remote.as_ref().and_then(|t| t.ufrag.clone()),
            rebuilt: false,
        });
        let at_rest = matches!(self.state, State::Stable) && self.inbox.is_empty();
        if !at_rest {
            self.note(Diagnostic::IceRestartDeferred);
        }
    }

    fn on_local_candidate(&mut self, candidate: Candidate) {
        if matches!(self.state, State::Rebuilding { .. }) {
            self.note(Diagnostic::LocalCandidatesDropped { count: 1 });
        } else if self.local_sent {
            self.emit(Action::SendCandidate(candidate));
        } else {
            self.held_local.push(candidate);
        }
    }

    // ----- remote candidates -----

    /// The last remote description received, if it is not applied or ignored yet.
    fn pending_entry_mut(&mut self) -> Option<&mut RemoteEntry> {
        if !self.inbox.is_empty() {
            return self.inbox.back_mut();
        }
        match &mut self.state {
            State::SettingRemoteOffer { offer } => Some(offer),
            State::SettingRemoteAnswer { answer, .. } => Some(answer),
            State::Rebuilding { apply: Some(offer) } => Some(offer),
            _ => None,
        }
    }

    fn session_ufrag(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.ufrag.as_deref())
    }

    /// Whether `candidate` is of the live remote ICE session: by the ufrag it states, else by
    /// the ufrag of the description it followed (`followed`).
    fn of_live_session(&self, candidate: &Candidate, followed: Option<&str>) -> bool {
        let Some(live) = self.session_ufrag() else {
            return false;
        };
        match candidate.as_ref().and_then(sdp::candidate_ufrag) {
            Some(stated) => stated == live,
            None => followed == Some(live),
        }
    }

    fn route_remote_candidate(&mut self, candidate: Candidate) {
        let stated = candidate
            .as_ref()
            .and_then(sdp::candidate_ufrag)
            .map(str::to_owned);
        if let Some(entry) = self.pending_entry_mut() {
            let other_session = matches!(
                (&stated, &entry.transport.ufrag),
                (Some(s), Some(e)) if s != e
            );
            if !other_session {
                entry.candidates.push(candidate);
                return;
            }
            // A late candidate of an earlier ICE session than the description it follows.
            return if self.of_live_session(&candidate, None) {
                self.add_session_candidate(candidate)
            } else {
                self.drop_remote(1, DropReason::OtherIceSession)
            };
        }
        match &self.fate {
            Fate::NoneYet => self.orphans.push(candidate),
            Fate::Applied => {
                let other_session = matches!(
                    (stated.as_deref(), self.session_ufrag()),
                    (Some(s), Some(live)) if s != live
                );
                if other_session {
                    self.drop_remote(1, DropReason::OtherIceSession);
                } else {
                    self.add_session_candidate(candidate);
                }
            }
            Fate::Ignored { ufrag } => {
                if self.of_live_session(&candidate, ufrag.as_deref()) {
                    self.add_session_candidate(candidate);
                } else {
                    self.drop_remote(1, DropReason::IgnoredDescription);
                }
            }
        }
    }

    /// A candidate of the live remote session: added now if the current webrtcbin has that
    /// session, held while a set-remote-description is in flight, else kept for replay.
    fn add_session_candidate(&mut self, candidate: Candidate) {
        let on_bin = match (&self.session, &self.bin_remote) {
            (Some(s), Some(b)) => s.ufrag == b.ufrag,
            _ => false,
        };
        let remote_in_flight = matches!(
            self.state,
            State::SettingRemoteOffer { .. } | State::SettingRemoteAnswer { .. }
        );
        let Some(session) = self.session.as_mut() else {
            return self.drop_remote(1, DropReason::OtherIceSession);
        };
        if on_bin && remote_in_flight {
            session.held.push(candidate);
        } else if on_bin {
            session.candidates.push(candidate.clone());
            self.emit(Action::AddRemoteCandidate(candidate));
        } else {
            session.candidates.push(candidate);
        }
    }

    /// A remote description was applied on the current webrtcbin: update the session and add
    /// the candidates that wait for it, in order.
    fn remote_applied(&mut self, entry: &mut RemoteEntry) {
        let transport = entry.transport.clone();
        let continuing = self
            .session
            .as_ref()
            .is_some_and(|s| s.ufrag == transport.ufrag);
        let was_on_bin = self
            .bin_remote
            .as_ref()
            .is_some_and(|b| b.ufrag == transport.ufrag);
        if self
            .ice_restart
            .as_ref()
            .is_some_and(|r| r.stale_remote != transport.ufrag)
        {
            self.ice_restart = None; // the remote restarted ICE
        }
        self.bin_remote = Some(transport.clone());
        self.fate = Fate::Applied;
        if !continuing {
            // The remote restarted ICE (or this is the first description): the old session's
            // candidates are of no use any more.
            if let Some(old) = self.session.take() {
                if !old.held.is_empty() {
                    self.drop_remote(old.held.len(), DropReason::OtherIceSession);
                }
            }
            self.session = Some(RemoteSession {
                ufrag: transport.ufrag,
                candidates: Vec::new(),
                held: Vec::new(),
            });
        }
        let session = self.session.as_mut().expect("set above");
        let mut adds = Vec::new();
        if continuing && !was_on_bin {
            // A fresh webrtcbin continuing the remote's ICE session: the remote will not
            // trickle those candidates again.
            adds.extend(session.candidates.iter().cloned());
        }
        let held = mem::take(&mut session.held);
        let new = mem::take(&mut entry.candidates);
        adds.extend(held.iter().cloned());
        adds.extend(new.iter().cloned());
        session.candidates.extend(held);
        session.candidates.extend(new);
        for candidate in adds {
            self.emit(Action::AddRemoteCandidate(candidate));
        }
    }

    /// A remote description that will not be applied; its candidates are dropped, unless they
    /// are of the live ICE session.
    fn ignore(&mut self, mut entry: RemoteEntry) {
        let followed = entry.transport.ufrag.clone();
        let mut dropped = 0;
        for candidate in mem::take(&mut entry.candidates) {
            if self.of_live_session(&candidate, followed.as_deref()) {
                self.add_session_candidate(candidate);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.drop_remote(dropped, DropReason::IgnoredDescription);
        }
        self.fate = Fate::Ignored { ufrag: followed };
    }

    fn drop_remote(&mut self, count: usize, reason: DropReason) {
        if count > 0 {
            self.note(Diagnostic::RemoteCandidatesDropped { count, reason });
        }
    }

    // ----- local descriptions, rebuilds, exchanges -----

    /// Whether `remote` names a transport the current webrtcbin cannot switch to.
    fn changes_transport(&self, remote: &Transport) -> bool {
        let Some(current) = &self.bin_remote else {
            return false; // a fresh webrtcbin takes any transport
        };
        current.fingerprint != remote.fingerprint
            || (current.ufrag != remote.ufrag && !self.options.ice_restart_in_place)
    }

    fn send_local(&mut self, kind: SdpType, sdp: String) {
        let ufrag = sdp::ice_ufrag(&sdp).map(str::to_owned);
        if self
            .ice_restart
            .as_ref()
            .is_some_and(|r| r.stale_local != ufrag)
        {
            self.ice_restart = None; // our credentials are new
        }
        if kind == SdpType::Offer {
            // From now on an answer is taken for this offer.
            self.abandoned_for = None;
            self.continues_session = false;
        }
        self.local_sent = true;
        self.announce_transport = false;
        self.emit(Action::SendSdp(SessionDescription { kind, sdp }));
        for candidate in mem::take(&mut self.held_local) {
            self.emit(Action::SendCandidate(candidate));
        }
    }

    /// A remote description as the current webrtcbin must see it: every section's direction
    /// as first given to this webrtcbin.
    fn for_webrtcbin(&mut self, entry: &RemoteEntry) -> SessionDescription {
        let mut changed = Vec::new();
        for (mid, wire) in sdp::directions(&entry.sdp) {
            match self.pinned_directions.iter().find(|(m, _)| *m == mid) {
                Some((_, pinned)) if *pinned != wire => changed.push((mid, wire, *pinned)),
                Some(_) => {}
                None => self.pinned_directions.push((mid, wire)),
            }
        }
        self.pinned(entry, changed)
    }

    /// Whether the remote `offer` wants media to flow where the current webrtcbin settled a
    /// section without it: the remote sends and we settled on not receiving, or the remote
    /// receives a section we send on and we settled on not sending. Pinning would keep that
    /// media off; only a fresh webrtcbin can take it.
    fn opens_settled_direction(&self, offer: &str) -> bool {
        sdp::directions(offer).into_iter().any(|(mid, wire)| {
            let Some((_, settled)) = self.settled_directions.iter().find(|(m, _)| *m == mid) else {
                return false;
            };
            let receive = wire.sends() && !settled.receives();
            let send = wire.receives() && !settled.sends() && self.sending_mids.contains(&mid);
            receive || send
        })
    }

    /// A remote answer to `offer` (ours, as webrtcbin has it) as the current webrtcbin must see
    /// it. Pinning to the first-seen direction is not enough here: webrtcbin settles each
    /// transceiver from our offered direction and the answer's, refuses some pairs outright
    /// (both recvonly), and refuses any settled direction other than the previous one or
    /// inactive. So each section gets the wire direction if that keeps the transceiver where it
    /// is, else the first candidate that does; a section with no such direction keeps the wire
    /// one and webrtcbin decides (a failure there is repaired by a rebuild).
    fn answer_for_webrtcbin(&mut self, entry: &RemoteEntry, offer: &str) -> SessionDescription {
        use sdp::Direction::{Inactive, RecvOnly, SendOnly, SendRecv};
        let ours = sdp::directions(offer);
        let mut changed = Vec::new();
        for (mid, wire) in sdp::directions(&entry.sdp) {
            let first = self.pinned_directions.iter().find(|(m, _)| *m == mid);
            let first = first.map(|(_, d)| *d);
            if first.is_none() {
                self.pinned_directions.push((mid.clone(), wire));
            }
            let local = ours.iter().find(|(m, _)| *m == mid).map(|(_, d)| *d);
            let settled = self.settled_directions.iter().find(|(m, _)| *m == mid);
            let (Some(local), Some(&(_, settled))) = (local, settled) else {
                continue; // new to this webrtcbin: any direction is its first
            };
            let keeps =
                |remote| sdp::Direction::settled_by_webrtcbin(local, remote) == Some(settled);
            if keeps(wire) {
                continue;
            }
            let candidates = first.into_iter().chain([
                settled.reverse(),
                SendRecv,
                SendOnly,
                RecvOnly,
                Inactive,
            ]);
            if let Some(pinned) = candidates.into_iter().find(|d| keeps(*d)) {
                changed.push((mid, wire, pinned));
            }
        }
        self.pinned(entry, changed)
    }

    /// `entry` with each listed section's direction replaced, noted; its directions are
    /// remembered as what webrtcbin was given.
    fn pinned(
        &mut self,
        entry: &RemoteEntry,
        changed: Vec<(String, sdp::Direction, sdp::Direction)>,
    ) -> SessionDescription {
        let description = if changed.is_empty() {
            entry.description()
        } else {
            let pins: Vec<_> = changed.iter().map(|(m, _, p)| (m.clone(), *p)).collect();
            for (mid, wire, pinned) in changed {
                self.note(Diagnostic::RemoteDirectionPinned { mid, wire, pinned });
            }
            SessionDescription {
                kind: entry.kind,
                sdp: sdp::with_directions(&entry.sdp, &pins),
            }
        };
        self.given_directions = sdp::directions(&description.sdp);
        description
    }

    fn rebuild(&mut self, reason: RebuildReason, apply: Option<RemoteEntry>) {
        self.rebuilds += 1;
        self.continues_session = false;
        // A fresh webrtcbin has negotiated nothing.
        self.negotiated_mids.clear();
        self.pinned_directions.clear();
        self.settled_directions.clear();
        self.given_directions.clear();
        self.offer_retry_pending = false;
        // Whatever offer the old webrtcbin had out is abandoned.
        self.offer_outstanding = false;
        self.answer_withdrawn = false;
        self.local_sent = false;
        self.bin_remote = None;
        self.bin_local_ufrag = None;
        if !self.held_local.is_empty() {
            let count = mem::take(&mut self.held_local).len();
            self.note(Diagnostic::LocalCandidatesDropped { count });
        }
        if let Some(session) = &mut self.session {
            // Held for the old webrtcbin: now kept for replay on the fresh one.
            let held = mem::take(&mut session.held);
            session.candidates.extend(held);
        }
        self.emit(Action::Rebuild { reason });
        self.state = State::Rebuilding { apply };
    }

    fn count_exchange(&mut self, offerer: Offerer, applied: bool) {
        self.exchanges += 1;
        let total = self.exchanges;
        self.note(Diagnostic::ExchangeCompleted {
            offerer,
            total,
            applied,
        });
    }

    fn exchange_completed(&mut self, offerer: Offerer, local: &str, remote: &str) {
        self.state = State::Stable;
        self.failures = 0;
        self.remote_turn = self.polite;
        self.negotiated_mids = sdp::mids(local).map(str::to_owned).collect();
        self.negotiated = Some((local.to_owned(), remote.to_owned()));
        for (mid, ours) in sdp::directions(local) {
            if ours.sends() && !self.sending_mids.contains(&mid) {
                self.sending_mids.push(mid.clone());
            }
            let Some((_, theirs)) = self.given_directions.iter().find(|(m, _)| *m == mid) else {
                continue;
            };
            let Some(settled) = sdp::Direction::settled_by_webrtcbin(ours, *theirs) else {
                continue;
            };
            match self.settled_directions.iter_mut().find(|(m, _)| *m == mid) {
                Some((_, d)) => *d = settled,
                None => self.settled_directions.push((mid, settled)),
            }
        }
        let (local, remote) = (sdp::dtls_setup(local), sdp::dtls_setup(remote));
        match (self.dtls_role, sdp::negotiated_role(local, remote)) {
            (None, Some(role)) => {
                self.dtls_role = Some(role);
                self.note(Diagnostic::DtlsRoleFixed(role));
            }
            (Some(fixed), Some(role)) if fixed == role => {}
            (fixed, _) => self.note(Diagnostic::DtlsRoleConflict {
                fixed,
                local,
                remote,
            }),
        }
        self.count_exchange(offerer, true);
    }
}

/// Our answer as the remote must see it: each section's direction what webrtcbin answered,
/// narrowed to what the remote's real offer allows (webrtcbin saw pinned directions).
fn answer_for_wire(answer: &str, offer: &str) -> String {
    let offered = sdp::directions(offer);
    let fixed: Vec<_> = sdp::directions(answer)
        .into_iter()
        .filter_map(|(mid, ours)| {
            let (_, theirs) = offered.iter().find(|(m, _)| *m == mid)?;
            let proper = ours.intersect(theirs.reverse());
            (proper != ours).then_some((mid, proper))
        })
        .collect();
    if fixed.is_empty() {
        answer.to_string()
    } else {
        sdp::with_directions(answer, &fixed)
    }
}

#[cfg(test)]
#[path = "negotiation_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "negotiation_sim.rs"]
mod sim;
