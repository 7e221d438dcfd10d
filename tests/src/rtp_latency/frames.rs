//! Pure part: RTP packets seen on the wire -> frames -> matched (in, out) pairs -> latency.

/// One captured UDP datagram that looks like RTP (version 2, not RTCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    /// Kernel receive time on `lo`, in ns (any fixed origin).
    pub at_ns: u64,
    pub src_port: u16,
    pub dst_port: u16,
    pub ssrc: u32,
    pub marker: bool,
    /// UDP payload length.
    pub len: usize,
}

impl RtpPacket {
    /// Parses a UDP payload; `None` for anything that is not RTP (STUN, DTLS, RTCP).
    pub fn parse(at_ns: u64, src_port: u16, dst_port: u16, payload: &[u8]) -> Option<RtpPacket> {
        if payload.len() < 12 || payload[0] >> 6 != 2 {
            return None;
        }
        // RTCP packet types 200..=206 overlap marker + payload type 72..=78.
        if (200..=206).contains(&payload[1]) {
            return None;
        }
        Some(RtpPacket {
            at_ns,
            src_port,
            dst_port,
            ssrc: u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]]),
            marker: payload[1] & 0x80 != 0,
            len: payload.len(),
        })
    }
}

/// One frame of one stream: from its first packet to its marker packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub first_ns: u64,
    pub last_ns: u64,
    pub bytes: usize,
}

/// Frames of a stream, packets in arrival order; a trailing frame without marker is dropped.
pub fn frames<'a>(packets: impl IntoIterator<Item = &'a RtpPacket>) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut current: Option<Frame> = None;
    for p in packets {
        let f = current.get_or_insert(Frame {
            first_ns: p.at_ns,
            last_ns: p.at_ns,
            bytes: 0,
        });
        f.last_ns = p.at_ns;
        f.bytes += p.len;
        if p.marker {
            out.extend(current.take());
        }
    }
    out
}

/// The latency figures of matched frames, in ms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Marker packet in -> marker packet out (a whole frame through the server).
    pub last_ms: Vec<f64>,
    /// First packet in -> first packet out (includes waiting for the rest of the frame).
    pub first_ms: Vec<f64>,
    /// Whether each measured frame (same order as `last_ms`) is keyframe-sized.
    pub big: Vec<bool>,
    /// Frames left out because their sizes in and out disagree (a drop or a mismatch).
    pub mismatched: usize,
}

impl Latency {
    /// `last_ms` of the keyframe-sized frames (`true`) or of the others (`false`).
    pub fn last_ms_of(&self, big: bool) -> Vec<f64> {
        self.last_ms
            .iter()
            .zip(&self.big)
            .filter(|(_, b)| **b == big)
            .map(|(ms, _)| *ms)
            .collect()
    }
}

/// Whether a frame of `bytes` is keyframe-sized in a stream whose median frame is `median`.
fn is_big(bytes: usize, median: usize) -> bool {
    bytes * 10 > median * 18
}

fn median_size(frames: &[Frame]) -> Option<usize> {
    let mut sizes: Vec<usize> = frames.iter().map(|f| f.bytes).collect();
    sizes.sort_unstable();
    sizes.get(sizes.len() / 2).copied()
}

/// Index of the first keyframe-sized frame (over 1.8x the median size: a 720p keyframe of the
/// bench camera is about 2.2x its delta frames) at or after `from_ns`; `median`: the frames'
/// median size.
fn first_big(frames: &[Frame], median: usize, from_ns: u64) -> Option<usize> {
    frames
        .iter()
        .position(|f| f.last_ns >= from_ns && is_big(f.bytes, median))
}

