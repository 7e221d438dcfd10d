//! Relaying a camera's H.264 RTP packets to the peers as they come, the way an SFU does: no
//! depayloading, no reassembly into frames, no payloading again. A packet leaves as soon as it
//! arrives (the marker packet of a frame does not wait for the frame to be put together and cut
//! up again), and the peers get the camera's own packet sizes (fewer packets than cutting at
//! 1,200 bytes, so less per-packet work for every peer).
//!
//! What the relay changes in each packet: the SSRC and payload type become the outlet's, and the
//! sequence numbers and timestamps are moved so that they go on across camera reconnects (a new
//! camera session starts where the last one ended, in sequence and in time), which is what keeps
//! peers decoding without renegotiating. Gaps (packets the camera lost) stay gaps: the peers ask
//! for them again with NACK, or for a keyframe.
//!
//! A peer that joins mid-stream decodes from the next keyframe, which needs the parameter sets
//! (SPS, PPS) in front of it. Most cameras send them in-band before every IDR picture; for one
//! that announces them only in its SDP (`sprop-parameter-sets`), or not before every IDR, the
//! relay puts the last ones it saw into a STAP-A packet of its own before the IDR picture.
//!
//! Pure: bytes in, bytes out, time given by the caller.

/// NAL unit types (RFC 6184 and H.264 Table 7-1) the relay looks at.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;

const RTP_HEADER: usize = 12;

/// The mapping of the current camera stream onto the outlet's sequence numbers and timestamps.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    /// The camera stream's SSRC: another one is another stream (a new mapping).
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// One outlet's relay state.
#[derive(Debug)]
pub struct Relay {
    ssrc: u32,
    payload_type: u8,
    clock_rate: u32,
    mapping: Option<Mapping>,
    /// The output sequence number after the highest sent.
    next_seq: u16,
    /// The last output timestamp and when (ns, the caller's clock) it was sent.
    last: Option<(u32, u64)>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// The camera timestamp of the frame whose packets carried an SPS / a PPS last.
    sps_at: Option<u32>,
    pps_at: Option<u32>,
    /// The camera timestamp of the frame the relay last put parameter sets before.
    injected_at: Option<u32>,
    /// Parameter-set packets the relay added, since the start.
    pub injected: u64,
    /// Packets that were not RTP and were dropped, since the start.
    pub malformed: u64,
}

/// What one packet says about H.264: which NAL units it carries.
#[derive(Debug, Default, PartialEq, Eq)]
struct Units<'a> {
    sps: Option<&'a [u8]>,
    pps: Option<&'a [u8]>,
    /// The packet starts (or is) an IDR slice.
    idr_start: bool,
}

fn units(payload: &[u8]) -> Units<'_> {
    fn single<'a>(nal: &'a [u8], found: &mut Units<'a>) {
        match nal.first().map(|b| b & 0x1f) {
            Some(NAL_SPS) => found.sps = Some(nal),
            Some(NAL_PPS) => found.pps = Some(nal),
            Some(NAL_IDR) => found.idr_start = true,
            _ => {}
        }
    }
    let mut found = Units::default();
    match payload.first().map(|b| b & 0x1f) {
        Some(NAL_STAP_A) => {
            let mut rest = &payload[1..];
            while rest.len() >= 2 {
                let size = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                let Some(nal) = rest.get(2..2 + size) else {
                    break;
                };
                single(nal, &mut found);
                rest = &rest[2 + size..];
            }
        }
        Some(NAL_FU_A) => {
            if let Some(&header) = payload.get(1) {
                found.idr_start = header & 0x80 != 0 && header & 0x1f == NAL_IDR;
            }
        }
        Some(_) => single(payload, &mut found),
        None => {}
    }
    found
}

/// Where the payload of an RTP packet is, or `None` when it is not RTP.
fn payload_range(packet: &[u8]) -> Option<std::ops::Range<usize>> {
    if packet.len() < RTP_HEADER || packet[0] >> 6 != 2 {
        return None;
    }
    let csrcs = (packet[0] & 0x0f) as usize;
    let mut start = RTP_HEADER + 4 * csrcs;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * u16::from_be_bytes([words[0], words[1]]) as usize;
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        let padding = *packet.last()? as usize;
        end = end.checked_sub(padding)?;
    }
    (start <= end).then_some(start..end)
}

