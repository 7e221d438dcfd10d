//! Pure helpers over SDP text: the few attributes the negotiation machine reads (ICE
//! credentials, DTLS fingerprint and `a=setup:`) and the one rewrite it performs (the DTLS role
//! of a description we generate). No parser: SDP is handled line by line, and everything this
//! module does not touch is kept byte for byte, line endings included.
//!
//! # The DTLS role rule
//!
//! Which end is the DTLS client is decided by the `a=setup:` attributes of the first completed
//! offer/answer exchange (RFC 4145 §4, RFC 5763 §5): `active` is the client, `passive` the
//! server, and an `actpass` offerer takes the role its answerer leaves it. After that the role
//! must never change on a live transport: webrtcbin 1.22 cannot change its DTLS transport during
//! a renegotiation, and Chrome rejects a flipped role ("Failed to set SSL role for the
//! transport"). webrtcbin does not remember the role by itself: it answers every `actpass` offer
//! with `active` (measured: it did so after having been the server). So every description we
//! generate goes through [`enforce_dtls_role`]:
//!
//! - **Before a role is fixed** nothing is rewritten. An initial offer must be `actpass`
//!   (RFC 8842 §5.2, and the only value every answerer accepts before a role exists), and an
//!   initial answer may take either role (webrtcbin's `active` is the recommended one).
//! - **Answers, once the role is fixed**: our fixed role (`active` for client, `passive` for
//!   server). This is the measured bug's fix.
//! - **Offers, once the role is fixed**: our fixed role too, not `actpass`. `actpass` in a
//!   re-offer is safe only if the answerer remembers its role, and that is not something we can
//!   check: libwebrtc does (it answers with its current role), webrtcbin does not (see above),
//!   and poolgate rebuilds webrtcbins, whose fresh DTLS transport has no memory at all. An
//!   explicit role leaves the answerer exactly one legal answer (RFC 4145 §4.1: `active` ->
//!   `passive`, `passive` -> `active`). RFC 8842 §5.3 requires answerers to accept offers with
//!   `active` or `passive`, and libwebrtc accepts them when they match the negotiated role
//!   (jsep_transport.cc: "Offerer must use current negotiated role"), which ours does by
//!   construction. The cost: RFC 8842 §5.5 asks offerers for `actpass`; an answerer that
//!   insists on it (older aiortc, for one) would reject our re-offers. No ssp client does.

use std::fmt;

use crate::signalling::protocol::{IceCandidate, SdpType};

/// The value of an `a=setup:` attribute (RFC 4145 §4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DtlsSetup {
    /// `a=setup:active`: we connect (DTLS client).
    Active,
    /// `a=setup:passive`: we accept (DTLS server).
    Passive,
    /// `a=setup:actpass`: either (offers only).
    Actpass,
    /// `a=setup:holdconn`: no connection yet.
    Holdconn,
}

impl DtlsSetup {
    /// The attribute value as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            DtlsSetup::Active => "active",
            DtlsSetup::Passive => "passive",
            DtlsSetup::Actpass => "actpass",
            DtlsSetup::Holdconn => "holdconn",
        }
    }

    /// Reads an `a=setup` value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim() {
            "active" => DtlsSetup::Active,
            "passive" => DtlsSetup::Passive,
            "actpass" => DtlsSetup::Actpass,
            "holdconn" => DtlsSetup::Holdconn,
            _ => return None,
        })
    }
}

impl fmt::Display for DtlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Our side of the DTLS handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DtlsRole {
    /// We send the ClientHello (`a=setup:active`).
    Client,
    /// We wait for it (`a=setup:passive`).
    Server,
}

impl DtlsRole {
    /// The `a=setup:` value that states this role.
    pub fn setup(self) -> DtlsSetup {
        match self {
            DtlsRole::Client => DtlsSetup::Active,
            DtlsRole::Server => DtlsSetup::Passive,
        }
    }

    /// The other end's role.
    pub fn opposite(self) -> DtlsRole {
        match self {
            DtlsRole::Client => DtlsRole::Server,
            DtlsRole::Server => DtlsRole::Client,
        }
    }
}

