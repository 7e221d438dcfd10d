//! The picture size an H.264 SPS (sequence parameter set, H.264 7.3.2.1.1) announces, read
//! from the NAL unit the relay keeps: a relayed stream is not parsed into frames, so this is
//! where its `width` and `height` metrics come from. Only the fields in front of the size and
//! the cropping window are read.

/// Profiles whose SPS carries the chroma format, bit depths and scaling matrices.
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The displayed width and height (after cropping) of the SPS NAL unit `nal` (header byte
/// first, emulation-prevention bytes still in), or `None` when it is not a whole SPS.
pub fn dimensions(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = Bits::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_map_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    // Table 6-1: the cropping window is counted in chroma samples (of fields when interlaced).
    let fields = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (unit_x, unit_y) = match chroma_array_type {
        0 | 3 => (1, fields),
        1 => (2, 2 * fields),
        _ => (2, fields),
    };
    let width = width_mbs
        .checked_mul(16)?
        .checked_sub(unit_x * left.checked_add(right)?)?;
    let height = height_map_units
        .checked_mul(16 * fields)?
        .checked_sub(unit_y * top.checked_add(bottom)?)?;
    (width > 0 && height > 0).then_some((width, height))
}

/// Skips a `scaling_list()` of `size` coefficients (H.264 7.3.2.1.1.1).
fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The RBSP of a NAL unit's payload: every `00 00 03` loses its `03`.
fn unescape(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &b in payload {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A big-endian bit reader with H.264's Exp-Golomb codes.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits { data, at: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.at / 8)?;
        let bit = byte >> (7 - self.at % 8) & 1;
        self.at += 1;
        Some(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some(v << 1 | u32::from(self.bit()?)))
    }

    /// ue(v): unsigned Exp-Golomb (at most 32 bits of value).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// se(v): signed Exp-Golomb.
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn constrained_baseline_sizes_from_openh264() {
        // openh264enc's SPS for these sizes (gst-launch-1.0 ... ! openh264enc ! h264parse).
        for (sps, size) in [
            ("6742c01f8c8d402802dd00f08846a0", (1280, 720)),
            ("6742c00d8c8d40a0cbcf00f08846a0", (320, 180)),
            ("6742c0288c8d403c0113f2c03c2211a8", (1920, 1080)),
        ] {
            assert_eq!(dimensions(&hex(sps)), Some(size), "{sps}");
        }
    }

    /// Writes bits and Exp-Golomb codes, to make SPSs of other profiles.
    #[derive(Default)]
    struct Writer {
        bits: Vec<bool>,
    }

    impl Writer {
        fn u(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(v >> i & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let code = v as u64 + 1;
            let len = 64 - code.leading_zeros();
            self.u(len - 1, 0);
            for i in (0..len).rev() {
                self.bits.push(code >> i & 1 == 1);
            }
            self
        }
        fn se(&mut self, v: i32) -> &mut Self {
            self.ue(if v > 0 {
                2 * v as u32 - 1
            } else {
                (-2 * v) as u32
            })
        }
        fn nal(&mut self) -> Vec<u8> {
            self.bits.push(true); // rbsp_stop_one_bit
            let mut out = vec![0x67];
            for chunk in self.bits.chunks(8) {
                let mut b = 0u8;
                for (i, bit) in chunk.iter().enumerate() {
                    b |= u8::from(*bit) << (7 - i);
                }
                out.push(b);
            }
            out
        }
    }

    #[test]
    fn high_profile_with_scaling_lists_and_cropping() {
        let mut w = Writer::default();
        w.u(8, 100).u(8, 0).u(8, 40).ue(0); // High, level 4.0, id 0
        w.ue(1).ue(0).ue(0).u(1, 0); // 4:2:0, 8 bits
        w.u(1, 1); // scaling matrices present
        w.u(1, 1); // list 0 present: one delta, then next = 0 ends it
        w.se(-8);
        for _ in 1..8 {
            w.u(1, 0);
        }
        w.ue(0).ue(0).ue(2); // frame_num bits; POC type 0 and its lsb bits
        w.ue(4).u(1, 0); // refs, gaps
        w.ue(119).ue(67).u(1, 1).u(1, 1); // 120 x 68 macroblocks, progressive
        w.u(1, 1).ue(0).ue(0).ue(0).ue(4); // cropping: 8 lines off the bottom
        assert_eq!(dimensions(&w.nal()), Some((1920, 1080)));
    }

    #[test]
    fn interlaced_and_poc_type_1() {
        let mut w = Writer::default();
        w.u(8, 77).u(8, 0).u(8, 30).ue(0); // Main
        w.ue(0).ue(1).u(1, 0).se(-2).se(1).ue(2).se(3).se(-4);
        w.ue(1).u(1, 0);
        w.ue(44).ue(17).u(1, 0).u(1, 1).u(1, 1); // 45 x 18 field map units, interlaced
        w.u(1, 0);
        assert_eq!(dimensions(&w.nal()), Some((720, 576)));
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            unescape(&[1, 0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [1, 0, 0, 1, 0, 0, 0, 3]
        );
    }

    #[test]
    fn not_an_sps_or_cut_short() {
        assert_eq!(dimensions(&[0x68, 0xce, 0x3c, 0x80]), None);
        assert_eq!(dimensions(&hex("6742c01f8c")), None);
        assert_eq!(dimensions(&[]), None);
    }
}
