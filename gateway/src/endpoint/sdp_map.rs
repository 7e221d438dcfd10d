//! Translation between a rebuilt webrtcbin's media sections and the session's, as pure
//! functions over SDP text.
//!
//! # Why
//!
//! A subsequent offer must keep every m-line of the session, in order, with the same mids
//! (RFC 8829 §5.2.2; Chromium refuses anything else). webrtcbin 1.22 cannot renegotiate ICE or
//! DTLS, so the endpoint replaces a peer's webrtcbin instead (see `negotiation`), and when the
//! fresh webrtcbin has to *offer* (an ICE restart, a failed local operation, a withdrawn remote
//! offer) it knows nothing of the session: it writes one section per transceiver it has, in its
//! own order (its sending transceivers first, then the rest, the data section last), with mids
//! of its own (`video0`, `application2`, …), and none for what only the remote sends.
//!
//! So the adapter first gives the fresh webrtcbin a transceiver for every section of the last
//! negotiated session ([`layout`]): our published media as before, a receive-only transceiver
//! with the remote's codec for each section only the remote sends on, a data channel when the
//! session had a data section. Then a [`SectionMap`] made from the fresh webrtcbin's first offer
//! ([`SectionMap::matching`]) translates every description and candidate between the two
//! numberings for the rest of that webrtcbin's life: webrtcbin only ever sees its own mids and
//! order, the remote only the session's. Sections that neither side knew when the map was made
//! (added later by either end) come after the mapped ones on both sides and keep their mids.
//!
//! The RTP `sdes:mid` header extension is dropped from mapped descriptions both ways: each end
//! would stamp packets with the mid it knows, which the other end does not.

use crate::signalling::protocol::IceCandidate;

use super::sdp;

/// The URI of the RTP header extension that carries the mid in every packet (RFC 8843 §15).
const MID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// An RTP codec, as one `a=rtpmap:` line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// The payload type.
    pub payload: u8,
    /// The encoding name (`VP8`, `opus`, …), as written.
    pub name: String,
    /// The clock rate.
    pub clock_rate: u32,
    /// Audio channels, when stated.
    pub channels: Option<u32>,
}

/// One section of the negotiated session as the remote knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireSection {
    /// The media of its m-line: `audio`, `video` or `application`.
    pub kind: String,
    /// Its mid.
    pub mid: String,
    /// We send our published media on it.
    pub ours: bool,
    /// The remote's preferred codec on it (its first `a=rtpmap:`), for an audio/video section.
    pub codec: Option<Codec>,
}

impl WireSection {
    /// Whether this is the data channel section.
    pub fn is_data(&self) -> bool {
        self.kind == "application"
    }
}

/// An SDP text split into its session part and its media sections, lines without endings.
struct Split<'a> {
    session: Vec<&'a str>,
    sections: Vec<Vec<&'a str>>,
    eol: &'static str,
    final_eol: bool,
}

impl<'a> Split<'a> {
    fn of(sdp: &'a str) -> Split<'a> {
        let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
        let final_eol = sdp.ends_with('\n');
        let mut session = Vec::new();
        let mut sections: Vec<Vec<&str>> = Vec::new();
        for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
            if line.starts_with("m=") {
                sections.push(vec![line]);
            } else if let Some(section) = sections.last_mut() {
                section.push(line);
            } else {
                session.push(line);
            }
        }
        Split {
            session,
            sections,
            eol,
            final_eol,
        }
    }

    fn join(lines: impl IntoIterator<Item = String>, eol: &str, final_eol: bool) -> String {
        let mut out = lines.into_iter().collect::<Vec<_>>().join(eol);
        if final_eol {
            out.push_str(eol);
        }
        out
    }
}

/// The media of an m-line (`m=video 9 …` -> `video`).
fn kind_of(section: &[&str]) -> String {
    section
        .first()
        .and_then(|m| m.strip_prefix("m="))
        .and_then(|m| m.split(' ').next())
        .unwrap_or_default()
        .to_string()
}

fn mid_of<'a>(section: &[&'a str]) -> Option<&'a str> {
    section
        .iter()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .map(str::trim)
}

fn direction_of(section: &[&str]) -> sdp::Direction {
    let mut direction = sdp::Direction::SendRecv;
    for line in section {
        match line.strip_prefix("a=") {
            Some("sendrecv") => direction = sdp::Direction::SendRecv,
            Some("sendonly") => direction = sdp::Direction::SendOnly,
            Some("recvonly") => direction = sdp::Direction::RecvOnly,
            Some("inactive") => direction = sdp::Direction::Inactive,
            _ => {}
        }
    }
    direction
}

