//! Randomized replays of the negotiation machine, without GStreamer: discrete-event simulations
//! with a seeded random generator, so every failure names a seed that replays it exactly.
//!
//! - **Two poolgate endpoints**: two machines (one polite), each driving a [`FakeBin`] that
//!   behaves like webrtcbin 1.22 where it matters (signalling states, no rollback, no ICE or
//!   DTLS change in a renegotiation, answers always `a=setup:active`, `add-ice-candidate`
//!   queued behind the operation in flight), talking through an in-order signalling channel
//!   with random latency. Both sides negotiate at random times (offers cross in flight), ICE
//!   fails at random times on either or both sides, operations complete in random order.
//! - **rtcpool browser**: a machine against [`Browser`], a model of rtcpool 3.0.2's
//!   `Pool` code on Chrome (operations chain, implicit `setLocalDescription()`, implicit
//!   rollback inside `setRemoteDescription` for the polite side, the impolite side ignoring
//!   colliding offers, `restartIce()` on failure, libwebrtc's DTLS role checks).
//!
//! Every scenario must end with both sides stable and settled, the same number of completed
//! exchanges on each side, no operation started while another was in flight, no candidate added
//! before the remote description it belongs to (nor to another ICE session), every candidate of
//! each side's live ICE session added by the other side, consistent transports and DTLS roles,
//! and every NegotiationNeeded followed by a completed exchange of our own that started after it.

use std::collections::{BTreeMap, VecDeque};

use super::*;

/// Scenarios per configuration. Four configurations run at least this many each.
const SCENARIOS: u64 = 1_500;

// ===== deterministic randomness (SplitMix64) =====

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

// ===== SDP and candidates as the fakes write them =====

fn make_sdp(version: u64, ufrag: &str, fingerprint: &str, setup: DtlsSetup) -> String {
    format!(
        "v=0\r\no=- 7 {version} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:pw\r\n\
         a=fingerprint:{fingerprint}\r\na=setup:{setup}\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\na=bundle-only\r\n\
         a=ice-ufrag:{ufrag}\r\na=setup:{setup}\r\n"
    )
}

/// (ufrag, fingerprint) of a description.
fn transport_of(sdp: &str) -> (String, String) {
    (
        sdp::ice_ufrag(sdp).unwrap_or_default().to_owned(),
        sdp::fingerprint(sdp).unwrap_or_default().to_owned(),
    )
}