impl fmt::Display for DtlsRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DtlsRole::Client => "client",
            DtlsRole::Server => "server",
        })
    }
}

/// The role a completed exchange gives us, from our and the remote's `a=setup:` values, with
/// the same rules webrtcbin applies (`_get_final_setup`). `None` for an illegal pair (both
/// `active`, both `passive`, a missing value, `holdconn`, or an `actpass` answer).
pub fn negotiated_role(local: Option<DtlsSetup>, remote: Option<DtlsSetup>) -> Option<DtlsRole> {
    use DtlsSetup::*;
    match (local?, remote?) {
        (Active, Passive | Actpass) => Some(DtlsRole::Client),
        (Passive, Active | Actpass) => Some(DtlsRole::Server),
        (Actpass, Active) => Some(DtlsRole::Server),
        (Actpass, Passive) => Some(DtlsRole::Client),
        _ => None,
    }
}

/// The lines of `sdp`, each without its line ending.
fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.lines().map(|l| l.trim_end_matches('\r'))
}

/// The values of every `a=<name>:` attribute, in order (session and media level alike).
pub fn attribute_values<'a>(sdp: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    lines(sdp).filter_map(move |line| {
        let rest = line
            .strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')?;
        Some(rest.trim())
    })
}

/// The `a=mid` of every media section, in order.
pub fn mids(sdp: &str) -> impl Iterator<Item = &str> + '_ {
    attribute_values(sdp, "mid")
}

/// The first `a=ice-ufrag:`. With BUNDLE (browsers and webrtcbin's max-bundle) every section
/// carries the same one: it names the ICE session, and changes exactly on an ICE restart or when
/// the other end replaced its peer connection.
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    attribute_values(sdp, "ice-ufrag").next()
}

/// The first `a=fingerprint:` (hash name and value). It changes only with a new certificate,
/// that is a new DTLS transport: a rebuilt webrtcbin.
pub fn fingerprint(sdp: &str) -> Option<&str> {
    attribute_values(sdp, "fingerprint").next()
}

/// `sdp` with the value of every `a=fingerprint:` line replaced by `fingerprint` (hash name
/// and value, as in the attribute). Every other byte is kept.
pub fn with_fingerprint(sdp: &str, fingerprint: &str) -> String {
    with_attribute_value(sdp, "fingerprint", fingerprint)
}

/// The first `a=setup:` value. Every section of one description carries the same one.
pub fn dtls_setup(sdp: &str) -> Option<DtlsSetup> {
    attribute_values(sdp, "setup")
        .next()
        .and_then(DtlsSetup::parse)
}

/// `sdp` with the value of every `a=setup:` line replaced by `setup`. Every other byte is kept.
/// A description without `a=setup:` lines is returned unchanged (webrtcbin and browsers always
/// write them; inventing one would need to know where sections start, which is not needed).
pub fn with_dtls_setup(sdp: &str, setup: DtlsSetup) -> String {
    with_attribute_value(sdp, "setup", setup.as_str())
}