/// The first `a=rtpmap:` of a section.
fn first_codec(section: &[&str]) -> Option<Codec> {
    section.iter().find_map(|line| {
        let rest = line.strip_prefix("a=rtpmap:")?;
        let (payload, encoding) = rest.split_once(' ')?;
        let mut parts = encoding.trim().split('/');
        let name = parts.next()?.to_string();
        let clock_rate = parts.next()?.parse().ok()?;
        let channels = parts.next().and_then(|c| c.parse().ok());
        Some(Codec {
            payload: payload.trim().parse().ok()?,
            name,
            clock_rate,
            channels,
        })
    })
}

/// The sections of the session the last completed exchange negotiated, from our description
/// and the remote's as they went on the wire (same sections, same order). A section is ours
/// when our description sends on it; its codec is the remote's first.
pub fn layout(local: &str, remote: &str) -> Vec<WireSection> {
    let remote = Split::of(remote);
    Split::of(local)
        .sections
        .iter()
        .filter_map(|section| {
            let mid = mid_of(section)?.to_string();
            let kind = kind_of(section);
            let theirs = remote
                .sections
                .iter()
                .find(|s| mid_of(s) == Some(mid.as_str()));
            let media = kind == "audio" || kind == "video";
            Some(WireSection {
                ours: media && direction_of(section).sends(),
                codec: theirs.and_then(|s| first_codec(s)).filter(|_| media),
                kind,
                mid,
            })
        })
        .collect()
}

/// One mapped section: where it is in the webrtcbin's descriptions and on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pair {
    bin_index: usize,
    bin_mid: String,
    wire_mid: String,
}

/// How one webrtcbin's sections correspond to the session's (see the module documentation).
/// The empty map translates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectionMap {
    /// In wire order: the i-th is the session's i-th section.
    pairs: Vec<Pair>,
}