impl Relay {
    /// A relay sending as `ssrc` with `payload_type`, at `clock_rate` (90,000 for video).
    pub fn new(ssrc: u32, payload_type: u8, clock_rate: u32) -> Relay {
        Relay {
            ssrc,
            payload_type,
            clock_rate,
            mapping: None,
            next_seq: (ssrc >> 16) as u16,
            last: None,
            sps: None,
            pps: None,
            sps_at: None,
            pps_at: None,
            injected_at: None,
            injected: 0,
            malformed: 0,
        }
    }

    /// The camera session ended: the next packet starts a new mapping, right after the last
    /// packet sent, in sequence and in time.
    pub fn restart(&mut self) {
        self.mapping = None;
        self.sps_at = None;
        self.pps_at = None;
        self.injected_at = None;
    }

    /// Parameter sets announced out of band (the camera's `sprop-parameter-sets`), used until
    /// the stream carries its own.
    pub fn set_parameter_sets(&mut self, sps: Vec<u8>, pps: Vec<u8>) {
        self.sps = Some(sps);
        self.pps = Some(pps);
    }

    /// The last SPS NAL unit seen (in the stream or announced out of band).
    pub fn sps(&self) -> Option<&[u8]> {
        self.sps.as_deref()
    }

    /// The packets to send for one camera packet received at `now_ns`: none (not RTP), the
    /// packet rewritten, or a parameter-set packet and then the packet.
    pub fn relay(&mut self, packet: &[u8], now_ns: u64) -> Vec<Vec<u8>> {
        let Some(range) = payload_range(packet) else {
            self.malformed += 1;
            return Vec::new();
        };
        let in_seq = u16::from_be_bytes([packet[2], packet[3]]);
        let in_ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let in_ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let mut mapping = match self.mapping {
            Some(m) if m.ssrc == in_ssrc => m,
            _ => self.new_mapping(in_ssrc, in_seq, in_ts, now_ns),
        };

        let found = units(&packet[range]);
        if let Some(sps) = found.sps {
            self.sps = Some(sps.to_vec());
            self.sps_at = Some(in_ts);
        }
        if let Some(pps) = found.pps {
            self.pps = Some(pps.to_vec());
            self.pps_at = Some(in_ts);
        }
        let mut out = Vec::with_capacity(1);
        let has_headers = self.sps_at == Some(in_ts) && self.pps_at == Some(in_ts);
        if found.idr_start && !has_headers && self.injected_at != Some(in_ts) {
            if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
                let seq = in_seq.wrapping_add(mapping.seq_offset);
                let ts = in_ts.wrapping_add(mapping.ts_offset);
                out.push(self.parameter_sets(sps, pps, seq, ts));
                // Every later packet of this stream moves one on, to make room.
                mapping.seq_offset = mapping.seq_offset.wrapping_add(1);
                self.injected_at = Some(in_ts);
                self.injected += 1;
                self.sent(seq, ts, now_ns);
            }
        }
        self.mapping = Some(mapping);

        let seq = in_seq.wrapping_add(mapping.seq_offset);
        let ts = in_ts.wrapping_add(mapping.ts_offset);
        let mut rewritten = packet.to_vec();
        rewritten[1] = (packet[1] & 0x80) | (self.payload_type & 0x7f);
        rewritten[2..4].copy_from_slice(&seq.to_be_bytes());
        rewritten[4..8].copy_from_slice(&ts.to_be_bytes());
        rewritten[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.sent(seq, ts, now_ns);
        out.push(rewritten);
        out
    }

    fn new_mapping(&mut self, ssrc: u32, in_seq: u16, in_ts: u32, now_ns: u64) -> Mapping {
        // In time: as far past the last packet sent as the clock moved since.
        let ts_out = match self.last {
            Some((ts, at)) => {
                let ticks =
                    now_ns.saturating_sub(at) as u128 * self.clock_rate as u128 / 1_000_000_000;
                ts.wrapping_add(ticks as u32)
            }
            None => in_ts,
        };
        Mapping {
            ssrc,
            seq_offset: self.next_seq.wrapping_sub(in_seq),
            ts_offset: ts_out.wrapping_sub(in_ts),
        }
    }