/// A candidate of ICE session `ufrag`. The true session is recorded in an `x-origin`
/// extension the machine does not read, so the fakes can check where candidates end up;
/// whether the candidate *states* its ufrag (browsers do, webrtcbin does not) is up to the
/// scenario.
fn make_candidate(ufrag: &str, n: u64, states_ufrag: bool) -> IceCandidate {
    IceCandidate {
        candidate: format!(
            "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host x-origin {ufrag}",
            40_000 + n
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: states_ufrag.then(|| ufrag.to_owned()),
    }
}

fn origin(candidate: &IceCandidate) -> &str {
    let mut tokens = candidate.candidate.split_ascii_whitespace();
    while let Some(t) = tokens.next() {
        if t == "x-origin" {
            return tokens.next().unwrap_or_default();
        }
    }
    ""
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sig {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
    HaveRemotePranswer,
}

// ===== a webrtcbin 1.22, as far as negotiation goes =====

struct FakeBin {
    id: String,
    ufrag: String,
    fingerprint: String,
    in_place: bool,
    restarts: u32,
    version: u64,
    sig: Sig,
    local: Option<String>,
    remote: Option<String>,
    remote_transport: Option<(String, String)>,
    remote_restarted: bool,
    role: Option<DtlsRole>,
    /// Set when a renegotiation asked for a transport change webrtcbin cannot make.
    broken: Option<String>,
    added: Vec<Candidate>,
    gathered: Vec<String>,
    violations: Vec<String>,
}

impl FakeBin {
    fn new(id: String, in_place: bool) -> Self {
        FakeBin {
            ufrag: format!("{id}i0"),
            fingerprint: format!("sha-256 FP-{id}"),
            id,
            in_place,
            restarts: 0,
            version: 0,
            sig: Sig::Stable,
            local: None,
            remote: None,
            remote_transport: None,
            remote_restarted: false,
            role: None,
            broken: None,
            added: Vec::new(),
            gathered: Vec::new(),
            violations: Vec::new(),
        }
    }

    fn violation(&mut self, what: String) {
        self.violations
            .push(format!("webrtcbin {}: {what}", self.id));
    }

    fn new_ufrag(&mut self) {
        self.restarts += 1;
        self.ufrag = format!("{}i{}", self.id, self.restarts);
    }

    fn create_offer(&mut self, ice_restart: bool) -> Result<String, String> {
        if !matches!(self.sig, Sig::Stable | Sig::HaveLocalOffer) {
            return Err(format!("create-offer in {:?}", self.sig));
        }
        if ice_restart && self.in_place {
            self.new_ufrag();
        }
        self.version += 1;
        Ok(make_sdp(
            self.version,
            &self.ufrag,
            &self.fingerprint,
            DtlsSetup::Actpass,
        ))
    }

    fn create_answer(&mut self) -> Result<String, String> {
        if self.sig != Sig::HaveRemoteOffer {
            return Err(format!("create-answer in {:?}", self.sig));
        }
        // _intersect_dtls_setup: webrtcbin does not remember its role (the measured bug).
        let setup = match self.remote.as_deref().and_then(sdp::dtls_setup) {
            Some(DtlsSetup::Active) => DtlsSetup::Passive,
            _ => DtlsSetup::Active,
        };
        if self.remote_restarted {
            self.new_ufrag(); // an answer to an ICE restart restarts too (RFC 8445)
        }
        self.version += 1;
        Ok(make_sdp(
            self.version,
            &self.ufrag,
            &self.fingerprint,
            setup,
        ))
    }

    fn check_own(&mut self, sdp: &str) {
        if transport_of(sdp) != (self.ufrag.clone(), self.fingerprint.clone()) {
            self.violation("asked to set a local description it did not create".into());
        }
    }

    fn set_local(&mut self, d: &SessionDescription) -> Result<(), String> {
        match d.kind {
            SdpType::Offer if matches!(self.sig, Sig::Stable | Sig::HaveLocalOffer) => {
                self.check_own(&d.sdp);
                self.local = Some(d.sdp.clone());
                self.sig = Sig::HaveLocalOffer;
                Ok(())
            }
            SdpType::Answer if self.sig == Sig::HaveRemoteOffer => {
                self.check_own(&d.sdp);
                self.local = Some(d.sdp.clone());
                self.sig = Sig::Stable;
                let remote = self.remote.clone().unwrap_or_default();
                self.negotiate(&d.sdp, &remote);
                Ok(())
            }
            SdpType::Rollback => {
                self.violation("asked for a rollback".into());
                Err(format!(
                    "Not in the correct state ({:?}) for setting local rollback description",
                    self.sig
                ))
            }
            kind => Err(format!(
                "Not in the correct state ({:?}) for setting local {kind:?} description",
                self.sig
            )),
        }
    }

    fn set_remote(&mut self, d: &SessionDescription) -> Result<(), String> {
        match d.kind {
            SdpType::Offer if self.sig == Sig::Stable => {
                self.follow_transport(&d.sdp);
                self.remote = Some(d.sdp.clone());
                self.sig = Sig::HaveRemoteOffer;
                Ok(())
            }
            SdpType::Answer | SdpType::Pranswer
                if matches!(self.sig, Sig::HaveLocalOffer | Sig::HaveRemotePranswer) =>
            {
                self.follow_transport(&d.sdp);
                self.remote = Some(d.sdp.clone());
                if d.kind == SdpType::Answer {
                    self.sig = Sig::Stable;
                    let local = self.local.clone().unwrap_or_default();
                    self.negotiate(&local, &d.sdp);
                } else {
                    self.sig = Sig::HaveRemotePranswer;
                }
                Ok(())
            }
            kind => Err(format!(
                "Not in the correct state ({:?}) for setting remote {kind:?} description",
                self.sig
            )),
        }
    }

    /// webrtcbin 1.22 accepts a description with new ICE credentials or a new certificate but
    /// cannot follow it on its existing transport: the connection would be dead.
    fn follow_transport(&mut self, sdp: &str) {
        let next = transport_of(sdp);
        self.remote_restarted = false;
        if let Some(previous) = &self.remote_transport {
            if previous.1 != next.1 {
                self.broken = Some(format!("DTLS fingerprint changed {previous:?} -> {next:?}"));
            } else if previous.0 != next.0 {
                if self.in_place {
                    self.remote_restarted = true;
                } else {
                    self.broken = Some(format!("ICE credentials changed {previous:?} -> {next:?}"));
                }
            }
        }
        self.remote_transport = Some(next);
    }

    fn negotiate(&mut self, local: &str, remote: &str) {
        let (l, r) = (sdp::dtls_setup(local), sdp::dtls_setup(remote));
        match sdp::negotiated_role(l, r) {
            None => self.violation(format!("illegal a=setup pair: local {l:?}, remote {r:?}")),
            Some(role) => {
                if self.role.is_some_and(|previous| previous != role) {
                    self.violation(format!("DTLS role changed to {role} on a live transport"));
                }
                self.role = Some(role);
            }
        }
    }

    fn add_candidate(&mut self, candidate: &Candidate) {
        match (&self.remote, candidate) {
            (None, _) => self.violation(format!(
                "remote candidate {candidate:?} added before any remote description"
            )),
            (Some(remote), Some(c)) if sdp::ice_ufrag(remote) != Some(origin(c)) => {
                let (live, of) = (sdp::ice_ufrag(remote).map(str::to_owned), origin(c));
                self.violation(format!(
                    "candidate of ICE session {of} added to a webrtcbin whose remote session is {live:?}"
                ));
            }
            _ => {}
        }
        self.added.push(candidate.clone());
    }

    /// The ufrag to gather candidates for, once per set of credentials.
    fn gathering_due(&mut self) -> Option<String> {
        if self.local.is_none() || self.gathered.contains(&self.ufrag) {
            return None;
        }
        self.gathered.push(self.ufrag.clone());
        Some(self.ufrag.clone())
    }
}

// ===== a poolgate endpoint: the machine, its webrtcbin, and the adapter between them =====

#[derive(Debug)]
enum GateOp {
    CreateOffer { ice_restart: bool },
    CreateAnswer,
    SetLocal(SessionDescription),
    SetRemote(SessionDescription),
    Rebuild,
}

struct Gate {
    name: char,
    machine: Machine,
    bin: FakeBin,
    bins_made: u32,
    in_place: bool,
    states_ufrag: bool,
    in_flight: Option<GateOp>,
    /// A promise reply is on its way to the machine.
    reply_pending: bool,
    /// add-ice-candidate calls queued in webrtcbin behind the operation in flight.
    deferred_adds: Vec<Candidate>,
    fail_budget: u32,
    fail_percent: u64,
    injected_failures: u32,
    nn_at: Vec<u64>,
    offer_started: Option<u64>,
    own_offers_completed: Vec<u64>,
    offers_completed: u64,
    answers_completed: u64,
    emitted: Vec<(String, String, Candidate)>,
    candidate_counter: u64,
    violations: Vec<String>,
    dead_bin_violations: Vec<String>,
}

impl Gate {
    fn new(name: char, polite: bool, options: Options, states_ufrag: bool) -> Self {
        Gate {
            name,
            machine: Machine::with_options(polite, options),
            bin: FakeBin::new(format!("{name}0"), options.ice_restart_in_place),
            bins_made: 1,
            in_place: options.ice_restart_in_place,
            states_ufrag,
            in_flight: None,
            reply_pending: false,
            deferred_adds: Vec::new(),
            fail_budget: 0,
            fail_percent: 0,
            injected_failures: 0,
            nn_at: Vec::new(),
            offer_started: None,
            own_offers_completed: Vec::new(),
            offers_completed: 0,
            answers_completed: 0,
            emitted: Vec::new(),
            candidate_counter: 0,
            violations: Vec::new(),
            dead_bin_violations: Vec::new(),
        }
    }
}

// ===== rtcpool 3.0.2's Pool on Chrome =====

#[derive(Debug)]
enum BrowserOp {
    SetRemote(SessionDescription),
    /// `setLocalDescription()` without arguments, from `_negotiate` or from `_onsdp`.
    SetLocal {
        from_negotiate: bool,
    },
    AddCandidate(Candidate),
}

struct Browser {
    polite: bool,
    fingerprint: String,
    ufrags_made: u32,
    /// Chrome's ICE transport credentials; `None` when it has no transport (before its first
    /// description, or after rolling back the initial offer, which destroys the transport).
    transport_ufrag: Option<String>,
    version: u64,
    sig: Sig,
    local: Option<String>,
    remote: Option<String>,
    stable_local: Option<String>,
    stable_remote: Option<String>,
    role: Option<DtlsRole>,
    // rtcpool's per-connection flags
    busy: bool,
    ignore: bool,
    answering: bool,
    // Chrome's operations chain
    chain: VecDeque<BrowserOp>,
    running: bool,
    nn_scheduled: bool,
    // negotiation-needed bookkeeping: tracks added vs tracks in a completed offer of ours
    changes: u32,
    negotiated_changes: u32,
    offer_covers: Option<u32>,
    /// `[[LocalIceCredentialsToReplace]]`: set by restartIce(), emptied once a description
    /// with other credentials is negotiated.
    restart_replaces: Vec<String>,
    gathered: Vec<String>,
    candidate_counter: u64,
    added: Vec<Candidate>,
    emitted: Vec<(String, Candidate)>,
    errors: Vec<String>,
    candidate_errors: u32,
    exchanges: u64,
}

impl Browser {
    fn new(polite: bool) -> Self {
        Browser {
            polite,
            fingerprint: "sha-256 FP-chrome".into(),
            ufrags_made: 0,
            transport_ufrag: None,
            version: 0,
            sig: Sig::Stable,
            local: None,
            remote: None,
            stable_local: None,
            stable_remote: None,
            role: None,
            busy: false,
            ignore: false,
            answering: false,
            chain: VecDeque::new(),
            running: false,
            nn_scheduled: false,
            changes: 0,
            negotiated_changes: 0,
            offer_covers: None,
            restart_replaces: Vec::new(),
            gathered: Vec::new(),
            candidate_counter: 0,
            added: Vec::new(),
            emitted: Vec::new(),
            errors: Vec::new(),
            candidate_errors: 0,
            exchanges: 0,
        }
    }

    fn new_ufrag(&mut self) -> String {
        self.ufrags_made += 1;
        let u = format!("chrome{}", self.ufrags_made);
        self.transport_ufrag = Some(u.clone());
        u
    }

    fn wants_to_negotiate(&self) -> bool {
        self.changes > self.negotiated_changes || !self.restart_replaces.is_empty()
    }

    /// restartIce(): the credentials of the current and pending local descriptions are to be
    /// replaced.
    fn restart_ice(&mut self) {
        self.restart_replaces = [&self.stable_local, &self.local]
            .into_iter()
            .filter_map(|d| d.as_deref().and_then(sdp::ice_ufrag).map(str::to_owned))
            .collect();
    }

    /// The credentials for a new local description: the transport's, unless there is none or
    /// they are to be replaced (or `renew`: the remote restarted).
    fn ufrag_for_description(&mut self, renew: bool) -> String {
        match &self.transport_ufrag {
            Some(u) if !renew && !self.restart_replaces.contains(u) => u.clone(),
            _ => self.new_ufrag(),
        }
    }

    /// libwebrtc's DTLS role rule: the role may only change with a new remote certificate.
    fn take_role(&mut self, role: DtlsRole, remote_sdp: &str) -> Result<(), String> {
        let previous_fp = self
            .stable_remote
            .as_deref()
            .and_then(sdp::fingerprint)
            .map(str::to_owned);
        if let Some(previous) = self.role {
            if previous != role && previous_fp.as_deref() == sdp::fingerprint(remote_sdp) {
                return Err("Failed to set SSL role for the transport.".into());
            }
        }
        self.role = Some(role);
        Ok(())
    }

    fn reach_stable(&mut self) {
        self.sig = Sig::Stable;
        self.stable_local = self.local.clone();
        self.stable_remote = self.remote.clone();
        self.exchanges += 1;
        let ufrag = self
            .local
            .as_deref()
            .and_then(sdp::ice_ufrag)
            .unwrap_or_default();
        if !self.restart_replaces.iter().any(|u| u == ufrag) {
            self.restart_replaces.clear();
        }
    }

    fn set_remote(&mut self, d: &SessionDescription) -> Result<(), String> {
        match d.kind {
            SdpType::Offer => {
                if let Some(role) = self.role {
                    let setup = sdp::dtls_setup(&d.sdp);
                    if (role == DtlsRole::Client && setup == Some(DtlsSetup::Active))
                        || (role == DtlsRole::Server && setup == Some(DtlsSetup::Passive))
                    {
                        return Err(
                            "Offerer must use current negotiated role for setup attribute.".into(),
                        );
                    }
                }
                match self.sig {
                    Sig::HaveLocalOffer => {
                        // The implicit rollback of perfect negotiation's polite side.
                        self.sig = Sig::Stable;
                        self.local = self.stable_local.clone();
                        self.offer_covers = None;
                        self.transport_ufrag = self
                            .stable_local
                            .as_deref()
                            .and_then(sdp::ice_ufrag)
                            .map(str::to_owned);
                    }
                    Sig::Stable => {}
                    other => return Err(format!("Called in wrong state: {other:?}")),
                }
                self.remote = Some(d.sdp.clone());
                self.sig = Sig::HaveRemoteOffer;
                Ok(())
            }
            SdpType::Answer => {
                if self.sig != Sig::HaveLocalOffer {
                    return Err(format!(
                        "Failed to set remote answer sdp: Called in wrong state: {:?}",
                        self.sig
                    ));
                }
                let local = self.local.clone().unwrap_or_default();
                let role = sdp::negotiated_role(sdp::dtls_setup(&local), sdp::dtls_setup(&d.sdp))
                    .ok_or(
                    "Answerer must use either active or passive value for setup attribute.",
                )?;
                self.take_role(role, &d.sdp)?;
                self.remote = Some(d.sdp.clone());
                self.reach_stable();
                if let Some(covered) = self.offer_covers.take() {
                    self.negotiated_changes = self.negotiated_changes.max(covered);
                }
                Ok(())
            }
            kind => Err(format!("unexpected remote {kind:?}")),
        }
    }

    /// `setLocalDescription()`: an offer or an answer, depending on the state at execution.
    fn set_local(&mut self) -> Result<SessionDescription, String> {
        self.version += 1;
        match self.sig {
            Sig::Stable | Sig::HaveLocalOffer => {
                let ufrag = self.ufrag_for_description(false);
                self.offer_covers = Some(self.changes);
                let offer = make_sdp(self.version, &ufrag, &self.fingerprint, DtlsSetup::Actpass);
                self.local = Some(offer.clone());
                self.sig = Sig::HaveLocalOffer;
                Ok(SessionDescription {
                    kind: SdpType::Offer,
                    sdp: offer,
                })
            }
            Sig::HaveRemoteOffer => {
                let remote = self.remote.clone().unwrap_or_default();
                let remote_restarted = self
                    .stable_remote
                    .as_deref()
                    .is_some_and(|s| sdp::ice_ufrag(s) != sdp::ice_ufrag(&remote));
                let ufrag = self.ufrag_for_description(remote_restarted);
                // prefer_passive_role: keep the current role when the offer leaves the choice.
                let setup = match sdp::dtls_setup(&remote) {
                    Some(DtlsSetup::Active) => DtlsSetup::Passive,
                    Some(DtlsSetup::Passive) => DtlsSetup::Active,
                    _ if self.role == Some(DtlsRole::Server) => DtlsSetup::Passive,
                    _ => DtlsSetup::Active,
                };
                let answer = make_sdp(self.version, &ufrag, &self.fingerprint, setup);
                let role = sdp::negotiated_role(Some(setup), sdp::dtls_setup(&remote))
                    .ok_or("illegal setup")?;
                self.take_role(role, &remote)?;
                self.local = Some(answer.clone());
                self.reach_stable();
                Ok(SessionDescription {
                    kind: SdpType::Answer,
                    sdp: answer,
                })
            }
            other => Err(format!("setLocalDescription in {other:?}")),
        }
    }

    fn add_candidate(&mut self, candidate: &Candidate) -> Result<(), String> {
        let Some(remote) = &self.remote else {
            return Err("InvalidStateError: no remote description".into());
        };
        if let Some(c) = candidate {
            if sdp::ice_ufrag(remote) != Some(origin(c)) {
                return Err(format!("Unknown ufrag {}", origin(c)));
            }
        }
        self.added.push(candidate.clone());
        Ok(())
    }
}

// ===== the world =====

enum Wire {
    Sdp(SessionDescription),
    Candidate(Candidate),
}

enum Task {
    GateComplete {
        side: usize,
        bin: String,
    },
    /// A promise reply reaching the machine, a little after webrtcbin did the work.
    GateReply {
        side: usize,
        bin: String,
        event: Event,
    },
    /// ICE fails on the connection; one or both sides notice.
    ConnectionFails,
    Deliver {
        to: usize,
        wire: Wire,
    },
    GateLocalCandidate {
        side: usize,
        bin: String,
        ufrag: String,
    },
    GateNegotiationNeeded {
        side: usize,
    },
    GateIceFailed {
        side: usize,
    },
    /// The adapter's timer for [`Action::RetryOfferLater`] fired.
    GateRetryOffer {
        side: usize,
        bin: String,
    },
    BrowserOpDone,
    BrowserNegotiationNeeded,
    BrowserCandidate {
        ufrag: String,
    },
    BrowserAddsTrack,
    BrowserIceFailed,
}

enum Peer {
    Gate(Box<Gate>),
    Browser(Box<Browser>),
}

struct World {
    rng: Rng,
    now: u64,
    seq: u64,
    tasks: BTreeMap<(u64, u64), Task>,
    /// Per direction (index = sender), the time the channel delivers its last message.
    wire_free: [u64; 2],
    peers: [Peer; 2],
    /// ICE failures noticed: by which side, when, and the (local, remote) ufrags of the
    /// session that side's ICE ran on.
    ice_failures: Vec<(usize, u64, (String, String))>,
    /// How often each collision path, rebuild reason and drop was taken.
    tally: Tally,
    trace: Vec<String>,
}

type Tally = BTreeMap<String, u64>;

/// The knobs of one configuration.
#[derive(Clone, Copy)]
struct Config {
    in_place: bool,
    failures: bool,
    ice_failures: bool,
    /// The polite machine offers a change that waited for an exchange at once, without
    /// leaving the remote its turn: the collisions that turn avoids still have to converge.
    no_polite_turn: bool,
}

impl World {
    fn at(&mut self, time: u64, task: Task) {
        self.seq += 1;
        self.tasks.insert((time, self.seq), task);
    }

    fn after(&mut self, delay: u64, task: Task) {
        self.at(self.now + delay, task);
    }

    fn log(&mut self, line: String) {
        self.trace.push(format!("{:>5} {line}", self.now));
    }

    fn gate(&mut self, side: usize) -> &mut Gate {
        match &mut self.peers[side] {
            Peer::Gate(g) => g,
            Peer::Browser(_) => panic!("side {side} is the browser"),
        }
    }

    fn browser(&mut self) -> &mut Browser {
        match &mut self.peers[1] {
            Peer::Browser(b) => b,
            Peer::Gate(_) => panic!("side 1 is a gate"),
        }
    }

    /// The (local, remote) ufrags of the ICE session `side` runs on now.
    fn ice_session(&self, side: usize) -> (String, String) {
        let ufrag = |sdp: &Option<String>| {
            sdp.as_deref()
                .and_then(sdp::ice_ufrag)
                .unwrap_or_default()
                .to_owned()
        };
        match &self.peers[side] {
            Peer::Gate(g) => (ufrag(&g.bin.local), ufrag(&g.bin.remote)),
            Peer::Browser(b) => (ufrag(&b.stable_local), ufrag(&b.stable_remote)),
        }
    }

    fn record_ice_failure(&mut self, side: usize) {
        let session = self.ice_session(side);
        self.ice_failures.push((side, self.now, session));
    }

    /// Both ends usually notice a failed connection, a little apart; sometimes only one does.
    fn connection_fails(&mut self) {
        let (first, second) = match self.rng.between(0, 9) {
            0 | 1 => (true, false),
            2 | 3 => (false, true),
            _ => (true, true),
        };
        for (side, notices) in [(0, first), (1, second)] {
            if notices {
                let delay = self.rng.between(0, 30);
                let task = match self.peers[side] {
                    Peer::Gate(_) => Task::GateIceFailed { side },
                    Peer::Browser(_) => Task::BrowserIceFailed,
                };
                self.after(delay, task);
            }
        }
    }

    fn send(&mut self, from: usize, wire: Wire) {
        // In order per direction, random latency.
        let latency = self.rng.between(1, 15);
        let time = (self.now + latency).max(self.wire_free[from]);
        self.wire_free[from] = time;
        self.at(time, Task::Deliver { to: 1 - from, wire });
    }

    // ----- the gate adapter -----

    fn gate_event(&mut self, side: usize, event: Event) {
        let name = self.gate(side).name;
        self.log(format!("{name} <- {}", short_event(&event)));
        let actions = self.gate(side).machine.on(event);
        for action in actions {
            self.gate_action(side, action);
        }
    }

    fn gate_action(&mut self, side: usize, action: Action) {
        let now = self.now;
        let name = self.gate(side).name;
        if !matches!(action, Action::Diagnostic(_)) {
            self.log(format!("{name} -> {}", short_action(&action)));
        }
        match action {
            Action::Diagnostic(Diagnostic::ExchangeCompleted {
                offerer, applied, ..
            }) => {
                let g = self.gate(side);
                match offerer {
                    Offerer::Local => {
                        g.offers_completed += 1;
                        if applied {
                            let started = g.offer_started.expect("an offer was started");
                            g.own_offers_completed.push(started);
                        }
                    }
                    Offerer::Remote => g.answers_completed += 1,
                }
            }
            Action::Diagnostic(d) => {
                let name = format!("{d:?}");
                let name = name.split([' ', '(', '{']).next().unwrap_or_default();
                *self.tally.entry(name.to_owned()).or_default() += 1;
            }
            Action::CreateOffer => self.start_op(side, GateOp::CreateOffer { ice_restart: false }),
            Action::RestartIce => self.start_op(side, GateOp::CreateOffer { ice_restart: true }),
            Action::CreateAnswer => self.start_op(side, GateOp::CreateAnswer),
            Action::SetLocalDescription(d) => self.start_op(side, GateOp::SetLocal(d)),
            Action::SetRemoteDescription(d) => self.start_op(side, GateOp::SetRemote(d)),
            Action::Rebuild { reason } => {
                *self
                    .tally
                    .entry(format!("Rebuild::{reason:?}"))
                    .or_default() += 1;
                let g = self.gate(side);
                // The adapter disconnects the old webrtcbin: its pending completions,
                // candidates and queued add-ice-candidate calls are gone.
                let old = std::mem::replace(
                    &mut g.bin,
                    FakeBin::new(format!("{}{}", g.name, g.bins_made), g.in_place),
                );
                g.bins_made += 1;
                g.deferred_adds.clear();
                g.dead_bin_violations.extend(old.violations);
                self.start_op(side, GateOp::Rebuild);
            }
            Action::SendSdp(d) => self.send(side, Wire::Sdp(d)),
            Action::SendCandidate(c) => self.send(side, Wire::Candidate(c)),
            Action::AddRemoteCandidate(c) => {
                let g = self.gate(side);
                match g.in_flight {
                    Some(GateOp::Rebuild) => g
                        .violations
                        .push(format!("{name}: candidate added while rebuilding at {now}")),
                    Some(_) => g.deferred_adds.push(c),
                    None => g.bin.add_candidate(&c),
                }
            }
            Action::Failed { reason } => {
                let g = self.gate(side);
                g.violations
                    .push(format!("{name}: machine gave up: {reason}"));
            }
            Action::RetryOfferLater(delay) => {
                let bin = self.gate(side).bin.id.clone();
                let delay = delay.as_millis() as u64;
                self.after(delay, Task::GateRetryOffer { side, bin });
            }
        }
    }

    fn start_op(&mut self, side: usize, op: GateOp) {
        let now = self.now;
        let latency = match op {
            GateOp::Rebuild => self.rng.between(5, 40),
            GateOp::SetRemote(_) => self.rng.between(1, 30),
            _ => self.rng.between(0, 12),
        };
        let g = self.gate(side);
        if let Some(other) = &g.in_flight {
            let name = g.name;
            g.violations.push(format!(
                "{name}: {op:?} started while {other:?} was in flight at {now}"
            ));
        }
        if matches!(op, GateOp::CreateOffer { .. }) {
            g.offer_started = Some(now);
        }
        g.in_flight = Some(op);
        let bin = g.bin.id.clone();
        self.after(latency, Task::GateComplete { side, bin });
    }

    fn complete_op(&mut self, side: usize, bin: String) {
        let inject = {
            let (budget, p) = (self.gate(side).fail_budget, self.gate(side).fail_percent);
            budget > 0 && self.rng.percent(p)
        };
        let g = self.gate(side);
        if g.bin.id != bin {
            return; // a completion of a webrtcbin the adapter already replaced
        }
        let Some(op) = g.in_flight.take() else {
            let name = g.name;
            g.violations
                .push(format!("{name}: a completion with nothing in flight"));
            return;
        };
        let inject = inject && !matches!(op, GateOp::Rebuild);
        if inject {
            g.fail_budget -= 1;
            g.injected_failures += 1;
        }
        let error = || "injected failure".to_owned();
        let mut gather = None;
        let mut negotiation_needed_after_rebuild = false;
        let event = match op {
            _ if inject => match op {
                GateOp::CreateOffer { .. } => Event::OfferFailed { error: error() },
                GateOp::CreateAnswer => Event::AnswerFailed { error: error() },
                GateOp::SetLocal(_) => Event::LocalDescriptionFailed { error: error() },
                _ => Event::RemoteDescriptionFailed { error: error() },
            },
            GateOp::CreateOffer { ice_restart } => match g.bin.create_offer(ice_restart) {
                Ok(sdp) => Event::OfferCreated { sdp },
                Err(e) => {
                    g.violations.push(e.clone());
                    Event::OfferFailed { error: e }
                }
            },
            GateOp::CreateAnswer => match g.bin.create_answer() {
                Ok(sdp) => Event::AnswerCreated { sdp },
                Err(e) => {
                    g.violations.push(e.clone());
                    Event::AnswerFailed { error: e }
                }
            },
            GateOp::SetLocal(d) => match g.bin.set_local(&d) {
                Ok(()) => {
                    gather = g.bin.gathering_due();
                    Event::LocalDescriptionSet
                }
                Err(e) => {
                    g.violations.push(e.clone());
                    Event::LocalDescriptionFailed { error: e }
                }
            },
            GateOp::SetRemote(d) => match g.bin.set_remote(&d) {
                Ok(()) => Event::RemoteDescriptionSet,
                Err(e) => {
                    g.violations.push(e.clone());
                    Event::RemoteDescriptionFailed { error: e }
                }
            },
            GateOp::Rebuild => {
                negotiation_needed_after_rebuild = true;
                Event::Rebuilt
            }
        };
        // add-ice-candidate calls queued behind the operation run right after it.
        for c in std::mem::take(&mut g.deferred_adds) {
            g.bin.add_candidate(&c);
        }
        if let Some(ufrag) = gather {
            self.gather_gate(side, ufrag);
        }
        if negotiation_needed_after_rebuild && self.rng.percent(50) {
            // The fresh webrtcbin fires on-negotiation-needed when the media is added back.
            let delay = self.rng.between(0, 10);
            self.after(delay, Task::GateNegotiationNeeded { side });
        }
        // The promise reply reaches the machine a little later: webrtcbin may already have
        // emitted candidates for a description the machine does not know is set.
        let delay = self.rng.between(0, 6);
        let g = self.gate(side);
        g.reply_pending = true;
        let bin = g.bin.id.clone();
        self.after(delay, Task::GateReply { side, bin, event });
    }

    fn gather_gate(&mut self, side: usize, ufrag: String) {
        let count = self.rng.between(1, 3);
        let bin = self.gate(side).bin.id.clone();
        let mut time = self.now;
        // `count` candidates, then end-of-candidates; made when they fire.
        for _ in 0..=count {
            time += self.rng.between(0, 20);
            self.at(
                time,
                Task::GateLocalCandidate {
                    side,
                    bin: bin.clone(),
                    ufrag: ufrag.clone(),
                },
            );
        }
    }

    fn gate_local_candidate(&mut self, side: usize, bin: String, ufrag: String, last: bool) {
        let g = self.gate(side);
        if g.bin.id != bin || g.bin.ufrag != ufrag {
            return; // gathering of a replaced webrtcbin, or of credentials since restarted
        }
        let candidate = if last {
            None
        } else {
            g.candidate_counter += 1;
            let n = g.candidate_counter + 1_000 * u64::from(g.name as u8 - b'A');
            Some(make_candidate(&ufrag, n, g.states_ufrag))
        };
        g.emitted.push((bin, ufrag, candidate.clone()));
        self.gate_event(side, Event::LocalCandidate(candidate));
    }

    // ----- the browser -----

    fn browser_kick(&mut self) {
        let b = self.browser();
        if b.running || b.chain.is_empty() {
            return;
        }
        b.running = true;
        let latency = self.rng.between(1, 15);
        self.after(latency, Task::BrowserOpDone);
    }

    fn browser_op_done(&mut self) {
        let b = self.browser();
        b.running = false;
        let op = b.chain.pop_front().expect("an operation ran");
        match op {
            BrowserOp::SetRemote(d) => {
                let result = b.set_remote(&d);
                self.log(format!(
                    "browser setRemoteDescription({:?}) -> {result:?}",
                    d.kind
                ));
                let b = self.browser();
                match result {
                    Ok(()) => {
                        // rtcpool _onsdp, after `await setRemoteDescription`
                        b.answering = false;
                        if d.kind == SdpType::Offer {
                            b.chain.push_back(BrowserOp::SetLocal {
                                from_negotiate: false,
                            });
                        }
                    }
                    Err(e) => b.errors.push(e),
                }
            }
            BrowserOp::SetLocal { from_negotiate } => {
                let result = b.set_local();
                self.log(format!(
                    "browser setLocalDescription() -> {:?}",
                    result.as_ref().map(|d| d.kind)
                ));
                match result {
                    Ok(d) => {
                        let ufrag = sdp::ice_ufrag(&d.sdp).unwrap_or_default().to_owned();
                        // the continuation: send conn.localDescription
                        self.send(1, Wire::Sdp(d));
                        if from_negotiate {
                            self.browser().busy = false;
                        }
                        self.gather_browser(ufrag);
                    }
                    Err(e) => self.browser().errors.push(e),
                }
            }
            BrowserOp::AddCandidate(c) => {
                if b.add_candidate(&c).is_err() {
                    // rtcpool swallows it when ignoring, else logs an unhandled rejection.
                    b.candidate_errors += 1;
                }
            }
        }
        self.browser_kick();
        self.browser_maybe_negotiate();
    }

    fn browser_maybe_negotiate(&mut self) {
        let b = self.browser();
        let idle = b.sig == Sig::Stable && b.chain.is_empty() && !b.running;
        if idle && b.wants_to_negotiate() && !b.nn_scheduled {
            b.nn_scheduled = true;
            let delay = self.rng.between(0, 3);
            self.after(delay, Task::BrowserNegotiationNeeded);
        }
    }

    fn browser_negotiation_needed(&mut self) {
        let b = self.browser();
        b.nn_scheduled = false;
        // Chrome fires when stable; the chain may have filled meanwhile (the event is a task).
        if b.sig != Sig::Stable || !b.wants_to_negotiate() || b.busy {
            return;
        }
        // rtcpool _negotiate
        b.busy = true;
        b.chain.push_back(BrowserOp::SetLocal {
            from_negotiate: true,
        });
        self.log("browser negotiationneeded".into());
        self.browser_kick();
    }

    fn browser_receives(&mut self, wire: Wire) {
        let b = self.browser();
        match wire {
            Wire::Sdp(d) => {
                // rtcpool _onsdp, verbatim in logic
                let accept_offer = !b.busy && (b.sig == Sig::Stable || b.answering);
                b.ignore = !accept_offer && d.kind == SdpType::Offer;
                if b.ignore && !b.polite {
                    self.log("browser ignores the offer".into());
                    return;
                }
                b.answering = d.kind == SdpType::Answer;
                b.chain.push_back(BrowserOp::SetRemote(d));
            }
            Wire::Candidate(c) => b.chain.push_back(BrowserOp::AddCandidate(c)),
        }
        self.browser_kick();
    }

    fn gather_browser(&mut self, ufrag: String) {
        let b = self.browser();
        if b.gathered.contains(&ufrag) {
            return;
        }
        b.gathered.push(ufrag.clone());
        let count = self.rng.between(1, 3);
        let mut time = self.now;
        for _ in 0..=count {
            time += self.rng.between(1, 20);
            self.at(
                time,
                Task::BrowserCandidate {
                    ufrag: ufrag.clone(),
                },
            );
        }
    }

    fn browser_candidate(&mut self, ufrag: String, last: bool) {
        let b = self.browser();
        if b.transport_ufrag.as_deref() != Some(ufrag.as_str()) {
            return; // that transport was rolled back or restarted
        }
        let candidate = if last {
            None
        } else {
            b.candidate_counter += 1;
            Some(make_candidate(&ufrag, 5_000 + b.candidate_counter, true))
        };
        b.emitted.push((ufrag, candidate.clone()));
        // rtcpool's icecandidate handler sends at once.
        self.send(1, Wire::Candidate(candidate));
    }

    // ----- running -----

    fn run(&mut self) -> Result<(), String> {
        let mut steps = 0;
        while let Some((&(time, seq), _)) = self.tasks.iter().next() {
            let task = self.tasks.remove(&(time, seq)).expect("present");
            self.now = time;
            steps += 1;
            if steps > 200_000 {
                return Err("no end in sight: livelock".into());
            }
            match task {
                Task::GateComplete { side, bin } => self.complete_op(side, bin),
                Task::GateReply { side, bin, event } => {
                    if self.gate(side).bin.id == bin {
                        self.gate(side).reply_pending = false;
                        self.gate_event(side, event);
                    }
                }
                Task::GateRetryOffer { side, bin } => {
                    if self.gate(side).bin.id == bin {
                        self.gate_event(side, Event::RetryOffer);
                    }
                }
                Task::ConnectionFails => self.connection_fails(),
                Task::Deliver { to, wire } => match &self.peers[to] {
                    Peer::Gate(_) => {
                        let event = match wire {
                            Wire::Sdp(d) => Event::RemoteSdp(d),
                            Wire::Candidate(c) => Event::RemoteCandidate(c),
                        };
                        self.gate_event(to, event);
                    }
                    Peer::Browser(_) => self.browser_receives(wire),
                },
                Task::GateLocalCandidate { side, bin, ufrag } => {
                    let last = self.is_last_of_batch(&bin, &ufrag);
                    self.gate_local_candidate(side, bin, ufrag, last);
                }
                Task::GateNegotiationNeeded { side } => {
                    let now = self.now;
                    self.gate(side).nn_at.push(now);
                    self.gate_event(side, Event::NegotiationNeeded);
                }
                Task::GateIceFailed { side } => {
                    // ICE fails only where it ran: a webrtcbin with both descriptions, whose
                    // machine knows it (it takes seconds of failed checks in reality).
                    let g = self.gate(side);
                    let ran = g.bin.local.is_some() && g.bin.remote.is_some();
                    if ran && g.in_flight.is_none() && !g.reply_pending {
                        self.record_ice_failure(side);
                        self.gate_event(side, Event::IceFailed);
                    }
                }
                Task::BrowserOpDone => self.browser_op_done(),
                Task::BrowserNegotiationNeeded => self.browser_negotiation_needed(),
                Task::BrowserCandidate { ufrag } => {
                    let last = self.is_last_of_batch("chrome", &ufrag);
                    self.browser_candidate(ufrag, last);
                }
                Task::BrowserAddsTrack => {
                    self.log("browser adds a track".into());
                    self.browser().changes += 1;
                    self.browser_maybe_negotiate();
                }
                Task::BrowserIceFailed => {
                    let b = self.browser();
                    if b.stable_local.is_none() || b.stable_remote.is_none() {
                        continue; // ICE never ran
                    }
                    self.record_ice_failure(1);
                    self.log("browser ICE failed: restartIce()".into());
                    self.browser().restart_ice();
                    self.browser_maybe_negotiate();
                }
            }
        }
        Ok(())
    }

    /// Whether no other gathering task of this webrtcbin (or "chrome") and ufrag is queued:
    /// the last of a batch is end-of-candidates.
    fn is_last_of_batch(&self, of: &str, for_ufrag: &str) -> bool {
        !self.tasks.values().any(|t| match t {
            Task::GateLocalCandidate { bin, ufrag, .. } => bin == of && ufrag == for_ufrag,
            Task::BrowserCandidate { ufrag, .. } => of == "chrome" && ufrag == for_ufrag,
            _ => false,
        })
    }
}

fn short_event(e: &Event) -> String {
    match e {
        Event::RemoteSdp(d) => format!("RemoteSdp({:?} {:?})", d.kind, transport_of(&d.sdp)),
        Event::OfferCreated { sdp } => format!("OfferCreated({:?})", transport_of(sdp)),
        Event::AnswerCreated { sdp } => format!("AnswerCreated({:?})", transport_of(sdp)),
        Event::RemoteCandidate(c) | Event::LocalCandidate(c) => {
            let kind = if matches!(e, Event::RemoteCandidate(_)) {
                "RemoteCandidate"
            } else {
                "LocalCandidate"
            };
            format!("{kind}({:?})", c.as_ref().map(origin))
        }
        other => format!("{other:?}"),
    }
}

fn short_action(a: &Action) -> String {
    match a {
        Action::SetLocalDescription(d) => format!(
            "SetLocal({:?} {:?} {:?})",
            d.kind,
            transport_of(&d.sdp),
            sdp::dtls_setup(&d.sdp)
        ),
        Action::SetRemoteDescription(d) => {
            format!("SetRemote({:?} {:?})", d.kind, transport_of(&d.sdp))
        }
        Action::SendSdp(d) => format!("SendSdp({:?} {:?})", d.kind, transport_of(&d.sdp)),
        Action::AddRemoteCandidate(c) => {
            format!("AddRemoteCandidate({:?})", c.as_ref().map(origin))
        }
        Action::SendCandidate(c) => format!("SendCandidate({:?})", c.as_ref().map(origin)),
        other => format!("{other:?}"),
    }
}

// ===== scenarios =====

fn new_world(seed: u64, peers: [Peer; 2]) -> World {
    World {
        rng: Rng::new(seed),
        now: 0,
        seq: 0,
        tasks: BTreeMap::new(),
        wire_free: [0, 0],
        peers,
        ice_failures: Vec::new(),
        tally: Tally::new(),
        trace: Vec::new(),
    }
}

fn script_gate(world: &mut World, side: usize, config: Config) {
    // Most endpoints publish something (1-4 changes); some never offer (viewer-only).
    let changes = if world.rng.percent(10) {
        0
    } else {
        world.rng.between(1, 4)
    };
    for _ in 0..changes {
        let t = world.rng.between(0, 300);
        world.at(t, Task::GateNegotiationNeeded { side });
    }
    if config.failures {
        let g = world.gate(side);
        g.fail_budget = 2;
        g.fail_percent = 8;
    }
}

fn script_connection(world: &mut World, config: Config) {
    if config.ice_failures && world.rng.percent(50) {
        for _ in 0..world.rng.between(1, 2) {
            let t = world.rng.between(50, 500);
            world.at(t, Task::ConnectionFails);
        }
    }
}

/// Every ICE failure noticed was repaired: the session of the side that noticed it changed
/// (new credentials on either end).
fn check_ice_repaired(world: &World) -> Result<(), String> {
    for (side, at, session) in &world.ice_failures {
        if world.ice_session(*side) == *session {
            return Err(format!(
                "side {side} noticed ICE failing at {at} on session {session:?}, never restarted"
            ));
        }
    }
    Ok(())
}

fn check_gate(g: &Gate) -> Result<(), String> {
    let mut problems: Vec<String> = Vec::new();
    problems.extend(g.violations.iter().cloned());
    problems.extend(g.bin.violations.iter().cloned());
    problems.extend(g.dead_bin_violations.iter().cloned());
    if !g.machine.is_settled() {
        problems.push(format!(
            "{}: machine not settled, in {:?}: {:?}",
            g.name,
            g.machine.phase(),
            g.machine
        ));
    }
    if g.bin.sig != Sig::Stable || g.in_flight.is_some() {
        problems.push(format!(
            "{}: webrtcbin {:?}, in flight {:?}",
            g.name, g.bin.sig, g.in_flight
        ));
    }
    if let Some(broken) = &g.bin.broken {
        problems.push(format!("{}: live webrtcbin broken: {broken}", g.name));
    }
    if let Some(last) = g.nn_at.iter().max() {
        if !g.own_offers_completed.iter().any(|s| s >= last) {
            problems.push(format!(
                "{}: NegotiationNeeded at {last} never followed by an exchange of ours started after it (ours started at {:?})",
                g.name, g.own_offers_completed
            ));
        }
    }
    if g.machine.completed_exchanges() > 0 && g.machine.dtls_role() != g.bin.role {
        problems.push(format!(
            "{}: machine role {:?} but webrtcbin role {:?}",
            g.name,
            g.machine.dtls_role(),
            g.bin.role
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Every candidate of `emitted` of the given live session is in `added`.
fn check_complete<'a>(
    who: &str,
    emitted: impl Iterator<Item = &'a Candidate>,
    added: &[Candidate],
) -> Result<(), String> {
    for c in emitted {
        if !added.contains(c) {
            return Err(format!(
                "{who}: candidate {:?} of the live session never added",
                c.as_ref().map(|c| c.candidate.clone())
            ));
        }
    }
    Ok(())
}

fn two_gates(seed: u64, config: Config) -> Result<(u64, Tally), String> {
    let options = Options {
        ice_restart_in_place: config.in_place,
        polite_turn: if config.no_polite_turn {
            std::time::Duration::ZERO
        } else {
            POLITE_TURN
        },
        ..Options::default()
    };
    let mut probe = Rng::new(seed ^ 0xA5A5);
    let states_ufrag = probe.percent(50);
    let a = Gate::new('A', false, options, states_ufrag);
    let b = Gate::new('B', true, options, states_ufrag);
    let mut world = new_world(seed, [Peer::Gate(Box::new(a)), Peer::Gate(Box::new(b))]);
    script_gate(&mut world, 0, config);
    script_gate(&mut world, 1, config);
    script_connection(&mut world, config);
    world.run()?;

    let (a, b) = match &world.peers {
        [Peer::Gate(a), Peer::Gate(b)] => (a, b),
        _ => unreachable!(),
    };
    let mut problems = Vec::new();
    if let Err(e) = check_ice_repaired(&world) {
        problems.push(e);
    }
    for g in [a, b] {
        if let Err(e) = check_gate(g) {
            problems.push(e);
        }
    }
    if a.machine.completed_exchanges() != b.machine.completed_exchanges()
        || a.offers_completed != b.answers_completed
        || b.offers_completed != a.answers_completed
    {
        problems.push(format!(
            "exchanges differ: A offered {} answered {}, B offered {} answered {}",
            a.offers_completed, a.answers_completed, b.offers_completed, b.answers_completed
        ));
    }
    if a.machine.completed_exchanges() > 0 && b.machine.completed_exchanges() > 0 {
        for (x, y) in [(a, b), (b, a)] {
            let expected = Some((y.bin.ufrag.clone(), y.bin.fingerprint.clone()));
            if x.bin.remote_transport != expected {
                problems.push(format!(
                    "{}'s webrtcbin talks to {:?}, but {}'s is {:?}",
                    x.name, x.bin.remote_transport, y.name, expected
                ));
            }
            let live = y
                .emitted
                .iter()
                .filter(|(bin, ufrag, _)| *bin == y.bin.id && *ufrag == y.bin.ufrag)
                .map(|(_, _, c)| c);
            if let Err(e) = check_complete(&format!("{}", x.name), live, &x.bin.added) {
                problems.push(e);
            }
        }
        if a.bin.role.is_none() || a.bin.role.map(DtlsRole::opposite) != b.bin.role {
            problems.push(format!(
                "DTLS roles not complementary: A {:?}, B {:?}",
                a.bin.role, b.bin.role
            ));
        }
    }
    if problems.is_empty() {
        Ok((a.machine.completed_exchanges(), world.tally))
    } else {
        Err(problems.join("\n") + "\n--- trace (last 80) ---\n" + &tail(&world.trace, 80))
    }
}

/// The end of a failing scenario's trace; all of it with `NEGOTIATION_SIM_TRACE=full`.
fn tail(trace: &[String], n: usize) -> String {
    let full = std::env::var("NEGOTIATION_SIM_TRACE").is_ok_and(|v| v == "full");
    let n = if full { trace.len() } else { n };
    trace[trace.len().saturating_sub(n)..].join("\n")
}

fn against_browser(
    seed: u64,
    machine_polite: bool,
    config: Config,
) -> Result<(u64, Tally), String> {
    let options = Options {
        ice_restart_in_place: config.in_place,
        polite_turn: if config.no_polite_turn {
            std::time::Duration::ZERO
        } else {
            POLITE_TURN
        },
        ..Options::default()
    };
    let gate = Gate::new('G', machine_polite, options, false);
    let browser = Browser::new(!machine_polite);
    let mut world = new_world(
        seed,
        [Peer::Gate(Box::new(gate)), Peer::Browser(Box::new(browser))],
    );
    script_gate(&mut world, 0, config);
    // rtcpool: a ManagedStream adds its tracks on 'peer', so the browser negotiates at once,
    // and maybe later again.
    for _ in 0..world.rng.between(0, 3) {
        let t = world.rng.between(0, 300);
        world.at(t, Task::BrowserAddsTrack);
    }
    script_connection(&mut world, config);
    world.run()?;

    let (g, b) = match &world.peers {
        [Peer::Gate(g), Peer::Browser(b)] => (g, b),
        _ => unreachable!(),
    };
    let mut problems = Vec::new();
    if let Err(e) = check_ice_repaired(&world) {
        problems.push(e);
    }
    if let Err(e) = check_gate(g) {
        problems.push(e);
    }
    if !b.errors.is_empty() {
        problems.push(format!("Chrome rejected a description: {:?}", b.errors));
    }
    if b.sig != Sig::Stable || !b.chain.is_empty() || b.running || b.busy {
        problems.push(format!(
            "browser not at rest: {:?}, chain {:?}, busy {}",
            b.sig, b.chain, b.busy
        ));
    }
    if b.wants_to_negotiate() {
        problems.push(format!(
            "browser changes lost: {} added, {} negotiated, restart pending {:?}",
            b.changes, b.negotiated_changes, b.restart_replaces
        ));
    }
    if g.machine.completed_exchanges() != b.exchanges {
        problems.push(format!(
            "exchanges differ: machine {}, browser {}",
            g.machine.completed_exchanges(),
            b.exchanges
        ));
    }
    if g.machine.completed_exchanges() > 0 {
        let chrome = (
            b.transport_ufrag.clone().unwrap_or_default(),
            b.fingerprint.clone(),
        );
        if g.bin.remote_transport.as_ref() != Some(&chrome) {
            problems.push(format!(
                "webrtcbin talks to {:?}, Chrome is {chrome:?}",
                g.bin.remote_transport
            ));
        }
        let ours = (g.bin.ufrag.clone(), g.bin.fingerprint.clone());
        if b.stable_remote.as_deref().map(transport_of) != Some(ours.clone()) {
            problems.push(format!(
                "Chrome talks to {:?}, webrtcbin is {ours:?}",
                b.stable_remote.as_deref().map(transport_of)
            ));
        }
        if g.bin.role.is_none() || g.bin.role.map(DtlsRole::opposite) != b.role {
            problems.push(format!(
                "DTLS roles not complementary: webrtcbin {:?}, Chrome {:?}",
                g.bin.role, b.role
            ));
        }
        let live_chrome = b
            .emitted
            .iter()
            .filter(|(u, _)| Some(u) == b.transport_ufrag.as_ref())
            .map(|(_, c)| c);
        if let Err(e) = check_complete("webrtcbin", live_chrome, &g.bin.added) {
            problems.push(e);
        }
        let live_ours = g
            .emitted
            .iter()
            .filter(|(bin, u, _)| *bin == g.bin.id && *u == g.bin.ufrag)
            .map(|(_, _, c)| c);
        if let Err(e) = check_complete("Chrome", live_ours, &b.added) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok((g.machine.completed_exchanges(), world.tally))
    } else {
        Err(problems.join("\n") + "\n--- trace (last 80) ---\n" + &tail(&world.trace, 80))
    }
}

/// Runs `scenario` for SCENARIOS seeds; panics with the first failing seed and its trace.
/// Then checks the replays did take each path in `must_see` (so a change of timings cannot
/// quietly stop exercising a collision), and prints the tally.
fn replay(what: &str, must_see: &[&str], scenario: impl Fn(u64) -> Result<(u64, Tally), String>) {
    let mut exchanges = 0;
    let mut tally = Tally::new();
    for seed in 0..SCENARIOS {
        match scenario(seed) {
            Ok((e, t)) => {
                exchanges += e;
                for (k, v) in t {
                    *tally.entry(k).or_default() += v;
                }
            }
            Err(e) => panic!("{what}: seed {seed} failed:\n{e}"),
        }
    }
    println!("{what}: {SCENARIOS} scenarios, {exchanges} exchanges, {tally:?}");
    assert!(exchanges > SCENARIOS, "{what}: only {exchanges} exchanges");
    for path in must_see {
        assert!(
            tally.get(*path).copied().unwrap_or(0) > 0,
            "{what}: no scenario took {path}: {tally:?}"
        );
    }
}

/// The collision paths every two-endpoint configuration must exercise.
const GLARE: &[&str] = &[
    "RemoteOfferIgnored",
    "CreatedOfferDropped",
    "UnsentOfferAbandoned",
    "Rebuild::OfferCollision",
    "RemoteCandidatesDropped",
];

const GSTREAMER_1_22: Config = Config {
    in_place: false,
    failures: false,
    ice_failures: true,
    no_polite_turn: false,
};

#[test]
fn two_poolgate_endpoints_converge_in_randomized_collisions() {
    replay("two poolgate endpoints", GLARE, |seed| {
        two_gates(
            seed,
            Config {
                ice_failures: false,
                ..GSTREAMER_1_22
            },
        )
    });
}

#[test]
fn two_poolgate_endpoints_converge_with_ice_failures_on_either_or_both_sides() {
    let paths = [GLARE, &["Rebuild::IceRestart", "IceRestartDeferred"]].concat();
    replay("two poolgate endpoints, ICE failures", &paths, |seed| {
        two_gates(seed, GSTREAMER_1_22)
    });
}

#[test]
fn two_poolgate_endpoints_converge_with_in_place_ice_restart() {
    let paths = [GLARE, &["IceRestartDeferred"]].concat();
    replay(
        "two poolgate endpoints, in-place ICE restart",
        &paths,
        |seed| {
            two_gates(
                seed,
                Config {
                    in_place: true,
                    ..GSTREAMER_1_22
                },
            )
        },
    );
}

#[test]
fn two_poolgate_endpoints_converge_despite_failed_operations() {
    let paths = [GLARE, &["Rebuild::OperationFailed", "OperationFailed"]].concat();
    replay(
        "two poolgate endpoints, injected failures",
        &paths,
        |seed| {
            two_gates(
                seed,
                Config {
                    failures: true,
                    ..GSTREAMER_1_22
                },
            )
        },
    );
}

#[test]
fn a_polite_machine_converges_with_an_impolite_rtcpool_browser() {
    let paths = [
        "CreatedOfferDropped",
        "Rebuild::OfferCollision",
        "Rebuild::RemoteTransportChange",
        "OfferDeferredToRemote",
    ];
    replay(
        "polite machine vs impolite rtcpool browser",
        &paths,
        |seed| against_browser(seed, true, GSTREAMER_1_22),
    );
}

#[test]
fn a_polite_machine_without_the_turn_converges_with_an_impolite_rtcpool_browser() {
    // Offering at once after an exchange meets Chrome's implicit offer more often, and the
    // answer to our abandoned offer with it: that path must still converge.
    let paths = [
        "CreatedOfferDropped",
        "Rebuild::OfferCollision",
        "Rebuild::RemoteTransportChange",
        "RemoteAnsweredAbandonedOffer",
    ];
    replay(
        "polite machine without the turn vs impolite rtcpool browser",
        &paths,
        |seed| {
            against_browser(
                seed,
                true,
                Config {
                    no_polite_turn: true,
                    ..GSTREAMER_1_22
                },
            )
        },
    );
}

#[test]
fn two_poolgate_endpoints_without_the_turn_converge_in_randomized_collisions() {
    replay("two poolgate endpoints without the turn", GLARE, |seed| {
        two_gates(
            seed,
            Config {
                ice_failures: false,
                no_polite_turn: true,
                ..GSTREAMER_1_22
            },
        )
    });
}

#[test]
fn an_impolite_machine_converges_with_a_polite_rtcpool_browser() {
    let paths = ["RemoteOfferIgnored", "RemoteCandidatesDropped"];
    replay(
        "impolite machine vs polite rtcpool browser",
        &paths,
        |seed| against_browser(seed, false, GSTREAMER_1_22),
    );
}

/// The simulation itself: a webrtcbin without the machine's DTLS rewrite reproduces the
/// measured bug, and one without the rebuild stays stuck in glare, as measured.
#[test]
fn the_fake_webrtcbin_reproduces_the_measured_limits() {
    let mut bin = FakeBin::new("X0".into(), false);
    let offer = bin.create_offer(false).unwrap();
    bin.set_local(&SessionDescription {
        kind: SdpType::Offer,
        sdp: offer,
    })
    .unwrap();
    // No rollback from have-local-offer.
    assert!(bin
        .set_local(&SessionDescription {
            kind: SdpType::Rollback,
            sdp: String::new()
        })
        .is_err());
    // Nor a remote offer on top of ours.
    let remote_offer = make_sdp(1, "r", "sha-256 FP-r", DtlsSetup::Actpass);
    assert!(bin
        .set_remote(&SessionDescription {
            kind: SdpType::Offer,
            sdp: remote_offer.clone()
        })
        .is_err());
    // Server after offering actpass and getting active...
    bin.set_remote(&SessionDescription {
        kind: SdpType::Answer,
        sdp: make_sdp(1, "r", "sha-256 FP-r", DtlsSetup::Active),
    })
    .unwrap();
    assert_eq!(bin.role, Some(DtlsRole::Server));
    // ...yet webrtcbin answers the next actpass offer with active.
    bin.set_remote(&SessionDescription {
        kind: SdpType::Offer,
        sdp: make_sdp(2, "r", "sha-256 FP-r", DtlsSetup::Actpass),
    })
    .unwrap();
    let answer = bin.create_answer().unwrap();
    assert_eq!(sdp::dtls_setup(&answer), Some(DtlsSetup::Active));
    bin.set_local(&SessionDescription {
        kind: SdpType::Answer,
        sdp: answer,
    })
    .unwrap();
    assert!(bin
        .violations
        .iter()
        .any(|v| v.contains("DTLS role changed")));
}