/// `sdp` with the value of every `a=<name>:` line replaced by `value`, each line's own ending
/// kept. Every other byte is kept.
fn with_attribute_value(sdp: &str, name: &str, value: &str) -> String {
    let prefix = format!("a={name}:");
    let mut out = String::with_capacity(sdp.len() + 8);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        if body.starts_with(&prefix) {
            out.push_str(&prefix);
            out.push_str(value);
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The rewrite the machine applies to every description webrtcbin generates for us, before it
/// is set locally and sent (see the module documentation for why):
/// - no role fixed yet: unchanged;
/// - role fixed: every `a=setup:` states that role, in offers and answers alike.
///
/// `kind` is taken so that the rule stays in one place if offers and answers ever differ; a
/// rollback has no SDP to rewrite.
pub fn enforce_dtls_role(sdp: &str, kind: SdpType, role: Option<DtlsRole>) -> String {
    match (kind, role) {
        (SdpType::Rollback, _) | (_, None) => sdp.to_owned(),
        (SdpType::Offer | SdpType::Answer | SdpType::Pranswer, Some(role)) => {
            with_dtls_setup(sdp, role.setup())
        }
    }
}

/// Gives a data section that webrtcbin added in a re-offer the mid a browser would give it.
///
/// Once a browser's offer numbered the sections (`0`, `1`, …), webrtcbin names a section it adds
/// itself `application2` and the like. If the browser adds its own data channel at the same
/// moment, it rolls its offer back to take ours (it is polite), and Chromium then refuses to
/// start SCTP unless our data section has the mid its own had: the next number. Measured with
/// Chromium 156: 0/5 without this, 5/5 with it. Only sections with a non-numeric mid in an
/// offer whose other mids are all numbers are renamed, in the BUNDLE group too; anything else
/// is returned unchanged.
pub fn number_new_data_section(sdp: &str) -> String {
    let mids: Vec<&str> = attribute_values(sdp, "mid").collect();
    let numbered: Vec<u64> = mids.iter().filter_map(|m| m.parse().ok()).collect();
    let unnumbered: Vec<&str> = mids
        .iter()
        .copied()
        .filter(|m| m.parse::<u64>().is_err())
        .collect();
    if numbered.is_empty() || unnumbered.len() != 1 {
        return sdp.to_owned();
    }
    let old = unnumbered[0];
    // Only a data section: media sections keep webrtcbin's own names.
    let mut in_data_section = false;
    let mut is_data = false;
    for line in lines(sdp) {
        if line.starts_with("m=") {
            in_data_section = line.starts_with("m=application");
        } else if in_data_section && line == format!("a=mid:{old}") {
            is_data = true;
        }
    }
    if !is_data {
        return sdp.to_owned();
    }
    let new = (numbered.iter().max().unwrap() + 1).to_string();
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        if body == format!("a=mid:{old}") {
            out.push_str(&format!("a=mid:{new}{ending}"));
        } else if let Some(group) = body.strip_prefix("a=group:BUNDLE ") {
            let renamed: Vec<&str> = group
                .split(' ')
                .map(|m| if m == old { new.as_str() } else { m })
                .collect();
            out.push_str(&format!("a=group:BUNDLE {}{ending}", renamed.join(" ")));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The ICE username fragment a trickled candidate states, if it states one: the
/// `usernameFragment` field browsers send, else the `ufrag` extension of the candidate line
/// (`candidate:... typ host generation 0 ufrag Ab1c ...`). webrtcbin states neither.
pub fn candidate_ufrag(candidate: &IceCandidate) -> Option<&str> {
    if let Some(u) = candidate
        .username_fragment
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        return Some(u);
    }
    let mut tokens = candidate.candidate.split_ascii_whitespace();
    while let Some(token) = tokens.next() {
        if token == "ufrag" {
            return tokens.next();
        }
    }
    None
}

#[cfg(test)]
mod data_mid_tests {
    use super::number_new_data_section;

    const REOFFER: &str = "v=0\r\na=group:BUNDLE 0 1 application2\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:application2\r\na=sctp-port:5000\r\n";

    #[test]
    fn a_new_data_section_gets_the_next_number() {
        let out = number_new_data_section(REOFFER);
        assert!(out.contains("a=group:BUNDLE 0 1 2\r\n"), "{out}");
        assert!(out.contains("a=mid:2\r\na=sctp-port"), "{out}");
        assert!(!out.contains("application2"), "{out}");
        assert_eq!(out.len(), REOFFER.len() - "application".len() * 2);
    }

    #[test]
    fn other_descriptions_are_unchanged() {
        // webrtcbin's own first offer: no numbered sections to follow.
        let first = "v=0\r\na=group:BUNDLE video0 application1\r\nm=video 9 X 96\r\na=mid:video0\r\nm=application 9 Y z\r\na=mid:application1\r\n";
        assert_eq!(number_new_data_section(first), first);
        // All numbered already.
        let numbered = REOFFER.replace("application2", "2");
        assert_eq!(number_new_data_section(&numbered), numbered);
        // A new media section is not renamed.
        let media = "v=0\r\na=group:BUNDLE 0 video1\r\nm=audio 9 X 1\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:video1\r\n";
        assert_eq!(number_new_data_section(media), media);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const OFFER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=mid:0\r\n\
        a=ice-ufrag:Ab1c\r\n\
        a=ice-pwd:secret\r\n\
        a=fingerprint:sha-256 AA:BB\r\n\
        a=setup:actpass\r\n\
        m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        a=mid:1\r\n\
        a=bundle-only\r\n\
        a=ice-ufrag:Ab1c\r\n\
        a=setup:actpass\r\n";

    #[test]
    fn reads_the_first_ufrag_fingerprint_and_setup() {
        assert_eq!(ice_ufrag(OFFER), Some("Ab1c"));
        assert_eq!(fingerprint(OFFER), Some("sha-256 AA:BB"));
        assert_eq!(dtls_setup(OFFER), Some(DtlsSetup::Actpass));
        assert_eq!(ice_ufrag("v=0\r\n"), None);
        assert_eq!(dtls_setup("a=setup:bogus\r\n"), None);
    }

    #[test]
    fn rewriting_setup_changes_every_setup_line_and_nothing_else() {
        let out = with_dtls_setup(OFFER, DtlsSetup::Passive);
        assert_eq!(out, OFFER.replace("a=setup:actpass", "a=setup:passive"));
        assert_eq!(attribute_values(&out, "setup").count(), 2);
    }

    #[test]
    fn rewriting_keeps_bare_lf_line_endings_and_a_missing_final_newline() {
        let sdp = "v=0\na=setup:active\na=mid:0";
        assert_eq!(
            with_dtls_setup(sdp, DtlsSetup::Passive),
            "v=0\na=setup:passive\na=mid:0"
        );
        assert_eq!(
            with_dtls_setup("a=setup:active", DtlsSetup::Passive),
            "a=setup:passive"
        );
    }

    #[test]
    fn rewriting_the_fingerprint_changes_every_fingerprint_line_and_nothing_else() {
        let sdp = format!("{OFFER}a=fingerprint:sha-256 CC:DD\r\n");
        let out = with_fingerprint(&sdp, "sha-256 01:02");
        let expected = sdp
            .replace("sha-256 AA:BB", "sha-256 01:02")
            .replace("sha-256 CC:DD", "sha-256 01:02");
        assert_eq!(out, expected);
        assert_eq!(fingerprint(&out), Some("sha-256 01:02"));
        assert_eq!(with_fingerprint("v=0\na=mid:0", "x"), "v=0\na=mid:0");
    }

    #[test]
    fn a_description_without_setup_is_left_alone() {
        let sdp = "v=0\r\na=mid:0\r\n";
        assert_eq!(with_dtls_setup(sdp, DtlsSetup::Active), sdp);
    }

    #[test]
    fn before_the_role_is_fixed_nothing_is_rewritten() {
        assert_eq!(enforce_dtls_role(OFFER, SdpType::Offer, None), OFFER);
        let answer = OFFER.replace("actpass", "active");
        assert_eq!(enforce_dtls_role(&answer, SdpType::Answer, None), answer);
    }

    /// The measured bug: webrtcbin answered `active` after it had been the DTLS server.
    #[test]
    fn an_answer_states_the_fixed_role() {
        let answer = OFFER.replace("actpass", "active");
        let fixed = enforce_dtls_role(&answer, SdpType::Answer, Some(DtlsRole::Server));
        assert_eq!(dtls_setup(&fixed), Some(DtlsSetup::Passive));
        assert!(!fixed.contains("a=setup:active"));
        let fixed = enforce_dtls_role(&answer, SdpType::Answer, Some(DtlsRole::Client));
        assert_eq!(fixed, answer);
    }

    #[test]
    fn a_re_offer_states_the_fixed_role_instead_of_actpass() {
        let fixed = enforce_dtls_role(OFFER, SdpType::Offer, Some(DtlsRole::Client));
        assert_eq!(dtls_setup(&fixed), Some(DtlsSetup::Active));
        assert!(!fixed.contains("actpass"));
        let fixed = enforce_dtls_role(OFFER, SdpType::Offer, Some(DtlsRole::Server));
        assert_eq!(dtls_setup(&fixed), Some(DtlsSetup::Passive));
    }

    #[test]
    fn negotiated_role_follows_rfc_4145() {
        use DtlsSetup::*;
        let role = |l, r| negotiated_role(Some(l), Some(r));
        // We answered.
        assert_eq!(role(Active, Actpass), Some(DtlsRole::Client));
        assert_eq!(role(Passive, Actpass), Some(DtlsRole::Server));
        assert_eq!(role(Active, Passive), Some(DtlsRole::Client));
        assert_eq!(role(Passive, Active), Some(DtlsRole::Server));
        // We offered actpass: the answer decides.
        assert_eq!(role(Actpass, Active), Some(DtlsRole::Server));
        assert_eq!(role(Actpass, Passive), Some(DtlsRole::Client));
        // Illegal pairs.
        assert_eq!(role(Active, Active), None);
        assert_eq!(role(Passive, Passive), None);
        assert_eq!(role(Actpass, Actpass), None);
        assert_eq!(role(Holdconn, Active), None);
        assert_eq!(negotiated_role(None, Some(Active)), None);
    }

    #[test]
    fn candidate_ufrag_prefers_the_field_then_the_line() {
        let mut c = IceCandidate {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host generation 0 ufrag Xy9z network-id 1".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        assert_eq!(candidate_ufrag(&c), Some("Xy9z"));
        c.username_fragment = Some("Field".into());
        assert_eq!(candidate_ufrag(&c), Some("Field"));
        c.username_fragment = Some(String::new());
        assert_eq!(candidate_ufrag(&c), Some("Xy9z"));
        c.candidate = "candidate:1 1 UDP 2015363327 127.0.0.1 5000 typ host".into();
        assert_eq!(candidate_ufrag(&c), None);
    }

    fn sdp_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a=setup:actpass".to_owned()),
            Just("a=setup:active".to_owned()),
            Just("a=setup:passive".to_owned()),
            Just("a=setupx:active".to_owned()),
            Just("a=ice-ufrag:Ab1c".to_owned()),
            "[a-z]=[ -~]{0,20}",
        ]
    }

    proptest! {
        /// Rewriting touches `a=setup:` values only: same line count, same endings, same bytes
        /// everywhere else, and rewriting twice is rewriting once.
        #[test]
        fn rewriting_setup_is_local_and_idempotent(
            lines in proptest::collection::vec((sdp_line(), prop_oneof![Just("\r\n"), Just("\n")]), 0..12),
            role in prop_oneof![Just(DtlsRole::Client), Just(DtlsRole::Server)],
        ) {
            let sdp: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
            let out = with_dtls_setup(&sdp, role.setup());
            prop_assert_eq!(out.matches('\n').count(), sdp.matches('\n').count());
            prop_assert_eq!(out.matches("\r\n").count(), sdp.matches("\r\n").count());
            for (before, after) in sdp.split_inclusive('\n').zip(out.split_inclusive('\n')) {
                if before.starts_with("a=setup:") {
                    let expected = format!("a=setup:{}", role.setup());
                    prop_assert!(after.starts_with(&expected));
                } else {
                    prop_assert_eq!(before, after);
                }
            }
            prop_assert_eq!(with_dtls_setup(&out, role.setup()), out.clone());
            if sdp.contains("a=setup:") {
                prop_assert_eq!(dtls_setup(&out), Some(role.setup()));
            }
        }
    }
}

/// A media section's direction attribute (absent means `sendrecv`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn parse(attribute: &str) -> Option<Direction> {
        match attribute {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_bits(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether this end sends on the section.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this end receives on the section.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same section seen from the other end.
    pub fn reverse(self) -> Direction {
        Direction::from_bits(self.receives(), self.sends())
    }

    /// What both allow.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_bits(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The direction webrtcbin 1.22 settles a transceiver on once both descriptions are set,
    /// from our section's direction and the remote's; `None` where it refuses the pair
    /// ("remote SDP has the same directionality": both sendonly, or both recvonly). Other
    /// illegal pairs it quietly narrows, which this mirrors.
    pub fn settled_by_webrtcbin(local: Direction, remote: Direction) -> Option<Direction> {
        match (local, remote) {
            (Direction::SendOnly, Direction::SendOnly)
            | (Direction::RecvOnly, Direction::RecvOnly) => None,
            (Direction::Inactive, _) | (_, Direction::Inactive) => Some(Direction::Inactive),
            (Direction::SendOnly | Direction::RecvOnly, _) => Some(local),
            (Direction::SendRecv, remote) => Some(remote.reverse()),
        }
    }
}

/// The direction of every audio and video section that has a mid, in order.
pub fn directions(sdp: &str) -> Vec<(String, Direction)> {
    let mut out = Vec::new();
    let mut media: Option<(Option<String>, Direction)> = None;
    let flush = |m: Option<(Option<String>, Direction)>, out: &mut Vec<(String, Direction)>| {
        if let Some((Some(mid), direction)) = m {
            out.push((mid, direction));
        }
    };
    for line in lines(sdp) {
        if let Some(rest) = line.strip_prefix("m=") {
            flush(media.take(), &mut out);
            if rest.starts_with("audio") || rest.starts_with("video") {
                media = Some((None, Direction::SendRecv));
            }
        } else if let Some((mid, direction)) = &mut media {
            if let Some(value) = line.strip_prefix("a=mid:") {
                *mid = Some(value.trim().to_string());
            } else if let Some(d) = line.strip_prefix("a=").and_then(Direction::parse) {
                *direction = d;
            }
        }
    }
    flush(media.take(), &mut out);
    out
}

/// `sdp` with the direction of each audio/video section named in `directions` (by mid)
/// replaced; other sections and lines are kept byte for byte.
pub fn with_directions(sdp: &str, directions: &[(String, Direction)]) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    // Split into the session part and one chunk per media section.
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in lines(sdp) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        sections.last_mut().expect("never empty").push(line);
    }
    let mut out = String::with_capacity(sdp.len() + 32);
    for section in &sections {
        let is_media = section
            .first()
            .is_some_and(|l| l.starts_with("m=audio") || l.starts_with("m=video"));
        let mid = section
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(str::trim);
        let wanted = mid
            .filter(|_| is_media)
            .and_then(|mid| directions.iter().find(|(m, _)| m == mid))
            .map(|(_, d)| *d);
        let mut written = false;
        for line in section {
            let is_direction = line.strip_prefix("a=").and_then(Direction::parse).is_some();
            match (is_direction, wanted) {
                (true, Some(d)) => {
                    if !written {
                        out.push_str("a=");
                        out.push_str(d.as_str());
                        out.push_str(eol);
                        written = true;
                    }
                }
                _ => {
                    out.push_str(line);
                    out.push_str(eol);
                }
            }
        }
        if let (Some(d), false) = (wanted, written) {
            out.push_str("a=");
            out.push_str(d.as_str());
            out.push_str(eol);
        }
    }
    out
}

#[cfg(test)]
mod direction_tests {
    use super::*;

    const OFFER: &str = "v=0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";

    #[test]
    fn directions_are_read_per_media_section_with_sendrecv_by_default() {
        assert_eq!(
            directions(OFFER),
            [
                ("0".to_string(), Direction::RecvOnly),
                ("1".to_string(), Direction::SendRecv)
            ]
        );
    }

    #[test]
    fn with_directions_replaces_or_adds_only_the_named_sections() {
        let out = with_directions(
            OFFER,
            &[
                ("0".into(), Direction::SendRecv),
                ("1".into(), Direction::Inactive),
            ],
        );
        assert_eq!(
            directions(&out),
            [
                ("0".to_string(), Direction::SendRecv),
                ("1".to_string(), Direction::Inactive)
            ]
        );
        assert_eq!(out.matches("a=rtpmap").count(), 2);
        assert!(out.ends_with("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n"));
        // Unchanged input stays byte for byte.
        assert_eq!(with_directions(OFFER, &[]), OFFER);
    }

    #[test]
    fn reverse_and_intersect_follow_rfc_3264() {
        assert_eq!(Direction::RecvOnly.reverse(), Direction::SendOnly);
        assert_eq!(
            Direction::SendOnly.intersect(Direction::SendRecv),
            Direction::SendOnly
        );
        assert_eq!(
            Direction::SendOnly.intersect(Direction::RecvOnly),
            Direction::Inactive
        );
    }
}