impl SectionMap {
    /// Matches the sections of a fresh webrtcbin's `offer` to the session's `layout`, kind by
    /// kind and in order: webrtcbin's sending sections to the session's sections of ours, its
    /// other sections to the remote's, its data section to the data section. Returns the map
    /// of the leading session sections it could match (all of them when the webrtcbin has a
    /// transceiver for each), and the session mids it could not.
    pub fn matching(offer: &str, layout: &[WireSection]) -> (SectionMap, Vec<String>) {
        let split = Split::of(offer);
        let bin: Vec<(usize, String, String, bool)> = split
            .sections
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let mid = mid_of(s)?.to_string();
                let kind = kind_of(s);
                let sends = kind != "application" && direction_of(s).sends();
                Some((i, mid, kind, sends))
            })
            .collect();
        let mut taken = vec![false; bin.len()];
        let mut pairs = Vec::new();
        let mut missing = Vec::new();
        for wire in layout {
            // A section of ours takes a sending section; the remote's a receive-only one; if
            // none is left of the preferred sort, any section of the kind.
            let found = (0..bin.len())
                .find(|&j| {
                    !taken[j] && bin[j].2 == wire.kind && (wire.is_data() || bin[j].3 == wire.ours)
                })
                .or_else(|| (0..bin.len()).find(|&j| !taken[j] && bin[j].2 == wire.kind));
            match found {
                Some(j) if missing.is_empty() => {
                    taken[j] = true;
                    pairs.push(Pair {
                        bin_index: bin[j].0,
                        bin_mid: bin[j].1.clone(),
                        wire_mid: wire.mid.clone(),
                    });
                }
                // Mapped sections must be the session's leading ones: once one is missing,
                // the rest are reported missing too.
                _ => missing.push(wire.mid.clone()),
            }
        }
        (SectionMap { pairs }, missing)
    }

    /// Whether the map changes nothing (no section, or every section in place with its mid).
    pub fn is_identity(&self) -> bool {
        self.pairs
            .iter()
            .enumerate()
            .all(|(i, p)| p.bin_index == i && p.bin_mid == p.wire_mid)
    }

    /// The wire position of the webrtcbin's section `bin`.
    pub fn wire_index(&self, bin: usize) -> usize {
        if let Some(w) = self.pairs.iter().position(|p| p.bin_index == bin) {
            return w;
        }
        let mapped_below = self.pairs.iter().filter(|p| p.bin_index < bin).count();
        self.pairs.len() + bin - mapped_below
    }

    /// The webrtcbin position of the wire's section `wire`.
    pub fn bin_index(&self, wire: usize) -> usize {
        if let Some(p) = self.pairs.get(wire) {
            return p.bin_index;
        }
        (0..)
            .filter(|b| !self.pairs.iter().any(|p| p.bin_index == *b))
            .nth(wire - self.pairs.len())
            .expect("an unbounded range")
    }

    /// A description webrtcbin generated, as the remote must see it.
    pub fn to_wire(&self, sdp: &str) -> String {
        let renames: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|p| (p.bin_mid.as_str(), p.wire_mid.as_str()))
            .collect();
        self.translate(sdp, |w| self.bin_index(w), &renames)
    }

    /// A description from the remote, as this webrtcbin must see it.
    pub fn to_bin(&self, sdp: &str) -> String {
        let renames: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|p| (p.wire_mid.as_str(), p.bin_mid.as_str()))
            .collect();
        self.translate(sdp, |b| self.wire_index(b), &renames)
    }

    /// `sdp` with its sections reordered (output position `i` takes input section `source(i)`),
    /// mids renamed, the BUNDLE group renamed and in the new section order, and the mid header
    /// extension dropped. Unchanged when the map is the identity, or when the sections do not
    /// fit it (then it is not a description of this session, and the remote's or webrtcbin's
    /// own checks report it).
    fn translate(
        &self,
        sdp: &str,
        source: impl Fn(usize) -> usize,
        renames: &[(&str, &str)],
    ) -> String {
        if self.is_identity() {
            return sdp.to_string();
        }
        let split = Split::of(sdp);
        let n = split.sections.len();
        let order: Vec<usize> = (0..n).map(source).collect();
        let mut seen = vec![false; n];
        for &i in &order {
            if i >= n || seen[i] {
                return sdp.to_string();
            }
            seen[i] = true;
        }
        let rename = |mid: &str| -> String {
            renames
                .iter()
                .find(|(from, _)| *from == mid)
                .map(|(_, to)| to.to_string())
                .unwrap_or_else(|| mid.to_string())
        };
        // The new section order's mids, for the BUNDLE group.
        let new_mids: Vec<String> = order
            .iter()
            .filter_map(|&i| mid_of(&split.sections[i]).map(rename))
            .collect();
        let mid_extension_ids: Vec<String> = split
            .sections
            .iter()
            .flatten()
            .chain(split.session.iter())
            .filter_map(|l| {
                let rest = l.strip_prefix("a=extmap:")?;
                let (id, uri) = rest.split_once(' ')?;
                (uri.split(' ').next()? == MID_EXTENSION).then(|| id.to_string())
            })
            .collect();
        let keep = |line: &str| -> bool {
            let Some(rest) = line.strip_prefix("a=extmap:") else {
                return true;
            };
            !mid_extension_ids
                .iter()
                .any(|id| rest.starts_with(&format!("{id} ")))
        };
        let mut out: Vec<String> = Vec::new();
        for line in &split.session {
            if let Some(group) = line.strip_prefix("a=group:BUNDLE") {
                let members: Vec<String> = group.split_whitespace().map(rename).collect();
                let ordered: Vec<&str> = new_mids
                    .iter()
                    .filter(|m| members.contains(m))
                    .map(String::as_str)
                    .collect();
                out.push(format!("a=group:BUNDLE {}", ordered.join(" ")));
            } else if keep(line) {
                out.push(line.to_string());
            }
        }
        for &i in &order {
            for line in &split.sections[i] {
                if let Some(mid) = line.strip_prefix("a=mid:") {
                    out.push(format!("a=mid:{}", rename(mid.trim())));
                } else if keep(line) {
                    out.push(line.to_string());
                }
            }
        }
        Split::join(out, split.eol, split.final_eol)
    }

    /// A candidate webrtcbin gathered on its section `bin`, as the remote must see it. With
    /// max-bundle (always used) every candidate is of the one bundled transport, which each end
    /// names by the first section of its BUNDLE group: webrtcbin's first section, the wire's
    /// first. So a mapped candidate goes to the wire's first section, by index and mid.
    pub fn candidate_to_wire(&self, bin: u32, candidate: String) -> IceCandidate {
        let (index, mid) = match self.pairs.first() {
            Some(first) if !self.is_identity() => (0, Some(first.wire_mid.clone())),
            _ => (bin, None),
        };
        IceCandidate {
            candidate,
            sdp_mid: mid,
            sdp_mline_index: Some(index),
            username_fragment: None,
        }
    }

    /// The webrtcbin section a remote candidate is added to: with a mapped session, the first
    /// (webrtcbin's bundle transport; see [`Self::candidate_to_wire`]), which webrtcbin 1.22
    /// needs: it drops a candidate for a bundled section other than the first ("Unknown
    /// mline"). Else the candidate's own m-line index (0 when it states none).
    pub fn candidate_to_bin(&self, candidate: &IceCandidate) -> u32 {
        if self.is_identity() {
            candidate.sdp_mline_index.unwrap_or(0)
        } else {
            0
        }
    }
}

#[cfg(test)]
#[path = "sdp_map_tests.rs"]
mod tests;