/// Matches `input` frames (camera -> server) with `output` frames (server -> one viewer): the
/// first keyframe going in is paired with the first keyframe coming out after it, and the rest
/// by order from there. Pairs whose sizes differ by more than 25 % (parameter sets and headers
/// account for a few %) are counted as mismatched, not measured.
pub fn match_frames(input: &[Frame], output: &[Frame]) -> Latency {
    let mut latency = Latency::default();
    let (Some(median), Some(median_out)) = (median_size(input), median_size(output)) else {
        return latency;
    };
    let Some(i0) = first_big(input, median, 0) else {
        return latency;
    };
    let Some(o0) = first_big(output, median_out, input[i0].last_ns) else {
        return latency;
    };
    for (a, b) in input[i0..].iter().zip(&output[o0..]) {
        let ratio = b.bytes as f64 / a.bytes.max(1) as f64;
        if !(0.8..=1.25).contains(&ratio) || b.last_ns < a.last_ns {
            latency.mismatched += 1;
            continue;
        }
        latency.last_ms.push((b.last_ns - a.last_ns) as f64 / 1e6);
        latency.big.push(is_big(a.bytes, median));
        latency
            .first_ms
            .push(b.first_ns.saturating_sub(a.first_ns) as f64 / 1e6);
    }
    latency
}

/// The `q` quantile (0..=1, nearest rank) of `values`.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(marker: bool, ssrc: u32, len: usize) -> Vec<u8> {
        let mut p = vec![0x80, if marker { 0xe6 } else { 0x66 }, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.resize(len, 0);
        p
    }

    #[test]
    fn rtp_is_told_from_rtcp_stun_and_dtls() {
        let p = RtpPacket::parse(5, 1, 2, &rtp(true, 7, 100)).unwrap();
        assert!(p.marker);
        assert_eq!((p.ssrc, p.len), (7, 100));
        let mut rtcp = rtp(false, 7, 40);
        rtcp[1] = 200;
        assert_eq!(RtpPacket::parse(5, 1, 2, &rtcp), None);
        assert_eq!(
            RtpPacket::parse(5, 1, 2, &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0]),
            None
        );
        assert_eq!(RtpPacket::parse(5, 1, 2, &[22; 40]), None);
    }

    fn stream(sizes: &[usize], start_ns: u64, step_ns: u64) -> Vec<Frame> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| Frame {
                first_ns: start_ns + i as u64 * step_ns,
                last_ns: start_ns + i as u64 * step_ns + 1_000,
                bytes,
            })
            .collect()
    }

    #[test]
    fn packets_make_frames_at_the_marker() {
        let ps: Vec<RtpPacket> = [(false, 10), (true, 20), (false, 30), (true, 40), (false, 5)]
            .iter()
            .enumerate()
            .map(|(i, &(m, at))| RtpPacket {
                at_ns: at,
                src_port: 1,
                dst_port: 2,
                ssrc: 1,
                marker: m,
                len: 100 + i,
            })
            .collect();
        let f = frames(&ps);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].first_ns, f[0].last_ns, f[0].bytes), (10, 20, 201));
        assert_eq!((f[1].first_ns, f[1].last_ns), (30, 40));
    }

    #[test]
    fn frames_are_matched_from_the_first_keyframe_and_checked_by_size() {
        let sizes = [1000, 1100, 9000, 1000, 1050, 980, 9100, 1020];
        let input = stream(&sizes, 0, 33_000_000);
        // Out: every frame 2 ms later and 3 % bigger (parameter sets, headers).
        let mut out_sizes = vec![1000];
        out_sizes.extend(sizes[1..].iter().map(|s| s * 103 / 100));
        let output = stream(&out_sizes, 2_000_000, 33_000_000);
        let l = match_frames(&input, &output);
        assert_eq!(l.mismatched, 0);
        assert_eq!(l.last_ms.len(), 6);
        assert!(l.last_ms.iter().all(|ms| (ms - 2.0).abs() < 1e-9));
        assert_eq!(quantile(&l.last_ms, 0.5), Some(2.0));
        // Matched from the 9000-byte frame: it and the 9100-byte one are keyframe-sized.
        assert_eq!(l.big, [true, false, false, false, true, false]);
        assert_eq!(l.last_ms_of(true).len(), 2);
        assert_eq!(l.last_ms_of(false).len(), 4);
    }

    #[test]
    fn a_dropped_frame_shows_as_mismatches_not_as_latency() {
        let sizes = [1000, 20000, 1000, 3000, 1000, 3000];
        let input = stream(&sizes, 0, 33_000_000);
        let out_sizes = [1000, 20000, 3000, 1000, 3000];
        let output = stream(&out_sizes, 1_000_000, 33_000_000);
        let l = match_frames(&input, &output);
        assert_eq!(l.mismatched, 3);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