    fn sent(&mut self, seq: u16, ts: u32, now_ns: u64) {
        // Later in sequence (modulo 2^16) than everything sent: the next new stream starts after.
        if (seq.wrapping_sub(self.next_seq) as i16) >= 0 {
            self.next_seq = seq.wrapping_add(1);
            self.last = Some((ts, now_ns));
        }
    }

    /// A STAP-A packet with `sps` and `pps`, at sequence number `seq` and timestamp `ts`.
    fn parameter_sets(&self, sps: &[u8], pps: &[u8], seq: u16, ts: u32) -> Vec<u8> {
        let mut p = Vec::with_capacity(RTP_HEADER + 5 + sps.len() + pps.len());
        p.push(0x80);
        p.push(self.payload_type & 0x7f);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        // The STAP-A's NRI is the highest of its units'.
        let nri =
            sps.first().copied().unwrap_or(0x60) & 0x60 | pps.first().copied().unwrap_or(0) & 0x60;
        p.push(nri | NAL_STAP_A);
        for nal in [sps, pps] {
            p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            p.extend_from_slice(nal);
        }
        p
    }
}

/// Relayed packets gathered into whole frames, each handed on at once: one hand-off per peer
/// per frame instead of one per packet, and the frame's last packet (the one a receiver waits
/// for) goes no later than it would alone. A frame ends at its marker packet, or when a packet
/// of another timestamp comes (the marker was lost), or at [`FrameBatch::LIMIT`] packets.
#[derive(Debug, Default)]
pub struct FrameBatch {
    packets: Vec<Vec<u8>>,
    timestamp: Option<u32>,
}

impl FrameBatch {
    /// The most packets handed on together.
    pub const LIMIT: usize = 256;

    /// Adds a relayed packet; returns the frames that are complete now (oldest first).
    pub fn add(&mut self, packet: Vec<u8>) -> Vec<Vec<Vec<u8>>> {
        let mut ready = Vec::new();
        let timestamp = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let marker = packet[1] & 0x80 != 0;
        if self.timestamp.is_some_and(|t| t != timestamp) {
            ready.extend(self.take());
        }
        self.timestamp = Some(timestamp);
        self.packets.push(packet);
        if marker || self.packets.len() >= Self::LIMIT {
            ready.extend(self.take());
        }
        ready
    }

    /// What is gathered, as one frame (none when empty).
    pub fn take(&mut self) -> Option<Vec<Vec<u8>>> {
        self.timestamp = None;
        (!self.packets.is_empty()).then(|| std::mem::take(&mut self.packets))
    }
}

/// The SPS and PPS of an SDP `sprop-parameter-sets` value (base64 NAL units, comma-separated).
pub fn sprop_parameter_sets(
    value: &str,
    decode: impl Fn(&str) -> Option<Vec<u8>>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut sps = None;
    let mut pps = None;
    for part in value.split(',') {
        let nal = decode(part.trim())?;
        match nal.first().map(|b| b & 0x1f) {
            Some(NAL_SPS) => sps = Some(nal),
            Some(NAL_PPS) => pps = Some(nal),
            _ => {}
        }
    }
    Some((sps?, pps?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f, 0xaa];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn packet(seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn seq(p: &[u8]) -> u16 {
        u16::from_be_bytes([p[2], p[3]])
    }
    fn ts(p: &[u8]) -> u32 {
        u32::from_be_bytes([p[4], p[5], p[6], p[7]])
    }
    fn ssrc(p: &[u8]) -> u32 {
        u32::from_be_bytes([p[8], p[9], p[10], p[11]])
    }

    fn stap_a(units: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![0x78];
        for u in units {
            p.extend_from_slice(&(u.len() as u16).to_be_bytes());
            p.extend_from_slice(u);
        }
        p
    }

    #[test]
    fn rewrites_ssrc_payload_type_and_keeps_marker_and_payload() {
        let mut relay = Relay::new(0x1234_5678, 102, 90_000);
        let input = packet(100, 5000, 0xaaaa, true, &[0x41, 1, 2, 3]);
        let out = relay.relay(&input, 0);
        assert_eq!(out.len(), 1);
        let p = &out[0];
        assert_eq!(ssrc(p), 0x1234_5678);
        assert_eq!(p[1], 0x80 | 102);
        assert_eq!(&p[12..], &[0x41, 1, 2, 3]);
    }

    #[test]
    fn sequence_numbers_keep_the_cameras_gaps_and_wrap() {
        let mut relay = Relay::new(1, 102, 90_000);
        let first = seq(&relay.relay(&packet(65_534, 0, 7, false, &[0x41]), 0)[0]);
        let later =
            [65_535u16, 1, 2].map(|s| seq(&relay.relay(&packet(s, 0, 7, false, &[0x41]), 0)[0]));
        assert_eq!(
            later,
            [
                first.wrapping_add(1),
                first.wrapping_add(3),
                first.wrapping_add(4)
            ]
        );
    }

    #[test]
    fn a_new_camera_session_goes_on_in_sequence_and_in_time() {
        let mut relay = Relay::new(1, 102, 90_000);
        let a = relay.relay(&packet(10, 1_000, 7, true, &[0x41]), 1_000_000_000);
        relay.restart();
        // Half a second later the camera starts again from other numbers (same SSRC).
        let b = relay.relay(&packet(60_000, 777, 7, true, &[0x41]), 1_500_000_000);
        assert_eq!(seq(&b[0]), seq(&a[0]).wrapping_add(1));
        assert_eq!(ts(&b[0]), ts(&a[0]).wrapping_add(45_000));
        // And the new stream's own steps are kept.
        let c = relay.relay(
            &packet(60_001, 777 + 3_000, 7, true, &[0x41]),
            1_533_000_000,
        );
        assert_eq!(seq(&c[0]), seq(&b[0]).wrapping_add(1));
        assert_eq!(ts(&c[0]), ts(&b[0]).wrapping_add(3_000));
    }

    #[test]
    fn another_ssrc_is_a_new_stream_without_a_restart() {
        let mut relay = Relay::new(1, 102, 90_000);
        let a = relay.relay(&packet(10, 1_000, 7, true, &[0x41]), 0);
        let b = relay.relay(&packet(500, 9, 8, true, &[0x41]), 0);
        assert_eq!(seq(&b[0]), seq(&a[0]).wrapping_add(1));
        assert_eq!(ts(&b[0]), ts(&a[0]));
    }

    #[test]
    fn in_band_parameter_sets_are_relayed_as_they_are() {
        let mut relay = Relay::new(1, 102, 90_000);
        let headers = relay.relay(&packet(1, 90, 7, false, &stap_a(&[SPS, PPS])), 0);
        let idr = relay.relay(&packet(2, 90, 7, true, &[0x65, 0x88]), 0);
        assert_eq!((headers.len(), idr.len()), (1, 1));
        assert_eq!(relay.injected, 0);
        assert_eq!(seq(&idr[0]), seq(&headers[0]).wrapping_add(1));
    }

    #[test]
    fn an_idr_picture_without_parameter_sets_gets_the_last_ones_before_it() {
        let mut relay = Relay::new(1, 102, 90_000);
        relay.relay(&packet(1, 90, 7, false, &[0x67, 0x42, 0xe0, 0x1f, 0xaa]), 0);
        relay.relay(&packet(2, 90, 7, false, &[0x68, 0xce, 0x3c, 0x80]), 0);
        relay.relay(&packet(3, 90, 7, true, &[0x65, 0x88]), 0);
        relay.relay(&packet(4, 180, 7, true, &[0x41, 0x9a]), 0);
        // The next IDR picture, cut in FU-A fragments, comes without them.
        let start = relay.relay(&packet(5, 270, 7, false, &[0x7c, 0x85, 1, 2]), 0);
        assert_eq!(start.len(), 2, "parameter sets, then the fragment");
        assert_eq!(&start[0][12..], stap_a(&[SPS, PPS]).as_slice());
        assert_eq!(start[0][1] & 0x80, 0, "no marker on the parameter sets");
        assert_eq!(ts(&start[0]), ts(&start[1]));
        assert_eq!(seq(&start[1]), seq(&start[0]).wrapping_add(1));
        // Its other fragments, and what follows, move one on; nothing is added again.
        let middle = relay.relay(&packet(6, 270, 7, false, &[0x7c, 0x05, 3]), 0);
        let end = relay.relay(&packet(7, 270, 7, true, &[0x7c, 0x45, 4]), 0);
        assert_eq!(seq(&middle[0]), seq(&start[1]).wrapping_add(1));
        assert_eq!(seq(&end[0]), seq(&middle[0]).wrapping_add(1));
        assert_eq!(relay.injected, 1);
    }

    #[test]
    fn parameter_sets_from_the_sdp_serve_until_the_stream_has_its_own() {
        let mut relay = Relay::new(1, 102, 90_000);
        relay.set_parameter_sets(SPS.to_vec(), PPS.to_vec());
        let out = relay.relay(&packet(1, 90, 7, true, &[0x65, 0x88]), 0);
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0][12..], stap_a(&[SPS, PPS]).as_slice());
        // Without any parameter sets known, an IDR picture goes on alone.
        let mut bare = Relay::new(1, 102, 90_000);
        assert_eq!(
            bare.relay(&packet(1, 90, 7, true, &[0x65, 0x88]), 0).len(),
            1
        );
    }

    #[test]
    fn what_is_not_rtp_is_dropped_and_counted() {
        let mut relay = Relay::new(1, 102, 90_000);
        assert!(relay.relay(&[0x80, 96, 0, 1], 0).is_empty());
        assert!(relay.relay(&[0x40; 20], 0).is_empty());
        // An extension header longer than the packet.
        let mut p = packet(1, 0, 7, false, &[0xbe, 0xde, 0x00, 0x09]);
        p[0] |= 0x10;
        assert!(relay.relay(&p, 0).is_empty());
        assert_eq!(relay.malformed, 3);
    }

    #[test]
    fn payload_skips_csrcs_extension_and_padding() {
        let mut p = vec![0xb1, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        p.extend_from_slice(&[0, 0, 0, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one extension word
        p.extend_from_slice(&[0x65, 0x88]);
        p.extend_from_slice(&[0, 2]); // two bytes of padding
        let range = payload_range(&p).unwrap();
        assert_eq!(&p[range], &[0x65, 0x88]);
    }

    #[test]
    fn a_frame_is_handed_on_at_its_marker_or_when_the_next_one_starts() {
        let mut batch = FrameBatch::default();
        assert!(batch.add(packet(1, 90, 7, false, &[0x7c, 0x85])).is_empty());
        assert!(batch.add(packet(2, 90, 7, false, &[0x7c, 0x05])).is_empty());
        let frames = batch.add(packet(3, 90, 7, true, &[0x7c, 0x45]));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].iter().map(|p| seq(p)).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // The marker of the next frame is lost: it goes when a packet of another frame comes.
        assert!(batch.add(packet(4, 180, 7, false, &[0x41])).is_empty());
        let frames = batch.add(packet(6, 270, 7, true, &[0x41]));
        assert_eq!(frames.len(), 2);
        assert_eq!((seq(&frames[0][0]), seq(&frames[1][0])), (4, 6));
        assert!(batch.take().is_none());
    }

    #[test]
    fn a_frame_larger_than_the_limit_goes_in_parts() {
        let mut batch = FrameBatch::default();
        let mut handed = 0;
        for n in 0..FrameBatch::LIMIT as u16 + 10 {
            handed += batch
                .add(packet(n, 90, 7, false, &[0x7c, 0x05]))
                .iter()
                .map(Vec::len)
                .sum::<usize>();
        }
        assert_eq!(handed, FrameBatch::LIMIT);
        assert_eq!(batch.take().map(|f| f.len()), Some(10));
    }

    #[test]
    fn sprop_parameter_sets_are_read_in_any_order() {
        let decode = |s: &str| match s {
            "S" => Some(SPS.to_vec()),
            "P" => Some(PPS.to_vec()),
            _ => None,
        };
        assert_eq!(
            sprop_parameter_sets("P, S", decode),
            Some((SPS.to_vec(), PPS.to_vec()))
        );
        assert_eq!(sprop_parameter_sets("S", decode), None);
        assert_eq!(sprop_parameter_sets("S,x", decode), None);
    }
}
